//! Owner and group as users write them (`root`, `0`, `www-data`, `33`) and the rule for
//! resolving them on a host.
//!
//! Resolution rule: a string of digits is used as the numeric id directly (no lookup, so it
//! works for ids without a passwd/group entry and costs no round trip); anything else is
//! looked up by name on the destination host, and a name that does not exist there fails that
//! host with a message naming the user or group. (Ansible looks the name up first and falls
//! back to the number; the two only differ for accounts literally named with digits.)

/// An owner or group that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct OwnerError {
    pub what: &'static str,
    pub input: String,
    pub reason: &'static str,
}

/// A user or group, by number or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSpec {
    Id(u32),
    Name(String),
}

impl IdSpec {
    /// Parse an owner (`what = "owner"`) or group (`what = "group"`).
    pub fn parse(what: &'static str, input: &str) -> Result<IdSpec, OwnerError> {
        let e = |reason| OwnerError {
            what,
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(e("empty"));
        }
        if input.bytes().all(|b| b.is_ascii_digit()) {
            return input
                .parse::<u32>()
                .map(IdSpec::Id)
                .map_err(|_| e("number out of range"));
        }
        if input
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '/')
        {
            return Err(e(
                "names cannot contain whitespace, control characters, ':' or '/'",
            ));
        }
        Ok(IdSpec::Name(input.to_string()))
    }
}

impl std::fmt::Display for IdSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdSpec::Id(n) => write!(f, "{n}"),
            IdSpec::Name(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(IdSpec::parse("owner", "0").unwrap(), IdSpec::Id(0));
        assert_eq!(IdSpec::parse("owner", "1000").unwrap(), IdSpec::Id(1000));
        assert_eq!(
            IdSpec::parse("group", "www-data").unwrap(),
            IdSpec::Name("www-data".into())
        );
        assert_eq!(
            IdSpec::parse("owner", "deploy").unwrap().to_string(),
            "deploy"
        );
    }

    #[test]
    fn rejects_unusable_input() {
        for bad in ["", "a b", "a:b", "x/y", "99999999999", "tab\t"] {
            let e = IdSpec::parse("owner", bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().starts_with("invalid owner"));
        }
    }
}
