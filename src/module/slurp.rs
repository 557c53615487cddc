//! `sshfleet_slurp`: read one or many files on the managed host with
//! [`crate::ops::slurp::slurp`] over a [`LocalTarget`].
//!
//! - One file (`src`, alias `path`): a drop-in for `ansible.builtin.slurp` — the same top-level
//!   `content` (base64), `encoding`, `source` and the same failure messages — plus `sha256`,
//!   `size`, `mode` (octal string), `uid`, `gid`, `owner`, `group`.
//! - Many files (`paths`): `files`, one such object per path in the given order. Every file is
//!   read or the task fails naming each file that could not be read (no partial result), so a
//!   replication that starts from it never copies half a set.
//!
//! Content is returned even under `no_log` (as Ansible's slurp does: the controller censors
//! the displayed result, the registered variable keeps the data, which is how private keys are
//! replicated); the module itself never logs anything, and `invocation` is masked.

use serde_json::{Map, Value};

use super::spec::{ArgSpec, ArgType, ModuleSpec};
use super::{Failure, Invocation, ModuleResult};
use crate::ops::copy::futures_join_all;
use crate::ops::slurp::{SLURP_LIMIT, Slurped, slurp};
use crate::target::TargetError;
use crate::target::local::LocalTarget;

pub const NAME: &str = "sshfleet_slurp";

/// The argument spec: Ansible slurp's `src` (alias `path`), plus `paths` and `max_size`.
pub fn spec() -> ModuleSpec {
    ModuleSpec {
        name: NAME,
        args: vec![
            ArgSpec::new("src", ArgType::Path).aliases(&["path"]),
            ArgSpec::new("paths", ArgType::List).elements(ArgType::Path),
            ArgSpec::new("max_size", ArgType::Int).default(SLURP_LIMIT as i64),
        ],
        mutually_exclusive: vec![vec!["src", "paths"]],
        required_one_of: vec![vec!["src", "paths"]],
        supports_check_mode: true,
    }
}

/// Ansible slurp's wording for its failures (missing, unreadable, a directory, any other
/// OS error such as a parent that is not a directory); anything else (the size limit) as
/// the operation says. Upstream's last message is literally `Unable to slurp file: {source}`
/// (a missing f-string prefix); ours names the path.
fn message(path: &str, e: &TargetError) -> String {
    let is_dir = || std::fs::metadata(path).is_ok_and(|m| m.is_dir());
    match e {
        TargetError::NotFound { .. } => format!("File not found: {path}"),
        TargetError::PermissionDenied { .. } => format!("File is not readable: {path}"),
        _ if is_dir() => format!("Source is a directory and must be a file: {path}"),
        TargetError::Io { .. } => format!("Unable to slurp file: {path}"),
        other => other.to_string(),
    }
}

/// One file's return values (Ansible slurp's keys plus the attributes), without `changed`.
fn file_object(s: &Slurped) -> Map<String, Value> {
    let mut m = match s.to_ansible() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.remove("changed");
    m
}

/// Read the requested files and build the result.
pub fn handler(inv: &Invocation) -> ModuleResult {
    let p = &inv.params;
    let limit = match p.int("max_size") {
        Some(n) if n > 0 => n as u64,
        Some(n) => {
            return Err(Failure::new(format!(
                "max_size must be a positive number of bytes, got: {n}"
            )));
        }
        None => SLURP_LIMIT,
    };
    let single = p.str("src");
    let paths: Vec<String> = match &single {
        Some(s) => vec![s.clone()],
        None => p.list("paths").unwrap_or_default(),
    };
    if paths.is_empty() {
        return Err(Failure::new(
            "paths is empty: give at least one file to read",
        ));
    }
    if let Some(bad) = paths.iter().find(|s| s.is_empty()) {
        return Err(Failure::new(format!(
            "an empty path was given (paths: {bad:?})"
        )));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the runtime: {e}")))?;
    let t = LocalTarget::new();
    let results = rt.block_on(futures_join_all(
        paths.iter().map(|path| slurp(&t, path, limit)),
    ));

    let mut out = Map::new();
    let mut invocation = Map::new();
    invocation.insert("module_args".into(), Value::Object(p.echo(inv.no_log)));
    if single.is_some() {
        let r = results.into_iter().next().expect("one path, one result");
        let s = r.map_err(|e| {
            let mut f = Failure::new(message(&paths[0], &e));
            f.extra.insert("source".into(), paths[0].clone().into());
            f
        })?;
        out.extend(file_object(&s));
    } else {
        let mut files = Vec::with_capacity(results.len());
        let mut errors = Vec::new();
        for (path, r) in paths.iter().zip(results) {
            match r {
                Ok(s) => files.push(Value::Object(file_object(&s))),
                Err(e) => errors.push((path.clone(), message(path, &e))),
            }
        }
        if !errors.is_empty() {
            let mut f = Failure::new(format!(
                "cannot read {} of {} files: {}",
                errors.len(),
                paths.len(),
                errors
                    .iter()
                    .map(|(_, m)| m.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            f.extra.insert(
                "failed_paths".into(),
                errors.into_iter().map(|(p, _)| Value::String(p)).collect(),
            );
            return Err(f);
        }
        out.insert("files".into(), Value::Array(files));
    }
    out.insert("changed".into(), false.into());
    out.insert("invocation".into(), Value::Object(invocation));
    Ok(out)
}

/// `main` of the `sshfleet_slurp` binary.
pub fn main() -> i32 {
    super::main_with(&spec(), handler)
}

#[cfg(test)]
mod tests {
    use super::super::run_on;
    use super::*;
    use base64::Engine;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn run(args: Value) -> (Value, i32) {
        let (m, code) = run_on(&spec(), args.to_string().as_bytes(), handler);
        (Value::Object(m), code)
    }

    #[test]
    fn single_path_is_ansible_slurp_shaped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        let data: Vec<u8> = (0u8..=255).chain([0, 10, 13]).collect();
        std::fs::write(&f, &data).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (out, code) = run(json!({"path": f.to_str().unwrap()}));
        assert_eq!(code, 0, "{out}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        assert_eq!(out["content"], json!(b64));
        assert_eq!(out["encoding"], json!("base64"));
        assert_eq!(out["source"], json!(f.to_str().unwrap()));
        assert_eq!(out["size"], json!(data.len()));
        assert_eq!(out["mode"], json!("0640"));
        assert_eq!(
            out["sha256"],
            json!(crate::target::hex(&crate::files::checksum::sha256(&data)))
        );
        assert_eq!(out["changed"], json!(false));
        assert!(out.get("files").is_none());
    }

    #[test]
    fn many_paths_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "A\n").unwrap();
        std::fs::write(&b, "").unwrap();
        let (out, code) = run(json!({"paths": [a.to_str().unwrap(), b.to_str().unwrap()]}));
        assert_eq!(code, 0, "{out}");
        let files = out["files"].as_array().unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0]["content"], json!("QQo="));
        assert_eq!(files[1]["content"], json!(""));
        assert_eq!(files[1]["size"], json!(0));
        assert!(out.get("content").is_none());

        let missing = dir.path().join("nope");
        let (out, code) = run(json!({"paths": [
            a.to_str().unwrap(), missing.to_str().unwrap(), dir.path().to_str().unwrap()
        ]}));
        assert_eq!(code, 1);
        let msg = out["msg"].as_str().unwrap();
        assert!(msg.starts_with("cannot read 2 of 3 files: "), "{msg}");
        assert!(
            msg.contains(&format!("File not found: {}", missing.display())),
            "{msg}"
        );
        assert!(out.get("files").is_none(), "no partial result: {out}");
        assert_eq!(out["failed_paths"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn errors_like_ansible() {
        let (out, code) = run(json!({"src": "/nonexistent/sshfleet/x"}));
        assert_eq!(code, 1);
        assert_eq!(out["msg"], json!("File not found: /nonexistent/sshfleet/x"));
        let (out, _) = run(json!({}));
        assert_eq!(
            out["msg"],
            json!("one of the following is required: src, paths")
        );
        let (out, _) = run(json!({"src": "/a", "paths": ["/b"]}));
        assert_eq!(
            out["msg"],
            json!("parameters are mutually exclusive: src|paths")
        );
        let (out, _) = run(json!({"src": "/a", "max_size": 0}));
        assert!(out["msg"].as_str().unwrap().starts_with("max_size must be"));
    }

    #[test]
    fn size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        std::fs::write(&f, vec![b'x'; 100]).unwrap();
        let (out, code) = run(json!({"src": f.to_str().unwrap(), "max_size": 99}));
        assert_eq!(code, 1);
        assert!(
            out["msg"].as_str().unwrap().contains("slurp limit"),
            "{out}"
        );
        let (_, code) = run(json!({"src": f.to_str().unwrap(), "max_size": 100}));
        assert_eq!(code, 0);
    }
}
