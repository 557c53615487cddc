//! The SSH engine (issue 4) against real sshd hosts: parallel ping, host key checking
//! (changed / unknown / accept-new), unreachable hosts, authentication failures, encrypted
//! keys, a real ssh-agent, become via sudo, argument quoting, and SshTarget's atomic writes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::fleet::{conn_spec, isolated_ssh_config};
use serde_json::Value;
use sshfleet::fleet::{self, HostOutcome, RunOptions};
use sshfleet::inventory::conn::{ConnSpec, HostKeyPolicy};
use sshfleet::report::OutputMode;
use sshfleet::report::Reporter;
use sshfleet::ssh::known_hosts::fingerprint;
use sshfleet::ssh::target::SshTarget;
use sshfleet::ssh::{AgentSource, Connector, SshError};
use sshfleet::target::{Body, Expect, FileKind, Target, TargetError, WriteSpec};

use crate::support::Sshfleet;
use crate::support::fleet::Fleet;

/// `sshfleet -i INVENTORY --private-key KEY --known-hosts KH` for a fleet, with the given
/// key and known_hosts instead of the fleet's (the inventory without its key variable, which
/// would beat `--private-key`, as in Ansible).
fn cli_with(fleet: &Fleet, key: &Path, known_hosts: &Path) -> Sshfleet {
    Sshfleet::new()
        .inventory_file(crate::support::fleet::inventory_without_key(fleet))
        .arg("--private-key")
        .arg(key)
        .arg("--known-hosts")
        .arg(known_hosts)
}

fn start(n: usize) -> Fleet {
    Fleet::builder().hosts(n).start().expect("start test fleet")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-C", "", "-f"])
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    path
}

fn pub_line(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub"))
        .unwrap_or_else(|_| std::fs::read_to_string(format!("{}.pub", key.display())).unwrap())
}

/// Append a public key to `~user/.ssh/authorized_keys` of host `i` (keeps owner and mode).
fn authorize(fleet: &Fleet, i: usize, user: &str, key: &Path) {
    use std::io::Write;
    let line = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(fleet.authorized_keys_path(i, user))
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

fn blob_of_pub(line: &str) -> Vec<u8> {
    use base64::Engine;
    let b64 = line.split_whitespace().nth(1).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[test]
fn ssh_ping_50_hosts_in_parallel() {
    let fleet = start(50);
    let t0 = Instant::now();
    let out = Sshfleet::new().inventory(&fleet).args(["ping"]).run();
    out.success().stdout_contains("PLAY RECAP");
    for h in fleet.hosts() {
        out.stdout_contains(&format!("ok: [{}]", h.name()));
    }
    assert_eq!(out.stdout.matches("ok=1 ").count(), 50, "{out}");
    eprintln!("50-host ping took {:?}", t0.elapsed());

    let j = Sshfleet::new()
        .inventory(&fleet)
        .args(["ping", "--json"])
        .run();
    j.success();
    let doc = j.json();
    let hosts = doc["hosts"].as_object().unwrap();
    assert_eq!(hosts.len(), 50);
    for (name, r) in hosts {
        assert_eq!(r["status"], "ok", "{name}: {r}");
        assert_eq!(r["ping"], "pong", "{name}: {r}");
    }
    assert_eq!(doc["stats"]["host01"]["ok"], 1);
}

#[test]
fn ssh_library_runner_50_hosts_one_connection_each() {
    let fleet = start(50);
    let specs: Vec<ConnSpec> = (0..50).map(|i| conn_spec(&fleet, i, "deploy")).collect();
    let connector = Connector::new(isolated_ssh_config());
    let mut reporter = Reporter::new(OutputMode::Json, 0).with_progress(false);
    let recap = rt().block_on(fleet::run(
        specs,
        &connector,
        &RunOptions {
            forks: 50,
            ..Default::default()
        },
        &mut reporter,
        |ctx| async move {
            let t = ctx.target().await?;
            // Several steps over the same connection, some concurrently.
            let id_un: Vec<String> = vec!["id".into(), "-un".into()];
            let (a, b) = tokio::join!(t.run(&id_un, None), t.lookup_user("deploy"));
            let a = a?;
            let b = b?.expect("deploy exists");
            let pid1 = t
                .run(&["sh".into(), "-c".into(), "echo $PPID".into()], None)
                .await?;
            let st = t.stat("/etc/passwd", true).await?.expect("exists");
            Ok(HostOutcome::ok(
                ctx.host(),
                serde_json::json!({
                    "user": String::from_utf8_lossy(&a.stdout).trim(),
                    "home": b.home,
                    "kind": format!("{:?}", st.kind),
                    "ppid": String::from_utf8_lossy(&pid1.stdout).trim(),
                }),
            ))
        },
    ));
    assert_eq!(
        sshfleet::error::ExitCode::of_recap(&recap).code(),
        0,
        "{recap:?}"
    );
    assert_eq!(recap.outcomes.len(), 50);
    for o in &recap.outcomes {
        assert_eq!(o.result["user"], "deploy", "{o:?}");
        assert_eq!(o.result["home"], "/home/deploy");
        assert_eq!(o.result["kind"], "File");
    }
    // One login per host, reused for every step.
    for h in fleet.hosts() {
        let log = h.log();
        assert_eq!(
            log.matches("Accepted publickey for deploy").count(),
            1,
            "{}:\n{log}",
            h.name()
        );
    }
}

#[test]
fn ssh_changed_host_key_is_refused_before_anything_runs() {
    let fleet = start(2);
    let dir = tempfile::tempdir().unwrap();
    // known_hosts where host01 has another key, host02 its real one.
    let fake = keygen(dir.path(), "fake_host_key", &["-t", "ed25519", "-N", ""]);
    let fake_pub = pub_line(&fake);
    let h1 = fleet.host(0);
    let kh = dir.path().join("known_hosts");
    let real = std::fs::read_to_string(fleet.known_hosts()).unwrap();
    let other: String = real
        .lines()
        .filter(|l| !l.starts_with(&format!("[127.0.0.1]:{} ", h1.port())))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        &kh,
        format!(
            "# comment line\n[127.0.0.1]:{} {}\n{other}",
            h1.port(),
            fake_pub
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )
    .unwrap();
    let expected_fp = fingerprint(&blob_of_pub(&fake_pub));
    let offered_fp = fingerprint(&blob_of_pub(h1.host_key_pub()));
    let marker = h1.home_of("deploy").join("sshfleet-hostkey-marker");
    let out = cli_with(&fleet, &fleet.client_key(), &kh)
        .args(["run", "--", "touch", "/home/deploy/sshfleet-hostkey-marker"])
        .run();
    out.code(4)
        .stdout_contains("host01 | UNREACHABLE! => host key verification failed")
        .stdout_contains("has CHANGED")
        .stdout_contains(&expected_fp)
        .stdout_contains(&offered_fp)
        .stdout_contains(&format!("{}:2", kh.display()))
        .stdout_contains("host02 | CHANGED | rc=0");
    assert!(
        !marker.exists(),
        "the command ran despite a changed host key"
    );
    assert!(
        fleet
            .host(1)
            .home_of("deploy")
            .join("sshfleet-hostkey-marker")
            .exists()
    );
}

#[test]
fn ssh_unknown_host_strict_refused_then_learned_with_accept_new() {
    let fleet = start(2);
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("sub/known_hosts");
    let base = || cli_with(&fleet, &fleet.client_key(), &kh);
    let offered = fingerprint(&blob_of_pub(fleet.host(0).host_key_pub()));
    base()
        .args(["ping"])
        .run()
        .code(4)
        .stdout_contains("unreachable: [host01]")
        .stdout_contains("no host key is known")
        .stdout_contains(&offered)
        .stdout_contains("accept-new");
    assert!(!kh.exists(), "strict mode must not write known_hosts");

    base()
        .args(["--host-key-checking", "accept-new", "ping"])
        .run()
        .success();
    let text = std::fs::read_to_string(&kh).unwrap();
    for h in fleet.hosts() {
        let want = format!(
            "[127.0.0.1]:{} {}",
            h.port(),
            h.host_key_pub()
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(
            text.matches(&want).count(),
            1,
            "{want} not learned once:\n{text}"
        );
    }
    // Learned keys now pass strict checking; nothing is appended again.
    base().args(["ping"]).run().success();
    base()
        .args(["--host-key-checking", "accept-new", "ping"])
        .run()
        .success();
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), text);
}

#[test]
fn ssh_host_key_checking_off_via_ansible_env() {
    let fleet = start(1);
    let dir = tempfile::tempdir().unwrap();
    let kh = dir.path().join("empty_known_hosts");
    std::fs::write(&kh, "").unwrap();
    // The inventory sets StrictHostKeyChecking=yes for the fleet; build a spec without it.
    let mut s = conn_spec(&fleet, 0, "deploy");
    s.known_hosts_files = vec![kh.clone()];
    s.host_key_policy = None;
    let mut cfg = isolated_ssh_config();
    cfg.default_policy = HostKeyPolicy::Off;
    let c = Connector::new(cfg);
    rt().block_on(async {
        c.connect(&s).await.expect("policy off connects");
    });
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), "");
    // Strict (the default) refuses the same host.
    let c = Connector::new(isolated_ssh_config());
    let err = rt().block_on(c.connect(&s)).err().expect("strict refuses");
    assert!(matches!(err, SshError::HostKey(_)), "{err}");
}

#[test]
fn ssh_closed_port_is_unreachable_exit_4() {
    let fleet = start(2);
    fleet.stop_host(1);
    let out = Sshfleet::new().inventory(&fleet).args(["ping"]).run();
    out.code(4)
        .stdout_contains("ok: [host01]")
        .stdout_contains("unreachable: [host02] => Failed to connect to the host via ssh")
        .stdout_contains("unreachable=1");
    // Fast: a refused port is not retried for long.
    assert!(out.elapsed < Duration::from_secs(10), "{out}");
}

#[test]
fn ssh_wrong_key_is_an_authentication_failure_reported_unreachable() {
    let fleet = start(1);
    let dir = tempfile::tempdir().unwrap();
    let wrong = keygen(dir.path(), "wrong", &["-t", "ed25519", "-N", ""]);
    let out = cli_with(&fleet, &wrong, &fleet.known_hosts())
        .args(["ping"])
        .run();
    out.code(4)
        .stdout_contains("unreachable: [host01] => Failed to authenticate as deploy@127.0.0.1")
        .stdout_contains("Permission denied (publickey)")
        .stdout_contains(&wrong.display().to_string());
}

#[test]
fn ssh_key_formats_and_passphrase_from_env() {
    let fleet = start(1);
    let dir = tempfile::tempdir().unwrap();
    let pass = "Xq9-s3cr3t-pa55phrase";
    let keys = [
        keygen(dir.path(), "ed_enc", &["-t", "ed25519", "-N", pass]),
        keygen(
            dir.path(),
            "ecdsa_pem",
            &["-t", "ecdsa", "-m", "PEM", "-N", ""],
        ),
        keygen(
            dir.path(),
            "rsa_pem_enc",
            &["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", pass],
        ),
        keygen(
            dir.path(),
            "rsa_openssh",
            &["-t", "rsa", "-b", "2048", "-N", ""],
        ),
    ];
    for k in &keys {
        authorize(&fleet, 0, "deploy", k);
    }
    for k in &keys {
        cli_with(&fleet, k, &fleet.known_hosts())
            .args(["--passphrase-env", "SSHFLEET_TEST_PASS"])
            .env("SSHFLEET_TEST_PASS", pass)
            .args(["-v", "ping"])
            .run()
            .success()
            .output_lacks(pass);
    }
    // Encrypted key without the passphrase: refused, with a message naming the flag.
    cli_with(&fleet, &keys[0], &fleet.known_hosts())
        .args(["ping"])
        .run()
        .code(4)
        .stdout_contains("--passphrase-env");
    // Wrong passphrase.
    cli_with(&fleet, &keys[0], &fleet.known_hosts())
        .args(["--passphrase-env", "SSHFLEET_TEST_PASS"])
        .env("SSHFLEET_TEST_PASS", "wrong")
        .args(["ping"])
        .run()
        .code(4)
        .stdout_contains("wrong passphrase")
        .output_lacks(pass);
}

/// A real `ssh-agent`, killed by PID on drop.
struct Agent {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        let t0 = Instant::now();
        while !sock.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "ssh-agent did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Agent {
            child,
            sock,
            _dir: dir,
        }
    }

    fn add(&self, key: &Path) {
        let st = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_agent_authentication() {
    let fleet = start(1);
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    // A key only the agent holds (the file is deleted after ssh-add).
    let k = keygen(dir.path(), "agent_only", &["-t", "ed25519", "-N", ""]);
    authorize(&fleet, 0, "deploy", &k);
    agent.add(&k);
    std::fs::remove_file(&k).unwrap();

    let mut s = conn_spec(&fleet, 0, "deploy");
    s.identity_files = vec![];
    let mut cfg = isolated_ssh_config();
    cfg.agent = AgentSource::Path(agent.sock.clone());
    let c = Connector::new(cfg);
    let out = rt().block_on(async {
        let sess = c.connect(&s).await.expect("agent auth");
        sess.exec("id -un", None).await.unwrap()
    });
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "deploy");

    // Without the agent the same spec has nothing to offer.
    let c = Connector::new(isolated_ssh_config());
    let err = rt()
        .block_on(c.connect(&s))
        .err()
        .expect("no agent: refused");
    assert!(matches!(err, SshError::Auth { .. }), "{err}");

    // The CLI picks the agent up from SSH_AUTH_SOCK (explicit key wrong → agent → ok).
    let wrong = keygen(dir.path(), "wrong", &["-t", "ed25519", "-N", ""]);
    cli_with(&fleet, &wrong, &fleet.known_hosts())
        .env("SSH_AUTH_SOCK", &agent.sock)
        .args(["ping"])
        .run()
        .success();

    // connect_with_key never falls back to the agent.
    let mut cfg = isolated_ssh_config();
    cfg.agent = AgentSource::Path(agent.sock.clone());
    let c = Connector::new(cfg);
    let err = rt()
        .block_on(c.connect_with_key(&s, &wrong))
        .err()
        .expect("only the given key");
    assert!(matches!(err, SshError::Auth { .. }), "{err}");
}

#[test]
fn ssh_become_root_via_sudo() {
    let fleet = start(2);
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args(["--json", "-b", "run", "--", "id", "-u"])
        .run();
    out.success();
    let doc = out.json();
    for h in ["host01", "host02"] {
        assert_eq!(
            doc["hosts"][h]["stdout"].as_str().unwrap().trim(),
            "0",
            "{out}"
        );
    }
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args([
            "--json",
            "-b",
            "--become-user",
            "backup",
            "run",
            "--",
            "id",
            "-un",
        ])
        .run();
    out.success();
    assert_eq!(
        out.json()["hosts"]["host01"]["stdout"]
            .as_str()
            .unwrap()
            .trim(),
        "backup"
    );
    // Without become: the login user.
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args(["--json", "run", "--", "id", "-u"])
        .run();
    assert_ne!(
        out.json()["hosts"]["host01"]["stdout"]
            .as_str()
            .unwrap()
            .trim(),
        "0"
    );
}

#[test]
fn ssh_run_arguments_arrive_unchanged() {
    let fleet = start(1);
    let home = fleet.host(0).home_of("deploy");
    let hostile = "it's \"quoted\" $HOME ${PATH} `id` ; rm -rf / ; $(touch /home/deploy/pwned) \
                   | & > /home/deploy/redir \\ * ?\nsecond line\n\ttab\n";
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args(["--json", "run", "--", "printf", "%s|%s", hostile, "-n"])
        .run();
    out.success();
    let doc = out.json();
    assert_eq!(
        doc["hosts"]["host01"]["stdout"].as_str().unwrap(),
        format!("{hostile}|-n"),
        "{out}"
    );
    assert!(!home.join("pwned").exists(), "command substitution ran");
    assert!(!home.join("redir").exists(), "redirection ran");
    // Text output is like `ansible -m command`.
    Sshfleet::new()
        .inventory(&fleet)
        .args(["run", "--", "echo", "hello world"])
        .run()
        .success()
        .stdout_contains("host01 | CHANGED | rc=0 >>\nhello world");
    // rc != 0 is failed, exit 2.
    Sshfleet::new()
        .inventory(&fleet)
        .args(["run", "--", "sh", "-c", "echo oops >&2; exit 3"])
        .run()
        .code(2)
        .stdout_contains("host01 | FAILED | rc=3 >>")
        .stdout_contains("oops");
}

fn connect_target(fleet: &Fleet, i: usize, r#become: bool) -> (tokio::runtime::Runtime, SshTarget) {
    let rt = rt();
    let mut s = conn_spec(fleet, i, "deploy");
    s.r#become.enabled = r#become;
    let c = Connector::new(isolated_ssh_config());
    let t = rt.block_on(async {
        let sess = c.connect(&s).await.expect("connect");
        SshTarget::new(sess, &s.r#become).unwrap()
    });
    (rt, t)
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.contains(".sshfleet-").then_some(n)
        })
        .collect()
}

#[test]
fn ssh_target_write_atomic_round_trip() {
    use std::os::unix::fs::MetadataExt;
    let fleet = start(1);
    let (rt, t) = connect_target(&fleet, 0, true);
    let home = fleet.host(0).home_of("deploy");
    let local_dir = home.join("wa test");
    std::fs::create_dir_all(&local_dir).unwrap();
    let dest = "/home/deploy/wa test/app $conf's.txt";
    let local = local_dir.join("app $conf's.txt");
    rt.block_on(async {
        let backup = t.lookup_user("backup").await.unwrap().expect("user backup");
        let group = t
            .lookup_group("backup")
            .await
            .unwrap()
            .expect("group backup");
        let mut spec = WriteSpec {
            dest: dest.to_string(),
            mode: 0o640,
            uid: Some(backup.uid),
            gid: Some(group),
            expect: Expect::Absent,
            validate: None,
            backup: false,
        };
        // 1. New file with mode and owner.
        let o = t
            .write_atomic(&spec, Body::Bytes("first\n".into()))
            .await
            .unwrap();
        assert_eq!(o.size, 6);
        assert_eq!(std::fs::read(&local).unwrap(), b"first\n");
        let m = std::fs::metadata(&local).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (0o640, backup.uid, group)
        );
        let st = t.stat(dest, false).await.unwrap().unwrap();
        assert_eq!(
            (st.kind, st.mode, st.uid, st.size),
            (FileKind::File, 0o640, backup.uid, 6)
        );
        assert_eq!(t.sha256(dest).await.unwrap(), Some(o.sha256));

        // 2. Expect::Absent now fails and changes nothing.
        let e = t
            .write_atomic(&spec, Body::Bytes("nope".into()))
            .await
            .unwrap_err();
        assert!(matches!(e, TargetError::Changed { .. }), "{e}");
        assert_eq!(std::fs::read(&local).unwrap(), b"first\n");

        // 3. posix-rename over the existing file, guarded by its sha256, with a backup.
        spec.expect = Expect::Sha256(o.sha256);
        spec.backup = true;
        spec.mode = 0o600;
        spec.uid = None;
        spec.gid = None;
        let inode_before = std::fs::metadata(&local).unwrap().ino();
        let o2 = t
            .write_atomic(&spec, Body::Bytes("second\n".into()))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&local).unwrap(), b"second\n");
        assert_ne!(std::fs::metadata(&local).unwrap().ino(), inode_before);
        let b = o2.backup_file.expect("backup made");
        assert!(
            b.starts_with(&format!("{dest}.")) && b.ends_with('~'),
            "{b}"
        );
        let bname = Path::new(&b).file_name().unwrap();
        assert_eq!(std::fs::read(local_dir.join(bname)).unwrap(), b"first\n");

        // 4. A stale expectation: refused, file untouched.
        let e = t
            .write_atomic(&spec, Body::Bytes("third\n".into()))
            .await
            .unwrap_err();
        assert!(matches!(e, TargetError::Changed { .. }), "{e}");
        assert_eq!(std::fs::read(&local).unwrap(), b"second\n");
        let backups: Vec<String> = std::fs::read_dir(&local_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with('~'))
            .collect();
        assert_eq!(
            backups,
            vec![bname.to_string_lossy().into_owned()],
            "the refused write left no backup"
        );

        // 5. validate runs on the temp file; failure leaves the destination alone.
        spec.expect = Expect::Any;
        spec.backup = false;
        spec.validate = Some("grep -q ^valid %s".into());
        let e = t
            .write_atomic(&spec, Body::Bytes("invalid\n".into()))
            .await
            .unwrap_err();
        assert!(matches!(e, TargetError::Validate { .. }), "{e}");
        assert_eq!(std::fs::read(&local).unwrap(), b"second\n");
        t.write_atomic(&spec, Body::Bytes("valid\n".into()))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&local).unwrap(), b"valid\n");

        // 6. A stream that fails mid-way: no change, temp removed.
        spec.validate = None;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(Ok(bytes::Bytes::from(vec![b'x'; 300_000])))
            .await
            .unwrap();
        tx.send(Err("source went away".into())).await.unwrap();
        drop(tx);
        let e = t.write_atomic(&spec, Body::Stream(rx)).await.unwrap_err();
        assert!(e.to_string().contains("source went away"), "{e}");
        assert_eq!(std::fs::read(&local).unwrap(), b"valid\n");

        // 7. Directory listing, mkdir, set_attrs, read, remove.
        t.mkdir("/home/deploy/wa test/sub", 0o750, None, None)
            .await
            .unwrap();
        t.mkdir("/home/deploy/wa test/sub", 0o750, None, None)
            .await
            .unwrap();
        let names = t.list_dir("/home/deploy/wa test").await.unwrap();
        assert!(names.contains(&"sub".to_string()), "{names:?}");
        t.set_attrs(dest, Some(0o644), None, None).await.unwrap();
        assert_eq!(std::fs::metadata(&local).unwrap().mode() & 0o7777, 0o644);
        assert_eq!(t.read(dest, 100).await.unwrap(), b"valid\n");
        assert!(t.read(dest, 3).await.is_err());
        assert_eq!(
            t.stat("/home/deploy/nonexistent", true).await.unwrap(),
            None
        );
        assert_eq!(t.sha256("/home/deploy/nonexistent").await.unwrap(), None);
    });
    assert!(
        leftovers(&local_dir).is_empty(),
        "{:?}",
        leftovers(&local_dir)
    );
}

#[test]
fn ssh_target_big_transfer_is_pipelined() {
    use sha2::Digest;
    let fleet = start(1);
    let (rt, t) = connect_target(&fleet, 0, false);
    let size = 100 * 1024 * 1024;
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x1234_5678;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let want: [u8; 32] = sha2::Sha256::digest(&data).into();
    let body = bytes::Bytes::from(data);
    let spec = WriteSpec {
        dest: "/home/deploy/big.bin".into(),
        mode: 0o644,
        uid: None,
        gid: None,
        expect: Expect::Any,
        validate: None,
        backup: false,
    };
    let (up, down, remote_sha) = rt.block_on(async {
        let t0 = Instant::now();
        let o = t.write_atomic(&spec, Body::Bytes(body)).await.unwrap();
        let up = t0.elapsed();
        assert_eq!(o.sha256, want);
        let t1 = Instant::now();
        let back = t.read(&spec.dest, u64::MAX).await.unwrap();
        let down = t1.elapsed();
        assert_eq!(back.len(), size);
        let got: [u8; 32] = sha2::Sha256::digest(&back).into();
        assert_eq!(got, want);
        // Streaming read: chunks in order, bounded channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, String>>(4);
        let consumer = async {
            let mut h = sha2::Sha256::new();
            let mut n = 0usize;
            while let Some(c) = rx.recv().await {
                let c = c.unwrap();
                n += c.len();
                h.update(&c);
            }
            let d: [u8; 32] = h.finalize().into();
            (n, d)
        };
        let (st, (n, d)) = tokio::join!(t.read_stream(&spec.dest, tx), consumer);
        assert_eq!(st.unwrap().size, size as u64);
        assert_eq!((n, d), (size, want));
        (up, down, t.sha256(&spec.dest).await.unwrap())
    });
    assert_eq!(remote_sha, Some(want));
    let local = fleet.host(0).home_of("deploy").join("big.bin");
    assert_eq!(std::fs::metadata(&local).unwrap().len(), size as u64);
    let mbps = |d: Duration| size as f64 / 1048576.0 / d.as_secs_f64();
    eprintln!(
        "100 MiB over SFTP: write {up:?} ({:.0} MiB/s), read {down:?} ({:.0} MiB/s)",
        mbps(up),
        mbps(down)
    );
}

#[test]
fn ssh_cancelled_write_removes_its_temp_file() {
    let fleet = start(1);
    let (rt, t) = connect_target(&fleet, 0, false);
    let t = Arc::new(t);
    let home = fleet.host(0).home_of("deploy");
    rt.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let spec = WriteSpec {
            dest: "/home/deploy/cancelled.txt".into(),
            mode: 0o644,
            uid: None,
            gid: None,
            expect: Expect::Any,
            validate: None,
            backup: false,
        };
        let t2 = t.clone();
        let job = tokio::spawn(async move { t2.write_atomic(&spec, Body::Stream(rx)).await });
        tx.send(Ok(bytes::Bytes::from_static(b"partial")))
            .await
            .unwrap();
        // Wait until the temp file exists, then cancel (as Ctrl-C does).
        let t0 = Instant::now();
        while leftovers(&home).is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "temp file never appeared"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        job.abort();
        let _ = job.await;
        sshfleet::ssh::target::wait_for_cleanups(Duration::from_secs(5)).await;
    });
    assert!(leftovers(&home).is_empty(), "{:?}", leftovers(&home));
    assert!(!home.join("cancelled.txt").exists());
}

#[test]
fn ssh_host_timeout_and_unreachable_in_runner() {
    let fleet = start(2);
    fleet.stop_host(1);
    let specs = vec![
        conn_spec(&fleet, 0, "deploy"),
        conn_spec(&fleet, 1, "deploy"),
    ];
    let connector = Connector::new(isolated_ssh_config());
    let mut reporter = Reporter::new(OutputMode::Json, 0).with_progress(false);
    let recap = rt().block_on(fleet::run(
        specs,
        &connector,
        &RunOptions {
            forks: 2,
            host_timeout: Some(Duration::from_secs(2)),
            handle_interrupt: false,
        },
        &mut reporter,
        |ctx| async move {
            let t = ctx.target().await?;
            t.run(&["sleep".into(), "30".into()], None).await?;
            Ok(HostOutcome::ok(ctx.host(), Value::Null))
        },
    ));
    assert_eq!(recap.outcomes[0].status, fleet::Status::Failed);
    assert!(
        recap.outcomes[0]
            .msg
            .as_deref()
            .unwrap()
            .contains("host timeout")
    );
    assert_eq!(recap.outcomes[1].status, fleet::Status::Unreachable);
    assert_eq!(sshfleet::error::ExitCode::of_recap(&recap).code(), 4);
}

/// CPU time (user+system, children included) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime stime cutime cstime are fields 14..=17 (1-based); `rest` starts at field 3.
    f[11] + f[12] + f[13] + f[14]
}

#[test]
fn ssh_kex_both_offered_algorithms_work_and_cost_is_reported() {
    let fleet = start(1);
    let s = conn_spec(&fleet, 0, "deploy");
    let sshd = fleet.host(0).pid().unwrap();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let n = 20;
    // OpenSSH < 9.9 has no mlkem768x25519 (9.2 here offers sntrup761x25519, which russh
    // lacks): a post-quantum-first preference must fall back to curve25519, not fail.
    for kex in [
        "curve25519-sha256",
        "mlkem768x25519-sha256,curve25519-sha256",
    ] {
        let mut cfg = isolated_ssh_config();
        cfg.kex = kex.split(',').map(str::to_string).collect();
        let c = Connector::new(cfg);
        let rt = rt();
        let before = cpu_ticks(sshd);
        let t0 = Instant::now();
        rt.block_on(async {
            for _ in 0..n {
                let sess = c.connect(&s).await.expect(kex);
                let out = sess.exec("true", None).await.unwrap();
                assert_eq!(out.status, 0);
                sess.close().await;
            }
        });
        let wall = t0.elapsed();
        // Let sshd reap the last session so its CPU is counted.
        std::thread::sleep(Duration::from_millis(300));
        let cpu = (cpu_ticks(sshd) - before) as f64 / hz;
        eprintln!(
            "kex {kex}: {:.1} ms wall/login, sshd {:.1} ms CPU/login",
            wall.as_secs_f64() * 1000.0 / n as f64,
            cpu * 1000.0 / n as f64
        );
    }
    // A kex the server does not offer fails cleanly (no hang, not retried forever).
    let mut cfg = isolated_ssh_config();
    cfg.kex = vec!["diffie-hellman-group1-sha1".into()];
    let err = rt()
        .block_on(Connector::new(cfg).connect(&s))
        .err()
        .expect("no common kex");
    assert!(matches!(err, SshError::Connect { .. }), "{err}");
}

#[test]
fn ssh_maxstartups_drops_are_retried_with_backoff() {
    // sshd refuses every unauthenticated connection beyond 4 (MaxStartups 4:100:4): a burst
    // of 40 logins to the same host must all succeed through retries.
    let fleet = Fleet::builder()
        .hosts(1)
        .max_startups("4:100:4")
        .start()
        .expect("start test fleet");
    let specs: Vec<ConnSpec> = (0..40)
        .map(|i| {
            let mut s = conn_spec(&fleet, 0, "deploy");
            s.name = format!("burst{i:02}");
            s
        })
        .collect();
    let connector = Connector::new(isolated_ssh_config());
    let mut reporter = Reporter::new(OutputMode::Json, 0).with_progress(false);
    let recap = rt().block_on(fleet::run(
        specs,
        &connector,
        &RunOptions {
            forks: 40,
            ..Default::default()
        },
        &mut reporter,
        |ctx| async move {
            let t = ctx.target().await?;
            t.run(&["true".into()], None).await?;
            Ok(HostOutcome::ok(ctx.host(), Value::Null))
        },
    ));
    let bad: Vec<_> = recap
        .outcomes
        .iter()
        .filter(|o| o.status != fleet::Status::Ok)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    // sshd really dropped some of them.
    let log = fleet.host(0).log();
    assert!(
        log.contains("drop connection") || log.contains("MaxStartups"),
        "sshd never throttled; the test proves nothing:\n{log}"
    );
}

#[test]
fn ssh_ctrl_c_stops_cleanly_with_exit_99() {
    let fleet = start(3);
    let mut child = Command::new(crate::support::sshfleet_bin())
        .arg("-i")
        .arg(fleet.inventory())
        .args(["run", "--", "sleep", "617"])
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sshfleet");
    // Wait until the remote sleeps run, then interrupt.
    let t0 = Instant::now();
    loop {
        let running = Command::new("pgrep")
            .args(["-f", "^sleep 617$"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
            .unwrap_or(0);
        if running >= 3 || t0.elapsed() > Duration::from_secs(10) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own, not yet reaped child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    });
    let out = std::mem::replace(&mut child, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    let _ = tx.send(());
    let _ = watchdog.join();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(99), "{stdout}");
    assert!(stdout.contains("PLAY RECAP"), "{stdout}");
    assert!(
        stdout.contains("[interrupted] 3 host(s) did not finish: host01, host02, host03"),
        "{stdout}"
    );
    assert!(t0.elapsed() < Duration::from_secs(20));
}
