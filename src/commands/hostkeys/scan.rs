//! `sshfleet hostkeys scan [--update-known-hosts [--accept-changed]]`: keyscan every selected
//! host ([`crate::ssh::scan`]), compare with the known_hosts files its resolved configuration
//! uses, report, and optionally bring the controller's known_hosts up to date.
//!
//! What `--update-known-hosts` writes, and why:
//! - keys reported `missing` are added (next to the host's entries, hashed if the host's
//!   entries — or the whole file — are hashed; [`crate::known_hosts::edit`]) to the **first
//!   user known_hosts file** of the host (`UserKnownHostsFile`, where accept-new writes too);
//! - a `changed` key may be a man-in-the-middle: it is **not** written unless
//!   `--accept-changed` says the change is known to be legitimate (a reinstalled host, a
//!   rotation done by other means); then it replaces the old key(s) of that type for that host;
//! - a `revoked` key is never written;
//! - `--check` writes nothing and shows the change as a diff (so does `--diff`).
//!
//! Exit code ([`ExitCode::of_host_keys`]): 0 when every host matches (or is only missing keys,
//! or is trusted through a certificate), 2 when any host presents a changed or revoked key that
//! was not accepted, 4 when any host could not be scanned.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::commands::{Config, no_hosts};
use crate::error::{Error, ExitCode, Result};
use crate::inventory::conn::ConnSpec;
use crate::known_hosts::edit::{self, Change, Edited, Form};
use crate::known_hosts::{KnownHosts, host_key_name};
use crate::report::OutputMode;
use crate::ssh::Connector;
use crate::ssh::scan::{self, HostStatus, KeyStatus, Presented, ScannedCert, ScannedKey};

/// `hostkeys scan` options.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub pattern: String,
    /// `--update-known-hosts`: add missing keys to the controller's known_hosts.
    pub update: bool,
    /// `--accept-changed`: also replace changed keys (only with `update`).
    pub accept_changed: bool,
}

/// The scan of one host.
#[derive(Debug, Clone)]
pub struct HostScan {
    pub host: String,
    /// The name looked up in known_hosts.
    pub name: String,
    /// Where a new key for it is written.
    pub user_file: Option<PathBuf>,
    pub keys: Vec<ScannedKey>,
    pub cert: Option<ScannedCert>,
    pub error: Option<String>,
}

impl HostScan {
    pub fn status(&self) -> HostStatus {
        if self.error.is_some() && self.keys.is_empty() {
            return HostStatus::Unreachable;
        }
        scan::host_status(&self.keys, self.cert.as_ref())
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Keyscan one host and classify what it presents.
pub async fn scan_host(connector: &Connector, spec: &ConnSpec) -> HostScan {
    let (user, global) = connector.known_hosts_files(spec);
    let (kh_host, kh_port) = crate::ssh::client::known_hosts_name(spec);
    let name = host_key_name(kh_host, kh_port);
    let principal = spec
        .host_key_alias
        .clone()
        .unwrap_or_else(|| spec.address.clone());
    let mut out = HostScan {
        host: spec.name.clone(),
        name: name.clone(),
        user_file: user.first().cloned(),
        keys: vec![],
        cert: None,
        error: None,
    };
    let files: Vec<PathBuf> = user.iter().chain(global.iter()).cloned().collect();
    let known = match KnownHosts::load(&files) {
        Ok(k) => k,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    let families = scan::families();
    let all: Vec<_> = families.iter().flat_map(|(_, a)| a.clone()).collect();
    let want_cert = !known.authorities_for(&name).is_empty();
    let f = &families;
    let (k0, k1, k2, cert) = tokio::join!(
        connector.scan_host_key(spec, f[0].1.clone(), false),
        connector.scan_host_key(spec, f[1].1.clone(), false),
        connector.scan_host_key(spec, f[2].1.clone(), false),
        async {
            if want_cert {
                Some(connector.scan_host_key(spec, all, true).await)
            } else {
                None
            }
        }
    );
    let plain = [k0, k1, k2];
    let mut errors = Vec::new();
    for (r, (fam, _)) in plain.into_iter().zip(families.iter()) {
        match r {
            Ok(Presented::Key(k)) => match k.to_bytes() {
                Ok(blob) => {
                    let kt = k.algorithm().as_str().to_string();
                    if !out.keys.iter().any(|s| s.blob == blob) {
                        out.keys.push(scan::classify(&known, &name, &kt, &blob));
                    }
                }
                Err(e) => errors.push(format!("{fam}: {e}")),
            },
            Ok(Presented::Certificate(_)) => {}
            Err(e) => errors.push(format!("{fam}: {e}")),
        }
    }
    if let Some(Ok(Presented::Certificate(c))) = cert {
        out.cert = Some(scan::classify_cert(&known, &name, &principal, &c, now()));
    }
    if out.keys.is_empty() {
        out.error = Some(errors.join("; "));
    }
    out
}

/// Scan `specs`, `forks` hosts at a time (results in `specs` order).
pub async fn scan_all(connector: &Connector, specs: Vec<ConnSpec>, forks: usize) -> Vec<HostScan> {
    let sem = Arc::new(tokio::sync::Semaphore::new(forks.max(1)));
    let mut tasks = Vec::new();
    for spec in specs {
        let c = connector.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await;
            scan_host(&c, &spec).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("scan task panicked"));
    }
    connector.close_hops().await;
    out
}

/// The known_hosts edits for these scans, per user file: add missing keys, replace changed ones
/// when `accept_changed`; written unless `write` is false (check mode).
pub fn update_known_hosts(
    scans: &[HostScan],
    accept_changed: bool,
    write: bool,
) -> Result<Vec<Edited>> {
    let mut by_file: BTreeMap<PathBuf, Vec<&HostScan>> = BTreeMap::new();
    for s in scans {
        if let Some(f) = &s.user_file {
            by_file.entry(f.clone()).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for (path, hosts) in by_file {
        let edited = edit::edit_file(&path, write, |doc| {
            let mut changes: Vec<Change> = Vec::new();
            for h in &hosts {
                if h.status() == HostStatus::Revoked {
                    continue;
                }
                for k in &h.keys {
                    match k.status {
                        KeyStatus::Missing => changes.extend(doc.add(
                            &[&h.name],
                            &k.key_type,
                            &k.blob,
                            Form::auto(),
                        )?),
                        KeyStatus::Changed if accept_changed => {
                            let old: Vec<Vec<u8>> = doc
                                .keys_for(&h.name)
                                .into_iter()
                                .filter(|(t, b)| *t == k.key_type && *b != k.blob)
                                .map(|(_, b)| b)
                                .collect();
                            match old.split_first() {
                                Some((first, rest)) => {
                                    changes.extend(doc.replace(
                                        &h.name,
                                        first,
                                        &k.key_type,
                                        &k.blob,
                                        Form::auto(),
                                    )?);
                                    for b in rest {
                                        changes.extend(doc.remove(&h.name, b)?);
                                    }
                                }
                                // Listed only in another (global) file: add ours.
                                None => changes.extend(doc.add(
                                    &[&h.name],
                                    &k.key_type,
                                    &k.blob,
                                    Form::auto(),
                                )?),
                            }
                        }
                        _ => {}
                    }
                }
            }
            Ok(changes)
        })?;
        out.push(edited);
    }
    Ok(out)
}

fn key_json(k: &ScannedKey) -> Value {
    json!({
        "type": k.key_type,
        "fingerprint": k.fingerprint,
        "status": k.status,
        "known": k.known,
    })
}

/// The `hostkeys scan` driver.
pub fn scan(g: &Config, c: &ScanConfig) -> Result<ExitCode> {
    let specs = g.resolve(&c.pattern)?;
    if specs.is_empty() {
        return Ok(no_hosts(&c.pattern));
    }
    if c.accept_changed && !c.update {
        return Err(Error::Usage(
            "--accept-changed only makes sense with --update-known-hosts".into(),
        ));
    }
    let connector = g.connector();
    let forks = g.run.forks;
    let scans = crate::fleet::block_on(async move { scan_all(&connector, specs, forks).await });
    let edits = if c.update {
        update_known_hosts(&scans, c.accept_changed, !g.check)?
    } else {
        vec![]
    };
    // A changed key accepted into the host's known_hosts (written, or would be in check mode).
    let accepted = |s: &HostScan| {
        c.accept_changed
            && s.status() == HostStatus::Changed
            && edits
                .iter()
                .any(|e| Some(&e.path) == s.user_file.as_ref() && (e.written || g.check))
    };
    let any_unreachable = scans.iter().any(|s| s.status() == HostStatus::Unreachable);
    let any_mismatch = scans.iter().any(|s| {
        matches!(s.status(), HostStatus::Revoked)
            || (s.status() == HostStatus::Changed && !accepted(s))
    });
    let show_diff = g.check || g.diff;
    match g.report.output {
        OutputMode::Json => {
            let mut hosts = serde_json::Map::new();
            for s in &scans {
                hosts.insert(
                    s.host.clone(),
                    json!({
                        "status": s.status().as_str(),
                        "name": s.name,
                        "keys": s.keys.iter().map(key_json).collect::<Vec<_>>(),
                        "certificate": s.cert,
                        "msg": s.error,
                    }),
                );
            }
            let kh: Vec<Value> = edits
                .iter()
                .map(|e| {
                    let mut v = json!({
                        "path": e.path,
                        "changed": e.changed(),
                        "written": e.written,
                    });
                    if show_diff && e.changed() {
                        v["diff"] = json!({"before": e.before, "after": e.after});
                    }
                    v
                })
                .collect();
            let doc = json!({"hosts": hosts, "known_hosts": kh});
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        OutputMode::Text => {
            let w = scans.iter().map(|s| s.host.len()).max().unwrap_or(4).max(4);
            for s in &scans {
                let st = s.status().as_str();
                match &s.error {
                    Some(e) if s.keys.is_empty() => println!("{:w$}  {st:12}  {e}", s.host),
                    _ => {
                        let mut first = true;
                        for k in &s.keys {
                            let label = if first { st } else { "" };
                            let host = if first { s.host.as_str() } else { "" };
                            first = false;
                            let mut line = format!(
                                "{host:w$}  {label:12}  {} {} {}",
                                k.key_type,
                                k.fingerprint,
                                serde_json::to_value(k.status)
                                    .ok()
                                    .and_then(|v| v.as_str().map(String::from))
                                    .unwrap_or_default()
                            );
                            if k.status == KeyStatus::Changed {
                                line.push_str(&format!(" (known: {})", k.known.join(", ")));
                            }
                            println!("{line}");
                        }
                        if let Some(cert) = &s.cert {
                            println!(
                                "{:w$}  {:12}  certificate {} {:?}: {}",
                                "",
                                "",
                                cert.key_type,
                                cert.key_id,
                                cert.refusal.as_deref().unwrap_or("trusted")
                            );
                        }
                    }
                }
            }
            for e in &edits {
                if !e.changed() {
                    println!("known_hosts {}: up to date", e.path.display());
                    continue;
                }
                let verb = if e.written { "updated" } else { "would update" };
                println!(
                    "known_hosts {}: {verb} ({} line(s) changed)",
                    e.path.display(),
                    e.changes.len()
                );
                if show_diff {
                    let label = e.path.display().to_string();
                    print!(
                        "{}",
                        crate::files::diff::unified(&e.before, &e.after, &label, &label)
                    );
                }
            }
            let changed_skipped = scans
                .iter()
                .filter(|s| s.status() == HostStatus::Changed && !accepted(s))
                .count();
            if c.update && changed_skipped > 0 {
                eprintln!(
                    "[WARNING]: {changed_skipped} host(s) present a changed key; not written \
                     (a changed key may be a man-in-the-middle: check it out of band, then rerun \
                     with --accept-changed)"
                );
            }
        }
    }
    Ok(ExitCode::of_host_keys(any_unreachable, any_mismatch))
}
