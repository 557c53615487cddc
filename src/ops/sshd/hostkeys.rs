//! Host-key rotation as sshd configuration changes (pure): the three steps of
//! `sshfleet hostkeys rotate` / `retire` for one key type.
//!
//! - **publish**: generate `OLD.new` on the host (`OLD` is the host key of that type sshd
//!   serves today, e.g. `/etc/ssh/ssh_host_ed25519_key`) and serve it *after* the old one:
//!   sshd presents the first key of a type in the key exchange, so clients keep seeing the old
//!   key, and announces both (`hostkeys-00@openssh.com`).
//! - **switch** (first half of retire): serve the new key *before* the old one: fresh
//!   connections now see the new key; the old one is still loaded.
//! - **finish** (second half of retire): move `OLD.new` over `OLD` (the old private key is
//!   gone: no backup is kept, since a key is usually retired because it may be compromised)
//!   and give sshd back the host-key configuration it had before publish, which lists `OLD`.
//!   On Debian's stock config that means our drop-in is removed and the host is stock again,
//!   with a fresh key at the stock path.

use super::SshdError;
use super::change::{Change, FileOp};
use super::facts::SshdFacts;
use super::plan::{KeysWanted, has_explicit_host_keys, serve_host_keys};

/// Suffix of a published, not yet retired key.
pub const NEW_SUFFIX: &str = ".new";

/// The public key algorithm names of a `--type`.
pub fn algorithm_prefix(key_type: &str) -> Option<&'static str> {
    match key_type {
        "ed25519" => Some("ssh-ed25519"),
        "ecdsa" => Some("ecdsa-sha2-"),
        "rsa" => Some("ssh-rsa"),
        _ => None,
    }
}

/// Where one host stands for a key type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    /// The key sshd serves today for the type (not a `.new` one).
    pub old_path: String,
    /// `TYPE BASE64`
    pub old_pub: String,
    /// `old_path` + `.new`
    pub new_path: String,
    /// When `new_path` is served: its `TYPE BASE64`.
    pub new_pub: Option<String>,
    /// Whether the new key comes before the old one in sshd's list.
    pub new_first: bool,
}

/// Find the old (and a published new) key of `key_type` on a host.
pub fn key_state(facts: &SshdFacts, host: &str, key_type: &str) -> Result<KeyState, SshdError> {
    let prefix = algorithm_prefix(key_type).ok_or_else(|| SshdError::Unsupported {
        host: host.into(),
        msg: format!("unknown host key type {key_type:?} (ed25519, ecdsa, rsa)"),
    })?;
    let of_type = |p: &String| {
        facts
            .public_keys
            .get(p)
            .is_some_and(|k| k.starts_with(prefix))
    };
    let old_idx = facts
        .host_keys
        .iter()
        .position(|p| !p.ends_with(NEW_SUFFIX) && of_type(p))
        .ok_or_else(|| SshdError::Unsupported {
            host: host.into(),
            msg: format!(
                "sshd serves no {key_type} host key today (keys: {}); rotation replaces a key of the same type",
                facts.host_keys.join(", ")
            ),
        })?;
    let old_path = facts.host_keys[old_idx].clone();
    let new_path = format!("{old_path}{NEW_SUFFIX}");
    let new_idx = facts.host_keys.iter().position(|p| *p == new_path);
    Ok(KeyState {
        old_pub: facts.public_keys[&old_path].clone(),
        new_pub: new_idx.and_then(|_| facts.public_keys.get(&new_path).cloned()),
        new_first: new_idx.is_some_and(|n| n < old_idx),
        old_path,
        new_path,
    })
}

/// Publish: generate the new key and serve it after the old one. Empty when already done.
pub fn plan_publish(
    facts: &SshdFacts,
    host: &str,
    key_type: &str,
) -> Result<(KeyState, Change), SshdError> {
    let st = key_state(facts, host, key_type)?;
    if st.new_pub.is_some() {
        return Ok((st, Change::default()));
    }
    let mut want = in_use(facts, &st.new_path);
    let at = want
        .iter()
        .position(|p| *p == st.old_path)
        .map_or(want.len(), |i| i + 1);
    want.insert(at, st.new_path.clone());
    let mut change = Change {
        ops: vec![FileOp::Keygen {
            path: st.new_path.clone(),
            key_type: key_type.to_string(),
        }],
    };
    change
        .ops
        .extend(serve_host_keys(facts, host, &KeysWanted::List(want))?.ops);
    Ok((st, change))
}

/// Switch: serve the new key first. Needs a published key; empty when already first.
pub fn plan_switch(
    facts: &SshdFacts,
    host: &str,
    key_type: &str,
) -> Result<(KeyState, Change), SshdError> {
    let st = published_state(facts, host, key_type)?;
    if st.new_first {
        return Ok((st, Change::default()));
    }
    let mut want = in_use(facts, &st.new_path);
    let at = want.iter().position(|p| *p == st.old_path).unwrap_or(0);
    want.insert(at, st.new_path.clone());
    let change = serve_host_keys(facts, host, &KeysWanted::List(want))?;
    Ok((st, change))
}

/// Finish: the new key takes the old one's place (file and configuration).
pub fn plan_finish(
    facts: &SshdFacts,
    host: &str,
    key_type: &str,
) -> Result<(KeyState, Change), SshdError> {
    let st = published_state(facts, host, key_type)?;
    let want = if has_explicit_host_keys(facts) {
        KeysWanted::List(in_use(facts, &st.new_path))
    } else {
        KeysWanted::Restore
    };
    let mut change = Change {
        ops: vec![FileOp::MoveKey {
            from: st.new_path.clone(),
            to: st.old_path.clone(),
        }],
    };
    change.ops.extend(serve_host_keys(facts, host, &want)?.ops);
    Ok((st, change))
}

/// The keys sshd serves today, without `skip`: `sshd -T` lists every default path on a stock
/// config, also of keys that do not exist; only the loadable ones (with a public half) count.
fn in_use(facts: &SshdFacts, skip: &str) -> Vec<String> {
    facts
        .host_keys
        .iter()
        .filter(|p| *p != skip && facts.public_keys.contains_key(*p))
        .cloned()
        .collect()
}

/// [`key_state`] of a host whose new key is published (sshd serves it); an error otherwise.
fn published_state(facts: &SshdFacts, host: &str, key_type: &str) -> Result<KeyState, SshdError> {
    let st = key_state(facts, host, key_type)?;
    if st.new_pub.is_none() {
        return Err(SshdError::Unsupported {
            host: host.into(),
            msg: format!(
                "no published key: sshd does not serve {} (run `sshfleet hostkeys rotate` first)",
                st.new_path
            ),
        });
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::sshd::facts::{MAIN_CONFIG, Manager};
    use std::collections::BTreeMap;

    const DEBIAN: &str =
        "Include /etc/ssh/sshd_config.d/*.conf\n#HostKey /etc/ssh/ssh_host_ed25519_key\n";
    const K: &str = "/etc/ssh/ssh_host_ed25519_key";
    const DROPIN: &str = "/etc/ssh/sshd_config.d/sshfleet-hostkeys.conf";

    fn facts(main: &str, dropin: Option<&str>, keys: &[&str]) -> SshdFacts {
        let mut public_keys = BTreeMap::new();
        for k in keys {
            let t = if k.contains("rsa") {
                "ssh-rsa"
            } else {
                "ssh-ed25519"
            };
            public_keys.insert(k.to_string(), format!("{t} B64{k}"));
        }
        SshdFacts {
            sshd: "/usr/sbin/sshd".into(),
            manager: Manager::Pidfile,
            pidfile: "/run/sshd.pid".into(),
            main: main.into(),
            dropins: dropin
                .map(|d| (DROPIN.to_string(), d.to_string()))
                .into_iter()
                .collect(),
            host_keys: keys.iter().map(|s| s.to_string()).collect(),
            public_keys,
            existing: vec![],
        }
    }

    fn dropin_after(c: &Change) -> String {
        c.ops
            .iter()
            .find_map(|o| match o {
                FileOp::Write { path, after, .. } if path == DROPIN => Some(after.clone()),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn publish_switch_finish_on_debian_stock() {
        let rsa = "/etc/ssh/ssh_host_rsa_key";
        let mut f = facts(DEBIAN, None, &[rsa, "/etc/ssh/ssh_host_ecdsa_key", K]);
        // sshd -T lists the ecdsa default, but there is no such key: it is not listed.
        f.public_keys.remove("/etc/ssh/ssh_host_ecdsa_key");
        let (st, c) = plan_publish(&f, "h", "ed25519").unwrap();
        assert_eq!(st.old_path, K);
        assert_eq!(st.new_path, format!("{K}.new"));
        assert!(
            matches!(&c.ops[0], FileOp::Keygen { path, key_type } if *path == st.new_path && key_type == "ed25519")
        );
        // Every key in use stays, old before new.
        assert!(
            dropin_after(&c).ends_with(&format!("HostKey {rsa}\nHostKey {K}\nHostKey {K}.new\n"))
        );
        // After publish (sshd -T lists the drop-in's keys): publish again is no change.
        let new = format!("{K}.new");
        let d = dropin_after(&c);
        let f = facts(DEBIAN, Some(&d), &[rsa, K, &new]);
        assert!(plan_publish(&f, "h", "ed25519").unwrap().1.is_empty());
        let (st, c) = plan_switch(&f, "h", "ed25519").unwrap();
        assert!(!st.new_first);
        assert!(
            dropin_after(&c).ends_with(&format!("HostKey {rsa}\nHostKey {K}.new\nHostKey {K}\n"))
        );
        let d = dropin_after(&c);
        let f = facts(DEBIAN, Some(&d), &[rsa, &new, K]);
        let (st, c) = plan_switch(&f, "h", "ed25519").unwrap();
        assert!(st.new_first && c.is_empty());
        let (_, c) = plan_finish(&f, "h", "ed25519").unwrap();
        assert_eq!(
            c.ops,
            vec![
                FileOp::MoveKey {
                    from: new.clone(),
                    to: K.into()
                },
                FileOp::Remove {
                    path: DROPIN.into(),
                    before: Some(d)
                },
            ]
        );
    }

    #[test]
    fn finish_with_explicit_keys_restores_the_list() {
        let main = format!("HostKey {K}\nUsePAM yes\n");
        let new = format!("{K}.new");
        let f = facts(
            &format!("HostKey {new}\nHostKey {K}\nUsePAM yes\n"),
            None,
            &[&new, K],
        );
        let (_, c) = plan_finish(&f, "h", "ed25519").unwrap();
        assert!(
            matches!(&c.ops[1], FileOp::Write { path, after, .. } if path == MAIN_CONFIG && *after == main)
        );
    }

    #[test]
    fn no_key_of_the_type_or_nothing_published_is_refused() {
        let f = facts(DEBIAN, None, &["/etc/ssh/ssh_host_rsa_key"]);
        let e = plan_publish(&f, "h", "ed25519").unwrap_err().to_string();
        assert!(e.contains("no ed25519 host key"), "{e}");
        let f = facts(DEBIAN, None, &[K]);
        assert!(plan_switch(&f, "h", "ed25519").is_err());
        assert!(plan_finish(&f, "h", "ed25519").is_err());
        assert!(plan_publish(&f, "h", "dsa").is_err());
    }
}
