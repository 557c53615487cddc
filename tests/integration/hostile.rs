//! Hostile input (issue 9): malformed inventories and keys, 1 MiB lines, NUL bytes, invalid
//! UTF-8, deep nesting, paths / user names / become users with shell metacharacters, module
//! arguments of the wrong type, huge argument files. Each must give a clear error (naming
//! the file, line or host), a non-zero exit or `failed`, never a panic — and change nothing.
//!
//! Command injection is checked with marker files: every metacharacter payload tries to
//! `touch /tmp/sshfleet-pwned-PID-N` (/tmp is shared by the controller and every fleet
//! host), and no marker may exist afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::reliability::util::*;
use crate::support::fleet::Fleet;
use crate::support::{Output, Sshfleet};

/// A run must not have panicked (Rust's panic message or exit code 101) nor been killed.
#[track_caller]
fn no_panic(out: &Output) {
    assert!(out.code.is_some(), "killed by a signal\n{out}");
    assert_ne!(out.code, Some(101), "panicked\n{out}");
    assert!(!out.stderr.contains("panicked at"), "panicked\n{out}");
}

fn pwned_marker(n: usize) -> PathBuf {
    PathBuf::from(format!("/tmp/sshfleet-pwned-{}-{n}", std::process::id()))
}

// ---------------------------------------------------------------- inventories

/// What `inventory --list` must do with a malformed inventory.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Exit 1 with a short error naming the file and containing this text.
    Error(&'static str),
    /// Read as `ansible-inventory` reads it (checked against it by hand: it accepts the
    /// file too, with this warning text or none); the odd host then fails cleanly.
    AsAnsible(&'static str),
}

fn bad_inventories() -> Vec<(&'static str, Vec<u8>, Want)> {
    use Want::*;
    let mut deep = b"all:\n  vars:\n    x: ".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 200_000));
    let mut deep_map = b"all:\n  vars:\n    x: ".to_vec();
    deep_map.extend(std::iter::repeat_n(b'{', 200_000));
    let mut long_section = b"[".to_vec();
    long_section.extend(std::iter::repeat_n(b'a', 1 << 20));
    long_section.push(b'\n');
    let mut long_yaml = b"all:\n  hosts:\n    h1:\n      x: '".to_vec();
    long_yaml.extend(std::iter::repeat_n(b'y', 1 << 20));
    long_yaml.push(b'\n');
    vec![
        ("unterminated.ini", b"[web\nh1\n".to_vec(), Error(":1")),
        ("badrange.ini", b"[web]\nweb[01:]\n".to_vec(), Error(":2")),
        ("badrange2.ini", b"[web]\nweb[z:a]\n".to_vec(), Error(":2")),
        (
            "badvars.ini",
            b"[web:vars]\njust_a_word\n".to_vec(),
            Error(":2"),
        ),
        ("notutf8.ini", b"[web]\nh\xff\xfe1\n".to_vec(), Error("")),
        ("longline.ini", long_section, Error(":1")),
        ("hostsnumber.yml", b"all:\n  hosts: 5\n".to_vec(), Error("")),
        ("tabs.yml", b"all:\n\thosts:\n\t\th1:\n".to_vec(), Error("")),
        (
            "unclosed.yml",
            b"all:\n  hosts: {h1: [\n".to_vec(),
            Error(""),
        ),
        ("deep_seq.yml", deep, Error("")),
        ("deep_map.yml", deep_map, Error("")),
        ("longstring.yml", long_yaml, Error("")),
        (
            "notutf8.yml",
            b"all:\n  hosts:\n    h\xc3\x28:\n".to_vec(),
            Error(""),
        ),
        (
            "vault.yml",
            b"$ANSIBLE_VAULT;1.1;AES256\n61626364\n".to_vec(),
            Error("vault"),
        ),
        // ansible-inventory 2.19 accepts these three the same way.
        (
            "nul.ini",
            b"[web]\nh1\0evil ansible_port=22\n".to_vec(),
            AsAnsible(""),
        ),
        (
            "wrongshape.yml",
            b"all: [1, 2]\n".to_vec(),
            AsAnsible("not a valid group definition"),
        ),
        (
            "bom_garbage.yml",
            b"\xef\xbb\xbf{{{{::::}}}}\n".to_vec(),
            AsAnsible(""),
        ),
    ]
}

/// Every malformed inventory: exit 1 with a short error naming the file — or, where
/// `ansible-inventory` accepts the file, the same reading and a clean failure for the odd
/// host. Never a panic or a hang.
#[test]
fn hostile_malformed_inventories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, content, want) in bad_inventories() {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let out = Sshfleet::new()
            .inventory_file(&path)
            .args(["inventory", "--list"])
            .timeout(std::time::Duration::from_secs(60))
            .run();
        no_panic(&out);
        let shown = path.display().to_string();
        let ok = match want {
            Want::Error(text) => {
                out.code == Some(1)
                    && out.stderr.contains(&shown)
                    && out.stderr.contains(text)
                    && out.stderr.len() < 4096
            }
            Want::AsAnsible(warning) => {
                let ping = Sshfleet::new()
                    .inventory_file(&path)
                    .args(["-T", "2", "ping"])
                    .run();
                no_panic(&ping);
                out.code == Some(0)
                    && out.stderr.contains(warning)
                    && matches!(ping.code, Some(0 | 4))
                    && !ping.stdout.contains("SUCCESS")
            }
        };
        if !ok {
            failures.push(format!(
                "{name}: want {want:?} (a short error naming {shown})\n{out}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Connection variables of the wrong type or with metacharacters are refused for that host
/// (or make the login fail) and never reach a shell; only a `ProxyCommand`, which is a local
/// command by definition, runs.
#[test]
fn hostile_inventory_connection_vars_never_reach_a_shell() {
    let fleet = Fleet::builder().hosts(1).start().expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let port = fleet.host(0).port();
    let m: Vec<PathBuf> = (0..4).map(|i| pwned_marker(100 + i)).collect();
    let inv = dir.path().join("evil.ini");
    std::fs::write(
        &inv,
        format!(
            "eviluser ansible_host=127.0.0.1 ansible_port={port} ansible_user='$(touch {m0})'\n\
             evilhost ansible_host='127.0.0.1;touch {m1}' ansible_port={port}\n\
             evilbecome ansible_host=127.0.0.1 ansible_port={port} ansible_become=yes ansible_become_user='root;touch {m2}'\n\
             evilargs ansible_host=127.0.0.1 ansible_port={port} ansible_ssh_common_args='-o ProxyCommand=\"touch {m3}\"'\n",
            m0 = m[0].display(),
            m1 = m[1].display(),
            m2 = m[2].display(),
            m3 = m[3].display(),
        ),
    )
    .unwrap();
    // A port that is not a number stops the whole run before any host is contacted.
    let bad = dir.path().join("badport.ini");
    std::fs::write(
        &bad,
        "badport ansible_host=127.0.0.1 ansible_port=notaport\n",
    )
    .unwrap();
    let out = Sshfleet::new().inventory_file(&bad).args(["ping"]).run();
    no_panic(&out);
    out.code(1)
        .stderr_contains("badport")
        .stderr_contains("notaport");
    let out = Sshfleet::new()
        .inventory_file(&inv)
        .arg("--private-key")
        .arg(fleet.client_key())
        .arg("--known-hosts")
        .arg(fleet.known_hosts())
        .args(["--json", "-T", "5", "run", "--", "id", "-un"])
        .run();
    no_panic(&out);
    assert_ne!(out.code, Some(0), "{out}");
    // `ProxyCommand` from the inventory is a local command by design, as with Ansible and
    // OpenSSH (the inventory's author chose it): it runs, through `$SHELL -c` like ssh's.
    assert!(
        m[3].exists(),
        "the inventory's ProxyCommand did not run\n{out}"
    );
    std::fs::remove_file(&m[3]).ok();
    for p in &m[..3] {
        assert!(
            !p.exists(),
            "{} was created: command injection\n{out}",
            p.display()
        );
    }
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    for h in ["eviluser", "evilhost", "evilbecome"] {
        let st = doc["hosts"][h]["status"].as_str().unwrap_or("");
        assert!(
            st == "failed" || st == "unreachable",
            "{h} was not refused\n{out}"
        );
    }
}

// ---------------------------------------------------------------- keys on the CLI

/// Bad key input is refused before any host is touched: every file stays byte for byte.
#[test]
fn hostile_malformed_keys_change_nothing() {
    let fleet = Fleet::builder().hosts(2).start().expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let good = keygen(dir.path(), "good", "good@x");
    let good_line = pub_line(&good);
    let write = |name: &str, content: &[u8]| -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    };
    let mut long = b"ssh-ed25519 ".to_vec();
    long.extend(std::iter::repeat_n(b'A', 1 << 20));
    long.extend_from_slice(b" comment\n");
    let mut long_comment = good_line.clone().into_bytes();
    long_comment.push(b' ');
    long_comment.extend(std::iter::repeat_n(b'c', 1 << 20));
    // 1 MiB comment on a valid key is a valid key: it is accepted, so it is not listed here.
    let _ = long_comment;
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("garbage", vec!["--key".into(), "not a key at all".into()]),
        (
            "bad base64",
            vec!["--key".into(), "ssh-ed25519 !!!! c".into()],
        ),
        (
            "type mismatch",
            vec!["--key".into(), good_line.replace("ssh-ed25519", "ssh-rsa")],
        ),
        (
            "private key",
            vec!["--key".into(), good.display().to_string()],
        ),
        ("1 MiB line", vec!["--key".into(), write("long.pub", &long)]),
        (
            "NUL byte",
            vec![
                "--key".into(),
                write("nul.pub", format!("{good_line}\0evil\n").as_bytes()),
            ],
        ),
        (
            "invalid UTF-8",
            vec![
                "--key".into(),
                write("bad.pub", &[good_line.as_bytes(), b" \xff\xfe\n"].concat()),
            ],
        ),
        (
            "line break in key_options",
            vec![
                "--key".into(),
                good_line.clone(),
                "--key-options".into(),
                format!("no-pty\n{good_line}"),
            ],
        ),
        (
            "unquoted space in key_options",
            vec![
                "--key".into(),
                good_line.clone(),
                "--key-options".into(),
                "command=echo hi".into(),
            ],
        ),
        (
            "unknown option",
            vec![
                "--key".into(),
                good_line.clone(),
                "--key-options".into(),
                "no-such-option".into(),
            ],
        ),
        (
            "line break in comment",
            vec![
                "--key".into(),
                good_line.clone(),
                "--comment".into(),
                format!("x\n{good_line}"),
            ],
        ),
        (
            "empty key file",
            vec!["--key".into(), write("empty.pub", b"\n# nothing\n")],
        ),
    ];
    let before = snapshot(&fleet, "deploy");
    let mut failures = Vec::new();
    for (what, args) in &cases {
        let out = Sshfleet::new()
            .inventory(&fleet)
            .args(["keys", "add", "--user", "deploy"])
            .args(args)
            .run();
        no_panic(&out);
        let secret = std::fs::read_to_string(&good).unwrap();
        let body: String = secret.lines().nth(2).unwrap_or("").to_string();
        // Refused up front (exit 5/1, message on stderr) or per host (exit 2, `failed:`).
        let refused = match out.code {
            Some(1 | 5) => !out.stderr.trim().is_empty(),
            Some(2) => out.stdout.contains("failed: [host01] =>"),
            _ => false,
        };
        if !refused {
            failures.push(format!("{what}: want a non-zero exit and an error\n{out}"));
        }
        if out.stdout.contains(&body) || out.stderr.contains(&body) {
            failures.push(format!("{what}: private key material echoed\n{out}"));
        }
        if out.stderr.len() + out.stdout.len() > 64 << 10 {
            failures.push(format!(
                "{what}: {} bytes of output (the input echoed back?)",
                out.stderr.len() + out.stdout.len()
            ));
        }
        if snapshot(&fleet, "deploy") != before {
            failures.push(format!("{what}: a host was changed\n{out}"));
            for (i, b) in before.iter().enumerate() {
                replace_file(&fleet.authorized_keys_path(i, "deploy"), b);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Paths and user names full of shell metacharacters: no command runs, errors are per host,
/// nothing is created where it should not be.
#[test]
fn hostile_shell_metacharacters_in_paths_users_and_become() {
    let fleet = Fleet::builder().hosts(1).start().expect("start fleet");
    let dir = tempfile::tempdir().unwrap();
    let k = keygen(dir.path(), "k", "k@meta");
    let markers: Vec<PathBuf> = (0..12).map(pwned_marker).collect();
    let m = |i: usize| markers[i].display().to_string();
    let payloads = |i: usize| -> Vec<String> {
        vec![
            format!("$(touch {})", m(i)),
            format!("`touch {}`", m(i + 1)),
            format!(";touch {};", m(i + 2)),
            format!("x' ; touch {} ; '", m(i + 3)),
            format!("x\ntouch {}", m(i + 4)),
        ]
    };
    let home = fleet.host(0).home_of("deploy");
    let before = read_ak(&fleet, 0, "deploy");
    let mut outs = Vec::new();
    // Paths: written literally (a file with that odd name in deploy's home) or refused.
    for p in payloads(0) {
        let out = Sshfleet::new()
            .inventory(&fleet)
            .args(["--json", "keys", "add", "--user", "deploy", "--key"])
            .arg(pub_path(&k))
            .arg("--path")
            .arg(format!("/home/deploy/{p}"))
            .run();
        no_panic(&out);
        outs.push(out);
    }
    // User names (the owner) and become users.
    for u in payloads(5) {
        let out = Sshfleet::new()
            .inventory(&fleet)
            .args(["-b", "--json", "keys", "add", "--key"])
            .arg(pub_path(&k))
            .arg("--user")
            .arg(&u)
            .run();
        no_panic(&out);
        assert_ne!(out.code, Some(0), "user {u:?} accepted\n{out}");
        outs.push(out);
    }
    let out = Sshfleet::new()
        .inventory(&fleet)
        .arg("-b")
        .arg("--become-user")
        .arg(format!("root;touch {}", m(10)))
        .args(["--json", "run", "--", "id", "-un"])
        .run();
    no_panic(&out);
    assert_ne!(out.code, Some(0), "{out}");
    outs.push(out);
    // `run` arguments arrive as literal arguments (no shell).
    let lit = format!("$(touch {})", m(11));
    let out = Sshfleet::new()
        .inventory(&fleet)
        .args(["run", "--", "echo"])
        .arg(&lit)
        .run();
    out.success().stdout_contains(&lit);
    outs.push(out);

    for p in &markers {
        let all: Vec<String> = outs.iter().map(|o| o.to_string()).collect();
        assert!(
            !p.exists(),
            "{} was created: command injection\n{}",
            p.display(),
            all.join("\n")
        );
    }
    // The real authorized_keys was never touched by the odd paths.
    assert_eq!(read_ak(&fleet, 0, "deploy"), before);
    // Whatever was written went to a file named literally inside deploy's home.
    for e in std::fs::read_dir(&home).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with("sshfleet-pwned"), "{n}");
    }
}

// ---------------------------------------------------------------- the module binary

fn module_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sshfleet_authorized_key"))
}

/// Run the module binary on an args file; returns (exit code, stdout, stderr).
fn run_module(args_file: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(module_bin())
        .arg(args_file)
        .stdin(Stdio::null())
        .output()
        .expect("run module binary");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Wrong types, broken JSON, NUL bytes, invalid UTF-8, deep nesting, a huge key and a huge
/// args file: the module prints exactly one JSON object with `failed: true` and a message,
/// exits 1, and the target file is unchanged.
#[test]
fn hostile_module_args_fail_cleanly_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ak = dir.path().join("authorized_keys");
    let good = keygen(dir.path(), "good", "good@x");
    let good_line = pub_line(&good);
    let original = format!("{good_line}\n");
    std::fs::write(&ak, &original).unwrap();
    let me = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let path = ak.display().to_string();
    let json_cases: Vec<(&str, Value)> = vec![
        (
            "user is a list",
            json!({"user": ["root"], "key": good_line, "path": path}),
        ),
        (
            "user is an object",
            json!({"user": {"a": 1}, "key": good_line, "path": path}),
        ),
        (
            "key is an object",
            json!({"user": me, "key": {"k": 1}, "path": path}),
        ),
        (
            "keys is a number",
            json!({"user": me, "keys": 5, "path": path}),
        ),
        (
            "exclusive is not a bool",
            json!({"user": me, "key": good_line, "exclusive": "perhaps", "path": path}),
        ),
        (
            "state out of choices",
            json!({"user": me, "key": good_line, "state": "maybe", "path": path}),
        ),
        (
            "path is a list",
            json!({"user": me, "key": good_line, "path": [path]}),
        ),
        ("no user", json!({"key": good_line, "path": path})),
        ("no key", json!({"user": me, "path": path})),
        (
            "key and keys",
            json!({"user": me, "key": good_line, "keys": [good_line], "path": path}),
        ),
        (
            "unknown option",
            json!({"user": me, "key": good_line, "path": path, "frobnicate": true}),
        ),
        (
            "NUL in key",
            json!({"user": me, "key": format!("{good_line}\u{0}evil"), "path": path, "exclusive": true}),
        ),
        (
            "NUL in user",
            json!({"user": "ro\u{0}ot", "key": good_line, "path": path}),
        ),
        (
            "line break in options",
            json!({"user": me, "key": good_line, "path": path, "key_options": format!("no-pty\n{good_line}")}),
        ),
        (
            "private key",
            json!({"user": me, "key": std::fs::read_to_string(&good).unwrap(), "path": path}),
        ),
        (
            "huge garbage key",
            json!({"user": me, "key": "x".repeat(8 << 20), "path": path, "exclusive": true}),
        ),
        (
            "metachar user",
            json!({"user": format!("$(touch {})", pwned_marker(50).display()), "key": good_line}),
        ),
    ];
    let mut raw_cases: Vec<(&str, Vec<u8>)> = json_cases
        .iter()
        .map(|(n, v)| (*n, v.to_string().into_bytes()))
        .collect();
    let mut nested = "[".repeat(100_000).into_bytes();
    nested.extend("]".repeat(100_000).into_bytes());
    raw_cases.extend([
        ("empty file", Vec::new()),
        ("not JSON", b"user=root key=x".to_vec()),
        ("JSON array", b"[1, 2, 3]".to_vec()),
        (
            "invalid UTF-8",
            b"{\"user\": \"r\xffoot\", \"key\": \"x\"}".to_vec(),
        ),
        (
            "raw NUL",
            b"{\"user\": \"root\0\", \"key\": \"x\"}".to_vec(),
        ),
        ("deeply nested", nested),
        (
            "truncated",
            br#"{"user": "root", "key": "ssh-ed25519 AAAA"#.to_vec(),
        ),
    ]);
    let mut failures = Vec::new();
    let check =
        |name: &str, code: Option<i32>, stdout: &str, stderr: &str, failures: &mut Vec<String>| {
            let shown = format!(
                "{name}: exit {code:?}\nstdout: {}\nstderr: {stderr}",
                &stdout[..stdout.len().min(2000)]
            );
            let lines: Vec<&str> = stdout.lines().collect();
            if lines.len() != 1 {
                failures.push(format!("{shown}\n(want exactly one line of JSON)"));
                return;
            }
            let Ok(Value::Object(o)) = serde_json::from_str::<Value>(lines[0]) else {
                failures.push(format!("{shown}\n(not a JSON object)"));
                return;
            };
            let msg = o.get("msg").and_then(Value::as_str).unwrap_or("");
            if o.get("failed") != Some(&Value::Bool(true)) || msg.is_empty() || code != Some(1) {
                failures.push(format!("{shown}\n(want failed: true, a msg, exit 1)"));
            }
            if msg.contains("internal error") || msg.contains("panic") {
                failures.push(format!("{shown}\n(a panic turned into a failure)"));
            }
            if stdout.len() > 64 << 10 {
                failures.push(format!("{name}: the failure echoes {} bytes", stdout.len()));
            }
        };
    for (name, bytes) in &raw_cases {
        let f = dir.path().join("args.json");
        std::fs::write(&f, bytes).unwrap();
        let (code, stdout, stderr) = run_module(&f);
        check(name, code, &stdout, &stderr, &mut failures);
        if std::fs::read_to_string(&ak).unwrap() != original {
            failures.push(format!("{name}: the file was changed"));
            std::fs::write(&ak, &original).unwrap();
        }
    }
    // An args file larger than the limit (sparse: no disk used) and one that does not exist.
    let huge = dir.path().join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let (code, stdout, stderr) = run_module(&huge);
    check("huge args file", code, &stdout, &stderr, &mut failures);
    let (code, stdout, stderr) = run_module(&dir.path().join("missing.json"));
    check("missing args file", code, &stdout, &stderr, &mut failures);
    assert!(stdout.contains("missing.json"), "{stdout}");
    assert!(
        !pwned_marker(50).exists(),
        "command injection through the module's user"
    );
    assert_eq!(std::fs::read_to_string(&ak).unwrap(), original);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
