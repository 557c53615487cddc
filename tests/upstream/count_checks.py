"""Count an upstream integration target's checks from the check_log callback's records.

Usage: count_checks.py CHECKS.jsonl PLAYBOOK_RC [MODULE ...]

A check is one task result; passed = ok or changed; an `ignore_errors` task that failed is an
expected failure. Each other failure goes to stderr as "FAILED: task [action] path: msg"; the
summary line "upstream-checks: key=value ..." goes to stdout. With MODULE names, also count
the passed checks whose (resolved) action is one of them, as `NAME_and_..._passed`.
"""
import json
import sys

log, rc, modules = sys.argv[1], sys.argv[2], sys.argv[3:]
recs = [json.loads(l) for l in open(log) if l.strip()]
ran = [r for r in recs if r["status"] != "skipped"]
passed = [r for r in ran if r["status"] in ("ok", "changed")]
expected = [r for r in ran if r["status"] == "failed" and r["ignored"]]
bad = [r for r in ran if r not in passed and r not in expected]
for r in bad:
    print("FAILED: %s [%s] %s: %s" % (r["task"], r["action"], r.get("path", ""), r["msg"]),
          file=sys.stderr)
fields = [("passed", len(passed)), ("failed", len(bad)), ("expected_failures", len(expected)),
          ("skipped", len(recs) - len(ran)), ("total", len(recs))]
if modules:
    core = [r for r in passed if (r.get("resolved") or r["action"]).split(".")[-1] in modules]
    fields.append(("_and_".join(modules) + "_passed", len(core)))
fields.append(("playbook_rc", rc))
print("upstream-checks: " + " ".join("%s=%s" % kv for kv in fields))
