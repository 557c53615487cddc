//! The real OpenSSH test fleet for tests ([`sshfleet::testfleet`], re-exported) plus helpers
//! to reach its hosts with OpenSSH's `ssh` client.
//!
//! ```ignore
//! let fleet = Fleet::builder().hosts(5).start().unwrap();
//! let out = ssh(&fleet, 0, "deploy", "id -un");
//! assert_eq!(out.stdout_str().trim(), "deploy");
//! ```

pub use sshfleet::testfleet::procs::{self, NsKind};
pub use sshfleet::testfleet::{Fleet, FleetHost};

use std::process::{Command, Stdio};

/// What a finished `ssh` run produced.
#[derive(Debug)]
pub struct SshOutput {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl SshOutput {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// Panic with stdout/stderr unless ssh and the remote command succeeded.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "ssh failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout_str(),
            self.stderr_str()
        );
        self
    }
}

/// An OpenSSH `ssh` command for host `i` as `user` (fleet key only, strict host key checking
/// against the fleet's known_hosts, batch mode), ready for `.arg(remote command)`.
pub fn ssh_command(fleet: &Fleet, i: usize, user: &str) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args(fleet.ssh_args(i, user)).stdin(Stdio::null());
    cmd
}

/// Run `remote` (a shell command line, executed by the user's login shell) on host `i` as
/// `user` with OpenSSH `ssh`.
pub fn ssh(fleet: &Fleet, i: usize, user: &str, remote: &str) -> SshOutput {
    let out = ssh_command(fleet, i, user)
        .arg("--")
        .arg(remote)
        .output()
        .expect("run ssh");
    SshOutput {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// Like [`ssh`], feeding `input` on stdin.
pub fn ssh_with_stdin(
    fleet: &Fleet,
    i: usize,
    user: &str,
    remote: &str,
    input: &[u8],
) -> SshOutput {
    use std::io::Write;
    let mut child = ssh_command(fleet, i, user)
        .arg("--")
        .arg(remote)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ssh");
    let mut stdin = child.stdin.take().expect("ssh stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait ssh");
    let _ = writer.join();
    SshOutput {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// A copy of the fleet's inventory without `ansible_ssh_private_key_file`, for runs whose
/// `--private-key` must decide the key: as in Ansible, an inventory variable beats the flag.
pub fn inventory_without_key(fleet: &Fleet) -> std::path::PathBuf {
    inventory_without(fleet, &["ansible_ssh_private_key_file"])
}

/// A copy of the fleet's inventory without the group variables `vars` (so that the flags
/// that are their defaults, like `-u` for `ansible_user`, decide), in the fleet's directory.
pub fn inventory_without(fleet: &Fleet, vars: &[&str]) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fleet.inventory()).expect("read fleet inventory");
    let kept: String = text
        .lines()
        .filter(|l| {
            !vars
                .iter()
                .any(|v| l.trim_start().starts_with(&format!("{v}=")))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let path = fleet
        .dir()
        .join(format!("inventory-without-{}.ini", vars.join("-")));
    std::fs::write(&path, kept).expect("write inventory");
    path
}

/// A connection spec for host `i` as `user`, built directly (no inventory): the fleet's client
/// key and known_hosts, host keys checked strictly.
pub fn conn_spec(fleet: &Fleet, i: usize, user: &str) -> sshfleet::inventory::conn::ConnSpec {
    let h = fleet.host(i);
    let mut s = sshfleet::inventory::conn::ConnSpec::new(h.name());
    s.address = h.addr().to_string();
    s.port = h.port();
    s.user = Some(user.to_string());
    s.identity_files = vec![fleet.client_key()];
    s.known_hosts_files = vec![fleet.known_hosts()];
    s.host_key_policy = Some(sshfleet::inventory::conn::HostKeyPolicy::Strict);
    s
}

/// SSH settings isolated from the machine's `~/.ssh` and agent (no default identities or
/// known_hosts, no prompts, a 10 s connect timeout).
pub fn isolated_ssh_config() -> sshfleet::ssh::SshConfig {
    let mut c = sshfleet::ssh::SshConfig::from_env();
    c.default_identities = vec![];
    c.default_known_hosts = vec![];
    c.global_known_hosts = vec![];
    c.agent = sshfleet::ssh::AgentSource::Disabled;
    c.interactive = false;
    c.connect_timeout = std::time::Duration::from_secs(10);
    c
}
