//! Helpers for the reliability and hostile-input tests: key pairs, "does this key still log
//! in", file snapshots, temp-file leftovers, and mounts inside one host's mount namespace
//! (a full or read-only file system under a host's home or /srv).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::support::fleet::Fleet;

pub use crate::support::keys::{cli_with_key, logs_in, pub_line, pub_path, read_ak};

/// A fresh ed25519 pair: [`crate::support::keys::keygen`] with `-t ed25519`.
pub fn keygen(dir: &Path, name: &str, comment: &str) -> PathBuf {
    crate::support::keys::keygen(dir, name, comment, &["-t", "ed25519"])
}

/// The base64 blob of a public key line: what identifies the key in a file.
pub fn blob(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .expect("key blob")
        .to_string()
}

pub fn ak_text(fleet: &Fleet, i: usize, user: &str) -> String {
    String::from_utf8(read_ak(fleet, i, user)).expect("authorized_keys is UTF-8")
}

/// Every host's authorized_keys of `user`, byte for byte.
pub fn snapshot(fleet: &Fleet, user: &str) -> Vec<Vec<u8>> {
    (0..fleet.hosts().len())
        .map(|i| read_ak(fleet, i, user))
        .collect()
}

/// Replace a file atomically on the controller (as another admin's editor would).
pub fn replace_file(path: &Path, content: &[u8]) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).expect("stat file to replace");
    let tmp = path.with_extension("other-admin.tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(meta.mode() & 0o7777)).unwrap();
    std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid())).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Names of sshfleet temp files (`.NAME.sshfleet-….tmp`) anywhere under `dir`.
pub fn temp_leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(".sshfleet-") && name.ends_with(".tmp") {
            out.push(p.clone());
        }
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.extend(temp_leftovers(&p));
        }
    }
    out
}

/// Run `script` with `sh -c` inside host `i`'s mount namespace (as root).
pub fn in_host_ns(fleet: &Fleet, i: usize, script: &str) -> std::process::Output {
    let pid = fleet.host(i).pid().expect("host is running");
    Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "--", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("run nsenter")
}

/// The controller path of `path` as host `i` sees it (through `/proc/PID/root`), for mounts
/// made inside the host's namespace that the controller's own view does not have.
pub fn host_view(fleet: &Fleet, i: usize, path: &str) -> PathBuf {
    let pid = fleet.host(i).pid().expect("host is running");
    PathBuf::from(format!("/proc/{pid}/root")).join(path.trim_start_matches('/'))
}

/// A mount inside one host's mount namespace, unmounted by path when dropped (also on a
/// failing test). The mount dies with the namespace anyway when the host stops.
pub struct HostMount<'a> {
    fleet: &'a Fleet,
    host: usize,
    path: String,
}

impl<'a> HostMount<'a> {
    /// Mount a tmpfs of `size` (e.g. `64k`) at `path` on host `i`, owned by `owner`, mode
    /// `mode`, and run `setup` (a shell script) in the namespace right after.
    pub fn tmpfs(fleet: &'a Fleet, i: usize, path: &str, size: &str, setup: &str) -> Self {
        let out = in_host_ns(
            fleet,
            i,
            &format!(
                "mount -t tmpfs -o size={size},mode=0700 sshfleet-test-tmpfs '{path}' && {setup}"
            ),
        );
        assert!(out.status.success(), "mount tmpfs at {path}: {out:?}");
        HostMount {
            fleet,
            host: i,
            path: path.to_string(),
        }
    }

    /// Bind `path` over itself read-only on host `i`.
    pub fn read_only(fleet: &'a Fleet, i: usize, path: &str) -> Self {
        let out = in_host_ns(
            fleet,
            i,
            &format!("mount --bind '{path}' '{path}' && mount -o remount,bind,ro '{path}'"),
        );
        assert!(out.status.success(), "read-only bind at {path}: {out:?}");
        HostMount {
            fleet,
            host: i,
            path: path.to_string(),
        }
    }
}

impl Drop for HostMount<'_> {
    fn drop(&mut self) {
        if self.fleet.host(self.host).pid().is_some() {
            let _ = in_host_ns(self.fleet, self.host, &format!("umount '{}'", self.path));
        }
    }
}

/// Send SIGINT to `child` (spawned with piped stdout/stderr), then collect its exit status and
/// output. A watchdog SIGKILLs it if it has not exited 30 s later, so a hung stop fails the
/// test instead of hanging it.
pub fn interrupt_and_collect(mut child: Child) -> (ExitStatus, String, String) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            // SAFETY: as above; the child is reaped only after this thread is joined.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let st = child.wait().unwrap();
    let _ = tx.send(());
    watchdog.join().unwrap();
    (st, stdout, stderr)
}
