//! Flags of `runs` and `undo`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::error::Result;
use crate::run::Command;

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,
}

#[derive(Debug, Subcommand)]
pub enum RunsAction {
    /// Every record of one run: host, file, hashes, fingerprints added and removed.
    #[command(
        after_help = "Examples:\n  sshfleet runs show 20261203T113600.123Z-4242\n  sshfleet runs show 20261203T113600.123Z-4242 --json"
    )]
    Show {
        /// The run id (`sshfleet runs` lists them).
        #[arg(value_name = "RUN_ID")]
        id: String,
    },
}

impl RunsArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Runs {
            show: self.action.map(|RunsAction::Show { id }| id),
        })
    }
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    /// The run to take back (`sshfleet runs` lists them).
    #[arg(value_name = "RUN_ID")]
    pub id: String,
    /// A private key to prove a restored file still lets the controller in (repeatable;
    /// besides the connection's own keys and ~/.ssh/id_*).
    #[arg(long = "verify-key", value_name = "PRIVATE_KEY")]
    pub verify_keys: Vec<PathBuf>,
}

impl UndoArgs {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Undo(crate::commands::undo::UndoConfig {
            run: self.id,
            verify_keys: self.verify_keys,
        }))
    }
}
