//! replicate over several local "hosts" (directories standing in for `/`), real syscalls.

use super::testutil::{Rooted, rt};
use super::*;
use crate::files::checksum::to_hex;
use crate::files::mode::ModeSpec;
use crate::files::plan::Action;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Fleet {
    _dir: tempfile::TempDir,
    src: Rooted,
    dests: Vec<Rooted>,
}

fn fleet(n: usize) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let src = Rooted::new("src", &dir.path().join("src"));
    std::fs::create_dir_all(&src.root).unwrap();
    let dests = (0..n)
        .map(|i| {
            let r = Rooted::new(&format!("h{i}"), &dir.path().join(format!("h{i}")));
            std::fs::create_dir_all(&r.root).unwrap();
            r
        })
        .collect();
    Fleet {
        _dir: dir,
        src,
        dests,
    }
}

fn paths(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

const BIG: usize = 3 * 1024 * 1024 + 17;

#[test]
fn small_and_streamed_files_arrive_byte_for_byte_then_second_run_is_ok() {
    let f = fleet(3);
    let big = noise(BIG, 7);
    f.src
        .put("/etc/pki/ca.crt", b"-----BEGIN CERTIFICATE-----\nMIIB\n");
    f.src.put("/etc/pki/empty", b"");
    f.src.put("/etc/pki/crlf", b"a\r\nb\r\nno newline");
    f.src.put("/etc/pki/big.bin", &big);
    std::fs::set_permissions(
        f.src.real("/etc/pki/ca.crt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let list = paths(&[
        "/etc/pki/ca.crt",
        "/etc/pki/empty",
        "/etc/pki/crlf",
        "/etc/pki/big.bin",
    ]);
    let rt = rt();
    let (set, warnings) = rt.block_on(scan_source(&f.src, &list, false)).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(set.streamed().len(), 1, "the 3 MiB file is streamed");
    let opts = CopyOptions::default();
    let (reports, errors) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &opts));
    assert!(errors.is_empty(), "{errors:?}");
    for (d, r) in f.dests.iter().zip(&reports) {
        assert!(!r.failed(), "{:?}", r.message());
        assert!(r.changed());
        assert_eq!(r.dirs_created, vec!["/etc", "/etc/pki"]);
        for p in &list {
            assert_eq!(d.get(p), f.src.get(p), "{p} on {}", d.name);
        }
        let m = std::fs::metadata(d.real("/etc/pki/ca.crt")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640, "source mode kept");
        assert!(d.ls("/etc/pki").iter().all(|n| !n.ends_with(".tmp")));
    }
    // Second run: nothing rewritten, every host ok.
    let writes_before: Vec<usize> = f
        .dests
        .iter()
        .map(|d| d.writes.load(std::sync::atomic::Ordering::SeqCst))
        .collect();
    let (reports, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &opts));
    for (i, r) in reports.iter().enumerate() {
        assert!(!r.failed() && !r.changed(), "{:?}", r.to_json());
        assert!(r.files.iter().all(|x| x.action == Some(Action::Nothing)));
        assert_eq!(
            f.dests[i].writes.load(std::sync::atomic::Ordering::SeqCst),
            writes_before[i]
        );
    }
}

#[test]
fn current_host_is_skipped_but_attributes_are_fixed() {
    let f = fleet(2);
    f.src.put("/d/x", b"same\n");
    f.dests[0].put("/d/x", b"same\n");
    std::fs::set_permissions(
        f.dests[0].real("/d/x"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/d/x"]), false))
        .unwrap();
    let opts = CopyOptions {
        mode: Some(ModeSpec::parse("0644").unwrap()),
        ..CopyOptions::default()
    };
    let ino = std::fs::metadata(f.dests[0].real("/d/x")).unwrap().ino();
    let (reports, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &opts));
    assert_eq!(reports[0].files[0].action, Some(Action::FixAttrs));
    assert!(reports[0].changed());
    let m = std::fs::metadata(f.dests[0].real("/d/x")).unwrap();
    assert_eq!(
        (m.ino(), m.mode() & 0o7777),
        (ino, 0o644),
        "fixed in place, not rewritten"
    );
    assert_eq!(
        f.dests[0].writes.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert_eq!(reports[1].files[0].action, Some(Action::Create));
}

#[test]
fn missing_source_fails_before_anything_is_written() {
    let f = fleet(2);
    f.src.put("/a", b"a");
    let rt = rt();
    let e = rt
        .block_on(scan_source(&f.src, &paths(&["/a", "/nope"]), false))
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("src") && msg.contains("/nope"), "{msg}");
    assert!(f.dests.iter().all(|d| d.ls("/").is_empty()));
}

#[test]
fn destination_dying_mid_stream_keeps_its_file_others_proceed() {
    let mut f = fleet(3);
    let big = noise(BIG, 9);
    f.src.put("/srv/big", &big);
    for d in &f.dests {
        d.put("/srv/big", b"old");
    }
    let flaky = Rooted::new("h1", &f.dests[1].root).fail_write_after(2);
    f.dests[1] = flaky;
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/srv/big"]), false))
        .unwrap();
    let (reports, errors) = rt.block_on(replicate_to(
        &f.src,
        &set,
        &f.dests,
        &CopyOptions::default(),
    ));
    assert!(errors.is_empty());
    assert!(reports[1].failed() && reports[1].is_unreachable());
    assert_eq!(f.dests[1].get("/srv/big").unwrap(), b"old");
    assert_eq!(f.dests[1].ls("/srv"), vec!["big"], "no temp file left");
    for i in [0, 2] {
        assert!(!reports[i].failed(), "{:?}", reports[i].message());
        assert_eq!(f.dests[i].get("/srv/big").unwrap(), big);
    }
}

#[test]
fn source_failing_mid_stream_writes_nothing_anywhere() {
    let mut f = fleet(2);
    let big = noise(BIG, 11);
    f.src.put("/srv/big", &big);
    f.dests[0].put("/srv/big", b"old");
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/srv/big"]), false))
        .unwrap();
    f.src = Rooted::new("src", &f.src.root).fail_read_after(3);
    let (reports, errors) = rt.block_on(replicate_to(
        &f.src,
        &set,
        &f.dests,
        &CopyOptions::default(),
    ));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("injected read failure"));
    assert!(reports.iter().all(HostReport::failed));
    assert_eq!(f.dests[0].get("/srv/big").unwrap(), b"old");
    assert_eq!(f.dests[0].ls("/srv"), vec!["big"]);
    assert_eq!(f.dests[1].get("/srv/big"), None);
    assert!(f.dests[1].ls("/srv").is_empty());
}

#[test]
fn source_changed_after_scan_is_refused_everywhere() {
    let f = fleet(1);
    f.src.put("/srv/big", &noise(BIG, 1));
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/srv/big"]), false))
        .unwrap();
    f.src.put("/srv/big", &noise(BIG, 2));
    let (reports, errors) = rt.block_on(replicate_to(
        &f.src,
        &set,
        &f.dests,
        &CopyOptions::default(),
    ));
    assert!(
        errors[0].contains("changed while it was read"),
        "{errors:?}"
    );
    assert!(reports[0].failed());
    assert!(f.dests[0].get("/srv/big").is_none());
}

#[test]
fn recursive_tree_trailing_slash_and_dir_mode() {
    let f = fleet(1);
    f.src.put("/conf/a.txt", b"a");
    f.src.put("/conf/sub/b.txt", b"b");
    std::fs::create_dir_all(f.src.real("/conf/empty")).unwrap();
    std::os::unix::fs::symlink("/nowhere", f.src.real("/conf/dangling")).unwrap();
    let rt = rt();
    // Without -r: refused.
    assert!(
        rt.block_on(scan_source(&f.src, &paths(&["/conf"]), false))
            .is_err()
    );
    let (set, warnings) = rt
        .block_on(scan_source(&f.src, &paths(&["/conf"]), true))
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let opts = CopyOptions {
        dest: Some("/opt/".into()),
        recurse: true,
        dir_mode: Some(ModeSpec::parse("0750").unwrap()),
        ..CopyOptions::default()
    };
    let (r, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &opts));
    assert!(!r[0].failed(), "{:?}", r[0].message());
    let d = &f.dests[0];
    assert_eq!(d.get("/opt/conf/a.txt").unwrap(), b"a");
    assert_eq!(d.get("/opt/conf/sub/b.txt").unwrap(), b"b");
    assert!(d.real("/opt/conf/empty").is_dir());
    let m = std::fs::metadata(d.real("/opt/conf/sub")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o750);
    // Trailing slash: the contents, not the directory.
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/conf/"]), true))
        .unwrap();
    let opts = CopyOptions {
        dest: Some("/flat".into()),
        ..opts
    };
    let (r, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &opts));
    assert!(!r[0].failed(), "{:?}", r[0].message());
    assert_eq!(d.get("/flat/a.txt").unwrap(), b"a");
    assert_eq!(d.get("/flat/sub/b.txt").unwrap(), b"b");
}

#[test]
fn check_mode_writes_nothing_and_diff_shows_the_change() {
    let f = fleet(1);
    f.src.put("/etc/app.conf", b"port=80\nhost=a\n");
    f.dests[0].put("/etc/app.conf", b"port=8080\nhost=a\n");
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/etc/app.conf"]), false))
        .unwrap();
    let opts = CopyOptions {
        check: true,
        diff: true,
        ..CopyOptions::default()
    };
    let (r, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &opts));
    assert!(r[0].changed());
    assert_eq!(
        f.dests[0].get("/etc/app.conf").unwrap(),
        b"port=8080\nhost=a\n"
    );
    let diff = r[0].rendered_diff();
    assert!(diff.contains("-port=8080\n+port=80\n"), "{diff}");
    assert!(diff.starts_with("--- before: /etc/app.conf\n+++ after: /etc/app.conf\n"));
}

#[test]
fn owner_group_backup_no_force_validate() {
    let f = fleet(1);
    let d = &f.dests[0];
    f.src.put("/etc/x", b"new\n");
    d.put("/etc/x", b"old\n");
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/etc/x"]), false))
        .unwrap();
    // force=false: existing file stays, ok.
    let keep = CopyOptions {
        force: false,
        ..CopyOptions::default()
    };
    let (r, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &keep));
    assert!(!r[0].changed() && !r[0].failed());
    assert_eq!(d.get("/etc/x").unwrap(), b"old\n");
    // validate refusing: nothing changes.
    let bad = CopyOptions {
        validate: Some("grep -q nomatch %s".into()),
        ..CopyOptions::default()
    };
    let (r, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &bad));
    assert!(r[0].failed());
    assert!(
        r[0].message().unwrap().contains("validation failed"),
        "{:?}",
        r[0].message()
    );
    assert_eq!(d.get("/etc/x").unwrap(), b"old\n");
    assert_eq!(d.ls("/etc"), vec!["x"]);
    // backup + owner/group by name and number + validate passing.
    let opts = CopyOptions {
        backup: true,
        owner: Some(crate::files::owner::IdSpec::parse("owner", "daemon").unwrap()),
        group: Some(crate::files::owner::IdSpec::parse("group", "2").unwrap()),
        validate: Some("grep -q new %s".into()),
        ..CopyOptions::default()
    };
    let (r, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &opts));
    assert!(!r[0].failed(), "{:?}", r[0].message());
    let fr = &r[0].files[0];
    let backup = fr.backup_file.clone().expect("backup made");
    assert_eq!(d.get(&backup).unwrap(), b"old\n");
    let m = std::fs::metadata(d.real("/etc/x")).unwrap();
    let daemon = crate::target::local::lookup_user("daemon")
        .unwrap()
        .unwrap();
    assert_eq!((m.uid(), m.gid()), (daemon.uid, 2));
    assert_eq!(
        to_hex(&fr.sha256),
        to_hex(&crate::files::checksum::sha256(b"new\n"))
    );
    // Unknown owner: host fails with the name, nothing written.
    let nobody = CopyOptions {
        owner: Some(crate::files::owner::IdSpec::parse("owner", "no-such-user-xyz").unwrap()),
        ..CopyOptions::default()
    };
    f.src.put("/etc/x", b"newer\n");
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/etc/x"]), false))
        .unwrap();
    let (r, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &nobody));
    assert!(r[0].message().unwrap().contains("no-such-user-xyz"));
    assert_eq!(d.get("/etc/x").unwrap(), b"new\n");
}

#[test]
fn dead_writers_temp_files_are_removed_and_live_ones_kept() {
    use crate::target::temp::{Owner, temp_name};
    let f = fleet(1);
    let d = &f.dests[0];
    f.src.put("/srv/f", b"v2");
    d.put("/srv/f", b"v1");
    // A dead writer: a child process that has exited and been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let me = Owner::current().unwrap();
    let dead = Owner {
        pid: dead_pid,
        ..me.clone()
    };
    // Our own pid with another start time: the pid was reused, the writer is dead.
    let reused = Owner {
        start: me.start + 1,
        ..me.clone()
    };
    let dead_name = temp_name("f", Some(&dead), 1);
    let reused_name = temp_name("other", Some(&reused), 2);
    let live_name = temp_name("f", Some(&me), 3);
    let old_unowned = ".f.sshfleet-0123456789abcdef.tmp";
    let new_unowned = ".g.sshfleet-123-0-0000abcd.tmp";
    for n in [&dead_name, &reused_name, &live_name] {
        d.put(&format!("/srv/{n}"), b"partial");
    }
    d.put(&format!("/srv/{old_unowned}"), b"partial");
    d.put(&format!("/srv/{new_unowned}"), b"partial");
    let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86400);
    std::fs::File::options()
        .write(true)
        .open(d.real(&format!("/srv/{old_unowned}")))
        .unwrap()
        .set_modified(two_days_ago)
        .unwrap();
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/srv/f"]), false))
        .unwrap();
    let (r, _) = rt.block_on(replicate_to(
        &f.src,
        &set,
        &f.dests,
        &CopyOptions::default(),
    ));
    assert!(!r[0].failed());
    let mut want = vec![live_name, new_unowned.to_string(), "f".to_string()];
    want.sort();
    assert_eq!(d.ls("/srv"), want);
    assert_eq!(d.get("/srv/f").unwrap(), b"v2");
}

#[test]
fn dest_file_path_or_existing_directory() {
    let f = fleet(2);
    f.src.put("/s/one", b"1");
    std::fs::create_dir_all(f.dests[0].real("/target")).unwrap();
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&["/s/one"]), false))
        .unwrap();
    let opts = CopyOptions {
        dest: Some("/target".into()),
        ..CopyOptions::default()
    };
    let (r, _) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &opts));
    assert!(r.iter().all(|x| !x.failed()));
    assert_eq!(
        f.dests[0].get("/target/one").unwrap(),
        b"1",
        "existing dir: into it"
    );
    assert_eq!(
        f.dests[1].get("/target").unwrap(),
        b"1",
        "no dir: the file itself"
    );
}

#[test]
fn hostile_names_arrive_verbatim() {
    let f = fleet(1);
    let name = "/data/a b $(touch pwned) ; 'q' \"d\"";
    f.src.put(name, b"x");
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(&f.src, &paths(&[name]), false))
        .unwrap();
    let (r, _) = rt.block_on(replicate_to(
        &f.src,
        &set,
        &f.dests,
        &CopyOptions::default(),
    ));
    assert!(!r[0].failed(), "{:?}", r[0].message());
    assert_eq!(f.dests[0].get(name).unwrap(), b"x");
    assert!(!std::path::Path::new("pwned").exists());
}

/// What the progress display is told: each destination plans exactly the bytes it lacks
/// (nothing when current), and every planned byte is reported moved, streamed or in memory.
#[test]
fn progress_sees_each_destination_plan_and_every_byte() {
    use crate::progress::{ProgressHandle, testutil::Recorder};
    let f = fleet(3);
    let big = noise(BIG, 11);
    f.src.put("/p/big.bin", &big);
    f.src.put("/p/small.txt", b"small\n");
    // h0 is already current; h1 has only the small file; h2 has nothing.
    f.dests[0].put("/p/big.bin", &big);
    f.dests[0].put("/p/small.txt", b"small\n");
    f.dests[1].put("/p/small.txt", b"small\n");
    let rt = rt();
    let (set, _) = rt
        .block_on(scan_source(
            &f.src,
            &paths(&["/p/big.bin", "/p/small.txt"]),
            false,
        ))
        .unwrap();
    let rec = Arc::new(Recorder::default());
    let opts = CopyOptions {
        progress: ProgressHandle::new(rec.clone()),
        ..CopyOptions::default()
    };
    let (reports, errors) = rt.block_on(replicate_to(&f.src, &set, &f.dests, &opts));
    assert!(errors.is_empty(), "{errors:?}");
    assert!(reports.iter().all(|r| !r.failed()), "{reports:?}");
    let planned = rec.planned.lock().unwrap().clone();
    let moved = rec.moved.lock().unwrap().clone();
    let big_len = BIG as u64;
    assert_eq!(planned["h0"], 0);
    assert_eq!(planned["h1"], big_len);
    assert_eq!(planned["h2"], big_len + 6);
    assert_eq!(moved.get("h0"), None);
    assert_eq!(moved["h1"], big_len);
    assert_eq!(moved["h2"], big_len + 6);
}
