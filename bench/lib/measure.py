"""Run one benchmark command and measure it: wall time, controller CPU, sshd-side CPU, peak RSS.

- Wall time: monotonic clock from spawn to the command's exit.
- Controller CPU (user + sys, children included): this process is a child subreaper
  (PR_SET_CHILD_SUBREAPER), so every descendant of the command ends up being reaped here,
  including daemons it leaves behind (Ansible's ControlPersist ssh masters, which do the SSH
  crypto for Ansible). Controller CPU = delta of getrusage(RUSAGE_CHILDREN) across the command
  and the reaping of everything it left behind (left-overs are sent SIGTERM by PID).
- sshd-side CPU: every fleet host's sshd is PID 1 of its own PID namespace and reaps all of its
  session processes, so utime+stime+cutime+cstime in /proc/PID/stat of the sshds covers every
  login. Read before, and after every sshd has no children left (all sessions reaped).
- Peak RSS: GNU time's %M (ru_maxrss of the command as seen from /usr/bin/time) = the largest
  single process of its tree (for sshfleet: the sshfleet process). Not wait4() here: a child
  forked from this Python process keeps Python's RSS high-water mark across exec. Also the peak of the summed RSS of every live
  descendant, sampled at 4 Hz (shared pages counted once per process, so an upper bound).
"""

import ctypes
import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

PR_SET_CHILD_SUBREAPER = 36
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


@dataclass
class Sample:
    """One measured run of one contender."""

    name: str
    wall: float = 0.0  # s
    cpu_user: float = 0.0  # s, controller, children included
    cpu_sys: float = 0.0
    sshd_cpu: float = 0.0  # s, all fleet sshds and their sessions
    maxrss_kib: int = 0  # largest single process (ru_maxrss)
    tree_rss_kib: int = 0  # peak of summed RSS of the process tree (sampled)
    rc: int = 0
    leftovers: int = 0  # processes left running by the command and stopped by us
    extra: dict = field(default_factory=dict)

    @property
    def cpu(self):
        return self.cpu_user + self.cpu_sys


def children_of(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def descendants(pid):
    seen, stack = [], children_of(pid)
    while stack:
        p = stack.pop()
        seen.append(p)
        stack.extend(children_of(p))
    return seen


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE // 1024
    except (OSError, IndexError, ValueError):
        return 0


def proc_cpu(pid):
    """utime+stime+cutime+cstime of PID in seconds (0 when gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0.0
    fields = s[s.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14 -> index 11.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


class Sshds:
    """The fleet's sshd PIDs: CPU totals and waiting for their sessions to end."""

    def __init__(self, pids):
        self.pids = list(pids)

    def cpu(self):
        return sum(proc_cpu(p) for p in self.pids)

    def wait_idle(self, timeout=30.0):
        """Wait until no sshd has a child (every session finished and reaped)."""
        end = time.monotonic() + timeout
        while True:
            busy = [p for p in self.pids if children_of(p)]
            if not busy:
                return True
            if time.monotonic() > end:
                return False
            time.sleep(0.05)


class RssSampler(threading.Thread):
    def __init__(self, root_pid, interval=0.25):
        super().__init__(daemon=True)
        self.root = root_pid
        self.interval = interval
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            total = sum(rss_kib(p) for p in descendants(self.root))
            self.peak = max(self.peak, total)
            self.stop.wait(self.interval)


def _rusage_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime, r.ru_stime


def is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return s[s.rindex(")") + 2] in "ZX"
    except (OSError, ValueError, IndexError):
        return True


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def reap_leftovers(grace=5.0, seen=None):
    """SIGTERM (then SIGKILL) every process reparented to us, by PID, and reap it.
    Returns how many there were; their command lines go to `seen` (a list) when given."""
    me = os.getpid()
    n = 0
    left = sorted(set(children_of(me)))
    for p in left:
        if is_zombie(p):
            continue  # already exited; reaped below
        if seen is not None:
            seen.append(cmdline(p))
        try:
            os.kill(p, signal.SIGTERM)
            n += 1
        except ProcessLookupError:
            pass
    end = time.monotonic() + grace
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > end:
                for p in children_of(me):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                end = time.monotonic() + grace
            time.sleep(0.02)
    return n


TIME = "/usr/bin/time"


def read_maxrss(path):
    """The %M (KiB) GNU time wrote (its last line; earlier lines report a failure status)."""
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        os.unlink(path)
        return int(lines[-1])
    except (OSError, ValueError, IndexError):
        return 0


class Aborted(Exception):
    pass


_current = {"pid": None}


def kill_current():
    """Stop the running command's process group and everything left behind (signal handler)."""
    pid = _current["pid"]
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    reap_leftovers(grace=2.0)


def run(name, argv, *, env=None, cwd=None, sshds=None, log_path=None, timeout=1800, stdin=None):
    """Run argv to completion and return a Sample. The command's output goes to log_path."""
    reap_leftovers()  # start clean: nothing of a previous command may be counted here
    if sshds:
        sshds.wait_idle()
    u0, s0 = _rusage_children()
    d0 = sshds.cpu() if sshds else 0.0
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    rss_file = f"{log_path or '/tmp/bench'}.maxrss"
    try:
        t0 = time.monotonic()
        # GNU time reports the peak RSS of the command: a process forked from this (large)
        # Python process would carry Python's RSS high-water mark into ru_maxrss across exec.
        p = subprocess.Popen(
            [TIME, "-f", "%M", "-o", str(rss_file), *argv],
            env=env,
            cwd=cwd,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: a timeout stops all of it by PGID
        )
        _current["pid"] = p.pid
        sampler = RssSampler(os.getpid())
        sampler.start()
        timed_out = threading.Event()

        def on_timeout():
            timed_out.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, on_timeout)
        timer.daemon = True
        timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        timer.cancel()
        if timed_out.is_set():
            _current["pid"] = None
            sampler.stop.set()
            reap_leftovers(grace=2.0)
            raise Aborted(f"{name}: timed out after {timeout} s (see {log_path})")
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
        _current["pid"] = None
        left_cmds = []
        left = reap_leftovers(seen=left_cmds)
        sampler.stop.set()
        sampler.join()
    finally:
        if log_path:
            out.close()
    u1, s1 = _rusage_children()
    if sshds:
        if not sshds.wait_idle():
            raise Aborted(f"{name}: sshd sessions still open 30 s after the command ended")
    d1 = sshds.cpu() if sshds else 0.0
    return Sample(
        name=name,
        wall=wall,
        cpu_user=u1 - u0,
        cpu_sys=s1 - s0,
        sshd_cpu=d1 - d0,
        maxrss_kib=read_maxrss(rss_file),
        tree_rss_kib=max(sampler.peak, 0),
        rc=os.waitstatus_to_exitcode(status),
        leftovers=left,
        extra={"leftover_cmds": left_cmds[:5]},
    )
