//! Keyscan: which host keys a host presents now, and how each compares with known_hosts.
//!
//! Done the way `ssh-keyscan` does it: one handshake per key algorithm family (ed25519,
//! ecdsa, rsa), each offering only that family, stopped right after the key exchange — no
//! authentication, so scanning needs no credentials and leaves only a pre-auth disconnect in
//! the host's log ([`super::Connector::scan_host_key`]; the route is the host's normal one,
//! ProxyJump/ProxyCommand included). Announcements after authentication
//! (`hostkeys-00@openssh.com`, russh's `Handler::openssh_ext_host_keys_announced`) would save
//! the extra handshakes but need a login and only list the keys sshd is willing to announce
//! (sshd sends them only to clients that ask and only after auth), so they answer a different
//! question: keyscan shows what any client would be shown. When the host's known_hosts names a
//! `@cert-authority` for it, one more handshake asks for certificates and checks the one
//! presented with [`super::certs::check_host_certificate`].
//!
//! Classification ([`classify`], pure), per presented key, for the looked-up name
//! (`HostKeyAlias`, else `host`/`[host]:port`):
//! - `revoked`: an `@revoked` line lists it;
//! - `match`: a plain entry lists it;
//! - `changed`: not listed, but another key **of the same type** is (what OpenSSH reports as
//!   "REMOTE HOST IDENTIFICATION HAS CHANGED" for that type);
//! - `missing`: no key of that type is listed (OpenSSH would ask, or learn it with accept-new).
//!
//! A host's status is the worst of its keys (revoked > changed > missing > match), except that
//! a host whose presented certificate is trusted and none of whose keys is changed or revoked
//! is `cert-trusted`.

use russh::keys::{Algorithm, Certificate, EcdsaCurve, HashAlg, PublicKey, PublicKeyOrCertificate};
use serde::Serialize;

use super::certs::{self, CertVerdict};
use super::known_hosts::{self, KnownHosts, KnownKey, Marker};

/// What a host presented in one handshake.
#[derive(Debug, Clone)]
pub enum Presented {
    Key(PublicKey),
    Certificate(Box<Certificate>),
}

impl From<&PublicKeyOrCertificate> for Presented {
    fn from(k: &PublicKeyOrCertificate) -> Self {
        match k {
            PublicKeyOrCertificate::PublicKey { key, .. } => Presented::Key(key.clone()),
            PublicKeyOrCertificate::Certificate(c) => Presented::Certificate(Box::new(c.clone())),
        }
    }
}

/// The algorithm families scanned, one handshake each, as `ssh-keyscan -t ed25519,ecdsa,rsa`.
pub fn families() -> Vec<(&'static str, Vec<Algorithm>)> {
    vec![
        ("ed25519", vec![Algorithm::Ed25519]),
        (
            "ecdsa",
            vec![
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP256,
                },
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP384,
                },
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP521,
                },
            ],
        ),
        (
            "rsa",
            vec![
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
                Algorithm::Rsa { hash: None },
            ],
        ),
    ]
}

/// How one presented key compares with known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStatus {
    Match,
    Missing,
    Changed,
    Revoked,
}

/// One presented plain key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScannedKey {
    pub key_type: String,
    #[serde(skip)]
    pub blob: Vec<u8>,
    pub fingerprint: String,
    pub status: KeyStatus,
    /// For `match`/`revoked`: the line that says so; for `changed`: the keys listed instead.
    pub known: Vec<String>,
}

/// The status of a whole host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostStatus {
    Match,
    CertTrusted,
    Missing,
    Changed,
    Revoked,
    Unreachable,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Match => "match",
            HostStatus::CertTrusted => "cert-trusted",
            HostStatus::Missing => "missing",
            HostStatus::Changed => "changed",
            HostStatus::Revoked => "revoked",
            HostStatus::Unreachable => "unreachable",
        }
    }
}

/// The certificate a host presented, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScannedCert {
    pub key_type: String,
    pub key_id: String,
    pub trusted: bool,
    /// Why not trusted (`None` when trusted).
    pub refusal: Option<String>,
}

/// Classify one plain key for `name`.
pub fn classify(known: &KnownHosts, name: &str, key_type: &str, blob: &[u8]) -> ScannedKey {
    let fp = known_hosts::fingerprint(blob);
    let at = |k: &KnownKey| format!("{}:{}", k.path.display(), k.line);
    let (status, lines) = if let Some(k) = known.revoked(name, blob) {
        (KeyStatus::Revoked, vec![at(&k)])
    } else {
        match known.check_name(name, blob) {
            known_hosts::Verdict::Known(k) => (KeyStatus::Match, vec![at(&k)]),
            known_hosts::Verdict::Revoked(k) => (KeyStatus::Revoked, vec![at(&k)]),
            known_hosts::Verdict::Changed(_) | known_hosts::Verdict::Unknown => {
                let same_type: Vec<String> = known
                    .files
                    .iter()
                    .flat_map(|f| {
                        f.entries
                            .iter()
                            .filter(|e| {
                                e.marker == Marker::None
                                    && e.key_type == key_type
                                    && e.hosts.matches(name)
                            })
                            .map(move |e| {
                                format!(
                                    "{} {} ({}:{})",
                                    e.key_type,
                                    known_hosts::fingerprint(&e.blob),
                                    f.path.display(),
                                    e.line
                                )
                            })
                    })
                    .collect();
                if same_type.is_empty() {
                    (KeyStatus::Missing, vec![])
                } else {
                    (KeyStatus::Changed, same_type)
                }
            }
        }
    };
    ScannedKey {
        key_type: key_type.to_string(),
        blob: blob.to_vec(),
        fingerprint: fp,
        status,
        known: lines,
    }
}

/// Check a presented certificate as a client would (`principal`: `HostKeyAlias`, else the
/// host name connected to).
pub fn classify_cert(
    known: &KnownHosts,
    name: &str,
    principal: &str,
    cert: &Certificate,
    now: u64,
) -> ScannedCert {
    let v = certs::check_host_certificate(known, name, principal, cert, now);
    ScannedCert {
        key_type: cert.algorithm().as_str().to_string(),
        key_id: cert.key_id().to_string(),
        trusted: matches!(v, CertVerdict::Trusted(_)),
        refusal: match v {
            CertVerdict::Trusted(_) => None,
            other => Some(other.refusal().unwrap_or_else(|| format!("{other:?}"))),
        },
    }
}

/// A host's status from its keys and certificate.
pub fn host_status(keys: &[ScannedKey], cert: Option<&ScannedCert>) -> HostStatus {
    let worst = keys.iter().map(|k| k.status).max();
    match worst {
        Some(KeyStatus::Revoked) => HostStatus::Revoked,
        Some(KeyStatus::Changed) => HostStatus::Changed,
        _ if cert.is_some_and(|c| c.trusted) => HostStatus::CertTrusted,
        Some(KeyStatus::Missing) => HostStatus::Missing,
        Some(KeyStatus::Match) => HostStatus::Match,
        None => HostStatus::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::known_hosts::KnownHostsFile;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    const A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIPNKk17//p3pZqOsxCs5BBVAO1iSeA/XgCCnF9t1qFTr";
    const B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    fn kh(text: &str) -> KnownHosts {
        KnownHosts {
            files: vec![KnownHostsFile::parse("/kh", text)],
        }
    }

    fn b(x: &str) -> Vec<u8> {
        STANDARD.decode(x).unwrap()
    }

    #[test]
    fn statuses() {
        let k = kh(&format!(
            "[h]:2200 ssh-ed25519 {A}\n@revoked r ssh-ed25519 {B}\nr ssh-ed25519 {B}\n"
        ));
        let m = classify(&k, "[h]:2200", "ssh-ed25519", &b(A));
        assert_eq!(m.status, KeyStatus::Match);
        assert_eq!(m.known, vec!["/kh:1".to_string()]);
        let c = classify(&k, "[h]:2200", "ssh-ed25519", &b(B));
        assert_eq!(c.status, KeyStatus::Changed);
        assert!(c.known[0].contains("/kh:1"), "{:?}", c.known);
        // Another type of key for a listed host: missing, not changed.
        let rsa_blob = {
            let mut v = vec![0, 0, 0, 7];
            v.extend_from_slice(b"ssh-rsa");
            v.extend_from_slice(&[0, 0, 0, 1, 1, 0, 0, 0, 1, 1]);
            v
        };
        assert_eq!(
            classify(&k, "[h]:2200", "ssh-rsa", &rsa_blob).status,
            KeyStatus::Missing
        );
        assert_eq!(
            classify(&k, "other", "ssh-ed25519", &b(A)).status,
            KeyStatus::Missing
        );
        assert_eq!(
            classify(&k, "r", "ssh-ed25519", &b(B)).status,
            KeyStatus::Revoked
        );
    }

    #[test]
    fn host_status_is_the_worst_key_unless_cert_trusted() {
        let k = kh(&format!("h ssh-ed25519 {A}\n"));
        let m = classify(&k, "h", "ssh-ed25519", &b(A));
        let c = classify(&k, "h", "ssh-ed25519", &b(B));
        let miss = classify(&k, "x", "ssh-ed25519", &b(B));
        assert_eq!(
            host_status(std::slice::from_ref(&m), None),
            HostStatus::Match
        );
        assert_eq!(
            host_status(&[m.clone(), c.clone()], None),
            HostStatus::Changed
        );
        assert_eq!(
            host_status(&[m.clone(), miss.clone()], None),
            HostStatus::Missing
        );
        let trusted = ScannedCert {
            key_type: "ssh-ed25519-cert-v01@openssh.com".into(),
            key_id: "h".into(),
            trusted: true,
            refusal: None,
        };
        assert_eq!(
            host_status(std::slice::from_ref(&miss), Some(&trusted)),
            HostStatus::CertTrusted
        );
        assert_eq!(host_status(&[c], Some(&trusted)), HostStatus::Changed);
    }
}
