//! The `sshfleet.fleet` collection as users get it: the tarball of
//! `scripts/build-collection.sh` (whose `ansible-galaxy collection build` must print no
//! warning) installed with `ansible-galaxy collection install` into a fresh collections path;
//! `ansible-doc` for each module; the action plugin on the real sshd fleet: the binary chosen
//! by the host's `uname -m` (aarch64 faked with a `uname` shim and run under `qemu-aarch64`),
//! an unsupported architecture failing that host by name, the per-user cache (become user
//! included) with a tampered binary and an unsafe cache directory refused, key URLs fetched on
//! the controller; the aarch64 binaries run under `qemu-aarch64` against the x86_64 ones; and
//! `ansible-builder create` of `execution-environment.yml` with the tarball.
//! The playbooks by FQCN are in `playbooks.rs`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::ansible::{AnsibleEnv, json_output};
use crate::support::fleet::Fleet;
use crate::support::repo_root;

const MODULES: [&str; 3] = ["authorized_key", "slurp", "copy"];

fn module_dir(arch: &str) -> PathBuf {
    repo_root().join(format!("target/{arch}-unknown-linux-musl/module"))
}

/// The aarch64 binaries and `qemu-aarch64`, or `None` (said loudly: a machine without the
/// aarch64 Rust target or qemu-user tests x86_64 alone).
fn aarch64_setup() -> Option<PathBuf> {
    let dir = module_dir("aarch64");
    let qemu = Path::new("/usr/bin/qemu-aarch64");
    if !dir.join("sshfleet_authorized_key").exists() || !qemu.exists() {
        eprintln!(
            "WARNING: aarch64 NOT TESTED: {} or {} missing (scripts/setup.sh adds the Rust \
             target and qemu-user; scripts/build-modules.sh builds the binaries)",
            dir.display(),
            qemu.display()
        );
        return None;
    }
    Some(dir)
}

fn sha256_hex(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Run a play (list of task objects) on `hosts` of the fleet's inventory with the json
/// callback; per task, per host, the result.
fn play(
    env: &AnsibleEnv,
    fleet: &Fleet,
    name: &str,
    play_extra: Value,
    tasks: Vec<Value>,
) -> (Vec<BTreeMap<String, Value>>, Value) {
    let mut p = json!({"hosts": "fleet", "gather_facts": false, "tasks": tasks});
    if let (Some(p), Value::Object(extra)) = (p.as_object_mut(), play_extra) {
        p.extend(extra);
    }
    let pb = env.path().join(format!("{name}.json"));
    std::fs::write(&pb, serde_json::to_vec_pretty(&json!([p])).unwrap()).unwrap();
    let out = env
        .command("ansible-playbook")
        .env("ANSIBLE_STDOUT_CALLBACK", "ansible.posix.json")
        .arg("-i")
        .arg(fleet.inventory())
        .arg(&pb)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let doc = json_output(&out);
    let tasks = doc["plays"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["hosts"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(h, r)| (h.clone(), r.clone()))
                .collect()
        })
        .collect();
    (tasks, doc)
}

/// `ansible-builder create` on the repository's `execution-environment.yml` with the tarball
/// just built: the build context holds the tarball and installs it from there.
fn check_execution_environment(tarball: &Path) {
    let builder = repo_root().join("target/venv-builder/bin/ansible-builder");
    assert!(
        builder.exists(),
        "{} missing: run scripts/setup.sh",
        builder.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("dist")).unwrap();
    std::fs::copy(
        repo_root().join("execution-environment.yml"),
        tmp.path().join("execution-environment.yml"),
    )
    .unwrap();
    let name = tarball.file_name().unwrap();
    std::fs::copy(tarball, tmp.path().join("dist").join(name)).unwrap();
    let out = Command::new(&builder)
        .args(["create", "-f", "execution-environment.yml", "-c", "context"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ansible-builder create failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ctx = tmp.path().join("context");
    assert!(ctx.join("_build/sshfleet").join(name).exists());
    let reqs = std::fs::read_to_string(ctx.join("_build/requirements.yml")).unwrap();
    assert!(
        reqs.contains(&format!("/build/sshfleet/{}", name.to_string_lossy())),
        "{reqs}"
    );
    let file = std::fs::read_to_string(ctx.join("Dockerfile"))
        .or_else(|_| std::fs::read_to_string(ctx.join("Containerfile")))
        .unwrap();
    assert!(
        file.contains("COPY _build/sshfleet/ /build/sshfleet/"),
        "{file}"
    );
}

#[test]
fn collection_builds_installs_and_documents_each_module() {
    let env = AnsibleEnv::with_collection();
    let tarball = env.path().join(format!(
        "dist/sshfleet-fleet-{}.tar.gz",
        env!("CARGO_PKG_VERSION")
    ));
    check_execution_environment(&tarball);
    let root = env.collections().join("ansible_collections/sshfleet/fleet");
    for m in MODULES {
        let bin = root.join("bin/x86_64").join(m);
        assert!(bin.exists(), "{} not installed", bin.display());
        assert!(
            std::fs::metadata(&bin).unwrap().len() <= 1 << 20,
            "{} is larger than 1 MiB",
            bin.display()
        );
        if aarch64_setup().is_some() {
            assert!(root.join("bin/aarch64").join(m).exists(), "no aarch64 {m}");
        }
    }
    let list = env
        .command("ansible-doc")
        .args(["-l", "sshfleet.fleet"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{listed}");
    for m in MODULES {
        assert!(
            listed.contains(&format!("sshfleet.fleet.{m} ")),
            "{m} not listed:\n{listed}"
        );
        let out = env
            .command("ansible-doc")
            .args(["--json", &format!("sshfleet.fleet.{m}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let d = &v[format!("sshfleet.fleet.{m}")];
        assert_eq!(d["doc"]["module"], m, "{d}");
        assert!(
            d["doc"]["options"]
                .as_object()
                .is_some_and(|o| !o.is_empty()),
            "{m}: no options documented"
        );
        assert!(
            d["examples"]
                .as_str()
                .is_some_and(|e| e.contains(&format!("sshfleet.fleet.{m}:"))),
            "{m}: examples do not use the FQCN"
        );
        assert!(d["return"].as_object().is_some(), "{m}: no RETURN");
    }
}

/// A new ed25519 public key (`ssh-keygen`), as text.
fn keygen(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// A tiny HTTP server answering `n` requests with `body` (text/plain).
fn serve_keys(body: String, n: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/deploy.keys", listener.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, t)
}

#[test]
fn collection_action_plugin_arch_cache_and_urls_on_the_fleet() {
    let fleet = Fleet::builder().hosts(3).start().unwrap();
    let env = AnsibleEnv::with_collection();
    let aarch64 = aarch64_setup();
    let h: Vec<String> = (0..3).map(|i| fleet.host(i).name().to_string()).collect();

    // `uname` shims, in a directory every fleet user can read (the env's tmp dir is 0700).
    let shims = tempfile::Builder::new()
        .prefix("sshfleet-uname-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(shims.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for arch in ["aarch64", "riscv64"] {
        let d = shims.path().join(arch);
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let shim = d.join("uname");
        std::fs::write(
            &shim,
            format!("#!/bin/sh\n[ \"$1\" = -m ] && {{ echo {arch}; exit 0; }}\nexec /usr/bin/uname \"$@\"\n"),
        )
        .unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = |arch: &str| {
        format!(
            "{}:/usr/sbin:/usr/bin:/sbin:/bin",
            shims.path().join(arch).display()
        )
    };
    let mut host_env = serde_json::Map::new();
    if aarch64.is_some() {
        host_env.insert(
            h[1].clone(),
            json!({"PATH": path("aarch64"), "SSHFLEET_MODULE_WRAPPER": "/usr/bin/qemu-aarch64"}),
        );
    }
    host_env.insert(h[2].clone(), json!({"PATH": path("riscv64")}));
    let play_extra = json!({
        "environment": "{{ host_env[inventory_hostname] | default({}) }}",
        "vars": {"host_env": host_env},
    });

    let new_key = keygen(env.path(), "new");
    let url_key = keygen(env.path(), "url");
    let (url, server) = serve_keys(format!("{}\n", url_key.trim()), 2);
    let tasks = || {
        vec![
            json!({"name": "present", "sshfleet.fleet.authorized_key": {
                "user": "deploy", "key": new_key.trim()}, "ignore_errors": true}),
            json!({"name": "become", "sshfleet.fleet.authorized_key": {
                "user": "admin", "key": new_key.trim()},
                "become": true, "become_user": "admin",
                "when": format!("inventory_hostname == '{}'", h[0])}),
            json!({"name": "url", "sshfleet.fleet.authorized_key": {
                "user": "deploy", "key": url},
                "when": format!("inventory_hostname == '{}'", h[0])}),
        ]
    };
    let x86 = |m: &str| {
        format!(
            "{m}-{}",
            sha256_hex(&module_dir("x86_64").join(format!("sshfleet_{m}")))
        )
    };
    let cache = |i: usize, user: &str| fleet.host(i).home_of(user).join(".cache/sshfleet");

    let (r, doc) = play(&env, &fleet, "first", play_extra.clone(), tasks());
    let dump = serde_json::to_string_pretty(&doc).unwrap();
    // host 0: x86_64 binary, installed into deploy's cache (0700, owned by deploy)
    assert_eq!(r[0][&h[0]]["failed"], Value::Null, "{dump}");
    let c0 = cache(0, "deploy");
    assert!(c0.join(x86("authorized_key")).exists(), "{dump}");
    let meta = std::fs::metadata(&c0).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700);
    let deploy_uid = std::fs::metadata(fleet.host(0).home_of("deploy"))
        .unwrap()
        .uid();
    assert_eq!(meta.uid(), deploy_uid);
    // under become the cache is the become user's
    assert_eq!(r[1][&h[0]]["changed"], true, "{dump}");
    let admin_cache = cache(0, "admin");
    assert!(admin_cache.join(x86("authorized_key")).exists(), "{dump}");
    let admin_uid = std::fs::metadata(fleet.host(0).home_of("admin"))
        .unwrap()
        .uid();
    assert_eq!(std::fs::metadata(&admin_cache).unwrap().uid(), admin_uid);
    assert!(
        std::fs::read_to_string(fleet.authorized_keys_path(0, "admin"))
            .unwrap()
            .contains(new_key.trim())
    );
    // the URL was fetched on the controller; the result shows it as given
    assert_eq!(r[2][&h[0]]["changed"], true, "{dump}");
    assert_eq!(r[2][&h[0]]["key"], url, "{dump}");
    assert!(
        std::fs::read_to_string(fleet.authorized_keys_path(0, "deploy"))
            .unwrap()
            .contains(url_key.trim())
    );
    // host 1: reported aarch64, got the aarch64 binary, ran it under qemu
    if let Some(dir) = &aarch64 {
        let want = format!(
            "authorized_key-{}",
            sha256_hex(&dir.join("sshfleet_authorized_key"))
        );
        assert_eq!(r[0][&h[1]]["failed"], Value::Null, "{dump}");
        assert!(cache(1, "deploy").join(&want).exists(), "{dump}");
        assert!(!cache(1, "deploy").join(x86("authorized_key")).exists());
    }
    // host 2: riscv64 fails, naming the architecture
    let msg = r[0][&h[2]]["msg"].as_str().unwrap_or_default().to_string();
    assert_eq!(r[0][&h[2]]["failed"], true, "{dump}");
    assert!(
        msg.contains("riscv64") && msg.contains("unsupported architecture"),
        "{msg}"
    );

    // second run: nothing changes, nothing is installed again (cached files untouched)
    let cached = c0.join(x86("authorized_key"));
    let mtime = std::fs::metadata(&cached).unwrap().mtime_nsec();
    let (r, doc) = play(&env, &fleet, "second", play_extra.clone(), tasks());
    let dump = serde_json::to_string_pretty(&doc).unwrap();
    for (t, hosts) in r.iter().enumerate() {
        for (host, res) in hosts {
            if *host != h[2] {
                assert_eq!(res["changed"], false, "task {t} {host}: {dump}");
            }
        }
    }
    assert_eq!(std::fs::metadata(&cached).unwrap().mtime_nsec(), mtime);
    server.join().unwrap();

    // a tampered cached binary is never run: replaced by a verified copy
    let marker = fleet.host(0).home_of("deploy").join("pwned");
    std::fs::set_permissions(&cached, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(&cached, format!("#!/bin/sh\ntouch {}\n", "$HOME/pwned")).unwrap();
    let only_first = vec![json!({"sshfleet.fleet.authorized_key": {
        "user": "deploy", "key": new_key.trim()},
        "when": format!("inventory_hostname == '{}'", h[0])})];
    let (r, doc) = play(&env, &fleet, "tampered", json!({}), only_first.clone());
    assert_eq!(r[0][&h[0]]["changed"], false, "{doc}");
    assert!(!marker.exists(), "the tampered binary ran");
    assert_eq!(
        sha256_hex(&cached),
        x86("authorized_key").split_once('-').unwrap().1
    );

    // a cache directory others can write is refused, not used
    std::fs::set_permissions(&c0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (r, doc) = play(&env, &fleet, "unsafe", json!({}), only_first);
    assert_eq!(r[0][&h[0]]["failed"], true, "{doc}");
    let msg = r[0][&h[0]]["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("writable only by it"), "{msg}");
}

/// Run a module binary (through `qemu` if given) on an args file; its JSON output.
fn run_module(qemu: Option<&Path>, bin: &Path, args: &Value, dir: &Path) -> Value {
    let file = dir.join("args.json");
    std::fs::write(&file, args.to_string()).unwrap();
    let mut cmd = match qemu {
        Some(q) => {
            let mut c = Command::new(q);
            c.arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let out = cmd.arg(&file).output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}): {}{}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The module tests' core cases, run with the aarch64 binaries under `qemu-aarch64` and with
/// the x86_64 binaries: the same results and the same files. And the short-name binary
/// (no TLS stack) refuses a key URL, naming the FQCN that fetches it.
#[test]
fn collection_aarch64_modules_match_x86_64_under_qemu() {
    let x86 = module_dir("x86_64");
    let bin = |dir: &Path, m: &str| dir.join(format!("sshfleet_{m}"));
    assert!(
        bin(&x86, "authorized_key").exists(),
        "run bash scripts/build-modules.sh"
    );
    let tmp = tempfile::tempdir().unwrap();
    let r = run_module(
        None,
        &bin(&x86, "authorized_key"),
        &json!({"user": "root", "key": "https://example.invalid/k.keys",
                "path": tmp.path().join("ak"), "manage_dir": false}),
        tmp.path(),
    );
    assert_eq!(r["failed"], true, "{r}");
    assert!(
        r["msg"]
            .as_str()
            .unwrap()
            .contains("sshfleet.fleet.authorized_key"),
        "{r}"
    );

    let Some(arm) = aarch64_setup() else { return };
    let qemu = Path::new("/usr/bin/qemu-aarch64");
    let key = keygen(tmp.path(), "k");
    let key = key.trim();
    for (label, q, dir) in [("x86_64", None, &x86), ("aarch64", Some(qemu), &arm)] {
        let d = tmp.path().join(label);
        std::fs::create_dir(&d).unwrap();
        let ak = d.join("ak");
        let mut results = Vec::new();
        let cases = [
            (
                "authorized_key",
                json!({"user": "root", "key": key, "path": ak, "manage_dir": false, "_ansible_diff": true}),
            ),
            (
                "authorized_key",
                json!({"user": "root", "key": key, "path": ak, "manage_dir": false}),
            ),
            (
                "authorized_key",
                json!({"user": "root", "key": "not a key", "path": ak}),
            ),
            (
                "copy",
                json!({"dest": d.join("f"), "content": "hello\n", "mode": "0640"}),
            ),
            (
                "copy",
                json!({"dest": d.join("f"), "content": "hello\n", "mode": "0640"}),
            ),
            ("slurp", json!({"src": d.join("f")})),
            ("slurp", json!({"src": d.join("missing")})),
        ];
        for (m, args) in cases {
            let mut v = run_module(q, &bin(dir, m), &args, &d);
            // paths differ by the per-arch directory; compare with it replaced
            let text = v.to_string().replace(d.to_str().unwrap(), "DIR");
            v = serde_json::from_str(&text).unwrap();
            results.push(v);
        }
        std::fs::write(
            tmp.path().join(format!("{label}.json")),
            serde_json::to_vec_pretty(&results).unwrap(),
        )
        .unwrap();
    }
    let a: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("x86_64.json")).unwrap()).unwrap();
    let b: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("aarch64.json")).unwrap()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[0]["changed"], true, "{a}");
    assert_eq!(a[1]["changed"], false, "{a}");
    assert_eq!(a[2]["failed"], true, "{a}");
    assert_eq!(a[5]["content"], "aGVsbG8K", "{a}");
    assert_eq!(
        std::fs::read(tmp.path().join("aarch64/ak")).unwrap(),
        format!("{key}\n").into_bytes()
    );
}
