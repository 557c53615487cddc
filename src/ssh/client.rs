//! [`Connector`] and [`Session`]: one authenticated russh connection per host.
//!
//! Connecting: resolve, TCP connect with `TCP_NODELAY`, SSH handshake with our kex/cipher
//! preference and the host-key algorithms already known for the host first (as OpenSSH does,
//! so a host with an ecdsa entry is not refused for offering ed25519). A handshake that sshd
//! drops or resets (its `MaxStartups` throttling) is retried with jittered exponential backoff,
//! bounded by the connect timeout. The host key is checked in the handler *before* any
//! authentication is sent. Authentication order: the spec's key files, then the agent, then the
//! default `~/.ssh/id_*` (only when the spec names no key), or exactly one key for
//! [`Connector::connect_with_key`].

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
    name: String,
    addr: String,
    port: u16,
    known: Arc<KnownHosts>,
    policy: HostKeyPolicy,
    learn_file: Option<PathBuf>,
    learned: Learned,
}

static LEARN_LOCK: Mutex<()> = Mutex::new(());

impl ClientHandler {
    fn verify(&self, key: &PublicKeyOrCertificate) -> Result<(), HostKeyError> {
        if self.policy == HostKeyPolicy::Off {
            return Ok(());
        }
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Err(HostKeyError::Read(format!(
                "{}: the server presented a host certificate; certificates are not supported",
                self.name
            )));
        };
        let blob = key
            .to_bytes()
            .map_err(|e| HostKeyError::Read(format!("cannot encode host key: {e}")))?;
        let key_type = key.algorithm().as_str().to_string();
        let offered_fp = known_hosts::fingerprint(&blob);
        let learned_key = (self.name.clone(), blob.clone());
        match self.known.check(&self.addr, self.port, &blob) {
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
                    let line = known_hosts::format_entry(&self.addr, self.port, &key_type, &blob);
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
        self.verify(server_public_key)
            .map(|()| true)
            .map_err(HandlerError::HostKey)
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
            let mut out = CommandOutput {
                status: -1,
                stdout: Vec::new(),
                stderr: Vec::new(),
            };
            let mut refused = false;
            while let Some(msg) = rd.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        out.stderr.extend_from_slice(&data)
                    }
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
        let (w, (out, refused)) = tokio::join!(writer, reader);
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

fn signal_number(sig: &russh::Sig) -> i32 {
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
#[derive(Debug, Clone, Copy)]
enum AuthMode<'a> {
    Default,
    OnlyKey(&'a Path),
}

struct Inner {
    cfg: SshConfig,
    keys: KeyStore,
    known: Mutex<HashMap<Vec<PathBuf>, Arc<KnownHosts>>>,
    learned: Learned,
}

/// Opens [`Session`]s. One per run, shared by every host job (clone is cheap): it owns the
/// configuration, the decrypted-key cache and the parsed known_hosts files.
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Inner>,
}

impl Connector {
    pub fn new(cfg: SshConfig) -> Self {
        Connector {
            inner: Arc::new(Inner {
                keys: KeyStore::new(cfg.passphrase_env.clone(), cfg.interactive),
                cfg,
                known: Mutex::default(),
                learned: Arc::default(),
            }),
        }
    }

    pub fn config(&self) -> &SshConfig {
        &self.inner.cfg
    }

    /// Connect and authenticate with the spec's keys, the agent, then the default keys.
    pub async fn connect(&self, spec: &ConnSpec) -> Result<Session, SshError> {
        self.connect_inner(spec, AuthMode::Default).await
    }

    /// Connect and authenticate offering **only** `key` (no agent, no other file). Used to
    /// prove that a new key works before old ones are removed.
    pub async fn connect_with_key(&self, spec: &ConnSpec, key: &Path) -> Result<Session, SshError> {
        self.connect_inner(spec, AuthMode::OnlyKey(key)).await
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
    ) -> Result<Session, SshError> {
        let cfg = &self.inner.cfg;
        let addr = format!("{}:{}", spec.address, spec.port);
        if let Some(j) = &spec.proxy_jump {
            return Err(SshError::Connect {
                addr,
                msg: format!("ProxyJump ({j}) is not supported"),
            });
        }
        let timeout = spec.connect_timeout.unwrap_or(cfg.connect_timeout);
        let policy = spec.host_key_policy.unwrap_or(cfg.default_policy);
        let user = spec
            .user
            .clone()
            .unwrap_or_else(|| cfg.default_user.clone());
        let user_files = if spec.known_hosts_files.is_empty() {
            cfg.default_known_hosts.clone()
        } else {
            spec.known_hosts_files.clone()
        };
        let mut files = user_files.clone();
        files.extend(cfg.global_known_hosts.iter().cloned());
        let known = self.known_hosts(&files)?;
        let handler = || ClientHandler {
            name: known_hosts::host_key_name(&spec.address, spec.port),
            addr: spec.address.clone(),
            port: spec.port,
            known: known.clone(),
            policy,
            learn_file: user_files.first().cloned(),
            learned: self.inner.learned.clone(),
        };
        let config = Arc::new(self.client_config(&known, spec));
        let deadline = Instant::now() + timeout;
        let mut handle = tokio::time::timeout(
            timeout,
            self.handshake(spec, &addr, config, handler, deadline),
        )
        .await
        .map_err(|_| SshError::Timeout {
            addr: addr.clone(),
            secs: timeout.as_secs(),
        })??;
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
        })??;
        Ok(Session {
            handle,
            host: spec.name.clone(),
            addr,
            user,
        })
    }

    fn client_config(&self, known: &KnownHosts, spec: &ConnSpec) -> client::Config {
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
        let known_types = known.key_types_for(&spec.address, spec.port);
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
        client::Config {
            preferred,
            nodelay: true,
            keepalive_interval: Some(cfg.keepalive),
            keepalive_max: 3,
            inactivity_timeout: None,
            ..Default::default()
        }
    }

    /// TCP connect + SSH handshake, retried when sshd drops the attempt.
    async fn handshake(
        &self,
        spec: &ConnSpec,
        addr: &str,
        config: Arc<client::Config>,
        handler: impl Fn() -> ClientHandler,
        deadline: Instant,
    ) -> Result<client::Handle<ClientHandler>, SshError> {
        let max = self.inner.cfg.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match tokio::net::TcpStream::connect((spec.address.as_str(), spec.port)).await
            {
                Err(e) => {
                    // A refused TCP connect means nothing listens; retry once only.
                    let retry = e.kind() == std::io::ErrorKind::ConnectionRefused && attempt < 2;
                    (e.to_string(), retry)
                }
                Ok(sock) => {
                    let _ = sock.set_nodelay(true);
                    match client::connect_stream(config.clone(), sock, handler()).await {
                        Ok(h) => return Ok(h),
                        Err(HandlerError::HostKey(e)) => return Err(e.into()),
                        Err(HandlerError::Russh(e)) => {
                            let retry = retryable(&e);
                            (describe(&e), retry)
                        }
                    }
                }
            };
            let (msg, retry) = err;
            let wait = backoff(attempt);
            if !retry || attempt >= max || Instant::now() + wait >= deadline {
                return Err(SshError::Connect {
                    addr: addr.to_string(),
                    msg: if attempt > 1 {
                        format!("{msg} (after {attempt} attempts)")
                    } else {
                        msg
                    },
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    async fn authenticate(
        &self,
        handle: &mut client::Handle<ClientHandler>,
        user: &str,
        addr: &str,
        spec: &ConnSpec,
        mode: AuthMode<'_>,
    ) -> Result<(), SshError> {
        let cfg = &self.inner.cfg;
        let mut tried: Vec<String> = Vec::new();
        let mut rsa_hash: Option<Option<HashAlg>> = None;
        let (files, use_agent, defaults): (Vec<PathBuf>, bool, bool) = match mode {
            AuthMode::OnlyKey(p) => (vec![p.to_path_buf()], false, false),
            AuthMode::Default => (
                spec.identity_files.clone(),
                true,
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
                && self
                    .try_agent(handle, user, &mut tried, &mut rsa_hash)
                    .await?
            {
                return Ok(());
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
            let fp = key.public_key().fingerprint(HashAlg::Sha256);
            let res = handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key.clone(), hash))
                .await
                .map_err(perr)?;
            if res.success() {
                return Ok(());
            }
            tried.push(format!(
                "{} ({} {fp})",
                path.display(),
                key.algorithm().as_str()
            ));
        }
        if candidates.len() == explicit_count
            && use_agent
            && self
                .try_agent(handle, user, &mut tried, &mut rsa_hash)
                .await?
        {
            return Ok(());
        }
        Err(SshError::Auth {
            user: user.to_string(),
            addr: addr.to_string(),
            tried: if tried.is_empty() {
                "no keys (none given, no agent, no ~/.ssh/id_*)".to_string()
            } else {
                tried.join(", ")
            },
        })
    }

    /// Offer every agent key; `Ok(true)` when one was accepted.
    async fn try_agent(
        &self,
        handle: &mut client::Handle<ClientHandler>,
        user: &str,
        tried: &mut Vec<String>,
        rsa_hash: &mut Option<Option<HashAlg>>,
    ) -> Result<bool, SshError> {
        use russh::keys::agent::AgentIdentity;
        use russh::keys::agent::client::AgentClient;
        let sock = match &self.inner.cfg.agent {
            AgentSource::Disabled => return Ok(false),
            AgentSource::Path(p) => p.clone(),
            AgentSource::Env => match std::env::var_os("SSH_AUTH_SOCK") {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => return Ok(false),
            },
        };
        let mut agent = match AgentClient::connect_uds(&sock).await {
            Ok(a) => a,
            Err(e) => {
                tried.push(format!("agent {} (unavailable: {e})", sock.display()));
                return Ok(false);
            }
        };
        let ids = match agent.request_identities().await {
            Ok(ids) => ids,
            Err(e) => {
                tried.push(format!("agent {} (error: {e})", sock.display()));
                return Ok(false);
            }
        };
        let mut n = 0;
        for id in ids {
            let AgentIdentity::PublicKey { key, .. } = id else {
                continue;
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
            match handle
                .authenticate_publickey_with(user, key, hash, &mut agent)
                .await
            {
                Ok(r) if r.success() => return Ok(true),
                Ok(_) => {}
                Err(e) => {
                    tried.push(format!("agent key (signing failed: {e})"));
                }
            }
        }
        tried.push(format!("agent {} ({n} keys)", sock.display()));
        Ok(false)
    }
}

/// Errors worth another attempt: sshd closed or reset the connection during the handshake.
fn retryable(e: &russh::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        russh::Error::Disconnect | russh::Error::HUP => true,
        russh::Error::IO(io) => matches!(
            io.kind(),
            ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe | ConnectionRefused
        ),
        _ => false,
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

/// Jittered exponential backoff: 50 ms · 2^(n-1), capped at 2 s, uniformly in [½, 1]× that.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(6))
        .min(2000);
    let half = base / 2;
    Duration::from_millis(half + jitter() % (half + 1))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(2), "{d:?}");
            let base = 50u64 * (1 << (attempt - 1).min(6));
            assert!(
                d >= Duration::from_millis(base.min(2000) / 2),
                "{attempt} {d:?}"
            );
        }
    }

    #[test]
    fn handshake_drops_are_retryable_but_protocol_errors_are_not() {
        assert!(retryable(&russh::Error::Disconnect));
        assert!(retryable(&russh::Error::IO(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        assert!(!retryable(&russh::Error::WrongServerSig));
        assert!(!retryable(&russh::Error::NoAuthMethod));
    }
}
