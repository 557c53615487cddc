//! SSH connections: connect, authenticate (key files, agent), verify host keys against
//! known_hosts, timeouts and retries.
//!
//! - [`known_hosts`]: known_hosts parsing and lookup (re-exported from the core module
//!   `crate::known_hosts`, so the module binaries can use it).
//! - [`certs`]: host certificates checked against `@cert-authority`/`@revoked`; user
//!   certificates found beside keys or named by `CertificateFile`.
//! - [`auth`]: password and keyboard-interactive authentication.
//! - [`escalate`]: become (sudo, su) with or without a password.
//! - [`keys`]: private key loading (OpenSSH/PEM/PKCS#8, encrypted with a passphrase from an
//!   env var or a TTY prompt), cached per process.
//! - [`client`]: [`Connector`] (shared per run: config, key cache, known_hosts cache) opens
//!   [`Session`]s: TCP with nodelay, at most [`SshConfig::max_handshakes_per_endpoint`]
//!   unauthenticated connections per `address:port` at once, retries with jittered backoff
//!   within [`SshConfig::retry_window`] when sshd drops bursts (`MaxStartups`), host-key policy, then authentication in OpenSSH's order (explicit key
//!   files, agent, default `~/.ssh/id_*`), or with exactly one key
//!   ([`Connector::connect_with_key`]).
//! - [`scan`]: keyscan (the host keys a host presents, one handshake per key algorithm, no
//!   authentication) and their classification against known_hosts.
//! - [`proxy`]: `ProxyJump` (direct-tcpip over one shared session per bastion) and
//!   `ProxyCommand` (a child's stdio) transports.
//!
//! - [`target`]: [`target::SshTarget`], the [`crate::target::Target`] over one session
//!   (become, SFTP, atomic writes).
//! - [`keygen`]: controller key pairs (generate, load, write, install) for `keys rotate`.
//!
//! Every failure is an [`SshError`] naming the host; all of them are "unreachable" in
//! Ansible's terms (authentication failures included, as Ansible reports them).

pub mod auth;
pub mod certs;
pub mod client;
pub mod escalate;
pub mod keygen;
pub mod keys;
pub mod proxy;
pub mod scan;
pub mod target;

use std::path::PathBuf;
use std::time::Duration;

/// The known_hosts format lives in the single-host core (modules can use it too).
pub use crate::known_hosts;
pub use client::{ConnectTiming, Connector, Session};

use crate::inventory::conn::HostKeyPolicy;
use crate::target::TargetError;

/// Key exchange algorithms offered by default, most preferred first. curve25519 costs sshd
/// less CPU per login than the post-quantum hybrid (see `bench/README.md`); both are
/// offered. Group exchange is never offered first (it is slow).
pub const DEFAULT_KEX: &[&str] = &[
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "mlkem768x25519-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group14-sha256",
];

/// Ciphers offered by default, most preferred first: AES-GCM first because with AES-NI it
/// moves bulk data (replicate, big files) faster than chacha20-poly1305 on both ends
/// (measured over SFTP: ~170 vs ~110 MiB/s reading 100 MiB on loopback, on par with OpenSSH's
/// own `sftp` with the same cipher).
pub const DEFAULT_CIPHERS: &[&str] = &[
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
];

/// Where agent authentication finds its agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentSource {
    /// `$SSH_AUTH_SOCK`, when set.
    Env,
    /// This socket.
    Path(PathBuf),
    /// No agent.
    Disabled,
}

/// Controller-wide SSH settings (per-host settings live in
/// [`crate::inventory::conn::ConnSpec`]).
#[derive(Debug, Clone)]
pub struct SshConfig {
    /// Connect timeout used when a host's spec has none (TCP connect + handshake).
    pub connect_timeout: Duration,
    /// Kex algorithm names, most preferred first (`SSHFLEET_KEX` overrides, comma-separated).
    pub kex: Vec<String>,
    /// Cipher names, most preferred first (`SSHFLEET_CIPHERS` overrides); empty = russh's
    /// default order.
    pub ciphers: Vec<String>,
    /// Environment variable holding the passphrase for encrypted keys (`--passphrase-env`).
    pub passphrase_env: Option<String>,
    /// Prompt on the TTY for passphrases when no env var is given and stdin is a terminal.
    pub interactive: bool,
    /// Login user when a spec has none (the controller user, like OpenSSH).
    pub default_user: String,
    /// Host key policy when a spec has none (strict; `host_key_checking` arrives per spec).
    pub default_policy: HostKeyPolicy,
    /// known_hosts files when a spec has none (`~/.ssh/known_hosts`).
    pub default_known_hosts: Vec<PathBuf>,
    /// Extra read-only known_hosts files always consulted (`/etc/ssh/ssh_known_hosts`).
    pub global_known_hosts: Vec<PathBuf>,
    /// Keys tried when a spec lists none (`~/.ssh/id_{rsa,ecdsa,ed25519}` that exist).
    pub default_identities: Vec<PathBuf>,
    pub agent: AgentSource,
    /// Send a keepalive after this much silence; the connection dies after 3 unanswered.
    pub keepalive: Duration,
    /// Minimum time spent retrying a host whose sshd keeps dropping or resetting the handshake
    /// (its `MaxStartups` throttling). The effective window is the larger of this and three
    /// connect timeouts (see [`SshConfig::retry_window`]); every attempt still has the connect
    /// timeout of its own. Errors that are not transient (refused port, DNS, host key,
    /// authentication) are not retried for long whatever this says.
    pub min_retry_window: Duration,
    /// At most this many connections per `address:port` are between TCP connect and the end
    /// of authentication at once (further ones queue, in order, without their connect timeout
    /// running). Below sshd's default `MaxStartups 10:30:100`, so a default sshd never starts
    /// dropping a burst; the slot is released as soon as authentication completes.
    /// `SSHFLEET_HANDSHAKES_PER_ENDPOINT` overrides; at least 1.
    pub max_handshakes_per_endpoint: usize,
    /// At most this many hosts behind one `ProxyJump` hop are between opening their
    /// direct-tcpip channel and the end of their authentication at once (the rest queue
    /// without their connect timeout running), so one bastion connection carrying a whole
    /// fleet does not flood the bastion (its CPU, the hidden hosts' `MaxStartups`).
    /// `SSHFLEET_OPENS_PER_BASTION` overrides; at least 1.
    pub max_opens_per_bastion: usize,
}

impl SshConfig {
    /// Defaults from the environment: `$HOME`, `$USER`, `$SSH_AUTH_SOCK`,
    /// `SSHFLEET_KEX`, `SSHFLEET_CIPHERS`.
    pub fn from_env() -> Self {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let ssh_dir = home.as_ref().map(|h| h.join(".ssh"));
        let default_identities = ssh_dir
            .as_ref()
            .map(|d| {
                ["id_rsa", "id_ecdsa", "id_ed25519"]
                    .iter()
                    .map(|n| d.join(n))
                    .filter(|p| p.exists())
                    .collect()
            })
            .unwrap_or_default();
        let kex = match std::env::var("SSHFLEET_KEX") {
            Ok(v) if !v.trim().is_empty() => v.split(',').map(|s| s.trim().to_string()).collect(),
            _ => DEFAULT_KEX.iter().map(|s| s.to_string()).collect(),
        };
        let ciphers = match std::env::var("SSHFLEET_CIPHERS") {
            Ok(v) if !v.trim().is_empty() => v.split(',').map(|s| s.trim().to_string()).collect(),
            _ => DEFAULT_CIPHERS.iter().map(|s| s.to_string()).collect(),
        };
        // ANSIBLE_HOST_KEY_CHECKING and ansible.cfg reach each spec through the connection
        // variables (crate::ansible_config::conn), where inventory variables can beat them.
        let default_policy = HostKeyPolicy::Strict;
        SshConfig {
            connect_timeout: Duration::from_secs(10),
            kex,
            ciphers,
            passphrase_env: None,
            interactive: std::io::IsTerminal::is_terminal(&std::io::stdin()),
            default_user: current_user(),
            default_policy,
            default_known_hosts: ssh_dir
                .map(|d| vec![d.join("known_hosts")])
                .unwrap_or_default(),
            global_known_hosts: vec![PathBuf::from("/etc/ssh/ssh_known_hosts")],
            default_identities,
            agent: AgentSource::Env,
            keepalive: Duration::from_secs(15),
            min_retry_window: DEFAULT_MIN_RETRY_WINDOW,
            max_handshakes_per_endpoint: std::env::var("SSHFLEET_HANDSHAKES_PER_ENDPOINT")
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_HANDSHAKES_PER_ENDPOINT),
            max_opens_per_bastion: std::env::var("SSHFLEET_OPENS_PER_BASTION")
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_OPENS_PER_BASTION),
        }
    }

    /// How long a host whose sshd drops or resets our handshakes is retried, for a connect
    /// timeout of `connect_timeout`: the larger of [`SshConfig::min_retry_window`] and three
    /// connect timeouts.
    pub fn retry_window(&self, connect_timeout: Duration) -> Duration {
        self.min_retry_window.max(connect_timeout.saturating_mul(3))
    }
}

/// Default [`SshConfig::min_retry_window`].
pub const DEFAULT_MIN_RETRY_WINDOW: Duration = Duration::from_secs(30);

/// Default [`SshConfig::max_handshakes_per_endpoint`]: below sshd's default `MaxStartups`
/// start value (10).
pub const DEFAULT_HANDSHAKES_PER_ENDPOINT: usize = 8;

/// Default [`SshConfig::max_opens_per_bastion`].
pub const DEFAULT_OPENS_PER_BASTION: usize = 32;

/// The controller's user name (`$USER`, else the passwd entry of our uid).
pub fn current_user() -> String {
    if let Ok(u) = std::env::var("USER")
        && !u.is_empty()
    {
        return u;
    }
    // SAFETY: getpwuid returns a pointer into static storage or null; we copy immediately.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if !pw.is_null() && !(*pw).pw_name.is_null() {
            return std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned();
        }
    }
    "root".to_string()
}

/// Why a host key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    #[error(
        "host key verification failed: the host key for {name} has CHANGED (possible \
         man-in-the-middle attack); offered {offered_type} {offered_fp}, expected {}; not \
         authenticating, nothing was run. If the change is legitimate, remove the old entry (ssh-keygen -R '{name}' -f FILE)",
        .expected.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
    )]
    Changed {
        name: String,
        offered_type: String,
        offered_fp: String,
        expected: Vec<known_hosts::KnownKey>,
    },
    #[error(
        "host key verification failed: no host key is known for {name} in {files} (strict \
         checking); offered {offered_type} {offered_fp}. After verifying the fingerprint, add \
         it (ssh-keyscan -p {port} {addr} >> FILE) or use --host-key-checking accept-new"
    )]
    Unknown {
        name: String,
        addr: String,
        port: u16,
        files: String,
        offered_type: String,
        offered_fp: String,
    },
    #[error(
        "host key verification failed: the host key of {name} ({offered_fp}) is REVOKED at {at}"
    )]
    Revoked {
        name: String,
        offered_fp: String,
        at: String,
    },
    #[error(
        "host key verification failed: the host certificate of {name} (key id {key_id:?}) is \
         refused: {reason}; not authenticating, nothing was run"
    )]
    Certificate {
        name: String,
        key_id: String,
        reason: String,
    },
    #[error("cannot record the host key of {name} in {path}: {msg}")]
    Learn {
        name: String,
        path: String,
        msg: String,
    },
    #[error("cannot read known_hosts: {0}")]
    Read(String),
}

/// A connection-level failure for one host (Ansible's "unreachable").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    #[error("Failed to connect to the host via ssh: {addr}: {msg}")]
    Connect { addr: String, msg: String },
    #[error("Failed to connect to the host via ssh: {addr}: timed out after {secs}s")]
    Timeout { addr: String, secs: u64 },
    #[error("{0}")]
    HostKey(Box<HostKeyError>),
    #[error(
        "Failed to authenticate as {user}@{addr}: Permission denied ({methods}); tried: {tried}"
    )]
    Auth {
        user: String,
        /// `publickey`, or `publickey,password` when a password was tried too.
        methods: String,
        addr: String,
        tried: String,
    },
    #[error("{path}: cannot load private key: {msg}")]
    Key { path: String, msg: String },
    #[error("ssh: {0}")]
    Protocol(String),
    /// A failure on the way: logging in to a `ProxyJump` hop, or its direct-tcpip channel.
    #[error("via bastion {hop}: {source}")]
    Hop { hop: String, source: Box<SshError> },
    /// A `ProxyJump`/`ProxyCommand` setting that cannot be used, or a ProxyCommand that died.
    #[error("Failed to connect to the host via ssh: {addr}: {msg}")]
    Proxy { addr: String, msg: String },
}

impl From<HostKeyError> for SshError {
    fn from(e: HostKeyError) -> Self {
        SshError::HostKey(Box::new(e))
    }
}

impl From<SshError> for TargetError {
    fn from(e: SshError) -> Self {
        TargetError::Unreachable(e.to_string())
    }
}
