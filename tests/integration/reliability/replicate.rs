//! Replication under fire: the TCP connection to one destination cut mid-stream (its sshd
//! session processes killed while the host stays up), a full and a read-only destination
//! file system, and Ctrl-C in the middle of a large transfer. Every time: the destination
//! keeps its old file byte for byte, no temp file survives, and a re-run converges.
//! (The whole destination host killed mid-transfer is `replicate::replicate_destination_killed_mid_transfer_keeps_old_file`.)

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::util::*;
use crate::support::fleet::{Fleet, NsKind, procs};
use crate::support::{Sshfleet, sshfleet_bin};

const OLD: &[u8] = b"old contents\n";

/// A sparse source file of `mib` MiB with some random-ish bytes at the start; its sha256.
fn big_source(fleet: &Fleet, remote: &str, mib: u64) -> String {
    let p = fleet.host(0).local_path(remote).unwrap();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(mib << 20).unwrap();
    let head: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::os::unix::fs::FileExt::write_all_at(&f, &head, 0).unwrap();
    sha_file(&p)
}

fn sha_file(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

fn put_old(fleet: &Fleet, i: usize, remote: &str) -> PathBuf {
    let p = fleet.host(i).local_path(remote).unwrap();
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, OLD).unwrap();
    p
}

/// Wait until a temp file under `dir` holds more than `bytes`.
fn wait_for_temp(dir: &Path, bytes: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if temp_leftovers(dir)
            .iter()
            .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > bytes))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

fn replicate(fleet: &Fleet, path: &str) -> Sshfleet {
    Sshfleet::new()
        .inventory(fleet)
        .args(["-b", "--json", "replicate", "--from", "host01", path])
        .timeout(Duration::from_secs(300))
}

/// Host03's SSH connection is cut mid-stream (every sshd session process in its namespace
/// killed; the listener stays): host03 fails, keeps its old file; the next run replaces it
/// and leaves no temp file.
#[test]
fn reliability_replicate_connection_cut_mid_stream_keeps_old_file() {
    let fleet = Fleet::builder().hosts(3).start().expect("start fleet");
    let path = "/srv/cut/big.bin";
    let sha = big_source(&fleet, path, 96);
    put_old(&fleet, 1, path);
    let victim = put_old(&fleet, 2, path);
    let victim_dir = victim.parent().unwrap().to_path_buf();
    let listener = fleet.host(2).pid().unwrap();
    let (_, pid_ns) = fleet.host(2).namespaces().unwrap();
    let (cut, out) = std::thread::scope(|s| {
        let cutter = s.spawn(|| {
            if !wait_for_temp(&victim_dir, 4 << 20) {
                return false;
            }
            for pid in procs::pids_in_ns(NsKind::Pid, pid_ns) {
                if pid != listener {
                    procs::signal(pid, libc::SIGKILL);
                }
            }
            true
        });
        let out = replicate(&fleet, path).run();
        (cutter.join().unwrap(), out)
    });
    assert!(
        cut,
        "the transfer finished before the connection could be cut\n{out}"
    );
    let doc = out.json();
    let st = doc["hosts"]["host03"]["status"].as_str().unwrap_or("");
    assert!(st == "failed" || st == "unreachable", "{out}");
    assert_eq!(doc["hosts"]["host02"]["status"], "changed", "{out}");
    assert_ne!(out.code, Some(0));
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        OLD,
        "host03 lost its old file"
    );
    let again = replicate(&fleet, path).run();
    again.success();
    assert_eq!(
        again.json()["hosts"]["host03"]["status"],
        "changed",
        "{again}"
    );
    assert_eq!(again.json()["hosts"]["host02"]["status"], "ok", "{again}");
    assert_eq!(sha_file(&victim), sha);
    assert!(
        temp_leftovers(&victim_dir).is_empty(),
        "{:?}",
        temp_leftovers(&victim_dir)
    );
}

/// host02's destination directory is a tmpfs too small for the file, host03's is read-only:
/// both fail, both keep the old file, no temp file remains; host04 gets the file.
#[test]
fn reliability_replicate_full_or_read_only_destination_keeps_old_file() {
    let fleet = Fleet::builder().hosts(4).start().expect("start fleet");
    let path = "/srv/fs/data.bin";
    let sha = big_source(&fleet, path, 4);
    for i in 1..4 {
        put_old(&fleet, i, path);
    }
    let _full = HostMount::tmpfs(
        &fleet,
        1,
        "/srv/fs",
        "1m",
        &format!("printf 'old contents\\n' > {path} && chmod 644 {path} && chmod 755 /srv/fs"),
    );
    let _ro = HostMount::read_only(&fleet, 2, "/srv/fs");
    let full = host_view(&fleet, 1, path);
    assert_eq!(std::fs::read(&full).unwrap(), OLD);
    let out = replicate(&fleet, path).run();
    let doc = out.json();
    assert_eq!(doc["hosts"]["host02"]["status"], "failed", "{out}");
    assert_eq!(doc["hosts"]["host03"]["status"], "failed", "{out}");
    assert_eq!(doc["hosts"]["host04"]["status"], "changed", "{out}");
    assert_eq!(out.code, Some(2), "{out}");
    for h in ["host02", "host03"] {
        let msg = doc["hosts"][h]["msg"].as_str().unwrap_or("");
        // SFTP v3 reports ENOSPC/EROFS as a bare "Failure"; the message names the (temp) file.
        assert!(
            msg.contains("/srv/fs/") && msg.contains("data.bin"),
            "the error should name the file: {out}"
        );
    }
    assert_eq!(
        std::fs::read(&full).unwrap(),
        OLD,
        "host02 lost its old file"
    );
    assert_eq!(
        std::fs::read(fleet.host(2).local_path(path).unwrap()).unwrap(),
        OLD
    );
    assert!(temp_leftovers(&host_view(&fleet, 1, "/srv/fs")).is_empty());
    assert_eq!(sha_file(&fleet.host(3).local_path(path).unwrap()), sha);
}

/// Ctrl-C while a 128 MiB file streams to 3 hosts: exit 99, a recap, every destination
/// either old or complete (never partial), no temp file anywhere.
#[test]
fn reliability_replicate_sigint_mid_transfer_leaves_no_partial_files() {
    let fleet = Fleet::builder().hosts(4).start().expect("start fleet");
    let path = "/srv/int/big.bin";
    let sha = big_source(&fleet, path, 128);
    let dests: Vec<PathBuf> = (1..4).map(|i| put_old(&fleet, i, path)).collect();
    let child = Command::new(sshfleet_bin())
        .env(
            "SSHFLEET_JOURNAL_DIR",
            crate::support::repo_root().join("target/test-journal"),
        )
        .arg("-i")
        .arg(fleet.inventory())
        .arg("--private-key")
        .arg(fleet.client_key())
        .arg("--known-hosts")
        .arg(fleet.known_hosts())
        .args(["-b", "replicate", "--from", "host01", path])
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sshfleet");
    let started = wait_for_temp(dests[0].parent().unwrap(), 4 << 20);
    let (st, stdout, stderr) = interrupt_and_collect(child);
    let all = format!("exit {st}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
    assert!(started, "the transfer never started\n{all}");
    assert_eq!(st.code(), Some(99), "{all}");
    assert!(stdout.contains("PLAY RECAP"), "{all}");
    for d in &dests {
        let now = std::fs::read(d).unwrap();
        assert!(
            now == OLD || sha_file(d) == sha,
            "{}: partial file after Ctrl-C\n{all}",
            d.display()
        );
        let dir = d.parent().unwrap();
        assert!(
            temp_leftovers(dir).is_empty(),
            "{:?}\n{all}",
            temp_leftovers(dir)
        );
    }
}

/// Issue 20: the controller is SIGKILLed (no cleanup at all) while a 64 MiB file streams to
/// three destinations; the same command again: every destination complete and byte-exact, no
/// temp file left (the killed run's temp files belong to dead sftp-servers: the rerun's sweep
/// removes them).
#[test]
fn reliability_replicate_killed_controller_rerun_completes_and_leaves_no_temp() {
    let fleet = Fleet::builder().hosts(4).start().expect("start fleet");
    let path = "/srv/int/big.bin";
    let sha = big_source(&fleet, path, 64);
    let dests: Vec<PathBuf> = (1..4).map(|i| put_old(&fleet, i, path)).collect();
    let mut child = Command::new(sshfleet_bin())
        .env(
            "SSHFLEET_JOURNAL_DIR",
            crate::support::repo_root().join("target/test-journal"),
        )
        .arg("-i")
        .arg(fleet.inventory())
        .arg("--private-key")
        .arg(fleet.client_key())
        .arg("--known-hosts")
        .arg(fleet.known_hosts())
        .args(["-b", "--json", "replicate", "--from", "host01", path])
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sshfleet");
    let started = wait_for_temp(dests[0].parent().unwrap(), 4 << 20);
    // SAFETY: kill(2) on our own child, reaped just below.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let st = child.wait().unwrap();
    assert!(started, "the transfer never started");
    assert_eq!(st.code(), None, "killed by the signal, not finished");
    let litter: usize = dests
        .iter()
        .map(|d| temp_leftovers(d.parent().unwrap()).len())
        .sum();
    // SIGKILL cleans nothing up: the transfer's temp file is still there for the rerun.
    assert!(litter >= 1, "the killed run left no temp file to sweep");
    for d in &dests {
        let now = std::fs::read(d).unwrap();
        assert!(
            now == OLD || sha_file(d) == sha,
            "{}: partial file",
            d.display()
        );
    }
    let out = replicate(&fleet, path).run();
    assert_eq!(out.code, Some(0), "{out}");
    for d in &dests {
        assert_eq!(sha_file(d), sha, "{}", d.display());
        let dir = d.parent().unwrap();
        assert!(
            temp_leftovers(dir).is_empty(),
            "{:?}\n{out}",
            temp_leftovers(dir)
        );
    }
}
