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
