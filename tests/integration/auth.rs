//! Issue 16: authentication as real fleets demand it, against real sshd/sudo/su on the test
//! fleet with per-host `/etc/shadow`, `/etc/sudoers.d` and `/etc/ssh`:
//! - a password-only host where `keys add` with a password installs the first key, after
//!   which the key logs in (and a wrong password changes nothing);
//! - sudo that needs a password (`--become-password-env`, `ansible_become_password`), a
//!   wrong one failing that host clearly and fast, commands, SFTP writes and the edit session
//!   under it;
//! - `su` as become method (password typed into a pty, work over a clean channel);
//! - secrets never in output, `--json`, `-vvv`, process arguments or remote environments.

use std::path::Path;

use crate::support::Sshfleet;
use crate::support::fleet::Fleet;

const LOGIN_PW: &str = "Login-Pw-7f3a1c";
const SUDO_PW: &str = "Sudo-Pw-2b9e44";
const ROOT_PW: &str = "Root-Pw-c81d05";

fn ak(fleet: &Fleet, i: usize, user: &str) -> String {
    std::fs::read_to_string(fleet.authorized_keys_path(i, user)).unwrap_or_default()
}

fn cli(fleet: &Fleet) -> Sshfleet {
    Sshfleet::new().inventory(fleet)
}

/// Write an inventory for `fleet` with extra host variables on every host.
fn inventory_with(fleet: &Fleet, dir: &Path, vars: &str) -> std::path::PathBuf {
    let base = std::fs::read_to_string(fleet.inventory()).unwrap();
    let p = dir.join("inv.ini");
    std::fs::write(&p, format!("{base}{vars}\n")).unwrap();
    p
}

#[test]
fn password_only_host_gets_its_first_key_then_the_key_logs_in() {
    let fleet = Fleet::builder()
        .hosts(2)
        .password(0, "deploy", LOGIN_PW)
        .password(1, "deploy", LOGIN_PW)
        .no_authorized_keys(0, "deploy")
        .no_authorized_keys(1, "deploy")
        .sshd_option_all("PasswordAuthentication yes")
        .start()
        .expect("start fleet");
    let key_pub = fleet.client_key_pub();
    // Without a password: refused, and the message says what was tried.
    cli(&fleet)
        .arg("ping")
        .run()
        .code(4)
        .stdout_contains("Permission denied (publickey)");
    // A wrong password: refused, nothing written.
    cli(&fleet)
        .env("SSHFLEET_TEST_PW", "wrong-password")
        .args(["--password-env", "SSHFLEET_TEST_PW"])
        .args(["keys", "add", "--user", "deploy", "--key"])
        .arg(&key_pub)
        .run()
        .code(4)
        .stdout_contains("Permission denied (publickey,password)")
        .stdout_contains("password (refused)")
        .output_lacks("wrong-password");
    assert_eq!(ak(&fleet, 0, "deploy"), "");
    assert!(!fleet.authorized_keys_path(0, "deploy").exists());
    // The right password (like ssh-copy-id, fleet-wide): the first key goes in.
    let out = cli(&fleet)
        .env("SSHFLEET_TEST_PW", LOGIN_PW)
        .args(["--password-env", "SSHFLEET_TEST_PW", "-vvv", "--json"])
        .args(["keys", "add", "--user", "deploy", "--key"])
        .arg(&key_pub)
        .run();
    out.success().output_lacks(LOGIN_PW);
    let key_line = std::fs::read_to_string(&key_pub).unwrap();
    for i in 0..2 {
        assert!(
            ak(&fleet, i, "deploy").contains(key_line.split_whitespace().nth(1).unwrap()),
            "host{i}: {}",
            ak(&fleet, i, "deploy")
        );
        assert!(fleet.host(i).log().contains("Accepted password for deploy"));
    }
    // The next command logs in by key, no password given.
    cli(&fleet).arg("ping").run().success();
    assert!(
        fleet
            .host(0)
            .log()
            .contains("Accepted publickey for deploy")
    );
    // ansible_password in the inventory works as well (the key is not offered here).
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory_with(
        &fleet,
        dir.path(),
        &format!("ansible_password={LOGIN_PW}\n"),
    );
    Sshfleet::new()
        .inventory_file(&inv)
        .arg("--known-hosts")
        .arg(fleet.known_hosts())
        .arg("--private-key")
        .arg(dir.path().join("no-such-key"))
        .args(["run", "--", "id", "-un"])
        .run()
        .success()
        .stdout_contains("deploy")
        .output_lacks(LOGIN_PW);
}

#[test]
fn sudo_with_a_password_runs_commands_sftp_and_edits_and_a_wrong_one_fails_fast() {
    let fleet = Fleet::builder()
        .hosts(1)
        .password(0, "deploy", SUDO_PW)
        .sudo_password(0)
        .start()
        .expect("start fleet");
    // No password: sudo -n refuses at once, nothing hangs.
    cli(&fleet)
        .args(["-b", "run", "--", "id", "-un"])
        .run()
        .code(2)
        .stdout_contains("a password is required");
    // Wrong password: a clear failure for this host, quickly, nothing written.
    let out = cli(&fleet)
        .env("BPW", "not-the-password")
        .args(["-b", "--become-password-env", "BPW"])
        .args(["copy", "--dest", "/srv/from-sudo.txt"])
        .arg(fleet.client_key_pub())
        .timeout(std::time::Duration::from_secs(60))
        .run();
    out.code(2)
        .stdout_contains("incorrect sudo password")
        .output_lacks("not-the-password");
    assert!(
        !fleet
            .host(0)
            .local_path("/srv/from-sudo.txt")
            .unwrap()
            .exists()
    );
    // The right one: commands, SFTP writes and the edit session run as root.
    cli(&fleet)
        .env("BPW", SUDO_PW)
        .args([
            "-b",
            "--become-password-env",
            "BPW",
            "run",
            "--",
            "id",
            "-un",
        ])
        .run()
        .success()
        .stdout_contains("root");
    cli(&fleet)
        .env("BPW", SUDO_PW)
        .args(["-b", "--become-password-env", "BPW"])
        .args(["copy", "--dest", "/srv/from-sudo.txt", "--mode", "0600"])
        .arg(fleet.client_key_pub())
        .run()
        .success()
        .stdout_contains("changed: [host01]");
    let local = fleet.host(0).local_path("/srv/from-sudo.txt").unwrap();
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(&local).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (0, 0o600));
    assert_eq!(
        std::fs::read(&local).unwrap(),
        std::fs::read(fleet.client_key_pub()).unwrap()
    );
    // The edit session (authorized_keys of another user, read-check-rename under its lock).
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra.pub");
    std::fs::write(
        &extra,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPNKk17//p3pZqOsxCs5BBVAO1iSeA/XgCCnF9t1qFTr extra@test\n",
    )
    .unwrap();
    let inv = inventory_with(
        &fleet,
        dir.path(),
        &format!("ansible_become_password={SUDO_PW}\n"),
    );
    Sshfleet::new()
        .inventory_file(&inv)
        .arg("--known-hosts")
        .arg(fleet.known_hosts())
        .args(["-b", "keys", "add", "--user", "backup", "--key"])
        .arg(&extra)
        .run()
        .success()
        .stdout_contains("changed: [host01]")
        .output_lacks(SUDO_PW);
    assert!(ak(&fleet, 0, "backup").contains("extra@test"));
}

#[test]
fn su_as_become_method_runs_commands_sftp_and_edits() {
    let fleet = Fleet::builder()
        .hosts(1)
        .password(0, "root", ROOT_PW)
        .start()
        .expect("start fleet");
    let su = |pw: &str| {
        cli(&fleet).env("RPW", pw).args([
            "-b",
            "--become-method",
            "su",
            "--become-password-env",
            "RPW",
        ])
    };
    // Without a password su fails at once with a clear message.
    cli(&fleet)
        .args(["-b", "--become-method", "su", "run", "--", "id", "-un"])
        .run()
        .code(2)
        .stdout_contains("su needs a password");
    su("wrong-root-pw")
        .args(["run", "--", "id", "-un"])
        .timeout(std::time::Duration::from_secs(60))
        .run()
        .code(2)
        .stdout_contains("incorrect su password")
        .output_lacks("wrong-root-pw");
    su(ROOT_PW)
        .args(["run", "--", "id", "-un"])
        .run()
        .success()
        .stdout_contains("root")
        .output_lacks(ROOT_PW);
    // stdin and binary data survive (no terminal in the data path).
    let dir = tempfile::tempdir().unwrap();
    let blob: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    std::fs::write(dir.path().join("blob.bin"), &blob).unwrap();
    su(ROOT_PW)
        .args(["copy", "--dest", "/srv/", "--mode", "0640"])
        .arg(dir.path().join("blob.bin"))
        .run()
        .success()
        .stdout_contains("changed: [host01]");
    let local = fleet.host(0).local_path("/srv/blob.bin").unwrap();
    assert_eq!(std::fs::read(&local).unwrap(), blob);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&local).unwrap().uid(), 0);
    // A second run: checksum-skip over the same su'd SFTP session, nothing changes.
    su(ROOT_PW)
        .args(["copy", "--dest", "/srv/", "--mode", "0640"])
        .arg(dir.path().join("blob.bin"))
        .run()
        .success()
        .stdout_contains("ok: [host01]");
    // The edit session under su.
    let extra = dir.path().join("extra.pub");
    std::fs::write(
        &extra,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPNKk17//p3pZqOsxCs5BBVAO1iSeA/XgCCnF9t1qFTr su@test\n",
    )
    .unwrap();
    su(ROOT_PW)
        .args(["keys", "add", "--user", "backup", "--key"])
        .arg(&extra)
        .run()
        .success()
        .stdout_contains("changed: [host01]");
    assert!(ak(&fleet, 0, "backup").contains("su@test"));
    // Reading a root-only file (this host's own /etc/shadow) over the su'd SFTP session.
    let fetched = dir.path().join("fetched");
    su(ROOT_PW)
        .args(["slurp", "--from", "host01", "/etc/shadow", "--dest"])
        .arg(&fetched)
        .run()
        .success();
    let got: Vec<_> = walk(&fetched);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        std::fs::read(&got[0]).unwrap(),
        std::fs::read(fleet.host(0).local_path("/etc/shadow").unwrap()).unwrap()
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// `-k` asks on the terminal (here a pty made by `script`), with echo off: the typed
/// password is not in the transcript, and the first key goes in.
#[test]
fn ask_pass_prompts_on_the_terminal_without_echo() {
    let fleet = Fleet::builder()
        .hosts(1)
        .password(0, "deploy", LOGIN_PW)
        .no_authorized_keys(0, "deploy")
        .sshd_option_all("PasswordAuthentication yes")
        .start()
        .expect("start fleet");
    let cmd = format!(
        "{} -i {} --known-hosts {} --private-key {} -k keys add --user deploy --key {}",
        crate::support::sshfleet_bin().display(),
        fleet.inventory().display(),
        fleet.known_hosts().display(),
        fleet.client_key().display(),
        fleet.client_key_pub().display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        // Give the prompt time to turn echo off before typing (as a person would).
        std::thread::sleep(std::time::Duration::from_millis(1500));
        stdin.write_all(format!("{LOGIN_PW}\n").as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = child.wait_with_output().unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{transcript}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(transcript.contains("SSH password:"), "{transcript}");
    assert!(transcript.contains("changed: [host01]"), "{transcript}");
    assert!(
        !transcript.contains(LOGIN_PW),
        "password echoed: {transcript}"
    );
    assert!(ak(&fleet, 0, "deploy").contains("sshfleet-testfleet-client"));
}

/// The sudo password is in no process's arguments and no environment on the host while a
/// become command runs, nor in output, `--json` or `-vvv`.
#[test]
fn secrets_stay_out_of_argv_env_output_json_and_logs() {
    let fleet = Fleet::builder()
        .hosts(1)
        .password(0, "deploy", SUDO_PW)
        .password(0, "root", ROOT_PW)
        .sudo_password(0)
        .start()
        .expect("start fleet");
    // Every process's command line and environment on the host, read by the escalated
    // command itself while sudo (holding the password exchange's result) is its parent.
    // (`/proc` is the machine's: only processes in the host's PID namespace are the host's;
    // the controller's own environment holds the variable the password came from.)
    let probe = "me=$(readlink /proc/self/ns/pid); n=0; for p in /proc/[0-9]*; do \
                 [ \"$(readlink $p/ns/pid 2>/dev/null)\" = \"$me\" ] || continue; n=$((n+1)); \
                 tr '\\0' ' ' < $p/cmdline; echo; tr '\\0' '\\n' < $p/environ; \
                 done 2>/dev/null; echo \"host processes: $n\"";
    for (method, pw) in [("sudo", SUDO_PW), ("su", ROOT_PW)] {
        for flags in [&["-vvv"][..], &["--json"][..]] {
            let out = cli(&fleet)
                .env("BPW", pw)
                .args([
                    "-b",
                    "--become-method",
                    method,
                    "--become-password-env",
                    "BPW",
                ])
                .args(flags)
                .args(["run", "--", "sh", "-c", probe])
                .run();
            out.success();
            // The probe did see the escalation (so the check is not vacuous).
            assert!(
                out.stdout.contains("SSHFLEET-BECOME-SUCCESS"),
                "{method}: probe did not see the become command\n{out}"
            );
            out.output_lacks(pw);
        }
    }
}

/// `ssh-keygen -t ed25519 -N '' -f DIR/NAME`; returns the private key path.
fn keygen(dir: &Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&p)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    p
}

fn pub_text(key: &Path) -> String {
    let t = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
    let w: Vec<&str> = t.split_whitespace().collect();
    format!("{} {}", w[0], w[1])
}

/// Does OpenSSH's `ssh` (the oracle) accept host `i` with this known_hosts file?
fn openssh_accepts(fleet: &Fleet, i: usize, kh: &Path, extra: &[&str]) -> bool {
    let mut args = fleet.ssh_args(i, "deploy");
    let at = args
        .iter()
        .position(|a| a.starts_with("UserKnownHostsFile="))
        .unwrap();
    args[at] = format!("UserKnownHostsFile={}", kh.display());
    let host = args.pop().unwrap();
    std::process::Command::new("ssh")
        .args(&args)
        .args(extra)
        .arg(host)
        .arg("true")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
        .status
        .success()
}

/// Host certificates on real sshd (`HostCertificate`), trusted only through
/// `@cert-authority` (no plain known_hosts entry): a valid one, an expired one, one for
/// another principal (reachable with the matching `HostKeyAlias`), the CA `@revoked`, and an
/// unknown CA. Every refusal names its reason, and OpenSSH's `ssh` agrees on each verdict.
#[test]
fn host_certificates_trusted_through_cert_authority_lines() {
    let dir = tempfile::tempdir().unwrap();
    let ca = keygen(dir.path(), "host_ca");
    let other_ca = keygen(dir.path(), "other_ca");
    let cert = |principals: &[&str], validity: &str| sshfleet::testfleet::HostCert {
        ca_key: ca.clone(),
        principals: principals.iter().map(|s| s.to_string()).collect(),
        validity: validity.into(),
    };
    let fleet = Fleet::builder()
        .hosts(3)
        .host_certificate(0, cert(&["127.0.0.1", "host01.fleet.test"], "-5m:+1h"))
        .host_certificate(1, cert(&["127.0.0.1"], "20200101:20200102"))
        .host_certificate(2, cert(&["host03.fleet.test"], "-5m:+1h"))
        .start()
        .expect("start fleet");
    let ca_line = pub_text(&ca);
    let write_kh = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // Only a CA line (ports in the pattern), no plain key for any host.
    let kh = write_kh(
        "kh_ca",
        format!("@cert-authority [127.0.0.1]:*,host0?.fleet.test {ca_line}\n"),
    );
    let ping = |kh: &Path, limit: &str| {
        Sshfleet::new()
            .arg("-i")
            .arg(fleet.inventory())
            .arg("--private-key")
            .arg(fleet.client_key())
            .arg("--known-hosts")
            .arg(kh)
            .args(["-l", limit, "ping"])
            .run()
    };
    ping(&kh, "host01")
        .success()
        .stdout_contains("ok: [host01]");
    assert!(openssh_accepts(&fleet, 0, &kh, &[]));
    ping(&kh, "host02")
        .code(4)
        .stdout_contains("host certificate of [127.0.0.1]:")
        .stdout_contains("EXPIRED at 2020-01-02");
    assert!(!openssh_accepts(&fleet, 1, &kh, &[]));
    ping(&kh, "host03")
        .code(4)
        .stdout_contains("it is for other principals (host03.fleet.test), not 127.0.0.1");
    assert!(!openssh_accepts(&fleet, 2, &kh, &[]));
    // With HostKeyAlias the alias is both the looked-up name and the principal.
    let inv = dir.path().join("alias.ini");
    let port3 = fleet.host(2).port();
    std::fs::write(
        &inv,
        format!(
            "host03 ansible_host=127.0.0.1 ansible_port={port3} ansible_user=deploy \
             ansible_ssh_private_key_file={} \
             ansible_ssh_common_args='-o UserKnownHostsFile={} -o HostKeyAlias=host03.fleet.test'\n",
            fleet.client_key().display(),
            kh.display()
        ),
    )
    .unwrap();
    Sshfleet::new()
        .inventory_file(&inv)
        .arg("ping")
        .run()
        .success()
        .stdout_contains("ok: [host03]");
    assert!(openssh_accepts(
        &fleet,
        2,
        &kh,
        &["-o", "HostKeyAlias=host03.fleet.test"]
    ));
    // The CA revoked: refused, naming the line.
    let revoked = write_kh(
        "kh_revoked",
        format!("@cert-authority * {ca_line}\n@revoked * {ca_line}\n"),
    );
    ping(&revoked, "host01")
        .code(4)
        .stdout_contains("is REVOKED at ")
        .stdout_contains("kh_revoked:2");
    assert!(!openssh_accepts(&fleet, 0, &revoked, &[]));
    // Another CA trusted, not ours: unknown CA.
    let unknown = write_kh(
        "kh_unknown",
        format!("@cert-authority * {}\n", pub_text(&other_ca)),
    );
    ping(&unknown, "host01")
        .code(4)
        .stdout_contains("signed by an unknown CA (SHA256:");
    assert!(!openssh_accepts(&fleet, 0, &unknown, &[]));
    // Nothing ran on a refused host: no session was logged.
    assert!(!fleet.host(1).log().contains("Accepted publickey"));
}

/// `ssh-keygen -s CA -I ID -n PRINCIPALS -V VALIDITY KEY.pub` → `KEY-cert.pub`.
fn sign_user(ca: &Path, key: &Path, principals: &str) -> std::path::PathBuf {
    let ok = std::process::Command::new("ssh-keygen")
        .arg("-q")
        .arg("-s")
        .arg(ca)
        .args(["-I", "ops-cert", "-n", principals, "-V", "-5m:+1h"])
        .arg(format!("{}.pub", key.display()))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::path::PathBuf::from(format!("{}-cert.pub", key.display()))
}

/// A host whose sshd trusts a user CA (`TrustedUserCAKeys` in its own /etc/ssh) and has no
/// authorized_keys at all: reached with a user certificate beside the key, named by
/// `-o CertificateFile`, held by an agent; a certificate for another principal is refused
/// with a message naming it; and `keys rotate` proves a new key through its certificate.
#[test]
fn user_certificates_log_in_where_no_authorized_keys_exist() {
    let dir = tempfile::tempdir().unwrap();
    let ca = keygen(dir.path(), "user_ca");
    let fleet = Fleet::builder()
        .hosts(1)
        .trusted_user_ca(0, format!("{}.pub", ca.display()))
        .no_authorized_keys(0, "deploy")
        .sshd_option(0, "AuthorizedKeysFile none")
        .start()
        .expect("start fleet");
    assert!(
        std::fs::read_to_string(
            fleet
                .host(0)
                .local_path("/etc/ssh/sshfleet_user_ca.pub")
                .unwrap()
        )
        .unwrap()
        .contains(&pub_text(&ca))
    );
    // `--private-key` is the default of `ansible_ssh_private_key_file`, so the inventory must
    // not set it (inventory variables win, as in Ansible).
    let inv_no_key = crate::support::fleet::inventory_without_key(&fleet);
    let with_key = |key: &Path| {
        Sshfleet::new()
            .arg("-i")
            .arg(&inv_no_key)
            .arg("--known-hosts")
            .arg(fleet.known_hosts())
            .arg("--private-key")
            .arg(key)
    };
    // The fleet key alone: no authorized_keys, refused.
    cli(&fleet).arg("ping").run().code(4);
    // KEY-cert.pub beside KEY.
    let ops = keygen(dir.path(), "ops");
    sign_user(&ca, &ops, "deploy,admin");
    with_key(&ops).arg("ping").run().success();
    assert!(
        fleet
            .host(0)
            .log()
            .contains("Accepted publickey for deploy from 127.0.0.1")
    );
    assert!(fleet.host(0).log().contains("ED25519-CERT"));
    // A certificate for other principals: refused, and the message says which one was tried.
    let other = keygen(dir.path(), "other");
    sign_user(&ca, &other, "backup");
    with_key(&other)
        .arg("ping")
        .run()
        .code(4)
        .stdout_contains("other-cert.pub (certificate \"ops-cert\" serial 0 valid until");
    // CertificateFile from ssh args, the certificate elsewhere.
    let moved = dir.path().join("elsewhere-cert.pub");
    std::fs::rename(format!("{}-cert.pub", ops.display()), &moved).unwrap();
    with_key(&ops).arg("ping").run().code(4);
    let inv = dir.path().join("cf.ini");
    std::fs::write(
        &inv,
        format!(
            "host01 ansible_host=127.0.0.1 ansible_port={} ansible_user=deploy \
             ansible_ssh_private_key_file={} \
             ansible_ssh_common_args='-o UserKnownHostsFile={} -o CertificateFile={}'\n",
            fleet.host(0).port(),
            ops.display(),
            fleet.known_hosts().display(),
            moved.display()
        ),
    )
    .unwrap();
    Sshfleet::new()
        .inventory_file(&inv)
        .arg("ping")
        .run()
        .success();
    // A certificate held by an agent (ssh-add loads KEY-cert.pub with KEY).
    let agent_key = keygen(dir.path(), "agentkey");
    sign_user(&ca, &agent_key, "deploy");
    let sock = dir.path().join("agent.sock");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            // Our own child, by PID.
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let agent = Kill(
        std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let waited = std::time::Instant::now();
    while !sock.exists() && waited.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&agent_key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    std::fs::remove_file(format!("{}-cert.pub", agent_key.display())).unwrap();
    with_key(&dir.path().join("no-such-key"))
        .env("SSH_AUTH_SOCK", &sock)
        .arg("ping")
        .run()
        .success();
    drop(agent);
    // keys rotate: the proof step logs in with the new key's certificate (sshd reads no
    // authorized_keys here, so only the certificate can prove the new key).
    let login = keygen(dir.path(), "login");
    sign_user(&ca, &login, "deploy");
    let new = keygen(dir.path(), "new2026");
    with_key(&login)
        .args(["keys", "rotate", "--new-key"])
        .arg(&new)
        .run()
        .code(2)
        .stdout_contains("new key refused by host01; old key kept");
    sign_user(&ca, &new, "deploy");
    let fp = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(format!("{}.pub", new.display()))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(!fleet.host(0).log().contains(&format!("ED25519-CERT {fp}")));
    with_key(&login)
        .args(["keys", "rotate", "--new-key"])
        .arg(&new)
        .run()
        .success()
        .stdout_contains(&format!("keys rotate to {fp}"));
    // The proof login was the new key's certificate.
    assert!(
        fleet.host(0).log().contains(&format!("ED25519-CERT {fp}")),
        "{}",
        fleet.host(0).log()
    );
}

/// The demo fleet shows it too: `fleet up --password-host 1 --sudo-password-host 2`.
#[test]
fn demo_fleet_has_a_password_only_host_and_a_sudo_password_host() {
    use std::time::{Duration, Instant};
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("fleet");
    let mut child = std::process::Command::new(crate::support::sshfleet_bin())
        .args(["fleet", "up", "--hosts", "2", "--password-host", "1"])
        .args(["--sudo-password-host", "2", "--dir"])
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sshfleet fleet up");
    // Our child, by PID (its hosts die with it: pdeathsig).
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            crate::support::fleet::procs::signal(self.0, libc::SIGKILL);
        }
    }
    let guard = KillOnDrop(child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("ready").exists() {
        assert!(child.try_wait().unwrap().is_none(), "fleet up exited early");
        assert!(Instant::now() < deadline, "fleet up not ready after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let desc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fleet.json")).unwrap()).unwrap();
    assert_eq!(desc["hosts"][0]["password_only"], true);
    assert_eq!(desc["hosts"][1]["sudo_password"], true);
    let run = || {
        Sshfleet::new()
            .inventory_file(dir.join("inventory.ini"))
            .env("PW", sshfleet::testfleet::up::DEMO_PASSWORD)
    };
    run()
        .arg("ping")
        .run()
        .code(4)
        .stdout_contains("ok: [host02]");
    run()
        .args([
            "--password-env",
            "PW",
            "-l",
            "host01",
            "keys",
            "add",
            "--user",
            "deploy",
        ])
        .arg("--key")
        .arg(dir.join("id_ed25519.pub"))
        .run()
        .success()
        .stdout_contains("changed: [host01]");
    run().arg("ping").run().success();
    run()
        .args(["-l", "host02", "-b", "run", "--", "id", "-un"])
        .run()
        .code(2);
    for method in ["sudo", "su"] {
        run()
            .args(["-l", "host02", "-b", "--become-method", method])
            .args(["--become-password-env", "PW", "run", "--", "id", "-un"])
            .run()
            .success()
            .stdout_contains("root");
    }
    crate::support::fleet::procs::signal(child.id(), libc::SIGTERM);
    let st = child.wait().unwrap();
    drop(guard);
    assert!(st.success(), "{st}");
}
