//! The crate's top-level error type and the one place that maps outcomes to exit codes.
//!
//! Each subsystem has its own error enum carrying context (file and line for inventory,
//! host for transport, path for file operations); they all convert into [`Error`]. The
//! exit codes follow `ansible-playbook` so scripts written around Ansible keep working.

use std::fmt;

/// Process exit codes, as `ansible-playbook` uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Every host ok or changed.
    Ok = 0,
    /// A usage or setup error before any host was touched.
    Error = 1,
    /// At least one host failed (and none was unreachable).
    HostFailed = 2,
    /// At least one host was unreachable.
    HostUnreachable = 4,
    /// Bad or incomplete command-line options.
    BadOptions = 5,
    /// Interrupted by the user (SIGINT).
    Interrupted = 99,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error that stops a whole command (as opposed to a per-host failure, which is reported
/// in the recap and reflected only in the exit code).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Inventory(#[from] crate::inventory::InventoryError),
    #[error(transparent)]
    Keys(#[from] crate::authorized_keys::KeyError),
    #[error("{0}")]
    Usage(String),
    #[error("{what} is not implemented yet")]
    NotImplemented { what: &'static str },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            context: context.to_string(),
            source,
        }
    }

    /// The exit code for a command that stopped with this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::BadOptions,
            _ => ExitCode::Error,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
