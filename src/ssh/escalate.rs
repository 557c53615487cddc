//! Become (privilege escalation) for [`super::target::SshTarget`]: `sudo` and `su`, with or
//! without a password, for commands, SFTP and the edit session alike.
//!
//! Four ways a command `ARGV` runs, chosen by [`Escalation::mode`]:
//!
//! - **sudo, no password**: `sudo -H -n -u USER -- ARGV` on one exec channel (`-n`: a rule
//!   that wants a password fails at once instead of waiting).
//! - **sudo with a password**: `sudo -H -S -p PROMPT -u USER -- sh -c 'echo MARKER; exec "$@"'
//!   sh ARGV` on one exec channel. `PROMPT` and `MARKER` carry a per-connection random nonce.
//!   sudo writes `PROMPT` to stderr and reads the password from stdin (byte by byte, so what
//!   follows on stdin stays for `ARGV`); the client answers only after seeing `PROMPT`, and a
//!   second `PROMPT` means the password was wrong: the channel is closed and the host fails
//!   with "incorrect sudo password" — nothing ran. `MARKER` on stdout means sudo let us in
//!   (with or without asking: cached credentials and `NOPASSWD` rules work too); only then
//!   does the client send `ARGV`'s stdin (or start SFTP).
//! - **su** (with or without a password): `su` reads its password from a *terminal*, and a
//!   terminal would mangle SFTP's binary protocol (CR/LF translation, control characters).
//!   So two channels are used: channel **P** has a pty and runs `stty -echo; tty; exec sleep`
//!   — it only tells us its terminal's name and then carries nothing but the password;
//!   channel **C** has no pty and runs `exec 3<&0; exec su USER -c 'echo MARKER; exec ARGV
//!   <&3 3<&-' < /dev/pts/N`: su's *stdin* is P's terminal (where it reads the password),
//!   while `ARGV` gets C's clean pipes (fd 3 is C's stdin, kept open across su; stdout and
//!   stderr are C's own). su's prompt (PAM writes it to stderr) arrives on C's stderr; the
//!   client then types the password into P. After `MARKER`, P is closed (the `sleep` dies
//!   with its terminal) and C carries the command's data or the SFTP protocol, byte for
//!   byte. Without a password su's stdin is `/dev/null` and no pty is opened: a su that
//!   needs a password fails at once ("Authentication failure").
//!
//! Every wait has a deadline ([`HANDSHAKE_TIMEOUT`]), so a prompt we do not recognise is a
//! clear per-host failure, never a hang. The password goes only to sudo's stdin or su's
//! terminal: never into a command line, the remote environment, output or a message.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use russh::ChannelMsg;
use russh::client::Msg;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Session;
use crate::inventory::conn::BecomeSpec;
use crate::secret::Secret;
use crate::target::{CommandOutput, TargetError, shell_quote};

/// How long the become handshake may take (prompt, password check, marker).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Which program escalates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sudo,
    Su,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Sudo => "sudo",
            Method::Su => "su",
        }
    }
}

/// How commands run under this escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `sudo -n ... --` prefix, no handshake.
    Prefix,
    /// sudo with `-S -p PROMPT` and a marker on one channel.
    SudoPassword,
    /// su with its stdin on a pty channel (or /dev/null) and the work on a clean channel.
    Su,
}

/// Why become failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BecomeError {
    #[error("become method {0:?} is not supported (sudo, su)")]
    Method(String),
    #[error("incorrect {method} password (become {user} refused it; nothing was run on this host)")]
    WrongPassword { method: &'static str, user: String },
    #[error(
        "{method} needs a password to become {user}: give it with -K/--ask-become-pass, \
         --become-password-env or ansible_become_password (nothing was run): {detail}"
    )]
    NeedPassword {
        method: &'static str,
        user: String,
        detail: String,
    },
    #[error("become ({method} to {user}) failed: {detail}")]
    Failed {
        method: &'static str,
        user: String,
        detail: String,
    },
    #[error(
        "become ({method} to {user}): no success marker within {secs}s (unrecognised prompt?); \
         stderr so far: {detail}"
    )]
    Timeout {
        method: &'static str,
        user: String,
        secs: u64,
        detail: String,
    },
    #[error("become ({method}): {detail}")]
    Channel {
        method: &'static str,
        detail: String,
    },
}

impl From<BecomeError> for TargetError {
    fn from(e: BecomeError) -> Self {
        TargetError::Other(e.to_string())
    }
}

/// The become settings of one connection.
#[derive(Debug, Clone)]
pub struct Escalation {
    pub method: Method,
    /// Target user (default root).
    pub user: String,
    exe: String,
    flags: Vec<String>,
    password: Option<Secret>,
    /// Random, per connection: in the sudo prompt and the success marker.
    nonce: String,
}

impl Escalation {
    /// From the host's become settings; `None` when become is off.
    pub fn from_spec(b: &BecomeSpec) -> Result<Option<Self>, BecomeError> {
        if !b.enabled {
            return Ok(None);
        }
        let method = match b.method.as_deref().unwrap_or("sudo") {
            "sudo" => Method::Sudo,
            "su" => Method::Su,
            other => return Err(BecomeError::Method(other.to_string())),
        };
        let flags = match (&b.flags, method) {
            (Some(f), _) => f.split_whitespace().map(str::to_string).collect(),
            (None, Method::Sudo) => vec!["-H".to_string()],
            (None, Method::Su) => Vec::new(),
        };
        Ok(Some(Escalation {
            method,
            user: b.user.clone().unwrap_or_else(|| "root".into()),
            exe: b.exe.clone().unwrap_or_else(|| method.name().into()),
            flags,
            password: b.password.clone(),
            nonce: format!(
                "{:016x}",
                crate::ssh::client::jitter() ^ crate::ssh::client::jitter().rotate_left(17)
            ),
        }))
    }

    pub fn mode(&self) -> Mode {
        match (self.method, &self.password) {
            (Method::Sudo, None) => Mode::Prefix,
            (Method::Sudo, Some(_)) => Mode::SudoPassword,
            (Method::Su, _) => Mode::Su,
        }
    }

    /// Channels one escalated command holds at once (su: the pty channel too).
    pub fn channels(&self) -> u32 {
        if self.mode() == Mode::Su && self.password.is_some() {
            2
        } else {
            1
        }
    }

    /// `[sudo, flags.., -n, -u, USER, --]` for [`Mode::Prefix`].
    pub fn prefix(&self) -> Option<Vec<String>> {
        if self.mode() != Mode::Prefix {
            return None;
        }
        let mut v = vec![self.exe.clone()];
        v.extend(self.flags.iter().cloned());
        if !v.iter().any(|w| w == "-n") {
            v.push("-n".into());
        }
        v.extend(["-u".into(), self.user.clone(), "--".into()]);
        Some(v)
    }

    /// The sudo prompt (`-p`), unique per connection.
    pub fn sudo_prompt(&self) -> String {
        format!("[sshfleet-become-{}] password: ", self.nonce)
    }

    /// The line printed once escalation succeeded.
    pub fn marker(&self) -> String {
        format!("SSHFLEET-BECOME-SUCCESS-{}", self.nonce)
    }

    /// The command line (for the login shell) of [`Mode::SudoPassword`] / [`Mode::Su`];
    /// `tty` is P's terminal for su with a password.
    pub fn handshake_command(&self, argv: &[String], tty: Option<&str>) -> String {
        let quote_all = |words: &[String]| {
            words
                .iter()
                .map(|w| shell_quote(w))
                .collect::<Vec<_>>()
                .join(" ")
        };
        match self.method {
            Method::Sudo => {
                let mut w = vec![self.exe.clone()];
                w.extend(
                    self.flags
                        .iter()
                        .filter(|f| *f != "-n" && *f != "-S")
                        .cloned(),
                );
                w.extend([
                    "-S".into(),
                    "-p".into(),
                    self.sudo_prompt(),
                    "-u".into(),
                    self.user.clone(),
                    "--".into(),
                    "sh".into(),
                    "-c".into(),
                    format!("echo {}; exec \"$@\"", self.marker()),
                    "sh".into(),
                ]);
                w.extend(argv.iter().cloned());
                quote_all(&w)
            }
            Method::Su => {
                let inner = format!("echo {}; exec {} <&3 3<&-", self.marker(), quote_all(argv));
                let mut w = vec![self.exe.clone()];
                w.extend(self.flags.iter().cloned());
                w.extend([self.user.clone(), "-c".into(), inner]);
                format!(
                    "exec 3<&0; exec {} < {}",
                    quote_all(&w),
                    shell_quote(tty.unwrap_or("/dev/null"))
                )
            }
        }
    }
}

/// A started escalated command: its channel (past the marker), the stdout bytes that came
/// after the marker line, and stderr after the prompt.
pub struct Escalated {
    pub channel: russh::Channel<Msg>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Does su's stderr (since the last prompt) end in a password prompt? PAM prompts end in
/// `:` or `：` and optional spaces ("Password: ", "Passwort: ", "root's Password:").
pub fn ends_with_prompt(err: &[u8]) -> bool {
    let s = String::from_utf8_lossy(err);
    let t = s.trim_end_matches(' ');
    let last = t.rsplit('\n').next().unwrap_or("");
    !last.is_empty() && (last.ends_with(':') || last.ends_with('：'))
}

fn tail_text(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let t = s.trim();
    let t: String = t
        .chars()
        .rev()
        .take(400)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if t.is_empty() { "(nothing)".into() } else { t }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Open P (the pty channel for su's password) and learn its terminal's name.
async fn open_pty(
    session: &Session,
    esc: &Escalation,
) -> Result<(russh::Channel<Msg>, String), BecomeError> {
    let ch_err = |detail: String| BecomeError::Channel {
        method: esc.method.name(),
        detail,
    };
    let mut p = session.channel().await.map_err(|e| ch_err(e.to_string()))?;
    p.request_pty(true, "dumb", 80, 24, 0, 0, &[])
        .await
        .map_err(|e| ch_err(format!("cannot get a pty: {e}")))?;
    p.exec(true, "stty -echo 2>/dev/null; tty; exec sleep 3600")
        .await
        .map_err(|e| ch_err(format!("pty exec: {e}")))?;
    let mut out = Vec::new();
    let tty = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        while let Some(msg) = p.wait().await {
            if let ChannelMsg::Data { data } = msg {
                out.extend_from_slice(&data);
                let text = String::from_utf8_lossy(&out);
                // Complete lines only (the pty turns "\n" into "\r\n").
                let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
                if let Some(l) = complete
                    .lines()
                    .map(|l| l.trim_end_matches('\r'))
                    .find(|l| l.starts_with("/dev/"))
                {
                    return Some(l.to_string());
                }
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| ch_err("the pty channel did not report its terminal".into()))?;
    Ok((p, tty))
}

/// Start `argv` under escalation (modes [`Mode::SudoPassword`] and [`Mode::Su`]) and run the
/// handshake; on success the returned channel is ready for `argv`'s stdin/stdout.
pub async fn start(
    session: &Session,
    esc: &Escalation,
    argv: &[String],
) -> Result<Escalated, BecomeError> {
    let method = esc.method.name();
    let ch_err = |detail: String| BecomeError::Channel { method, detail };
    let pty = match (esc.method, &esc.password) {
        (Method::Su, Some(_)) => Some(open_pty(session, esc).await?),
        _ => None,
    };
    let line = esc.handshake_command(argv, pty.as_ref().map(|(_, t)| t.as_str()));
    let mut ch = session.channel().await.map_err(|e| ch_err(e.to_string()))?;
    ch.exec(true, line)
        .await
        .map_err(|e| ch_err(format!("exec: {e}")))?;
    let marker = format!("{}\n", esc.marker());
    let prompt = esc.sudo_prompt();
    let mut out: Vec<u8> = Vec::new();
    let mut err: Vec<u8> = Vec::new();
    // Where stderr of the current prompt round starts, and answers sent so far.
    let mut err_from = 0usize;
    let mut sent = 0usize;
    let mut status: Option<u32> = None;
    let res = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        loop {
            let Some(msg) = ch.wait().await else {
                break;
            };
            match msg {
                ChannelMsg::Data { data } => {
                    out.extend_from_slice(&data);
                    if let Some(i) = find(&out, marker.as_bytes()) {
                        return Ok(i + marker.len());
                    }
                }
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    err.extend_from_slice(&data);
                    let prompted = match esc.method {
                        Method::Sudo => count(&err, prompt.as_bytes()) > sent,
                        Method::Su => ends_with_prompt(&err[err_from..]),
                    };
                    if prompted {
                        if sent > 0 {
                            return Err(BecomeError::WrongPassword {
                                method,
                                user: esc.user.clone(),
                            });
                        }
                        let Some(pw) = &esc.password else {
                            return Err(BecomeError::NeedPassword {
                                method,
                                user: esc.user.clone(),
                                detail: tail_text(&err),
                            });
                        };
                        let mut answer = pw.expose().as_bytes().to_vec();
                        answer.push(b'\n');
                        let target = match &pty {
                            Some((p, _)) => p,
                            None => &ch,
                        };
                        target
                            .data(&answer[..])
                            .await
                            .map_err(|e| ch_err(format!("sending the password: {e}")))?;
                        sent += 1;
                        err_from = err.len();
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Eof | ChannelMsg::Close if status.is_some() => break,
                _ => {}
            }
        }
        // The command ended before the marker: escalation failed.
        let detail = tail_text(&err);
        Err(if sent > 0 {
            BecomeError::WrongPassword {
                method,
                user: esc.user.clone(),
            }
        } else if esc.password.is_none()
            && (detail.contains("password is required")
                || detail.contains("Authentication failure")
                || detail.contains("a terminal is required"))
        {
            BecomeError::NeedPassword {
                method,
                user: esc.user.clone(),
                detail,
            }
        } else {
            BecomeError::Failed {
                method,
                user: esc.user.clone(),
                detail: format!(
                    "{detail}{}",
                    status
                        .map(|s| format!(" (exit status {s})"))
                        .unwrap_or_default()
                ),
            }
        })
    })
    .await;
    if let Some((p, _)) = &pty {
        let _ = p.eof().await;
        let _ = p.close().await;
    }
    let after = match res {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => {
            let _ = ch.close().await;
            return Err(e);
        }
        Err(_) => {
            let _ = ch.close().await;
            return Err(BecomeError::Timeout {
                method,
                user: esc.user.clone(),
                secs: HANDSHAKE_TIMEOUT.as_secs(),
                detail: tail_text(&err),
            });
        }
    };
    // stderr printed by the command itself (after the last prompt, minus sudo's prompt).
    let mut stderr = err[err_from.min(err.len())..].to_vec();
    if let Some(i) = find(&stderr, prompt.as_bytes()) {
        stderr.drain(..i + prompt.len());
    }
    Ok(Escalated {
        channel: ch,
        stdout: out[after..].to_vec(),
        stderr,
    })
}

/// Run `argv` under escalation with `stdin`, collecting its output (like [`Session::exec`]).
pub async fn exec(
    session: &Session,
    esc: &Escalation,
    argv: &[String],
    stdin: Option<Vec<u8>>,
) -> Result<CommandOutput, TargetError> {
    let Escalated {
        channel,
        stdout,
        stderr,
    } = start(session, esc, argv).await?;
    let addr = session.addr.clone();
    let out = super::client::drain(
        channel,
        stdin,
        CommandOutput {
            status: -1,
            stdout,
            stderr,
        },
    )
    .await
    .out;
    if out.status == -1 {
        return Err(if session.is_closed() {
            TargetError::Unreachable(format!("{addr}: connection closed"))
        } else {
            TargetError::Other(format!(
                "{addr}: connection closed before the command finished"
            ))
        });
    }
    Ok(out)
}

/// A byte stream that first yields `head` (data that arrived with the marker), then `inner`.
pub struct Prefixed<S> {
    head: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(head: Vec<u8>, inner: S) -> Self {
        Prefixed {
            head,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos < self.head.len() {
            let n = (self.head.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.head[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(method: &str, pw: Option<&str>) -> BecomeSpec {
        BecomeSpec {
            enabled: true,
            method: Some(method.into()),
            password: pw.map(Secret::new),
            ..Default::default()
        }
    }

    #[test]
    fn modes_and_prefix() {
        assert!(
            Escalation::from_spec(&BecomeSpec::default())
                .unwrap()
                .is_none()
        );
        let e = Escalation::from_spec(&spec("sudo", None)).unwrap().unwrap();
        assert_eq!(e.mode(), Mode::Prefix);
        assert_eq!(
            e.prefix().unwrap(),
            ["sudo", "-H", "-n", "-u", "root", "--"]
        );
        let e = Escalation::from_spec(&spec("sudo", Some("pw")))
            .unwrap()
            .unwrap();
        assert_eq!(e.mode(), Mode::SudoPassword);
        assert!(e.prefix().is_none());
        assert_eq!(
            Escalation::from_spec(&spec("su", None))
                .unwrap()
                .unwrap()
                .mode(),
            Mode::Su
        );
        assert!(matches!(
            Escalation::from_spec(&spec("doas", None)),
            Err(BecomeError::Method(_))
        ));
    }

    #[test]
    fn sudo_password_command_never_contains_the_password() {
        let mut s = spec("sudo", Some("s3cr3t-pw"));
        s.flags = Some("-H -S -n".into());
        let e = Escalation::from_spec(&s).unwrap().unwrap();
        let line = e.handshake_command(&["cat".into(), "/etc/it's".into()], None);
        assert!(!line.contains("s3cr3t-pw"), "{line}");
        assert!(
            !line.contains(" -n "),
            "-n removed when a password is given: {line}"
        );
        assert!(
            line.starts_with("sudo -H -S -p '[sshfleet-become-"),
            "{line}"
        );
        assert!(line.contains(&e.marker()));
        assert!(line.ends_with(r"sh cat '/etc/it'\''s'"), "{line}");
        // Prompt and marker are unique per connection.
        let e2 = Escalation::from_spec(&s).unwrap().unwrap();
        assert_ne!(e.marker(), e2.marker());
    }

    #[test]
    fn su_command_reads_the_password_from_the_pty_and_works_on_fd3() {
        let mut s = spec("su", Some("pw"));
        s.user = Some("backup".into());
        s.flags = Some("-l".into());
        let e = Escalation::from_spec(&s).unwrap().unwrap();
        let line = e.handshake_command(
            &["sh".into(), "-c".into(), "echo hi".into()],
            Some("/dev/pts/7"),
        );
        assert!(
            line.starts_with("exec 3<&0; exec su -l backup -c '"),
            "{line}"
        );
        assert!(line.ends_with(" < /dev/pts/7"), "{line}");
        assert!(line.contains("<&3 3<&-"), "{line}");
        let e = Escalation::from_spec(&spec("su", None)).unwrap().unwrap();
        assert!(
            e.handshake_command(&["true".into()], None)
                .ends_with("< /dev/null")
        );
        assert_eq!(e.channels(), 1);
    }

    #[test]
    fn su_prompts() {
        assert!(ends_with_prompt(b"Password: "));
        assert!(ends_with_prompt(b"warning\nPasswort:"));
        assert!(!ends_with_prompt(b"su: Authentication failure\n"));
        assert!(!ends_with_prompt(b""));
    }

    #[tokio::test]
    async fn prefixed_stream_yields_head_first() {
        use tokio::io::AsyncReadExt;
        let inner: &[u8] = b" world";
        let (a, _b) = tokio::io::duplex(8);
        let _ = a;
        let mut p = Prefixed::new(b"hello".to_vec(), inner);
        let mut s = String::new();
        // &[u8] is AsyncRead but not AsyncWrite: read through a helper.
        let mut buf = [0u8; 3];
        loop {
            let n = AsyncReadExt::read(&mut PrefixedRead(&mut p), &mut buf)
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            s.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert_eq!(s, "hello world");
    }

    struct PrefixedRead<'a, S>(&'a mut Prefixed<S>);
    impl<S: AsyncRead + Unpin> AsyncRead for PrefixedRead<'_, S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut *self.0).poll_read(cx, buf)
        }
    }
}
