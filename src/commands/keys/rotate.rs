//! `keys rotate`: replace a user's keys fleet-wide without locking anyone out.
//!
//! On the controller, once: load the new key pair (or generate it: `--generate`), resolve the
//! `--keep` keys, pick the `--install` destination. Then per host, strictly in order:
//! 1. over the normal connection (login user, `-b` if given) add the new key — the
//!    `authorized_key` operation with `state=present`;
//! 2. open a **fresh** connection as the rotated user offering **only** the new private key
//!    (no agent, no other identity, no fallback);
//! 3. only if 2 succeeded, over that new connection, apply the exclusive set {new key +
//!    `--keep`} (kept keys keep the options and comments they have in the file) with the
//!    operation's file guard (re-read, "still what was read" precondition, retried once).
//!
//! A host failing 2 keeps both keys and is reported failed ("new key refused by HOST; old key
//! kept"); the run exits non-zero and names those hosts. The exclusive step runs as the
//! rotated user (with become only when that user is also the login user), so the step that
//! removes keys is done by someone who just proved the new key works.
//!
//! Check mode: nothing is written (no key files either; a `--generate`d key lives only in
//! memory), step 2 is not attempted, and the per-host diff is the whole change (current file
//! → file after step 3).
//!
//! `--install`: after a run where every host switched, move the new pair to the private key
//! file the connection uses (`--private-key`, else the inventory's, which must be the same
//! file for every host), keeping the old pair as timestamped backups.
//!
//! Resuming (issue 20): the same command run after an interruption converges. A host whose
//! configured credentials are refused is logged into with the new key (the verification
//! login; `-v` says so) and finished over that connection; a host already holding exactly the
//! wanted set is `ok`; the recap adds how many hosts were already done ([`resume_story`]).
//! The controller side (the `--generate` journal, a half-done `--install`) is
//! [`super::resume`]'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::authorized_keys::{AuthorizedKeys, PublicKey};
use crate::commands::{Config, finish, no_hosts};
use crate::error::{Error, ExitCode, Result};
use crate::events::{HostOutcome, Status};
use crate::fleet::resolve::ConnOverrides;
use crate::fleet::{self, HostCtx};
use crate::inventory::conn::{BecomeSpec, ConnSpec};
use crate::ops::authorized_key::{AuthorizedKeyResult, OpError, RunMode, apply, edit_lock_dir};
use crate::ops::keys::list::{MAX_FILE, keyfile_path};
use crate::ops::keys::plan::{ExclusivePlan, KeyInfo, exclusive_plan, rotation_set};
use crate::progress::{Phase, ProgressHandle};
use crate::report::OutputMode;
use crate::ssh::keygen::{self, Secret};
use crate::ssh::target::SshTarget;
use crate::ssh::{Connector, SshError};
use crate::target::{EditHint, Target, TargetError, UserInfo};

use super::edit::{diff_text, edit_params, key_file_change, op_failure};
use super::hops::HopOrder;
use super::resume;
use super::source::resolve_all;
use super::{FileOptions, RotateConfig};

/// The new key as the controller knows it.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Private key file (absent in check mode with `--generate`).
    pub path: PathBuf,
    /// Its public line, as written in `authorized_keys`.
    pub public: PublicKey,
    /// Whether the pair exists on disk (false: check-mode generation).
    pub on_disk: bool,
}

/// Everything a host job needs, shared by all hosts.
pub struct Rotation {
    pub new_key: NewKey,
    pub keep: Vec<PublicKey>,
    /// `--user`; `None` = each host's login user.
    pub user: Option<String>,
    pub file: FileOptions,
    pub check: bool,
    /// Connector for the verification login: the new key's passphrase, no agent; it reaches
    /// hosts through the normal connector's bastion sessions.
    pub verify: Connector,
    /// Where each host's finished steps are reported (added, verified, set).
    pub progress: ProgressHandle,
    /// Bastions of the run rotate after the hosts behind them ([`HopOrder`]).
    pub order: Arc<HopOrder>,
    /// The login user of hosts whose inventory names none.
    pub default_user: String,
}

/// How a host's job logged in.
enum Login {
    /// With the configured credentials.
    Configured,
    /// The configured credentials were refused, the new key worked (an earlier run already
    /// rotated this host): the connection is already the verification login.
    NewKey,
}

/// One host: connect with the configured credentials; where they are refused (an earlier,
/// interrupted run already rotated the host), log in with the new key — the operator's own —
/// as the verification login would. Then [`rotate_on`].
pub async fn rotate_host(
    ctx: Arc<HostCtx>,
    r: Arc<Rotation>,
) -> std::result::Result<HostOutcome, TargetError> {
    let host = ctx.host().to_string();
    if !r.check && !r.order.behind(&host).is_empty() {
        let left = r.order.wait_behind(&host).await;
        if !left.is_empty() {
            return Ok(HostOutcome::failed(
                &host,
                format!(
                    "not rotated: {host} is the bastion of hosts that did not switch to the new key ({}); its old key stays so they remain reachable through it",
                    left.join(", ")
                ),
            ));
        }
    }
    let spec = ctx.spec();
    let login = spec.user.clone().unwrap_or_else(|| r.default_user.clone());
    let user = r.user.clone().unwrap_or_else(|| login.clone());
    let (t, how) = match ctx.connector().connect(spec).await {
        Ok(s) => (SshTarget::new(s, &spec.r#become)?, Login::Configured),
        Err(first @ SshError::Auth { .. }) if r.new_key.on_disk => {
            let vspec = verify_spec(spec, &login, &user, &r.new_key.path);
            match r
                .verify
                .connect_with_key_routed(&vspec, &r.new_key.path, spec)
                .await
            {
                Ok(s) => (SshTarget::new(s, &vspec.r#become)?, Login::NewKey),
                // Neither works: report the configured credentials' refusal.
                Err(_) => return Err(first.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let o = rotate_on(&ctx, &r, &t, &login, &user, how).await;
    t.close().await;
    o
}

/// Load or generate the new key pair (controller side, before any host is touched).
pub fn prepare_new_key(cfg: &RotateConfig, check: bool) -> Result<(NewKey, Option<String>)> {
    let passphrase = match &cfg.new_passphrase_env {
        Some(var) => Some(Secret::from_env(var)?),
        None => None,
    };
    let mut note = None;
    let (private, on_disk) = match &cfg.generate {
        Some(spec) => {
            let key = keygen::generate(spec)?;
            if check {
                note = Some(format!(
                    "check mode: generated a new {} key in memory only; nothing written to {}",
                    key.algorithm().as_str(),
                    cfg.new_key.display()
                ));
                (key, false)
            } else {
                keygen::write_new_pair(&cfg.new_key, &key, passphrase.as_ref())?;
                note = Some(format!(
                    "generated new key {} ({}) at {} and {}",
                    keygen::fingerprint(key.public_key()),
                    key.algorithm().as_str(),
                    cfg.new_key.display(),
                    keygen::pub_path(&cfg.new_key).display()
                ));
                (key, true)
            }
        }
        None => (
            keygen::load_private(&cfg.new_key, passphrase.as_ref())?,
            true,
        ),
    };
    let derived = keygen::public_line(private.public_key())?;
    let derived = PublicKey::parse_line(&derived).map_err(|e| Error::KeyFile {
        path: cfg.new_key.clone(),
        msg: e.to_string(),
    })?;
    // Prefer the .pub file's line (its comment), but it must be the same key.
    let pub_file = keygen::pub_path(&cfg.new_key);
    let public = match std::fs::read_to_string(&pub_file) {
        Ok(text) if on_disk => {
            let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let k = PublicKey::parse_line(line).map_err(|e| Error::KeyFile {
                path: pub_file.clone(),
                msg: e.to_string(),
            })?;
            if k.blob != derived.blob {
                return Err(Error::KeyMismatch {
                    public: pub_file.clone(),
                    private: cfg.new_key.clone(),
                    fingerprints: (k.fingerprint(), derived.fingerprint()),
                });
            }
            k
        }
        _ => derived,
    };
    if !public.options.is_empty() {
        return Err(Error::KeyFile {
            path: pub_file,
            msg: "a .pub file must not carry authorized_keys options".into(),
        });
    }
    Ok((
        NewKey {
            path: cfg.new_key.clone(),
            public,
            on_disk,
        },
        note,
    ))
}

/// The one private key file `--install` replaces: `--private-key`, else the identity file all
/// selected hosts use.
pub fn install_destination(g: &ConnOverrides, specs: &[ConnSpec]) -> Result<PathBuf> {
    if let Some(k) = &g.private_key {
        return Ok(k.clone());
    }
    let mut found: Option<&PathBuf> = None;
    for s in specs {
        match (s.identity_files.first(), found) {
            (None, _) => {
                return Err(Error::Usage(format!(
                    "--install: host {} has no private key file configured \
                     (ansible_ssh_private_key_file); give --private-key",
                    s.name
                )));
            }
            (Some(p), None) => found = Some(p),
            (Some(p), Some(f)) if p != f => {
                return Err(Error::Usage(format!(
                    "--install: hosts use different private key files ({} and {}); \
                     give --private-key",
                    f.display(),
                    p.display()
                )));
            }
            _ => {}
        }
    }
    found
        .cloned()
        .ok_or_else(|| Error::Usage("--install: no hosts".into()))
}

/// The spec of the verification login: the rotated user, only the new key, become only when
/// the rotated user is the login user.
pub fn verify_spec(spec: &ConnSpec, login_user: &str, user: &str, key: &Path) -> ConnSpec {
    let mut v = spec.clone();
    v.user = Some(user.to_string());
    v.identity_files = vec![key.to_path_buf()];
    if user != login_user {
        v.r#become = BecomeSpec::default();
    }
    v
}

/// Step 3 on the verified connection: plan the exclusive set from the current file, then
/// apply it.
async fn plan_and_apply(
    vt: &SshTarget,
    user: &str,
    path: Option<&str>,
    wanted: &[PublicKey],
    file: &FileOptions,
) -> std::result::Result<(ExclusivePlan, AuthorizedKeyResult), OpError> {
    let plan = plan_on(vt, user, path, wanted).await?;
    let mut params = edit_params(user, plan.set.clone(), file);
    params.exclusive = true;
    let res = apply(
        vt,
        &params,
        RunMode {
            check: false,
            diff: true,
        },
    )
    .await?;
    Ok((plan, res))
}

/// Read the current file over `t` and plan the exclusive set.
async fn plan_on<T: Target>(
    t: &T,
    user: &str,
    path: Option<&str>,
    wanted: &[PublicKey],
) -> std::result::Result<ExclusivePlan, OpError> {
    let info = t
        .lookup_user(user)
        .await?
        .ok_or_else(|| OpError::Failed(format!("user {user} does not exist")))?;
    let keyfile = keyfile_path(&info.home, path);
    let text = match t.read(&keyfile, MAX_FILE).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(TargetError::NotFound { .. }) => String::new(),
        Err(e) => return Err(e.into()),
    };
    exclusive_plan(&AuthorizedKeys::parse(&text), wanted)
        .map_err(|e| OpError::Failed(e.to_string()))
}

fn infos(v: &[KeyInfo]) -> Vec<String> {
    v.iter().map(|k| k.to_string()).collect()
}

fn step_json(r: &AuthorizedKeyResult) -> Value {
    json!({"changed": r.changed, "added": r.added, "updated": r.updated, "removed": r.removed})
}

/// Before/after of the whole rotation from the step results.
fn combined_diff(keyfile: &str, steps: &[&AuthorizedKeyResult]) -> Option<String> {
    let changed: Vec<_> = steps.iter().filter_map(|r| r.diff.as_ref()).collect();
    let before = &changed.first()?.before;
    let after = &changed.last()?.after;
    let d = diff_text(keyfile, before, after);
    (!d.is_empty()).then_some(d)
}

/// One host, in order: add, verify, exclusive set.
async fn rotate_on(
    ctx: &HostCtx,
    r: &Rotation,
    t: &SshTarget,
    login: &str,
    user: &str,
    how: Login,
) -> std::result::Result<HostOutcome, TargetError> {
    let host = ctx.host().to_string();
    let (login, user) = (login.to_string(), user.to_string());
    let new_fp = r.new_key.public.fingerprint();
    let wanted = rotation_set(&r.new_key.public, &r.keep);
    let path = r.file.path.as_deref();
    let hint = if user != login && !t.becomes() {
        format!(" (editing {user}'s keys while logging in as {login} needs -b, or -u {user})")
    } else {
        String::new()
    };
    let mut base = json!({"user": user, "login_user": login, "new_key": new_fp});
    if let Login::NewKey = how {
        base["login"] = json!(format!(
            "the configured credentials were refused; logged in as {user} with the new key {} \
             (your own key: an earlier run already put it on this host)",
            r.new_key.path.display()
        ));
    }

    if r.check {
        // The whole change in one check-mode run of the exclusive set over this connection.
        let plan = match plan_on(t, &user, path, &wanted).await {
            Ok(p) => p,
            Err(e) => return Ok(op_failure(&host, &e, &format!("planning failed{hint}: "))),
        };
        let mut params = edit_params(&user, plan.set.clone(), &r.file);
        params.exclusive = true;
        let res = match apply(
            t,
            &params,
            RunMode {
                check: true,
                diff: true,
            },
        )
        .await
        {
            Ok(res) => res,
            Err(e) => return Ok(op_failure(&host, &e, &format!("check failed{hint}: "))),
        };
        base["keyfile"] = json!(res.keyfile);
        base["would_add"] = json!(infos(&plan.added));
        base["would_keep"] = json!(infos(&plan.kept));
        base["would_remove"] = json!(infos(&plan.removed));
        base["verify"] = json!("skipped (check mode)");
        let msg = format!(
            "check mode: would add {new_fp}, log in as {user} with only the new key (not tried in check mode), then remove {} key(s)",
            plan.removed.len()
        );
        let mut o = if res.changed {
            HostOutcome::changed(&host, base)
        } else {
            HostOutcome::ok(&host, base)
        }
        .with_msg(msg);
        if let Some(d) = combined_diff(&res.keyfile, &[&res]) {
            o = o.with_diff(Value::String(d));
        }
        return Ok(o);
    }

    // Step 1: add the new key with the current credentials.
    let mut add = edit_params(&user, vec![r.new_key.public.render()], &r.file);
    add.keep_comments = false;
    let step1 = match apply(
        t,
        &add,
        RunMode {
            check: false,
            diff: true,
        },
    )
    .await
    {
        Ok(res) => res,
        Err(e) => {
            return Ok(op_failure(
                &host,
                &e,
                &format!("adding the new key failed{hint}; nothing changed: "),
            ));
        }
    };
    base["keyfile"] = json!(step1.keyfile);
    base["add"] = step_json(&step1);
    r.progress.phase(&host, Phase::Added);

    // Step 2: a fresh connection offering only the new key, as the rotated user — unless this
    // job's login already was exactly that.
    let vspec = verify_spec(ctx.spec(), &login, &user, &r.new_key.path);
    if let Login::NewKey = how {
        base["verify"] = json!({"ok": true, "user": user, "by": "the login itself"});
        r.progress.phase(&host, Phase::Verified);
        return step3(t, r, &host, &user, base, &step1).await;
    }
    let session = match r
        .verify
        .connect_with_key_routed(&vspec, &r.new_key.path, ctx.spec())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let why = match &e {
                SshError::Auth { .. } => format!("new key refused by {host}; old key kept"),
                _ => format!("could not verify the new key on {host}; old key kept"),
            };
            base["verify"] = json!({"ok": false, "error": e.to_string()});
            let mut o = HostOutcome::failed(&host, format!("{why} ({e})"))
                .with_result(base)
                .with_changes(key_file_change(&[&step1]));
            if let Some(d) = combined_diff(&step1.keyfile, &[&step1]) {
                o = o.with_diff(Value::String(d));
            }
            return Ok(o);
        }
    };
    base["verify"] = json!({"ok": true, "user": user});
    r.progress.phase(&host, Phase::Verified);
    let vt = SshTarget::new(session, &vspec.r#become).map_err(TargetError::from)?;
    // Same host, same passwd: step 1 already looked the user up (answered from its cache).
    if let Ok(Some(info)) = t.lookup_user(&user).await {
        vt.remember_user(info);
    }
    let o = step3(&vt, r, &host, &user, base, &step1).await;
    vt.close().await;
    o
}

/// Step 3: the exclusive set, over `vt`, the connection that proved the new key — read, plan
/// and write as one edit (under the key directory's writer lock).
async fn step3(
    vt: &SshTarget,
    r: &Rotation,
    host: &str,
    user: &str,
    mut base: Value,
    step1: &AuthorizedKeyResult,
) -> std::result::Result<HostOutcome, TargetError> {
    let (host, user) = (host.to_string(), user.to_string());
    let path = r.file.path.as_deref();
    let wanted = rotation_set(&r.new_key.public, &r.keep);
    let new_fp = r.new_key.public.fingerprint();
    let step3 = async {
        let lock_dir = |u: Option<&UserInfo>| edit_lock_dir(path, u);
        let began = vt
            .begin_edit(&EditHint {
                user: &user,
                lock_dir: &lock_dir,
            })
            .await?;
        let planned = plan_and_apply(vt, &user, path, &wanted, &r.file).await;
        if began {
            vt.end_edit().await;
        }
        planned
    }
    .await;
    let (plan, step3) = match step3 {
        Ok(x) => x,
        Err(e) => {
            let mut o = HostOutcome::failed(
                &host,
                format!(
                    "the new key works, but removing the old keys failed ({e}); both keys remain"
                ),
            )
            .with_result(base)
            .with_changes(key_file_change(&[step1]));
            if let Some(d) = combined_diff(&step1.keyfile, &[step1]) {
                o = o.with_diff(Value::String(d));
            }
            return Ok(o);
        }
    };
    base["exclusive"] = step_json(&step3);
    r.progress.phase(&host, Phase::Set);
    base["kept"] = json!(infos(&plan.kept));
    base["removed"] = json!(infos(&plan.removed));
    let changed = step1.changed || step3.changed;
    let mut o = if changed {
        HostOutcome::changed(&host, base)
    } else {
        HostOutcome::ok(&host, base)
    };
    if changed {
        o = o.with_msg(format!(
            "rotated {user} to {new_fp}; removed {} key(s)",
            plan.removed.len()
        ));
    }
    if let Some(d) = combined_diff(&step1.keyfile, &[step1, &step3]) {
        o = o.with_diff(Value::String(d));
    }
    Ok(o.with_changes(key_file_change(&[step1, &step3])))
}

/// Hosts whose verification failed (they kept both keys).
pub fn refused_hosts(outcomes: &[HostOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| {
            o.status == Status::Failed
                && o.result
                    .get("verify")
                    .and_then(|v| v.get("ok"))
                    .and_then(Value::as_bool)
                    == Some(false)
        })
        .map(|o| o.host.clone())
        .collect()
}

fn note(g: &Config, msg: &str) {
    // Stdout carries the JSON document in --json mode; notes go to stderr there.
    match g.report.output {
        OutputMode::Json => eprintln!("{msg}"),
        OutputMode::Text => println!("{msg}"),
    }
}

/// `keys rotate`.
pub fn rotate(g: &Config, cfg: &RotateConfig) -> Result<ExitCode> {
    let keep_resolved = resolve_all(&cfg.keep, &super::edit::fetch)?;
    let keep: Vec<PublicKey> = keep_resolved.into_iter().flat_map(|r| r.keys).collect();
    let specs = g.resolve(&cfg.hosts.pattern)?;
    if specs.is_empty() {
        return Ok(no_hosts(&cfg.hosts.pattern));
    }
    let connector = g.connector();
    let default_user = connector.config().default_user.clone();
    let install_dest = if cfg.install {
        let dest = install_destination(&g.conn, &specs)?;
        if let Some(u) = &cfg.user
            && let Some(s) = specs
                .iter()
                .find(|s| s.user.as_deref().unwrap_or(&default_user) != u)
        {
            return Err(Error::Usage(format!(
                "--install replaces the key used to log in, but host {} logs in as {}, not {u}",
                s.name,
                s.user.as_deref().unwrap_or(&default_user)
            )));
        }
        Some(dest)
    } else {
        None
    };
    let (new_key, gen_note, origin) = prepare_for_run(cfg, g.check, install_dest.as_deref())?;
    if let Some(n) = gen_note {
        note(g, &n);
    }
    let mut vcfg = connector.config().clone();
    vcfg.passphrase_env = cfg.new_passphrase_env.clone();
    vcfg.interactive = false;
    vcfg.agent = crate::ssh::AgentSource::Disabled;
    vcfg.default_identities = Vec::new();
    let mut reporter = g.reporter().with_phases();
    let progress = reporter.progress(specs.len());
    let order = Arc::new(HopOrder::plan(&specs, |s| {
        connector.hop_specs(s).unwrap_or_default()
    }));
    let rotation = Arc::new(Rotation {
        new_key,
        keep,
        user: cfg.user.clone(),
        file: cfg.file.clone(),
        check: g.check,
        progress,
        verify: Connector::sharing_hops_with(vcfg, &connector),
        order: order.clone(),
        default_user: default_user.clone(),
    });
    let title = format!(
        "keys rotate to {}{}",
        rotation.new_key.public.fingerprint(),
        if g.check { " (check mode)" } else { "" }
    );
    let mut reporter = reporter.with_title(&title);
    let mut opts = g.run.clone();
    // A bastion's job waits for the hosts behind it while holding a fork slot: leave one
    // slot more than there are bastions, so the hosts behind them always get to run.
    opts.forks = opts.forks.max(order.hop_hosts() + 1);
    let recap = fleet::block_on(async {
        let r = rotation.clone();
        fleet::run(specs, &connector, &opts, &mut reporter, move |ctx| {
            let r = r.clone();
            async move {
                // Released however the job ends (a bastion waits for it).
                let mut finish = r.order.guard(ctx.host());
                let res = rotate_host(ctx, r.clone()).await;
                finish.rotated(
                    matches!(&res, Ok(o) if matches!(o.status, Status::Ok | Status::Changed)),
                );
                res
            }
        })
        .await
    });
    let code = finish(&mut reporter, &recap);
    if !g.check
        && let Some(story) = resume_story(&recap.outcomes)
    {
        note(g, &story);
    }
    let refused = refused_hosts(&recap.outcomes);
    if !refused.is_empty() {
        eprintln!(
            "new key refused on {} host(s), old key kept there: {}",
            refused.len(),
            refused.join(", ")
        );
    }
    if let Some(dest) = install_dest
        && !g.check
    {
        let all_switched = !recap.interrupted
            && recap.not_finished.is_empty()
            && recap
                .outcomes
                .iter()
                .all(|o| matches!(o.status, Status::Ok | Status::Changed));
        if !all_switched {
            eprintln!(
                "[WARNING]: not installing the new key at {}: not every host switched to it",
                dest.display()
            );
        } else if origin == KeyOrigin::AlreadyInstalled {
            // An earlier run moved the pair; only leftovers of the move remain.
            let leftover = keygen::pub_path(&cfg.new_key);
            let removed = std::fs::remove_file(&leftover).is_ok();
            note(
                g,
                &format!(
                    "the new key was already installed at {} by an earlier run{}",
                    dest.display(),
                    if removed {
                        format!("; removed the leftover {}", leftover.display())
                    } else {
                        String::new()
                    }
                ),
            );
        } else {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let done = keygen::install(&rotation.new_key.path, &dest, now)?;
            note(
                g,
                &format!(
                    "installed the new key at {}; previous pair kept as {}",
                    done.private_key.display(),
                    done.backups
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    let all_done = !g.check
        && !recap.interrupted
        && recap.not_finished.is_empty()
        && recap
            .outcomes
            .iter()
            .all(|o| matches!(o.status, Status::Ok | Status::Changed));
    if all_done {
        // The rotation (and the move, if asked for) is complete: nothing left to resume.
        let _ = std::fs::remove_file(resume::journal_path(&cfg.new_key));
    }
    Ok(code)
}

/// Where the new key of this run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `--new-key K`, an existing pair.
    Given,
    /// `--generate`d by this run.
    Generated,
    /// `--generate` run again: the key an earlier, interrupted run generated (journal).
    ResumedGenerated,
    /// `--install` run again after the move finished: the key at the install destination.
    AlreadyInstalled,
}

/// The new key for this run, resuming what an interrupted run of the same command left (see
/// [`resume`]): a `--generate`d key recorded in the journal is reused; a pair already moved by
/// `--install` is taken from its destination; an existing `K` without a matching journal is
/// refused with the exact command that rotates to it.
pub fn prepare_for_run(
    cfg: &RotateConfig,
    check: bool,
    install_dest: Option<&Path>,
) -> Result<(NewKey, Option<String>, KeyOrigin)> {
    let k = &cfg.new_key;
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    let pub_fp = || {
        let text = std::fs::read_to_string(keygen::pub_path(k)).ok()?;
        let line = text.lines().find(|l| !l.trim().is_empty())?;
        Some(PublicKey::parse_line(line).ok()?.fingerprint())
    };
    if !check
        && let Some(dest) = install_dest
        && !exists(k)
        && exists(dest)
        && let Some(fp) = resume::read_journal(k).or_else(pub_fp)
    {
        let mut at_dest = cfg.clone();
        at_dest.new_key = dest.to_path_buf();
        at_dest.generate = None;
        let (nk, _) = prepare_new_key(&at_dest, check)?;
        if nk.public.fingerprint() != fp {
            return Err(Error::Resume {
                path: k.clone(),
                msg: format!(
                    "does not exist, and the install destination {} holds {} rather than the \
                     key an earlier run was rotating to ({fp}); nothing was changed",
                    dest.display(),
                    nk.public.fingerprint()
                ),
            });
        }
        let msg = format!(
            "resuming: {} is gone and the key it held ({fp}) is already installed at {}; \
             rotating with that key",
            k.display(),
            dest.display()
        );
        return Ok((nk, Some(msg), KeyOrigin::AlreadyInstalled));
    }
    if cfg.generate.is_some() && !check && (exists(k) || exists(&keygen::pub_path(k))) {
        let mut existing = cfg.clone();
        existing.generate = None;
        let refuse = || {
            let args: Vec<String> = std::env::args().collect();
            Error::Resume {
                path: k.clone(),
                msg: format!(
                    "already exists, and no interrupted `--generate` rotation to it is recorded \
                     ({}); nothing was changed. To rotate to this existing key, run: {}\n\
                     To generate a new key, choose another --new-key path.",
                    resume::journal_path(k).display(),
                    resume::resume_command(&args)
                ),
            }
        };
        let Some(fp) = resume::read_journal(k) else {
            return Err(refuse());
        };
        let (nk, _) = prepare_new_key(&existing, check)?;
        if nk.public.fingerprint() != fp {
            return Err(refuse());
        }
        let msg = format!(
            "resuming with the key an earlier run generated: {fp} at {}",
            k.display()
        );
        return Ok((nk, Some(msg), KeyOrigin::ResumedGenerated));
    }
    let (nk, note) = prepare_new_key(cfg, check)?;
    if cfg.generate.is_some() && !check {
        let text = resume::journal_text(&nk.public.fingerprint());
        keygen::write_file_atomic(&resume::journal_path(k), text.as_bytes(), 0o600, true)?;
        return Ok((nk, note, KeyOrigin::Generated));
    }
    Ok((nk, note, KeyOrigin::Given))
}

/// The recap's account of an interrupted-then-resumed rotation: how many hosts were already
/// done before this run, how many were half done and finished now, how many were reached only
/// with the new key. `None` when no host had been touched before.
pub fn resume_story(outcomes: &[HostOutcome]) -> Option<String> {
    let total = outcomes.len();
    let done_before = outcomes.iter().filter(|o| o.status == Status::Ok).count();
    let via_new_key = outcomes
        .iter()
        .filter(|o| o.result.get("login").is_some())
        .count();
    // Changed, but the new key was already there: step 1 of an earlier run had run.
    let half_done = outcomes
        .iter()
        .filter(|o| {
            o.status == Status::Changed
                && o.result.pointer("/add/changed").and_then(Value::as_bool) == Some(false)
        })
        .count();
    if done_before == 0 && half_done == 0 {
        return None;
    }
    let rotated_now = outcomes
        .iter()
        .filter(|o| o.status == Status::Changed)
        .count();
    let mut s = format!(
        "already done before this run: {done_before} of {total} host(s) held exactly the new key set"
    );
    if via_new_key > 0 {
        s.push_str(&format!(
            " ({via_new_key} refused the configured key and were reached with the new key)"
        ));
    }
    s.push_str(&format!("; rotated now: {rotated_now}"));
    if half_done > 0 {
        s.push_str(&format!(
            " ({half_done} already had the new key added by an earlier run)"
        ));
    }
    let others = total - done_before - rotated_now;
    if others > 0 {
        s.push_str(&format!("; not rotated: {others}"));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::ED1;
    use crate::commands::keys::{GenerateSpec, KeyType, Selection};

    fn global() -> ConnOverrides {
        ConnOverrides::default()
    }

    fn cfg(path: &Path, generate: bool) -> RotateConfig {
        RotateConfig {
            hosts: Selection {
                pattern: "all".into(),
            },
            new_key: path.to_path_buf(),
            generate: generate.then(|| GenerateSpec {
                key_type: KeyType::Ed25519,
                comment: "new@test".into(),
            }),
            new_passphrase_env: None,
            keep: vec![],
            user: None,
            install: false,
            file: FileOptions::default(),
        }
    }

    #[test]
    fn check_mode_generation_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new");
        let (k, note) = prepare_new_key(&cfg(&p, true), true).unwrap();
        assert!(!k.on_disk);
        assert!(note.unwrap().contains("nothing written"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(k.public.comment, "new@test");
    }

    #[test]
    fn generate_then_reuse_and_mismatched_pub_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new");
        let (k1, _) = prepare_new_key(&cfg(&p, true), false).unwrap();
        assert!(k1.on_disk && p.exists());
        // A second --generate refuses to overwrite; without it the same key is loaded.
        assert!(prepare_new_key(&cfg(&p, true), false).is_err());
        let (k2, _) = prepare_new_key(&cfg(&p, false), false).unwrap();
        assert_eq!(k1.public, k2.public);
        std::fs::write(keygen::pub_path(&p), format!("{ED1}\n")).unwrap();
        let err = prepare_new_key(&cfg(&p, false), false).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
    }

    #[test]
    fn install_destination_rules() {
        let mut a = ConnSpec::new("a");
        a.identity_files = vec![PathBuf::from("/k/id")];
        let mut b = ConnSpec::new("b");
        b.identity_files = vec![PathBuf::from("/k/id")];
        let g = global();
        assert_eq!(
            install_destination(&g, &[a.clone(), b.clone()]).unwrap(),
            PathBuf::from("/k/id")
        );
        b.identity_files = vec![PathBuf::from("/k/other")];
        assert!(install_destination(&g, &[a.clone(), b.clone()]).is_err());
        assert!(install_destination(&g, &[ConnSpec::new("c")]).is_err());
        let mut g2 = global();
        g2.private_key = Some(PathBuf::from("/cli/key"));
        assert_eq!(
            install_destination(&g2, &[a, b]).unwrap(),
            PathBuf::from("/cli/key")
        );
    }

    #[test]
    fn verify_spec_offers_only_the_new_key_as_the_rotated_user() {
        let mut s = ConnSpec::new("h");
        s.user = Some("deploy".into());
        s.identity_files = vec![PathBuf::from("/old")];
        s.r#become.enabled = true;
        let v = verify_spec(&s, "deploy", "backup", Path::new("/new"));
        assert_eq!(v.user.as_deref(), Some("backup"));
        assert_eq!(v.identity_files, vec![PathBuf::from("/new")]);
        assert!(!v.r#become.enabled);
        let v = verify_spec(&s, "deploy", "deploy", Path::new("/new"));
        assert!(v.r#become.enabled);
    }

    #[test]
    fn refused_hosts_are_those_failing_verification() {
        let ok = HostOutcome::changed("a", json!({}));
        let refused = HostOutcome::failed("b", "x").with_result(json!({"verify": {"ok": false}}));
        let other = HostOutcome::failed("c", "y");
        assert_eq!(refused_hosts(&[ok, refused, other]), vec!["b".to_string()]);
    }

    #[test]
    fn generate_rerun_resumes_only_with_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new");
        let (k1, _, o1) = prepare_for_run(&cfg(&p, true), false, None).unwrap();
        assert_eq!(o1, KeyOrigin::Generated);
        assert!(resume::journal_path(&p).exists());
        // The same command again: the key it generated, not a refusal.
        let (k2, note, o2) = prepare_for_run(&cfg(&p, true), false, None).unwrap();
        assert_eq!(o2, KeyOrigin::ResumedGenerated);
        assert_eq!(k1.public, k2.public);
        assert!(note.unwrap().contains("resuming"));
        // An existing key nobody was rotating to: refused, with the command that uses it.
        std::fs::remove_file(resume::journal_path(&p)).unwrap();
        let err = prepare_for_run(&cfg(&p, true), false, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("To rotate to this existing key, run: "),
            "{err}"
        );
        // Check mode never writes a journal or refuses.
        let q = dir.path().join("other");
        prepare_for_run(&cfg(&q, true), true, None).unwrap();
        assert!(!resume::journal_path(&q).exists());
    }

    #[test]
    fn install_rerun_after_the_move_uses_the_installed_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new");
        let dest = dir.path().join("id");
        let (k1, _, _) = prepare_for_run(&cfg(&p, true), false, Some(&dest)).unwrap();
        keygen::install(&p, &dest, 0).unwrap();
        let (k2, _, o) = prepare_for_run(&cfg(&p, true), false, Some(&dest)).unwrap();
        assert_eq!(o, KeyOrigin::AlreadyInstalled);
        assert_eq!((k2.public.blob, k2.path), (k1.public.blob, dest.clone()));
        // A destination holding some other key is not taken for the new one.
        std::fs::remove_file(&dest).unwrap();
        std::fs::remove_file(keygen::pub_path(&dest)).unwrap();
        let other = keygen::generate(&GenerateSpec {
            key_type: KeyType::Ed25519,
            comment: "other".into(),
        })
        .unwrap();
        keygen::write_new_pair(&dest, &other, None).unwrap();
        let err = prepare_for_run(&cfg(&p, false), false, Some(&dest)).unwrap_err();
        assert!(err.to_string().contains("rather than the key"), "{err}");
    }

    #[test]
    fn resume_story_counts_hosts_done_before() {
        let fresh = HostOutcome::changed("a", json!({"add": {"changed": true}}));
        assert_eq!(resume_story(std::slice::from_ref(&fresh)), None);
        let done = HostOutcome::ok("b", json!({"login": "new key"}));
        let half = HostOutcome::changed("c", json!({"add": {"changed": false}}));
        let bad = HostOutcome::unreachable("d", "x");
        let s = resume_story(&[fresh, done, half, bad]).unwrap();
        assert_eq!(
            s,
            "already done before this run: 1 of 4 host(s) held exactly the new key set \
             (1 refused the configured key and were reached with the new key); rotated now: 2 \
             (1 already had the new key added by an earlier run); not rotated: 1"
        );
    }
}
