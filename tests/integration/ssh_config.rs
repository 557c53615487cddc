//! The OpenSSH client-config resolver against real OpenSSH (issue 15):
//!
//! - the shared corpus (`../shared/corpus/sshconfig`: 23 real-world configs, `ssh -G`'s
//!   recorded answers) judged by its own `compare.sh`;
//! - our cases (`tests/data/sshconfig/`: Include chains with globs, Match exec/user/
//!   localuser/final/canonical, tokens, command-line options beating the files,
//!   negations, wildcards, quoting, refusals) compared live with the `ssh -G` installed
//!   here (`compare_live.sh`);
//! - a real connection to a fleet host known only by an alias in an ssh config file.
//!
//! Both comparisons need `ssh` and libnss-wrapper (`scripts/setup.sh` installs them).

use std::path::PathBuf;
use std::process::Command;

use crate::support::fleet::Fleet;
use crate::support::{Sshfleet, repo_root, sshfleet_bin};

/// The shared corpus: `$SSHFLEET_SSHCONFIG_CORPUS`, else `../shared/corpus/sshconfig`
/// beside the repository. Never copied into the repository.
fn corpus() -> PathBuf {
    let dir = std::env::var_os("SSHFLEET_SSHCONFIG_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/corpus/sshconfig"));
    assert!(
        dir.join("compare.sh").exists(),
        "ssh_config corpus not found at {} (set SSHFLEET_SSHCONFIG_CORPUS)",
        dir.display()
    );
    dir
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run comparison script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn shared_corpus_matches_ssh_g() {
    let dir = corpus();
    let template = format!(
        "{} ssh-config -F {{config}} {{host}}",
        sshfleet_bin().display()
    );
    let (ok, out) = run(Command::new(dir.join("compare.sh")).arg(&template));
    let summary = out.lines().last().unwrap_or_default().to_string();
    assert!(ok && summary.ends_with(" 0 failed"), "{out}");
    // 23 cases, 2153 comparisons: a shrunken corpus must not pass silently.
    let passed: usize = summary
        .split(' ')
        .next()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(passed >= 2153, "{summary}");
}

#[test]
fn own_cases_match_live_ssh_g() {
    let script = repo_root().join("tests/data/sshconfig/compare_live.sh");
    let (ok, out) = run(Command::new(script).arg(corpus()).arg(sshfleet_bin()));
    let summary = out.lines().last().unwrap_or_default();
    assert!(ok && summary.ends_with(" 0 failed"), "{out}");
    let cases: usize = summary
        .split(' ')
        .next()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    assert!(cases >= 7, "{summary}");
}

/// A host the inventory names only by an alias that ~/.ssh/config-style configuration
/// maps to the real address, port, user and key; also `-F` inside the inventory's
/// ansible_ssh_common_args, and `--ssh-config none` turning it off.
#[test]
fn alias_from_ssh_config_reaches_the_host() {
    let fleet = Fleet::builder().hosts(1).start().expect("start test fleet");
    let h = fleet.host(0);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host web-alias\n    HostName {}\n    Port {}\n    User {}\n    IdentityFile {}\n    UserKnownHostsFile {}\n    StrictHostKeyChecking yes\n",
            h.addr(),
            h.port(),
            fleet.users()[0],
            fleet.client_key().display(),
            fleet.known_hosts().display(),
        ),
    )
    .unwrap();
    let inv = dir.path().join("hosts");
    std::fs::write(&inv, "web-alias\n").unwrap();
    Sshfleet::new()
        .inventory_file(&inv)
        .arg("--ssh-config")
        .arg(&cfg)
        .args(["ping", "all"])
        .run()
        .success()
        .stdout_contains("web-alias");
    // The same through -F in the inventory's ssh arguments.
    let inv2 = dir.path().join("hosts2");
    std::fs::write(
        &inv2,
        format!("web-alias ansible_ssh_common_args='-F {}'\n", cfg.display()),
    )
    .unwrap();
    Sshfleet::new()
        .inventory_file(&inv2)
        .args(["ping", "all"])
        .run()
        .success();
    // `--ssh-config none` beats the inventory's -F: the alias no longer resolves.
    Sshfleet::new()
        .inventory_file(&inv2)
        .args(["--ssh-config", "none", "-T", "3", "ping", "all"])
        .run()
        .failure();
    // HostKeyAlias: the host key is looked up under the alias (and only there).
    let kh = std::fs::read_to_string(fleet.known_hosts()).unwrap();
    let marker = format!("[{}]:{} ", h.addr(), h.port());
    let aliased: String = kh
        .lines()
        .filter(|l| l.starts_with(&marker))
        .map(|l| format!("key-alias.example {}\n", &l[marker.len()..]))
        .collect();
    assert!(
        !aliased.is_empty(),
        "fleet known_hosts has no line for {marker}"
    );
    let kh_alias = dir.path().join("known_hosts_alias");
    std::fs::write(&kh_alias, &aliased).unwrap();
    let cfg_alias = dir.path().join("ssh_config_alias");
    let base = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("UserKnownHostsFile {}", fleet.known_hosts().display()),
        &format!("UserKnownHostsFile {}", kh_alias.display()),
    );
    std::fs::write(
        &cfg_alias,
        format!("{base}    HostKeyAlias Key-Alias.example\n"),
    )
    .unwrap();
    Sshfleet::new()
        .inventory_file(&inv)
        .arg("--ssh-config")
        .arg(&cfg_alias)
        .args(["ping", "all"])
        .run()
        .success();
    // Without the alias the same known_hosts file does not vouch for the host.
    std::fs::write(&cfg_alias, base).unwrap();
    Sshfleet::new()
        .inventory_file(&inv)
        .arg("--ssh-config")
        .arg(&cfg_alias)
        .args(["ping", "all"])
        .run()
        .failure();
    // And `ssh-config` shows the resolution, with the inventory's variables first.
    Sshfleet::new()
        .inventory_file(&inv2)
        .args(["ssh-config", "web-alias"])
        .run()
        .success()
        .stdout_contains(&format!("hostname {}\n", h.addr()))
        .stdout_contains(&format!("port {}\n", h.port()));
}
