# Aggregate callback for scripts/upstream-tests.sh: one JSON line per task result (a loop
# item counts once, as its task) into the file named by SSHFLEET_CHECK_LOG, so the checks
# (module calls and asserts) of an upstream integration target can be counted.
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: check_log
type: aggregate
short_description: one JSON line per task result (for counting upstream checks)
description: Writes action, task name, host and status of every task result.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "check_log"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._path = os.environ.get("SSHFLEET_CHECK_LOG")

    def _log(self, result, status):
        if not self._path:
            return
        task = result._task
        res = result._result
        rec = {
            "action": task.action,
            "resolved": getattr(task, "resolved_action", None),
            "task": task.get_name(),
            "path": task.get_path(),
            "host": result._host.get_name(),
            "status": status,
            "ignored": bool(task.ignore_errors) if status == "failed" else False,
            "msg": str(res.get("msg", ""))[:500] if status in ("failed", "unreachable") else "",
        }
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")

    def v2_runner_on_ok(self, result):
        self._log(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._log(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._log(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._log(result, "unreachable")
