//! [`ConnSpec`]: how to reach one host, resolved from its inventory variables.
//!
//! Built from `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`,
//! the `-o` options of `ansible_ssh_common_args`/`ansible_ssh_extra_args` that matter, and
//! `ansible_become*`. Command-line overrides are applied by the controller afterwards.

use std::path::PathBuf;
use std::time::Duration;

/// Host key policy, as OpenSSH's `StrictHostKeyChecking` / Ansible's `host_key_checking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Unknown or changed host keys are refused (the default).
    #[default]
    Strict,
    /// Unknown host keys are learned (appended to known_hosts); changed ones are refused.
    AcceptNew,
    /// No checking at all.
    Off,
}

/// Privilege escalation for the remote side.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BecomeSpec {
    pub enabled: bool,
    /// Default `root`.
    pub user: Option<String>,
    /// Only `sudo` is supported.
    pub method: Option<String>,
    pub exe: Option<String>,
    pub flags: Option<String>,
}

/// How to reach and log in to one inventory host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSpec {
    /// The inventory host name (for messages and results).
    pub name: String,
    /// Address to connect to (`ansible_host`, else the name).
    pub address: String,
    /// TCP port (`ansible_port`, `-o Port`, else 22).
    pub port: u16,
    /// Login user (`ansible_user`, `-o User`); `None` means "the controller's default".
    pub user: Option<String>,
    /// Private keys to offer, in order (`ansible_ssh_private_key_file`, `-o IdentityFile`).
    pub identity_files: Vec<PathBuf>,
    /// known_hosts files (`-o UserKnownHostsFile`); empty means the default.
    pub known_hosts_files: Vec<PathBuf>,
    /// `-o StrictHostKeyChecking`, `ansible_host_key_checking`; `None` means the default.
    pub host_key_policy: Option<HostKeyPolicy>,
    /// `-o ProxyJump` (recorded; connecting through it is the SSH layer's business).
    pub proxy_jump: Option<String>,
    /// `-o ConnectTimeout`, `ansible_ssh_timeout`/`ansible_timeout`.
    pub connect_timeout: Option<Duration>,
    pub r#become: BecomeSpec,
}

impl ConnSpec {
    /// A spec with only a name: address = name, port 22, everything else default.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        ConnSpec {
            address: name.clone(),
            name,
            port: 22,
            user: None,
            identity_files: Vec::new(),
            known_hosts_files: Vec::new(),
            host_key_policy: None,
            proxy_jump: None,
            connect_timeout: None,
            r#become: BecomeSpec::default(),
        }
    }
}
