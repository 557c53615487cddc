//! Flags of `slurp`, `copy` and `replicate`.

use clap::Args;

use crate::error::{Error, Result};
use crate::run::Command;

#[derive(Debug, Args)]
pub struct SlurpArgs {}

impl SlurpArgs {
    pub fn into_command(self) -> Result<Command> {
        Err(Error::NotImplemented { what: "slurp" })
    }
}

#[derive(Debug, Args)]
pub struct CopyArgs {}

impl CopyArgs {
    pub fn into_command(self) -> Result<Command> {
        Err(Error::NotImplemented { what: "copy" })
    }
}

#[derive(Debug, Args)]
pub struct ReplicateArgs {}

impl ReplicateArgs {
    pub fn into_command(self) -> Result<Command> {
        Err(Error::NotImplemented { what: "replicate" })
    }
}
