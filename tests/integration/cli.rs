//! The binary's global behaviour: help, version, unimplemented commands fail honestly.

use std::process::Command;

fn sshfleet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sshfleet"))
}

#[test]
fn help_lists_ansible_style_global_flags() {
    let out = sshfleet().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--inventory",
        "--limit",
        "--forks",
        "--user",
        "--private-key",
        "--check",
        "--diff",
        "--json",
        "--verbose",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn version_prints_package_version() {
    let out = sshfleet().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("sshfleet {}", env!("CARGO_PKG_VERSION"))
    );
}
