//! Ansible inventories, read exactly as `ansible-inventory` reads them (pure; no network).
//!
//! INI and YAML sources, `group_vars/`/`host_vars/`, host ranges, variable precedence and
//! host patterns (`--limit`). Produces hosts with merged variables and a typed connection
//! spec per host for the SSH layer.

pub mod conn;

use std::path::PathBuf;

/// An inventory that could not be read. Always names the file (and line where there is one).
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{}:{line}: {msg}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    #[error("{0}")]
    Other(String),
}
