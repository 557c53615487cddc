//! Shared test harness for the integration tests.
//!
//! - [`fleet`]: the real OpenSSH test fleet (`sshfleet::testfleet`) and `ssh` helpers.
//! - [`ansible`]: an isolated ansible-core with the module binaries installed.
//! - [`Sshfleet`]: a fluent runner for the `sshfleet` binary with assertions on its output:
//!
//! ```ignore
//! let fleet = Fleet::builder().hosts(3).start().unwrap();
//! Sshfleet::new()
//!     .inventory(&fleet)
//!     .args(["ping"])
//!     .run()
//!     .success()
//!     .stdout_contains("ok: [host01]");
//! ```
//!
//! Helpers unused by some test modules are fine: this is a shared library of helpers.
#![allow(dead_code)]

pub mod ansible;
pub mod fleet;
pub mod keys;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the built `sshfleet` binary.
pub fn sshfleet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sshfleet"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/venv/bin` (ansible-core), created by `scripts/setup.sh`.
pub fn venv_bin() -> PathBuf {
    repo_root().join("target/venv/bin")
}

/// A builder for one run of the `sshfleet` binary.
#[derive(Debug, Default)]
pub struct Sshfleet {
    args: Vec<OsString>,
    env: BTreeMap<OsString, OsString>,
    env_remove: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    cwd: Option<PathBuf>,
    timeout: Option<Duration>,
}

impl Sshfleet {
    pub fn new() -> Self {
        Self::default()
    }
    /// `-i INVENTORY --private-key KEY --known-hosts FILE` of a fleet.
    pub fn inventory(self, fleet: &fleet::Fleet) -> Self {
        self.arg("-i")
            .arg(fleet.inventory())
            .arg("--private-key")
            .arg(fleet.client_key())
            .arg("--known-hosts")
            .arg(fleet.known_hosts())
    }
    /// `-i PATH` only.
    pub fn inventory_file(self, path: impl AsRef<Path>) -> Self {
        self.arg("-i").arg(path.as_ref())
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .insert(k.as_ref().to_owned(), v.as_ref().to_owned());
        self
    }
    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.env_remove.push(k.as_ref().to_owned());
        self
    }
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    /// Kill the run (and fail the test) after this long. Default 120 s.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// Run to completion and capture the output.
    #[track_caller]
    pub fn run(self) -> Output {
        let mut cmd = Command::new(sshfleet_bin());
        cmd.args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Keep the user's ansible/ssh environment from leaking into the run.
        cmd.env_remove("SSH_AUTH_SOCK");
        for d in sshfleet::ansible_config::settings::HONOURED {
            for name in d.env {
                cmd.env_remove(name);
            }
        }
        for k in &self.env_remove {
            cmd.env_remove(k);
        }
        // Runs journal into target/, never into the tester's own state directory (a test that
        // reads the journal gives its own directory with `.env` or `--journal-dir`).
        cmd.env(
            "SSHFLEET_JOURNAL_DIR",
            repo_root().join("target/test-journal"),
        );
        cmd.envs(&self.env);
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn sshfleet");
        let writer = self.stdin.map(|input| {
            let mut stdin = child.stdin.take().expect("stdin");
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            })
        });
        let pid = child.id();
        let timeout = self.timeout.unwrap_or(Duration::from_secs(120));
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(timeout).is_err() {
                // SAFETY: kill(2) on our own child's PID (not yet reaped: we wait below).
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
                true
            } else {
                false
            }
        });
        let out = child.wait_with_output().expect("wait sshfleet");
        let _ = done_tx.send(());
        let timed_out = watchdog.join().unwrap_or(false);
        if let Some(w) = writer {
            let _ = w.join();
        }
        let output = Output {
            args: self.args,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        };
        assert!(!timed_out, "sshfleet timed out after {timeout:?}\n{output}");
        output
    }
}

/// The result of one `sshfleet` run, with chainable assertions that print everything on
/// failure.
#[derive(Debug, Clone)]
pub struct Output {
    pub args: Vec<OsString>,
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ sshfleet {}\nexit: {:?} ({:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            self.code,
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }
}

impl Output {
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success\n{self}");
        self
    }
    #[track_caller]
    pub fn failure(&self) -> &Self {
        assert_ne!(self.code, Some(0), "expected failure\n{self}");
        self
    }
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "expected exit code {code}\n{self}");
        self
    }
    #[track_caller]
    pub fn stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }
    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle),
            "stdout has {needle:?}\n{self}"
        );
        self
    }
    #[track_caller]
    pub fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }
    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}\n{self}"
        );
        self
    }
    /// Neither stdout nor stderr contains `needle` (e.g. a secret).
    #[track_caller]
    pub fn output_lacks(&self, needle: &str) -> &Self {
        self.stdout_lacks(needle).stderr_lacks(needle)
    }
    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}
