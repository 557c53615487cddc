//! YAML (and JSON) documents as Ansible's loader reads them: PyYAML's YAML 1.1 resolution.
//!
//! Crate choice: `saphyr-parser` (maintained; serde_yaml is archived upstream). It yields an
//! event stream with scalar styles, tags, anchors and line marks, so this module applies
//! PyYAML's YAML 1.1 implicit resolution itself (`yes`/`no`/`on`/`off` booleans, `0777` octal,
//! `1_000`, sexagesimal `1:30`, `.inf`, dates), handles anchors, aliases and `<<` merge keys,
//! reports line numbers, and recognises `!vault` values and `$ANSIBLE_VAULT;` files so they are
//! rejected rather than misread. Like Ansible's `DataLoader`, a document is tried as JSON first.

use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

use super::pyliteral::py_float_repr;

/// A loaded node: a value plus the 1-based line it starts on (0 when unknown, e.g. JSON).
#[derive(Debug, Clone)]
pub struct Node {
    pub line: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// A resolved scalar (string, number, bool, null).
    Scalar(Value),
    Seq(Vec<Node>),
    /// Keys in first-seen order; a duplicate key keeps its first position and last value.
    Map(Vec<(Node, Node)>),
    /// A `!vault` value (or a JSON `__ansible_vault` object): never decrypted.
    Vault,
}

/// A YAML error with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub msg: String,
}

/// Text that is an Ansible Vault file.
pub fn is_vault_file(text: &str) -> bool {
    text.trim_start().starts_with("$ANSIBLE_VAULT;")
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Scalar(Value::Null))
    }
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(Value::String(s)) => Some(s),
            _ => None,
        }
    }
    /// Python type name, for messages that mirror Ansible's.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(Value::String(_)) => "str",
            Kind::Scalar(Value::Bool(_)) => "bool",
            Kind::Scalar(Value::Null) => "NoneType",
            Kind::Scalar(Value::Number(n)) if n.is_f64() => "float",
            Kind::Scalar(_) => "int",
            Kind::Seq(_) => "list",
            Kind::Map(_) => "dict",
            Kind::Vault => "EncryptedString",
        }
    }
    /// The key as Python's `json.dumps` would print it (`1` → "1", `True` → "true").
    pub fn key_string(&self) -> String {
        match &self.kind {
            Kind::Scalar(Value::String(s)) => s.clone(),
            Kind::Scalar(Value::Number(n)) => match n.as_f64() {
                Some(f) if n.is_f64() => py_float_repr(f),
                _ => n.to_string(),
            },
            Kind::Scalar(v) => v.to_string(),
            Kind::Seq(_) | Kind::Map(_) => format!("{:?}", self.kind),
            Kind::Vault => "<vault>".into(),
        }
    }
    /// Convert to JSON. `Err(line)` names the line of a vault value found inside.
    pub fn to_json(&self) -> Result<Value, usize> {
        Ok(match &self.kind {
            Kind::Scalar(v) => v.clone(),
            Kind::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(Node::to_json)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Kind::Map(pairs) => {
                let mut m = Map::new();
                for (k, v) in pairs {
                    m.insert(k.key_string(), v.to_json()?);
                }
                Value::Object(m)
            }
            Kind::Vault => return Err(self.line),
        })
    }
}

/// Load one document the way Ansible's `DataLoader.load` does: JSON first, then YAML.
/// `Ok(None)` for an empty document.
#[cfg(test)]
pub fn load(text: &str) -> Result<Option<Node>, YamlError> {
    load_with_duplicates(text).map(|(n, _)| n)
}

/// A document (`None` if empty) and its duplicate keys as (line, key).
pub type Loaded = (Option<Node>, Vec<(usize, String)>);

/// [`load`], also returning the duplicate mapping keys (line, key) Ansible warns about.
pub fn load_with_duplicates(text: &str) -> Result<Loaded, YamlError> {
    let t = text.trim_start();
    if (t.starts_with('{') || t.starts_with('['))
        && let Ok(mut v) = serde_json::from_str::<Value>(text)
    {
        super::bigint::normalize_json(&mut v);
        return Ok((Some(from_json(v)), Vec::new()));
    }
    let mut dups = Vec::new();
    let node = load_yaml(text, &mut dups)?;
    Ok((node, dups))
}

fn from_json(v: Value) -> Node {
    let kind = match v {
        Value::Array(a) => Kind::Seq(a.into_iter().map(from_json).collect()),
        Value::Object(o) => {
            if o.contains_key("__ansible_vault") {
                Kind::Vault
            } else {
                Kind::Map(
                    o.into_iter()
                        .map(|(k, v)| {
                            (
                                Node {
                                    line: 0,
                                    kind: Kind::Scalar(Value::String(k)),
                                },
                                from_json(v),
                            )
                        })
                        .collect(),
                )
            }
        }
        other => Kind::Scalar(other),
    };
    Node { line: 0, kind }
}

/// Raw (unresolved) tree built from parser events.
#[derive(Debug, Clone)]
enum Raw {
    Scalar {
        value: String,
        style: ScalarStyle,
        tag: Option<Tag>,
        line: usize,
    },
    Seq {
        items: Vec<Raw>,
        tag: Option<Tag>,
        line: usize,
    },
    Map {
        pairs: Vec<(Raw, Raw)>,
        tag: Option<Tag>,
        line: usize,
    },
}

impl Raw {
    fn size(&self) -> usize {
        match self {
            Raw::Scalar { .. } => 1,
            Raw::Seq { items, .. } => 1 + items.iter().map(Raw::size).sum::<usize>(),
            Raw::Map { pairs, .. } => {
                1 + pairs
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }

    fn line(&self) -> usize {
        match self {
            Raw::Scalar { line, .. } | Raw::Seq { line, .. } | Raw::Map { line, .. } => *line,
        }
    }
}

fn load_yaml(text: &str, dups: &mut Vec<(usize, String)>) -> Result<Option<Node>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut anchors: std::collections::HashMap<usize, Raw> = std::collections::HashMap::new();
    // Stack of containers under construction: (raw container, pending key, anchor id).
    enum Frame {
        Seq(Vec<Raw>, Option<Tag>, usize, usize),
        Map(Vec<(Raw, Raw)>, Option<Raw>, Option<Tag>, usize, usize),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut docs: Vec<Raw> = Vec::new();
    let mut ndocs = 0usize;
    let mut expanded = 0usize;
    let err = |line: usize, msg: String| YamlError { line, msg };

    fn attach(stack: &mut [Frame], docs: &mut Vec<Raw>, node: Raw) {
        match stack.last_mut() {
            Some(Frame::Seq(items, ..)) => items.push(node),
            Some(Frame::Map(pairs, key, ..)) => match key.take() {
                Some(k) => pairs.push((k, node)),
                None => *key = Some(node),
            },
            None => docs.push(node),
        }
    }

    while let Some(ev) = parser.next_event() {
        let (ev, span) = ev.map_err(|e| err(e.marker().line(), e.info().to_string()))?;
        let line = span.start.line();
        match ev {
            Event::DocumentStart(_) => {
                ndocs += 1;
                if ndocs > 1 {
                    return Err(err(
                        line,
                        "expected a single document in the stream, but found another document"
                            .into(),
                    ));
                }
            }
            Event::Alias(id) => {
                let node = anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| err(line, "found undefined alias".into()))?;
                // Aliases are copied; refuse "billion laughs" documents.
                expanded += node.size();
                if expanded > MAX_ALIAS_NODES {
                    return Err(err(line, "too many nodes created through aliases".into()));
                }
                attach(&mut stack, &mut docs, node);
            }
            Event::Scalar(value, style, anchor, tag) => {
                let node = Raw::Scalar {
                    value: value.into_owned(),
                    style,
                    tag: tag.map(|t| t.into_owned()),
                    line,
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                attach(&mut stack, &mut docs, node);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                return Err(err(line, format!("nesting deeper than {MAX_DEPTH} levels")));
            }
            Event::SequenceStart(anchor, tag) => stack.push(Frame::Seq(
                Vec::new(),
                tag.map(|t| t.into_owned()),
                anchor,
                line,
            )),
            Event::MappingStart(anchor, tag) => stack.push(Frame::Map(
                Vec::new(),
                None,
                tag.map(|t| t.into_owned()),
                anchor,
                line,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match stack.pop() {
                    Some(Frame::Seq(items, tag, anchor, line)) => {
                        (Raw::Seq { items, tag, line }, anchor)
                    }
                    Some(Frame::Map(pairs, _, tag, anchor, line)) => {
                        (Raw::Map { pairs, tag, line }, anchor)
                    }
                    None => return Err(err(line, "unbalanced YAML events".into())),
                };
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                attach(&mut stack, &mut docs, node);
            }
            Event::StreamEnd => break,
            _ => {}
        }
    }
    match docs.pop() {
        None => Ok(None),
        Some(raw) => resolve(&raw, dups, false).map(Some),
    }
}

/// Deeper documents are refused (they would only exhaust the stack).
const MAX_DEPTH: usize = 256;
/// Nodes alias expansion may create in one document.
const MAX_ALIAS_NODES: usize = 200_000;

fn is_core(tag: &Tag, suffix: &str) -> bool {
    tag.handle == "tag:yaml.org,2002:" && tag.suffix == suffix
}

fn tag_name(tag: &Tag) -> String {
    if tag.handle == "tag:yaml.org,2002:" {
        format!("tag:yaml.org,2002:{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// Resolve a raw node. `unsafe_` is set inside `!unsafe`: strings there are not trusted as
/// templates, which `ansible-inventory` shows as `{"__ansible_unsafe": "..."}`.
fn resolve(raw: &Raw, dups: &mut Vec<(usize, String)>, unsafe_: bool) -> Result<Node, YamlError> {
    let line = raw.line();
    let tagged_unsafe =
        |t: &Option<Tag>| matches!(t, Some(t) if t.handle == "!" && t.suffix == "unsafe");
    let unsafe_ = unsafe_
        || match raw {
            Raw::Scalar { tag, .. } | Raw::Seq { tag, .. } | Raw::Map { tag, .. } => {
                tagged_unsafe(tag)
            }
        };
    let kind = match raw {
        Raw::Scalar {
            value, style, tag, ..
        } => {
            let plain = matches!(style, ScalarStyle::Plain);
            match tag {
                None => {
                    if plain {
                        implicit_scalar(value, line)?
                    } else {
                        Kind::Scalar(Value::String(value.clone()))
                    }
                }
                Some(t)
                    if t.handle == "!"
                        && (t.suffix == "vault" || t.suffix == "vault-encrypted") =>
                {
                    Kind::Vault
                }
                // `!unsafe` re-resolves the value as if it were untagged and plain.
                Some(t) if t.handle == "!" && t.suffix == "unsafe" => implicit_scalar(value, line)?,
                Some(t) if t.handle.is_empty() && t.suffix == "!" => {
                    Kind::Scalar(Value::String(value.clone()))
                }
                Some(t) if is_core(t, "str") => Kind::Scalar(Value::String(value.clone())),
                Some(t) if is_core(t, "null") => Kind::Scalar(Value::Null),
                Some(t) if is_core(t, "bool") => match value.to_ascii_lowercase().as_str() {
                    "yes" | "true" | "on" => Kind::Scalar(Value::Bool(true)),
                    "no" | "false" | "off" => Kind::Scalar(Value::Bool(false)),
                    _ => {
                        return Err(YamlError {
                            line,
                            msg: format!("invalid boolean value {value:?}"),
                        });
                    }
                },
                Some(t) if is_core(t, "int") => {
                    Kind::Scalar(construct_int(value).ok_or_else(|| YamlError {
                        line,
                        msg: format!("invalid integer value {value:?}"),
                    })?)
                }
                Some(t) if is_core(t, "float") => {
                    Kind::Scalar(construct_float(value).ok_or_else(|| YamlError {
                        line,
                        msg: format!("invalid float value {value:?}"),
                    })?)
                }
                Some(t) if is_core(t, "timestamp") => {
                    Kind::Scalar(construct_timestamp(value).ok_or_else(|| YamlError {
                        line,
                        msg: format!("invalid timestamp {value:?}"),
                    })?)
                }
                Some(t) => {
                    return Err(YamlError {
                        line,
                        msg: format!(
                            "could not determine a constructor for the tag '{}'",
                            tag_name(t)
                        ),
                    });
                }
            }
        }
        Raw::Seq { items, tag, .. } => {
            check_collection_tag(tag.as_ref(), "seq", line)?;
            Kind::Seq(
                items
                    .iter()
                    .map(|i| resolve(i, dups, unsafe_))
                    .collect::<Result<_, _>>()?,
            )
        }
        Raw::Map { pairs, tag, .. } => {
            check_collection_tag(tag.as_ref(), "map", line)?;
            let mut flat = Vec::new();
            flatten_mapping(pairs, &mut flat)?;
            let mut out: Vec<(Node, Node)> = Vec::new();
            for (k, v) in flat {
                let key = resolve(k, dups, false)?;
                if matches!(key.kind, Kind::Seq(_) | Kind::Map(_)) {
                    return Err(YamlError {
                        line: key.line,
                        msg: "found unhashable key".into(),
                    });
                }
                let val = resolve(v, dups, unsafe_)?;
                let ks = key.key_string();
                let same_type =
                    |a: &Node| std::mem::discriminant(&a.kind) == std::mem::discriminant(&key.kind);
                if let Some(slot) = out
                    .iter_mut()
                    .find(|(ek, _)| ek.key_string() == ks && same_type(ek))
                {
                    slot.1 = val;
                    dups.push((key.line, ks));
                } else {
                    out.push((key, val));
                }
            }
            Kind::Map(out)
        }
    };
    let kind = match kind {
        Kind::Scalar(Value::String(s)) if unsafe_ => {
            let mut m = Map::new();
            m.insert("__ansible_unsafe".into(), Value::String(s));
            Kind::Scalar(Value::Object(m))
        }
        other => other,
    };
    Ok(Node { line, kind })
}

fn check_collection_tag(tag: Option<&Tag>, want: &str, line: usize) -> Result<(), YamlError> {
    match tag {
        None => Ok(()),
        Some(t) if is_core(t, want) => Ok(()),
        Some(t) if t.handle == "!" && t.suffix == "unsafe" => Ok(()),
        Some(t) if t.handle.is_empty() && t.suffix == "!" => Ok(()),
        Some(t) if t.handle == "!" && (t.suffix == "vault" || t.suffix == "vault-encrypted") => {
            Err(YamlError {
                line,
                msg: format!("the '!{}' tag requires a string value", t.suffix),
            })
        }
        Some(t) => Err(YamlError {
            line,
            msg: format!(
                "could not determine a constructor for the tag '{}' (not supported)",
                tag_name(t)
            ),
        }),
    }
}

/// PyYAML `flatten_mapping`: `<<` merges come first, explicit keys after (and win).
fn flatten_mapping<'a>(
    pairs: &'a [(Raw, Raw)],
    out: &mut Vec<(&'a Raw, &'a Raw)>,
) -> Result<(), YamlError> {
    let mut merged: Vec<(&Raw, &Raw)> = Vec::new();
    let mut own: Vec<(&Raw, &Raw)> = Vec::new();
    for (k, v) in pairs {
        let is_merge = matches!(k, Raw::Scalar { value, style: ScalarStyle::Plain, tag: None, .. } if value == "<<")
            || matches!(k, Raw::Scalar { tag: Some(t), .. } if is_core(t, "merge"));
        if !is_merge {
            own.push((k, v));
            continue;
        }
        match v {
            Raw::Map { pairs: sub, .. } => flatten_mapping(sub, &mut merged)?,
            Raw::Seq { items, .. } => {
                let mut subs: Vec<Vec<(&Raw, &Raw)>> = Vec::new();
                for it in items {
                    let Raw::Map { pairs: sub, .. } = it else {
                        return Err(YamlError {
                            line: it.line(),
                            msg: "while constructing a mapping: expected a mapping for merging"
                                .into(),
                        });
                    };
                    let mut f = Vec::new();
                    flatten_mapping(sub, &mut f)?;
                    subs.push(f);
                }
                subs.reverse();
                for s in subs {
                    merged.extend(s);
                }
            }
            other => {
                return Err(YamlError {
                    line: other.line(),
                    msg: "while constructing a mapping: expected a mapping or list of mappings for merging"
                        .into(),
                });
            }
        }
    }
    out.extend(merged);
    out.extend(own);
    Ok(())
}

/// PyYAML's implicit resolvers (YAML 1.1) for a plain scalar.
fn implicit_scalar(v: &str, line: usize) -> Result<Kind, YamlError> {
    let s = |x: Value| Ok(Kind::Scalar(x));
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return s(Value::Null),
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return s(Value::Bool(true));
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return s(Value::Bool(false));
        }
        "=" => {
            return Err(YamlError {
                line,
                msg: "could not determine a constructor for the tag 'tag:yaml.org,2002:value'"
                    .into(),
            });
        }
        _ => {}
    }
    if is_yaml_float(v) {
        return construct_float(v)
            .map(Kind::Scalar)
            .ok_or_else(|| YamlError {
                line,
                msg: format!("invalid float value {v:?}"),
            });
    }
    if is_yaml_int(v) {
        return construct_int(v).map(Kind::Scalar).ok_or_else(|| YamlError {
            line,
            msg: format!("invalid integer value {v:?}"),
        });
    }
    if is_yaml_timestamp(v) {
        return construct_timestamp(v)
            .map(Kind::Scalar)
            .ok_or_else(|| YamlError {
                line,
                msg: format!("invalid timestamp {v:?}"),
            });
    }
    s(Value::String(v.to_string()))
}

fn strip_sign(v: &str) -> &str {
    v.strip_prefix(['-', '+']).unwrap_or(v)
}

fn all_of(s: &str, f: impl Fn(char) -> bool) -> bool {
    s.chars().all(f)
}

/// `0[0-7_]*`-style digit runs etc. from PyYAML's int regex.
fn is_yaml_int(v: &str) -> bool {
    let b = strip_sign(v);
    if let Some(r) = b.strip_prefix("0b") {
        return !r.is_empty() && all_of(r, |c| c == '0' || c == '1' || c == '_');
    }
    if let Some(r) = b.strip_prefix("0x") {
        return !r.is_empty() && all_of(r, |c| c.is_ascii_hexdigit() || c == '_');
    }
    if b == "0" {
        return true;
    }
    if let Some(r) = b.strip_prefix('0') {
        return !r.is_empty() && all_of(r, |c| ('0'..='7').contains(&c) || c == '_');
    }
    let Some(first) = b.chars().next() else {
        return false;
    };
    if !('1'..='9').contains(&first) {
        return false;
    }
    let mut parts = b.split(':');
    let head = parts.next().unwrap_or("");
    if !all_of(head, |c| c.is_ascii_digit() || c == '_') {
        return false;
    }
    parts.all(sexagesimal_part)
}

/// `:[0-5]?[0-9]`
fn sexagesimal_part(p: &str) -> bool {
    let b = p.as_bytes();
    match b.len() {
        1 => b[0].is_ascii_digit(),
        2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
        _ => false,
    }
}

fn is_yaml_float(v: &str) -> bool {
    let digits_us = |s: &str| all_of(s, |c| c.is_ascii_digit() || c == '_');
    let exp_ok = |e: &str| -> bool {
        // (?:[eE][-+][0-9]+)?
        e.is_empty()
            || (e.len() >= 3
                && matches!(&e[..1], "e" | "E")
                && matches!(&e[1..2], "-" | "+")
                && all_of(&e[2..], |c| c.is_ascii_digit()))
    };
    if matches!(v, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let b = strip_sign(v);
    if matches!(b, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    // \.[0-9_]+(exp)?  (no sign allowed)
    if let Some(r) = v.strip_prefix('.') {
        let end = r.find(['e', 'E']).unwrap_or(r.len());
        return end > 0 && digits_us(&r[..end]) && exp_ok(&r[end..]);
    }
    let Some(first) = b.chars().next() else {
        return false;
    };
    if !first.is_ascii_digit() {
        return false;
    }
    // [0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    if b.contains(':') {
        let Some((whole, frac)) = b.rsplit_once('.') else {
            return false;
        };
        let mut parts = whole.split(':');
        let head = parts.next().unwrap_or("");
        let rest: Vec<&str> = parts.collect();
        return digits_us(head)
            && !rest.is_empty()
            && rest.iter().all(|p| sexagesimal_part(p))
            && digits_us(frac);
    }
    // [0-9][0-9_]*\.[0-9_]*(exp)?
    let Some(dot) = b.find('.') else {
        return false;
    };
    let (ip, rest) = (&b[..dot], &b[dot + 1..]);
    let end = rest.find(['e', 'E']).unwrap_or(rest.len());
    digits_us(ip) && digits_us(&rest[..end]) && exp_ok(&rest[end..])
}

fn construct_int(v: &str) -> Option<Value> {
    let t = v.replace('_', "");
    let (neg, b) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t.strip_prefix('+').unwrap_or(&t).to_string()),
    };
    // Python ints have no size limit: any number of digits stays exact.
    let (digits, radix) = if b == "0" {
        ("0", 10)
    } else if let Some(r) = b.strip_prefix("0b") {
        (r, 2)
    } else if let Some(r) = b.strip_prefix("0x") {
        (r, 16)
    } else if b.starts_with('0') {
        (b.as_str(), 8)
    } else if b.contains(':') {
        let mut val: i128 = 0;
        for p in b.split(':') {
            val = val.checked_mul(60)?.checked_add(p.parse::<i128>().ok()?)?;
        }
        let n = if neg { -val } else { val };
        return Some(Value::Number(super::bigint::number(
            n < 0,
            &n.unsigned_abs().to_string(),
        )?));
    } else {
        (b.as_str(), 10)
    };
    let mag = super::bigint::to_decimal(digits, radix)?;
    Some(Value::Number(super::bigint::number(neg, &mag)?))
}

fn construct_float(v: &str) -> Option<Value> {
    let t = v.replace('_', "").to_ascii_lowercase();
    let (neg, b) = match t.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, t.strip_prefix('+').unwrap_or(&t).to_string()),
    };
    let mag: f64 = if b == ".inf" {
        f64::INFINITY
    } else if b == ".nan" {
        f64::NAN
    } else if b.contains(':') {
        let mut val = 0.0;
        for p in b.split(':') {
            val = val * 60.0 + p.parse::<f64>().ok()?;
        }
        val
    } else {
        let b = if b.starts_with('.') {
            format!("0{b}")
        } else {
            b
        };
        b.parse::<f64>().ok()?
    };
    let f = if neg { -mag } else { mag };
    // JSON has no inf/nan; Ansible's JSON output would print Infinity/NaN there.
    Some(match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None => Value::String(py_float_repr(f)),
    })
}

fn is_yaml_timestamp(v: &str) -> bool {
    let b = v.as_bytes();
    let d = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit());
    if b.len() == 10
        && (0..4).all(d)
        && b[4] == b'-'
        && d(5)
        && d(6)
        && b[7] == b'-'
        && d(8)
        && d(9)
    {
        return true;
    }
    parse_datetime(v).is_some()
}

struct DateTime {
    y: i32,
    mo: u32,
    d: u32,
    time: Option<(u32, u32, u32, String, Option<String>)>,
}

fn parse_datetime(v: &str) -> Option<DateTime> {
    // [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}((T|t|[ \t]+)hh?:mm:ss(\.[0-9]*)?([ \t]*(Z|[-+]hh?(:mm)?))?)?
    let mut it = v.splitn(3, '-');
    let y = it.next()?;
    let mo = it.next()?;
    let rest = it.next()?;
    if y.len() != 4 || !all_of(y, |c| c.is_ascii_digit()) {
        return None;
    }
    if mo.is_empty() || mo.len() > 2 || !all_of(mo, |c| c.is_ascii_digit()) {
        return None;
    }
    let dlen = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    if dlen == 0 || dlen > 2 {
        return None;
    }
    let (day, rest) = rest.split_at(dlen);
    if rest.is_empty() {
        // Date only: must be the strict 4-2-2 form (checked by the caller).
        return None;
    }
    let rest = if let Some(r) = rest.strip_prefix(['T', 't']) {
        r
    } else {
        let r = rest.trim_start_matches([' ', '\t']);
        if r.len() == rest.len() {
            return None;
        }
        r
    };
    let hlen = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    if hlen == 0 || hlen > 2 {
        return None;
    }
    let (hh, rest) = rest.split_at(hlen);
    let rest = rest.strip_prefix(':')?;
    let (mm, rest) = (rest.get(..2)?, rest.get(2..)?);
    let rest = rest.strip_prefix(':')?;
    let (ss, mut rest) = (rest.get(..2)?, rest.get(2..)?);
    if !all_of(mm, |c| c.is_ascii_digit()) || !all_of(ss, |c| c.is_ascii_digit()) {
        return None;
    }
    let mut frac = String::new();
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.chars().take_while(|c| c.is_ascii_digit()).count();
        frac = r[..n].to_string();
        rest = &r[n..];
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let tz = if rest.is_empty() {
        None
    } else if rest == "Z" {
        Some("+00:00".to_string())
    } else {
        let sign = rest.get(..1)?;
        if sign != "+" && sign != "-" {
            return None;
        }
        let r = &rest[1..];
        let (th, tm) = match r.split_once(':') {
            Some((h, m)) => (h, m),
            None => (r, "00"),
        };
        if th.is_empty()
            || th.len() > 2
            || tm.len() != 2
            || !all_of(th, |c| c.is_ascii_digit())
            || !all_of(tm, |c| c.is_ascii_digit())
        {
            return None;
        }
        Some(format!("{sign}{th:0>2}:{tm}"))
    };
    Some(DateTime {
        y: y.parse().ok()?,
        mo: mo.parse().ok()?,
        d: day.parse().ok()?,
        time: Some((
            hh.parse().ok()?,
            mm.parse().ok()?,
            ss.parse().ok()?,
            frac,
            tz,
        )),
    })
}

fn valid_date(y: i32, m: u32, d: u32) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && d >= 1 && d <= dim
}

/// Dates and datetimes print as Python's `isoformat()` in Ansible's JSON output.
fn construct_timestamp(v: &str) -> Option<Value> {
    if v.len() == 10 && !v.contains(['T', 't', ' ']) {
        let y: i32 = v[..4].parse().ok()?;
        let m: u32 = v[5..7].parse().ok()?;
        let d: u32 = v[8..10].parse().ok()?;
        return valid_date(y, m, d).then(|| Value::String(v.to_string()));
    }
    let dt = parse_datetime(v)?;
    if !valid_date(dt.y, dt.mo, dt.d) {
        return None;
    }
    let (h, mi, s, frac, tz) = dt.time?;
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.y, dt.mo, dt.d, h, mi, s
    );
    let us: String = format!("{frac:0<6}").chars().take(6).collect();
    if !frac.is_empty() && us != "000000" {
        out.push('.');
        out.push_str(&us);
    }
    if let Some(tz) = tz {
        out.push_str(&tz);
    }
    Some(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn j(text: &str) -> Value {
        load(text).unwrap().unwrap().to_json().unwrap()
    }

    #[test]
    fn yaml11_scalars() {
        let v = j(
            "a: yes\nb: Off\nc: 0777\nd: 0x1F\ne: 1_000\nf: 1:30\ng: 1.5\nh: .inf\ni: ~\nj: 1e3\nk: '1'\nl: 2001-01-02\nm: 08\nn: 0b11\no: 1.0e+3\np: y\nq: \"yes\"\nr: -.5\ns: 190:20:30.15\n",
        );
        assert_eq!(v["a"], json!(true));
        assert_eq!(v["b"], json!(false));
        assert_eq!(v["c"], json!(511));
        assert_eq!(v["d"], json!(31));
        assert_eq!(v["e"], json!(1000));
        assert_eq!(v["f"], json!(90));
        assert_eq!(v["g"], json!(1.5));
        assert_eq!(v["h"], json!("inf"));
        assert_eq!(v["i"], json!(null));
        assert_eq!(v["j"], json!("1e3"));
        assert_eq!(v["k"], json!("1"));
        assert_eq!(v["l"], json!("2001-01-02"));
        assert_eq!(v["m"], json!("08"));
        assert_eq!(v["n"], json!(3));
        assert_eq!(v["o"], json!(1000.0));
        assert_eq!(v["p"], json!("y"));
        assert_eq!(v["q"], json!("yes"));
        assert_eq!(v["r"], json!("-.5"));
        assert_eq!(v["s"], json!(685230.15));
    }

    #[test]
    fn timestamps() {
        let v = j(
            "a: 2001-12-14t21:59:43.10-05:00\nb: 2001-12-14 21:59:43.10\nc: 2002-12-14T01:02:03Z\n",
        );
        assert_eq!(v["a"], json!("2001-12-14T21:59:43.100000-05:00"));
        assert_eq!(v["b"], json!("2001-12-14T21:59:43.100000"));
        assert_eq!(v["c"], json!("2002-12-14T01:02:03+00:00"));
        assert!(load("a: 2001-02-30\n").is_err());
    }

    #[test]
    fn tags_anchors_merge() {
        let v =
            j("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\ns: !!str 12\nu: !unsafe 5\nn: ! 12\n");
        assert_eq!(v["d"], json!({"x": 1, "y": 3}));
        assert_eq!(v["s"], json!("12"));
        assert_eq!(v["u"], json!(5));
        let u = j("a: !unsafe '{{ x }}'\nb: !unsafe [c, 1]\n");
        assert_eq!(u["a"], json!({"__ansible_unsafe": "{{ x }}"}));
        assert_eq!(u["b"], json!([{"__ansible_unsafe": "c"}, 1]));
        assert_eq!(v["n"], json!("12"));
        let err = load("a: !custom 1\n").unwrap_err();
        assert!(err.msg.contains("!custom"), "{err:?}");
    }

    #[test]
    fn vault_values_are_detected_with_line() {
        let n = load("a: 1\nsecret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n")
            .unwrap()
            .unwrap();
        assert_eq!(n.to_json(), Err(2));
        let n = load("{\"s\": {\"__ansible_vault\": \"x\"}}")
            .unwrap()
            .unwrap();
        assert!(n.to_json().is_err());
        assert!(is_vault_file("$ANSIBLE_VAULT;1.1;AES256\n3131\n"));
    }

    #[test]
    fn errors_have_lines_and_empty_is_none() {
        let e = load("a: [1\nb: 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(load("").unwrap().is_none());
        assert!(load("# only a comment\n").unwrap().is_none());
        assert!(load("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn duplicate_keys_last_wins_and_are_reported() {
        let text = "a: 1\nb: 2\na: 3\n";
        assert_eq!(j(text), json!({"a": 3, "b": 2}));
        assert_eq!(
            load_with_duplicates(text).unwrap().1,
            vec![(3, "a".to_string())]
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("a: {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(load(&deep).is_err());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            doc.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let e = load(&doc).unwrap_err();
        assert!(e.msg.contains("aliases"), "{e:?}");
    }

    #[test]
    fn json_first() {
        assert_eq!(j("{\"a\": 1, \"b\": [true]}"), json!({"a": 1, "b": [true]}));
    }
}
