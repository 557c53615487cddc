//! The playbooks in `playbooks/` through real `ansible-playbook` (the venv's ansible-core, its
//! ssh connection with ControlPersist) against the real sshd test fleet, calling the modules
//! by FQCN from the `sshfleet.fleet` collection, built into a tarball and installed with
//! `ansible-galaxy collection install` into a fresh collections path: end to end, a second
//! run reports `changed=0`, `--check` changes nothing; and for rotation, that
//! `meta: reset_connection` is what stands between a broken new key and a lock-out.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::ansible::{AnsibleEnv, json_output};
use crate::support::fleet::{Fleet, ssh};
use crate::support::keys::fingerprint;
use crate::support::repo_root;

/// One `ansible-playbook` run: exit status and the json callback's document.
struct Run {
    success: bool,
    doc: Value,
    stderr: String,
}

impl Run {
    /// `(changed, failures, unreachable)` per host from the recap.
    fn recap(&self) -> BTreeMap<String, (u64, u64, u64)> {
        self.doc["stats"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(h, s)| {
                let n = |k: &str| s[k].as_u64().unwrap_or(0);
                (h.clone(), (n("changed"), n("failures"), n("unreachable")))
            })
            .collect()
    }

    fn dump(&self) -> String {
        format!(
            "{}\n--- stderr ---\n{}",
            serde_json::to_string_pretty(&self.doc).unwrap(),
            self.stderr
        )
    }
}

/// Run `playbook` (a path) with `inventory`, extra vars and arguments.
fn playbook(
    env: &AnsibleEnv,
    inventory: &Path,
    playbook: &Path,
    vars: &Value,
    args: &[&str],
) -> Run {
    let vars_file = env.path().join("extra-vars.json");
    std::fs::write(&vars_file, vars.to_string()).unwrap();
    let out = env
        .command("ansible-playbook")
        .env("ANSIBLE_STDOUT_CALLBACK", "ansible.posix.json")
        .arg("-i")
        .arg(inventory)
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .args(args)
        .arg(playbook)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        success: out.status.success(),
        doc: json_output(&out),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn repo_playbook(name: &str) -> PathBuf {
    repo_root().join("playbooks").join(name)
}

/// The fleet's inventory with `ansible_ssh_private_key_file` pointed at `key` (what a user
/// does after a rotation).
fn inventory_with_key(fleet: &Fleet, env: &AnsibleEnv, key: &Path) -> PathBuf {
    let inv = std::fs::read_to_string(fleet.inventory()).unwrap();
    let old = format!(
        "ansible_ssh_private_key_file={}",
        fleet.client_key().display()
    );
    assert!(inv.contains(&old), "{inv}");
    let new = inv.replace(
        &old,
        &format!("ansible_ssh_private_key_file={}", key.display()),
    );
    let path = env.path().join("inventory-rotated.ini");
    std::fs::write(&path, new).unwrap();
    path
}

fn read_all(paths: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    paths.iter().map(|p| std::fs::read(p).ok()).collect()
}

/// Log in to host `i` as deploy offering only `key`; true if `true` ran.
fn login_with(fleet: &Fleet, i: usize, key: &Path) -> bool {
    let mut args = fleet.ssh_args(i, "deploy");
    let k = args.iter().position(|a| a == "-i").unwrap();
    args[k + 1] = key.display().to_string();
    Command::new("ssh")
        .args(&args)
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn playbooks_rotate_keys_end_to_end() {
    let fleet = Fleet::builder().hosts(5).start().unwrap();
    let env = AnsibleEnv::with_collection();
    let n = fleet.hosts().len();
    let key = env.path().join("keys/fleet_new_ed25519");
    let pubkey = env.path().join("keys/fleet_new_ed25519.pub");
    let vars = json!({"rotate_hosts": "fleet", "rotate_key_path": key});
    let deploy_ak: Vec<PathBuf> = (0..n)
        .map(|i| fleet.authorized_keys_path(i, "deploy"))
        .collect();
    let admin_ak: Vec<PathBuf> = (0..n)
        .map(|i| fleet.authorized_keys_path(i, "admin"))
        .collect();
    let original = read_all(&deploy_ak);
    let admin_original = read_all(&admin_ak);
    let pb = repo_playbook("rotate_keys.yml");

    // 1. check mode before any key exists: says so, creates nothing, changes nothing
    let r = playbook(&env, &fleet.inventory(), &pb, &vars, &["--check"]);
    assert!(r.success, "{}", r.dump());
    assert!(
        !env.path().join("keys").exists(),
        "check mode created the key dir"
    );
    assert_eq!(read_all(&deploy_ak), original);

    // 2. only generate the key pair (on the controller)
    let r = playbook(&env, &fleet.inventory(), &pb, &vars, &["--tags", "keygen"]);
    assert!(r.success, "{}", r.dump());
    assert!(key.exists() && pubkey.exists());
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
    let new_pub = std::fs::read_to_string(&pubkey).unwrap().trim().to_string();
    assert!(new_pub.starts_with("ssh-ed25519 "), "{new_pub}");
    assert_eq!(read_all(&deploy_ak), original);

    // 3. check mode with the key: every host would change, none does
    let r = playbook(&env, &fleet.inventory(), &pb, &vars, &["--check", "--diff"]);
    assert!(r.success, "{}", r.dump());
    let recap = r.recap();
    assert_eq!(recap.len(), n, "{}", r.dump());
    for (h, (changed, failed, unreachable)) in &recap {
        assert!(
            *changed > 0 && *failed == 0 && *unreachable == 0,
            "{h}: {recap:?}"
        );
    }
    assert_eq!(read_all(&deploy_ak), original, "check mode changed a file");

    // 4. the rotation
    let r = playbook(&env, &fleet.inventory(), &pb, &vars, &[]);
    assert!(r.success, "{}", r.dump());
    for (h, (changed, failed, unreachable)) in r.recap() {
        assert!(
            changed > 0 && failed == 0 && unreachable == 0,
            "{h}: {}",
            r.dump()
        );
    }
    let fp = fingerprint(&pubkey);
    for (i, ak_path) in deploy_ak.iter().enumerate() {
        let ak = std::fs::read_to_string(ak_path).unwrap();
        let lines: Vec<&str> = ak.lines().collect();
        assert_eq!(lines, [new_pub.as_str()], "host {i}: {ak}");
        assert!(
            !login_with(&fleet, i, &fleet.client_key()),
            "host {i}: old key still logs in"
        );
        assert!(login_with(&fleet, i, &key), "host {i}: new key refused");
        // The proof step really authenticated with the new key (reset_connection worked):
        // sshd logged an acceptance of it.
        let log = fleet.host(i).log();
        assert!(
            log.lines()
                .any(|l| l.contains("Accepted publickey for deploy") && l.contains(&fp)),
            "host {i}: no login with the new key {fp} in the sshd log"
        );
    }
    assert_eq!(
        read_all(&admin_ak),
        admin_original,
        "another user's keys changed"
    );

    // 5. with the inventory pointing at the new key, a second run changes nothing
    let rotated_inv = inventory_with_key(&fleet, &env, &key);
    let after = read_all(&deploy_ak);
    let r = playbook(&env, &rotated_inv, &pb, &vars, &[]);
    assert!(r.success, "{}", r.dump());
    for (h, (changed, failed, unreachable)) in r.recap() {
        assert_eq!(
            (changed, failed, unreachable),
            (0, 0, 0),
            "{h}: {}",
            r.dump()
        );
    }
    assert_eq!(read_all(&deploy_ak), after);
}

/// The reason for `meta: reset_connection`, shown: a new key that cannot log in (here its
/// file is group/world readable, so ssh refuses to use it). With the playbook as shipped, the
/// proof fails, the host drops out and keeps both keys. Without the reset, the proof runs over
/// the ControlPersist connection opened with the old key, "succeeds", and the exclusive step
/// locks the user out.
#[test]
fn playbooks_rotate_keys_reset_connection_prevents_lockout() {
    let fleet = Fleet::builder().hosts(2).start().unwrap();
    let env = AnsibleEnv::with_collection();
    let key = env.path().join("broken_ed25519");
    let pb = repo_playbook("rotate_keys.yml");
    let text = std::fs::read_to_string(&pb).unwrap();
    let start = text
        .find("    - name: Drop the connection that was opened with the old key")
        .expect("the reset task");
    let end = start + 4 + text[start + 4..].find("    - name: ").unwrap();
    let without_reset = format!("{}{}", &text[..start], &text[end..]);
    assert!(!without_reset.contains("reset_connection"));
    let pb_without = env.path().join("rotate_keys_without_reset.yml");
    std::fs::write(&pb_without, &without_reset).unwrap();

    let vars = json!({"rotate_hosts": "fleet", "rotate_key_path": key});
    let r = playbook(&env, &fleet.inventory(), &pb, &vars, &["--tags", "keygen"]);
    assert!(r.success, "{}", r.dump());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let new_pub = std::fs::read_to_string(env.path().join("broken_ed25519.pub")).unwrap();
    let new_pub = new_pub.trim();
    let old_pub = std::fs::read_to_string(fleet.client_key_pub()).unwrap();
    let old_blob = old_pub.split_whitespace().nth(1).unwrap();

    // As shipped, on host01: the proof fails, the old key still works, both keys are there.
    let r = playbook(&env, &fleet.inventory(), &pb, &vars, &["--limit", "host01"]);
    assert!(!r.success, "the rotation should fail: {}", r.dump());
    assert_eq!(r.recap()["host01"].2, 1, "host01 unreachable: {}", r.dump());
    let ak = std::fs::read_to_string(fleet.authorized_keys_path(0, "deploy")).unwrap();
    assert!(ak.contains(old_blob) && ak.contains(new_pub), "{ak}");
    assert!(login_with(&fleet, 0, &fleet.client_key()), "locked out");

    // Without the reset, on host02: everything "works" and the user is locked out.
    let r = playbook(
        &env,
        &fleet.inventory(),
        &pb_without,
        &vars,
        &["--limit", "host02"],
    );
    assert!(r.success, "{}", r.dump());
    let ak = std::fs::read_to_string(fleet.authorized_keys_path(1, "deploy")).unwrap();
    assert_eq!(ak.lines().collect::<Vec<_>>(), [new_pub], "{ak}");
    assert!(!login_with(&fleet, 1, &fleet.client_key()));
    assert!(
        !login_with(&fleet, 1, &key),
        "ssh should refuse the 0644 key file"
    );
    let out = ssh(&fleet, 1, "admin", "true");
    assert!(
        out.success(),
        "the fleet itself is fine: {}",
        out.stderr_str()
    );
}

/// A file's content and permission bits.
type Attrs = (Vec<u8>, u32);

/// Files seeded on the CA host: (path on the host, content, mode).
fn pki_files() -> Vec<(&'static str, Vec<u8>, u32)> {
    let mut der: Vec<u8> = (0u8..=255).rev().collect();
    der.extend([0, 0, b'\r', b'\n', 0xff]);
    vec![
        (
            "/srv/pki/ca.crt",
            b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n".to_vec(),
            0o644,
        ),
        (
            "/srv/pki/private/ca.key",
            b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
                .to_vec(),
            0o600,
        ),
        ("/srv/pki/crl.der", der, 0o640),
    ]
}

#[test]
fn playbooks_replicate_pki_end_to_end() {
    let fleet = Fleet::builder().hosts(5).start().unwrap();
    let env = AnsibleEnv::with_collection();
    let n = fleet.hosts().len();
    let local = |i: usize, p: &str| fleet.host(i).local_path(p).unwrap();
    for (p, content, mode) in pki_files() {
        let f = local(0, p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, &content).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let (crt, crt_content, _) = &pki_files()[0];
    // host03 has a stale certificate, host04 the right one with the wrong mode
    for (i, content) in [(2, b"stale\n".to_vec()), (3, crt_content.clone())] {
        let f = local(i, crt);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, content).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let host04_inode = std::fs::metadata(local(3, crt)).unwrap().ino();
    let snapshot = || -> Vec<Vec<Option<Attrs>>> {
        (0..n)
            .map(|i| {
                pki_files()
                    .iter()
                    .map(|(p, _, _)| {
                        let f = local(i, p);
                        let m = std::fs::metadata(&f).ok()?;
                        Some((std::fs::read(&f).ok()?, m.mode() & 0o7777))
                    })
                    .collect()
            })
            .collect()
    };
    let paths: Vec<&str> = pki_files().iter().map(|(p, _, _)| *p).collect();
    let vars = json!({"pki_group": "fleet", "pki_files": paths});
    let pb = repo_playbook("replicate_pki.yml");

    // 1. check mode: every other host would change, nothing does
    let before = snapshot();
    let r = playbook(&env, &fleet.inventory(), &pb, &vars, &["--check"]);
    assert!(r.success, "{}", r.dump());
    let recap = r.recap();
    assert_eq!(recap["host01"].0, 0, "{recap:?}");
    for h in ["host02", "host03", "host04", "host05"] {
        assert!(recap[h].0 > 0, "{h}: {recap:?}");
    }
    assert_eq!(snapshot(), before, "check mode changed files");
    assert!(!local(1, "/srv/pki").exists());

    // 2. the replication
    let r = playbook(&env, &fleet.inventory(), &pb, &vars, &[]);
    assert!(r.success, "{}", r.dump());
    let after = snapshot();
    for (i, files) in after.iter().enumerate() {
        for ((p, content, mode), got) in pki_files().iter().zip(files) {
            let (bytes, m) = got
                .as_ref()
                .unwrap_or_else(|| panic!("host {i}: {p} missing"));
            assert!(bytes == content, "host {i}: {p} differs");
            assert_eq!(*m, *mode, "host {i}: {p} mode");
            let md = std::fs::metadata(local(i, p)).unwrap();
            assert_eq!((md.uid(), md.gid()), (0, 0), "host {i}: {p} owner");
        }
    }
    assert_eq!(
        std::fs::metadata(local(3, crt)).unwrap().ino(),
        host04_inode,
        "host04's certificate had the same bytes: only its mode should have been fixed"
    );
    // the private key was never shown
    let shown = serde_json::to_string(&r.doc).unwrap() + &r.stderr;
    assert!(
        !shown.contains("c2VjcmV0LWtleS1tYXRlcmlhbA"),
        "key material in the output"
    );
    assert!(
        !shown.contains("LS0tLS1CRUdJTiBQUklWQVRF"),
        "base64 key material in the output"
    );

    // 3. second run: nothing to do; check mode neither
    for args in [&[][..], &["--check"][..]] {
        let r = playbook(&env, &fleet.inventory(), &pb, &vars, args);
        assert!(r.success, "{}", r.dump());
        for (h, (changed, failed, unreachable)) in r.recap() {
            assert_eq!(
                (changed, failed, unreachable),
                (0, 0, 0),
                "{args:?} {h}: {}",
                r.dump()
            );
        }
    }
    assert_eq!(snapshot(), after);

    // 4. a file missing on the CA host: the read fails as a whole, nothing is written anywhere
    std::fs::write(local(0, "/srv/pki/new.pem"), "new\n").unwrap();
    let vars =
        json!({"pki_group": "fleet", "pki_files": ["/srv/pki/new.pem", "/srv/pki/missing.pem"]});
    let r = playbook(&env, &fleet.inventory(), &pb, &vars, &[]);
    assert!(!r.success, "{}", r.dump());
    for i in 1..n {
        assert!(
            !local(i, "/srv/pki/new.pem").exists(),
            "host {i} got a partial set"
        );
    }
}
