//! Flags of `config`.

use clap::Args;

use crate::error::Result;
use crate::run::Command;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Show what a connection to this inventory host would use (user, port, identity files,
    /// ssh options, become, timeout) and where each value came from.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

impl ConfigArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Config { host: self.host })
    }
}
