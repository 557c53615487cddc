//! Would sshd read a key file? `StrictModes` as OpenSSH's `safe_path` (misc.c) decides it,
//! plus whether the account can open it at all (sshd reads key files with the account's
//! uid and groups, `temporarily_use_uid`).
//!
//! Input is what a small script printed on the host ([`parse_stat_report`]): per configured
//! path its `realpath` and the `stat` of the file and of every directory above it up to `/`.
//!
//! `safe_path`: the file must be a regular file owned by root or the account and not group-
//! or other-writable; so must every directory from the file's up to the account's home
//! directory (inclusive) — or up to `/` when the file is not under the home directory.
//!
//! Debian and Ubuntu patch this (`user-group-modes.patch`, `secure_permissions` in
//! `platform.c`): group-writable is fine when the group has exactly one member, the
//! account itself (a user private group: no other account has it as primary group and its
//! member list is empty or just the owner). The rule applied is chosen from the host's
//! OpenSSH version string ([`UserGroups`], `None` for upstream OpenSSH).

/// One `stat` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRec {
    pub path: String,
    pub is_file: bool,
    pub is_dir: bool,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// What the host said about one configured path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathReport {
    /// `realpath` and the stat chain: the file first, then each parent up to `/`; `None`
    /// for a component that could not be stat-ed.
    Found {
        real: String,
        chain: Vec<Result<StatRec, String>>,
    },
    /// It does not exist (its directory could be searched).
    Missing,
    /// Whether it exists could not be seen (a directory on the way is not searchable).
    Unknown,
}

/// Parse the script output: `P path`, then `R real` + `S type|uid|gid|mode|path` / `E path`
/// lines, or `M` (missing) / `U` (unknown). Returns (configured path, report) in order.
pub fn parse_stat_report(text: &str) -> Vec<(String, PathReport)> {
    let mut out: Vec<(String, PathReport)> = Vec::new();
    for line in text.lines() {
        let (tag, rest) = match line.split_once(' ') {
            Some(x) => x,
            None => (line, ""),
        };
        match tag {
            "P" => out.push((rest.to_string(), PathReport::Unknown)),
            "M" => {
                if let Some(l) = out.last_mut() {
                    l.1 = PathReport::Missing
                }
            }
            "R" => {
                if let Some(l) = out.last_mut() {
                    l.1 = PathReport::Found {
                        real: rest.to_string(),
                        chain: vec![],
                    }
                }
            }
            "S" | "E" => {
                if let Some((_, PathReport::Found { chain, .. })) = out.last_mut() {
                    chain.push(if tag == "E" {
                        Err(rest.to_string())
                    } else {
                        parse_stat(rest).ok_or_else(|| rest.to_string())
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// `%F|%u|%g|%a|%n`.
fn parse_stat(s: &str) -> Option<StatRec> {
    let mut f = s.splitn(5, '|');
    let kind = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let gid = f.next()?.parse().ok()?;
    let mode = u32::from_str_radix(f.next()?, 8).ok()?;
    let path = f.next()?.to_string();
    Some(StatRec {
        path,
        is_file: kind.starts_with("regular"),
        is_dir: kind == "directory",
        uid,
        gid,
        mode,
    })
}

/// What Debian's relaxed rule needs: every passwd entry's (name, uid, primary gid) and
/// every group's member list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserGroups {
    pub passwd: Vec<(String, u32, u32)>,
    pub groups: Vec<(u32, Vec<String>)>,
}

impl UserGroups {
    /// Parse `getent group` output (with the passwd entries already read).
    pub fn new(passwd: Vec<(String, u32, u32)>, getent_group: &str) -> UserGroups {
        let groups = getent_group
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                let gid = f.get(2)?.parse().ok()?;
                let members = f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|x| !x.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                Some((gid, members))
            })
            .collect();
        UserGroups { passwd, groups }
    }

    /// Debian's `secure_permissions` for a group-writable `s` checked for `uid`.
    pub fn group_write_ok(&self, s: &StatRec, uid: u32) -> bool {
        let Some((_, members)) = self.groups.iter().find(|(g, _)| *g == s.gid) else {
            return false;
        };
        let mut count = 0;
        for (_, pu, pg) in &self.passwd {
            if *pg == s.gid {
                count += 1;
                if *pu != uid {
                    return false;
                }
            }
        }
        let Some((owner, _, _)) = self.passwd.iter().find(|(_, pu, _)| *pu == s.uid) else {
            return false;
        };
        if let Some(first) = members.first() {
            count += 1;
            if first != owner || members.len() > 1 {
                return false;
            }
        }
        count > 0
    }
}

/// Is this the Debian/Ubuntu OpenSSH (with the user-group-modes patch)? From `ssh -V`.
pub fn is_debian_openssh(version: &str) -> bool {
    version.contains("Debian") || version.contains("Ubuntu")
}

/// The account a file is checked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who<'a> {
    pub uid: u32,
    /// Primary and supplementary groups (`id -G`); empty when unknown (then only the
    /// primary group in `gid` is used).
    pub groups: &'a [u32],
    pub gid: u32,
    /// The home directory's realpath (where `safe_path` stops walking up).
    pub home_real: Option<&'a str>,
    /// Debian's relaxed group rule applies (see the module docs).
    pub user_groups: Option<&'a UserGroups>,
}

/// Why sshd would not use a file, or `Ok` when it would.
pub fn verdict(
    chain: &[Result<StatRec, String>],
    who: &Who<'_>,
    strict_modes: bool,
) -> Result<(), Unusable> {
    let file = match chain.first() {
        Some(Ok(s)) => s,
        Some(Err(p)) => return Err(Unusable::Unknown(format!("cannot stat {p}"))),
        None => return Err(Unusable::Unknown("no stat information".into())),
    };
    if !file.is_file {
        return Err(Unusable::Ignored(format!(
            "{} is not a regular file",
            file.path
        )));
    }
    let owner_ok = |s: &StatRec| s.uid == 0 || s.uid == who.uid;
    let bad_mode = |s: &StatRec| {
        s.mode & 0o002 != 0
            || (s.mode & 0o020 != 0
                && !who
                    .user_groups
                    .is_some_and(|g| g.group_write_ok(s, who.uid)))
    };
    if strict_modes && (!owner_ok(file) || bad_mode(file)) {
        return Err(Unusable::Ignored(format!(
            "StrictModes: bad ownership or modes for file {} (owner uid {}, mode {:04o})",
            file.path, file.uid, file.mode
        )));
    }
    if !can(file, who, 0o4) {
        return Err(Unusable::Ignored(format!(
            "{} is not readable by uid {}",
            file.path, who.uid
        )));
    }
    let mut strict_walk = strict_modes;
    for d in &chain[1..] {
        let d = match d {
            Ok(d) => d,
            Err(p) => return Err(Unusable::Unknown(format!("cannot stat {p}"))),
        };
        if strict_walk && (!owner_ok(d) || bad_mode(d)) {
            return Err(Unusable::Ignored(format!(
                "StrictModes: bad ownership or modes for directory {} (owner uid {}, mode {:04o})",
                d.path, d.uid, d.mode
            )));
        }
        if who.home_real == Some(d.path.as_str()) {
            // safe_path stops at the home directory; searchability still matters above it.
            strict_walk = false;
        }
        if !can(d, who, 0o1) {
            return Err(Unusable::Ignored(format!(
                "directory {} is not searchable by uid {}",
                d.path, who.uid
            )));
        }
    }
    Ok(())
}

/// Permission `bit` (4 read, 1 search) for `who` on `s` (root: always).
fn can(s: &StatRec, who: &Who<'_>, bit: u32) -> bool {
    if who.uid == 0 {
        return true;
    }
    let shift = if s.uid == who.uid {
        6
    } else if s.gid == who.gid || who.groups.contains(&s.gid) {
        3
    } else {
        0
    };
    s.mode & (bit << shift) != 0
}

/// Why a file is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// sshd ignores it (the reason as sshd would log it).
    Ignored(String),
    /// Could not be seen well enough to tell.
    Unknown(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(path: &str, dir: bool, uid: u32, mode: u32) -> Result<StatRec, String> {
        Ok(StatRec {
            path: path.into(),
            is_file: !dir,
            is_dir: dir,
            uid,
            gid: uid,
            mode,
        })
    }

    fn who(uid: u32) -> Who<'static> {
        Who {
            uid,
            groups: &[],
            gid: uid,
            home_real: Some("/home/bob"),
            user_groups: None,
        }
    }

    fn chain(ssh_mode: u32, home_parent_mode: u32) -> Vec<Result<StatRec, String>> {
        vec![
            st("/home/bob/.ssh/authorized_keys", false, 1001, 0o600),
            st("/home/bob/.ssh", true, 1001, ssh_mode),
            st("/home/bob", true, 1001, 0o755),
            st("/home", true, 0, home_parent_mode),
            st("/", true, 0, 0o755),
        ]
    }

    #[test]
    fn safe_path_rules() {
        assert_eq!(verdict(&chain(0o700, 0o755), &who(1001), true), Ok(()));
        // A group-writable ~/.ssh is refused; without StrictModes it is fine.
        let e = verdict(&chain(0o770, 0o755), &who(1001), true).unwrap_err();
        assert!(
            matches!(&e, Unusable::Ignored(m) if m.contains("directory /home/bob/.ssh")),
            "{e:?}"
        );
        assert_eq!(verdict(&chain(0o770, 0o755), &who(1001), false), Ok(()));
        // Above the home directory safe_path does not look (a group-writable /home).
        assert_eq!(verdict(&chain(0o700, 0o775), &who(1001), true), Ok(()));
        // Owned by someone else.
        let mut c = chain(0o700, 0o755);
        c[0] = st("/home/bob/.ssh/authorized_keys", false, 1002, 0o644);
        assert!(verdict(&c, &who(1001), true).is_err());
        // A root-owned file outside the home: every directory up to / counts.
        let c = vec![
            st("/etc/ssh/authorized_keys/bob", false, 0, 0o644),
            st("/etc/ssh/authorized_keys", true, 0, 0o755),
            st("/etc/ssh", true, 0, 0o775),
            st("/etc", true, 0, 0o755),
            st("/", true, 0, 0o755),
        ];
        let e = verdict(&c, &who(1001), true).unwrap_err();
        assert!(
            matches!(&e, Unusable::Ignored(m) if m.contains("/etc/ssh ")),
            "{e:?}"
        );
        // Root-owned 0600: StrictModes is fine with it, but bob cannot read it.
        let c = vec![
            st("/etc/k/bob", false, 0, 0o600),
            st("/etc/k", true, 0, 0o755),
            st("/", true, 0, 0o755),
        ];
        let e = verdict(&c, &who(1001), true).unwrap_err();
        assert!(
            matches!(&e, Unusable::Ignored(m) if m.contains("not readable")),
            "{e:?}"
        );
        assert_eq!(verdict(&c, &who(0), true), Ok(()));
        // A symlinked path reported through its realpath: a directory is not a file.
        let c = vec![st("/home/bob/.ssh/authorized_keys", true, 1001, 0o700)];
        assert!(verdict(&c, &who(1001), true).is_err());
        let c = vec![Err("/x".to_string())];
        assert!(matches!(
            verdict(&c, &who(1001), true),
            Err(Unusable::Unknown(_))
        ));
    }

    #[test]
    fn debian_user_private_groups() {
        let ug = UserGroups::new(
            vec![
                ("bob".into(), 1001, 1001),
                ("ann".into(), 1002, 1002),
                ("eve".into(), 1003, 1002),
            ],
            "bob:x:1001:\nann:x:1002:\nusers:x:100:\nteam:x:200:bob\nwide:x:300:bob,ann\n",
        );
        let dir = |gid| StatRec {
            path: "/home/bob/.ssh".into(),
            is_file: false,
            is_dir: true,
            uid: 1001,
            gid,
            mode: 0o770,
        };
        assert!(ug.group_write_ok(&dir(1001), 1001), "bob's private group");
        assert!(ug.group_write_ok(&dir(200), 1001), "only bob is a member");
        assert!(!ug.group_write_ok(&dir(100), 1001), "no member at all");
        assert!(!ug.group_write_ok(&dir(300), 1001), "two members");
        assert!(
            !ug.group_write_ok(&dir(1002), 1001),
            "another account's group"
        );
        let mut c = chain(0o770, 0o755);
        if let Ok(s) = &mut c[1] {
            s.gid = 1001;
        }
        let w = Who {
            user_groups: Some(&ug),
            ..who(1001)
        };
        assert_eq!(verdict(&c, &w, true), Ok(()));
        assert!(verdict(&c, &who(1001), true).is_err(), "upstream refuses");
        // Other-writable is never fine.
        let c = chain(0o777, 0o755);
        assert!(verdict(&c, &w, true).is_err());
        assert!(is_debian_openssh(
            "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19"
        ));
        assert!(!is_debian_openssh("OpenSSH_9.8p1, LibreSSL 3.3.6"));
    }

    #[test]
    fn parses_the_script_output() {
        let text = "P /home/bob/.ssh/authorized_keys\nR /home/bob/.ssh/authorized_keys\nS regular file|1001|1001|600|/home/bob/.ssh/authorized_keys\nS directory|1001|1001|700|/home/bob/.ssh\nE /home/bob\nP /home/bob/.ssh/authorized_keys2\nM /home/bob/.ssh/authorized_keys2\nP /x/y\nU /x/y\n";
        let r = parse_stat_report(text);
        assert_eq!(r.len(), 3);
        match &r[0].1 {
            PathReport::Found { real, chain } => {
                assert_eq!(real, "/home/bob/.ssh/authorized_keys");
                assert_eq!(chain.len(), 3);
                assert_eq!(chain[0].as_ref().unwrap().mode, 0o600);
                assert!(chain[1].as_ref().unwrap().is_dir);
                assert!(chain[2].is_err());
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(r[1].1, PathReport::Missing);
        assert_eq!(r[2], ("/x/y".to_string(), PathReport::Unknown));
    }
}
