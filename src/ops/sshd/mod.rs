//! sshd control: read what sshd runs with ([`facts`]), plan a configuration change
//! ([`plan`], [`hostkeys`]; pure), and apply it safely ([`change::apply`], the one I/O
//! operation: atomic writes, `sshd -t` before any reload, reload through the service manager
//! or a SIGHUP to the pidfile's PID, sshd checked running afterwards, everything restored on
//! any failure). Used by `sshfleet hostkeys rotate|retire` and `hostkeys certify`.

pub mod change;
pub mod config;
pub mod facts;
pub mod hostkeys;
pub mod plan;

pub use change::{Applied, Change, FileOp, apply};
pub use facts::{Manager, SshdFacts, gather};

use crate::target::TargetError;

/// What can go wrong controlling sshd on a host.
#[derive(Debug, thiserror::Error)]
pub enum SshdError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{host}: reading sshd's configuration: {msg}")]
    Gather { host: String, msg: String },
    #[error("{host}: {msg}")]
    Unsupported { host: String, msg: String },
    #[error("{host}: {msg}")]
    Test { host: String, msg: String },
    #[error("{host}: {msg}")]
    Write { host: String, msg: String },
    #[error("{host}: {msg}")]
    Reload { host: String, msg: String },
    #[error("{host}: {msg}")]
    NotRunning { host: String, msg: String },
}
