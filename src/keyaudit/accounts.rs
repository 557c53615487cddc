//! Which accounts can log in: `getent passwd` entries with a usable shell, and their lock
//! state from `getent shadow` when it could be read (root only).
//!
//! The rules are sshd's (`allowed_user` in auth.c): an empty shell means `/bin/sh`; an
//! account whose password field starts with `!` is locked and refused every method,
//! public keys included, when `UsePAM no` (with `UsePAM yes` PAM's account stack decides).
//! sshd itself lets a `nologin`/`false` shell authenticate (its session then ends at once,
//! though `ssh -N` forwarding may still work); the audit skips such accounts, as the
//! account list of people who "can log in".

use crate::target::UserInfo;

/// Shells that mean "no interactive login".
const NO_LOGIN: &[&str] = &["nologin", "false"];

/// Does `shell` give a login? (An empty shell is `/bin/sh` for sshd.)
pub fn usable_shell(shell: &str) -> bool {
    let base = shell.rsplit('/').next().unwrap_or(shell);
    shell.is_empty() || !NO_LOGIN.contains(&base)
}

/// Parse `getent passwd` output. Malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<UserInfo> {
    text.lines()
        .filter_map(UserInfo::from_passwd_line)
        .collect()
}

/// Lock state per user from `getent shadow` output: `(name, locked)`, locked when the
/// password field starts with `!` (OpenSSH's `LOCKED_PASSWD_PREFIX` on Linux).
pub fn parse_shadow_locks(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let pw = f.next()?;
            (!name.is_empty()).then(|| (name.to_string(), pw.starts_with('!')))
        })
        .collect()
}

/// The accounts that can log in, in passwd order (a name listed twice counts once, first
/// entry, as `getpwnam` answers).
pub fn login_accounts(all: &[UserInfo]) -> Vec<UserInfo> {
    let mut out: Vec<UserInfo> = Vec::new();
    for u in all {
        if usable_shell(&u.shell) && !out.iter().any(|o| o.name == u.name) {
            out.push(u.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells() {
        assert!(usable_shell("/bin/bash"));
        assert!(usable_shell(""));
        assert!(usable_shell("/bin/sync"));
        assert!(!usable_shell("/usr/sbin/nologin"));
        assert!(!usable_shell("/bin/false"));
    }

    #[test]
    fn passwd_and_shadow() {
        let p = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\nbad line\nbob:x:1001:1001:,,,:/home/bob:\nroot:x:0:0::/other:/bin/sh\n",
        );
        assert_eq!(p.len(), 4);
        let l = login_accounts(&p);
        let names: Vec<_> = l.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["root", "bob"]);
        assert_eq!(l[0].home, "/root");
        assert_eq!(l[1].uid, 1001);
        let s =
            parse_shadow_locks("root:!:19000::::::\nbob:$6$x:1::::::\nc:*:1::::::\nd:!!:1::::::\n");
        assert_eq!(
            s,
            [
                ("root".to_string(), true),
                ("bob".to_string(), false),
                ("c".to_string(), false),
                ("d".to_string(), true)
            ]
        );
    }
}
