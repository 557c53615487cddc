//! `sshfleet replicate`, `copy` and `slurp` against the real fleet (issue 6): byte-for-byte
//! round trips (random bytes, empty, no final newline, CRLF, 200 MiB), PKI files to 19 hosts
//! with mode/owner and an all-`ok` second run, a missing source writing nothing, a host killed
//! mid-transfer keeping its old file, hostile paths, check and diff mode, fetch/slurp, copy
//! from the controller, and the controller's peak RSS (printed, not asserted).
//!
//! Each host's `/srv` is private (the fleet binds `FLEETDIR/hostNN/srv` over it), so the
//! tests read what landed on a host straight from the controller's file system via
//! [`FleetHost::local_path`].

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::Sshfleet;
use crate::support::fleet::{Fleet, FleetHost};

fn local(h: &FleetHost, remote: &str) -> PathBuf {
    h.local_path(remote)
        .unwrap_or_else(|| panic!("{remote} is not private to {}", h.name()))
}

/// Write `data` at `remote` on host `h` (via the controller's view), creating parents.
fn put(h: &FleetHost, remote: &str, data: &[u8]) -> PathBuf {
    let p = local(h, remote);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    p
}

fn sha_file(p: &Path) -> String {
    use std::io::Read;
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

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn cli(fleet: &Fleet) -> Sshfleet {
    Sshfleet::new().inventory(fleet)
}

fn uid_of(user: &str) -> (u32, u32) {
    let out = std::process::Command::new("id")
        .args(["-u", user])
        .output()
        .unwrap();
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let out = std::process::Command::new("id")
        .args(["-g", user])
        .output()
        .unwrap();
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (uid, gid)
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".sshfleet-") && n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

/// Count per-host result lines (`changed: [h]`, `ok: [h]`) in text output.
fn count(stdout: &str, word: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{word}: [")))
        .count()
}

#[test]
fn replicate_pki_files_to_19_hosts_with_mode_and_owner_then_all_ok() {
    let fleet = Fleet::builder().hosts(20).start().unwrap();
    let src = fleet.host(0);
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "/srv/pki/ca.crt",
            b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUca\n-----END CERTIFICATE-----\n"
                .to_vec(),
        ),
        (
            "/srv/pki/server.crt",
            b"-----BEGIN CERTIFICATE-----\nMIIBserver\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        (
            "/srv/pki/server.key",
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n"
                .to_vec(),
        ),
        ("/srv/pki/crl.bin", noise(1 << 20, 42)),
    ];
    let mut src_mtimes = Vec::new();
    for (p, data) in &files {
        let lp = put(src, p, data);
        src_mtimes.push(std::fs::metadata(&lp).unwrap().mtime_nsec());
    }
    let paths: Vec<&str> = files.iter().map(|f| f.0).collect();
    let run = || {
        cli(&fleet)
            .args(["-b", "replicate", "--from", "host01", "--mode", "0640"])
            .args([
                "--owner",
                "backup",
                "--group",
                "deploy",
                "--dir-mode",
                "0750",
            ])
            .args(&paths)
            .run()
    };
    let out = run();
    out.success();
    assert_eq!(count(&out.stdout, "changed"), 19, "{out}");
    out.stdout_lacks("[host01]");
    let (backup_uid, _) = uid_of("backup");
    let (_, deploy_gid) = uid_of("deploy");
    for h in &fleet.hosts()[1..] {
        for (p, data) in &files {
            let lp = local(h, p);
            assert_eq!(&std::fs::read(&lp).unwrap(), data, "{p} on {}", h.name());
            let m = std::fs::metadata(&lp).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o640, "{p} on {}", h.name());
            assert_eq!(
                (m.uid(), m.gid()),
                (backup_uid, deploy_gid),
                "{p} on {}",
                h.name()
            );
        }
        let dir = std::fs::metadata(local(h, "/srv/pki")).unwrap();
        assert_eq!(dir.mode() & 0o7777, 0o750, "created dir gets --dir-mode");
        assert!(temp_files(&local(h, "/srv/pki")).is_empty());
    }
    // The source is read, never rewritten.
    for ((p, _), mt) in files.iter().zip(&src_mtimes) {
        assert_eq!(std::fs::metadata(local(src, p)).unwrap().mtime_nsec(), *mt);
    }
    // Second run: every host already current.
    let again = run();
    again.success();
    assert_eq!(count(&again.stdout, "ok"), 19, "{again}");
    assert_eq!(count(&again.stdout, "changed"), 0, "{again}");
    // One host drifts (content), another only in mode: exactly those two change.
    std::fs::write(local(fleet.host(5), "/srv/pki/ca.crt"), b"tampered").unwrap();
    std::fs::set_permissions(
        local(fleet.host(9), "/srv/pki/server.key"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let drift = run();
    drift.success();
    assert_eq!(count(&drift.stdout, "changed"), 2, "{drift}");
    drift
        .stdout_contains("changed: [host06]")
        .stdout_contains("changed: [host10]");
    assert_eq!(
        std::fs::read(local(fleet.host(5), "/srv/pki/ca.crt")).unwrap(),
        files[0].1
    );
    let m = std::fs::metadata(local(fleet.host(9), "/srv/pki/server.key")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o640);
}

/// Run sshfleet, wait with `wait4` and return (exit code, stdout, stderr, peak RSS in KiB).
/// The child is reaped by `wait4` (which also yields its own rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[String]) -> (i32, String, String, i64) {
    use std::process::{Command, Stdio};
    let child = Command::new(crate::support::sshfleet_bin())
        .env(
            "SSHFLEET_JOURNAL_DIR",
            crate::support::repo_root().join("target/test-journal"),
        )
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("SSH_AUTH_SOCK")
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.unwrap();
    let mut stderr = child.stderr.unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: waiting for our own child; rusage is a plain out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (
        code,
        t_out.join().unwrap(),
        t_err.join().unwrap(),
        ru.ru_maxrss,
    )
}

fn fleet_args(fleet: &Fleet) -> Vec<String> {
    vec![
        "-i".into(),
        fleet.inventory().display().to_string(),
        "--private-key".into(),
        fleet.client_key().display().to_string(),
        "--known-hosts".into(),
        fleet.known_hosts().display().to_string(),
    ]
}

#[test]
fn replicate_round_trips_are_binary_safe_including_200_mib() {
    let fleet = Fleet::builder().hosts(5).start().unwrap();
    let src = fleet.host(0);
    let mut small: Vec<(&str, Vec<u8>)> = vec![
        ("/srv/rt/random.bin", noise(70_001, 7)),
        ("/srv/rt/empty", Vec::new()),
        (
            "/srv/rt/no-newline.txt",
            b"last line has no newline".to_vec(),
        ),
        ("/srv/rt/crlf.txt", b"line one\r\nline two\r\n\r\n".to_vec()),
    ];
    small.push((
        "/srv/rt/all-bytes",
        (0..=255u8).cycle().take(4096).collect(),
    ));
    for (p, d) in &small {
        put(src, p, d);
    }
    // 200 MiB, sparse and fast to create, with random bytes at both ends and the middle.
    let big = local(src, "/srv/rt/big.img");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&big).unwrap();
        f.set_len(200 << 20).unwrap();
        for off in [0u64, 100 << 20, (200 << 20) - 65_536] {
            f.seek(SeekFrom::Start(off)).unwrap();
            f.write_all(&noise(65_536, off + 1)).unwrap();
        }
    }
    let big_sha = sha_file(&big);
    // Destinations already hold a stale copy of one file (must be replaced).
    for h in &fleet.hosts()[1..] {
        put(h, "/srv/rt/crlf.txt", b"stale\n");
    }
    let mut args = fleet_args(&fleet);
    args.extend(["-b", "replicate", "--from", "host01"].map(String::from));
    args.extend(small.iter().map(|(p, _)| p.to_string()));
    args.push("/srv/rt/big.img".into());
    let started = Instant::now();
    let (code, stdout, stderr, rss_kib) = run_measured(&args);
    let took = started.elapsed();
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(count(&stdout, "changed"), 4, "{stdout}");
    println!(
        "replicate 200 MiB + 5 small files to 4 hosts: {:.2?}, controller peak RSS {} MiB",
        took,
        rss_kib / 1024
    );
    for h in &fleet.hosts()[1..] {
        for (p, d) in &small {
            assert_eq!(
                &std::fs::read(local(h, p)).unwrap(),
                d,
                "{p} on {}",
                h.name()
            );
        }
        assert_eq!(
            sha_file(&local(h, "/srv/rt/big.img")),
            big_sha,
            "big on {}",
            h.name()
        );
        assert!(temp_files(&local(h, "/srv/rt")).is_empty());
    }
}

#[test]
fn replicate_missing_source_writes_nothing_anywhere() {
    let fleet = Fleet::builder().hosts(3).start().unwrap();
    put(fleet.host(0), "/srv/m/present", b"here");
    let out = cli(&fleet)
        .args([
            "replicate",
            "--from",
            "host01",
            "/srv/m/present",
            "/srv/m/absent",
        ])
        .run();
    out.failure()
        .stderr_contains("host01")
        .stderr_contains("/srv/m/absent");
    for h in &fleet.hosts()[1..] {
        assert!(!local(h, "/srv/m").exists(), "{} was touched", h.name());
    }
    // A directory without -r is refused the same way.
    std::fs::create_dir_all(local(fleet.host(0), "/srv/m/dir")).unwrap();
    cli(&fleet)
        .args([
            "replicate",
            "--from",
            "host01",
            "/srv/m/present",
            "/srv/m/dir",
        ])
        .run()
        .failure()
        .stderr_contains("-r");
    for h in &fleet.hosts()[1..] {
        assert!(!local(h, "/srv/m").exists());
    }
}

#[test]
fn replicate_destination_killed_mid_transfer_keeps_old_file() {
    let fleet = Fleet::builder().hosts(3).start().unwrap();
    let src = fleet.host(0);
    let big = local(src, "/srv/k/big.bin");
    std::fs::create_dir_all(big.parent().unwrap()).unwrap();
    {
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(200 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &noise(1 << 20, 3), 0).unwrap();
    }
    let big_sha = sha_file(&big);
    for h in &fleet.hosts()[1..] {
        put(h, "/srv/k/big.bin", b"old contents\n");
    }
    let victim_dir = local(fleet.host(2), "/srv/k");
    let mut args = fleet_args(&fleet);
    args.extend(["-b", "replicate", "--from", "host01", "/srv/k/big.bin"].map(String::from));
    // Kill host03 once its temp file holds some bytes (mid-stream).
    let (killed, (code, stdout, stderr, _)) = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let has_bytes = temp_files(&victim_dir).iter().any(|n| {
                    std::fs::metadata(victim_dir.join(n)).is_ok_and(|m| m.len() > (8 << 20))
                });
                if has_bytes {
                    fleet.stop_host(2);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            false
        });
        let r = run_measured(&args);
        (killer.join().unwrap(), r)
    });
    assert!(
        killed,
        "the transfer finished before host03 could be killed"
    );
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("unreachable: [host03]") || stdout.contains("failed: [host03]"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("changed: [host02]"), "{stdout}\n{stderr}");
    assert_eq!(sha_file(&local(fleet.host(1), "/srv/k/big.bin")), big_sha);
    assert_eq!(
        std::fs::read(victim_dir.join("big.bin")).unwrap(),
        b"old contents\n",
        "the killed host keeps its old file"
    );
    // Next run (host back up): host03 gets the file, its stale temp file is gone, host02 ok.
    fleet.restart_host(2).unwrap();
    let again = cli(&fleet)
        .args(["-b", "replicate", "--from", "host01", "/srv/k/big.bin"])
        .timeout(Duration::from_secs(300))
        .run();
    again
        .success()
        .stdout_contains("changed: [host03]")
        .stdout_contains("ok: [host02]");
    assert_eq!(sha_file(&victim_dir.join("big.bin")), big_sha);
    assert_eq!(temp_files(&victim_dir), Vec::<String>::new());
}

#[test]
fn replicate_paths_with_spaces_and_shell_metacharacters() {
    let fleet = Fleet::builder().hosts(2).start().unwrap();
    let marker = format!("/tmp/sshfleet-pwned-{}", std::process::id());
    let _ = std::fs::remove_file(&marker);
    let path = format!("/srv/odd dir/$(touch {marker}) ; 'q' \"d\" `id` *.txt");
    put(fleet.host(0), &path, b"weird but fine\n");
    let out = cli(&fleet)
        .args(["-b", "replicate", "--from", "host01", "--owner", "deploy"])
        .args(["--validate", "test -s %s"])
        .arg(&path)
        .run();
    out.success().stdout_contains("changed: [host02]");
    assert_eq!(
        std::fs::read(local(fleet.host(1), &path)).unwrap(),
        b"weird but fine\n"
    );
    assert!(!Path::new(&marker).exists(), "a shell expanded the path");
    // Same through --dest into a directory with a quote in its name.
    let out = cli(&fleet)
        .args([
            "-b",
            "replicate",
            "--from",
            "host01",
            "--dest",
            "/srv/it's here/",
        ])
        .arg(&path)
        .run();
    out.success();
    let name = Path::new(&path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read(local(fleet.host(1), &format!("/srv/it's here/{name}"))).unwrap(),
        b"weird but fine\n"
    );
    assert!(!Path::new(&marker).exists());
}

#[test]
fn replicate_check_writes_nothing_and_diff_shows_unified_diff() {
    let fleet = Fleet::builder().hosts(3).start().unwrap();
    put(
        fleet.host(0),
        "/srv/c/app.conf",
        b"port=80\nhost=a\nmode=prod\n",
    );
    put(
        fleet.host(1),
        "/srv/c/app.conf",
        b"port=8080\nhost=a\nmode=prod\n",
    );
    put(fleet.host(0), "/srv/c/blob", &noise(5000, 1));
    put(fleet.host(1), "/srv/c/blob", &noise(5000, 2));
    let out = cli(&fleet)
        .args(["--check", "--diff", "replicate", "--from", "host01"])
        .args(["/srv/c/app.conf", "/srv/c/blob"])
        .run();
    out.success()
        .stdout_contains("changed: [host02]")
        .stdout_contains("changed: [host03]")
        .stdout_contains("--- before: /srv/c/app.conf")
        .stdout_contains("-port=8080\n+port=80\n")
        .stdout_contains("Binary files before: /srv/c/blob and after: /srv/c/blob differ")
        .stdout_contains("+++ after: /srv/c/app.conf");
    assert_eq!(
        std::fs::read(local(fleet.host(1), "/srv/c/app.conf")).unwrap(),
        b"port=8080\nhost=a\nmode=prod\n"
    );
    assert!(
        !local(fleet.host(2), "/srv/c").exists(),
        "check mode created nothing"
    );
    // --json carries the per-file results.
    let j = cli(&fleet)
        .args([
            "--check",
            "--json",
            "replicate",
            "--from",
            "host01",
            "/srv/c/app.conf",
        ])
        .run()
        .json();
    assert_eq!(j["hosts"]["host02"]["changed"], true, "{j}");
    assert_eq!(
        j["hosts"]["host03"]["files"][0]["dest"], "/srv/c/app.conf",
        "{j}"
    );
}

#[test]
fn slurp_json_and_fetch_layout() {
    let fleet = Fleet::builder().hosts(2).start().unwrap();
    let data = noise(3000, 9);
    put(fleet.host(0), "/srv/s/key.bin", &data);
    std::fs::set_permissions(
        local(fleet.host(0), "/srv/s/key.bin"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    put(fleet.host(1), "/srv/s/key.bin", b"second host");
    let j = cli(&fleet)
        .args([
            "-b",
            "--json",
            "slurp",
            "--from",
            "host01",
            "/srv/s/key.bin",
        ])
        .run();
    j.success();
    let j = j.json();
    let r = &j["hosts"]["host01"];
    assert_eq!(r["encoding"], "base64", "{j}");
    use base64::Engine;
    let content = base64::engine::general_purpose::STANDARD
        .decode(r["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(content, data);
    assert_eq!(r["mode"], "0600");
    assert_eq!(r["size"], 3000);
    let dir = tempfile::tempdir().unwrap();
    let fetch = || {
        cli(&fleet)
            .args(["-b", "slurp", "--from", "all", "/srv/s/key.bin", "--dest"])
            .arg(dir.path())
            .run()
    };
    let out = fetch();
    out.success()
        .stdout_contains("changed: [host01]")
        .stdout_contains("changed: [host02]");
    assert_eq!(
        std::fs::read(dir.path().join("host01/srv/s/key.bin")).unwrap(),
        data
    );
    assert_eq!(
        std::fs::read(dir.path().join("host02/srv/s/key.bin")).unwrap(),
        b"second host"
    );
    let m = std::fs::metadata(dir.path().join("host01/srv/s/key.bin")).unwrap();
    assert_eq!(m.mode() & 0o777, 0o600, "fetched secrets stay private");
    let again = fetch();
    again.success();
    assert_eq!(count(&again.stdout, "ok"), 2, "{again}");
    // Missing file: that host fails, naming the path.
    cli(&fleet)
        .args(["slurp", "--from", "host01", "/srv/s/nope", "--dest"])
        .arg(dir.path())
        .run()
        .code(2)
        .stdout_contains("/srv/s/nope");
}

#[test]
fn copy_controller_files_and_tree_to_hosts() {
    let fleet = Fleet::builder().hosts(3).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("conf");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), b"A\n").unwrap();
    std::fs::write(tree.join("sub/b.bin"), noise(3 << 20, 5)).unwrap();
    std::fs::write(dir.path().join("single"), b"one file\n").unwrap();
    let out = cli(&fleet)
        .args(["-b", "copy", "-r", "--dest", "/srv/deployed/"])
        .arg(&tree)
        .arg(dir.path().join("single"))
        .run();
    out.success();
    assert_eq!(count(&out.stdout, "changed"), 3, "{out}");
    for h in fleet.hosts() {
        assert_eq!(
            std::fs::read(local(h, "/srv/deployed/conf/a.txt")).unwrap(),
            b"A\n"
        );
        assert_eq!(
            sha_file(&local(h, "/srv/deployed/conf/sub/b.bin")),
            sha_file(&tree.join("sub/b.bin"))
        );
        assert_eq!(
            std::fs::read(local(h, "/srv/deployed/single")).unwrap(),
            b"one file\n"
        );
    }
    let again = cli(&fleet)
        .args(["-b", "copy", "-r", "--dest", "/srv/deployed/"])
        .arg(&tree)
        .arg(dir.path().join("single"))
        .run();
    again.success();
    assert_eq!(count(&again.stdout, "ok"), 3, "{again}");
}

/// `~`, `~user` and `$VAR` in remote paths are expanded on each host for the user the command
/// runs as there (the login user, or the become user under `-b`), like Ansible's modules
/// expand their path arguments: replicate's source on the source host, each destination on
/// that destination (host03 logs in as another user), copy's `--dest`, slurp's paths. A `~`
/// in the middle of a path is a plain character.
#[test]
fn remote_paths_expand_tilde_and_vars_per_host_and_effective_user() {
    let fleet = Fleet::builder().hosts(3).start().unwrap();
    // host03 logs in as admin; the others as deploy (the fleet's default user).
    let inv_text = std::fs::read_to_string(fleet.inventory()).unwrap();
    let inv_text = inv_text
        .lines()
        .map(|l| {
            if l.starts_with("host03 ") {
                format!("{l} ansible_user=admin\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect::<String>();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.ini");
    std::fs::write(&inv, inv_text).unwrap();
    let cli = || {
        Sshfleet::new()
            .arg("-i")
            .arg(&inv)
            .arg("--private-key")
            .arg(fleet.client_key())
            .arg("--known-hosts")
            .arg(fleet.known_hosts())
    };
    let (h1, h2, h3) = (fleet.host(0), fleet.host(1), fleet.host(2));
    let read = |h: &FleetHost, p: &str| std::fs::read(local(h, p)).ok();
    let owner = |h: &FleetHost, p: &str| std::fs::metadata(local(h, p)).unwrap().uid();

    // replicate, no become: the source's ~ is deploy's, each destination's its login user's.
    put(h1, "/home/deploy/pki/ca.crt", b"CA one");
    std::fs::set_permissions(
        local(h1, "/home/deploy/pki/ca.crt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    cli()
        .args(["replicate", "--from", "host01", "~/pki/ca.crt"])
        .run()
        .success();
    assert_eq!(
        read(h2, "/home/deploy/pki/ca.crt").as_deref(),
        Some(&b"CA one"[..])
    );
    assert_eq!(
        read(h3, "/home/admin/pki/ca.crt").as_deref(),
        Some(&b"CA one"[..])
    );
    assert_eq!(owner(h3, "/home/admin/pki/ca.crt"), uid_of("admin").0);
    for h in [h1, h2, h3] {
        for u in ["deploy", "admin"] {
            assert!(
                !local(h, &format!("/home/{u}/~")).exists(),
                "{}: a directory literally named ~",
                h.name()
            );
        }
    }

    // replicate with become: $HOME and ~ are the become user's on every host.
    put(h1, "/home/backup/pki/ca.crt", b"CA backup");
    cli()
        .args([
            "-b",
            "--become-user",
            "backup",
            "replicate",
            "--from",
            "host01",
        ])
        .args(["$HOME/pki/ca.crt", "--dest", "~/got/ca.crt"])
        .run()
        .success();
    for h in [h2, h3] {
        assert_eq!(
            read(h, "/home/backup/got/ca.crt").as_deref(),
            Some(&b"CA backup"[..])
        );
        assert_eq!(owner(h, "/home/backup/got/ca.crt"), uid_of("backup").0);
    }

    // copy: ~ per login user; ~user and a ~ in the middle under -b (root).
    let token = dir.path().join("token");
    std::fs::write(&token, b"tok").unwrap();
    cli()
        .arg("copy")
        .arg(&token)
        .args(["--dest", "~/tok"])
        .run()
        .success();
    assert_eq!(read(h2, "/home/deploy/tok").as_deref(), Some(&b"tok"[..]));
    assert_eq!(read(h3, "/home/admin/tok").as_deref(), Some(&b"tok"[..]));
    cli()
        .args(["-b", "copy"])
        .arg(&token)
        .args(["--dest", "~backup/tok3"])
        .run()
        .success();
    cli()
        .args(["-b", "copy"])
        .arg(&token)
        .args(["--dest", "/srv/a~b"])
        .run()
        .success();
    for h in [h1, h2, h3] {
        assert_eq!(read(h, "/home/backup/tok3").as_deref(), Some(&b"tok"[..]));
        assert_eq!(owner(h, "/home/backup/tok3"), 0);
        assert_eq!(read(h, "/srv/a~b").as_deref(), Some(&b"tok"[..]));
    }
    cli()
        .args(["-b", "--become-user", "backup", "copy"])
        .arg(&token)
        .args(["--dest", "~/tok4"])
        .run()
        .success();
    assert_eq!(owner(h3, "/home/backup/tok4"), uid_of("backup").0);

    // slurp: fetched under the expanded path; with become, the become user's home.
    let fetched = dir.path().join("fetched");
    cli()
        .args(["slurp", "--from", "host02:host03", "~/tok", "--dest"])
        .arg(&fetched)
        .run()
        .success();
    assert_eq!(
        std::fs::read(fetched.join("host02/home/deploy/tok")).unwrap(),
        b"tok"
    );
    assert_eq!(
        std::fs::read(fetched.join("host03/home/admin/tok")).unwrap(),
        b"tok"
    );
    let j = cli()
        .args([
            "-b",
            "--become-user",
            "backup",
            "--json",
            "slurp",
            "--from",
            "host02",
        ])
        .arg("~/got/ca.crt")
        .run();
    j.success();
    let j = j.json();
    assert_eq!(
        j["hosts"]["host02"]["source"], "/home/backup/got/ca.crt",
        "{j}"
    );
}
