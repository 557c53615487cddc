//! `sshfleet hostkeys certify --ca CA_KEY [--principals ...] [--validity 52w]`: host
//! certificates signed on the controller, installed with `HostCertificate`, proven with a
//! fresh connection that trusts only the CA.
//!
//! Per host, in order (a step that fails stops that host; nothing is left half changed):
//! 1. connect as usual (host key checked against known_hosts) and ask sshd itself which
//!    `HostKey`s it serves ([`crate::ops::sshd::gather`]: `sshd -T`, its config files, its
//!    public host keys; via become);
//! 2. read the public half of the host key of `--key-type` (default ed25519); we only vouch for
//!    a key of a host we verified: under strict host key checking the connection proved the
//!    host (plain key or an existing certificate — renewals work with a CA-only known_hosts);
//!    under accept-new/off the key must already be listed in known_hosts;
//! 3. sign it **on the controller** ([`sign_host_key`]: the `ssh-key` crate's certificate
//!    builder, in process — the CA private key is never written anywhere, never passed to a
//!    child process, and its passphrase comes from `--ca-passphrase-env VAR` or the terminal as
//!    a [`Secret`]); key id = inventory name, principals = `--principals` or the names the host
//!    is reached by (inventory name, `ansible_host`, `HostKeyAlias`), valid from 5 minutes ago
//!    (clock skew) for `--validity`;
//! 4. through the shared sshd control ([`crate::ops::sshd`]): write the certificate next to
//!    the key (`HOSTKEY-cert.pub`, 0644) and — unless a config file already names it — a
//!    `HostCertificate` line in our own block (the `sshd_config.d/sshfleet-hostcertificate.conf`
//!    drop-in when `sshd_config` includes that directory, else a marked block before the first
//!    `Match`), atomically; `sshd -t`; reload (service manager, else HUP to the pidfile's PID);
//!    sshd checked running; any failure restores every file and sshd's previous state;
//! 5. prove it: a fresh connection whose known_hosts holds **only** the `@cert-authority` line
//!    (no plain key) must succeed (retried for a few seconds while sshd re-executes).
//!
//! The run journal ([`crate::journal`]) records, per host, the files written (certificate and
//! configuration block) as hashes before/after.
//!
//! Finally the `@cert-authority` line users put in their known_hosts is printed (stderr with
//! `--json`, where it is also in each host's result). `--check` changes nothing and, with
//! `--diff`, shows the certificate and configuration change.

use std::path::PathBuf;
use std::sync::Arc;

use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::{Certificate, PrivateKey, PublicKey};
use serde_json::json;

use crate::commands::{Config, no_hosts, run_on_specs};
use crate::error::{Error, ExitCode, Result};
use crate::events::{ChangeKind, FileChange, HostOutcome};
use crate::fleet::HostCtx;
use crate::inventory::conn::{ConnSpec, HostKeyPolicy};
use crate::known_hosts::{self, KnownHosts, Verdict, host_key_name};
use crate::ops::sshd;
use crate::report::OutputMode;
use crate::secret::Secret;
use crate::target::{Target, TargetError};

/// `hostkeys certify` options.
#[derive(Debug, Clone)]
pub struct CertifyConfig {
    pub pattern: String,
    /// The CA private key (stays on the controller).
    pub ca: PathBuf,
    /// Environment variable with the CA key's passphrase (else the terminal, if any).
    pub ca_passphrase_env: Option<String>,
    /// Principals; empty: the names each host is reached by.
    pub principals: Vec<String>,
    /// `52w`, `+30d`, `12h`, ...
    pub validity: String,
    /// The host key type to certify (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    pub key_type: String,
}

/// Seconds of a validity like `52w`, `+30d`, `12h`, `90m`, `3600s`, `3600` (ssh-keygen's
/// relative units; several may be combined: `1w2d`).
pub fn parse_validity(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim().trim_start_matches('+');
    if t.is_empty() {
        return Err("empty validity".into());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => return Err(format!("bad validity {s:?}: unknown unit {c:?}")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("bad validity {s:?}: a number must come before {c:?}"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
    }
    if !num.is_empty() {
        total = total.saturating_add(num.parse::<u64>().map_err(|e| format!("{s:?}: {e}"))?);
    }
    if total == 0 {
        return Err(format!("bad validity {s:?}: must be positive"));
    }
    Ok(total)
}

/// Sign `host_key` as a **host** certificate with `ca`.
pub fn sign_host_key(
    ca: &PrivateKey,
    host_key: &PublicKey,
    key_id: &str,
    principals: &[String],
    valid_after: u64,
    valid_before: u64,
) -> std::result::Result<Certificate, String> {
    let mut nonce = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut nonce))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let mut b = Builder::new(
        nonce.to_vec(),
        host_key.key_data().clone(),
        valid_after,
        valid_before,
    )
    .map_err(|e| e.to_string())?;
    b.cert_type(CertType::Host).map_err(|e| e.to_string())?;
    b.key_id(key_id).map_err(|e| e.to_string())?;
    if principals.is_empty() {
        return Err("no principals".into());
    }
    for p in principals {
        b.valid_principal(p.clone()).map_err(|e| e.to_string())?;
    }
    b.sign(ca).map_err(|e| format!("signing failed: {e}"))
}

/// Load the CA private key, decrypting it with a passphrase from `env` or the terminal.
pub fn load_ca(path: &std::path::Path, env: Option<&str>) -> Result<PrivateKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::KeyFile {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let bad = |msg: String| Error::KeyFile {
        path: path.to_path_buf(),
        msg,
    };
    match russh::keys::decode_secret_key(&text, None) {
        Ok(k) => return Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => {}
        Err(e) if !text.contains("ENCRYPTED") => return Err(bad(e.to_string())),
        Err(_) => {}
    }
    let pass: Secret = match env {
        Some(var) => Secret::from_env(var).ok_or_else(|| {
            bad(format!(
                "CA key is encrypted and environment variable {var} is not set"
            ))
        })?,
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => Secret::new(
            crate::ssh::keys::prompt(&format!(
                "Enter passphrase for CA key '{}': ",
                path.display()
            ))
            .map_err(|e| bad(format!("cannot read passphrase: {e}")))?,
        ),
        None => {
            return Err(bad(
                "CA key is encrypted; give its passphrase with --ca-passphrase-env VAR".into(),
            ));
        }
    };
    russh::keys::decode_secret_key(&text, Some(pass.expose()))
        .map_err(|e| bad(format!("cannot decrypt CA key (wrong passphrase?): {e}")))
}

/// The default principals of a host: inventory name, address (`ansible_host`),
/// `HostKeyAlias` — each once.
pub fn default_principals(spec: &ConnSpec) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in [
        Some(spec.name.as_str()),
        Some(spec.address.as_str()),
        spec.host_key_alias.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        if !n.is_empty() && !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// Shared, read-only inputs of every host's job.
struct Job {
    ca: PrivateKey,
    ca_line_key: String,
    cfg: CertifyConfig,
    check: bool,
    valid_after: u64,
    valid_before: u64,
}

async fn certify_host(
    job: Arc<Job>,
    ctx: Arc<HostCtx>,
) -> std::result::Result<HostOutcome, TargetError> {
    let host = ctx.host().to_string();
    let spec = ctx.spec().clone();
    let t = ctx.target().await?;
    let fail = |m: String| Ok(HostOutcome::failed(&host, m));
    // 1. What sshd serves (ops::sshd facts: `sshd -T`, config files, public keys; as root).
    let facts = match sshd::gather(t, &[]).await {
        Ok(f) => f,
        Err(e) => return fail(format!("{e} (certify needs root: use -b)")),
    };
    // 2. The host key of the wanted type.
    let chosen = facts.host_keys.iter().find_map(|hk| {
        let text = facts.public_keys.get(hk)?;
        let k = PublicKey::from_openssh(text.trim()).ok()?;
        (k.algorithm().as_str() == job.cfg.key_type).then(|| (hk.clone(), k))
    });
    let Some((hk, key)) = chosen else {
        return fail(format!(
            "sshd serves no {} host key (HostKey {})",
            job.cfg.key_type,
            facts.host_keys.join(", ")
        ));
    };
    let (user_files, global_files) = ctx.connector().known_hosts_files(&spec);
    let files: Vec<PathBuf> = user_files.iter().chain(&global_files).cloned().collect();
    let (kh_host, kh_port) = crate::ssh::client::known_hosts_name(&spec);
    let name = host_key_name(kh_host, kh_port);
    let blob = key
        .to_bytes()
        .map_err(|e| TargetError::Other(e.to_string()))?;
    let policy = spec
        .host_key_policy
        .unwrap_or(ctx.connector().config().default_policy);
    let known = KnownHosts::load(&files).map_err(TargetError::Other)?;
    // Under strict checking the connection itself proved the host (plain key or certificate),
    // so its key file is authentic; otherwise the key must be one known_hosts already lists.
    if policy != HostKeyPolicy::Strict
        && !matches!(known.check_name(&name, &blob), Verdict::Known(_))
    {
        return fail(format!(
            "{hk} ({}) is not a key known_hosts lists for {name}, and host key checking is \
             not strict; not signing it",
            known_hosts::fingerprint(&blob)
        ));
    }
    // 3. Sign on the controller.
    let principals = if job.cfg.principals.is_empty() {
        default_principals(&spec)
    } else {
        job.cfg.principals.clone()
    };
    let cert = match sign_host_key(
        &job.ca,
        &key,
        &host,
        &principals,
        job.valid_after,
        job.valid_before,
    ) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let cert_text = match cert.to_openssh() {
        Ok(s) => format!("{s}\n"),
        Err(e) => return fail(e.to_string()),
    };
    let cert_path = format!("{hk}-cert.pub");
    // 4. One sshd change: the certificate file and (unless a config file already names it)
    // our `HostCertificate` block; ops::sshd writes atomically, runs `sshd -t`, reloads,
    // checks sshd runs, and restores everything on any failure.
    let old_cert = match t.stat(&cert_path, true).await? {
        Some(_) => Some(String::from_utf8_lossy(&t.read(&cert_path, 1 << 20).await?).into_owned()),
        None => None,
    };
    let configured = std::iter::once(&facts.main)
        .chain(facts.dropins.values())
        .any(|text| {
            sshd::config::values(text, "hostcertificate")
                .iter()
                .any(|(_, v)| *v == cert_path)
        });
    let mut change = sshd::Change::default();
    change.ops.push(sshd::FileOp::Write {
        path: cert_path.clone(),
        before: old_cert,
        after: cert_text,
        mode: 0o644,
    });
    if !configured {
        change.ops.extend(
            sshd::plan::set_block(&facts, BLOCK, &[format!("HostCertificate {cert_path}")]).ops,
        );
    }
    let diffs: Vec<serde_json::Value> = change.diffs().iter().map(|d| d.to_ansible()).collect();
    let mut result = json!({
        "host_key": hk,
        "certificate": cert_path,
        "key_id": host,
        "principals": principals,
        "valid_before": crate::ssh::certs::utc(job.valid_before),
        "sshd_config_changed": !configured,
        "cert_authority_line": format!("@cert-authority {name} {}", job.ca_line_key),
    });
    let with_diff = |mut o: HostOutcome| {
        o.diff = match diffs.len() {
            0 => None,
            1 => Some(diffs[0].clone()),
            _ => Some(serde_json::Value::Array(diffs.clone())),
        };
        o
    };
    if job.check {
        return Ok(with_diff(HostOutcome::changed(&host, result)));
    }
    if let Err(e) = sshd::apply(t, &facts, &change).await {
        return fail(format!(
            "{e} (certificate and configuration left as they were)"
        ));
    }
    // 5. Prove it: a fresh connection trusting only the CA.
    let dir = tempfile_dir().map_err(|e| TargetError::Other(e.to_string()))?;
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, format!("@cert-authority {name} {}\n", job.ca_line_key))
        .map_err(|e| TargetError::Other(e.to_string()))?;
    let mut probe = spec.clone();
    probe.known_hosts_files = vec![kh];
    probe.global_known_hosts_files = vec![PathBuf::from("/dev/null")];
    probe.host_key_policy = Some(HostKeyPolicy::Strict);
    let mut last = String::new();
    let mut proved = false;
    // sshd re-executes on reload: give the listener a moment to come back.
    for _ in 0..25 {
        match ctx.connector().connect(&probe).await {
            Ok(s) => {
                s.close().await;
                proved = true;
                break;
            }
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    if !proved {
        return fail(format!(
            "certificate installed and sshd reloaded, but a connection trusting only the CA failed: {last}"
        ));
    }
    result["verified"] = json!(true);
    Ok(with_diff(HostOutcome::changed(&host, result)).with_changes(journal_changes(&change)))
}

/// The run journal's record of the files a certify change wrote on a host (the certificate,
/// our configuration block): hashes before and after, as for copied files.
fn journal_changes(change: &sshd::Change) -> Vec<FileChange> {
    use sha2::Digest;
    let hash = |t: &str| crate::target::hex(&sha2::Sha256::digest(t.as_bytes()));
    change
        .ops
        .iter()
        .filter_map(|op| match op {
            sshd::FileOp::Write {
                path,
                before,
                after,
                ..
            } => Some(FileChange {
                path: path.clone(),
                kind: ChangeKind::Copied {
                    sha256_before: before.as_deref().map(hash),
                    sha256_after: hash(after),
                },
            }),
            _ => None,
        })
        .collect()
}

/// The name of our sshd configuration block (`sshfleet-hostcertificate.conf` drop-in).
const BLOCK: &str = "hostcertificate";

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..100u32 {
        let d = base.join(format!(
            "sshfleet-certify-{}-{}-{i}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        if std::fs::create_dir(&d).is_ok() {
            return Ok(d);
        }
    }
    Err(std::io::Error::other("cannot create a temp directory"))
}

/// The `hostkeys certify` driver.
pub fn certify(g: &Config, c: &CertifyConfig) -> Result<ExitCode> {
    let secs = parse_validity(&c.validity).map_err(Error::Usage)?;
    let ca = load_ca(&c.ca, c.ca_passphrase_env.as_deref())?;
    let ca_pub = ca.public_key().to_openssh().map_err(|e| Error::KeyFile {
        path: c.ca.clone(),
        msg: e.to_string(),
    })?;
    // Type and base64 only (no comment).
    let ca_line_key = ca_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let specs = g.resolve(&c.pattern)?;
    if specs.is_empty() {
        return Ok(no_hosts(&c.pattern));
    }
    let names: Vec<String> = {
        let mut v: Vec<String> = Vec::new();
        for s in &specs {
            let (h, p) = crate::ssh::client::known_hosts_name(s);
            let n = host_key_name(h, p);
            if !v.contains(&n) {
                v.push(n);
            }
        }
        v
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let job = Arc::new(Job {
        ca,
        ca_line_key: ca_line_key.clone(),
        cfg: c.clone(),
        check: g.check,
        valid_after: now.saturating_sub(300),
        valid_before: now.saturating_add(secs),
    });
    let code = run_on_specs(g, specs, g.reporter(), move |ctx| {
        certify_host(job.clone(), ctx)
    });
    let line = format!("@cert-authority {} {ca_line_key}", names.join(","));
    match g.report.output {
        OutputMode::Json => eprintln!("{line}"),
        OutputMode::Text => {
            println!("\nAdd this line to users' known_hosts to trust these hosts' certificates:");
            println!("{line}");
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_units() {
        assert_eq!(parse_validity("52w"), Ok(52 * 7 * 86400));
        assert_eq!(parse_validity("+1w2d"), Ok(9 * 86400));
        assert_eq!(parse_validity("3600"), Ok(3600));
        assert_eq!(parse_validity("90m"), Ok(5400));
        assert!(parse_validity("5y").is_err());
        assert!(parse_validity("0").is_err());
        assert!(parse_validity("w").is_err());
    }

    /// `ssh-keygen -L` (OpenSSH) reads our certificate as a host certificate with our
    /// principals and validity, signed by our CA.
    #[test]
    fn signed_certificate_read_by_ssh_keygen() {
        let dir = tempfile::tempdir().unwrap();
        let keygen = |name: &str| {
            let p = dir.path().join(name);
            let st = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&p)
                .status()
                .unwrap();
            assert!(st.success());
            p
        };
        let ca_path = keygen("ca");
        let host_path = keygen("host");
        let ca = load_ca(&ca_path, None).unwrap();
        let host_pub = PublicKey::from_openssh(
            &std::fs::read_to_string(host_path.with_extension("pub")).unwrap(),
        )
        .unwrap();
        let principals = vec!["web01".to_string(), "10.0.0.5".to_string()];
        let cert = sign_host_key(
            &ca,
            &host_pub,
            "web01",
            &principals,
            1_000_000,
            2_000_000_000,
        )
        .unwrap();
        let cert_path = dir.path().join("host-cert.pub");
        std::fs::write(&cert_path, cert.to_openssh().unwrap()).unwrap();
        let out = std::process::Command::new("ssh-keygen")
            .arg("-L")
            .arg("-f")
            .arg(&cert_path)
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{s}");
        assert!(s.contains("host certificate"), "{s}");
        assert!(s.contains("Key ID: \"web01\""), "{s}");
        assert!(s.contains("web01") && s.contains("10.0.0.5"), "{s}");
        let ca_fp = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(ca_path.with_extension("pub"))
            .output()
            .unwrap();
        let ca_fp = String::from_utf8_lossy(&ca_fp.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        assert!(s.contains(&ca_fp), "signed by our CA: {s}");
        // An encrypted CA without a passphrase source: a clear error, no prompt.
        let enc = dir.path().join("enc");
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "pw123", "-f"])
            .arg(&enc)
            .status()
            .unwrap();
        assert!(st.success());
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            let e = load_ca(&enc, None).unwrap_err().to_string();
            assert!(e.contains("--ca-passphrase-env"), "{e}");
        }
        let e = load_ca(&enc, Some("SSHFLEET_TEST_UNSET_VAR_X"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not set"), "{e}");
    }
}
