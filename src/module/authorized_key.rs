//! `sshfleet_authorized_key`: a drop-in for `ansible.posix.authorized_key` (same options,
//! defaults and return values) running [`crate::ops::authorized_key`] on the managed host,
//! plus `keys` (a list of key sources, for exclusive sets in one task), `keep_comments`,
//! `backup`, and the opt-in stricter rules `validate_keys`, `keep_position` and
//! `refuse_symlinks`. Deviations from upstream are listed in [`crate::authorized_keys`].

use serde_json::{Map, Value};

use super::spec::{ArgSpec, ArgType, ModuleSpec};
use super::{Failure, Invocation, ModuleResult};
use crate::authorized_keys::State;
use crate::ops::authorized_key::{AuthorizedKeyParams, RunMode, apply};
use crate::target::local::LocalTarget;

pub const NAME: &str = "sshfleet_authorized_key";

/// The argument spec (ansible.posix's, plus `keys`, `keep_comments`, `backup`,
/// `validate_keys`, `keep_position`, `refuse_symlinks`).
pub fn spec() -> ModuleSpec {
    ModuleSpec {
        name: NAME,
        args: vec![
            ArgSpec::new("user", ArgType::Str).required(),
            ArgSpec::new("key", ArgType::Str),
            ArgSpec::new("keys", ArgType::List).elements(ArgType::Str),
            ArgSpec::new("path", ArgType::Path),
            ArgSpec::new("manage_dir", ArgType::Bool).default(true),
            ArgSpec::new("state", ArgType::Str)
                .default("present")
                .choices(&["absent", "present"]),
            ArgSpec::new("key_options", ArgType::Str),
            ArgSpec::new("exclusive", ArgType::Bool).default(false),
            ArgSpec::new("comment", ArgType::Str),
            ArgSpec::new("validate_certs", ArgType::Bool).default(true),
            ArgSpec::new("follow", ArgType::Bool).default(false),
            ArgSpec::new("keep_comments", ArgType::Bool).default(false),
            ArgSpec::new("backup", ArgType::Bool).default(false),
            ArgSpec::new("validate_keys", ArgType::Bool).default(false),
            ArgSpec::new("keep_position", ArgType::Bool).default(false),
            ArgSpec::new("refuse_symlinks", ArgType::Bool).default(false),
        ],
        mutually_exclusive: vec![vec!["key", "keys"]],
        required_one_of: vec![vec!["key", "keys"]],
        supports_check_mode: true,
    }
}

/// Map validated options to the operation's parameters.
pub fn op_params(inv: &Invocation) -> AuthorizedKeyParams {
    let p = &inv.params;
    let mut sources = Vec::new();
    if let Some(k) = p.str("key") {
        sources.push(k);
    }
    if let Some(list) = p.list("keys") {
        sources.extend(list);
    }
    let mut op = AuthorizedKeyParams::new(p.str("user").unwrap_or_default(), sources);
    op.path = p.str("path");
    op.manage_dir = p.bool("manage_dir");
    op.state = if p.str("state").as_deref() == Some("absent") {
        State::Absent
    } else {
        State::Present
    };
    op.key_options = p.str("key_options");
    op.exclusive = p.bool("exclusive");
    op.comment = p.str("comment");
    op.validate_certs = p.bool("validate_certs");
    op.follow = p.bool("follow");
    op.keep_comments = p.bool("keep_comments");
    op.backup = p.bool("backup");
    op.validate_keys = p.bool("validate_keys");
    op.keep_position = p.bool("keep_position");
    op.refuse_symlinks = p.bool("refuse_symlinks");
    op
}

/// Run the operation on this host and build Ansible's return values: every option as given,
/// `keyfile`, `changed`, `diff` (when asked), `warnings`, `backup_file`.
pub fn handler(inv: &Invocation) -> ModuleResult {
    let params = op_params(inv);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the runtime: {e}")))?;
    let mode = RunMode {
        check: inv.check_mode,
        diff: inv.diff,
    };
    let r = rt
        .block_on(apply(&LocalTarget::new(), &params, mode))
        .map_err(|e| Failure::new(e.to_string()))?;
    let mut out: Map<String, Value> = inv.params.echo(inv.no_log);
    out.insert("keyfile".into(), r.keyfile.into());
    out.insert("changed".into(), r.changed.into());
    if let (Some(d), false) = (&r.diff, inv.no_log) {
        out.insert(
            "diff".into(),
            serde_json::to_value(d).map_err(|e| Failure::new(e.to_string()))?,
        );
    }
    if !r.warnings.is_empty() {
        out.insert("warnings".into(), r.warnings.into());
    }
    if let Some(b) = r.backup_file {
        out.insert("backup_file".into(), b.into());
    }
    Ok(out)
}

/// `main` of the `sshfleet_authorized_key` binary.
pub fn main() -> i32 {
    super::main_with(&spec(), handler)
}
