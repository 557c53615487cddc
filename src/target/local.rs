//! [`LocalTarget`]: the [`Target`] trait over direct syscalls on this host.
//!
//! Used by the Ansible module binaries (Ansible runs them on the managed host) and by unit
//! tests of the operations. Every write follows [`Target::write_atomic`]'s contract: a temp
//! file created exclusively in the destination directory, written, owned and chmod-ed, fsync-ed,
//! optionally validated, checked against [`Expect`], renamed over the destination, and the
//! directory fsync-ed. Any failure removes the temp file and leaves the destination untouched.

use std::ffi::{CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::temp;
use super::{
    Body, CommandOutput, Expect, FileKind, FileStat, TResult, Target, TargetError, UserInfo,
    WriteOutcome, WriteSpec, validate_argv,
};

/// Chunk size for streaming reads.
const CHUNK: usize = 256 * 1024;

/// The local host.
#[derive(Debug, Default, Clone)]
pub struct LocalTarget;

impl LocalTarget {
    pub fn new() -> Self {
        LocalTarget
    }
}

fn io_err(path: &str, op: &str, e: io::Error) -> TargetError {
    TargetError::io(path, op, e.kind(), e.to_string())
}

fn to_stat(m: &fs::Metadata) -> FileStat {
    let ft = m.file_type();
    FileStat {
        kind: FileKind::classify(ft.is_symlink(), ft.is_dir(), ft.is_file()),
        size: m.len(),
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.mtime(),
    }
}

fn stat_path(path: &str, follow: bool) -> TResult<Option<FileStat>> {
    let res = if follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    };
    match res {
        Ok(m) => Ok(Some(to_stat(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, "stat", e)),
    }
}

fn sha256_file(path: &str) -> TResult<Option<[u8; 32]>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, "open", e)),
    };
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).map_err(|e| io_err(path, "read", e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Some(h.finalize().into()))
}

/// A temp path next to `dest`, owned by this process under the rule of [`super::temp`]:
/// `DIR/.NAME.sshfleet-BOOT-PID-START-RAND.tmp` (unowned `.NAME.sshfleet-RAND.tmp` only
/// without `/proc`).
fn temp_path_for(dest: &str) -> TResult<String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static OWNER: std::sync::OnceLock<Option<temp::Owner>> = std::sync::OnceLock::new();
    let p = Path::new(dest);
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| TargetError::Other(format!("{dest}: not a file path")))?;
    let dir = p
        .parent()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let owner = OWNER.get_or_init(temp::Owner::current);
    let file = temp::temp_name(name, owner.as_ref(), (n << 32) ^ u64::from(nanos));
    Ok(if dir.is_empty() {
        file
    } else {
        format!("{dir}/{file}")
    })
}

fn chown(path: &str, uid: Option<u32>, gid: Option<u32>) -> TResult<()> {
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, uid, gid).map_err(|e| io_err(path, "chown", e))
}

/// Removes the temp file on drop unless disarmed (so every early return cleans up).
struct TempGuard {
    path: String,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn check_expect(dest: &str, expect: Expect) -> TResult<()> {
    match expect {
        Expect::Any => Ok(()),
        Expect::Absent => match fs::symlink_metadata(dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Ok(_) => Err(TargetError::Changed {
                path: dest.to_string(),
            }),
            Err(e) => Err(io_err(dest, "stat", e)),
        },
        Expect::Sha256(want) => match sha256_file(dest)? {
            Some(have) if have == want => Ok(()),
            _ => Err(TargetError::Changed {
                path: dest.to_string(),
            }),
        },
    }
}

fn backup_file(dest: &str) -> TResult<Option<String>> {
    let meta = match fs::metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(dest, "stat", e)),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    for name in super::backup_candidates(dest, std::process::id(), now) {
        // A hard link keeps the old inode (content, owner, mode, times) under the backup name
        // and, like every fallback here, never replaces an existing file.
        match fs::hard_link(dest, &name) {
            Ok(()) => return Ok(Some(name)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) => {}
        }
        let mut src = File::open(dest).map_err(|e| io_err(dest, "backup", e))?;
        let mut out = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&name)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&name, "backup", e)),
        };
        io::copy(&mut src, &mut out).map_err(|e| io_err(&name, "backup", e))?;
        let _ = std::os::unix::fs::lchown(&name, Some(meta.uid()), Some(meta.gid()));
        out.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| io_err(&name, "backup", e))?;
        return Ok(Some(name));
    }
    Err(io_err(
        dest,
        "backup",
        io::Error::other("no free backup file name"),
    ))
}

/// An exclusive `flock(2)` on the directory containing a path, released on drop. `flock(1)`
/// on a directory (what `SshTarget` runs remotely) takes the same lock. The field only keeps
/// the descriptor (and so the lock) alive.
struct DirLock(#[allow(dead_code)] File);

impl DirLock {
    fn acquire(dest: &str) -> TResult<DirLock> {
        use std::os::fd::AsRawFd;
        let dir = match Path::new(dest).parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|e| io_err(&dir.to_string_lossy(), "lock", e))?;
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(DirLock(f));
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(io_err(&dir.to_string_lossy(), "lock", e));
            }
        }
    }
}

fn fsync_dir(dest: &str) {
    if let Some(dir) = Path::new(dest).parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

fn run_blocking(argv: &[String], stdin: Option<&[u8]>) -> TResult<CommandOutput> {
    use std::process::{Command, Stdio};
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| TargetError::Other("empty command".into()))?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io_err(prog, "exec", e))?;
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(data)
            .map_err(|e| io_err(prog, "write stdin", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| io_err(prog, "wait", e))?;
    Ok(CommandOutput {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

impl LocalTarget {
    /// Write a chunk stream to `file` (hashing it into `hasher` when given); the bytes written.
    async fn drain_stream(
        rx: &mut mpsc::Receiver<Result<Bytes, String>>,
        file: &mut File,
        mut hasher: Option<&mut Sha256>,
        spec: &WriteSpec,
        tmp: &str,
    ) -> TResult<u64> {
        let mut size = 0u64;
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.map_err(|msg| TargetError::Io {
                path: spec.dest.clone(),
                op: "read source".into(),
                msg,
            })?;
            file.write_all(&chunk)
                .map_err(|e| io_err(tmp, "write", e))?;
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&chunk);
            }
            size += chunk.len() as u64;
        }
        Ok(size)
    }

    fn write_atomic_sync_prepare(spec: &WriteSpec) -> TResult<(TempGuard, File)> {
        let tmp = temp_path_for(&spec.dest)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, "create temp file", e))?;
        Ok((
            TempGuard {
                path: tmp,
                armed: true,
            },
            file,
        ))
    }

    fn write_atomic_finish(
        spec: &WriteSpec,
        mut guard: TempGuard,
        file: File,
        sha256: [u8; 32],
        size: u64,
    ) -> TResult<WriteOutcome> {
        let tmp = guard.path.clone();
        // Owner first (chown may clear set-id bits), then mode, then make it durable.
        chown(&tmp, spec.uid, spec.gid)?;
        file.set_permissions(fs::Permissions::from_mode(spec.mode & 0o7777))
            .map_err(|e| io_err(&tmp, "chmod", e))?;
        file.sync_all().map_err(|e| io_err(&tmp, "fsync", e))?;
        drop(file);
        if let Some(template) = &spec.validate {
            let argv = validate_argv(template, &tmp)?;
            let out = run_blocking(&argv, None)?;
            if out.status != 0 {
                return Err(TargetError::Validate {
                    path: spec.dest.clone(),
                    msg: format!(
                        "command exited {}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                });
            }
        }
        // Same directory lock as SshTarget's locked commit, so the CLI and the modules never
        // both pass the "still what I read" check for one file.
        let _lock = (spec.expect != Expect::Any)
            .then(|| DirLock::acquire(&spec.dest))
            .transpose()?;
        check_expect(&spec.dest, spec.expect)?;
        if spec.expect == Expect::Absent {
            // link(2) never replaces a name, so this is atomic even against writers that take
            // no lock (SshTarget creates files that way).
            match fs::hard_link(&tmp, &spec.dest) {
                Ok(()) => {
                    fsync_dir(&spec.dest);
                    return Ok(WriteOutcome {
                        sha256,
                        size,
                        backup_file: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(TargetError::Changed {
                        path: spec.dest.clone(),
                    });
                }
                // No hard links on this file system: the checked rename below.
                Err(_) => {}
            }
        }
        let backup_file = if spec.backup {
            backup_file(&spec.dest)?
        } else {
            None
        };
        fs::rename(&tmp, &spec.dest).map_err(|e| io_err(&spec.dest, "rename", e))?;
        guard.armed = false;
        fsync_dir(&spec.dest);
        Ok(WriteOutcome {
            sha256,
            size,
            backup_file,
        })
    }
}

impl Target for LocalTarget {
    fn host(&self) -> &str {
        "localhost"
    }

    async fn stat(&self, path: &str, follow: bool) -> TResult<Option<FileStat>> {
        stat_path(path, follow)
    }

    async fn read(&self, path: &str, limit: u64) -> TResult<Vec<u8>> {
        let f = File::open(path).map_err(|e| io_err(path, "open", e))?;
        let mut buf = Vec::new();
        f.take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| io_err(path, "read", e))?;
        if buf.len() as u64 > limit {
            return Err(TargetError::Io {
                path: path.to_string(),
                op: "read".into(),
                msg: format!("file is larger than the {limit}-byte limit"),
            });
        }
        Ok(buf)
    }

    async fn read_stream(
        &self,
        path: &str,
        sink: mpsc::Sender<Result<Bytes, String>>,
    ) -> TResult<FileStat> {
        let mut f = File::open(path).map_err(|e| io_err(path, "open", e))?;
        let meta = f.metadata().map_err(|e| io_err(path, "stat", e))?;
        if !meta.is_file() {
            return Err(TargetError::Io {
                path: path.to_string(),
                op: "read".into(),
                msg: "not a regular file".into(),
            });
        }
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match f.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let err = io_err(path, "read", e);
                    let _ = sink.send(Err(err.to_string())).await;
                    return Err(err);
                }
            };
            if n == 0 {
                break;
            }
            buf.truncate(n);
            if sink.send(Ok(Bytes::from(buf))).await.is_err() {
                return Err(TargetError::Other(format!("{path}: reader went away")));
            }
        }
        Ok(to_stat(&meta))
    }

    async fn sha256(&self, path: &str) -> TResult<Option<[u8; 32]>> {
        sha256_file(path)
    }

    async fn write_atomic(&self, spec: &WriteSpec, body: Body) -> TResult<WriteOutcome> {
        let (guard, mut file) = Self::write_atomic_sync_prepare(spec)?;
        let tmp = guard.path.clone();
        let mut hasher = Sha256::new();
        let (size, known) = match body {
            Body::Bytes(b) => {
                file.write_all(&b).map_err(|e| io_err(&tmp, "write", e))?;
                hasher.update(&b);
                (b.len() as u64, None)
            }
            Body::Digested(b, digest) => {
                file.write_all(&b).map_err(|e| io_err(&tmp, "write", e))?;
                (b.len() as u64, Some(digest))
            }
            Body::Stream(mut rx) => {
                let n = Self::drain_stream(&mut rx, &mut file, Some(&mut hasher), spec, &tmp);
                (n.await?, None)
            }
            Body::Vouched(mut rx, digest) => {
                let n = Self::drain_stream(&mut rx, &mut file, None, spec, &tmp);
                (n.await?, Some(digest))
            }
        };
        let sha256 = known.unwrap_or_else(|| hasher.finalize().into());
        Self::write_atomic_finish(spec, guard, file, sha256, size)
    }

    async fn mkdir(
        &self,
        path: &str,
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> TResult<()> {
        match fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return match fs::symlink_metadata(path) {
                    Ok(m) if m.is_dir() => Ok(()),
                    Ok(_) => Err(TargetError::Io {
                        path: path.to_string(),
                        op: "mkdir".into(),
                        msg: "exists and is not a directory".into(),
                    }),
                    Err(e) => Err(io_err(path, "stat", e)),
                };
            }
            Err(e) => return Err(io_err(path, "mkdir", e)),
        }
        chown(path, uid, gid)?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io_err(path, "chmod", e))
    }

    async fn set_attrs(
        &self,
        path: &str,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> TResult<()> {
        chown(path, uid, gid)?;
        if let Some(mode) = mode {
            let m = fs::symlink_metadata(path).map_err(|e| io_err(path, "stat", e))?;
            if m.file_type().is_symlink() {
                return Err(TargetError::Symlink {
                    path: path.to_string(),
                });
            }
            fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| io_err(path, "chmod", e))?;
        }
        Ok(())
    }

    async fn remove(&self, path: &str) -> TResult<()> {
        fs::remove_file(path).map_err(|e| io_err(path, "remove", e))
    }

    async fn list_dir(&self, path: &str) -> TResult<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path).map_err(|e| io_err(path, "readdir", e))? {
            let entry = entry.map_err(|e| io_err(path, "readdir", e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    async fn read_link(&self, path: &str) -> TResult<String> {
        fs::read_link(path)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| io_err(path, "readlink", e))
    }

    async fn lookup_user(&self, name: &str) -> TResult<Option<UserInfo>> {
        lookup_user(name)
    }

    async fn lookup_group(&self, name: &str) -> TResult<Option<u32>> {
        lookup_group(name)
    }

    async fn run(&self, argv: &[String], stdin: Option<Vec<u8>>) -> TResult<CommandOutput> {
        run_blocking(argv, stdin.as_deref())
    }

    async fn probe_procs(&self, pids: &[u32]) -> TResult<temp::ProcProbe> {
        temp::probe_local(pids).map_err(|e| io_err("/proc", "read", e))
    }
}

fn cstr_field(p: *const libc::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: getpwnam_r/getgrnam_r fill NUL-terminated strings inside our buffer.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Run one `get*nam_r` lookup of `name`, growing the buffer while it answers `ERANGE`.
/// `call(name, buf)` returns the entry (`None`: no such entry) or the call's error code.
fn nss_lookup<E>(
    what: &str,
    name: &str,
    mut call: impl FnMut(&CStr, &mut [libc::c_char]) -> Result<Option<E>, libc::c_int>,
) -> TResult<Option<E>> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    loop {
        match call(&cname, &mut buf) {
            Err(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(rc) => {
                return Err(TargetError::Other(format!(
                    "{what} lookup for {name:?} failed: {}",
                    io::Error::from_raw_os_error(rc)
                )));
            }
            Ok(found) => return Ok(found),
        }
    }
}

/// `getpwnam_r`: the system user database (NSS), as Python's `pwd.getpwnam`.
pub fn lookup_user(name: &str) -> TResult<Option<UserInfo>> {
    nss_lookup("user", name, |cname, buf| {
        // SAFETY: zeroed passwd is a valid out-parameter; `buf` outlives the call and the
        // strings read from it below.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 {
            return Err(rc);
        }
        Ok((!result.is_null()).then(|| UserInfo {
            name: cstr_field(pw.pw_name),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            home: cstr_field(pw.pw_dir),
            shell: cstr_field(pw.pw_shell),
        }))
    })
}

/// `getgrnam_r`: a group id by name.
pub fn lookup_group(name: &str) -> TResult<Option<u32>> {
    nss_lookup("group", name, |cname, buf| {
        // SAFETY: as above.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 {
            return Err(rc);
        }
        Ok((!result.is_null()).then_some(gr.gr_gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn spec(dest: &Path) -> WriteSpec {
        WriteSpec {
            dest: dest.to_string_lossy().into_owned(),
            mode: 0o640,
            uid: None,
            gid: None,
            expect: Expect::Any,
            validate: None,
            backup: false,
        }
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".sshfleet-"))
            .collect()
    }

    #[test]
    fn write_atomic_writes_mode_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        let t = LocalTarget;
        let out = rt()
            .block_on(t.write_atomic(&spec(&dest), Body::Bytes(Bytes::from_static(b"hello\n"))))
            .unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"hello\n");
        assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(out.size, 6);
        assert_eq!(out.sha256, <[u8; 32]>::from(Sha256::digest(b"hello\n")));
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn stream_error_leaves_destination_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fs::write(&dest, b"old").unwrap();
        let t = LocalTarget;
        let (tx, rx) = mpsc::channel(4);
        let res = rt().block_on(async {
            tx.send(Ok(Bytes::from_static(b"partial"))).await.unwrap();
            tx.send(Err("source died".into())).await.unwrap();
            drop(tx);
            t.write_atomic(&spec(&dest), Body::Stream(rx)).await
        });
        assert!(matches!(res, Err(TargetError::Io { .. })), "{res:?}");
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn expect_guards_against_concurrent_change() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fs::write(&dest, b"theirs").unwrap();
        let t = LocalTarget;
        let mut s = spec(&dest);
        s.expect = Expect::Sha256(Sha256::digest(b"what we read").into());
        let res = rt().block_on(t.write_atomic(&s, Body::Bytes(Bytes::from_static(b"ours"))));
        assert!(matches!(res, Err(TargetError::Changed { .. })), "{res:?}");
        assert_eq!(fs::read(&dest).unwrap(), b"theirs");
        s.expect = Expect::Absent;
        let res = rt().block_on(t.write_atomic(&s, Body::Bytes(Bytes::from_static(b"ours"))));
        assert!(matches!(res, Err(TargetError::Changed { .. })), "{res:?}");
        s.expect = Expect::Sha256(Sha256::digest(b"theirs").into());
        rt().block_on(t.write_atomic(&s, Body::Bytes(Bytes::from_static(b"ours"))))
            .unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"ours");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn validate_runs_on_temp_file_and_can_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("it's a file");
        fs::write(&dest, b"old").unwrap();
        let t = LocalTarget;
        let mut s = spec(&dest);
        s.validate = Some("grep -q good %s".into());
        let res = rt().block_on(t.write_atomic(&s, Body::Bytes(Bytes::from_static(b"bad"))));
        assert!(matches!(res, Err(TargetError::Validate { .. })), "{res:?}");
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        rt().block_on(t.write_atomic(&s, Body::Bytes(Bytes::from_static(b"good"))))
            .unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"good");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn backup_keeps_previous_content() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        fs::write(&dest, b"v1").unwrap();
        let mut s = spec(&dest);
        s.backup = true;
        let out = rt()
            .block_on(LocalTarget.write_atomic(&s, Body::Bytes(Bytes::from_static(b"v2"))))
            .unwrap();
        let backup = out.backup_file.expect("backup made");
        assert_eq!(fs::read(&backup).unwrap(), b"v1");
        assert_eq!(fs::read(&dest).unwrap(), b"v2");
        // A second backup within the same second gets its own name; the first survives.
        let out2 = rt()
            .block_on(LocalTarget.write_atomic(&s, Body::Bytes(Bytes::from_static(b"v3"))))
            .unwrap();
        let backup2 = out2.backup_file.expect("second backup made");
        assert_ne!(backup2, backup);
        assert_eq!(fs::read(&backup).unwrap(), b"v1");
        assert_eq!(fs::read(&backup2).unwrap(), b"v2");
    }

    #[test]
    fn rename_replaces_a_symlink_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        fs::write(&real, b"real").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        rt().block_on(
            LocalTarget.write_atomic(&spec(&link), Body::Bytes(Bytes::from_static(b"new"))),
        )
        .unwrap();
        assert_eq!(fs::read(&real).unwrap(), b"real");
        assert!(
            !fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn stat_read_and_users() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"0123456789").unwrap();
        let p = f.to_str().unwrap();
        let t = LocalTarget;
        let rt = rt();
        let st = rt.block_on(t.stat(p, true)).unwrap().unwrap();
        assert_eq!((st.kind, st.size), (FileKind::File, 10));
        assert_eq!(
            rt.block_on(t.stat(&format!("{p}.missing"), true)).unwrap(),
            None
        );
        assert!(rt.block_on(t.read(p, 5)).is_err());
        assert_eq!(rt.block_on(t.read(p, 10)).unwrap(), b"0123456789");
        let root = rt.block_on(t.lookup_user("root")).unwrap().unwrap();
        assert_eq!((root.uid, root.home.as_str()), (0, "/root"));
        assert_eq!(
            rt.block_on(t.lookup_user("no-such-user-xyz")).unwrap(),
            None
        );
        assert_eq!(rt.block_on(t.lookup_group("root")).unwrap(), Some(0));
        let (tx, mut rx) = mpsc::channel(2);
        let got = rt.block_on(async {
            let reader = t.read_stream(p, tx);
            let collect = async {
                let mut v = Vec::new();
                while let Some(c) = rx.recv().await {
                    v.extend_from_slice(&c.unwrap());
                }
                v
            };
            let (st, v) = tokio::join!(reader, collect);
            st.unwrap();
            v
        });
        assert_eq!(got, b"0123456789");
    }
}
