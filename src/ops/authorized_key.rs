//! The `authorized_key` operation on one host, written once against [`Target`]: resolve the
//! user and the file, read it, edit it with the pure model ([`crate::authorized_keys`]), and
//! write it back atomically, only if it changed and only if nobody changed it in between.
//!
//! Driven by the `sshfleet_authorized_key` Ansible module over a `LocalTarget` and by
//! `sshfleet keys ...` over SSH targets. Semantics and the deliberate deviations from
//! `ansible.posix.authorized_key` are documented in [`crate::authorized_keys`].
//!
//! Steps: key sources (text, `http(s)://` URL fetched where this runs, `file:///path` read on
//! the target) → user lookup (owner; default path `~user/.ssh/authorized_keys`) → read the
//! current file (through a symlink) → edit → when the bytes change: refuse to write through a
//! symlink unless `follow` (then write to the link's final target), create/fix `~/.ssh`
//! (`manage_dir`, default path only), write 0600 owned by the user with the precondition
//! "still the content that was read" (retried once from a fresh read), and report a
//! before/after diff. Check mode stops before the first write.

use serde::Serialize;

use crate::authorized_keys::{
    EditOutcome, EditSpec, KeyCheck, KeyError, PublicKey, State, apply_edit, parse_key_list_with,
};
use crate::target::temp::sweep_dead_temps;
use crate::target::{
    Body, EditHint, Expect, FileKind, FileStat, Target, TargetError, UserInfo, WriteSpec,
};

/// Largest `authorized_keys` file read (a larger one is refused, not truncated).
const MAX_KEYFILE: u64 = 16 << 20;
/// Largest key source (`file://` or URL body).
const MAX_SOURCE: u64 = 1 << 20;
/// Symlink hops followed with `follow`.
const MAX_LINKS: usize = 40;

/// Check and diff mode of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunMode {
    /// Compute and report without writing.
    pub check: bool,
    /// Return before/after content.
    pub diff: bool,
}

/// The options of `authorized_key` (those of `ansible.posix.authorized_key`, plus `keys` as a
/// list, `keep_comments` and `backup`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKeyParams {
    /// Owner of the file; its home gives the default path.
    pub user: String,
    /// Key sources in order, each one of: key text (one or more keys, newline separated;
    /// blank and `#` lines ignored), an `http(s)://` URL, or `file:///path` (on the target).
    pub keys: Vec<String>,
    /// Alternative file; default `~user/.ssh/authorized_keys`.
    pub path: Option<String>,
    /// Create `~user/.ssh` (0700, owned by the user) and fix its mode and owner. Only for the
    /// default path.
    pub manage_dir: bool,
    pub state: State,
    /// Replaces the options of every supplied key.
    pub key_options: Option<String>,
    /// With `present`: remove every other key.
    pub exclusive: bool,
    /// Replaces the comment of every supplied key.
    pub comment: Option<String>,
    /// Verify TLS certificates of `https://` key sources.
    pub validate_certs: bool,
    /// Write through a symlinked file (to its final target) instead of refusing.
    pub follow: bool,
    /// With `exclusive`: keep `#` and blank lines.
    pub keep_comments: bool,
    /// Keep the previous file as `FILE.YYYY-MM-DD@HH:MM:SS~` before replacing it.
    pub backup: bool,
    /// Check keys strictly (blob and option names, [`KeyCheck::Strict`]); upstream accepts
    /// any blob word after a known key type.
    pub validate_keys: bool,
    /// Rewrite a differing key where it is instead of moving it to the end (upstream).
    pub keep_position: bool,
    /// Without `follow`, refuse to write when the file is a symlink; upstream (and the
    /// default) replaces the symlink itself with a regular file, never touching its target.
    pub refuse_symlinks: bool,
    /// A `path` starting with `~/` is in `user`'s home (the CLI's `keys --path` rule; the
    /// module's paths arrive expanded by Ansible's rule, for the user the module runs as).
    pub tilde_is_user_home: bool,
    /// An existing file keeps its mode, owner and group (a root-owned 0644
    /// `/etc/ssh/authorized_keys/USER` stays so) instead of becoming 0600 owned by `user`.
    /// Used by `keys revoke`, which edits every file sshd reads, wherever it is.
    pub keep_attrs: bool,
}

impl AuthorizedKeyParams {
    /// Parameters with ansible.posix's defaults.
    pub fn new(user: impl Into<String>, keys: Vec<String>) -> Self {
        AuthorizedKeyParams {
            user: user.into(),
            keys,
            path: None,
            manage_dir: true,
            state: State::Present,
            key_options: None,
            exclusive: false,
            comment: None,
            validate_certs: true,
            follow: false,
            keep_comments: false,
            backup: false,
            validate_keys: false,
            keep_position: false,
            refuse_symlinks: false,
            tilde_is_user_home: false,
            keep_attrs: false,
        }
    }

    /// The key check these parameters ask for.
    pub fn key_check(&self) -> KeyCheck {
        if self.validate_keys {
            KeyCheck::Strict
        } else {
            KeyCheck::Lenient
        }
    }
}

/// Ansible's file diff: `{before, after, before_header, after_header}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub before: String,
    pub after: String,
    pub before_header: String,
    pub after_header: String,
}

/// What the operation did (or, in check mode, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKeyResult {
    /// The file as computed from `path`/the user's home (before resolving symlinks).
    pub keyfile: String,
    /// The file written (or that would be): `keyfile`, or its final target with `follow`.
    pub written_path: String,
    pub user: String,
    pub changed: bool,
    /// Present when asked for and something changed.
    pub diff: Option<FileDiff>,
    /// Fingerprints of keys appended, rewritten in place, and removed.
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    /// Notes about the file (`FILE line N: ...`).
    pub warnings: Vec<String>,
    pub backup_file: Option<String>,
    /// The file's whole content before (`None`: it did not exist) and after, when this run
    /// wrote it (not in check mode): what the controller's run journal records.
    pub written: Option<Written>,
}

/// Content of a key file this run replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub before: Option<String>,
    pub after: String,
}

/// Why the operation failed on a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Bad key input or a file that cannot be edited; the message names the source or file.
    #[error("{0}")]
    Keys(String),
    /// Anything else, worded for the user.
    #[error("{0}")]
    Failed(String),
}

impl OpError {
    /// A transport failure (Ansible's "unreachable") rather than a task failure.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, OpError::Target(TargetError::Unreachable(_)))
    }
}

impl From<KeyError> for OpError {
    fn from(e: KeyError) -> Self {
        OpError::Keys(e.to_string())
    }
}

/// Run `authorized_key` on `target`.
pub async fn apply<T: Target>(
    target: &T,
    params: &AuthorizedKeyParams,
    mode: RunMode,
) -> Result<AuthorizedKeyResult, OpError> {
    let check = params.key_check();
    let keys = resolve_keys(target, &params.keys, params.validate_certs, check).await?;
    let spec = EditSpec {
        state: params.state,
        exclusive: params.exclusive,
        keep_comments: params.keep_comments,
        key_options: params.key_options.clone(),
        comment: params.comment.clone(),
        check,
        keep_position: params.keep_position,
    };
    // Option errors (key_options, comment, empty exclusive set) before touching anything.
    apply_edit(None, &keys, &spec)?;

    // One transaction: the user lookup, the read and the write (under the directory's writer
    // lock when the target offers one; check mode locks nothing).
    let lock_dir = |u: Option<&UserInfo>| {
        (!mode.check)
            .then(|| edit_lock_dir(params.path.as_deref(), u))
            .flatten()
    };
    let began = target
        .begin_edit(&EditHint {
            user: &params.user,
            lock_dir: &lock_dir,
        })
        .await?;
    let result = edit(target, params, mode, &keys, &spec).await;
    if began {
        target.end_edit().await;
    }
    result
}

/// The directory an edit of `user`'s key file locks: the parent of `path`, or of the default
/// `~user/.ssh/authorized_keys`. `None` when it cannot be known up front (a relative path, or
/// no such user).
pub fn edit_lock_dir(path: Option<&str>, user: Option<&UserInfo>) -> Option<String> {
    match path {
        Some(p) if p.starts_with('/') => Some(parent(p)),
        Some(_) => None,
        None => user.map(|u| join(&u.home, ".ssh")),
    }
}

/// [`apply`] after the options are checked.
async fn edit<T: Target>(
    target: &T,
    params: &AuthorizedKeyParams,
    mode: RunMode,
    keys: &[PublicKey],
    spec: &EditSpec,
) -> Result<AuthorizedKeyResult, OpError> {
    let user = target.lookup_user(&params.user).await?;
    let user = match (user, &params.path) {
        (Some(u), _) => Some(u),
        (None, Some(_)) if mode.check => None,
        (None, None) if mode.check => {
            return Err(OpError::Failed(
                "Either user must exist or you must provide full path to key file in check mode"
                    .into(),
            ));
        }
        (None, _) => {
            return Err(OpError::Failed(format!(
                "Failed to lookup user {}: no such user in the system user database",
                params.user
            )));
        }
    };
    let ssh_dir = user.as_ref().map(|u| join(&u.home, ".ssh"));
    let keyfile = match (&params.path, &ssh_dir) {
        (Some(p), Some(_)) if params.tilde_is_user_home && p.starts_with("~/") => {
            let home = user.as_ref().map(|u| u.home.as_str()).unwrap_or_default();
            join(home, &p[2..])
        }
        (Some(p), _) => p.clone(),
        (None, Some(d)) => join(d, "authorized_keys"),
        (None, None) => unreachable!("no path and no user is refused above"),
    };
    let default_dir = if params.path.is_none() { ssh_dir } else { None };
    if !mode.check {
        // Dead writers' temp files go (the ownership rule of `target::temp`); live ones stay.
        let _ = sweep_dead_temps(target, &parent(&keyfile)).await;
    }

    let mut attempt = 0;
    loop {
        attempt += 1;
        let (old, expect, attrs) = read_current(target, &keyfile).await?;
        let outcome = apply_edit(old.as_deref(), keys, spec).map_err(|e| match e {
            KeyError::NotUtf8 { .. } => OpError::Keys(format!("{keyfile}: {e}")),
            e => e.into(),
        })?;
        let mut result = result_for(&keyfile, &params.user, &outcome);
        if !outcome.changed {
            return Ok(result);
        }
        // Where the bytes would go; refusals apply in check mode too, so it predicts.
        let dest = write_dest(target, &keyfile, params.follow, params.refuse_symlinks).await?;
        if let Some(dir) = &default_dir {
            check_dir_not_symlink(target, dir, params.follow).await?;
        }
        result.written_path = dest.clone();
        if mode.diff {
            result.diff = Some(FileDiff {
                before: old.clone().unwrap_or_default(),
                after: outcome.content.clone(),
                before_header: keyfile.clone(),
                after_header: dest.clone(),
            });
        }
        if mode.check {
            return Ok(result);
        }
        let user = user
            .as_ref()
            .expect("user is known outside check mode (refused above)");
        prepare_dirs(
            target,
            &dest,
            default_dir.as_deref(),
            params.manage_dir,
            user,
        )
        .await?;
        let (mode, uid, gid) = match attrs {
            Some(a) if params.keep_attrs => (a.mode, a.uid, a.gid),
            _ => (0o600, user.uid, user.gid),
        };
        let spec = WriteSpec {
            dest: dest.clone(),
            mode,
            uid: Some(uid),
            gid: Some(gid),
            expect,
            validate: None,
            backup: params.backup,
        };
        match target
            .write_atomic(
                &spec,
                Body::Bytes(outcome.content.clone().into_bytes().into()),
            )
            .await
        {
            Ok(w) => {
                result.backup_file = w.backup_file;
                result.written = Some(Written {
                    before: old,
                    after: outcome.content,
                });
                return Ok(result);
            }
            Err(TargetError::Changed { .. }) if attempt == 1 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn result_for(keyfile: &str, user: &str, o: &EditOutcome) -> AuthorizedKeyResult {
    AuthorizedKeyResult {
        keyfile: keyfile.to_string(),
        written_path: keyfile.to_string(),
        user: user.to_string(),
        changed: o.changed,
        diff: None,
        written: None,
        added: o.added.clone(),
        updated: o.updated.clone(),
        removed: o.removed.clone(),
        warnings: o
            .warnings
            .iter()
            .map(|w| format!("{keyfile} {w}"))
            .collect(),
        backup_file: None,
    }
}

/// `dir/name` without doubling slashes.
fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

fn parent(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((p, _)) => p.into(),
        None => ".".into(),
    }
}

/// The current content (through symlinks; `None` if missing), the write precondition and
/// the file's attributes.
async fn read_current<T: Target>(
    target: &T,
    keyfile: &str,
) -> Result<(Option<String>, Expect, Option<FileStat>), OpError> {
    match target.stat(keyfile, true).await? {
        None => Ok((None, Expect::Absent, None)),
        Some(st) if st.kind != FileKind::File => Err(OpError::Failed(format!(
            "{keyfile}: is not a regular file ({:?})",
            st.kind
        ))),
        Some(st) => {
            let bytes = target.read(keyfile, MAX_KEYFILE).await?;
            let digest: [u8; 32] = {
                use sha2::Digest;
                sha2::Sha256::digest(&bytes).into()
            };
            let text = String::from_utf8(bytes).map_err(|e| {
                let ok = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let line = ok.iter().filter(|&&b| b == b'\n').count() + 1;
                OpError::Keys(format!("{keyfile}: {}", KeyError::NotUtf8 { line }))
            })?;
            Ok((Some(text), Expect::Sha256(digest), Some(st)))
        }
    }
}

/// The path to write: `keyfile` itself, or with `follow` the final target of its symlinks.
/// Without `follow` a symlink is replaced by the new file (upstream), or refused with
/// `refuse_symlinks`.
async fn write_dest<T: Target>(
    target: &T,
    keyfile: &str,
    follow: bool,
    refuse_symlinks: bool,
) -> Result<String, OpError> {
    let mut path = keyfile.to_string();
    for _ in 0..MAX_LINKS {
        match target.stat(&path, false).await? {
            Some(st) if st.kind == FileKind::Symlink => {
                if !follow && refuse_symlinks {
                    return Err(TargetError::Symlink { path }.into());
                }
                if !follow {
                    return Ok(path);
                }
                let to = target.read_link(&path).await?;
                path = if to.starts_with('/') {
                    to
                } else {
                    join(&parent(&path), &to)
                };
            }
            _ => return Ok(path),
        }
    }
    Err(OpError::Failed(format!(
        "{keyfile}: too many levels of symbolic links"
    )))
}

/// `~/.ssh` itself must not be a symlink (root would otherwise write and chown a file
/// wherever the user points it) unless `follow`.
async fn check_dir_not_symlink<T: Target>(
    target: &T,
    dir: &str,
    follow: bool,
) -> Result<(), OpError> {
    match target.stat(dir, false).await? {
        Some(st) if st.kind == FileKind::Symlink && !follow => Err(OpError::Failed(format!(
            "{dir}: is a symlink; refusing to write through it (use follow to allow)"
        ))),
        _ => Ok(()),
    }
}

/// Create/fix `~/.ssh` (manage_dir, default path only) and any missing parent directory
/// of `dest` (0755, like upstream's `os.makedirs`).
async fn prepare_dirs<T: Target>(
    target: &T,
    dest: &str,
    default_dir: Option<&str>,
    manage_dir: bool,
    user: &UserInfo,
) -> Result<(), OpError> {
    if let (Some(dir), true) = (default_dir, manage_dir) {
        match target.stat(dir, false).await? {
            None => {
                ensure_parents(target, dir).await?;
                target
                    .mkdir(dir, 0o700, Some(user.uid), Some(user.gid))
                    .await?;
            }
            Some(st) if st.kind == FileKind::Dir => {
                if st.mode != 0o700 || st.uid != user.uid || st.gid != user.gid {
                    target
                        .set_attrs(dir, Some(0o700), Some(user.uid), Some(user.gid))
                        .await?;
                }
            }
            // A symlink here was allowed by `follow`; leave it and its target alone.
            Some(st) if st.kind == FileKind::Symlink => {}
            Some(_) => {
                return Err(OpError::Failed(format!(
                    "{dir}: exists and is not a directory"
                )));
            }
        }
    }
    ensure_parents(target, dest).await
}

/// Create the missing ancestors of `path` (not `path` itself), 0755, outermost first.
async fn ensure_parents<T: Target>(target: &T, path: &str) -> Result<(), OpError> {
    let mut missing = Vec::new();
    let mut dir = parent(path);
    while dir != "/" && dir != "." && target.stat(&dir, true).await?.is_none() {
        missing.push(dir.clone());
        dir = parent(&dir);
    }
    for d in missing.iter().rev() {
        target.mkdir(d, 0o755, None, None).await?;
    }
    Ok(())
}

/// Resolve every key source and parse the keys, naming the source in errors.
async fn resolve_keys<T: Target>(
    target: &T,
    sources: &[String],
    validate_certs: bool,
    check: KeyCheck,
) -> Result<Vec<PublicKey>, OpError> {
    let mut keys = Vec::new();
    for src in sources {
        let text = if is_url(src) {
            let url = src.clone();
            tokio::task::spawn_blocking(move || fetch_keys_with(&url, validate_certs, check))
                .await
                .map_err(|e| OpError::Failed(format!("fetching {src}: {e}")))?
                .map_err(OpError::Keys)?
        } else if let Some(rest) = src.strip_prefix("file://") {
            read_key_file(target, rest).await?
        } else {
            src.clone()
        };
        let parsed = parse_key_list_with(&text, check).map_err(|e| {
            if is_url(src) || src.starts_with("file://") {
                OpError::Keys(format!("{src}: {e}"))
            } else {
                e.into()
            }
        })?;
        keys.extend(parsed);
    }
    Ok(keys)
}

fn is_url(s: &str) -> bool {
    let head = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    head.starts_with("http://") || head.starts_with("https://")
}

/// `file:///p` (or `file://host/p`, host ignored as upstream's `urlparse(key).path` does).
async fn read_key_file<T: Target>(target: &T, rest: &str) -> Result<String, OpError> {
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => rest,
    };
    match target.stat(path, true).await? {
        None => Err(OpError::Failed(format!(
            "Path to a key file not found: {path}"
        ))),
        Some(st) if st.kind == FileKind::Dir => Err(OpError::Failed(format!(
            "Path to a key is a directory and must be a file: {path}"
        ))),
        Some(_) => {
            let bytes = target.read(path, MAX_SOURCE).await?;
            String::from_utf8(bytes)
                .map_err(|_| OpError::Keys(format!("{path}: key file is not UTF-8 text")))
        }
    }
}

/// Without the `https` feature (the module binaries): no HTTP client is linked in. The
/// collection's action plugin fetches key URLs on the controller and passes the key text, so
/// only a module run without it (short name from a `library` directory) gets here.
#[cfg(not(feature = "https"))]
pub fn fetch_keys(url: &str, validate_certs: bool) -> Result<String, String> {
    fetch_keys_with(url, validate_certs, KeyCheck::Strict)
}

/// [`fetch_keys`] checking the keys as `check` says (without `https`: always the refusal).
#[cfg(not(feature = "https"))]
pub fn fetch_keys_with(
    url: &str,
    _validate_certs: bool,
    _check: KeyCheck,
) -> Result<String, String> {
    Err(format!(
        "Error getting key from: {url}: this module binary does not fetch URLs on the host; \
         run it as sshfleet.fleet.authorized_key, whose action plugin fetches key URLs on the \
         controller"
    ))
}

/// Fetch a key list from an `http(s)://` URL and check that it is one. Blocking. The error
/// says which URL, the HTTP status, the content type and how the body starts, so a login or
/// error page is recognizable (never echoes private key material).
#[cfg(feature = "https")]
pub fn fetch_keys(url: &str, validate_certs: bool) -> Result<String, String> {
    fetch_keys_with(url, validate_certs, KeyCheck::Strict)
}

/// [`fetch_keys`] checking the keys as `check` says.
#[cfg(feature = "https")]
pub fn fetch_keys_with(url: &str, validate_certs: bool, check: KeyCheck) -> Result<String, String> {
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(!validate_certs)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .tls_config(tls)
        .user_agent("sshfleet")
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("Error getting key from: {url}: {e}"))?;
    let status = resp.status();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_SOURCE)
        .read_to_vec()
        .map_err(|e| {
            format!("Error getting key from: {url}: HTTP {status}, content type {ctype}: {e}")
        })?;
    let what = || {
        format!(
            "HTTP {}, content type {ctype}, body starts: {}",
            status.as_u16(),
            body_excerpt(&body)
        )
    };
    if status.as_u16() != 200 {
        return Err(format!("Error getting key from: {url}: {}", what()));
    }
    let text = String::from_utf8(body.clone())
        .map_err(|_| format!("keys from {url} are not UTF-8 text: {}", what()))?;
    if crate::authorized_keys::looks_like_private_key(&text) {
        return Err(format!("{url}: {}", KeyError::PrivateKey));
    }
    match parse_key_list_with(&text, check) {
        Ok(k) if !k.is_empty() => Ok(text),
        Ok(_) => Err(format!("{url} returned no public key: {}", what())),
        Err(e) => Err(format!(
            "{url} did not return a public key list ({e}): {}",
            what()
        )),
    }
}

/// The first bytes of a body, quoted and escaped.
#[cfg(feature = "https")]
fn body_excerpt(body: &[u8]) -> String {
    const N: usize = 120;
    let s = String::from_utf8_lossy(&body[..body.len().min(N)]);
    let more = if body.len() > N { "..." } else { "" };
    format!("{:?}{more}", s.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::*;
    use crate::target::local::LocalTarget;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn me() -> String {
        let uid = unsafe { libc::getuid() };
        // SAFETY: getpwuid returns a pointer into static storage or NULL.
        let pw = unsafe { libc::getpwuid(uid) };
        assert!(!pw.is_null());
        unsafe { std::ffi::CStr::from_ptr((*pw).pw_name) }
            .to_string_lossy()
            .into_owned()
    }

    fn params(path: &std::path::Path, keys: &[&str]) -> AuthorizedKeyParams {
        let mut p = AuthorizedKeyParams::new(me(), keys.iter().map(|s| s.to_string()).collect());
        p.path = Some(path.to_str().unwrap().to_string());
        p
    }

    const RUN: RunMode = RunMode {
        check: false,
        diff: true,
    };

    #[tokio::test]
    async fn keep_attrs_keeps_mode_of_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ak");
        std::fs::write(&f, format!("{ED1}\n{ED2}\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let t = LocalTarget::new();
        let mut p = params(&f, &[ED1]);
        p.state = State::Absent;
        p.manage_dir = false;
        p.keep_attrs = true;
        let r = apply(&t, &p, RUN).await.unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), format!("{ED2}\n"));
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Without it the file becomes 0600 (the module's rule).
        p.keep_attrs = false;
        p.keys = vec![ED2.into()];
        apply(&t, &p, RUN).await.unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[tokio::test]
    async fn add_then_idempotent_then_absent() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/dir/authorized_keys");
        let t = LocalTarget::new();
        let r = apply(&t, &params(&f, &[ED1]), RUN).await.unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), format!("{ED1}\n"));
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let d = r.diff.unwrap();
        assert_eq!(
            (d.before.as_str(), d.after.as_str()),
            ("", &*format!("{ED1}\n"))
        );
        assert_eq!(d.before_header, f.to_str().unwrap());
        assert_eq!(r.added.len(), 1);

        let r = apply(&t, &params(&f, &[ED1]), RUN).await.unwrap();
        assert!(!r.changed && r.diff.is_none());

        let mut p = params(&f, &[ED1]);
        p.state = State::Absent;
        let r = apply(&t, &p, RUN).await.unwrap();
        assert!(r.changed);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "");
    }

    #[tokio::test]
    async fn check_mode_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ak");
        std::fs::write(&f, format!("{ED2}\n")).unwrap();
        let mut p = params(&f, &[ED1]);
        p.exclusive = true;
        let r = apply(
            &LocalTarget::new(),
            &p,
            RunMode {
                check: true,
                diff: true,
            },
        )
        .await
        .unwrap();
        assert!(r.changed);
        assert_eq!(r.diff.unwrap().after, format!("{ED1}\n"));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), format!("{ED2}\n"));
    }

    #[tokio::test]
    async fn symlink_replaced_as_upstream_or_refused_with_refuse_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        std::fs::write(&real, format!("{ED2}\n")).unwrap();
        std::os::unix::fs::symlink("real", &link).unwrap();
        let t = LocalTarget::new();
        // no change needed: reading through the link is fine
        assert!(
            !apply(&t, &params(&link, &[ED2]), RUN)
                .await
                .unwrap()
                .changed
        );
        let mut p = params(&link, &[ED1]);
        p.refuse_symlinks = true;
        let e = apply(&t, &p, RUN).await.unwrap_err();
        assert!(e.to_string().contains("is a symlink"), "{e}");
        // follow: write to the link's target, the link stays
        let mut p = params(&link, &[ED1]);
        p.follow = true;
        let r = apply(&t, &p, RUN).await.unwrap();
        assert!(r.changed);
        assert_eq!(r.written_path, real.to_str().unwrap());
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            format!("{ED2}\n{ED1}\n")
        );
        // default (upstream): the symlink itself is replaced by a regular file; its target
        // is left alone
        let r = apply(&t, &params(&link, &[ED3]), RUN).await.unwrap();
        assert!(r.changed);
        assert_eq!(r.written_path, link.to_str().unwrap());
        assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(
            std::fs::read_to_string(&link).unwrap(),
            format!("{ED2}\n{ED1}\n{ED3}\n")
        );
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            format!("{ED2}\n{ED1}\n")
        );
    }

    #[tokio::test]
    async fn key_sources_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ak");
        let pubf = dir.path().join("k.pub");
        std::fs::write(&pubf, format!("{ED3}\n")).unwrap();
        let t = LocalTarget::new();
        let src = format!("file://{}", pubf.display());
        let r = apply(&t, &params(&f, &[&src, ED1]), RUN).await.unwrap();
        assert!(r.changed);
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            format!("{ED3}\n{ED1}\n")
        );

        let e = apply(&t, &params(&f, &["file:///nonexistent/k.pub"]), RUN)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Path to a key file not found: /nonexistent/k.pub"
        );
        let mut p = params(&f, &["ssh-ed25519 AAAA bad"]);
        p.validate_keys = true;
        let e = apply(&t, &p, RUN).await.unwrap_err();
        assert!(e.to_string().starts_with("invalid key specified"), "{e}");
        // upstream takes any blob word after a known key type, but not an unknown type
        let e = apply(&t, &params(&f, &["ssh-ed448 AAAA bad"]), RUN)
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("invalid key specified"), "{e}");
        let mut p = params(&f, &["# nothing"]);
        p.exclusive = true;
        let e = apply(&t, &p, RUN).await.unwrap_err();
        assert!(e.to_string().contains("empty exclusive"), "{e}");
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            format!("{ED3}\n{ED1}\n")
        );
        let p = AuthorizedKeyParams::new("no-such-user-sshfleet", vec![ED1.into()]);
        let e = apply(&t, &p, RUN).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("Failed to lookup user no-such-user-sshfleet"),
            "{e}"
        );
        // check mode with a path does not need the user
        let mut p = params(&f, &[ED2]);
        p.user = "no-such-user-sshfleet".into();
        assert!(
            apply(
                &t,
                &p,
                RunMode {
                    check: true,
                    diff: false
                }
            )
            .await
            .unwrap()
            .changed
        );
    }

    #[tokio::test]
    async fn manage_dir_creates_home_ssh() {
        // LocalTarget reads the real user database, where a test cannot add a user with a
        // scratch home; so drive prepare_dirs with a synthetic entry for the current user.
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let uid = unsafe { libc::getuid() };
        let gid = unsafe { libc::getgid() };
        let user = UserInfo {
            name: me(),
            uid,
            gid,
            home: home.to_str().unwrap().into(),
            shell: "/bin/sh".into(),
        };
        let ssh = join(&user.home, ".ssh");
        let t = LocalTarget::new();
        prepare_dirs(&t, &join(&ssh, "authorized_keys"), Some(&ssh), true, &user)
            .await
            .unwrap();
        let m = std::fs::metadata(&ssh).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o7777, 0o700);
        assert_eq!((m.uid(), m.gid()), (uid, gid));
        // an existing directory with a loose mode is fixed
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_dirs(&t, &join(&ssh, "authorized_keys"), Some(&ssh), true, &user)
            .await
            .unwrap();
        assert_eq!(
            std::fs::metadata(&ssh).unwrap().permissions().mode() & 0o7777,
            0o700
        );
    }

    #[tokio::test]
    async fn concurrent_change_is_not_lost() {
        // A target whose first write_atomic fails with Changed after someone else appended a
        // key: the retry must re-read and keep their key.
        struct Racy {
            inner: LocalTarget,
            raced: std::sync::atomic::AtomicBool,
            file: String,
        }
        impl Target for Racy {
            fn host(&self) -> &str {
                "racy"
            }
            async fn stat(
                &self,
                p: &str,
                f: bool,
            ) -> crate::target::TResult<Option<crate::target::FileStat>> {
                self.inner.stat(p, f).await
            }
            async fn read(&self, p: &str, l: u64) -> crate::target::TResult<Vec<u8>> {
                self.inner.read(p, l).await
            }
            async fn read_stream(
                &self,
                p: &str,
                s: tokio::sync::mpsc::Sender<Result<bytes::Bytes, String>>,
            ) -> crate::target::TResult<crate::target::FileStat> {
                self.inner.read_stream(p, s).await
            }
            async fn sha256(&self, p: &str) -> crate::target::TResult<Option<[u8; 32]>> {
                self.inner.sha256(p).await
            }
            async fn write_atomic(
                &self,
                spec: &WriteSpec,
                body: Body,
            ) -> crate::target::TResult<crate::target::WriteOutcome> {
                if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    let mut s = std::fs::read_to_string(&self.file).unwrap();
                    s.push_str(&format!("{ED3}\n"));
                    std::fs::write(&self.file, s).unwrap();
                }
                self.inner.write_atomic(spec, body).await
            }
            async fn mkdir(
                &self,
                p: &str,
                m: u32,
                u: Option<u32>,
                g: Option<u32>,
            ) -> crate::target::TResult<()> {
                self.inner.mkdir(p, m, u, g).await
            }
            async fn set_attrs(
                &self,
                p: &str,
                m: Option<u32>,
                u: Option<u32>,
                g: Option<u32>,
            ) -> crate::target::TResult<()> {
                self.inner.set_attrs(p, m, u, g).await
            }
            async fn remove(&self, p: &str) -> crate::target::TResult<()> {
                self.inner.remove(p).await
            }
            async fn list_dir(&self, p: &str) -> crate::target::TResult<Vec<String>> {
                self.inner.list_dir(p).await
            }
            async fn read_link(&self, p: &str) -> crate::target::TResult<String> {
                self.inner.read_link(p).await
            }
            async fn lookup_user(&self, n: &str) -> crate::target::TResult<Option<UserInfo>> {
                self.inner.lookup_user(n).await
            }
            async fn lookup_group(&self, n: &str) -> crate::target::TResult<Option<u32>> {
                self.inner.lookup_group(n).await
            }
            async fn run(
                &self,
                a: &[String],
                i: Option<Vec<u8>>,
            ) -> crate::target::TResult<crate::target::CommandOutput> {
                self.inner.run(a, i).await
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ak");
        std::fs::write(&f, format!("{ED2}\n")).unwrap();
        let t = Racy {
            inner: LocalTarget::new(),
            raced: false.into(),
            file: f.to_str().unwrap().into(),
        };
        let r = apply(&t, &params(&f, &[ED1]), RUN).await.unwrap();
        assert!(r.changed);
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            format!("{ED2}\n{ED3}\n{ED1}\n")
        );
    }

    #[test]
    #[cfg(feature = "https")]
    fn url_errors_say_what_came_back() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let replies = [
                (
                    "200 OK",
                    "text/html",
                    "<html><body>Please log in</body></html>".to_string(),
                ),
                ("404 Not Found", "text/plain", "no such user".to_string()),
                ("200 OK", "text/plain", format!("{ED1}\n{ED2}\n")),
            ];
            for (status, ctype, body) in replies {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).unwrap();
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(resp.as_bytes()).unwrap();
            }
        });
        let url = format!("http://127.0.0.1:{port}/alice.keys");
        let e = fetch_keys(&url, true).unwrap_err();
        assert!(
            e.contains(&url)
                && e.contains("HTTP 200")
                && e.contains("text/html")
                && e.contains("Please log in"),
            "{e}"
        );
        let e = fetch_keys(&url, true).unwrap_err();
        assert!(e.contains("HTTP 404") && e.contains("no such user"), "{e}");
        assert_eq!(fetch_keys(&url, true).unwrap(), format!("{ED1}\n{ED2}\n"));
        server.join().unwrap();
        let e = fetch_keys(&format!("http://127.0.0.1:{port}/x"), true).unwrap_err();
        assert!(
            e.contains("Error getting key from") && e.contains(&port.to_string()),
            "{e}"
        );
    }
}
