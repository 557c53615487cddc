//! ansible.posix's own integration target for `authorized_key` (from the sdist of the
//! `ansible` 14.5.0 package), run by `scripts/upstream-tests.sh` the way ansible-test runs it,
//! in a throwaway mount namespace: once with `sshfleet_authorized_key` standing in for
//! `ansible.posix.authorized_key` (a shim collection; the task files unmodified) and once
//! with upstream's own module as the control. Both must pass all 87 checks (a check is one
//! task result: a module call or an assert; the one expected failure and the one skipped
//! debug task are not counted).
//!
//! Also ansible-core's own `copy` target with `sshfleet.fleet.copy` standing in for the
//! builtin (`scripts/upstream-copy.sh`; see tests/upstream/copy-failures.md).

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

/// ansible-core's own `copy` target (the sdist of the installed ansible-core), run by
/// `scripts/upstream-copy.sh` with the short name `copy` redirected to `sshfleet.fleet.copy`:
/// at least this many checks pass (all of them on 2026-12-03; the goal was 475), every
/// failing one is listed with its reason in tests/upstream/copy-failures.md, and the
/// target's `ignore_errors` tasks fail as they do with the builtin. The control run with the
/// builtin (`--control`) is recorded in that file, not repeated here (CI time).
const COPY_MIN_PASSED: u64 = 491;
const COPY_EXPECTED_FAILURES: u64 = 15;

/// The `target/file.yml:LINE` of each check listed in tests/upstream/copy-failures.md (lines
/// starting with "- `").
fn known_copy_failures() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("tests/upstream/copy-failures.md"))
        .expect("tests/upstream/copy-failures.md");
    text.lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn upstream_copy_target_with_the_collection_copy() {
    let module = env!("CARGO_BIN_EXE_sshfleet_copy");
    let work = repo_root().join("target/upstream-work/copy-ours");
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/upstream-copy.sh"))
        .args(["--module", module, "--work", work.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("upstream-checks:"))
        .unwrap_or_else(|| panic!("no summary from upstream-copy.sh\n{stdout}\n{stderr}"));
    let r: BTreeMap<String, u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect();
    // FAILED: TASK [ACTION] .../targets/copy/tasks/FILE.yml:LINE: MSG
    let known = known_copy_failures();
    let unknown: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("FAILED: "))
        .filter(|l| {
            let at = l
                .split_whitespace()
                .find_map(|w| w.split_once("/targets/copy/tasks/").map(|(_, p)| p))
                .map(|p| p.trim_end_matches(':'))
                .unwrap_or("");
            !known.iter().any(|k| k == at)
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "failures not listed in tests/upstream/copy-failures.md:\n{}",
        unknown.join("\n")
    );
    assert_eq!(r["expected_failures"], COPY_EXPECTED_FAILURES, "{line}");
    assert!(
        r["passed"] >= COPY_MIN_PASSED,
        "passed {} < {COPY_MIN_PASSED} (see {})",
        r["passed"],
        work.join("playbook.log").display()
    );
}
