# Copyright: sshfleet contributors
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Action plugin of sshfleet.fleet.copy: ansible-core's own copy action, with its
``ansible.legacy.copy`` module calls run by the collection's static binary.

Everything ``ansible.builtin.copy`` does on the controller is its own code, inherited here:
``src`` as a controller file or directory tree (found in the role's/play's ``files``, trailing
slash = the directory's contents, ``local_follow``), ``content`` (written to a temp file),
``mode: preserve``, ``remote_src``, the remote stat that skips unchanged files, directories and
symlinks created through ``ansible.legacy.file``, check and diff mode. Only the copy module it
calls for each file to write (or for ``remote_src``) is ours: the binary for the host's
architecture, run from the host's per-user cache in one round trip (see
plugins/plugin_utils/binmodule.py), which writes atomically (temp file, fsync, rename), keeps
owner and mode, and verifies the result by sha256. ``stat`` and ``file`` stay the builtins.

``content_b64`` (ours: binary content) bypasses the builtin action and goes straight to the
binary, as before.
"""

from __future__ import annotations

import importlib.util
import os

import ansible.plugins.action
from ansible.plugins.action import ActionBase
from ansible_collections.sshfleet.fleet.plugins.plugin_utils.binmodule import execute_binary


def _load_builtin_copy_action():
    """ansible-core's copy action class, loaded from its file: an ``action_plugins/copy.py``
    that redirects the short name ``copy`` to this plugin is itself loaded under the name
    ``ansible.plugins.action.copy``, which then no longer is the builtin."""
    path = os.path.join(os.path.dirname(ansible.plugins.action.__file__), "copy.py")
    spec = importlib.util.spec_from_file_location("ansible.plugins.action._sshfleet_builtin_copy", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ActionModule


try:
    from ansible.plugins.action.copy import ActionModule as BuiltinCopyAction
except ImportError:
    BuiltinCopyAction = _load_builtin_copy_action()

BINARY = "copy"
_COPY_MODULES = frozenset(("ansible.legacy.copy", "ansible.builtin.copy", "copy"))


class ActionModule(BuiltinCopyAction):
    def run(self, tmp=None, task_vars=None):
        if self._task.args.get("content_b64") is not None:
            task_vars = task_vars or {}
            result = ActionBase.run(self, tmp, task_vars)
            result.update(execute_binary(self, BINARY, dict(self._task.args), task_vars))
            return result
        return super().run(tmp, task_vars)

    def _execute_module(self, module_name=None, module_args=None, tmp=None, task_vars=None,
                        persist_files=False, delete_remote_tmp=None, wrap_async=False,
                        ignore_unknown_opts=False):
        if module_name in _COPY_MODULES:
            args = dict(self._task.args if module_args is None else module_args)
            return execute_binary(self, BINARY, args, task_vars or {})
        return super()._execute_module(
            module_name=module_name, module_args=module_args, tmp=tmp, task_vars=task_vars,
            persist_files=persist_files, delete_remote_tmp=delete_remote_tmp,
            wrap_async=wrap_async, ignore_unknown_opts=ignore_unknown_opts,
        )
