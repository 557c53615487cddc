//! The Ansible binary-module protocol: args file in, operation, one JSON object out.
//!
//! Ansible copies a binary module to the managed host and runs `MODULE ARGS_FILE`; the file
//! holds one flat JSON object: the task's options plus internal `_ansible_*` keys. This module
//! splits off the internal keys (honouring `_ansible_check_mode`, `_ansible_diff`,
//! `_ansible_no_log`, tolerating any other), validates the options against a declarative
//! [`spec::ModuleSpec`] with Ansible's wording, calls the module's handler, and prints exactly
//! one JSON object on stdout: the handler's result (always with `changed`), or
//! `{"failed": true, "msg": ...}` for every error, a panic included. Binary modules get no
//! check-mode help from Ansible, so the handler receives the mode and must honour it.
//!
//! One file per module ([`authorized_key`], [`slurp`], [`copy`]); `src/bin/NAME.rs` only calls its `main`.

pub mod authorized_key;
pub mod copy;
pub mod copy_src;
pub mod slurp;
pub mod spec;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::{Map, Value};

use spec::{ModuleSpec, Params, to_bool};

/// Largest args file accepted (Ansible's are small; a huge one is an error, not an OOM).
const MAX_ARGS_FILE: u64 = 64 << 20;

/// One module run: validated options and the internal flags.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub params: Params,
    /// `_ansible_check_mode`: compute and report, change nothing.
    pub check_mode: bool,
    /// `_ansible_diff`: return a `diff`.
    pub diff: bool,
    /// `_ansible_no_log`: return no option values or content.
    pub no_log: bool,
}

/// A module failure: `msg` plus any extra return values.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub msg: String,
    pub extra: Map<String, Value>,
}

impl Failure {
    pub fn new(msg: impl Into<String>) -> Self {
        Failure {
            msg: msg.into(),
            extra: Map::new(),
        }
    }
}

/// What a handler returns: its return values, or a failure.
pub type ModuleResult = Result<Map<String, Value>, Failure>;

/// The internal flags Ansible passes (anything else under `_ansible_` is ignored).
fn flag(internal: &Map<String, Value>, name: &str) -> bool {
    internal
        .get(name)
        .map(|v| to_bool(v).unwrap_or(false))
        .unwrap_or(false)
}

/// Parse and validate an args file's content.
pub fn parse_args(spec: &ModuleSpec, text: &[u8]) -> Result<Invocation, Failure> {
    let value: Value = serde_json::from_slice(text)
        .map_err(|e| Failure::new(format!("module arguments are not valid JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(Failure::new("module arguments must be a JSON object"));
    };
    // Tolerate the new-style wrapper too.
    if obj.len() == 1
        && let Some(Value::Object(inner)) = obj.get("ANSIBLE_MODULE_ARGS")
    {
        obj = inner.clone();
    }
    let (internal, options): (Map<String, Value>, Map<String, Value>) = obj
        .into_iter()
        .partition(|(k, _)| k.starts_with("_ansible_"));
    let no_log = flag(&internal, "_ansible_no_log");
    let params = spec.validate(&options).map_err(Failure::new)?;
    Ok(Invocation {
        params,
        check_mode: flag(&internal, "_ansible_check_mode"),
        diff: flag(&internal, "_ansible_diff"),
        no_log,
    })
}

/// Run a module on an args file's content and produce its one JSON object and exit code.
pub fn run_on(
    spec: &ModuleSpec,
    text: &[u8],
    handler: fn(&Invocation) -> ModuleResult,
) -> (Map<String, Value>, i32) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let inv = parse_args(spec, text)?;
        if inv.check_mode && !spec.supports_check_mode {
            let mut m = Map::new();
            m.insert("skipped".into(), Value::Bool(true));
            m.insert("changed".into(), Value::Bool(false));
            m.insert(
                "msg".into(),
                format!("remote module ({}) does not support check mode", spec.name).into(),
            );
            return Ok(m);
        }
        let mut out = handler(&inv)?;
        out.entry("changed").or_insert(Value::Bool(false));
        if !inv.params.warnings.is_empty() {
            let w = out
                .entry("warnings")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = w {
                list.extend(inv.params.warnings.iter().cloned().map(Value::String));
            }
        }
        Ok(out)
    }));
    match result {
        Ok(Ok(out)) => (out, 0),
        Ok(Err(f)) => (failure_object(f), 1),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            (
                failure_object(Failure::new(format!(
                    "internal error in module {}: {what}",
                    spec.name
                ))),
                1,
            )
        }
    }
}

fn failure_object(f: Failure) -> Map<String, Value> {
    let mut m = f.extra;
    m.insert("failed".into(), Value::Bool(true));
    m.insert("msg".into(), Value::String(f.msg));
    m.entry("changed").or_insert(Value::Bool(false));
    m
}

/// The `main` of a module binary: read `argv[1]`, run, print one JSON object, return the
/// exit code (0 ok, 1 failed).
pub fn main_with(spec: &ModuleSpec, handler: fn(&Invocation) -> ModuleResult) -> i32 {
    // Panics become a `failed` result; keep stderr quiet so stdout stays the one object.
    // Built with panic=abort (the size-optimised `module` profile) nothing unwinds to
    // `run_on`, so the hook itself prints the failure object and exits 1.
    let name = spec.name;
    std::panic::set_hook(Box::new(move |info| {
        if cfg!(panic = "abort") {
            let what = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let out = failure_object(Failure::new(format!(
                "internal error in module {name}: {what}"
            )));
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", Value::Object(out));
            let _ = stdout.flush();
            std::process::exit(1);
        }
    }));
    let text = match std::env::args_os().nth(1) {
        None => Err(format!(
            "usage: {} ARGS_FILE (an Ansible module: run it from a playbook or with `ansible -m`)",
            spec.name
        )),
        Some(path) => read_args_file(&path),
    };
    let (out, code) = match text {
        Ok(text) => run_on(spec, &text, handler),
        Err(msg) => (failure_object(Failure::new(msg)), 1),
    };
    let mut stdout = std::io::stdout().lock();
    let line = serde_json::to_string(&Value::Object(out)).unwrap_or_else(|e| {
        format!(r#"{{"failed": true, "msg": "cannot serialize the result: {e}"}}"#)
    });
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
    code
}

/// The arguments from the file `path`, or from stdin when `path` is `-` (how the
/// collection's action plugin passes them: never on a command line, and without reopening
/// `/dev/stdin`, which a become user may not open when the pipe belongs to the login user).
fn read_args_file(path: &std::ffi::OsStr) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let shown = path.to_string_lossy();
    let f: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(path)
                .map_err(|e| format!("cannot read the module arguments file {shown}: {e}"))?,
        )
    };
    let mut buf = Vec::new();
    f.take(MAX_ARGS_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read the module arguments file {shown}: {e}"))?;
    if buf.len() as u64 > MAX_ARGS_FILE {
        return Err(format!(
            "the module arguments file {shown} is larger than {MAX_ARGS_FILE} bytes"
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::spec::{ArgSpec, ArgType};
    use super::*;
    use serde_json::json;

    fn spec() -> ModuleSpec {
        ModuleSpec {
            name: "demo",
            args: vec![
                ArgSpec::new("name", ArgType::Str).required(),
                ArgSpec::new("boom", ArgType::Bool).default(false),
            ],
            mutually_exclusive: vec![],
            required_one_of: vec![],
            supports_check_mode: true,
        }
    }

    fn handler(inv: &Invocation) -> ModuleResult {
        if inv.params.bool("boom") {
            panic!("kaboom");
        }
        let mut m = inv.params.echo(inv.no_log);
        m.insert("check".into(), inv.check_mode.into());
        m.insert("diff".into(), inv.diff.into());
        Ok(m)
    }

    fn run(v: Value) -> (Value, i32) {
        let (m, code) = run_on(&spec(), v.to_string().as_bytes(), handler);
        (Value::Object(m), code)
    }

    #[test]
    fn internal_keys_honoured_and_tolerated() {
        let (out, code) = run(json!({
            "name": "x",
            "_ansible_check_mode": true,
            "_ansible_diff": "yes",
            "_ansible_verbosity": 3,
            "_ansible_some_future_key": {"a": 1},
        }));
        assert_eq!(code, 0);
        assert_eq!(out["check"], json!(true));
        assert_eq!(out["diff"], json!(true));
        assert_eq!(out["changed"], json!(false));
        assert_eq!(out["name"], json!("x"));
        let (out, _) = run(json!({"name": "x", "_ansible_no_log": true}));
        assert_eq!(out["name"], json!(spec::NO_LOG_MASK));
    }

    #[test]
    fn every_error_is_failed_with_msg() {
        for (input, want) in [
            (json!({}).to_string(), "missing required arguments: name"),
            (
                json!({"name": "x", "boom": true}).to_string(),
                "internal error in module demo: kaboom",
            ),
            (
                "[1,2]".to_string(),
                "module arguments must be a JSON object",
            ),
            (
                "{not json".to_string(),
                "module arguments are not valid JSON",
            ),
        ] {
            let (out, code) = run_on(&spec(), input.as_bytes(), handler);
            assert_eq!(code, 1, "{input}");
            assert_eq!(out["failed"], json!(true));
            let msg = out["msg"].as_str().unwrap();
            assert!(msg.starts_with(want), "{input}: {msg}");
        }
    }
}
