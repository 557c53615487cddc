//! The test fleet itself (issue 2): real sshd hosts with independent home directories,
//! OpenSSH logins as every user, sudo rights, restart/stop/pause, and a teardown that leaves
//! no process or mount behind.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::fleet::{Fleet, NsKind, procs, ssh};

/// Everything a fleet started, recorded while it runs, to check after teardown.
struct Footprint {
    /// Clock ticks (since boot) before teardown began.
    before: u64,
    pids: Vec<u32>,
    namespaces: Vec<(u64, u64)>,
    dir: String,
}

fn footprint(fleet: &Fleet) -> Footprint {
    let mut pids = Vec::new();
    let mut namespaces = Vec::new();
    for h in fleet.hosts() {
        pids.push(h.pid().expect("host running"));
        pids.push(h.owner_pid().expect("host running"));
        let (mnt, pid) = h.namespaces().expect("host running");
        // Every process of the host (sessions included) is in its namespaces.
        pids.extend(procs::pids_in_ns(NsKind::Pid, pid));
        namespaces.push((mnt, pid));
    }
    Footprint {
        before: procs::now_ticks(),
        pids,
        namespaces,
        dir: fleet.dir().display().to_string(),
    }
}

/// Namespace inode numbers are reused as soon as a namespace dies (another test process may
/// get ours), so only processes that started before teardown count as leftovers.
#[track_caller]
fn assert_gone(fp: &Footprint) {
    let alive: Vec<u32> = fp
        .pids
        .iter()
        .copied()
        .filter(|&p| procs::exists(p))
        .collect();
    assert!(
        alive.is_empty(),
        "fleet processes survived teardown: {alive:?}"
    );
    for &(mnt, pid) in &fp.namespaces {
        let left: Vec<u32> = procs::pids_in_ns_started_before(NsKind::Mnt, mnt, fp.before)
            .into_iter()
            .chain(procs::pids_in_ns_started_before(
                NsKind::Pid,
                pid,
                fp.before,
            ))
            .collect();
        assert!(
            left.is_empty(),
            "processes left in fleet namespaces: {left:?}"
        );
    }
    let mounts = procs::mounts_mentioning(&fp.dir);
    assert!(mounts.is_empty(), "fleet mounts survived: {mounts:?}");
    assert!(
        !std::path::Path::new(&fp.dir).exists(),
        "fleet dir {} not removed",
        fp.dir
    );
}

#[test]
fn fleet_of_20_hosts_has_independent_homes_and_tears_down_cleanly() {
    let t0 = Instant::now();
    let fleet = Fleet::builder().hosts(20).start().expect("start fleet");
    let elapsed = t0.elapsed();
    println!(
        "fleet start: 20 hosts in {} ms (builder's own measure: {} ms)",
        elapsed.as_millis(),
        fleet.started_in().as_millis()
    );
    assert_eq!(fleet.hosts().len(), 20);
    assert_eq!(fleet.hosts()[0].name(), "host01");
    assert_eq!(fleet.hosts()[19].name(), "host20");
    let ports: BTreeSet<u16> = fleet.hosts().iter().map(|h| h.port()).collect();
    assert_eq!(ports.len(), 20, "ports must be distinct");
    let host_keys: BTreeSet<&str> = fleet.hosts().iter().map(|h| h.host_key_pub()).collect();
    assert_eq!(host_keys.len(), 20, "host keys must be distinct");

    // Every user logs in on every host with OpenSSH, strict host key checking.
    std::thread::scope(|s| {
        for i in 0..20 {
            let fleet = &fleet;
            s.spawn(move || {
                for user in ["admin", "deploy", "backup"] {
                    let out = ssh(fleet, i, user, "id -un; echo $HOME");
                    out.assert_success();
                    assert_eq!(
                        out.stdout_str(),
                        format!("{user}\n/home/{user}\n"),
                        "host {i} user {user}"
                    );
                }
            });
        }
    });

    // A marker written over ssh into host07's ~deploy/.ssh/authorized_keys shows up in that
    // host's file only.
    let marker = format!("# marker-{}", std::process::id());
    ssh(
        &fleet,
        6,
        "deploy",
        &format!("echo '{marker}' >> ~/.ssh/authorized_keys"),
    )
    .assert_success();
    std::thread::scope(|s| {
        for (i, h) in fleet.hosts().iter().enumerate() {
            let (fleet, marker) = (&fleet, &marker);
            s.spawn(move || {
                let ak = std::fs::read_to_string(h.authorized_keys_path("deploy")).unwrap();
                assert_eq!(
                    ak.contains(marker),
                    i == 6,
                    "host {} authorized_keys:\n{ak}",
                    h.name()
                );
                // ... and each host itself sees exactly that file.
                let seen = ssh(fleet, i, "deploy", "cat ~/.ssh/authorized_keys");
                seen.assert_success();
                assert_eq!(seen.stdout_str(), ak, "host {}", h.name());
            });
        }
    });
    // The client key still logs in everywhere (the marker is a comment).
    ssh(&fleet, 6, "deploy", "true").assert_success();

    // A session process that detaches (setsid, ignores SIGHUP) must not outlive teardown.
    ssh(
        &fleet,
        3,
        "deploy",
        "setsid nohup sleep 1000 >/dev/null 2>&1 < /dev/null & echo started",
    )
    .assert_success();
    let fp = footprint(&fleet);
    let (_, pidns) = fleet.hosts()[3].namespaces().unwrap();
    assert!(
        procs::pids_in_ns(NsKind::Pid, pidns).len() >= 2,
        "the detached sleep should be running inside host04's PID namespace"
    );
    assert!(
        !procs::mounts_mentioning(&fp.dir).is_empty(),
        "hosts' namespaces should have the fleet dir bound over /home"
    );

    let t1 = Instant::now();
    drop(fleet);
    println!("fleet teardown: {} ms", t1.elapsed().as_millis());
    assert_gone(&fp);
}

#[test]
fn fleet_sudo_root_login_and_restart_keeps_host_key() {
    let fleet = Fleet::builder().hosts(2).start().expect("start fleet");
    ssh(&fleet, 0, "deploy", "sudo -n true").assert_success();
    ssh(&fleet, 0, "admin", "sudo -n id -un").assert_success();
    let backup = ssh(&fleet, 0, "backup", "sudo -n true");
    assert!(!backup.success(), "backup must not have sudo: {backup:?}");

    // root logs in with the fleet key and has a per-host /root.
    let out = ssh(
        &fleet,
        1,
        "root",
        "id -un; echo $HOME; touch /root/only-here",
    );
    out.assert_success();
    assert_eq!(out.stdout_str(), "root\n/root\n");
    assert!(fleet.hosts()[1].home_of("root").join("only-here").exists());
    assert!(!fleet.hosts()[0].home_of("root").join("only-here").exists());

    // /srv is private per host too (the default private dir); /etc is shared.
    ssh(
        &fleet,
        1,
        "deploy",
        "sudo -n sh -c 'mkdir -p /srv/pki && echo one > /srv/pki/ca.pem'",
    )
    .assert_success();
    let local = fleet.hosts()[1].local_path("/srv/pki/ca.pem").unwrap();
    assert_eq!(std::fs::read_to_string(local).unwrap(), "one\n");
    assert!(
        !fleet.hosts()[0]
            .local_path("/srv/pki/ca.pem")
            .unwrap()
            .exists()
    );
    let other = ssh(&fleet, 0, "deploy", "test -e /srv/pki/ca.pem");
    assert!(!other.success(), "host01 must not see host02's /srv");
    assert_eq!(fleet.hosts()[0].local_path("/etc/passwd"), None);
    assert_eq!(
        fleet.hosts()[0].local_path("/home/deploy/.ssh/authorized_keys"),
        Some(fleet.authorized_keys_path(0, "deploy"))
    );

    // Restart: same port, same host key, new process; strict host key checking still passes.
    let h = &fleet.hosts()[0];
    let (port, old_pid) = (h.port(), h.pid().unwrap());
    let old_owner = h.owner_pid().unwrap();
    let (old_mnt, old_pidns) = h.namespaces().unwrap();
    let before_restart = procs::now_ticks();
    fleet.restart_host(0).expect("restart");
    assert_eq!(h.port(), port);
    assert_ne!(h.pid().unwrap(), old_pid);
    assert!(!procs::exists(old_pid) && !procs::exists(old_owner));
    // (Namespace inodes are reused at once, so only processes older than the restart count.)
    assert!(procs::pids_in_ns_started_before(NsKind::Mnt, old_mnt, before_restart).is_empty());
    assert!(procs::pids_in_ns_started_before(NsKind::Pid, old_pidns, before_restart).is_empty());
    let out = ssh(&fleet, 0, "deploy", "id -un");
    out.assert_success();
    assert_eq!(out.stdout_str(), "deploy\n");

    // Stop: connection refused; the other host is unaffected; restart brings it back.
    fleet.stop_host(0);
    assert!(!h.is_running());
    assert!(std::net::TcpStream::connect(h.socket_addr()).is_err());
    ssh(&fleet, 1, "deploy", "true").assert_success();
    fleet.restart_host(0).expect("restart after stop");
    ssh(&fleet, 0, "deploy", "true").assert_success();
}

#[test]
fn fleet_paused_host_stalls_and_resumes() {
    let fleet = Fleet::builder().hosts(1).start().expect("start fleet");
    fleet.pause_host(0);
    let t0 = Instant::now();
    let out = std::process::Command::new("ssh")
        .args(["-o", "ConnectTimeout=1"]) // before ssh_args: ssh keeps the first value
        .args(fleet.ssh_args(0, "deploy"))
        .args(["--", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a paused host must not answer");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "should time out, not be refused"
    );
    fleet.resume_host(0);
    ssh(&fleet, 0, "deploy", "true").assert_success();
}

#[test]
fn fleet_writes_inventory_known_hosts_and_key_with_quiet_sshd() {
    let fleet = Fleet::builder()
        .hosts(3)
        .sshd_option(1, "Banner /dev/null")
        // Below INFO sshd never logs "Server listening": readiness must still be detected.
        .log_level("ERROR")
        .start()
        .expect("start fleet");
    for i in 0..3 {
        ssh(&fleet, i, "backup", "true").assert_success();
    }
    let inv = std::fs::read_to_string(fleet.inventory()).unwrap();
    for h in fleet.hosts() {
        assert!(
            inv.contains(&format!(
                "{} ansible_host=127.0.0.1 ansible_port={}\n",
                h.name(),
                h.port()
            )),
            "{inv}"
        );
    }
    assert!(inv.contains("ansible_user=deploy"));
    let kh = std::fs::read_to_string(fleet.known_hosts()).unwrap();
    assert_eq!(kh.lines().count(), 3);
    for h in fleet.hosts() {
        let blob = h.host_key_pub().split_whitespace().nth(1).unwrap();
        assert!(kh.contains(&format!("[127.0.0.1]:{} ssh-ed25519 {blob}", h.port())));
    }
    let cfg = std::fs::read_to_string(fleet.hosts()[1].sshd_config_path()).unwrap();
    assert!(cfg.contains("Banner /dev/null"));
    let cfg0 = std::fs::read_to_string(fleet.hosts()[0].sshd_config_path()).unwrap();
    assert!(!cfg0.contains("Banner"));
    // ssh-keygen -y proves the client key is a valid unencrypted key.
    let out = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(fleet.client_key())
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn fleet_up_command_serves_until_sigterm_then_tears_down() {
    let base = std::env::temp_dir().join(format!("sshfleet-fleet-up-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("fleet");
    let mut child = std::process::Command::new(crate::support::sshfleet_bin())
        .args(["fleet", "up", "--hosts", "3", "--dir"])
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sshfleet fleet up");
    // Kill the command if the test fails before SIGTERM (its hosts die with it: pdeathsig).
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            procs::signal(self.0, libc::SIGKILL);
        }
    }
    let guard = KillOnDrop(child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("ready").exists() {
        if let Some(st) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "fleet up exited early ({st}):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "fleet up not ready after 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let desc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fleet.json")).unwrap()).unwrap();
    let hosts = desc["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    let pids: Vec<u32> = hosts
        .iter()
        .map(|h| h["pid"].as_u64().unwrap() as u32)
        .collect();
    for h in hosts {
        let port = h["port"].as_u64().unwrap().to_string();
        let out = std::process::Command::new("ssh")
            .args(["-F", "/dev/null", "-i"])
            .arg(dir.join("id_ed25519"))
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                dir.join("known_hosts").display()
            ))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-p",
                &port,
            ])
            .args(["deploy@127.0.0.1", "id", "-un"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "deploy\n");
    }
    let inv = std::fs::read_to_string(dir.join("inventory.ini")).unwrap();
    assert!(inv.contains("host03 ansible_host=127.0.0.1"), "{inv}");

    procs::signal(child.id(), libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    drop(guard);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("inventory:"), "{stdout}");
    for pid in pids {
        assert!(
            !procs::exists(pid),
            "sshd {pid} survived fleet up's teardown"
        );
    }
    assert!(!dir.exists(), "fleet dir not removed");
    assert!(procs::mounts_mentioning(&dir.display().to_string()).is_empty());
    let _ = std::fs::remove_dir_all(&base);
}

/// When the owning process dies without running Drop (SIGKILL), PR_SET_PDEATHSIG takes its
/// hosts down with it.
#[test]
fn fleet_dies_with_its_owner_process() {
    let base =
        std::env::temp_dir().join(format!("sshfleet-fleet-owner-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let dir = base.join("fleet");
    let mut child = std::process::Command::new(crate::support::sshfleet_bin())
        .args(["fleet", "up", "--hosts", "2", "--dir"])
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn sshfleet fleet up");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("ready").exists() {
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            panic!("fleet up did not become ready");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let desc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fleet.json")).unwrap()).unwrap();
    let pids: Vec<u32> = desc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["pid"].as_u64().unwrap() as u32)
        .collect();
    assert!(pids.iter().all(|&p| procs::exists(p)));
    child.kill().unwrap(); // SIGKILL: no Drop, no signal handler
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&p| procs::exists(p)) {
        assert!(
            Instant::now() < deadline,
            "sshd processes {pids:?} outlived their owner"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The directory is left behind in this case (documented); remove it.
    let _ = std::fs::remove_dir_all(&base);
}

/// A host whose sshd cannot start fails `start()` with sshd's own words, and the hosts that
/// did start are torn down.
#[test]
fn fleet_start_failure_names_host_and_cleans_up() {
    let before = procs::now_ticks();
    let err = Fleet::builder()
        .hosts(3)
        .sshd_option(1, "NoSuchSshdOption yes")
        .start()
        .expect_err("sshd must refuse a bad option");
    let msg = err.to_string();
    assert!(msg.contains("host02"), "{msg}");
    assert!(
        msg.contains("NoSuchSshdOption"),
        "sshd's complaint should be shown: {msg}"
    );
    // No sshd started by this test survives (sshd processes are children of unshare, whose
    // parent is this test process; look for any sshd started since `before` whose config is
    // in a fleet dir of this process).
    let mine = format!("sshfleet-fleet-{}-", std::process::id());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u32> = procs::all_pids()
            .into_iter()
            .filter(|&p| procs::start_ticks(p).is_some_and(|t| t >= before))
            .filter(|&p| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&mine))
            })
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes survived a failed start: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The fleet's inventory works as-is for real Ansible (venv from scripts/setup.sh): login as
/// ansible_user with the fleet key and strict host key checking, and become root via sudo.
#[test]
fn fleet_inventory_works_with_ansible() {
    let ansible = crate::support::venv_bin().join("ansible");
    assert!(
        ansible.exists(),
        "{} missing: run scripts/setup.sh",
        ansible.display()
    );
    let fleet = Fleet::builder().hosts(3).start().expect("start fleet");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(&ansible)
            .arg("-i")
            .arg(fleet.inventory())
            .args(["fleet", "-o"])
            .args(extra)
            .env("ANSIBLE_HOME", fleet.dir().join("ansible-home"))
            .env("ANSIBLE_LOCAL_TEMP", fleet.dir().join("ansible-tmp"))
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", fleet.dir().join("cp"))
            .env_remove("ANSIBLE_INVENTORY")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run ansible");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ansible {extra:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let ping = run(&["-m", "ping"]);
    let become_ = run(&["-b", "-m", "command", "-a", "id -un"]);
    for h in fleet.hosts() {
        assert!(ping.contains(&format!("{} | SUCCESS", h.name())), "{ping}");
        let line = become_
            .lines()
            .find(|l| l.starts_with(&format!("{} |", h.name())))
            .unwrap_or_else(|| panic!("no result for {}:\n{become_}", h.name()));
        assert!(line.contains("rc=0") && line.ends_with("root"), "{line}");
    }
}

/// Each host looks like a Debian host for sshd: a regular `/etc/ssh/sshd_config` including
/// `sshd_config.d`, the host key at the stock path, a pidfile in its own `/run`, no systemd
/// visible; `kill -HUP $(cat /run/sshd.pid)` on the host reloads its sshd (which re-executes
/// itself and stays PID 1 of the host's PID namespace) and picks up a drop-in; restart works.
#[test]
fn fleet_host_etc_ssh_is_debian_like_and_sshd_reloads_with_hup_from_the_pidfile() {
    let fleet = Fleet::builder().hosts(2).start().expect("start fleet");
    let h = fleet.host(0);
    let pid = h.pid().unwrap();
    let out = ssh(
        &fleet,
        0,
        "root",
        "test -f /etc/ssh/sshd_config && ! test -L /etc/ssh/sshd_config && echo regular; \
         grep -x 'Include /etc/ssh/sshd_config.d/\\*.conf' /etc/ssh/sshd_config; \
         test -f /etc/ssh/ssh_host_ed25519_key && ! test -L /etc/ssh/ssh_host_ed25519_key && echo key; \
         cat /run/sshd.pid; test -e /run/systemd/system || echo no-systemd; \
         /usr/sbin/sshd -T | grep -i '^hostkey '",
    );
    out.assert_success();
    let text = out.stdout_str();
    assert!(text.contains("regular\n"), "{text}");
    assert!(
        text.contains("Include /etc/ssh/sshd_config.d/*.conf\n"),
        "{text}"
    );
    assert!(text.contains("key\n1\nno-systemd\n"), "{text}");
    // Debian's stock defaults: every default path is listed, only ed25519 exists.
    assert!(
        text.contains("hostkey /etc/ssh/ssh_host_ed25519_key"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(h.pidfile_path()).unwrap().trim(),
        "1"
    );
    // Another host's /etc/ssh and /run are its own.
    assert_ne!(
        std::fs::read(h.host_key_path()).unwrap(),
        std::fs::read(fleet.host(1).host_key_path()).unwrap()
    );
    // A drop-in plus HUP from inside the host: sshd re-executes with the same PID.
    let out = ssh(
        &fleet,
        0,
        "root",
        "echo 'Banner /etc/ssh/banner.txt' > /etc/ssh/sshd_config.d/50-banner.conf && \
         echo 'reloaded-banner' > /etc/ssh/banner.txt && kill -HUP \"$(cat /run/sshd.pid)\"",
    );
    out.assert_success();
    let deadline = Instant::now() + Duration::from_secs(20);
    let banner = loop {
        let o = crate::support::fleet::ssh_command(&fleet, 0, "deploy")
            .arg("true")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        if o.status.success() && err.contains("reloaded-banner") {
            break err;
        }
        assert!(Instant::now() < deadline, "no reload: {err}\n{}", h.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(banner.contains("reloaded-banner"));
    assert_eq!(h.pid(), Some(pid), "sshd keeps its PID");
    assert!(procs::exists(pid), "sshd still runs");
    assert!(
        h.log().contains("Received SIGHUP; restarting."),
        "{}",
        h.log()
    );
    // The machine's sshd and files are untouched; restart keeps the host's /etc/ssh.
    fleet.restart_host(0).unwrap();
    ssh(&fleet, 0, "deploy", "true").assert_success();
    assert!(h.sshd_config_path().is_file());
}
