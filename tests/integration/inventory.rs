//! Differential tests of the inventory reader against real ansible-core.
//!
//! For every entry of `tests/inventories/` (a directory with the inventory files and a
//! `case.json`), `inventory_oracle.py` asks ansible-core — in one Python process, through
//! `ansible-inventory`'s own CLI code and the InventoryManager behind `--list-hosts` — for
//! `--list` (with and without limits), `--host` for every host, and the hosts selected by
//! every group name plus the case's patterns under every limit. We compute the same through
//! `sshfleet::inventory` and require equal results. Error cases require our error to name the
//! file and line, and (where the case says so) that ansible-core also failed to parse the file.
//! A few tests also run the `sshfleet` binary against `ansible-inventory` / `ansible` directly.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sshfleet::inventory::Inventory;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv_bin(name: &str) -> PathBuf {
    let p = manifest().join("target/venv/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh to create the ansible-core venv",
        p.display()
    );
    p
}

fn corpus() -> PathBuf {
    manifest().join("tests/inventories")
}

/// A scratch directory and environment in which Ansible sees no user or system config.
struct AnsibleEnv {
    dir: tempfile::TempDir,
}

impl AnsibleEnv {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ansible.cfg"), "[defaults]\n").expect("write cfg");
        AnsibleEnv { dir }
    }
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir.path())
            .env("ANSIBLE_HOME", self.dir.path().join("home"))
            .env("ANSIBLE_CONFIG", self.dir.path().join("ansible.cfg"))
            .env("ANSIBLE_LOCAL_TEMP", self.dir.path().join("tmp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
            .env_remove("ANSIBLE_INVENTORY");
        c
    }
}

fn run_oracle() -> Value {
    let env = AnsibleEnv::new();
    let out = env.dir.path().join("oracle.json");
    let status = env
        .command(&venv_bin("python3"))
        .arg(manifest().join("tests/integration/inventory_oracle.py"))
        .arg(corpus())
        .arg(&out)
        .status()
        .expect("run inventory_oracle.py");
    assert!(status.success(), "inventory_oracle.py failed: {status}");
    serde_json::from_slice(&std::fs::read(&out).expect("oracle output")).expect("oracle JSON")
}

/// Paths where two JSON values differ, for a readable failure message.
fn json_diff(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = format!("{path}/{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => json_diff(&p, x, y, out),
                    (Some(x), None) => out.push(format!("{p}: only in sshfleet: {x}")),
                    (None, Some(y)) => out.push(format!("{p}: only in ansible: {y}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                json_diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if ours == theirs => {}
        _ => out.push(format!("{path}: sshfleet {ours} != ansible {theirs}")),
    }
}

fn case_sources(dir: &Path, case: &Value) -> Vec<String> {
    case["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| {
            let s = s.as_str().expect("source string");
            if s.contains(',') {
                s.to_string()
            } else {
                dir.join(s).to_string_lossy().into_owned()
            }
        })
        .collect()
}

fn limit_arg(dir: &Path, limit: &Value) -> Option<String> {
    limit
        .as_str()
        .map(|l| l.replace("LIMITFILE", &dir.join("limit.txt").to_string_lossy()))
}

fn check_error_case(
    name: &str,
    dir: &Path,
    case: &Value,
    oracle: &Value,
    failures: &mut Vec<String>,
) {
    let spec = &case["error"];
    let file = spec["file"].as_str().expect("error.file");
    let line = spec["line"].as_u64().expect("error.line");
    let contains = spec["contains"].as_str().unwrap_or("");
    match Inventory::load(&case_sources(dir, case)) {
        Ok(_) => failures.push(format!(
            "{name}: expected an error at {file}:{line}, but the inventory loaded"
        )),
        Err(e) => {
            let msg = e.to_string();
            let want = format!("{}:{line}:", dir.join(file).display());
            if !msg.contains(&want) || !msg.contains(contains) {
                failures.push(format!(
                    "{name}: error {msg:?} should name {want:?} and say {contains:?}"
                ));
            }
        }
    }
    if spec["ansible_fails"].as_bool() == Some(true) {
        let processed = oracle["processed_sources"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if processed.iter().any(|p| p.as_str() == Some(file)) {
            failures.push(format!(
                "{name}: ansible-core parsed {file}, but the case expects it to fail"
            ));
        }
    }
}

fn check_case(name: &str, dir: &Path, case: &Value, oracle: &Value, failures: &mut Vec<String>) {
    let fail = |failures: &mut Vec<String>, what: String| failures.push(format!("{name}: {what}"));
    if let Some(e) = oracle.get("oracle_error") {
        return fail(failures, format!("the oracle failed: {e}"));
    }
    if case.get("error").is_some() {
        return check_error_case(name, dir, case, oracle, failures);
    }
    // ansible-core must have parsed every source (a directory is reported file by file).
    let canon = |s: &str| {
        dir.join(s)
            .canonicalize()
            .unwrap_or_else(|_| PathBuf::from(s))
    };
    let processed: Vec<PathBuf> = oracle["processed_sources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| canon(p.as_str().unwrap_or_default()))
        .collect();
    for s in case["sources"].as_array().cloned().unwrap_or_default() {
        let s = s.as_str().unwrap_or_default();
        if !(processed.contains(&canon(s)) || dir.join(s).is_dir()) {
            fail(
                failures,
                format!("ansible-core did not parse source {s}: {processed:?}"),
            );
        }
    }
    let inv = match Inventory::load(&case_sources(dir, case)) {
        Ok(inv) => inv,
        Err(e) => return fail(failures, format!("load failed: {e}")),
    };
    // --list, per limit
    for (limit_key, theirs) in oracle["list"].as_object().expect("list") {
        let limit: Value = serde_json::from_str(limit_key).expect("limit key");
        match inv.list_json(limit_arg(dir, &limit).as_deref()) {
            Ok(ours) => {
                let mut d = Vec::new();
                json_diff("", &ours, theirs, &mut d);
                for line in d {
                    fail(failures, format!("--list (limit {limit}): {line}"));
                }
            }
            Err(e) => fail(failures, format!("--list (limit {limit}) failed: {e}")),
        }
    }
    // --host H
    for (host, theirs) in oracle["host"].as_object().expect("host") {
        let ours = match inv.select(host, None) {
            Ok(v) if v.len() == 1 => inv.host_vars(&v[0]).map(Value::Object),
            _ => None,
        };
        match (ours, theirs.get("error")) {
            (None, Some(_)) => {}
            (Some(o), None) => {
                let mut d = Vec::new();
                json_diff("", &o, theirs, &mut d);
                for line in d {
                    fail(failures, format!("--host {host}: {line}"));
                }
            }
            (o, t) => fail(
                failures,
                format!("--host {host}: sshfleet {o:?}, ansible {t:?}"),
            ),
        }
    }
    // PATTERN --list-hosts, per limit
    let ambiguous = oracle["ambiguous_order"].as_bool().unwrap_or(false);
    for entry in oracle["select"].as_array().expect("select") {
        let pattern = entry["pattern"].as_str().expect("pattern");
        let limit = limit_arg(dir, &entry["limit"]);
        let label = format!("pattern {pattern:?} limit {:?}", entry["limit"].as_str());
        match (inv.select(pattern, limit.as_deref()), entry.get("error")) {
            (Err(_), Some(_)) => {}
            (Ok(mut ours), None) => {
                let mut theirs: Vec<String> = entry["hosts"]
                    .as_array()
                    .expect("hosts")
                    .iter()
                    .map(|h| h.as_str().unwrap_or_default().to_string())
                    .collect();
                if ambiguous {
                    // ansible-core's own order differs from run to run here (Python set order).
                    ours.sort();
                    theirs.sort();
                }
                if ours != theirs {
                    fail(
                        failures,
                        format!("{label}: sshfleet {ours:?} != ansible {theirs:?}"),
                    );
                }
            }
            (Ok(ours), Some(e)) => fail(
                failures,
                format!("{label}: ansible fails ({e}), sshfleet gives {ours:?}"),
            ),
            (Err(e), None) => fail(
                failures,
                format!(
                    "{label}: sshfleet fails ({e}), ansible gives {}",
                    entry["hosts"]
                ),
            ),
        }
    }
}

#[test]
fn inventory_corpus_matches_ansible() {
    let oracle = run_oracle();
    let mut names: Vec<String> = std::fs::read_dir(corpus())
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("case.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() >= 25,
        "the corpus should hold at least 25 inventories, has {}",
        names.len()
    );
    let mut failures = Vec::new();
    let mut compared = 0;
    for name in &names {
        let dir = corpus().join(name);
        let case: Value =
            serde_json::from_slice(&std::fs::read(dir.join("case.json")).expect("case.json"))
                .unwrap_or_else(|e| panic!("{name}/case.json: {e}"));
        let Some(o) = oracle.get(name) else {
            failures.push(format!("{name}: missing from the oracle output"));
            continue;
        };
        compared += o["select"].as_array().map_or(0, Vec::len)
            + o["host"].as_object().map_or(0, |m| m.len());
        check_case(name, &dir, &case, o, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} difference(s) from ansible-core over {} inventories ({compared} comparisons):\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

fn sshfleet(env: &AnsibleEnv) -> Command {
    env.command(Path::new(env!("CARGO_BIN_EXE_sshfleet")))
}

/// The binary's output is byte-identical to ansible-inventory's for `--list` and `--host`.
#[test]
fn inventory_cli_output_is_byte_identical() {
    let env = AnsibleEnv::new();
    for (case, extra) in [
        ("01_ini_basic/hosts.ini", vec!["--list"]),
        ("15_precedence/hosts", vec!["--list"]),
        (
            "09_yaml_basic/inventory.yml",
            vec!["--list", "--limit", "production"],
        ),
        ("15_precedence/hosts", vec!["--host", "w1"]),
        ("37_big_integers/hosts.yml", vec!["--list"]),
        ("37_big_integers/hosts.ini", vec!["--host", "i1"]),
        ("37_big_integers/hosts.json", vec!["--list"]),
    ] {
        let inv = corpus().join(case);
        let theirs = env
            .command(&venv_bin("ansible-inventory"))
            .arg("-i")
            .arg(&inv)
            .args(&extra)
            .output()
            .expect("ansible-inventory");
        assert!(
            theirs.status.success(),
            "ansible-inventory failed: {}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        let (flags, limit): (Vec<&str>, Vec<&str>) = if extra.len() == 3 {
            (vec![extra[0]], vec!["--limit", extra[2]])
        } else {
            (extra.clone(), vec![])
        };
        let ours = sshfleet(&env)
            .arg("-i")
            .arg(&inv)
            .args(&limit)
            .arg("inventory")
            .args(&flags)
            .output()
            .expect("sshfleet");
        assert!(
            ours.status.success(),
            "sshfleet failed: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "{case} {extra:?}"
        );
    }
}

/// `sshfleet hosts` prints what `ansible PATTERN --list-hosts` lists, without its decoration.
#[test]
fn hosts_cli_matches_ansible_list_hosts() {
    let env = AnsibleEnv::new();
    let inv = corpus().join("21_patterns/hosts");
    for (pattern, limit) in [
        ("dc1:!canary", None),
        ("web[1:3]:db", Some("!web3.dc1")),
        ("~web[24]", None),
    ] {
        let mut a = env.command(&venv_bin("ansible"));
        a.arg(pattern).arg("-i").arg(&inv).arg("--list-hosts");
        let mut s = sshfleet(&env);
        s.arg("-i").arg(&inv);
        if let Some(l) = limit {
            a.arg("--limit").arg(l);
            s.arg("--limit").arg(l);
        }
        let theirs = a.output().expect("ansible");
        assert!(
            theirs.status.success(),
            "ansible failed: {}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        let theirs: Vec<String> = String::from_utf8_lossy(&theirs.stdout)
            .lines()
            .skip(1)
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let ours = s.arg("hosts").arg(pattern).output().expect("sshfleet");
        assert!(
            ours.status.success(),
            "sshfleet failed: {}",
            String::from_utf8_lossy(&ours.stderr)
        );
        let ours: Vec<String> = String::from_utf8_lossy(&ours.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs, "pattern {pattern} limit {limit:?}");
    }
}

/// Bad input: a clear error naming file and line, a non-zero exit, nothing on stdout.
#[test]
fn inventory_cli_errors_name_file_and_line() {
    let env = AnsibleEnv::new();
    for (case, line) in [
        ("27_err_bad_range/hosts", 3),
        ("31_err_yaml_shape/inv.yml", 5),
        ("33_err_vault/hosts", 2),
    ] {
        let inv = corpus().join(case);
        let out = sshfleet(&env)
            .arg("-i")
            .arg(&inv)
            .args(["inventory", "--list"])
            .output()
            .expect("sshfleet");
        assert!(!out.status.success(), "{case}: should fail");
        assert!(
            out.stdout.is_empty(),
            "{case}: printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!(":{line}:")), "{case}: {err}");
        assert!(!err.contains("panicked"), "{case}: {err}");
        if case.starts_with("33") {
            assert!(
                err.contains("vault-encrypted values are not supported"),
                "{err}"
            );
            assert!(
                !err.contains("6231336539"),
                "the ciphertext must not be echoed: {err}"
            );
        }
    }
    let out = sshfleet(&env)
        .args(["-i", "/nonexistent/inventory", "hosts", "all"])
        .output()
        .expect("sshfleet");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/inventory"));
}

/// The example inventories in `inventory/` (used in the README): the INI and YAML forms
/// describe the same fleet, and each — and the directory as a whole — reads as ansible-core
/// reads it.
#[test]
fn example_inventories_agree_with_ansible_and_each_other() {
    let env = AnsibleEnv::new();
    let dir = manifest().join("inventory");
    let mut seen: Vec<Value> = Vec::new();
    for source in [dir.join("hosts.ini"), dir.join("hosts.yml"), dir.clone()] {
        let theirs = env
            .command(&venv_bin("ansible-inventory"))
            .arg("-i")
            .arg(&source)
            .arg("--list")
            .output()
            .expect("ansible-inventory");
        assert!(
            theirs.status.success(),
            "{}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        let theirs: Value = serde_json::from_slice(&theirs.stdout).expect("ansible JSON");
        let inv = Inventory::load(&[source.to_string_lossy().into_owned()]).expect("example loads");
        assert!(inv.warnings().is_empty(), "{:?}", inv.warnings());
        let ours = inv.to_list_json();
        let mut d = Vec::new();
        json_diff("", &ours, &theirs, &mut d);
        assert!(d.is_empty(), "{}: {d:#?}", source.display());
        assert!(
            ours["_meta"]["hostvars"]
                .as_object()
                .is_some_and(|h| h.len() == 9)
        );
        seen.push(ours);
    }
    assert_eq!(
        seen[0], seen[1],
        "hosts.ini and hosts.yml describe different fleets"
    );
    // The connection specs the SSH layer gets from them.
    let inv =
        Inventory::load(&[dir.join("hosts.ini").to_string_lossy().into_owned()]).expect("load");
    let ca = inv.conn_spec("ca01").expect("ca01 spec");
    assert_eq!(
        (ca.address.as_str(), ca.port, ca.user.as_deref()),
        ("10.20.0.5", 2222, Some("deploy"))
    );
    let stg = inv.conn_spec("stg-web01").expect("stg spec");
    assert_eq!(stg.proxy_jump.as_deref(), Some("ops@203.0.113.10"));
    assert!(stg.identity_files[0].ends_with(".ssh/fleet_staging_ed25519"));
    assert_eq!(
        inv.select("web:&prod:!web03", None).expect("select"),
        ["web01", "web02"]
    );
}
