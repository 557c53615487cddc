//! Flags of `hostkeys scan|certify`, turned into
//! [`crate::commands::hostkeys::HostkeysCommand`].

use clap::{Args, Subcommand};

use crate::commands::hostkeys::{HostkeysCommand as Cmd, scan::ScanConfig};
use crate::error::Result;
use crate::run::Command;

#[derive(Debug, Subcommand)]
pub enum HostkeysCommand {
    /// Keyscan every selected host (no login) and compare with known_hosts: match, changed,
    /// missing, revoked, cert-trusted. Exit 0 when nothing changed, 2 on a changed or revoked
    /// key, 4 when a host cannot be reached.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini hostkeys scan\n  sshfleet -i hosts.ini hostkeys scan --update-known-hosts --check\n  sshfleet -i hosts.ini --json hostkeys scan -H web"
    )]
    Scan(ScanArgs),
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Host pattern (Ansible syntax).
    #[arg(
        short = 'H',
        long = "hosts",
        default_value = "all",
        value_name = "PATTERN"
    )]
    pub pattern: String,
    /// Add missing keys to the controller's known_hosts (the host's first UserKnownHostsFile),
    /// atomically, keeping its hashed/plain form and comments. With --check: show, don't write.
    #[arg(long = "update-known-hosts")]
    pub update: bool,
    /// With --update-known-hosts: also replace keys that changed. A changed key may be a
    /// man-in-the-middle: use only when the change is known to be legitimate.
    #[arg(long = "accept-changed")]
    pub accept_changed: bool,
}

impl HostkeysCommand {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Hostkeys(match self {
            HostkeysCommand::Scan(a) => Cmd::Scan(ScanConfig {
                pattern: a.pattern,
                update: a.update,
                accept_changed: a.accept_changed,
            }),
        }))
    }
}
