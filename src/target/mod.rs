//! The [`Target`] trait: everything an operation needs from one host.
//!
//! The operations (the `ops` module, one layer up) are written once against this trait. Two
//! implementations: [`local::LocalTarget`] here (direct syscalls; used by the Ansible module
//! binaries, which Ansible runs on the managed host) and `ssh::target::SshTarget` in the
//! controller-only SSH layer (over one russh connection: SFTP for files, exec for the rest).
//!
//! Paths are remote paths as UTF-8 strings. Every write goes through [`Target::write_atomic`]:
//! temp file in the destination directory, fsync, attributes, optional validate, optional
//! "still what I read" check, rename. Nothing else writes file content.

pub mod local;
pub mod temp;

use std::future::Future;

use bytes::Bytes;
use tokio::sync::mpsc;

/// What kind of file system object a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

impl FileKind {
    /// The kind from a file type's three predicates (both targets map theirs through this).
    pub fn classify(is_symlink: bool, is_dir: bool, is_file: bool) -> Self {
        if is_symlink {
            FileKind::Symlink
        } else if is_dir {
            FileKind::Dir
        } else if is_file {
            FileKind::File
        } else {
            FileKind::Other
        }
    }
}

/// `stat`/`lstat` result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits only (`0o7777` mask).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

/// A passwd entry, as `getent passwd NAME` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

impl UserInfo {
    /// Parse one passwd line, `name:x:uid:gid:gecos:home:shell` (as `getent passwd` prints
    /// it; a trailing newline is ignored). None when it has not seven fields or a bad id.
    pub fn from_passwd_line(line: &str) -> Option<UserInfo> {
        let f: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
        if f.len() != 7 {
            return None;
        }
        Some(UserInfo {
            name: f[0].to_string(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5].to_string(),
            shell: f[6].to_string(),
        })
    }
}

/// Result of running a command on the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A precondition on the destination checked immediately before the final rename, so a file
/// someone else changed since we read it is never overwritten with stale edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Overwrite whatever is there.
    Any,
    /// The destination must not exist.
    Absent,
    /// The destination must still have exactly this sha256.
    Sha256([u8; 32]),
}

/// How to write one file atomically.
#[derive(Debug, Clone)]
pub struct WriteSpec {
    /// Final path. Its parent directory must exist.
    pub dest: String,
    /// Permission bits for the new file.
    pub mode: u32,
    /// Owner/group for the new file; `None` keeps what the writing user gets.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub expect: Expect,
    /// A command template run on the temp file before the rename; `%s` is replaced by the
    /// (shell-quoted) temp path. Non-zero exit aborts the write.
    pub validate: Option<String>,
    /// Keep the previous file as `DEST.YYYY-MM-DD@HH:MM:SS~` (Ansible's backup naming).
    pub backup: bool,
}

/// Content for [`Target::write_atomic`]: in memory, or a bounded stream of chunks (replicate).
pub enum Body {
    Bytes(Bytes),
    /// In memory, with the sha256 the caller computed from these very bytes (shared content
    /// written to many hosts is then not hashed again per host).
    Digested(Bytes, [u8; 32]),
    /// Chunks in order; an `Err` aborts the write (temp file removed, destination untouched).
    Stream(mpsc::Receiver<Result<Bytes, String>>),
    /// A stream whose sender vouches for its content: it hashes the chunks itself and, unless
    /// they hash to this sha256, sends an `Err` before it closes the stream. The writer then
    /// does not hash them again (replicate's fan-out hashes each chunk once for every
    /// destination; see `ops::replicate::fanout`).
    Vouched(mpsc::Receiver<Result<Bytes, String>>, [u8; 32]),
}

/// What [`Target::write_atomic`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    pub sha256: [u8; 32],
    pub size: u64,
    pub backup_file: Option<String>,
}

/// A per-host failure. `Unreachable` is a transport failure (Ansible's "unreachable");
/// everything else is "failed".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    #[error("{path}: permission denied ({op})")]
    PermissionDenied { path: String, op: String },
    #[error("{path}: is a symlink; refusing to write through it (use follow to allow)")]
    Symlink { path: String },
    #[error("{path}: changed by someone else since it was read; not overwritten")]
    Changed { path: String },
    #[error("{path}: validation failed: {msg}")]
    Validate { path: String, msg: String },
    #[error("{path}: {op}: {msg}")]
    Io {
        path: String,
        op: String,
        msg: String,
    },
    #[error("{0}")]
    Other(String),
}

pub type TResult<T> = Result<T, TargetError>;

impl TargetError {
    /// A failed `op` on `path`: [`TargetError::NotFound`] or [`TargetError::PermissionDenied`]
    /// when `kind` says so, otherwise [`TargetError::Io`] with `msg`. Both targets map their
    /// native errors (`std::io`, SFTP status codes) through this one classification.
    pub fn io(path: &str, op: &str, kind: std::io::ErrorKind, msg: String) -> Self {
        match kind {
            std::io::ErrorKind::NotFound => TargetError::NotFound {
                path: path.to_string(),
            },
            std::io::ErrorKind::PermissionDenied => TargetError::PermissionDenied {
                path: path.to_string(),
                op: op.to_string(),
            },
            _ => TargetError::Io {
                path: path.to_string(),
                op: op.to_string(),
                msg,
            },
        }
    }
}

/// Everything an operation needs from one host. All methods take `&self` so one connection
/// can serve concurrent requests. Implementations must never pass user-supplied strings
/// through a shell unquoted.
pub trait Target: Send + Sync {
    /// Host name for messages.
    fn host(&self) -> &str;

    /// `stat` (follow = true) or `lstat`; `Ok(None)` when the path does not exist.
    fn stat(
        &self,
        path: &str,
        follow: bool,
    ) -> impl Future<Output = TResult<Option<FileStat>>> + Send;

    /// Read a whole (small) file; fails if it is larger than `limit` bytes.
    fn read(&self, path: &str, limit: u64) -> impl Future<Output = TResult<Vec<u8>>> + Send;

    /// Stream a file's content into `sink` in order; returns the stat taken at open time.
    fn read_stream(
        &self,
        path: &str,
        sink: mpsc::Sender<Result<Bytes, String>>,
    ) -> impl Future<Output = TResult<FileStat>> + Send;

    /// sha256 of a file's content computed on the target; `Ok(None)` if it does not exist.
    fn sha256(&self, path: &str) -> impl Future<Output = TResult<Option<[u8; 32]>>> + Send;

    /// Write atomically as described by `spec` (see module docs).
    fn write_atomic(
        &self,
        spec: &WriteSpec,
        body: Body,
    ) -> impl Future<Output = TResult<WriteOutcome>> + Send;

    /// Create one directory (not parents) with `mode` and optional owner. Ok if it exists.
    fn mkdir(
        &self,
        path: &str,
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> impl Future<Output = TResult<()>> + Send;

    /// Change mode and/or owner of an existing path (never follows a final symlink).
    fn set_attrs(
        &self,
        path: &str,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> impl Future<Output = TResult<()>> + Send;

    /// Remove a file (used to clean up our own temp files).
    fn remove(&self, path: &str) -> impl Future<Output = TResult<()>> + Send;

    /// List a directory's entry names (no `.`/`..`).
    fn list_dir(&self, path: &str) -> impl Future<Output = TResult<Vec<String>>> + Send;

    /// Resolve a symlink's target.
    fn read_link(&self, path: &str) -> impl Future<Output = TResult<String>> + Send;

    /// Look up a user in the system user database.
    fn lookup_user(&self, name: &str) -> impl Future<Output = TResult<Option<UserInfo>>> + Send;

    /// Look up a group id by name.
    fn lookup_group(&self, name: &str) -> impl Future<Output = TResult<Option<u32>>> + Send;

    /// Run `argv` (no shell) with optional stdin.
    fn run(
        &self,
        argv: &[String],
        stdin: Option<Vec<u8>>,
    ) -> impl Future<Output = TResult<CommandOutput>> + Send;

    /// The host's boot id and the `/proc/PID/stat` line of each of `pids` that exists: what
    /// [`temp::sweep_dead_temps`] needs to apply the temp-file ownership rule. The default
    /// cannot tell (an error), and then nothing is removed.
    fn probe_procs(&self, pids: &[u32]) -> impl Future<Output = TResult<temp::ProcProbe>> + Send {
        let _ = pids;
        async {
            Err(TargetError::Other(
                "this target cannot inspect processes".into(),
            ))
        }
    }

    /// Begin an edit: a read-modify-write of files in one directory. The target looks
    /// `hint.user` up (answers are then served by [`Target::lookup_user`]) and may hold the
    /// directory's writer lock (see [`EditHint::lock_dir`]) until [`Target::end_edit`], so the
    /// read and the write form one transaction. Returns whether this call began an edit (false
    /// inside one already, or when the target has nothing to gain from it); call
    /// [`Target::end_edit`] exactly when it returned true.
    ///
    /// Optional: by default nothing happens, and every write with a precondition takes the
    /// lock itself around its check and rename ([`local::LocalTarget`] does that; it is cheap
    /// there). `SshTarget` uses it to do the lookup, the lock and the file session on one
    /// channel instead of three.
    fn begin_edit(&self, hint: &EditHint<'_>) -> impl Future<Output = TResult<bool>> + Send {
        let _ = hint;
        async { Ok(false) }
    }

    /// End the edit [`Target::begin_edit`] began (releases the lock). Best effort.
    fn end_edit(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// What [`Target::begin_edit`] needs to know up front.
pub struct EditHint<'a> {
    /// The user whose files are edited (looked up once, at the start).
    pub user: &'a str,
    /// The directory to lock, given the user's passwd entry (`None` when the user does not
    /// exist): the parent directory of the files the edit writes. `None` = lock nothing.
    pub lock_dir: &'a (dyn Fn(Option<&UserInfo>) -> Option<String> + Sync),
}

/// The name of user or group `id` on `t`: first field of `getent DB ID` (`db` is `passwd` or
/// `group`; works the same in a static musl binary as with glibc NSS). Best effort: `None`
/// when there is no entry or the lookup fails.
pub async fn id_name<T: Target>(t: &T, db: &str, id: u32) -> Option<String> {
    let out = t
        .run(&["getent".into(), db.into(), id.to_string()], None)
        .await
        .ok()?;
    if out.status != 0 {
        return None;
    }
    let line = String::from_utf8(out.stdout).ok()?;
    let name = line.split(':').next()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Hex of a sha256 digest.
pub fn hex(digest: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Quote one word for a POSIX shell (single quotes; `'` becomes `'\''`).
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        return word.to_string();
    }
    let mut s = String::with_capacity(word.len() + 2);
    s.push('\'');
    for c in word.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    s
}

/// Split a command line like POSIX `shlex.split` (quotes and backslashes; no expansion).
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated single quote in {line:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unterminated double quote in {line:?}")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated double quote in {line:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => cur.push(c),
                    None => return Err(format!("trailing backslash in {line:?}")),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The argv for a `validate` template run on `temp_path`: the template is split into words
/// first, then every `%s` is replaced by the path, so a path with spaces or shell
/// metacharacters stays one inert argument. Like Ansible, the template must contain `%s`.
pub fn validate_argv(template: &str, temp_path: &str) -> TResult<Vec<String>> {
    if !template.contains("%s") {
        return Err(TargetError::Other(format!(
            "validate must contain %s: {template}"
        )));
    }
    let words = split_command(template).map_err(TargetError::Other)?;
    if words.is_empty() {
        return Err(TargetError::Other("validate command is empty".into()));
    }
    Ok(words
        .into_iter()
        .map(|w| w.replace("%s", temp_path))
        .collect())
}

/// Ansible's backup file name (`basic.py` `backup_local`): `DEST.PID.YYYY-MM-DD@HH:MM:SS~` in
/// local time of the host that makes the backup.
pub fn backup_name(dest: &str, pid: u32, unix_secs: i64) -> String {
    let (y, mo, d, h, mi, s) = local_civil(unix_secs);
    format!("{dest}.{pid}.{y:04}-{mo:02}-{d:02}@{h:02}:{mi:02}:{s:02}~")
}

/// Backup names to try for `dest`, in order: Ansible's name first, then (when that is taken —
/// a second backup within the same second) `NAME.1~`, `NAME.2~`, ... so no backup is ever
/// overwritten.
pub fn backup_candidates(dest: &str, pid: u32, unix_secs: i64) -> impl Iterator<Item = String> {
    let base = backup_name(dest, pid, unix_secs);
    (0..1000u32).map(move |n| {
        if n == 0 {
            base.clone()
        } else {
            format!("{}.{n}~", base.trim_end_matches('~'))
        }
    })
}

/// Local civil time via `localtime_r` (falls back to UTC).
// `libc::time_t` is flagged deprecated on musl (it will become 64-bit there); it is exactly
// the type `localtime_r` takes on every target, so it stays.
#[allow(deprecated)]
fn local_civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let tt = t as libc::time_t;
    // SAFETY: zeroed tm is a valid out-parameter for localtime_r.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&tt, &mut tm) }.is_null() {
        return civil_from_unix(t);
    }
    (
        tm.tm_year as i64 + 1900,
        (tm.tm_mon + 1) as u32,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
    )
}

/// UTC civil time from a unix timestamp (Howard Hinnant's days-from-civil inverse).
pub fn civil_from_unix(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        ((secs % 3600) / 60) as u32,
        (secs % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_plain_and_hostile() {
        assert_eq!(shell_quote("abc/d.e"), "abc/d.e");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("$(touch /tmp/x)"), "'$(touch /tmp/x)'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn split_like_shlex() {
        assert_eq!(split_command("a  b").unwrap(), ["a", "b"]);
        assert_eq!(
            split_command(r#"x 'a b' "c \"d\" $e" f\ g"#).unwrap(),
            ["x", "a b", "c \"d\" $e", "f g"]
        );
        assert_eq!(split_command("''").unwrap(), [""]);
        assert!(split_command("'open").is_err());
        assert_eq!(
            validate_argv("visudo -cf %s", "/etc/.x $(y)").unwrap(),
            ["visudo", "-cf", "/etc/.x $(y)"]
        );
        assert!(validate_argv("true", "/x").is_err());
    }

    #[test]
    fn civil_time() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
        let mut names = backup_candidates("/x", 42, 1_700_000_000);
        let first = names.next().unwrap();
        assert_eq!(first, backup_name("/x", 42, 1_700_000_000));
        assert_eq!(
            names.next().unwrap(),
            format!("{}.1~", first.trim_end_matches('~'))
        );
        let name = first;
        assert!(
            name.starts_with("/x.42.2023-11-1") && name.ends_with('~'),
            "{name}"
        );
    }
}
