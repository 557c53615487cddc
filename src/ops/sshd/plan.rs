//! Planning a change of sshd's configuration (pure): where a set of directives goes, and how
//! the list of `HostKey`s sshd serves is changed.
//!
//! **Where.** When the main `sshd_config` includes a drop-in directory (Debian's stock
//! `Include /etc/ssh/sshd_config.d/*.conf`), our directives go into a drop-in of our own,
//! `DIR/sshfleet-NAME.conf`; removing them removes that file. Otherwise they go into the main
//! file as a block between `# BEGIN sshfleet NAME` and `# END sshfleet NAME`, placed before
//! the first `Match` line (global scope). Only cumulative keywords (`HostKey`,
//! `HostCertificate`) should be set this way: for first-value-wins keywords an earlier line
//! elsewhere would win.
//!
//! **Host keys.** `HostKey` lines accumulate, and the first one makes sshd drop its default
//! keys. On Debian's stock config every `HostKey` line is commented out, so sshd serves the
//! default keys that exist; adding one line would switch the others off. So when no file
//! lists host keys (the defaults are in use), the wanted list is written in full, in order
//! (the keys in use today first, from `sshd -T`), into our block; going back to the defaults
//! removes the block. When some file already lists them, that file's `HostKey` lines are
//! replaced by the wanted list, in place of the first one (two files listing host keys is
//! refused as ambiguous).

use super::SshdError;
use super::change::{Change, FileOp};
use super::config;
use super::facts::{MAIN_CONFIG, SshdFacts};

/// The drop-in directory the main config includes (`DIR` of an `Include DIR/*.conf` or
/// `DIR/*`), when a file named `sshfleet-NAME.conf` there would be read.
pub fn dropin_path(facts: &SshdFacts, name: &str) -> Option<String> {
    config::include_patterns(&facts.main)
        .into_iter()
        .find_map(|pat| {
            let (dir, _) = pat.rsplit_once('/')?;
            let path = format!("{dir}/sshfleet-{name}.conf");
            (!dir.contains(['*', '?', '[']) && config::glob_match(&pat, &path)).then_some(path)
        })
}

fn begin(name: &str) -> String {
    format!("# BEGIN sshfleet {name}")
}
fn end(name: &str) -> String {
    format!("# END sshfleet {name}")
}

/// The main config without our block `name` (and where it was: line index).
fn strip_block(text: &str, name: &str) -> (Vec<String>, Option<usize>) {
    let (b, e) = (begin(name), end(name));
    let mut out = Vec::new();
    let mut at = None;
    let mut inside = false;
    for l in text.lines() {
        if l.trim() == b {
            inside = true;
            at.get_or_insert(out.len());
            continue;
        }
        if inside {
            if l.trim() == e {
                inside = false;
            }
            continue;
        }
        out.push(l.to_string());
    }
    (out, at)
}

fn join(lines: &[String]) -> String {
    let mut s = lines.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Set our directives `name` to `lines` (empty: remove them). No change when they are already
/// so.
pub fn set_block(facts: &SshdFacts, name: &str, lines: &[String]) -> Change {
    let mut ops = Vec::new();
    let body = |header: &str| {
        let mut s = format!("{header}\n");
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    };
    let header = format!("# Managed by sshfleet ({name}); removed again by sshfleet.");
    if let Some(path) = dropin_path(facts, name) {
        let before = facts.dropins.get(&path).cloned();
        if lines.is_empty() {
            if before.is_some() {
                ops.push(FileOp::Remove { path, before });
            }
        } else {
            let after = body(&header);
            if before.as_deref() != Some(&after) {
                ops.push(FileOp::Write {
                    path,
                    before,
                    after,
                    mode: 0o644,
                });
            }
        }
        return Change { ops };
    }
    let (mut kept, at) = strip_block(&facts.main, name);
    if !lines.is_empty() {
        let first_match = kept
            .iter()
            .position(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|k| k.eq_ignore_ascii_case("match"))
            })
            .unwrap_or(kept.len());
        let pos = at.unwrap_or(first_match).min(first_match);
        let mut block = vec![begin(name), header];
        block.extend(lines.iter().cloned());
        block.push(end(name));
        kept.splice(pos..pos, block);
    }
    let after = join(&kept);
    if after != facts.main {
        ops.push(FileOp::Write {
            path: MAIN_CONFIG.into(),
            before: Some(facts.main.clone()),
            after,
            mode: 0o644,
        });
    }
    Change { ops }
}

/// The name of our host-key block / drop-in.
pub const HOSTKEYS: &str = "hostkeys";

/// Files (other than our own block) that list host keys: path → (line, value).
fn explicit_host_keys(facts: &SshdFacts) -> Vec<(String, Vec<(usize, String)>)> {
    let ours = dropin_path(facts, HOSTKEYS);
    let mut v = Vec::new();
    let (main_wo_block, _) = strip_block(&facts.main, HOSTKEYS);
    let main_text = join(&main_wo_block);
    let main_keys = config::values(&main_text, "hostkey");
    if !main_keys.is_empty() {
        v.push((MAIN_CONFIG.to_string(), main_keys));
    }
    for (p, t) in &facts.dropins {
        if Some(p) == ours.as_ref() {
            continue;
        }
        let k = config::values(t, "hostkey");
        if !k.is_empty() {
            v.push((p.clone(), k));
        }
    }
    v
}

/// Whether some file (not ours) lists host keys; false on Debian's stock config.
pub fn has_explicit_host_keys(facts: &SshdFacts) -> bool {
    !explicit_host_keys(facts).is_empty()
}

/// Which host keys sshd should serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysWanted {
    /// Exactly these, in this order.
    List(Vec<String>),
    /// What the host had before we listed any (our block removed). Only meaningful when no
    /// other file lists host keys.
    Restore,
}

/// The change that makes sshd serve `want` (see the module doc).
pub fn serve_host_keys(
    facts: &SshdFacts,
    host: &str,
    want: &KeysWanted,
) -> Result<Change, SshdError> {
    let explicit = explicit_host_keys(facts);
    let lines =
        |keys: &[String]| -> Vec<String> { keys.iter().map(|k| format!("HostKey {k}")).collect() };
    match (explicit.len(), want) {
        (0, KeysWanted::List(keys)) => Ok(set_block(facts, HOSTKEYS, &lines(keys))),
        (0, KeysWanted::Restore) => Ok(set_block(facts, HOSTKEYS, &[])),
        (1, want) => {
            let (path, found) = &explicit[0];
            let keys = match want {
                KeysWanted::List(k) => k.clone(),
                KeysWanted::Restore => found.iter().map(|(_, v)| v.clone()).collect(),
            };
            let before = if path == MAIN_CONFIG {
                facts.main.clone()
            } else {
                facts.dropins[path].clone()
            };
            let drop: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
            let mut out = Vec::new();
            for (i, l) in before.lines().enumerate() {
                if i + 1 == drop[0] {
                    out.extend(lines(&keys));
                }
                if !drop.contains(&(i + 1)) {
                    out.push(l.to_string());
                }
            }
            let after = join(&out);
            // Our block must not list keys as well.
            let mut change = set_block(facts, HOSTKEYS, &[]);
            if after != before {
                change.ops.push(FileOp::Write {
                    path: path.clone(),
                    before: Some(before),
                    after,
                    mode: 0o644,
                });
            }
            Ok(change)
        }
        _ => Err(SshdError::Unsupported {
            host: host.to_string(),
            msg: format!(
                "host keys are listed in several files ({}); edit them by hand",
                explicit
                    .iter()
                    .map(|(p, _)| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sshd::facts::Manager;
    use std::collections::BTreeMap;

    pub(crate) fn facts(main: &str, dropins: &[(&str, &str)], keys: &[&str]) -> SshdFacts {
        SshdFacts {
            sshd: "/usr/sbin/sshd".into(),
            manager: Manager::Pidfile,
            pidfile: "/run/sshd.pid".into(),
            main: main.into(),
            dropins: dropins
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
            host_keys: keys.iter().map(|s| s.to_string()).collect(),
            public_keys: BTreeMap::new(),
            existing: vec![],
        }
    }

    const DEBIAN: &str = "Include /etc/ssh/sshd_config.d/*.conf\n\n#HostKey /etc/ssh/ssh_host_rsa_key\n#HostKey /etc/ssh/ssh_host_ecdsa_key\n#HostKey /etc/ssh/ssh_host_ed25519_key\nUsePAM yes\n";

    #[test]
    fn debian_stock_gets_a_dropin_listing_every_key_in_use_first() {
        let f = facts(
            DEBIAN,
            &[],
            &[
                "/etc/ssh/ssh_host_ecdsa_key",
                "/etc/ssh/ssh_host_ed25519_key",
            ],
        );
        assert!(!has_explicit_host_keys(&f));
        let want = KeysWanted::List(vec![
            "/etc/ssh/ssh_host_ecdsa_key".into(),
            "/etc/ssh/ssh_host_ed25519_key".into(),
            "/etc/ssh/ssh_host_ed25519_key.new".into(),
        ]);
        let c = serve_host_keys(&f, "h", &want).unwrap();
        assert_eq!(c.ops.len(), 1);
        let FileOp::Write {
            path,
            after,
            before,
            ..
        } = &c.ops[0]
        else {
            panic!()
        };
        assert_eq!(path, "/etc/ssh/sshd_config.d/sshfleet-hostkeys.conf");
        assert_eq!(before, &None);
        assert!(after.ends_with("HostKey /etc/ssh/ssh_host_ecdsa_key\nHostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ed25519_key.new\n"), "{after}");
        // Restoring removes the drop-in; with it absent nothing changes.
        let f2 = facts(DEBIAN, &[(path, after)], &[]);
        let c = serve_host_keys(&f2, "h", &KeysWanted::Restore).unwrap();
        assert!(matches!(&c.ops[..], [FileOp::Remove { path: p, .. }] if p == path));
        assert!(
            serve_host_keys(&f, "h", &KeysWanted::Restore)
                .unwrap()
                .is_empty()
        );
        // Writing the same list again is no change.
        assert!(serve_host_keys(&f2, "h", &want).unwrap().is_empty());
    }

    #[test]
    fn without_include_a_marked_block_goes_before_the_first_match() {
        let main = "Port 22\nUsePAM yes\nMatch User x\n  X11Forwarding no\n";
        let f = facts(main, &[], &["/etc/ssh/ssh_host_ed25519_key"]);
        let want = KeysWanted::List(vec!["/k1".into(), "/k2".into()]);
        let c = serve_host_keys(&f, "h", &want).unwrap();
        let FileOp::Write { path, after, .. } = &c.ops[0] else {
            panic!()
        };
        assert_eq!(path, MAIN_CONFIG);
        assert!(
            after.starts_with("Port 22\nUsePAM yes\n# BEGIN sshfleet hostkeys\n"),
            "{after}"
        );
        assert!(
            after.contains("HostKey /k1\nHostKey /k2\n# END sshfleet hostkeys\nMatch User x\n"),
            "{after}"
        );
        let f2 = facts(after, &[], &[]);
        let c = serve_host_keys(&f2, "h", &KeysWanted::Restore).unwrap();
        let FileOp::Write { after, .. } = &c.ops[0] else {
            panic!()
        };
        assert_eq!(after, main);
    }

    #[test]
    fn explicit_host_keys_are_replaced_in_place() {
        let main = "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\nHostKey /etc/ssh/a\nUsePAM yes\nHostKey /etc/ssh/b\n";
        let f = facts(main, &[], &["/etc/ssh/a", "/etc/ssh/b"]);
        assert!(has_explicit_host_keys(&f));
        let want = KeysWanted::List(vec![
            "/etc/ssh/a".into(),
            "/etc/ssh/a.new".into(),
            "/etc/ssh/b".into(),
        ]);
        let c = serve_host_keys(&f, "h", &want).unwrap();
        let FileOp::Write { path, after, .. } = &c.ops[0] else {
            panic!()
        };
        assert_eq!(path, MAIN_CONFIG);
        assert_eq!(
            after,
            "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\nHostKey /etc/ssh/a\nHostKey /etc/ssh/a.new\nHostKey /etc/ssh/b\nUsePAM yes\n"
        );
        // Two files listing keys: refused.
        let f = facts(
            main,
            &[("/etc/ssh/sshd_config.d/x.conf", "HostKey /z\n")],
            &[],
        );
        assert!(serve_host_keys(&f, "h", &want).is_err());
    }

    #[test]
    fn dropin_only_where_the_include_glob_reads_it() {
        let f = facts("Include /etc/ssh/sshd_config.d/*\n", &[], &[]);
        assert_eq!(
            dropin_path(&f, "x").unwrap(),
            "/etc/ssh/sshd_config.d/sshfleet-x.conf"
        );
        let f = facts("Include /etc/ssh/sshd_config.d/*.cfg\n", &[], &[]);
        assert_eq!(dropin_path(&f, "x"), None);
        let f = facts(
            "Match all\nInclude /etc/ssh/sshd_config.d/*.conf\n",
            &[],
            &[],
        );
        assert_eq!(dropin_path(&f, "x"), None);
    }
}
