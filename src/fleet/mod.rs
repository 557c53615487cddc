//! Run a per-host job over many hosts with a concurrency limit, emitting events.
//!
//! # API for commands (rotate, replicate, copy, ping, run, ...)
//!
//! ```ignore
//! use sshfleet::fleet::{self, HostOutcome, RunOptions};
//! use sshfleet::report::Reporter;
//!
//! // 1. Resolve inventory + CLI overrides into connection specs (one per selected host).
//! let specs = fleet::resolve::resolve_targets(&global, pattern)?;   // Vec<ConnSpec>
//! // 2. One Connector per run (key cache, known_hosts cache, SSH settings).
//! let connector = fleet::connector_for(&global);
//! // 3. A reporter (progress bar on a TTY, Ansible-like lines, recap or --json).
//! let mut reporter = Reporter::for_global(&global);
//! // 4. Run the job on every host (inside a tokio runtime: `fleet::block_on(async { .. })`).
//! let recap = fleet::run(specs, &connector, &RunOptions::from_global(&global), &mut reporter,
//!     |ctx| async move {
//!         let t = ctx.target().await?;            // lazily connected SshTarget (reused)
//!         let out = t.run(&["true".into()], None).await?;
//!         // extra connection offering only one key (rotation's proof step):
//!         let s = ctx.connector().connect_with_key(ctx.spec(), &new_key).await?;
//!         Ok(HostOutcome::changed(ctx.host(), serde_json::json!({"rc": out.status})))
//!     }).await;
//! let code = reporter.finish(&recap);             // prints recap/JSON, returns ExitCode
//! ```
//!
//! - The job returns `Result<HostOutcome, TargetError>`: `Err(TargetError::Unreachable)` is
//!   reported as unreachable, any other `Err` as failed (so `?` works everywhere).
//! - Connection failures (including authentication, as Ansible does) are unreachable.
//! - `forks` jobs run at once (a semaphore); each host gets one connection, opened on first
//!   [`HostCtx::target`] and closed when its job ends.
//! - `host_timeout` bounds a whole job (reported failed); Ctrl-C cancels running jobs at
//!   their next await point (writes are temp+rename, and temp files of cancelled writes are
//!   removed before exit), the recap shows what finished and the exit code is 99.
//! - [`block_on`] builds the multi-threaded runtime commands run in.

pub mod adhoc;
pub mod resolve;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;

use crate::inventory::conn::ConnSpec;
use crate::report::Reporter;
use crate::run::GlobalConfig;
use crate::ssh::{Connector, SshConfig};
use crate::target::TargetError;
use crate::target::ssh::SshTarget;

pub use crate::report::Recap;

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
}

impl HostOutcome {
    fn new(host: &str, status: Status, msg: Option<String>, result: Value) -> Self {
        HostOutcome {
            host: host.to_string(),
            status,
            msg,
            result,
            diff: None,
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
}

/// How to run a fleet job.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Hosts worked on at once.
    pub forks: usize,
    /// Bound on one host's whole job.
    pub host_timeout: Option<Duration>,
    /// Catch Ctrl-C (SIGINT) and stop cleanly (exit code 99).
    pub handle_interrupt: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            forks: 200,
            host_timeout: None,
            handle_interrupt: true,
        }
    }
}

impl RunOptions {
    pub fn from_global(g: &GlobalConfig) -> Self {
        RunOptions {
            forks: g.forks.max(1),
            host_timeout: g.host_timeout,
            handle_interrupt: true,
        }
    }
}

/// The SSH settings of a run: environment defaults plus `--timeout` and `--passphrase-env`.
pub fn ssh_config_for(g: &GlobalConfig) -> SshConfig {
    let mut cfg = SshConfig::from_env();
    cfg.connect_timeout = g.connect_timeout;
    cfg.passphrase_env = g.passphrase_env.clone();
    cfg
}

/// A connector for a run.
pub fn connector_for(g: &GlobalConfig) -> Connector {
    Connector::new(ssh_config_for(g))
}

/// Run `fut` on a fresh multi-threaded tokio runtime.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime")
        .block_on(fut)
}

/// What a job gets for its host.
pub struct HostCtx {
    spec: ConnSpec,
    connector: Connector,
    target: OnceCell<SshTarget>,
}

impl HostCtx {
    pub fn new(spec: ConnSpec, connector: Connector) -> Self {
        HostCtx {
            spec,
            connector,
            target: OnceCell::new(),
        }
    }

    /// Inventory host name.
    pub fn host(&self) -> &str {
        &self.spec.name
    }

    pub fn spec(&self) -> &ConnSpec {
        &self.spec
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// The host's connection as a [`crate::target::Target`], connected on first use and
    /// reused for every later step. Connection errors are `TargetError::Unreachable`.
    pub async fn target(&self) -> Result<&SshTarget, TargetError> {
        self.target
            .get_or_try_init(|| async {
                let s = self.connector.connect(&self.spec).await?;
                Ok::<_, TargetError>(SshTarget::new(s, &self.spec.r#become)?)
            })
            .await
    }

    /// Open an extra connection offering only `key` (no agent, no fallback) with the same
    /// become settings.
    pub async fn target_with_key(&self, key: &std::path::Path) -> Result<SshTarget, TargetError> {
        let s = self.connector.connect_with_key(&self.spec, key).await?;
        Ok(SshTarget::new(s, &self.spec.r#become)?)
    }

    /// Close the host's connection, if one was opened.
    pub async fn close(&self) {
        if let Some(t) = self.target.get() {
            t.close().await;
        }
    }
}

/// Run `job` on every host of `specs` with `opts.forks` at a time; outcomes are fed to
/// `reporter` as they finish. Returns the recap (outcomes in `specs` order).
pub async fn run<F, Fut>(
    specs: Vec<ConnSpec>,
    connector: &Connector,
    opts: &RunOptions,
    reporter: &mut Reporter,
    job: F,
) -> Recap
where
    F: Fn(Arc<HostCtx>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HostOutcome, TargetError>> + Send + 'static,
{
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    reporter.start(names.len());
    let sem = Arc::new(Semaphore::new(opts.forks.max(1)));
    let job = Arc::new(job);
    let mut set = JoinSet::new();
    for (idx, spec) in specs.into_iter().enumerate() {
        let sem = sem.clone();
        let job = job.clone();
        let ctx = Arc::new(HostCtx::new(spec, connector.clone()));
        let timeout = opts.host_timeout;
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let host = ctx.host().to_string();
            let fut = job(ctx.clone());
            let res = match timeout {
                Some(t) => match tokio::time::timeout(t, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(TargetError::Other(format!(
                        "host timeout: the job did not finish within {}s",
                        t.as_secs()
                    ))),
                },
                None => fut.await,
            };
            ctx.close().await;
            let outcome = match res {
                Ok(mut o) => {
                    if o.host.is_empty() {
                        o.host = host;
                    }
                    o
                }
                Err(e) => HostOutcome::from_error(&host, &e),
            };
            (idx, outcome)
        });
    }

    let mut results: Vec<Option<HostOutcome>> = vec![None; names.len()];
    let mut interrupted = false;
    let mut sigint = if opts.handle_interrupt {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()
    } else {
        None
    };
    loop {
        let next = async {
            match sigint.as_mut() {
                Some(s) => {
                    tokio::select! {
                        biased;
                        _ = s.recv() => None,
                        r = set.join_next() => Some(r),
                    }
                }
                None => Some(set.join_next().await),
            }
        };
        match next.await {
            None => {
                interrupted = true;
                set.abort_all();
                // Let cancelled writes remove their temp files.
                while set.join_next().await.is_some() {}
                crate::target::ssh::wait_for_cleanups(Duration::from_secs(5)).await;
                break;
            }
            Some(None) => break,
            Some(Some(Ok((idx, outcome)))) => {
                reporter.host_done(&outcome);
                results[idx] = Some(outcome);
            }
            Some(Some(Err(e))) => {
                // A panicking job: report it against no particular host.
                reporter.warn(&format!("internal error in a host job: {e}"));
            }
        }
    }
    let mut outcomes = Vec::new();
    let mut not_finished = Vec::new();
    for (name, r) in names.into_iter().zip(results) {
        match r {
            Some(o) => outcomes.push(o),
            None if interrupted => not_finished.push(name),
            None => outcomes.push(HostOutcome::failed(
                &name,
                "internal error: the job panicked",
            )),
        }
    }
    Recap {
        outcomes,
        not_finished,
        interrupted,
    }
}
