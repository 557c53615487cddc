//! A real OpenSSH test fleet on 127.0.0.1: N hosts, each a real `sshd` on its own port with
//! its own ed25519 host key and **its own home directories**, for tests, the demo and the
//! benchmarks. Must run as root (it creates users and mount/PID namespaces).
//!
//! ```no_run
//! use sshfleet::testfleet::Fleet;
//!
//! let fleet = Fleet::builder()
//!     .hosts(20)                                  // host01..host20
//!     .users(["admin", "deploy", "backup"])       // the default
//!     .sshd_option(3, "PubkeyAcceptedAlgorithms ssh-rsa") // host04 only (0-based index)
//!     .start()?;
//! let h = &fleet.hosts()[0];
//! println!("{} listens on 127.0.0.1:{}", h.name(), h.port());
//! // Files for clients: fleet.client_key(), fleet.known_hosts(), fleet.inventory()
//! // (INI: group `fleet`, ansible_user=deploy, strict host key checking).
//! // Inspect/modify a host's files directly from the controller:
//! let ak = fleet.authorized_keys_path(0, "deploy"); // = ~deploy/.ssh/authorized_keys on host01
//! let _ = std::fs::read_to_string(ak)?;
//! fleet.pause_host(1);   // SIGSTOP everything of host02 (stall tests); resume_host(1)
//! fleet.restart_host(2)?; // same port, same host key
//! fleet.stop_host(3);    // gone: connection refused
//! drop(fleet);           // teardown: every process by PID/namespace, dir removed
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a host is isolated
//! Each host is `unshare --pid --fork --kill-child -- sshd -D -e` spawned
//! in a fresh private mount namespace where `FLEETDIR/hostNN/home` is bound over `/home` and
//! `FLEETDIR/hostNN/root` over `/root`; sshd is PID 1 of its own PID namespace (see
//! [`host`]). So `~deploy/.ssh/authorized_keys` on host07 is
//! `FLEETDIR/host07/home/deploy/.ssh/authorized_keys` on the controller, and root logs in with
//! the fleet key too (its `/root` is per host). Users (`/etc/passwd`) are the machine's, but
//! `/etc/shadow`, `/etc/sudoers.d`, `/etc/ssh` and `/run` are per host too (see [`etc`]):
//! sshd reads `/etc/ssh/sshd_config` as on a Debian host and writes `/run/sshd.pid`, so
//! `kill -HUP $(cat /run/sshd.pid)` on the host reloads it (the machine's systemd is hidden);
//! passwords
//! ([`FleetBuilder::password`]), sudo rules ([`FleetBuilder::sudo_password`]), host
//! certificates ([`FleetBuilder::host_certificate`]) and trusted user CAs
//! ([`FleetBuilder::trusted_user_ca`]) differ per host.
//!
//! # Machine changes (done once, under a lock; see `system`)
//! Installs openssh-server/sudo with apt-get when missing; creates the users (or adjusts an
//! existing one such as Debian's `backup`: home `/home/USER`, shell `/bin/bash`, a bare lock
//! `!` replaced by `*`); `admin` and `deploy` (see [`FleetBuilder::sudo_users`]) get
//! passwordless sudo in `/etc/sudoers.d/sshfleet-testfleet`. Run it on test machines.
//!
//! # Teardown
//! Dropping the [`Fleet`] kills each host's PID-namespace init (the kernel then kills every
//! session process, `setsid` or not), reaps `unshare`, kills by PID anything left in the
//! host's namespaces, and removes the fleet directory unless [`FleetBuilder::keep`] or
//! `SSHFLEET_KEEP_FLEET=1`. If the owning process dies without running Drop (SIGKILL, a
//! nextest timeout), `PR_SET_PDEATHSIG` kills every host: hosts are spawned from one
//! process-wide thread that never exits, because the death signal fires when the *spawning
//! thread* exits. The directory is left behind in that case; the next fleet started with a
//! default directory removes such stale `sshfleet-fleet-*` directories (never kept ones).
//!
//! The fleet directory must not be under `/home`, `/root` or `/run` (it would be hidden inside the
//! hosts' namespaces); the default is a new directory under `$TMPDIR` (or `/tmp`).
//!
//! # Notes for tests
//! - [`Fleet`] is `Send + Sync`; share it by reference or `Arc`. `start()` blocks (about
//!   0.2 s for 20 hosts, 1.5 s for 100 on 2 busy cores), which is fine inside `#[tokio::test]`.
//! - [`Fleet::ssh_args`] gives OpenSSH `ssh` arguments for a host and user; the integration
//!   harness (`tests/integration/support/fleet.rs`) wraps them.
//! - [`FleetHost::log`]: sshd logs at INFO, e.g. `Accepted publickey for deploy from
//!   127.0.0.1 port N ssh2: ED25519 SHA256:…`, handy to assert which key logged in.
//! - Extra sshd options come first in `sshd_config`, so they override the defaults; `Match`
//!   blocks are not supported.
//! - Namespace inode numbers are reused immediately after a namespace dies: when checking
//!   for leftovers after teardown, use [`procs::pids_in_ns_started_before`].

pub mod etc;
pub mod host;
pub mod net;
pub mod procs;
pub mod render;
pub mod system;
pub mod up;

use std::fmt;
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use host::{HostPaths, Pending, Poll, Running};

/// Everything that can go wrong starting or driving a fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("the test fleet must run as root (it creates users and namespaces)")]
    NotRoot,
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("test fleet setup: {0}")]
    Setup(String),
    #[error("fleet host {host}: {msg}\n--- sshd log (last lines) ---\n{log_tail}")]
    Start {
        host: String,
        msg: String,
        log_tail: String,
    },
    #[error("no fleet host with index {0}")]
    NoSuchHost(usize),
}

impl FleetError {
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        FleetError::Io {
            context: context.to_string(),
            source,
        }
    }
}

/// Options for a fleet; see [`Fleet::builder`].
#[derive(Debug, Clone)]
pub struct FleetBuilder {
    hosts: usize,
    users: Vec<String>,
    sudo_users: Vec<String>,
    root_login: bool,
    extra_all: Vec<String>,
    extra_host: Vec<(usize, String)>,
    private_dirs: Vec<PathBuf>,
    max_startups: String,
    log_level: String,
    dir: Option<PathBuf>,
    keep: bool,
    name_prefix: String,
    inventory_user: String,
    start_timeout: Duration,
    passwords: Vec<(usize, String, String)>,
    sudo_password_hosts: Vec<usize>,
    no_authorized_keys: Vec<(usize, String)>,
    host_certs: Vec<(usize, HostCert)>,
    user_cas: Vec<(usize, PathBuf)>,
    hidden: Vec<usize>,
    relay_sockets: Vec<usize>,
    relay_ports: Vec<usize>,
}

/// A host certificate to issue at start (`ssh-keygen -s CA -h -n PRINCIPALS -V VALIDITY`) and
/// serve with `HostCertificate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCert {
    /// The CA's private key file (on the controller).
    pub ca_key: PathBuf,
    /// Principals (`-n`), e.g. `["host01.fleet.test", "127.0.0.1"]`.
    pub principals: Vec<String>,
    /// Validity (`-V`), e.g. `-5m:+1h`, or `20200101:20200102` for an expired one.
    pub validity: String,
}

impl Default for FleetBuilder {
    fn default() -> Self {
        FleetBuilder {
            hosts: 3,
            users: ["admin", "deploy", "backup"].map(String::from).to_vec(),
            sudo_users: ["admin", "deploy"].map(String::from).to_vec(),
            root_login: true,
            extra_all: Vec::new(),
            extra_host: Vec::new(),
            private_dirs: vec![PathBuf::from("/srv")],
            max_startups: "10:30:100".into(),
            log_level: "INFO".into(),
            dir: None,
            keep: std::env::var("SSHFLEET_KEEP_FLEET").is_ok_and(|v| v == "1"),
            name_prefix: "host".into(),
            inventory_user: "deploy".into(),
            start_timeout: Duration::from_secs(30),
            passwords: Vec::new(),
            sudo_password_hosts: Vec::new(),
            no_authorized_keys: Vec::new(),
            host_certs: Vec::new(),
            user_cas: Vec::new(),
            hidden: Vec::new(),
            relay_sockets: Vec::new(),
            relay_ports: Vec::new(),
        }
    }
}

impl FleetBuilder {
    /// Number of hosts (default 3).
    pub fn hosts(mut self, n: usize) -> Self {
        self.hosts = n;
        self
    }
    /// Login users present on every host with the fleet key authorized (default admin,
    /// deploy, backup). `root` may be listed too; it is handled by [`Self::root_login`].
    pub fn users<I, S>(mut self, users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.users = users.into_iter().map(Into::into).collect();
        self
    }
    /// Users that get passwordless sudo (default admin, deploy; only those also in `users`).
    pub fn sudo_users<I, S>(mut self, users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sudo_users = users.into_iter().map(Into::into).collect();
        self
    }
    /// Per-host `/root` with the fleet key authorized, `PermitRootLogin prohibit-password`
    /// (default true). When false, root cannot log in.
    pub fn root_login(mut self, yes: bool) -> Self {
        self.root_login = yes;
        self
    }
    /// An extra `sshd_config` line for the host with this 0-based index. Extra lines come
    /// before the defaults, so they override them (sshd uses the first value). No `Match`.
    pub fn sshd_option(mut self, host_index: usize, line: impl Into<String>) -> Self {
        self.extra_host.push((host_index, line.into()));
        self
    }
    /// An extra `sshd_config` line for every host.
    pub fn sshd_option_all(mut self, line: impl Into<String>) -> Self {
        self.extra_all.push(line.into());
        self
    }
    /// Give every host its own copy of this directory (bound over it in the host's mount
    /// namespace; created empty on the machine if missing), besides `/home` and `/root`.
    /// Default: `/srv` alone, so replication tests and the demo have a per-host place such as
    /// `/srv/pki`. Not allowed: relative paths, `/`, top-level system directories (`/etc`,
    /// `/usr`, `/var`, `/tmp`, …; subdirectories such as `/etc/pki` are fine), anything
    /// under `/home` or `/root`. Everything else on the file system is shared by all hosts.
    pub fn private_dir(mut self, path: impl Into<PathBuf>) -> Self {
        let p = path.into();
        if !self.private_dirs.contains(&p) {
            self.private_dirs.push(p);
        }
        self
    }
    /// Drop the default private directories (`/srv`); see [`Self::private_dir`].
    pub fn no_private_dirs(mut self) -> Self {
        self.private_dirs.clear();
        self
    }
    /// sshd's `MaxStartups` (default `10:30:100`, sshd's own default).
    pub fn max_startups(mut self, v: impl Into<String>) -> Self {
        self.max_startups = v.into();
        self
    }
    /// sshd's `LogLevel` (default INFO, which logs accepted keys and refusals).
    pub fn log_level(mut self, v: impl Into<String>) -> Self {
        self.log_level = v.into();
        self
    }
    /// Put the fleet's files here (created; must be absent or empty, or a stopped fleet's
    /// directory). Default: a new directory under the temp dir.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }
    /// Keep the directory after teardown (default false, or `SSHFLEET_KEEP_FLEET=1`).
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }
    /// Host name prefix (default `host`: host01, host02, …).
    pub fn name_prefix(mut self, p: impl Into<String>) -> Self {
        self.name_prefix = p.into();
        self
    }
    /// `ansible_user` in the inventory (default deploy).
    pub fn inventory_user(mut self, u: impl Into<String>) -> Self {
        self.inventory_user = u.into();
        self
    }
    /// Run host `i` (0-based) in the fleet's hidden network: a network namespace of its own
    /// with only its own loopback, which the controller cannot reach (see [`net`]). Its
    /// [`FleetHost::port`] is a port on *that* loopback. Reach it through a hidden host with a
    /// [`Self::relay_port`] (a bastion: `ProxyJump`), or a [`Self::relay_socket`]
    /// (`ProxyCommand socat - UNIX-CONNECT:PATH`).
    pub fn hidden(mut self, i: usize) -> Self {
        if !self.hidden.contains(&i) {
            self.hidden.push(i);
        }
        self
    }
    /// Hidden host `i` gets a unix socket relay to its sshd ([`FleetHost::relay_socket`]).
    pub fn relay_socket(mut self, i: usize) -> Self {
        self = self.hidden(i);
        if !self.relay_sockets.contains(&i) {
            self.relay_sockets.push(i);
        }
        self
    }
    /// Hidden host `i` is reachable from the controller at 127.0.0.1:[`FleetHost::relay_port`]
    /// (through a unix socket relay: the bastion of the hidden hosts). The fleet's
    /// known_hosts lists its key under that port too, and the fleet's inventory reaches it
    /// there; when exactly one host has a relay port, the inventory reaches every other
    /// hidden host with `-o ProxyJump` through it (hosts with only a relay socket, with
    /// `-o ProxyCommand`).
    pub fn relay_port(mut self, i: usize) -> Self {
        self = self.relay_socket(i);
        if !self.relay_ports.contains(&i) {
            self.relay_ports.push(i);
        }
        self
    }
    /// On host `host` (0-based), `user` (or `root`) has this password in the host's own
    /// `/etc/shadow` (for password logins add `PasswordAuthentication yes` with
    /// [`Self::sshd_option`]; sudo and su check it too).
    pub fn password(mut self, host: usize, user: impl Into<String>, pw: impl Into<String>) -> Self {
        self.passwords.push((host, user.into(), pw.into()));
        self
    }
    /// On host `host`, sudo asks the sudo users for their password (no `NOPASSWD`).
    pub fn sudo_password(mut self, host: usize) -> Self {
        self.sudo_password_hosts.push(host);
        self
    }
    /// On host `host`, `user` has no `authorized_keys` file (password or certificate only).
    pub fn no_authorized_keys(mut self, host: usize, user: impl Into<String>) -> Self {
        self.no_authorized_keys.push((host, user.into()));
        self
    }
    /// Host `host` serves a host certificate signed by `cert.ca_key`.
    pub fn host_certificate(mut self, host: usize, cert: HostCert) -> Self {
        self.host_certs.push((host, cert));
        self
    }
    /// Host `host`'s sshd trusts user certificates signed by this CA public key file
    /// (`TrustedUserCAKeys /etc/ssh/sshfleet_user_ca.pub`).
    pub fn trusted_user_ca(mut self, host: usize, ca_pub: impl Into<PathBuf>) -> Self {
        self.user_cas.push((host, ca_pub.into()));
        self
    }
    /// How long to wait for all hosts to listen (default 30 s).
    pub fn start_timeout(mut self, t: Duration) -> Self {
        self.start_timeout = t;
        self
    }

    /// Start the fleet. Blocks until every host listens (or fails, tearing down what started).
    pub fn start(self) -> Result<Fleet, FleetError> {
        Fleet::start(self)
    }
}

/// One host of a running fleet.
#[derive(Debug)]
pub struct FleetHost {
    index: usize,
    name: String,
    port: u16,
    dir: PathBuf,
    paths: HostPaths,
    host_key_pub: String,
    state: Mutex<HostState>,
    relay_socket: Option<PathBuf>,
    relay_port: Option<u16>,
}

#[derive(Debug)]
enum HostState {
    Running(Running),
    Stopped,
}

impl FleetHost {
    /// 0-based index in [`Fleet::hosts`].
    pub fn index(&self) -> usize {
        self.index
    }
    /// Inventory name: `host01`, …
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Whether the host runs in the fleet's hidden network (see [`FleetBuilder::hidden`]).
    pub fn is_hidden(&self) -> bool {
        self.paths.netns.is_some()
    }
    /// The unix socket relayed to this hidden host's sshd ([`FleetBuilder::relay_socket`]).
    pub fn relay_socket(&self) -> Option<&Path> {
        self.relay_socket.as_deref()
    }
    /// The controller-side 127.0.0.1 port relayed to this hidden host's sshd
    /// ([`FleetBuilder::relay_port`]).
    pub fn relay_port(&self) -> Option<u16> {
        self.relay_port
    }
    /// Always 127.0.0.1 (for a hidden host, the hidden network's own loopback).
    pub fn addr(&self) -> &'static str {
        "127.0.0.1"
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// `127.0.0.1:PORT`
    pub fn socket_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    /// sshd's PID (PID 1 of the host's PID namespace), or None when stopped.
    pub fn pid(&self) -> Option<u32> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            HostState::Running(r) => Some(r.sshd_pid),
            HostState::Stopped => None,
        }
    }
    /// PID of the `unshare` process that owns the namespaces (our direct child).
    pub fn owner_pid(&self) -> Option<u32> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            HostState::Running(r) => Some(r.child.id()),
            HostState::Stopped => None,
        }
    }
    /// Inodes of the host's (mount, PID) namespaces while running; see [`procs::pids_in_ns`].
    pub fn namespaces(&self) -> Option<(u64, u64)> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            HostState::Running(r) => Some((r.mnt_ns, r.pid_ns)),
            HostState::Stopped => None,
        }
    }
    /// This host's directory in the fleet dir (sshd_config, host key, sshd.log, home, root).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The controller path of the host's `/etc/ssh/sshd_config` (a regular file there; it
    /// includes `/etc/ssh/sshd_config.d/*.conf`).
    pub fn sshd_config_path(&self) -> PathBuf {
        self.paths.config.clone()
    }
    /// The controller path of the host's `/etc/ssh/ssh_host_ed25519_key` (the key it was
    /// started with; a host-key rotation may have replaced it since).
    pub fn host_key_path(&self) -> PathBuf {
        etc::ssh_dir(&self.dir).join("ssh_host_ed25519_key")
    }
    /// The controller path of the host's `/run/sshd.pid` (sshd writes it; it holds `1`, sshd's
    /// PID inside the host's PID namespace).
    pub fn pidfile_path(&self) -> PathBuf {
        self.dir.join("run").join("sshd.pid")
    }
    /// The controller path bound over `/home` on this host.
    pub fn home_root(&self) -> &Path {
        &self.paths.home_root
    }
    /// The controller path of `~user` on this host (`/root` for root).
    pub fn home_of(&self, user: &str) -> PathBuf {
        if user == "root" {
            self.dir.join("root")
        } else {
            self.paths.home_root.join(user)
        }
    }
    /// The controller path of an absolute path on this host when that path is private to the
    /// host (under `/home`, `/root`, a [`FleetBuilder::private_dir`], `/etc/shadow`,
    /// `/etc/sudoers.d`, `/etc/ssh` or `/run`); None when the path
    /// is shared by every host (the rest of the file system) or relative.
    pub fn local_path(&self, remote: impl AsRef<Path>) -> Option<PathBuf> {
        let remote = remote.as_ref();
        let mut mounts: Vec<(&Path, &Path)> = vec![(Path::new("/home"), &self.paths.home_root)];
        if let Some(r) = &self.paths.root_home {
            mounts.push((Path::new("/root"), r));
        }
        for (src, dst) in self.paths.private.iter().chain(&self.paths.etc) {
            mounts.push((dst, src));
        }
        mounts.into_iter().find_map(|(on_host, local)| {
            let rest = remote.strip_prefix(on_host).ok()?;
            // A bound file (`/etc/shadow`) is the path itself, not `path/`.
            Some(if rest.as_os_str().is_empty() {
                local.to_path_buf()
            } else {
                local.join(rest)
            })
        })
    }
    /// The directories private to each host (`/home`, `/root` when root login is on, and the
    /// [`FleetBuilder::private_dir`]s), as paths on the host.
    pub fn private_dirs(&self) -> Vec<PathBuf> {
        let mut v = vec![PathBuf::from("/home")];
        if self.paths.root_home.is_some() {
            v.push(PathBuf::from("/root"));
        }
        v.extend(self.paths.private.iter().map(|(_, d)| d.clone()));
        v
    }
    /// The controller path of `~user/.ssh/authorized_keys` on this host.
    pub fn authorized_keys_path(&self, user: &str) -> PathBuf {
        self.home_of(user).join(".ssh/authorized_keys")
    }
    /// The host's public host key line (`ssh-ed25519 AAAA… comment`) as generated at start.
    pub fn host_key_pub(&self) -> &str {
        &self.host_key_pub
    }
    /// sshd's log file (stderr of `sshd -e`, appended across restarts).
    pub fn log_path(&self) -> &Path {
        &self.paths.log
    }
    /// Current content of the sshd log.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.paths.log).unwrap_or_default()
    }
    /// Whether sshd is running (not stopped by [`Fleet::stop_host`]).
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }
}

/// A running fleet. Dropping it tears everything down.
#[derive(Debug)]
pub struct Fleet {
    dir: PathBuf,
    keep: bool,
    users: Vec<String>,
    inventory_user: String,
    hosts: Vec<FleetHost>,
    start_timeout: Duration,
    started_in: Duration,
    /// The hidden network (when any host is hidden) and its relays.
    net: Option<net::HiddenNet>,
    relays: Mutex<Vec<net::Relay>>,
}

/// A spot for one host's files, prepared before its sshd starts.
struct Prepared {
    name: String,
    dir: PathBuf,
    paths: HostPaths,
    host_key_pub: String,
}

impl Fleet {
    pub fn builder() -> FleetBuilder {
        FleetBuilder::default()
    }

    fn start(b: FleetBuilder) -> Result<Fleet, FleetError> {
        let t0 = Instant::now();
        if b.hosts == 0 {
            return Err(FleetError::Setup("a fleet needs at least one host".into()));
        }
        let mut users: Vec<String> = Vec::new();
        for u in &b.users {
            if !users.contains(u) {
                users.push(u.clone());
            }
        }
        let login_users: Vec<String> = users.iter().filter(|u| *u != "root").cloned().collect();
        let sudo_users: Vec<String> = b
            .sudo_users
            .iter()
            .filter(|u| login_users.contains(u))
            .cloned()
            .collect();
        let private_dirs = check_private_dirs(&b.private_dirs)?;
        let accounts = system::prepare(&login_users, &sudo_users)?;
        for d in &private_dirs {
            // The mount point must exist on the real file system.
            fs::create_dir_all(d).map_err(|e| FleetError::io(d.display(), e))?;
        }
        let sftp = system::sftp_server()?;
        let dir = make_fleet_dir(b.dir.as_deref())?;
        if let Some(d) = private_dirs.iter().find(|d| dir.starts_with(d)) {
            let _ = fs::remove_dir_all(&dir);
            return Err(FleetError::Setup(format!(
                "fleet directory {} is under the per-host directory {}; choose another",
                dir.display(),
                d.display()
            )));
        }
        // From here on, a failure must clean up: build the Fleet early and let Drop do it.
        let mut fleet = Fleet {
            dir: dir.clone(),
            keep: b.keep,
            users: users.clone(),
            inventory_user: b.inventory_user.clone(),
            hosts: Vec::new(),
            start_timeout: b.start_timeout,
            started_in: Duration::ZERO,
            net: None,
            relays: Mutex::new(Vec::new()),
        };
        if let Some(&i) = b.hidden.iter().find(|&&i| i >= b.hosts) {
            return Err(FleetError::NoSuchHost(i));
        }
        if !b.hidden.is_empty() {
            fleet.net = Some(net::HiddenNet::create()?);
        }
        let client_key = dir.join("id_ed25519");
        keygen(&client_key, "sshfleet-testfleet-client")?.wait_ok(&client_key)?;
        let client_pub = read(&dir.join("id_ed25519.pub"))?;

        // Host directories and host keys (ssh-keygen runs concurrently).
        let mut prepared = Vec::with_capacity(b.hosts);
        let mut keygens = Vec::with_capacity(b.hosts);
        for i in 0..b.hosts {
            let name = render::host_name(&b.name_prefix, i, b.hosts);
            let hdir = dir.join(&name);
            mkdir(&hdir, 0o755, None)?;
            let home_root = hdir.join("home");
            mkdir(&home_root, 0o755, None)?;
            let no_keys = |u: &str| b.no_authorized_keys.iter().any(|(h, n)| *h == i && n == u);
            for acct in accounts.iter().filter(|a| a.name != "root") {
                let home = home_root.join(&acct.name);
                if no_keys(&acct.name) {
                    mkdir(&home, 0o755, Some((acct.uid, acct.gid)))?;
                } else {
                    write_authorized(&home, &client_pub, Some((acct.uid, acct.gid)))?;
                }
            }
            let root_home = if b.root_login {
                let r = hdir.join("root");
                if no_keys("root") {
                    mkdir(&r, 0o700, None)?;
                } else {
                    write_authorized(&r, &client_pub, None)?;
                }
                Some(r)
            } else {
                None
            };
            for d in &private_dirs {
                let src = private_source(&hdir, d);
                fs::create_dir_all(&src).map_err(|e| FleetError::io(src.display(), e))?;
            }
            let ssh_dir = etc::ssh_dir(&hdir);
            fs::create_dir_all(&ssh_dir).map_err(|e| FleetError::io(ssh_dir.display(), e))?;
            let key = ssh_dir.join("ssh_host_ed25519_key");
            keygens.push((key.clone(), keygen(&key, &format!("root@{name}"))?));
            prepared.push(Prepared {
                paths: HostPaths {
                    config: ssh_dir.join("sshd_config"),
                    log: hdir.join("sshd.log"),
                    home_root,
                    root_home,
                    private: private_dirs
                        .iter()
                        .map(|d| (private_source(&hdir, d), d.clone()))
                        .collect(),
                    etc: etc::binds(&hdir),
                    quiet_log: ["QUIET", "FATAL", "ERROR"]
                        .contains(&b.log_level.to_ascii_uppercase().as_str()),
                    netns: if b.hidden.contains(&i) {
                        fleet.net.clone()
                    } else {
                        None
                    },
                },
                dir: hdir,
                name,
                host_key_pub: String::new(),
            });
        }
        for ((key, child), p) in keygens.into_iter().zip(prepared.iter_mut()) {
            child.wait_ok(&key)?;
            p.host_key_pub = read(&key.with_extension("pub"))?;
        }
        // Per-host /etc pieces, host certificates, trusted user CAs.
        for (i, p) in prepared.iter().enumerate() {
            let key = etc::ssh_dir(&p.dir).join("ssh_host_ed25519_key");
            if let Some((_, cert)) = b.host_certs.iter().rev().find(|(h, _)| *h == i) {
                sign_host_key(&key, cert, &p.name)?;
            }
            let spec = etc::EtcSpec {
                passwords: b
                    .passwords
                    .iter()
                    .filter(|(h, _, _)| *h == i)
                    .map(|(_, u, pw)| (u.clone(), pw.clone()))
                    .collect(),
                sudo_users: sudo_users.clone(),
                sudo_password: b.sudo_password_hosts.contains(&i),
            };
            etc::prepare(&p.dir, &spec)?;
            let cas: Vec<&PathBuf> = b
                .user_cas
                .iter()
                .filter(|(h, _)| *h == i)
                .map(|(_, c)| c)
                .collect();
            if !cas.is_empty() {
                let mut body = String::new();
                for c in cas {
                    body.push_str(read(c)?.trim_end());
                    body.push('\n');
                }
                write_file(
                    &p.dir.join("etc/ssh/sshfleet_user_ca.pub"),
                    body.as_bytes(),
                    0o644,
                )?;
            }
        }

        // Ports, configs, sshd processes; retry a host whose port was taken meanwhile.
        let write_config = |i: usize, p: &Prepared, port: u16| -> Result<(), FleetError> {
            let mut extra: Vec<String> = b
                .extra_host
                .iter()
                .filter(|(h, _)| *h == i)
                .map(|(_, l)| l.clone())
                .collect();
            extra.extend(b.extra_all.iter().cloned());
            if b.host_certs.iter().any(|(h, _)| *h == i) {
                extra.push("HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub".into());
            }
            if b.user_cas.iter().any(|(h, _)| *h == i) {
                // The host's own /etc/ssh (bound in its namespace, where sshd reads it).
                extra.push("TrustedUserCAKeys /etc/ssh/sshfleet_user_ca.pub".into());
            }
            let cfg = render::sshd_config(&render::SshdConfig {
                port,
                sftp_server: sftp,
                max_startups: &b.max_startups,
                log_level: &b.log_level,
                permit_root_login: b.root_login,
                extra: &extra,
            });
            write_file(&p.paths.config, cfg.as_bytes(), 0o644)
        };
        let mut ports = pick_ports(b.hosts)?;
        let mut running: Vec<Option<Running>> = (0..b.hosts).map(|_| None).collect();
        let mut pending: Vec<Option<Pending>> = (0..b.hosts).map(|_| None).collect();
        let mut attempts = vec![0u32; b.hosts];
        let spawn = |i: usize, port: u16| -> Result<Pending, FleetError> {
            write_config(i, &prepared[i], port)?;
            let (child, offset) = host::spawn(&prepared[i].paths)?;
            Ok(Pending { child, offset })
        };
        // No `?` from here until every spawned process is owned by `fleet` (below).
        let mut failure = None;
        for i in 0..b.hosts {
            match spawn(i, ports[i]) {
                Ok(pd) => pending[i] = Some(pd),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let deadline = Instant::now() + b.start_timeout;
        while failure.is_none() && pending.iter().any(Option::is_some) {
            for i in 0..b.hosts {
                let Some(pd) = pending[i].as_mut() else {
                    continue;
                };
                match host::poll(&prepared[i].name, &prepared[i].paths, ports[i], pd) {
                    Ok(Poll::Starting) => {}
                    Ok(Poll::Listening {
                        sshd_pid,
                        mnt_ns,
                        pid_ns,
                    }) => {
                        let pd = pending[i].take().expect("pending host");
                        running[i] = Some(pd.into_running(sshd_pid, mnt_ns, pid_ns));
                    }
                    Ok(Poll::PortTaken) if attempts[i] < 8 => {
                        attempts[i] += 1;
                        let mut old = pending[i].take().expect("pending host");
                        let _ = old.child.wait();
                        match pick_ports(1).and_then(|p| {
                            ports[i] = p[0];
                            spawn(i, p[0])
                        }) {
                            Ok(pd) => pending[i] = Some(pd),
                            Err(e) => failure = Some(e),
                        }
                    }
                    Ok(Poll::PortTaken) => {
                        failure = Some(FleetError::Start {
                            host: prepared[i].name.clone(),
                            msg: "could not find a free port after 8 attempts".into(),
                            log_tail: String::new(),
                        });
                    }
                    Err(e) => failure = Some(e),
                }
            }
            if failure.is_none() && pending.iter().any(Option::is_some) {
                if Instant::now() > deadline {
                    let i = pending.iter().position(Option::is_some).unwrap_or(0);
                    failure = Some(FleetError::Start {
                        host: prepared[i].name.clone(),
                        msg: format!("not listening after {:?}", b.start_timeout),
                        log_tail: host::tail(
                            &fs::read_to_string(&prepared[i].paths.log).unwrap_or_default(),
                            15,
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(3));
            }
        }
        // Every spawned process goes into the fleet (pending ones as running, so Drop kills
        // them) before a failure is returned.
        for (i, p) in prepared.into_iter().enumerate() {
            let state = match (running[i].take(), pending[i].take()) {
                (Some(r), _) => HostState::Running(r),
                (None, Some(pd)) => {
                    let sshd = procs::children(pd.child.id()).first().copied().unwrap_or(0);
                    let (mnt, pid) = (
                        procs::ns_inode(sshd, procs::NsKind::Mnt).unwrap_or(0),
                        procs::ns_inode(sshd, procs::NsKind::Pid).unwrap_or(0),
                    );
                    HostState::Running(pd.into_running(sshd, mnt, pid))
                }
                (None, None) => HostState::Stopped,
            };
            fleet.hosts.push(FleetHost {
                index: i,
                name: p.name,
                port: ports[i],
                dir: p.dir,
                paths: p.paths,
                host_key_pub: p.host_key_pub,
                state: Mutex::new(state),
                relay_socket: None,
                relay_port: None,
            });
        }
        if let Some(e) = failure {
            return Err(e);
        }
        fleet.start_relays(&b)?;

        let known: String = fleet
            .hosts
            .iter()
            .flat_map(|h| {
                let mut v = vec![render::known_hosts_line(h.port, &h.host_key_pub)];
                if let Some(p) = h.relay_port {
                    v.push(render::known_hosts_line(p, &h.host_key_pub));
                }
                v
            })
            .collect();
        write_file(&fleet.known_hosts(), known.as_bytes(), 0o644)?;
        let ssh_config = fleet.dir().join("ssh_config");
        let vars = render::InventoryVars {
            user: &fleet.inventory_user,
            private_key: &fleet.client_key(),
            known_hosts: &fleet.known_hosts(),
            ssh_config: &ssh_config,
            python: system::python3(),
        };
        write_file(&ssh_config, render::ssh_config(&vars).as_bytes(), 0o644)?;
        let inv = render::inventory(&fleet.inventory_hosts(), &vars);
        write_file(&fleet.inventory(), inv.as_bytes(), 0o644)?;
        fleet.started_in = t0.elapsed();
        Ok(fleet)
    }

    /// The unix socket and TCP relays of hidden hosts (after every host listens).
    fn start_relays(&mut self, b: &FleetBuilder) -> Result<(), FleetError> {
        let Some(hidden) = self.net.clone() else {
            return Ok(());
        };
        for &i in &b.relay_sockets {
            let h = &self.hosts[i];
            let sock = net::socket_path(&self.dir, &h.name);
            let r = net::Relay::unix_to_port(&hidden, &sock, h.port)?;
            self.relays
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .push(r);
            self.hosts[i].relay_socket = Some(sock);
        }
        for &i in &b.relay_ports {
            let sock = self.hosts[i]
                .relay_socket
                .clone()
                .expect("relay socket first");
            let mut attempt = 0;
            let (port, r) = loop {
                let port = pick_ports(1)?[0];
                match net::Relay::port_to_unix(port, &sock) {
                    Ok(r) => break (port, r),
                    Err(_) if attempt < 5 => attempt += 1,
                    Err(e) => return Err(e),
                }
            };
            self.relays
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .push(r);
            self.hosts[i].relay_port = Some(port);
        }
        Ok(())
    }

    /// How the fleet's inventory reaches each host (see [`FleetBuilder::relay_port`]).
    fn inventory_hosts(&self) -> Vec<render::InventoryHost> {
        let bastions: Vec<u16> = self.hosts.iter().filter_map(|h| h.relay_port).collect();
        self.hosts
            .iter()
            .map(|h| {
                let (port, via) = match (h.is_hidden(), h.relay_port, &h.relay_socket) {
                    (false, _, _) => (h.port, render::Via::Direct),
                    (true, Some(p), _) => (p, render::Via::Direct),
                    (true, None, _) if bastions.len() == 1 => (
                        h.port,
                        render::Via::Jump(format!(
                            "{}@127.0.0.1:{}",
                            self.inventory_user, bastions[0]
                        )),
                    ),
                    (true, None, Some(sock)) => (
                        h.port,
                        render::Via::Command(format!("socat - UNIX-CONNECT:{}", sock.display())),
                    ),
                    (true, None, None) => (h.port, render::Via::Direct),
                };
                render::InventoryHost {
                    name: h.name.clone(),
                    port,
                    via,
                }
            })
            .collect()
    }

    /// The hidden network's namespace inode (when any host is hidden).
    pub fn hidden_net_inode(&self) -> Option<u64> {
        self.net.as_ref().map(|n| n.inode)
    }

    /// The fleet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn hosts(&self) -> &[FleetHost] {
        &self.hosts
    }
    /// Host by index; panics when out of range (tests).
    pub fn host(&self, i: usize) -> &FleetHost {
        &self.hosts[i]
    }
    /// Host by inventory name.
    pub fn host_named(&self, name: &str) -> Option<&FleetHost> {
        self.hosts.iter().find(|h| h.name == name)
    }
    /// The login users (as given to the builder).
    pub fn users(&self) -> &[String] {
        &self.users
    }
    /// Private key authorized for every user (incl. root when enabled) on every host.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    /// Its public key file.
    pub fn client_key_pub(&self) -> PathBuf {
        self.dir.join("id_ed25519.pub")
    }
    /// known_hosts with every host's key as `[127.0.0.1]:PORT`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    /// The INI inventory (group `fleet`).
    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory.ini")
    }
    /// `~user/.ssh/authorized_keys` of host `i`, as a controller path.
    pub fn authorized_keys_path(&self, i: usize, user: &str) -> PathBuf {
        self.hosts[i].authorized_keys_path(user)
    }
    /// How long [`FleetBuilder::start`] took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }
    /// OpenSSH `ssh` arguments (before the remote command) to log in to host `i` as `user`:
    /// fleet key only, strict host key checking against the fleet's known_hosts, batch mode.
    /// A hidden host with a relay port is reached there; other hidden hosts need a proxy.
    pub fn ssh_args(&self, i: usize, user: &str) -> Vec<String> {
        let h = &self.hosts[i];
        vec![
            "-F".into(),
            "/dev/null".into(),
            "-i".into(),
            self.client_key().display().to_string(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts().display()),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            "ConnectTimeout=10".into(),
            "-p".into(),
            h.relay_port.unwrap_or(h.port).to_string(),
            "-l".into(),
            user.into(),
            h.addr().into(),
        ]
    }

    fn host_checked(&self, i: usize) -> Result<&FleetHost, FleetError> {
        self.hosts.get(i).ok_or(FleetError::NoSuchHost(i))
    }

    /// Kill host `i` and everything in its namespaces. Idempotent.
    pub fn stop_host(&self, i: usize) {
        let Some(h) = self.hosts.get(i) else {
            return;
        };
        let mut st = h.state.lock().unwrap_or_else(|e| e.into_inner());
        if let HostState::Running(r) = std::mem::replace(&mut *st, HostState::Stopped) {
            host::stop(r);
        }
    }

    /// SIGSTOP every process of host `i` (sshd and its sessions): connections hang.
    pub fn pause_host(&self, i: usize) {
        if let Some(h) = self.hosts.get(i)
            && let HostState::Running(r) = &*h.state.lock().unwrap_or_else(|e| e.into_inner())
        {
            host::signal_all(r, libc::SIGSTOP);
        }
    }

    /// SIGCONT every process of host `i`, again until none is stopped (for up to 2 s): `sudo`
    /// mirrors a stop of its command by stopping itself, and the command's stop may reach it
    /// only after our SIGCONT did, which would leave it stopped for good.
    pub fn resume_host(&self, i: usize) {
        if let Some(h) = self.hosts.get(i)
            && let HostState::Running(r) = &*h.state.lock().unwrap_or_else(|e| e.into_inner())
        {
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                host::signal_all(r, libc::SIGCONT);
                std::thread::sleep(Duration::from_millis(20));
                if !host::any_stopped(r) || Instant::now() >= deadline {
                    break;
                }
            }
        }
    }

    /// Stop host `i` (if running) and start it again on the same port with the same host key
    /// and the same home directories.
    pub fn restart_host(&self, i: usize) -> Result<(), FleetError> {
        let h = self.host_checked(i)?;
        let mut st = h.state.lock().unwrap_or_else(|e| e.into_inner());
        if let HostState::Running(r) = std::mem::replace(&mut *st, HostState::Stopped) {
            host::stop(r);
        }
        let deadline = Instant::now() + self.start_timeout;
        loop {
            let (child, offset) = host::spawn(&h.paths)?;
            let mut pd = Pending { child, offset };
            loop {
                match host::poll(&h.name, &h.paths, h.port, &mut pd) {
                    Ok(Poll::Starting) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(3))
                    }
                    Ok(Poll::Starting) => {
                        let _ = pd.child.kill();
                        let _ = pd.child.wait();
                        return Err(FleetError::Start {
                            host: h.name.clone(),
                            msg: "not listening after restart".into(),
                            log_tail: host::tail(&h.log(), 15),
                        });
                    }
                    Ok(Poll::Listening {
                        sshd_pid,
                        mnt_ns,
                        pid_ns,
                    }) => {
                        *st = HostState::Running(pd.into_running(sshd_pid, mnt_ns, pid_ns));
                        return Ok(());
                    }
                    // The same port is required; it may be briefly busy. Retry until deadline.
                    Ok(Poll::PortTaken) if Instant::now() < deadline => {
                        let _ = pd.child.wait();
                        std::thread::sleep(Duration::from_millis(50));
                        break;
                    }
                    Ok(Poll::PortTaken) => {
                        let _ = pd.child.wait();
                        return Err(FleetError::Start {
                            host: h.name.clone(),
                            msg: format!("port {} is taken; cannot restart", h.port),
                            log_tail: host::tail(&h.log(), 15),
                        });
                    }
                    Err(e) => {
                        let _ = pd.child.wait();
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Tear down now (same as dropping).
    pub fn shutdown(self) {
        drop(self)
    }

    fn teardown(&mut self) {
        // Relays first (nothing new gets in), then the hosts.
        self.relays
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // Kill every host first (all PID-1s at once), then reap and sweep each.
        for h in &self.hosts {
            if let HostState::Running(r) = &*h.state.lock().unwrap_or_else(|e| e.into_inner())
                && procs::ns_inode(r.sshd_pid, procs::NsKind::Pid) == Some(r.pid_ns)
            {
                procs::signal(r.sshd_pid, libc::SIGKILL);
            }
        }
        for i in 0..self.hosts.len() {
            self.stop_host(i);
        }
        if self.keep {
            // A kept directory is the user's now: never swept as stale.
            let _ = fs::remove_file(self.dir.join(MARKER));
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// Tests share a fleet across threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Fleet>();
};

impl Drop for Fleet {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A running `ssh-keygen`.
struct Keygen(std::process::Child);

impl Keygen {
    fn wait_ok(self, key: &Path) -> Result<(), FleetError> {
        let out = self
            .0
            .wait_with_output()
            .map_err(|e| FleetError::io(format!("ssh-keygen for {}", key.display()), e))?;
        if !out.status.success() {
            return Err(FleetError::Setup(format!(
                "ssh-keygen for {} failed: {}",
                key.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

fn keygen(path: &Path, comment: &str) -> Result<Keygen, FleetError> {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(path.with_extension("pub"));
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(Keygen)
        .map_err(|e| FleetError::io("running ssh-keygen", e))
}

/// `ssh-keygen -s CA -h -I ID -n PRINCIPALS -V VALIDITY KEY.pub` → `KEY-cert.pub`.
fn sign_host_key(key: &Path, cert: &HostCert, name: &str) -> Result<(), FleetError> {
    let out = Command::new("ssh-keygen")
        .arg("-q")
        .arg("-s")
        .arg(&cert.ca_key)
        .args(["-h", "-I", &format!("{name}-host-cert"), "-n"])
        .arg(cert.principals.join(","))
        .arg("-V")
        .arg(&cert.validity)
        .arg(key.with_extension("pub"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| FleetError::io("ssh-keygen -s", e))?;
    if !out.status.success() {
        return Err(FleetError::Setup(format!(
            "{name}: signing the host key failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn read(p: &Path) -> Result<String, FleetError> {
    fs::read_to_string(p).map_err(|e| FleetError::io(p.display(), e))
}

fn mkdir(p: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<(), FleetError> {
    match fs::create_dir(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(FleetError::io(p.display(), e)),
    }
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(|e| FleetError::io(p.display(), e))?;
    if let Some((uid, gid)) = owner {
        chown(p, Some(uid), Some(gid)).map_err(|e| FleetError::io(p.display(), e))?;
    }
    Ok(())
}

fn write_file(p: &Path, content: &[u8], mode: u32) -> Result<(), FleetError> {
    fs::write(p, content).map_err(|e| FleetError::io(p.display(), e))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .map_err(|e| FleetError::io(p.display(), e))
}

/// `HOME` (0700), `HOME/.ssh` (0700) and `authorized_keys` (0600) holding `pubkey`, owned by
/// `owner` (root when None).
fn write_authorized(
    home: &Path,
    pubkey: &str,
    owner: Option<(u32, u32)>,
) -> Result<(), FleetError> {
    mkdir(home, 0o700, owner)?;
    let ssh = home.join(".ssh");
    mkdir(&ssh, 0o700, owner)?;
    let ak = ssh.join("authorized_keys");
    write_file(&ak, pubkey.as_bytes(), 0o600)?;
    if let Some((uid, gid)) = owner {
        chown(&ak, Some(uid), Some(gid)).map_err(|e| FleetError::io(ak.display(), e))?;
    }
    Ok(())
}

/// Where host `hdir` keeps its copy of private directory `d` (`/srv` → `HDIR/fs/srv`).
fn private_source(hdir: &Path, d: &Path) -> PathBuf {
    hdir.join("fs").join(d.strip_prefix("/").unwrap_or(d))
}

/// Validate [`FleetBuilder::private_dir`]s (see there for the rules).
fn check_private_dirs(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, FleetError> {
    const SYSTEM: &[&str] = &[
        "/", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
        "/sys", "/dev", "/run", "/var", "/tmp", "/boot", "/home", "/root",
    ];
    let mut out = Vec::new();
    for d in dirs {
        let clean: PathBuf = d.components().collect();
        let bad = !clean.is_absolute()
            || clean
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            || SYSTEM.iter().any(|s| clean == Path::new(s))
            || clean.starts_with("/home")
            || clean.starts_with("/root")
            || clean.starts_with("/proc")
            || clean.starts_with("/sys")
            || clean.starts_with("/dev");
        if bad {
            return Err(FleetError::Setup(format!(
                "{} cannot be a per-host directory (absolute, not a top-level system directory, not under /home, /root, /proc, /sys, /dev)",
                d.display()
            )));
        }
        if let Some(other) = out
            .iter()
            .find(|o: &&PathBuf| o.starts_with(&clean) || clean.starts_with(o))
        {
            if *other == clean {
                continue;
            }
            return Err(FleetError::Setup(format!(
                "per-host directories {} and {} are nested; pick one",
                other.display(),
                clean.display()
            )));
        }
        out.push(clean);
    }
    Ok(out)
}

/// Marker file in a fleet directory: the PID of the process that owns it.
const MARKER: &str = ".sshfleet-testfleet";

/// Remove `sshfleet-fleet-*` directories in `base` left by owners that died without
/// teardown (their hosts died with them, see the module doc). Kept fleets
/// ([`FleetBuilder::keep`]) have no marker and are never removed.
fn remove_stale_fleet_dirs(base: &Path) {
    let Ok(rd) = fs::read_dir(base) else {
        return;
    };
    for e in rd.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .starts_with("sshfleet-fleet-")
        {
            continue;
        }
        let owner = fs::read_to_string(e.path().join(MARKER))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = owner
            && !procs::exists(pid)
            && procs::mounts_mentioning(&e.path().display().to_string()).is_empty()
        {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Create the fleet directory (see [`FleetBuilder::dir`]) and check that it will still be
/// visible inside the hosts' namespaces.
fn make_fleet_dir(want: Option<&Path>) -> Result<PathBuf, FleetError> {
    let dir = match want {
        None => {
            let base = std::env::temp_dir();
            remove_stale_fleet_dirs(&base);
            let mut n = 0u32;
            loop {
                let d = base.join(format!("sshfleet-fleet-{}-{n}", std::process::id()));
                match fs::create_dir(&d) {
                    Ok(()) => break d,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 10_000 => n += 1,
                    Err(e) => return Err(FleetError::io(d.display(), e)),
                }
            }
        }
        Some(d) => {
            if d.exists() {
                let reusable = fs::read_dir(d)
                    .map_err(|e| FleetError::io(d.display(), e))?
                    .next()
                    .is_none()
                    || fs::read_to_string(d.join(MARKER))
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok())
                        .is_some_and(|pid| !procs::exists(pid));
                if !reusable {
                    return Err(FleetError::Setup(format!(
                        "fleet directory {} exists and is neither empty nor a stopped fleet's directory",
                        d.display()
                    )));
                }
                fs::remove_dir_all(d).map_err(|e| FleetError::io(d.display(), e))?;
            }
            fs::create_dir_all(d).map_err(|e| FleetError::io(d.display(), e))?;
            d.to_path_buf()
        }
    };
    let dir = dir
        .canonicalize()
        .map_err(|e| FleetError::io(dir.display(), e))?;
    for hidden in ["/home", "/root", "/run"] {
        if dir.starts_with(hidden) {
            let _ = fs::remove_dir_all(&dir);
            return Err(FleetError::Setup(format!(
                "fleet directory {} is under {hidden}, which each host replaces with its own; choose another",
                dir.display()
            )));
        }
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| FleetError::io(dir.display(), e))?;
    fs::write(dir.join(MARKER), format!("{}\n", std::process::id()))
        .map_err(|e| FleetError::io(dir.display(), e))?;
    Ok(dir)
}

/// `n` distinct free ports on 127.0.0.1, below the ephemeral range when possible (so client
/// source ports of busy tests do not collide with them). Each is checked by binding it; all
/// are held until every one is chosen so they are distinct.
fn pick_ports(n: usize) -> Result<Vec<u16>, FleetError> {
    let (lo, hi) = port_window();
    let mut held = Vec::with_capacity(n);
    let mut tries = 0usize;
    while held.len() < n {
        tries += 1;
        let listener = if tries > 50 * n + 200 {
            std::net::TcpListener::bind(("127.0.0.1", 0))
        } else {
            let port = lo + (random_u32() % u32::from(hi - lo)) as u16;
            std::net::TcpListener::bind(("127.0.0.1", port))
        };
        if let Ok(l) = listener {
            held.push(l);
        }
        if tries > 100 * n + 1000 {
            return Err(FleetError::Setup("no free ports on 127.0.0.1".into()));
        }
    }
    held.iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| FleetError::io("local_addr", e))
        })
        .collect()
}

/// Ports between 10000 and the start of the kernel's ephemeral range.
fn port_window() -> (u16, u16) {
    let eph_lo = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if eph_lo > 12000 {
        (10000, eph_lo)
    } else {
        (40000, 60000)
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 4 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return t.subsec_nanos() ^ std::process::id().rotate_left(16);
    }
    u32::from_ne_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(dirs: &[&str]) -> Result<Vec<PathBuf>, FleetError> {
        check_private_dirs(&dirs.iter().map(PathBuf::from).collect::<Vec<_>>())
    }

    #[test]
    fn private_dirs_allow_srv_and_subdirs_of_system_dirs() {
        assert_eq!(
            check(&["/srv", "/etc/pki/", "/srv"]).unwrap(),
            [PathBuf::from("/srv"), PathBuf::from("/etc/pki")]
        );
    }

    #[test]
    fn private_dirs_refuse_system_relative_and_nested() {
        for bad in [
            "/",
            "/etc",
            "/usr",
            "/tmp",
            "/var",
            "srv",
            "/home/x",
            "/root/y",
            "/srv/../etc",
        ] {
            assert!(check(&[bad]).is_err(), "{bad} must be refused");
        }
        let err = check(&["/srv", "/srv/pki"]).unwrap_err().to_string();
        assert!(err.contains("nested"), "{err}");
    }

    #[test]
    fn private_source_mirrors_the_path() {
        assert_eq!(
            private_source(Path::new("/f/host01"), Path::new("/etc/pki")),
            PathBuf::from("/f/host01/fs/etc/pki")
        );
    }
}
