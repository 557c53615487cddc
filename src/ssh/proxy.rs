//! Reaching a host that is not directly reachable: `ProxyJump` chains and `ProxyCommand`.
//!
//! Owns the pure parts (hop syntax, `%` token expansion, which route a [`ConnSpec`] asks for,
//! the default [`HopResolver`]) and the transport pieces the [`super::Connector`] plugs into
//! its handshake:
//!
//! - **ProxyJump** `[user@]host[:port][,...]` (or `none`): the last hop is resolved into a
//!   [`ConnSpec`] by the connector's [`HopResolver`] (its own user, keys, known_hosts, policy),
//!   with the preceding hops as its own `ProxyJump` (as `ssh -J a,b` runs `ssh -J a -W … b`),
//!   so chains recurse and every hop's host key is checked like any host's. The target's
//!   session then runs over a `direct-tcpip` channel of that hop's session.
//!   One authenticated session per hop identity ([`hop_key`]) is shared by every host behind
//!   it ([`Bastions`]): opened lazily by the first host that needs it, kept for the whole
//!   run (so a rotation logs in to the bastion once), reopened when it has dropped, and at
//!   most [`super::SshConfig::max_opens_per_bastion`] channel opens + handshakes +
//!   authentications go through one bastion at once.
//! - **ProxyCommand**: `/bin/sh -c 'exec CMD'` with `%h %p %r %n %%` expanded as ssh does;
//!   its stdin/stdout are the transport ([`ChildStream`]), its stderr is captured (last
//!   lines) for the error message, and the child is killed by PID and reaped when the
//!   session ends ([`ProxyChild`]). `ProxyCommand none` means a direct connection.
//!
//! If a spec carries both, `ProxyJump` is used (OpenSSH takes whichever comes first; the
//! configuration resolver decides which one a spec gets).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::{Session, SshError};
use crate::inventory::conn::ConnSpec;

/// Why a proxy setting cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("ProxyJump {value:?}: {msg}")]
    Jump { value: String, msg: String },
    #[error("ProxyCommand {value:?}: {msg}")]
    Command { value: String, msg: String },
}

/// One `ProxyJump` hop as written: `[user@]host[:port]` (or `ssh://[user@]host[:port]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHop {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl std::fmt::Display for JumpHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

/// Parse a `ProxyJump` value into its hops, first hop first; `none` gives no hops.
pub fn parse_jump_chain(value: &str) -> Result<Vec<JumpHop>, ProxyError> {
    let v = value.trim();
    let err = |msg: String| ProxyError::Jump {
        value: value.to_string(),
        msg,
    };
    if v.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    if v.is_empty() {
        return Err(err("empty".into()));
    }
    v.split(',')
        .map(|h| parse_hop(h.trim()).map_err(err))
        .collect()
}

fn parse_hop(s: &str) -> Result<JumpHop, String> {
    let s = s.strip_prefix("ssh://").unwrap_or(s);
    if s.is_empty() {
        return Err("empty hop".into());
    }
    // The user is everything before the last '@' (as OpenSSH's parse_user_host_port).
    let (user, hostport) = match s.rfind('@') {
        Some(i) => (Some(&s[..i]), &s[i + 1..]),
        None => (None, s),
    };
    if user.is_some_and(str::is_empty) {
        return Err(format!("{s}: empty user name"));
    }
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s}: unterminated [address]"))?;
        match after {
            "" => (h, None),
            p => (
                h,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{s}: junk after ]"))?,
                ),
            ),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            Some(_) => return Err(format!("{s}: an IPv6 address needs [brackets]")),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{s}: bad host name"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{s}: bad port {p:?}"))?,
        ),
    };
    Ok(JumpHop {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
    })
}

/// Render hops back into a `ProxyJump` value.
pub fn render_jump_chain(hops: &[JumpHop]) -> String {
    hops.iter()
        .map(JumpHop::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Expand the tokens ssh_config(5) allows in `ProxyCommand`: `%h` (host name to connect
/// to), `%p` (port), `%r` (remote user), `%n` (the host name as originally given), `%%`.
/// Any other token is an error, as in ssh.
pub fn expand_proxy_command(
    cmd: &str,
    host: &str,
    port: u16,
    user: &str,
    original: &str,
) -> Result<String, ProxyError> {
    let mut out = String::with_capacity(cmd.len());
    let mut it = cmd.chars();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(host),
            Some('p') => out.push_str(&port.to_string()),
            Some('r') => out.push_str(user),
            Some('n') => out.push_str(original),
            Some(other) => {
                return Err(ProxyError::Command {
                    value: cmd.to_string(),
                    msg: format!("unknown token %{other} (allowed: %h %p %r %n %%)"),
                });
            }
            None => {
                return Err(ProxyError::Command {
                    value: cmd.to_string(),
                    msg: "a lone % at the end".into(),
                });
            }
        }
    }
    Ok(out)
}

/// How a spec is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// TCP to `address:port`.
    Direct,
    /// Through these hops, first hop first (never empty).
    Jump(Vec<JumpHop>),
    /// Through this command (tokens not yet expanded).
    Command(String),
}

/// The route a spec asks for (`ProxyJump` wins over `ProxyCommand`; `none` is direct).
pub fn route_of(spec: &ConnSpec) -> Result<Route, ProxyError> {
    if let Some(j) = &spec.proxy_jump {
        let hops = parse_jump_chain(j)?;
        if !hops.is_empty() {
            return Ok(Route::Jump(hops));
        }
    }
    match spec.proxy_command.as_deref().map(str::trim) {
        None | Some("") => Ok(Route::Direct),
        Some(c) if c.eq_ignore_ascii_case("none") => Ok(Route::Direct),
        Some(c) => Ok(Route::Command(c.to_string())),
    }
}

/// The hook that turns a `ProxyJump` hop into the [`ConnSpec`] used to log in to it: its
/// address, port, user, keys, known_hosts and policy (and its own proxy settings, for the
/// first hop of a chain). The second argument is the target being reached through the hop.
/// The OpenSSH client configuration resolver plugs in here (a hop is resolved as `ssh HOP`
/// would resolve it); the default is [`inherit_from_target`].
pub type HopResolver = Arc<dyn Fn(&JumpHop, &ConnSpec) -> ConnSpec + Send + Sync>;

/// The default [`HopResolver`]: the hop's user/host/port as written (no user: the
/// controller's default user, as in OpenSSH), and the target's identity files, known_hosts
/// files, host key policy and connect timeout. Inheriting the target's keys differs from
/// OpenSSH, which logs in to a hop with the hop's own ssh_config entries only (see README).
pub fn inherit_from_target(hop: &JumpHop, target: &ConnSpec) -> ConnSpec {
    let mut s = ConnSpec::new(hop.to_string());
    s.address = hop.host.clone();
    s.port = hop.port.unwrap_or(22);
    s.user = hop.user.clone();
    s.identity_files = target.identity_files.clone();
    s.known_hosts_files = target.known_hosts_files.clone();
    s.host_key_policy = target.host_key_policy;
    s.connect_timeout = target.connect_timeout;
    s
}

/// The spec used to log in to the last hop of `hops` on the way to `target`: resolved by
/// `resolver`; the preceding hops (if any) become its `ProxyJump`.
pub fn last_hop_spec(resolver: &HopResolver, hops: &[JumpHop], target: &ConnSpec) -> ConnSpec {
    let (last, before) = hops.split_last().expect("a jump route has hops");
    let mut s = resolver(last, target);
    if !before.is_empty() {
        s.proxy_jump = Some(render_jump_chain(before));
        s.proxy_command = None;
    }
    s
}

/// Every hop's spec on the way to `target`, outermost first (empty for a direct route or a
/// ProxyCommand). Stops at `MAX_HOPS` (a resolver that loops).
pub fn hop_specs(resolver: &HopResolver, target: &ConnSpec) -> Result<Vec<ConnSpec>, ProxyError> {
    let mut out = Vec::new();
    let mut cur = target.clone();
    while let Route::Jump(hops) = route_of(&cur)? {
        if out.len() >= MAX_HOPS {
            return Err(ProxyError::Jump {
                value: target.proxy_jump.clone().unwrap_or_default(),
                msg: format!("more than {MAX_HOPS} hops (a loop in the configuration?)"),
            });
        }
        let hop = last_hop_spec(resolver, &hops, &cur);
        out.push(hop.clone());
        cur = hop;
    }
    out.reverse();
    Ok(out)
}

/// At most this many hops in one chain.
pub const MAX_HOPS: usize = 16;

/// What identifies one shared hop session: everything that decides where it goes and how it
/// logs in.
pub fn hop_key(s: &ConnSpec) -> String {
    format!(
        "{:?}",
        (
            &s.user,
            &s.address,
            s.port,
            &s.identity_files,
            &s.known_hosts_files,
            s.host_key_policy,
            &s.proxy_jump,
            &s.proxy_command,
        )
    )
}

/// One shared hop session, opened on demand.
pub(crate) struct Bastion {
    /// The hop's spec (as resolved).
    pub spec: ConnSpec,
    /// `user@address:port` for messages.
    pub label: String,
    /// The session once tried: open, or why it could not be opened.
    pub session: tokio::sync::Mutex<Option<HopState>>,
    /// Channel opens + handshakes + authentications through this hop at once.
    pub opens: Arc<tokio::sync::Semaphore>,
}

/// A hop session's state once it was tried.
pub(crate) enum HopState {
    Open(Arc<Session>),
    /// Opening it failed (after its own retries): every host behind it fails with this.
    Failed(SshError),
}

/// The shared hop sessions of one connector, by [`hop_key`].
#[derive(Default)]
pub(crate) struct Bastions {
    map: Mutex<HashMap<String, Arc<Bastion>>>,
}

impl Bastions {
    /// The entry for `spec` (created, not connected, when new).
    pub fn entry(&self, spec: &ConnSpec, bound: usize) -> Arc<Bastion> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(hop_key(spec))
            .or_insert_with(|| {
                Arc::new(Bastion {
                    label: format!(
                        "{}@{}",
                        spec.user.as_deref().unwrap_or("(default user)"),
                        if spec.port == 22 {
                            spec.address.clone()
                        } else {
                            format!("{}:{}", spec.address, spec.port)
                        }
                    ),
                    spec: spec.clone(),
                    session: tokio::sync::Mutex::new(None),
                    opens: Arc::new(tokio::sync::Semaphore::new(bound.max(1))),
                })
            })
            .clone()
    }

    /// Every open hop session (to close them at the end of a run).
    pub fn drain(&self) -> Vec<Arc<Bastion>> {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        m.drain().map(|(_, b)| b).collect()
    }
}

/// What an inner session keeps alive for as long as it lives.
pub(crate) enum Keep {
    /// The hop session carrying its channel.
    Hop(#[allow(dead_code)] Arc<Session>),
    /// The ProxyCommand child.
    Child(#[allow(dead_code)] ProxyChild),
}

/// A byte stream any russh transport can run over.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// A ProxyCommand child: killed (SIGKILL by PID) and reaped when dropped.
pub(crate) struct ProxyChild {
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The task copying the command's stderr into `stderr`; done at the pipe's EOF.
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
}

impl ProxyChild {
    /// The exit status, if the command has exited (or exits within a moment). Once it has,
    /// what it wrote to stderr is read to the end first (a moment at most), so that
    /// [`Self::stderr_tail`] has it: the exit can be seen before the reader got the last bytes.
    pub async fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let moment = std::time::Duration::from_millis(200);
        let child = self.child.as_mut()?;
        let status = tokio::time::timeout(moment, child.wait())
            .await
            .ok()?
            .ok()?;
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(moment, reader).await;
        }
        Some(status)
    }

    /// The last lines the command wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        stderr_tail(&self.stderr)
    }
}

fn stderr_tail(buf: &Mutex<Vec<u8>>) -> String {
    let b = buf.lock().unwrap_or_else(|p| p.into_inner());
    let text = String::from_utf8_lossy(&b);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// Most stderr a ProxyCommand may leave in memory.
const STDERR_CAP: usize = 16 * 1024;

impl Drop for ProxyChild {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) on the PID of our own child, not yet reaped (so not reused).
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(async move {
                    let _ = child.wait().await;
                });
            }
            Err(_) => {
                // No runtime: tokio's orphan reaper collects it on its next chance.
                let _ = child.try_wait();
            }
        }
    }
}

/// The stdio of a ProxyCommand child as one duplex stream.
pub(crate) struct ChildStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
}

impl AsyncRead for ChildStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for ChildStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

/// Start a ProxyCommand (already expanded) as ssh does: `$SHELL -c 'exec CMD'` (`/bin/sh`
/// when `SHELL` is unset; no second `exec` when the command starts with one).
pub(crate) fn spawn_command(expanded: &str) -> std::io::Result<(ChildStream, ProxyChild)> {
    let shell = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let line = match expanded.trim_start().strip_prefix("exec") {
        Some(rest) if rest.starts_with(char::is_whitespace) => expanded.to_string(),
        _ => format!("exec {expanded}"),
    };
    let mut cmd = tokio::process::Command::new(shell);
    cmd.arg("-c")
        .arg(line)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn()?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.start_kill();
        return Err(std::io::Error::other("no pipes to the ProxyCommand"));
    };
    let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
    let sink = buf.clone();
    let reader = tokio::spawn(async move {
        let mut chunk = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let mut b = sink.lock().unwrap_or_else(|p| p.into_inner());
            b.extend_from_slice(&chunk[..n]);
            if b.len() > STDERR_CAP {
                let cut = b.len() - STDERR_CAP;
                b.drain(..cut);
            }
        }
    });
    Ok((
        ChildStream { stdin, stdout },
        ProxyChild {
            child: Some(child),
            stderr: buf,
            stderr_reader: Some(reader),
        },
    ))
}

/// Why a hop refused to open a direct-tcpip channel, in words.
pub(crate) fn channel_refusal(e: &russh::Error) -> String {
    use russh::ChannelOpenFailure as F;
    match e {
        russh::Error::ChannelOpenFailure(F::ConnectFailed) => {
            "connect failed (nothing listens there, or it is unreachable from the bastion)".into()
        }
        russh::Error::ChannelOpenFailure(F::AdministrativelyProhibited) => {
            "administratively prohibited (AllowTcpForwarding/PermitOpen on the bastion)".into()
        }
        russh::Error::ChannelOpenFailure(F::ResourceShortage) => "resource shortage".into(),
        russh::Error::ChannelOpenFailure(F::UnknownChannelType) => {
            "direct-tcpip channels are not supported".into()
        }
        russh::Error::ChannelOpenFailure(F::Other { code, reason }) => {
            format!("refused ({code}: {reason})")
        }
        other => other.to_string(),
    }
}

/// An error through hop `label`, for the target's report.
pub(crate) fn via(label: &str, e: SshError) -> SshError {
    SshError::Hop {
        hop: label.to_string(),
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(user: Option<&str>, host: &str, port: Option<u16>) -> JumpHop {
        JumpHop {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn jump_chains_parse_as_openssh_writes_them() {
        assert_eq!(parse_jump_chain("none").unwrap(), []);
        assert_eq!(parse_jump_chain("NONE").unwrap(), []);
        assert_eq!(
            parse_jump_chain("bastion").unwrap(),
            [hop(None, "bastion", None)]
        );
        assert_eq!(
            parse_jump_chain("ops@b1:2222, b2,ssh://x@[::1]:22,[fe80::1]").unwrap(),
            [
                hop(Some("ops"), "b1", Some(2222)),
                hop(None, "b2", None),
                hop(Some("x"), "::1", Some(22)),
                hop(None, "fe80::1", None),
            ]
        );
        // The user is what precedes the last '@'.
        assert_eq!(
            parse_jump_chain("a@b@host").unwrap(),
            [hop(Some("a@b"), "host", None)]
        );
        for bad in [
            "", "a,,b", "@h", "h:0", "h:x", "h:70000", "::1", "[::1", "[::1]x",
        ] {
            let e = parse_jump_chain(bad);
            assert!(e.is_err(), "{bad:?} -> {e:?}");
        }
        let e = parse_jump_chain("b1,h:x").unwrap_err().to_string();
        assert!(e.contains("b1,h:x") && e.contains("bad port"), "{e}");
    }

    #[test]
    fn chains_render_back_to_the_same_value() {
        for v in ["b", "u@b:2200,c", "u@[::1]:22,[fe80::1]"] {
            assert_eq!(render_jump_chain(&parse_jump_chain(v).unwrap()), v);
        }
    }

    #[test]
    fn proxy_command_tokens_expand_as_ssh_does() {
        let e = |c| expand_proxy_command(c, "10.0.0.5", 2222, "deploy", "web1");
        assert_eq!(
            e("exec nc -X connect -x proxy:3128 %h %p").unwrap(),
            "exec nc -X connect -x proxy:3128 10.0.0.5 2222"
        );
        assert_eq!(
            e("ssh -W %h:%p %r@gw # %n 100%%").unwrap(),
            "ssh -W 10.0.0.5:2222 deploy@gw # web1 100%"
        );
        assert_eq!(e("%%h").unwrap(), "%h");
        let err = e("socat - %d").unwrap_err().to_string();
        assert!(err.contains("unknown token %d"), "{err}");
        assert!(e("trailing %").is_err());
    }

    #[test]
    fn route_prefers_proxyjump_and_none_means_direct() {
        let mut s = ConnSpec::new("h");
        assert_eq!(route_of(&s).unwrap(), Route::Direct);
        s.proxy_command = Some("none".into());
        assert_eq!(route_of(&s).unwrap(), Route::Direct);
        s.proxy_command = Some("socat - UNIX-CONNECT:/x".into());
        assert_eq!(
            route_of(&s).unwrap(),
            Route::Command("socat - UNIX-CONNECT:/x".into())
        );
        s.proxy_jump = Some("b".into());
        assert_eq!(
            route_of(&s).unwrap(),
            Route::Jump(vec![hop(None, "b", None)])
        );
        s.proxy_jump = Some("none".into());
        assert!(matches!(route_of(&s).unwrap(), Route::Command(_)));
    }

    #[test]
    fn default_resolver_inherits_the_targets_credentials() {
        let mut t = ConnSpec::new("web1");
        t.user = Some("deploy".into());
        t.identity_files = vec!["/k/id".into()];
        t.known_hosts_files = vec!["/k/known".into()];
        t.proxy_jump = Some("ops@b1:2200,b2".into());
        let r: HopResolver = Arc::new(inherit_from_target);
        let hops = hop_specs(&r, &t).unwrap();
        assert_eq!(hops.len(), 2);
        // Outermost first: b1 is reached directly, b2 through b1.
        assert_eq!(
            (
                hops[0].address.as_str(),
                hops[0].port,
                hops[0].user.as_deref()
            ),
            ("b1", 2200, Some("ops"))
        );
        assert_eq!(hops[0].proxy_jump, None);
        assert_eq!(
            (
                hops[1].address.as_str(),
                hops[1].port,
                hops[1].user.as_deref()
            ),
            ("b2", 22, None)
        );
        assert_eq!(hops[1].proxy_jump.as_deref(), Some("ops@b1:2200"));
        for h in &hops {
            assert_eq!(h.identity_files, t.identity_files);
            assert_eq!(h.known_hosts_files, t.known_hosts_files);
        }
        // Same hop, same identity: one shared session; another user is another session.
        let mut t2 = t.clone();
        t2.name = "web2".into();
        assert_eq!(hop_key(&hop_specs(&r, &t2).unwrap()[1]), hop_key(&hops[1]));
        t2.proxy_jump = Some("ops@b1:2200,admin@b2".into());
        assert_ne!(hop_key(&hop_specs(&r, &t2).unwrap()[1]), hop_key(&hops[1]));
    }

    #[test]
    fn a_resolver_that_loops_is_stopped() {
        let mut t = ConnSpec::new("web1");
        t.proxy_jump = Some("b".into());
        let r: HopResolver = Arc::new(|h: &JumpHop, _t: &ConnSpec| {
            let mut s = ConnSpec::new(h.host.clone());
            s.proxy_jump = Some("b".into());
            s
        });
        let e = hop_specs(&r, &t).unwrap_err().to_string();
        assert!(e.contains("hops"), "{e}");
    }
}
