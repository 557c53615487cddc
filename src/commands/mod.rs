//! The command drivers: one function per `sshfleet` subcommand, each turning the domain
//! configuration ([`Config`] plus the command's own) into work on the fleet and an exit code.
//!
//! A driver resolves its hosts, connects, runs a per-host job written against
//! [`crate::target::Target`] (the operations in [`crate::ops`]) through the fleet runner,
//! and reports. [`run_on_hosts`] is that sequence in one call; drivers that must act between
//! the steps (rotation, replication) use its pieces: [`Config::resolve`], [`no_hosts`],
//! [`run_on_specs`], or lower: [`Config::connector`], [`Config::reporter`], [`finish`].
//!
//! - [`adhoc`]: `ping`, `run`
//! - [`config`]: `config [--host H]`
//! - [`inventory`]: `inventory --list|--host`, `hosts`
//! - [`keys`]: `keys list|add|remove|set|rotate`
//! - [`files`]: `slurp`, `copy`, `replicate`
//! - [`runs`]: `runs`, `runs show ID` (the run journal, [`crate::journal`])
//! - [`hostkeys`]: `hostkeys scan|certify`
//! - [`undo`]: `undo RUN_ID`

pub mod adhoc;
pub mod config;
pub mod files;
pub mod hostkeys;
pub mod inventory;
pub mod keys;
pub mod runs;
pub mod undo;

use std::future::Future;
use std::sync::Arc;

use crate::error::{ExitCode, Result};
use crate::events::{HostOutcome, Recap};
use crate::fleet::resolve::{ConnOverrides, Selection, resolve_targets};
use crate::fleet::{self, HostCtx, RunOptions};
use crate::inventory::conn::ConnSpec;
use crate::journal::{Journal, JournalError};
use crate::report::{OutputMode, ReportOptions, Reporter};
use crate::ssh::Connector;
use crate::target::TargetError;

/// The global flags as domain configuration, built once by the command line and split here
/// into what each layer needs: the inventory and `--limit` for resolving hosts, connection
/// overrides for [`crate::fleet::resolve`] and the SSH connector, run options for the fleet
/// runner, report options for the reporter, and the check/diff mode for the operations.
#[derive(Debug, Clone)]
pub struct Config {
    /// `-i` sources, as given (empty: Ansible's defaults).
    pub inventory: Vec<String>,
    /// `--limit`.
    pub limit: Option<String>,
    pub conn: ConnOverrides,
    pub run: RunOptions,
    pub report: ReportOptions,
    /// `--check`: change nothing, predict what would change.
    pub check: bool,
    /// `--diff`: compute before/after of changed files.
    pub diff: bool,
    /// ansible.cfg and `ANSIBLE_*` as resolved (for `config`; the connection settings in it
    /// reach the hosts through [`ConnOverrides::defaults`]).
    pub ansible: Arc<crate::ansible_config::AnsibleConfig>,
    /// Where `run.forks` came from (`-f`, `forks`/`ANSIBLE_FORKS`, or sshfleet's default 200).
    pub forks_origin: crate::ansible_config::Origin,
    /// The run journal's settings ([`crate::journal`]).
    pub journal: JournalSettings,
}

/// Where the run journal lives and what it records about this invocation.
#[derive(Debug, Clone, Default)]
pub struct JournalSettings {
    /// `--journal-dir`; `None`: `$SSHFLEET_JOURNAL_DIR`, then the XDG state directory.
    pub dir: Option<std::path::PathBuf>,
    /// The command line as given (redacted when recorded).
    pub argv: Vec<String>,
}

impl Default for Config {
    /// Every flag at its default (no inventory, 200 forks, 10 s connect timeout, text output).
    fn default() -> Self {
        Config {
            inventory: vec![],
            limit: None,
            conn: ConnOverrides::default(),
            run: RunOptions::default(),
            report: ReportOptions {
                output: OutputMode::Text,
                verbose: 0,
                diff: false,
            },
            check: false,
            diff: false,
            ansible: Arc::new(
                crate::ansible_config::AnsibleConfig::from_text(
                    None,
                    &crate::ansible_config::Env::fixed([], "/"),
                )
                .expect("the defaults are valid"),
            ),
            forks_origin: crate::ansible_config::Origin::Default,
            journal: JournalSettings::default(),
        }
    }
}

impl Config {
    /// The hosts `pattern` (then `--limit`) selects, with the command-line overrides applied.
    pub fn resolve(&self, pattern: &str) -> Result<Vec<ConnSpec>> {
        let sel = Selection {
            pattern,
            limit: self.limit.as_deref(),
        };
        Ok(resolve_targets(&self.inventory, &sel, &self.conn)?)
    }

    /// One connector for a run (key and known_hosts caches, SSH settings).
    pub fn connector(&self) -> Connector {
        fleet::connector_for(&self.conn)
    }

    /// A reporter for the global output flags. Outside check mode it records every file the
    /// run changes in the run journal (check mode records nothing).
    pub fn reporter(&self) -> Reporter {
        let recorder = if self.check {
            None
        } else {
            match self.journal_store() {
                Ok(j) => Some(j.recorder(&self.journal.argv)),
                Err(e) => {
                    eprintln!("[WARNING]: changes of this run are not journaled: {e}");
                    None
                }
            }
        };
        Reporter::from_options(&self.report).with_journal(recorder)
    }

    /// The run journal ([`crate::journal`]) this invocation reads and writes.
    pub fn journal_store(&self) -> std::result::Result<Journal, JournalError> {
        let dir =
            crate::journal::default_dir(self.journal.dir.as_deref(), |k| std::env::var(k).ok())?;
        Ok(Journal::at(dir))
    }
}

/// Ansible's warning for an empty selection; a run that selects nothing succeeds.
pub fn no_hosts(pattern: &str) -> ExitCode {
    eprintln!("[WARNING]: No hosts matched pattern {pattern:?}, nothing to do");
    ExitCode::Ok
}

/// Print the recap (or JSON document) and map it to the exit code.
pub fn finish(reporter: &mut Reporter, recap: &Recap) -> ExitCode {
    reporter.finish(recap);
    ExitCode::of_recap(recap)
}

/// The whole sequence of a simple fleet command: resolve `pattern` (warn and exit 0 when it
/// selects nothing), connect, run `job` on every host with `reporter`, print the recap.
pub fn run_on_hosts<F, Fut>(
    cfg: &Config,
    pattern: &str,
    reporter: Reporter,
    job: F,
) -> Result<ExitCode>
where
    F: Fn(Arc<HostCtx>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<HostOutcome, TargetError>> + Send + 'static,
{
    let specs = cfg.resolve(pattern)?;
    if specs.is_empty() {
        return Ok(no_hosts(pattern));
    }
    Ok(run_on_specs(cfg, specs, reporter, job))
}

/// The second half of [`run_on_hosts`], for drivers with work between resolving and running:
/// connect, run `job` on every host of `specs` with `reporter`, print the recap.
pub fn run_on_specs<F, Fut>(
    cfg: &Config,
    specs: Vec<ConnSpec>,
    mut reporter: Reporter,
    job: F,
) -> ExitCode
where
    F: Fn(Arc<HostCtx>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<HostOutcome, TargetError>> + Send + 'static,
{
    let connector = cfg.connector();
    fleet::block_on(async move {
        let recap = fleet::run(specs, &connector, &cfg.run, &mut reporter, job).await;
        finish(&mut reporter, &recap)
    })
}
