# Copyright: sshfleet contributors
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Action plugin of sshfleet.fleet.authorized_key.

Runs the static binary for the host's architecture from the host's per-user cache (see
plugins/plugin_utils/binmodule.py). Difference from ansible.posix.authorized_key: key URLs
(``http://``, ``https://``) are fetched here, on the controller, with ansible-core's
``open_url`` (``validate_certs`` honoured), and the module receives the key text; the module
binary carries no TLS stack or root certificates. The result still shows the URL as given.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.module_utils.urls import open_url
from ansible_collections.sshfleet.fleet.plugins.plugin_utils.binmodule import BinaryModuleAction

MAX_BODY = 1 << 20
_KEY_LINE = re.compile(r"(^|\s)(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+)\s+AAAA")


def is_url(value):
    return isinstance(value, str) and value[:8].lower().startswith(("http://", "https://"))


def _excerpt(body):
    text = body[:120].decode("utf-8", "replace")
    return repr(text) + ("..." if len(body) > 120 else "")


def fetch_keys(url, validate_certs):
    """The key list at `url`, or AnsibleActionFail saying what came back."""
    try:
        resp = open_url(url, validate_certs=validate_certs, timeout=30, http_agent="sshfleet")
        status = resp.getcode()
        ctype = resp.headers.get("content-type", "none")
        body = resp.read(MAX_BODY + 1)
    except Exception as e:  # urllib errors carry the status in their text
        code = getattr(e, "code", None)
        if code is not None:
            body = e.read(MAX_BODY) if hasattr(e, "read") else b""
            ctype = e.headers.get("content-type", "none") if getattr(e, "headers", None) else "none"
            raise AnsibleActionFail(
                "Error getting key from: %s: HTTP %s, content type %s, body starts: %s"
                % (url, code, ctype, _excerpt(body))
            )
        raise AnsibleActionFail("Error getting key from: %s: %s" % (url, to_text(e)))
    what = "HTTP %s, content type %s, body starts: %s" % (status, ctype, _excerpt(body))
    if status != 200:
        raise AnsibleActionFail("Error getting key from: %s: %s" % (url, what))
    if len(body) > MAX_BODY:
        raise AnsibleActionFail("%s: more than %d bytes of keys" % (url, MAX_BODY))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise AnsibleActionFail("keys from %s are not UTF-8 text: %s" % (url, what))
    if "PRIVATE KEY" in text:
        raise AnsibleActionFail("%s: this is a private key; give the public key" % url)
    if not any(_KEY_LINE.search(line) for line in text.splitlines()):
        raise AnsibleActionFail("%s returned no public key: %s" % (url, what))
    return text


class ActionModule(BinaryModuleAction):
    BINARY = "authorized_key"

    def prepare_args(self, args, task_vars):
        validate = boolean(args.get("validate_certs", True), strict=False)
        key = args.get("key")
        if is_url(key):
            args["key"] = fetch_keys(key, validate)
        keys = args.get("keys")
        if isinstance(keys, list) and any(is_url(k) for k in keys):
            args["keys"] = [fetch_keys(k, validate) if is_url(k) else k for k in keys]
        return args

    def finish_result(self, result, original_args):
        # Report the options as given: a URL stays a URL (as ansible.posix does).
        for opt in ("key", "keys"):
            given = original_args.get(opt)
            if is_url(given) or (isinstance(given, list) and any(is_url(k) for k in given)):
                if opt in result:
                    result[opt] = given
                inv = result.get("invocation", {}).get("module_args")
                if isinstance(inv, dict) and opt in inv:
                    inv[opt] = given
        return result
