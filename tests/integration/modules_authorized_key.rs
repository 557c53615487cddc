//! `sshfleet_authorized_key` against the real `ansible.posix.authorized_key`, through real
//! `ansible-playbook` (the venv's ansible-core, `connection: local`).
//!
//! Differential: each scenario is one sequence of tasks, run once with the upstream module and
//! once with ours, each against its own temp directory (`path=`). After every step the files
//! are snapshotted; the two runs must give byte-identical files, the same `changed`/`failed`
//! and the same `diff` — except where a step names a deviation (see "Deviations from
//! ansible.posix.authorized_key" in `src/authorized_keys/mod.rs`), in which case the test
//! asserts that exact difference (and that it is real).
//!
//! The module binary is the one cargo built for this test run (`CARGO_BIN_EXE_...`), copied
//! with its sidecar docs into a temp library dir (`ANSIBLE_LIBRARY`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::ansible::AnsibleEnv;

const UPSTREAM: &str = "ansible.posix.authorized_key";
const OURS: &str = "sshfleet_authorized_key";

const ED1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILBMAcXt2SwG7tKvfMsGR3mySouX65yZmmfxLDgQxbl8 user1@example";
const ED2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfTLuzNL4FLdZc1vtMh+7bltZ54tm0xYBSik9Dh2Mpk user2@example";
const ED3: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILt4U46t8jZCPZWyLT1WeN+m+eKXbl5quipXox8sIngT user3@example";

fn bare(line: &str) -> String {
    line.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

/// A documented deviation a step is expected to show (numbers as in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dev {
    /// 1: no trailing space after a key without comment.
    NoTrailingSpace,
    /// 3 (opt-in `keep_position`): a key whose comment/options change is rewritten in place,
    /// not moved to the end.
    RewrittenInPlace,
    /// 5: `changed` only when bytes change (upstream: changed every run, ansible.posix#327).
    ChangedOnlyOnBytes,
    /// 6: whitespace around key options is dropped.
    KeyOptionsNormalized,
    /// 13: manage_dir does not chmod/chown the directory of a custom path.
    ManageDirDefaultOnly,
    /// 14 (opt-in `refuse_symlinks`): follow=false refuses a symlink (upstream replaces it
    /// with a regular file).
    SymlinkRefused,
}

struct Step {
    name: &'static str,
    args: Value,
    /// Options given to our module only (the opt-in ones upstream does not know).
    ours_only: Value,
    check_mode: bool,
    devs: &'static [Dev],
}

fn step(name: &'static str, args: Value, devs: &'static [Dev]) -> Step {
    Step {
        name,
        args,
        ours_only: json!({}),
        check_mode: false,
        devs,
    }
}

impl Step {
    /// The same step with our module given `opts` too.
    fn ours_only(mut self, opts: Value) -> Step {
        self.ours_only = opts;
        self
    }
}

struct Scenario {
    name: &'static str,
    /// Files (relative to the run's dir) snapshotted after each step.
    files: &'static [&'static str],
    /// Files created before the run: (name, content).
    seed: Vec<(&'static str, String)>,
    /// Symlinks created before the run: (link, target).
    links: &'static [(&'static str, &'static str)],
    steps: Vec<Step>,
}

fn me() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Replace `{dir}` in every string of `v`.
fn subst(v: &Value, dir: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{dir}", dir)),
        Value::Array(a) => Value::Array(a.iter().map(|x| subst(x, dir)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), subst(x, dir))).collect())
        }
        other => other.clone(),
    }
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What one run of a scenario produced: per step the result and the file snapshots.
struct Run {
    dir: PathBuf,
    results: Vec<Value>,
    snaps: Vec<Vec<Option<String>>>,
}

fn run_scenario(env: &AnsibleEnv, sc: &Scenario, module: &str, tag: &str) -> Run {
    let dir = env.tmp.path().join(format!("{}-{tag}", sc.name));
    let snapdir = env.tmp.path().join(format!("{}-{tag}-snaps", sc.name));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&snapdir).unwrap();
    for (name, content) in &sc.seed {
        std::fs::write(dir.join(name), content).unwrap();
    }
    for (link, to) in sc.links {
        std::os::unix::fs::symlink(to, dir.join(link)).unwrap();
    }
    let d = dir.to_str().unwrap();
    let mut tasks = Vec::new();
    for (i, s) in sc.steps.iter().enumerate() {
        let mut args = subst(&s.args, d);
        if args.get("user").is_none() && !s.name.contains("missing user") {
            args["user"] = json!(me());
        }
        if module == OURS {
            for (k, v) in s.ours_only.as_object().unwrap() {
                args[k] = v.clone();
            }
        }
        tasks.push(json!({
            "name": format!("{i:02} {}", s.name),
            module: args,
            "check_mode": s.check_mode,
            "diff": true,
            "ignore_errors": true,
        }));
        let cmds: Vec<String> = sc
            .files
            .iter()
            .map(|f| {
                let to = snapdir.join(format!("{i:02}.{}", f.replace('/', "_")));
                format!(
                    "cp {} {} 2>/dev/null || true",
                    q(&format!("{d}/{f}")),
                    q(to.to_str().unwrap())
                )
            })
            .collect();
        tasks.push(
            json!({"name": format!("{i:02} snapshot"), "ansible.builtin.raw": cmds.join("; ")}),
        );
    }
    let all = env.play(&format!("{}-{tag}", sc.name), tasks);
    assert_eq!(all.len(), sc.steps.len() * 2, "{}: task count", sc.name);
    let results: Vec<Value> = all.into_iter().step_by(2).collect();
    let snaps = (0..sc.steps.len())
        .map(|i| {
            sc.files
                .iter()
                .map(|f| {
                    std::fs::read_to_string(snapdir.join(format!("{i:02}.{}", f.replace('/', "_"))))
                        .ok()
                })
                .collect()
        })
        .collect();
    Run {
        dir,
        results,
        snaps,
    }
}

fn strip_trailing_spaces(s: &str) -> String {
    s.replace(" \n", "\n")
}

/// Upstream's file transformed by the named deviations into what ours must be.
fn expected_ours(up: &str, devs: &[Dev]) -> String {
    let mut s = up.to_string();
    for d in devs {
        s = match d {
            Dev::NoTrailingSpace => strip_trailing_spaces(&s),
            Dev::KeyOptionsNormalized => s.replace("  ssh-", " ssh-").replace(", ", ","),
            _ => s,
        };
    }
    s
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}

fn compare(sc: &Scenario, up: &Run, ours: &Run) {
    let (ud, od) = (up.dir.to_str().unwrap(), ours.dir.to_str().unwrap());
    for (i, s) in sc.steps.iter().enumerate() {
        let ctx = format!("scenario {:?} step {i:02} {:?}", sc.name, s.name);
        let (ur, or) = (&up.results[i], &ours.results[i]);
        let failed = |r: &Value| r["failed"].as_bool().unwrap_or(false);
        let changed = |r: &Value| r["changed"].as_bool().unwrap_or(false);
        if s.devs.contains(&Dev::SymlinkRefused) {
            assert!(
                !failed(ur) && changed(ur),
                "{ctx}: upstream should replace the link: {ur}"
            );
            assert!(failed(or), "{ctx}: ours should refuse: {or}");
            let msg = or["msg"].as_str().unwrap_or_default();
            assert!(
                msg.contains("is a symlink") && msg.contains("follow"),
                "{ctx}: {msg}"
            );
            // ours left every file as the previous step had it
            assert_eq!(
                ours.snaps[i],
                ours.snaps[i - 1],
                "{ctx}: ours changed a file"
            );
            continue;
        }
        assert_eq!(
            failed(ur),
            failed(or),
            "{ctx}: failed differs\nupstream: {ur}\nours: {or}"
        );
        if failed(ur) {
            continue;
        }
        if s.devs.contains(&Dev::ChangedOnlyOnBytes) {
            assert!(
                changed(ur),
                "{ctx}: upstream should report changed (ansible.posix#327)"
            );
            assert!(!changed(or), "{ctx}: ours should report ok");
            assert!(
                or.get("diff")
                    .is_none_or(|d| d.is_null() || d == &json!({})),
                "{ctx}: {or}"
            );
        } else {
            assert_eq!(
                changed(ur),
                changed(or),
                "{ctx}: changed differs\nupstream: {ur}\nours: {or}"
            );
        }
        let content_devs = [
            Dev::NoTrailingSpace,
            Dev::KeyOptionsNormalized,
            Dev::RewrittenInPlace,
        ];
        let mut any_differs = false;
        for (f, (u, o)) in sc.files.iter().zip(up.snaps[i].iter().zip(&ours.snaps[i])) {
            let fctx = format!("{ctx} file {f}");
            match (u, o) {
                (None, None) => {}
                (Some(u), Some(o)) => {
                    any_differs |= u != o;
                    if s.devs.contains(&Dev::RewrittenInPlace) {
                        assert_eq!(sorted_lines(u), sorted_lines(o), "{fctx}");
                    } else {
                        let want = expected_ours(u, s.devs);
                        assert_eq!(o, &want, "{fctx}\nupstream:\n{u}\nours:\n{o}");
                    }
                }
                _ => panic!("{fctx}: one file missing\nupstream: {u:?}\nours: {o:?}"),
            }
        }
        if s.devs.iter().any(|d| content_devs.contains(d)) {
            assert!(
                any_differs,
                "{ctx}: deviation {:?} claimed but files are byte-identical",
                s.devs
            );
        }
        // diff: same before/after (modulo the deviations) and headers (modulo the dir)
        let (udiff, odiff) = (&ur["diff"], &or["diff"]);
        if changed(or) && !s.devs.contains(&Dev::RewrittenInPlace) {
            let text = |d: &Value, k: &str| {
                d[k].as_str()
                    .unwrap_or_else(|| panic!("{ctx}: diff.{k} missing in {d}"))
                    .to_string()
            };
            // after: exactly as the file comparison; before: was compared as the previous
            // step's file, so compare it modulo every content deviation.
            assert_eq!(
                text(odiff, "after"),
                expected_ours(&text(udiff, "after"), s.devs),
                "{ctx}: diff.after"
            );
            let all = [Dev::NoTrailingSpace, Dev::KeyOptionsNormalized];
            assert_eq!(
                expected_ours(&text(odiff, "before"), &all),
                expected_ours(&text(udiff, "before"), &all),
                "{ctx}: diff.before"
            );
            for k in ["before_header", "after_header"] {
                let u = udiff[k].as_str().unwrap_or_default().replace(ud, "{dir}");
                let o = odiff[k].as_str().unwrap_or_default().replace(od, "{dir}");
                assert_eq!(o, u, "{ctx}: diff.{k}");
            }
        }
    }
}

/// Run a scenario with both modules and compare; the env is returned so its temp dir lives
/// until the caller's own checks are done.
fn run_differential(sc: Scenario) -> (AnsibleEnv, Run, Run) {
    let env = AnsibleEnv::new();
    let up = run_scenario(&env, &sc, UPSTREAM, "upstream");
    let ours = run_scenario(&env, &sc, OURS, "ours");
    compare(&sc, &up, &ours);
    (env, up, ours)
}

fn ak() -> &'static str {
    "{dir}/ak"
}

#[test]
fn modules_authorized_key_differential_add_absent_exclusive() {
    let (b2, opts) = (bare(ED2), r#"no-port-forwarding,from="10.0.1.1""#);
    let sc = Scenario {
        name: "basic",
        files: &["ak"],
        seed: vec![],
        links: &[],
        steps: vec![
            step("add", json!({"key": ED1, "path": ak()}), &[]),
            step("add again", json!({"key": ED1, "path": ak()}), &[]),
            step("add second", json!({"key": ED2, "path": ak()}), &[]),
            step(
                "add with options",
                json!({"key": ED3, "path": ak(), "key_options": opts}),
                &[],
            ),
            step(
                "add with options again",
                json!({"key": ED3, "path": ak(), "key_options": opts}),
                &[],
            ),
            step(
                "comment on the last key",
                json!({"key": ED3, "path": ak(), "key_options": opts, "comment": "renamed key"}),
                &[],
            ),
            step(
                "absent",
                json!({"key": ED2, "path": ak(), "state": "absent"}),
                &[],
            ),
            step(
                "absent again",
                json!({"key": ED2, "path": ak(), "state": "absent"}),
                &[],
            ),
            step(
                "key without comment",
                json!({"key": b2, "path": ak()}),
                &[Dev::NoTrailingSpace],
            ),
            step(
                "key without comment again",
                json!({"key": b2, "path": ak()}),
                &[Dev::NoTrailingSpace],
            ),
            Step {
                check_mode: true,
                ..step(
                    "exclusive in check mode",
                    json!({"key": ED1, "path": ak(), "exclusive": true}),
                    &[Dev::NoTrailingSpace],
                )
            },
            step(
                "exclusive",
                json!({"key": ED1, "path": ak(), "exclusive": true}),
                &[],
            ),
            step(
                "exclusive again",
                json!({"key": ED1, "path": ak(), "exclusive": true}),
                &[],
            ),
        ],
    };
    let (_env, _, ours) = run_differential(sc);
    // check mode wrote nothing: the snapshot after it equals the one before it
    assert_eq!(ours.snaps[10], ours.snaps[9]);
    assert_eq!(ours.results[10]["changed"], json!(true));
    let f = ours.dir.join("ak");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn modules_authorized_key_differential_key_options() {
    let borg = r#"command="borg serve --append-only",restrict "#;
    let spaced = "no-pty, no-agent-forwarding";
    let sc = Scenario {
        name: "key-options",
        files: &["ak"],
        seed: vec![],
        links: &[],
        steps: vec![
            step(
                "options with a trailing space",
                json!({"key": ED1, "path": ak(), "key_options": borg}),
                &[Dev::KeyOptionsNormalized],
            ),
            step(
                "same again",
                json!({"key": ED1, "path": ak(), "key_options": borg}),
                &[Dev::KeyOptionsNormalized, Dev::ChangedOnlyOnBytes],
            ),
            step(
                "options with a space after a comma",
                json!({"key": ED1, "path": ak(), "key_options": spaced}),
                &[Dev::KeyOptionsNormalized],
            ),
            step(
                "same again",
                json!({"key": ED1, "path": ak(), "key_options": spaced}),
                &[Dev::KeyOptionsNormalized],
            ),
            step(
                "well-formed options",
                json!({"key": ED1, "path": ak(), "key_options": "restrict,pty"}),
                &[],
            ),
            step(
                "well-formed options again",
                json!({"key": ED1, "path": ak(), "key_options": "restrict,pty"}),
                &[],
            ),
            step(
                "key re-added without options drops them",
                json!({"key": ED1, "path": ak()}),
                &[],
            ),
        ],
    };
    let _ = run_differential(sc);
}

#[test]
fn modules_authorized_key_differential_lists_comments_paths() {
    let sc = Scenario {
        name: "lists",
        files: &["ak", "sub/ak", "sub2/ak"],
        seed: vec![("ak", format!("# managed by hand\n{ED2}\n"))],
        links: &[],
        steps: vec![
            step(
                "several keys in one string",
                json!({"key": format!("{ED1}\n\n# a comment\n{ED3}\n"), "path": ak()}),
                &[],
            ),
            step(
                "exclusive with two keys",
                json!({"key": format!("{ED3}\n{ED1}"), "path": ak(), "exclusive": true}),
                &[],
            ),
            step(
                "absent of a present and a missing key",
                json!({"key": format!("{ED1}\n{ED2}"), "path": ak(), "state": "absent"}),
                &[],
            ),
            step(
                "custom path in a missing directory (manage_dir default)",
                json!({"key": ED1, "path": "{dir}/sub/ak"}),
                &[Dev::ManageDirDefaultOnly],
            ),
            step(
                "custom path, manage_dir false",
                json!({"key": ED1, "path": "{dir}/sub2/ak", "manage_dir": false}),
                &[],
            ),
            step(
                "comment option",
                json!({"key": ED1, "path": ak(), "comment": "laptop 2024"}),
                &[],
            ),
            step(
                "comment option again",
                json!({"key": ED1, "path": ak(), "comment": "laptop 2024"}),
                &[],
            ),
            step(
                "comment of a key that is not last (moved to the end, as upstream)",
                json!({"key": ED3, "path": ak(), "comment": "desktop"}),
                &[],
            ),
            step(
                "comment of a key that is not last, keep_position",
                json!({"key": ED1, "path": ak(), "comment": "laptop 2025"}),
                &[Dev::RewrittenInPlace],
            )
            .ours_only(json!({"keep_position": true})),
        ],
    };
    let (_env, up, ours) = run_differential(sc);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    // deviation 13: upstream made the custom path's directory 0700; ours left it 0755
    assert_eq!(mode(&up.dir.join("sub")), 0o700);
    assert_eq!(mode(&ours.dir.join("sub")), 0o755);
    assert_eq!(mode(&up.dir.join("sub2")), mode(&ours.dir.join("sub2")));
    assert_eq!(mode(&ours.dir.join("sub/ak")), 0o600);
}

#[test]
fn modules_authorized_key_differential_follow() {
    let sc = Scenario {
        name: "follow",
        files: &["real", "link", "link2"],
        seed: vec![("real", format!("{ED2}\n"))],
        links: &[("link", "real"), ("link2", "real")],
        steps: vec![
            step(
                "follow a symlink",
                json!({"key": ED1, "path": "{dir}/link", "follow": true}),
                &[],
            ),
            step(
                "no change needed through a symlink",
                json!({"key": ED1, "path": "{dir}/link"}),
                &[],
            ),
            step(
                "write to a symlink without follow replaces the link (as upstream)",
                json!({"key": ED3, "path": "{dir}/link"}),
                &[],
            ),
            step(
                "write to a symlink without follow, refuse_symlinks",
                json!({"key": ED3, "path": "{dir}/link2"}),
                &[Dev::SymlinkRefused],
            )
            .ours_only(json!({"refuse_symlinks": true})),
        ],
    };
    let (_env, up, ours) = run_differential(sc);
    let is_link = |p: &Path| {
        std::fs::symlink_metadata(p)
            .unwrap()
            .file_type()
            .is_symlink()
    };
    // both replaced `link` by a regular file and left its target alone
    for run in [&up, &ours] {
        assert!(!is_link(&run.dir.join("link")));
        assert_eq!(
            std::fs::read_to_string(run.dir.join("real")).unwrap(),
            format!("{ED2}\n{ED1}\n")
        );
    }
    // deviation 14 (refuse_symlinks): upstream replaced link2 too; ours kept it
    assert!(!is_link(&up.dir.join("link2")));
    assert!(is_link(&ours.dir.join("link2")));
}

#[test]
fn modules_authorized_key_bad_arguments() {
    let env = AnsibleEnv::new();
    let dir = env.tmp.path().to_str().unwrap().to_string();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"key": ED1, "path": format!("{dir}/x")}),
            "missing required arguments: user",
        ),
        (
            json!({"user": me(), "key": ED1, "path": format!("{dir}/x"), "foo": 1}),
            "module: foo. Supported parameters include: ",
        ),
        (
            json!({"user": me(), "key": ED1, "path": format!("{dir}/x"), "manage_dir": "maybe"}),
            "argument 'manage_dir' is of type str and we were unable to convert to bool: The value 'maybe' is not a valid boolean.",
        ),
        (
            json!({"user": me(), "key": ED1, "path": format!("{dir}/x"), "state": "gone"}),
            "value of state must be one of: absent, present, got: gone",
        ),
    ];
    for module in [UPSTREAM, OURS] {
        let tasks = cases
            .iter()
            .enumerate()
            .map(|(i, (args, _))| json!({"name": format!("case {i}"), module: args, "ignore_errors": true}))
            .collect();
        let results = env.play(&format!("bad-{}", module.replace('.', "-")), tasks);
        for ((_, want), r) in cases.iter().zip(&results) {
            assert_eq!(r["failed"], json!(true), "{module}: {r}");
            let msg = r["msg"].as_str().unwrap();
            assert!(msg.contains(want), "{module}: {msg:?} lacks {want:?}");
        }
        if module == OURS {
            assert_eq!(
                results[1]["msg"],
                json!(
                    "Unsupported parameters for (sshfleet_authorized_key) module: foo. Supported parameters include: backup, comment, exclusive, follow, keep_comments, keep_position, key, key_options, keys, manage_dir, path, refuse_symlinks, state, user, validate_certs, validate_keys."
                )
            );
        }
    }
    // deviation 8 (opt-in validate_keys): a key whose data is not a key is refused
    // (upstream, and ours by default, write it)
    let r = env.play(
        "bad-key",
        vec![json!({"name": "bad key", OURS: {"user": me(), "key": "ssh-ed25519 AAAA bad", "path": format!("{dir}/x"), "validate_keys": true}, "ignore_errors": true})],
    );
    assert_eq!(r[0]["failed"], json!(true));
    let msg = r[0]["msg"].as_str().unwrap();
    assert!(msg.starts_with("invalid key specified"), "{msg}");
    assert!(
        !env.tmp.path().join("x").exists(),
        "a failed task wrote a file"
    );
}

#[test]
fn modules_authorized_key_keys_list_and_keep_comments() {
    // Our extensions (deviations 9, 10, 11): no upstream counterpart.
    let env = AnsibleEnv::new();
    let d = env.tmp.path().to_str().unwrap().to_string();
    std::fs::write(
        env.tmp.path().join("ak"),
        format!("# ops team\n{ED3}\n\n{ED2}\n"),
    )
    .unwrap();
    let ak = format!("{d}/ak");
    let results = env.play(
        "extensions",
        vec![
            json!({"name": "exclusive list", OURS: {"user": me(), "path": ak, "keys": [ED1, ED2], "exclusive": true, "keep_comments": true}, "diff": true}),
            json!({"name": "again", OURS: {"user": me(), "path": ak, "keys": [ED1, ED2], "exclusive": true, "keep_comments": true}}),
            json!({"name": "empty exclusive", OURS: {"user": me(), "path": ak, "key": "# nobody", "exclusive": true}, "ignore_errors": true}),
            json!({"name": "private key", OURS: {"user": me(), "path": ak, "key": "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END OPENSSH PRIVATE KEY-----"}, "ignore_errors": true}),
        ],
    );
    assert_eq!(results[0]["changed"], json!(true), "{}", results[0]);
    assert_eq!(results[0]["keys"], json!([ED1, ED2]));
    assert_eq!(
        results[0]["diff"]["after"],
        json!(format!("# ops team\n\n{ED2}\n{ED1}\n"))
    );
    assert_eq!(results[1]["changed"], json!(false));
    assert_eq!(results[2]["failed"], json!(true));
    assert!(
        results[2]["msg"]
            .as_str()
            .unwrap()
            .contains("empty exclusive")
    );
    assert_eq!(results[3]["failed"], json!(true));
    let msg = results[3]["msg"].as_str().unwrap();
    assert!(
        msg.contains("private key") && !msg.contains("c2VjcmV0"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_to_string(env.tmp.path().join("ak")).unwrap(),
        format!("# ops team\n\n{ED2}\n{ED1}\n")
    );
}

#[test]
fn modules_authorized_key_ansible_doc() {
    let env = AnsibleEnv::new();
    let out = env
        .command("ansible-doc")
        .arg("-M")
        .arg(env.tmp.path().join("library"))
        .args(["--json", OURS])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc = &v[OURS]["doc"];
    assert_eq!(doc["module"], json!(OURS));
    for opt in [
        "user",
        "key",
        "keys",
        "path",
        "manage_dir",
        "state",
        "key_options",
        "exclusive",
        "comment",
        "validate_certs",
        "follow",
        "keep_comments",
    ] {
        assert!(
            doc["options"].get(opt).is_some(),
            "option {opt} undocumented"
        );
    }
    assert!(v[OURS]["return"].get("keyfile").is_some());
    assert!(
        v[OURS]["examples"]
            .as_str()
            .unwrap()
            .contains("sshfleet_authorized_key:")
    );
}
