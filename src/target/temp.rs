//! Temp file ownership: the names of sshfleet's temp files and the rule that decides when one
//! is litter.
//!
//! **The rule.** Every temp file a writer creates is named
//! `.NAME.sshfleet-BOOT-PID-START-RAND.tmp`, where `BOOT-PID-START` is the identity of the
//! process on *that host* that owns the file for its whole life: the first 8 hex digits of
//! the host's boot id (`/proc/sys/kernel/random/boot_id`), and the pid and start time (clock
//! ticks after boot, field 22 of `/proc/PID/stat`) as `/proc` shows them. For the Ansible
//! modules (`LocalTarget`) that is the module process itself; over SSH (`SshTarget`) it is the
//! remote process serving the SFTP session the file was created through (the shell that
//! `exec`s `sftp-server`, or `flock` around it). That process lives exactly as long as the
//! controller's connection: when the controller dies, sshd closes the session and the server
//! exits, so nothing can touch the file any more.
//!
//! A temp file is **dead** when its owner cannot be running: the boot id differs (the host
//! rebooted), no process has that pid, the process with that pid started at another time (pid
//! reused), or it is a zombie. Only then may it be removed ([`sweep_dead_temps`], run by
//! every write into a directory: `authorized_keys` edits, copy, replicate). A live owner's
//! file is never touched. A name without an owner (written by an sshfleet older than this
//! rule, or on a host without `/proc`) is removed only once it has not been modified for
//! [`UNOWNED_MAX_AGE_SECS`].
//!
//! Parsing and the decision are pure functions; the I/O is the [`Target`]'s
//! (`list_dir`, [`Target::probe_procs`], `remove`).

use std::collections::HashMap;

use super::{TResult, Target};

/// How old (mtime, seconds) an unowned sshfleet temp file must be before a sweep removes it.
pub const UNOWNED_MAX_AGE_SECS: i64 = 24 * 3600;

/// The identity of the process owning a temp file, on the host holding the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// First 8 hex digits of the boot id.
    pub boot: String,
    pub pid: u32,
    /// Start time in clock ticks after boot.
    pub start: u64,
}

impl Owner {
    /// From the host's boot id and the owner's own `/proc/self/stat` line.
    pub fn from_proc(boot_id: &str, self_stat: &str) -> Option<Owner> {
        let p = parse_stat(self_stat)?;
        Some(Owner {
            boot: short_boot(boot_id)?,
            pid: p.pid,
            start: p.start,
        })
    }

    /// This process, read from the local `/proc` (`None` without `/proc`).
    pub fn current() -> Option<Owner> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        Owner::from_proc(&boot, &stat)
    }
}

/// The first 8 hex digits of a boot id (`None` if it is not hex).
pub fn short_boot(boot_id: &str) -> Option<String> {
    let hex: String = boot_id
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .take(8)
        .collect();
    (hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
}

/// The fields of a `/proc/PID/stat` line the rule needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: u32,
    pub state: char,
    pub start: u64,
}

/// Parse a `/proc/PID/stat` line: `PID (COMM) STATE …`, start time is field 22. COMM may hold
/// spaces and parentheses, so the fields after it are found from the last `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let line = line.trim();
    let (head, rest) = line.rsplit_once(')')?;
    let pid = head.split_once(' ')?.0.parse().ok()?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); field 22 is fields[19].
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some(ProcStat { pid, state, start })
}

/// The temp name for a file named `dest_name`: owned (the rule) when the owner is known.
pub fn temp_name(dest_name: &str, owner: Option<&Owner>, rand: u64) -> String {
    match owner {
        Some(o) => format!(
            ".{dest_name}.sshfleet-{}-{}-{}-{:08x}.tmp",
            o.boot,
            o.pid,
            o.start,
            rand & 0xffff_ffff
        ),
        None => format!(".{dest_name}.sshfleet-{rand:016x}.tmp"),
    }
}

/// What a directory entry is, as far as the rule goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TempKind {
    /// Not an sshfleet temp file.
    NotTemp,
    /// An sshfleet temp name without an owner (older versions, hosts without `/proc`).
    Unowned,
    Owned(Owner),
}

/// Classify a directory entry name.
pub fn classify(entry: &str) -> TempKind {
    let Some(body) = entry
        .strip_prefix('.')
        .and_then(|r| r.strip_suffix(".tmp"))
        .and_then(|r| r.rsplit_once(".sshfleet-"))
        .filter(|(name, tail)| !name.is_empty() && !tail.is_empty())
        .map(|(_, tail)| tail)
    else {
        return TempKind::NotTemp;
    };
    let parts: Vec<&str> = body.split('-').collect();
    if let [boot, pid, start, rand] = parts.as_slice()
        && short_boot(boot).as_deref() == Some(*boot)
        && rand.chars().all(|c| c.is_ascii_hexdigit())
        && let (Ok(pid), Ok(start)) = (pid.parse(), start.parse())
    {
        return TempKind::Owned(Owner {
            boot: boot.to_string(),
            pid,
            start,
        });
    }
    if body.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
        TempKind::Unowned
    } else {
        TempKind::NotTemp
    }
}

/// What [`Target::probe_procs`] reports: the host's boot id and the stat line of each asked
/// pid that exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcProbe {
    pub boot: String,
    pub stats: HashMap<u32, String>,
}

/// The rule: can `owner` no longer be running, given what the host says now?
pub fn owner_is_dead(owner: &Owner, probe: &ProcProbe) -> bool {
    match short_boot(&probe.boot) {
        // Without a boot id nothing can be proven.
        None => false,
        Some(b) if b != owner.boot => true,
        Some(_) => match probe.stats.get(&owner.pid).and_then(|s| parse_stat(s)) {
            None => true,
            Some(p) => p.start != owner.start || matches!(p.state, 'Z' | 'X' | 'x'),
        },
    }
}

/// Remove the dead sshfleet temp files in `dir` (see the module doc); returns the names
/// removed. Best effort per file; an unreadable directory is an error.
pub async fn sweep_dead_temps<T: Target + ?Sized>(t: &T, dir: &str) -> TResult<Vec<String>> {
    let entries = t.list_dir(dir).await?;
    let mut owned = Vec::new();
    let mut unowned = Vec::new();
    for e in entries {
        match classify(&e) {
            TempKind::NotTemp => {}
            TempKind::Unowned => unowned.push(e),
            TempKind::Owned(o) => owned.push((e, o)),
        }
    }
    let path = |e: &str| {
        if dir.ends_with('/') {
            format!("{dir}{e}")
        } else {
            format!("{dir}/{e}")
        }
    };
    let mut removed = Vec::new();
    if !owned.is_empty() {
        let mut pids: Vec<u32> = owned.iter().map(|(_, o)| o.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        // A host that cannot answer proves nothing: nothing is removed.
        if let Ok(probe) = t.probe_procs(&pids).await {
            for (e, o) in &owned {
                if owner_is_dead(o, &probe) && t.remove(&path(e)).await.is_ok() {
                    removed.push(e.clone());
                }
            }
        }
    }
    if !unowned.is_empty() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        for e in unowned {
            if let Ok(Some(st)) = t.stat(&path(&e), false).await
                && now - st.mtime > UNOWNED_MAX_AGE_SECS
                && t.remove(&path(&e)).await.is_ok()
            {
                removed.push(e);
            }
        }
    }
    Ok(removed)
}

/// The probe over a shell: prints the boot id, then the stat line of each pid that exists.
/// Used by targets that can run `sh` (the pids are numbers we format, never user input).
pub fn probe_script(pids: &[u32]) -> String {
    let mut s =
        String::from("read -r b < /proc/sys/kernel/random/boot_id && echo \"$b\" || exit 1\n");
    if !pids.is_empty() {
        s.push_str("for p in");
        for p in pids {
            s.push_str(&format!(" {p}"));
        }
        s.push_str("; do read -r l < /proc/$p/stat 2>/dev/null && echo \"$l\"; done; exit 0");
    }
    s
}

/// Parse [`probe_script`]'s output.
pub fn parse_probe(out: &str) -> Option<ProcProbe> {
    let mut lines = out.lines();
    let boot = lines.next()?.trim().to_string();
    short_boot(&boot)?;
    let mut stats = HashMap::new();
    for l in lines {
        if let Some(p) = parse_stat(l) {
            stats.insert(p.pid, l.to_string());
        }
    }
    Some(ProcProbe { boot, stats })
}

/// The local answer to [`Target::probe_procs`], straight from `/proc`.
pub fn probe_local(pids: &[u32]) -> std::io::Result<ProcProbe> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?;
    let mut stats = HashMap::new();
    for p in pids {
        if let Ok(l) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            stats.insert(*p, l.trim().to_string());
        }
    }
    Ok(ProcProbe {
        boot: boot.trim().to_string(),
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (sftp-server) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 2000000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
    const BOOT: &str = "3f2a9c1e-7b4d-4e8a-9f00-0123456789ab";

    fn owner() -> Owner {
        Owner::from_proc(BOOT, STAT).unwrap()
    }

    #[test]
    fn stat_fields_even_with_odd_comm() {
        let p = parse_stat(STAT).unwrap();
        assert_eq!((p.pid, p.state, p.start), (4242, 'S', 987654));
        let odd = STAT.replace("(sftp-server)", "(a) b (c)");
        assert_eq!(parse_stat(&odd).unwrap().start, 987654);
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S 1 2").is_none());
    }

    #[test]
    fn owner_from_proc() {
        assert_eq!(
            owner(),
            Owner {
                boot: "3f2a9c1e".into(),
                pid: 4242,
                start: 987654
            }
        );
        assert!(Owner::from_proc("nothex", STAT).is_none());
        let me = Owner::current().expect("this test runs on Linux");
        assert_eq!(
            me.pid,
            parse_stat(&std::fs::read_to_string("/proc/self/stat").unwrap())
                .unwrap()
                .pid
        );
    }

    #[test]
    fn names_round_trip_through_classify() {
        let n = temp_name("authorized_keys", Some(&owner()), 0x1_dead_beef);
        assert_eq!(
            n,
            ".authorized_keys.sshfleet-3f2a9c1e-4242-987654-deadbeef.tmp"
        );
        assert_eq!(classify(&n), TempKind::Owned(owner()));
        // Names with dots and dashes, and a name that itself contains ".sshfleet-".
        let n = temp_name("a.b-c.sshfleet-x", Some(&owner()), 7);
        assert_eq!(classify(&n), TempKind::Owned(owner()));
        // Older versions' names: unowned.
        assert_eq!(
            classify(".ca.crt.sshfleet-0123456789abcdef.tmp"),
            TempKind::Unowned
        );
        assert_eq!(
            classify(".ca.crt.sshfleet-123-0-0badf00d.tmp"),
            TempKind::Unowned
        );
        assert_eq!(classify(&temp_name("k", None, 5)), TempKind::Unowned);
        for other in [
            "authorized_keys",
            ".ca.crt.bak",
            "ca.crt.sshfleet-1.tmp",
            ".sshfleet-1.tmp",
            ".x.sshfleet-.tmp",
            ".x.sshfleet-zz.tmp",
            ".x.sshfleet-1",
        ] {
            assert_eq!(classify(other), TempKind::NotTemp, "{other}");
        }
    }

    #[test]
    fn the_rule() {
        let o = owner();
        let probe = |boot: &str, stat: Option<String>| ProcProbe {
            boot: boot.into(),
            stats: stat.into_iter().map(|s| (4242, s)).collect(),
        };
        // Same boot, same pid, same start: live.
        assert!(!owner_is_dead(&o, &probe(BOOT, Some(STAT.into()))));
        // No such process: dead.
        assert!(owner_is_dead(&o, &probe(BOOT, None)));
        // Pid reused by a process started later: dead.
        assert!(owner_is_dead(
            &o,
            &probe(BOOT, Some(STAT.replace(" 987654 ", " 987999 ")))
        ));
        // A zombie: dead.
        assert!(owner_is_dead(
            &o,
            &probe(BOOT, Some(STAT.replace(") S ", ") Z ")))
        ));
        // Rebooted: dead even if a process with that pid and start exists.
        assert!(owner_is_dead(
            &o,
            &probe("00000000-7b4d-4e8a-9f00-0123456789ab", Some(STAT.into()))
        ));
        // No boot id: nothing proven.
        assert!(!owner_is_dead(&o, &probe("", None)));
    }

    #[test]
    fn probe_output_parses() {
        let out = format!("{BOOT}\n{STAT}\n");
        let p = parse_probe(&out).unwrap();
        assert_eq!(p.stats.len(), 1);
        assert!(!owner_is_dead(&owner(), &p));
        assert!(parse_probe("sh: cannot open\n").is_none());
        assert!(probe_script(&[1, 2]).contains("for p in 1 2;"));
    }

    #[test]
    fn the_local_probe_sees_this_process_alive() {
        let me = Owner::current().unwrap();
        let p = probe_local(&[me.pid]).unwrap();
        assert!(!owner_is_dead(&me, &p));
        let gone = Owner {
            start: me.start + 1,
            ..me
        };
        assert!(owner_is_dead(&gone, &p));
    }
}
