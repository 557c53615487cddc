//! sshd control and host-key rotation (issue 19) on the real fleet: sshd reads the host's
//! own Debian-like `/etc/ssh`, is checked with `sshd -t` and reloaded with a SIGHUP to the
//! pid in `/run/sshd.pid`.

use sshfleet::inventory::conn::BecomeSpec;
use sshfleet::ops::sshd::{self, SshdError, plan};
use sshfleet::ssh::Connector;
use sshfleet::ssh::target::SshTarget;

use crate::support::Sshfleet;
use crate::support::fleet::{Fleet, ssh};
use crate::support::fleet::{conn_spec, isolated_ssh_config};

/// The sshd control module on a fleet host, as deploy with sudo: a change `sshd -t` rejects
/// is reverted and sshd is not reloaded; a good one is written as a drop-in (the host's
/// config includes `sshd_config.d`), tested, reloaded by SIGHUP (same PID), and removed again.
#[test]
fn hostkeys_sshd_control_reverts_a_rejected_change_and_reloads_a_good_one() {
    let fleet = Fleet::builder().hosts(1).start().expect("start fleet");
    let h = fleet.host(0);
    let pid = h.pid().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Connector::new(isolated_ssh_config());
        let session = c.connect(&conn_spec(&fleet, 0, "deploy")).await.unwrap();
        let t = SshTarget::new(
            session,
            &BecomeSpec {
                enabled: true,
                ..Default::default()
            },
        )
        .unwrap();
        let facts = sshd::gather(&t, &[]).await.unwrap();
        assert_eq!(
            facts.manager,
            sshd::Manager::Pidfile,
            "no systemd on a fleet host"
        );
        assert_eq!(facts.pidfile, "/run/sshd.pid");
        assert_eq!(
            facts.host_keys,
            [
                "/etc/ssh/ssh_host_rsa_key",
                "/etc/ssh/ssh_host_ecdsa_key",
                "/etc/ssh/ssh_host_ed25519_key"
            ]
        );
        // Only the ed25519 key exists (its public half is readable).
        assert_eq!(facts.public_keys.len(), 1);
        let dropin = "/etc/ssh/sshd_config.d/sshfleet-test.conf";
        // Rejected: a host key that does not exist.
        let bad = plan::set_block(&facts, "test", &["HostKey /etc/ssh/no_such_key".into()]);
        let e = sshd::apply(&t, &facts, &bad).await.unwrap_err();
        assert!(matches!(e, SshdError::Test { .. }), "{e}");
        assert!(e.to_string().contains("no_such_key"), "{e}");
        assert!(!h.local_path(dropin).unwrap().exists(), "reverted");
        assert!(
            !h.log().contains("Received SIGHUP"),
            "not reloaded: {}",
            h.log()
        );
        // Good: the key in use, listed explicitly.
        let good = plan::set_block(
            &facts,
            "test",
            &["HostKey /etc/ssh/ssh_host_ed25519_key".into()],
        );
        sshd::apply(&t, &facts, &good).await.unwrap();
        let text = std::fs::read_to_string(h.local_path(dropin).unwrap()).unwrap();
        assert!(
            text.ends_with("HostKey /etc/ssh/ssh_host_ed25519_key\n"),
            "{text}"
        );
        t.close().await;
        // The reloaded sshd lists only that key now; remove again.
        let c = Connector::new(isolated_ssh_config());
        let session = c.connect(&conn_spec(&fleet, 0, "root")).await.unwrap();
        let t = SshTarget::new(session, &BecomeSpec::default()).unwrap();
        let facts = sshd::gather(&t, &[]).await.unwrap();
        assert_eq!(facts.host_keys, ["/etc/ssh/ssh_host_ed25519_key"]);
        let undo = plan::set_block(&facts, "test", &[]);
        assert_eq!(undo.ops.len(), 1);
        sshd::apply(&t, &facts, &undo).await.unwrap();
        assert!(!h.local_path(dropin).unwrap().exists());
        t.close().await;
    });
    assert_eq!(
        h.log().matches("Received SIGHUP; restarting.").count(),
        2,
        "{}",
        h.log()
    );
    assert_eq!(h.pid(), Some(pid), "sshd re-executed in place");
    ssh(&fleet, 0, "deploy", "true").assert_success();
}

/// `ssh -o StrictHostKeyChecking=yes` (batch mode: never a prompt) with `known_hosts` to
/// host `i` as deploy.
fn openssh_with(fleet: &Fleet, i: usize, known_hosts: &std::path::Path) -> std::process::Output {
    let mut args = fleet.ssh_args(i, "deploy");
    for a in args.iter_mut() {
        if a.starts_with("UserKnownHostsFile=") {
            *a = format!("UserKnownHostsFile={}", known_hosts.display());
        }
    }
    std::process::Command::new("ssh")
        .args(&args)
        .args(["-o", "GlobalKnownHostsFile=/dev/null", "true"])
        .output()
        .unwrap()
}

fn key_blob(pub_line: &str) -> String {
    pub_line.split_whitespace().nth(1).unwrap().to_string()
}

/// Publish then retire ed25519 host keys on 20 hosts with `-b`, as on Debian's stock config;
/// host01's new configuration fails `sshd -t` (a drop-in includes the new key file as config:
/// real sshd rejects it), host02's sshd is killed between publish and retire.
#[test]
fn hostkeys_rotate_publish_and_retire_20_hosts_with_sshd_t_failure_and_killed_sshd() {
    let fleet = Fleet::builder().hosts(20).start().expect("start fleet");
    let n = fleet.hosts().len();
    let old_kh = fleet.dir().join("known_hosts.old");
    std::fs::copy(fleet.known_hosts(), &old_kh).unwrap();
    let old_pubs: Vec<String> = fleet
        .hosts()
        .iter()
        .map(|h| h.host_key_pub().to_string())
        .collect();
    // host01: valid today (the glob matches nothing), rejected once the new key exists.
    let inject = fleet
        .host(0)
        .local_path("/etc/ssh/sshd_config.d/00-inject.conf")
        .unwrap();
    std::fs::write(&inject, "Include /etc/ssh/ssh_host_ed25519_key.new*\n").unwrap();
    let pid0 = fleet.host(0).pid().unwrap();

    // Check mode: the planned drop-in and the known_hosts line, nothing changed.
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args([
            "hostkeys", "rotate", "-b", "--check", "--diff", "-H", "host03",
        ])
        .run();
    out.success()
        .stdout_contains(
            "+HostKey /etc/ssh/ssh_host_ed25519_key\n+HostKey /etc/ssh/ssh_host_ed25519_key.new\n",
        )
        .stdout_contains("sshd_config.d/sshfleet-hostkeys.conf")
        .stdout_contains("(the new key, generated on the host)");
    assert!(
        !fleet
            .host(2)
            .local_path("/etc/ssh/sshd_config.d/sshfleet-hostkeys.conf")
            .unwrap()
            .exists()
    );
    assert_eq!(
        std::fs::read_to_string(fleet.known_hosts()).unwrap(),
        std::fs::read_to_string(&old_kh).unwrap()
    );

    // Publish (journaled into its own directory).
    let journal = fleet.dir().join("journal");
    let out = Sshfleet::new()
        .inventory(&fleet)
        .env("SSHFLEET_JOURNAL_DIR", &journal)
        .args(["hostkeys", "rotate", "-b"])
        .run();
    out.failure()
        .stdout_contains("sshd -t rejected the new configuration")
        .stdout_contains(&format!("changed={} ", 1))
        .stdout_contains("failed=1");
    assert_eq!(out.stdout.matches("changed=1 ").count(), n - 1, "{out}");
    // host01: old key only, sshd still the same process, nothing of ours left.
    let h0 = fleet.host(0);
    assert_eq!(h0.pid(), Some(pid0));
    assert!(
        !h0.local_path("/etc/ssh/ssh_host_ed25519_key.new")
            .unwrap()
            .exists()
    );
    assert!(
        !h0.local_path("/etc/ssh/sshd_config.d/sshfleet-hostkeys.conf")
            .unwrap()
            .exists()
    );
    std::fs::remove_file(&inject).unwrap();
    let kh = std::fs::read_to_string(fleet.known_hosts()).unwrap();
    assert_eq!(kh.lines().count(), 2 * n - 1, "{kh}");
    for (i, h) in fleet.hosts().iter().enumerate() {
        // Between the phases a known_hosts with only the old keys still connects.
        let o = openssh_with(&fleet, i, &old_kh);
        assert!(
            o.status.success(),
            "{}: {}",
            h.name(),
            String::from_utf8_lossy(&o.stderr)
        );
        if i == 0 {
            continue;
        }
        let new_pub = std::fs::read_to_string(
            h.local_path("/etc/ssh/ssh_host_ed25519_key.new.pub")
                .unwrap(),
        )
        .unwrap();
        assert!(
            kh.contains(&format!(
                "[127.0.0.1]:{} ssh-ed25519 {}",
                h.port(),
                key_blob(&new_pub)
            )),
            "{kh}"
        );
        // The new key sits right after the old one.
        let lines: Vec<&str> = kh.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.contains(&key_blob(&old_pubs[i])))
            .unwrap();
        assert!(lines[at + 1].contains(&key_blob(&new_pub)));
        let dropin = std::fs::read_to_string(
            h.local_path("/etc/ssh/sshd_config.d/sshfleet-hostkeys.conf")
                .unwrap(),
        )
        .unwrap();
        assert!(
            dropin.ends_with(
                "HostKey /etc/ssh/ssh_host_ed25519_key\nHostKey /etc/ssh/ssh_host_ed25519_key.new\n"
            ),
            "{dropin}"
        );
    }

    // host02's sshd dies before retire.
    fleet.stop_host(1);
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args(["hostkeys", "retire", "-b"])
        .run();
    out.failure()
        .stdout_contains("unreachable=1")
        .stdout_contains("failed=1");
    assert_eq!(out.stdout.matches("changed=1 ").count(), n - 2, "{out}");
    // Once restarted it works with its old key (and knows the published one).
    fleet.restart_host(1).unwrap();
    let o = openssh_with(&fleet, 1, &old_kh);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = openssh_with(&fleet, 1, &fleet.known_hosts());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Retire it now; rotate host01 (fixed) in one go.
    Sshfleet::new()
        .inventory(&fleet)
        .args(["hostkeys", "retire", "-b", "-H", "host02"])
        .run()
        .success();
    Sshfleet::new()
        .inventory(&fleet)
        .env("SSHFLEET_JOURNAL_DIR", &journal)
        .args(["hostkeys", "rotate", "--retire", "-b", "-H", "host01"])
        .run()
        .success();
    // The journal: publish recorded one new key file per changed host; rotate --retire on
    // host01 the new key (published), then the old key file replaced, the .new one gone.
    let mut runs: Vec<_> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let recs = |p: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let publish = recs(&runs[0]);
    assert_eq!(publish.len(), n - 1);
    for r in &publish {
        assert_eq!(r["kind"], "host_key", "{r}");
        assert_eq!(r["file"], "/etc/ssh/ssh_host_ed25519_key.new", "{r}");
        assert_eq!(r["fingerprints_removed"], serde_json::json!([]), "{r}");
        assert!(
            r["fingerprints_added"][0]
                .as_str()
                .unwrap()
                .starts_with("SHA256:"),
            "{r}"
        );
    }
    let h01 = recs(&runs[1]);
    let files: Vec<&str> = h01.iter().map(|r| r["file"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        [
            "/etc/ssh/ssh_host_ed25519_key.new",
            "/etc/ssh/ssh_host_ed25519_key",
            "/etc/ssh/ssh_host_ed25519_key.new"
        ]
    );
    let old_fp = sshfleet::known_hosts::fingerprint(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            key_blob(&old_pubs[0]),
        )
        .unwrap(),
    );
    assert_eq!(h01[1]["fingerprints_removed"], serde_json::json!([old_fp]));
    assert_eq!(h01[1]["fingerprints_added"], h01[0]["fingerprints_added"]);

    // Afterwards: one (new) key per host in known_hosts; OpenSSH connects with no prompt;
    // the old keys are refused; each host is stock again with a fresh key at the stock path.
    let kh = std::fs::read_to_string(fleet.known_hosts()).unwrap();
    assert_eq!(kh.lines().count(), n, "{kh}");
    for (i, h) in fleet.hosts().iter().enumerate() {
        let now_pub = std::fs::read_to_string(h.host_key_path().with_extension("pub")).unwrap();
        assert_ne!(key_blob(&now_pub), key_blob(&old_pubs[i]), "{}", h.name());
        assert!(!kh.contains(&key_blob(&old_pubs[i])));
        assert!(kh.contains(&key_blob(&now_pub)));
        assert!(
            !h.local_path("/etc/ssh/ssh_host_ed25519_key.new")
                .unwrap()
                .exists()
        );
        assert!(
            !h.local_path("/etc/ssh/sshd_config.d/sshfleet-hostkeys.conf")
                .unwrap()
                .exists()
        );
        let o = openssh_with(&fleet, i, &fleet.known_hosts());
        assert!(
            o.status.success(),
            "{}: {}",
            h.name(),
            String::from_utf8_lossy(&o.stderr)
        );
        let o = openssh_with(&fleet, i, &old_kh);
        assert!(
            !o.status.success(),
            "{}: the old key must be gone",
            h.name()
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        );
    }
    // Running again: nothing published, reported, nothing changed.
    Sshfleet::new()
        .inventory(&fleet)
        .args(["hostkeys", "retire", "-b", "-H", "host03"])
        .run()
        .failure()
        .stdout_contains("no published key");
}
