//! `sshfleet hostkeys ...`: the hosts' own SSH keys, fleet-wide.
//!
//! - [`scan`]: what each host presents now, compared with known_hosts, and
//!   `--update-known-hosts`.
//! - [`certify`]: sign each host's key with a CA on the controller, install the certificate
//!   (`HostCertificate`), print the `@cert-authority` line.
//!
//! - [`rotate`]: `hostkeys rotate` (publish a new host key next to the old one, `--retire` to
//!   switch at once) and `hostkeys retire` (make the published key the only one).

pub mod certify;
pub mod rotate;
pub mod scan;

/// The domain form of a `hostkeys` subcommand.
#[derive(Debug, Clone)]
pub enum HostkeysCommand {
    Scan(scan::ScanConfig),
    Certify(certify::CertifyConfig),
    /// `rotate` (publish, optionally retire) and `retire`.
    Rotate(rotate::RotateConfig),
}

/// Run a `hostkeys` subcommand.
pub fn execute(
    g: &super::Config,
    cmd: &HostkeysCommand,
) -> crate::error::Result<crate::error::ExitCode> {
    match cmd {
        HostkeysCommand::Scan(c) => scan::scan(g, c),
        HostkeysCommand::Certify(c) => certify::certify(g, c),
        HostkeysCommand::Rotate(c) => rotate::rotate(g, c),
    }
}
