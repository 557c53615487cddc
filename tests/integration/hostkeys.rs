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
