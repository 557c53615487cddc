//! Flags of `keys list|add|remove|set|rotate`.

use clap::Subcommand;

use crate::error::{Error, Result};
use crate::run::Command;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List authorized keys (fingerprints) per host.
    List,
    /// Add keys (like authorized_key state=present).
    Add,
    /// Remove keys (like authorized_key state=absent).
    Remove,
    /// Make the given keys the only ones (like authorized_key exclusive=true).
    Set,
    /// Add a new key, prove it logs in, then remove every other key.
    Rotate,
}

impl KeysCommand {
    pub fn into_command(self) -> Result<Command> {
        Err(Error::NotImplemented {
            what: "keys commands",
        })
    }
}
