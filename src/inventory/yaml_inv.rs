//! The YAML inventory format, read as Ansible's `yaml` inventory plugin reads it.
//!
//! Top-level keys are groups; each group may have `hosts:`, `children:` (groups, recursively
//! the same shape) and `vars:`; a string in place of a section means a one-entry mapping.
//! Where the plugin only warns (a non-mapping group, an unknown key) we warn the same way;
//! where it fails (wrong section type, non-string host names, bad nesting) we fail with the
//! file and line.

use std::path::Path;

use serde_json::Value;

use super::InventoryError;
use super::address::expand_hostpattern;
use super::data::Data;
use super::yaml::{Kind, Node};

struct Ctx<'a> {
    data: &'a mut Data,
    path: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, line: usize, msg: impl Into<String>) -> InventoryError {
        if line == 0 {
            InventoryError::File {
                path: self.path.to_path_buf(),
                msg: msg.into(),
            }
        } else {
            InventoryError::Parse {
                path: self.path.to_path_buf(),
                line,
                msg: msg.into(),
            }
        }
    }

    fn warn(&mut self, msg: String) {
        self.data.warnings.push(msg);
    }

    fn value(&self, var: &str, node: &Node) -> Result<Value, InventoryError> {
        node.to_json().map_err(|line| {
            self.err(
                line,
                format!("variable '{var}': vault-encrypted values are not supported"),
            )
        })
    }
}

fn py_type(n: &Node) -> String {
    format!("<class '{}'>", n.type_name())
}

/// Parse a loaded YAML document as an inventory. The caller has checked it is a non-empty
/// mapping without a `plugin` key.
pub fn parse(data: &mut Data, path: &Path, root: &Node) -> Result<(), InventoryError> {
    let mut cx = Ctx { data, path };
    let Kind::Map(pairs) = &root.kind else {
        return Err(cx.err(
            root.line,
            format!(
                "YAML inventory has invalid structure, it should be a dictionary, got: {}",
                py_type(root)
            ),
        ));
    };
    for (k, v) in pairs {
        parse_group(&mut cx, k, v)?;
    }
    Ok(())
}

fn group_name(cx: &Ctx, key: &Node) -> Result<String, InventoryError> {
    match &key.kind {
        Kind::Scalar(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Kind::Scalar(Value::String(_)) | Kind::Scalar(Value::Null) | Kind::Scalar(Value::Bool(false)) => Err(cx.err(
            key.line,
            format!("Unable to add group {}: Invalid empty/false group name provided", key.key_string()),
        )),
        _ => Err(cx.err(
            key.line,
            format!(
                "Unable to add group {0}: Invalid group name supplied, expected a string but got {1} for {0}",
                key.key_string(),
                py_type(key)
            ),
        )),
    }
}

/// `_parse_group`: returns the group name (even when the definition was skipped).
fn parse_group(cx: &mut Ctx, key: &Node, val: &Node) -> Result<String, InventoryError> {
    let is_map = matches!(val.kind, Kind::Map(_));
    if !(is_map || val.is_null()) {
        let name = key.key_string();
        cx.warn(format!(
            "Skipping '{name}' as this is not a valid group definition ({}:{})",
            cx.path.display(),
            key.line
        ));
        return Ok(name);
    }
    let group = group_name(cx, key)?;
    cx.data
        .add_group(&group)
        .map_err(|e| cx.err(key.line, format!("Unable to add group {group}: {e}")))?;
    let Kind::Map(sections) = &val.kind else {
        return Ok(group);
    };
    // Strings stand for one-entry mappings; other non-mappings in the three sections fail.
    let normalised: Vec<(&Node, Node)> = sections
        .iter()
        .map(|(k, v)| {
            let is_section = matches!(k.as_str(), Some("vars" | "children" | "hosts"));
            if is_section && let Kind::Scalar(Value::String(_)) = &v.kind {
                let one = Node {
                    line: v.line,
                    kind: Kind::Map(vec![(
                        v.clone(),
                        Node {
                            line: v.line,
                            kind: Kind::Scalar(Value::Null),
                        },
                    )]),
                };
                return (k, one);
            }
            (k, v.clone())
        })
        .collect();
    for (k, v) in &normalised {
        if let Some(section @ ("vars" | "children" | "hosts")) = k.as_str()
            && !(matches!(v.kind, Kind::Map(_)) || v.is_null())
        {
            return Err(cx.err(
                v.line.max(k.line),
                format!(
                    "Invalid \"{section}\" entry for \"{group}\" group, requires a dictionary, found \"{}\" instead.",
                    py_type(v)
                ),
            ));
        }
    }
    for (k, v) in &normalised {
        let kname = k.key_string();
        if !(matches!(v.kind, Kind::Map(_)) || v.is_null()) {
            cx.warn(format!(
                "Skipping key ({kname}) in group ({group}) as it is not a mapping, it is a {} ({}:{})",
                py_type(v),
                cx.path.display(),
                k.line
            ));
            continue;
        }
        let Kind::Map(entries) = &v.kind else {
            continue; // None: skipped silently (Ansible logs it at -vvv)
        };
        match k.as_str() {
            Some("vars") => {
                for (var, value) in entries {
                    let name = var.key_string();
                    let value = cx.value(&name, value)?;
                    cx.data
                        .set_variable(&group, &name, value)
                        .map_err(|e| cx.err(var.line, e))?;
                }
            }
            Some("children") => {
                for (sub, subval) in entries {
                    let child = parse_group(cx, sub, subval)?;
                    cx.data.add_child(&group, &child).map_err(|e| cx.err(sub.line, e))?;
                }
            }
            Some("hosts") => {
                for (pattern, hostvars) in entries {
                    let Some(p) = pattern.as_str() else {
                        return Err(cx.err(
                            pattern.line,
                            format!(
                                "Host pattern {} must be a string. Enclose integers/floats in quotation marks.",
                                pattern.key_string()
                            ),
                        ));
                    };
                    let (hosts, port) = expand_hostpattern(p).map_err(|e| cx.err(pattern.line, e))?;
                    let vars: &[(Node, Node)] = match &hostvars.kind {
                        Kind::Map(m) => m,
                        Kind::Scalar(Value::Null) => &[],
                        Kind::Scalar(Value::String(s)) if s.is_empty() => &[],
                        Kind::Scalar(Value::Bool(false)) => &[],
                        Kind::Scalar(Value::Number(n)) if n.as_f64() == Some(0.0) => &[],
                        Kind::Seq(s) if s.is_empty() => &[],
                        _ => {
                            return Err(cx.err(
                                hostvars.line.max(pattern.line),
                                format!(
                                    "Invalid data from file, expected dictionary and got: {} for host {p}",
                                    py_type(hostvars)
                                ),
                            ));
                        }
                    };
                    let mut typed = Vec::with_capacity(vars.len());
                    for (var, value) in vars {
                        let name = var.key_string();
                        typed.push((name.clone(), cx.value(&name, value)?, var.line));
                    }
                    for h in &hosts {
                        cx.data
                            .add_host(h, Some(&group), port)
                            .map_err(|e| cx.err(pattern.line, e))?;
                        for (name, value, line) in &typed {
                            cx.data
                                .set_variable(h, name, value.clone())
                                .map_err(|e| cx.err(*line, e))?;
                        }
                    }
                }
            }
            _ => cx.warn(format!(
                "Skipping unexpected key ({kname}) in group ({group}), only \"vars\", \"children\" and \"hosts\" are valid ({}:{})",
                cx.path.display(),
                k.line
            )),
        }
    }
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::yaml::load;
    use serde_json::json;

    fn parse_str(text: &str) -> Result<Data, InventoryError> {
        let mut d = Data::new();
        let root = load(text).unwrap().unwrap();
        parse(&mut d, Path::new("inv.yml"), &root)?;
        d.reconcile();
        Ok(d)
    }

    #[test]
    fn nested_groups_hosts_vars() {
        let d = parse_str(
            "all:\n  vars:\n    a: 1\n  hosts:\n    lone:\n  children:\n    web:\n      hosts:\n        web[1:2]:2222:\n          x: yes\n      vars:\n        g: on\n    prod:\n      children:\n        web:\n",
        )
        .unwrap();
        assert_eq!(d.groups[0].vars["a"], json!(1));
        let web = d.group("web").unwrap();
        assert_eq!(d.groups[web].hosts.len(), 2);
        assert_eq!(d.groups[web].vars["g"], json!(true));
        let h = d.host("web2").unwrap();
        assert_eq!(d.hosts[h].vars["ansible_port"], json!(2222));
        assert_eq!(d.hosts[h].vars["x"], json!(true));
        assert_eq!(d.groups[web].parents.len(), 2);
    }

    #[test]
    fn strings_stand_for_mappings() {
        let d = parse_str("web:\n  hosts: h1\n  children: sub\n").unwrap();
        assert!(d.host("h1").is_some());
        assert!(d.group("sub").is_some());
    }

    #[test]
    fn warnings_and_errors() {
        let d = parse_str("web: 5\ndb:\n  hostz: {}\n  vars: {a: 1}\n  hosts: {}\n  other: 3\n")
            .unwrap();
        assert_eq!(d.warnings.len(), 3, "{:?}", d.warnings);
        assert!(d.group("web").is_none());
        let e = parse_str("web:\n  hosts:\n    - a\n").unwrap_err();
        assert!(matches!(e, InventoryError::Parse { line: 3, .. }), "{e}");
        let e = parse_str("web:\n  hosts:\n    1:\n").unwrap_err();
        assert!(e.to_string().contains("must be a string"), "{e}");
        let e = parse_str("web:\n  hosts:\n    h[1:]:\n").unwrap_err();
        assert!(matches!(e, InventoryError::Parse { line: 3, .. }), "{e}");
        let e = parse_str("a:\n  children:\n    b:\n      children:\n        a:\n").unwrap_err();
        assert!(e.to_string().contains("recursive"), "{e}");
        let e = parse_str("a:\n  hosts:\n    h1:\n      secret: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        3131\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("'secret': vault-encrypted values are not supported"),
            "{e}"
        );
        assert!(matches!(e, InventoryError::Parse { line: 4, .. }), "{e}");
    }
}
