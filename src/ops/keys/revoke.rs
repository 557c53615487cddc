//! `keys revoke` on one host: remove the selected keys from every file sshd reads for every
//! account, as found by the audit ([`super::audit::gather`]), through the same
//! `authorized_key` operation every other key edit uses (state absent, atomic write with
//! the "still what was read" precondition, the file's own mode and owner kept).
//!
//! The plan per file, and the lock-out guard, are pure ([`crate::keyaudit::select`]).

use crate::keyaudit::select::{Guard, Selector, plan_file};
use crate::keyaudit::{FileState, HostAudit};
use crate::ops::authorized_key::{
    AuthorizedKeyParams, AuthorizedKeyResult, FileDiff, RunMode, apply,
};
use crate::target::Target;

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileRevoke {
    pub user: String,
    pub path: String,
    /// sshd reads this file (false: it ignores it, e.g. StrictModes; keys are removed anyway
    /// so they do not come back when the modes are fixed).
    pub used_by_sshd: bool,
    pub changed: bool,
    /// Fingerprints removed (or that would be, in check mode).
    pub removed: Vec<String>,
    /// The guard's refusals.
    pub refused: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub diff: Option<FileDiff>,
    /// The operation's result when it ran (its `written` feeds the run journal).
    #[serde(skip)]
    pub result: Option<AuthorizedKeyResult>,
}

/// The parameters of the removal in one file.
fn params(user: &str, path: &str, keys: Vec<String>) -> AuthorizedKeyParams {
    let mut p = AuthorizedKeyParams::new(user, vec![keys.join("\n")]);
    p.state = crate::authorized_keys::State::Absent;
    p.path = Some(path.to_string());
    p.manage_dir = false;
    p.follow = false;
    p.refuse_symlinks = true;
    p.validate_keys = true;
    p.keep_position = true;
    p.keep_attrs = true;
    p
}

/// Revoke `sel` on the host `audit` describes.
pub async fn revoke<T: Target>(
    t: &T,
    audit: &HostAudit,
    sel: &Selector,
    guard: &Guard<'_>,
    mode: RunMode,
) -> Vec<FileRevoke> {
    let mut out = Vec::new();
    // A file sshd reads for the login user is guarded whichever account lists it (one
    // `AuthorizedKeysFile /etc/ssh/shared_keys` for everybody).
    let login_files: Vec<&str> = audit
        .accounts
        .iter()
        .filter(|a| a.user == guard.login_user)
        .flat_map(|a| a.files.iter().map(|f| f.path.as_str()))
        .collect();
    for a in &audit.accounts {
        for f in &a.files {
            let Some(content) = &f.content else { continue };
            let owner = if login_files.contains(&f.path.as_str()) {
                guard.login_user
            } else {
                a.user.as_str()
            };
            let plan = plan_file(content, owner, sel, guard);
            if plan.remove.is_empty() && plan.refused.is_empty() {
                continue;
            }
            let mut fr = FileRevoke {
                user: a.user.clone(),
                path: f.path.clone(),
                used_by_sshd: f.state == FileState::Used,
                changed: false,
                removed: vec![],
                refused: plan.refused.clone(),
                error: None,
                diff: None,
                result: None,
            };
            if !plan.remove.is_empty() {
                let keys = plan.remove.iter().map(|k| k.key_text()).collect();
                match apply(t, &params(&a.user, &f.path, keys), mode).await {
                    Ok(r) => {
                        fr.changed = r.changed;
                        fr.removed = r.removed.clone();
                        fr.diff = r.diff.clone();
                        fr.result = Some(r);
                    }
                    Err(e) => fr.error = Some(e.to_string()),
                }
            }
            out.push(fr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::{ED1, ED1_FP, ED2, ED3};
    use crate::keyaudit::{AccountAudit, FileAudit, SshdAuth};
    use crate::target::local::LocalTarget;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn a_file_shared_with_the_login_user_is_guarded() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        let text = format!("{ED1}\n{ED2}\n");
        std::fs::write(&shared, &text).unwrap();
        let account = |user: &str| AccountAudit {
            user: user.into(),
            uid: 0,
            home: "/".into(),
            shell: "/bin/sh".into(),
            locked: None,
            keys_refused: None,
            config: SshdAuth::default(),
            files: vec![FileAudit {
                path: shared.to_str().unwrap().into(),
                state: FileState::Used,
                keys: vec![],
                unparseable: vec![],
                content: Some(text.clone()),
            }],
            other_ways: vec![],
        };
        // `admin` comes first and lists the same file as the login user `deploy`.
        let audit = HostAudit {
            host: "h".into(),
            login_user: "deploy".into(),
            openssh: None,
            privileged: true,
            accounts: vec![account("admin"), account("deploy")],
            not_seen: vec![],
        };
        let sel = Selector {
            fingerprints: vec![ED1_FP.into()],
            comment_globs: vec![],
        };
        let guard = Guard {
            login_user: "deploy",
            login_key: Some(ED1_FP),
            force: false,
        };
        let r = revoke(
            &LocalTarget::new(),
            &audit,
            &sel,
            &guard,
            RunMode::default(),
        )
        .await;
        assert!(
            r.iter().all(|f| !f.changed && !f.refused.is_empty()),
            "{r:?}"
        );
        assert_eq!(std::fs::read_to_string(&shared).unwrap(), text);
    }

    #[tokio::test]
    async fn removes_from_every_file_and_keeps_modes() {
        let dir = tempfile::tempdir().unwrap();
        let me = crate::ssh::current_user();
        let f1 = dir.path().join("a");
        let f2 = dir.path().join("b");
        let t1 = format!("# keep me\n{ED1}\n{ED2}\n");
        let t2 = format!("{ED2}\n\n{ED3}");
        std::fs::write(&f1, &t1).unwrap();
        std::fs::write(&f2, &t2).unwrap();
        std::fs::set_permissions(&f2, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = |p: &std::path::Path, c: &str| FileAudit {
            path: p.to_str().unwrap().into(),
            state: FileState::Used,
            keys: vec![],
            unparseable: vec![],
            content: Some(c.into()),
        };
        let audit = HostAudit {
            host: "h".into(),
            login_user: "someone-else".into(),
            openssh: None,
            privileged: false,
            accounts: vec![AccountAudit {
                user: me.clone(),
                uid: 0,
                home: "/".into(),
                shell: "/bin/sh".into(),
                locked: None,
                keys_refused: None,
                config: SshdAuth::default(),
                files: vec![file(&f1, &t1), file(&f2, &t2)],
                other_ways: vec![],
            }],
            not_seen: vec![],
        };
        let sel = Selector {
            fingerprints: vec![],
            comment_globs: vec!["user2@*".into()],
        };
        let guard = Guard {
            login_user: "someone-else",
            login_key: Some(ED1_FP),
            force: false,
        };
        let t = LocalTarget::new();
        let check = RunMode {
            check: true,
            diff: true,
        };
        let r = revoke(&t, &audit, &sel, &guard, check).await;
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|f| f.changed && f.diff.is_some()));
        assert_eq!(
            std::fs::read_to_string(&f1).unwrap(),
            t1,
            "check mode wrote"
        );
        let r = revoke(&t, &audit, &sel, &guard, RunMode::default()).await;
        assert!(
            r.iter().all(|f| f.error.is_none() && f.removed.len() == 1),
            "{r:?}"
        );
        assert_eq!(
            std::fs::read_to_string(&f1).unwrap(),
            format!("# keep me\n{ED1}\n")
        );
        assert_eq!(std::fs::read_to_string(&f2).unwrap(), format!("\n{ED3}"));
        let mode = std::fs::metadata(&f2).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
}
