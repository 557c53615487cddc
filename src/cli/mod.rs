//! Command-line interface: clap definitions and their conversion into domain configuration.
//!
//! Nothing outside this module sees clap types. [`Cli::into_config`] turns the parsed flags
//! into a [`crate::run::Invocation`]: the global flags become the domain
//! [`crate::commands::Config`] here, once (`--forks 0` clamped, `--host-key-checking`
//! parsed, durations built), plus one domain command. Each command family keeps its flags in
//! its own file.

pub mod adhoc;
pub mod files;
#[cfg(feature = "testfleet")]
pub mod fleet;
pub mod inventory;
pub mod keys;

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};

use crate::commands::Config;
use crate::error::{Error, Result};
use crate::fleet::RunOptions;
use crate::fleet::resolve::ConnOverrides;
use crate::inventory::conn::HostKeyPolicy;
use crate::report::{OutputMode, ReportOptions};
use crate::run::Invocation;
use crate::secret::SecretSource;

/// Rotate SSH keys and replicate files across an Ansible inventory, in parallel, safely.
#[derive(Debug, Parser)]
#[command(name = "sshfleet", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Inventory file or directory (repeatable; comma-separated host lists like `a,b,` too).
    /// Default: $ANSIBLE_INVENTORY, then ansible.cfg [defaults] inventory, then /etc/ansible/hosts.
    #[arg(
        short = 'i',
        long = "inventory",
        global = true,
        help_heading = "Global options",
        value_name = "INVENTORY"
    )]
    pub inventory: Vec<String>,

    /// Further limit selected hosts to a pattern (Ansible syntax: `a:b`, `&g`, `!g`, `~re`, `@file`).
    #[arg(
        short = 'l',
        long = "limit",
        global = true,
        help_heading = "Global options",
        value_name = "SUBSET"
    )]
    pub limit: Option<String>,

    /// How many hosts to work on at once.
    #[arg(
        short = 'f',
        long = "forks",
        global = true,
        help_heading = "Global options",
        default_value_t = 200,
        value_name = "FORKS"
    )]
    pub forks: usize,

    /// Connect as this user (overrides ansible_user).
    #[arg(
        short = 'u',
        long = "user",
        global = true,
        help_heading = "Global options",
        value_name = "REMOTE_USER"
    )]
    pub remote_user: Option<String>,

    /// Private key file for authentication (overrides ansible_ssh_private_key_file).
    #[arg(
        long = "private-key",
        visible_alias = "key-file",
        global = true,
        help_heading = "Global options",
        value_name = "PRIVATE_KEY_FILE"
    )]
    pub private_key: Option<PathBuf>,

    /// Environment variable holding the passphrase of an encrypted private key.
    #[arg(
        long = "passphrase-env",
        global = true,
        help_heading = "Global options",
        value_name = "VAR"
    )]
    pub passphrase_env: Option<String>,

    /// Ask for the connection password on the terminal (password/keyboard-interactive auth).
    #[arg(
        short = 'k',
        long = "ask-pass",
        global = true,
        help_heading = "Global options"
    )]
    pub ask_pass: bool,

    /// Environment variable holding the connection password (non-interactive -k).
    #[arg(
        long = "password-env",
        global = true,
        help_heading = "Global options",
        value_name = "VAR"
    )]
    pub password_env: Option<String>,

    /// Ask for the privilege escalation (sudo/su) password on the terminal.
    #[arg(
        short = 'K',
        long = "ask-become-pass",
        global = true,
        help_heading = "Global options"
    )]
    pub ask_become_pass: bool,

    /// Environment variable holding the become password (non-interactive -K).
    #[arg(
        long = "become-password-env",
        global = true,
        help_heading = "Global options",
        value_name = "VAR"
    )]
    pub become_password_env: Option<String>,

    /// known_hosts file to check host keys against (default ~/.ssh/known_hosts).
    #[arg(
        long = "known-hosts",
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub known_hosts: Option<PathBuf>,

    /// Host key checking: yes (strict, default), accept-new, no.
    #[arg(
        long = "host-key-checking",
        global = true,
        help_heading = "Global options",
        value_name = "MODE"
    )]
    pub host_key_checking: Option<String>,

    /// Per-host connection timeout in seconds.
    #[arg(
        short = 'T',
        long = "timeout",
        global = true,
        help_heading = "Global options",
        default_value_t = 10,
        value_name = "SECS"
    )]
    pub timeout: u64,

    /// Whole-job timeout per host in seconds (0 = none).
    #[arg(
        long = "host-timeout",
        global = true,
        help_heading = "Global options",
        default_value_t = 0,
        value_name = "SECS"
    )]
    pub host_timeout: u64,

    /// Run operations with become (sudo).
    #[arg(
        short = 'b',
        long = "become",
        global = true,
        help_heading = "Global options"
    )]
    pub r#become: bool,

    /// Privilege escalation method: sudo (default) or su.
    #[arg(
        long = "become-method",
        global = true,
        help_heading = "Global options",
        value_name = "METHOD"
    )]
    pub become_method: Option<String>,

    /// Become this user (default root).
    #[arg(
        long = "become-user",
        global = true,
        help_heading = "Global options",
        value_name = "USER"
    )]
    pub become_user: Option<String>,

    /// Don't make any changes; predict what would change.
    #[arg(
        short = 'C',
        long = "check",
        global = true,
        help_heading = "Global options"
    )]
    pub check: bool,

    /// Show the differences in files that change.
    #[arg(
        short = 'D',
        long = "diff",
        global = true,
        help_heading = "Global options"
    )]
    pub diff: bool,

    /// Print one JSON document with a result object per host instead of the text recap.
    #[arg(long = "json", global = true, help_heading = "Global options")]
    pub json: bool,

    /// More output (repeat for more).
    #[arg(short = 'v', long = "verbose", global = true, help_heading = "Global options", action = ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the inventory as `ansible-inventory` does (`--list` or `--host H`).
    Inventory(inventory::InventoryArgs),
    /// List the hosts a pattern selects, as `ansible PATTERN --list-hosts` does.
    Hosts(inventory::HostsArgs),
    /// Connect, authenticate and run `true` on every selected host.
    Ping(adhoc::PingArgs),
    /// Run a command (no shell) on every selected host, like `ansible -m command`.
    Run(adhoc::RunArgs),
    /// Manage authorized_keys: list, add, remove, set (exclusive), rotate.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Fetch files from one host to the controller (or print them as JSON, like slurp).
    Slurp(files::SlurpArgs),
    /// Copy controller files to every selected host.
    Copy(files::CopyArgs),
    /// Copy files from one host to every other selected host, byte for byte.
    Replicate(files::ReplicateArgs),
    /// Test/demo: run a local fleet of real sshd hosts on 127.0.0.1 (`fleet up`; root only).
    #[cfg(feature = "testfleet")]
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
}

/// `--host-key-checking` values: yes/true/strict, accept-new, no/false/off.
pub fn parse_policy(s: &str) -> Result<HostKeyPolicy> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "strict" | "1" | "on" => Ok(HostKeyPolicy::Strict),
        "accept-new" | "accept_new" | "new" => Ok(HostKeyPolicy::AcceptNew),
        "no" | "false" | "off" | "0" => Ok(HostKeyPolicy::Off),
        other => Err(Error::Usage(format!(
            "--host-key-checking: unknown mode {other:?} (use yes, accept-new or no)"
        ))),
    }
}

impl Cli {
    /// The global flags as domain configuration (low-level flags to high-level config, once).
    fn config(&self) -> Result<Config> {
        let host_key_policy = self
            .host_key_checking
            .as_deref()
            .map(parse_policy)
            .transpose()?;
        let become_method = match self.become_method.as_deref() {
            None => None,
            Some(m @ ("sudo" | "su")) => Some(m.to_string()),
            Some(other) => {
                return Err(Error::Usage(format!(
                    "--become-method: {other:?} is not supported (sudo, su)"
                )));
            }
        };
        Ok(Config {
            inventory: self.inventory.clone(),
            limit: self.limit.clone(),
            conn: ConnOverrides {
                remote_user: self.remote_user.clone(),
                private_key: self.private_key.clone(),
                passphrase_env: self.passphrase_env.clone(),
                known_hosts: self.known_hosts.clone(),
                host_key_policy,
                connect_timeout: Duration::from_secs(self.timeout.max(1)),
                r#become: self.r#become,
                become_user: self.become_user.clone(),
                become_method,
                password: SecretSource::from_flags(self.ask_pass, self.password_env.clone()),
                become_password: SecretSource::from_flags(
                    self.ask_become_pass,
                    self.become_password_env.clone(),
                ),
            },
            run: RunOptions::new(
                self.forks,
                (self.host_timeout > 0).then(|| Duration::from_secs(self.host_timeout)),
            ),
            report: ReportOptions {
                output: if self.json {
                    OutputMode::Json
                } else {
                    OutputMode::Text
                },
                verbose: self.verbose,
                diff: self.diff,
            },
            check: self.check,
            diff: self.diff,
        })
    }

    /// Parse flags into the domain invocation.
    pub fn into_config(self) -> Result<Invocation> {
        let config = self.config()?;
        let command = match self.command {
            Command::Inventory(a) => a.into_command()?,
            Command::Hosts(a) => a.into_command()?,
            Command::Ping(a) => a.into_command()?,
            Command::Run(a) => a.into_command()?,
            Command::Keys(a) => a.into_command()?,
            Command::Slurp(a) => a.into_command()?,
            Command::Copy(a) => a.into_command()?,
            Command::Replicate(a) => a.into_command()?,
            #[cfg(feature = "testfleet")]
            Command::Fleet(a) => a.into_command()?,
        };
        Ok(Invocation { config, command })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn policies() {
        assert_eq!(parse_policy("yes").unwrap(), HostKeyPolicy::Strict);
        assert_eq!(
            parse_policy("accept-new").unwrap(),
            HostKeyPolicy::AcceptNew
        );
        assert_eq!(parse_policy("False").unwrap(), HostKeyPolicy::Off);
        assert!(parse_policy("maybe").is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
