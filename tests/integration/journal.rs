//! The run journal, `sshfleet runs` and `sshfleet undo` against the real fleet (issue 18):
//! every mutating run records its changed files (no secret in the journal, copied files only
//! as hashes); a rotation is listed and shown; undo restores each file byte for byte where
//! it still holds what the run left, reports a file edited since as a conflict and leaves it
//! alone, changes nothing with `--check`, and never locks the controller out.

use std::path::Path;

use serde_json::Value;
use sha2::Digest;

use crate::support::Sshfleet;
use crate::support::fleet::Fleet;
use crate::support::keys::{cli_with_key, keygen, logs_in, pub_line, read_ak};

const SUDO_PW: &str = "Sudo-Pw-journal-5e1d";

fn hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn cli(fleet: &Fleet, journal: &Path) -> Sshfleet {
    Sshfleet::new()
        .inventory(fleet)
        .env("SSHFLEET_JOURNAL_DIR", journal)
}

fn runs(journal: &Path) -> Vec<Value> {
    let out = Sshfleet::new()
        .env("SSHFLEET_JOURNAL_DIR", journal)
        .args(["runs", "--json"])
        .run();
    out.success();
    out.json()["runs"].as_array().unwrap().clone()
}

fn show(journal: &Path, id: &str) -> Value {
    let out = Sshfleet::new()
        .args(["--journal-dir"])
        .arg(journal)
        .args(["runs", "show", id, "--json"])
        .run();
    out.success();
    out.json()
}

/// Every file under `dir`, concatenated.
fn all_text(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        s.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    s
}

#[test]
fn journal_records_runs_and_undo_restores_a_rotation() {
    const N: usize = 3;
    let fleet = Fleet::builder()
        .hosts(N)
        .password(0, "deploy", SUDO_PW)
        .sudo_password(0)
        .start()
        .expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let extra = keygen(dir.path(), "extra", "extra@me", &["-t", "ed25519"]);

    // keys add to another user's file through sudo with a password: journaled, no secret.
    cli(&fleet, &journal)
        .env("BPW", SUDO_PW)
        .args(["-b", "--become-password-env", "BPW"])
        .args(["keys", "add", "--user", "backup", "--key"])
        .arg(format!("{}.pub", extra.display()))
        .run()
        .success();
    // A copied file: hashes only.
    let payload = dir.path().join("payload.txt");
    std::fs::write(&payload, "payload-content-never-journaled\n").unwrap();
    cli(&fleet, &journal)
        .env("BPW", SUDO_PW)
        .args([
            "-b",
            "--become-password-env",
            "BPW",
            "copy",
            "--dest",
            "/srv/p.txt",
        ])
        .arg(&payload)
        .run()
        .success();
    // Check mode records nothing.
    cli(&fleet, &journal)
        .args([
            "--limit", "!host01", "keys", "add", "--check", "--user", "deploy", "--key",
        ])
        .arg(format!("{}.pub", extra.display()))
        .run()
        .success();
    let text = all_text(&journal);
    assert!(!text.contains(SUDO_PW), "secret in the journal");
    assert!(
        !text.contains("payload-content"),
        "copied content in the journal"
    );
    let listed = runs(&journal);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["hosts"].as_array().unwrap().len(), N);
    assert_eq!(listed[0]["changed"], N);
    assert!(
        listed[0]["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "--become-password-env")
    );
    let copy = show(&journal, listed[1]["run"].as_str().unwrap());
    let rec = &copy["records"][0];
    assert_eq!(rec["kind"], "copied");
    assert_eq!(rec["sha256_before"], Value::Null);
    assert_eq!(
        rec["sha256_after"],
        hex(b"payload-content-never-journaled\n")
    );
    assert!(rec.get("content_after").is_none());

    // --- a rotation of deploy (the login user) ---
    let old = fleet.client_key();
    let before: Vec<Vec<u8>> = (0..N).map(|i| read_ak(&fleet, i, "deploy")).collect();
    let new = dir.path().join("id_new");
    cli(&fleet, &journal)
        .args(["keys", "rotate", "--generate", "--new-key"])
        .arg(&new)
        .run()
        .success()
        .stderr_contains("journal: run ");
    let after: Vec<Vec<u8>> = (0..N).map(|i| read_ak(&fleet, i, "deploy")).collect();
    let listed = runs(&journal);
    assert_eq!(listed.len(), 3);
    let rot_id = listed[2]["run"].as_str().unwrap().to_string();
    let rot = show(&journal, &rot_id);
    let recs = rot["records"].as_array().unwrap();
    assert_eq!(recs.len(), N);
    assert_eq!(rot["run"]["changed"], N);
    let new_fp = |line: &str| {
        let k = sshfleet::authorized_keys::PublicKey::parse_line(line).unwrap();
        k.fingerprint()
    };
    for r in recs {
        let i = fleet
            .hosts()
            .iter()
            .position(|h| h.name() == r["host"])
            .unwrap();
        assert_eq!(r["kind"], "authorized_keys");
        assert_eq!(r["user"], "deploy");
        assert_eq!(r["sha256_before"], hex(&before[i]));
        assert_eq!(r["sha256_after"], hex(&after[i]));
        assert_eq!(
            r["content_before"].as_str().unwrap().as_bytes(),
            &before[i][..]
        );
        assert_eq!(r["fingerprints_added"][0], new_fp(&pub_line(&new)));
        assert_eq!(r["fingerprints_removed"][0], new_fp(&pub_line(&old)));
    }

    // --- undo ---
    // host03's file is edited after the run: a conflict, left alone.
    let edited = {
        let mut b = after[2].clone();
        b.extend_from_slice(b"# edited after the run\n");
        std::fs::write(fleet.authorized_keys_path(2, "deploy"), &b).unwrap();
        b
    };
    let undo = |extra: &[&str]| {
        cli_with_key(&fleet, &new)
            .env("SSHFLEET_JOURNAL_DIR", &journal)
            .args(extra)
            .args(["undo", &rot_id])
    };
    // Without the old private key the guard refuses: restoring would lock the controller out.
    undo(&["--limit", "host01"])
        .run()
        .code(2)
        .stdout_contains("would lock the controller out");
    assert_eq!(read_ak(&fleet, 0, "deploy"), after[0]);
    // Check mode: reports, changes nothing.
    let out = undo(&["--check", "--diff"])
        .arg("--verify-key")
        .arg(&old)
        .run();
    out.code(2)
        .stdout_contains("changed: [host01]")
        .stdout_contains("changed: [host02]")
        .stdout_contains("conflict: ");
    assert!(
        out.stdout.contains(&format!("+{}", pub_line(&old))),
        "{out}"
    );
    for (i, left) in after.iter().enumerate().take(2) {
        assert_eq!(&read_ak(&fleet, i, "deploy"), left);
    }
    assert_eq!(read_ak(&fleet, 2, "deploy"), edited);
    // The undo: host01 and host02 back byte for byte, verified with the old key.
    let out = undo(&[]).arg("--verify-key").arg(&old).run();
    out.code(2)
        .stdout_contains("changed: [host01]")
        .stdout_contains("changed: [host02]")
        .stdout_contains("conflict: ")
        .stderr_contains("journal: run ");
    for (i, was) in before.iter().enumerate().take(2) {
        assert_eq!(&read_ak(&fleet, i, "deploy"), was, "host {i}");
        assert!(
            logs_in(&fleet, i, "deploy", &old),
            "old key refused on host {i}"
        );
        assert!(
            !logs_in(&fleet, i, "deploy", &new),
            "new key still in on host {i}"
        );
    }
    assert_eq!(read_ak(&fleet, 2, "deploy"), edited);
    assert!(logs_in(&fleet, 2, "deploy", &new));
    // The controller logs in as configured (the original key) again.
    cli(&fleet, &journal)
        .args(["--limit", "host01:host02", "ping"])
        .run()
        .success();
    // The undo is a journaled run of its own.
    let listed = runs(&journal);
    assert_eq!(listed.len(), 4);
    let undo_run = show(&journal, listed[3]["run"].as_str().unwrap());
    assert_eq!(undo_run["records"].as_array().unwrap().len(), 2);
    assert_eq!(
        undo_run["records"][0]["sha256_after"],
        hex(&before[0]),
        "{undo_run}"
    );

    // Undo of the keys add on another user's file (through sudo with a password), on the
    // hosts the controller still reaches as configured (host03 kept the rotation); then the
    // copy run: the copied file is not restorable and says so.
    let add_id = runs(&journal)[0]["run"].as_str().unwrap().to_string();
    let backup_before = show(&journal, &add_id)["records"][1]["content_before"].clone();
    cli(&fleet, &journal)
        .env("BPW", SUDO_PW)
        .args(["-l", "host01:host02", "-b", "--become-password-env", "BPW"])
        .args(["undo", &add_id])
        .run()
        .success();
    for i in 0..2 {
        let now = String::from_utf8(read_ak(&fleet, i, "backup")).unwrap();
        assert_eq!(Some(now.as_str()), backup_before.as_str(), "host {i}");
    }
    let copy_id = runs(&journal)[1]["run"].as_str().unwrap().to_string();
    cli(&fleet, &journal)
        .args(["-l", "host01:host02", "undo", &copy_id])
        .run()
        .success()
        .stdout_contains("not restorable");

    // replicate, keys set and keys remove are journaled too.
    let src = fleet.host(0).local_path("/srv/r.txt").unwrap();
    std::fs::write(&src, "replicated\n").unwrap();
    cli(&fleet, &journal)
        .env("BPW", SUDO_PW)
        .args(["-b", "--become-password-env", "BPW"])
        .args([
            "-l",
            "host01:host02",
            "replicate",
            "--from",
            "host01",
            "/srv/r.txt",
        ])
        .run()
        .success();
    let listed = runs(&journal);
    let rep = show(&journal, listed.last().unwrap()["run"].as_str().unwrap());
    assert_eq!(rep["run"]["hosts"], serde_json::json!(["host02"]), "{rep}");
    assert_eq!(rep["records"][0]["sha256_after"], hex(b"replicated\n"));
    assert_eq!(rep["records"][0]["kind"], "copied");
    let fleet_fp = new_fp(&pub_line(&old));
    for (action, removed) in [("set", true), ("remove", false)] {
        cli(&fleet, &journal)
            .args([
                "-l", "host02", "-b", "keys", action, "--user", "backup", "--key",
            ])
            .arg(format!("{}.pub", extra.display()))
            .run()
            .success()
            .stdout_contains("changed: [host02]");
        let listed = runs(&journal);
        let r = &show(&journal, listed.last().unwrap()["run"].as_str().unwrap())["records"][0];
        assert_eq!(r["user"], "backup");
        let fps = &r["fingerprints_removed"];
        assert_eq!(
            fps.as_array()
                .unwrap()
                .contains(&Value::from(fleet_fp.clone())),
            removed,
            "{r}"
        );
        assert_eq!(
            r["content_after"].as_str().unwrap().as_bytes(),
            &read_ak(&fleet, 1, "backup")[..]
        );
    }
    assert!(!all_text(&journal).contains(SUDO_PW));
}
