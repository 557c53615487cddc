//! [`Connector`] and [`Session`]: one authenticated russh connection per host.
//!
//! Connecting: resolve, TCP connect with `TCP_NODELAY`, SSH handshake with our kex/cipher
//! preference and the host-key algorithms already known for the host first (as OpenSSH does,
//! so a host with an ecdsa entry is not refused for offering ed25519). At most
//! [`SshConfig::max_handshakes_per_endpoint`] connections per `address:port` are
//! unauthenticated at once (the rest queue; the slot is freed when authentication ends), so a
//! burst does not trip sshd's `MaxStartups` in the first place. A handshake that sshd still
//! drops or resets is retried with jittered exponential backoff (capped at 1 s) for
//! [`SshConfig::retry_window`], each attempt with its own connect timeout; a refused TCP
//! connect is retried only briefly and other errors never (see `Transience`). The host key
//! is checked in the handler *before* any authentication is sent. Authentication order: the
//! spec's key files, then the agent, then the default `~/.ssh/id_*` (only when the spec names
//! no key), or exactly one key for [`Connector::connect_with_key`].
//!
//! A spec with `ProxyJump`/`ProxyCommand` gets its byte stream from [`super::proxy`] instead
//! of TCP (a direct-tcpip channel of the shared hop session, or a child's stdio); everything
//! else (host key check, retries, authentication) is the same.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::{Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Preferred};

use super::keys::KeyStore;
use super::known_hosts::{self, KnownHosts, Verdict};
use super::proxy::{self, Bastion, Bastions, HopResolver, Keep, Route, Transport};
use super::{AgentSource, HostKeyError, SshConfig, SshError};
use crate::inventory::conn::{ConnSpec, HostKeyPolicy};
use crate::target::CommandOutput;

/// Error type of our russh handler: a transport error or a refused host key.
#[derive(Debug)]
pub enum HandlerError {
    Russh(russh::Error),
    HostKey(HostKeyError),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Russh(e)
    }
}

/// Host keys learned in this process (accept-new), so a second connection to the same host
/// does not append the entry again.
type Learned = Arc<Mutex<HashSet<(String, Vec<u8>)>>>;

/// The russh client handler: host key verification.
pub struct ClientHandler {
    /// The name looked up in known_hosts: `HostKeyAlias`, else `host` or `[host]:port`.
    name: String,
    /// The name a host certificate must list: `HostKeyAlias`, else the host connected to.
    principal: String,
    addr: String,
    port: u16,
    known: Arc<KnownHosts>,
    policy: HostKeyPolicy,
    learn_file: Option<PathBuf>,
    learned: Learned,
    /// Keyscan mode ([`Connector::scan_host_key`]): record what the host presents, accept it
    /// without checking (nothing is authenticated or sent over that connection).
    capture: Option<Arc<Mutex<Option<super::scan::Presented>>>>,
    /// The host keys the server announced after authentication (`hostkeys-00@openssh.com`).
    announced: Announced,
}

/// Host keys announced by the server (unproven until [`Session::prove_host_keys`]).
type Announced = Arc<Mutex<Option<Vec<russh::keys::PublicKey>>>>;

static LEARN_LOCK: Mutex<()> = Mutex::new(());

impl ClientHandler {
    /// A host certificate: trusted through `@cert-authority` (see [`super::certs`]).
    fn verify_certificate(&self, cert: &russh::keys::Certificate) -> Result<(), HostKeyError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let verdict = super::certs::check_host_certificate(
            &self.known,
            &self.name,
            &self.principal,
            cert,
            now,
        );
        match verdict.refusal() {
            None => Ok(()),
            Some(reason) => Err(HostKeyError::Certificate {
                name: self.name.clone(),
                key_id: cert.key_id().to_string(),
                reason,
            }),
        }
    }

    fn verify(&self, key: &PublicKeyOrCertificate) -> Result<(), HostKeyError> {
        if self.policy == HostKeyPolicy::Off {
            return Ok(());
        }
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(cert) => return self.verify_certificate(cert),
        };
        let blob = key
            .to_bytes()
            .map_err(|e| HostKeyError::Read(format!("cannot encode host key: {e}")))?;
        let key_type = key.algorithm().as_str().to_string();
        let offered_fp = known_hosts::fingerprint(&blob);
        let learned_key = (self.name.clone(), blob.clone());
        match self.known.check_name(&self.name, &blob) {
            Verdict::Known(_) => Ok(()),
            Verdict::Revoked(k) => Err(HostKeyError::Revoked {
                name: self.name.clone(),
                offered_fp,
                at: format!("{}:{}", k.path.display(), k.line),
            }),
            Verdict::Changed(expected) => Err(HostKeyError::Changed {
                name: self.name.clone(),
                offered_type: key_type,
                offered_fp,
                expected,
            }),
            Verdict::Unknown
                if self
                    .learned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&learned_key) =>
            {
                Ok(())
            }
            Verdict::Unknown => match (self.policy, &self.learn_file) {
                (HostKeyPolicy::AcceptNew, Some(path)) => {
                    let _g = LEARN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
                    let line = known_hosts::format_entry_for_name(&self.name, &key_type, &blob);
                    known_hosts::append_entry(path, &line).map_err(|e| HostKeyError::Learn {
                        name: self.name.clone(),
                        path: path.display().to_string(),
                        msg: e.to_string(),
                    })?;
                    self.learned
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(learned_key);
                    Ok(())
                }
                _ => Err(HostKeyError::Unknown {
                    name: self.name.clone(),
                    addr: self.addr.clone(),
                    port: self.port,
                    files: self
                        .known
                        .files
                        .iter()
                        .map(|f| f.path.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    offered_type: key_type,
                    offered_fp,
                }),
            },
        }
    }
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if let Some(c) = &self.capture {
            *c.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(super::scan::Presented::from(server_public_key));
            return Ok(true);
        }
        self.verify(server_public_key)
            .map(|()| true)
            .map_err(HandlerError::HostKey)
    }

    async fn openssh_ext_host_keys_announced(
        &mut self,
        keys: Vec<russh::keys::PublicKey>,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        *self.announced.lock().unwrap_or_else(|p| p.into_inner()) = Some(keys);
        Ok(())
    }
}

/// One authenticated SSH connection. Cheap to share (`Arc<Session>`); channels are opened
/// concurrently from `&self`.
pub struct Session {
    handle: client::Handle<ClientHandler>,
    /// Inventory name.
    pub host: String,
    /// `address:port` for messages.
    pub addr: String,
    /// The login user.
    pub user: String,
    /// How long connecting and authenticating took.
    pub timing: ConnectTiming,
    /// `SHA256:...` of the public key the server accepted (the certified key for a
    /// certificate); `None` after a password login.
    pub auth_key: Option<String>,
    /// What the transport needs alive (the hop session, the ProxyCommand child); dropped
    /// after `handle`.
    _keep: Option<Keep>,
    announced: Announced,
}

/// Where a connection's setup time went (shown per host with `-v`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectTiming {
    /// TCP connect and SSH handshake, including waiting for a handshake slot and retries.
    pub connect: Duration,
    /// User authentication.
    pub auth: Duration,
}

/// What [`drain`] collected from a channel.
pub(crate) struct Drained {
    /// Sending stdin and EOF: an error here explains a channel that closed early.
    pub sent: Result<(), russh::Error>,
    /// Output and exit status (`-1` when the channel closed without one).
    pub out: CommandOutput,
    /// The server answered the exec request with a failure.
    pub refused: bool,
}

/// Feed `stdin` (then EOF) to a channel whose command already runs, and collect its output
/// after what `out` holds already, until the channel closes.
pub(crate) async fn drain(
    channel: russh::Channel<client::Msg>,
    stdin: Option<Vec<u8>>,
    mut out: CommandOutput,
) -> Drained {
    out.status = -1;
    let (mut rd, wr) = channel.split();
    let writer = async {
        if let Some(data) = stdin
            && !data.is_empty()
        {
            wr.data(&data[..]).await?;
        }
        wr.eof().await
    };
    let reader = async {
        let mut refused = false;
        while let Some(msg) = rd.wait().await {
            match msg {
                ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                ChannelMsg::ExtendedData { data, ext: 1 } => out.stderr.extend_from_slice(&data),
                ChannelMsg::ExitStatus { exit_status } => out.status = exit_status as i32,
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.status = 128 + signal_number(&signal_name);
                    out.stderr.extend_from_slice(
                        format!("killed by signal {signal_name:?}\n").as_bytes(),
                    );
                }
                ChannelMsg::Failure => refused = true,
                _ => {}
            }
        }
        (out, refused)
    };
    let (sent, (out, refused)) = tokio::join!(writer, reader);
    Drained { sent, out, refused }
}

impl Session {
    /// Open a session channel.
    pub async fn channel(&self) -> Result<russh::Channel<client::Msg>, SshError> {
        self.handle
            .channel_open_session()
            .await
            .map_err(|e| SshError::Protocol(format!("{}: cannot open a channel: {e}", self.addr)))
    }

    /// Run a command line (already quoted for the remote shell) and collect its output.
    pub async fn exec(
        &self,
        command: &str,
        stdin: Option<Vec<u8>>,
    ) -> Result<CommandOutput, SshError> {
        let channel = self.channel().await?;
        let perr = |e: russh::Error| SshError::Protocol(format!("{}: exec: {e}", self.addr));
        channel.exec(true, command).await.map_err(perr)?;
        let Drained {
            sent: w,
            out,
            refused,
        } = drain(channel, stdin, CommandOutput::default()).await;
        if refused {
            return Err(SshError::Protocol(format!(
                "{}: the server refused to run the command",
                self.addr
            )));
        }
        if out.status == -1 {
            // The channel closed without an exit status: the connection died.
            return Err(match w {
                Err(e) => perr(e),
                Ok(()) => SshError::Protocol(format!(
                    "{}: connection closed before the command finished",
                    self.addr
                )),
            });
        }
        Ok(out)
    }

    /// The host keys the server announced after authentication (OpenSSH's
    /// `hostkeys-00@openssh.com`, which sshd sends once, before any channel data: after one
    /// command has run on the connection it has arrived). Unproven: see
    /// [`Session::prove_host_keys`]. None when the server announced nothing (yet).
    pub fn announced_host_keys(&self) -> Option<Vec<russh::keys::PublicKey>> {
        self.announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ask the server to prove it holds the private half of each of `keys`
    /// (`hostkeys-prove-00@openssh.com`, what OpenSSH's `UpdateHostKeys` does): each proof is
    /// a signature over this connection's session id, checked here.
    pub async fn prove_host_keys(&self, keys: Vec<russh::keys::PublicKey>) -> Result<(), SshError> {
        self.handle
            .hostkeys_prove(keys)
            .await
            .map_err(|e| SshError::Protocol(format!("{}: host key proof failed: {e}", self.addr)))
    }

    /// Is the connection gone?
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Say goodbye (best effort).
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// The number of a signal named in an exit-signal message (0 when unknown).
pub(crate) fn signal_number(sig: &russh::Sig) -> i32 {
    use russh::Sig::*;
    match sig {
        HUP => 1,
        INT => 2,
        QUIT => 3,
        ILL => 4,
        ABRT => 6,
        FPE => 8,
        KILL => 9,
        SEGV => 11,
        PIPE => 13,
        ALRM => 14,
        TERM => 15,
        USR1 => 10,
        _ => 0,
    }
}

/// How to authenticate.
#[derive(Debug, Clone)]
enum AuthMode<'a> {
    Default,
    OnlyKey(&'a Path),
    /// No authentication: the handshake only, offering `algorithms` (their certificate
    /// variants too when `certs`), recording the host key presented.
    Scan {
        algorithms: Vec<Algorithm>,
        certs: bool,
        capture: Arc<Mutex<Option<super::scan::Presented>>>,
    },
}

struct Inner {
    cfg: SshConfig,
    /// One semaphore per `address:port`: the unauthenticated connections in flight.
    endpoints: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    keys: KeyStore,
    known: Mutex<HashMap<Vec<PathBuf>, Arc<KnownHosts>>>,
    learned: Learned,
    /// `ProxyJump` hop → login spec (see [`HopResolver`]).
    hop_resolver: HopResolver,
    /// The shared hop sessions (used when `hops_via` is None).
    bastions: Bastions,
    /// Another connector whose hop sessions (and hop credentials) this one uses.
    hops_via: Option<Connector>,
}

/// Opens [`Session`]s. One per run, shared by every host job (clone is cheap): it owns the
/// configuration, the decrypted-key cache and the parsed known_hosts files.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Inner>,
}

impl Connector {
    pub fn new(cfg: SshConfig) -> Self {
        Self::build(cfg, Arc::new(proxy::inherit_from_target), None)
    }

    /// A connector whose `ProxyJump` hops are logged in to with the spec `hop_resolver`
    /// gives (the OpenSSH configuration resolver plugs in here; see [`HopResolver`]).
    pub fn with_hop_resolver(cfg: SshConfig, hop_resolver: HopResolver) -> Self {
        Self::build(cfg, hop_resolver, None)
    }

    /// A connector with its own settings (keys, agent) for targets that reaches them through
    /// `other`'s hop sessions, logged in with `other`'s settings: a rotation's verification
    /// login goes through the very bastion connection the normal one uses.
    pub fn sharing_hops_with(cfg: SshConfig, other: &Connector) -> Self {
        let root = other.hops_root().clone();
        Self::build(cfg, root.inner.hop_resolver.clone(), Some(root))
    }

    fn build(cfg: SshConfig, hop_resolver: HopResolver, hops_via: Option<Connector>) -> Self {
        Connector {
            inner: Arc::new(Inner {
                keys: KeyStore::new(cfg.passphrase_env.clone(), cfg.interactive),
                cfg,
                endpoints: Mutex::default(),
                known: Mutex::default(),
                learned: Arc::default(),
                hop_resolver,
                bastions: Bastions::default(),
                hops_via,
            }),
        }
    }

    /// The connector that owns (and logs in to) the hop sessions.
    fn hops_root(&self) -> &Connector {
        self.inner.hops_via.as_ref().unwrap_or(self)
    }

    /// The login specs of every `ProxyJump` hop on the way to `spec`, outermost first.
    pub fn hop_specs(&self, spec: &ConnSpec) -> Result<Vec<ConnSpec>, SshError> {
        proxy::hop_specs(&self.inner.hop_resolver, spec).map_err(|e| SshError::Proxy {
            addr: format!("{}:{}", spec.address, spec.port),
            msg: e.to_string(),
        })
    }

    /// Close the shared hop sessions (best effort; the end of a run).
    pub async fn close_hops(&self) {
        for b in self.hops_root().inner.bastions.drain() {
            if let Some(proxy::HopState::Open(s)) = b.session.lock().await.take() {
                s.close().await;
            }
        }
    }

    /// The authenticated session of hop `b`: opened on first use, reopened when it has
    /// dropped; a failure to open it is remembered (every host behind it gets it at once).
    fn hop_session<'a>(
        &'a self,
        b: &'a Bastion,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Arc<Session>, SshError>> + Send + 'a>,
    > {
        Box::pin(async move {
            let mut st = b.session.lock().await;
            match &*st {
                Some(proxy::HopState::Open(s)) if !s.is_closed() => return Ok(s.clone()),
                Some(proxy::HopState::Failed(e)) => return Err(e.clone()),
                _ => {}
            }
            match self.hops_root().connect(&b.spec).await {
                Ok(s) => {
                    let s = Arc::new(s);
                    *st = Some(proxy::HopState::Open(s.clone()));
                    Ok(s)
                }
                Err(e) => {
                    let e = proxy::via(&b.label, e);
                    *st = Some(proxy::HopState::Failed(e.clone()));
                    Err(e)
                }
            }
        })
    }

    pub fn config(&self) -> &SshConfig {
        &self.inner.cfg
    }

    /// Connect and authenticate with the spec's keys, the agent, then the default keys.
    pub async fn connect(&self, spec: &ConnSpec) -> Result<Session, SshError> {
        self.connect_inner(spec, AuthMode::Default, spec).await
    }

    /// Connect and authenticate offering **only** `key` (no agent, no other file). Used to
    /// prove that a new key works before old ones are removed.
    pub async fn connect_with_key(&self, spec: &ConnSpec, key: &Path) -> Result<Session, SshError> {
        self.connect_inner(spec, AuthMode::OnlyKey(key), spec).await
    }

    /// [`Self::connect_with_key`] to `spec` through the proxy route (`ProxyJump` hops with
    /// their credentials, or `ProxyCommand`) that `normal` — the host's normal connection
    /// spec — takes: the proof that a new key works goes the same way as the normal login,
    /// through the same shared bastion session, even when `spec` offers other keys.
    pub async fn connect_with_key_routed(
        &self,
        spec: &ConnSpec,
        key: &Path,
        normal: &ConnSpec,
    ) -> Result<Session, SshError> {
        self.connect_inner(spec, AuthMode::OnlyKey(key), normal)
            .await
    }

    /// Keyscan, as `ssh-keyscan` does it: a handshake offering only `algorithms` (and their
    /// certificate variants when `certs`), through the spec's normal route (TCP, ProxyJump,
    /// ProxyCommand), returning the host key (or certificate) the host presents. Nothing is
    /// checked against known_hosts and no authentication is attempted.
    pub async fn scan_host_key(
        &self,
        spec: &ConnSpec,
        algorithms: Vec<Algorithm>,
        certs: bool,
    ) -> Result<super::scan::Presented, SshError> {
        let capture = Arc::new(Mutex::new(None));
        let mode = AuthMode::Scan {
            algorithms,
            certs,
            capture: capture.clone(),
        };
        let session = self.connect_inner(spec, mode, spec).await?;
        session.close().await;
        let got = capture.lock().unwrap_or_else(|p| p.into_inner()).take();
        got.ok_or_else(|| {
            SshError::Protocol(format!("{}: no host key in the handshake", session.addr))
        })
    }

    /// The known_hosts files a connection to `spec` checks: (user files — the first is where
    /// new keys are written —, global files), as `UserKnownHostsFile`/`GlobalKnownHostsFile`.
    pub fn known_hosts_files(&self, spec: &ConnSpec) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let cfg = &self.inner.cfg;
        let user = if spec.known_hosts_files.is_empty() {
            cfg.default_known_hosts.clone()
        } else {
            spec.known_hosts_files.clone()
        };
        let global = if spec.global_known_hosts_files.is_empty() {
            cfg.global_known_hosts.clone()
        } else {
            spec.global_known_hosts_files.clone()
        };
        (user, global)
    }

    fn known_hosts(&self, files: &[PathBuf]) -> Result<Arc<KnownHosts>, SshError> {
        let mut cache = self.inner.known.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cache.get(files) {
            return Ok(k.clone());
        }
        let k = Arc::new(KnownHosts::load(files).map_err(HostKeyError::Read)?);
        cache.insert(files.to_vec(), k.clone());
        Ok(k)
    }

    async fn connect_inner(
        &self,
        spec: &ConnSpec,
        auth: AuthMode<'_>,
        route_spec: &ConnSpec,
    ) -> Result<Session, SshError> {
        let cfg = &self.inner.cfg;
        let addr = format!("{}:{}", spec.address, spec.port);
        let route = proxy::route_of(route_spec).map_err(|e| SshError::Proxy {
            addr: addr.clone(),
            msg: e.to_string(),
        })?;
        // Through a hop: its shared session, and a place in its queue of opens.
        let (via, hop_slot) =
            match &route {
                Route::Jump(hops) => {
                    let root = self.hops_root();
                    let hop = proxy::last_hop_spec(&root.inner.hop_resolver, hops, route_spec);
                    let b = root
                        .inner
                        .bastions
                        .entry(&hop, root.inner.cfg.max_opens_per_bastion);
                    let slot =
                        b.opens.clone().acquire_owned().await.map_err(|_| {
                            SshError::Protocol(format!("{addr}: connector shut down"))
                        })?;
                    (Some(b), Some(slot))
                }
                _ => (None, None),
            };
        let timeout = spec.connect_timeout.unwrap_or(cfg.connect_timeout);
        let policy = spec.host_key_policy.unwrap_or(cfg.default_policy);
        let user = spec
            .user
            .clone()
            .unwrap_or_else(|| cfg.default_user.clone());
        let (user_files, global_files) = self.known_hosts_files(spec);
        let mut files = user_files.clone();
        files.extend(global_files);
        let known = self.known_hosts(&files)?;
        let (kh_host, kh_port) = known_hosts_name(spec);
        // With HostKeyAlias, keys are checked and learned under the alias (port ignored).
        let lookup_name = known_hosts::host_key_name(kh_host, kh_port);
        let announced: Announced = Arc::new(Mutex::new(None));
        let handler = || ClientHandler {
            name: lookup_name.clone(),
            principal: spec
                .host_key_alias
                .clone()
                .unwrap_or_else(|| spec.address.clone()),
            addr: kh_host.to_string(),
            port: kh_port,
            known: known.clone(),
            policy,
            learn_file: user_files.first().cloned(),
            learned: self.inner.learned.clone(),
            capture: match &auth {
                AuthMode::Scan { capture, .. } => Some(capture.clone()),
                _ => None,
            },
            announced: announced.clone(),
        };
        let mut config = self.client_config(&known, spec, &lookup_name);
        if let AuthMode::Scan {
            algorithms, certs, ..
        } = &auth
        {
            config.preferred.key = Cow::Owned(algorithms.clone());
            config.preferred.host_key_certificates = if *certs {
                Cow::Owned(algorithms.clone())
            } else {
                Cow::Owned(vec![])
            };
        }
        let config = Arc::new(config);
        let started = Instant::now();
        let transport = match (&route, &via) {
            (Route::Jump(_), Some(b)) => Via::Hop(b),
            (Route::Command(c), _) => Via::Command {
                cmd: proxy::expand_proxy_command(c, &spec.address, spec.port, &user, &spec.address)
                    .map_err(|e| SshError::Proxy {
                        addr: addr.clone(),
                        msg: e.to_string(),
                    })?,
            },
            _ => Via::Tcp,
        };
        let Handshake {
            mut handle,
            slot,
            deadline,
            keep,
        } = self
            .handshake(spec, &addr, config, handler, timeout, &transport)
            .await?;
        let connected = Instant::now();
        // Keyscan: the host key is in `capture`; no authentication.
        let auth_key = if matches!(auth, AuthMode::Scan { .. }) {
            None
        } else {
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(2));
            tokio::time::timeout(
                remaining,
                self.authenticate(&mut handle, &user, &addr, spec, auth),
            )
            .await
            .map_err(|_| SshError::Timeout {
                addr: addr.clone(),
                secs: timeout.as_secs(),
            })??
        };
        // Authenticated (or scanned): sshd no longer counts us against MaxStartups.
        drop(slot);
        drop(hop_slot);
        Ok(Session {
            handle,
            host: spec.name.clone(),
            addr,
            user,
            timing: ConnectTiming {
                connect: connected - started,
                auth: connected.elapsed(),
            },
            auth_key,
            _keep: keep,
            announced,
        })
    }

    fn client_config(
        &self,
        known: &KnownHosts,
        spec: &ConnSpec,
        lookup_name: &str,
    ) -> client::Config {
        let cfg = &self.inner.cfg;
        let mut kex: Vec<russh::kex::Name> = cfg
            .kex
            .iter()
            .filter_map(|n| russh::kex::Name::try_from(n.as_str()).ok())
            .collect();
        kex.push(russh::kex::EXTENSION_SUPPORT_AS_CLIENT);
        kex.push(russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT);
        let mut preferred = Preferred {
            kex: Cow::Owned(kex),
            ..Preferred::default()
        };
        let ciphers: Vec<russh::cipher::Name> = cfg
            .ciphers
            .iter()
            .filter_map(|n| russh::cipher::Name::try_from(n.as_str()).ok())
            .collect();
        if !ciphers.is_empty() {
            preferred.cipher = Cow::Owned(ciphers);
        }
        // Host key algorithms already known for this host first (stable order otherwise).
        let known_types = known.key_types_for_name(lookup_name);
        if !known_types.is_empty() {
            let rank = |a: &Algorithm| {
                known_types
                    .iter()
                    .position(|t| {
                        t == a.as_str() || (t == "ssh-rsa" && matches!(a, Algorithm::Rsa { .. }))
                    })
                    .unwrap_or(usize::MAX)
            };
            let mut keys = preferred.key.to_vec();
            keys.sort_by_key(rank);
            preferred.key = Cow::Owned(keys);
        }
        // A CA trusted for this host: ask for host certificates first (as OpenSSH orders
        // them when it knows a CA), so the host proves itself with one.
        if !known.authorities_for(lookup_name).is_empty() {
            preferred.host_key_certificates = preferred.key.clone();
        }
        client::Config {
            preferred,
            nodelay: true,
            // ServerAliveInterval/CountMax from ssh_config, else the controller's keepalive.
            keepalive_interval: Some(spec.server_alive_interval.unwrap_or(cfg.keepalive)),
            keepalive_max: if spec.server_alive_interval.is_some() {
                spec.server_alive_count_max as usize
            } else {
                3
            },
            inactivity_timeout: None,
            ..Default::default()
        }
    }

    /// The handshake slot semaphore of an `address:port`.
    fn endpoint(&self, addr: &str) -> Arc<tokio::sync::Semaphore> {
        let mut map = self
            .inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(addr.to_string())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Semaphore::new(
                    self.inner.cfg.max_handshakes_per_endpoint.max(1),
                ))
            })
            .clone()
    }

    /// TCP connect + SSH handshake under an endpoint slot, retried while sshd drops the
    /// attempt (see [`RetrySchedule`]). Each attempt has `timeout` (not counting the wait for
    /// a slot); a timed-out attempt is not retried.
    async fn handshake(
        &self,
        spec: &ConnSpec,
        addr: &str,
        config: Arc<client::Config>,
        handler: impl Fn() -> ClientHandler,
        timeout: Duration,
        transport: &Via<'_>,
    ) -> Result<Handshake, SshError> {
        let slots = match transport {
            Via::Hop(b) => self.endpoint(&format!("{addr} via {}", b.label)),
            _ => self.endpoint(addr),
        };
        let mut schedule = RetrySchedule::new(self.inner.cfg.retry_window(timeout));
        let started = Instant::now();
        let mut queued = Duration::ZERO;
        loop {
            let t = Instant::now();
            let slot = slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| SshError::Protocol(format!("{addr}: connector shut down")))?;
            // The hop session (opened or reopened here; not counted in this attempt's time).
            let hop = match transport {
                Via::Hop(b) => {
                    let t = Instant::now();
                    let s = self.hops_root().hop_session(b).await?;
                    queued += t.elapsed();
                    Some((*b, s))
                }
                _ => None,
            };
            queued += t.elapsed();
            let deadline = Instant::now() + timeout;
            let attempt = async {
                let (stream, mut keep) = self.open_stream(spec, transport, hop.as_ref()).await?;
                match client::connect_stream(config.clone(), stream, handler()).await {
                    Ok(h) => Ok((h, keep)),
                    Err(HandlerError::HostKey(e)) => {
                        Err((e.to_string(), Transience::Fatal(e.into())))
                    }
                    Err(HandlerError::Russh(e)) => {
                        let mut msg = describe(&e);
                        let mut t = Transience::of_handshake(&e);
                        if let Some(Keep::Child(c)) = keep.as_mut() {
                            // A ProxyCommand that died is not sshd throttling us.
                            if let Some(status) = c.exited().await {
                                t = Transience::Permanent;
                                msg = format!(
                                    "ProxyCommand exited ({status}) during the handshake: {}",
                                    c.stderr_tail()
                                );
                            }
                        }
                        Err((msg, t))
                    }
                }
            };
            let (msg, transience) = match tokio::time::timeout(timeout, attempt).await {
                Err(_) => {
                    return Err(SshError::Timeout {
                        addr: addr.to_string(),
                        secs: timeout.as_secs(),
                    });
                }
                Ok(Ok((handle, keep))) => {
                    return Ok(Handshake {
                        handle,
                        slot,
                        deadline,
                        keep,
                    });
                }
                Ok(Err(e)) => e,
            };
            drop(slot);
            if let Transience::Fatal(e) = transience {
                return Err(e);
            }
            let spent = started.elapsed().saturating_sub(queued);
            match schedule.after_failure(&transience, spent) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    let n = schedule.attempts;
                    return Err(SshError::Connect {
                        addr: addr.to_string(),
                        msg: match transience {
                            Transience::Dropped if n > 1 => format!(
                                "{msg} (the server kept dropping the connection: {n} attempts \
                                 in {:.1}s; sshd MaxStartups?)",
                                spent.as_secs_f64()
                            ),
                            _ if n > 1 => format!("{msg} (after {n} attempts)"),
                            _ => msg,
                        },
                    });
                }
            }
        }
    }

    /// The byte stream of one attempt: TCP, a direct-tcpip channel of the hop session, or a
    /// ProxyCommand's stdio.
    async fn open_stream(
        &self,
        spec: &ConnSpec,
        transport: &Via<'_>,
        hop: Option<&(&Arc<Bastion>, Arc<Session>)>,
    ) -> Result<(Box<dyn Transport>, Option<Keep>), (String, Transience)> {
        match (transport, hop) {
            (Via::Hop(_), Some((b, s))) => {
                match s
                    .handle
                    .channel_open_direct_tcpip(
                        spec.address.clone(),
                        spec.port as u32,
                        "127.0.0.1",
                        0,
                    )
                    .await
                {
                    Ok(ch) => Ok((Box::new(ch.into_stream()), Some(Keep::Hop(s.clone())))),
                    Err(e) => {
                        let t = match &e {
                            // The hop could not reach the target: like a refused TCP connect.
                            russh::Error::ChannelOpenFailure(
                                russh::ChannelOpenFailure::ConnectFailed,
                            ) => Transience::Refused,
                            // The hop refused otherwise: final.
                            russh::Error::ChannelOpenFailure(_) => Transience::Permanent,
                            // The hop session is gone (or going): the next attempt reopens it.
                            _ => Transience::Dropped,
                        };
                        Err((
                            format!(
                                "the bastion {} could not open a channel to it: {}",
                                b.label,
                                proxy::channel_refusal(&e)
                            ),
                            t,
                        ))
                    }
                }
            }
            (Via::Command { cmd }, _) => match proxy::spawn_command(cmd) {
                Ok((stream, child)) => Ok((Box::new(stream), Some(Keep::Child(child)))),
                Err(e) => Err((
                    format!("cannot run ProxyCommand {cmd:?}: {e}"),
                    Transience::Permanent,
                )),
            },
            _ => match tokio::net::TcpStream::connect((spec.address.as_str(), spec.port)).await {
                Err(e) => Err((e.to_string(), Transience::of_connect(&e))),
                Ok(sock) => {
                    let _ = sock.set_nodelay(true);
                    Ok((Box::new(sock), None))
                }
            },
        }
    }

    async fn authenticate(
        &self,
        handle: &mut client::Handle<ClientHandler>,
        user: &str,
        addr: &str,
        spec: &ConnSpec,
        mode: AuthMode<'_>,
    ) -> Result<Option<String>, SshError> {
        let cfg = &self.inner.cfg;
        let mut tried: Vec<String> = Vec::new();
        let mut rsa_hash: Option<Option<HashAlg>> = None;
        let (files, use_agent, defaults): (Vec<PathBuf>, bool, bool) = match mode {
            AuthMode::OnlyKey(p) => (vec![p.to_path_buf()], false, false),
            // IdentitiesOnly: the given files (else the defaults), never the agent's keys.
            AuthMode::Scan { .. } => (vec![], false, false),
            AuthMode::Default => (
                spec.identity_files.clone(),
                !spec.identities_only,
                spec.identity_files.is_empty(),
            ),
        };
        let only = matches!(mode, AuthMode::OnlyKey(_));
        let mut candidates: Vec<(PathBuf, bool)> = files.into_iter().map(|p| (p, true)).collect();
        let explicit_count = candidates.len();
        if defaults {
            candidates.extend(cfg.default_identities.iter().map(|p| (p.clone(), false)));
        }
        let perr = |e: russh::Error| SshError::Connect {
            addr: addr.to_string(),
            msg: format!("during authentication: {}", describe(&e)),
        };
        for (i, (path, explicit)) in candidates.iter().enumerate() {
            // The agent goes after the explicit files and before the defaults.
            if i == explicit_count
                && use_agent
                && let Some(fp) = self
                    .try_agent(handle, user, spec, &mut tried, &mut rsa_hash)
                    .await?
            {
                return Ok(Some(fp));
            }
            let key = match self.inner.keys.load(path).await {
                Ok(k) => k,
                Err(e) if only => return Err(e),
                Err(e) => {
                    if *explicit {
                        tried.push(format!("{} (not usable: {e})", path.display()));
                    }
                    continue;
                }
            };
            let hash = if key.algorithm().is_rsa() {
                if rsa_hash.is_none() {
                    rsa_hash = Some(
                        handle
                            .best_supported_rsa_hash()
                            .await
                            .map_err(perr)?
                            .flatten(),
                    );
                }
                rsa_hash.flatten()
            } else {
                None
            };
            // Its certificates first (CertificateFile, then KEY-cert.pub), as OpenSSH does.
            for cert_path in super::certs::user_certificates(path, &spec.certificate_files) {
                match super::certs::load_user_cert(&cert_path, key.public_key().key_data()) {
                    Ok(Some(cert)) => {
                        let what = super::certs::describe(&cert);
                        let res = handle
                            .authenticate_openssh_cert(user, key.clone(), cert)
                            .await
                            .map_err(perr)?;
                        if res.success() {
                            return Ok(Some(
                                key.public_key().fingerprint(HashAlg::Sha256).to_string(),
                            ));
                        }
                        tried.push(format!("{} ({what}, refused)", cert_path.display()));
                    }
                    Ok(None) => {}
                    Err(e) => tried.push(format!("{} (not usable: {e})", cert_path.display())),
                }
            }
            let fp = key.public_key().fingerprint(HashAlg::Sha256);
            let res = handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key.clone(), hash))
                .await
                .map_err(perr)?;
            if res.success() {
                return Ok(Some(fp.to_string()));
            }
            tried.push(format!(
                "{} ({} {fp})",
                path.display(),
                key.algorithm().as_str()
            ));
        }
        if candidates.len() == explicit_count
            && use_agent
            && let Some(fp) = self
                .try_agent(handle, user, spec, &mut tried, &mut rsa_hash)
                .await?
        {
            return Ok(Some(fp));
        }
        if !only
            && let Some(pw) = &spec.password
            && super::auth::try_password(handle, user, pw, &mut tried)
                .await
                .map_err(perr)?
        {
            return Ok(None);
        }
        Err(SshError::Auth {
            methods: if !only && spec.password.is_some() {
                "publickey,password".into()
            } else {
                "publickey".into()
            },
            user: user.to_string(),
            addr: addr.to_string(),
            tried: if tried.is_empty() {
                "no keys (none given, no agent, no ~/.ssh/id_*)".to_string()
            } else {
                tried.join(", ")
            },
        })
    }

    /// Offer every agent key; `Ok(Some(fingerprint))` when one was accepted.
    async fn try_agent(
        &self,
        handle: &mut client::Handle<ClientHandler>,
        user: &str,
        spec: &ConnSpec,
        tried: &mut Vec<String>,
        rsa_hash: &mut Option<Option<HashAlg>>,
    ) -> Result<Option<String>, SshError> {
        use russh::keys::agent::AgentIdentity;
        use russh::keys::agent::client::AgentClient;
        // IdentityAgent (already expanded): `none`, `SSH_AUTH_SOCK`, `$VAR`, or a socket.
        let source = match spec.identity_agent.as_deref() {
            None => self.inner.cfg.agent.clone(),
            Some("none") => AgentSource::Disabled,
            Some("SSH_AUTH_SOCK") => AgentSource::Env,
            Some(v) if v.starts_with('$') => match std::env::var_os(&v[1..]) {
                Some(p) if !p.is_empty() => AgentSource::Path(PathBuf::from(p)),
                _ => AgentSource::Disabled,
            },
            Some(p) => AgentSource::Path(PathBuf::from(p)),
        };
        let sock = match &source {
            AgentSource::Disabled => return Ok(None),
            AgentSource::Path(p) => p.clone(),
            AgentSource::Env => match std::env::var_os("SSH_AUTH_SOCK") {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => return Ok(None),
            },
        };
        let mut agent = match AgentClient::connect_uds(&sock).await {
            Ok(a) => a,
            Err(e) => {
                tried.push(format!("agent {} (unavailable: {e})", sock.display()));
                return Ok(None);
            }
        };
        let ids = match agent.request_identities().await {
            Ok(ids) => ids,
            Err(e) => {
                tried.push(format!("agent {} (error: {e})", sock.display()));
                return Ok(None);
            }
        };
        let mut n = 0;
        for id in ids {
            let key = match id {
                AgentIdentity::PublicKey { key, .. } => key,
                AgentIdentity::Certificate { certificate, .. } => {
                    // Agent-held certificates (ssh-add with KEY-cert.pub beside KEY).
                    n += 1;
                    let what = super::certs::describe(&certificate);
                    let fp = certificate
                        .public_key()
                        .fingerprint(HashAlg::Sha256)
                        .to_string();
                    match handle
                        .authenticate_certificate_with(user, certificate, None, &mut agent)
                        .await
                    {
                        Ok(r) if r.success() => return Ok(Some(fp)),
                        Ok(_) => tried.push(format!("agent {what} (refused)")),
                        Err(e) => tried.push(format!("agent {what} (signing failed: {e})")),
                    }
                    continue;
                }
            };
            n += 1;
            let hash = if key.algorithm().is_rsa() {
                if rsa_hash.is_none() {
                    *rsa_hash = Some(
                        handle
                            .best_supported_rsa_hash()
                            .await
                            .map_err(|e| SshError::Protocol(describe(&e)))?
                            .flatten(),
                    );
                }
                rsa_hash.flatten()
            } else {
                None
            };
            let fp = key.fingerprint(HashAlg::Sha256).to_string();
            match handle
                .authenticate_publickey_with(user, key, hash, &mut agent)
                .await
            {
                Ok(r) if r.success() => return Ok(Some(fp)),
                Ok(_) => {}
                Err(e) => {
                    tried.push(format!("agent key (signing failed: {e})"));
                }
            }
        }
        tried.push(format!("agent {} ({n} keys)", sock.display()));
        Ok(None)
    }
}

/// A finished handshake: the (not yet authenticated) connection, its endpoint slot (held
/// until authentication ends) and the deadline of this attempt.
struct Handshake {
    handle: client::Handle<ClientHandler>,
    slot: tokio::sync::OwnedSemaphorePermit,
    deadline: Instant,
    keep: Option<Keep>,
}

/// Where an attempt's byte stream comes from.
enum Via<'a> {
    Tcp,
    /// A direct-tcpip channel of this hop's shared session.
    Hop(&'a Arc<Bastion>),
    /// This ProxyCommand (tokens expanded).
    Command {
        cmd: String,
    },
}

/// Attempts to make on a refused TCP connect: nothing listens (or sshd is restarting), so a
/// closed port is reported within a fraction of a second.
const REFUSED_ATTEMPTS: u32 = 3;

/// Backoff cap: once sshd's queue drains, a waiting connection notices within a second.
const BACKOFF_CAP: Duration = Duration::from_secs(1);

/// What a failed connection attempt means for retrying.
#[derive(Debug)]
enum Transience {
    /// sshd accepted and then closed or reset the connection before the handshake finished
    /// (`MaxStartups` throttling): retried with backoff within the retry window.
    Dropped,
    /// The TCP connect was refused: retried [`REFUSED_ATTEMPTS`] times at most.
    Refused,
    /// Nothing will change by retrying (DNS failure, unreachable network, no common
    /// algorithm, protocol error).
    Permanent,
    /// As `Permanent`, with its own error (a refused host key).
    Fatal(SshError),
}

impl Transience {
    /// A failed TCP connect.
    fn of_connect(e: &std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => Transience::Refused,
            // Reset/aborted during the TCP handshake, or no local port free for a moment.
            ConnectionReset | ConnectionAborted | AddrNotAvailable => Transience::Dropped,
            _ => Transience::Permanent,
        }
    }

    /// A failed SSH handshake on a connected socket.
    fn of_handshake(e: &russh::Error) -> Self {
        use std::io::ErrorKind::*;
        match e {
            russh::Error::Disconnect | russh::Error::HUP => Transience::Dropped,
            russh::Error::IO(io)
                if matches!(
                    io.kind(),
                    ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
                ) =>
            {
                Transience::Dropped
            }
            _ => Transience::Permanent,
        }
    }
}

/// Whether and when to try again after a failed attempt.
struct RetrySchedule {
    /// Time (attempts and waits, not the wait for an endpoint slot) allowed for retrying.
    window: Duration,
    /// Failed attempts so far.
    attempts: u32,
}

impl RetrySchedule {
    fn new(window: Duration) -> Self {
        RetrySchedule {
            window,
            attempts: 0,
        }
    }

    /// Record a failed attempt; `Some(wait)` to try again after `wait`, `None` to give up.
    /// `spent` is the time used so far.
    fn after_failure(&mut self, t: &Transience, spent: Duration) -> Option<Duration> {
        self.attempts += 1;
        let wait = backoff(self.attempts);
        match t {
            Transience::Dropped if spent + wait < self.window => Some(wait),
            Transience::Refused if self.attempts < REFUSED_ATTEMPTS => Some(wait),
            _ => None,
        }
    }
}

fn describe(e: &russh::Error) -> String {
    match e {
        russh::Error::Disconnect | russh::Error::HUP => {
            "connection closed by the remote host during the handshake".to_string()
        }
        other => other.to_string(),
    }
}

/// Jittered exponential backoff after the `attempt`-th failure: 50 ms · 2^(attempt-1), capped
/// at [`BACKOFF_CAP`], uniformly in [½, 1]× that (so a burst that failed together does not
/// come back together).
fn backoff(attempt: u32) -> Duration {
    let cap = BACKOFF_CAP.as_millis() as u64;
    let base = 50u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap);
    let half = base / 2;
    Duration::from_millis(half + jitter() % (base - half + 1))
}

/// A cheap per-process pseudo-random number (jitter and temp names; not for secrets).
pub(crate) fn jitter() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        ^ ((std::process::id() as u64) << 32);
    let mut x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ seed;
    // splitmix64
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The name host keys are looked up and recorded under: `HostKeyAlias` as is (OpenSSH
/// then ignores the port), else `[address]:port`.
/// The name and port looked up in known_hosts: `HostKeyAlias` (port ignored), else the
/// address and port.
pub fn known_hosts_name(spec: &ConnSpec) -> (&str, u16) {
    match &spec.host_key_alias {
        Some(a) => (a.as_str(), 22),
        None => (spec.address.as_str(), spec.port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{Error as IoError, ErrorKind};

    fn dropped() -> Transience {
        Transience::of_handshake(&russh::Error::IO(IoError::from(ErrorKind::ConnectionReset)))
    }

    #[test]
    fn backoff_grows_from_50ms_to_a_1s_cap_with_jitter() {
        for attempt in 1..40 {
            let base = (50u64 << (attempt - 1).min(16)).min(1000);
            for _ in 0..50 {
                let d = backoff(attempt);
                assert!(d <= BACKOFF_CAP, "{attempt}: {d:?}");
                assert!(
                    d >= Duration::from_millis(base / 2) && d <= Duration::from_millis(base),
                    "{attempt}: {d:?} not in [{}, {base}] ms",
                    base / 2
                );
            }
        }
        assert!(backoff(1) <= Duration::from_millis(50));
        assert!(backoff(6) >= Duration::from_millis(500));
        // Jittered: a burst that failed together does not retry in lockstep.
        let waits: HashSet<Duration> = (0..50).map(|_| backoff(8)).collect();
        assert!(waits.len() > 10, "{waits:?}");
    }

    #[test]
    fn drops_and_resets_are_transient_other_errors_are_not() {
        for e in [
            russh::Error::Disconnect,
            russh::Error::HUP,
            russh::Error::IO(IoError::from(ErrorKind::ConnectionReset)),
            russh::Error::IO(IoError::from(ErrorKind::UnexpectedEof)),
            russh::Error::IO(IoError::from(ErrorKind::BrokenPipe)),
            russh::Error::IO(IoError::from(ErrorKind::ConnectionAborted)),
        ] {
            assert!(
                matches!(Transience::of_handshake(&e), Transience::Dropped),
                "{e:?}"
            );
        }
        for e in [
            russh::Error::WrongServerSig,
            russh::Error::NoAuthMethod,
            russh::Error::NoCommonAlgo {
                kind: russh::AlgorithmKind::Kex,
                ours: vec![],
                theirs: vec![],
            },
            russh::Error::IO(IoError::from(ErrorKind::PermissionDenied)),
        ] {
            assert!(
                matches!(Transience::of_handshake(&e), Transience::Permanent),
                "{e:?}"
            );
        }
        let tcp = |k| Transience::of_connect(&IoError::from(k));
        assert!(matches!(
            tcp(ErrorKind::ConnectionRefused),
            Transience::Refused
        ));
        assert!(matches!(
            tcp(ErrorKind::ConnectionReset),
            Transience::Dropped
        ));
        // DNS failures and unreachable networks are final.
        let dns = IoError::other("failed to lookup address information: Name or service not known");
        assert!(matches!(
            Transience::of_connect(&dns),
            Transience::Permanent
        ));
        assert!(matches!(
            tcp(ErrorKind::HostUnreachable),
            Transience::Permanent
        ));
        assert!(matches!(
            tcp(ErrorKind::NetworkUnreachable),
            Transience::Permanent
        ));
    }

    #[test]
    fn drops_are_retried_until_the_window_is_used_up_not_for_a_fixed_count() {
        let window = Duration::from_secs(30);
        let mut s = RetrySchedule::new(window);
        let mut spent = Duration::ZERO;
        let mut waits = Vec::new();
        // Each attempt itself costs 20 ms (sshd accepts, then resets).
        while let Some(w) = s.after_failure(&dropped(), spent) {
            waits.push(w);
            spent += w + Duration::from_millis(20);
            assert!(spent < window + BACKOFF_CAP, "{spent:?}");
        }
        // Far more than the old 10 attempts, spread over (nearly) the whole window.
        assert!(waits.len() > 30, "{} retries", waits.len());
        assert!(
            spent > window - BACKOFF_CAP - Duration::from_millis(20),
            "{spent:?}"
        );
        // Exponential start, then capped at 1 s.
        assert!(waits[0] <= Duration::from_millis(50));
        assert!(waits[1] >= Duration::from_millis(50));
        assert!(waits.iter().all(|w| *w <= BACKOFF_CAP));
        assert!(waits[10..].iter().all(|w| *w >= BACKOFF_CAP / 2));
        // Nothing more once the window is used up.
        let mut s = RetrySchedule::new(window);
        assert_eq!(s.after_failure(&dropped(), window), None);
    }

    #[test]
    fn refused_and_permanent_errors_are_not_retried_for_long() {
        let mut s = RetrySchedule::new(Duration::from_secs(30));
        let mut total = Duration::ZERO;
        while let Some(w) = s.after_failure(&Transience::Refused, total) {
            total += w;
        }
        assert_eq!(s.attempts, REFUSED_ATTEMPTS);
        assert!(total < Duration::from_millis(200), "{total:?}");
        let mut s = RetrySchedule::new(Duration::from_secs(30));
        assert_eq!(
            s.after_failure(&Transience::Permanent, Duration::ZERO),
            None
        );
        assert_eq!(s.attempts, 1);
    }

    #[test]
    fn retry_window_is_30s_or_three_connect_timeouts() {
        let mut cfg = SshConfig::from_env();
        cfg.min_retry_window = Duration::from_secs(30);
        assert_eq!(
            cfg.retry_window(Duration::from_secs(2)),
            Duration::from_secs(30)
        );
        assert_eq!(
            cfg.retry_window(Duration::from_secs(10)),
            Duration::from_secs(30)
        );
        assert_eq!(
            cfg.retry_window(Duration::from_secs(20)),
            Duration::from_secs(60)
        );
    }

    #[tokio::test]
    async fn one_handshake_slot_semaphore_per_endpoint() {
        let mut cfg = SshConfig::from_env();
        cfg.max_handshakes_per_endpoint = 3;
        let c = Connector::new(cfg);
        let a = c.endpoint("127.0.0.1:22");
        assert!(Arc::ptr_eq(&a, &c.endpoint("127.0.0.1:22")));
        assert!(!Arc::ptr_eq(&a, &c.endpoint("127.0.0.1:2222")));
        assert_eq!(a.available_permits(), 3);
        let held: Vec<_> = (0..3)
            .map(|_| a.clone().try_acquire_owned().unwrap())
            .collect();
        assert!(
            a.clone().try_acquire_owned().is_err(),
            "a 4th handshake must wait"
        );
        assert_eq!(c.endpoint("127.0.0.1:2222").available_permits(), 3);
        drop(held);
        assert_eq!(a.available_permits(), 3);
        // 0 is treated as 1, never as "no connection at all".
        let mut cfg = SshConfig::from_env();
        cfg.max_handshakes_per_endpoint = 0;
        assert_eq!(Connector::new(cfg).endpoint("h:22").available_permits(), 1);
    }
}
