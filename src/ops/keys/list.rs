//! `keys list`: the keys of one user's `authorized_keys` on one host (fingerprint, type,
//! options, comment, line), read through any [`Target`].

use crate::authorized_keys::{AuthorizedKeys, PublicKey};
use crate::target::{TResult, Target, TargetError};

/// One key line as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedKey {
    pub line: usize,
    pub fingerprint: String,
    pub key_type: String,
    pub options: String,
    pub comment: String,
}

impl ListedKey {
    fn of(line: usize, k: &PublicKey) -> ListedKey {
        ListedKey {
            line,
            fingerprint: k.fingerprint(),
            key_type: k.key_type.clone(),
            options: k.options.render(),
            comment: k.comment.clone(),
        }
    }
}

/// The listing of one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listing {
    pub user: String,
    pub keyfile: String,
    /// False when the file does not exist (no keys).
    pub exists: bool,
    pub keys: Vec<ListedKey>,
    /// Lines that are not valid keys: `line N: reason`.
    pub warnings: Vec<String>,
}

/// `~user/.ssh/authorized_keys`, or `path` (a leading `~/` is the user's home).
pub fn keyfile_path(home: &str, path: Option<&str>) -> String {
    match path {
        None => format!("{}/.ssh/authorized_keys", home.trim_end_matches('/')),
        Some(p) => match p.strip_prefix("~/") {
            Some(rest) => format!("{}/{rest}", home.trim_end_matches('/')),
            None => p.to_string(),
        },
    }
}

/// Pure: the listing of `content`.
pub fn listing(user: &str, keyfile: &str, content: Option<&str>) -> Listing {
    let parsed = AuthorizedKeys::parse(content.unwrap_or(""));
    Listing {
        user: user.to_string(),
        keyfile: keyfile.to_string(),
        exists: content.is_some(),
        keys: parsed.keys().map(|(n, k)| ListedKey::of(n, k)).collect(),
        warnings: parsed
            .invalid()
            .map(|(n, r)| format!("line {n}: {r}"))
            .collect(),
    }
}

/// Largest authorized_keys file we read (sshd has no limit, but a runaway file is an error).
pub const MAX_FILE: u64 = 16 << 20;

/// Read and list `user`'s keys on `target`.
pub async fn list<T: Target>(target: &T, user: &str, path: Option<&str>) -> TResult<Listing> {
    let info = target
        .lookup_user(user)
        .await?
        .ok_or_else(|| TargetError::Other(format!("user {user} does not exist")))?;
    let keyfile = keyfile_path(&info.home, path);
    let content = match target.read(&keyfile, MAX_FILE).await {
        Ok(bytes) => Some(String::from_utf8(bytes).map_err(|e| {
            TargetError::Other(format!(
                "{keyfile}: not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?),
        Err(TargetError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(listing(user, &keyfile, content.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::{ED1, ED1_FP, RSA1, RSA1_FP};

    #[test]
    fn paths() {
        assert_eq!(
            keyfile_path("/home/u", None),
            "/home/u/.ssh/authorized_keys"
        );
        assert_eq!(keyfile_path("/home/u/", Some("~/k")), "/home/u/k");
        assert_eq!(keyfile_path("/home/u", Some("/etc/k/u")), "/etc/k/u");
    }

    #[test]
    fn lists_keys_and_warns_on_bad_lines() {
        let text = format!("# c\n\nno-pty {ED1}\nssh-ed25519 garbage\n{RSA1}\n");
        let l = listing("deploy", "/k", Some(&text));
        assert!(l.exists);
        let fps: Vec<_> = l.keys.iter().map(|k| k.fingerprint.as_str()).collect();
        assert_eq!(fps, [ED1_FP, RSA1_FP]);
        assert_eq!(l.keys[0].line, 3);
        assert_eq!(l.keys[0].options, "no-pty");
        assert_eq!(l.keys[0].comment, "user1@example");
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].starts_with("line 4: "), "{:?}", l.warnings);
        let none = listing("deploy", "/k", None);
        assert!(!none.exists && none.keys.is_empty());
    }

    #[tokio::test]
    async fn lists_through_a_local_target() {
        use crate::target::local::LocalTarget;
        let dir = tempfile::tempdir().unwrap();
        let me = crate::ssh::current_user();
        let kf = dir.path().join("ak");
        std::fs::write(&kf, format!("{ED1}\n")).unwrap();
        let t = LocalTarget::new();
        let l = list(&t, &me, Some(kf.to_str().unwrap())).await.unwrap();
        assert_eq!(l.keys.len(), 1);
        assert_eq!(l.keys[0].fingerprint, ED1_FP);
        let missing = dir.path().join("missing");
        let l = list(&t, &me, Some(missing.to_str().unwrap()))
            .await
            .unwrap();
        assert!(!l.exists);
        assert!(list(&t, "no-such-user-xyz", None).await.is_err());
    }
}
