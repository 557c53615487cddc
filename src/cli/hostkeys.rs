//! Flags of `hostkeys scan|certify|rotate|retire`, turned into
//! [`crate::commands::hostkeys::HostkeysCommand`].

use clap::{Args, Subcommand};

use std::path::PathBuf;

use crate::commands::hostkeys::rotate::RotateConfig;
use crate::commands::hostkeys::{HostkeysCommand as Cmd, certify::CertifyConfig, scan::ScanConfig};
use crate::error::Result;
use crate::run::Command;

use super::Hosts;

#[derive(Debug, Subcommand)]
pub enum HostkeysCommand {
    /// Keyscan every selected host (no login) and compare with known_hosts: match, changed,
    /// missing, revoked, cert-trusted. Exit 0 when nothing changed, 2 on a changed or revoked
    /// key, 4 when a host cannot be reached.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini hostkeys scan\n  sshfleet -i hosts.ini hostkeys scan --update-known-hosts --check\n  sshfleet -i hosts.ini --json hostkeys scan -H web"
    )]
    Scan(ScanArgs),
    /// Sign each host's key with a CA kept on the controller, install the certificate
    /// (HostCertificate, `sshd -t`, reload; needs -b), prove a connection trusting only the CA,
    /// and print the `@cert-authority` line for users' known_hosts.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini hostkeys certify --ca ~/ca/host_ca -b\n  sshfleet -i hosts.ini hostkeys certify --ca host_ca --validity 12w --principals web01.example.com -H web01 -b --check --diff"
    )]
    Certify(CertifyArgs),
    /// Publish a new host key on each host next to the old one (sshd serves the old key first
    /// and announces both), prove the host holds it, add it to known_hosts. `--retire` then
    /// switches to it at once.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini hostkeys rotate -b\n  sshfleet -i hosts.ini hostkeys rotate -b --check --diff\n  sshfleet -i hosts.ini hostkeys rotate -H web -b --retire"
    )]
    Rotate(RotateArgs),
    /// Make the published key the one sshd serves, prove a connection that knows only the new
    /// key, then remove the old key from sshd, the host's disk and known_hosts.
    #[command(
        after_help = "Examples:\n  sshfleet -i hosts.ini hostkeys retire -b --check --diff\n  sshfleet -i hosts.ini hostkeys retire -H web -b"
    )]
    Retire(RetireArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub hosts: Hosts,
    /// Host key type to rotate: ed25519, ecdsa, rsa (a key of that type must be in use).
    #[arg(long = "type", default_value = "ed25519", value_name = "TYPE")]
    pub key_type: String,
    /// Retire the old key right after publishing (no time for users' known_hosts to learn the
    /// new key through UpdateHostKeys).
    #[arg(long = "retire")]
    pub retire: bool,
}

#[derive(Debug, Args)]
pub struct RetireArgs {
    #[command(flatten)]
    pub hosts: Hosts,
    /// Host key type whose published key is retired into place.
    #[arg(long = "type", default_value = "ed25519", value_name = "TYPE")]
    pub key_type: String,
}

#[derive(Debug, Args)]
pub struct CertifyArgs {
    #[command(flatten)]
    pub hosts: Hosts,
    /// The CA private key (never leaves the controller).
    #[arg(long = "ca", value_name = "CA_KEY")]
    pub ca: PathBuf,
    /// Environment variable holding the CA key's passphrase (else asked on the terminal).
    #[arg(long = "ca-passphrase-env", value_name = "VAR")]
    pub ca_passphrase_env: Option<String>,
    /// Certificate principals (comma-separated or repeated). Default: the names each host is
    /// reached by (inventory name, ansible_host, HostKeyAlias).
    #[arg(long = "principals", value_delimiter = ',', value_name = "NAMES")]
    pub principals: Vec<String>,
    /// Validity from now (ssh-keygen units: s, m, h, d, w; e.g. 52w, 30d).
    #[arg(long = "validity", default_value = "52w", value_name = "DURATION")]
    pub validity: String,
    /// The host key type to certify.
    #[arg(long = "key-type", default_value = "ed25519", value_name = "TYPE")]
    pub key_type: String,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    #[command(flatten)]
    pub hosts: Hosts,
    /// Add missing keys to the controller's known_hosts (the host's first UserKnownHostsFile),
    /// atomically, keeping its hashed/plain form and comments. With --check: show, don't write.
    #[arg(long = "update-known-hosts")]
    pub update: bool,
    /// With --update-known-hosts: also replace keys that changed. A changed key may be a
    /// man-in-the-middle: use only when the change is known to be legitimate.
    #[arg(long = "accept-changed")]
    pub accept_changed: bool,
}

impl HostkeysCommand {
    pub fn into_command(self) -> Result<Command> {
        Ok(Command::Hostkeys(match self {
            HostkeysCommand::Scan(a) => Cmd::Scan(ScanConfig {
                pattern: a.hosts.pattern,
                update: a.update,
                accept_changed: a.accept_changed,
            }),
            HostkeysCommand::Certify(a) => Cmd::Certify(CertifyConfig {
                pattern: a.hosts.pattern,
                ca: a.ca,
                ca_passphrase_env: a.ca_passphrase_env,
                principals: a.principals,
                validity: a.validity,
                key_type: match a.key_type.as_str() {
                    "ed25519" => "ssh-ed25519".into(),
                    "ecdsa" => "ecdsa-sha2-nistp256".into(),
                    "rsa" => "ssh-rsa".into(),
                    other => other.to_string(),
                },
            }),
            HostkeysCommand::Rotate(a) => Cmd::Rotate(RotateConfig {
                pattern: a.hosts.pattern,
                key_type: a.key_type,
                publish: true,
                retire: a.retire,
            }),
            HostkeysCommand::Retire(a) => Cmd::Rotate(RotateConfig {
                pattern: a.hosts.pattern,
                key_type: a.key_type,
                publish: false,
                retire: true,
            }),
        }))
    }
}
