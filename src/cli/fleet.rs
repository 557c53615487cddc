//! Flags of `sshfleet fleet up`: a local test/demo fleet of real sshd hosts
//! ([`crate::testfleet`]).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::error::{Error, Result};
use crate::run::Command;
use crate::testfleet::up::UpConfig;

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Start N local sshd hosts on 127.0.0.1 (root only), write DIR/ready, hold until
    /// SIGINT/SIGTERM, then tear down.
    #[command(
        after_help = "Examples:\n  sshfleet fleet up --hosts 10 --dir /tmp/fleet\n  sshfleet fleet up -n 50 --users deploy --sshd-option 'MaxSessions 50'"
    )]
    Up(UpArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Number of hosts.
    #[arg(long = "hosts", short = 'n', default_value_t = 10, value_name = "N")]
    pub hosts: usize,
    /// Directory for the inventory, key, known_hosts and host state (default: a new temp dir).
    /// Must be absent, empty, or a stopped fleet's directory; not under /home or /root.
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Login users on every host, comma separated.
    #[arg(
        long = "users",
        value_delimiter = ',',
        default_value = "admin,deploy,backup",
        value_name = "USERS"
    )]
    pub users: Vec<String>,
    /// Keep DIR after teardown.
    #[arg(long = "keep")]
    pub keep: bool,
    /// Extra sshd_config line for every host (repeatable), e.g. "MaxSessions 50".
    #[arg(long = "sshd-option", value_name = "LINE")]
    pub sshd_options: Vec<String>,
    /// sshd MaxStartups (default 10:30:100).
    #[arg(long = "max-startups", value_name = "START:RATE:FULL")]
    pub max_startups: Option<String>,
    /// sshd LogLevel (default INFO).
    #[arg(long = "sshd-log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Make host N (1-based, repeatable) password-only: the users have the demo password
    /// and no authorized_keys; sshd accepts passwords (install the first key with `keys add -k`).
    #[arg(long = "password-host", value_name = "N")]
    pub password_hosts: Vec<usize>,
    /// Make sudo ask for the password on host N (1-based, repeatable); root gets the demo
    /// password there too (for `--become-method su`).
    #[arg(long = "sudo-password-host", value_name = "N")]
    pub sudo_password_hosts: Vec<usize>,
    /// Hide every host in a network namespace of its own, except that the first host (the
    /// bastion) is relayed to 127.0.0.1; the inventory reaches the others with
    /// `-o ProxyJump` through it.
    #[arg(long = "behind-bastion")]
    pub behind_bastion: bool,
}

impl FleetCommand {
    pub fn into_command(self) -> Result<Command> {
        match self {
            FleetCommand::Up(a) => {
                if a.hosts == 0 {
                    return Err(Error::Usage("--hosts must be at least 1".into()));
                }
                let users: Vec<String> = a
                    .users
                    .into_iter()
                    .map(|u| u.trim().to_string())
                    .filter(|u| !u.is_empty())
                    .collect();
                if users.is_empty() {
                    return Err(Error::Usage("--users needs at least one user".into()));
                }
                for n in a.password_hosts.iter().chain(&a.sudo_password_hosts) {
                    if *n == 0 || *n > a.hosts {
                        return Err(Error::Usage(format!(
                            "host number {n} is not between 1 and {}",
                            a.hosts
                        )));
                    }
                }
                Ok(Command::FleetUp(UpConfig {
                    password_hosts: a.password_hosts.iter().map(|n| n - 1).collect(),
                    sudo_password_hosts: a.sudo_password_hosts.iter().map(|n| n - 1).collect(),
                    hosts: a.hosts,
                    dir: a.dir,
                    users: Some(users),
                    keep: a.keep,
                    sshd_options: a.sshd_options,
                    max_startups: a.max_startups,
                    log_level: a.log_level,
                    behind_bastion: a.behind_bastion,
                }))
            }
        }
    }
}
