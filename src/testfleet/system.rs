//! Machine-wide preparation shared by every fleet on this machine, done once per start under
//! an exclusive `flock` so parallel tests do not race: OpenSSH server (and sudo) installed,
//! `/run/sshd` present, the fleet's users in the user database with a usable account
//! (home `/home/USER`, a login shell, password field `*` so sshd does not treat the account as
//! locked), and passwordless sudo for the sudo users.
//!
//! This changes the machine (`/etc/passwd`, `/etc/shadow`, `/etc/sudoers.d`): the test fleet
//! is meant for test machines and CI containers, run as root.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::Command;

use super::FleetError;
use crate::target::UserInfo;

pub const SSHD: &str = "/usr/sbin/sshd";
const LOCK_PATH: &str = "/run/sshfleet-testfleet.lock";
const SUDOERS_PATH: &str = "/etc/sudoers.d/sshfleet-testfleet";

/// A passwd entry of a fleet user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// An exclusive lock held for the duration of machine preparation.
struct MachineLock(File);

impl MachineLock {
    fn acquire() -> Result<Self, FleetError> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(LOCK_PATH)
            .map_err(|e| FleetError::io(LOCK_PATH, e))?;
        // SAFETY: flock on a valid fd.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(FleetError::io(LOCK_PATH, std::io::Error::last_os_error()));
        }
        Ok(MachineLock(f))
    }
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        // SAFETY: flock on a valid fd.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// Make the machine ready for fleets with these users; returns their passwd entries in the
/// same order. `root` is accepted and never modified.
pub fn prepare(users: &[String], sudo_users: &[String]) -> Result<Vec<FleetUser>, FleetError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(FleetError::NotRoot);
    }
    let _lock = MachineLock::acquire()?;
    let mut missing = Vec::new();
    if !Path::new(SSHD).exists() {
        missing.push("openssh-server");
    }
    if !sudo_users.is_empty() && which("sudo").is_none() {
        missing.push("sudo");
    }
    if which("unshare").is_none() {
        missing.push("util-linux");
    }
    // `openssl passwd -6` hashes per-host passwords (see `etc`).
    if which("openssl").is_none() {
        missing.push("openssl");
    }
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    std::fs::create_dir_all("/run/sshd").map_err(|e| FleetError::io("/run/sshd", e))?;
    std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755))
        .map_err(|e| FleetError::io("/run/sshd", e))?;
    std::fs::create_dir_all("/home").map_err(|e| FleetError::io("/home", e))?;

    let mut out = Vec::with_capacity(users.len());
    for name in users {
        out.push(ensure_user(name)?);
    }
    if !sudo_users.is_empty() {
        ensure_sudoers(sudo_users)?;
    }
    Ok(out)
}

/// Find an executable on the usual system PATH.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .map(|d| Path::new(d).join(name))
    .find(|p| p.is_file())
}

/// The Python interpreter Ansible should use on fleet hosts: a system one, never one under
/// `/root` or `/home` (pyenv, a user venv), which the hosts' namespaces hide.
pub fn python3() -> &'static str {
    ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("/usr/bin/python3")
}

/// The `sftp-server` binary sshd should run for the sftp subsystem.
pub fn sftp_server() -> Result<&'static str, FleetError> {
    [
        "/usr/lib/openssh/sftp-server",
        "/usr/libexec/openssh/sftp-server",
        "/usr/libexec/sftp-server",
        "/usr/lib/ssh/sftp-server",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
    .ok_or_else(|| FleetError::Setup("sftp-server not found (is openssh-server installed?)".into()))
}

fn apt_install(pkgs: &[&str]) -> Result<(), FleetError> {
    if which("apt-get").is_none() {
        return Err(FleetError::Setup(format!(
            "{} missing and apt-get unavailable: install them first",
            pkgs.join(", ")
        )));
    }
    // Keep maintainer scripts from starting a system sshd on port 22.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let wrote_policy = !policy.exists()
        && std::fs::write(policy, "#!/bin/sh\nexit 101\n").is_ok()
        && std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755)).is_ok();
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let mut res = install();
    if !matches!(&res, Ok(o) if o.status.success()) {
        let _ = Command::new("apt-get")
            .args(["update", "-qq"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        res = install();
    }
    if wrote_policy {
        let _ = std::fs::remove_file(policy);
    }
    let out = res.map_err(|e| FleetError::io("apt-get", e))?;
    if !out.status.success() {
        return Err(FleetError::Setup(format!(
            "apt-get install {} failed: {}",
            pkgs.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<(), FleetError> {
    let out = cmd
        .output()
        .map_err(|e| FleetError::io(format!("{cmd:?}"), e))?;
    if !out.status.success() {
        return Err(FleetError::Setup(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn getent_passwd(name: &str) -> Option<UserInfo> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    UserInfo::from_passwd_line(String::from_utf8_lossy(&out.stdout).lines().next()?)
}

/// The password field of `name` in `/etc/shadow`.
fn shadow_password(name: &str) -> Option<String> {
    let s = std::fs::read_to_string("/etc/shadow").ok()?;
    s.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.next().unwrap_or_default().to_string())
    })
}

/// What has to change for an existing account to be a usable fleet login.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountFix {
    pub home: bool,
    pub shell: bool,
    /// Replace a bare lock marker (`!`, `!!`, `!*`) with `*`.
    pub unlock: bool,
}

/// Decide what to change on an existing account. A password hash behind a lock (`!$6$…`) is
/// an error: somebody locked a real password, and we do not throw it away.
pub fn account_fix(e: &UserInfo, shadow: Option<&str>) -> Result<AccountFix, String> {
    let shell_ok =
        !(e.shell.ends_with("nologin") || e.shell.ends_with("/false") || e.shell.is_empty());
    let unlock = match shadow {
        Some("!") | Some("!!") | Some("!*") => true,
        Some(p) if p.starts_with('!') => {
            return Err(format!(
                "account {} is locked with a password hash in /etc/shadow; unlock it (usermod -U) or pick another user",
                e.name
            ));
        }
        _ => false,
    };
    Ok(AccountFix {
        home: e.home != format!("/home/{}", e.name),
        shell: !shell_ok,
        unlock,
    })
}

fn ensure_user(name: &str) -> Result<FleetUser, FleetError> {
    if name == "root" {
        return Ok(FleetUser {
            name: "root".into(),
            uid: 0,
            gid: 0,
        });
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        || name.starts_with('-')
    {
        return Err(FleetError::Setup(format!("invalid user name {name:?}")));
    }
    let home = format!("/home/{name}");
    match getent_passwd(name) {
        None => run(Command::new("useradd").args([
            "-M",
            "-U",
            "-d",
            &home,
            "-s",
            "/bin/bash",
            "-p",
            "*",
            name,
        ]))?,
        Some(e) => {
            let fix =
                account_fix(&e, shadow_password(name).as_deref()).map_err(FleetError::Setup)?;
            let mut cmd = Command::new("usermod");
            if fix.home {
                cmd.args(["-d", &home]);
            }
            if fix.shell {
                cmd.args(["-s", "/bin/bash"]);
            }
            if fix.unlock {
                cmd.args(["-p", "*"]);
            }
            if fix != AccountFix::default() {
                cmd.arg(name);
                run(&mut cmd)?;
            }
        }
    }
    let e = getent_passwd(name)
        .ok_or_else(|| FleetError::Setup(format!("user {name} missing after useradd")))?;
    Ok(FleetUser {
        name: e.name,
        uid: e.uid,
        gid: e.gid,
    })
}

/// Add `USER ALL=(ALL:ALL) NOPASSWD: ALL` for each sudo user to the fleet's sudoers drop-in
/// (lines of earlier fleets are kept), validated with `visudo -c` before it is moved in.
fn ensure_sudoers(sudo_users: &[String]) -> Result<(), FleetError> {
    let current = std::fs::read_to_string(SUDOERS_PATH).unwrap_or_default();
    let mut content = if current.is_empty() {
        "# Written by sshfleet::testfleet: passwordless sudo for test-fleet users.\n".to_string()
    } else {
        current.clone()
    };
    for u in sudo_users {
        let line = format!("{u} ALL=(ALL:ALL) NOPASSWD: ALL");
        if !content.lines().any(|l| l == line) {
            content.push_str(&line);
            content.push('\n');
        }
    }
    if content == current {
        return Ok(());
    }
    std::fs::create_dir_all("/etc/sudoers.d").map_err(|e| FleetError::io("/etc/sudoers.d", e))?;
    let tmp = format!("{SUDOERS_PATH}.tmp");
    {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o440)
            .open(&tmp)
            .map_err(|e| FleetError::io(&tmp, e))?;
        f.write_all(content.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| FleetError::io(&tmp, e))?;
    }
    if which("visudo").is_some()
        && let Err(e) = run(Command::new("visudo").args(["-c", "-q", "-f", &tmp]))
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, SUDOERS_PATH).map_err(|e| FleetError::io(SUDOERS_PATH, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(home: &str, shell: &str) -> UserInfo {
        UserInfo {
            name: "backup".into(),
            uid: 34,
            gid: 34,
            home: home.into(),
            shell: shell.into(),
        }
    }

    #[test]
    fn passwd_line_parses() {
        assert_eq!(
            UserInfo::from_passwd_line("backup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n"),
            Some(entry("/var/backups", "/usr/sbin/nologin"))
        );
        assert_eq!(UserInfo::from_passwd_line("short:x:1"), None);
        assert_eq!(UserInfo::from_passwd_line("a:x:notnum:1:g:/h:/s"), None);
    }

    #[test]
    fn debian_backup_account_gets_home_and_shell() {
        let fix = account_fix(&entry("/var/backups", "/usr/sbin/nologin"), Some("*")).unwrap();
        assert_eq!(
            fix,
            AccountFix {
                home: true,
                shell: true,
                unlock: false
            }
        );
    }

    #[test]
    fn fitting_account_is_left_alone() {
        let fix = account_fix(&entry("/home/backup", "/bin/bash"), Some("*")).unwrap();
        assert_eq!(fix, AccountFix::default());
    }

    #[test]
    fn bare_lock_is_replaced_but_locked_hash_is_refused() {
        let e = entry("/home/backup", "/bin/bash");
        assert!(account_fix(&e, Some("!")).unwrap().unlock);
        assert!(account_fix(&e, Some("!!")).unwrap().unlock);
        let err = account_fix(&e, Some("!$6$salt$hash")).unwrap_err();
        assert!(err.contains("backup") && err.contains("locked"), "{err}");
    }
}
