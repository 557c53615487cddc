//! Fuzz entry points for sshfleet's parsers, one per cargo-fuzz target (`fuzz_targets/`).
//!
//! The same functions are replayed over every file of `fuzz/corpus/*/` by the normal test
//! suite (`tests/integration/reliability/corpus.rs` includes this file by path), so a crash
//! found once stays fixed. Each entry must not panic on any input; besides "no panic" it
//! checks cheap invariants of the code under test (render∘parse = identity, edits are
//! idempotent, error messages name the file).
//!
//! Nothing here touches the network or anything outside a per-process temp directory: the
//! inventory entries write the input to `$TMPDIR/sshfleet-fuzz-PID-TID/` because the
//! inventory reader takes paths (as `-i` does).

use std::path::PathBuf;
use std::sync::OnceLock;

use sshfleet::authorized_keys::{
    AuthorizedKeys, EditSpec, KeyOptions, PublicKey, State, apply_edit, parse_key_list,
};
use sshfleet::inventory::{Inventory, InventoryError};

/// Largest input an entry looks at (libFuzzer's default `-max_len` is 4096; the replay may
/// feed bigger files).
const MAX_INPUT: usize = 1 << 20;

/// The authorized_keys model: parse (bytes), render, key lines round trip, key lists,
/// `key_options`, and every kind of edit applied twice (the second must change nothing).
pub fn authorized_keys(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let file = match AuthorizedKeys::parse_bytes(data) {
        Ok(f) => f,
        Err(e) => {
            // Only non-UTF-8 input is refused, and the message names a line.
            assert!(
                std::str::from_utf8(data).is_err(),
                "refused UTF-8 input: {e}"
            );
            assert!(e.to_string().contains("line "), "{e}");
            return;
        }
    };
    let text = std::str::from_utf8(data).expect("parse_bytes accepted it");
    assert_eq!(file.render(), text, "render(parse(x)) != x");

    for (_, k) in file.keys() {
        let line = k.render();
        let again = PublicKey::parse_line(&line)
            .unwrap_or_else(|e| panic!("a rendered key does not parse: {line:?}: {e}"));
        assert_eq!(again.blob, k.blob, "{line:?}");
        assert_eq!(again.render(), line, "render is not a fixed point");
        let _ = k.fingerprint();
    }

    if let Ok(keys) = parse_key_list(text) {
        for k in &keys {
            let _ = PublicKey::parse_line(&k.render()).expect("listed key re-parses");
        }
    }
    let first = text.lines().next().unwrap_or("");
    if let Ok(o) = KeyOptions::parse(first) {
        let r = o.render();
        let again = KeyOptions::parse(&r).expect("rendered options re-parse");
        assert!(again.same_as(&o), "{first:?} -> {r:?}");
    }

    // Edits, with the file's own keys (at most three) as the wanted keys. In the CLI's mode
    // (`keep_position`: a changed key is rewritten in place). The module's default mode moves
    // a changed key to the end as ansible.posix does, and is not idempotent on every file this
    // corpus holds (e.g. duplicate lines of a key with other options): an open issue.
    let base = EditSpec {
        keep_position: true,
        ..EditSpec::default()
    };
    let wanted: Vec<PublicKey> = file.keys().map(|(_, k)| k.clone()).take(3).collect();
    let specs = [
        base.clone(),
        EditSpec {
            exclusive: true,
            ..base.clone()
        },
        EditSpec {
            exclusive: true,
            keep_comments: true,
            comment: Some(first.chars().take(20).collect()),
            ..base.clone()
        },
        EditSpec {
            key_options: Some("no-pty,from=\"10.0.0.1\"".into()),
            ..base.clone()
        },
        EditSpec {
            state: State::Absent,
            ..base.clone()
        },
    ];
    for spec in &specs {
        let Ok(once) = apply_edit(Some(text), &wanted, spec) else {
            continue;
        };
        let twice = apply_edit(Some(&once.content), &wanted, spec)
            .unwrap_or_else(|e| panic!("second apply failed: {e}"));
        assert_eq!(
            twice.content, once.content,
            "apply twice != apply once ({spec:?})"
        );
        assert!(!twice.changed, "second apply reported a change ({spec:?})");
        if spec.exclusive {
            let left: Vec<_> = AuthorizedKeys::parse(&once.content)
                .keys()
                .map(|(_, k)| k.blob.clone())
                .collect();
            assert!(
                left.iter().all(|b| wanted.iter().any(|w| &w.blob == b)),
                "exclusive kept another key"
            );
        }
    }
}

/// A scratch directory private to this process and thread.
fn scratch() -> PathBuf {
    let tid = format!("{:?}", std::thread::current().id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    let d = std::env::temp_dir().join(format!("sshfleet-fuzz-{}-{tid}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create fuzz scratch dir");
    d
}

/// Remove this thread's scratch directory (the corpus replay calls it when done; a fuzzing
/// process leaves its one directory behind).
pub fn remove_scratch() {
    let _ = std::fs::remove_dir_all(scratch());
}

/// Load `data` as an inventory file named `name` and use everything that reads it.
fn inventory(name: &str, data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("write fuzz inventory");
    let source = path.to_string_lossy().into_owned();
    match Inventory::load(std::slice::from_ref(&source)) {
        Ok(inv) => {
            let _ = inv.list_json(None);
            for h in inv.host_names().into_iter().take(64) {
                let _ = inv.host_vars(&h);
                let _ = inv.conn_spec(&h);
            }
            let _ = inv.select("all:!ungrouped", None);
        }
        Err(e) => {
            let msg = e.to_string();
            if matches!(
                e,
                InventoryError::Parse { .. } | InventoryError::File { .. }
            ) {
                assert!(msg.contains(&source), "error does not name the file: {msg}");
            }
        }
    }
}

/// The INI inventory reader (`.ini`: only the INI plugin is tried).
pub fn inventory_ini(data: &[u8]) {
    inventory("inv.ini", data);
}

/// The YAML inventory reader (`.yml`: YAML, then INI as Ansible does).
pub fn inventory_yaml(data: &[u8]) {
    inventory("inv.yml", data);
}

/// A fixed inventory for [`host_patterns`].
const PATTERN_INVENTORY: &str = "\
alpha ansible_port=2201
beta
[web]
web[01:12].example.com
[db]
db-a
db-b ansible_host=10.0.0.2
[app:children]
web
db
[edge]
alpha
web03.example.com
";

fn pattern_inventory() -> &'static Inventory {
    static INV: OnceLock<Inventory> = OnceLock::new();
    INV.get_or_init(|| {
        let path = scratch().join("patterns.ini");
        std::fs::write(&path, PATTERN_INVENTORY).expect("write pattern inventory");
        Inventory::load(&[path.to_string_lossy().into_owned()]).expect("pattern inventory loads")
    })
}

/// Host patterns and `--limit`: first line the pattern, the rest the limit. `@file` limits
/// are left out (they read files named by the input).
pub fn host_patterns(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let (pattern, limit) = match text.split_once('\n') {
        Some((p, l)) => (p.to_string(), Some(l.to_string())),
        None => (text.to_string(), None),
    };
    if pattern.contains('@') || limit.as_deref().is_some_and(|l| l.contains('@')) {
        return;
    }
    let inv = pattern_inventory();
    if let Ok(hosts) = inv.select(&pattern, limit.as_deref()) {
        let mut seen = std::collections::HashSet::new();
        for h in &hosts {
            assert!(seen.insert(h), "host {h} selected twice by {pattern:?}");
        }
        // A limit only narrows the selection.
        if limit.is_some()
            && let Ok(all) = inv.select(&pattern, None)
        {
            for h in &hosts {
                assert!(all.contains(h), "{h} not selected by the pattern alone");
            }
        }
    }
    let _ = inv.list_json(limit.as_deref());
}

/// The Ansible module's argument parsing (args file content) and its mapping to the
/// operation's parameters, without running the operation.
pub fn module_args(data: &[u8]) {
    use sshfleet::module::{authorized_key, parse_args};
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(inv) = parse_args(&authorized_key::spec(), data) else {
        return;
    };
    let op = authorized_key::op_params(&inv);
    // `user` is required: a validated invocation always has one.
    assert!(inv.params.str("user").is_some(), "validated without a user");
    let _ = inv.params.echo(true);
    let _ = inv.params.echo(false);
    for src in &op.keys {
        if !src.contains("://") {
            let _ = parse_key_list(src);
        }
    }
}
