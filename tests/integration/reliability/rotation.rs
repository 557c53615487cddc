//! Rotation under fire: the host dies between "add the new key" and "prove it logs in";
//! another admin edits the file while a rotation runs; two edits race on the same files.
//!
//! The fault is injected at the right moment by watching the host's authorized_keys on the
//! controller's file system (the fleet's homes are plain directories here): the instant the
//! new key appears, step 1 is done and step 2 (a fresh SSH handshake) has not finished.
//! If the injection comes too late (the rotation already finished on that host) the
//! scenario is repeated with a fresh fleet and key; it must land at least once in three.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::util::*;
use crate::support::Sshfleet;
use crate::support::fleet::Fleet;

/// Poll `path` every millisecond until it contains `needle`, then call `act` once.
/// Returns whether `act` ran (false if `done` was raised first).
fn when_file_contains(
    path: &std::path::Path,
    needle: &str,
    done: &AtomicBool,
    act: impl FnOnce(),
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            act();
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn reliability_rotate_sshd_killed_between_add_and_verify_keeps_working_keys() {
    let dir = tempfile::tempdir().unwrap();
    for attempt in 0..3 {
        let fleet = Fleet::builder().hosts(3).start().expect("start fleet");
        let old = fleet.client_key();
        let old_blob = blob(&pub_line(&old));
        let new = keygen(dir.path(), &format!("new{attempt}"), "new@rotation");
        let new_blob = blob(&pub_line(&new));
        let ak = fleet.authorized_keys_path(0, "deploy");
        let done = AtomicBool::new(false);
        let (killed, out) = std::thread::scope(|s| {
            let killer =
                s.spawn(|| when_file_contains(&ak, &new_blob, &done, || fleet.stop_host(0)));
            let out = Sshfleet::new()
                .inventory(&fleet)
                .args(["--json", "keys", "rotate", "--new-key"])
                .arg(&new)
                .run();
            done.store(true, Ordering::SeqCst);
            (killer.join().unwrap(), out)
        });
        assert!(killed, "the new key never reached host01\n{out}");
        let doc = out.json();
        let h1 = &doc["hosts"]["host01"];
        if h1["status"] == "changed" {
            eprintln!("attempt {attempt}: host01 finished before the kill landed; again");
            continue;
        }
        // host01 failed (its sshd died after step 1): reported, run not successful.
        assert!(
            h1["status"] == "failed" || h1["status"] == "unreachable",
            "{out}"
        );
        assert_ne!(out.code, Some(0), "{out}");
        let msg = h1["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains("old key kept"),
            "message should say the old key stays: {out}"
        );
        // On disk: both keys, nothing removed.
        let text = ak_text(&fleet, 0, "deploy");
        assert!(
            text.contains(&old_blob) && text.contains(&new_blob),
            "{text}"
        );
        assert!(temp_leftovers(&fleet.host(0).home_of("deploy")).is_empty());
        // Back up: the old key logs in (nobody locked out), and so does the new one.
        fleet.restart_host(0).expect("restart host01");
        assert!(logs_in(&fleet, 0, "deploy", &old), "old key locked out");
        assert!(logs_in(&fleet, 0, "deploy", &new));
        // The other hosts rotated completely.
        for i in 1..3 {
            assert_eq!(
                doc["hosts"][fleet.host(i).name()]["status"],
                "changed",
                "{out}"
            );
            assert!(logs_in(&fleet, i, "deploy", &new));
            assert!(!logs_in(&fleet, i, "deploy", &old));
        }
        // Re-running with the new key finishes host01 and changes nothing elsewhere.
        let again = cli_with_key(&fleet, &new)
            .args(["keys", "rotate", "--new-key"])
            .arg(&new)
            .run();
        again
            .success()
            .stdout_contains("changed: [host01]")
            .stdout_contains("ok: [host02]");
        assert!(!logs_in(&fleet, 0, "deploy", &old));
        assert!(logs_in(&fleet, 0, "deploy", &new));
        return;
    }
    panic!("the kill never landed between add and verify in 3 attempts");
}

#[test]
fn reliability_rotate_keeps_a_concurrent_edit_by_someone_else() {
    let dir = tempfile::tempdir().unwrap();
    let keep = keygen(dir.path(), "keep", "keep@alice");
    let keep_line = pub_line(&keep);
    for attempt in 0..3 {
        let fleet = Fleet::builder().hosts(1).start().expect("start fleet");
        let ak = fleet.authorized_keys_path(0, "deploy");
        let old = fleet.client_key();
        let old_blob = blob(&pub_line(&old));
        let original = ak_text(&fleet, 0, "deploy");
        replace_file(&ak, format!("{original}{keep_line}\n").as_bytes());
        let new = keygen(dir.path(), &format!("new{attempt}"), "new@rotation");
        let new_blob = blob(&pub_line(&new));
        let done = AtomicBool::new(false);
        let landed = AtomicBool::new(false);
        let out = std::thread::scope(|s| {
            let editor = s.spawn(|| {
                when_file_contains(&ak, &new_blob, &done, || {
                    // Freeze the host so the rotation cannot move while "alice" edits.
                    fleet.pause_host(0);
                    let text = ak_text(&fleet, 0, "deploy");
                    if text.contains(&old_blob) {
                        // Still before step 3: alice restricts the kept key and leaves a note.
                        let edited = text.replace(&keep_line, &format!("no-pty {keep_line}"))
                            + "# alice: restricted the keep key during the rotation\n";
                        replace_file(&ak, edited.as_bytes());
                        landed.store(true, Ordering::SeqCst);
                    }
                    fleet.resume_host(0);
                })
            });
            let out = Sshfleet::new()
                .inventory(&fleet)
                .args(["keys", "rotate", "--keep-comments", "--new-key"])
                .arg(&new)
                .arg("--keep")
                .arg(pub_path(&keep))
                .run();
            done.store(true, Ordering::SeqCst);
            editor.join().unwrap();
            out
        });
        if !landed.load(Ordering::SeqCst) {
            eprintln!("attempt {attempt}: the rotation finished before the edit; again");
            continue;
        }
        out.success().stdout_contains("changed: [host01]");
        let text = ak_text(&fleet, 0, "deploy");
        assert!(
            text.contains("# alice: restricted the keep key during the rotation\n"),
            "alice's comment was lost:\n{text}"
        );
        assert!(
            text.lines().any(|l| l == format!("no-pty {keep_line}")),
            "alice's option on the kept key was lost:\n{text}"
        );
        assert!(text.contains(&new_blob), "{text}");
        assert!(
            !text.contains(&old_blob),
            "the old key was not removed:\n{text}"
        );
        assert!(logs_in(&fleet, 0, "deploy", &new));
        assert!(logs_in(&fleet, 0, "deploy", &keep));
        assert!(!logs_in(&fleet, 0, "deploy", &old));
        return;
    }
    panic!("the concurrent edit never landed before step 3 in 3 attempts");
}

/// Two admins add different keys to the same users on the same hosts at the same moment
/// (two `sshfleet keys add` processes): neither addition may be lost. Each write only
/// replaces the file if it still holds what was read (and retries once otherwise).
#[test]
fn reliability_concurrent_key_adds_lose_nothing() {
    const N: usize = 8;
    const ROUNDS: usize = 3;
    let fleet = Fleet::builder().hosts(N).start().expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<String> = Vec::new();
    for round in 0..ROUNDS {
        let a = keygen(dir.path(), &format!("a{round}"), &format!("a{round}@alice"));
        let b = keygen(dir.path(), &format!("b{round}"), &format!("b{round}@bob"));
        let add = |key: &std::path::Path| {
            Sshfleet::new()
                .inventory(&fleet)
                .args(["-b", "keys", "add", "--user", "backup", "--key"])
                .arg(pub_path(key))
                .run()
        };
        let (oa, ob) = std::thread::scope(|s| {
            let ta = s.spawn(|| add(&a));
            let tb = s.spawn(|| add(&b));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        // Each run either wrote its key or failed loudly for a host; a silent loss is the bug.
        all.push(blob(&pub_line(&a)));
        all.push(blob(&pub_line(&b)));
        for i in 0..N {
            let text = ak_text(&fleet, i, "backup");
            let host = fleet.host(i).name();
            for (k, o) in [(&a, &oa), (&b, &ob)] {
                let reported_ok = o.stdout.contains(&format!("changed: [{host}]"))
                    || o.stdout.contains(&format!("ok: [{host}]"));
                let present = text.contains(&blob(&pub_line(k)));
                assert!(
                    present || !reported_ok,
                    "round {round}: {host} reported success for {} but the key is not in the file (lost update):\n{text}\n--- a ---\n{oa}\n--- b ---\n{ob}",
                    k.display()
                );
            }
        }
        oa.success();
        ob.success();
    }
    for i in 0..N {
        let text = ak_text(&fleet, i, "backup");
        for b in &all {
            assert!(text.contains(b.as_str()), "host {i} lost a key:\n{text}");
        }
        assert!(temp_leftovers(&fleet.host(i).home_of("backup")).is_empty());
    }
}
