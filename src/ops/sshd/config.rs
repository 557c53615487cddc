//! Reading `sshd_config` text (pure): directives with their line numbers, whether they sit in
//! a `Match` block, the `Include` patterns that pull in drop-ins, and sshd's glob matching
//! of those patterns.
//!
//! Only what planning needs: keywords are compared case-insensitively as sshd does, values
//! are split on whitespace with `"…"` quoting, `#` starts a comment only at the start of a
//! line (as in sshd). A relative `Include` path is relative to `/etc/ssh`, as sshd resolves it.

/// One active (uncommented) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line number.
    pub line: usize,
    /// The keyword, lower-cased (`hostkey`).
    pub keyword: String,
    pub args: Vec<String>,
    /// After a `Match` line (sshd applies it conditionally; `HostKey` is not allowed there).
    pub in_match: bool,
}

/// The active directives of a config text.
pub fn parse(text: &str) -> Vec<Directive> {
    let mut out = Vec::new();
    let mut in_match = false;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let words = split_words(l);
        let Some((kw, args)) = words.split_first() else {
            continue;
        };
        let mut keyword = kw.to_ascii_lowercase();
        let mut args = args.to_vec();
        // `Keyword=value` is accepted by sshd too.
        if let Some((k, v)) = keyword.clone().split_once('=') {
            keyword = k.to_string();
            if !v.is_empty() {
                args.insert(0, kw[k.len() + 1..].to_string());
            }
        }
        if keyword == "match" {
            in_match = true;
        }
        out.push(Directive {
            line: i + 1,
            keyword,
            args,
            in_match,
        });
    }
    out
}

fn split_words(l: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut has = false;
    for c in l.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                has = true;
            }
            c if c.is_whitespace() && !quoted => {
                if has {
                    words.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        words.push(cur);
    }
    words
}

/// The `Include` patterns outside `Match` blocks, made absolute (relative to `/etc/ssh`).
pub fn include_patterns(text: &str) -> Vec<String> {
    parse(text)
        .into_iter()
        .filter(|d| d.keyword == "include" && !d.in_match)
        .flat_map(|d| d.args)
        .map(|p| {
            if p.starts_with('/') || p.starts_with('~') {
                p
            } else {
                format!("/etc/ssh/{p}")
            }
        })
        .collect()
}

/// The values of `keyword` (lower-case) outside `Match` blocks, with their line numbers.
pub fn values(text: &str, keyword: &str) -> Vec<(usize, String)> {
    parse(text)
        .into_iter()
        .filter(|d| d.keyword == keyword && !d.in_match)
        .filter_map(|d| Some((d.line, d.args.into_iter().next()?)))
        .collect()
}

/// Whether `path` matches the glob `pattern` as glob(3) does for sshd's `Include`: `*` and
/// `?` within one path component, `[...]` classes, no match of a leading `.` by a wildcard.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    p.len() == s.len() && p.iter().zip(&s).all(|(p, s)| component_match(p, s))
}

fn component_match(p: &str, s: &str) -> bool {
    if s.starts_with('.') && !p.starts_with('.') {
        return false;
    }
    let p: Vec<char> = p.chars().collect();
    let s: Vec<char> = s.chars().collect();
    fn m(p: &[char], s: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('*') => (0..=s.len()).any(|i| m(&p[1..], &s[i..])),
            Some('?') => !s.is_empty() && m(&p[1..], &s[1..]),
            Some('[') => {
                let Some(end) = p.iter().skip(1).position(|&c| c == ']').map(|e| e + 1) else {
                    return !s.is_empty() && s[0] == '[' && m(&p[1..], &s[1..]);
                };
                let Some(&c) = s.first() else { return false };
                let class = &p[1..end];
                let (neg, class) = match class.first() {
                    Some('!') | Some('^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != neg && m(&p[end + 1..], &s[1..])
            }
            Some(&c) => !s.is_empty() && s[0] == c && m(&p[1..], &s[1..]),
        }
    }
    m(&p, &s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "# This is the sshd server system-wide configuration file.\n\nInclude /etc/ssh/sshd_config.d/*.conf\n\n#Port 22\n#HostKey /etc/ssh/ssh_host_rsa_key\n#HostKey /etc/ssh/ssh_host_ecdsa_key\n#HostKey /etc/ssh/ssh_host_ed25519_key\nKbdInteractiveAuthentication no\nUsePAM yes\nSubsystem\tsftp\t/usr/lib/openssh/sftp-server\nMatch User anoncvs\n\tX11Forwarding no\n\tInclude /etc/ssh/other/*.conf\n";

    #[test]
    fn debian_stock_config_has_an_include_and_no_active_host_key() {
        assert_eq!(include_patterns(DEBIAN), ["/etc/ssh/sshd_config.d/*.conf"]);
        assert!(values(DEBIAN, "hostkey").is_empty());
        let d = parse(DEBIAN);
        let sub = d.iter().find(|d| d.keyword == "subsystem").unwrap();
        assert_eq!(sub.args, ["sftp", "/usr/lib/openssh/sftp-server"]);
        assert_eq!(sub.line, 11);
        assert!(
            d.iter()
                .find(|d| d.keyword == "x11forwarding")
                .unwrap()
                .in_match
        );
    }

    #[test]
    fn keywords_are_case_insensitive_quoted_and_relative_includes_resolve() {
        let t = "HOSTKEY /k1\nhostkey=\"/k 2\"\nInclude extra.conf\n";
        assert_eq!(
            values(t, "hostkey"),
            [(1, "/k1".to_string()), (2, "/k 2".to_string())]
        );
        assert_eq!(include_patterns(t), ["/etc/ssh/extra.conf"]);
    }

    #[test]
    fn glob_matches_like_glob3() {
        let p = "/etc/ssh/sshd_config.d/*.conf";
        assert!(glob_match(
            p,
            "/etc/ssh/sshd_config.d/50-sshfleet-hostkeys.conf"
        ));
        assert!(!glob_match(p, "/etc/ssh/sshd_config.d/x.conf.bak"));
        assert!(!glob_match(p, "/etc/ssh/sshd_config.d/.hidden.conf"));
        assert!(!glob_match(p, "/etc/ssh/sshd_config.d/sub/x.conf"));
        assert!(glob_match("/etc/ssh/d/[0-9]?-*", "/etc/ssh/d/10-x"));
        assert!(!glob_match("/etc/ssh/d/[!0-9]*", "/etc/ssh/d/10-x"));
    }
}
