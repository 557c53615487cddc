//! `sshfleet undo RUN_ID`: put the authorized_keys files a journaled run changed back as they
//! were before it, host by host — lock-out safe, and only where nobody touched them since.
//!
//! From the run's journal ([`crate::journal`]) each host gets, per file, the content before
//! the run (the first record of that file) and the sha256 the run left (the last record).
//! Per host and file, over the host's normal connection:
//! 1. **Conflict check**: the file's sha256 now must be what the run left. Anything else
//!    (edited since, removed, rotated again) is a reported conflict and the file stays as it
//!    is. Every later write also carries its expected sha256 as a precondition
//!    ([`Expect::Sha256`], checked under the directory's writer lock right before the
//!    rename), so a change racing the undo is never overwritten either.
//! 2. **Lock-out guard** (the file of the user the controller logs in as): restoring may
//!    drop the key the controller logs in with now (undoing a rotation drops the new key).
//!    Rotation's rule applies: first write the **union** (the old content plus the keys of
//!    the current file it lacks), then open a **fresh** connection as that user offering
//!    **only** one of the controller's private keys that the restored file authorizes
//!    (`--verify-key`, the connection's identity files, `~/.ssh/id_*`), and only after that
//!    login succeeds write the restored content. If no controller key is in the restored file,
//!    nothing is written; if the login fails, the file is put back to what the run left.
//! 3. Other users' files are restored directly (the controller's login does not depend on
//!    them).
//!
//! A file that did not exist before the run is restored as an empty file (sshd reads an
//! empty and a missing authorized_keys alike; the journal records contents, not deletions).
//! Copied files are not restorable (the journal keeps their hashes, never their content):
//! undo says so for them. `--check` reports what would happen and changes nothing; `--diff`
//! shows each file's change. The undo is itself a journaled run (it can be undone).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::keys::edit::diff_text;
use super::{Config, finish, no_hosts};
use crate::authorized_keys::{AuthorizedKeys, PublicKey};
use crate::error::{ExitCode, Result};
use crate::events::{ChangeKind, FileChange, HostOutcome};
use crate::files::checksum::{sha256, to_hex};
use crate::fleet::{self, HostCtx};
use crate::journal::{FileKind, Record};
use crate::ops::keys::list::MAX_FILE;
use crate::ssh::keygen;
use crate::ssh::target::SshTarget;
use crate::target::{Body, Expect, Target, TargetError, WriteSpec};

/// `undo` as domain configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoConfig {
    /// The run to take back.
    pub run: String,
    /// Extra private keys that may prove a restored file still lets the controller in.
    pub verify_keys: Vec<PathBuf>,
}

/// One file to restore on one host: merged from the run's records of that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub file: String,
    pub user: String,
    /// Content before the run (`None`: the file did not exist).
    pub before: Option<String>,
    /// sha256 (hex) the run left.
    pub left: String,
}

/// What undo does on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPlan {
    pub restores: Vec<Restore>,
    /// Copied files: not restorable (no content in the journal).
    pub copied: Vec<String>,
}

/// Per host (in record order): the authorized_keys files to restore (first record's
/// content before, last record's hash after) and the copied files undo cannot restore.
pub fn plan(records: &[Record]) -> Vec<(String, HostPlan)> {
    let mut order: Vec<String> = Vec::new();
    let mut plans: HashMap<String, HostPlan> = HashMap::new();
    for r in records {
        if !plans.contains_key(&r.host) {
            order.push(r.host.clone());
        }
        let p = plans.entry(r.host.clone()).or_default();
        match r.kind {
            FileKind::Copied => {
                if !p.copied.contains(&r.file) {
                    p.copied.push(r.file.clone());
                }
            }
            FileKind::AuthorizedKeys => {
                let left = r.sha256_after.clone().unwrap_or_default();
                match p.restores.iter_mut().find(|x| x.file == r.file) {
                    Some(x) => x.left = left,
                    None => p.restores.push(Restore {
                        file: r.file.clone(),
                        user: r.user.clone().unwrap_or_default(),
                        before: r.content_before.clone(),
                        left,
                    }),
                }
            }
        }
    }
    order
        .into_iter()
        .map(|h| {
            let p = plans.remove(&h).unwrap_or_default();
            (h, p)
        })
        .collect()
}

/// The union written before a restore that may drop the controller's login key: `before`,
/// then every line of `current` holding a key `before` lacks (so whatever logs in now still
/// does).
pub fn union(before: &str, current: &str) -> String {
    let had: Vec<Vec<u8>> = AuthorizedKeys::parse(before)
        .keys()
        .map(|(_, k)| k.blob.clone())
        .collect();
    let mut out = before.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for l in AuthorizedKeys::parse(current).lines {
        if let crate::authorized_keys::LineKind::Key(k) = &l.kind
            && !had.contains(&k.blob)
        {
            out.push_str(&l.text);
            if !l.text.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    out
}

/// A controller private key and its public half.
#[derive(Debug, Clone)]
pub struct ControllerKey {
    pub path: PathBuf,
    pub public: PublicKey,
}

/// The public half of a private key file: its `.pub` when it is there, else derived from
/// the key (unencrypted keys only). `None` when neither works.
fn public_of(path: &Path) -> Option<PublicKey> {
    if let Ok(text) = std::fs::read_to_string(keygen::pub_path(path))
        && let Some(line) = text.lines().find(|l| !l.trim().is_empty())
        && let Ok(k) = PublicKey::parse_line(line)
    {
        return Some(k);
    }
    let private = keygen::load_private(path, None).ok()?;
    PublicKey::parse_line(&keygen::public_line(private.public_key()).ok()?).ok()
}

/// Controller keys (in `paths` order, each once) that `content` authorizes.
pub fn keys_in(content: &str, candidates: &[ControllerKey]) -> Vec<ControllerKey> {
    let blobs: Vec<Vec<u8>> = AuthorizedKeys::parse(content)
        .keys()
        .map(|(_, k)| k.blob.clone())
        .collect();
    candidates
        .iter()
        .filter(|c| blobs.contains(&c.public.blob))
        .cloned()
        .collect()
}

/// Shared by every host job.
struct Undo {
    run: String,
    check: bool,
    diff: bool,
    /// `--verify-key` keys (loaded once).
    extra: Vec<ControllerKey>,
    /// `~/.ssh/id_*` that exist.
    defaults: Vec<PathBuf>,
    default_user: String,
}

/// `undo RUN_ID`.
pub fn undo(g: &Config, cfg: &UndoConfig) -> Result<ExitCode> {
    let journal = g.journal_store()?;
    let records = journal.load(&cfg.run)?;
    let plans = plan(&records);
    let mut extra = Vec::new();
    for p in &cfg.verify_keys {
        match public_of(p) {
            Some(public) => extra.push(ControllerKey {
                path: p.clone(),
                public,
            }),
            None => {
                return Err(crate::error::Error::KeyFile {
                    path: p.clone(),
                    msg: "--verify-key: cannot read this private key's public half (no readable .pub and not an unencrypted private key)".into(),
                });
            }
        }
    }
    // The run's hosts, as this inventory (and --limit) knows them.
    let all = g.resolve("all")?;
    let wanted: HashMap<&str, &HostPlan> = plans.iter().map(|(h, p)| (h.as_str(), p)).collect();
    let specs: Vec<_> = all
        .into_iter()
        .filter(|s| wanted.contains_key(s.name.as_str()))
        .collect();
    for (h, _) in &plans {
        if !specs.iter().any(|s| &s.name == h) {
            eprintln!(
                "[WARNING]: {h} (changed by run {}) is not selected by this inventory and --limit; not undone there",
                cfg.run
            );
        }
    }
    if specs.is_empty() {
        return Ok(no_hosts("the run's hosts"));
    }
    let plans: Arc<HashMap<String, HostPlan>> = Arc::new(plans.into_iter().collect());
    let connector = g.connector();
    let undo = Arc::new(Undo {
        run: cfg.run.clone(),
        check: g.check,
        diff: g.diff,
        extra,
        defaults: connector.config().default_identities.clone(),
        default_user: connector.config().default_user.clone(),
    });
    let title = format!(
        "undo {}{}",
        cfg.run,
        if g.check { " (check mode)" } else { "" }
    );
    let mut reporter = g.reporter().with_title(&title);
    fleet::block_on(async move {
        let recap = fleet::run(specs, &connector, &g.run, &mut reporter, move |ctx| {
            let (undo, plans) = (undo.clone(), plans.clone());
            async move {
                let plan = plans.get(ctx.host()).cloned().unwrap_or_default();
                undo_host(&ctx, &undo, &plan).await
            }
        })
        .await;
        Ok(finish(&mut reporter, &recap))
    })
}

/// What happened to one file.
enum FileResult {
    /// Restored (or would be, in check mode).
    Restored {
        file: String,
        user: String,
        current: String,
        restored: String,
        verified: Option<String>,
    },
    /// Already as before the run: nothing to do.
    AlreadyRestored(String),
    /// Left untouched, with why (a conflict, the lock-out guard).
    Refused(String),
    /// An error after which the file is as the message says.
    Failed(String),
}

async fn undo_host(
    ctx: &HostCtx,
    u: &Undo,
    plan: &HostPlan,
) -> std::result::Result<HostOutcome, TargetError> {
    let host = ctx.host().to_string();
    let mut results = Vec::new();
    if !plan.restores.is_empty() {
        let t = ctx.target().await?;
        for r in &plan.restores {
            results.push(match undo_file(ctx, t, u, r).await {
                Ok(res) => res,
                Err(e) if matches!(e, TargetError::Unreachable(_)) => return Err(e),
                Err(e) => FileResult::Failed(format!("{}: {e}", r.file)),
            });
        }
    }
    let mut msgs = Vec::new();
    let mut changes = Vec::new();
    let mut diffs = String::new();
    let mut files = Vec::new();
    let (mut refused, mut failed) = (false, false);
    for res in results {
        match res {
            FileResult::Restored {
                file,
                user,
                current,
                restored,
                verified,
            } => {
                files.push(json!({"file": file, "user": user, "restored": true, "verified_with": verified}));
                if u.diff {
                    diffs.push_str(&diff_text(&file, &current, &restored));
                }
                changes.push(FileChange {
                    path: file,
                    kind: ChangeKind::AuthorizedKeys {
                        user,
                        before: Some(current),
                        after: restored,
                    },
                });
            }
            FileResult::AlreadyRestored(file) => {
                msgs.push(format!("{file}: already as before run {}", u.run));
                files.push(json!({"file": file, "restored": false, "already": true}));
            }
            FileResult::Refused(m) => {
                refused = true;
                files.push(json!({"restored": false, "conflict": m}));
                msgs.push(m);
            }
            FileResult::Failed(m) => {
                failed = true;
                files.push(json!({"restored": false, "error": m}));
                msgs.push(m);
            }
        }
    }
    for f in &plan.copied {
        msgs.push(format!(
            "{f}: copied file, not restorable (the journal keeps its hashes, never its content)"
        ));
    }
    let result = json!({
        "run": u.run,
        "files": files,
        "not_restorable": plan.copied,
    });
    let mut o = if failed || refused {
        HostOutcome::failed(&host, msgs.join("; ")).with_result(result)
    } else if !changes.is_empty() {
        let mut o = HostOutcome::changed(&host, result);
        if !msgs.is_empty() {
            o = o.with_msg(msgs.join("; "));
        }
        o
    } else if plan.restores.is_empty() {
        HostOutcome::skipped(&host, msgs.join("; ")).with_result(result)
    } else {
        let mut o = HostOutcome::ok(&host, result);
        if !msgs.is_empty() {
            o = o.with_msg(msgs.join("; "));
        }
        o
    };
    if !diffs.is_empty() {
        o = o.with_diff(Value::String(diffs));
    }
    if !u.check {
        o = o.with_changes(changes);
    }
    Ok(o)
}

fn write_spec(file: &str, st: &crate::target::FileStat, expect: Expect) -> WriteSpec {
    WriteSpec {
        dest: file.to_string(),
        mode: st.mode,
        uid: Some(st.uid),
        gid: Some(st.gid),
        expect,
        validate: None,
        backup: false,
    }
}

async fn put(
    t: &SshTarget,
    file: &str,
    st: &crate::target::FileStat,
    expect: &str,
    content: &str,
) -> std::result::Result<(), TargetError> {
    t.write_atomic(
        &write_spec(file, st, Expect::Sha256(sha256(expect.as_bytes()))),
        Body::Bytes(content.as_bytes().to_vec().into()),
    )
    .await
    .map(|_| ())
}

async fn undo_file(
    ctx: &HostCtx,
    t: &SshTarget,
    u: &Undo,
    r: &Restore,
) -> std::result::Result<FileResult, TargetError> {
    let restored = r.before.clone().unwrap_or_default();
    let conflict = |now: &str| {
        FileResult::Refused(format!(
            "conflict: {} changed since run {} (sha256 now {now}, the run left {}); left untouched",
            r.file, u.run, r.left
        ))
    };
    let Some(st) = t.stat(&r.file, false).await? else {
        return Ok(conflict("(absent)"));
    };
    let bytes = t.read(&r.file, MAX_FILE).await?;
    let now = to_hex(&sha256(&bytes));
    if now != r.left {
        if now == to_hex(&sha256(restored.as_bytes())) {
            return Ok(FileResult::AlreadyRestored(r.file.clone()));
        }
        return Ok(conflict(&now));
    }
    let Ok(current) = String::from_utf8(bytes) else {
        return Ok(conflict("(not UTF-8)"));
    };
    let login = ctx
        .spec()
        .user
        .clone()
        .unwrap_or_else(|| u.default_user.clone());
    let done = |verified: Option<String>| FileResult::Restored {
        file: r.file.clone(),
        user: r.user.clone(),
        current: current.clone(),
        restored: restored.clone(),
        verified,
    };
    if r.user != login {
        // The controller's login does not depend on this file.
        if !u.check {
            put(t, &r.file, &st, &current, &restored).await?;
        }
        return Ok(done(None));
    }
    // The login user's file: a controller key must be in the restored content and log in.
    let mut paths: Vec<PathBuf> = ctx.spec().identity_files.clone();
    paths.extend(u.defaults.iter().cloned());
    let mut candidates: Vec<ControllerKey> = u.extra.clone();
    for p in paths {
        if candidates.iter().any(|c| c.path == p) {
            continue;
        }
        if let Some(public) = public_of(&p) {
            candidates.push(ControllerKey { path: p, public });
        }
    }
    let usable = keys_in(&restored, &candidates);
    if usable.is_empty() {
        return Ok(FileResult::Refused(format!(
            "{}: not restored: none of the controller's keys ({}) is in the content before run {}, so restoring it would lock the controller out of {login}; give the old private key with --verify-key",
            r.file,
            candidates
                .iter()
                .map(|c| c.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            u.run
        )));
    }
    if u.check {
        return Ok(done(Some(format!(
            "{} (not tried in check mode)",
            usable[0].path.display()
        ))));
    }
    // Union first: whatever logs in now still does while the restored key is proven.
    let both = union(&restored, &current);
    if both != current {
        put(t, &r.file, &st, &current, &both).await?;
    }
    let mut proof = None;
    let mut errors = Vec::new();
    for k in &usable {
        let mut vspec = ctx.spec().clone();
        vspec.user = Some(r.user.clone());
        vspec.identity_files = vec![k.path.clone()];
        match ctx
            .connector()
            .connect_with_key_routed(&vspec, &k.path, ctx.spec())
            .await
        {
            Ok(s) => {
                s.close().await;
                proof = Some(k.path.display().to_string());
                break;
            }
            Err(e) => errors.push(format!("{}: {e}", k.path.display())),
        }
    }
    let Some(proof) = proof else {
        // Back to what the run left: the controller keeps its current way in.
        if both != current {
            put(t, &r.file, &st, &both, &current).await?;
        }
        return Ok(FileResult::Failed(format!(
            "{}: not restored: no controller key of the restored content logged in ({}); left as run {} left it",
            r.file,
            errors.join("; "),
            u.run
        )));
    };
    put(t, &r.file, &st, &both, &restored).await?;
    Ok(done(Some(proof)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::{ED1, ED2, ED3};
    use crate::journal::RunInfo;

    fn rec(host: &str, file: &str, kind: FileKind, before: Option<&str>, after: &str) -> Record {
        Record {
            info: RunInfo {
                run: "r".into(),
                time: "t".into(),
                operator: "o".into(),
                command: vec![],
            },
            host: host.into(),
            file: file.into(),
            kind,
            user: Some("u".into()),
            sha256_before: before.map(|b| to_hex(&sha256(b.as_bytes()))),
            sha256_after: Some(to_hex(&sha256(after.as_bytes()))),
            fingerprints_added: vec![],
            fingerprints_removed: vec![],
            content_before: before.map(str::to_string),
            content_after: Some(after.into()),
        }
    }

    #[test]
    fn plan_merges_records_of_one_file_and_lists_copies() {
        let recs = vec![
            rec("h1", "/a", FileKind::AuthorizedKeys, Some("one\n"), "two\n"),
            rec("h2", "/a", FileKind::AuthorizedKeys, None, "x\n"),
            rec(
                "h1",
                "/a",
                FileKind::AuthorizedKeys,
                Some("two\n"),
                "three\n",
            ),
            rec("h1", "/etc/c", FileKind::Copied, None, "c"),
        ];
        let p = plan(&recs);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0, "h1");
        assert_eq!(p[0].1.restores.len(), 1);
        assert_eq!(p[0].1.restores[0].before.as_deref(), Some("one\n"));
        assert_eq!(p[0].1.restores[0].left, to_hex(&sha256(b"three\n")));
        assert_eq!(p[0].1.copied, vec!["/etc/c".to_string()]);
        assert_eq!(p[1].1.restores[0].before, None);
    }

    #[test]
    fn union_keeps_before_verbatim_and_appends_missing_keys() {
        let before = format!("# team\n{ED1}\n{ED2}");
        let current = format!("{ED3}\nno-pty {ED2}\n");
        let u = union(&before, &current);
        assert_eq!(u, format!("# team\n{ED1}\n{ED2}\n{ED3}\n"));
        assert_eq!(union("", &current), current);
    }

    #[test]
    fn controller_keys_in_content() {
        let k = |line: &str, p: &str| ControllerKey {
            path: PathBuf::from(p),
            public: PublicKey::parse_line(line).unwrap(),
        };
        let c = vec![k(ED1, "/k1"), k(ED2, "/k2")];
        let got = keys_in(&format!("from=\"x\" {ED2}\n"), &c);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, PathBuf::from("/k2"));
        assert!(keys_in("", &c).is_empty());
    }
}
