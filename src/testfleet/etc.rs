//! Per-host pieces of `/etc`: each host gets its own `/etc/shadow`, `/etc/sudoers.d` and
//! `/etc/ssh`, bound over the machine's in the host's mount namespace (users themselves,
//! `/etc/passwd`, stay machine-wide).
//!
//! Why bind mounts rather than dedicated users per host: sshd runs with `UsePAM no`, so it
//! checks passwords against `/etc/shadow` itself, and sudo/su (through PAM's `pam_unix`) read
//! the same file; sudo reads `/etc/sudoers.d`. Giving each host its own copies makes "host03
//! takes only passwords", "on host04 sudo asks for a password" and "root has a password on
//! host05" true on that host alone while every host still has the same users (as a real fleet
//! does), and the machine's own files are never touched. `/etc/ssh` is per host so each host
//! sees its own `sshd_config`, host keys, host certificate and trusted user CA there, laid out
//! as on a Debian host (see [`super::render::sshd_config`]): `sshd_config` is a regular file
//! that includes `sshd_config.d/*.conf`, the host key is `/etc/ssh/ssh_host_ed25519_key`.
//!
//! `/run` is per host as well, as after a boot: `/run/sshd` (sshd's privilege separation
//! directory), `/run/sudo`, and sshd's pidfile `/run/sshd.pid`, so `kill -HUP $(cat
//! /run/sshd.pid)` run on the host reloads that host's sshd (PID 1 of its PID namespace; it
//! re-executes itself with the same PID). Everything else of the machine's `/run` is hidden,
//! in particular `/run/systemd/system`, the marker by which `systemctl` and tools like ours
//! decide that systemd is the service manager: a command run on a fleet host finds no
//! service manager and can never reach the machine's own systemd (or reload its sshd).
//!
//! Layout under the host directory (controller paths):
//! - `etc/shadow`: the machine's `/etc/shadow` at start, with the host's passwords set
//!   (SHA-512 crypt from `openssl passwd -6`, password on stdin); mode 0640, group kept;
//! - `etc/sudoers.d/`: the machine's drop-ins except the fleet's own, plus `sshfleet-testfleet`
//!   with this host's rules (`NOPASSWD` unless [`EtcSpec::sudo_password`]);
//! - `run/` over `/run`: `sshd/` (0755), `sudo/` (sudo's credential cache, 0711) and the
//!   pidfile sshd writes;
//! - `etc/ssh/`: the machine's non-key files (`moduli`, `ssh_config`, `ssh_config.d`), an
//!   empty `sshd_config.d/`, plus what the fleet writes there: `sshd_config`, the host key
//!   pair, a host certificate, a `TrustedUserCAKeys` file.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::FleetError;

/// What one host's `/etc` pieces contain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcSpec {
    /// (user, password) set in this host's shadow.
    pub passwords: Vec<(String, String)>,
    /// Sudo users (the fleet's sudo users).
    pub sudo_users: Vec<String>,
    /// Sudo asks these users for their password on this host.
    pub sudo_password: bool,
}

/// Where the pieces are (controller side) and what they are bound over (host side).
pub fn binds(hdir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let etc = hdir.join("etc");
    vec![
        (etc.join("shadow"), PathBuf::from("/etc/shadow")),
        (etc.join("sudoers.d"), PathBuf::from("/etc/sudoers.d")),
        (etc.join("ssh"), PathBuf::from("/etc/ssh")),
        // sshd's pidfile and privsep dir, and sudo's credential cache: per host (a ticket one
        // host's session earned would otherwise be honoured by another host's session with
        // the same namespace-local parent PID); hides the machine's /run/systemd.
        (hdir.join("run"), PathBuf::from("/run")),
    ]
}

/// The host's `/etc/ssh` as a controller path (created by [`prepare`]; the fleet writes the
/// host key there before).
pub fn ssh_dir(hdir: &Path) -> PathBuf {
    hdir.join("etc").join("ssh")
}

/// Write the host's pieces (`etc/ssh` may already hold the host key).
pub fn prepare(hdir: &Path, spec: &EtcSpec) -> Result<(), FleetError> {
    let etc = hdir.join("etc");
    mkdir(&etc, 0o755)?;
    let run = hdir.join("run");
    mkdir(&run, 0o755)?;
    mkdir(&run.join("sshd"), 0o755)?;
    mkdir(&run.join("sudo"), 0o711)?;
    // shadow
    let machine =
        std::fs::read_to_string("/etc/shadow").map_err(|e| FleetError::io("/etc/shadow", e))?;
    let mut hashed = Vec::new();
    for (u, pw) in &spec.passwords {
        hashed.push((u.clone(), crypt_sha512(pw)?));
    }
    let shadow = set_passwords(&machine, &hashed).map_err(FleetError::Setup)?;
    let gid = std::fs::metadata("/etc/shadow")
        .map(|m| m.gid())
        .unwrap_or(0);
    write(&etc.join("shadow"), shadow.as_bytes(), 0o640)?;
    std::os::unix::fs::chown(etc.join("shadow"), Some(0), Some(gid))
        .map_err(|e| FleetError::io(etc.join("shadow").display(), e))?;
    // sudoers.d
    let sd = etc.join("sudoers.d");
    mkdir(&sd, 0o755)?;
    if let Ok(rd) = std::fs::read_dir("/etc/sudoers.d") {
        for e in rd.flatten() {
            let name = e.file_name();
            if name == "sshfleet-testfleet" || name.to_string_lossy().ends_with(".tmp") {
                continue;
            }
            if e.file_type().is_ok_and(|t| t.is_file()) {
                let body =
                    std::fs::read(e.path()).map_err(|er| FleetError::io(e.path().display(), er))?;
                write(&sd.join(&name), &body, 0o440)?;
            }
        }
    }
    write(
        &sd.join("sshfleet-testfleet"),
        sudoers(&spec.sudo_users, spec.sudo_password).as_bytes(),
        0o440,
    )?;
    // ssh
    let ssh = etc.join("ssh");
    mkdir(&ssh, 0o755)?;
    for name in ["moduli", "ssh_config"] {
        let src = Path::new("/etc/ssh").join(name);
        if let Ok(body) = std::fs::read(&src) {
            write(&ssh.join(name), &body, 0o644)?;
        }
    }
    mkdir(&ssh.join("ssh_config.d"), 0o755)?;
    mkdir(&ssh.join("sshd_config.d"), 0o755)?;
    Ok(())
}

/// The fleet's sudoers drop-in for one host.
pub fn sudoers(users: &[String], with_password: bool) -> String {
    let mut s = String::from("# Written by sshfleet::testfleet for this host.\n");
    for u in users {
        if with_password {
            s.push_str(&format!("{u} ALL=(ALL:ALL) ALL\n"));
        } else {
            s.push_str(&format!("{u} ALL=(ALL:ALL) NOPASSWD: ALL\n"));
        }
    }
    s
}

/// Replace the password field of the given users in shadow text (pure).
pub fn set_passwords(shadow: &str, hashed: &[(String, String)]) -> Result<String, String> {
    let mut out = String::with_capacity(shadow.len());
    let mut seen = vec![false; hashed.len()];
    for line in shadow.lines() {
        let mut f: Vec<&str> = line.split(':').collect();
        // The last entry for a user wins.
        if let Some(i) = hashed
            .iter()
            .rposition(|(u, _)| f.first() == Some(&u.as_str()))
            && f.len() >= 2
        {
            f[1] = &hashed[i].1;
            // Field 3 (last change) 0 would force a password change: use a day in the past.
            if f.len() > 2 && f[2] == "0" {
                f[2] = "19000";
            }
            for (j, (u, _)) in hashed.iter().enumerate() {
                if *u == hashed[i].0 {
                    seen[j] = true;
                }
            }
            out.push_str(&f.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(format!("user {} is not in /etc/shadow", hashed[i].0));
    }
    Ok(out)
}

/// `openssl passwd -6 -stdin` (the password goes over stdin, never into argv).
fn crypt_sha512(pw: &str) -> Result<String, FleetError> {
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FleetError::io("openssl passwd (install openssl)", e))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(format!("{pw}\n").as_bytes())
            .map_err(|e| FleetError::io("openssl passwd", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| FleetError::io("openssl passwd", e))?;
    let h = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !h.starts_with("$6$") {
        return Err(FleetError::Setup(format!(
            "openssl passwd -6 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(h)
}

fn mkdir(p: &Path, mode: u32) -> Result<(), FleetError> {
    std::fs::create_dir_all(p).map_err(|e| FleetError::io(p.display(), e))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| FleetError::io(p.display(), e))
}

fn write(p: &Path, body: &[u8], mode: u32) -> Result<(), FleetError> {
    let _ = std::fs::remove_file(p);
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(p)
        .map_err(|e| FleetError::io(p.display(), e))?;
    f.write_all(body)
        .map_err(|e| FleetError::io(p.display(), e))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| FleetError::io(p.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_fields_are_replaced_for_the_named_users_only() {
        let s = "root:*:19000:0:99999:7:::\ndeploy:*:0:0:99999:7:::\nbackup:*:19000:0:99999:7:::\n";
        let out = set_passwords(s, &[("deploy".into(), "$6$x$y".into())]).unwrap();
        assert_eq!(
            out,
            "root:*:19000:0:99999:7:::\ndeploy:$6$x$y:19000:0:99999:7:::\nbackup:*:19000:0:99999:7:::\n"
        );
        assert!(set_passwords(s, &[("nobody2".into(), "x".into())]).is_err());
        let twice = set_passwords(
            s,
            &[("root".into(), "a".into()), ("root".into(), "b".into())],
        );
        assert!(twice.unwrap().starts_with("root:b:"));
    }

    #[test]
    fn sudoers_with_and_without_password() {
        let u = vec!["deploy".to_string()];
        assert!(sudoers(&u, false).contains("deploy ALL=(ALL:ALL) NOPASSWD: ALL\n"));
        assert!(sudoers(&u, true).contains("deploy ALL=(ALL:ALL) ALL\n"));
        assert!(!sudoers(&u, true).contains("NOPASSWD"));
    }
}
