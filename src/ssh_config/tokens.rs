//! Token expansion as OpenSSH does it: `%x` tokens ([`percent_expand`]), `${VAR}`
//! environment references ([`dollar_expand`]) and a leading `~`/`~user`
//! ([`tilde_expand`]). Which tokens a keyword accepts is the caller's list (ssh_config(5),
//! TOKENS).

/// A string that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("unknown token %{0}")]
    UnknownToken(char),
    #[error("'%' at the end of the string")]
    TrailingPercent,
    #[error("environment variable '{0}' missing closing '}}'")]
    UnclosedVar(String),
    #[error("zero-length environment variable")]
    EmptyVar,
    #[error("environment variable ${{{0}}} has no value")]
    MissingVar(String),
    #[error("no such user {0}")]
    NoSuchUser(String),
}

/// Looks up an environment variable for `${VAR}`.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// `vdollar_percent_expand`: `${VAR}` when `env` is given, `%x` from `keys` when given.
pub fn expand(
    s: &str,
    keys: Option<&[(char, &str)]>,
    env: Option<EnvLookup<'_>>,
) -> Result<String, TokenError> {
    let mut out = String::with_capacity(s.len());
    let mut missing: Option<String> = None;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if let Some(env) = env
            && c == '$'
            && s[i + 1..].starts_with('{')
        {
            let body = &s[i + 2..];
            let Some(end) = body.find('}') else {
                return Err(TokenError::UnclosedVar(body.to_string()));
            };
            if end == 0 {
                return Err(TokenError::EmptyVar);
            }
            let var = &body[..end];
            match env(var) {
                Some(v) => out.push_str(&v),
                None => {
                    missing.get_or_insert_with(|| var.to_string());
                }
            }
            // skip `{`, the name and `}`
            let stop = i + 2 + end + 1;
            while it.peek().is_some_and(|(j, _)| *j < stop) {
                it.next();
            }
            continue;
        }
        let Some(keys) = keys else {
            out.push(c);
            continue;
        };
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some((_, t)) = it.next() else {
            return Err(TokenError::TrailingPercent);
        };
        if t == '%' {
            out.push('%');
            continue;
        }
        match keys.iter().find(|(k, _)| *k == t) {
            Some((_, v)) => out.push_str(v),
            None => return Err(TokenError::UnknownToken(t)),
        }
    }
    match missing {
        Some(v) => Err(TokenError::MissingVar(v)),
        None => Ok(out),
    }
}

/// `percent_expand`: `%x` tokens only (`%%` is a `%`; an unknown token is an error).
pub fn percent_expand(s: &str, keys: &[(char, &str)]) -> Result<String, TokenError> {
    expand(s, Some(keys), None)
}

/// `dollar_expand`: `${VAR}` only.
pub fn dollar_expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, TokenError> {
    expand(s, None, Some(env))
}

/// `tilde_expand`: `~` and `~/path` are the home of `home` (the passwd entry of the local
/// uid), `~user/path` that user's home (`lookup_home`); other strings are unchanged.
pub fn tilde_expand(
    s: &str,
    home: &str,
    lookup_home: &dyn Fn(&str) -> Option<String>,
) -> Result<String, TokenError> {
    let Some(rest) = s.strip_prefix('~') else {
        return Ok(s.to_string());
    };
    let (dir, path) = if rest.is_empty() || rest.starts_with('/') {
        (home.to_string(), rest.trim_start_matches('/'))
    } else {
        let (user, path) = match rest.find('/') {
            Some(p) => (&rest[..p], rest[p + 1..].trim_start_matches('/')),
            None => (rest, ""),
        };
        let dir = lookup_home(user).ok_or_else(|| TokenError::NoSuchUser(user.to_string()))?;
        (dir, path)
    };
    let slash = if dir.is_empty() || !dir.ends_with('/') {
        "/"
    } else {
        ""
    };
    Ok(format!("{dir}{slash}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // ssh_config(5) TOKENS: the values below are what the keywords receive.
    const KEYS: &[(char, &str)] = &[
        ('d', "/home/ops"),
        ('u', "ops"),
        ('r', "deploy"),
        ('h', "web1.example.org"),
        ('p', "2222"),
        ('n', "web1"),
    ];

    #[test]
    fn percent_tokens() {
        assert_eq!(
            percent_expand("%d/.ssh/%r@%h:%p-%u", KEYS).unwrap(),
            "/home/ops/.ssh/deploy@web1.example.org:2222-ops"
        );
        assert_eq!(percent_expand("100%%", KEYS).unwrap(), "100%");
        assert_eq!(percent_expand("%n.lan", KEYS).unwrap(), "web1.lan");
        assert_eq!(
            percent_expand("%x", KEYS),
            Err(TokenError::UnknownToken('x'))
        );
        assert_eq!(
            percent_expand("50%", KEYS),
            Err(TokenError::TrailingPercent)
        );
    }

    #[test]
    fn dollar_vars() {
        let env = |v: &str| (v == "XDG").then(|| "/run/u".to_string());
        assert_eq!(dollar_expand("${XDG}/agent", &env).unwrap(), "/run/u/agent");
        assert_eq!(dollar_expand("$XDG", &env).unwrap(), "$XDG");
        assert!(matches!(
            dollar_expand("${NOPE}", &env),
            Err(TokenError::MissingVar(_))
        ));
        assert!(matches!(
            dollar_expand("${XDG", &env),
            Err(TokenError::UnclosedVar(_))
        ));
        assert_eq!(dollar_expand("${}", &env), Err(TokenError::EmptyVar));
        // both at once, as UserKnownHostsFile/IdentityAgent are expanded
        assert_eq!(
            expand("${XDG}/%h", Some(KEYS), Some(&env)).unwrap(),
            "/run/u/web1.example.org"
        );
    }

    #[test]
    fn tilde() {
        let other = |u: &str| (u == "bob").then(|| "/home/bob/".to_string());
        assert_eq!(
            tilde_expand("~/.ssh/id", "/h/ops", &other).unwrap(),
            "/h/ops/.ssh/id"
        );
        assert_eq!(tilde_expand("~", "/h/ops", &other).unwrap(), "/h/ops/");
        assert_eq!(tilde_expand("~//x", "/h/ops", &other).unwrap(), "/h/ops/x");
        assert_eq!(
            tilde_expand("~bob/k", "/h/ops", &other).unwrap(),
            "/home/bob/k"
        );
        assert!(tilde_expand("~nobody/k", "/h/ops", &other).is_err());
        assert_eq!(tilde_expand("/abs/~", "/h/ops", &other).unwrap(), "/abs/~");
    }
}
