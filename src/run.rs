//! The controller's entry point after argument parsing: [`Invocation`] in, exit code out.
//!
//! `main` parses flags with [`crate::cli`], hands the resulting domain configuration here,
//! and maps the outcome to a process exit code via [`crate::error`]. Each command family's
//! logic lives in its own module; this file only dispatches.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, ExitCode, Result};

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
        Command::InventoryList | Command::InventoryHost(_) | Command::Hosts(_) => {
            Err(Error::NotImplemented {
                what: "inventory commands",
            })
        }
        Command::Ping { .. } | Command::Run { .. } => {
            Err(Error::NotImplemented { what: "ping/run" })
        }
        Command::Keys(_) => Err(Error::NotImplemented { what: "keys" }),
        Command::Files(_) => Err(Error::NotImplemented {
            what: "slurp/copy/replicate",
        }),
    }
}
