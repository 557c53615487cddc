//! OpenSSH's `match.c` wildcards: `*` and `?` patterns ([`match_pattern`]), comma-separated
//! lists with `!` negation ([`match_pattern_list`]) and host name lists
//! ([`match_hostname`], case-insensitive). `Host` lines use [`match_pattern`] on each word,
//! case-sensitively.

/// `match_pattern(s, pattern)`: `*` any run, `?` any one byte, everything else literal.
pub fn match_pattern(s: &str, pattern: &str) -> bool {
    mp(s.as_bytes(), pattern.as_bytes())
}

fn mp(mut s: &[u8], mut p: &[u8]) -> bool {
    loop {
        let Some(&pc) = p.first() else {
            return s.is_empty();
        };
        if pc == b'*' {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            if p.is_empty() {
                return true;
            }
            return (0..s.len()).any(|i| mp(&s[i..], p));
        }
        let Some(&sc) = s.first() else {
            return false;
        };
        if pc != b'?' && pc != sc {
            return false;
        }
        s = &s[1..];
        p = &p[1..];
    }
}

/// `match_pattern_list`: 1 if some sub-pattern matches, -1 if a negated one matches (which
/// wins), 0 otherwise. `dolower` lower-cases the patterns (not the string).
pub fn match_pattern_list(s: &str, pattern: &str, dolower: bool) -> i32 {
    let p = pattern.as_bytes();
    let mut got_positive = 0;
    let mut i = 0;
    while i < p.len() {
        let neg = p[i] == b'!';
        if neg {
            i += 1;
        }
        let start = i;
        while i < p.len() && p[i] != b',' {
            i += 1;
        }
        if i - start >= 1023 {
            return 0;
        }
        let mut sub = String::from_utf8_lossy(&p[start..i]).into_owned();
        if dolower {
            sub.make_ascii_lowercase();
        }
        if i < p.len() {
            i += 1; // the comma
        }
        if match_pattern(s, &sub) {
            if neg {
                return -1;
            }
            got_positive = 1;
        }
    }
    got_positive
}

/// `match_hostname`: the host (lower-cased) against a lower-cased pattern list.
pub fn match_hostname(host: &str, pattern: &str) -> i32 {
    match_pattern_list(&host.to_ascii_lowercase(), pattern, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(match_pattern("web1.example.com", "*.example.com"));
        assert!(match_pattern("a", "?"));
        assert!(!match_pattern("ab", "?"));
        assert!(match_pattern("", "*"));
        assert!(match_pattern("10.0.3.4", "10.0.*"));
        assert!(!match_pattern("GitHub.com", "github.com"));
        assert!(match_pattern("abcabd", "*ab?"));
    }

    #[test]
    fn lists() {
        assert_eq!(match_pattern_list("web1", "db*,web*", false), 1);
        assert_eq!(match_pattern_list("web1", "*,!web1", false), -1);
        assert_eq!(match_pattern_list("mail", "db*,web*", false), 0);
        assert_eq!(match_pattern_list("root", "ROOT", false), 0);
        assert_eq!(match_hostname("Web1.Example.ORG", "*.example.org"), 1);
        assert_eq!(match_hostname("x.example.org", "*.EXAMPLE.org,!x.*"), -1);
    }
}
