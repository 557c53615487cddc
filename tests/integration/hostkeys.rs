//! sshd control and host-key rotation (issue 19) on the real fleet: sshd reads the host's
//! own Debian-like `/etc/ssh`, is checked with `sshd -t` and reloaded with a SIGHUP to the
//! pid in `/run/sshd.pid`.

use std::time::Duration;

use sshfleet::inventory::conn::{BecomeSpec, ConnSpec, HostKeyPolicy};
use sshfleet::ops::sshd::{self, SshdError, plan};
use sshfleet::ssh::target::SshTarget;
use sshfleet::ssh::{AgentSource, Connector, SshConfig};

use crate::support::fleet::{Fleet, ssh};

fn spec(fleet: &Fleet, i: usize, user: &str) -> ConnSpec {
    let h = fleet.host(i);
    let mut s = ConnSpec::new(h.name());
    s.address = h.addr().to_string();
    s.port = h.port();
    s.user = Some(user.to_string());
    s.identity_files = vec![fleet.client_key()];
    s.known_hosts_files = vec![fleet.known_hosts()];
    s.host_key_policy = Some(HostKeyPolicy::Strict);
    s
}

fn isolated_config() -> SshConfig {
    let mut c = SshConfig::from_env();
    c.default_identities = vec![];
    c.default_known_hosts = vec![];
    c.global_known_hosts = vec![];
    c.agent = AgentSource::Disabled;
    c.interactive = false;
    c.connect_timeout = Duration::from_secs(10);
    c
}

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
        let c = Connector::new(isolated_config());
        let session = c.connect(&spec(&fleet, 0, "deploy")).await.unwrap();
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
        let c = Connector::new(isolated_config());
        let session = c.connect(&spec(&fleet, 0, "root")).await.unwrap();
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

/// Certify 20 hosts with a CA kept on the controller (via become), then connect to every one
/// with a known_hosts that holds **only** the printed `@cert-authority` line: OpenSSH `ssh`
/// (strict), sshfleet `ping`, and `hostkeys scan` (cert-trusted, exit 0). A second run keeps
/// sshd's configuration as it is (the HostCertificate line is already there).
#[test]
fn certify_20_hosts_then_trust_only_the_ca() {
    const N: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    // A pidfile per host, so sshd can be reloaded the way real hosts are (HUP to the pid in
    // its PidFile). TEMPORARY: the host-key rotation work makes this the fleet's default.
    let fdir = dir.path().join("fleet");
    let mut b = Fleet::builder().hosts(N).dir(&fdir);
    for i in 0..N {
        b = b.sshd_option(
            i,
            format!("PidFile {}/host{:02}/sshd.pid", fdir.display(), i + 1),
        );
    }
    let fleet = b.start().expect("start fleet");
    let ca = dir.path().join("host_ca");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fleet-ca", "-f"])
        .arg(&ca)
        .status()
        .unwrap();
    assert!(st.success());
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args(["hostkeys", "certify", "-b", "--ca"])
        .arg(&ca)
        .args(["--validity", "4w"])
        .run();
    out.success();
    let ca_pub = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    let ca_key: Vec<&str> = ca_pub.split_whitespace().take(2).collect();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("@cert-authority "))
        .unwrap_or_else(|| panic!("no @cert-authority line\n{out}"))
        .to_string();
    assert!(line.ends_with(&ca_key.join(" ")), "{line}");
    // The CA private key never reached a host.
    let ca_priv = std::fs::read_to_string(&ca).unwrap();
    for h in fleet.hosts() {
        let cert = h.dir().join("ssh_host_ed25519_key-cert.pub");
        let l = Command::new("ssh-keygen")
            .arg("-L")
            .arg("-f")
            .arg(&cert)
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&l.stdout);
        assert!(
            s.contains("host certificate") && s.contains(h.name()),
            "{}: {s}",
            h.name()
        );
        assert!(
            !std::fs::read_to_string(h.dir().join("sshd_config"))
                .unwrap()
                .contains(&ca_priv)
        );
    }
    // Only the CA line in known_hosts.
    let kh = fleet.known_hosts();
    std::fs::write(&kh, format!("{line}\n")).unwrap();
    for i in 0..N {
        assert!(
            ssh_ok(&fleet, i, &kh),
            "ssh to {} trusting only the CA",
            fleet.host(i).name()
        );
    }
    Sshfleet::new()
        .inventory(&fleet)
        .arg("ping")
        .run()
        .success();
    let (code, doc) = scan_json(&fleet, &[]);
    assert_eq!(code, 0, "{doc}");
    for h in fleet.hosts() {
        assert_eq!(status_of(&doc, h.name()), "cert-trusted", "{doc}");
    }
    // Renewal with the CA-only known_hosts: the host is verified through its certificate;
    // sshd already has the HostCertificate, so its configuration is untouched.
    let cfg0 = std::fs::read_to_string(fleet.host(0).dir().join("sshd_config")).unwrap();
    assert_eq!(cfg0.matches("HostCertificate").count(), 1, "{cfg0}");
    Sshfleet::new()
        .inventory(&fleet)
        .args(["hostkeys", "certify", "-b", "-H", "host01", "--ca"])
        .arg(&ca)
        .run()
        .success();
    let cfg1 = std::fs::read_to_string(fleet.host(0).dir().join("sshd_config")).unwrap();
    assert_eq!(cfg0, cfg1);
}
