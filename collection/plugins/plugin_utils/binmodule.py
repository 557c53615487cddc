# Copyright: sshfleet contributors
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Run one of the collection's static binary modules on a managed host.

Ansible runs a binary module in several round trips (make a temp dir, upload the whole binary,
upload the arguments, chmod, run, remove the temp dir) and uploads the binary for every task,
since binary modules get no pipelining. This helper replaces all of that with:

* a per-user, content-addressed cache on the managed host: ``~/.cache/sshfleet/NAME-SHA256``
  of the user the module runs as (the become user under become), in a directory that must be
  owned by that user and writable by nobody else;
* one round trip when the binary is cached: a small shell script picks the binary for the
  host's architecture (``uname -m``), checks the directory, verifies the file's sha256 and
  ``exec``s it, all in the same command as the same user; the module reads its arguments from
  stdin (``MODULE -``; never from the command line);
* on a miss (first use on that host, or a new collection version) the binary for the reported
  architecture is streamed over stdin to an install script that verifies its hash before it
  renames it into the cache, and the run is repeated: three round trips, once per host and
  version.

A user whose home cannot hold the cache (the directory cannot be created: ``nobody`` with
``HOME=/nonexistent``, a read-only home) gets the binary in a fresh private directory from ``mktemp -d`` instead, verified and run
the same way and removed after the task (uploaded every time, as Ansible does for binary
modules). A cache directory that exists but is unsafe (not owned by the user, or writable by
others) is refused, never bypassed.

An architecture without a binary in the collection fails that host naming the architecture.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible.vars.clean import remove_internal_keys

try:  # ansible-core >= 2.19: tagged values need the module encoder
    from ansible.module_utils.common.json import Direction, get_module_encoder

    _ENCODER = get_module_encoder("legacy", Direction.CONTROLLER_TO_MODULE)
except ImportError:  # pragma: no cover - older ansible-core
    _ENCODER = None

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.join(COLLECTION_ROOT, "bin")

# What `uname -m` says -> the directory under bin/ with the binaries for it.
ARCH_ALIASES = {
    "x86_64": ("x86_64", "amd64"),
    "aarch64": ("aarch64", "arm64"),
}

MISS = "SSHFLEET-CACHE-MISS"
NO_CACHE_DIR = "SSHFLEET-NO-CACHE-DIR"
UNSUPPORTED = "SSHFLEET-UNSUPPORTED-ARCH"
INSTALLED = "SSHFLEET-INSTALLED"

# The cache directory and the checks every run makes on it: owned by the running user, a real
# directory (not a symlink), writable by nobody else (`ls -ld` mode string: group and other
# write bits are characters 6 and 9).
_CACHE_DIR = '"${HOME:?}/.cache/sshfleet"'
_DIR_OK = (
    '[ -d "$d" ] && [ ! -L "$d" ] && [ -O "$d" ] && '
    'case "$(ls -ld "$d")" in d????-??-*) true;; *) false;; esac'
)

_HASHES = {}  # path -> (size, mtime_ns, sha256)


def sha256_file(path):
    """sha256 of a local file, cached by size and mtime within this process."""
    st = os.stat(path)
    cached = _HASHES.get(path)
    if cached and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
        return cached[2]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    _HASHES[path] = (st.st_size, st.st_mtime_ns, digest)
    return digest


def available_binaries(name):
    """{arch: (path, sha256)} for every architecture the collection ships `name` for."""
    found = {}
    for arch in ARCH_ALIASES:
        path = os.path.join(BIN_DIR, arch, name)
        if os.path.isfile(path):
            found[arch] = (path, sha256_file(path))
    return found


def _arch_case(name, binaries):
    """The `case` that maps `uname -m` to the expected file name (or reports the arch)."""
    arms = []
    for arch, (_path, digest) in sorted(binaries.items()):
        pattern = "|".join(ARCH_ALIASES[arch])
        arms.append("%s) a=%s; h=%s;;" % (pattern, arch, digest))
    arms.append('*) echo "%s $m"; exit 0;;' % UNSUPPORTED)
    return 'm="$(uname -m)"; case "$m" in %s esac; f="$d/%s-$h"' % (" ".join(arms), name)


def run_script(name, binaries, env_prefix="", cache_dir=_CACHE_DIR):
    """Verify the cached binary and exec it on the arguments in stdin, or report a miss."""
    # No umask here: the module creates files and directories with the user's umask, as
    # Python modules do (the install script below sets 077 for the cache).
    return (
        "%sd=%s; %s; "
        'if %s && [ -f "$f" ] && [ ! -L "$f" ] && [ -O "$f" ] && '
        'echo "$h  $f" | sha256sum -c --status - 2>/dev/null; '
        'then exec ${SSHFLEET_MODULE_WRAPPER:+"$SSHFLEET_MODULE_WRAPPER"} "$f" -; fi; '
        'echo "%s $a"'
    ) % (env_prefix, cache_dir, _arch_case(name, binaries), _DIR_OK, MISS)


def install_script(name, binaries, arch, env_prefix="", cache_dir=_CACHE_DIR):
    """Store the binary in stdin into the cache, after verifying its hash."""
    return (
        "umask 077; %sd=%s; %s; "
        '[ "$a" = %s ] || { echo "architecture changed: now $m"; exit 1; }; '
        'mkdir -p "$d" || { echo %s; exit 1; }; '
        '%s || { echo "$d: not a directory owned by $(id -un) and writable only by it"; exit 1; }; '
        't="$(mktemp "$d/.upload.XXXXXX")" || exit 1; '
        'if cat > "$t" && echo "$h  $t" | sha256sum -c --status - && chmod 0500 "$t" && mv -f "$t" "$f"; '
        'then echo %s; else rm -f "$t"; echo "cannot store $f (hash mismatch or write error)"; exit 1; fi'
    ) % (env_prefix, cache_dir, _arch_case(name, binaries), shlex.quote(arch), NO_CACHE_DIR, _DIR_OK,
         INSTALLED)


ONESHOT = "SSHFLEET-ONESHOT"

# For a user whose home cannot hold the cache (``nobody``, HOME=/nonexistent): a private
# directory from mktemp -d (0700, owned by the user), used like the cache for one task and
# removed afterwards.
_ONESHOT_DIR = 'umask 077; t="$(mktemp -d "${TMPDIR:-/tmp}/sshfleet.XXXXXXXX")" && echo "%s $t"' % ONESHOT


def _env_prefix(action):
    env = {}
    action._compute_environment_string(raw_environment_out=env)
    if not env:
        return ""
    parts = []
    for k, v in env.items():
        k = to_text(k)
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k):
            raise AnsibleActionFail("invalid environment variable name: %r" % k)
        parts.append("%s=%s" % (k, shlex.quote(to_text(v))))
    return "export %s; " % " ".join(parts)


class BinaryModuleAction(ActionBase):
    """Action plugin base: run the collection's binary module named `BINARY`."""

    BINARY = None  # file name under bin/ARCH/
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def prepare_args(self, args, task_vars):
        """Hook: rewrite the module arguments on the controller (returns the new dict)."""
        return args

    def finish_result(self, result, original_args):
        """Hook: adjust the module's result before it is returned."""
        return result

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        if self._task.async_val:
            raise AnsibleActionFail("%s does not support async" % self._task.action)
        original = dict(self._task.args)
        args = self.prepare_args(dict(original), task_vars)
        result.update(execute_binary(self, self.BINARY, args, task_vars))
        return self.finish_result(result, original)


def execute_binary(action, name, args, task_vars):
    """Run the collection's binary module `name` on `args` for `action`'s host: the module's
    result (internal keys removed). `args` gets the internal `_ansible_*` arguments here."""
    if not getattr(action._connection, "has_pipelining", False):
        raise AnsibleActionFail(
            "%s needs a connection that can send data on stdin (ssh, paramiko, local); "
            "%r cannot" % (action._task.action, action._connection.transport)
        )
    args = dict(args)
    action._update_module_args(action._task.action, args, task_vars)
    payload = to_bytes(json.dumps(args, cls=_ENCODER) if _ENCODER else json.dumps(args))

    binaries = available_binaries(name)
    if not binaries:
        raise AnsibleActionFail(
            "the collection has no %s binary for any architecture under %s "
            "(build it with scripts/build-collection.sh)" % (name, BIN_DIR)
        )
    env = _env_prefix(action)
    res = action._low_level_execute_command(
        run_script(name, binaries, env), sudoable=True, in_data=payload
    )
    out = res.get("stdout", "").strip()
    if out.startswith(MISS + " "):
        arch = out[len(MISS) + 1:].split()[0]
        if arch not in binaries:
            raise AnsibleActionFail("unexpected architecture %r from the host" % arch)
        with open(binaries[arch][0], "rb") as f:
            data = f.read()
        inst = action._low_level_execute_command(
            install_script(name, binaries, arch, env), sudoable=True, in_data=data
        )
        why = (inst.get("stdout", "") + inst.get("stderr", "")).strip()
        if NO_CACHE_DIR in inst.get("stdout", ""):
            # the home cannot hold the cache (it cannot even be created): a private temp dir
            res = _run_oneshot(action, name, binaries, arch, env, data, payload, why)
        elif inst.get("rc") != 0 or INSTALLED not in inst.get("stdout", ""):
            raise AnsibleActionFail("cannot install %s (%s) in the host's cache: %s" % (name, arch, why))
        else:
            res = action._low_level_execute_command(
                run_script(name, binaries, env), sudoable=True, in_data=payload
            )
        out = res.get("stdout", "").strip()
    if out.startswith(UNSUPPORTED):
        arch = out[len(UNSUPPORTED):].strip() or "(empty)"
        raise AnsibleActionFail(
            "unsupported architecture %r: the collection's %s binary is built for %s only"
            % (arch, action._task.action, ", ".join(sorted(binaries)))
        )
    if out.startswith(MISS):
        raise AnsibleActionFail(
            "%s is still not in the host's cache after installing it: %s"
            % (name, (out + res.get("stderr", "")).strip())
        )
    data = action._parse_returned_data(res, "legacy") if _ENCODER else action._parse_returned_data(res)
    remove_internal_keys(data)
    return data


def _run_oneshot(action, name, binaries, arch, env, data, payload, why):
    """Run the binary from a private temp directory when the cache cannot be used (`why`)."""
    made = action._low_level_execute_command(_ONESHOT_DIR, sudoable=True)
    out = made.get("stdout", "").strip()
    if made.get("rc") != 0 or not out.startswith(ONESHOT + " "):
        raise AnsibleActionFail(
            "cannot install %s (%s) in the host's cache (%s) nor in a temp directory: %s"
            % (name, arch, why, (out + made.get("stderr", "")).strip())
        )
    tdir = out[len(ONESHOT) + 1:].strip()
    qdir = shlex.quote(tdir)
    try:
        inst = action._low_level_execute_command(
            install_script(name, binaries, arch, env, cache_dir=qdir), sudoable=True, in_data=data
        )
        if inst.get("rc") != 0 or INSTALLED not in inst.get("stdout", ""):
            raise AnsibleActionFail(
                "cannot install %s (%s) in the host's cache (%s) nor in %s: %s"
                % (name, arch, why, tdir, (inst.get("stdout", "") + inst.get("stderr", "")).strip())
            )
        return action._low_level_execute_command(
            run_script(name, binaries, env, cache_dir=qdir), sudoable=True, in_data=payload
        )
    finally:
        action._low_level_execute_command("rm -rf -- %s" % qdir, sudoable=True)
