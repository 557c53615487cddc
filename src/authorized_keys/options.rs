//! Key options (`from="10.0.0.1",no-pty,command="echo \"hi\""`): scanning the options field
//! of a line, parsing a `key_options` string, rendering, and comparing.
//!
//! Rules are OpenSSH's (`auth-options.c`): the field ends at the first space or tab outside
//! double quotes; inside quotes `\"` is an escaped quote; options are separated by commas
//! outside quotes. Options are kept as written (quotes included) so rendering an unchanged
//! set gives the same bytes back.

use std::collections::BTreeMap;

/// Option names sshd accepts (OpenSSH 9.x `sshd(8)` AUTHORIZED_KEYS FILE FORMAT).
const KNOWN_OPTIONS: &[&str] = &[
    "agent-forwarding",
    "cert-authority",
    "command",
    "environment",
    "expiry-time",
    "from",
    "no-agent-forwarding",
    "no-port-forwarding",
    "no-pty",
    "no-touch-required",
    "no-user-rc",
    "no-X11-forwarding",
    "permitlisten",
    "permitopen",
    "port-forwarding",
    "principals",
    "pty",
    "restrict",
    "tunnel",
    "user-rc",
    "verify-required",
    "X11-forwarding",
];

/// Of those, the ones written `name="value"`.
const VALUE_OPTIONS: &[&str] = &[
    "command",
    "environment",
    "expiry-time",
    "from",
    "permitlisten",
    "permitopen",
    "principals",
    "tunnel",
];

/// An ordered list of options, each kept exactly as written (`name` or `name=value`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    parts: Vec<String>,
}

/// Length of the options field at the start of `s`: up to the first space or tab outside
/// double quotes. Errors on an unterminated quote.
pub(crate) fn field_len(s: &str) -> Result<usize, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted && b.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => return Ok(i),
            _ => {}
        }
        i += 1;
    }
    if quoted {
        Err("unterminated quote in key options".into())
    } else {
        Ok(i)
    }
}

/// Split `s` at commas outside double quotes.
fn split_commas(s: &str) -> Result<Vec<&str>, String> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted && b.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if quoted {
        return Err("unterminated quote in key options".into());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// Whether `part` has a space or tab outside double quotes.
fn has_unquoted_space(part: &str) -> bool {
    field_len(part).map(|n| n < part.len()).unwrap_or(true)
}

impl KeyOptions {
    /// Options of an `authorized_keys` line's options field (already cut at whitespace).
    pub(crate) fn from_field(field: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        for p in split_commas(field)? {
            if p.is_empty() {
                // OpenSSH tolerates a trailing comma only; an empty option elsewhere makes
                // sshd ignore the line, so say so.
                continue;
            }
            parts.push(p.to_string());
        }
        Ok(KeyOptions { parts })
    }

    /// Parse a `key_options` value. Whitespace around each option is dropped (OpenSSH would
    /// otherwise end the options field there and ignore the whole line); empty options
    /// (`a,,b`, a trailing comma) are dropped; whitespace inside an option must be quoted.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.contains(|ch: char| ch.is_control() && ch != '\t') {
            return Err(
                "key options must not contain a line break, NUL or other control character".into(),
            );
        }
        let mut parts = Vec::new();
        for p in split_commas(s)? {
            let p = p.trim_matches([' ', '\t']);
            if p.is_empty() {
                continue;
            }
            if has_unquoted_space(p) {
                return Err(format!(
                    "option {p:?} contains whitespace outside double quotes (sshd would ignore the key)"
                ));
            }
            if p.starts_with('=') {
                return Err(format!("option {p:?} has no name"));
            }
            parts.push(p.to_string());
        }
        Ok(KeyOptions { parts })
    }

    /// Check every option name against the ones OpenSSH's sshd knows (case-insensitive): sshd
    /// ignores a whole line with an unknown option, which would silently disable the key.
    pub fn check_names(&self) -> Result<(), String> {
        for p in &self.parts {
            let name = p.split_once('=').map_or(p.as_str(), |(n, _)| n);
            let known = KNOWN_OPTIONS.iter().any(|k| k.eq_ignore_ascii_case(name));
            if !known {
                return Err(format!(
                    "unknown key option {name:?} (sshd would ignore the key); known options: {}",
                    KNOWN_OPTIONS.join(", ")
                ));
            }
            let wants_value = VALUE_OPTIONS.iter().any(|k| k.eq_ignore_ascii_case(name));
            if wants_value != p.contains('=') {
                return Err(if wants_value {
                    format!("key option {name:?} needs a value ({name}=\"...\")")
                } else {
                    format!("key option {name:?} takes no value")
                });
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The options as written, in order.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// `a,b="c d"`: the parts joined by commas.
    pub fn render(&self) -> String {
        self.parts.join(",")
    }

    /// Equality as `ansible.posix.authorized_key` decides it: the same names with the same
    /// values (in order per name); the order of different names does not matter.
    pub fn same_as(&self, other: &KeyOptions) -> bool {
        self.multimap() == other.multimap()
    }

    fn multimap(&self) -> BTreeMap<&str, Vec<Option<&str>>> {
        let mut m: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
        for p in &self.parts {
            let (k, v) = match p.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (p.as_str(), None),
            };
            m.entry(k).or_default().push(v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_ends_at_unquoted_whitespace() {
        let cases: &[(&str, Result<usize, ()>)] = &[
            ("no-pty ssh-rsa", Ok(6)),
            ("no-pty\tssh-rsa", Ok(6)),
            (r#"command="echo a b",no-pty ssh-rsa"#, Ok(25)),
            (r#"command="say \"a b\"" x"#, Ok(21)),
            (r#"command="x"#, Err(())),
            ("", Ok(0)),
        ];
        for (input, want) in cases {
            assert_eq!(field_len(input).map_err(|_| ()), *want, "{input}");
        }
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<&[&str], ()>)] = &[
            ("no-pty", Ok(&["no-pty"])),
            (
                r#"no-port-forwarding,from="10.0.1.1""#,
                Ok(&["no-port-forwarding", r#"from="10.0.1.1""#]),
            ),
            (r#"from="a,b",no-pty"#, Ok(&[r#"from="a,b""#, "no-pty"])),
            (
                r#"command="echo \"x,y\" z",restrict"#,
                Ok(&[r#"command="echo \"x,y\" z""#, "restrict"]),
            ),
            // whitespace around options (issue ansible.posix#327) is dropped
            (
                r#"command="borg serve --append-only",restrict "#,
                Ok(&[r#"command="borg serve --append-only""#, "restrict"]),
            ),
            (
                "no-pty, no-agent-forwarding",
                Ok(&["no-pty", "no-agent-forwarding"]),
            ),
            ("a,,b,", Ok(&["a", "b"])),
            ("", Ok(&[])),
            ("no pty", Err(())),
            (r#"command="x"#, Err(())),
            ("=x", Err(())),
            ("a\nb", Err(())),
        ];
        for (input, want) in cases {
            let got = KeyOptions::parse(input);
            match want {
                Ok(parts) => {
                    let got = got.unwrap_or_else(|e| panic!("{input}: {e}"));
                    assert_eq!(got.parts(), *parts, "{input}");
                }
                Err(()) => assert!(got.is_err(), "{input} should fail: {got:?}"),
            }
        }
    }

    #[test]
    fn names_checked() {
        let p = |s| KeyOptions::parse(s).unwrap().check_names();
        assert!(p(r#"restrict,No-Pty,from="1.2.3.4",command="x""#).is_ok());
        assert!(p("no-ptty").unwrap_err().contains("unknown key option"));
        assert!(p("from").unwrap_err().contains("needs a value"));
        assert!(p("no-pty=1").unwrap_err().contains("takes no value"));
    }

    #[test]
    fn render_round_trip() {
        for s in [
            "no-pty",
            r#"from="10.0.0.1,10.0.0.2",command="a \"b\" c",no-X11-forwarding"#,
            "",
        ] {
            assert_eq!(KeyOptions::parse(s).unwrap().render(), s);
            assert_eq!(KeyOptions::from_field(s).unwrap().render(), s);
        }
    }

    #[test]
    fn same_as_ignores_order_of_names_only() {
        let p = |s| KeyOptions::parse(s).unwrap();
        assert!(p("a,b=1").same_as(&p("b=1,a")));
        assert!(!p("a,b=1").same_as(&p("a,b=2")));
        assert!(!p("a").same_as(&p("a,a")));
        assert!(
            p("permitopen=\"x:1\",permitopen=\"y:2\"")
                .same_as(&p("permitopen=\"x:1\",permitopen=\"y:2\""))
        );
        assert!(
            !p("permitopen=\"x:1\",permitopen=\"y:2\"")
                .same_as(&p("permitopen=\"y:2\",permitopen=\"x:1\""))
        );
        assert!(p("").same_as(&KeyOptions::default()));
    }
}
