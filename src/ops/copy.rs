//! copy: put a set of source files (and `-r` directory trees) onto one host, as Ansible's
//! `copy` does: checksum skip, attributes fixed without rewriting, `force`, `backup`,
//! `validate`, atomic writes, sha256 verified after every write, check and diff mode.
//!
//! One host's work is two steps so that [`crate::ops::replicate`] can coordinate many hosts:
//! [`prepare`] inspects the destination and decides per file ([`crate::files::plan`]) without
//! changing anything; [`apply`] carries the plan out. Small files carry their bytes in the
//! [`SourceSet`] (shared, reference-counted, one copy for all hosts); large ones arrive as a
//! bounded chunk stream per host from the replicate fan-out. [`copy_content`] is the one-call
//! form for in-memory content on one target (the `sshfleet_copy` module).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::files::checksum::{Sha256Digest, sha256, to_hex};
use crate::files::diff::{FileDiff, MAX_DIFF_BYTES, Side};
use crate::files::mode::{ModeSpec, mode_string};
use crate::files::owner::IdSpec;
use crate::files::plan::{Action, Desired, Plan, decide};
use crate::files::spec::{self, SourceRoot};
use crate::ops::replicate::fanout::RELAY_DEPTH;
use crate::progress::ProgressHandle;
use crate::target::temp::sweep_dead_temps;
use crate::target::{Body, FileKind, Target, TargetError, WriteSpec};

/// Ansible copy's options (those that apply per destination).
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// `--dest`; `None` means "the same path as on the source" (replicate only).
    pub dest: Option<String>,
    /// `-r`: directories are copied recursively.
    pub recurse: bool,
    /// File mode; `None` = the source's mode (or, for content without one, the existing
    /// file's mode, else 0644).
    pub mode: Option<ModeSpec>,
    /// Mode for directories this run creates; `None` = the source directory's mode, 0755 for
    /// parents that have no source counterpart.
    pub dir_mode: Option<ModeSpec>,
    pub owner: Option<IdSpec>,
    pub group: Option<IdSpec>,
    pub backup: bool,
    /// `false`: never replace an existing file.
    pub force: bool,
    /// Command template run on the temp file (`%s`) before it replaces the destination.
    pub validate: Option<String>,
    pub check: bool,
    pub diff: bool,
    /// Where bytes planned and written are reported (nowhere by default).
    pub progress: ProgressHandle,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            dest: None,
            recurse: false,
            mode: None,
            dir_mode: None,
            owner: None,
            group: None,
            backup: false,
            force: true,
            validate: None,
            check: false,
            diff: false,
            progress: ProgressHandle::none(),
        }
    }
}

/// One regular file to copy.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Index into [`SourceSet::roots`].
    pub root: usize,
    /// Path relative to the root (empty for a file root).
    pub rel: String,
    /// Where it was read from (for messages and results).
    pub label: String,
    pub size: u64,
    /// Permission bits on the source; `None` for literal content.
    pub mode: Option<u32>,
    pub sha256: Sha256Digest,
    /// The bytes, for small files; `None` means they arrive as a stream (large files).
    pub content: Option<Bytes>,
}

/// One directory of a `-r` tree (rel empty = the root directory itself).
#[derive(Debug, Clone)]
pub struct SourceDir {
    pub root: usize,
    pub rel: String,
    pub mode: u32,
}

/// Everything read from the source before any destination is touched.
#[derive(Debug, Clone, Default)]
pub struct SourceSet {
    pub roots: Vec<SourceRoot>,
    pub dirs: Vec<SourceDir>,
    pub files: Vec<SourceFile>,
}

impl SourceSet {
    /// Indices of files whose bytes must be streamed (not held in memory).
    pub fn streamed(&self) -> Vec<usize> {
        (0..self.files.len())
            .filter(|i| self.files[*i].content.is_none())
            .collect()
    }
}

/// A failure that stops one host before any change (bad owner, unusable destination).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error("chown failed: failed to look up {what} {name}")]
    NoSuchId { what: &'static str, name: String },
    #[error("{0}")]
    Other(String),
}

impl CopyError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, CopyError::Target(TargetError::Unreachable(_)))
    }
}

/// What happened (or, in check mode, would happen) to one destination file.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub src: String,
    pub dest: String,
    pub action: Option<Action>,
    pub changed: bool,
    pub sha256: Sha256Digest,
    pub size: u64,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub backup_file: Option<String>,
    pub diff: Option<FileDiff>,
    pub error: Option<String>,
    /// The failure was a transport failure.
    pub unreachable: bool,
    /// sha256 of the regular file this one replaced ([`FilePlan::sha256_before`]).
    pub sha256_before: Option<Sha256Digest>,
}

impl FileReport {
    /// Ansible copy's return values for this file (`checksum` is the sha256 here).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "src": self.src,
            "dest": self.dest,
            "changed": self.changed,
            "checksum": to_hex(&self.sha256),
            "sha256": to_hex(&self.sha256),
            "size": self.size,
            "mode": mode_string(self.mode),
        });
        if let Some(u) = self.uid {
            v["uid"] = json!(u);
        }
        if let Some(g) = self.gid {
            v["gid"] = json!(g);
        }
        if let Some(b) = &self.backup_file {
            v["backup_file"] = json!(b);
        }
        if let Some(e) = &self.error {
            v["failed"] = json!(true);
            v["msg"] = json!(e);
        }
        if let Some(d) = &self.diff {
            v["diff"] = d.to_ansible();
        }
        v
    }
}

/// One host's outcome.
#[derive(Debug, Clone, Default)]
pub struct HostReport {
    pub host: String,
    /// Directories created (or that would be).
    pub dirs_created: Vec<String>,
    pub files: Vec<FileReport>,
    /// A failure before any file was considered.
    pub error: Option<String>,
    pub unreachable: bool,
}

impl HostReport {
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.files.iter().any(|f| f.error.is_some())
    }

    pub fn is_unreachable(&self) -> bool {
        self.unreachable || self.files.iter().any(|f| f.unreachable)
    }

    pub fn changed(&self) -> bool {
        !self.dirs_created.is_empty() || self.files.iter().any(|f| f.changed)
    }

    /// All error messages, one per line, each naming its file.
    pub fn message(&self) -> Option<String> {
        let mut msgs: Vec<String> = self.error.iter().cloned().collect();
        msgs.extend(self.files.iter().filter_map(|f| f.error.clone()));
        (!msgs.is_empty()).then(|| msgs.join("; "))
    }

    /// Unified diffs of every changed file, concatenated.
    pub fn rendered_diff(&self) -> String {
        self.files
            .iter()
            .filter_map(|f| f.diff.as_ref())
            .map(FileDiff::render)
            .collect()
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "changed": self.changed(),
            "files": self.files.iter().map(FileReport::to_json).collect::<Vec<_>>(),
        });
        if !self.dirs_created.is_empty() {
            v["dirs_created"] = json!(self.dirs_created);
        }
        if self.is_unreachable() {
            v["unreachable"] = json!(true);
        }
        if let Some(m) = self.message() {
            v["failed"] = json!(true);
            v["msg"] = json!(m);
        }
        v
    }
}

/// A directory this host needs created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirPlan {
    pub path: String,
    pub mode: u32,
}

/// One file's decision on one host.
#[derive(Debug, Clone)]
pub struct FilePlan {
    /// Index into [`SourceSet::files`].
    pub file: usize,
    pub dest: String,
    pub plan: Result<Plan, String>,
    pub diff: Option<FileDiff>,
    /// sha256 of the destination before, where it is a regular file whose content this plan
    /// replaces (for the controller's run journal); `None` otherwise.
    pub sha256_before: Option<Sha256Digest>,
}

/// Everything [`apply`] needs for one host, decided without changing anything.
#[derive(Debug, Clone)]
pub struct HostPlan {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Parents first.
    pub dirs: Vec<DirPlan>,
    pub files: Vec<FilePlan>,
}

impl HostPlan {
    /// For each streamed file (in [`SourceSet::streamed`] order), whether this host needs
    /// its bytes.
    pub fn needs_stream(&self, set: &SourceSet) -> Vec<bool> {
        set.streamed()
            .into_iter()
            .map(|i| {
                self.files
                    .iter()
                    .any(|f| f.file == i && matches!(&f.plan, Ok(p) if p.action.writes_content()))
            })
            .collect()
    }

    /// Bytes this host will write: the size of every file whose content it needs.
    pub fn bytes_to_write(&self, set: &SourceSet) -> u64 {
        self.files
            .iter()
            .filter(|f| matches!(&f.plan, Ok(p) if p.action.writes_content()))
            .map(|f| set.files[f.file].size)
            .sum()
    }
}

async fn resolve_id<T: Target>(
    t: &T,
    what: &'static str,
    spec: Option<&IdSpec>,
) -> Result<Option<u32>, CopyError> {
    match spec {
        None => Ok(None),
        Some(IdSpec::Id(n)) => Ok(Some(*n)),
        Some(IdSpec::Name(name)) => {
            let id = if what == "user" {
                t.lookup_user(name).await?.map(|u| u.uid)
            } else {
                t.lookup_group(name).await?
            };
            id.map(Some).ok_or_else(|| CopyError::NoSuchId {
                what,
                name: name.clone(),
            })
        }
    }
}

/// The mode a file gets: `--mode` applied to the source's mode (or the existing file's for
/// content without a mode; 0644 for a new one).
fn file_mode(opts: &CopyOptions, src_mode: Option<u32>, existing: Option<u32>) -> u32 {
    let base = src_mode.or(existing).unwrap_or(0o644) & 0o7777;
    opts.mode
        .as_ref()
        .map(|m| m.apply(base, false))
        .unwrap_or(base)
}

/// Inspect `t` and decide what to do for every file of `set`. Changes nothing.
pub async fn prepare<T: Target>(
    t: &T,
    set: &SourceSet,
    opts: &CopyOptions,
) -> Result<HostPlan, CopyError> {
    let (uid, gid) = tokio::try_join!(
        resolve_id(t, "user", opts.owner.as_ref()),
        resolve_id(t, "group", opts.group.as_ref()),
    )?;
    let mut dest_is_dir = false;
    if spec::dest_needs_probe(&set.roots, opts.dest.as_deref()) {
        let d = opts.dest.as_deref().unwrap_or_default();
        dest_is_dir = matches!(t.stat(d, true).await?, Some(s) if s.kind == FileKind::Dir);
    }
    let roots = spec::dest_roots(&set.roots, opts.dest.as_deref(), opts.recurse, dest_is_dir)?;

    // Directories: every tree directory, plus the parent of every file; missing ones are
    // created, walking up until an existing ancestor is found.
    let mut wanted: BTreeMap<String, u32> = BTreeMap::new();
    for d in &set.dirs {
        let path = roots[d.root].path_for(&d.rel);
        let mode = opts
            .dir_mode
            .as_ref()
            .map(|m| m.apply(d.mode, true))
            .unwrap_or(d.mode);
        wanted.insert(path, mode);
    }
    let default_dir_mode = opts
        .dir_mode
        .as_ref()
        .map(|m| m.apply(0o755, true))
        .unwrap_or(0o755);
    let file_dests: Vec<String> = set
        .files
        .iter()
        .map(|f| roots[f.root].path_for(&f.rel))
        .collect();
    for dest in &file_dests {
        let p = spec::parent(dest);
        if p != "/" && p != "." {
            wanted.entry(p).or_insert(default_dir_mode);
        }
    }
    let dirs = plan_dirs(t, wanted, default_dir_mode).await?;

    let files = join_all_bounded(
        set.files.iter().enumerate().map(|(i, f)| {
            let dest = file_dests[i].clone();
            let missing_parent = dirs.iter().any(|d| d.path == spec::parent(&dest));
            plan_file(t, i, f, dest, missing_parent, uid, gid, opts)
        }),
        HOST_CONCURRENCY,
    )
    .await;
    let files = files.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(HostPlan {
        uid,
        gid,
        dirs,
        files,
    })
}

/// Which of `wanted` (and their ancestors) do not exist yet, parents first.
async fn plan_dirs<T: Target>(
    t: &T,
    wanted: BTreeMap<String, u32>,
    default_mode: u32,
) -> Result<Vec<DirPlan>, CopyError> {
    let mut missing: BTreeMap<String, u32> = BTreeMap::new();
    let mut known_existing: std::collections::BTreeSet<String> = Default::default();
    let mut frontier: Vec<(String, u32)> = wanted.into_iter().collect();
    while !frontier.is_empty() {
        let stats = join_all_bounded(
            frontier.iter().map(|(p, _)| t.stat(p, true)),
            HOST_CONCURRENCY,
        )
        .await;
        let mut next = Vec::new();
        for ((path, mode), st) in frontier.into_iter().zip(stats) {
            match st? {
                Some(s) if s.kind == FileKind::Dir => {
                    known_existing.insert(path);
                }
                Some(_) => {
                    return Err(CopyError::Other(format!(
                        "{path}: exists and is not a directory"
                    )));
                }
                None => {
                    let parent = spec::parent(&path);
                    missing.insert(path, mode);
                    if parent != "/"
                        && parent != "."
                        && !missing.contains_key(&parent)
                        && !known_existing.contains(&parent)
                        && !next.iter().any(|(p, _)| *p == parent)
                    {
                        next.push((parent, default_mode));
                    }
                }
            }
        }
        // Don't stat again what a sibling's walk already covers.
        next.retain(|(p, _)| !missing.contains_key(p) && !known_existing.contains(p));
        frontier = next;
    }
    Ok(missing
        .into_iter()
        .map(|(path, mode)| DirPlan { path, mode })
        .collect())
}

#[allow(clippy::too_many_arguments)]
async fn plan_file<T: Target>(
    t: &T,
    index: usize,
    f: &SourceFile,
    dest: String,
    missing_parent: bool,
    uid: Option<u32>,
    gid: Option<u32>,
    opts: &CopyOptions,
) -> Result<FilePlan, CopyError> {
    let stat = if missing_parent {
        None
    } else {
        t.stat(&dest, false).await?
    };
    // Only a regular file of the same size can already hold the same bytes.
    let sha = match &stat {
        Some(s) if s.kind == FileKind::File && s.size == f.size => t.sha256(&dest).await?,
        _ => None,
    };
    let desired = Desired {
        sha256: f.sha256,
        mode: file_mode(opts, f.mode, stat.as_ref().map(|s| s.mode)),
        uid,
        gid,
    };
    let plan = decide(&dest, &desired, stat.as_ref().map(|s| (s, sha)), opts.force)
        .map_err(|e| e.to_string());
    let mut diff = None;
    if opts.diff
        && let Ok(p) = &plan
        && p.action.writes_content()
    {
        let before = match &stat {
            None => Side::Absent,
            Some(s) if s.kind != FileKind::File => Side::Absent,
            Some(s) if s.size > MAX_DIFF_BYTES => Side::TooLarge(s.size),
            Some(_) => Side::Content(t.read(&dest, MAX_DIFF_BYTES).await?),
        };
        let after = match &f.content {
            Some(c) if f.size <= MAX_DIFF_BYTES => Side::Content(c.to_vec()),
            _ => Side::TooLarge(f.size),
        };
        diff = Some(FileDiff {
            path: dest.clone(),
            before,
            after,
        });
    }
    // The hash of what is replaced, for the journal: known already for a file of the same
    // size; asked for otherwise (outside check mode, only when content is written).
    let sha256_before = match (&stat, &plan) {
        (Some(st), Ok(p)) if st.kind == FileKind::File && p.action.writes_content() => match sha {
            Some(s) => Some(s),
            None if !opts.check => t.sha256(&dest).await?,
            None => None,
        },
        _ => None,
    };
    Ok(FilePlan {
        file: index,
        dest,
        plan,
        diff,
        sha256_before,
    })
}

/// The report [`apply`] would give, without doing anything (check mode).
pub fn check_report(host: &str, set: &SourceSet, plan: &HostPlan) -> HostReport {
    HostReport {
        host: host.to_string(),
        dirs_created: plan.dirs.iter().map(|d| d.path.clone()).collect(),
        files: plan
            .files
            .iter()
            .map(|fp| file_report(set, plan, fp, None))
            .collect(),
        error: None,
        unreachable: false,
    }
}

fn file_report(
    set: &SourceSet,
    hp: &HostPlan,
    fp: &FilePlan,
    error: Option<&TargetError>,
) -> FileReport {
    let f = &set.files[fp.file];
    let (action, mode, uid, gid, plan_err) = match &fp.plan {
        Ok(p) => (
            Some(p.action),
            p.mode,
            p.uid.or(hp.uid),
            p.gid.or(hp.gid),
            None,
        ),
        Err(e) => (None, f.mode.unwrap_or(0), hp.uid, hp.gid, Some(e.clone())),
    };
    let error_msg = plan_err.or_else(|| error.map(|e| e.to_string()));
    FileReport {
        src: f.label.clone(),
        dest: fp.dest.clone(),
        action,
        changed: error_msg.is_none() && action.is_some_and(Action::changes),
        sha256: f.sha256,
        size: f.size,
        mode,
        uid,
        gid,
        backup_file: None,
        diff: fp.diff.clone(),
        error: error_msg,
        unreachable: matches!(error, Some(TargetError::Unreachable(_))),
        sha256_before: fp.sha256_before,
    }
}

/// Carry out `plan` on `t`. `streams[k]` is the chunk stream of the k-th streamed file
/// ([`SourceSet::streamed`]) if this host needs it. Never panics on a host failure: every
/// problem ends up in the report.
pub async fn apply<T: Target>(
    t: &T,
    set: &SourceSet,
    plan: &HostPlan,
    mut streams: Vec<Option<mpsc::Receiver<Result<Bytes, String>>>>,
    opts: &CopyOptions,
) -> HostReport {
    let mut report = HostReport {
        host: t.host().to_string(),
        ..HostReport::default()
    };
    // 1. Directories, parents first.
    for d in &plan.dirs {
        if let Err(e) = t.mkdir(&d.path, d.mode, plan.uid, plan.gid).await {
            report.unreachable = matches!(e, TargetError::Unreachable(_));
            report.error = Some(e.to_string());
            // Nothing below can be written; dropping `streams` tells the fan-out.
            return report;
        }
        report.dirs_created.push(d.path.clone());
    }
    // 2. Remove dead writers' temp files (the ownership rule of `target::temp`) from every
    //    existing directory we are about to write into.
    let mut dirs: Vec<String> = Vec::new();
    for fp in &plan.files {
        let dir = spec::parent(&fp.dest);
        if matches!(&fp.plan, Ok(p) if p.action.writes_content())
            && !plan.dirs.iter().any(|d| d.path == dir)
            && !dirs.contains(&dir)
        {
            dirs.push(dir);
        }
    }
    join_all_bounded(
        dirs.iter().map(|dir| async move {
            let _ = sweep_dead_temps(t, dir).await;
        }),
        HOST_CONCURRENCY,
    )
    .await;

    // 3. Files: in-memory ones concurrently, streamed ones one after another (the fan-out
    //    sends them in that order), both at once.
    let streamed = set.streamed();
    let mut stream_for: BTreeMap<usize, mpsc::Receiver<Result<Bytes, String>>> = BTreeMap::new();
    for (k, i) in streamed.iter().enumerate() {
        if let Some(rx) = streams.get_mut(k).and_then(Option::take) {
            stream_for.insert(*i, rx);
        }
    }
    let (small, large): (Vec<&FilePlan>, Vec<&FilePlan>) = plan
        .files
        .iter()
        .partition(|fp| set.files[fp.file].content.is_some());
    let small_fut = join_all_bounded(
        small
            .into_iter()
            .map(|fp| apply_file(t, set, plan, fp, None, opts)),
        HOST_CONCURRENCY,
    );
    let large_fut = async {
        let mut out = Vec::new();
        for fp in large {
            let rx = stream_for.remove(&fp.file);
            out.push(apply_file(t, set, plan, fp, rx, opts).await);
        }
        out
    };
    let (mut a, b) = tokio::join!(small_fut, large_fut);
    a.extend(b);
    a.sort_by_key(|r| r.0);
    report.files = a.into_iter().map(|r| r.1).collect();
    report
}

async fn apply_file<T: Target>(
    t: &T,
    set: &SourceSet,
    hp: &HostPlan,
    fp: &FilePlan,
    rx: Option<mpsc::Receiver<Result<Bytes, String>>>,
    opts: &CopyOptions,
) -> (usize, FileReport) {
    let f = &set.files[fp.file];
    let plan = match &fp.plan {
        Ok(p) => p,
        Err(_) => return (fp.file, file_report(set, hp, fp, None)),
    };
    let result: Result<Option<String>, TargetError> = async {
        match plan.action {
            Action::Nothing | Action::KeepExisting => Ok(None),
            Action::FixAttrs => {
                t.set_attrs(&fp.dest, plan.fix.mode, plan.fix.uid, plan.fix.gid)
                    .await?;
                Ok(None)
            }
            Action::Create | Action::Replace => {
                let ws = WriteSpec {
                    dest: fp.dest.clone(),
                    mode: plan.mode,
                    uid: plan.uid,
                    gid: plan.gid,
                    expect: plan.expect,
                    validate: opts.validate.clone(),
                    backup: opts.backup,
                };
                let out = match (&f.content, rx) {
                    (Some(c), _) => {
                        let out = t
                            .write_atomic(&ws, Body::Digested(c.clone(), f.sha256))
                            .await?;
                        opts.progress.transferred(t.host(), f.size);
                        out
                    }
                    (None, Some(rx)) => {
                        let (tx2, rx2) = mpsc::channel(RELAY_DEPTH);
                        let counted = Counted {
                            progress: &opts.progress,
                            host: t.host(),
                        };
                        let (written, ()) = tokio::join!(
                            // The fan-out hashes every chunk once for all destinations and
                            // ends the stream with an error on a mismatch; the length check
                            // ends a stream cut short with one.
                            t.write_atomic(&ws, Body::Vouched(rx2, f.sha256)),
                            length_checked(rx, tx2, f.size, counted)
                        );
                        written?
                    }
                    (None, None) => {
                        return Err(TargetError::Other(format!(
                            "{}: no content stream for this host",
                            fp.dest
                        )));
                    }
                };
                if out.sha256 != f.sha256 || out.size != f.size {
                    // The write already happened; say so plainly.
                    return Err(TargetError::Other(format!(
                        "{}: wrote {} bytes with sha256 {} but the source has {} bytes with sha256 {}",
                        fp.dest,
                        out.size,
                        to_hex(&out.sha256),
                        f.size,
                        to_hex(&f.sha256)
                    )));
                }
                // Verify what is on disk now, read back by the host itself.
                match t.sha256(&fp.dest).await? {
                    Some(s) if s == f.sha256 => Ok(out.backup_file),
                    other => Err(TargetError::Other(format!(
                        "{}: verification failed: sha256 after write is {}, expected {}",
                        fp.dest,
                        other.map(|s| to_hex(&s)).unwrap_or_else(|| "missing".into()),
                        to_hex(&f.sha256)
                    ))),
                }
            }
        }
    }
    .await;
    let mut r = file_report(set, hp, fp, result.as_ref().err());
    if let Ok(b) = result {
        r.backup_file = b;
    }
    (fp.file, r)
}

/// Where [`length_checked`] reports the bytes it relays.
struct Counted<'a> {
    progress: &'a ProgressHandle,
    host: &'a str,
}

/// Relay a chunk stream, ending it with an error unless exactly `expected` bytes arrived, so
/// a stream cut short (a sender dropped by a stalled fan-out or a cancelled pump) can never be
/// committed as a complete file. Each chunk the writer accepted is reported to `counted`.
async fn length_checked(
    mut rx: mpsc::Receiver<Result<Bytes, String>>,
    tx: mpsc::Sender<Result<Bytes, String>>,
    expected: u64,
    counted: Counted<'_>,
) {
    let mut n = 0u64;
    while let Some(item) = rx.recv().await {
        match item {
            Ok(chunk) => {
                n += chunk.len() as u64;
                if n > expected {
                    let _ = tx
                        .send(Err(format!(
                            "stream longer than the expected {expected} bytes"
                        )))
                        .await;
                    return;
                }
                let len = chunk.len() as u64;
                if tx.send(Ok(chunk)).await.is_err() {
                    return; // the writer gave up; dropping `rx` tells the fan-out
                }
                counted.progress.transferred(counted.host, len);
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
    if n != expected {
        let _ = tx
            .send(Err(format!(
                "stream ended after {n} of {expected} bytes (source stalled or went away)"
            )))
            .await;
    }
}

/// Copy in-memory `content` to `dest` on `t` (the module's path). `label` names the source
/// in results.
pub async fn copy_content<T: Target>(
    t: &T,
    content: Bytes,
    label: &str,
    opts: &CopyOptions,
) -> HostReport {
    let Some(dest) = opts.dest.clone() else {
        return HostReport {
            host: t.host().to_string(),
            error: Some("dest is required".into()),
            ..HostReport::default()
        };
    };
    let set = SourceSet {
        roots: vec![SourceRoot {
            given: dest.clone(),
            is_dir: false,
        }],
        dirs: Vec::new(),
        files: vec![SourceFile {
            root: 0,
            rel: String::new(),
            label: label.to_string(),
            size: content.len() as u64,
            mode: None,
            sha256: sha256(&content),
            content: Some(content),
        }],
    };
    // The content has no name to put into a directory: dest is always the file itself.
    let opts = CopyOptions {
        dest: None,
        ..opts.clone()
    };
    match t.stat(&dest, true).await {
        Ok(Some(s)) if s.kind == FileKind::Dir => {
            return HostReport {
                host: t.host().to_string(),
                error: Some(format!("{dest}: is a directory; content needs a file path")),
                ..HostReport::default()
            };
        }
        Err(e) => return host_failure(t.host(), &CopyError::Target(e)),
        _ => {}
    }
    run_one(t, &set, &opts).await
}

/// prepare + apply (or the check-mode report) for one host with no streamed files.
pub async fn run_one<T: Target>(t: &T, set: &SourceSet, opts: &CopyOptions) -> HostReport {
    match prepare(t, set, opts).await {
        Err(e) => host_failure(t.host(), &e),
        Ok(plan) if opts.check => check_report(t.host(), set, &plan),
        Ok(plan) => {
            opts.progress.planned(t.host(), plan.bytes_to_write(set));
            apply(t, set, &plan, Vec::new(), opts).await
        }
    }
}

/// The report of a host that failed before any file was considered.
pub fn host_failure(host: &str, e: &CopyError) -> HostReport {
    HostReport {
        host: host.to_string(),
        error: Some(e.to_string()),
        unreachable: e.is_unreachable(),
        ..HostReport::default()
    }
}

/// Requests one host job keeps in flight on its connection at once (stats, hashes, writes).
pub const HOST_CONCURRENCY: usize = 64;

/// Await all futures concurrently, results in order (a small join_all without pulling in
/// the futures crate).
pub async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    join_all_bounded(futs, usize::MAX).await
}

/// Like [`futures_join_all`] with at most `limit` futures running at once (the next starts
/// when one finishes); results in input order.
pub async fn join_all_bounded<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
    limit: usize,
) -> Vec<F::Output> {
    use std::task::Poll;
    let mut waiting: std::collections::VecDeque<(usize, F)> =
        futs.into_iter().enumerate().collect();
    let mut outputs: Vec<Option<F::Output>> = waiting.iter().map(|_| None).collect();
    let mut running: Vec<(usize, std::pin::Pin<Box<F>>)> = Vec::new();
    let limit = limit.max(1);
    std::future::poll_fn(|cx| {
        loop {
            while running.len() < limit {
                match waiting.pop_front() {
                    Some((i, f)) => running.push((i, Box::pin(f))),
                    None => break,
                }
            }
            let mut finished = false;
            let mut k = 0;
            while k < running.len() {
                if let Poll::Ready(v) = running[k].1.as_mut().poll(cx) {
                    outputs[running[k].0] = Some(v);
                    drop(running.swap_remove(k));
                    finished = true;
                } else {
                    k += 1;
                }
            }
            if running.is_empty() && waiting.is_empty() {
                return Poll::Ready(());
            }
            // Newly started futures must be polled once to register their wakers.
            if !finished || waiting.is_empty() {
                return Poll::Pending;
            }
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::replicate::testutil::{Rooted, rt};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn content_copy_is_idempotent_and_fixes_mode_only() {
        let dir = tempfile::tempdir().unwrap();
        let h = Rooted::new("h", dir.path());
        let rt = rt();
        let opts = CopyOptions {
            dest: Some("/etc/motd".into()),
            ..CopyOptions::default()
        };
        let body = Bytes::from_static(b"hello\n");
        let r = rt.block_on(copy_content(&h, body.clone(), "content", &opts));
        assert!(r.changed() && !r.failed(), "{:?}", r.message());
        assert_eq!(h.get("/etc/motd").unwrap(), b"hello\n");
        let mode = |h: &Rooted| {
            std::fs::metadata(h.real("/etc/motd"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode(&h), 0o644, "new content without mode gets 0644");
        let r = rt.block_on(copy_content(&h, body.clone(), "content", &opts));
        assert!(!r.changed(), "{:?}", r.to_json());
        // Existing mode is kept when none is given, and fixed when one is.
        std::fs::set_permissions(h.real("/etc/motd"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let r = rt.block_on(copy_content(&h, body.clone(), "content", &opts));
        assert!(!r.changed());
        let with_mode = CopyOptions {
            mode: Some(ModeSpec::parse("g+r").unwrap()),
            ..opts.clone()
        };
        let r = rt.block_on(copy_content(&h, body.clone(), "content", &with_mode));
        assert!(r.changed());
        assert_eq!(r.files[0].action, Some(Action::FixAttrs));
        assert_eq!(mode(&h), 0o640);
        let j = r.to_json();
        assert_eq!(j["files"][0]["mode"], "0640");
        assert_eq!(j["changed"], true);
    }

    #[test]
    fn content_to_a_directory_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let h = Rooted::new("h", dir.path());
        std::fs::create_dir_all(h.real("/etc")).unwrap();
        let opts = CopyOptions {
            dest: Some("/etc".into()),
            ..CopyOptions::default()
        };
        let r = rt().block_on(copy_content(&h, Bytes::from_static(b"x"), "content", &opts));
        assert!(r.failed());
        assert!(r.message().unwrap().contains("/etc: is a directory"));
    }

    #[tokio::test]
    async fn a_stream_cut_short_is_never_committed() {
        let dir = tempfile::tempdir().unwrap();
        let h = Rooted::new("h", dir.path());
        h.put("/d/f", b"old");
        let (tx, rx) = mpsc::channel(4);
        let (tx2, rx2) = mpsc::channel(RELAY_DEPTH);
        let ws = WriteSpec {
            dest: "/d/f".into(),
            mode: 0o644,
            uid: None,
            gid: None,
            expect: crate::target::Expect::Any,
            validate: None,
            backup: false,
        };
        let feed = async move {
            tx.send(Ok(Bytes::from_static(b"only part"))).await.unwrap();
            // Dropped without an error, as a cancelled or stalled fan-out would.
        };
        let none = ProgressHandle::none();
        let counted = Counted {
            progress: &none,
            host: "h",
        };
        let (written, (), ()) = tokio::join!(
            h.write_atomic(&ws, Body::Stream(rx2)),
            length_checked(rx, tx2, 100, counted),
            feed
        );
        let e = written.unwrap_err();
        assert!(e.to_string().contains("9 of 100 bytes"), "{e}");
        assert_eq!(h.get("/d/f").unwrap(), b"old");
        assert_eq!(h.ls("/d"), vec!["f"]);
    }
}
