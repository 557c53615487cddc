//! The INI inventory format, parsed as Ansible's `ini` inventory plugin parses it.
//!
//! `[group]`, `[group:children]`, `[group:vars]` sections (names with characters Ansible
//! considers invalid are kept, with a warning, as ansible-core 2.19 does), `#`/`;` comment lines, hosts before any section in `ungrouped`,
//! `host:port`, ranges, inline `key=value` host variables split with shell rules and typed by
//! `ast.literal_eval` (see [`super::pyliteral`]), `:vars` values typed the same way, and the
//! plugin's deferred checks: a `:vars` or `:children` reference to a group never declared is
//! an error reported at the line that referenced it.

use std::path::Path;

use super::InventoryError;
use super::address::expand_hostpattern;
use super::data::{Data, Entity};
use super::pyliteral::ini_value;
use super::shlex;

/// Python `str.splitlines()`.
fn splitlines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let brk = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if brk {
            out.push(&s[start..i]);
            let mut next = i + c.len_utf8();
            if c == '\r'
                && let Some(&(j, '\n')) = it.peek()
            {
                it.next();
                next = j + 1;
            }
            start = next;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Decode like the plugin: UTF-8, but comment lines may hold anything (they become empty).
fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<&'a str>, InventoryError> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Ok(splitlines(s));
    }
    let mut out = Vec::new();
    // bytes.splitlines(): \n, \r, \r\n
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' || bytes[i] == b'\r' {
            lines.push(&bytes[start..i]);
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    if start < bytes.len() {
        lines.push(&bytes[start..]);
    }
    for (n, line) in lines.into_iter().enumerate() {
        if matches!(line.first(), Some(b'#' | b';')) {
            out.push("");
            continue;
        }
        match std::str::from_utf8(line) {
            Ok(s) => out.push(s),
            Err(e) => {
                return Err(InventoryError::Parse {
                    path: path.to_path_buf(),
                    line: n + 1,
                    msg: format!(
                        "invalid UTF-8 (byte {} of the line); inventory files must be UTF-8",
                        e.valid_up_to() + 1
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// `^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$` → (group, optional tag)
fn match_section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let inner = &rest[..close];
    let after = rest[close + 1..].trim_start();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let (name, tag) = match inner.split_once(':') {
        Some((n, t)) => (n, Some(t)),
        None => (inner, None),
    };
    if name.is_empty()
        || name
            .chars()
            .any(|c| c == ':' || c == ']' || c.is_whitespace())
    {
        return None;
    }
    if let Some(t) = tag
        && (t.is_empty() || !t.chars().all(|c| c.is_alphanumeric() || c == '_'))
    {
        return None;
    }
    Some((name, tag))
}

/// `^([^:\]\s]+)\s*(?:#.*)?$`
fn match_group_name(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| c == ':' || c == ']' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..end];
    let after = line[end..].trim_start();
    (!name.is_empty() && (after.is_empty() || after.starts_with('#'))).then_some(name)
}

#[derive(Debug)]
enum PendingState {
    Vars,
    Children(Vec<String>),
}

#[derive(Debug)]
struct Pending {
    line: usize,
    name: String,
    state: PendingState,
}

/// Parse one INI inventory file into `data`.
pub fn parse(data: &mut Data, path: &Path, bytes: &[u8]) -> Result<(), InventoryError> {
    let lines = decode(path, bytes)?;
    let perr = |line: usize, msg: String| InventoryError::Parse {
        path: path.to_path_buf(),
        line,
        msg,
    };
    // Insertion-ordered pending declarations (Ansible reports the first unresolved one).
    let mut pending: Vec<Pending> = Vec::new();
    let mut groupname = "ungrouped".to_string();
    let mut state = "hosts".to_string();

    fn add_pending_children(
        data: &mut Data,
        group: &str,
        pending: &mut Vec<Pending>,
    ) -> Result<(), String> {
        let Some(pos) = pending.iter().position(|p| p.name == group) else {
            return Ok(());
        };
        let parents = match &pending[pos].state {
            PendingState::Children(p) => p.clone(),
            PendingState::Vars => Vec::new(),
        };
        for parent in parents {
            data.add_child(&parent, group)?;
            if pending
                .iter()
                .any(|p| p.name == parent && matches!(p.state, PendingState::Children(_)))
            {
                add_pending_children(data, &parent, pending)?;
            }
        }
        pending.retain(|p| p.name != group);
        Ok(())
    }

    for (idx, raw) in lines.iter().enumerate() {
        let lineno = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((name, tag)) = match_section(line) {
            let name = name.to_string();
            let st = tag.unwrap_or("hosts").to_string();
            if !matches!(st.as_str(), "hosts" | "children" | "vars") {
                return Err(perr(
                    lineno,
                    format!("Section [{}:{}] has unknown type: {}", name, st, st),
                ));
            }
            if data.group(&name).is_none() {
                if st == "vars" && !pending.iter().any(|p| p.name == name) {
                    pending.push(Pending {
                        line: lineno,
                        name: name.clone(),
                        state: PendingState::Vars,
                    });
                }
                data.add_group(&name).map_err(|e| perr(lineno, e))?;
            }
            if st != "vars"
                && let Some(p) = pending.iter().position(|p| p.name == name)
            {
                match pending[p].state {
                    PendingState::Children(_) => add_pending_children(data, &name, &mut pending)
                        .map_err(|e| perr(lineno, e))?,
                    PendingState::Vars => {
                        pending.remove(p);
                    }
                }
            }
            groupname = name;
            state = st;
            continue;
        } else if line.starts_with('[') && line.ends_with(']') {
            return Err(perr(
                lineno,
                format!(
                    "Invalid section entry: '{line}'. Please make sure that there are no spaces in the section entry, and that there are no other invalid characters"
                ),
            ));
        }
        match state.as_str() {
            "hosts" => {
                let tokens = shlex::split(line, true).map_err(|e| {
                    perr(
                        lineno,
                        format!("Error parsing host definition '{line}': {e}"),
                    )
                })?;
                let Some(first) = tokens.first() else {
                    // Python would fail with an IndexError here; report it clearly.
                    return Err(perr(
                        lineno,
                        format!("Expected a host definition, got: {line}"),
                    ));
                };
                let (hostnames, port) = expand_hostpattern(first).map_err(|e| perr(lineno, e))?;
                if first.trim().ends_with(':') && port.is_none() {
                    return Err(perr(
                        lineno,
                        format!(
                            "Invalid host pattern '{first}' supplied, ending in ':' is not allowed, this character is reserved to provide a port."
                        ),
                    ));
                }
                if hostnames.iter().any(|h| h.trim() == "---") {
                    return Err(perr(
                        lineno,
                        format!(
                            "Invalid host pattern '{first}' supplied, '---' is normally a sign this is a YAML file."
                        ),
                    ));
                }
                let mut vars = Vec::new();
                for t in &tokens[1..] {
                    let Some((k, v)) = t.split_once('=') else {
                        return Err(perr(
                            lineno,
                            format!("Expected key=value host variable assignment, got: {t}"),
                        ));
                    };
                    vars.push((k.to_string(), ini_value(v)));
                }
                for h in &hostnames {
                    let idx = data
                        .add_host(h, Some(&groupname), port)
                        .map_err(|e| perr(lineno, e))?;
                    // Looked up once per host, not per variable.
                    let target = data.group(h).map_or(Entity::Host(idx), Entity::Group);
                    data.set_entity_variables(target, &vars)
                        .map_err(|e| perr(lineno, e))?;
                }
            }
            "vars" => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(perr(lineno, format!("Expected key=value, got: {line}")));
                };
                data.set_variable(&groupname, k.trim(), ini_value(v.trim()))
                    .map_err(|e| perr(lineno, e))?;
            }
            _ => {
                let child = match_group_name(line)
                    .ok_or_else(|| perr(lineno, format!("Expected group name, got: {line}")))?;
                if data.group(child).is_none() {
                    match pending.iter_mut().find(|p| p.name == child) {
                        Some(p) => {
                            if let PendingState::Children(parents) = &mut p.state {
                                parents.push(groupname.clone());
                            }
                        }
                        None => pending.push(Pending {
                            line: lineno,
                            name: child.to_string(),
                            state: PendingState::Children(vec![groupname.clone()]),
                        }),
                    }
                } else {
                    data.add_child(&groupname, child)
                        .map_err(|e| perr(lineno, e))?;
                }
            }
        }
    }
    if let Some(p) = pending.first() {
        let msg = match &p.state {
            PendingState::Vars => format!(
                "Section [{}:vars] not valid for undefined group '{}'.",
                p.name, p.name
            ),
            PendingState::Children(parents) => format!(
                "Section [{}:children] includes undefined group '{}'.",
                parents.last().map(String::as_str).unwrap_or(""),
                p.name
            ),
        };
        return Err(perr(p.line, msg));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Result<Data, InventoryError> {
        let mut d = Data::new();
        parse(&mut d, Path::new("inv.ini"), text.as_bytes())?;
        d.reconcile();
        Ok(d)
    }

    fn err(text: &str) -> (usize, String) {
        match load(text) {
            Err(InventoryError::Parse { line, msg, .. }) => (line, msg),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    fn names(d: &Data, hs: &[usize]) -> Vec<String> {
        hs.iter().map(|h| d.hosts[*h].name.clone()).collect()
    }

    #[test]
    fn sections_hosts_vars() {
        let d = load(
            "loose1\n[web]\nweb[01:03] x=1 y=\"a b\" z=True\n; comment\n# comment\n[web:vars]\ngv = 'q'\n[db]\ndb1:2222 user=admin # trailing\n[prod:children]\nweb\ndb\n",
        )
        .unwrap();
        let web = d.group("web").unwrap();
        assert_eq!(names(&d, &d.groups[web].hosts), ["web01", "web02", "web03"]);
        assert_eq!(d.groups[web].vars["gv"], json!("q"));
        let h = d.host("web02").unwrap();
        assert_eq!(d.hosts[h].vars["x"], json!(1));
        assert_eq!(d.hosts[h].vars["y"], json!("a b"));
        assert_eq!(d.hosts[h].vars["z"], json!(true));
        let db1 = d.host("db1").unwrap();
        assert_eq!(d.hosts[db1].vars["ansible_port"], json!(2222));
        assert_eq!(d.hosts[db1].vars["user"], json!("admin"));
        let prod = d.group("prod").unwrap();
        assert_eq!(d.groups[prod].children.len(), 2);
        assert_eq!(
            names(&d, &d.groups[super::super::data::UNGROUPED].hosts),
            ["loose1"]
        );
    }

    #[test]
    fn forward_references_resolve() {
        let d = load("[prod:children]\nweb\n[web:vars]\na=1\n[web]\nh1\n").unwrap();
        let web = d.group("web").unwrap();
        assert_eq!(d.groups[web].parents, vec![d.group("prod").unwrap()]);
        assert_eq!(d.groups[web].vars["a"], json!(1));
    }

    #[test]
    fn group_names_are_kept_as_written() {
        let d = load("[web-servers]\nh1\n[p:children]\nweb-servers\n").unwrap();
        assert!(d.group("web-servers").is_some());
        assert_eq!(d.warnings.len(), 1);
        let (line, msg) = err("[web-servers]\nh1\n[p:children]\nweb_servers\n");
        assert_eq!(line, 4);
        assert!(msg.contains("undefined group 'web_servers'"), "{msg}");
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(err("[web]\nh1\n[web:foo]\n").0, 3);
        assert!(err("[web:foo]\n").1.contains("unknown type: foo"));
        let (line, msg) = err("[web]\nh1\n[ghost:vars]\na=1\n");
        assert_eq!(line, 3);
        assert!(
            msg.contains("not valid for undefined group 'ghost'"),
            "{msg}"
        );
        assert_eq!(err("[a]\nh[1:]\n").0, 2);
        assert_eq!(err("[a]\nh[01:3]\n").0, 2);
        assert_eq!(err("[a]\nh x\n").0, 2);
        assert_eq!(err("[a]\nh x='1\n").0, 2);
        assert_eq!(err("[a:vars]\nnovalue\n[a]\n").0, 2);
        assert_eq!(err("[a]\nh:\n").0, 2);
        assert_eq!(err("[a b]\n").0, 1);
        let (line, msg) = err("[a:children]\nb\n[b:children]\na\n");
        assert_eq!(line, 4);
        assert!(msg.contains("recursive"), "{msg}");
        let (line, msg) = err("[a:children]\nb\n");
        assert_eq!(line, 2);
        assert!(
            msg.contains("[a:children] includes undefined group 'b'"),
            "{msg}"
        );
        assert_eq!(err("[a]\n---\n").0, 2);
    }

    #[test]
    fn self_child_is_an_error() {
        let (line, msg) = err("[a]\nh1\n[a:children]\na\n");
        assert_eq!(line, 4);
        assert!(msg.contains("itself"), "{msg}");
    }

    #[test]
    fn invalid_utf8_outside_comments_is_an_error() {
        let mut d = Data::new();
        let ok = parse(&mut d, Path::new("x"), b"# caf\xe9\n[a]\nh1\n");
        assert!(ok.is_ok());
        let e = parse(&mut Data::new(), Path::new("x"), b"[a]\nh\xff1\n").unwrap_err();
        assert!(matches!(e, InventoryError::Parse { line: 2, .. }), "{e:?}");
    }

    #[test]
    fn splitlines_like_python() {
        assert_eq!(splitlines("a\r\nb\rc\n"), ["a", "b", "c"]);
        assert_eq!(splitlines("a\n\nb"), ["a", "", "b"]);
    }
}
