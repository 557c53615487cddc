//! `sshfleet hostkeys scan|certify` against the real fleet (issue 19): keyscan compared with
//! `ssh-keyscan`, a host key changed behind our back, `--update-known-hosts` keeping the file's
//! hashed/plain form and comments, and host certificates trusted through `@cert-authority`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::Sshfleet;
use crate::support::fleet::Fleet;

/// Replace host `i`'s ed25519 host key by a fresh one and restart its sshd: a host "changed
/// behind our back" (reinstalled, or an attacker on its address).
fn replace_host_key(fleet: &Fleet, i: usize) {
    let key = fleet.host(i).host_key_path();
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "replaced", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    fleet.restart_host(i).expect("restart host");
}

/// `ssh-keyscan`'s SHA256 fingerprints for a host (the oracle).
fn keyscan_fingerprints(port: u16) -> BTreeSet<String> {
    let out = Command::new("ssh-keyscan")
        .args([
            "-t",
            "ed25519,ecdsa,rsa",
            "-p",
            &port.to_string(),
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("scan");
    std::fs::write(&f, &out.stdout).unwrap();
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&f)
        .output()
        .unwrap();
    String::from_utf8_lossy(&fp.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect()
}

fn scan_json(fleet: &Fleet, extra: &[&str]) -> (i32, serde_json::Value) {
    let out = Sshfleet::new()
        .inventory(fleet)
        .arg("--json")
        .args(["hostkeys", "scan"])
        .args(extra)
        .run();
    (out.code.unwrap_or(-1), out.json())
}

fn status_of(doc: &serde_json::Value, host: &str) -> String {
    doc["hosts"][host]["status"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

fn known_hosts_text(fleet: &Fleet) -> String {
    std::fs::read_to_string(fleet.known_hosts()).unwrap()
}

fn ssh_ok(fleet: &Fleet, i: usize, known_hosts: &Path) -> bool {
    Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "GlobalKnownHostsFile=/dev/null", "-i"])
        .arg(fleet.client_key())
        .args([
            "-p",
            &fleet.host(i).port().to_string(),
            "deploy@127.0.0.1",
            "true",
        ])
        .output()
        .unwrap()
        .status
        .success()
}

/// Scan right after setup: every host matches (exit 0) and presents exactly what
/// `ssh-keyscan` sees. Then host03's key is replaced behind our back: scan reports it changed
/// (exit 2); `--update-known-hosts` alone does not write a changed key; `--check
/// --accept-changed` shows the diff and writes nothing; `--accept-changed` replaces it in
/// place, every other line byte for byte, after which a strict `ssh` connects and scan is
/// clean again.
#[test]
fn scan_reports_match_then_a_key_changed_behind_our_back() {
    let fleet = Fleet::builder().hosts(4).start().expect("start fleet");
    let (code, doc) = scan_json(&fleet, &[]);
    assert_eq!(code, 0, "{doc}");
    for (i, h) in fleet.hosts().iter().enumerate() {
        assert_eq!(status_of(&doc, h.name()), "match", "{doc}");
        let ours: BTreeSet<String> = doc["hosts"][h.name()]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["fingerprint"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ours,
            keyscan_fingerprints(fleet.host(i).port()),
            "{}",
            h.name()
        );
    }

    // A comment and a foreign line that must survive byte for byte.
    let kh = fleet.known_hosts();
    let mut text = known_hosts_text(&fleet);
    text.insert_str(0, "# fleet hosts, managed by hand\n");
    text.push_str("other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPNKk17//p3pZqOsxCs5BBVAO1iSeA/XgCCnF9t1qFTr  keep  me\n");
    std::fs::write(&kh, &text).unwrap();

    replace_host_key(&fleet, 2);
    let (code, doc) = scan_json(&fleet, &[]);
    assert_eq!(code, 2, "{doc}");
    assert_eq!(status_of(&doc, "host03"), "changed", "{doc}");
    for h in ["host01", "host02", "host04"] {
        assert_eq!(status_of(&doc, h), "match", "{doc}");
    }
    assert!(
        !ssh_ok(&fleet, 2, &kh),
        "strict ssh must refuse the changed key"
    );

    // --update-known-hosts alone: a changed key is not written.
    let (code, _) = scan_json(&fleet, &["--update-known-hosts"]);
    assert_eq!(code, 2);
    assert_eq!(known_hosts_text(&fleet), text);
    // Check mode shows the replacement and writes nothing.
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args([
            "--check",
            "hostkeys",
            "scan",
            "--update-known-hosts",
            "--accept-changed",
        ])
        .run();
    out.stdout_contains("would update")
        .stdout_contains("-[127.0.0.1]:");
    assert_eq!(known_hosts_text(&fleet), text);
    // Accepted: replaced in place; the other lines unchanged.
    let (code, doc) = scan_json(&fleet, &["--update-known-hosts", "--accept-changed"]);
    assert_eq!(code, 0, "{doc}");
    let after = known_hosts_text(&fleet);
    let port3 = format!("[127.0.0.1]:{} ", fleet.host(2).port());
    let (old_lines, new_lines): (Vec<&str>, Vec<&str>) =
        (text.lines().collect(), after.lines().collect());
    assert_eq!(old_lines.len(), new_lines.len());
    for (o, n) in old_lines.iter().zip(&new_lines) {
        if o.starts_with(&port3) {
            assert!(n.starts_with(&port3) && o != n);
        } else {
            assert_eq!(o, n);
        }
    }
    assert!(ssh_ok(&fleet, 2, &kh));
    let (code, doc) = scan_json(&fleet, &[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(status_of(&doc, "host03"), "match");
}

/// A hashed known_hosts (`ssh-keygen -H`) with comments, one host's entry removed: scan says
/// missing (exit 0), `--update-known-hosts` adds it hashed, keeps every other line byte for
/// byte, and OpenSSH then connects strictly. A `@revoked` key is reported (exit 2) and never
/// written back, even with `--accept-changed`.
#[test]
fn update_known_hosts_keeps_hashed_form_and_comments() {
    let fleet = Fleet::builder().hosts(3).start().expect("start fleet");
    let kh = fleet.known_hosts();
    let st = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&kh)
        .output()
        .unwrap();
    assert!(st.status.success());
    let _ = std::fs::remove_file(kh.with_extension("old"));
    let hashed = known_hosts_text(&fleet);
    let mut lines: Vec<String> = hashed.lines().map(String::from).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l.starts_with("|1|")));
    lines.remove(1); // host02 forgotten
    lines.insert(0, "# hashed by ssh-keygen -H".into());
    lines.insert(2, "".into());
    let text = lines.join("\n") + "\n";
    std::fs::write(&kh, &text).unwrap();
    assert!(!ssh_ok(&fleet, 1, &kh));

    let (code, doc) = scan_json(&fleet, &[]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(status_of(&doc, "host02"), "missing");
    let (code, doc) = scan_json(&fleet, &["--update-known-hosts"]);
    assert_eq!(code, 0, "{doc}");
    let after = known_hosts_text(&fleet);
    assert!(
        after.starts_with(&text),
        "old lines kept byte for byte:\n{after}"
    );
    let added: Vec<&str> = after[text.len()..].lines().collect();
    assert_eq!(added.len(), 1);
    assert!(
        added[0].starts_with("|1|"),
        "new entry hashed: {}",
        added[0]
    );
    assert!(!after.contains("127.0.0.1"));
    assert!(ssh_ok(&fleet, 1, &kh));
    // Nothing left to do: a second run changes nothing.
    let (_, doc) = scan_json(&fleet, &["--update-known-hosts"]);
    assert_eq!(doc["known_hosts"][0]["changed"], false, "{doc}");
    assert_eq!(known_hosts_text(&fleet), after);
    // host01's key revoked: reported, exit 2, and never written back by an update.
    let pub1 = fleet.host(0).host_key_pub().to_string();
    let key1: Vec<&str> = pub1.split_whitespace().take(2).collect();
    let revoked = format!("{after}@revoked * {}\n", key1.join(" "));
    std::fs::write(&kh, &revoked).unwrap();
    let (code, doc) = scan_json(&fleet, &["--update-known-hosts", "--accept-changed"]);
    assert_eq!(code, 2, "{doc}");
    assert_eq!(status_of(&doc, "host01"), "revoked", "{doc}");
    assert_eq!(status_of(&doc, "host02"), "match", "{doc}");
    assert_eq!(known_hosts_text(&fleet), revoked);
}

/// Certify 20 hosts with a CA kept on the controller (via become), then connect to every one
/// with a known_hosts that holds **only** the printed `@cert-authority` line: OpenSSH `ssh`
/// (strict), sshfleet `ping`, and `hostkeys scan` (cert-trusted, exit 0). A second run keeps
/// sshd's configuration as it is (the HostCertificate line is already there).
#[test]
fn certify_20_hosts_then_trust_only_the_ca() {
    const N: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::builder().hosts(N).start().expect("start fleet");
    let ca = dir.path().join("host_ca");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "fleet-ca", "-f"])
        .arg(&ca)
        .status()
        .unwrap();
    assert!(st.success());
    let out = Sshfleet::new()
        .inventory(&fleet)
        .env("SSHFLEET_JOURNAL_DIR", dir.path().join("journal"))
        .args(["hostkeys", "certify", "-b", "--ca"])
        .arg(&ca)
        .args(["--validity", "4w"])
        .run();
    out.success();
    // The run journal recorded, per host, the certificate and the drop-in written (hashes).
    let mut journal = String::new();
    for e in std::fs::read_dir(dir.path().join("journal")).unwrap() {
        journal.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap_or_default());
    }
    assert_eq!(
        journal.matches("ssh_host_ed25519_key-cert.pub").count(),
        N,
        "{journal}"
    );
    assert_eq!(
        journal.matches("sshfleet-hostcertificate.conf").count(),
        N,
        "{journal}"
    );
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
    assert!(!journal.contains(ca_priv.trim()));
    for h in fleet.hosts() {
        let cert = h
            .host_key_path()
            .with_file_name("ssh_host_ed25519_key-cert.pub");
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
        // Nothing of the CA's private key in the host's /etc/ssh.
        let etc_ssh = h.host_key_path().parent().unwrap().to_path_buf();
        let mut todo = vec![etc_ssh];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else if let Ok(t) = std::fs::read_to_string(&p) {
                    assert!(!t.contains(ca_priv.trim()), "{}", p.display());
                }
            }
        }
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
    // The HostCertificate line is in our drop-in (the stock sshd_config includes
    // sshd_config.d), and only there.
    let dropin = fleet
        .host(0)
        .sshd_config_path()
        .with_file_name("sshd_config.d")
        .join("sshfleet-hostcertificate.conf");
    let cfg0 = std::fs::read_to_string(&dropin).unwrap();
    assert_eq!(cfg0.matches("HostCertificate ").count(), 1, "{cfg0}");
    let main0 = std::fs::read_to_string(fleet.host(0).sshd_config_path()).unwrap();
    Sshfleet::new()
        .inventory(&fleet)
        .args(["hostkeys", "certify", "-b", "-H", "host01", "--ca"])
        .arg(&ca)
        .run()
        .success();
    assert_eq!(std::fs::read_to_string(&dropin).unwrap(), cfg0);
    assert_eq!(
        std::fs::read_to_string(fleet.host(0).sshd_config_path()).unwrap(),
        main0
    );
}
