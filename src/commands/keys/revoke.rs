//! Driver of `keys revoke`: per host, audit the files sshd reads for every account
//! ([`super::audit::audit_host`]), then remove the selected keys from each of them with
//! [`crate::ops::keys::revoke::revoke`] under the lock-out guard (the key this connection
//! logged in with, as the login user, stays; the login user's file is never emptied;
//! `--force` overrides). A guard refusal or a file that could not be edited makes the host
//! `failed` (the revoke did not happen there in full); what was removed is still reported,
//! and every file written is recorded in the run journal ([`crate::journal`]) through the
//! outcome's changes, so `sshfleet undo RUN_ID` can put a revoked key back.

use serde_json::{Value, json};

use crate::commands::{Config, run_on_hosts};
use crate::error::{Error, ExitCode, Result};
use crate::events::{HostOutcome, Status};
use crate::keyaudit::FileState;
use crate::keyaudit::select::{Guard, Selector};
use crate::ops::authorized_key::RunMode;
use crate::ops::keys::revoke::{FileRevoke, revoke as revoke_op};
use crate::report::{LineStyle, format_task_line};

use super::RevokeConfig;
use super::edit::{diff_text, fetch, key_file_change};
use super::source::resolve_all;

/// The selection from the command line: keys (text, files, URLs) become fingerprints.
pub fn selector(cfg: &RevokeConfig) -> Result<Selector> {
    let mut sel = Selector {
        fingerprints: cfg.fingerprints.clone(),
        comment_globs: cfg.comments.clone(),
    };
    for f in &sel.fingerprints {
        if !f.starts_with("SHA256:") || f.len() < 8 {
            return Err(Error::Usage(format!(
                "--fingerprint {f:?}: expected SHA256:... as ssh-keygen -lf prints it"
            )));
        }
    }
    for r in resolve_all(&cfg.keys, &fetch)? {
        sel.fingerprints
            .extend(r.keys.iter().map(|k| k.fingerprint()));
    }
    if sel.is_empty() {
        return Err(Error::Usage(
            "keys revoke: give --key, --fingerprint or --comment".into(),
        ));
    }
    Ok(sel)
}

/// The host outcome of one revoke.
fn outcome(
    host: &str,
    files: &[FileRevoke],
    not_seen: Vec<String>,
    with_diff: bool,
) -> HostOutcome {
    let changed = files.iter().any(|f| f.changed);
    let mut problems: Vec<String> = Vec::new();
    for f in files {
        for r in &f.refused {
            problems.push(format!("refused in {} ({}): {r}", f.path, f.user));
        }
        if let Some(e) = &f.error {
            problems.push(format!("{} ({}): {e}", f.path, f.user));
        }
    }
    let result = json!({ "files": files, "not_seen": not_seen });
    let mut o = if !problems.is_empty() {
        HostOutcome::failed(host, problems.join("; ")).with_result(result)
    } else if changed {
        HostOutcome::changed(host, result)
    } else {
        HostOutcome::ok(host, result)
    };
    if o.status != Status::Failed && !not_seen.is_empty() {
        o = o.with_msg(format!("not seen: {}", not_seen.join("; ")));
    }
    // The run journal: every file written, with its content before and after.
    o = o.with_changes(
        files
            .iter()
            .filter_map(|f| f.result.as_ref())
            .filter_map(|r| key_file_change(&[r])),
    );
    if with_diff {
        let d: String = files
            .iter()
            .filter_map(|f| f.diff.as_ref())
            .map(|d| diff_text(&d.before_header, &d.before, &d.after))
            .collect();
        if !d.is_empty() {
            o = o.with_diff(Value::String(d));
        }
    }
    o
}

/// Lines under a host: what was removed where.
fn file_lines(o: &HostOutcome) -> String {
    let mut s = String::new();
    if let Some(files) = o.result.get("files").and_then(Value::as_array) {
        for f in files {
            let removed: Vec<&str> = f["removed"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !removed.is_empty() {
                s.push_str(&format!(
                    "\n    {} {}: removed {}{}",
                    f["user"].as_str().unwrap_or(""),
                    f["path"].as_str().unwrap_or(""),
                    removed.join(", "),
                    if f["used_by_sshd"] == json!(false) {
                        " (a file sshd ignores)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    s
}

/// `keys revoke`.
pub fn revoke(g: &Config, cfg: &RevokeConfig) -> Result<ExitCode> {
    let sel = selector(cfg)?;
    let mode = RunMode {
        check: g.check,
        diff: g.diff,
    };
    let diff = g.diff;
    let reporter = g
        .reporter()
        .with_title("keys revoke")
        .with_style(LineStyle::Custom(Box::new(move |o, v| {
            let mut s = format_task_line(o, v, false);
            if v == 0 {
                s.push_str(&file_lines(o));
            }
            if diff && let Some(Value::String(d)) = &o.diff {
                s.push('\n');
                s.push_str(d.trim_end());
            }
            s
        })));
    let force = cfg.force;
    run_on_hosts(g, &cfg.hosts.pattern, reporter, move |ctx| {
        let sel = sel.clone();
        async move {
            let audit = super::audit::audit_host(&ctx).await?;
            let t = ctx.target().await?;
            let session = t.session();
            let guard = Guard {
                login_user: &session.user,
                login_key: session.auth_key.as_deref(),
                force,
            };
            let files = revoke_op(t, &audit, &sel, &guard, mode).await;
            let mut not_seen = audit.not_seen.clone();
            for a in &audit.accounts {
                for f in &a.files {
                    if let FileState::Unseen(r) = &f.state {
                        not_seen.push(format!("{} {}: {r}", a.user, f.path));
                    }
                }
            }
            // Without root the lock state is the only thing that never matters here.
            not_seen.retain(|n| !n.starts_with("lock state"));
            Ok(outcome(ctx.host(), &files, not_seen, mode.diff))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::keys::{KeySource, Selection};

    fn cfg(keys: Vec<KeySource>, fps: Vec<&str>, comments: Vec<&str>) -> RevokeConfig {
        RevokeConfig {
            hosts: Selection {
                pattern: "all".into(),
            },
            keys,
            fingerprints: fps.into_iter().map(String::from).collect(),
            comments: comments.into_iter().map(String::from).collect(),
            force: false,
        }
    }

    #[test]
    fn selection_from_flags() {
        use crate::authorized_keys::testkeys::{ED1, ED1_FP};
        let s = selector(&cfg(
            vec![KeySource::Literal(ED1.into())],
            vec![],
            vec!["*@x"],
        ))
        .unwrap();
        assert_eq!(s.fingerprints, [ED1_FP]);
        assert_eq!(s.comment_globs, ["*@x"]);
        assert!(selector(&cfg(vec![], vec![], vec![])).is_err());
        assert!(selector(&cfg(vec![], vec!["MD5:aa"], vec![])).is_err());
    }

    #[test]
    fn refusals_fail_the_host() {
        let f = FileRevoke {
            user: "deploy".into(),
            path: "/k".into(),
            used_by_sshd: true,
            changed: false,
            removed: vec![],
            refused: vec!["SHA256:x: the controller is logged in".into()],
            error: None,
            diff: None,
            result: None,
        };
        let o = outcome("h", &[f], vec![], false);
        assert_eq!(o.status, Status::Failed);
        assert!(o.msg.unwrap().contains("refused in /k (deploy)"));
    }
}
