//! Replay of the fuzz corpus in the normal test suite: every file of `fuzz/corpus/TARGET/`
//! goes through the same entry point the fuzz target calls (`fuzz/src/lib.rs`, included here
//! by path), so a crash found by fuzzing — saved into the corpus — stays fixed, without
//! nightly, libFuzzer or cargo-fuzz. Each entry asserts its own invariants besides "no panic".

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod entries;

use std::path::PathBuf;

/// Feed every corpus file of `target` to `entry`; panics name the file.
fn replay(target: &str, entry: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{}: the seed corpus is missing ({} files)",
        dir.display(),
        files.len()
    );
    let mut panicked = None;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if std::panic::catch_unwind(|| entry(&data)).is_err() {
            panicked = Some(f.clone());
            break;
        }
    }
    entries::remove_scratch();
    if let Some(f) = panicked {
        panic!("fuzz corpus file {} made {target} panic", f.display());
    }
    eprintln!("{target}: {} corpus files replayed", files.len());
}

#[test]
fn reliability_fuzz_corpus_authorized_keys() {
    replay("authorized_keys", entries::authorized_keys);
}

#[test]
fn reliability_fuzz_corpus_inventory_ini() {
    replay("inventory_ini", entries::inventory_ini);
}

#[test]
fn reliability_fuzz_corpus_inventory_yaml() {
    replay("inventory_yaml", entries::inventory_yaml);
}

#[test]
fn reliability_fuzz_corpus_host_patterns() {
    replay("host_patterns", entries::host_patterns);
}

#[test]
fn reliability_fuzz_corpus_module_args() {
    replay("module_args", entries::module_args);
}
