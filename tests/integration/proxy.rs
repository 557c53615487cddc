//! Reaching hosts the controller cannot reach directly (issue 15): `ProxyJump` (one hop, two
//! hops), `ProxyCommand`, and a host known only by an alias, on a fleet whose hidden hosts
//! live in a network namespace of their own (`FleetBuilder::hidden`): the controller reaches
//! the bastion through a unix socket relay and nothing behind it.
//!
//! - `ping`, `keys rotate`, `replicate` over all of them; a run that does not rotate the
//!   bastion logs in to the bastion once (its sshd log);
//! - an unreachable hop fails only its hosts, naming the hop;
//! - a rotation covering the bastion rotates it after the hosts behind it, and keeps its old
//!   key when one of them failed;
//! - the ProxyCommand child is killed and reaped when the session ends; a dropped bastion
//!   connection is reopened; nothing of the topology outlives the fleet.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sshfleet::inventory::conn::ConnSpec;
use sshfleet::ssh::Connector;

use crate::reliability::util::{blob, keygen, pub_line};
use crate::support::Sshfleet;
use crate::support::fleet::{Fleet, NsKind, procs};
use crate::support::fleet::{conn_spec, isolated_ssh_config};
use crate::support::keys::fingerprint;

const BASTION: usize = 0;
const APP: usize = 1; // behind the bastion, known by an alias
const HOP2: usize = 2; // behind the bastion, a bastion itself
const DEEP: usize = 3; // behind bastion → hop2
const CMD: usize = 4; // reached by ProxyCommand (unix socket relay)

/// The hidden topology: host01 the bastion (relayed to the controller's loopback), host02..5
/// hidden, host05 with a unix socket relay only.
fn topology() -> Fleet {
    Fleet::builder()
        .hosts(5)
        .users(["deploy"])
        .sudo_users(["deploy"])
        .root_login(false)
        .log_level("VERBOSE")
        .relay_port(BASTION)
        .hidden(APP)
        .hidden(HOP2)
        .hidden(DEEP)
        .relay_socket(CMD)
        .start()
        .expect("start fleet")
}

/// Inventory names of the topology's hosts (host02 only by its alias).
const NAMES: [&str; 5] = ["bastion", "app.internal", "hop2", "deep", "cmdhost"];

/// The ssh arguments every host gets: `-F` a config that gives 127.0.0.1 (the bastion and the
/// hops) the fleet key and the `-o IdentityFile=` keys of `more`, as a user's ~/.ssh/config
/// would (OpenSSH logs in to a ProxyJump hop with the hop's own configuration, never with the
/// target's `-i`), then the fleet's known_hosts, then `more`.
fn common_args(fleet: &Fleet, dir: &Path, more: &str) -> String {
    let cfg = dir.join("ssh_config");
    let mut text = String::from("Host 127.0.0.1\n");
    let extra = more
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("IdentityFile="));
    for key in extra
        .map(str::to_string)
        .chain([fleet.client_key().display().to_string()])
    {
        text += &format!("  IdentityFile {key}\n");
    }
    text += &format!(
        "  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n",
        fleet.known_hosts().display()
    );
    std::fs::write(&cfg, text).unwrap();
    format!(
        "-F {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes {more}",
        cfg.display(),
        fleet.known_hosts().display()
    )
}

/// The inventory: each host with its own route; `extra` lines go to group `broken`.
/// `more` is appended to every host's ssh arguments.
fn inventory(fleet: &Fleet, dir: &Path, extra: &[String], more: &str) -> PathBuf {
    let relay = fleet.host(BASTION).relay_port().expect("bastion relay");
    let common = common_args(fleet, dir, more);
    let jump = format!("deploy@127.0.0.1:{relay}");
    let line = |name: &str, port: u16, proxy: &str| {
        format!(
            "{name} ansible_host=127.0.0.1 ansible_port={port} ansible_ssh_common_args='{common} {proxy}'\n"
        )
    };
    let mut s = String::from("[fleet]\n");
    s += &line(NAMES[BASTION], relay, "");
    s += &line(
        NAMES[APP],
        fleet.host(APP).port(),
        &format!("-o ProxyJump={jump}"),
    );
    s += &line(NAMES[HOP2], fleet.host(HOP2).port(), &format!("-J {jump}"));
    s += &line(
        NAMES[DEEP],
        fleet.host(DEEP).port(),
        &format!("-J {jump},deploy@127.0.0.1:{}", fleet.host(HOP2).port()),
    );
    s += &line(
        NAMES[CMD],
        fleet.host(CMD).port(),
        &format!(
            "-o \"ProxyCommand=exec socat - UNIX-CONNECT:{}\"",
            fleet.host(CMD).relay_socket().unwrap().display()
        ),
    );
    s += "[broken]\n";
    for l in extra {
        s += l;
        s.push('\n');
    }
    s += &format!(
        "[all:vars]\nansible_user=deploy\nansible_ssh_private_key_file={}\n",
        fleet.client_key().display()
    );
    let p = dir.join("inventory.ini");
    std::fs::write(&p, s).unwrap();
    p
}

fn log_since(fleet: &Fleet, i: usize, from: usize) -> String {
    fleet
        .host(i)
        .log()
        .get(from..)
        .unwrap_or_default()
        .to_string()
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

fn log_sizes(fleet: &Fleet) -> Vec<usize> {
    (0..5).map(|i| fleet.host(i).log().len()).collect()
}

#[test]
fn proxy_ping_rotate_replicate_through_bastions_with_one_bastion_login() {
    let fleet = topology();
    let net = fleet.hidden_net_inode().expect("hidden net");
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1 behind the bastion, nor on the dead bastion's port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let common = common_args(&fleet, dir.path(), "");
    let relay = fleet.host(BASTION).relay_port().unwrap();
    let inv = inventory(
        &fleet,
        dir.path(),
        &[
            format!(
                "ghost ansible_host=127.0.0.1 ansible_port=1 ansible_ssh_common_args='{common} -J deploy@127.0.0.1:{relay}'"
            ),
            format!(
                "lost ansible_host=127.0.0.1 ansible_port={} ansible_ssh_common_args='{common} -J deploy@127.0.0.1:{dead_port}'",
                fleet.host(APP).port()
            ),
        ],
        "",
    );

    // The controller cannot reach the hidden hosts directly: their ports are on another
    // loopback (whatever listens on the same number here is not their sshd).
    for i in [APP, HOP2, DEEP, CMD] {
        let key = blob(fleet.host(i).host_key_pub());
        let direct = std::process::Command::new("ssh-keyscan")
            .args(["-T", "2", "-t", "ed25519", "-p"])
            .arg(fleet.host(i).port().to_string())
            .arg("127.0.0.1")
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&direct.stdout).contains(&key),
            "host {i} is reachable directly"
        );
    }

    // ping: every reachable host ok; an unreachable hop fails only its host, naming the hop.
    let logs = log_sizes(&fleet);
    let out = Sshfleet::new().inventory_file(&inv).args(["ping"]).run();
    out.failure();
    for n in NAMES {
        out.stdout_contains(&format!("ok: [{n}]"));
    }
    out.stdout_contains(&format!(
        "unreachable: [lost] => via bastion deploy@127.0.0.1:{dead_port}: "
    ))
    .stdout_contains("unreachable: [ghost] => ");
    let text = out.stdout.clone();
    let ghost = text.lines().find(|l| l.contains("[ghost]")).unwrap();
    assert!(
        ghost.contains(&format!(
            "the bastion deploy@127.0.0.1:{relay} could not open a channel"
        )),
        "{ghost}"
    );
    // Two bastion logins: its own ping, and ONE connection carrying every host behind it
    // (deep's second hop included: that is one login on hop2, shared with hop2's own ping? no:
    // hop2's ping is a target connection, the hop session is another).
    let blog = log_since(&fleet, BASTION, logs[BASTION]);
    assert_eq!(count(&blog, "Accepted publickey for deploy"), 2, "{blog}");
    for i in [APP, HOP2, DEEP, CMD] {
        let l = log_since(&fleet, i, logs[i]);
        let want = if i == HOP2 { 2 } else { 1 };
        assert_eq!(
            count(&l, "Accepted publickey for deploy"),
            want,
            "host {i}: {l}"
        );
    }

    // keys rotate over everything but the bastion: one bastion login for the whole run,
    // verification included.
    let new = keygen(dir.path(), "new", "new@proxy");
    let new_pub = pub_line(&new);
    let logs = log_sizes(&fleet);
    Sshfleet::new()
        .inventory_file(&inv)
        .args(["keys", "rotate", "--new-key"])
        .arg(&new)
        .args(["--limit", "fleet:!bastion"])
        .run()
        .success();
    let blog = log_since(&fleet, BASTION, logs[BASTION]);
    assert_eq!(count(&blog, "Accepted publickey for deploy"), 1, "{blog}");
    for i in [APP, HOP2, DEEP, CMD] {
        let ak = std::fs::read_to_string(fleet.authorized_keys_path(i, "deploy")).unwrap();
        assert_eq!(ak.trim_end(), new_pub, "host {i}");
        let l = log_since(&fleet, i, logs[i]);
        assert!(
            l.contains(&format!("ED25519 {}", fingerprint(&new))),
            "host {i} never saw the new key:\n{l}"
        );
    }

    // replicate from a host behind the bastion to the others (new key for those).
    let src = fleet.host(APP).local_path("/srv/pki").unwrap();
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ca.pem"), "-----BEGIN CERTIFICATE-----\nproxy\n").unwrap();
    for i in 0..5 {
        let d = fleet.host(i).local_path("/srv/pki").unwrap();
        std::fs::create_dir_all(&d).unwrap();
        let (uid, gid) = owner_of(&fleet.host(i).home_of("deploy"));
        std::os::unix::fs::chown(&d, Some(uid), Some(gid)).unwrap();
    }
    // The hosts behind the bastion now take the new key, the bastion the fleet key: both are
    // offered (the default hop resolver gives a hop the target's keys).
    let inv = inventory(
        &fleet,
        dir.path(),
        &[],
        &format!("-o IdentityFile={}", new.display()),
    );
    let logs = log_sizes(&fleet);
    Sshfleet::new()
        .inventory_file(&inv)
        .args([
            "--limit",
            "fleet:!bastion",
            "replicate",
            "--from",
            NAMES[APP],
            "/srv/pki/ca.pem",
        ])
        .run()
        .success()
        .stdout_contains("changed: [deep]")
        .stdout_contains("changed: [cmdhost]")
        .stdout_contains("changed: [hop2]");
    for i in [HOP2, DEEP, CMD] {
        let d = fleet.host(i).local_path("/srv/pki/ca.pem").unwrap();
        assert_eq!(
            std::fs::read(d).unwrap(),
            std::fs::read(src.join("ca.pem")).unwrap()
        );
    }
    let blog = log_since(&fleet, BASTION, logs[BASTION]);
    assert_eq!(count(&blog, "Accepted publickey for deploy"), 1, "{blog}");

    // A rotation covering the bastion: the bastion goes after the hosts behind it, and keeps
    // its old key while one of them (ghost: nothing listens there) did not switch.
    let new2 = keygen(dir.path(), "new2", "new2@proxy");
    let new2_pub = pub_line(&new2);
    let keys = format!(
        "-o IdentityFile={} -o IdentityFile={}",
        new.display(),
        new2.display()
    );
    let common = common_args(&fleet, dir.path(), &keys);
    let ghost = format!(
        "ghost ansible_host=127.0.0.1 ansible_port=1 ansible_ssh_common_args='{common} -J deploy@127.0.0.1:{relay}'"
    );
    let inv = inventory(&fleet, dir.path(), &[ghost], &keys);
    let bastion_ak = fleet.authorized_keys_path(BASTION, "deploy");
    let before = std::fs::read(&bastion_ak).unwrap();
    let out = Sshfleet::new()
        .inventory_file(&inv)
        .args(["keys", "rotate", "--new-key"])
        .arg(&new2)
        .args(["--forks", "1"])
        .run();
    out.failure()
        .stdout_contains("unreachable: [ghost]")
        .stdout_contains(
            "failed: [bastion] => not rotated: bastion is the bastion of hosts that did not switch to the new key (ghost)",
        );
    assert_eq!(
        std::fs::read(&bastion_ak).unwrap(),
        before,
        "bastion's keys changed"
    );
    for i in [APP, HOP2, DEEP, CMD] {
        let ak = std::fs::read_to_string(fleet.authorized_keys_path(i, "deploy")).unwrap();
        assert_eq!(ak.trim_end(), new2_pub, "host {i}");
    }
    // Without the ghost, the bastion rotates too (last).
    let inv = inventory(&fleet, dir.path(), &[], &keys);
    Sshfleet::new()
        .inventory_file(&inv)
        .args(["keys", "rotate", "--new-key"])
        .arg(&new2)
        .run()
        .success()
        .stdout_contains("changed: [bastion]");
    let ak = std::fs::read_to_string(&bastion_ak).unwrap();
    assert_eq!(ak.trim_end(), new2_pub);

    drop(fleet);
    assert!(
        procs::pids_in_ns(NsKind::Net, net).is_empty(),
        "processes left in the hidden network namespace"
    );
}

fn owner_of(p: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap();
    (m.uid(), m.gid())
}

/// Host `i` of a fleet hidden behind a bastion: the spec names 127.0.0.1 (reachable only
/// through `proxy_jump`, or not at all without it).
fn hidden_spec(fleet: &Fleet, i: usize, proxy_jump: Option<String>) -> ConnSpec {
    let mut s = conn_spec(fleet, i, "deploy");
    s.address = "127.0.0.1".into();
    s.proxy_jump = proxy_jump;
    s
}

/// PIDs of our children whose command line mentions `needle` (zombies included).
fn children_mentioning(needle: &str) -> Vec<u32> {
    procs::children(std::process::id())
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn proxy_command_child_is_reaped_and_a_dropped_bastion_is_reopened() {
    let fleet = Fleet::builder()
        .hosts(3)
        .users(["deploy"])
        .sudo_users(["deploy"])
        .root_login(false)
        .relay_port(0)
        .hidden(1)
        .relay_socket(2)
        .start()
        .expect("start fleet");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let relay = fleet.host(0).relay_port().unwrap();
    let c = Connector::new(isolated_ssh_config());
    rt.block_on(async {
        // ProxyCommand: the child runs while the session lives, and is gone (killed and
        // reaped, not a zombie) once it is dropped.
        let sock = fleet.host(2).relay_socket().unwrap().display().to_string();
        let mut spec = hidden_spec(&fleet, 2, None);
        spec.proxy_command = Some(format!("socat - UNIX-CONNECT:{sock}"));
        // (The relay itself is our child too: it listens on the socket.)
        let sock = format!("UNIX-CONNECT:{sock}");
        let s = c.connect(&spec).await.expect("connect by ProxyCommand");
        let out = s.exec("id -un", None).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "deploy");
        assert_eq!(
            children_mentioning(&sock).len(),
            1,
            "one ProxyCommand child"
        );
        drop(s);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !children_mentioning(&sock).is_empty() {
            assert!(Instant::now() < deadline, "ProxyCommand child left behind");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A ProxyCommand that fails says why (its stderr).
        spec.proxy_command = Some("socat - UNIX-CONNECT:/nonexistent/sock".into());
        let e = c.connect(&spec).await.err().expect("must fail").to_string();
        assert!(
            e.contains("ProxyCommand exited") && e.contains("/nonexistent/sock"),
            "{e}"
        );

        // ProxyJump: the bastion session is shared, and reopened after the bastion dropped.
        let spec = hidden_spec(&fleet, 1, Some(format!("deploy@127.0.0.1:{relay}")));
        let from = fleet.host(0).log().len();
        let a = c.connect(&spec).await.expect("through the bastion");
        let b = c.connect(&spec).await.expect("through the bastion again");
        assert_eq!(
            count(&log_since(&fleet, 0, from), "Accepted publickey for deploy"),
            1,
            "one bastion login for both"
        );
        drop((a, b));
        fleet.restart_host(0).expect("restart the bastion");
        let s = c
            .connect(&spec)
            .await
            .expect("through the reopened bastion");
        assert!(s.exec("true", None).await.unwrap().status == 0);
        assert_eq!(
            count(&log_since(&fleet, 0, from), "Accepted publickey for deploy"),
            2,
            "a second bastion login after the restart"
        );

        // The hop's host key is checked like any host's: an unknown bastion key is refused,
        // and the error names the hop.
        let mut bad = spec.clone();
        let empty = fleet.dir().join("empty_known_hosts");
        std::fs::write(&empty, "").unwrap();
        bad.known_hosts_files = vec![empty];
        let e = Connector::new(isolated_ssh_config())
            .connect(&bad)
            .await
            .err()
            .expect("unknown bastion key")
            .to_string();
        assert!(
            e.starts_with(&format!(
                "via bastion deploy@127.0.0.1:{relay}: host key verification failed"
            )),
            "{e}"
        );
    });
}
