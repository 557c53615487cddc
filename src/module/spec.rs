//! A small declarative argument spec with Ansible's validation order, type coercions and
//! error wording (`ansible.module_utils.common.arg_spec` / `parameters` / `validation`), so a
//! module binary rejects bad arguments exactly where and how an `AnsibleModule` would.
//!
//! Order of checks (Ansible reports the first error): mutually exclusive sets, required
//! arguments, types, choices, "one of" sets, and last unsupported parameters.

use serde_json::{Map, Value};

/// The type of an option, as in an Ansible `argument_spec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    Str,
    Bool,
    Int,
    /// A list; a string is split at commas, a number becomes a one-item list.
    List,
    /// A string with `~` and `$VAR` expanded.
    Path,
    /// Any JSON value, unchanged.
    Raw,
}

impl ArgType {
    fn name(self) -> &'static str {
        match self {
            ArgType::Str => "str",
            ArgType::Bool => "bool",
            ArgType::Int => "int",
            ArgType::List => "list",
            ArgType::Path => "path",
            ArgType::Raw => "raw",
        }
    }
}

/// One option.
#[derive(Debug, Clone)]
pub struct ArgSpec {
    pub name: &'static str,
    pub ty: ArgType,
    pub required: bool,
    pub default: Option<Value>,
    pub choices: &'static [&'static str],
    pub aliases: &'static [&'static str],
    /// For lists: the type of each element.
    pub elements: Option<ArgType>,
    /// Never echoed back (masked as Ansible masks no_log values).
    pub no_log: bool,
}

impl ArgSpec {
    pub fn new(name: &'static str, ty: ArgType) -> Self {
        ArgSpec {
            name,
            ty,
            required: false,
            default: None,
            choices: &[],
            aliases: &[],
            elements: None,
            no_log: false,
        }
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self
    }
    pub fn choices(mut self, c: &'static [&'static str]) -> Self {
        self.choices = c;
        self
    }
    pub fn aliases(mut self, a: &'static [&'static str]) -> Self {
        self.aliases = a;
        self
    }
    pub fn elements(mut self, t: ArgType) -> Self {
        self.elements = Some(t);
        self
    }
    pub fn no_log(mut self) -> Self {
        self.no_log = true;
        self
    }
}

/// A module's whole argument spec.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// Module name, as used in messages (`Unsupported parameters for (NAME) module`).
    pub name: &'static str,
    pub args: Vec<ArgSpec>,
    pub mutually_exclusive: Vec<Vec<&'static str>>,
    pub required_one_of: Vec<Vec<&'static str>>,
    pub supports_check_mode: bool,
}

/// The mask Ansible puts in place of no_log values.
pub const NO_LOG_MASK: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";

/// Validated options: canonical names only, coerced, defaults applied, unset ones `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    values: Map<String, Value>,
    no_log: Vec<&'static str>,
    /// Warnings produced while validating (e.g. an option given under two names).
    pub warnings: Vec<String>,
}

impl Params {
    pub fn get(&self, name: &str) -> &Value {
        self.values.get(name).unwrap_or(&Value::Null)
    }
    pub fn str(&self, name: &str) -> Option<String> {
        self.get(name).as_str().map(str::to_string)
    }
    pub fn bool(&self, name: &str) -> bool {
        self.get(name).as_bool().unwrap_or(false)
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).as_i64()
    }
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).as_array().map(|a| {
            a.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
    }
    /// Every option with its validated value, in spec order; no_log options masked (all of
    /// them when `mask_all`). This is what Ansible modules echo back.
    pub fn echo(&self, mask_all: bool) -> Map<String, Value> {
        self.values
            .iter()
            .map(|(k, v)| {
                let masked = !v.is_null() && (mask_all || self.no_log.contains(&k.as_str()));
                let v = if masked {
                    Value::String(NO_LOG_MASK.into())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// Python's type name for a JSON value (what Ansible's messages say).
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's `str()` of a scalar.
fn py_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(true) => Some("True".into()),
        Value::Bool(false) => Some("False".into()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// Python's `repr()`, approximately (used in messages only).
fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Null => "None".into(),
        other => py_str(other).unwrap_or_else(|| other.to_string()),
    }
}

const BOOLEANS_TRUE: &[&str] = &["y", "yes", "on", "1", "true", "t"];
const BOOLEANS_FALSE: &[&str] = &["n", "no", "off", "0", "false", "f"];

/// Ansible's `boolean()`: bools, the strings above (case-insensitive, trimmed), 1/0.
pub fn to_bool(v: &Value) -> Result<bool, String> {
    let s = match v {
        Value::Bool(b) => return Ok(*b),
        Value::String(s) => s.trim().to_lowercase(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f == 1.0 {
                return Ok(true);
            }
            if f == 0.0 {
                return Ok(false);
            }
            n.to_string()
        }
        other => {
            return Err(format!(
                "<class '{}'> cannot be converted to a bool",
                py_type(other)
            ));
        }
    };
    if BOOLEANS_TRUE.contains(&s.as_str()) {
        Ok(true)
    } else if BOOLEANS_FALSE.contains(&s.as_str()) {
        Ok(false)
    } else {
        let valid: Vec<String> = BOOLEANS_TRUE
            .iter()
            .chain(BOOLEANS_FALSE)
            .map(|b| format!("'{b}'"))
            .chain(["1", "0", "True", "False"].map(String::from))
            .collect();
        Err(format!(
            "The value '{}' is not a valid boolean. Valid booleans include: {}",
            py_str(v).unwrap_or_default(),
            valid.join(", ")
        ))
    }
}

/// `~`, `~user` and `$VAR`/`${VAR}` expansion like Python's `expanduser(expandvars(p))`
/// in this process (unknown variables and users are left as written).
pub fn expand_path(p: &str) -> String {
    use crate::files::expand;
    let p = expand::expand_vars(p, |name| std::env::var(name).ok());
    let home = match expand::tilde_user(&p) {
        Some("") => std::env::var("HOME").ok(),
        Some(name) => crate::target::local::lookup_user(name)
            .ok()
            .flatten()
            .map(|u| u.home),
        None => None,
    };
    expand::expand_user(&p, home.as_deref())
}

fn coerce(ty: ArgType, v: &Value) -> Result<Value, String> {
    match ty {
        ArgType::Raw => Ok(v.clone()),
        ArgType::Str | ArgType::Path => {
            let s = py_str(v)
                .ok_or_else(|| format!("'{}' is not a string and conversion is not allowed", v))?;
            Ok(Value::String(if ty == ArgType::Path {
                expand_path(&s)
            } else {
                s
            }))
        }
        ArgType::Bool => to_bool(v).map(Value::Bool),
        ArgType::Int => {
            let bad = || format!("\"{}\" cannot be converted to an int", py_repr(v));
            match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
                Value::Number(n) => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Value::from(f as i64)),
                    _ => Err(bad()),
                },
                Value::String(s) => {
                    let t = s.trim();
                    if let Ok(i) = t.parse::<i64>() {
                        Ok(Value::from(i))
                    } else {
                        match t.parse::<f64>() {
                            Ok(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                                Ok(Value::from(f as i64))
                            }
                            _ => Err(bad()),
                        }
                    }
                }
                _ => Err(bad()),
            }
        }
        ArgType::List => match v {
            Value::Array(_) => Ok(v.clone()),
            Value::String(s) => Ok(Value::Array(
                s.split(',').map(|p| Value::String(p.into())).collect(),
            )),
            Value::Number(_) => Ok(Value::Array(vec![Value::String(py_str(v).unwrap())])),
            other => Err(format!(
                "<class '{}'> cannot be converted to a list",
                py_type(other)
            )),
        },
    }
}

impl ModuleSpec {
    fn find(&self, name: &str) -> Option<&ArgSpec> {
        self.args
            .iter()
            .find(|a| a.name == name || a.aliases.contains(&name))
    }

    /// Validate task options (no `_ansible_*` keys) as `AnsibleModule` would; the error is
    /// the message Ansible would fail with.
    pub fn validate(&self, input: &Map<String, Value>) -> Result<Params, String> {
        let mut errors: Vec<String> = Vec::new();
        let mut warnings = Vec::new();
        let mut given: Map<String, Value> = Map::new();
        let mut unsupported: Vec<&str> = Vec::new();
        for (k, v) in input {
            match self.find(k) {
                Some(a) if a.name == k => {
                    given.entry(a.name.to_string()).or_insert_with(|| v.clone());
                }
                Some(a) => {
                    if input.contains_key(a.name) {
                        warnings.push(format!("Both option {} and its alias {k} are set.", a.name));
                    }
                    given.insert(a.name.to_string(), v.clone());
                }
                None => unsupported.push(k),
            }
        }
        let present = |n: &str| given.get(n).is_some_and(|v| !v.is_null());
        for set in &self.mutually_exclusive {
            if set.iter().filter(|n| present(n)).count() > 1 {
                errors.push(format!(
                    "parameters are mutually exclusive: {}",
                    set.join("|")
                ));
            }
        }
        let mut missing: Vec<&str> = self
            .args
            .iter()
            .filter(|a| a.required && !present(a.name))
            .map(|a| a.name)
            .collect();
        missing.sort_unstable();
        if !missing.is_empty() {
            errors.push(format!(
                "missing required arguments: {}",
                missing.join(", ")
            ));
        }
        let mut values = Map::new();
        for a in &self.args {
            let raw = match given.get(a.name) {
                Some(v) if !v.is_null() => v.clone(),
                _ => a.default.clone().unwrap_or(Value::Null),
            };
            if raw.is_null() {
                values.insert(a.name.to_string(), Value::Null);
                continue;
            }
            let mut v = match coerce(a.ty, &raw) {
                Ok(v) => v,
                Err(e) => {
                    errors.push(format!(
                        "argument '{}' is of type {} and we were unable to convert to {}: {e}",
                        a.name,
                        py_type(&raw),
                        a.ty.name()
                    ));
                    continue;
                }
            };
            if let (Some(et), Value::Array(items)) = (a.elements, &v) {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match coerce(et, item) {
                        Ok(x) => out.push(x),
                        Err(e) => {
                            errors.push(format!(
                                "Elements value for option '{}' is of type {} and we were unable to convert to {}: {e}",
                                a.name,
                                py_type(item),
                                et.name()
                            ));
                        }
                    }
                }
                v = Value::Array(out);
            }
            if !a.choices.is_empty() {
                let s = py_str(&v).unwrap_or_else(|| v.to_string());
                if !a.choices.contains(&s.as_str()) {
                    errors.push(format!(
                        "value of {} must be one of: {}, got: {s}",
                        a.name,
                        a.choices.join(", ")
                    ));
                }
            }
            values.insert(a.name.to_string(), v);
        }
        for set in &self.required_one_of {
            if !set.iter().any(|n| present(n)) {
                errors.push(format!(
                    "one of the following is required: {}",
                    set.join(", ")
                ));
            }
        }
        // Ansible collects unsupported parameters first but appends that error after all
        // the others, and reports the first error.
        if !unsupported.is_empty() {
            unsupported.sort_unstable();
            let mut names: Vec<&str> = self.args.iter().map(|a| a.name).collect();
            names.sort_unstable();
            let mut aliases: Vec<&str> = self
                .args
                .iter()
                .flat_map(|a| a.aliases.iter().copied())
                .collect();
            aliases.sort_unstable();
            let mut supported = names.join(", ");
            if !aliases.is_empty() {
                supported.push_str(&format!(" ({})", aliases.join(", ")));
            }
            errors.push(format!(
                "Unsupported parameters for ({}) module: {}. Supported parameters include: {supported}.",
                self.name,
                unsupported.join(", ")
            ));
        }
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(Params {
                values,
                no_log: self
                    .args
                    .iter()
                    .filter(|a| a.no_log)
                    .map(|a| a.name)
                    .collect(),
                warnings,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ModuleSpec {
        ModuleSpec {
            name: "demo",
            args: vec![
                ArgSpec::new("user", ArgType::Str).required(),
                ArgSpec::new("key", ArgType::Str).aliases(&["pubkey"]),
                ArgSpec::new("keys", ArgType::List).elements(ArgType::Str),
                ArgSpec::new("state", ArgType::Str)
                    .default("present")
                    .choices(&["absent", "present"]),
                ArgSpec::new("flag", ArgType::Bool).default(false),
                ArgSpec::new("count", ArgType::Int),
                ArgSpec::new("secret", ArgType::Str).no_log(),
                ArgSpec::new("path", ArgType::Path),
            ],
            mutually_exclusive: vec![vec!["key", "keys"]],
            required_one_of: vec![vec!["key", "keys"]],
            supports_check_mode: true,
        }
    }

    fn check(input: Value) -> Result<Params, String> {
        spec().validate(input.as_object().unwrap())
    }

    #[test]
    fn errors_worded_like_ansible() {
        let cases = [
            (json!({"key": "k"}), "missing required arguments: user"),
            (
                json!({"user": "u", "key": "k", "foo": 1, "bar": 2}),
                "Unsupported parameters for (demo) module: bar, foo. Supported parameters include: count, flag, key, keys, path, secret, state, user (pubkey).",
            ),
            (
                json!({"user": "u", "key": "k", "keys": ["a"]}),
                "parameters are mutually exclusive: key|keys",
            ),
            (
                json!({"user": "u"}),
                "one of the following is required: key, keys",
            ),
            (
                json!({"user": "u", "key": "k", "state": "gone"}),
                "value of state must be one of: absent, present, got: gone",
            ),
            (
                json!({"user": "u", "key": "k", "flag": "maybe"}),
                "argument 'flag' is of type str and we were unable to convert to bool: The value 'maybe' is not a valid boolean.",
            ),
            (
                json!({"user": "u", "key": "k", "count": "ten"}),
                "argument 'count' is of type str and we were unable to convert to int: \"'ten'\" cannot be converted to an int",
            ),
            (
                json!({"user": ["a"], "key": "k"}),
                "argument 'user' is of type list and we were unable to convert to str:",
            ),
            (
                json!({"user": "u", "keys": {"a": 1}}),
                "argument 'keys' is of type dict and we were unable to convert to list: <class 'dict'> cannot be converted to a list",
            ),
            (
                json!({"user": null, "key": "k"}),
                "missing required arguments: user",
            ),
            (json!({"foo": 1}), "missing required arguments: user"),
        ];
        for (input, want) in cases {
            let e = check(input.clone()).unwrap_err();
            assert!(e.starts_with(want), "{input}: {e}");
        }
    }

    #[test]
    fn coercions_like_ansible() {
        for (v, want) in [
            (json!("yes"), true),
            (json!(" True "), true),
            (json!("on"), true),
            (json!(1), true),
            (json!("1"), true),
            (json!("no"), false),
            (json!("F"), false),
            (json!(0), false),
            (json!(false), false),
        ] {
            let p = check(json!({"user": "u", "key": "k", "flag": v})).unwrap();
            assert_eq!(p.bool("flag"), want, "{v}");
        }
        let p = check(json!({"user": 5, "pubkey": "k", "count": "7", "keys": null})).unwrap();
        assert_eq!(p.str("user").as_deref(), Some("5"));
        assert_eq!(p.str("key").as_deref(), Some("k"));
        assert_eq!(p.int("count"), Some(7));
        assert_eq!(p.str("state").as_deref(), Some("present"));
        assert!(p.get("keys").is_null());
        let p = check(json!({"user": true, "keys": "a,b"})).unwrap();
        assert_eq!(p.str("user").as_deref(), Some("True"));
        assert_eq!(p.list("keys"), Some(vec!["a".into(), "b".into()]));
        let p = check(json!({"user": "u", "keys": [1, "x"]})).unwrap();
        assert_eq!(p.list("keys"), Some(vec!["1".into(), "x".into()]));
    }

    #[test]
    fn echo_masks_no_log() {
        let p = check(json!({"user": "u", "key": "k", "secret": "s3"})).unwrap();
        let e = p.echo(false);
        assert_eq!(e["secret"], json!(NO_LOG_MASK));
        assert_eq!(e["user"], json!("u"));
        assert_eq!(e["path"], Value::Null);
        let keys: Vec<&String> = e.keys().collect();
        assert_eq!(
            keys,
            [
                "user", "key", "keys", "state", "flag", "count", "secret", "path"
            ]
        );
        assert_eq!(p.echo(true)["user"], json!(NO_LOG_MASK));
    }

    #[test]
    fn path_expansion() {
        // SAFETY: tests in this module do not read these variables concurrently.
        unsafe {
            std::env::set_var("SSHFLEET_T_DIR", "/srv/x");
        }
        assert_eq!(expand_path("$SSHFLEET_T_DIR/a"), "/srv/x/a");
        assert_eq!(expand_path("${SSHFLEET_T_DIR}b"), "/srv/xb");
        assert_eq!(expand_path("$SSHFLEET_T_UNSET/a"), "$SSHFLEET_T_UNSET/a");
        assert_eq!(expand_path("/a/$"), "/a/$");
        assert_eq!(expand_path("/plain"), "/plain");
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            expand_path("~/k"),
            format!("{}/k", home.trim_end_matches('/'))
        );
        assert_eq!(
            expand_path("~no-such-user-sshfleet/k"),
            "~no-such-user-sshfleet/k"
        );
        assert_eq!(expand_path("~root/k"), "/root/k");
    }
}
