//! Differential test of ansible.cfg / `ANSIBLE_*` / command-line / inventory precedence against
//! real ansible-core on the test fleet.
//!
//! For every combination in [`corpus`], in a scratch directory with its own `HOME` (so no
//! user or system ansible.cfg leaks in), the same environment, working directory, flags and
//! inventory are given to `ansible HOST -m ping -vvv` and to `sshfleet config --host HOST
//! --json` + `sshfleet ping --json`. The options of the first `SSH: EXEC` line Ansible prints
//! (parsed with the same ssh-argument parser sshfleet uses, minus the five options Ansible
//! always adds by itself) must equal sshfleet's ssh option list in order, and the values that
//! decide the connection (user, port, identity files, timeout, host key checking, become user)
//! must be equal; and both must reach (or fail to reach) the same hosts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;
use sshfleet::inventory::conn::parse_ssh_args;

use crate::support::fleet::Fleet;
use crate::support::{sshfleet_bin, venv_bin};

/// One combination of ansible.cfg, environment, flags and inventory. In every string, `{K}` is
/// the fleet's private key, `{BADK}` a key no host accepts, `{KH}` the fleet's known_hosts,
/// `{P1}`/`{P2}` the two hosts' ports, `{D}` the case directory.
struct Case {
    name: &'static str,
    /// ansible.cfg in the working directory.
    cfg: Option<&'static str>,
    /// `~/.ansible.cfg`.
    home_cfg: Option<&'static str>,
    /// A config file elsewhere, named by `ANSIBLE_CONFIG`.
    env_cfg: Option<&'static str>,
    /// Make the working directory world-writable (Ansible then skips its ansible.cfg).
    world_writable: bool,
    env: &'static [(&'static str, &'static str)],
    cli: &'static [&'static str],
    /// Extra inventory variables of host01 and host02 (INI `k=v` words).
    host_vars: [&'static str; 2],
    /// Which hosts are expected to be reached (a sanity check that the case tests something).
    reach: [bool; 2],
}

const fn case(name: &'static str) -> Case {
    Case {
        name,
        cfg: None,
        home_cfg: None,
        env_cfg: None,
        world_writable: false,
        env: &[],
        cli: &[],
        host_vars: ["", ""],
        reach: [true, true],
    }
}

/// Lets Ansible become an unprivileged user on hosts without setfacl (it only changes how
/// Ansible shares its module file with that user; sshfleet has no module files).
const BECOME_ENV: &[(&str, &str)] = &[("ANSIBLE_SHELL_ALLOW_WORLD_READABLE_TEMP", "1")];

fn corpus() -> Vec<Case> {
    vec![
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {K}\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            ..case("cfg_user_key_known_hosts")
        },
        Case {
            env_cfg: Some(
                "[defaults]\nremote_user = admin\nprivate_key_file = keys/fleet\nhost_key_checking = False\n[ssh_connection]\nssh_args = -o UserKnownHostsFile=/dev/null\n",
            ),
            ..case("ansible_config_env_relative_key")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = nosuchuser\nprivate_key_file = {BADK}\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            env: &[
                ("ANSIBLE_REMOTE_USER", "admin"),
                ("ANSIBLE_PRIVATE_KEY_FILE", "{K}"),
            ],
            ..case("env_beats_cfg")
        },
        Case {
            env: &[
                ("ANSIBLE_REMOTE_USER", "nosuchuser"),
                ("ANSIBLE_PRIVATE_KEY_FILE", "{BADK}"),
                ("ANSIBLE_SSH_COMMON_ARGS", "-o UserKnownHostsFile={KH}"),
            ],
            cli: &["-u", "backup", "--private-key", "{K}"],
            ..case("cli_beats_env")
        },
        Case {
            cfg: Some(
                "[defaults]\nprivate_key_file = {K}\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            cli: &["-u", "nosuchuser", "--private-key", "{BADK}"],
            host_vars: ["ansible_user=deploy ansible_ssh_private_key_file={K}", ""],
            reach: [true, false],
            ..case("inventory_beats_cli")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = nosuchuser\n[ssh_connection]\nssh_args = -o User=admin -o IdentityFile={K} -o UserKnownHostsFile={KH}\n",
            ),
            host_vars: ["ansible_user=nosuchuser", ""],
            ..case("ssh_args_first_value_wins")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {K}\n[ssh_connection]\nssh_args = -o Port={P2}\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            ..case("ssh_args_port_beats_ansible_port")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nhost_key_checking = False\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile=/dev/null\n",
            ),
            env: &[("ANSIBLE_PRIVATE_KEY_FILE", "{K}")],
            ..case("host_key_checking_off_in_cfg")
        },
        Case {
            env: &[
                ("ANSIBLE_REMOTE_USER", "deploy"),
                ("ANSIBLE_PRIVATE_KEY_FILE", "{K}"),
                ("ANSIBLE_SSH_COMMON_ARGS", "-o UserKnownHostsFile=/dev/null"),
            ],
            reach: [false, false],
            ..case("host_key_checking_default_strict")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {K}\nhost_key_checking = True\n[ssh_connection]\nhost_key_checking = False\nssh_extra_args = -o UserKnownHostsFile=/dev/null\n",
            ),
            ..case("ssh_connection_section_beats_defaults")
        },
        Case {
            cfg: Some("[defaults]\nhost_key_checking = False\n"),
            env: &[
                ("ANSIBLE_HOST_KEY_CHECKING", "False"),
                ("ANSIBLE_SSH_HOST_KEY_CHECKING", "yes"),
                ("ANSIBLE_REMOTE_USER", "deploy"),
                ("ANSIBLE_PRIVATE_KEY_FILE", "{K}"),
                ("ANSIBLE_SSH_EXTRA_ARGS", "-o UserKnownHostsFile=/dev/null"),
            ],
            reach: [false, false],
            ..case("last_env_variable_wins")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {K}\ntimeout = 17\n[ssh_connection]\ntimeout = 9\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            ..case("timeout_from_defaults_section")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {K}\ntimeout = 17\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH} -o ConnectTimeout=2\n",
            ),
            env: &[("ANSIBLE_TIMEOUT", "8"), ("ANSIBLE_SSH_TIMEOUT", "7")],
            cli: &["-T", "6"],
            host_vars: ["", "ansible_timeout=33"],
            ..case("timeout_env_cli_inventory")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {K}\nremote_port = {P1}\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            host_vars: ["ansible_port=", ""],
            ..case("remote_port_from_cfg")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {K}\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile=/nonexistent\n",
            ),
            env: &[("ANSIBLE_SSH_EXTRA_ARGS", "-o ConnectTimeout=3")],
            host_vars: ["ansible_ssh_common_args='-o UserKnownHostsFile={KH}'", ""],
            reach: [true, false],
            ..case("inventory_common_args_replace_cfg")
        },
        Case {
            cfg: Some(
                "[DEFAULT]\nremote_user = deploy\nssh_common_args = -o UserKnownHostsFile={KH}\n[defaults]\nprivate_key_file = {K}\n[ssh_connection]\n",
            ),
            ..case("default_section_applies_to_existing_sections")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = \"deploy\"\nprivate_key_file = {K} ; a comment\n[ssh_connection]\nssh_args = -o UserKnownHostsFile={KH} ; a comment\n    -o ServerAliveInterval=5\nssh_common_args = '-o ConnectTimeout=5'\n",
            ),
            ..case("quotes_comments_continuation_lines")
        },
        // A quoted path is resolved first and unquoted after (ansible-core's ensure_type), so
        // the quotes stay inside: neither tool finds that key.
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = '{K}'\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            reach: [false, false],
            ..case("quoted_path_keeps_its_quotes")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {{CWD}}/keys/$KEYNAME\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            env: &[("KEYNAME", "fleet")],
            ..case("cwd_and_env_var_in_path")
        },
        Case {
            cfg: Some("[defaults]\nremote_user = nosuchuser\n"),
            home_cfg: Some(
                "[defaults]\nremote_user = backup\nprivate_key_file = ~/../keys/fleet\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            world_writable: true,
            ..case("world_writable_cwd_skipped_for_home_cfg")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {K}\n[privilege_escalation]\nbecome = True\nbecome_user = backup\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            env: BECOME_ENV,
            host_vars: ["", "ansible_become=false"],
            ..case("become_from_cfg_inventory_off")
        },
        Case {
            cfg: Some(
                "[defaults]\nremote_user = deploy\nprivate_key_file = {K}\n[ssh_connection]\nssh_common_args = -o UserKnownHostsFile={KH}\n",
            ),
            env: &[
                ("ANSIBLE_BECOME_USER", "backup"),
                ("ANSIBLE_SHELL_ALLOW_WORLD_READABLE_TEMP", "1"),
            ],
            cli: &["-b", "--become-user", "admin"],
            host_vars: ["", "ansible_become_user=root"],
            ..case("become_cli_beats_env_inventory_beats_cli")
        },
    ]
}

/// Everything a case run needs to know about the fleet.
struct World {
    fleet: Fleet,
    bad_key: PathBuf,
    _tmp: tempfile::TempDir,
}

fn subst(s: &str, w: &World, dir: &Path) -> String {
    s.replace("{K}", &w.fleet.client_key().to_string_lossy())
        .replace("{BADK}", &w.bad_key.to_string_lossy())
        .replace("{KH}", &w.fleet.known_hosts().to_string_lossy())
        .replace("{P1}", &w.fleet.host(0).port().to_string())
        .replace("{P2}", &w.fleet.host(1).port().to_string())
        .replace("{D}", &dir.to_string_lossy())
}

fn copy_key(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The prepared directory of one case: its working directory, environment and argv prefix.
struct Prepared {
    root: PathBuf,
    cwd: PathBuf,
    env: Vec<(String, String)>,
    cli: Vec<String>,
}

fn prepare(c: &Case, w: &World, root: &Path) -> Prepared {
    use std::os::unix::fs::PermissionsExt;
    let cwd = root.join("work");
    let home = root.join("home");
    for d in [&cwd, &home] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Keys reachable by relative paths: work/keys/fleet, home/../keys/fleet, cfgdir/keys/fleet.
    copy_key(&w.fleet.client_key(), &cwd.join("keys/fleet"));
    copy_key(&w.fleet.client_key(), &root.join("keys/fleet"));
    copy_key(&w.fleet.client_key(), &root.join("cfgdir/keys/fleet"));
    if let Some(t) = c.cfg {
        std::fs::write(cwd.join("ansible.cfg"), subst(t, w, root)).unwrap();
    }
    if let Some(t) = c.home_cfg {
        std::fs::write(home.join(".ansible.cfg"), subst(t, w, root)).unwrap();
    }
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".into(), home.to_string_lossy().into_owned()),
        (
            "ANSIBLE_HOME".into(),
            root.join("ansible_home").to_string_lossy().into_owned(),
        ),
        (
            "ANSIBLE_SSH_CONTROL_PATH_DIR".into(),
            root.join("cp").to_string_lossy().into_owned(),
        ),
        ("ANSIBLE_NOCOLOR".into(), "1".into()),
        (
            "ANSIBLE_PYTHON_INTERPRETER".into(),
            "/usr/bin/python3".into(),
        ),
    ];
    if let Some(t) = c.env_cfg {
        let d = root.join("cfgdir");
        std::fs::write(d.join("ansible.cfg"), subst(t, w, root)).unwrap();
        env.push(("ANSIBLE_CONFIG".into(), d.to_string_lossy().into_owned()));
    }
    for (k, v) in c.env {
        env.push((k.to_string(), subst(v, w, root)));
    }
    let inv = format!(
        "[fleet]\nhost01 ansible_host=127.0.0.1 ansible_port={} {}\nhost02 ansible_host=127.0.0.1 ansible_port={} {}\n",
        w.fleet.host(0).port(),
        subst(c.host_vars[0], w, root),
        w.fleet.host(1).port(),
        subst(c.host_vars[1], w, root),
    );
    // `ansible_port=` (empty) means "no port from the inventory" for host01.
    let inv = inv.replace(
        &format!("ansible_port={} ansible_port=", w.fleet.host(0).port()),
        "",
    );
    std::fs::write(root.join("inventory.ini"), inv).unwrap();
    let mode = if c.world_writable { 0o777 } else { 0o755 };
    std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(mode)).unwrap();
    let mut cli = vec![
        "-i".to_string(),
        root.join("inventory.ini").to_string_lossy().into_owned(),
    ];
    cli.extend(c.cli.iter().map(|a| subst(a, w, root)));
    Prepared {
        root: root.to_path_buf(),
        cwd,
        env,
        cli,
    }
}

fn command(p: &Prepared, program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(&p.cwd)
        .env_clear()
        .envs(p.env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Words of a POSIX shell command line (as `shlex.quote` writes them).
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// What one connection attempt used, as compared between the two tools.
#[derive(Debug, PartialEq)]
struct Used {
    /// (option, value) in command-line order.
    options: Vec<(String, String)>,
    user: String,
    port: u64,
    identity_files: Vec<String>,
    timeout: u64,
    strict_host_key_checking: String,
    /// The become user, when the module runs with become.
    become_user: Option<String>,
    reached: bool,
}

/// Options Ansible's ssh plugin always adds by itself (not from any setting sshfleet reads).
const ANSIBLE_OWN: &[&str] = &[
    "kbdinteractiveauthentication",
    "preferredauthentications",
    "passwordauthentication",
    "controlpath",
    "numberofpasswordprompts",
];

fn dequote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
        .to_string()
}

fn first(opts: &[(String, String)], key: &str) -> Option<String> {
    opts.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// `ansible all -m ping -vvv -f 1` for the case: what each host's connection used. With one
/// fork the hosts run one after the other in inventory order, and each host's first `SSH:
/// EXEC` runs `echo ~USER` (Ansible looks up the remote home first), which splits the lines.
fn ansible_side(p: &Prepared, hosts: &[&str], local_user: &str) -> (Vec<Used>, String) {
    let out = command(p, &venv_bin().join("ansible"))
        .args(["all", "-m", "ping", "-vvv", "-f", "1"])
        .args(&p.cli)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    stop_control_masters(&p.root.join("cp"));
    let mut per_host: Vec<Vec<Vec<String>>> = Vec::new();
    for words in text
        .lines()
        .filter_map(|l| l.split_once("SSH: EXEC ").map(|(_, cmd)| shell_words(cmd)))
    {
        let starts = words
            .last()
            .is_some_and(|c| c.starts_with("/bin/sh -c 'echo ~"));
        if starts || per_host.is_empty() {
            per_host.push(Vec::new());
        }
        per_host.last_mut().unwrap().push(words);
    }
    assert_eq!(
        per_host.len(),
        hosts.len(),
        "expected one run of SSH: EXEC lines per host:\n{text}"
    );
    let used = hosts
        .iter()
        .zip(per_host)
        .map(|(host, execs)| {
            let first_exec = &execs[0];
            // ssh OPTIONS... ADDRESS COMMAND
            let words = &first_exec[1..first_exec.len() - 2];
            let quoted: Vec<String> = words
                .iter()
                .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
                .collect();
            let options: Vec<(String, String)> = parse_ssh_args(&quoted.join(" "))
                .unwrap()
                .into_iter()
                .filter(|o| !ANSIBLE_OWN.contains(&o.key.as_str()))
                .map(|o| (o.key, dequote(&o.value)))
                .collect();
            let become_user = execs.iter().find_map(|w| {
                let cmd = w.last()?;
                let rest = cmd.split("sudo ").nth(1)?;
                let mut it = rest.split_whitespace();
                it.find(|x| *x == "-u")?;
                it.next().map(str::to_string)
            });
            Used {
                user: first(&options, "user").unwrap_or_else(|| local_user.to_string()),
                port: first(&options, "port").map_or(22, |p| p.parse().unwrap()),
                identity_files: options
                    .iter()
                    .filter(|(k, _)| k == "identityfile")
                    .map(|(_, v)| v.clone())
                    .collect(),
                timeout: first(&options, "connecttimeout").unwrap().parse().unwrap(),
                strict_host_key_checking: match first(&options, "stricthostkeychecking").as_deref()
                {
                    Some("no") => "no".into(),
                    _ => "strict".into(),
                },
                become_user,
                reached: text.contains(&format!("{host} | SUCCESS")),
                options,
            }
        })
        .collect();
    (used, text)
}

/// `sshfleet config --host H --json` for each host, and one `sshfleet ping --json`.
fn sshfleet_side(p: &Prepared, hosts: &[&str]) -> (Vec<Used>, String) {
    let ping = command(p, &sshfleet_bin())
        .args(&p.cli)
        .args(["--json", "ping"])
        .output()
        .unwrap();
    let ping_doc: Value = serde_json::from_slice(&ping.stdout).unwrap_or_else(|e| {
        panic!(
            "sshfleet ping output is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&ping.stdout),
            String::from_utf8_lossy(&ping.stderr)
        )
    });
    let mut all_text = String::from_utf8_lossy(&ping.stdout).into_owned();
    let mut used = Vec::new();
    for host in hosts {
        let out = command(p, &sshfleet_bin())
            .args(&p.cli)
            .args(["config", "--host", host, "--json"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sshfleet config --host {host} failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: Value = serde_json::from_str(&text).unwrap();
        all_text.push_str(&text);
        let options: Vec<(String, String)> = j["ssh_options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["option"].as_str().unwrap().to_string(),
                    o["value"].as_str().unwrap().to_string(),
                )
            })
            .filter(|(k, _)| !ANSIBLE_OWN.contains(&k.as_str()))
            .collect();
        used.push(Used {
            options,
            user: j["user"]["value"].as_str().unwrap().to_string(),
            port: j["port"]["value"].as_u64().unwrap(),
            identity_files: j["identity_files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["value"].as_str().unwrap().to_string())
                .collect(),
            timeout: j["timeout"]["value"].as_f64().unwrap() as u64,
            strict_host_key_checking: j["host_key_checking"]["value"]
                .as_str()
                .unwrap()
                .to_string(),
            become_user: (j["become"]["enabled"]["value"] == true)
                .then(|| j["become"]["user"]["value"].as_str().unwrap().to_string()),
            reached: ping_doc["hosts"][host]["status"] == "ok",
        });
    }
    (used, all_text)
}

/// Ask every ssh ControlMaster Ansible left behind (`ControlPersist`) to exit now.
fn stop_control_masters(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let _ = Command::new("ssh")
            .args([
                "-o",
                &format!("ControlPath={}", e.path().display()),
                "-O",
                "exit",
                "x",
            ])
            .output();
    }
}

#[test]
fn precedence_matches_ansible() {
    let fleet = Fleet::builder().hosts(2).start().expect("start fleet");
    let tmp = tempfile::tempdir().unwrap();
    let bad_key = tmp.path().join("bad_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&bad_key)
        .status()
        .unwrap();
    assert!(st.success());
    let w = World {
        fleet,
        bad_key,
        _tmp: tempfile::tempdir().unwrap(),
    };
    let local_user = sshfleet::ssh::current_user();
    let cases = corpus();
    assert!(cases.len() >= 15);
    let failures = Mutex::new(Vec::new());
    let next = Mutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap();
                        *n += 1;
                        *n - 1
                    };
                    let Some(c) = cases.get(i) else { break };
                    let root = tmp.path().join(c.name);
                    let p = prepare(c, &w, &root);
                    let hosts = ["host01", "host02"];
                    let (aa, atext) = ansible_side(&p, &hosts, &local_user);
                    let (ff, ftext) = sshfleet_side(&p, &hosts);
                    let mut why = Vec::new();
                    for (h, host) in hosts.iter().enumerate() {
                        let (a, f) = (&aa[h], &ff[h]);
                        if a != f {
                            why.push(format!("{host}:\nansible:  {a:?}\nsshfleet: {f:?}"));
                        }
                        if a.reached != c.reach[h] {
                            why.push(format!(
                                "{host}: expected reached={} (case sanity)",
                                c.reach[h]
                            ));
                        }
                    }
                    if !why.is_empty() {
                        failures.lock().unwrap().push(format!(
                            "case {}:\n{}\n--- ansible ---\n{atext}\n--- sshfleet ---\n{ftext}",
                            c.name,
                            why.join("\n")
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Ansible:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Run `sshfleet ARGS` in `dir` with only `env` (plus PATH and HOME=dir/home).
fn sshfleet_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    std::fs::create_dir_all(dir.join("home")).unwrap();
    Command::new(sshfleet_bin())
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"))
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn config_dump_shows_origins_and_lists_unapplied_settings_once() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("ansible.cfg"),
        "[defaults]\nremote_user = deploy\nforks = 50\n[ssh_connection]\nssh_executable = /opt/ssh\npipelining = True\n",
    )
    .unwrap();
    let env = [
        ("ANSIBLE_TIMEOUT", "30"),
        ("ANSIBLE_PRIVATE_KEY_PASSPHRASE", "s3cret"),
    ];
    let out = sshfleet_in(d, &env, &["-u", "admin", "config"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let cfg = d.join("ansible.cfg");
    for line in [
        format!("CONFIG_FILE() = {}", cfg.display()),
        "DEFAULT_REMOTE_USER(cli: -u) = admin".to_string(),
        format!("DEFAULT_FORKS({}:3) = 50", cfg.display()),
        "DEFAULT_TIMEOUT(env: ANSIBLE_TIMEOUT) = 30".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    let out = sshfleet_in(d, &env, &["--json", "config"]);
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let forks = j["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "DEFAULT_FORKS")
        .unwrap();
    assert_eq!(forks["value"], 50);
    assert_eq!(forks["line"], 3);
    let na: Vec<&str> = j["not_applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(na, ["ssh_executable", "private_key_passphrase"]);
    // -v names each unapplied setting once (never its value); without -v, nothing.
    let out = sshfleet_in(d, &env, &["-v", "config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("ssh_executable is set").count(), 1, "{err}");
    assert_eq!(
        err.matches("private_key_passphrase is set (env: ").count(),
        1,
        "{err}"
    );
    assert!(
        !err.contains("s3cret") && !err.contains("pipelining"),
        "{err}"
    );
    let out = sshfleet_in(d, &env, &["config"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not applied"));
}

#[test]
fn bad_config_and_password_prompts_stop_before_connecting() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let cfg = d.join("ansible.cfg");
    std::fs::write(
        &cfg,
        "[defaults]\nremote_user = deploy\nthis is not a setting\n",
    )
    .unwrap();
    let out = sshfleet_in(d, &[], &["-i", "h1,", "ping"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3", cfg.display())), "{err}");
    std::fs::write(&cfg, "[defaults]\nforks = many\n").unwrap();
    let out = sshfleet_in(d, &[], &["-i", "h1,", "ping"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEFAULT_FORKS"));
    // ask_pass: asks as -k does, before any connection; without a terminal that fails,
    // naming the setting and its origin. `config` still shows it.
    std::fs::write(&cfg, "[defaults]\nask_pass = True\n").unwrap();
    if std::fs::File::open("/dev/tty").is_err() {
        let out = sshfleet_in(d, &[], &["-i", "h1,", "ping"]);
        assert_eq!(out.status.code(), Some(5), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "ask_pass ({}:2): cannot read a password from the terminal",
                cfg.display()
            )),
            "{err}"
        );
    }
    let out = sshfleet_in(d, &[("ANSIBLE_BECOME_ASK_PASS", "yes")], &["config"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DEFAULT_ASK_PASS("), "{text}");
    assert!(
        text.contains("DEFAULT_BECOME_ASK_PASS(env: ANSIBLE_BECOME_ASK_PASS) = True"),
        "{text}"
    );
}
