//! Flags of `inventory` and `hosts`.

use clap::Args;

use crate::error::{Error, Result};
use crate::run::Command;

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Output all hosts and groups as JSON (like `ansible-inventory --list`).
    #[arg(long, conflicts_with = "host")]
    pub list: bool,
    /// Output one host's variables as JSON (like `ansible-inventory --host H`).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

impl InventoryArgs {
    pub fn into_command(self) -> Result<Command> {
        match (self.list, self.host) {
            (_, Some(h)) => Ok(Command::InventoryHost(h)),
            (true, None) => Ok(Command::InventoryList),
            (false, None) => Err(Error::Usage(
                "inventory: one of --list or --host HOST is required".into(),
            )),
        }
    }
}

#[derive(Debug, Args)]
pub struct HostsArgs {
    /// Host pattern (Ansible syntax).
    #[arg(default_value = "all")]
    pub pattern: String,
}

impl HostsArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Hosts(self.pattern))
    }
}

#[derive(Debug, Args)]
pub struct SshConfigArgs {
    /// Read this config file instead of the defaults (`none`: no file), as `ssh -F`.
    #[arg(short = 'F', value_name = "FILE")]
    pub file: Option<String>,
    /// ssh command-line arguments, as in ansible_ssh_args (`-o K=V -p P -l U -i F -J H`),
    /// in order; they come before the inventory's and the files.
    #[arg(long = "ssh-args", value_name = "ARGS", allow_hyphen_values = true)]
    pub ssh_args: Option<String>,
    /// One `-o` option, as `ssh -o` (repeatable; after `--ssh-args`).
    #[arg(short = 'o', value_name = "OPTION")]
    pub option: Vec<String>,
    /// Host name as typed (`[user@]host`); an inventory host (`-i`) brings its variables.
    pub host: String,
}

impl SshConfigArgs {
    pub fn into_command(self) -> Result<Command> {
        let mut args = self.ssh_args.unwrap_or_default();
        for o in &self.option {
            args.push_str(" -o ");
            args.push_str(&quote(o));
        }
        Ok(Command::SshConfig {
            host: self.host,
            file: self.file,
            ssh_args: args,
        })
    }
}

/// Single-quote one word for the shell-like split of ssh argument strings.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
