//! The controller's entry point after argument parsing: [`Invocation`] in, exit code out.
//!
//! `main` parses flags with [`crate::cli`], hands the resulting domain configuration here,
//! and maps the outcome to a process exit code via [`crate::error`]. Each command family's
//! logic lives in its own module; this file only dispatches.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{ExitCode, Result};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Ansible-like per-host lines and a PLAY RECAP (progress bar on a TTY).
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Options shared by every command (Ansible's global flags).
#[derive(Debug, Clone)]
pub struct GlobalConfig {
    pub inventory: Vec<String>,
    pub limit: Option<String>,
    pub forks: usize,
    pub remote_user: Option<String>,
    pub private_key: Option<PathBuf>,
    pub passphrase_env: Option<String>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_checking: Option<String>,
    pub connect_timeout: Duration,
    pub host_timeout: Option<Duration>,
    pub r#become: bool,
    pub become_user: Option<String>,
    pub check: bool,
    pub diff: bool,
    pub output: OutputMode,
    pub verbose: u8,
}

/// One domain command, free of clap types.
#[derive(Debug, Clone)]
pub enum Command {
    /// `inventory --list`
    InventoryList,
    /// `inventory --host H`
    InventoryHost(String),
    /// `hosts PATTERN`
    Hosts(String),
    /// `ping [PATTERN]`
    Ping { pattern: String },
    /// `run [PATTERN] -- ARGV`
    Run { pattern: String, argv: Vec<String> },
    /// `keys ...`
    Keys(crate::ops::keys::KeysCommand),
    /// `slurp`, `copy`, `replicate`
    Files(crate::ops::replicate::FilesCommand),
    /// `fleet up`: a local test/demo fleet (see [`crate::testfleet::up`])
    FleetUp(crate::testfleet::up::UpConfig),
}

/// A fully parsed command line.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub global: GlobalConfig,
    pub command: Command,
}

/// Run one invocation to completion and return the exit code.
pub fn execute(inv: Invocation) -> Result<ExitCode> {
    match inv.command {
        Command::FleetUp(cfg) => crate::testfleet::up::run_up(cfg),
        Command::InventoryList => crate::inventory::commands::list(&inv.global),
        Command::InventoryHost(h) => crate::inventory::commands::host(&inv.global, &h),
        Command::Hosts(p) => crate::inventory::commands::hosts(&inv.global, &p),
        Command::Ping { pattern } => crate::fleet::adhoc::ping(&inv.global, &pattern),
        Command::Run { pattern, argv } => {
            crate::fleet::adhoc::run_command(&inv.global, &pattern, &argv)
        }
        Command::Keys(cmd) => crate::ops::keys::execute(&inv.global, &cmd),
        Command::Files(cmd) => crate::ops::replicate::driver::execute(&inv.global, &cmd),
    }
}
