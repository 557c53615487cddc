//! `sshfleet_copy`: write `content` (text) or `content_b64` (any bytes) to `dest` on the
//! managed host with [`crate::ops::copy::copy_content`] over a [`LocalTarget`] — the same
//! plan/apply code the `sshfleet copy` and `replicate` commands run over SSH.
//!
//! Semantics (Ansible's copy with `content`): same bytes already there → not rewritten, only
//! mode/owner/group fixed (`changed` only then); otherwise an atomic write (temp file in the
//! destination directory, fsync, `validate`, rename) that keeps the replaced file's owner
//! unless `owner`/`group` say otherwise, and is verified by sha256 afterwards; `force: false`
//! never replaces an existing file; `backup` keeps the old file as `DEST.DATE@TIME~`; missing
//! parent directories are created (0755, or `directory_mode`). Check mode changes nothing and
//! reports what would change; diff mode returns Ansible's diff object.
//!
//! `checksum` is Ansible's option: the SHA1 of the content (40 hex digits); a SHA256 (64 hex
//! digits) is accepted too. A mismatch fails before anything is written, with Ansible's
//! message. The returned `checksum` is the SHA1, as Ansible's copy and stat return it; `sha256`
//! is returned beside it.
//!
//! Failures the builtin copy also has are reported with its messages: a directory as `dest`
//! ("can not use content with a dir as dest"), a parent that is not a directory ("Failed to
//! get information on remote file (DEST): Not a directory", the wording of copy's action
//! plugin), an unwritable or untraversable destination directory ("Destination DIR not
//! writable", "Destination directory DIR is not accessible") and a bad `mode` ("mode must be
//! in octal or symbolic form", the reason in `details`). Unlike the builtin, missing parent
//! directories are created.
//!
//! `content` and `content_b64` are never echoed (no_log options, masked in `invocation`); under
//! the task's `no_log` neither is the diff, whose `after` side is the content.

use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::spec::{ArgSpec, ArgType, ModuleSpec};
use super::{Failure, Invocation, ModuleResult};
use crate::files::checksum::{sha256, to_hex};
use crate::files::mode::{ModeSpec, mode_string};
use crate::files::owner::IdSpec;
use crate::ops::copy::{CopyOptions, FileReport, HostReport, copy_content};
use crate::target::local::LocalTarget;
use crate::target::{FileKind, FileStat, Target, hex, id_name};

pub const NAME: &str = "sshfleet_copy";

/// Longest symlink chain `follow` resolves.
const MAX_LINKS: usize = 40;

/// The argument spec: Ansible copy's options that apply to content, plus `content_b64`.
pub fn spec() -> ModuleSpec {
    ModuleSpec {
        name: NAME,
        args: vec![
            ArgSpec::new("content", ArgType::Str).no_log(),
            ArgSpec::new("content_b64", ArgType::Str).no_log(),
            ArgSpec::new("dest", ArgType::Path).required(),
            ArgSpec::new("mode", ArgType::Raw),
            ArgSpec::new("directory_mode", ArgType::Raw),
            ArgSpec::new("owner", ArgType::Str),
            ArgSpec::new("group", ArgType::Str),
            ArgSpec::new("backup", ArgType::Bool).default(false),
            ArgSpec::new("force", ArgType::Bool).default(true),
            ArgSpec::new("validate", ArgType::Str),
            ArgSpec::new("checksum", ArgType::Str),
            ArgSpec::new("follow", ArgType::Bool).default(false),
            // ansible.builtin.copy's module options for a file on the host (the collection's
            // action plugin passes them; see copy_src)
            ArgSpec::new("src", ArgType::Path),
            ArgSpec::new("_original_basename", ArgType::Str),
            ArgSpec::new("remote_src", ArgType::Bool).default(false),
            ArgSpec::new("local_follow", ArgType::Raw),
            ArgSpec::new("unsafe_writes", ArgType::Bool).default(false),
            ArgSpec::new("seuser", ArgType::Str),
            ArgSpec::new("serole", ArgType::Str),
            ArgSpec::new("setype", ArgType::Str),
            ArgSpec::new("selevel", ArgType::Str),
            ArgSpec::new("attributes", ArgType::Str).aliases(&["attr"]),
        ],
        mutually_exclusive: vec![
            vec!["content", "content_b64"],
            vec!["content", "src"],
            vec!["content_b64", "src"],
        ],
        required_one_of: vec![vec!["content", "content_b64", "src"]],
        supports_check_mode: true,
    }
}

/// A `mode`/`directory_mode` value: an octal or symbolic string, or a number (YAML `0644`
/// arrives as 420, which Ansible takes as those permission bits).
pub fn parse_mode(option: &str, v: &Value) -> Result<Option<ModeSpec>, String> {
    let m = match v {
        Value::Null => return Ok(None),
        Value::String(s) => ModeSpec::parse(s).map_err(|e| format!("{option}: {e}"))?,
        Value::Number(n) => match n.as_u64() {
            Some(n) => ModeSpec::from_int(n).map_err(|e| format!("{option}: {e}"))?,
            None => return Err(format!("{option}: invalid mode {n}")),
        },
        other => {
            return Err(format!(
                "{option} must be an octal string such as '0644', a symbolic mode such as \
                 'u=rw,g=r,o=r', or a number; got {other}"
            ));
        }
    };
    if m == ModeSpec::Preserve {
        return Err(format!(
            "{option}=preserve needs a source file; content has no mode to preserve"
        ));
    }
    Ok(Some(m))
}

/// An expected checksum: Ansible's SHA1, or a SHA256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Sha1(String),
    Sha256(String),
}

impl Expected {
    pub fn parse(s: &str) -> Result<Expected, String> {
        let t = s.trim().to_ascii_lowercase();
        let hexdigits = t.bytes().all(|b| b.is_ascii_hexdigit());
        match t.len() {
            40 if hexdigits => Ok(Expected::Sha1(t)),
            64 if hexdigits => Ok(Expected::Sha256(t)),
            _ => Err(format!(
                "checksum must be the SHA1 (40 hex digits, as for Ansible's copy) or the SHA256 \
                 (64 hex digits) of the content, got: {s}"
            )),
        }
    }

    /// `Err((actual, expected))` when `data` does not match.
    pub fn verify(&self, data: &[u8]) -> Result<(), (String, String)> {
        let (actual, want) = match self {
            Expected::Sha1(w) => (sha1_hex(data), w),
            Expected::Sha256(w) => (to_hex(&sha256(data)), w),
        };
        if &actual == want {
            Ok(())
        } else {
            Err((actual, want.clone()))
        }
    }
}

/// Lower-case hex SHA1 (Ansible's `checksum`).
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex(sha1::Sha1::digest(data).as_slice())
}

/// The content bytes from `content` or `content_b64` (ASCII whitespace in base64 ignored).
pub fn content_bytes(inv: &Invocation) -> Result<Vec<u8>, Failure> {
    if let Some(c) = inv.params.str("content") {
        return Ok(c.into_bytes());
    }
    let b64 = inv.params.str("content_b64").unwrap_or_default();
    let compact: Vec<u8> = b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|e| {
            // The decoder's message quotes an offending byte: keep it out under no_log.
            Failure::new(if inv.no_log {
                "content_b64 is not valid base64".to_string()
            } else {
                format!("content_b64 is not valid base64: {e}")
            })
        })
}

/// The copy options from validated arguments (dest resolved separately).
pub fn copy_options(inv: &Invocation, dest: String) -> Result<CopyOptions, Failure> {
    let p = &inv.params;
    let id = |what: &'static str, opt: &str| -> Result<Option<IdSpec>, Failure> {
        p.str(opt)
            .map(|s| IdSpec::parse(what, &s))
            .transpose()
            .map_err(|e| Failure::new(e.to_string()))
    };
    let validate = p.str("validate");
    if let Some(v) = &validate
        && !v.contains("%s")
    {
        return Err(Failure::new(format!("validate must contain %s: {v}")));
    }
    // Ansible's wording for a bad mode, our explanation in `details`.
    let mode = |opt: &str| {
        parse_mode(opt, p.get(opt)).map_err(|e| {
            let mut f = Failure::new("mode must be in octal or symbolic form");
            f.extra.insert("details".into(), e.into());
            f.extra.insert("path".into(), dest.clone().into());
            f
        })
    };
    Ok(CopyOptions {
        mode: mode("mode")?,
        dir_mode: mode("directory_mode")?,
        dest: Some(dest.clone()),
        recurse: false,
        owner: id("owner", "owner")?,
        group: id("group", "group")?,
        backup: p.bool("backup"),
        force: p.bool("force"),
        validate,
        check: inv.check_mode,
        diff: inv.diff,
        ..CopyOptions::default()
    })
}

/// The failures ansible.builtin.copy detects before writing, with its messages (`Err("")`:
/// `dest` is a directory). Checked as the user the module runs as, like the builtin's
/// `os.access`.
fn builtin_precheck(dest: &str) -> Result<(), String> {
    use std::io::ErrorKind;
    match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => return Err(String::new()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(format!(
                "Failed to get information on remote file ({dest}): Not a directory"
            ));
        }
        _ => {}
    }
    let dir = crate::files::spec::parent(dest);
    match std::fs::metadata(&dir) {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            Err(format!("Destination directory {dir} is not accessible"))
        }
        Ok(m) if m.is_dir() && !access_w(&dir) => Err(format!("Destination {dir} not writable")),
        _ => Ok(()),
    }
}

/// `access(path, W_OK)`.
fn access_w(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// `follow`: the final target of a symlink chain at `dest` (unchanged if not a symlink).
async fn follow_links<T: Target>(t: &T, dest: &str) -> Result<String, Failure> {
    let mut cur = dest.to_string();
    for _ in 0..MAX_LINKS {
        match t.stat(&cur, false).await {
            Ok(Some(s)) if s.kind == FileKind::Symlink => {
                let to = t
                    .read_link(&cur)
                    .await
                    .map_err(|e| Failure::new(e.to_string()))?;
                cur = if to.starts_with('/') {
                    to
                } else {
                    crate::files::spec::join(&crate::files::spec::parent(&cur), &to)
                };
            }
            Ok(_) => return Ok(cur),
            Err(e) => return Err(Failure::new(e.to_string())),
        }
    }
    Err(Failure::new(format!(
        "{dest}: more than {MAX_LINKS} symlinks to follow"
    )))
}

/// What the destination looks like: `(mode, uid, gid)`, from a fresh `lstat` after a real run,
/// from the plan (over the current file) in check mode.
fn reported_attrs(
    check: bool,
    fr: &FileReport,
    now: Option<&FileStat>,
) -> Option<(u32, Option<u32>, Option<u32>)> {
    match now {
        Some(s) if !check => Some((s.mode, Some(s.uid), Some(s.gid))),
        Some(s) => Some((
            if fr.action.is_some_and(|a| a.changes()) {
                fr.mode
            } else {
                s.mode
            },
            fr.uid.or(Some(s.uid)),
            fr.gid.or(Some(s.gid)),
        )),
        None if check => Some((fr.mode, fr.uid, fr.gid)),
        None => None,
    }
}

/// Build the module result from the operation's report.
async fn result<T: Target>(
    t: &T,
    inv: &Invocation,
    report: &HostReport,
    dest: &str,
    data: &[u8],
) -> ModuleResult {
    let fail = |msg: String| {
        let mut f = Failure::new(msg);
        f.extra.insert("dest".into(), dest.into());
        f
    };
    if let Some(m) = report.message() {
        let mut f = fail(m);
        if let Some(b) = report.files.first().and_then(|r| r.backup_file.clone()) {
            f.extra.insert("backup_file".into(), b.into());
        }
        return Err(f);
    }
    let fr = report
        .files
        .first()
        .ok_or_else(|| fail(format!("{dest}: the copy reported no file")))?;
    let now = t.stat(dest, false).await.map_err(|e| fail(e.to_string()))?;
    let mut out = Map::new();
    out.insert("dest".into(), dest.into());
    out.insert("changed".into(), report.changed().into());
    out.insert("checksum".into(), sha1_hex(data).into());
    out.insert("sha256".into(), to_hex(&fr.sha256).into());
    out.insert("size".into(), fr.size.into());
    let exists_after = now.is_some() || inv.check_mode;
    out.insert(
        "state".into(),
        if now.is_some() || (inv.check_mode && fr.action.is_some_and(|a| a.changes())) {
            "file"
        } else {
            "absent"
        }
        .into(),
    );
    if exists_after && let Some((mode, uid, gid)) = reported_attrs(inv.check_mode, fr, now.as_ref())
    {
        out.insert("mode".into(), mode_string(mode).into());
        if let Some(u) = uid {
            out.insert("uid".into(), u.into());
            out.insert("owner".into(), id_name(t, "passwd", u).await.into());
        }
        if let Some(g) = gid {
            out.insert("gid".into(), g.into());
            out.insert("group".into(), id_name(t, "group", g).await.into());
        }
    }
    if !report.dirs_created.is_empty() {
        out.insert("dirs_created".into(), report.dirs_created.clone().into());
    }
    if let Some(b) = &fr.backup_file {
        out.insert("backup_file".into(), b.clone().into());
    }
    if inv.diff
        && !inv.no_log
        && let Some(d) = &fr.diff
    {
        out.insert("diff".into(), d.to_ansible());
    }
    Ok(out)
}

/// Run the copy on this host and build Ansible copy's return values.
pub fn handler(inv: &Invocation) -> ModuleResult {
    let p = &inv.params;
    if let Some(a) = p.str("attributes") {
        return Err(Failure::new(format!(
            "attributes ({a}) are not supported by sshfleet_copy (no chattr)"
        )));
    }
    if p.str("src").is_some() {
        let mut out = super::copy_src::handler(inv)?;
        let mut invocation = Map::new();
        invocation.insert("module_args".into(), Value::Object(p.echo(inv.no_log)));
        out.insert("invocation".into(), Value::Object(invocation));
        return Ok(out);
    }
    let dest = p.str("dest").unwrap_or_default();
    if dest.is_empty() {
        return Err(Failure::new("dest must not be empty"));
    }
    const DIR_AS_DEST: &str = "can not use content with a dir as dest";
    if dest.ends_with('/') {
        let mut f = Failure::new(DIR_AS_DEST);
        f.extra.insert("dest".into(), dest.into());
        return Err(f);
    }
    let data = content_bytes(inv)?;
    if let Some(c) = p.str("checksum") {
        let expected = Expected::parse(&c).map_err(Failure::new)?;
        if let Err((actual, want)) = expected.verify(&data) {
            let mut f =
                Failure::new("Copied file does not match the expected checksum. Transfer failed.");
            f.extra.insert("checksum".into(), actual.into());
            f.extra.insert("expected_checksum".into(), want.into());
            f.extra.insert("dest".into(), dest.into());
            return Err(f);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the runtime: {e}")))?;
    let t = LocalTarget::new();
    let mut out = rt.block_on(async {
        let dest = if p.bool("follow") {
            follow_links(&t, &dest).await?
        } else {
            dest
        };
        let opts = copy_options(inv, dest.clone())?;
        builtin_precheck(&dest).map_err(|msg| {
            let mut f = Failure::new(if msg.is_empty() {
                DIR_AS_DEST.to_string()
            } else {
                msg
            });
            f.extra.insert("dest".into(), dest.clone().into());
            f
        })?;
        let report = copy_content(&t, Bytes::from(data.clone()), "content", &opts).await;
        result(&t, inv, &report, &dest, &data).await
    })?;
    let mut invocation = Map::new();
    invocation.insert("module_args".into(), Value::Object(p.echo(inv.no_log)));
    out.insert("invocation".into(), Value::Object(invocation));
    Ok(out)
}

/// `main` of the `sshfleet_copy` binary.
pub fn main() -> i32 {
    super::main_with(&spec(), handler)
}

#[cfg(test)]
mod tests {
    use super::super::run_on;
    use super::super::spec::NO_LOG_MASK;
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn run(args: Value) -> (Value, i32) {
        let (m, code) = run_on(&spec(), args.to_string().as_bytes(), handler);
        (Value::Object(m), code)
    }

    fn mode_of(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn mode_values() {
        assert_eq!(
            parse_mode("mode", &json!("0640")).unwrap(),
            Some(ModeSpec::Octal(0o640))
        );
        assert_eq!(
            parse_mode("mode", &json!(420)).unwrap(),
            Some(ModeSpec::Octal(0o644))
        );
        assert_eq!(parse_mode("mode", &Value::Null).unwrap(), None);
        assert!(
            parse_mode("mode", &json!("preserve"))
                .unwrap_err()
                .contains("preserve needs a source file")
        );
        assert!(
            parse_mode("mode", &json!("0999"))
                .unwrap_err()
                .starts_with("mode: invalid mode")
        );
        assert!(parse_mode("mode", &json!([1])).is_err());
    }

    #[test]
    fn checksums() {
        // Known vectors: sha1("abc"), sha256("abc").
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        let s1 = Expected::parse(" A9993E364706816ABA3E25717850C26C9CD0D89D ").unwrap();
        assert_eq!(s1.verify(b"abc"), Ok(()));
        let s256 =
            Expected::parse("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .unwrap();
        assert_eq!(s256.verify(b"abc"), Ok(()));
        let (actual, want) = s256.verify(b"abd").unwrap_err();
        assert_eq!(want.len(), 64);
        assert_ne!(actual, want);
        assert!(Expected::parse("abc").is_err());
        assert!(Expected::parse(&"g".repeat(40)).is_err());
    }

    #[test]
    fn writes_skips_fixes_attrs() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.bin");
        let d = dest.to_str().unwrap();
        let data = [0u8, 1, 2, 255, 10];
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        let (out, code) = run(json!({"content_b64": b64, "dest": d, "mode": "0600"}));
        assert_eq!(code, 0, "{out}");
        assert_eq!(out["changed"], json!(true));
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        assert_eq!(mode_of(&dest), 0o600);
        assert_eq!(out["mode"], json!("0600"));
        assert_eq!(out["checksum"], json!(sha1_hex(&data)));
        assert_eq!(out["sha256"], json!(to_hex(&sha256(&data))));
        assert_eq!(out["size"], json!(5));
        assert_eq!(out["state"], json!("file"));
        assert_eq!(
            out["invocation"]["module_args"]["content_b64"],
            json!(NO_LOG_MASK)
        );
        // same bytes, same mode: untouched
        let ino = std::fs::metadata(&dest).unwrap().ino();
        let (out, _) = run(json!({"content_b64": b64, "dest": d, "mode": "0600"}));
        assert_eq!(out["changed"], json!(false), "{out}");
        // same bytes, other mode: fixed in place (not rewritten)
        let (out, _) = run(json!({"content_b64": b64, "dest": d, "mode": "u=rw,g=r"}));
        assert_eq!(out["changed"], json!(true), "{out}");
        assert_eq!(mode_of(&dest), 0o640);
        assert_eq!(std::fs::metadata(&dest).unwrap().ino(), ino);
        // force=false keeps a different existing file
        let (out, _) = run(json!({"content": "other", "dest": d, "force": false}));
        assert_eq!(out["changed"], json!(false), "{out}");
        assert_eq!(std::fs::read(&dest).unwrap(), data);
    }

    #[test]
    fn check_mode_and_diff() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.txt");
        std::fs::write(&dest, "old\n").unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
        let d = dest.to_str().unwrap();
        let (out, code) = run(json!({
            "content": "new\n", "dest": d, "mode": "0600",
            "_ansible_check_mode": true, "_ansible_diff": true,
        }));
        assert_eq!(code, 0, "{out}");
        assert_eq!(out["changed"], json!(true));
        assert_eq!(out["mode"], json!("0600"));
        assert_eq!(out["diff"]["before"], json!("old\n"));
        assert_eq!(out["diff"]["after"], json!("new\n"));
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old\n");
        assert_eq!(mode_of(&dest), 0o644);
        // no_log: no diff (its after side is the content)
        let (out, _) = run(json!({
            "content": "new\n", "dest": d, "_ansible_check_mode": true,
            "_ansible_diff": true, "_ansible_no_log": true,
        }));
        assert!(out.get("diff").is_none(), "{out}");
        assert!(!out.to_string().contains("new\\n"), "{out}");
        // a new file in check mode: nothing created, not even the parent
        let newf = dir.path().join("x/y");
        let (out, _) = run(json!({
            "content": "z", "dest": newf.to_str().unwrap(), "_ansible_check_mode": true,
        }));
        assert_eq!(out["changed"], json!(true), "{out}");
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn failures_change_nothing_and_never_echo_content() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        std::fs::write(&dest, "keep").unwrap();
        let d = dest.to_str().unwrap();
        let secret = "s3cr3t-content";
        let cases = [
            (
                json!({"content": secret, "dest": d, "checksum": sha1_hex(b"x")}),
                "Copied file does not match the expected checksum. Transfer failed.",
            ),
            (
                json!({"content": secret, "dest": d, "validate": "false %s"}),
                "validation failed",
            ),
            (
                json!({"content": secret, "dest": d, "validate": "true"}),
                "validate must contain %s: true",
            ),
            (
                json!({"content": secret, "content_b64": "eA==", "dest": d}),
                "parameters are mutually exclusive: content|content_b64",
            ),
            (
                json!({"dest": d}),
                "one of the following is required: content, content_b64",
            ),
            (
                json!({"content": secret}),
                "missing required arguments: dest",
            ),
            (
                json!({"content": secret, "dest": d, "owner": "no-such-user-sshfleet"}),
                "no-such-user-sshfleet",
            ),
            (
                json!({"content": secret, "dest": dir.path().to_str().unwrap()}),
                "can not use content with a dir as dest",
            ),
            (
                json!({"content": secret, "dest": format!("{d}/")}),
                "can not use content with a dir as dest",
            ),
            (
                json!({"content_b64": "!!notbase64", "dest": d, "_ansible_no_log": true}),
                "content_b64 is not valid base64",
            ),
            (
                json!({"content": secret, "dest": d, "mode": "rwx"}),
                "mode must be in octal or symbolic form",
            ),
        ];
        for (args, want) in cases {
            let (out, code) = run(args.clone());
            assert_eq!(code, 1, "{args}: {out}");
            assert_eq!(out["failed"], json!(true));
            let msg = out["msg"].as_str().unwrap();
            assert!(msg.contains(want), "{args}: {msg:?} lacks {want:?}");
            assert!(!out.to_string().contains(secret), "{args}: echoed: {out}");
            assert_eq!(std::fs::read_to_string(&dest).unwrap(), "keep", "{args}");
        }
        // the mismatch names both checksums, as Ansible does
        let (out, _) = run(json!({"content": "abc", "dest": d, "checksum": "0".repeat(40)}));
        assert_eq!(out["checksum"], json!(sha1_hex(b"abc")));
        assert_eq!(out["expected_checksum"], json!("0".repeat(40)));
        // only our files are left in the directory (no temp files)
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["f"]);
    }

    #[test]
    fn backup_and_follow() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        std::fs::write(&real, "v1\n").unwrap();
        std::os::unix::fs::symlink("real", &link).unwrap();
        let (out, code) = run(json!({
            "content": "v2\n", "dest": link.to_str().unwrap(), "follow": true, "backup": true,
        }));
        assert_eq!(code, 0, "{out}");
        assert_eq!(out["dest"], json!(real.to_str().unwrap()));
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "v2\n");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let backup = out["backup_file"].as_str().unwrap();
        assert_eq!(std::fs::read_to_string(backup).unwrap(), "v1\n");
        // without follow, the link itself is replaced by a regular file (Ansible's default)
        let (out, _) = run(json!({"content": "v3\n", "dest": link.to_str().unwrap()}));
        assert_eq!(out["changed"], json!(true), "{out}");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "v2\n");
    }
}
