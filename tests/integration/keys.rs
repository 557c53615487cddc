//! `sshfleet keys list|add|remove|set|rotate` against the real fleet (issue 5): lock-out-safe
//! rotation of `deploy` and `backup` on 20 hosts, a host whose sshd refuses the new key,
//! check mode, diffs, kept keys, idempotence, install, and the editing commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use crate::support::Sshfleet;
use crate::support::fleet::Fleet;
use crate::support::keys::{cli_with_key, keygen, logs_in, pub_line, pub_path, read_ak};

/// The `TYPE BLOB` of a public key line (no options, no comment).
fn key_text(line: &str) -> String {
    let w: Vec<&str> = line.split_whitespace().collect();
    format!("{} {}", w[0], w[1])
}

/// Every host's authorized_keys of `users`, byte for byte.
fn snapshot(fleet: &Fleet, users: &[&str]) -> Vec<Vec<u8>> {
    (0..fleet.hosts().len())
        .flat_map(|i| users.iter().map(move |u| (i, *u)))
        .map(|(i, u)| read_ak(fleet, i, u))
        .collect()
}

fn append_ak(fleet: &Fleet, i: usize, user: &str, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(fleet.authorized_keys_path(i, user))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn ak_lines(fleet: &Fleet, i: usize, user: &str) -> Vec<String> {
    String::from_utf8(read_ak(fleet, i, user))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The 20-host rotation story, in order on one fleet:
/// check mode → rotate `backup` (ed25519, via -b) → rotate `deploy` to an rsa key that
/// host05's sshd refuses (`--keep` a key with options) → second run changes nothing.
#[test]
fn keys_rotate_deploy_and_backup_on_20_hosts_without_lockout() {
    const N: usize = 20;
    const PICKY: usize = 4; // host05 accepts only ssh-ed25519 keys
    let fleet = Fleet::builder()
        .hosts(N)
        .sshd_option(PICKY, "PubkeyAcceptedAlgorithms ssh-ed25519")
        .start()
        .expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let old = fleet.client_key();
    let keep = keygen(dir.path(), "keep", "keep@me", &["-t", "ed25519"]);
    let drop = keygen(dir.path(), "drop", "drop@me", &["-t", "ed25519"]);
    let keep_line = format!(r#"from="127.0.0.1",no-pty {}"#, pub_line(&keep));
    for i in 0..N {
        append_ak(
            &fleet,
            i,
            "deploy",
            &format!("{keep_line}\n{}\n", pub_line(&drop)),
        );
    }

    // --- check mode: plan and diff, nothing written anywhere (no key files either) ---
    let before = snapshot(&fleet, &["deploy", "backup"]);
    let rsa = dir.path().join("id_rsa_new");
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args(["keys", "rotate", "--check", "--diff", "--generate"])
        .args(["--type", "rsa", "--bits", "2048", "--new-key"])
        .arg(&rsa)
        .arg("--keep")
        .arg(pub_path(&keep))
        .run();
    out.success()
        .stdout_contains("changed: [host01]")
        .stdout_contains("not tried in check mode")
        .stdout_contains("+ssh-rsa ")
        .stdout_contains(&format!("-{}", pub_line(&old)))
        .stdout_contains(&format!("-{}", pub_line(&drop)))
        .stdout_contains("nothing written");
    assert_eq!(snapshot(&fleet, &["deploy", "backup"]), before);
    assert!(!rsa.exists() && !pub_path(&rsa).exists());

    // --- rotate backup (login as deploy, -b for step 1; verify logs in as backup) ---
    let ed = dir.path().join("id_backup_new");
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args([
            "-b",
            "keys",
            "rotate",
            "--user",
            "backup",
            "--generate",
            "--new-key",
        ])
        .arg(&ed)
        .run();
    out.success();
    assert_eq!(out.stdout.matches("changed: [host").count(), N, "{out}");
    let ed_line = pub_line(&ed);
    for i in 0..N {
        assert!(
            logs_in(&fleet, i, "backup", &ed),
            "new key refused on host {i}"
        );
        assert!(
            !logs_in(&fleet, i, "backup", &old),
            "old key still works on host {i}"
        );
        assert_eq!(ak_lines(&fleet, i, "backup"), vec![ed_line.clone()]);
    }

    // --- rotate deploy to an rsa key; host05 refuses rsa keys ---
    let snap_before_deploy = read_ak(&fleet, PICKY, "deploy");
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args([
            "keys",
            "rotate",
            "--diff",
            "--generate",
            "--type",
            "rsa",
            "--bits",
            "2048",
        ])
        .arg("--new-key")
        .arg(&rsa)
        .arg("--keep")
        .arg(pub_path(&keep))
        .run();
    out.code(2)
        .stdout_contains("failed: [host05] => new key refused by host05; old key kept")
        .stderr_contains("new key refused on 1 host(s), old key kept there: host05")
        .stdout_contains("+ssh-rsa ");
    assert_eq!(out.stdout.matches("changed: [host").count(), N - 1, "{out}");
    let rsa_line = pub_line(&rsa);
    assert!(rsa_line.starts_with("ssh-rsa "));
    for i in 0..N {
        if i == PICKY {
            // Both keys remain; the old one still logs in; nothing was removed.
            assert!(logs_in(&fleet, i, "deploy", &old));
            assert!(!logs_in(&fleet, i, "deploy", &rsa));
            let lines = ak_lines(&fleet, i, "deploy");
            let mut expect: Vec<String> = String::from_utf8(snap_before_deploy.clone())
                .unwrap()
                .lines()
                .map(String::from)
                .collect();
            expect.push(rsa_line.clone());
            assert_eq!(lines, expect);
            continue;
        }
        assert!(
            logs_in(&fleet, i, "deploy", &rsa),
            "new key refused on host {i}"
        );
        assert!(
            !logs_in(&fleet, i, "deploy", &old),
            "old key still works on host {i}"
        );
        assert!(!logs_in(&fleet, i, "deploy", &drop));
        // The kept key keeps its options and comment, byte for byte.
        assert_eq!(
            ak_lines(&fleet, i, "deploy"),
            vec![keep_line.clone(), rsa_line.clone()],
            "host {i}"
        );
    }

    // --- a second run changes nothing (host05 excluded: it still refuses rsa) ---
    let after = snapshot(&fleet, &["deploy", "backup"]);
    let out = cli_with_key(&fleet, &rsa)
        .args(["--limit", "!host05", "keys", "rotate", "--new-key"])
        .arg(&rsa)
        .arg("--keep")
        .arg(&keep_line)
        .run();
    out.success().stdout_lacks("changed: [");
    assert_eq!(out.stdout.matches("ok: [host").count(), N - 1, "{out}");
    assert_eq!(snapshot(&fleet, &["deploy", "backup"]), after);

    // --json: one object per host with the rotation's steps.
    let out = cli_with_key(&fleet, &rsa)
        .args([
            "--limit",
            "host01:host02",
            "--json",
            "keys",
            "rotate",
            "--new-key",
        ])
        .arg(&rsa)
        .arg("--keep")
        .arg(pub_path(&keep))
        .run();
    out.success();
    let doc = out.json();
    let h = &doc["hosts"]["host01"];
    assert_eq!(h["status"], "ok", "{doc}");
    assert_eq!(h["verify"]["ok"], true, "{doc}");
    assert_eq!(h["user"], "deploy");
}

/// `--install` moves the new (passphrase-protected) pair into place and keeps the old one.
#[test]
fn keys_rotate_install_with_encrypted_new_key() {
    let fleet = Fleet::builder().hosts(2).start().expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    // A private copy of the login key: --install replaces it.
    let login = dir.path().join("id_login");
    std::fs::copy(fleet.client_key(), &login).unwrap();
    std::fs::copy(fleet.client_key_pub(), pub_path(&login)).unwrap();
    let old_bytes = std::fs::read(&login).unwrap();
    let new = dir.path().join("id_new");
    let secret = "s3cret passphrase";
    let out = cli_with_key(&fleet, &login)
        .args(["keys", "rotate", "--generate", "--install"])
        .args(["--new-passphrase-env", "NEWPASS", "--new-key"])
        .arg(&new)
        .env("NEWPASS", secret)
        .run();
    out.success()
        .stdout_contains("installed the new key at")
        .output_lacks(secret);
    assert!(!new.exists(), "the new pair was moved, not copied");
    let installed = std::fs::read(&login).unwrap();
    assert_ne!(installed, old_bytes);
    // Readable by ssh-keygen with the passphrase; the backup holds the old key.
    let y = Command::new("ssh-keygen")
        .args(["-y", "-P", secret, "-f"])
        .arg(&login)
        .output()
        .unwrap();
    assert!(y.status.success(), "{y:?}");
    assert_eq!(
        key_text(&String::from_utf8_lossy(&y.stdout)),
        key_text(&pub_line(&login))
    );
    let backups: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("id_login.") && n.ends_with('~') && !n.contains(".pub")
        })
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(std::fs::read(&backups[0]).unwrap(), old_bytes);
    // The fleet now takes only the installed key; sshfleet logs in with it (passphrase env).
    for i in 0..2 {
        assert!(!logs_in(&fleet, i, "deploy", &fleet.client_key()));
    }
    cli_with_key(&fleet, &login)
        .args(["--passphrase-env", "NEWPASS", "ping"])
        .env("NEWPASS", secret)
        .run()
        .success();
}

/// `keys list`, `add`, `remove`, `set` (with --check, --diff, --json) and a URL that answers
/// with an HTML page.
#[test]
fn keys_list_add_remove_set() {
    let fleet = Fleet::builder().hosts(3).start().expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let k1 = keygen(dir.path(), "k1", "one@x", &["-t", "ed25519"]);
    let k2 = keygen(dir.path(), "k2", "two@x", &["-t", "ecdsa"]);

    // list: fingerprints equal to ssh-keygen -lf of the fleet key.
    let lf = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(fleet.client_key_pub())
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&lf.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(fp.starts_with("SHA256:"));
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args(["keys", "list", "--user", "admin", "-b"])
        .run();
    out.success();
    assert_eq!(out.stdout.matches(&fp).count(), 3, "{out}");
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args(["--json", "keys", "list"])
        .run();
    out.success();
    let doc = out.json();
    for h in ["host01", "host02", "host03"] {
        assert_eq!(doc["hosts"][h]["user"], "deploy");
        assert_eq!(
            doc["hosts"][h]["keys"][0]["fingerprint"],
            fp.as_str(),
            "{doc}"
        );
    }

    // add --check writes nothing; add writes; a second add is ok.
    let before = snapshot(&fleet, &["backup"]);
    let add = |extra: &[&str]| {
        Sshfleet::new()
            .inventory(&fleet)
            .args(["-b", "keys", "add", "--user", "backup", "--key"])
            .arg(pub_path(&k1))
            .arg(pub_line(&k2))
            .args(["--key-options", "no-pty"])
            .args(extra)
            .run()
    };
    add(&["--check", "--diff"])
        .success()
        .stdout_contains("changed: [host02]")
        .stdout_contains(&format!("+no-pty {}", pub_line(&k1)));
    assert_eq!(snapshot(&fleet, &["backup"]), before);
    add(&[]).success().stdout_contains("changed: [host03]");
    for i in 0..3 {
        let lines = ak_lines(&fleet, i, "backup");
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[1], format!("no-pty {}", pub_line(&k1)));
        assert_eq!(lines[2], format!("no-pty {}", pub_line(&k2)));
        assert!(logs_in(&fleet, i, "backup", &k1));
    }
    add(&[]).success().stdout_lacks("changed:");

    // remove --check writes nothing; remove takes k2 out.
    let before = snapshot(&fleet, &["backup"]);
    let remove = |extra: &[&str]| {
        Sshfleet::new()
            .inventory(&fleet)
            .args(["-b", "keys", "remove", "--user", "backup", "--key"])
            .arg(pub_path(&k2))
            .args(extra)
            .run()
    };
    remove(&["--check"])
        .success()
        .stdout_contains("changed: [host01]");
    assert_eq!(snapshot(&fleet, &["backup"]), before);
    remove(&[]).success();
    for i in 0..3 {
        assert_eq!(ak_lines(&fleet, i, "backup").len(), 2);
        assert!(!logs_in(&fleet, i, "backup", &k2));
    }

    // set (exclusive) --check writes nothing; set leaves only k1, with its options.
    let before = snapshot(&fleet, &["backup"]);
    let set = |extra: &[&str]| {
        Sshfleet::new()
            .inventory(&fleet)
            .args(["-b", "keys", "set", "--user", "backup", "--key"])
            .arg(pub_path(&k1))
            .args(["--key-options", "no-pty"])
            .args(extra)
            .run()
    };
    set(&["--check", "--diff"])
        .success()
        .stdout_contains(&format!("-{}", pub_line(&fleet.client_key())));
    assert_eq!(snapshot(&fleet, &["backup"]), before);
    let out = set(&["--json"]);
    out.success();
    assert_eq!(out.json()["hosts"]["host01"]["changed"], true);
    for i in 0..3 {
        assert_eq!(
            ak_lines(&fleet, i, "backup"),
            vec![format!("no-pty {}", pub_line(&k1))]
        );
        assert!(!logs_in(&fleet, i, "backup", &fleet.client_key()));
        assert!(logs_in(&fleet, i, "backup", &k1));
    }

    // An empty key set is refused before any host is touched.
    let empty = dir.path().join("empty.pub");
    std::fs::write(&empty, "# no keys here\n").unwrap();
    let before = snapshot(&fleet, &["backup"]);
    Sshfleet::new()
        .inventory(&fleet)
        .args(["-b", "keys", "set", "--user", "backup", "--key"])
        .arg(&empty)
        .run()
        .failure()
        .stderr_contains("no public key");
    assert_eq!(snapshot(&fleet, &["backup"]), before);

    // A URL answering with an HTML page: the error names the URL, status, type and body.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let srv = std::thread::spawn(move || {
        if let Ok((mut s, _)) = server.accept() {
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let body = "<html><body>Please log in</body></html>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let url = format!("http://127.0.0.1:{port}/keys");
    Sshfleet::new()
        .inventory(&fleet)
        .args(["keys", "add", "--user", "deploy", "--key", &url])
        .run()
        .failure()
        .stderr_contains(&url)
        .stderr_contains("text/html")
        .stderr_contains("Please log in");
    srv.join().unwrap();
    assert_eq!(snapshot(&fleet, &["backup"]), before);
}
