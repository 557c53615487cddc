//! Host patterns (`PATTERN` and `--limit`), evaluated as Ansible's `InventoryManager` does.
//!
//! `a,b` / `a:b` union, `&g` intersection and `!g` exclusion (regular patterns first, then the
//! `&`s, then the `!`s), fnmatch wildcards, `~regex` (Python `re.match` semantics: anchored at
//! the start only), subscripts `g[0]`, `g[-1]`, `g[1:3]`, `g[2:]`, the implicit `localhost`,
//! and `@file` lists for `--limit`. A pattern matching a group name selects the group's hosts;
//! hosts are also matched by name when no group matched or the pattern has wildcards.

use super::InventoryError;
use super::address::parse_address;
use super::data::{Data, LOCALHOST_NAMES};

/// A selected host: an inventory host, or the implicit localhost Ansible invents.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sel {
    Host(usize),
    Implicit(String),
}

/// `split_host_pattern`: commas, else `:` when the whole is not one address/range pattern.
pub fn split_host_pattern(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if parse_address(pattern, true).is_ok() {
        vec![pattern.to_string()]
    } else {
        // (?:[^\s:\[\]]|\[[^\]]*\])+
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '[' {
                // A complete bracketed expression, else the '[' ends the token.
                let rest: String = chars.clone().collect();
                if let Some(end) = rest.find(']') {
                    cur.push('[');
                    cur.push_str(&rest[..=end]);
                    for _ in 0..rest[..=end].chars().count() {
                        chars.next();
                    }
                    continue;
                }
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            } else if c.is_whitespace() || c == ':' || c == ']' {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            } else {
                cur.push(c);
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    };
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Regular patterns first, then `&`, then `!`; only modifiers means "all" plus them.
pub fn order_patterns(patterns: &[String]) -> Vec<String> {
    let (mut reg, mut and, mut not) = (Vec::new(), Vec::new(), Vec::new());
    for p in patterns.iter().filter(|p| !p.is_empty()) {
        match p.chars().next() {
            Some('!') => not.push(p.clone()),
            Some('&') => and.push(p.clone()),
            _ => reg.push(p.clone()),
        }
    }
    if reg.is_empty() {
        reg.push("all".to_string());
    }
    reg.into_iter().chain(and).chain(not).collect()
}

/// Python `fnmatch.fnmatchcase` (what `fnmatch.translate` + `re.match` amount to).
pub fn fnmatch(name: &str, pat: &str) -> bool {
    let n: Vec<char> = name.chars().collect();
    let p: Vec<char> = pat.chars().collect();
    // Pre-parse the pattern into tokens.
    enum T {
        Any,
        One,
        Lit(char),
        Class(bool, Vec<(char, char)>),
    }
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if !matches!(toks.last(), Some(T::Any)) {
                    toks.push(T::Any)
                }
            }
            '?' => toks.push(T::One),
            '[' => {
                let mut j = i;
                if j < p.len() && p[j] == '!' {
                    j += 1;
                }
                if j < p.len() && p[j] == ']' {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    toks.push(T::Lit('['));
                    continue;
                }
                let mut body = &p[i..j];
                i = j + 1;
                let neg = body.first() == Some(&'!');
                if neg {
                    body = &body[1..];
                }
                let mut items = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        items.push((body[k], body[k + 2]));
                        k += 3;
                    } else {
                        items.push((body[k], body[k]));
                        k += 1;
                    }
                }
                toks.push(T::Class(neg, items));
            }
            c => toks.push(T::Lit(c)),
        }
    }
    fn m(t: &[T], n: &[char]) -> bool {
        match t.first() {
            None => n.is_empty(),
            Some(T::Any) => (0..=n.len()).any(|k| m(&t[1..], &n[k..])),
            Some(tok) => {
                let Some(&c) = n.first() else {
                    return false;
                };
                let ok = match tok {
                    T::One => true,
                    T::Lit(l) => *l == c,
                    T::Class(neg, items) => {
                        // An empty class never matches; `[!]` matches any character.
                        let hit = items.iter().any(|(a, b)| *a <= c && c <= *b);
                        if items.is_empty() { *neg } else { hit != *neg }
                    }
                    T::Any => unreachable!(),
                };
                ok && m(&t[1..], &n[1..])
            }
        }
    }
    m(&toks, &n)
}

/// A compiled single pattern matcher over names.
enum NameMatcher {
    Glob(String),
    #[cfg(feature = "controller")]
    Regex(regex::Regex),
}

impl NameMatcher {
    fn new(pattern: &str) -> Result<Self, InventoryError> {
        if let Some(re) = pattern.strip_prefix('~') {
            #[cfg(feature = "controller")]
            {
                return regex::Regex::new(&format!("^(?:{re})"))
                    .map(NameMatcher::Regex)
                    .map_err(|e| {
                        InventoryError::Other(format!("Invalid host list pattern: {pattern}: {e}"))
                    });
            }
            #[cfg(not(feature = "controller"))]
            {
                let _ = re;
                return Err(InventoryError::Other(format!(
                    "Invalid host list pattern: {pattern}: regex patterns need the controller build"
                )));
            }
        }
        Ok(NameMatcher::Glob(pattern.to_string()))
    }
    fn is_match(&self, name: &str) -> bool {
        match self {
            NameMatcher::Glob(p) => fnmatch(name, p),
            #[cfg(feature = "controller")]
            NameMatcher::Regex(r) => r.is_match(name),
        }
    }
}

/// Evaluates patterns against one inventory; collects Ansible's warnings.
pub struct Evaluator<'a> {
    pub data: &'a Data,
    pub warnings: Vec<String>,
}

type Subscript = (i64, Option<i64>);

/// `PATTERN_WITH_SUBSCRIPT`: `expr[N]`, `expr[N:M]`, `expr[N:]`, `expr[N-M]`.
fn split_subscript(pattern: &str, warnings: &mut Vec<String>) -> (String, Option<Subscript>) {
    if pattern.starts_with('~') || !pattern.ends_with(']') {
        return (pattern.to_string(), None);
    }
    let Some(open) = pattern.rfind('[') else {
        return (pattern.to_string(), None);
    };
    if open == 0 {
        return (pattern.to_string(), None);
    }
    let inner = &pattern[open + 1..pattern.len() - 1];
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let base = pattern[..open].to_string();
    let idx = inner.strip_prefix('-').unwrap_or(inner);
    if digits(idx) {
        let v: i64 = inner.parse().unwrap_or(i64::MAX);
        return (base, Some((v, None)));
    }
    if let Some(sep) = inner.find([':', '-']) {
        let (start, end) = (&inner[..sep], &inner[sep + 1..]);
        if digits(start) && (end.is_empty() || digits(end)) {
            if &inner[sep..sep + 1] == "-" {
                warnings.push(
                    "Use [x:y] inclusive subscripts instead of [x-y] which has been removed".into(),
                );
            }
            let s: i64 = start.parse().unwrap_or(i64::MAX);
            let e: i64 = if end.is_empty() {
                -1
            } else {
                end.parse().unwrap_or(i64::MAX)
            };
            return (base, Some((s, Some(e))));
        }
    }
    (pattern.to_string(), None)
}

fn apply_subscript(hosts: Vec<Sel>, sub: Option<Subscript>) -> Result<Vec<Sel>, ()> {
    let Some((start, end)) = sub else {
        return Ok(hosts);
    };
    if hosts.is_empty() {
        return Ok(hosts);
    }
    let len = hosts.len() as i64;
    // Python slice/index semantics.
    let norm = |i: i64| if i < 0 { (i + len).max(0) } else { i.min(len) };
    match end {
        Some(e) if e != 0 => {
            let e = if e == -1 { len - 1 } else { e };
            let (s, e) = (norm(start), norm(e + 1));
            Ok(if s < e {
                hosts[s as usize..e as usize].to_vec()
            } else {
                Vec::new()
            })
        }
        _ => {
            let i = if start < 0 { start + len } else { start };
            if i < 0 || i >= len {
                return Err(());
            }
            Ok(vec![hosts[i as usize].clone()])
        }
    }
}

impl<'a> Evaluator<'a> {
    pub fn new(data: &'a Data) -> Self {
        Evaluator {
            data,
            warnings: Vec::new(),
        }
    }

    fn name(&self, s: &Sel) -> String {
        match s {
            Sel::Host(h) => self.data.hosts[*h].name.clone(),
            Sel::Implicit(n) => n.clone(),
        }
    }

    /// `_evaluate_patterns`.
    pub fn evaluate(&mut self, patterns: &[String]) -> Result<Vec<Sel>, InventoryError> {
        let mut hosts: Vec<Sel> = Vec::new();
        for p in order_patterns(patterns) {
            if let Some(h) = self.data.host(&p) {
                hosts.push(Sel::Host(h));
                continue;
            }
            let that = self.match_one(&p)?;
            if p.starts_with('!') {
                let set: std::collections::HashSet<Sel> = that.into_iter().collect();
                hosts.retain(|h| !set.contains(h));
            } else if p.starts_with('&') {
                let set: std::collections::HashSet<Sel> = that.into_iter().collect();
                hosts.retain(|h| set.contains(h));
            } else {
                let existing: std::collections::HashSet<String> =
                    hosts.iter().map(|h| self.name(h)).collect();
                let add: Vec<Sel> = that
                    .into_iter()
                    .filter(|h| !existing.contains(&self.name(h)))
                    .collect();
                hosts.extend(add);
            }
        }
        Ok(hosts)
    }

    fn match_one(&mut self, pattern: &str) -> Result<Vec<Sel>, InventoryError> {
        let bare = pattern.strip_prefix(['&', '!']).unwrap_or(pattern);
        if bare.is_empty() {
            return Ok(Vec::new());
        }
        let (expr, sub) = split_subscript(bare, &mut self.warnings);
        let hosts = self.enumerate(&expr)?;
        apply_subscript(hosts, sub).map_err(|()| {
            InventoryError::Other(format!("No hosts matched the subscripted pattern '{bare}'"))
        })
    }

    fn enumerate(&mut self, pattern: &str) -> Result<Vec<Sel>, InventoryError> {
        let m = NameMatcher::new(pattern)?;
        let mut results = Vec::new();
        let groups: Vec<usize> = (0..self.data.groups.len())
            .filter(|g| m.is_match(&self.data.groups[*g].name))
            .collect();
        for &g in &groups {
            results.extend(self.data.group_hosts(g).into_iter().map(Sel::Host));
        }
        let special = pattern.starts_with('~') || pattern.contains(['.', '?', '*', '[']);
        if groups.is_empty() || special {
            for h in 0..self.data.hosts.len() {
                if m.is_match(&self.data.hosts[h].name) {
                    results.push(Sel::Host(h));
                }
            }
        }
        if results.is_empty() && LOCALHOST_NAMES.contains(&pattern) {
            results.push(match self.data.localhost {
                Some(h) => Sel::Host(h),
                None => Sel::Implicit(pattern.to_string()),
            });
        }
        if results.is_empty() && groups.is_empty() && pattern != "all" {
            self.warnings.push(format!(
                "Could not match supplied host pattern, ignoring: {pattern}"
            ));
        }
        Ok(results)
    }
}

/// `InventoryManager.subset`: split the limit and expand `@file` entries.
pub fn subset_patterns(limit: &str) -> Result<Vec<String>, InventoryError> {
    let mut out = Vec::new();
    for x in split_host_pattern(limit) {
        if let Some(file) = x.strip_prefix('@') {
            let p = std::path::Path::new(file);
            if !p.exists() {
                return Err(InventoryError::Other(format!(
                    "Unable to find limit file {file}"
                )));
            }
            if !p.is_file() {
                return Err(InventoryError::Other(format!(
                    "Limit starting with \"@\" must be a file, not a directory: {file}"
                )));
            }
            let text = std::fs::read_to_string(p).map_err(|e| InventoryError::File {
                path: p.to_path_buf(),
                msg: format!("cannot read limit file: {e}"),
            })?;
            out.extend(text.split('\n').map(|l| l.trim().to_string()));
        } else {
            out.push(x);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        assert_eq!(
            split_host_pattern("a,b[1], c[2:3] , d"),
            ["a", "b[1]", "c[2:3]", "d"]
        );
        assert_eq!(split_host_pattern("web:&prod:!db"), ["web", "&prod", "!db"]);
        assert_eq!(split_host_pattern("web[1:3]"), ["web[1:3]"]);
        assert_eq!(split_host_pattern("web[1:3]:db"), ["web[1:3]", "db"]);
        assert_eq!(split_host_pattern("host:22"), ["host:22"]);
        assert_eq!(split_host_pattern("fe80::1"), ["fe80::1"]);
        assert_eq!(
            order_patterns(&["!a".into(), "&b".into(), "c".into()]),
            ["c", "&b", "!a"]
        );
        assert_eq!(order_patterns(&["!a".into()]), ["all", "!a"]);
    }

    #[test]
    fn globbing() {
        assert!(fnmatch("web01", "web*"));
        assert!(fnmatch("web01", "web0?"));
        assert!(fnmatch("web01", "web[0-9]1"));
        assert!(!fnmatch("web01", "web[!0]1"));
        assert!(fnmatch("a[b", "a[b"));
        assert!(!fnmatch("web01x", "web0?"));
        assert!(fnmatch("x.example.com", "*.example.com"));
        assert!(!fnmatch("Web01", "web*"));
    }

    #[test]
    fn subscripts() {
        let mut w = Vec::new();
        assert_eq!(
            split_subscript("web[0]", &mut w),
            ("web".into(), Some((0, None)))
        );
        assert_eq!(
            split_subscript("web[-1]", &mut w),
            ("web".into(), Some((-1, None)))
        );
        assert_eq!(
            split_subscript("web[1:]", &mut w),
            ("web".into(), Some((1, Some(-1))))
        );
        assert_eq!(
            split_subscript("web[1:2]", &mut w),
            ("web".into(), Some((1, Some(2))))
        );
        assert_eq!(split_subscript("~web[1]", &mut w), ("~web[1]".into(), None));
        assert!(w.is_empty());
        split_subscript("web[1-2]", &mut w);
        assert_eq!(w.len(), 1);
        let hs: Vec<Sel> = (0..5).map(Sel::Host).collect();
        assert_eq!(
            apply_subscript(hs.clone(), Some((1, Some(2)))).unwrap(),
            hs[1..3]
        );
        assert_eq!(
            apply_subscript(hs.clone(), Some((-1, None))).unwrap(),
            hs[4..5]
        );
        assert_eq!(
            apply_subscript(hs.clone(), Some((3, Some(-1)))).unwrap(),
            hs[3..5]
        );
        assert_eq!(
            apply_subscript(hs.clone(), Some((2, Some(0)))).unwrap(),
            hs[2..3]
        );
        assert!(apply_subscript(hs.clone(), Some((7, None))).is_err());
        assert_eq!(
            apply_subscript(hs.clone(), Some((3, Some(9)))).unwrap(),
            hs[3..5]
        );
    }
}
