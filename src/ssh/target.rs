//! [`SshTarget`]: the [`crate::target::Target`] trait over one russh connection.
//!
//! Files go over SFTP (one lazily opened session per connection, on an exec channel whose
//! script first names the serving process — boot id, pid, start time: the owner of the temp
//! files, see [`crate::target::temp`] — then `exec`s `sftp-server`, under `sudo -n` with
//! become; a become that needs a password or su's terminal runs its own way, see
//! [`super::escalate`], and like the `sftp` subsystem where the script cannot run, its temp
//! files are unowned). Everything else is `exec` of an argv whose every word is quoted with
//! [`crate::target::shell_quote`] — user input never reaches the remote shell unquoted.
//!
//! `write_atomic`: exclusive temp file `.NAME.sshfleet-BOOT-PID-START-RAND.tmp` in the destination
//! directory (mode 0600 while being written), pipelined writes (many requests in flight, not
//! one round trip per chunk) — or, for a streamed body (large files), the chunks as they are
//! through `cat` on an exec channel into that same file (see `stream_to_file`; its size is
//! then checked through our own handle) — `fsync@openssh.com`, owner then mode (so chown cannot clear
//! set-id bits), optional validate command on the temp file, the [`Expect`] check right before
//! the move, optional backup (a hard link of the old file named like Ansible's backups), and
//! `posix-rename@openssh.com` over the destination. Any failure — or the future being dropped
//! (Ctrl-C, host timeout) — removes the temp file (see [`wait_for_cleanups`]).
//!
//! Commit by precondition: [`Expect::Any`] renames; [`Expect::Absent`] links (`link(2)` never
//! replaces a name, so creating needs no lock); [`Expect::Sha256`] checks and renames under
//! the destination directory's writer lock — inside an edit session that already holds it
//! (see [`Target::begin_edit`] and `EDIT_SCRIPT`), else with one `flock` command.
//!
//! Work per host is kept to what the host must do (the benchmark's sshd-side CPU): an edit is
//! ONE channel (passwd lookup, lock and `sftp-server` together), a plain file session is one
//! channel, and user lookups are cached per connection.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use russh::ChannelMsg;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, Notify, Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::escalate::{self, Escalation, Mode};
use crate::inventory::conn::BecomeSpec;
use crate::ssh::{Session, SshError};
use crate::target::temp::{self, Owner};
use crate::target::{
    Body, CommandOutput, EditHint, Expect, FileKind, FileStat, TResult, Target, TargetError,
    UserInfo, WriteOutcome, WriteSpec, shell_quote, validate_argv,
};

/// Bytes per SFTP read/write request.
const CHUNK: usize = 64 * 1024;
/// Requests in flight per transfer (CHUNK × this ≈ the channel window).
const IN_FLIGHT: usize = 32;
/// Files up to this size are hashed by reading them over SFTP; bigger ones on the host, by
/// [`HASH_SCRIPT`].
const SMALL_FILE: u64 = 1024 * 1024;
/// sha256 of the file `$1` on the host: `openssl dgst` where it works (OpenSSL uses the CPU's
/// SHA instructions: 256 MiB in 0.28 s on the test machine, against 1.5 s for coreutils'
/// `sha256sum`, which has none), else `sha256sum`. Both print the hex digest first.
const HASH_SCRIPT: &str =
    "openssl dgst -sha256 -r -- \"$1\" 2>/dev/null || exec sha256sum -- \"$1\"";
/// Concurrent exec channels per connection (sshd's MaxSessions defaults to 10; SFTP uses one).
const MAX_EXEC: usize = 8;

/// One file-transfer session.
struct Sftp {
    raw: Arc<RawSftpSession>,
    fsync: bool,
    posix_rename: bool,
    hardlink: bool,
    /// Opened by [`Target::begin_edit`]: closed by `end_edit`.
    edit: bool,
    /// The directory whose writer lock this session's server process holds (`flock(1)`
    /// around `sftp-server`), released when the session ends.
    locked_dir: Option<String>,
    /// The remote process serving this session (see [`crate::target::temp`]): the owner
    /// named in the temp files created through it. `None` when the host did not say (no
    /// `/proc`, or the plain `sftp` subsystem): temp names are then unowned.
    owner: Option<Owner>,
}

/// The [`crate::target::Target`] trait over one SSH connection.
pub struct SshTarget {
    session: Arc<Session>,
    /// Become settings (None: off).
    esc: Option<Escalation>,
    /// `[sudo, flags.., -n, -u, USER, --]` when become is sudo without a password.
    become_prefix: Option<Vec<String>>,
    /// The current file session (opened on first use; replaced by an edit's session).
    sftp: Mutex<Option<Arc<Sftp>>>,
    exec_slots: Semaphore,
    /// passwd answers, by name (`None`: no such user).
    users: std::sync::Mutex<HashMap<String, Option<UserInfo>>>,
}

impl SshTarget {
    /// Wrap a connection; `become` decides whether commands and SFTP run via sudo.
    pub fn new(session: Session, r#become: &BecomeSpec) -> Result<Self, SshError> {
        let esc = Escalation::from_spec(r#become).map_err(|e| SshError::Protocol(e.to_string()))?;
        Ok(SshTarget {
            session: Arc::new(session),
            become_prefix: esc.as_ref().and_then(Escalation::prefix),
            esc,
            sftp: Mutex::new(None),
            exec_slots: Semaphore::new(MAX_EXEC),
            users: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The underlying connection.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Is become (sudo or su) on?
    pub fn becomes(&self) -> bool {
        self.esc.is_some()
    }

    /// Become with a handshake (a password or su), not a plain `sudo -n` prefix.
    fn handshake_esc(&self) -> Option<&Escalation> {
        self.esc.as_ref().filter(|e| e.mode() != Mode::Prefix)
    }

    /// Run `argv` (as the become user when become is on) with `stdin`.
    async fn exec_become(&self, argv: &[String], stdin: Option<Vec<u8>>) -> TResult<CommandOutput> {
        let Some(esc) = self.handshake_esc() else {
            return self.exec_line(&self.command_line(argv), stdin).await;
        };
        let _slot = self
            .exec_slots
            .acquire_many(esc.channels())
            .await
            .map_err(|_| TargetError::Other("connection closed".into()))?;
        escalate::exec(&self.session, esc, argv, stdin).await
    }

    /// Start a server program (`argv`) under become and return its byte stream, past the
    /// become handshake.
    async fn start_become_stream(
        &self,
        esc: &Escalation,
        argv: &[String],
    ) -> TResult<escalate::Prefixed<russh::ChannelStream<russh::client::Msg>>> {
        let started = escalate::start(&self.session, esc, argv).await?;
        Ok(escalate::Prefixed::new(
            started.stdout,
            started.channel.into_stream(),
        ))
    }

    /// Close the connection (best effort).
    pub async fn close(&self) {
        if let Some(s) = self.sftp.lock().await.take() {
            let _ = s.raw.close_session();
        }
        self.session.close().await;
    }

    /// The command line for `argv`: every word quoted, behind the become prefix.
    pub fn command_line(&self, argv: &[String]) -> String {
        let mut words: Vec<String> = Vec::new();
        if let Some(p) = &self.become_prefix {
            words.extend(p.iter().map(|w| shell_quote(w)));
        }
        words.extend(argv.iter().map(|w| shell_quote(w)));
        words.join(" ")
    }

    async fn exec_line(&self, line: &str, stdin: Option<Vec<u8>>) -> TResult<CommandOutput> {
        let _slot = self
            .exec_slots
            .acquire()
            .await
            .map_err(|_| TargetError::Other("connection closed".into()))?;
        self.session.exec(line, stdin).await.map_err(|e| {
            if self.session.is_closed() {
                TargetError::Unreachable(e.to_string())
            } else {
                TargetError::Other(e.to_string())
            }
        })
    }

    async fn exec_argv(&self, argv: &[&str]) -> TResult<CommandOutput> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        self.exec_become(&argv, None).await
    }

    /// Remember a passwd entry learnt elsewhere (e.g. over another connection to the same
    /// host), so [`Target::lookup_user`] need not ask again.
    pub fn remember_user(&self, info: UserInfo) {
        self.cache_user(&info.name.clone(), Some(info));
    }

    fn cache_user(&self, name: &str, info: Option<UserInfo>) {
        if let Ok(mut m) = self.users.lock() {
            m.insert(name.to_string(), info);
        }
    }

    fn cached_user(&self, name: &str) -> Option<Option<UserInfo>> {
        self.users.lock().ok()?.get(name).cloned()
    }

    async fn sftp(&self) -> TResult<Arc<Sftp>> {
        let mut cur = self.sftp.lock().await;
        if let Some(s) = cur.as_ref() {
            return Ok(s.clone());
        }
        let s = self.open_sftp().await?;
        *cur = Some(s.clone());
        Ok(s)
    }

    /// Open the edit session of [`Target::begin_edit`]: ONE exec channel runs
    /// [`EDIT_SCRIPT`], which prints the user's passwd entry, asks which directory to lock,
    /// and then runs `sftp-server` under `flock` on it. `Ok(None)` when the host cannot
    /// (no POSIX `sh` or no `sftp-server` binary): the caller keeps the plain session.
    async fn open_edit_sftp(&self, hint: &EditHint<'_>) -> TResult<Option<Arc<Sftp>>> {
        let host = &self.session.addr;
        let known = self.cached_user(hint.user);
        let user_arg = known.is_none().then_some(hint.user);
        let mut stream: Box<dyn EditStream> = match self.handshake_esc() {
            Some(esc) => {
                let mut argv: Vec<String> =
                    ["sh", "-c", EDIT_SCRIPT, "sh"].map(String::from).into();
                argv.extend(user_arg.map(str::to_string));
                Box::new(self.start_become_stream(esc, &argv).await?)
            }
            None => {
                let channel = self.session.channel().await.map_err(TargetError::from)?;
                let line = edit_command(self.become_prefix.as_deref(), user_arg);
                channel
                    .exec(true, line)
                    .await
                    .map_err(|e| TargetError::Other(format!("{host}: exec: {e}")))?;
                Box::new(channel.into_stream())
            }
        };
        let prelude = async {
            let owner = parse_id_line(&read_line(&mut stream).await?)?;
            let user = match known {
                Some(u) => u,
                None => {
                    let mut entry = None;
                    loop {
                        let l = read_line(&mut stream).await?;
                        if let Some(rc) = l.strip_prefix("sshfleet-rc ") {
                            break match rc {
                                "0" => entry,
                                "2" => None,
                                rc => {
                                    return Err(TargetError::Other(format!(
                                        "getent passwd {}: rc={rc}",
                                        hint.user
                                    )));
                                }
                            };
                        }
                        if entry.is_none() {
                            entry = UserInfo::from_passwd_line(&l);
                        }
                    }
                }
            };
            self.cache_user(hint.user, user.clone());
            if read_line(&mut stream).await? != "sshfleet-dir?" {
                return Err(TargetError::Other("unexpected reply".into()));
            }
            let dir = (hint.lock_dir)(user.as_ref())
                .filter(|d| d.starts_with('/') && !d.contains(['\n', '\0']));
            let mut reply = dir.clone().unwrap_or_default().into_bytes();
            reply.push(b'\n');
            stream
                .write_all(&reply)
                .await
                .map_err(|e| TargetError::Other(e.to_string()))?;
            Ok(match read_line(&mut stream).await?.as_str() {
                "sshfleet-lock" => Some((dir, owner)),
                "sshfleet-nolock" => Some((None, owner)),
                _ => None,
            })
        };
        let (locked_dir, owner) = match tokio::time::timeout(Duration::from_secs(60), prelude).await
        {
            Ok(Ok(Some(d))) => d,
            // No sftp-server binary, or a shell that did not run the script: plain session.
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return Ok(None),
        };
        let lock_note = locked_dir.as_deref().map(|d| {
            format!(" (timed out after 30 s waiting for another sshfleet writer's lock on {d})")
        });
        let sftp = self
            .init_sftp(RawSftpSession::new(stream), true, locked_dir, owner)
            .await
            .map_err(|e| match (e, lock_note) {
                (TargetError::Other(m), Some(n)) => TargetError::Other(format!("{m}{n}")),
                (e, _) => e,
            })?;
        Ok(Some(sftp))
    }

    /// The plain file session: [`PLAIN_SCRIPT`] on an exec channel (it names the serving
    /// process, the owner of the temp files, then `exec`s `sftp-server`); if the host's shell
    /// does not run it, the `sftp` subsystem (or `sftp-server` under sudo) without an owner.
    async fn open_sftp(&self) -> TResult<Arc<Sftp>> {
        // A become that needs a password handshake runs its own way (unowned).
        if self.handshake_esc().is_none()
            && let Some(s) = self.open_owned_sftp().await
        {
            return Ok(s);
        }
        self.open_unowned_sftp().await
    }

    async fn open_owned_sftp(&self) -> Option<Arc<Sftp>> {
        let channel = self.session.channel().await.ok()?;
        let line = match &self.become_prefix {
            None => PLAIN_SCRIPT.to_string(),
            Some(prefix) => {
                let mut words: Vec<String> = prefix.iter().map(|w| shell_quote(w)).collect();
                words.extend(["sh", "-c", PLAIN_SCRIPT].map(shell_quote));
                words.join(" ")
            }
        };
        channel.exec(true, line).await.ok()?;
        let mut stream = channel.into_stream();
        let owner = tokio::time::timeout(Duration::from_secs(60), async {
            parse_id_line(&read_line(&mut stream).await?)
        })
        .await
        .ok()?
        .ok()??;
        self.init_sftp(RawSftpSession::new(stream), false, None, Some(owner))
            .await
            .ok()
    }

    async fn open_unowned_sftp(&self) -> TResult<Arc<Sftp>> {
        let host = &self.session.addr;
        if let Some(esc) = self.handshake_esc() {
            let argv: Vec<String> = ["sh", "-c", SFTP_SERVER_SCRIPT].map(String::from).into();
            let stream = self.start_become_stream(esc, &argv).await?;
            return self
                .init_sftp(RawSftpSession::new(stream), false, None, None)
                .await;
        }
        let channel = self.session.channel().await.map_err(TargetError::from)?;
        let perr = |e: russh::Error| TargetError::Other(format!("{host}: sftp: {e}"));
        match &self.become_prefix {
            None => channel
                .request_subsystem(true, "sftp")
                .await
                .map_err(perr)?,
            Some(prefix) => {
                // Find sftp-server on the remote and run it under sudo. The script is a
                // constant; only the quoted prefix words vary.
                let mut argv: Vec<String> = prefix.clone();
                argv.extend(["sh", "-c", SFTP_SERVER_SCRIPT].map(String::from));
                let line = argv
                    .iter()
                    .map(|w| shell_quote(w))
                    .collect::<Vec<_>>()
                    .join(" ");
                channel.exec(true, line).await.map_err(perr)?
            }
        }
        self.init_sftp(
            RawSftpSession::new(channel.into_stream()),
            false,
            None,
            None,
        )
        .await
    }

    /// The SFTP handshake on a started server; `edit` and `locked_dir` as in [`Sftp`].
    async fn init_sftp(
        &self,
        mut raw: RawSftpSession,
        edit: bool,
        locked_dir: Option<String>,
        owner: Option<Owner>,
    ) -> TResult<Arc<Sftp>> {
        let host = &self.session.addr;
        raw.set_timeout(120);
        let version = match raw.init().await {
            Ok(v) => v,
            Err(e) => {
                // With sudo, the usual cause is a password prompt: show sudo's words.
                if self.becomes() {
                    let probe = self.exec_argv(&["true"]).await;
                    if let Ok(out) = probe
                        && out.status != 0
                    {
                        return Err(TargetError::Other(format!(
                            "become failed: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        )));
                    }
                }
                return Err(TargetError::Other(format!(
                    "{host}: sftp: cannot start: {e}"
                )));
            }
        };
        let has = |name: &str| version.extensions.contains_key(name);
        if has("limits@openssh.com")
            && let Ok(l) = raw.limits().await
        {
            raw.set_limits(l.into());
        }
        Ok(Arc::new(Sftp {
            fsync: has("fsync@openssh.com"),
            posix_rename: has("posix-rename@openssh.com"),
            hardlink: has("hardlink@openssh.com"),
            raw: Arc::new(raw),
            edit,
            locked_dir,
            owner,
        }))
    }
}

/// Find sftp-server on the remote and run it (under become). A constant: only the quoted
/// become words around it vary.
const SFTP_SERVER_SCRIPT: &str = "for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server \
     /usr/libexec/sftp-server /usr/lib/ssh/sftp-server /usr/lib/sftp-server; \
     do [ -x \"$p\" ] && exec \"$p\"; done; echo 'sftp-server not found' >&2; exit 127";

/// The byte stream of an edit session (a plain channel, or one past the become handshake).
trait EditStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> EditStream for T {}

/// The edit session's server side (see [`edit_command`]; `$1` is the user), one exec channel:
/// 1. with a USER argument, its passwd entry and `sshfleet-rc RC` (getent's exit status);
/// 2. `sshfleet-dir?`, then one line from the client: the directory to lock (may be empty);
/// 3. `sshfleet-lock` and `sftp-server` under `flock -w 30 DIR` (the lock every sshfleet
///    writer takes, see `locked_commit` and `local::DirLock`) when DIR is a directory and
///    `flock` exists, else `sshfleet-nolock` and a plain `sftp-server`; `sshfleet-nosftp` if
///    there is no `sftp-server` binary. Only builtins run besides getent, flock and the server.
const EDIT_SCRIPT: &str = concat!(
    r#"if read -r b < /proc/sys/kernel/random/boot_id && read -r s < /proc/self/stat; then echo "sshfleet-id $b $s"; else echo "sshfleet-id -"; fi
"#,
    r#"if [ $# -gt 0 ]; then getent passwd -- "$1"; echo "sshfleet-rc $?"; fi
echo "sshfleet-dir?"
IFS= read -r d || exit 3
for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/libexec/sftp-server /usr/lib/ssh/sftp-server /usr/lib/sftp-server; do
  [ -x "$p" ] || continue
  if [ -n "$d" ] && [ -d "$d" ] && command -v flock >/dev/null 2>&1; then echo sshfleet-lock; exec flock -w 30 "$d" "$p"; fi
  echo sshfleet-nolock; exec "$p"
done
echo sshfleet-nosftp; exit 127"#
);

/// The plain file session's server side: the `sshfleet-id` line (as in [`EDIT_SCRIPT`]), then
/// `exec sftp-server` — the same process, so the identity printed is the server's.
const PLAIN_SCRIPT: &str = r#"if read -r b < /proc/sys/kernel/random/boot_id && read -r s < /proc/self/stat; then echo "sshfleet-id $b $s"; else echo "sshfleet-id -"; fi
for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/libexec/sftp-server /usr/lib/ssh/sftp-server /usr/lib/sftp-server; do [ -x "$p" ] && exec "$p"; done
exit 127"#;

/// The first line of [`EDIT_SCRIPT`] and [`PLAIN_SCRIPT`]: `sshfleet-id BOOT_ID STAT_LINE`
/// (the serving process's own `/proc/self/stat`), or `sshfleet-id -` without `/proc`.
/// `Err` if the line is something else (the script did not run).
fn parse_id_line(line: &str) -> TResult<Option<Owner>> {
    let rest = line
        .strip_prefix("sshfleet-id ")
        .ok_or_else(|| TargetError::Other("unexpected reply".into()))?;
    Ok(rest
        .split_once(' ')
        .and_then(|(boot, stat)| Owner::from_proc(boot, stat)))
}

/// The command line of the edit session. Without become the login shell runs the script
/// itself (one exec fewer; a login shell that is not POSIX fails the prelude and the caller
/// falls back to the plain session); sudo needs a program, so with become it is `sh -c`.
fn edit_command(become_prefix: Option<&[String]>, user: Option<&str>) -> String {
    let quote_all = |words: &[&str]| {
        words
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match become_prefix {
        None => {
            let set = match user {
                Some(u) => format!("set -- {}", shell_quote(u)),
                None => "set --".to_string(),
            };
            format!("{set}\n{EDIT_SCRIPT}")
        }
        Some(prefix) => {
            let mut words: Vec<&str> = prefix.iter().map(String::as_str).collect();
            words.extend(["sh", "-c", EDIT_SCRIPT, "sh"]);
            words.extend(user);
            quote_all(&words)
        }
    }
}

/// One `\n`-terminated line (without it) from a channel stream, read byte by byte so
/// nothing after it is consumed. At most 4 KiB.
async fn read_line<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> TResult<String> {
    let mut buf = Vec::new();
    loop {
        let b = r
            .read_u8()
            .await
            .map_err(|e| TargetError::Other(format!("edit session: {e}")))?;
        if b == b'\n' {
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        if buf.len() >= 4096 {
            return Err(TargetError::Other("edit session: line too long".into()));
        }
        buf.push(b);
    }
}

fn sftp_err(path: &str, op: &str, e: SftpError) -> TargetError {
    use std::io::ErrorKind;
    match e {
        SftpError::Status(s) => {
            let kind = match s.status_code {
                StatusCode::NoSuchFile => ErrorKind::NotFound,
                StatusCode::PermissionDenied => ErrorKind::PermissionDenied,
                _ => ErrorKind::Other,
            };
            let msg = if s.error_message.is_empty() {
                s.status_code.to_string()
            } else {
                s.error_message
            };
            TargetError::io(path, op, kind, msg)
        }
        SftpError::UnexpectedBehavior(m) if m.contains("session closed") => {
            TargetError::Unreachable(format!("{path}: {op}: connection lost"))
        }
        other => TargetError::io(path, op, ErrorKind::Other, other.to_string()),
    }
}

fn is_not_found(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

fn to_stat(a: &FileAttributes) -> FileStat {
    let t = a.file_type();
    FileStat {
        kind: FileKind::classify(t.is_symlink(), t.is_dir(), t.is_file()),
        size: a.size.unwrap_or(0),
        mode: a.permissions.unwrap_or(0) & 0o7777,
        uid: a.uid.unwrap_or(0),
        gid: a.gid.unwrap_or(0),
        mtime: a.mtime.map(i64::from).unwrap_or(0),
    }
}

/// SFTP string encoding: u32 length + bytes.
fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn status_ok(p: Packet, path: &str, op: &str) -> TResult<()> {
    match p {
        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
        Packet::Status(s) => Err(sftp_err(path, op, SftpError::Status(s))),
        _ => Err(TargetError::Io {
            path: path.to_string(),
            op: op.to_string(),
            msg: "unexpected reply".into(),
        }),
    }
}

/// Temp files being removed after a cancelled write.
static PENDING_CLEANUPS: AtomicUsize = AtomicUsize::new(0);
static CLEANUPS_DONE: Notify = Notify::const_new();

/// Wait (bounded) until temp files of cancelled writes are removed. The fleet runner calls
/// this after Ctrl-C before exiting.
pub async fn wait_for_cleanups(max: Duration) {
    let _ = tokio::time::timeout(max, async {
        while PENDING_CLEANUPS.load(Ordering::SeqCst) > 0 {
            let notified = CLEANUPS_DONE.notified();
            if PENDING_CLEANUPS.load(Ordering::SeqCst) == 0 {
                break;
            }
            notified.await;
        }
    })
    .await;
}

/// Removes our temp file if the write does not reach its rename — also when the future is
/// dropped mid-way (then removal runs in a spawned task tracked by [`wait_for_cleanups`]).
struct TempGuard {
    sftp: Arc<Sftp>,
    session: Arc<Session>,
    path: Option<String>,
    handle: Option<String>,
}

impl TempGuard {
    /// Remove now (error paths).
    async fn remove(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = self.sftp.raw.close(h).await;
        }
        if let Some(p) = self.path.take() {
            let _ = self.sftp.raw.remove(p).await;
        }
    }

    fn disarm(&mut self) {
        self.path = None;
        self.handle = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        let (Some(path), Ok(rt)) = (self.path.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let handle = self.handle.take();
        let sftp = self.sftp.clone();
        let session = self.session.clone();
        PENDING_CLEANUPS.fetch_add(1, Ordering::SeqCst);
        rt.spawn(async move {
            let _keep = session;
            if let Some(h) = handle {
                let _ = sftp.raw.close(h).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), sftp.raw.remove(path)).await;
            PENDING_CLEANUPS.fetch_sub(1, Ordering::SeqCst);
            CLEANUPS_DONE.notify_waiters();
        });
    }
}

/// Pipelined writer: keeps up to [`IN_FLIGHT`] write requests outstanding.
struct Writer {
    raw: Arc<RawSftpSession>,
    handle: String,
    path: String,
    offset: u64,
    inflight: VecDeque<JoinHandle<Result<(), SftpError>>>,
    /// `None` when the digest is known up front ([`Body::Digested`]).
    hasher: Option<Sha256>,
}

impl Writer {
    async fn push(&mut self, mut data: Bytes) -> TResult<()> {
        if let Some(h) = &mut self.hasher {
            h.update(&data);
        }
        while !data.is_empty() {
            let chunk = data.split_to(data.len().min(CHUNK));
            if self.inflight.len() >= IN_FLIGHT {
                self.wait_one().await?;
            }
            let raw = self.raw.clone();
            let handle = self.handle.clone();
            let off = self.offset;
            self.offset += chunk.len() as u64;
            self.inflight.push_back(tokio::spawn(async move {
                raw.write(handle, off, chunk.to_vec()).await.map(|_| ())
            }));
        }
        Ok(())
    }

    async fn wait_one(&mut self) -> TResult<()> {
        if let Some(j) = self.inflight.pop_front() {
            match j.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(sftp_err(&self.path, "write", e)),
                Err(e) => {
                    return Err(TargetError::Io {
                        path: self.path.clone(),
                        op: "write".into(),
                        msg: e.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Wait for every write; the sha256 (when hashed) and the size written.
    async fn finish(mut self) -> TResult<(Option<[u8; 32]>, u64)> {
        while !self.inflight.is_empty() {
            self.wait_one().await?;
        }
        let digest = self.hasher.take().map(|h| h.finalize().into());
        Ok((digest, self.offset))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        for j in &self.inflight {
            j.abort();
        }
    }
}

/// The directory a path's entry lives in (`/` for top-level names, `.` for bare names).
fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

fn temp_name(dest: &str, owner: Option<&Owner>) -> TResult<(String, String)> {
    let (dir, name) = match dest.rsplit_once('/') {
        Some((d, n)) => (if d.is_empty() { "/" } else { d }, n),
        None => (".", dest),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(TargetError::Other(format!("{dest}: not a file path")));
    }
    let rand = crate::ssh::client::jitter();
    let tmp = temp::temp_name(name, owner, rand);
    let tmp = if dir == "/" {
        format!("/{tmp}")
    } else {
        format!("{dir}/{tmp}")
    };
    Ok((dir.to_string(), tmp))
}

/// What streams a large file into its temp file: `cat` writing to the file opened read-write
/// (no truncation, no creation: the temp file was created empty and exclusive over SFTP).
const STREAM_SCRIPT: &str = "exec cat 1<>\"$1\"";

impl SshTarget {
    /// Stream `rx` into the empty temp file `tmp` through `cat` on the host, run over an exec
    /// channel behind the become prefix, as `ssh host 'cat > f'` does: every shared chunk goes
    /// to the channel as is ([`russh::ChannelWriteHalf::data_bytes`]: no copy per
    /// destination, no SFTP request framing), and the host spends one `cat` on it instead of
    /// `sftp-server` answering a request per 64 KiB. Returns the sha256 (when `hasher` is
    /// given) and the bytes sent. A source error closes the channel (`cat` ends; the caller
    /// removes the temp file).
    async fn stream_to_file(
        &self,
        tmp: &str,
        dest: &str,
        rx: &mut mpsc::Receiver<Result<Bytes, String>>,
        mut hasher: Option<Sha256>,
    ) -> TResult<(Option<[u8; 32]>, u64)> {
        let _slot = self
            .exec_slots
            .acquire()
            .await
            .map_err(|_| TargetError::Other("connection closed".into()))?;
        let fail = |e: russh::Error| {
            let msg = format!("{}: streaming into {tmp}: {e}", self.session.addr);
            if self.session.is_closed() {
                TargetError::Unreachable(msg)
            } else {
                TargetError::Io {
                    path: tmp.to_string(),
                    op: "write".into(),
                    msg,
                }
            }
        };
        let argv: Vec<String> = ["sh", "-c", STREAM_SCRIPT, "sh", tmp]
            .map(String::from)
            .into();
        let channel = self
            .session
            .channel()
            .await
            .map_err(|e| TargetError::Unreachable(e.to_string()))?;
        channel
            .exec(true, self.command_line(&argv))
            .await
            .map_err(fail)?;
        let (mut rd, wr) = channel.split();
        let send = async move {
            let mut n = 0u64;
            let mut source_error = None;
            while let Some(item) = rx.recv().await {
                match item {
                    Ok(chunk) => {
                        if let Some(h) = &mut hasher {
                            h.update(&chunk);
                        }
                        n += chunk.len() as u64;
                        if let Err(e) = wr.data_bytes(chunk).await {
                            let _ = wr.close().await;
                            return Err(fail(e));
                        }
                    }
                    Err(msg) => {
                        source_error = Some(msg);
                        break;
                    }
                }
            }
            if let Some(msg) = source_error {
                // EOF, so `cat` ends and the channel closes the usual way; nothing is committed
                // (the caller removes the temp file). Not a CLOSE: russh forgets a channel it
                // closed itself and never reports the server's CLOSE, so `wait` would hang.
                let _ = wr.eof().await;
                return Err(TargetError::Io {
                    path: dest.to_string(),
                    op: "read source".into(),
                    msg,
                });
            }
            wr.eof().await.map_err(fail)?;
            Ok((n, hasher))
        };
        let wait = async {
            let mut status = None;
            let mut stderr = Vec::new();
            while let Some(msg) = rd.wait().await {
                match msg {
                    ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status as i32),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        status = Some(128 + crate::ssh::client::signal_number(&signal_name))
                    }
                    _ => {}
                }
            }
            (status, stderr)
        };
        // `cat` may end early (a full disk): then stop sending, or the send would wait for
        // window space that never comes.
        tokio::pin!(send);
        tokio::pin!(wait);
        let (sent, (status, stderr)) = tokio::select! {
            // After a failed send the channel may be closed on our side (see above): wait for
            // the exit status a bounded time only.
            sent = &mut send => match sent {
                Ok(_) => (sent, wait.await),
                Err(_) => {
                    let ended = tokio::time::timeout(Duration::from_secs(5), wait).await;
                    (sent, ended.unwrap_or_default())
                }
            },
            ended = &mut wait => match tokio::time::timeout(Duration::from_secs(1), send).await {
                Ok(sent) => (sent, ended),
                Err(_) => (
                    Err(TargetError::Io {
                        path: tmp.to_string(),
                        op: "write".into(),
                        msg: "the writer on the host ended before all bytes were sent".into(),
                    }),
                    ended,
                ),
            },
        };
        if let (Err(_), Some(code @ 1..)) = (&sent, status) {
            return Err(TargetError::Io {
                path: tmp.to_string(),
                op: "write".into(),
                msg: format!(
                    "cat exited {code}: {}",
                    String::from_utf8_lossy(&stderr).trim()
                ),
            });
        }
        let (n, hasher) = sent?;
        match status {
            Some(0) => Ok((hasher.map(|h| h.finalize().into()), n)),
            Some(code) => Err(TargetError::Io {
                path: tmp.to_string(),
                op: "write".into(),
                msg: format!(
                    "cat exited {code}: {}",
                    String::from_utf8_lossy(&stderr).trim()
                ),
            }),
            None if self.session.is_closed() => Err(TargetError::Unreachable(format!(
                "{}: connection closed while streaming into {tmp}",
                self.session.addr
            ))),
            None => Err(TargetError::Io {
                path: tmp.to_string(),
                op: "write".into(),
                msg: "the stream ended without an exit status".into(),
            }),
        }
    }

    /// Read a whole file with pipelined requests; `sink` gets chunks in order when given,
    /// otherwise they are collected (up to `limit`).
    async fn read_impl(
        &self,
        path: &str,
        limit: u64,
        sink: Option<&mpsc::Sender<Result<Bytes, String>>>,
    ) -> TResult<(FileStat, Vec<u8>)> {
        let sftp = self.sftp().await?;
        let raw = &sftp.raw;
        let handle = raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(|e| sftp_err(path, "open", e))?
            .handle;
        let res = async {
            let attrs = raw
                .fstat(handle.as_str())
                .await
                .map_err(|e| sftp_err(path, "fstat", e))?
                .attrs;
            let st = to_stat(&attrs);
            if st.kind == FileKind::Dir {
                return Err(TargetError::Io {
                    path: path.to_string(),
                    op: "read".into(),
                    msg: "is a directory".into(),
                });
            }
            if sink.is_none() && st.size > limit {
                return Err(TargetError::Io {
                    path: path.to_string(),
                    op: "read".into(),
                    msg: format!(
                        "file is {} bytes, larger than the limit of {limit}",
                        st.size
                    ),
                });
            }
            let mut out = Vec::new();
            let mut next_off: u64 = 0;
            let mut inflight: VecDeque<(u64, JoinHandle<Result<Packet, SftpError>>)> =
                VecDeque::new();
            let issue = |off: u64| {
                let raw = raw.clone();
                let h = handle.clone();
                tokio::spawn(async move {
                    match raw.read(h, off, CHUNK as u32).await {
                        Ok(d) => Ok(Packet::Data(d)),
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => {
                            Ok(Packet::Status(s))
                        }
                        Err(e) => Err(e),
                    }
                })
            };
            let mut eof = false;
            let guard = AbortOnDrop(&mut inflight);
            loop {
                while !eof && guard.0.len() < IN_FLIGHT {
                    guard.0.push_back((next_off, issue(next_off)));
                    next_off += CHUNK as u64;
                }
                let Some((off, j)) = guard.0.pop_front() else {
                    break;
                };
                let pkt = j
                    .await
                    .map_err(|e| TargetError::Other(e.to_string()))?
                    .map_err(|e| sftp_err(path, "read", e))?;
                let data = match pkt {
                    Packet::Data(d) => d.data,
                    _ => {
                        // EOF: drop the requests past the end.
                        eof = true;
                        for (_, j) in guard.0.drain(..) {
                            j.abort();
                        }
                        continue;
                    }
                };
                let mut got = data.len() as u64;
                let mut buf = data;
                // A short read before EOF: fetch the gap synchronously.
                while got < CHUNK as u64 && !eof {
                    match raw
                        .read(handle.as_str(), off + got, (CHUNK as u64 - got) as u32)
                        .await
                    {
                        Ok(d) if !d.data.is_empty() => {
                            got += d.data.len() as u64;
                            buf.extend_from_slice(&d.data);
                        }
                        Ok(_) => eof = true,
                        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => eof = true,
                        Err(e) => return Err(sftp_err(path, "read", e)),
                    }
                }
                if eof {
                    for (_, j) in guard.0.drain(..) {
                        j.abort();
                    }
                }
                match sink {
                    Some(tx) => tx
                        .send(Ok(Bytes::from(buf)))
                        .await
                        .map_err(|_| TargetError::Other(format!("{path}: reader went away")))?,
                    None => {
                        if out.len() as u64 + buf.len() as u64 > limit {
                            return Err(TargetError::Io {
                                path: path.to_string(),
                                op: "read".into(),
                                msg: format!("file grew past the limit of {limit} bytes"),
                            });
                        }
                        out.extend_from_slice(&buf);
                    }
                }
            }
            Ok((st, out))
        }
        .await;
        let _ = raw.close(handle).await;
        res
    }

    /// Check `expect`, make the backup and rename `tmp` over `dest` as one step under an
    /// exclusive `flock` on the destination directory. Every sshfleet writer with a
    /// precondition (the CLI over SSH and the modules' [`super::local::LocalTarget`]) takes the
    /// same lock, so two concurrent edits of one file cannot both pass the check: the second
    /// sees the first one's content, reports [`TargetError::Changed`], and the operation
    /// re-reads and re-applies its edit. Without `flock(1)` on the host, the same script runs
    /// unlocked (the window is then a few milliseconds, as before).
    async fn locked_commit(
        &self,
        tmp: &str,
        dest: &str,
        expect: Expect,
        backup: Option<&str>,
    ) -> TResult<()> {
        const SCRIPT: &str = r#"tmp=$1 dest=$2 want=$3 bak=$4
case "$want" in
  any) ;;
  absent) if [ -e "$dest" ] || [ -L "$dest" ]; then exit 3; fi
    # link(2) never replaces a name: atomic even against writers that take no lock.
    if ln -- "$tmp" "$dest" 2>/dev/null; then rm -f -- "$tmp"; exit 0; fi
    if [ -e "$dest" ] || [ -L "$dest" ]; then exit 3; fi ;;
  *) h=$(sha256sum < "$dest" 2>/dev/null) || exit 3; [ "${h%% *}" = "$want" ] || exit 3 ;;
esac
if [ -n "$bak" ]; then ln -- "$dest" "$bak" 2>/dev/null || cp -p --no-clobber -- "$dest" "$bak" || exit 4; fi
mv -f -- "$tmp" "$dest" || exit 5"#;
        let want = match expect {
            Expect::Any => "any".to_string(),
            Expect::Absent => "absent".to_string(),
            Expect::Sha256(h) => crate::target::hex(&h),
        };
        let dir = parent_dir(dest);
        let script_args = [
            "sh",
            "-c",
            SCRIPT,
            "sh",
            tmp,
            dest,
            &want,
            backup.unwrap_or(""),
        ];
        let mut locked = vec!["flock", "-w", "30", "--", dir];
        locked.extend(script_args);
        let mut out = self.exec_argv(&locked).await?;
        if out.status == 127 {
            out = self.exec_argv(&script_args).await?;
        }
        match out.status {
            0 => Ok(()),
            3 => Err(TargetError::Changed {
                path: dest.to_string(),
            }),
            code => Err(TargetError::Io {
                path: dest.to_string(),
                op: match code {
                    1 => "lock (flock timed out)",
                    4 => "backup",
                    _ => "rename",
                }
                .into(),
                msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }),
        }
    }

    /// Optional backup, then rename `tmp` over `dest`.
    async fn rename_commit(
        &self,
        sftp: &Sftp,
        tmp: &str,
        dest: &str,
        backup: bool,
    ) -> TResult<Option<String>> {
        let backup_file = if backup {
            self.backup(sftp, dest).await?
        } else {
            None
        };
        self.posix_rename(sftp, tmp, dest).await?;
        Ok(backup_file)
    }

    /// [`Expect::Absent`] without any lock: `link(2)` never replaces an existing name, so
    /// linking the temp file to `dest` creates it only if nobody else did. `Ok(false)`: the
    /// file system refused the link for another reason (the caller falls back).
    async fn link_commit(&self, sftp: &Sftp, tmp: &str, dest: &str) -> TResult<bool> {
        if sftp.raw.hardlink(tmp, dest).await.is_ok() {
            // The new file is in place; the second name goes (a leftover is only a stale
            // temp name, removed by the next write of this file).
            let _ = sftp.raw.remove(tmp).await;
            return Ok(true);
        }
        match sftp.raw.lstat(dest).await {
            Ok(_) => Err(TargetError::Changed {
                path: dest.to_string(),
            }),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(sftp_err(dest, "stat", e)),
        }
    }

    async fn posix_rename(&self, sftp: &Sftp, from: &str, to: &str) -> TResult<()> {
        if !sftp.posix_rename {
            // Fall back to `mv -f` (rename(2) too) when the server lacks the extension.
            let out = self.exec_argv(&["mv", "-f", "--", from, to]).await?;
            if out.status != 0 {
                return Err(TargetError::Io {
                    path: to.to_string(),
                    op: "rename".into(),
                    msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
            return Ok(());
        }
        let mut data = Vec::new();
        put_str(&mut data, from);
        put_str(&mut data, to);
        let p = sftp
            .raw
            .extended("posix-rename@openssh.com", data)
            .await
            .map_err(|e| sftp_err(to, "rename", e))?;
        status_ok(p, to, "rename")
    }

    /// A backup name for `dest` that no file has yet (`None` when `dest` is not a regular
    /// file, so there is nothing to back up).
    async fn free_backup_name(&self, sftp: &Sftp, dest: &str) -> TResult<Option<String>> {
        match sftp.raw.lstat(dest).await {
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(sftp_err(dest, "stat", e)),
            Ok(a) if !a.attrs.file_type().is_file() => return Ok(None),
            Ok(_) => {}
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        // Never overwrite an earlier backup: take the first candidate name that is free.
        for candidate in crate::target::backup_candidates(dest, std::process::id(), now) {
            match sftp.raw.lstat(candidate.as_str()).await {
                Err(e) if is_not_found(&e) => return Ok(Some(candidate)),
                Err(e) => return Err(sftp_err(&candidate, "stat", e)),
                Ok(_) => continue,
            }
        }
        Err(TargetError::Io {
            path: dest.to_string(),
            op: "backup".into(),
            msg: "no free backup file name".into(),
        })
    }

    async fn backup(&self, sftp: &Sftp, dest: &str) -> TResult<Option<String>> {
        let Some(name) = self.free_backup_name(sftp, dest).await? else {
            return Ok(None);
        };
        // A hard link keeps the old inode (content, owner, mode, times) under the backup name;
        // the rename then points `dest` at the new file. Neither path replaces an existing file.
        if sftp.hardlink {
            let r = sftp.raw.hardlink(dest, name.as_str()).await;
            if r.is_ok() {
                return Ok(Some(name));
            }
        }
        let out = self
            .exec_argv(&["cp", "-p", "--no-clobber", "--", dest, &name])
            .await?;
        if out.status != 0 {
            return Err(TargetError::Io {
                path: dest.to_string(),
                op: "backup".into(),
                msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(Some(name))
    }

    /// chown (both ids: SFTP sends uid and gid together) then chmod.
    async fn set_attrs_raw(
        &self,
        sftp: &Sftp,
        path: &str,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        current: Option<&FileStat>,
    ) -> TResult<()> {
        if uid.is_some() || gid.is_some() {
            let cur = match current {
                Some(c) => c.clone(),
                None => to_stat(
                    &sftp
                        .raw
                        .lstat(path)
                        .await
                        .map_err(|e| sftp_err(path, "stat", e))?
                        .attrs,
                ),
            };
            let attrs = FileAttributes {
                uid: Some(uid.unwrap_or(cur.uid)),
                gid: Some(gid.unwrap_or(cur.gid)),
                ..FileAttributes::empty()
            };
            sftp.raw
                .setstat(path, attrs)
                .await
                .map_err(|e| sftp_err(path, "chown", e))?;
        }
        if let Some(mode) = mode {
            let attrs = FileAttributes {
                permissions: Some(mode & 0o7777),
                ..FileAttributes::empty()
            };
            sftp.raw
                .setstat(path, attrs)
                .await
                .map_err(|e| sftp_err(path, "chmod", e))?;
        }
        Ok(())
    }

    async fn write_atomic_impl(&self, spec: &WriteSpec, body: Body) -> TResult<WriteOutcome> {
        let sftp = self.sftp().await?.clone();
        let dest = spec.dest.as_str();
        let (_dir, tmp) = temp_name(dest, sftp.owner.as_ref())?;
        let attrs = FileAttributes {
            permissions: Some(0o600),
            ..FileAttributes::empty()
        };
        let handle = sftp
            .raw
            .open(
                tmp.as_str(),
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE,
                attrs,
            )
            .await
            .map_err(|e| sftp_err(&tmp, "create temp file", e))?
            .handle;
        let mut guard = TempGuard {
            sftp: sftp.clone(),
            session: self.session.clone(),
            path: Some(tmp.clone()),
            handle: Some(handle.clone()),
        };
        match self
            .write_steps(&sftp, spec, body, &tmp, &handle, &mut guard)
            .await
        {
            Ok(o) => {
                guard.disarm();
                Ok(o)
            }
            Err(e) => {
                guard.remove().await;
                Err(e)
            }
        }
    }

    async fn write_steps(
        &self,
        sftp: &Arc<Sftp>,
        spec: &WriteSpec,
        body: Body,
        tmp: &str,
        handle: &str,
        guard: &mut TempGuard,
    ) -> TResult<WriteOutcome> {
        let dest = spec.dest.as_str();
        let mut w = Writer {
            raw: sftp.raw.clone(),
            handle: handle.to_string(),
            path: tmp.to_string(),
            offset: 0,
            inflight: VecDeque::new(),
            hasher: None,
        };
        let known = match &body {
            Body::Digested(_, d) | Body::Vouched(_, d) => Some(*d),
            _ => None,
        };
        if known.is_none() {
            w.hasher = Some(Sha256::new());
        }
        // Streams (large files) go through `cat` on an exec channel when the host runs our
        // session script (so it has a POSIX sh) and become needs no handshake; else SFTP.
        let raw_stream = sftp.owner.is_some() && self.handshake_esc().is_none();
        let (hashed, size) = match body {
            Body::Bytes(b) | Body::Digested(b, _) => {
                w.push(b).await?;
                w.finish().await?
            }
            Body::Stream(mut rx) | Body::Vouched(mut rx, _) if raw_stream => {
                let sent = self
                    .stream_to_file(tmp, dest, &mut rx, w.hasher.take())
                    .await?;
                // Our handle's file holds every byte sent: `cat` wrote into the very file
                // this session created (a name swapped meanwhile would show here).
                let on_disk = sftp
                    .raw
                    .fstat(handle)
                    .await
                    .map_err(|e| sftp_err(tmp, "fstat", e))?
                    .attrs
                    .size;
                if on_disk != Some(sent.1) {
                    return Err(TargetError::Io {
                        path: tmp.to_string(),
                        op: "write".into(),
                        msg: format!(
                            "{} bytes sent but the temp file holds {}",
                            sent.1,
                            on_disk.map_or("an unknown size".into(), |n| n.to_string())
                        ),
                    });
                }
                sent
            }
            Body::Stream(mut rx) | Body::Vouched(mut rx, _) => {
                while let Some(chunk) = rx.recv().await {
                    match chunk {
                        Ok(b) => w.push(b).await?,
                        Err(msg) => {
                            return Err(TargetError::Io {
                                path: dest.to_string(),
                                op: "read source".into(),
                                msg,
                            });
                        }
                    }
                }
                w.finish().await?
            }
        };
        let sha256 = known
            .or(hashed)
            .expect("hashed unless the digest was known");
        if sftp.fsync {
            let p = sftp
                .raw
                .extended("fsync@openssh.com", {
                    let mut d = Vec::new();
                    put_str(&mut d, handle);
                    d
                })
                .await
                .map_err(|e| sftp_err(tmp, "fsync", e))?;
            status_ok(p, tmp, "fsync")?;
        }
        sftp.raw
            .close(handle)
            .await
            .map_err(|e| sftp_err(tmp, "close", e))?;
        guard.handle = None;
        self.set_attrs_raw(sftp, tmp, Some(spec.mode), spec.uid, spec.gid, None)
            .await?;
        if let Some(template) = &spec.validate {
            let argv = validate_argv(template, tmp)?;
            let out = self.exec_become(&argv, None).await?;
            if out.status != 0 {
                let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
                if msg.is_empty() {
                    msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
                }
                return Err(TargetError::Validate {
                    path: dest.to_string(),
                    msg: format!("rc={}: {msg}", out.status),
                });
            }
        }
        let holds_lock = sftp.locked_dir.as_deref() == Some(parent_dir(dest));
        let backup_file = match spec.expect {
            Expect::Absent if sftp.hardlink && self.link_commit(sftp, tmp, dest).await? => None,
            Expect::Any => self.rename_commit(sftp, tmp, dest, spec.backup).await?,
            // This session's server holds the directory's lock: check and rename over SFTP.
            expect if holds_lock => {
                let current = match expect {
                    Expect::Absent => self.stat(dest, false).await?.map(|_| [0; 32]),
                    _ => self.sha256(dest).await?,
                };
                let unchanged = match expect {
                    Expect::Sha256(want) => current == Some(want),
                    _ => current.is_none(),
                };
                if !unchanged {
                    return Err(TargetError::Changed {
                        path: dest.to_string(),
                    });
                }
                self.rename_commit(sftp, tmp, dest, spec.backup).await?
            }
            expect => {
                let backup_file = if spec.backup {
                    self.free_backup_name(sftp, dest).await?
                } else {
                    None
                };
                self.locked_commit(tmp, dest, expect, backup_file.as_deref())
                    .await?;
                backup_file
            }
        };
        guard.disarm();
        Ok(WriteOutcome {
            sha256,
            size,
            backup_file,
        })
    }
}

/// Aborts outstanding read requests when a read is abandoned.
struct AbortOnDrop<'a>(&'a mut VecDeque<(u64, JoinHandle<Result<Packet, SftpError>>)>);

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        for (_, j) in self.0.iter() {
            j.abort();
        }
    }
}

fn parse_sha256sum(stdout: &[u8]) -> Option<[u8; 32]> {
    let s = std::str::from_utf8(stdout).ok()?;
    let s = s.strip_prefix('\\').unwrap_or(s);
    let hex = s.get(..64)?;
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Target for SshTarget {
    fn host(&self) -> &str {
        &self.session.host
    }

    async fn stat(&self, path: &str, follow: bool) -> TResult<Option<FileStat>> {
        let sftp = self.sftp().await?;
        let r = if follow {
            sftp.raw.stat(path).await
        } else {
            sftp.raw.lstat(path).await
        };
        match r {
            Ok(a) => Ok(Some(to_stat(&a.attrs))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(sftp_err(path, "stat", e)),
        }
    }

    async fn read(&self, path: &str, limit: u64) -> TResult<Vec<u8>> {
        Ok(self.read_impl(path, limit, None).await?.1)
    }

    async fn read_stream(
        &self,
        path: &str,
        sink: mpsc::Sender<Result<Bytes, String>>,
    ) -> TResult<FileStat> {
        match self.read_impl(path, u64::MAX, Some(&sink)).await {
            Ok((st, _)) => Ok(st),
            Err(e) => {
                let _ = sink.send(Err(e.to_string())).await;
                Err(e)
            }
        }
    }

    async fn sha256(&self, path: &str) -> TResult<Option<[u8; 32]>> {
        let Some(st) = self.stat(path, true).await? else {
            return Ok(None);
        };
        if st.kind == FileKind::File && st.size <= SMALL_FILE {
            match self.read_impl(path, SMALL_FILE, None).await {
                Ok((_, data)) => return Ok(Some(Sha256::digest(&data).into())),
                Err(TargetError::NotFound { .. }) => return Ok(None),
                // Grew meanwhile, or not readable: let sha256sum decide.
                Err(_) => {}
            }
        }
        let out = self
            .exec_argv(&["sh", "-c", HASH_SCRIPT, "sh", path])
            .await?;
        if out.status != 0 {
            if self.stat(path, true).await?.is_none() {
                return Ok(None);
            }
            return Err(TargetError::Io {
                path: path.to_string(),
                op: "sha256sum".into(),
                msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        parse_sha256sum(&out.stdout)
            .map(Some)
            .ok_or_else(|| TargetError::Io {
                path: path.to_string(),
                op: "sha256sum".into(),
                msg: "unexpected output".into(),
            })
    }

    async fn write_atomic(&self, spec: &WriteSpec, body: Body) -> TResult<WriteOutcome> {
        self.write_atomic_impl(spec, body).await
    }

    async fn mkdir(
        &self,
        path: &str,
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> TResult<()> {
        let sftp = self.sftp().await?;
        let attrs = FileAttributes {
            permissions: Some(0o700 & mode),
            ..FileAttributes::empty()
        };
        if let Err(e) = sftp.raw.mkdir(path, attrs).await {
            return match sftp.raw.lstat(path).await {
                Ok(a) if a.attrs.file_type().is_dir() => Ok(()),
                Ok(_) => Err(TargetError::Io {
                    path: path.to_string(),
                    op: "mkdir".into(),
                    msg: "exists and is not a directory".into(),
                }),
                Err(_) => Err(sftp_err(path, "mkdir", e)),
            };
        }
        self.set_attrs_raw(&sftp, path, Some(mode), uid, gid, None)
            .await
    }

    async fn set_attrs(
        &self,
        path: &str,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> TResult<()> {
        let sftp = self.sftp().await?;
        let cur = to_stat(
            &sftp
                .raw
                .lstat(path)
                .await
                .map_err(|e| sftp_err(path, "stat", e))?
                .attrs,
        );
        if cur.kind == FileKind::Symlink {
            return Err(TargetError::Symlink {
                path: path.to_string(),
            });
        }
        self.set_attrs_raw(&sftp, path, mode, uid, gid, Some(&cur))
            .await
    }

    async fn remove(&self, path: &str) -> TResult<()> {
        let sftp = self.sftp().await?;
        sftp.raw
            .remove(path)
            .await
            .map(|_| ())
            .map_err(|e| sftp_err(path, "remove", e))
    }

    async fn list_dir(&self, path: &str) -> TResult<Vec<String>> {
        let sftp = self.sftp().await?;
        let h = sftp
            .raw
            .opendir(path)
            .await
            .map_err(|e| sftp_err(path, "opendir", e))?
            .handle;
        let mut names = Vec::new();
        let res = loop {
            match sftp.raw.readdir(h.as_str()).await {
                Ok(n) => names.extend(
                    n.files
                        .into_iter()
                        .map(|f| f.filename)
                        .filter(|f| f != "." && f != ".."),
                ),
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(()),
                Err(e) => break Err(sftp_err(path, "readdir", e)),
            }
        };
        let _ = sftp.raw.close(h).await;
        res?;
        names.sort();
        Ok(names)
    }

    async fn read_link(&self, path: &str) -> TResult<String> {
        let sftp = self.sftp().await?;
        let n = sftp
            .raw
            .readlink(path)
            .await
            .map_err(|e| sftp_err(path, "readlink", e))?;
        n.files
            .into_iter()
            .next()
            .map(|f| f.filename)
            .ok_or_else(|| TargetError::Io {
                path: path.to_string(),
                op: "readlink".into(),
                msg: "empty reply".into(),
            })
    }

    async fn lookup_user(&self, name: &str) -> TResult<Option<UserInfo>> {
        if let Some(u) = self.cached_user(name) {
            return Ok(u);
        }
        let out = self.exec_argv(&["getent", "passwd", "--", name]).await?;
        let info = match out.status {
            0 => String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .and_then(UserInfo::from_passwd_line),
            2 => None,
            rc => {
                return Err(TargetError::Other(format!(
                    "getent passwd {name}: rc={rc}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        };
        self.cache_user(name, info.clone());
        Ok(info)
    }

    async fn lookup_group(&self, name: &str) -> TResult<Option<u32>> {
        let out = self.exec_argv(&["getent", "group", "--", name]).await?;
        match out.status {
            0 => Ok(String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .and_then(|l| l.split(':').nth(2))
                .and_then(|g| g.parse().ok())),
            2 => Ok(None),
            rc => Err(TargetError::Other(format!(
                "getent group {name}: rc={rc}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    }

    async fn run(&self, argv: &[String], stdin: Option<Vec<u8>>) -> TResult<CommandOutput> {
        if argv.is_empty() {
            return Err(TargetError::Other("empty command".into()));
        }
        self.exec_become(argv, stdin).await
    }

    async fn probe_procs(&self, pids: &[u32]) -> TResult<temp::ProcProbe> {
        let out = self.exec_line(&temp::probe_script(pids), None).await?;
        if out.status != 0 {
            return Err(TargetError::Other(format!(
                "probe processes: rc={}",
                out.status
            )));
        }
        temp::parse_probe(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| TargetError::Other("probe processes: unexpected output".into()))
    }

    async fn begin_edit(&self, hint: &EditHint<'_>) -> TResult<bool> {
        let mut cur = self.sftp.lock().await;
        if cur.as_ref().is_some_and(|s| s.edit) {
            return Ok(false);
        }
        let Some(s) = self.open_edit_sftp(hint).await? else {
            return Ok(false);
        };
        // A plain session still in use by someone else ends when its last user drops it.
        *cur = Some(s);
        Ok(true)
    }

    async fn end_edit(&self) {
        let mut cur = self.sftp.lock().await;
        if cur.as_ref().is_some_and(|s| s.edit)
            && let Some(s) = cur.take()
        {
            // EOF ends sftp-server, and with it flock and the lock.
            let _ = s.raw.close_session();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn become_prefix(b: &BecomeSpec) -> Result<Option<Vec<String>>, escalate::BecomeError> {
        Ok(Escalation::from_spec(b)?.and_then(|e| e.prefix()))
    }

    #[test]
    fn become_prefix_defaults_and_flags() {
        assert_eq!(become_prefix(&BecomeSpec::default()).unwrap(), None);
        let b = BecomeSpec {
            enabled: true,
            ..Default::default()
        };
        assert_eq!(
            become_prefix(&b).unwrap().unwrap(),
            ["sudo", "-H", "-n", "-u", "root", "--"]
        );
        let b = BecomeSpec {
            enabled: true,
            user: Some("deploy".into()),
            flags: Some("-E -n".into()),
            ..Default::default()
        };
        assert_eq!(
            become_prefix(&b).unwrap().unwrap(),
            ["sudo", "-E", "-n", "-u", "deploy", "--"]
        );
        let b = BecomeSpec {
            enabled: true,
            method: Some("doas".into()),
            ..Default::default()
        };
        assert!(become_prefix(&b).is_err());
    }

    #[test]
    fn edit_command_quotes_the_user_and_uses_sh_only_with_become() {
        let plain = edit_command(None, Some("it's"));
        assert!(plain.starts_with("set -- 'it'\\''s'\n"), "{plain}");
        assert!(plain.ends_with(EDIT_SCRIPT));
        assert!(edit_command(None, None).starts_with("set --\n"));
        let prefix: Vec<String> = ["sudo", "-n", "-u", "root", "--"].map(String::from).into();
        let b = edit_command(Some(&prefix), Some("deploy"));
        assert!(b.starts_with("sudo -n -u root -- sh -c '"), "{b}");
        assert!(b.ends_with("' sh deploy"), "{b}");
    }

    #[test]
    fn temp_names_stay_in_the_destination_directory() {
        let (dir, t) = temp_name("/etc/ssl/ca.pem", None).unwrap();
        assert_eq!(dir, "/etc/ssl");
        assert!(
            t.starts_with("/etc/ssl/.ca.pem.sshfleet-") && t.ends_with(".tmp"),
            "{t}"
        );
        let (_, t) = temp_name("/top", None).unwrap();
        assert!(t.starts_with("/.top.sshfleet-"), "{t}");
        let (_, t) = temp_name("rel", None).unwrap();
        assert!(t.starts_with("./.rel.sshfleet-"), "{t}");
        assert!(temp_name("/etc/", None).is_err());
        assert_ne!(
            temp_name("/a/b", None).unwrap().1,
            temp_name("/a/b", None).unwrap().1
        );
    }

    /// The host-side hash script gives the file's sha256 with `openssl` and, where there is
    /// none (a PATH holding only `sha256sum`), with `sha256sum`; a missing file fails.
    #[test]
    fn hash_script_with_and_without_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a b'c");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &data).unwrap();
        let want: [u8; 32] = Sha256::digest(&data).into();
        let only_coreutils = dir.path().join("bin");
        std::fs::create_dir(&only_coreutils).unwrap();
        let sha256sum = ["/usr/bin/sha256sum", "/bin/sha256sum"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap();
        std::os::unix::fs::symlink(sha256sum, only_coreutils.join("sha256sum")).unwrap();
        let run = |path: Option<&Path>, f: &Path| {
            let mut c = std::process::Command::new("/bin/sh");
            c.args(["-c", HASH_SCRIPT, "sh"]).arg(f);
            if let Some(p) = path {
                c.env("PATH", p);
            }
            c.output().unwrap()
        };
        let with = run(None, &file);
        assert!(with.status.success(), "{with:?}");
        assert_eq!(parse_sha256sum(&with.stdout), Some(want));
        let without = run(Some(&only_coreutils), &file);
        assert!(without.status.success(), "{without:?}");
        assert_eq!(parse_sha256sum(&without.stdout), Some(want));
        assert!(!run(None, &dir.path().join("missing")).status.success());
    }

    #[test]
    fn sha256sum_and_passwd_parsing() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d = parse_sha256sum(format!("{hex}  /x\n").as_bytes()).unwrap();
        assert_eq!(crate::target::hex(&d), hex);
        let d = parse_sha256sum(format!("\\{hex}  /a\\nb\n").as_bytes()).unwrap();
        assert_eq!(crate::target::hex(&d), hex);
        assert!(parse_sha256sum(b"short").is_none());
        let u = UserInfo::from_passwd_line("deploy:x:1001:1002:Deploy,,,:/home/deploy:/bin/bash\n")
            .unwrap();
        assert_eq!(
            (
                u.name.as_str(),
                u.uid,
                u.gid,
                u.home.as_str(),
                u.shell.as_str()
            ),
            ("deploy", 1001, 1002, "/home/deploy", "/bin/bash")
        );
        assert!(UserInfo::from_passwd_line("bad:line").is_none());
    }
}
