//! What the resolver asks the operating system, in one place: the passwd entry of the
//! local uid (OpenSSH's `getpwuid`, not `$HOME`/`$USER`), other users' homes, the local
//! host name, service ports, `glob(3)` for `Include`, file ownership checks, and running
//! `Match exec` commands.

use std::ffi::{CStr, CString};
use std::path::Path;

/// The local user as the passwd database knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    pub name: String,
    pub home: String,
    pub uid: u32,
}

fn passwd_entry(by: Result<u32, &str>) -> Option<(String, String, u32)> {
    let mut buf = vec![0u8; 16384];
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    let rc = match by {
        Ok(uid) => unsafe {
            libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut res)
        },
        Err(name) => {
            let c = CString::new(name).ok()?;
            unsafe {
                libc::getpwnam_r(
                    c.as_ptr(),
                    &mut pw,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut res,
                )
            }
        }
    };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: getpw*_r filled `pw` with pointers into `buf`, which is alive here.
    let s = |p: *const libc::c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    Some((s(pw.pw_name), s(pw.pw_dir), pw.pw_uid))
}

impl LocalUser {
    /// The passwd entry of the current uid.
    pub fn current() -> Option<LocalUser> {
        let uid = unsafe { libc::getuid() };
        passwd_entry(Ok(uid)).map(|(name, home, uid)| LocalUser { name, home, uid })
    }
}

/// The home directory of `user` (for `~user/...`).
pub fn home_of(user: &str) -> Option<String> {
    passwd_entry(Err(user)).map(|(_, home, _)| home)
}

/// `gethostname()`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `getservbyname(name, "tcp")`: the port of a service name.
pub fn service_port(name: &str) -> Option<u16> {
    let n = CString::new(name).ok()?;
    let p = CString::new("tcp").ok()?;
    // SAFETY: getservbyname returns NULL or a pointer to static storage.
    let se = unsafe { libc::getservbyname(n.as_ptr(), p.as_ptr()) };
    if se.is_null() {
        return None;
    }
    Some(u16::from_be(unsafe { (*se).s_port } as u16))
}

/// `glob(3)` failed for another reason than "no match".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("glob failed")]
pub struct GlobError;

/// `glob(pattern, GLOB_TILDE)`: `Ok(vec![])` when nothing matches, `Err` on other failures.
pub fn glob(pattern: &str) -> Result<Vec<String>, GlobError> {
    let c = CString::new(pattern).map_err(|_| GlobError)?;
    let mut g: libc::glob_t = unsafe { std::mem::zeroed() };
    // SAFETY: g is zeroed and freed below with globfree.
    let rc = unsafe { libc::glob(c.as_ptr(), libc::GLOB_TILDE, None, &mut g) };
    let out = match rc {
        0 => Ok((0..g.gl_pathc)
            .map(|i| {
                let p = unsafe { *g.gl_pathv.add(i) };
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            })
            .collect()),
        libc::GLOB_NOMATCH => Ok(Vec::new()),
        _ => Err(GlobError),
    };
    unsafe { libc::globfree(&mut g) };
    out
}

/// OpenSSH's `SSHCONF_CHECKPERM`: owned by root or us, and not writable by group/others.
pub fn permissions_ok(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let uid = unsafe { libc::getuid() };
    !((meta.uid() != 0 && meta.uid() != uid) || (meta.mode() & 0o022) != 0)
}

/// `execute_in_shell`: run `cmd` with `$SHELL` (else `/bin/sh`) `-c`, stdin and stdout on
/// /dev/null, stderr inherited. `Ok(exit status)`, `Err` when it could not run or was
/// killed by a signal.
pub fn run_shell(cmd: &str) -> Result<i32, String> {
    let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_string());
    if !Path::new(&shell).exists() {
        return Err(format!("Shell \"{shell}\" is not executable"));
    }
    let status = std::process::Command::new(&shell)
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {shell}: {e}"))?;
    status
        .code()
        .ok_or_else(|| format!("command '{cmd}' exited abnormally"))
}
