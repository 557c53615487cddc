//! `sshfleet hostkeys ...`: the hosts' own SSH keys, fleet-wide.
//!
//! - [`scan`]: what each host presents now, compared with known_hosts, and
//!   `--update-known-hosts`.
//! - [`certify`]: sign each host's key with a CA on the controller, install the certificate
//!   (`HostCertificate`), print the `@cert-authority` line.
//!
//! (Host-key rotation, `rotate`/`retire`, lives beside these in its own module.)

pub mod certify;
pub mod scan;

/// The domain form of a `hostkeys` subcommand.
#[derive(Debug, Clone)]
pub enum HostkeysCommand {
    Scan(scan::ScanConfig),
    Certify(certify::CertifyConfig),
}

/// Run a `hostkeys` subcommand.
pub fn execute(
    g: &super::Config,
    cmd: &HostkeysCommand,
) -> crate::error::Result<crate::error::ExitCode> {
    match cmd {
        HostkeysCommand::Scan(c) => scan::scan(g, c),
        HostkeysCommand::Certify(c) => certify::certify(g, c),
    }
}
