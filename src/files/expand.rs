//! `~`, `~user` and `$VAR`/`${VAR}` in paths, the way Ansible expands a module's path
//! arguments on the managed host: Python's `os.path.expanduser(os.path.expandvars(p))` in the
//! environment of the user the module runs as (the become user under become). Pure: the
//! variables and homes come from the caller (the local process for the modules, the remote
//! session for the CLI, `ops::expand`).
//!
//! Only a leading `~` is a home (`/srv/a~b` stays as written); unknown variables and users
//! are left as written.

/// Whether `p` has anything [`expand_vars`] or [`expand_user`] would look at.
pub fn needs_expansion(p: &str) -> bool {
    p.starts_with('~') || p.contains('$')
}

/// `$NAME` and `${NAME}` replaced by `var(NAME)` where it is known (Python's `expandvars`).
pub fn expand_vars(p: &str, var: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(p.len());
    let mut rest = p;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(j) => (&inner[..j], j + 2),
                None => ("", 0),
            }
        } else {
            let n = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..n], n)
        };
        let value = if name.is_empty() { None } else { var(name) };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[i..i + 1 + len]),
        }
        rest = &rest[i + 1 + len..];
    }
    out.push_str(rest);
    out
}

/// The user a leading `~` names: `Some("")` for the current user (`~`, `~/x`), `Some(name)`
/// for `~name`, `None` without a leading `~`.
pub fn tilde_user(p: &str) -> Option<&str> {
    let after = p.strip_prefix('~')?;
    Some(match after.find('/') {
        Some(i) => &after[..i],
        None => after,
    })
}

/// A leading `~`/`~user` replaced by `home` (the home of [`tilde_user`]'s answer), if known
/// (Python's `expanduser`).
pub fn expand_user(p: &str, home: Option<&str>) -> String {
    let (Some(user), Some(home)) = (tilde_user(p), home) else {
        return p.to_string();
    };
    let tail = &p[1 + user.len()..];
    if tail.is_empty() {
        home.to_string()
    } else {
        format!("{}{tail}", home.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_then_user() {
        let var = |n: &str| match n {
            "APP" => Some("/srv/app".to_string()),
            "T" => Some("~/t".to_string()),
            _ => None,
        };
        for (p, want) in [
            ("$APP/x", "/srv/app/x"),
            ("${APP}x", "/srv/appx"),
            ("$NOPE/x", "$NOPE/x"),
            ("${NOPE", "${NOPE"),
            ("a$", "a$"),
            ("/srv/a~b", "/srv/a~b"),
            ("$T", "~/t"),
        ] {
            assert_eq!(expand_vars(p, var), want, "{p}");
        }
        assert_eq!(tilde_user("~"), Some(""));
        assert_eq!(tilde_user("~/a"), Some(""));
        assert_eq!(tilde_user("~bob/a"), Some("bob"));
        assert_eq!(tilde_user("/a/~b"), None);
        assert_eq!(expand_user("~", Some("/home/u")), "/home/u");
        assert_eq!(expand_user("~/a", Some("/home/u/")), "/home/u/a");
        assert_eq!(expand_user("~bob/a/", Some("/home/bob")), "/home/bob/a/");
        assert_eq!(expand_user("~ghost/a", None), "~ghost/a");
        assert_eq!(expand_user("/a/~", Some("/x")), "/a/~");
        assert!(needs_expansion("~/x") && needs_expansion("/a/$X") && !needs_expansion("/a~b"));
    }
}
