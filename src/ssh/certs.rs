//! OpenSSH certificates: checking a server's **host certificate** against `@cert-authority`
//! and `@revoked` lines, and finding **user certificates** to log in with.
//!
//! Host certificates ([`check_host_certificate`], pure): the checks of OpenSSH's
//! `check_host_cert` and `sshkey_cert_check_authority`, each failure with its own reason:
//! the CA (the key that signed the certificate) must be listed as `@cert-authority` for the
//! looked-up name (`HostKeyAlias`, else `host` or `[host]:port`; patterns, negation and hashed
//! names as for plain entries); neither the CA key nor the certified key may be `@revoked`;
//! the signature must verify; it must be a *host* certificate, valid now
//! (`valid_after <= now < valid_before`), list principals and list the host's name
//! (`HostKeyAlias`, else the host name connected to — without the port, as OpenSSH does), and
//! carry no critical options. A certificate from a CA nobody trusts falls back to the plain
//! key inside it, as OpenSSH does: it is accepted only if that key is listed for the host.
//!
//! User certificates ([`user_certificates`]): `CertificateFile`s first, then `KEY-cert.pub`
//! beside each private key, as OpenSSH picks them up; each is offered with its private key.

use std::path::{Path, PathBuf};

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Certificate, PublicKey};

use super::known_hosts::{self, KnownHosts, KnownKey, Verdict};

/// Why a host certificate was refused (or how it was accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertVerdict {
    /// Signed by this trusted CA and valid for the host.
    Trusted(KnownKey),
    /// Unknown CA, but the certified key is listed as a plain key for the host.
    PlainKeyKnown(KnownKey),
    /// No `@cert-authority` line for the host lists the CA (`SHA256:` fingerprint).
    UnknownCa {
        ca: String,
    },
    /// The CA key is `@revoked`.
    RevokedCa {
        ca: String,
        at: KnownKey,
    },
    /// The certified (host) key is `@revoked`.
    RevokedKey {
        at: KnownKey,
    },
    BadSignature {
        ca: String,
    },
    NotHostCertificate,
    Expired {
        valid_before: u64,
    },
    NotYetValid {
        valid_after: u64,
    },
    NoPrincipals,
    WrongPrincipal {
        name: String,
        principals: Vec<String>,
    },
    CriticalOptions(Vec<String>),
    /// The certificate or a key in it could not be encoded.
    Malformed(String),
}

impl CertVerdict {
    /// A refusal's reason for messages; `None` when accepted.
    pub fn refusal(&self) -> Option<String> {
        Some(match self {
            CertVerdict::Trusted(_) | CertVerdict::PlainKeyKnown(_) => return None,
            CertVerdict::UnknownCa { ca } => format!(
                "it is signed by an unknown CA ({ca}): no @cert-authority line for this host \
                 lists that key (and the certified key is not listed as a plain key either)"
            ),
            CertVerdict::RevokedCa { ca, at } => {
                format!(
                    "its CA key {ca} is REVOKED at {}:{}",
                    at.path.display(),
                    at.line
                )
            }
            CertVerdict::RevokedKey { at } => format!(
                "the certified host key is REVOKED at {}:{}",
                at.path.display(),
                at.line
            ),
            CertVerdict::BadSignature { ca } => {
                format!("its signature does not verify with the CA key {ca}")
            }
            CertVerdict::NotHostCertificate => {
                "it is a user certificate, not a host certificate".into()
            }
            CertVerdict::Expired { valid_before } => {
                format!("it EXPIRED at {} (valid before)", utc(*valid_before))
            }
            CertVerdict::NotYetValid { valid_after } => {
                format!("it is not valid yet: valid from {}", utc(*valid_after))
            }
            CertVerdict::NoPrincipals => "it lists no principals".into(),
            CertVerdict::WrongPrincipal { name, principals } => format!(
                "it is for other principals ({}), not {name}",
                principals.join(", ")
            ),
            CertVerdict::CriticalOptions(o) => {
                format!("it carries unsupported critical options ({})", o.join(", "))
            }
            CertVerdict::Malformed(m) => format!("it is malformed: {m}"),
        })
    }
}

/// The wire blob of a public key (as known_hosts stores it).
fn blob_of(key: &russh::keys::ssh_key::public::KeyData) -> Result<Vec<u8>, String> {
    PublicKey::new(key.clone(), "")
        .to_bytes()
        .map_err(|e| e.to_string())
}

/// Check a host certificate offered by the host looked up as `lookup_name` (known_hosts
/// name: alias or `[host]:port`), whose principal must be `principal` (alias or host), at
/// `now` (Unix seconds).
pub fn check_host_certificate(
    known: &KnownHosts,
    lookup_name: &str,
    principal: &str,
    cert: &Certificate,
    now: u64,
) -> CertVerdict {
    let (ca_blob, key_blob) = match (blob_of(cert.signature_key()), blob_of(cert.public_key())) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(e), _) | (_, Err(e)) => return CertVerdict::Malformed(e),
    };
    let ca = known_hosts::fingerprint(&ca_blob);
    if let Some(at) = known.revoked(lookup_name, &ca_blob) {
        return CertVerdict::RevokedCa { ca, at };
    }
    if let Some(at) = known.revoked(lookup_name, &key_blob) {
        return CertVerdict::RevokedKey { at };
    }
    let Some((trusted, _)) = known
        .authorities_for(lookup_name)
        .into_iter()
        .find(|(_, b)| *b == ca_blob)
    else {
        // OpenSSH: "No matching CA found. Retry with plain key".
        return match known.check_name(lookup_name, &key_blob) {
            Verdict::Known(k) => CertVerdict::PlainKeyKnown(k),
            _ => CertVerdict::UnknownCa { ca },
        };
    };
    if cert.verify_signature().is_err() {
        return CertVerdict::BadSignature { ca };
    }
    if cert.cert_type() != CertType::Host {
        return CertVerdict::NotHostCertificate;
    }
    if now < cert.valid_after() {
        return CertVerdict::NotYetValid {
            valid_after: cert.valid_after(),
        };
    }
    if now >= cert.valid_before() {
        return CertVerdict::Expired {
            valid_before: cert.valid_before(),
        };
    }
    let principals = cert.valid_principals();
    if principals.is_empty() {
        return CertVerdict::NoPrincipals;
    }
    if !principals.iter().any(|p| p == principal) {
        return CertVerdict::WrongPrincipal {
            name: principal.to_string(),
            principals: principals.to_vec(),
        };
    }
    if !cert.critical_options().is_empty() {
        return CertVerdict::CriticalOptions(cert.critical_options().keys().cloned().collect());
    }
    CertVerdict::Trusted(trusted)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix time (`forever` for the maximum).
pub fn utc(secs: u64) -> String {
    if secs == u64::MAX {
        return "forever".into();
    }
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// User certificates for a private key file, in OpenSSH's order: the explicit
/// `CertificateFile`s, then `KEY-cert.pub` beside the key. Only files that exist.
pub fn user_certificates(key: &Path, certificate_files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = certificate_files
        .iter()
        .filter(|p| p.exists())
        .cloned()
        .collect();
    let beside = PathBuf::from(format!("{}-cert.pub", key.display()));
    if beside.exists() && !out.contains(&beside) {
        out.push(beside);
    }
    out
}

/// Load a user certificate for `key`: `Ok(None)` when it certifies another key.
pub fn load_user_cert(
    path: &Path,
    key: &russh::keys::ssh_key::public::KeyData,
) -> Result<Option<Certificate>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let cert =
        Certificate::from_openssh(text.trim()).map_err(|e| format!("not a certificate: {e}"))?;
    if cert.public_key() != key {
        return Ok(None);
    }
    if cert.cert_type() != CertType::User {
        return Err("a host certificate, not a user certificate".into());
    }
    Ok(Some(cert))
}

/// A certificate for messages: `ID (serial N, valid until T)`.
pub fn describe(cert: &Certificate) -> String {
    format!(
        "certificate {:?} serial {} valid until {}",
        cert.key_id(),
        cert.serial(),
        utc(cert.valid_before())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::known_hosts::KnownHostsFile;
    use std::process::Command;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_577_836_800), "2020-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400 + 3661), "2000-02-29 01:01:01 UTC");
        assert_eq!(utc(u64::MAX), "forever");
    }

    /// A CA, a host key and certificates made by the real ssh-keygen.
    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            for name in ["ca", "other_ca", "host"] {
                let ok = Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(dir.path().join(name))
                    .status()
                    .unwrap()
                    .success();
                assert!(ok);
            }
            Pki { dir }
        }
        fn pub_line(&self, name: &str) -> String {
            let t = std::fs::read_to_string(self.dir.path().join(format!("{name}.pub"))).unwrap();
            let w: Vec<&str> = t.split_whitespace().collect();
            format!("{} {}", w[0], w[1])
        }
        /// Sign host.pub with `ca`; returns the certificate.
        fn sign(&self, ca: &str, extra: &[&str]) -> Certificate {
            let out = Command::new("ssh-keygen")
                .arg("-q")
                .arg("-s")
                .arg(self.dir.path().join(ca))
                .args(["-I", "test"])
                .args(extra)
                .arg(self.dir.path().join("host.pub"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let text = std::fs::read_to_string(self.dir.path().join("host-cert.pub")).unwrap();
            Certificate::from_openssh(text.trim()).unwrap()
        }
    }

    fn kh(text: &str) -> KnownHosts {
        KnownHosts {
            files: vec![KnownHostsFile::parse("/kh", text)],
        }
    }

    #[test]
    fn host_certificates_every_check_with_its_reason() {
        let pki = Pki::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let ca = pki.pub_line("ca");
        let good = pki.sign(
            "ca",
            &["-h", "-n", "web1.corp.test,10.0.0.5", "-V", "-5m:+1h"],
        );
        let name = "[web1.corp.test]:2222";
        let trust = kh(&format!(
            "@cert-authority *.corp.test,[*.corp.test]:* {ca}\n"
        ));
        assert!(matches!(
            check_host_certificate(&trust, name, "web1.corp.test", &good, now),
            CertVerdict::Trusted(KnownKey { line: 1, .. })
        ));
        // Wrong principal: the host name connected to must be listed.
        let v = check_host_certificate(
            &trust,
            "[web2.corp.test]:2222",
            "web2.corp.test",
            &good,
            now,
        );
        assert!(v.refusal().unwrap().contains("not web2.corp.test"), "{v:?}");
        // Negated pattern: the CA does not apply, and the key is not known -> unknown CA.
        let neg = kh(&format!(
            "@cert-authority *.corp.test,!web1.corp.test {ca}\n"
        ));
        let v = check_host_certificate(&neg, "web1.corp.test", "web1.corp.test", &good, now);
        assert!(matches!(v, CertVerdict::UnknownCa { .. }), "{v:?}");
        assert!(v.refusal().unwrap().contains("unknown CA"));
        // Unknown CA but the plain key is listed: accepted as OpenSSH does.
        let plain = kh(&format!("web1.corp.test {}\n", pki.pub_line("host")));
        assert!(matches!(
            check_host_certificate(&plain, "web1.corp.test", "web1.corp.test", &good, now),
            CertVerdict::PlainKeyKnown(_)
        ));
        // Revoked CA and revoked host key.
        let rev = kh(&format!("@cert-authority * {ca}\n@revoked * {ca}\n"));
        let v = check_host_certificate(&rev, name, "web1.corp.test", &good, now);
        assert!(v.refusal().unwrap().contains("REVOKED at /kh:2"), "{v:?}");
        let rev = kh(&format!(
            "@cert-authority * {ca}\n@revoked * {}\n",
            pki.pub_line("host")
        ));
        assert!(matches!(
            check_host_certificate(&rev, name, "web1.corp.test", &good, now),
            CertVerdict::RevokedKey { .. }
        ));
        // Signed by another CA than the trusted one.
        let other = pki.sign("other_ca", &["-h", "-n", "web1.corp.test"]);
        assert!(matches!(
            check_host_certificate(&trust, name, "web1.corp.test", &other, now),
            CertVerdict::UnknownCa { .. }
        ));
        // Expired, not yet valid, user certificate, no principals.
        let old = pki.sign(
            "ca",
            &["-h", "-n", "web1.corp.test", "-V", "20200101:20200102"],
        );
        let v = check_host_certificate(&trust, name, "web1.corp.test", &old, now);
        assert!(
            v.refusal().unwrap().contains("EXPIRED at 2020-01-02"),
            "{v:?}"
        );
        let future = pki.sign("ca", &["-h", "-n", "web1.corp.test", "-V", "+1d:+2d"]);
        assert!(matches!(
            check_host_certificate(&trust, name, "web1.corp.test", &future, now),
            CertVerdict::NotYetValid { .. }
        ));
        let user = pki.sign("ca", &["-n", "web1.corp.test"]);
        assert_eq!(
            check_host_certificate(&trust, name, "web1.corp.test", &user, now),
            CertVerdict::NotHostCertificate
        );
        let none = pki.sign("ca", &["-h"]);
        assert_eq!(
            check_host_certificate(&trust, name, "web1.corp.test", &none, now),
            CertVerdict::NoPrincipals
        );
    }

    #[test]
    fn hashed_cert_authority_lines_match() {
        let pki = Pki::new();
        let ca = pki.pub_line("ca");
        let f = pki.dir.path().join("kh");
        // ssh-keygen -H hashes plain lines only; a hashed name works in a CA line too.
        std::fs::write(&f, format!("[web1.corp.test]:2222 {ca}\n")).unwrap();
        let ok = Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&f)
            .output()
            .unwrap();
        assert!(ok.status.success());
        let hashed = std::fs::read_to_string(&f).unwrap();
        assert!(hashed.starts_with("|1|"), "{hashed}");
        let text = format!("@cert-authority {hashed}");
        let known = kh(&text);
        let cert = pki.sign("ca", &["-h", "-n", "web1.corp.test"]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(matches!(
            check_host_certificate(
                &known,
                "[web1.corp.test]:2222",
                "web1.corp.test",
                &cert,
                now
            ),
            CertVerdict::Trusted(_)
        ));
        assert!(matches!(
            check_host_certificate(&known, "web1.corp.test", "web1.corp.test", &cert, now),
            CertVerdict::UnknownCa { .. }
        ));
    }

    #[test]
    fn user_certificates_beside_the_key_and_explicit() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        assert!(user_certificates(&key, &[]).is_empty());
        std::fs::write(dir.path().join("id_ed25519-cert.pub"), "x").unwrap();
        let explicit = dir.path().join("other-cert.pub");
        std::fs::write(&explicit, "x").unwrap();
        assert_eq!(
            user_certificates(&key, &[explicit.clone(), dir.path().join("missing")]),
            vec![explicit, dir.path().join("id_ed25519-cert.pub")]
        );
    }
}
