//! Host names in inventories: `host:port` splitting and `[a:b:step]` range expansion.
//!
//! Ports of Ansible's `parse_address` (`ansible/parsing/utils/addresses.py`: IPv4, IPv6 and
//! hostname shapes, each allowed to contain ranges) and `expand_hostname_range`
//! (`ansible/plugins/inventory/__init__.py`), including their quirks: a name that is not a
//! valid address keeps its `:port` as part of the name, and a range is expanded even then.

/// Split `address` into (host, port) like `parse_address(address, allow_ranges=True)`.
/// `Err` when it is not a valid IPv4/IPv6/hostname (with optional ranges).
pub fn parse_address(address: &str, allow_ranges: bool) -> Result<(String, Option<u32>), String> {
    let mut addr = address.to_string();
    let mut port: Option<u32> = None;
    // Python loops over both patterns with `continue`, so a bracketed match is re-examined.
    if let Some((h, p)) = match_bracketed_hostport(&addr) {
        addr = h;
        port = Some(p);
    }
    if let Some((h, p)) = match_hostport(&addr) {
        addr = h;
        port = Some(p);
    }
    if !(is_ipv4(&addr) || is_ipv6(&addr) || is_hostname(&addr)) {
        return Err(format!("Not a valid network hostname: {addr}"));
    }
    if !allow_ranges && addr.contains('[') {
        return Err("Detected range in host but was asked to ignore ranges".into());
    }
    Ok((addr, port))
}

fn digits_port(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Python's int() has no upper bound; ports that large are rejected later anyway.
    Some(
        s.parse::<u64>()
            .map(|v| v.min(u32::MAX as u64) as u32)
            .unwrap_or(u32::MAX),
    )
}

/// `^\[(.+)\]:([0-9]+)$`
fn match_bracketed_hostport(s: &str) -> Option<(String, u32)> {
    let rest = s.strip_prefix('[')?;
    let idx = rest.rfind("]:")?;
    let (inner, tail) = (&rest[..idx], &rest[idx + 2..]);
    if inner.is_empty() || inner.contains('\n') {
        return None;
    }
    Some((inner.to_string(), digits_port(tail)?))
}

/// `^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$`
fn match_hostport(s: &str) -> Option<(String, u32)> {
    for (idx, _) in s.match_indices(':').collect::<Vec<_>>().into_iter().rev() {
        let (prefix, tail) = (&s[..idx], &s[idx + 1..]);
        let Some(port) = digits_port(tail) else {
            continue;
        };
        if prefix_ok(prefix) {
            return Some((prefix.to_string(), port));
        }
    }
    None
}

fn prefix_ok(p: &str) -> bool {
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'[' => match p[i + 1..].find(']') {
                Some(j) => i += j + 2,
                None => return false,
            },
            b':' | b']' => return false,
            _ => i += 1,
        }
    }
    true
}

/// `\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]` and friends: a bracketed range of `unit` bounds.
fn range_len(s: &str, bound: impl Fn(&str) -> bool) -> Option<usize> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find(']')?;
    let parts: Vec<&str> = rest[..end].split(':').collect();
    let ok = match parts.len() {
        2 => bound(parts[0]) && bound(parts[1]),
        3 => bound(parts[0]) && bound(parts[1]) && is_digits(parts[2]),
        _ => false,
    };
    ok.then_some(end + 2)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn ipv4_component(c: &str) -> bool {
    if c.starts_with('[') {
        return range_len(c, is_digits) == Some(c.len());
    }
    is_digits(c) && c.len() <= 3 && (c.len() < 3 || c.parse::<u32>().is_ok_and(|v| v <= 255))
}

fn is_ipv4(s: &str) -> bool {
    let mut parts = 0;
    s.split('.').all(|p| {
        parts += 1;
        parts <= 4 && ipv4_component(p)
    }) && parts == 4
}

fn ipv6_component(c: &str) -> bool {
    if c.starts_with('[') {
        return range_len(c, is_hex) == Some(c.len());
    }
    is_hex(c) && c.len() <= 4
}

/// Replace hex ranges by a plain component so the remaining text splits on ':'.
fn ipv6_components(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with('[') {
            let n = range_len(rest, is_hex)?;
            out.push('0');
            i += n;
        } else {
            let c = rest.chars().next()?;
            out.push(c);
            i += c.len_utf8();
        }
    }
    Some(out)
}

fn is_ipv6(s: &str) -> bool {
    // Every IPv6 shape has a ':' (most names have none: skip the work).
    if !s.contains(':') {
        return false;
    }
    let Some(t) = ipv6_components(s) else {
        return false;
    };
    let comps = |part: &str| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let v: Vec<&str> = part.split(':').collect();
        v.iter().all(|c| ipv6_component(c)).then_some(v.len())
    };
    let dotted = |part: &str| -> bool {
        let v: Vec<&str> = part.split('.').collect();
        v.len() == 4 && v.iter().all(|c| ipv6_component(c))
    };
    match t.matches("::").count() {
        0 => {
            let v: Vec<&str> = t.split(':').collect();
            if v.len() == 8 && v.iter().all(|c| ipv6_component(c)) {
                return true;
            }
            // (?:0:){6}a.b.c.d  and  (?:0:){5}ffff:a.b.c.d
            if v.len() == 7 && dotted(v[6]) {
                return v[..6].iter().all(|c| *c == "0")
                    || (v[..5].iter().all(|c| *c == "0") && v[5].eq_ignore_ascii_case("ffff"));
            }
            false
        }
        1 => {
            let (l, r) = t.split_once("::").unwrap_or_default();
            // ::(?:ffff:)?a.b.c.d
            if l.is_empty() {
                let r4 = r
                    .strip_prefix("ffff:")
                    .or_else(|| r.strip_prefix("FFFF:"))
                    .unwrap_or(r);
                if dotted(r4) || dotted(r) {
                    return true;
                }
            }
            match (comps(l), comps(r)) {
                (Some(a), Some(b)) => a <= 6 && b <= 6 && a + b <= 7,
                _ => false,
            }
        }
        _ => false,
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One DNS-ish label, possibly with alphanumeric ranges, not ending in `_` or `-`.
fn is_label(l: &str) -> bool {
    if l.is_empty() {
        return false;
    }
    let alnum_bound =
        |b: &str| is_digits(b) || (b.len() == 1 && b.as_bytes()[0].is_ascii_alphabetic());
    let mut i = 0;
    let mut first = true;
    let mut last = ' ';
    while i < l.len() {
        let rest = &l[i..];
        if rest.starts_with('[') {
            let Some(n) = range_len(rest, alnum_bound) else {
                return false;
            };
            // One-char ranges must be letter:letter, numeric ones digits:digits.
            let inner = &rest[1..n - 1];
            let parts: Vec<&str> = inner.split(':').collect();
            if is_digits(parts[0]) != is_digits(parts[1]) {
                return false;
            }
            i += n;
            last = ']';
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            if !(is_word_char(c) || (!first && c == '-')) {
                return false;
            }
            i += c.len_utf8();
            last = c;
        }
        first = false;
    }
    last != '_' && last != '-'
}

fn is_hostname(s: &str) -> bool {
    s.split('.').all(is_label)
}

const ASCII_LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Python `int(s)` for range bounds: optional sign, digits, single underscores.
fn py_int(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let (neg, d) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let ok = !d.is_empty()
        && !d.starts_with('_')
        && !d.ends_with('_')
        && !d.contains("__")
        && d.chars().all(|c| c.is_ascii_digit() || c == '_');
    let v: i64 = if ok {
        d.replace('_', "").parse().ok()
    } else {
        None
    }
    .ok_or_else(|| format!("invalid literal for int() with base 10: '{s}'"))?;
    Ok(if neg { -v } else { v })
}

/// Expand every `[begin:end(:step)]` in `line` (Ansible's `expand_hostname_range`).
pub fn expand_hostname_range(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    expand_into(line, &mut out)?;
    Ok(out)
}

fn expand_into(line: &str, out: &mut Vec<String>) -> Result<(), String> {
    // Python: line.replace('[','|',1).replace(']','|',1).split('|') must give 3 parts.
    let replaced = line.replacen('[', "|", 1).replacen(']', "|", 1);
    let parts: Vec<&str> = replaced.split('|').collect();
    if parts.len() != 3 {
        return Err(format!("invalid host range in '{}'", excerpt(line)));
    }
    let (head, nrange, tail) = (parts[0], parts[1], parts[2]);
    let bounds: Vec<&str> = nrange.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err("host range must be begin:end or begin:end:step".into());
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    let step = if bounds.len() == 3 {
        py_int(bounds[2])?
    } else {
        1
    };
    if end.is_empty() {
        return Err("host range must specify end value".into());
    }
    let width = if beg.starts_with('0') && beg.len() > 1 {
        if beg.len() != end.len() {
            return Err("host range must specify equal-length begin and end formats".into());
        }
        Some(beg.len())
    } else {
        None
    };
    if step == 0 {
        return Err("host range step must not be zero".into());
    }
    let items: Vec<String> = match (ASCII_LETTERS.find(beg), ASCII_LETTERS.find(end)) {
        (Some(ib), Some(ie)) => {
            if ib > ie {
                return Err("host range must have begin <= end".into());
            }
            let letters: Vec<char> = ASCII_LETTERS.chars().collect();
            python_range(ib as i64, ie as i64 + 1, step)
                .map(|k| letters[k as usize].to_string())
                .collect()
        }
        _ => {
            let (b, e) = (py_int(beg)?, py_int(end)?);
            python_range(b, e + 1, step)
                .map(|k| k.to_string())
                .collect()
        }
    };
    for item in items {
        let item = match width {
            Some(w) => zfill(&item, w),
            None => item,
        };
        let name = format!("{head}{item}{tail}");
        if name.contains('[') {
            expand_into(&name, out)?;
        } else {
            out.push(name);
        }
    }
    Ok(())
}

fn zfill(s: &str, w: usize) -> String {
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", s),
    };
    let pad = w.saturating_sub(s.len());
    format!("{sign}{}{digits}", "0".repeat(pad))
}

fn python_range(start: i64, stop: i64, step: i64) -> impl Iterator<Item = i64> {
    let mut cur = start;
    std::iter::from_fn(move || {
        if (step > 0 && cur < stop) || (step < 0 && cur > stop) {
            let v = cur;
            cur += step;
            Some(v)
        } else {
            None
        }
    })
}

/// Ansible's `_expand_hostpattern`: names (ranges expanded) and the optional port.
pub fn expand_hostpattern(pattern: &str) -> Result<(Vec<String>, Option<u32>), String> {
    let (name, port) = match parse_address(pattern, true) {
        Ok((h, p)) => (h, p),
        Err(_) => (pattern.to_string(), None),
    };
    let names = if name.contains('[') {
        expand_hostname_range(&name)?
    } else {
        vec![name]
    };
    Ok((names, port))
}

/// At most 80 characters of `s` for an error message (a hostile 1 MiB line is not echoed).
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_ports() {
        assert_eq!(parse_address("host", true).unwrap(), ("host".into(), None));
        assert_eq!(
            parse_address("host:22", true).unwrap(),
            ("host".into(), Some(22))
        );
        assert_eq!(
            parse_address("10.0.0.1:2222", true).unwrap(),
            ("10.0.0.1".into(), Some(2222))
        );
        assert_eq!(
            parse_address("[::1]:22", true).unwrap(),
            ("::1".into(), Some(22))
        );
        assert_eq!(parse_address("::1", true).unwrap(), ("::1".into(), None));
        assert_eq!(
            parse_address("fe80::1:2", true).unwrap(),
            ("fe80::1:2".into(), None)
        );
        assert_eq!(
            parse_address("web[01:03]:22", true).unwrap(),
            ("web[01:03]".into(), Some(22))
        );
        assert_eq!(
            parse_address("10.0.0.[1:3]", true).unwrap(),
            ("10.0.0.[1:3]".into(), None)
        );
        assert!(parse_address("foo_", true).is_err());
        assert!(parse_address("-foo", true).is_err());
        assert!(parse_address("a b", true).is_err());
        assert!(parse_address("web[1:3]", false).is_err());
        assert!(is_ipv6("1:2:3:4:5:6:7:8"));
        assert!(is_ipv6("::ffff:10.0.0.1"));
        assert!(!is_ipv6("1:2:3:4:5:6:7::"));
        assert!(is_ipv4("192.168.001.255"));
        assert!(!is_ipv4("192.168.1.256"));
        assert!(!is_ipv4("1.2.3"));
        assert!(!is_ipv4("1.2.3.4.5"));
        assert!(!is_ipv6("web01.example.net"));
    }

    #[test]
    fn ranges() {
        assert_eq!(
            expand_hostname_range("web[01:03]").unwrap(),
            ["web01", "web02", "web03"]
        );
        assert_eq!(
            expand_hostname_range("db[a:c].x").unwrap(),
            ["dba.x", "dbb.x", "dbc.x"]
        );
        assert_eq!(
            expand_hostname_range("n[0:10:5]").unwrap(),
            ["n0", "n5", "n10"]
        );
        assert_eq!(
            expand_hostname_range("r[1:2]c[a:b]").unwrap(),
            ["r1ca", "r1cb", "r2ca", "r2cb"]
        );
        assert_eq!(expand_hostname_range("h[:2]").unwrap(), ["h0", "h1", "h2"]);
        assert_eq!(
            expand_hostname_range("h[y:B]").unwrap(),
            ["hy", "hz", "hA", "hB"]
        );
        assert!(expand_hostname_range("h[1:]").is_err());
        assert!(expand_hostname_range("h[01:3]").is_err());
        assert!(expand_hostname_range("h[c:a]").is_err());
        assert!(expand_hostname_range("h[1:2:0]").is_err());
        assert!(expand_hostname_range("h[1]").is_err());
        assert!(expand_hostname_range("h[a:10]").is_err());
        assert!(expand_hostname_range("h[1:2").is_err());
    }

    #[test]
    fn hostpattern_keeps_invalid_names_whole() {
        assert_eq!(
            expand_hostpattern("h!x:22").unwrap(),
            (vec!["h!x:22".to_string()], None)
        );
        assert_eq!(expand_hostpattern("web[1:2]:2222").unwrap().1, Some(2222));
    }
}
