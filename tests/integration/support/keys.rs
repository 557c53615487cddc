//! Key pairs and logins for tests that change `authorized_keys`: make a pair with the real
//! `ssh-keygen`, read its public line, ask the real `ssh` whether a key still logs in, read a
//! host's `authorized_keys`, and point the CLI at another login key.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Sshfleet;
use super::fleet::Fleet;

/// `ssh-keygen -N '' -C COMMENT -f DIR/NAME ARGS…` (e.g. `-t rsa -b 2048`): a fresh pair.
pub fn keygen(dir: &Path, name: &str, comment: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", comment, "-f"])
        .arg(&path)
        .args(args)
        .output()
        .expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    path
}

/// `KEY.pub`.
pub fn pub_path(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

/// The public line of a key pair (`ssh-ed25519 AAAA… comment`), without the newline.
pub fn pub_line(key: &Path) -> String {
    std::fs::read_to_string(pub_path(key))
        .unwrap()
        .trim_end()
        .to_string()
}

/// Can OpenSSH log in to host `i` as `user` offering only `key`?
pub fn logs_in(fleet: &Fleet, i: usize, user: &str, key: &Path) -> bool {
    let mut args = fleet.ssh_args(i, user);
    let at = args.iter().position(|a| a == "-i").expect("-i in ssh args");
    args[at + 1] = key.display().to_string();
    Command::new("ssh")
        .args(&args)
        .args(["-o", "ConnectTimeout=10", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .expect("run ssh")
        .status
        .success()
}

/// `sshfleet -i INV --known-hosts KH --private-key KEY` for a fleet, logging in with `key`
/// (the inventory without its key variable, which would beat `--private-key`).
pub fn cli_with_key(fleet: &Fleet, key: &Path) -> Sshfleet {
    Sshfleet::new()
        .arg("-i")
        .arg(super::fleet::inventory_without_key(fleet))
        .arg("--known-hosts")
        .arg(fleet.known_hosts())
        .arg("--private-key")
        .arg(key)
}

/// The bytes of `~user/.ssh/authorized_keys` on host `i` (empty when missing).
pub fn read_ak(fleet: &Fleet, i: usize, user: &str) -> Vec<u8> {
    std::fs::read(fleet.authorized_keys_path(i, user)).unwrap_or_default()
}

/// `SHA256:…`, the fingerprint `ssh-keygen -lf FILE` prints (and sshd logs) for a public or
/// private key file.
pub fn fingerprint(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key)
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -lf {}: {out:?}",
        key.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_string()
}
