//! What sshfleet asks of each sshd (issue 8): the SSH work per host that the benchmark's
//! sshd-side CPU depends on, read from the hosts' own sshd logs (LogLevel VERBOSE logs every
//! session a client opens), plus the writer lock an authorized_keys edit holds for its whole
//! read-modify-write.
//!
//! - a rotation logs in twice per host (old key, new key) and opens ONE session per login:
//!   the user lookup, the lock and the file transfer share it;
//! - replicating onto fresh destinations opens one file session there (`sftp-server` behind
//!   a script naming its process, the owner of the temp files) and runs no command except
//!   the host-side hash (`openssl dgst`, else `sha256sum`) verifying a file over 1 MiB and
//!   the one `cat` that streams a file over 2 MiB;
//! - while another writer holds the key directory's lock, a rotation does not touch that
//!   host's file, and finishes once the lock is released.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::reliability::util::{blob, keygen, pub_line};
use crate::support::Sshfleet;
use crate::support::fleet::Fleet;

/// The sshd log lines of host `i` written after `from` bytes.
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

/// An exclusive `flock` on a directory, as every sshfleet writer takes it; released on drop.
struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    fn take(dir: &Path) -> Self {
        let f = std::fs::File::open(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        // SAFETY: flock(2) on a descriptor we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", dir.display());
        DirLock { _file: f }
    }
}

#[test]
fn sessions_rotation_opens_one_session_per_login_and_waits_for_the_writer_lock() {
    let fleet = Fleet::builder()
        .hosts(2)
        .log_level("VERBOSE")
        .start()
        .expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let new = keygen(dir.path(), "new", "new@rotation");
    let new_pub = pub_line(&new);
    let new_blob = blob(&new_pub);
    let ak: Vec<_> = (0..2)
        .map(|i| fleet.authorized_keys_path(i, "deploy"))
        .collect();
    let before0 = std::fs::read(&ak[0]).unwrap();
    let logs: Vec<usize> = (0..2).map(|i| fleet.host(i).log().len()).collect();

    let lock = DirLock::take(&fleet.host(0).home_of("deploy").join(".ssh"));
    let out = std::thread::scope(|s| {
        let run = s.spawn(|| {
            Sshfleet::new()
                .inventory(&fleet)
                .args(["keys", "rotate", "--new-key"])
                .arg(&new)
                .run()
        });
        // host02 rotates completely while host01 waits for the lock.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&ak[1]).unwrap_or_default();
            if text.contains(&new_blob) && text.lines().count() == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline && !run.is_finished(),
                "host02 never rotated while host01 was locked:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            std::fs::read(&ak[0]).unwrap(),
            before0,
            "host01's file changed while another writer held the lock on its directory"
        );
        assert!(!run.is_finished(), "the rotation ended without waiting");
        drop(lock);
        run.join().unwrap()
    });
    out.success()
        .stdout_contains("changed: [host01]")
        .stdout_contains("changed: [host02]");
    for (i, (ak, &from)) in ak.iter().zip(&logs).enumerate() {
        let text = std::fs::read_to_string(ak).unwrap();
        assert_eq!(text.trim_end(), new_pub, "host {i}");
        let log = log_since(&fleet, i, from);
        assert_eq!(count(&log, "Accepted publickey for deploy"), 2, "{log}");
        assert_eq!(
            count(&log, "Starting session:"),
            2,
            "one session per login expected:\n{log}"
        );
    }
}

#[test]
fn sessions_replicate_to_fresh_destinations_opens_sftp_and_checks_only_big_files() {
    let fleet = Fleet::builder()
        .hosts(3)
        .log_level("VERBOSE")
        .start()
        .expect("start fleet");
    let (uid, gid) = {
        let out = Command::new("id").args(["-u", "deploy"]).output().unwrap();
        let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let out = Command::new("id").args(["-g", "deploy"]).output().unwrap();
        let gid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        (uid, gid)
    };
    for i in 0..3 {
        let d = fleet.host(i).local_path("/srv/pki").unwrap();
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::chown(&d, Some(uid), Some(gid)).unwrap();
    }
    let src = fleet.host(0).local_path("/srv/pki").unwrap();
    std::fs::write(src.join("ca.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    std::fs::write(src.join("big.bin"), vec![7u8; 3 << 20]).unwrap();
    let logs: Vec<usize> = (0..3).map(|i| fleet.host(i).log().len()).collect();

    Sshfleet::new()
        .inventory(&fleet)
        .args([
            "replicate",
            "--from",
            "host01",
            "/srv/pki/ca.pem",
            "/srv/pki/big.bin",
        ])
        .run()
        .success()
        .stdout_contains("changed: [host02]")
        .stdout_contains("changed: [host03]");
    for (i, &from) in logs.iter().enumerate().skip(1) {
        let d = fleet.host(i).local_path("/srv/pki").unwrap();
        assert_eq!(
            std::fs::read(d.join("ca.pem")).unwrap(),
            std::fs::read(src.join("ca.pem")).unwrap()
        );
        assert_eq!(
            std::fs::read(d.join("big.bin")).unwrap(),
            std::fs::read(src.join("big.bin")).unwrap()
        );
        let log = log_since(&fleet, i, from);
        assert_eq!(count(&log, "Accepted publickey"), 1, "{log}");
        // The file session is a command (`sftp-server` exec'd by a script naming the process
        // that owns the temp files, issue 20) rather than the subsystem — the same one session.
        assert_eq!(count(&log, "Starting session: subsystem"), 0, "{log}");
        // Files up to 1 MiB are verified by reading them back over SFTP; bigger ones by the
        // host itself (`openssl dgst`, else `sha256sum`: one command for big.bin). big.bin (over 2 MiB, streamed)
        // goes through one `cat` (issue 21). Nothing else runs: 3 sessions.
        assert_eq!(
            count(&log, "Starting session: command"),
            3,
            "only the file session, big.bin's cat and its verification should run:\n{log}"
        );
    }
}
