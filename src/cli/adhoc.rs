//! Flags of `ping` and `run`.

use clap::Args;

use crate::error::Result;
use crate::run::Command;

#[derive(Debug, Args)]
pub struct PingArgs {
    /// Host pattern (Ansible syntax).
    #[arg(default_value = "all")]
    pub pattern: String,
}

impl PingArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Ping {
            pattern: self.pattern,
        })
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Host pattern (Ansible syntax).
    #[arg(short = 'H', long = "hosts", default_value = "all")]
    pub pattern: String,
    /// The command and its arguments (no shell; quote nothing extra).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub argv: Vec<String>,
}

impl RunArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Run {
            pattern: self.pattern,
            argv: self.argv,
        })
    }
}
