//! `sshfleet hostkeys rotate [--type ed25519] [--retire]` and `sshfleet hostkeys retire`:
//! host-key rotation in two lock-out-safe phases, per host, each step only after the one
//! before it succeeded (the sshd side is planned by [`crate::ops::sshd::hostkeys`]).
//!
//! **publish** (`rotate`): connect with the host key known today (strict checking) → read
//! sshd's state as root (`sshd -T`, the config files) → generate `OLD.new` on the host (the
//! private key never leaves it) and serve it after the old key, `sshd -t`, reload, check sshd
//! runs (one script, restored on any failure; see [`crate::ops::sshd::change`]) → over a
//! **fresh** connection verified with the old key, check that sshd announces the new key
//! (`hostkeys-00@openssh.com`) and have it prove it holds the private half
//! (`hostkeys-prove-00@openssh.com`, signed over that connection's session id) → add the new
//! key to the controller's known_hosts next to the old one.
//!
//! **retire** (`retire`, or `rotate --retire` right after publish): serve the new key first →
//! prove a fresh connection whose known_hosts holds **only** the new key logs in (on failure
//! the old order is put back: the host keeps serving its old key) → move the new key over the
//! old key's file and give sshd back its original host-key configuration (Debian stock: our
//! drop-in removed), test, reload → prove the only-new connection again → remove the old key
//! from the controller's known_hosts.
//!
//! Check mode reads the host's state and shows the planned sshd configuration change and the
//! known_hosts change, changing nothing. known_hosts edits go through
//! [`crate::known_hosts::edit`] (hashed or plain form kept, atomic write), serialized within
//! the run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::super::{Config, no_hosts, run_on_specs};
use crate::error::{ExitCode, Result};
use crate::events::{ChangeKind, FileChange, HostOutcome};
use crate::fleet::HostCtx;
use crate::inventory::conn::{ConnSpec, HostKeyPolicy};
use crate::known_hosts::edit::{self, Form};
use crate::known_hosts::{fingerprint, host_key_name};
use crate::ops::sshd::hostkeys;
use crate::ops::sshd::{self, Change, Manager, SshdError, SshdFacts};
use crate::ssh::Connector;
use crate::target::{Target, TargetError};

/// `hostkeys rotate|retire` options.
#[derive(Debug, Clone)]
pub struct RotateConfig {
    pub pattern: String,
    /// `ed25519` (default), `ecdsa`, `rsa`.
    pub key_type: String,
    /// Publish a new key (rotate).
    pub publish: bool,
    /// Retire the old key (retire, or rotate --retire).
    pub retire: bool,
}

/// Shared by every host job of one run.
struct Run {
    cfg: RotateConfig,
    check: bool,
    diff: bool,
    /// Controller temp dir for the only-new-key known_hosts files (removed at the end).
    tmp: PathBuf,
}

/// Serializes known_hosts edits of concurrent host jobs (edit_file also redoes an edit that
/// raced with another program).
static KH_LOCK: Mutex<()> = Mutex::new(());

/// Run `hostkeys rotate|retire`.
pub fn rotate(g: &Config, c: &RotateConfig) -> Result<ExitCode> {
    if hostkeys::algorithm_prefix(&c.key_type).is_none() {
        return Err(crate::error::Error::Usage(format!(
            "--type {}: expected ed25519, ecdsa or rsa",
            c.key_type
        )));
    }
    let specs = g.resolve(&c.pattern)?;
    if specs.is_empty() {
        return Ok(no_hosts(&c.pattern));
    }
    let tmp = make_tmp()?;
    let run = Arc::new(Run {
        cfg: c.clone(),
        check: g.check,
        diff: g.diff || g.report.diff,
        tmp: tmp.clone(),
    });
    let code = run_on_specs(g, specs, g.reporter(), move |ctx| {
        let run = run.clone();
        async move { Ok(host_job(&ctx, &run).await) }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(code)
}

fn make_tmp() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    for n in 0..1000 {
        let d = base.join(format!("sshfleet-hostkeys-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(crate::error::Error::io(d.display(), e)),
        }
    }
    Err(crate::error::Error::Usage(
        "cannot create a temp directory".into(),
    ))
}

/// What one host's job did, for the outcome.
#[derive(Default)]
struct Report {
    changed: bool,
    result: serde_json::Map<String, Value>,
    diff: String,
    /// Host-key files changed, for the run journal.
    changes: Vec<FileChange>,
}

impl Report {
    /// Record a host key file change (fingerprints only) for the journal.
    fn key_change(&mut self, path: &str, before: Option<&str>, after: Option<&str>) {
        let fp = |p: &str| split_pub(p).ok().map(|(_, b)| fingerprint(&b));
        self.changes.push(FileChange {
            path: path.to_string(),
            kind: ChangeKind::HostKey {
                fingerprint_before: before.and_then(fp),
                fingerprint_after: after.and_then(fp),
            },
        });
    }

    fn sshd_change(&mut self, c: &Change) {
        if c.is_empty() {
            return;
        }
        self.changed = true;
        for d in c.diffs() {
            self.diff.push_str(&d.render());
        }
    }
    fn kh_change(&mut self, e: &edit::Edited) {
        if !e.changed() {
            return;
        }
        self.changed = true;
        let label = e.path.display().to_string();
        self.diff.push_str(&crate::files::diff::unified(
            &e.before,
            &e.after,
            &format!("before: {label}"),
            &format!("after: {label}"),
        ));
        let files = self
            .result
            .entry("known_hosts")
            .or_insert_with(|| json!([]));
        if let Some(a) = files.as_array_mut()
            && !a.contains(&json!(label))
        {
            a.push(json!(label));
        }
    }
}

async fn host_job(ctx: &HostCtx, run: &Run) -> HostOutcome {
    let host = ctx.host().to_string();
    let mut rep = Report::default();
    let res = steps(ctx, run, &mut rep).await;
    let mut o = match res {
        Ok(()) if rep.changed => HostOutcome::changed(&host, Value::Object(rep.result.clone())),
        Ok(()) => HostOutcome::ok(&host, Value::Object(rep.result.clone())),
        Err(Failure::Target(e)) => HostOutcome::from_error(&host, &e),
        Err(Failure::Step(msg)) => {
            HostOutcome::failed(&host, msg).with_result(Value::Object(rep.result.clone()))
        }
    };
    // A host that failed may have changed a key before failing: recorded whatever the status.
    o = o.with_changes(std::mem::take(&mut rep.changes));
    if run.diff && !rep.diff.is_empty() {
        o = o.with_diff(Value::String(rep.diff));
    }
    o
}

#[derive(Debug)]
enum Failure {
    Target(TargetError),
    Step(String),
}

impl From<SshdError> for Failure {
    fn from(e: SshdError) -> Self {
        match e {
            SshdError::Target(t) => Failure::Target(t),
            e => Failure::Step(e.to_string()),
        }
    }
}

impl From<TargetError> for Failure {
    fn from(e: TargetError) -> Self {
        Failure::Target(e)
    }
}

fn step(msg: impl Into<String>) -> Failure {
    Failure::Step(msg.into())
}

async fn steps(ctx: &HostCtx, run: &Run, rep: &mut Report) -> std::result::Result<(), Failure> {
    let host = ctx.host().to_string();
    let kt = run.cfg.key_type.as_str();
    // Connected with the host key known today (strict unless the user opted out).
    let t = ctx.target().await?;
    let facts = sshd::gather(t, &[]).await?;
    rep.result.insert(
        "reload".into(),
        json!(match facts.manager {
            Manager::Systemd => "systemctl reload".to_string(),
            Manager::Pidfile => format!("SIGHUP to the pid in {}", facts.pidfile),
        }),
    );
    let name = kh_name(ctx.spec());
    let (user_files, _) = ctx.connector().known_hosts_files(ctx.spec());
    let mut facts = facts;
    if run.cfg.publish {
        let (st, change) = hostkeys::plan_publish(&facts, &host, kt)?;
        rep.result
            .insert("old_key".into(), json!(fp_of(&st.old_pub)));
        rep.result.insert("key_file".into(), json!(st.new_path));
        rep.sshd_change(&change);
        let new_pub = if run.check {
            if let Some(p) = &st.new_pub {
                Some(p.clone())
            } else {
                rep.changed = true;
                rep.diff.push_str(&format!(
                    "known_hosts: + {name} {} (the new key, generated on the host)\n",
                    hostkeys::algorithm_prefix(kt).unwrap_or(kt)
                ));
                None
            }
        } else if change.is_empty() {
            st.new_pub.clone()
        } else {
            let applied = sshd::apply(t, &facts, &change).await?;
            let new_pub = applied
                .generated
                .into_iter()
                .find(|(p, _)| *p == st.new_path)
                .map(|(_, k)| k)
                .ok_or_else(|| step("ssh-keygen printed no public key"))?;
            rep.key_change(&st.new_path, None, Some(&new_pub));
            Some(new_pub)
        };
        if let Some(new_pub) = new_pub {
            rep.result.insert("new_key".into(), json!(fp_of(&new_pub)));
            if !run.check {
                prove_announced(ctx, &new_pub)
                    .await
                    .map_err(|e| step(format!("published, but the new key is not proven ({e}); sshd still serves the old key first; rerun to retry")))?;
                rep.result.insert("proven".into(), json!(true));
            }
            let (old_t, old_blob) = split_pub(&st.old_pub)?;
            let (new_t, new_blob) = split_pub(&new_pub)?;
            let _ = old_t;
            for e in kh_add(&user_files, &name, &old_blob, &new_t, &new_blob, !run.check)? {
                rep.kh_change(&e);
            }
        }
        if run.cfg.retire && !run.check {
            // The state after publish, for the retire planning.
            facts = sshd::gather(t, &[]).await?;
        }
    }
    if run.cfg.retire {
        if run.check && run.cfg.publish && !facts_has_new(&facts, &host, kt) {
            // Publish is only planned: retire would follow it.
            rep.diff.push_str(
                "(then retire: the new key moves over the old one, the old key leaves known_hosts)\n",
            );
            return Ok(());
        }
        retire(ctx, run, rep, t, &facts, &name, &user_files).await?;
    }
    Ok(())
}

fn facts_has_new(facts: &SshdFacts, host: &str, kt: &str) -> bool {
    hostkeys::key_state(facts, host, kt).is_ok_and(|s| s.new_pub.is_some())
}

async fn retire<T: Target>(
    ctx: &HostCtx,
    run: &Run,
    rep: &mut Report,
    t: &T,
    facts: &SshdFacts,
    name: &str,
    user_files: &[PathBuf],
) -> std::result::Result<(), Failure> {
    let host = ctx.host();
    let kt = run.cfg.key_type.as_str();
    let (st, switch) = hostkeys::plan_switch(facts, host, kt)?;
    let new_pub = st.new_pub.clone().expect("plan_switch checked");
    rep.result
        .insert("old_key".into(), json!(fp_of(&st.old_pub)));
    rep.result.insert("new_key".into(), json!(fp_of(&new_pub)));
    let (_, old_blob) = split_pub(&st.old_pub)?;
    let (new_t, new_blob) = split_pub(&new_pub)?;
    if run.check {
        rep.sshd_change(&switch);
        let (_, finish) = hostkeys::plan_finish(facts, host, kt)?;
        rep.sshd_change(&finish);
        for e in kh_add(user_files, name, &old_blob, &new_t, &new_blob, false)? {
            rep.kh_change(&e);
        }
        for e in kh_remove(user_files, name, &old_blob, false)? {
            rep.kh_change(&e);
        }
        return Ok(());
    }
    // 1. The new key first; a fresh connection that accepts only the new key must log in.
    if !switch.is_empty() {
        sshd::apply(t, facts, &switch).await?;
        rep.sshd_change(&switch);
    }
    if let Err(e) = connect_only(ctx, run, name, &new_pub).await {
        // Put the old order back: the host keeps serving its old key.
        let back = match sshd::gather(t, &[]).await {
            Ok(now) => {
                let want = sshd::plan::KeysWanted::List(facts.host_keys.clone());
                match sshd::plan::serve_host_keys(&now, host, &want) {
                    Ok(c) if !c.is_empty() => sshd::apply(t, &now, &c).await.map(|_| ()),
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let back = match back {
            Ok(()) => "the old key is served first again".to_string(),
            Err(b) => format!("putting the old key first again failed too: {b}"),
        };
        return Err(step(format!(
            "a connection accepting only the new key failed ({e}); {back}; the old key stays"
        )));
    }
    // 2. The new key takes the old one's place; sshd's host-key config as before publish.
    let now = sshd::gather(t, &[]).await?;
    let (_, finish) = hostkeys::plan_finish(&now, host, kt)?;
    sshd::apply(t, &now, &finish).await?;
    rep.sshd_change(&finish);
    rep.key_change(&st.old_path, Some(&st.old_pub), Some(&new_pub));
    rep.key_change(&st.new_path, Some(&new_pub), None);
    rep.result.insert("key_file".into(), json!(st.old_path));
    connect_only(ctx, run, name, &new_pub).await.map_err(|e| {
        step(format!(
            "retired, but a fresh connection accepting only the new key failed afterwards: {e}"
        ))
    })?;
    rep.result.insert("proven".into(), json!(true));
    // 3. known_hosts: the new key is there (added at publish), the old one goes.
    for e in kh_add(user_files, name, &old_blob, &new_t, &new_blob, true)? {
        rep.kh_change(&e);
    }
    for e in kh_remove(user_files, name, &old_blob, true)? {
        rep.kh_change(&e);
    }
    rep.changed = true;
    Ok(())
}

/// `TYPE BASE64` → (type, blob).
fn split_pub(p: &str) -> std::result::Result<(String, Vec<u8>), Failure> {
    let mut w = p.split_whitespace();
    let (Some(t), Some(b)) = (w.next(), w.next()) else {
        return Err(step(format!("malformed public key {p:?}")));
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b)
        .map_err(|e| step(format!("malformed public key {p:?}: {e}")))?;
    Ok((t.to_string(), blob))
}

fn fp_of(p: &str) -> String {
    split_pub(p)
        .map(|(t, b)| format!("{t} {}", fingerprint(&b)))
        .unwrap_or_default()
}

/// The name the host's keys are listed under (`HostKeyAlias`, `host`, `[host]:port`).
fn kh_name(spec: &ConnSpec) -> String {
    match &spec.host_key_alias {
        Some(a) => host_key_name(a, 22),
        None => host_key_name(&spec.address, spec.port),
    }
}

fn lists(path: &Path, name: &str, blob: &[u8]) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| {
        edit::Document::parse(&t)
            .keys_for(name)
            .iter()
            .any(|(_, b)| b == blob)
    })
}

fn kh_err(e: edit::FileEditError) -> Failure {
    step(format!("known_hosts: {e}"))
}

/// Add the new key next to the old one in every user file that lists the old one (the first
/// user file when none does).
fn kh_add(
    files: &[PathBuf],
    name: &str,
    old_blob: &[u8],
    new_type: &str,
    new_blob: &[u8],
    write: bool,
) -> std::result::Result<Vec<edit::Edited>, Failure> {
    let _g = KH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut targets: Vec<&PathBuf> = files.iter().filter(|f| lists(f, name, old_blob)).collect();
    if targets.is_empty() {
        targets.extend(files.first());
    }
    let mut out = Vec::new();
    for f in targets {
        out.push(
            edit::edit_file(f, write, |doc| {
                doc.add(&[name], new_type, new_blob, Form::auto())
            })
            .map_err(kh_err)?,
        );
    }
    Ok(out)
}

/// Remove the old key of `name` from every user file.
fn kh_remove(
    files: &[PathBuf],
    name: &str,
    old_blob: &[u8],
    write: bool,
) -> std::result::Result<Vec<edit::Edited>, Failure> {
    let _g = KH_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::new();
    for f in files.iter().filter(|f| lists(f, name, old_blob)) {
        out.push(edit::edit_file(f, write, |doc| doc.remove(name, old_blob)).map_err(kh_err)?);
    }
    Ok(out)
}

/// Connect to `spec` afresh, retrying while sshd re-executes after a reload.
async fn connect_fresh(
    c: &Connector,
    spec: &ConnSpec,
) -> std::result::Result<crate::ssh::Session, String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match c.connect(spec).await {
            Ok(s) => return Ok(s),
            Err(e @ crate::ssh::SshError::HostKey(_)) => return Err(e.to_string()),
            Err(e) if Instant::now() > deadline => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Over a fresh connection verified with the known keys: sshd announces `new_pub` and proves
/// it holds its private half.
async fn prove_announced(ctx: &HostCtx, new_pub: &str) -> std::result::Result<(), String> {
    // The apply step waited for sshd to restart; a second try covers a connection that still
    // raced with the reload.
    let mut tries = 0;
    loop {
        tries += 1;
        match prove_once(ctx, new_pub).await {
            Err(e) if tries < 3 && e.starts_with("sshd does not announce") => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            r => return r,
        }
    }
}

async fn prove_once(ctx: &HostCtx, new_pub: &str) -> std::result::Result<(), String> {
    let key = russh::keys::PublicKey::from_openssh(new_pub).map_err(|e| e.to_string())?;
    let s = connect_fresh(ctx.connector(), ctx.spec()).await?;
    let res = async {
        // sshd announces its keys once after authentication, before any channel data.
        s.exec("true", None).await.map_err(|e| e.to_string())?;
        let announced = s.announced_host_keys().unwrap_or_default();
        if !announced.iter().any(|k| k.key_data() == key.key_data()) {
            return Err(format!(
                "sshd does not announce the new key ({} keys announced)",
                announced.len()
            ));
        }
        s.prove_host_keys(vec![key])
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    s.close().await;
    res
}

/// A fresh connection whose known_hosts holds only `new_pub` for the host logs in.
async fn connect_only(
    ctx: &HostCtx,
    run: &Run,
    name: &str,
    new_pub: &str,
) -> std::result::Result<(), String> {
    let file = run
        .tmp
        .join(format!("{}.known_hosts", sanitize(ctx.host())));
    let empty = run.tmp.join("empty");
    let (t, b) = split_pub(new_pub).map_err(|_| "malformed key".to_string())?;
    let line = format!(
        "{name} {t} {}\n",
        base64::engine::general_purpose::STANDARD.encode(b)
    );
    std::fs::write(&file, line).map_err(|e| format!("{}: {e}", file.display()))?;
    std::fs::write(&empty, "").map_err(|e| format!("{}: {e}", empty.display()))?;
    let mut spec = ctx.spec().clone();
    spec.known_hosts_files = vec![file];
    spec.global_known_hosts_files = vec![empty];
    spec.host_key_policy = Some(HostKeyPolicy::Strict);
    let s = connect_fresh(ctx.connector(), &spec).await?;
    let r = s.exec("true", None).await.map_err(|e| e.to_string());
    s.close().await;
    r.map(|_| ())
}

fn sanitize(h: &str) -> String {
    h.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_keys() {
        let mut s = ConnSpec::new("web1");
        s.address = "10.0.0.5".into();
        s.port = 2222;
        assert_eq!(kh_name(&s), "[10.0.0.5]:2222");
        s.host_key_alias = Some("web1.example".into());
        assert_eq!(kh_name(&s), "web1.example");
        let (t, b) = split_pub("ssh-ed25519 AAAA").unwrap();
        assert_eq!((t.as_str(), b.len()), ("ssh-ed25519", 3));
        assert!(split_pub("ssh-ed25519").is_err());
        assert_eq!(sanitize("a/b c"), "a_b_c");
    }
}
