//! ansible.posix's own integration target for `authorized_key` (from the sdist of the
//! `ansible` 14.5.0 package), run by `scripts/upstream-tests.sh` the way ansible-test runs it,
//! in a throwaway mount namespace: once with `sshfleet_authorized_key` standing in for
//! `ansible.posix.authorized_key` (a shim collection; the task files unmodified) and once
//! with upstream's own module as the control. Both must pass all 87 checks (a check is one
//! task result: a module call or an assert; the one expected failure and the one skipped
//! debug task are not counted).

use std::collections::BTreeMap;
use std::process::Command;

use crate::support::repo_root;

const CHECKS: u64 = 87;

/// Run the script; the `upstream-checks:` summary as name → number.
fn run(args: &[&str]) -> BTreeMap<String, u64> {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/upstream-tests.sh"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("upstream-checks:"))
        .unwrap_or_else(|| {
            panic!(
                "no summary from upstream-tests.sh {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
            )
        });
    println!("{args:?}: {line}");
    if !stderr.is_empty() {
        println!("{stderr}");
    }
    line.split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}

#[test]
fn upstream_authorized_key_target_passes_with_our_module() {
    let module = env!("CARGO_BIN_EXE_sshfleet_authorized_key");
    let work = repo_root().join("target/upstream-work");
    let ours = run(&[
        "--module",
        module,
        "--work",
        work.join("ours").to_str().unwrap(),
    ]);
    let control = run(&[
        "--control",
        "--work",
        work.join("control").to_str().unwrap(),
    ]);
    println!(
        "upstream authorized_key target: ours {}/{CHECKS}, control {}/{CHECKS}",
        ours["passed"], control["passed"]
    );
    for (name, r) in [("control", &control), ("ours", &ours)] {
        assert_eq!(
            r["failed"], 0,
            "{name}: failed checks (see its playbook.log)"
        );
        assert_eq!(r["passed"], CHECKS, "{name}: passed checks");
        assert_eq!(r["expected_failures"], 1, "{name}");
        assert_eq!(r["playbook_rc"], 0, "{name}");
    }
}
