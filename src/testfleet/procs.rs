//! Process and namespace inspection through `/proc`: which processes live in a namespace,
//! a process's children, and which mounts mention a path. Used by teardown (to stop exactly
//! what a fleet started, by PID and namespace, never by name) and by tests that assert
//! nothing is left behind.

use std::path::Path;

/// The kind of a Linux namespace as named under `/proc/PID/ns/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsKind {
    Mnt,
    Pid,
    Net,
}

impl NsKind {
    fn file(self) -> &'static str {
        match self {
            NsKind::Mnt => "mnt",
            NsKind::Pid => "pid",
            NsKind::Net => "net",
        }
    }
}

/// The inode number identifying `pid`'s namespace of `kind` (`readlink /proc/PID/ns/mnt` is
/// `mnt:[INODE]`), or `None` when the process is gone.
pub fn ns_inode(pid: u32, kind: NsKind) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{}", kind.file())).ok()?;
    parse_ns_link(link.to_str()?)
}

/// Whether `pid` has made a PID namespace for its children that it is not in itself: an
/// `unshare --pid` between its `unshare(2)` and its fork, i.e. a host being *started*. Its
/// mount namespace is new, and its inode may be one a stopped host just freed (the kernel
/// reuses them at once), so a sweep of that stopped host's mount namespace must spare it.
pub fn is_starting_pid_ns(pid: u32) -> bool {
    let link = |f: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{f}"))
            .ok()
            .and_then(|l| parse_ns_link(l.to_str()?))
    };
    matches!((link("pid"), link("pid_for_children")), (Some(a), Some(b)) if a != b)
}

/// Parse `mnt:[4026531841]` into `4026531841`.
pub fn parse_ns_link(link: &str) -> Option<u64> {
    let start = link.find('[')?;
    let end = link.rfind(']')?;
    link.get(start + 1..end)?.parse().ok()
}

/// Every PID currently visible in `/proc`.
pub fn all_pids() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// PIDs of all processes whose namespace of `kind` has inode `inode`.
pub fn pids_in_ns(kind: NsKind, inode: u64) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| ns_inode(pid, kind) == Some(inode))
        .collect()
}

/// Like [`pids_in_ns`], but only processes started before `ticks` (see [`now_ticks`]).
///
/// Namespace inode numbers are reused as soon as a namespace is freed, so after a host is
/// gone its inode may already name another fleet's namespace (another test process). A
/// process that existed before teardown began cannot belong to such a newcomer.
pub fn pids_in_ns_started_before(kind: NsKind, inode: u64, ticks: u64) -> Vec<u32> {
    pids_in_ns(kind, inode)
        .into_iter()
        .filter(|&pid| start_ticks(pid).is_some_and(|t| t < ticks))
        .collect()
}

/// When `pid` started, in clock ticks since boot (field 22 of `/proc/PID/stat`).
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start(&stat)
}

/// Field 22 (`starttime`) of a `/proc/PID/stat` line.
pub fn parse_stat_start(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Now, in the clock ticks since boot that `/proc/PID/stat` uses (rounded down: a process
/// with a start time below this value surely started before the call).
pub fn now_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let up: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    (up * hz).floor() as u64
}

/// Direct children of `pid` (from `/proc/PID/task/*/children`).
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|w| w.parse::<u32>().ok()));
        }
    }
    out
}

/// Whether a process with this PID exists (zombies count as existing).
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether a process is a zombie (exited, not yet reaped).
pub fn is_zombie(pid: u32) -> bool {
    state(pid) == Some('Z')
}

/// The state letter of `pid` (`R`, `S`, `T`, `Z`, ...), None when it is gone.
pub fn state(pid: u32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat_state(&s))
}

/// Is `pid` stopped by a signal (state `T`)?
pub fn is_stopped(pid: u32) -> bool {
    state(pid) == Some('T')
}

/// The state letter of a `/proc/PID/stat` line (the field after the parenthesised command).
pub fn parse_stat_state(stat: &str) -> Option<char> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

/// `(pid, line)` for every line of every readable `/proc/*/mountinfo` that mentions `needle`
/// (a path prefix such as the fleet directory).
pub fn mounts_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for pid in all_pids() {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) {
            out.extend(
                s.lines()
                    .filter(|l| l.contains(needle))
                    .map(|l| (pid, l.to_string())),
            );
        }
    }
    out
}

/// Send `sig` to `pid`. Errors (the process is already gone) are ignored.
pub fn signal(pid: u32, sig: i32) {
    if pid > 1 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}

/// Reap `child`, a process we started: wait for it to exit until `deadline`, then SIGKILL it
/// (by its own handle, so by PID) and wait.
pub fn reap_by(child: &mut std::process::Child, deadline: std::time::Instant) {
    loop {
        match child.try_wait() {
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_link_parses() {
        assert_eq!(parse_ns_link("mnt:[4026531841]"), Some(4026531841));
        assert_eq!(parse_ns_link("pid:[1]"), Some(1));
        assert_eq!(parse_ns_link("garbage"), None);
    }

    #[test]
    fn stat_state_skips_command_with_parens() {
        assert_eq!(parse_stat_state("42 (a) b) (c) S 1 2 3"), Some('S'));
        assert_eq!(parse_stat_state("7 (sshd) Z 1"), Some('Z'));
        assert_eq!(parse_stat_state("nonsense"), None);
    }

    #[test]
    fn stat_start_time_is_field_22() {
        let line = "42 (a b) S 1 42 42 0 -1 4194560 111 0 0 0 0 0 0 0 20 0 1 0 120525 3031040 405";
        assert_eq!(parse_stat_start(line), Some(120525));
    }

    #[test]
    fn own_start_is_before_now() {
        let me = std::process::id();
        assert!(start_ticks(me).unwrap() <= now_ticks());
    }

    #[test]
    fn own_process_is_visible() {
        let me = std::process::id();
        assert!(exists(me));
        assert!(!is_zombie(me));
        let mnt = ns_inode(me, NsKind::Mnt).expect("own mnt ns");
        assert!(pids_in_ns(NsKind::Mnt, mnt).contains(&me));
    }
}
