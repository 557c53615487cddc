#!/usr/bin/env python3
"""Differential-test oracle: what real ansible-core says about each corpus inventory.

Runs in ONE Python process (ansible's import and startup cost ~1 s, paid once) and drives
ansible-core's own code paths: `ansible-inventory`'s CLI class (argument parsing, its
`_play_prereqs`, `json_inventory`, `_get_host_variables`, `dump`) and the InventoryManager
that `ansible PATTERN --list-hosts` uses (`subset` + `list_hosts`).

Usage: inventory_oracle.py CORPUS_DIR OUT_JSON
Each corpus entry is a directory with a `case.json`:
  {"sources": [...], "patterns": [...], "limits": [...], "hosts": [...], "error": {...}}
Writes {case_name: results} to OUT_JSON.
"""
import io
import json
import os
import sys
import contextlib


def reset_cli_singleton():
    # GlobalCLIArgs and the vault secrets context are process-wide singletons; each simulated
    # CLI run needs fresh ones.
    from ansible.parsing.vault import VaultSecretsContext
    from ansible.utils.context_objects import GlobalCLIArgs
    VaultSecretsContext._current = None
    for attr in list(vars(type(GlobalCLIArgs)).keys()) + list(vars(GlobalCLIArgs).keys()):
        if attr.endswith("__instance"):
            setattr(GlobalCLIArgs, attr, None)


def group_order_ambiguous(inventory):
    """True if some group's host order depends on Python set iteration order.

    Group._walk_relationship iterates each level of descendants as a set; when two or more
    groups of a level contribute new child groups, the resulting host order depends on object
    addresses (it differs between runs). Such orders cannot be compared exactly.
    """
    for group in inventory.groups.values():
        seen = set()
        unprocessed = set(group.child_groups) | {group}
        while unprocessed:
            seen.update(unprocessed)
            contributing = [g for g in unprocessed if any(c not in seen for c in g.child_groups)]
            if len(contributing) > 1:
                return True
            new = set()
            for g in unprocessed:
                new.update(g.child_groups)
            unprocessed = new - seen
    return False


def run_case(case_dir, case):
    from ansible.cli.inventory import InventoryCLI
    from ansible.errors import AnsibleError

    sources = []
    for s in case["sources"]:
        sources.append(s if "," in s else os.path.join(case_dir, s))
    args = ["ansible-inventory"]
    for s in sources:
        args += ["-i", s]
    args.append("--list")

    reset_cli_singleton()
    cli = InventoryCLI(args)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        cli.parse()
        loader, inventory, vm = cli._play_prereqs()
        cli.loader, cli.inventory, cli.vm = loader, inventory, vm
        out = {"processed_sources": [os.path.relpath(p, case_dir) if "," not in p else p
                                     for p in inventory._inventory.processed_sources if p]}
        out["ambiguous_order"] = group_order_ambiguous(inventory)
        if "error" in case:
            # Error cases only need to know whether ansible-core could parse the source.
            out["stderr"] = stderr.getvalue()
            return out

        def lim(limit):
            return None if limit is None else limit.replace("LIMITFILE", os.path.join(case_dir, "limit.txt"))

        def list_json(limit):
            inventory.subset(lim(limit))
            try:
                top = cli._get_group("all")
                return json.loads(cli.dump(cli.json_inventory(top)))
            finally:
                inventory.subset(None)

        out["list"] = {json.dumps(limit): list_json(limit) for limit in [None] + case.get("limits", [])}
        hosts = case.get("hosts")
        if hosts is None:
            hosts = [h.name for h in inventory.get_hosts("all")][:60]
        out["host"] = {}
        for h in hosts:
            found = inventory.get_hosts(h)
            if len(found) != 1:
                out["host"][h] = {"error": "You must pass a single valid host to --host parameter"}
            else:
                out["host"][h] = json.loads(cli.dump(cli._get_host_variables(found[0])))
        patterns = ["all", "*", "ungrouped"] + sorted(inventory.groups.keys()) + case.get("patterns", [])
        seen = set()
        out["select"] = []
        for limit in [None] + case.get("limits", []):
            for p in patterns:
                if (p, limit) in seen:
                    continue
                seen.add((p, limit))
                entry = {"pattern": p, "limit": limit}
                try:
                    inventory.subset(lim(limit))
                    entry["hosts"] = list(inventory.list_hosts(p))
                except AnsibleError as e:
                    entry["error"] = str(e).splitlines()[0]
                finally:
                    inventory.subset(None)
                    inventory.clear_pattern_cache()
                    inventory.clear_caches()
                entry["hosts"] = [getattr(h, "name", h) for h in entry.get("hosts", [])] if "hosts" in entry else None
                out["select"].append(entry)
    out["stderr"] = stderr.getvalue()
    return out


def main():
    corpus, out_path = sys.argv[1], sys.argv[2]
    results = {}
    for name in sorted(os.listdir(corpus)):
        case_dir = os.path.join(corpus, name)
        case_file = os.path.join(case_dir, "case.json")
        if not os.path.isfile(case_file):
            continue
        with open(case_file) as f:
            case = json.load(f)
        try:
            results[name] = run_case(case_dir, case)
        except Exception as e:  # report, do not hide: the Rust side fails on it
            results[name] = {"oracle_error": f"{type(e).__name__}: {e}"}
    with open(out_path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
