//! `sshfleet keys audit|revoke` against the real fleet (issue 18, audit and revoke half):
//! keys planted in odd places (a second `AuthorizedKeysFile`, `/etc/ssh/authorized_keys/%u`,
//! a file only a `Match User` block gives,
//! a group-writable `~/.ssh` sshd ignores, and one Debian's sshd accepts), the audit's JSON checked against what sshd
//! really accepts (real `ssh` logins), and a departed key revoked from every account on 20
//! hosts by fingerprint and by comment, every other byte kept, the guard refusing the
//! controller's own key.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::Sshfleet;
use crate::support::fleet::Fleet;
use crate::support::keys::{fingerprint, keygen, logs_in, pub_line};

const AKF: &str =
    "AuthorizedKeysFile .ssh/authorized_keys .ssh/keys_extra /etc/ssh/authorized_keys/%u";

/// Write `text` to `path` (a controller path of a host file) with owner and mode.
fn plant(path: &Path, text: &str, uid: u32, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn uid_of(user: &str) -> u32 {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `/etc/ssh/authorized_keys/USER` on host `i`, controller side (dir created root 0755).
fn etc_keys(fleet: &Fleet, i: usize, user: &str) -> PathBuf {
    let dir = fleet
        .host(i)
        .local_path("/etc/ssh/authorized_keys")
        .unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.join(user)
}

fn fleet_cli(fleet: &Fleet) -> Sshfleet {
    Sshfleet::new().inventory(fleet)
}

/// (host, user, file, fingerprint) of every accepted place in the audit JSON, for `users`.
fn accepted(doc: &serde_json::Value, users: &[&str]) -> Vec<(String, String, String, String)> {
    let mut v = Vec::new();
    for k in doc["keys"].as_array().unwrap() {
        for p in k["places"].as_array().unwrap() {
            let user = p["user"].as_str().unwrap();
            if p["accepted"] == true && users.contains(&user) {
                v.push((
                    p["host"].as_str().unwrap().to_string(),
                    user.to_string(),
                    p["file"].as_str().unwrap().to_string(),
                    k["fingerprint"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    v.sort();
    v
}

/// Two hosts with the same users; keys in odd places; the JSON lists exactly the places
/// sshd accepts, proven by real logins; findings; without -b the audit says what it could
/// not see.
#[test]
fn keys_audit_finds_keys_in_odd_places_and_lists_what_sshd_accepts() {
    let fleet = Fleet::builder()
        .hosts(2)
        .sshd_option_all(AKF)
        .start()
        .expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let bob = keygen(dir.path(), "bob", "bob@laptop-bob", &["-t", "ed25519"]);
    let carol = keygen(dir.path(), "carol", "carol@old", &["-t", "ed25519"]);
    let weak = keygen(dir.path(), "weak", "weak@old", &["-t", "rsa", "-b", "1024"]);
    let (bob_fp, carol_fp, weak_fp) = (fingerprint(&bob), fingerprint(&carol), fingerprint(&weak));
    let fleet_fp = fingerprint(&fleet.client_key());
    let h0 = fleet.host(0);
    let h1 = fleet.host(1);
    // host01: bob in deploy's own file (after a line sshd cannot parse), in backup's second
    // AuthorizedKeysFile, and in /etc/ssh/authorized_keys/admin (root-owned, 0644).
    let deploy_ak = fleet.authorized_keys_path(0, "deploy");
    let mut text = std::fs::read_to_string(&deploy_ak).unwrap();
    text.push_str(&format!("ssh-ed25519 not-base64\n{}\n", pub_line(&bob)));
    std::fs::write(&deploy_ak, &text).unwrap();
    plant(
        &h0.home_of("backup").join(".ssh/keys_extra"),
        &format!("{}\n{}\n", pub_line(&bob), pub_line(&weak)),
        uid_of("backup"),
        0o600,
    );
    plant(
        &etc_keys(&fleet, 0, "admin"),
        &format!("{}\n", pub_line(&bob)),
        0,
        0o644,
    );
    // host02: carol in backup's and admin's files; both ~/.ssh are group-writable. backup's
    // group is its own private group (Debian's sshd accepts that, upstream's does not);
    // admin's is `users` (gid 100, no member): every sshd ignores every file in it.
    for (user, gid) in [("backup", None), ("admin", Some(100))] {
        let ak = fleet.authorized_keys_path(1, user);
        let mut text = std::fs::read_to_string(&ak).unwrap();
        text.push_str(&format!("{}\n", pub_line(&carol)));
        std::fs::write(&ak, &text).unwrap();
        let ssh_dir = h1.home_of(user).join(".ssh");
        std::os::unix::fs::chown(&ssh_dir, None, gid).unwrap();
        std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    }
    let debian = {
        let v = std::process::Command::new("ssh")
            .arg("-V")
            .output()
            .unwrap();
        String::from_utf8_lossy(&v.stderr).contains("Debian")
    };
    // host02: a drop-in with a global TrustedUserCAKeys and a `Match User deploy` block
    // giving deploy one more file, /etc/ssh/deploy_extra (root-owned): sshd -T per account
    // must apply it for deploy only.
    let dropin = h1.local_path("/etc/ssh/sshd_config.d").unwrap();
    std::fs::create_dir_all(&dropin).unwrap();
    std::fs::write(
        dropin.join("50-audit.conf"),
        "TrustedUserCAKeys /etc/ssh/user_ca.pub\nPubkeyAcceptedAlgorithms ssh-ed25519\nMatch User deploy\n  AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/deploy_extra\n",
    )
    .unwrap();
    plant(
        &h1.local_path("/etc/ssh/deploy_extra").unwrap(),
        &format!("{}\n", pub_line(&bob)),
        0,
        0o644,
    );
    // host02 accepts ed25519 keys only: the weak RSA key in deploy's file is listed, not
    // accepted.
    let ak = fleet.authorized_keys_path(1, "deploy");
    let mut text = std::fs::read_to_string(&ak).unwrap();
    text.push_str(&format!("{}\n", pub_line(&weak)));
    std::fs::write(&ak, &text).unwrap();
    fleet.restart_host(1).unwrap();
    let known = dir.path().join("known.keys");
    std::fs::write(
        &known,
        std::fs::read_to_string(format!("{}.pub", fleet.client_key().display())).unwrap(),
    )
    .unwrap();

    let out = fleet_cli(&fleet)
        .args(["-b", "--json", "keys", "audit", "--known-keys"])
        .arg(&known)
        .run();
    out.success();
    let doc = out.json();
    let users = ["admin", "deploy", "backup"];
    let (n0, n1) = (h0.name().to_string(), h1.name().to_string());
    let home = |u: &str, f: &str| format!("/home/{u}/.ssh/{f}");
    let mut want = vec![
        (
            n0.clone(),
            "deploy".to_string(),
            home("deploy", "authorized_keys"),
            bob_fp.clone(),
        ),
        (
            n0.clone(),
            "backup".to_string(),
            home("backup", "keys_extra"),
            bob_fp.clone(),
        ),
        (
            n0.clone(),
            "backup".to_string(),
            home("backup", "keys_extra"),
            weak_fp.clone(),
        ),
        (
            n0.clone(),
            "admin".to_string(),
            "/etc/ssh/authorized_keys/admin".to_string(),
            bob_fp.clone(),
        ),
    ];
    for (n, skip) in [(&n0, None), (&n1, Some("admin"))] {
        for u in users {
            if skip != Some(u) {
                want.push((
                    n.clone(),
                    u.to_string(),
                    home(u, "authorized_keys"),
                    fleet_fp.clone(),
                ));
            }
        }
    }
    want.push((
        n1.clone(),
        "deploy".to_string(),
        "/etc/ssh/deploy_extra".to_string(),
        bob_fp.clone(),
    ));
    if debian {
        want.push((
            n1.clone(),
            "backup".to_string(),
            home("backup", "authorized_keys"),
            carol_fp.clone(),
        ));
    } else {
        want.retain(|w| !(w.0 == n1 && w.1 == "backup"));
    }
    want.sort();
    assert_eq!(accepted(&doc, &users), want, "{}", out.stdout);

    // The oracle: real logins agree, for each odd place and for the ignored directory.
    assert!(logs_in(&fleet, 0, "deploy", &bob));
    assert!(
        logs_in(&fleet, 0, "backup", &bob),
        "second AuthorizedKeysFile"
    );
    assert!(
        logs_in(&fleet, 0, "admin", &bob),
        "/etc/ssh/authorized_keys/%u"
    );
    assert_eq!(
        logs_in(&fleet, 1, "backup", &carol),
        debian,
        "user private group"
    );
    assert!(
        !logs_in(&fleet, 1, "admin", &carol),
        "group-writable ~/.ssh is ignored"
    );
    assert!(!logs_in(&fleet, 1, "admin", &fleet.client_key()));
    assert!(logs_in(&fleet, 1, "deploy", &bob), "Match User deploy file");
    assert!(
        logs_in(&fleet, 0, "backup", &weak),
        "1024-bit RSA: weak, but accepted"
    );
    assert!(
        !logs_in(&fleet, 1, "deploy", &weak),
        "PubkeyAcceptedAlgorithms"
    );
    assert!(!logs_in(&fleet, 1, "backup", &bob));

    // carol is seen, but not accepted, with sshd's reason.
    let carol_group = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["fingerprint"] == carol_fp.as_str())
        .expect("carol's key listed");
    let place = carol_group["places"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"] == "admin")
        .unwrap();
    assert_eq!(place["accepted"], false);
    assert!(
        place["why_not"]
            .as_str()
            .unwrap()
            .contains("directory /home/admin/.ssh"),
        "{place}"
    );
    assert_eq!(carol_group["known"], false);

    // Findings: weak RSA, unknown keys, the unparseable line (file:line), the ignored files.
    let findings = doc["findings"].as_array().unwrap();
    let has = |kind: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        findings.iter().any(|f| f["kind"] == kind && pred(f))
    };
    assert!(has("weak_rsa", &|f| f["fingerprint"] == weak_fp.as_str()));
    assert!(has("unknown_key", &|f| f["fingerprint"] == bob_fp.as_str()));
    assert!(!has("unknown_key", &|f| f["fingerprint"] == fleet_fp.as_str()));
    let bad_line = text_line_of(&deploy_ak, "not-base64");
    assert!(has("unparseable", &|f| f["host"] == n0.as_str()
        && f["file"] == "/home/deploy/.ssh/authorized_keys"
        && f["line"] == bad_line));
    assert!(has("other_way_in", &|f| f["host"] == n1.as_str()
        && f["detail"] == "TrustedUserCAKeys /etc/ssh/user_ca.pub"));
    assert!(!has("other_way_in", &|f| f["host"] == n0.as_str()));
    assert!(has("ignored_file", &|f| f["host"] == n1.as_str()
        && f["file"] == "/home/admin/.ssh/authorized_keys"));
    // Every host was read with sshd -T (exact) as root.
    for h in doc["hosts"].as_array().unwrap() {
        assert_eq!(h["privileged"], true);
        for a in h["accounts"].as_array().unwrap() {
            assert_eq!(a["config"]["source"], "sshd_t", "{a}");
        }
    }

    // CSV and the table name the same places.
    let csv = fleet_cli(&fleet)
        .args(["-b", "keys", "audit", "--csv"])
        .run();
    csv.success()
        .stdout_contains("fingerprint,type,bits,known,host,user,file,line,accepted")
        .stdout_contains(&format!(
            "{bob_fp},ssh-ed25519,256,,{n0},admin,/etc/ssh/authorized_keys/admin,1,true"
        ));
    let table = fleet_cli(&fleet).args(["-b", "keys", "audit"]).run();
    table
        .success()
        .stdout_contains(&format!("{bob_fp} ssh-ed25519 256  bob@laptop-bob"))
        .stdout_contains("NOT ACCEPTED: StrictModes")
        .stdout_contains("PLAY RECAP");

    // Without -b: sshd -T cannot run and other users' files may be unreadable; it says so.
    let out = fleet_cli(&fleet).args(["--json", "keys", "audit"]).run();
    out.success();
    let doc = out.json();
    for h in doc["hosts"].as_array().unwrap() {
        assert_eq!(h["privileged"], false);
        let seen = h["not_seen"].to_string();
        assert!(seen.contains("sshd -T"), "{seen}");
        // The login user's own file is still read.
        let deploy = h["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["user"] == "deploy")
            .unwrap();
        assert_eq!(deploy["files"][0]["state"], "used", "{deploy}");
    }
}

/// The 1-based line of the first line of `path` containing `needle`.
fn text_line_of(path: &Path, needle: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

/// A file's bytes, owner and mode.
fn file_state(p: &Path) -> (Vec<u8>, u32, u32) {
    let m = std::fs::metadata(p).unwrap();
    (std::fs::read(p).unwrap(), m.uid(), m.mode() & 0o7777)
}

/// The content of `text` without the lines that hold `blob`.
fn without(text: &[u8], blobs: &[&str]) -> Vec<u8> {
    String::from_utf8_lossy(text)
        .split_inclusive('\n')
        .filter(|l| !blobs.iter().any(|b| l.contains(b)))
        .collect::<String>()
        .into_bytes()
}

fn blob(line: &str) -> String {
    line.split_whitespace().nth(1).unwrap().to_string()
}

/// 20 hosts: two departed keys in every account's files (own file with options and
/// comments around them, a second AuthorizedKeysFile, /etc/ssh/authorized_keys/%u);
/// check mode changes nothing; revoke by fingerprint and by comment removes exactly their
/// lines everywhere, keeps owners and modes; a second run changes nothing; the guard
/// refuses the controller's own key.
#[test]
fn keys_revoke_removes_a_departed_key_everywhere_on_20_hosts() {
    const N: usize = 20;
    let fleet = Fleet::builder()
        .hosts(N)
        .sshd_option_all(AKF)
        .start()
        .expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let bob = keygen(dir.path(), "bob", "bob@laptop-bob", &["-t", "ed25519"]);
    let dave = keygen(dir.path(), "dave", "dave@laptop-dave", &["-t", "ed25519"]);
    let stay = keygen(dir.path(), "stay", "stay@ops", &["-t", "ed25519"]);
    let (bl, dl, sl) = (pub_line(&bob), pub_line(&dave), pub_line(&stay));
    let mut files: Vec<PathBuf> = Vec::new();
    for i in 0..N {
        let h = fleet.host(i);
        // deploy's own file: options on bob's line, comments, the fleet key stays.
        let ak = fleet.authorized_keys_path(i, "deploy");
        let mut t = std::fs::read_to_string(&ak).unwrap();
        t.push_str(&format!(
            "# ops keys\nfrom=\"127.0.0.1\",no-pty {bl}\n{sl}\n\n{dl}\n"
        ));
        std::fs::write(&ak, t).unwrap();
        files.push(ak);
        let extra = h.home_of("backup").join(".ssh/keys_extra");
        plant(
            &extra,
            &format!("{dl}\n{sl}\n{bl}"),
            uid_of("backup"),
            0o600,
        );
        files.push(extra);
        let etc = etc_keys(&fleet, i, "admin");
        plant(&etc, &format!("{bl}\n# admin\n{sl}\n"), 0, 0o644);
        files.push(etc);
        files.push(fleet.authorized_keys_path(i, "backup"));
        files.push(fleet.authorized_keys_path(i, "admin"));
    }
    let before: Vec<_> = files.iter().map(|f| file_state(f)).collect();
    let now = || files.iter().map(|f| file_state(f)).collect::<Vec<_>>();
    let bob_fp = fingerprint(&bob);

    // Check mode: a diff, nothing written.
    let out = fleet_cli(&fleet)
        .args([
            "-b",
            "--check",
            "--diff",
            "keys",
            "revoke",
            "--fingerprint",
            &bob_fp,
        ])
        .run();
    out.success()
        .stdout_contains(&format!("-from=\"127.0.0.1\",no-pty {bl}"));
    assert_eq!(now(), before, "check mode changed a file");

    // By fingerprint (bob) and by comment glob (dave), in one run each; the first one
    // journaled: one record per file, with the content before, for `sshfleet undo`.
    let journal = dir.path().join("journal");
    fleet_cli(&fleet)
        .env("SSHFLEET_JOURNAL_DIR", &journal)
        .args(["-b", "keys", "revoke", "--fingerprint", &bob_fp])
        .run()
        .success()
        .stdout_contains("changed=1");
    let runs = Sshfleet::new()
        .env("SSHFLEET_JOURNAL_DIR", &journal)
        .args(["runs", "--json"])
        .run();
    let id = runs.success().json()["runs"][0]["run"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = Sshfleet::new()
        .env("SSHFLEET_JOURNAL_DIR", &journal)
        .args(["runs", "show", &id, "--json"])
        .run();
    let recs = shown.success().json()["records"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        recs.len(),
        3 * N,
        "deploy's, backup's second and admin's /etc file per host"
    );
    for r in &recs {
        let i = fleet
            .hosts()
            .iter()
            .position(|h| h.name() == r["host"])
            .unwrap();
        let local = fleet
            .host(i)
            .local_path(r["file"].as_str().unwrap())
            .unwrap();
        let at = files
            .iter()
            .position(|f| *f == local)
            .expect("a planted file");
        assert_eq!(
            r["content_before"].as_str().unwrap().as_bytes(),
            &before[at].0[..]
        );
        assert_eq!(r["fingerprints_removed"], serde_json::json!([bob_fp]));
    }
    fleet_cli(&fleet)
        .args(["-b", "keys", "revoke", "--comment", "*@laptop-dave"])
        .run()
        .success();
    let gone = [blob(&bl), blob(&dl)];
    let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
    for (f, (b_bytes, b_uid, b_mode)) in files.iter().zip(&before) {
        let (bytes, uid, mode) = file_state(f);
        assert_eq!(bytes, without(b_bytes, &gone), "{}", f.display());
        assert_eq!(
            (uid, mode),
            (*b_uid, *b_mode),
            "owner/mode of {}",
            f.display()
        );
    }
    assert!(!logs_in(&fleet, 7, "deploy", &bob));
    assert!(!logs_in(&fleet, 13, "admin", &bob));
    assert!(!logs_in(&fleet, 19, "backup", &dave));
    assert!(logs_in(&fleet, 7, "admin", &stay));

    // Again: nothing to do.
    let after = now();
    fleet_cli(&fleet)
        .args([
            "-b",
            "keys",
            "revoke",
            "--fingerprint",
            &bob_fp,
            "--comment",
            "*@laptop-dave",
        ])
        .run()
        .success()
        .stdout_contains("changed=0")
        .stdout_lacks("changed=1");
    assert_eq!(now(), after);

    // The guard: the controller's own key stays in the login user's file (the host fails,
    // exit 2); other accounts' files lose it.
    let own = format!("{}.pub", fleet.client_key().display());
    let out = fleet_cli(&fleet)
        .args(["-b", "keys", "revoke", "-H", "host01", "--key", &own])
        .run();
    out.code(2)
        .stdout_contains("the controller is logged in as deploy with this key");
    assert_eq!(file_state(&files[0]), after[0], "deploy's file was changed");
    assert!(logs_in(&fleet, 0, "deploy", &fleet.client_key()));
    assert!(!logs_in(&fleet, 0, "backup", &fleet.client_key()));
    assert!(
        logs_in(&fleet, 1, "backup", &fleet.client_key()),
        "host02 not selected"
    );
}
