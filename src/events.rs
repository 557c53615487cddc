//! The vocabulary between the fleet runner and whoever watches it: per-host [`HostOutcome`]s,
//! the [`Recap`] of a run, and the [`EventSink`] the runner reports to.
//!
//! The runner (`fleet::run`) emits events into an `EventSink`; the reporter
//! (`report::Reporter`) is one. Both depend on this module and neither on the other (the
//! runner/reporter split of cargo-nextest); the command drivers plug one into the other.
//! Pure data: nothing here does I/O.

use std::time::Duration;

use serde_json::Value;

use crate::target::TargetError;

/// Per-host result status, in Ansible's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Unreachable,
    Skipped,
}

/// What a job did on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostOutcome {
    pub host: String,
    pub status: Status,
    /// Short message (`failed: [h] => msg`).
    pub msg: Option<String>,
    /// Return values (a JSON object; shown with `-v` and in `--json`).
    pub result: Value,
    /// Before/after for `--diff`.
    pub diff: Option<Value>,
    /// Where the host's time went (filled in by the runner; shown with `-v`).
    pub timing: Option<HostTiming>,
    /// Files this job changed on the host, for the run journal (the `journal` module): set by
    /// the mutating commands, written by the reporter, whatever the status (a failed host
    /// may have changed a file before failing).
    pub changes: Vec<FileChange>,
}

/// One file a job changed on one host, as the run journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The path written (after following a symlink, where the command follows).
    pub path: String,
    pub kind: ChangeKind,
}

/// What is known about a changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// An authorized_keys file: its whole content before (`None`: it did not exist) and after
    /// (public keys are not secret; undo restores `before`).
    AuthorizedKeys {
        /// Whose file.
        user: String,
        before: Option<String>,
        after: String,
    },
    /// A copied or replicated file: only hashes, never content. `None`: absent (before) or
    /// not a regular file.
    Copied {
        sha256_before: Option<String>,
        sha256_after: String,
    },
    /// A host key sshd serves (`hostkeys rotate|retire`): the key file, by fingerprint only
    /// (`SHA256:…`, never key material); `None`: no key there before / after.
    HostKey {
        fingerprint_before: Option<String>,
        fingerprint_after: Option<String>,
    },
}

/// One host's time: connecting, authenticating, and the job itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostTiming {
    /// TCP connect and SSH handshake (`None`: no connection was made).
    pub connect: Option<Duration>,
    /// Authentication (`None`: no connection was made).
    pub auth: Option<Duration>,
    /// The whole job, connection included.
    pub total: Duration,
}

impl HostTiming {
    /// The job's own time: the total minus connecting and authenticating.
    pub fn work(&self) -> Duration {
        self.total
            .saturating_sub(self.connect.unwrap_or_default())
            .saturating_sub(self.auth.unwrap_or_default())
    }
}

impl HostOutcome {
    fn new(host: &str, status: Status, msg: Option<String>, result: Value) -> Self {
        HostOutcome {
            host: host.to_string(),
            status,
            msg,
            result,
            diff: None,
            timing: None,
            changes: Vec::new(),
        }
    }
    pub fn ok(host: &str, result: Value) -> Self {
        Self::new(host, Status::Ok, None, result)
    }
    pub fn changed(host: &str, result: Value) -> Self {
        Self::new(host, Status::Changed, None, result)
    }
    pub fn failed(host: &str, msg: impl Into<String>) -> Self {
        Self::new(
            host,
            Status::Failed,
            Some(msg.into()),
            Value::Object(Default::default()),
        )
    }
    pub fn unreachable(host: &str, msg: impl Into<String>) -> Self {
        Self::new(
            host,
            Status::Unreachable,
            Some(msg.into()),
            Value::Object(Default::default()),
        )
    }
    pub fn skipped(host: &str, msg: impl Into<String>) -> Self {
        Self::new(
            host,
            Status::Skipped,
            Some(msg.into()),
            Value::Object(Default::default()),
        )
    }
    /// Unreachable for transport errors, failed for everything else.
    pub fn from_error(host: &str, e: &TargetError) -> Self {
        match e {
            TargetError::Unreachable(m) => Self::unreachable(host, m.clone()),
            other => Self::failed(host, other.to_string()),
        }
    }
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }
    pub fn with_result(mut self, result: Value) -> Self {
        self.result = result;
        self
    }
    pub fn with_diff(mut self, diff: Value) -> Self {
        self.diff = Some(diff);
        self
    }
    /// Add changed files (for the journal).
    pub fn with_changes(mut self, changes: impl IntoIterator<Item = FileChange>) -> Self {
        self.changes.extend(changes);
        self
    }
}

/// The result of a fleet run.
#[derive(Debug, Clone, Default)]
pub struct Recap {
    /// Finished hosts, in selection order.
    pub outcomes: Vec<HostOutcome>,
    /// Hosts whose job was cancelled by Ctrl-C.
    pub not_finished: Vec<String>,
    pub interrupted: bool,
}

/// A recap with one host per status (`host00`, `host01`, ...), for tests of what reads recaps.
#[cfg(test)]
pub(crate) fn recap_of(statuses: &[Status]) -> Recap {
    Recap {
        outcomes: statuses
            .iter()
            .enumerate()
            .map(|(i, s)| HostOutcome {
                host: format!("host{i:02}"),
                status: *s,
                msg: None,
                result: Value::Object(Default::default()),
                diff: None,
                timing: None,
                changes: vec![],
            })
            .collect(),
        ..Default::default()
    }
}

/// Where the fleet runner reports progress. Called from the runner's task only, in order:
/// `run_started` once, then `host_finished` per host as each one ends (and `warning` for
/// problems that belong to no host).
pub trait EventSink {
    /// Before any host starts; `hosts` is how many will run.
    fn run_started(&mut self, hosts: usize);
    /// One host's job ended.
    fn host_finished(&mut self, outcome: &HostOutcome);
    /// A problem that belongs to no particular host (e.g. a panicking job).
    fn warning(&mut self, msg: &str);
}

/// An [`EventSink`] that ignores everything (for callers that only want the [`Recap`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl EventSink for Discard {
    fn run_started(&mut self, _: usize) {}
    fn host_finished(&mut self, _: &HostOutcome) {}
    fn warning(&mut self, _: &str) {}
}
