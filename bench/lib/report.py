"""Medians, ratios, targets (issue 8) and bench/RESULTS.md."""

import os
import platform
import re
import statistics
import subprocess
import time
from dataclasses import dataclass, field


@dataclass
class Scenario:
    """One benchmark scenario: its contenders' samples and what could not run."""

    key: str
    title: str
    contenders: list  # names, display order
    samples: dict = field(default_factory=dict)  # name -> [Sample]
    unavailable: dict = field(default_factory=dict)  # name -> reason
    notes: list = field(default_factory=list)
    per_host_connections: int = 1  # SSH connections sshfleet needs per host (CPU target)
    # For --profile: (prepare(), argv, check()) to rerun sshfleet once under perf.
    profile_job: tuple = None
    hosts: int = 0
    wall_only: bool = False  # only wall times are known (e.g. bench/inventory.sh)

    def med(self, name, attr):
        s = self.samples.get(name) or []
        if not s:
            return None
        return statistics.median(getattr(x, attr) for x in s)


def fmt_s(v):
    if v is None:
        return "n/a"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def fmt_mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_x(v):
    return "n/a" if v is None else f"{v:.2f}×"


def sh(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


def machine():
    mem = "?"
    cpu = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "os": sh(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
    }


def versions(sshfleet, venv):
    return {
        "sshfleet": sh([sshfleet, "--version"]),
        "OpenSSH": sh(["ssh", "-V"]),
        "ansible-core": sh([f"{venv}/bin/ansible", "--version"]).splitlines()[0],
        "ansible.posix": sh(
            [f"{venv}/bin/python", "-c",
             "import json, os, ansible_collections.ansible.posix as p; "
             "print(json.load(open(os.path.join(list(p.__path__)[0], 'MANIFEST.json')))"
             "['collection_info']['version'])"]
        ),
        "python": sh([f"{venv}/bin/python", "--version"]),
        "rustc": sh(["rustc", "--version"]),
    }


# ---- targets (issue 8, stated at N = 100) -------------------------------------------------


def targets(scen):
    """[(scenario, target text, measured value text, met: bool|None, detail)]"""
    rows = []
    r = scen.get("rotation")
    if r:
        a, s, f = (r.med(n, "wall") for n in ("ansible", "sshfleet", "floor"))
        sp = ratio(a, s)
        rows.append(("rotation", "≥ 20× faster than Ansible (pipelined)", sp, lambda v: v >= 20, "×"))
        rows.append(("rotation", "≤ 1.2× the OpenSSH floor", ratio(s, f), lambda v: v <= 1.2, "×"))
        cpu = r.med("sshfleet", "cpu")
        per = None if cpu is None or not r.hosts else cpu * 1000 / (r.hosts * r.per_host_connections)
        rows.append(("rotation", "controller CPU ≤ 5 ms per host per connection", per, lambda v: v <= 5, " ms"))
        rss = r.med("sshfleet", "maxrss_kib")
        rows.append(("rotation", "peak RSS ≤ 64 MiB (100-host rotation)",
                     None if rss is None else rss / 1024, lambda v: v <= 64, " MiB"))
    r = scen.get("replication")
    if r:
        a, s, f = (r.med(n, "wall") for n in ("ansible", "sshfleet", "floor"))
        rows.append(("replication", "≥ 50× faster than Ansible", ratio(a, s), lambda v: v >= 50, "×"))
        rows.append(("replication", "≤ 1.5× its floor", ratio(s, f), lambda v: v <= 1.5, "×"))
        cpu = r.med("sshfleet", "cpu")
        per = None if cpu is None or not r.hosts else cpu * 1000 / (r.hosts * r.per_host_connections)
        rows.append(("replication", "controller CPU ≤ 5 ms per host per connection", per, lambda v: v <= 5, " ms"))
    r = scen.get("inventory")
    if r:
        a, s = r.med("ansible-inventory", "wall"), r.med("sshfleet", "wall")
        rows.append(("inventory", "≥ 20× faster than ansible-inventory --list", ratio(a, s), lambda v: v >= 20, "×"))
        rows.append(("inventory", "10,000 hosts listed in < 100 ms (issue 3)",
                     None if s is None else s * 1000, lambda v: v < 100, " ms"))
    r = scen.get("bastion")
    if r:
        s, f = (r.med(n, "wall") for n in ("sshfleet", "floor"))
        rows.append(("bastion", "≤ 0.5× the OpenSSH floor (ssh -J, one bastion connection per login)",
                     ratio(s, f), lambda v: v <= 0.5, "×"))
    r = scen.get("rss")
    if r and "1 GiB" in r.title:
        rss = r.med("sshfleet", "maxrss_kib")
        rows.append(("rss", "peak RSS ≤ 128 MiB replicating 1 GiB to 20 hosts",
                     None if rss is None else rss / 1024, lambda v: v <= 128, " MiB"))
    r = scen.get("modules")
    if r:
        a, s = r.med("ansible", "wall"), r.med("sshfleet", "wall")
        rows.append(("modules", "≥ 1.3× faster wall than ansible.posix.authorized_key (pipelined)", ratio(a, s),
                     lambda v: v >= 1.3, "×"))
        rows.append(("modules", "controller CPU ≤ 1.0× ansible.posix.authorized_key's",
                     ratio(r.med("sshfleet", "cpu"), r.med("ansible", "cpu")), lambda v: v <= 1.0, "×"))
    out = []
    for sc, text, v, ok, unit in rows:
        if v is None:
            out.append((sc, text, "not available", None, ""))
            continue
        val = f"{v:.2f}{unit}" if unit.strip() != "ms" else f"{v:.1f}{unit}"
        met = bool(ok(v))
        gap = ""
        if not met:
            # The bound is the number in the target text; say how far off, relative to it.
            bound = float(re.search(r"[≥≤<] ?([\d.]+)", text).group(1))
            gap = f"by {abs(v - bound) / bound * 100:.0f} %"
        out.append((sc, text, val, met, gap))
    return out


def verdict(met, gap):
    return "n/a" if met is None else ("met" if met else f"MISSED {gap}")


# ---- console table -------------------------------------------------------------------------


def median_rows(sc):
    rows = []
    for n in sc.contenders:
        if n in sc.unavailable:
            rows.append([n, "not available: " + sc.unavailable[n], "", "", "", "", ""])
            continue
        if not sc.samples.get(n):
            continue
        if sc.wall_only:
            rows.append([n, fmt_s(sc.med(n, "wall")), "n/a", "n/a", "n/a", "n/a", str(len(sc.samples[n]))])
            continue
        rows.append([
            n,
            fmt_s(sc.med(n, "wall")),
            fmt_s(sc.med(n, "cpu")),
            fmt_s(sc.med(n, "sshd_cpu")),
            fmt_mib(sc.med(n, "maxrss_kib")),
            fmt_mib(sc.med(n, "tree_rss_kib")),
            str(len(sc.samples[n])),
        ])
    return rows


HEAD = ["contender", "wall", "controller CPU", "sshd CPU", "peak RSS (largest proc)", "peak RSS (tree, sampled)", "runs"]


def ratio_lines(sc):
    out = []
    s = sc.med("sshfleet", "wall")
    for other in sc.contenders:
        if other == "sshfleet" or not sc.samples.get(other) or s is None:
            continue
        o = sc.med(other, "wall")
        if other.startswith("floor"):
            out.append(f"sshfleet / {other} (wall): {fmt_x(ratio(s, o))}")
        else:
            if sc.wall_only:
                out.append(f"speedup {other} / sshfleet (wall): {fmt_x(ratio(o, s))}")
                continue
            out.append(f"speedup {other} / sshfleet (wall): {fmt_x(ratio(o, s))}; "
                       f"controller CPU {fmt_x(ratio(sc.med(other, 'cpu'), sc.med('sshfleet', 'cpu')))}; "
                       f"sshd CPU {fmt_x(ratio(sc.med(other, 'sshd_cpu'), sc.med('sshfleet', 'sshd_cpu')))}")
    return out


def cpu_split_lines(sc):
    """Where sshfleet's wall time goes in CPU terms: controller vs sshd CPU against the machine's
    capacity (wall × nproc), and sshd CPU compared with the floor's."""
    if sc.wall_only or not sc.samples.get("sshfleet"):
        return []
    w, c, d = (sc.med("sshfleet", k) for k in ("wall", "cpu", "sshd_cpu"))
    cap = w * (os.cpu_count() or 1)
    out = [f"CPU split, sshfleet (medians): controller {fmt_s(c)} + sshd {fmt_s(d)} = "
           f"{(c + d) / cap * 100:.0f} % of the machine's {os.cpu_count()} cores over its {fmt_s(w)} wall"]
    fd = sc.med("floor", "sshd_cpu")
    fc = sc.med("floor", "cpu")
    if fd:
        out.append(f"sshd CPU sshfleet / floor: {fmt_x(ratio(d, fd))} ({fmt_s(d)} vs {fmt_s(fd)}); "
                   f"controller CPU sshfleet / floor: {fmt_x(ratio(c, fc))} ({fmt_s(c)} vs {fmt_s(fc)})")
    return out


def text_table(head, rows):
    w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip()
    return "\n".join([line(head), line(["-" * x for x in w])] + [line(r) for r in rows])


def console(scen):
    out = []
    for sc in scen.values():
        out.append(f"\n== {sc.title}")
        out.append(text_table(HEAD, median_rows(sc)))
        out.extend("   " + l for l in ratio_lines(sc) + cpu_split_lines(sc))
    t = targets(scen)
    if t:
        out.append("\n== targets (issue 8; stated at N = 100)")
        out.append(text_table(["scenario", "target", "measured", "result"],
                              [[a, b, c, verdict(d, g)] for a, b, c, d, g in t]))
    return "\n".join(out)


# ---- RESULTS.md ------------------------------------------------------------------------------


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def results_md(scen, *, args, mach, vers, method_notes, profile_md, started, duration):
    o = []
    o.append("# sshfleet benchmark results")
    o.append("")
    o.append(f"Generated by `bench/run.sh {args}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} "
             f"(took {duration / 60:.1f} min). Do not edit by hand: rerun the driver.")
    o.append("")
    o.append("## Machine and versions")
    o.append("")
    o.append(md_table(["", ""], [[k, f"`{v}`"] for k, v in {**mach, **vers}.items()]))
    o.append("")
    t = targets(scen)
    if t:
        o.append("## Targets (issue 8)")
        o.append("")
        o.append("Targets are stated at N = 100 hosts; this run's N is given per scenario below.")
        o.append("")
        o.append(md_table(["scenario", "target", "measured (median)", "result"],
                          [[a, b, c, "n/a" if d is None else ("**met**" if d else f"**MISSED** {g}")]
                           for a, b, c, d, g in t]))
        o.append("")
        o.append("Where a target is missed, the scenario's CPU split below and the perf profile in "
                 "\"Where the time goes\" (with `--profile`) show where the time goes. On this machine the "
                 "fleet's sshds and the controller share the same cores, so wall time ≈ (controller CPU + "
                 "sshd CPU) / cores once a run is CPU-bound.")
        o.append("")
    o.append("## Medians")
    for sc in scen.values():
        o.append("")
        o.append(f"### {sc.title}")
        o.append("")
        o.append(md_table(HEAD, median_rows(sc)))
        o.append("")
        for l in ratio_lines(sc) + cpu_split_lines(sc):
            o.append(f"- {l}")
        for n in sc.notes:
            o.append(f"- {n}")
    o.append("")
    o.append("## How it is measured")
    o.append("")
    o.extend(f"- {n}" for n in method_notes)
    if profile_md:
        o.append("")
        o.append("## Where the time goes")
        o.append("")
        o.append(profile_md)
    o.append("")
    o.append("## Raw numbers (every run, in the order run)")
    for sc in scen.values():
        o.append("")
        o.append(f"### {sc.title}")
        o.append("")
        rows = []
        allsamples = sorted(
            (x for n in sc.contenders for x in sc.samples.get(n, [])), key=lambda x: x.extra.get("seq", 0)
        )
        for x in allsamples:
            if sc.wall_only:
                rows.append([x.extra.get("run", ""), x.name, f"{x.wall:.3f}", "n/a", "n/a", "n/a", "n/a", "n/a", "",
                             x.extra.get("note", "")])
                continue
            rows.append([
                x.extra.get("run", ""), x.name, f"{x.wall:.3f}", f"{x.cpu_user:.3f}", f"{x.cpu_sys:.3f}",
                f"{x.sshd_cpu:.2f}", f"{x.maxrss_kib / 1024:.1f}", f"{x.tree_rss_kib / 1024:.1f}", x.leftovers,
                x.extra.get("note", ""),
            ])
        o.append(md_table(["run", "contender", "wall s", "ctl user s", "ctl sys s", "sshd CPU s",
                           "maxrss MiB", "tree RSS MiB", "left-over procs", "note"], rows))
    o.append("")
    return "\n".join(o)


_ansi = re.compile(r"\x1b\[[0-9;]*m")


def tail(path, n=25):
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return ""
    return "\n".join(_ansi.sub("", l) for l in lines[-n:])
