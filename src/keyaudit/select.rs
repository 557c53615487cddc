//! Which keys a revoke removes, and the lock-out guard, as pure decisions over one file.
//!
//! A key is selected by fingerprint (`SHA256:...`; a key given as text or a file is turned
//! into its fingerprint by the caller) or by a glob over its comment (`*` any run, `?` one
//! character, case-sensitive, the whole comment must match). Removal is by key blob, as
//! `authorized_key state=absent` removes: every line of a selected key goes.

use crate::authorized_keys::{AuthorizedKeys, PublicKey};

/// What to revoke.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    pub fingerprints: Vec<String>,
    pub comment_globs: Vec<String>,
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty() && self.comment_globs.is_empty()
    }

    pub fn matches(&self, k: &PublicKey) -> bool {
        self.fingerprints.iter().any(|f| *f == k.fingerprint())
            || self.comment_globs.iter().any(|g| glob_match(g, &k.comment))
    }
}

/// `*`/`?` glob over the whole of `s`.
pub fn glob_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The lock-out guard's facts for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard<'a> {
    /// Who the controller is logged in as on this host.
    pub login_user: &'a str,
    /// The fingerprint of the key it logged in with (`None`: a password, or not known).
    pub login_key: Option<&'a str>,
    /// `--force`: the guard says what it would have refused but refuses nothing.
    pub force: bool,
}

/// What a revoke does to one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePlan {
    /// Keys to remove (one per distinct blob, as found in the file).
    pub remove: Vec<PublicKey>,
    /// Guard refusals (`fingerprint: why`); the key stays.
    pub refused: Vec<String>,
}

/// Plan the revoke of `sel` in `content`, a file of `account`.
pub fn plan_file(content: &str, account: &str, sel: &Selector, guard: &Guard<'_>) -> FilePlan {
    let file = AuthorizedKeys::parse(content);
    let mut plan = FilePlan::default();
    for (_, k) in file.keys() {
        if sel.matches(k) && !plan.remove.iter().any(|r| r.blob == k.blob) {
            plan.remove.push(k.clone());
        }
    }
    if guard.force || account != guard.login_user || plan.remove.is_empty() {
        return plan;
    }
    if let Some(fp) = guard.login_key
        && let Some(i) = plan.remove.iter().position(|k| k.fingerprint() == fp)
    {
        plan.remove.remove(i);
        plan.refused.push(format!(
            "{fp}: the controller is logged in as {account} with this key; not removed (--force to override)",
        ));
    }
    let left = file
        .keys()
        .filter(|(_, k)| !plan.remove.iter().any(|r| r.blob == k.blob))
        .count();
    if left == 0 && !plan.remove.is_empty() {
        let fps: Vec<String> = plan.remove.iter().map(|k| k.fingerprint()).collect();
        plan.refused.push(format!(
            "{}: removing would leave no key in a file of the login user {account}; not removed (--force to override)",
            fps.join(", ")
        ));
        plan.remove.clear();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::{ED1, ED1_FP, ED2, ED3, RSA1, RSA1_FP};

    #[test]
    fn globs() {
        assert!(glob_match("*@laptop-bob", "bob@laptop-bob"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*b*b*", "abcb"));
        assert!(!glob_match("bob@*", "alice@x"));
        assert!(!glob_match("bob", "bob2"));
    }

    fn guard(force: bool) -> Guard<'static> {
        Guard {
            login_user: "deploy",
            login_key: Some(ED1_FP),
            force,
        }
    }

    #[test]
    fn selects_by_fingerprint_and_comment() {
        let text = format!("{ED1}\n{RSA1}\nno-pty {RSA1}\n{ED2}\n");
        let sel = Selector {
            fingerprints: vec![RSA1_FP.into()],
            comment_globs: vec!["user2@*".into()],
        };
        let p = plan_file(&text, "backup", &sel, &guard(false));
        assert_eq!(p.remove.len(), 2, "one per blob: {p:?}");
        assert!(p.refused.is_empty());
    }

    #[test]
    fn guard_keeps_the_login_key_and_never_empties_the_login_users_file() {
        let sel = Selector {
            fingerprints: vec![],
            comment_globs: vec!["user*@example".into()],
        };
        let text = format!("{ED1}\n{ED2}\n{ED3}\n");
        // The login user's file: everything but the login key goes.
        let p = plan_file(&text, "deploy", &sel, &guard(false));
        assert_eq!(p.remove.len(), 2);
        assert!(p.refused[0].starts_with(ED1_FP), "{p:?}");
        // Another account's file: the guard does not apply.
        assert_eq!(
            plan_file(&text, "backup", &sel, &guard(false)).remove.len(),
            3
        );
        // With --force everything goes.
        let p = plan_file(&text, "deploy", &sel, &guard(true));
        assert_eq!((p.remove.len(), p.refused.len()), (3, 0));
        // Logged in with a key from elsewhere: the file would be empty, refused.
        let g = Guard {
            login_key: None,
            ..guard(false)
        };
        let p = plan_file(&format!("{ED2}\n"), "deploy", &sel, &g);
        assert!(p.remove.is_empty());
        assert!(p.refused[0].contains("leave no key"), "{p:?}");
    }
}
