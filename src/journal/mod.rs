//! The run journal: a record on the controller of every file a mutating run changed, so runs
//! can be listed (`sshfleet runs`), inspected (`runs show`) and taken back (`sshfleet undo`).
//!
//! This module owns where the journal lives, its format, writing it and reading it back.
//!
//! **Where**: `--journal-dir DIR`, else `$SSHFLEET_JOURNAL_DIR`, else
//! `$XDG_STATE_HOME/sshfleet/journal`, else `~/.local/state/sshfleet/journal` (directories
//! created `0700`). One file per run, `RUN_ID.jsonl` (`0600`), created when the run changes its
//! first file: runs that change nothing (check mode, a converged fleet) leave no file.
//!
//! **Format**: JSON Lines, one [`Record`] per host and file, each line complete in itself
//! (run id, time, operator, redacted command line, host, file, hashes, fingerprints added and
//! removed; for authorized_keys files the content before and after, for copied files only
//! hashes). Every record is appended with one `write(2)` on an `O_APPEND` descriptor, so a
//! reader never sees half a line even while the run is still writing.
//!
//! **Run ids** sort by time and are unique across concurrent runs: `YYYYMMDDTHHMMSS.mmmZ-PID`
//! (UTC, milliseconds, the controller's process id).
//!
//! **API** for commands (writing happens in one place, the reporter):
//! - a mutating command attaches what it changed to its outcome:
//!   [`HostOutcome::with_changes`] with
//!   [`FileChange`]s ([`ChangeKind::AuthorizedKeys`] with the content before/after, or
//!   [`ChangeKind::Copied`] with hashes);
//! - `commands::Config::reporter` gives every run's reporter a [`Recorder`] (none in
//!   check mode: check mode records nothing), and the reporter calls [`Recorder::record`] for
//!   each finished host. A command with its own loop can call [`Recorder::record`] directly.
//! - reading: [`Journal::runs`] (newest last), [`Journal::load`].

pub mod redact;

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::authorized_keys::AuthorizedKeys;
use crate::events::{ChangeKind, FileChange, HostOutcome};
use crate::files::checksum::{sha256, to_hex};

/// Journal errors, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path} line {line}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("no run {id} in the journal at {dir} (`sshfleet runs` lists them)")]
    NoSuchRun { id: String, dir: PathBuf },
    #[error(
        "no journal directory: set XDG_STATE_HOME or HOME, SSHFLEET_JOURNAL_DIR, or give --journal-dir"
    )]
    NoDir,
}

fn io(path: &Path, source: std::io::Error) -> JournalError {
    JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The journal directory for an explicit override and an environment lookup.
pub fn default_dir(
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PathBuf, JournalError> {
    if let Some(d) = explicit {
        return Ok(d.to_path_buf());
    }
    let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(d) = nonempty("SSHFLEET_JOURNAL_DIR") {
        return Ok(PathBuf::from(d));
    }
    // XDG: a relative XDG_STATE_HOME is invalid and ignored.
    if let Some(d) = nonempty("XDG_STATE_HOME").filter(|d| d.starts_with('/')) {
        return Ok(Path::new(&d).join("sshfleet/journal"));
    }
    match nonempty("HOME") {
        Some(h) => Ok(Path::new(&h).join(".local/state/sshfleet/journal")),
        None => Err(JournalError::NoDir),
    }
}

/// What every record of a run repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run: String,
    /// UTC, RFC 3339 with milliseconds.
    pub time: String,
    /// The local user who ran it.
    pub operator: String,
    /// The command line, secrets redacted ([`redact::argv`]).
    pub command: Vec<String>,
}

impl RunInfo {
    /// A new run now, by the current user, for `argv` (redacted here).
    pub fn new(argv: &[String]) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let (secs, ms) = (now.as_secs() as i64, now.subsec_millis());
        let (y, mo, d, h, mi, s) = crate::target::civil_from_unix(secs);
        RunInfo {
            run: format!(
                "{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{ms:03}Z-{}",
                std::process::id()
            ),
            time: format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z"),
            operator: operator(),
            command: redact::argv(argv),
        }
    }
}

/// The local user: the passwd name of the real uid, else `$USER`, else the uid.
pub fn operator() -> String {
    // SAFETY: getuid cannot fail; getpwuid_r writes into the buffers we pass.
    unsafe {
        let uid = libc::getuid();
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) == 0
            && !out.is_null()
            && !pw.pw_name.is_null()
        {
            return std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned();
        }
        std::env::var("USER").unwrap_or_else(|_| uid.to_string())
    }
}

/// Kind of file a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    AuthorizedKeys,
    Copied,
    /// A host key file (`hostkeys rotate|retire`): fingerprints only.
    HostKey,
}

/// One line of the journal: one file changed on one host by one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    #[serde(flatten)]
    pub info: RunInfo,
    pub host: String,
    pub file: String,
    pub kind: FileKind,
    /// Whose authorized_keys file (authorized_keys records only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `None`: the file did not exist (or was not a regular file).
    pub sha256_before: Option<String>,
    pub sha256_after: Option<String>,
    #[serde(default)]
    pub fingerprints_added: Vec<String>,
    #[serde(default)]
    pub fingerprints_removed: Vec<String>,
    /// authorized_keys only: the content before (`None`: absent) and the content left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_after: Option<String>,
}

/// Fingerprints of keys in `after` and not in `before` (added) and the reverse (removed), in
/// file order, each once.
pub fn fingerprint_delta(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let fps = |text: &str| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for (_, k) in AuthorizedKeys::parse(text).keys() {
            let fp = k.fingerprint();
            if !v.contains(&fp) {
                v.push(fp);
            }
        }
        v
    };
    let (b, a) = (fps(before), fps(after));
    let added = a.iter().filter(|f| !b.contains(f)).cloned().collect();
    let removed = b.iter().filter(|f| !a.contains(f)).cloned().collect();
    (added, removed)
}

impl Record {
    /// The record of `change` on `host` in run `info`.
    pub fn of(info: &RunInfo, host: &str, change: &FileChange) -> Record {
        let mut r = Record {
            info: info.clone(),
            host: host.to_string(),
            file: change.path.clone(),
            kind: FileKind::Copied,
            user: None,
            sha256_before: None,
            sha256_after: None,
            fingerprints_added: vec![],
            fingerprints_removed: vec![],
            content_before: None,
            content_after: None,
        };
        match &change.kind {
            ChangeKind::AuthorizedKeys {
                user,
                before,
                after,
            } => {
                let (added, removed) = fingerprint_delta(before.as_deref().unwrap_or(""), after);
                r.kind = FileKind::AuthorizedKeys;
                r.user = Some(user.clone());
                r.sha256_before = before.as_ref().map(|b| to_hex(&sha256(b.as_bytes())));
                r.sha256_after = Some(to_hex(&sha256(after.as_bytes())));
                r.fingerprints_added = added;
                r.fingerprints_removed = removed;
                r.content_before = before.clone();
                r.content_after = Some(after.clone());
            }
            ChangeKind::Copied {
                sha256_before,
                sha256_after,
            } => {
                r.sha256_before = sha256_before.clone();
                r.sha256_after = Some(sha256_after.clone());
            }
            ChangeKind::HostKey {
                fingerprint_before,
                fingerprint_after,
            } => {
                r.kind = FileKind::HostKey;
                r.fingerprints_added = fingerprint_after.iter().cloned().collect();
                r.fingerprints_removed = fingerprint_before.iter().cloned().collect();
            }
        }
        r
    }
}

/// The journal directory.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

/// A run as `sshfleet runs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    #[serde(flatten)]
    pub info: RunInfo,
    /// Hosts with at least one record, in record order.
    pub hosts: Vec<String>,
    /// Files changed (records).
    pub changed: usize,
}

impl Journal {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Journal { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn run_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.jsonl"))
    }

    /// A recorder for a new run of `argv`; nothing is written before its first record.
    pub fn recorder(&self, argv: &[String]) -> Recorder {
        let info = RunInfo::new(argv);
        Recorder {
            path: self.run_path(&info.run),
            dir: self.dir.clone(),
            info,
            file: None,
            records: 0,
        }
    }

    /// Every run's id, oldest first (ids sort by time).
    pub fn run_ids(&self) -> Result<Vec<String>, JournalError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io(&self.dir, e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".jsonl")
                    .filter(|s| !s.starts_with('.'))
                    .map(str::to_string)
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The records of run `id`, in the order they were written.
    pub fn load(&self, id: &str) -> Result<Vec<Record>, JournalError> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(JournalError::NoSuchRun {
                id: id.to_string(),
                dir: self.dir.clone(),
            });
        }
        let path = self.run_path(id);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JournalError::NoSuchRun {
                    id: id.to_string(),
                    dir: self.dir.clone(),
                });
            }
            Err(e) => return Err(io(&path, e)),
        };
        parse_records(&path, &text)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>, JournalError> {
        let mut out = Vec::new();
        for id in self.run_ids()? {
            let records = self.load(&id)?;
            if let Some(s) = summarize(&records) {
                out.push(s);
            }
        }
        Ok(out)
    }
}

/// Records from a journal file's text. A last line without its newline is a record still
/// being written by a live run (or cut by a crash) and is skipped; any other bad line is an
/// error naming the line.
pub fn parse_records(path: &Path, text: &str) -> Result<Vec<Record>, JournalError> {
    let mut out = Vec::new();
    let complete = text.rfind('\n').map(|i| &text[..=i]).unwrap_or("");
    for (i, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(line).map_err(|e| JournalError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            msg: e.to_string(),
        })?);
    }
    Ok(out)
}

/// A run's summary from its records (`None`: no records).
pub fn summarize(records: &[Record]) -> Option<RunSummary> {
    let first = records.first()?;
    let mut hosts: Vec<String> = Vec::new();
    for r in records {
        if !hosts.contains(&r.host) {
            hosts.push(r.host.clone());
        }
    }
    Some(RunSummary {
        info: first.info.clone(),
        hosts,
        changed: records.len(),
    })
}

/// Writes one run's records. Owned by the run's reporter.
#[derive(Debug)]
pub struct Recorder {
    dir: PathBuf,
    path: PathBuf,
    info: RunInfo,
    file: Option<std::fs::File>,
    records: usize,
}

impl Recorder {
    /// This run's id.
    pub fn run_id(&self) -> &str {
        &self.info.run
    }

    /// How many records were written.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The journal file of this run.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&mut self) -> Result<&mut std::fs::File, JournalError> {
        if self.file.is_none() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| io(&self.dir, e))?;
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&self.path)
                .map_err(|e| io(&self.path, e))?;
            self.file = Some(f);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Append one record per change of `host` (one `write` each).
    pub fn record(&mut self, host: &str, changes: &[FileChange]) -> Result<(), JournalError> {
        for c in changes {
            let rec = Record::of(&self.info, host, c);
            let mut line = serde_json::to_vec(&rec).map_err(|e| JournalError::Parse {
                path: self.path.clone(),
                line: self.records + 1,
                msg: e.to_string(),
            })?;
            line.push(b'\n');
            let path = self.path.clone();
            let f = self.open()?;
            f.write_all(&line).map_err(|e| io(&path, e))?;
            self.records += 1;
        }
        Ok(())
    }

    /// [`Self::record`] for a finished host's outcome.
    pub fn record_outcome(&mut self, o: &HostOutcome) -> Result<(), JournalError> {
        self.record(&o.host, &o.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::{ED1, ED1_FP};

    #[test]
    fn dir_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let all = env(&[
            ("SSHFLEET_JOURNAL_DIR", "/j"),
            ("XDG_STATE_HOME", "/s"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            default_dir(Some(Path::new("/x")), all).unwrap(),
            PathBuf::from("/x")
        );
        assert_eq!(default_dir(None, all).unwrap(), PathBuf::from("/j"));
        let xdg = env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/h")]);
        assert_eq!(
            default_dir(None, xdg).unwrap(),
            PathBuf::from("/s/sshfleet/journal")
        );
        let rel = env(&[("XDG_STATE_HOME", "rel"), ("HOME", "/h")]);
        assert_eq!(
            default_dir(None, rel).unwrap(),
            PathBuf::from("/h/.local/state/sshfleet/journal")
        );
        assert!(default_dir(None, env(&[])).is_err());
    }

    #[test]
    fn run_ids_sort_by_time() {
        let a = RunInfo::new(&["sshfleet".into()]);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = RunInfo::new(&["sshfleet".into()]);
        assert!(a.run < b.run, "{} {}", a.run, b.run);
        assert!(a.run.ends_with(&format!("Z-{}", std::process::id())));
        assert_eq!(a.time.len(), "2026-12-03T11:36:00.123Z".len());
    }

    #[test]
    fn records_round_trip_with_files_0600_and_partial_last_line_skipped() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::at(tmp.path().join("j"));
        let mut r = j.recorder(&["sshfleet".into(), "keys".into(), "add".into()]);
        assert!(j.run_ids().unwrap().is_empty());
        r.record("h1", &[]).unwrap();
        assert!(!r.path().exists(), "no file before a change");
        let ak = FileChange {
            path: "/home/u/.ssh/authorized_keys".into(),
            kind: ChangeKind::AuthorizedKeys {
                user: "u".into(),
                before: None,
                after: format!("{ED1}\n"),
            },
        };
        let cp = FileChange {
            path: "/etc/x".into(),
            kind: ChangeKind::Copied {
                sha256_before: None,
                sha256_after: "ab".into(),
            },
        };
        r.record("h1", &[ak]).unwrap();
        r.record("h2", &[cp]).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(r.path()), 0o600);
        assert_eq!(mode(j.dir()), 0o700);
        // A half-written line (a live run) is not read.
        std::fs::OpenOptions::new()
            .append(true)
            .open(r.path())
            .unwrap()
            .write_all(b"{\"run\":")
            .unwrap();
        let recs = j.load(r.run_id()).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].fingerprints_added, vec![ED1_FP.to_string()]);
        assert_eq!(recs[0].content_before, None);
        assert_eq!(recs[1].kind, FileKind::Copied);
        assert_eq!(recs[1].content_after, None);
        let runs = j.runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].hosts, vec!["h1", "h2"]);
        assert_eq!(runs[0].changed, 2);
        assert!(matches!(
            j.load("../etc"),
            Err(JournalError::NoSuchRun { .. })
        ));
    }

    #[test]
    fn delta_of_fingerprints() {
        let (a, r) = fingerprint_delta(&format!("{ED1}\n"), "");
        assert!(a.is_empty());
        assert_eq!(r, vec![ED1_FP.to_string()]);
    }
}
