//! The value conversions of ansible-core's `config/manager.py` (`ensure_type`) for the types
//! sshfleet's settings have, and the path resolution they use (`resolve_path` →
//! `unfrackpath(follow=False)`): `{{CWD}}`, `$VAR`/`${VAR}`, `~`/`~user`, relative paths
//! against the config file's directory (or the working directory for environment values),
//! `os.path.normpath`.

use std::path::{Path, PathBuf};

use super::Env;

/// `ansible.module_utils.parsing.convert_bool.boolean(value, strict=False)` on a string.
pub fn boolean(s: &str) -> bool {
    matches!(
        s.trim().to_lowercase().as_str(),
        "y" | "yes" | "on" | "1" | "true" | "t"
    )
}

/// `int(decimal.Decimal(s))` when the mantissa is zero (Ansible's `integer` type); `None`
/// when Python would raise.
pub fn integer(s: &str) -> Option<i64> {
    let t = s.trim();
    let t = t.replace('_', "");
    if let Ok(i) = t.parse::<i64>() {
        return Some(i);
    }
    // Decimal accepts "5.0", "1e1"; integral values only.
    let f: f64 = t.parse().ok()?;
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// `ansible.parsing.quoting.unquote`: strip one pair of matching surrounding quotes.
pub fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() > 1
        && (b[0] == b'"' || b[0] == b'\'')
        && b[0] == b[b.len() - 1]
        && b[b.len() - 2] != b'\\'
    {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// `os.path.expandvars`: `$name` and `${name}` (name = ASCII word characters) replaced by the
/// variable's value; unknown variables are left as written.
pub fn expandvars(s: &str, env: &Env) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match (consumed > 0 && !name.is_empty())
            .then(|| env.var(name))
            .flatten()
        {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[pos..pos + 1 + consumed]),
        }
        rest = &rest[pos + 1 + consumed..];
    }
    out.push_str(rest);
    out
}

/// `os.path.expanduser`: a leading `~` (from `$HOME`) or `~user` (from the user database).
pub fn expanduser(s: &str, env: &Env) -> String {
    let Some(rest) = s.strip_prefix('~') else {
        return s.to_string();
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let home = if user.is_empty() {
        env.home()
    } else {
        env.home_of(user)
    };
    match home {
        Some(h) => {
            let h = h.to_string_lossy();
            let h = if h.len() > 1 {
                h.trim_end_matches('/')
            } else {
                &h
            };
            format!("{h}{tail}")
        }
        None => s.to_string(),
    }
}

/// `posixpath.normpath`, lexically.
pub fn normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        if c.is_empty() || c == "." {
            continue;
        }
        if c != ".." || (initial == 0 && parts.is_empty()) || parts.last() == Some(&"..") {
            parts.push(c);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let joined = parts.join("/");
    let out = format!("{}{}", "/".repeat(initial), joined);
    if out.is_empty() { ".".into() } else { out }
}

/// `resolve_path(value, basedir)`: `{{CWD}}` → the working directory, then `$VAR`, then `~`,
/// then relative paths joined to `basedir` (the config file's directory for values read
/// from it, else the working directory), normalised.
pub fn resolve_path(value: &str, basedir: Option<&Path>, env: &Env) -> PathBuf {
    let cwd = env.cwd().to_string_lossy().into_owned();
    let v = value.replace("{{CWD}}", &cwd);
    let v = expanduser(&expandvars(&v, env), env);
    let joined = if v.starts_with('/') {
        v
    } else {
        let base = basedir.unwrap_or(env.cwd()).to_string_lossy().into_owned();
        if base.ends_with('/') || v.is_empty() {
            format!("{base}{v}")
        } else {
            format!("{base}/{v}")
        }
    };
    PathBuf::from(normpath(&joined))
}

/// The `pathlist` type: split on `,`, strip each item, resolve each as a path.
pub fn pathlist(value: &str, basedir: Option<&Path>, env: &Env) -> Vec<PathBuf> {
    value
        .split(',')
        .map(|x| resolve_path(x.trim(), basedir, env))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::fixed(
            [("HOME", "/home/me/"), ("V", "val"), ("EMPTY", "")],
            "/work/dir",
        )
    }

    #[test]
    fn booleans_and_integers() {
        for t in ["yes", "True", " on ", "1", "t", "Y"] {
            assert!(boolean(t), "{t}");
        }
        for f in ["no", "false", "0", "", "maybe", "\"yes\"", "1.0"] {
            assert!(!boolean(f), "{f}");
        }
        assert_eq!(integer("30"), Some(30));
        assert_eq!(integer(" 7 "), Some(7));
        assert_eq!(integer("5.0"), Some(5));
        assert_eq!(integer("1_000"), Some(1000));
        assert_eq!(integer("5.5"), None);
        assert_eq!(integer("ten"), None);
        assert_eq!(integer(""), None);
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote("'a b'"), "a b");
        assert_eq!(unquote("\"-o X=1\""), "-o X=1");
        assert_eq!(unquote("'a\""), "'a\"");
        assert_eq!(unquote("'"), "'");
        assert_eq!(unquote("'a\\'"), "'a\\'");
    }

    #[test]
    fn expansion() {
        let e = env();
        assert_eq!(
            expandvars("$V/${V}/$NOPE/${NOPE}/$/a$", &e),
            "val/val/$NOPE/${NOPE}/$/a$"
        );
        assert_eq!(expandvars("x${EMPTY}y", &e), "xy");
        assert_eq!(expandvars("${V", &e), "${V");
        assert_eq!(expanduser("~/k", &e), "/home/me/k");
        assert_eq!(expanduser("~", &e), "/home/me");
        assert_eq!(expanduser("a/~/k", &e), "a/~/k");
        assert_eq!(expanduser("~nosuchuser_xyz/k", &e), "~nosuchuser_xyz/k");
        assert_eq!(expanduser("~root/k", &e), "/root/k");
    }

    #[test]
    fn normpaths() {
        assert_eq!(normpath("/a/./b//c/../d/"), "/a/b/d");
        assert_eq!(normpath("/../a"), "/a");
        assert_eq!(normpath("a/../../b"), "../b");
        assert_eq!(normpath("//a"), "//a");
        assert_eq!(normpath("///a"), "/a");
        assert_eq!(normpath(""), ".");
    }

    // As observed with ansible-core 2.19 (`ansible -vvv` IdentityFile): relative to the config
    // file's directory, `{{CWD}}` is the working directory, `~` only at the start, an empty
    // value is the directory itself.
    #[test]
    fn paths() {
        let e = env();
        let cfg = Path::new("/etc/proj");
        assert_eq!(
            resolve_path("rel/k", Some(cfg), &e),
            PathBuf::from("/etc/proj/rel/k")
        );
        assert_eq!(
            resolve_path("rel/k", None, &e),
            PathBuf::from("/work/dir/rel/k")
        );
        assert_eq!(
            resolve_path("{{CWD}}/a/$V/~/k", Some(cfg), &e),
            PathBuf::from("/work/dir/a/val/~/k")
        );
        assert_eq!(
            resolve_path("~/k", Some(cfg), &e),
            PathBuf::from("/home/me/k")
        );
        assert_eq!(resolve_path("", Some(cfg), &e), PathBuf::from("/etc/proj"));
        assert_eq!(
            resolve_path("$V", Some(cfg), &e),
            PathBuf::from("/etc/proj/val")
        );
        assert_eq!(
            pathlist("inv, /abs/b ,c", Some(cfg), &e),
            [
                PathBuf::from("/etc/proj/inv"),
                PathBuf::from("/abs/b"),
                PathBuf::from("/etc/proj/c")
            ]
        );
    }
}
