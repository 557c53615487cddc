//! Drivers of `keys list` and `keys add|remove|set`: resolve the hosts, resolve key sources
//! once on the controller, then run per host over its SSH connection — listing with
//! [`crate::ops::keys::list`], editing with the single-host operation
//! [`crate::ops::authorized_key::apply`] (the same one the Ansible module runs).

use serde_json::{Value, json};

use crate::authorized_keys::State;
use crate::commands::{Config, run_on_hosts};
use crate::error::{ExitCode, Result};
use crate::events::{ChangeKind, FileChange, HostOutcome};
use crate::ops::authorized_key::{
    AuthorizedKeyParams, AuthorizedKeyResult, OpError, RunMode, fetch_keys,
};
use crate::ops::keys::list::{Listing, list};
use crate::report::{LineStyle, format_task_line};

use super::source::{joined_text, resolve_all};
use super::{EditAction, EditConfig, FileOptions, ListConfig};

/// Fetch a URL key source on the controller (TLS certificates verified).
pub(super) fn fetch(url: &str) -> std::result::Result<String, String> {
    fetch_keys(url, true)
}

/// An operation error as a host outcome (transport errors are "unreachable").
pub(super) fn op_failure(host: &str, e: &OpError, context: &str) -> HostOutcome {
    if e.is_unreachable() {
        HostOutcome::unreachable(host, e.to_string())
    } else {
        HostOutcome::failed(host, format!("{context}{e}"))
    }
}

/// The operation's parameters for one edit.
pub fn edit_params(user: &str, keys: Vec<String>, file: &FileOptions) -> AuthorizedKeyParams {
    let mut p = AuthorizedKeyParams::new(user, keys);
    p.path = file.path.clone();
    p.manage_dir = file.manage_dir;
    p.follow = file.follow;
    p.keep_comments = file.keep_comments;
    p.backup = file.backup;
    // The CLI keeps its stricter rules: keys validated, lines rewritten where they are,
    // symlinks refused unless --follow.
    p.validate_keys = true;
    p.keep_position = true;
    p.refuse_symlinks = true;
    // `--path ~/...` is in the --user's home (as for `keys list` and `keys rotate`).
    p.tilde_is_user_home = true;
    p
}

/// Result values of one operation run (Ansible-like: keyfile, user, what changed).
pub fn result_json(r: &AuthorizedKeyResult) -> Value {
    json!({
        "keyfile": r.keyfile,
        "user": r.user,
        "added": r.added,
        "updated": r.updated,
        "removed": r.removed,
        "warnings": r.warnings,
        "backup_file": r.backup_file,
    })
}

/// A unified diff of before/after (empty string when equal).
pub fn diff_text(label: &str, before: &str, after: &str) -> String {
    crate::files::diff::unified(
        before,
        after,
        &format!("{label} (before)"),
        &format!("{label} (after)"),
    )
}

/// What the journal records of the operation runs `steps` on one file, in order: the content
/// before the first write and after the last (`None`: nothing was written).
pub fn key_file_change(steps: &[&AuthorizedKeyResult]) -> Option<FileChange> {
    let written: Vec<_> = steps
        .iter()
        .filter_map(|r| r.written.as_ref().map(|w| (r, w)))
        .collect();
    let (first_r, first) = written.first()?;
    let (_, last) = written.last()?;
    Some(FileChange {
        path: first_r.written_path.clone(),
        kind: ChangeKind::AuthorizedKeys {
            user: first_r.user.clone(),
            before: first.before.clone(),
            after: last.after.clone(),
        },
    })
}

/// Outcome of one operation run.
fn edit_outcome(host: &str, r: &AuthorizedKeyResult, with_diff: bool) -> HostOutcome {
    let mut o = if r.changed {
        HostOutcome::changed(host, result_json(r))
    } else {
        HostOutcome::ok(host, result_json(r))
    };
    if !r.warnings.is_empty() {
        o = o.with_msg(r.warnings.join("; "));
    }
    if with_diff && let Some(d) = &r.diff {
        o = o.with_diff(Value::String(diff_text(&r.keyfile, &d.before, &d.after)));
    }
    o.with_changes(key_file_change(&[r]))
}

/// `keys add|remove|set`.
pub fn edit(g: &Config, cfg: &EditConfig) -> Result<ExitCode> {
    let resolved = resolve_all(&cfg.keys, &fetch)?;
    let text = joined_text(&resolved);
    let mut params = edit_params(&cfg.user, vec![text], &cfg.file);
    params.key_options = cfg.key_options.clone();
    params.comment = cfg.comment.clone();
    match cfg.action {
        EditAction::Add => {}
        EditAction::Remove => params.state = State::Absent,
        EditAction::Set => params.exclusive = true,
    }
    let mode = RunMode {
        check: g.check,
        diff: g.diff,
    };
    let title = match cfg.action {
        EditAction::Add => "keys add",
        EditAction::Remove => "keys remove",
        EditAction::Set => "keys set (exclusive)",
    };
    let reporter = g.reporter().with_title(title);
    let with_diff = g.diff;
    run_on_hosts(g, &cfg.hosts.pattern, reporter, move |ctx| {
        let params = params.clone();
        async move {
            let t = ctx.target().await?;
            Ok(
                match crate::ops::authorized_key::apply(t, &params, mode).await {
                    Ok(r) => edit_outcome(ctx.host(), &r, with_diff),
                    Err(e) => op_failure(ctx.host(), &e, ""),
                },
            )
        }
    })
}

/// Text lines of a listing: the file, then one line per key.
pub fn format_listing(l: &Listing) -> String {
    let mut s = format!("    {} {}", l.user, l.keyfile);
    if !l.exists {
        s.push_str(" (does not exist)");
    }
    for k in &l.keys {
        s.push_str(&format!(
            "\n    {:>4}: {} {}",
            k.line, k.fingerprint, k.key_type
        ));
        if !k.comment.is_empty() {
            s.push_str(&format!(" {}", k.comment));
        }
        if !k.options.is_empty() {
            s.push_str(&format!(" [{}]", k.options));
        }
    }
    for w in &l.warnings {
        s.push_str(&format!("\n    warning: {w}"));
    }
    s
}

/// `keys list`.
pub fn list_keys(g: &Config, cfg: &ListConfig) -> Result<ExitCode> {
    let diff = g.diff;
    let reporter = g
        .reporter()
        .with_title("keys list")
        .with_style(LineStyle::Custom(Box::new(move |o, v| {
            let mut s = format_task_line(o, v, diff);
            if v == 0
                && let Ok(l) = serde_json::from_value::<ListingView>(o.result.clone())
            {
                s.push('\n');
                s.push_str(&format_listing(&l.into()));
            }
            s
        })));
    let user = cfg.user.clone();
    let path = cfg.path.clone();
    run_on_hosts(g, &cfg.hosts.pattern, reporter, move |ctx| {
        let user = user.clone();
        let path = path.clone();
        async move {
            let t = ctx.target().await?;
            let user = user.unwrap_or_else(|| t.session().user.clone());
            let l = list(t, &user, path.as_deref()).await?;
            let v = serde_json::to_value(&l).unwrap_or(Value::Null);
            Ok(HostOutcome::ok(ctx.host(), v))
        }
    })
}

/// [`Listing`] read back from a host result (for the text formatter).
#[derive(serde::Deserialize)]
struct ListingView {
    user: String,
    keyfile: String,
    exists: bool,
    keys: Vec<ListedKeyView>,
    warnings: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ListedKeyView {
    line: usize,
    fingerprint: String,
    key_type: String,
    options: String,
    comment: String,
}

impl From<ListingView> for Listing {
    fn from(v: ListingView) -> Listing {
        Listing {
            user: v.user,
            keyfile: v.keyfile,
            exists: v.exists,
            keys: v
                .keys
                .into_iter()
                .map(|k| crate::ops::keys::list::ListedKey {
                    line: k.line,
                    fingerprint: k.fingerprint,
                    key_type: k.key_type,
                    options: k.options,
                    comment: k.comment,
                })
                .collect(),
            warnings: v.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::{ED1, ED1_FP};

    #[test]
    fn params_from_file_options() {
        let f = FileOptions {
            path: Some("/k".into()),
            manage_dir: false,
            follow: true,
            keep_comments: true,
            backup: true,
        };
        let p = edit_params("deploy", vec![ED1.into()], &f);
        assert_eq!(p.user, "deploy");
        assert_eq!(p.path.as_deref(), Some("/k"));
        assert!(!p.manage_dir && p.follow && p.keep_comments && p.backup);
        assert_eq!(p.state, State::Present);
        assert!(!p.exclusive);
    }

    #[test]
    fn listing_text_round_trips_through_json() {
        let l = crate::ops::keys::list::listing("deploy", "/k", Some(&format!("no-pty {ED1}\n")));
        let v: ListingView = serde_json::from_value(serde_json::to_value(&l).unwrap()).unwrap();
        let back: Listing = v.into();
        assert_eq!(back, l);
        let text = format_listing(&l);
        assert!(text.contains(ED1_FP), "{text}");
        assert!(text.contains("user1@example [no-pty]"), "{text}");
    }

    #[test]
    fn diff_shows_lines() {
        let d = diff_text("/k", "a\n", "a\nb\n");
        assert!(d.contains("+b"), "{d}");
        assert_eq!(diff_text("/k", "a\n", "a\n"), "");
    }
}
