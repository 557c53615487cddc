//! Run a per-host job over many hosts with a concurrency limit, emitting events.
//!
//! # API for commands (rotate, replicate, copy, ping, run, ...)
//!
//! Commands normally go through `commands::run_on_hosts`, which does these steps; the pieces
//! are public for drivers that need to act between them (rotation, replication):
//!
//! ```ignore
//! use sshfleet::fleet::{self, resolve::{ConnOverrides, resolve_targets}, RunOptions};
//! use sshfleet::events::HostOutcome;
//!
//! // 1. Resolve inventory + selection + overrides into connection specs (one per host).
//! let specs = resolve_targets(&inventory, &selection, &overrides)?;   // Vec<ConnSpec>
//! // 2. One Connector per run (key cache, known_hosts cache, SSH settings).
//! let connector = fleet::connector_for(&overrides);
//! // 3. Run the job on every host (inside a tokio runtime: `fleet::block_on(async { .. })`),
//! //    reporting to any `EventSink` (the CLI passes its `report::Reporter`).
//! let recap = fleet::run(specs, &connector, &RunOptions::default(), &mut sink,
//!     |ctx| async move {
//!         let t = ctx.target().await?;            // lazily connected SshTarget (reused)
//!         let out = t.run(&["true".into()], None).await?;
//!         // extra connection offering only one key (rotation's proof step):
//!         let s = ctx.connector().connect_with_key(ctx.spec(), &new_key).await?;
//!         Ok(HostOutcome::changed(ctx.host(), serde_json::json!({"rc": out.status})))
//!     }).await;
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

pub mod explain;
pub mod resolve;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;

pub use crate::events::{EventSink, HostOutcome, HostTiming, Recap, Status};
use crate::inventory::conn::ConnSpec;
use crate::inventory::hop::ResolveHop;
use crate::ssh::target::SshTarget;
use crate::ssh::{Connector, SshConfig};
use crate::target::TargetError;
use resolve::ConnOverrides;

/// How to run a fleet job.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Hosts worked on at once (at least 1: the command line clamps `--forks 0`).
    pub forks: usize,
    /// Bound on one host's whole job.
    pub host_timeout: Option<Duration>,
    /// Catch Ctrl-C (SIGINT) and stop cleanly (exit code 99).
    pub handle_interrupt: bool,
}

impl RunOptions {
    /// `forks` hosts at once (`0` counts as 1, as Ansible does), each job bounded by
    /// `host_timeout`, Ctrl-C handled.
    pub fn new(forks: usize, host_timeout: Option<Duration>) -> Self {
        RunOptions {
            forks: forks.max(1),
            host_timeout,
            handle_interrupt: true,
        }
    }
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

/// The SSH settings of a run: environment defaults plus `--timeout` and `--passphrase-env`.
pub fn ssh_config_for(o: &ConnOverrides) -> SshConfig {
    let mut cfg = SshConfig::from_env();
    cfg.connect_timeout = o.connect_timeout;
    cfg.passphrase_env = o.passphrase_env.clone();
    cfg
}

/// A connector for a run. `ProxyJump` hops are resolved through the run's OpenSSH client
/// configuration ([`resolve::hop_resolver`]), each as its own `ssh HOP` would be.
pub fn connector_for(o: &ConnOverrides) -> Connector {
    let cfg = ssh_config_for(o);
    match resolve::hop_resolver(o) {
        Ok(r) => Connector::with_hop_resolver(cfg, hop_hook(r)),
        // The same files already resolved every target; this only fails if they changed since.
        Err(e) => {
            eprintln!("[WARNING]: ProxyJump hops use the targets' settings: {e}");
            Connector::new(cfg)
        }
    }
}

/// [`crate::ssh::proxy::HopResolver`] over a [`ResolveHop`]: hop `hop` on the way to `target`
/// is resolved alone, with the target's config files (the transport sets the earlier hops), so
/// its own configuration applies as in `ssh HOP`.
fn hop_hook(r: Arc<dyn ResolveHop>) -> crate::ssh::proxy::HopResolver {
    Arc::new(move |hop, target| {
        let mut one = target.clone();
        one.proxy_jump = Some(hop.to_string());
        one.proxy_command = None;
        match r.jump_host(&one) {
            Ok(Some(spec)) => spec,
            Ok(None) => crate::ssh::proxy::inherit_from_target(hop, target),
            Err(e) => {
                eprintln!("[WARNING]: ProxyJump hop {hop}: {e}; using the target's settings");
                crate::ssh::proxy::inherit_from_target(hop, target)
            }
        }
    })
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

    /// Connect and authentication times of the host's connection, if one was opened.
    pub fn connect_timing(&self) -> Option<crate::ssh::ConnectTiming> {
        self.target.get().map(|t| t.session().timing)
    }

    /// Close the host's connection, if one was opened.
    pub async fn close(&self) {
        if let Some(t) = self.target.get() {
            t.close().await;
        }
    }
}

/// Run `job` on every host of `specs` with `opts.forks` at a time; outcomes are fed to
/// `events` as they finish. Returns the recap (outcomes in `specs` order).
pub async fn run<E, F, Fut>(
    specs: Vec<ConnSpec>,
    connector: &Connector,
    opts: &RunOptions,
    events: &mut E,
    job: F,
) -> Recap
where
    E: EventSink + ?Sized,
    F: Fn(Arc<HostCtx>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<HostOutcome, TargetError>> + Send + 'static,
{
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    events.run_started(names.len());
    debug_assert!(opts.forks >= 1, "RunOptions::forks must be at least 1");
    let sem = Arc::new(Semaphore::new(opts.forks));
    let job = Arc::new(job);
    let mut set = JoinSet::new();
    for (idx, spec) in specs.into_iter().enumerate() {
        let sem = sem.clone();
        let job = job.clone();
        let ctx = Arc::new(HostCtx::new(spec, connector.clone()));
        let timeout = opts.host_timeout;
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let started = std::time::Instant::now();
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
            let conn = ctx.connect_timing();
            let timing = HostTiming {
                connect: conn.map(|c| c.connect),
                auth: conn.map(|c| c.auth),
                total: started.elapsed(),
            };
            ctx.close().await;
            let mut outcome = match res {
                Ok(mut o) => {
                    if o.host.is_empty() {
                        o.host = host;
                    }
                    o
                }
                Err(e) => HostOutcome::from_error(&host, &e),
            };
            outcome.timing.get_or_insert(timing);
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
                crate::ssh::target::wait_for_cleanups(Duration::from_secs(5)).await;
                break;
            }
            Some(None) => break,
            Some(Some(Ok((idx, outcome)))) => {
                events.host_finished(&outcome);
                results[idx] = Some(outcome);
            }
            Some(Some(Err(e))) => {
                // A panicking job: report it against no particular host.
                events.warning(&format!("internal error in a host job: {e}"));
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
