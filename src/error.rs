//! The crate's top-level error type and the one place that maps outcomes to exit codes.
//!
//! Each domain module returns its own error enum carrying context (file and line for
//! inventory, host for transport, path for file operations); this module wraps them in
//! [`Error`] (every `From` impl lives here, so lower modules never import this one) and maps
//! both a command-stopping [`Error`] and a finished run's [`Recap`] to an [`ExitCode`]. The exit
//! codes follow `ansible-playbook` so scripts written around Ansible keep working.
//!
//! Only the controller's top layer (`commands`, `run`, `cli`, `main`) returns [`Error`].

use std::fmt;

use crate::events::{Recap, Status};

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

    /// `hostkeys scan`: 4 if any host could not be scanned, else 2 if any host presents a
    /// changed or revoked host key (a possible man-in-the-middle, not accepted), else 0 —
    /// missing keys and certificate-trusted hosts are fine.
    pub fn of_host_keys(any_unreachable: bool, any_mismatch: bool) -> ExitCode {
        if any_unreachable {
            ExitCode::HostUnreachable
        } else if any_mismatch {
            ExitCode::HostFailed
        } else {
            ExitCode::Ok
        }
    }

    /// Ansible's exit codes for a finished run: 4 if any host was unreachable, else 2 if any
    /// failed, else 0; 99 when interrupted.
    pub fn of_recap(recap: &Recap) -> ExitCode {
        if recap.interrupted {
            return ExitCode::Interrupted;
        }
        let any = |st: Status| recap.outcomes.iter().any(|o| o.status == st);
        if any(Status::Unreachable) {
            ExitCode::HostUnreachable
        } else if any(Status::Failed) {
            ExitCode::HostFailed
        } else {
            ExitCode::Ok
        }
    }
}

/// An error that stops a whole command (as opposed to a per-host failure, which is reported
/// in the recap and reflected only in the exit code).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Inventory(#[from] crate::inventory::InventoryError),
    /// ansible.cfg or an `ANSIBLE_*` variable is unreadable or has an invalid value.
    #[error(transparent)]
    Config(#[from] crate::ansible_config::ConfigError),
    /// The configuration asks for something sshfleet cannot do (become method, prompts).
    #[error(transparent)]
    Resolve(crate::fleet::resolve::ResolveError),
    #[error(transparent)]
    Keys(#[from] crate::authorized_keys::KeyError),
    /// The single-host `authorized_key` operation failed (e.g. a key source is unusable).
    #[error(transparent)]
    Op(#[from] crate::ops::authorized_key::OpError),
    /// A replication source could not be read: nothing was written anywhere.
    #[error(transparent)]
    Replicate(#[from] crate::ops::replicate::ReplicateError),
    /// Loading, generating or installing a controller key pair.
    #[error(transparent)]
    Keygen(#[from] crate::ssh::keygen::KeygenError),
    /// A host that must be reached before the fleet run (the `--from` of `replicate`).
    #[error("{what} {host}: {source}")]
    Host {
        what: &'static str,
        host: String,
        #[source]
        source: crate::target::TargetError,
    },
    /// A key file given on the command line is unusable.
    #[error("{}: {msg}", path.display())]
    KeyFile {
        path: std::path::PathBuf,
        msg: String,
    },
    /// A `.pub` file next to a private key holds another key.
    #[error(
        "{} does not belong to the private key {} (fingerprints {} and {})",
        public.display(), private.display(), fingerprints.0, fingerprints.1
    )]
    KeyMismatch {
        public: std::path::PathBuf,
        private: std::path::PathBuf,
        fingerprints: (String, String),
    },
    /// Starting or driving the local test fleet.
    #[cfg(feature = "testfleet")]
    #[error(transparent)]
    TestFleet(#[from] crate::testfleet::FleetError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// A rerun of an interrupted command cannot continue from what it found (nothing changed).
    #[error("{}: {msg}", path.display())]
    Resume {
        path: std::path::PathBuf,
        msg: String,
    },
    /// Editing a controller known_hosts file failed (`hostkeys scan --update-known-hosts`);
    /// nothing was written.
    #[error(transparent)]
    KnownHosts(#[from] crate::known_hosts::edit::FileEditError),
    /// The selection left nothing to work on where Ansible treats that as an error.
    #[error("{0}")]
    NoHosts(String),
    #[error("{0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::fleet::resolve::ResolveError> for Error {
    fn from(e: crate::fleet::resolve::ResolveError) -> Self {
        match e {
            crate::fleet::resolve::ResolveError::Inventory(e) => Error::Inventory(e),
            crate::fleet::resolve::ResolveError::Secret(m) => Error::Usage(m),
            other => Error::Resolve(other),
        }
    }
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
            Error::Usage(_) | Error::Config(_) | Error::Resolve(_) => ExitCode::BadOptions,
            _ => ExitCode::Error,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::recap_of as recap;

    #[test]
    fn exit_codes_follow_ansible() {
        use Status::*;
        assert_eq!(ExitCode::of_recap(&recap(&[])), ExitCode::Ok);
        assert_eq!(
            ExitCode::of_recap(&recap(&[Ok, Changed, Skipped])),
            ExitCode::Ok
        );
        assert_eq!(
            ExitCode::of_recap(&recap(&[Ok, Failed])),
            ExitCode::HostFailed
        );
        assert_eq!(
            ExitCode::of_recap(&recap(&[Unreachable, Ok])),
            ExitCode::HostUnreachable
        );
        // Unreachable wins over failed.
        assert_eq!(
            ExitCode::of_recap(&recap(&[Failed, Unreachable])),
            ExitCode::HostUnreachable
        );
        let mut r = recap(&[Failed, Unreachable]);
        r.interrupted = true;
        assert_eq!(ExitCode::of_recap(&r), ExitCode::Interrupted);
        assert_eq!(ExitCode::Interrupted.code(), 99);
    }
}
