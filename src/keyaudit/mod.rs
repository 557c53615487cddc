//! The key audit's model and analysis, pure: which accounts of a host can log in, which
//! files sshd reads for each (from its effective configuration), which keys those files
//! hold and whether sshd would accept them; keys grouped across a fleet; findings (weak
//! keys, unknown keys, unrestricted root keys, unparseable lines, files `StrictModes`
//! ignores, other ways in); and the revoke's selection and lock-out guard.
//!
//! Gathering the facts on a host is the operation `ops::keys::audit` (one layer up); the
//! `sshfleet keys audit|revoke` drivers are in the controller's `commands::keys`.
//!
//! - [`sshd`]: `sshd -T` / `sshd_config` settings, `AuthorizedKeysFile` tokens;
//! - [`accounts`]: `getent passwd`/`shadow`, who can log in;
//! - [`strict`]: `StrictModes` (`safe_path`) and readability of a key file;
//! - [`select`]: revoke selection and the guard.

pub mod accounts;
pub mod select;
pub mod sshd;
pub mod strict;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::authorized_keys::{AuthorizedKeys, PublicKey};

pub use sshd::{ConfigSource, SshdAuth};

/// One key line of a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyLine {
    pub line: usize,
    pub fingerprint: String,
    pub key_type: String,
    pub bits: Option<u32>,
    pub options: String,
    pub comment: String,
    /// Would sshd accept this line for this account?
    pub accepted: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
    #[serde(skip)]
    pub restricted: bool,
    #[serde(skip)]
    pub forced_command: bool,
}

impl KeyLine {
    pub fn of(line: usize, k: &PublicKey) -> KeyLine {
        let names: Vec<String> = k
            .options
            .parts()
            .iter()
            .map(|p| p.split('=').next().unwrap_or("").to_ascii_lowercase())
            .collect();
        let has = |n: &str| names.iter().any(|x| x == n);
        KeyLine {
            line,
            fingerprint: k.fingerprint(),
            key_type: k.key_type.clone(),
            bits: key_bits(&k.key_type, &k.blob),
            options: k.options.render(),
            comment: k.comment.clone(),
            accepted: false,
            why_not: None,
            restricted: has("from") || has("command") || has("restrict"),
            forced_command: has("command"),
        }
    }
}

/// How sshd treats a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum FileState {
    /// Read and used by sshd.
    Used,
    /// Does not exist.
    Missing,
    /// Exists but sshd ignores it (StrictModes, not a regular file, unreadable by the user).
    Ignored(String),
    /// Could not be seen by the audit (needs `-b`).
    Unseen(String),
}

/// One file sshd would open for an account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileAudit {
    /// The path as sshd opens it (tokens expanded).
    pub path: String,
    #[serde(flatten)]
    pub state: FileState,
    pub keys: Vec<KeyLine>,
    /// Lines that are not keys sshd would parse: (line, reason).
    pub unparseable: Vec<(usize, String)>,
    /// The content read (for revoke); not in the JSON.
    #[serde(skip)]
    pub content: Option<String>,
}

/// Another way in than authorized_keys files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OtherWay {
    pub setting: String,
    pub value: String,
}

/// One account that can log in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountAudit {
    pub user: String,
    pub uid: u32,
    pub home: String,
    pub shell: String,
    /// From `getent shadow` (root only); `None` when it could not be read.
    pub locked: Option<bool>,
    /// Why no public key logs this account in (pubkey auth off, PermitRootLogin no, locked
    /// with UsePAM no), when so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_refused: Option<String>,
    pub config: SshdAuth,
    pub files: Vec<FileAudit>,
    pub other_ways: Vec<OtherWay>,
}

/// Everything the audit saw on one host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostAudit {
    pub host: String,
    pub login_user: String,
    /// `ssh -V` on the host (decides Debian's StrictModes variant, see [`strict`]).
    pub openssh: Option<String>,
    /// Ran as root (become or root login): every file and `sshd -T` could be read.
    pub privileged: bool,
    pub accounts: Vec<AccountAudit>,
    /// What could not be seen, plainly.
    pub not_seen: Vec<String>,
}

/// The settings' other ways in, as (setting, value).
pub fn other_ways(a: &SshdAuth) -> Vec<OtherWay> {
    let mut v = Vec::new();
    let mut push = |s: &str, val: &Option<String>| {
        if let Some(x) = val {
            v.push(OtherWay {
                setting: s.into(),
                value: x.clone(),
            });
        }
    };
    push("AuthorizedKeysCommand", &a.authorized_keys_command);
    push("TrustedUserCAKeys", &a.trusted_user_ca_keys);
    push("AuthorizedPrincipalsFile", &a.authorized_principals_file);
    push(
        "AuthorizedPrincipalsCommand",
        &a.authorized_principals_command,
    );
    v
}

/// Why no key logs `user` in, given the settings and lock state (`None`: keys can).
pub fn keys_refused(user: &str, uid: u32, a: &SshdAuth, locked: Option<bool>) -> Option<String> {
    if !a.pubkey_authentication {
        return Some("PubkeyAuthentication no".into());
    }
    if (uid == 0 || user == "root")
        && sshd::root_key_rule(&a.permit_root_login) == sshd::RootRule::Denied
    {
        return Some("PermitRootLogin no".into());
    }
    if locked == Some(true) && !a.use_pam {
        return Some("account is locked (password field starts with '!') and UsePAM is no".into());
    }
    None
}

/// The key lines and unparseable lines of a file, each key marked accepted or not for the
/// account (`file_used`: sshd reads the file; `refused`: the account's keys are refused
/// anyway; `root_forced_only`: `PermitRootLogin forced-commands-only` for root;
/// `sshd`: `PubkeyAcceptedAlgorithms` and `RequiredRSASize`).
pub fn read_file_keys(
    content: &str,
    file_used: Result<(), String>,
    refused: Option<&str>,
    root_forced_only: bool,
    sshd: &SshdAuth,
) -> (Vec<KeyLine>, Vec<(usize, String)>) {
    let algorithms = sshd.pubkey_accepted_algorithms.as_deref();
    let parsed = AuthorizedKeys::parse(content);
    let keys = parsed
        .keys()
        .map(|(n, k)| {
            let mut l = KeyLine::of(n, k);
            let why = match (&file_used, refused) {
                (Err(e), _) => Some(e.clone()),
                (_, Some(r)) => Some(r.to_string()),
                _ if !sshd::algorithm_allowed(&l.key_type, algorithms) => Some(format!(
                    "PubkeyAcceptedAlgorithms does not allow {}",
                    l.key_type
                )),
                _ if l.key_type.contains("rsa")
                    && l.bits.is_some_and(|b| b < sshd.required_rsa_size) =>
                {
                    Some(format!(
                        "RSA key of {} bits < RequiredRSASize {}",
                        l.bits.unwrap_or(0),
                        sshd.required_rsa_size
                    ))
                }
                _ if root_forced_only && !l.forced_command => {
                    Some("PermitRootLogin forced-commands-only and no command= option".into())
                }
                _ => None,
            };
            l.accepted = why.is_none();
            l.why_not = why;
            l
        })
        .collect();
    let bad = parsed.invalid().map(|(n, r)| (n, r.to_string())).collect();
    (keys, bad)
}

/// Bits of a key: RSA modulus, DSA `p`, the ECDSA curve; 256 for Ed25519. Certificates:
/// the certified key's. `None` when the blob does not say.
pub fn key_bits(key_type: &str, blob: &[u8]) -> Option<u32> {
    let base = key_type
        .trim_end_matches("-cert-v01@openssh.com")
        .to_string();
    let cert = base.len() != key_type.len();
    match base.as_str() {
        "ssh-ed25519" | "sk-ssh-ed25519@openssh.com" => Some(256),
        "ecdsa-sha2-nistp256"
        | "sk-ecdsa-sha2-nistp256@openssh.com"
        | "webauthn-sk-ecdsa-sha2-nistp256@openssh.com" => Some(256),
        "ecdsa-sha2-nistp384" => Some(384),
        "ecdsa-sha2-nistp521" => Some(521),
        "ssh-rsa" | "rsa-sha2-256" | "rsa-sha2-512" | "ssh-dss" => {
            let mut at = 0;
            let mut next = || -> Option<&[u8]> {
                let len = u32::from_be_bytes(blob.get(at..at + 4)?.try_into().ok()?) as usize;
                let s = blob.get(at + 4..at + 4 + len)?;
                at += 4 + len;
                Some(s)
            };
            next()?; // type
            if cert {
                next()?; // nonce
            }
            let field = if base == "ssh-dss" {
                next()? // p
            } else {
                next()?; // e
                next()? // n
            };
            mpint_bits(field)
        }
        _ => None,
    }
}

fn mpint_bits(m: &[u8]) -> Option<u32> {
    let i = m.iter().position(|&b| b != 0)?;
    Some((m.len() - i) as u32 * 8 - m[i].leading_zeros())
}

/// Where a key appears.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Place {
    pub host: String,
    pub user: String,
    pub file: String,
    pub line: usize,
    pub options: String,
    pub comment: String,
    pub accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

/// One key across the fleet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyGroup {
    pub fingerprint: String,
    pub key_type: String,
    pub bits: Option<u32>,
    pub comments: BTreeSet<String>,
    pub options: BTreeSet<String>,
    /// `--known-keys` given: is this key in it?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known: Option<bool>,
    pub places: Vec<Place>,
}

/// Every key seen, grouped by fingerprint (sorted by fingerprint; places in host, user,
/// file, line order).
pub fn group_by_key(hosts: &[HostAudit], known: Option<&HashSet<String>>) -> Vec<KeyGroup> {
    let mut groups: BTreeMap<String, KeyGroup> = BTreeMap::new();
    for h in hosts {
        for a in &h.accounts {
            for f in &a.files {
                for k in &f.keys {
                    let g = groups
                        .entry(k.fingerprint.clone())
                        .or_insert_with(|| KeyGroup {
                            fingerprint: k.fingerprint.clone(),
                            key_type: k.key_type.clone(),
                            bits: k.bits,
                            comments: BTreeSet::new(),
                            options: BTreeSet::new(),
                            known: known.map(|s| s.contains(&k.fingerprint)),
                            places: vec![],
                        });
                    if !k.comment.is_empty() {
                        g.comments.insert(k.comment.clone());
                    }
                    if !k.options.is_empty() {
                        g.options.insert(k.options.clone());
                    }
                    g.places.push(Place {
                        host: h.host.clone(),
                        user: a.user.clone(),
                        file: f.path.clone(),
                        line: k.line,
                        options: k.options.clone(),
                        comment: k.comment.clone(),
                        accepted: k.accepted,
                        why_not: k.why_not.clone(),
                    });
                }
            }
        }
    }
    let mut v: Vec<KeyGroup> = groups.into_values().collect();
    for g in &mut v {
        g.places.sort_by(|a, b| {
            (&a.host, &a.user, &a.file, a.line).cmp(&(&b.host, &b.user, &b.file, b.line))
        });
    }
    v
}

/// Kinds of findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A DSA key (OpenSSH has refused them by default since 7.0).
    Dsa,
    /// RSA under 2048 bits.
    WeakRsa,
    /// Not in the `--known-keys` allow list.
    UnknownKey,
    /// A root key without `from=`, `command=` or `restrict`.
    UnrestrictedRoot,
    /// A line sshd cannot parse.
    Unparseable,
    /// A file sshd ignores (StrictModes, not readable by the account, not a regular file).
    IgnoredFile,
    /// `AuthorizedKeysCommand`, `TrustedUserCAKeys`, `AuthorizedPrincipalsFile|Command`.
    OtherWayIn,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    pub detail: String,
}

/// Every finding over the hosts (sorted by kind, host, user, file, line).
pub fn findings(hosts: &[HostAudit], known: Option<&HashSet<String>>) -> Vec<Finding> {
    let mut out = Vec::new();
    for h in hosts {
        let mut other_seen: BTreeSet<(String, String)> = BTreeSet::new();
        for a in &h.accounts {
            for w in &a.other_ways {
                // Per host, once per setting and value (Match may differ per account).
                if other_seen.insert((w.setting.clone(), w.value.clone())) {
                    out.push(Finding {
                        kind: FindingKind::OtherWayIn,
                        host: h.host.clone(),
                        user: None,
                        file: None,
                        line: None,
                        fingerprint: None,
                        detail: format!("{} {}", w.setting, w.value),
                    });
                }
            }
            for f in &a.files {
                let at = |kind, line: Option<usize>, fp: Option<&str>, detail: String| Finding {
                    kind,
                    host: h.host.clone(),
                    user: Some(a.user.clone()),
                    file: Some(f.path.clone()),
                    line,
                    fingerprint: fp.map(str::to_string),
                    detail,
                };
                if let FileState::Ignored(r) = &f.state {
                    out.push(at(
                        FindingKind::IgnoredFile,
                        None,
                        None,
                        format!("sshd ignores it: {r}"),
                    ));
                }
                for (n, r) in &f.unparseable {
                    out.push(at(FindingKind::Unparseable, Some(*n), None, r.clone()));
                }
                for k in &f.keys {
                    let fp = Some(k.fingerprint.as_str());
                    let bits = k.bits.map(|b| format!("{b} bits")).unwrap_or_default();
                    if k.key_type.starts_with("ssh-dss") {
                        out.push(at(
                            FindingKind::Dsa,
                            Some(k.line),
                            fp,
                            format!("DSA key {bits}"),
                        ));
                    }
                    if k.key_type.contains("rsa") && k.bits.is_some_and(|b| b < 2048) {
                        out.push(at(
                            FindingKind::WeakRsa,
                            Some(k.line),
                            fp,
                            format!("RSA key of {bits} (< 2048)"),
                        ));
                    }
                    if let Some(set) = known
                        && !set.contains(&k.fingerprint)
                    {
                        out.push(at(
                            FindingKind::UnknownKey,
                            Some(k.line),
                            fp,
                            format!("not in the known keys ({})", k.comment),
                        ));
                    }
                    if a.uid == 0 && k.accepted && !k.restricted {
                        out.push(at(
                            FindingKind::UnrestrictedRoot,
                            Some(k.line),
                            fp,
                            "root key without from=, command= or restrict".into(),
                        ));
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (a.kind, &a.host, &a.user, &a.file, a.line)
            .cmp(&(b.kind, &b.host, &b.user, &b.file, b.line))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::{EC1, ED1, ED1_FP, ED2_CERT, RSA1, RSA1_FP};

    fn key(line: &str) -> PublicKey {
        PublicKey::parse_line(line).unwrap()
    }

    #[test]
    fn bits_of_keys() {
        let k = key(RSA1);
        assert_eq!(key_bits(&k.key_type, &k.blob), Some(1024));
        let k = key(ED1);
        assert_eq!(key_bits(&k.key_type, &k.blob), Some(256));
        let k = key(EC1);
        assert_eq!(key_bits(&k.key_type, &k.blob), Some(256));
        let k = key(ED2_CERT);
        assert_eq!(key_bits(&k.key_type, &k.blob), Some(256));
        assert_eq!(mpint_bits(&[0, 0x01, 0]), Some(9));
        assert_eq!(key_bits("ssh-rsa", b"short"), None);
    }

    fn host(files: Vec<(&str, &str, u32, Result<(), String>)>) -> HostAudit {
        let mut accounts: Vec<AccountAudit> = Vec::new();
        for (user, content, uid, used) in files {
            let (keys, bad) =
                read_file_keys(content, used.clone(), None, false, &SshdAuth::default());
            let f = FileAudit {
                path: format!("/home/{user}/.ssh/authorized_keys"),
                state: match used {
                    Ok(()) => FileState::Used,
                    Err(e) => FileState::Ignored(e),
                },
                keys,
                unparseable: bad,
                content: Some(content.into()),
            };
            accounts.push(AccountAudit {
                user: user.into(),
                uid,
                home: format!("/home/{user}"),
                shell: "/bin/sh".into(),
                locked: None,
                keys_refused: None,
                config: SshdAuth {
                    trusted_user_ca_keys: Some("/etc/ssh/ca.pub".into()),
                    ..SshdAuth::default()
                },
                files: vec![f],
                other_ways: vec![],
            });
            let n = accounts.len() - 1;
            accounts[n].other_ways = other_ways(&accounts[n].config);
        }
        HostAudit {
            host: "h1".into(),
            login_user: "deploy".into(),
            openssh: None,
            privileged: true,
            accounts,
            not_seen: vec![],
        }
    }

    #[test]
    fn groups_and_findings() {
        let h = host(vec![
            ("deploy", &format!("{ED1}\nbogus\n"), 1000, Ok(())),
            (
                "root",
                &format!("{RSA1}\nfrom=\"10.0.0.1\" {ED1}\n"),
                0,
                Ok(()),
            ),
            (
                "bob",
                &format!("{ED1}\n"),
                1001,
                Err("StrictModes: bad".into()),
            ),
        ]);
        let g = group_by_key(std::slice::from_ref(&h), None);
        assert_eq!(g.len(), 2);
        let ed = g.iter().find(|g| g.fingerprint == ED1_FP).unwrap();
        assert_eq!(ed.places.len(), 3);
        assert!(ed.options.contains("from=\"10.0.0.1\""));
        let bob = ed.places.iter().find(|p| p.user == "bob").unwrap();
        assert!(!bob.accepted && bob.why_not.as_deref() == Some("StrictModes: bad"));
        let known: HashSet<String> = [ED1_FP.to_string()].into();
        let f = findings(&[h], Some(&known));
        let kinds: Vec<FindingKind> = f.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FindingKind::WeakRsa,
                FindingKind::UnknownKey,
                FindingKind::UnrestrictedRoot,
                FindingKind::Unparseable,
                FindingKind::IgnoredFile,
                FindingKind::OtherWayIn,
            ]
        );
        assert_eq!(f[0].fingerprint.as_deref(), Some(RSA1_FP));
        assert_eq!(f[3].line, Some(2));
    }

    #[test]
    fn refusals() {
        let a = SshdAuth::default();
        assert_eq!(keys_refused("bob", 1, &a, None), None);
        let no_root = SshdAuth {
            permit_root_login: "no".into(),
            ..SshdAuth::default()
        };
        assert!(keys_refused("root", 0, &no_root, None).is_some());
        assert!(keys_refused("bob", 1, &a, Some(true)).is_some());
        let pam = SshdAuth {
            use_pam: true,
            ..SshdAuth::default()
        };
        assert_eq!(keys_refused("bob", 1, &pam, Some(true)), None);
        let (k, _) = read_file_keys(
            &format!("{ED1}\ncommand=\"x\" {RSA1}\n"),
            Ok(()),
            None,
            true,
            &SshdAuth::default(),
        );
        assert!(!k[0].accepted && k[1].accepted);
        let only_ed = SshdAuth {
            pubkey_accepted_algorithms: Some(vec!["ssh-ed25519".to_string()]),
            ..SshdAuth::default()
        };
        let (k, _) = read_file_keys(&format!("{ED1}\n{RSA1}\n"), Ok(()), None, false, &only_ed);
        assert!(k[0].accepted && !k[1].accepted);
        assert!(
            k[1].why_not
                .as_deref()
                .unwrap()
                .contains("PubkeyAcceptedAlgorithms")
        );
    }
}
