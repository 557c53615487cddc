//! `sshfleet_copy` with `src`: a file (or, with `remote_src`, a directory tree) already on the
//! managed host copied to `dest`, with the arguments and results of ansible-core's `copy`
//! module. The collection's copy action plugin is ansible-core's own copy action (controller
//! files and directory trees, trailing slashes, `local_follow`, `mode: preserve`, `content`,
//! check and diff mode), whose `ansible.legacy.copy` calls run this binary instead of the
//! Python module: `src` is then the uploaded temp file, `_original_basename` its name and
//! `checksum` its SHA1. With `remote_src` the task's own arguments arrive here unchanged.
//!
//! The decisions follow the builtin module step by step (source checks, `mode: preserve`,
//! checksum, a `dest` ending in `/` and missing parents, `dest` a directory, `follow`,
//! `force`, the destination checks, then attributes), with their messages. A single file is
//! written by [`crate::ops::copy::copy_content`] - atomic (temp file in the destination
//! directory, fsync, `validate`, rename), owner/mode kept, verified by sha256 - where the
//! builtin moves the uploaded file into place. A `remote_src` directory is merged into `dest`
//! as the builtin's `copy_directory` does (files that differ or are missing are copied with
//! their mode, symlinks per `local_follow`, owner/group applied recursively).

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use bytes::Bytes;
use serde_json::{Map, Value};

use super::copy::{parse_mode, sha1_hex};
use super::{Failure, Invocation, ModuleResult};
use crate::files::mode::{ModeSpec, mode_string};
use crate::files::owner::IdSpec;
use crate::files::spec::basename;
use crate::ops::copy::{CopyOptions, copy_content};
use crate::target::local::{LocalTarget, lookup_group, lookup_user};

/// `access(path, how)`.
fn access(path: &str, how: libc::c_int) -> bool {
    let Ok(c) = CString::new(path) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(c.as_ptr(), how) == 0 }
}

fn exists(p: &str) -> bool {
    std::fs::metadata(p).is_ok()
}
fn is_file(p: &str) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file())
}
fn is_dir(p: &str) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_dir())
}
fn is_link(p: &str) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// Python's `os.path.join(a, b)` for a relative `b` (`a` may end in `/`).
fn pjoin(a: &str, b: &str) -> String {
    if a.ends_with('/') || a.is_empty() {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

/// Python's `os.path.dirname`.
fn dirname(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => {
            let head = &p[..i];
            let t = head.trim_end_matches('/');
            if t.is_empty() { "/".into() } else { t.into() }
        }
        None => String::new(),
    }
}

fn fail(msg: impl Into<String>) -> Failure {
    Failure::new(msg)
}

fn io_fail(what: &str, path: &str, e: std::io::Error) -> Failure {
    fail(format!("{what} {path}: {e}"))
}

/// The file attributes the task asks for (`mode`, `owner`, `group`), resolved.
struct Attrs {
    mode: Option<ModeSpec>,
    uid: Option<u32>,
    gid: Option<u32>,
}

fn resolve_owner(name: &str) -> Result<u32, Failure> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match lookup_user(name) {
        Ok(Some(u)) => Ok(u.uid),
        _ => Err(fail(format!("chown failed: failed to look up user {name}"))),
    }
}

fn resolve_group(name: &str) -> Result<u32, Failure> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(n);
    }
    match lookup_group(name) {
        Ok(Some(g)) => Ok(g),
        _ => Err(fail(format!(
            "chgrp failed: failed to look up group {name}"
        ))),
    }
}

impl Attrs {
    fn from(inv: &Invocation, mode: Option<&Value>) -> Result<Attrs, Failure> {
        let p = &inv.params;
        let mode = match mode {
            Some(v) => parse_mode("mode", v).map_err(|e| {
                let mut f = fail("mode must be in octal or symbolic form");
                f.extra.insert("details".into(), e.into());
                f
            })?,
            None => None,
        };
        Ok(Attrs {
            mode,
            uid: p.str("owner").map(|o| resolve_owner(&o)).transpose()?,
            gid: p.str("group").map(|g| resolve_group(&g)).transpose()?,
        })
    }

    /// `set_fs_attributes_if_different` for owner, group and mode (not following a symlink
    /// at `path` for owner/group, as Ansible's `lchown`); whether anything changed (or
    /// would, in check mode).
    fn apply(&self, path: &str, check: bool) -> Result<bool, Failure> {
        let Ok(st) = std::fs::symlink_metadata(path) else {
            return Ok(false);
        };
        let mut changed = false;
        let uid = self.uid.filter(|u| *u != st.uid());
        let gid = self.gid.filter(|g| *g != st.gid());
        if uid.is_some() || gid.is_some() {
            changed = true;
            if !check {
                std::os::unix::fs::lchown(path, uid, gid)
                    .map_err(|e| fail(format!("chown failed: {path}: {e}")))?;
            }
        }
        if let Some(m) = &self.mode
            && !st.file_type().is_symlink()
        {
            let cur = st.mode() & 0o7777;
            let want = m.apply(cur, st.is_dir());
            if want != cur {
                changed = true;
                if !check {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))
                        .map_err(|e| io_fail("chmod failed:", path, e))?;
                }
            }
        }
        Ok(changed)
    }
}

/// `split_pre_existing_dir`: the first existing ancestor and the directories below it.
fn split_pre_existing_dir(dirname_: &str) -> Result<(String, Vec<String>), Failure> {
    let (head, tail) = match dirname_.rfind('/') {
        Some(i) => (dirname(dirname_), dirname_[i + 1..].to_string()),
        None => (String::new(), dirname_.to_string()),
    };
    if head.is_empty() {
        return Ok((".".into(), vec![tail]));
    }
    if !exists(&head) {
        if head == "/" {
            return Err(fail("The '/' directory doesn't exist on this machine."));
        }
        let (pre, mut list) = split_pre_existing_dir(&head)?;
        list.push(tail);
        Ok((pre, list))
    } else {
        Ok((head, vec![tail]))
    }
}

/// The builtin's directory merge (`copy_directory` and its helpers).
struct Tree<'a> {
    local_follow: Option<bool>,
    check: bool,
    attrs: &'a Attrs,
}

impl Tree<'_> {
    fn chown(&self, path: &str) -> Result<bool, Failure> {
        Attrs {
            mode: None,
            uid: self.attrs.uid,
            gid: self.attrs.gid,
        }
        .apply(path, self.check)
    }

    fn chown_recursive(&self, path: &str) -> Result<bool, Failure> {
        let mut changed = self.chown(path)?;
        if is_dir(path) && !is_link(path) {
            for name in list(path)? {
                changed |= self.chown_recursive(&pjoin(path, &name))?;
            }
        }
        Ok(changed)
    }

    /// `shutil.copytree(src, dest, symlinks)`, modes and times kept.
    fn copytree(&self, src: &str, dest: &str, symlinks: bool) -> Result<(), Failure> {
        std::fs::create_dir_all(dest).map_err(|e| io_fail("cannot create", dest, e))?;
        for name in list(src)? {
            let s = pjoin(src, &name);
            let d = pjoin(dest, &name);
            if is_link(&s) && symlinks {
                let to = std::fs::read_link(&s).map_err(|e| io_fail("cannot read", &s, e))?;
                std::os::unix::fs::symlink(to, &d).map_err(|e| io_fail("cannot link", &d, e))?;
            } else if is_dir(&s) {
                self.copytree(&s, &d, symlinks)?;
            } else {
                copy_file(&s, &d, true)?;
            }
        }
        copy_mode(src, dest)
    }

    fn copy_directory(&self, src: &str, dest: &str) -> Result<bool, Failure> {
        if !exists(dest) {
            if !self.check {
                self.copytree(src, dest, self.local_follow != Some(true))?;
                self.chown_recursive(dest)?;
            }
            return Ok(true);
        }
        let a = self.diff_files(src, dest)?;
        let b = self.left_only(src, dest)?;
        let c = self.common_dirs(src, dest)?;
        let d = self.chown_recursive(dest)?;
        Ok(a || b || c || d)
    }

    fn diff_files(&self, src: &str, dest: &str) -> Result<bool, Failure> {
        let mut changed = false;
        for name in list(src)? {
            let s = pjoin(src, &name);
            let d = pjoin(dest, &name);
            if !(is_file(&s) && is_file(&d)) || same_file(&s, &d) {
                continue;
            }
            changed = true;
            if self.check {
                continue;
            }
            if is_link(&s) && self.local_follow == Some(false) {
                let to = std::fs::read_link(&s).map_err(|e| io_fail("cannot read", &s, e))?;
                std::os::unix::fs::symlink(to, &d).map_err(|e| io_fail("cannot link", &d, e))?;
            } else {
                copy_file(&s, &d, false)?;
                copy_mode(&s, &d)?;
            }
            self.chown(&d)?;
        }
        Ok(changed)
    }

    fn left_only(&self, src: &str, dest: &str) -> Result<bool, Failure> {
        let mut changed = false;
        for name in list(src)? {
            let s = pjoin(src, &name);
            let d = pjoin(dest, &name);
            if std::fs::symlink_metadata(&d).is_ok() {
                continue;
            }
            changed = true;
            if self.check {
                continue;
            }
            let (link, dir, file) = (is_link(&s), is_dir(&s), is_file(&s));
            let lf = self.local_follow;
            if link && dir && lf == Some(true) {
                self.copytree(&s, &d, false)?;
                self.chown_recursive(&d)?;
            }
            if link && lf == Some(false) && (dir || file) {
                let to = std::fs::read_link(&s).map_err(|e| io_fail("cannot read", &s, e))?;
                std::os::unix::fs::symlink(to, &d).map_err(|e| io_fail("cannot link", &d, e))?;
            }
            if link && file && lf == Some(true) {
                copy_file(&s, &d, false)?;
                self.chown(&d)?;
            }
            if !link && file {
                copy_file(&s, &d, false)?;
                copy_mode(&s, &d)?;
                self.chown(&d)?;
            }
            if !link && dir {
                self.copytree(&s, &d, lf != Some(true))?;
                self.chown_recursive(&d)?;
            }
        }
        Ok(changed)
    }

    fn common_dirs(&self, src: &str, dest: &str) -> Result<bool, Failure> {
        let mut changed = false;
        for name in list(src)? {
            let s = pjoin(src, &name);
            let d = pjoin(dest, &name);
            if !(is_dir(&s) && is_dir(&d)) {
                continue;
            }
            changed |= self.diff_files(&s, &d)?;
            changed |= self.left_only(&s, &d)?;
            changed |= self.common_dirs(&s, &d)?;
        }
        Ok(changed)
    }
}

/// Entry names of a directory, sorted.
fn list(dir: &str) -> Result<Vec<String>, Failure> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io_fail("cannot list", dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// `filecmp.cmp` (shallow: same size and mtime count as equal, else the bytes decide).
fn same_file(a: &str, b: &str) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => {
            if x.len() != y.len() {
                return false;
            }
            if x.mtime() == y.mtime() && x.mtime_nsec() == y.mtime_nsec() {
                return true;
            }
            matches!((std::fs::read(a), std::fs::read(b)), (Ok(p), Ok(q)) if p == q)
        }
        _ => false,
    }
}

/// Copy a file's bytes (following symlinks); `times` keeps mode and mtime (`copy2`).
fn copy_file(src: &str, dest: &str, times: bool) -> Result<(), Failure> {
    std::fs::copy(src, dest)
        .map_err(|e| fail(format!("Failed to copy {src:?} to {dest:?}: {e}")))?;
    if times && let Ok(m) = std::fs::metadata(src) {
        let _ = std::fs::File::options()
            .write(true)
            .open(dest)
            .and_then(|f| f.set_modified(m.modified()?));
    } else if !times {
        // shutil.copyfile leaves a new file at 0666 & ~umask; std::fs::copy copied the mode.
        let umask = current_umask();
        let _ = std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o666 & !umask));
    }
    Ok(())
}

fn copy_mode(src: &str, dest: &str) -> Result<(), Failure> {
    let m = std::fs::metadata(src).map_err(|e| io_fail("cannot stat", src, e))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(m.mode() & 0o7777))
        .map_err(|e| io_fail("chmod failed:", dest, e))
}

fn current_umask() -> u32 {
    // SAFETY: umask has no failure mode; the old value is restored at once.
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old as u32
    }
}

/// MD5 of a file (the builtin's backwards-compatible `md5sum`).
fn md5_hex(data: &[u8]) -> String {
    format!("{:x}", md5::compute(data))
}

/// `exit_json`'s path information for `dest`: uid, gid, owner, group, mode, state, size.
fn add_path_info(out: &mut Map<String, Value>, path: &str) {
    use crate::target::id_name;
    let Ok(st) = std::fs::symlink_metadata(path) else {
        out.insert("state".into(), "absent".into());
        return;
    };
    let t = LocalTarget::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let (owner, group) = match rt {
        Ok(rt) => rt.block_on(async {
            (
                id_name(&t, "passwd", st.uid())
                    .await
                    .unwrap_or_else(|| st.uid().to_string()),
                id_name(&t, "group", st.gid())
                    .await
                    .unwrap_or_else(|| st.gid().to_string()),
            )
        }),
        Err(_) => (st.uid().to_string(), st.gid().to_string()),
    };
    out.insert("uid".into(), st.uid().into());
    out.insert("gid".into(), st.gid().into());
    out.insert("owner".into(), owner.into());
    out.insert("group".into(), group.into());
    out.insert("mode".into(), mode_string(st.mode() & 0o7777).into());
    let ft = st.file_type();
    let state = if ft.is_symlink() {
        "link"
    } else if ft.is_dir() {
        "directory"
    } else if st.nlink() > 1 {
        "hard"
    } else {
        "file"
    };
    out.insert("state".into(), state.into());
    out.insert("size".into(), st.len().into());
    if ft.is_symlink()
        && let Ok(to) = std::fs::read_link(path)
    {
        out.insert("src".into(), to.to_string_lossy().into_owned().into());
    }
}

/// An early successful exit (`exit_json` before the end), with path info for `dest`.
fn exit(mut out: Map<String, Value>) -> ModuleResult {
    if let Some(d) = out.get("dest").and_then(|d| d.as_str()).map(String::from) {
        add_path_info(&mut out, &d);
    }
    Ok(out)
}

/// Run the builtin copy module's `main` with `src` on this host.
pub fn handler(inv: &Invocation) -> ModuleResult {
    let p = &inv.params;
    let check = inv.check_mode;
    let src = p.str("src").unwrap_or_default();
    let mut dest = p.str("dest").unwrap_or_default();
    if !dest.contains('/') {
        dest = format!("./{dest}");
    }
    let force = p.bool("force");
    let orig = p.str("_original_basename").filter(|s| !s.is_empty());
    let follow = p.bool("follow");
    let remote_src = p.bool("remote_src");
    let local_follow = match p.get("local_follow") {
        Value::Null => None,
        v => super::spec::to_bool(v).ok(),
    };
    if !exists(&src) {
        return Err(fail(format!("Source {src} not found")));
    }
    if !access(&src, libc::R_OK) {
        return Err(fail(format!("Source {src} not readable")));
    }
    let mut mode_v = p.get("mode").clone();
    if mode_v.as_str() == Some("preserve") {
        let m = std::fs::metadata(&src).map_err(|e| io_fail("cannot stat", &src, e))?;
        mode_v = Value::String(format!("0{:03o}", m.mode() & 0o7777));
    }
    let mode_given = !mode_v.is_null();
    let attrs = Attrs::from(inv, mode_given.then_some(&mode_v))?;

    let mut changed = false;
    let (mut data, mut checksum_src, mut md5_src) = (None, None, None);
    if is_file(&src) {
        let bytes = std::fs::read(&src).map_err(|e| io_fail("cannot read", &src, e))?;
        checksum_src = Some(sha1_hex(&bytes));
        md5_src = Some(md5_hex(&bytes));
        data = Some(bytes);
    } else if remote_src && !is_dir(&src) {
        return Err(fail(format!(
            "Cannot copy invalid source '{src}': not a file"
        )));
    }
    if let Some(want) = p.str("checksum")
        && checksum_src.as_deref() != Some(want.as_str())
    {
        let mut f = fail("Copied file does not match the expected checksum. Transfer failed.");
        f.extra.insert(
            "checksum".into(),
            checksum_src.clone().map(Value::from).unwrap_or(Value::Null),
        );
        f.extra.insert("expected_checksum".into(), want.into());
        return Err(f);
    }

    if dest.ends_with('/') {
        if let Some(o) = &orig {
            dest = pjoin(&dest, o);
        }
        let dn = dirname(&dest);
        if !exists(&dn) {
            let (pre, new_dirs) = split_pre_existing_dir(&dn).map_err(|mut f| {
                f.msg += &format!(" Could not copy to {dest}");
                f
            })?;
            if check {
                let mut out = Map::new();
                out.insert(
                    "msg".into(),
                    format!("dest directory {dn} would be created").into(),
                );
                out.insert("changed".into(), true.into());
                out.insert("src".into(), src.into());
                return Ok(out);
            }
            std::fs::create_dir_all(&dn).map_err(|e| io_fail("cannot create", &dn, e))?;
            changed = true;
            let dir_mode = match p.get("directory_mode") {
                Value::Null => None,
                v => Some(v),
            };
            let dattrs = Attrs::from(inv, dir_mode)?;
            let mut cur = pre;
            for d in new_dirs {
                cur = pjoin(&cur, &d);
                dattrs.apply(&cur, false)?;
            }
        }
    }
    if is_dir(&dest) {
        let base = orig.clone().unwrap_or_else(|| basename(&src).to_string());
        dest = pjoin(&dest, &base);
    }
    let mut checksum_dest = None;
    if exists(&dest) {
        if is_link(&dest) && follow {
            dest = std::fs::canonicalize(&dest)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or(dest);
        }
        if !force {
            let mut out = Map::new();
            out.insert("msg".into(), "file already exists".into());
            out.insert("src".into(), src.into());
            out.insert("dest".into(), dest.into());
            out.insert("changed".into(), false.into());
            return exit(out);
        }
        if access(&dest, libc::R_OK) && is_file(&dest) {
            checksum_dest = std::fs::read(&dest).ok().map(|b| sha1_hex(&b));
        }
    } else {
        let dn = dirname(&dest);
        if !exists(&dn) {
            if let Err(e) = std::fs::metadata(&dn)
                && e.kind() == std::io::ErrorKind::PermissionDenied
            {
                return Err(fail(format!(
                    "Destination directory {dn} is not accessible"
                )));
            }
            return Err(fail(format!("Destination directory {dn} does not exist")));
        }
    }
    let dn = dirname(&dest);
    if !access(if dn.is_empty() { "." } else { &dn }, libc::W_OK) && !p.bool("unsafe_writes") {
        return Err(fail(format!("Destination {dn} not writable")));
    }

    let mut backup_file = None;
    if (checksum_src != checksum_dest || is_link(&dest))
        && let Some(bytes) = data.take()
    {
        if !check {
            if is_link(&dest) {
                std::fs::remove_file(&dest).map_err(|e| io_fail("cannot remove", &dest, e))?;
            }
            // Mode of the new file: as asked, else the source's for remote_src (the builtin
            // copies the source's stat), else kept/created at copy's default.
            let id = |what: &'static str| -> Result<Option<IdSpec>, Failure> {
                p.str(what)
                    .map(|s| IdSpec::parse(what, &s))
                    .transpose()
                    .map_err(|e| fail(e.to_string()))
            };
            let validate = p.str("validate");
            if let Some(v) = &validate
                && !v.contains("%s")
            {
                return Err(fail(format!("validate must contain %s: {v}")));
            }
            let (mut owner, mut group) = (id("owner")?, id("group")?);
            // The builtin keeps a replaced file's owner and group only as far as the user may
            // (its chown's EPERM is ignored): an unprivileged user replacing someone else's
            // file (in a directory it may write) ends up owning the new file.
            // SAFETY: geteuid/getegid cannot fail.
            let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
            if euid != 0
                && owner.is_none()
                && let Ok(m) = std::fs::symlink_metadata(&dest)
                && m.uid() != euid
            {
                owner = Some(IdSpec::Id(euid));
                group = group.or(Some(IdSpec::Id(egid)));
            }
            let mut opts = CopyOptions {
                dest: Some(dest.clone()),
                mode: attrs.mode.clone(),
                owner,
                group,
                backup: p.bool("backup"),
                force: true,
                validate,
                ..CopyOptions::default()
            };
            if opts.mode.is_none() && remote_src {
                let m = std::fs::metadata(&src).map_err(|e| io_fail("cannot stat", &src, e))?;
                opts.mode = Some(ModeSpec::Octal(m.mode() & 0o7777));
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| fail(format!("cannot start the runtime: {e}")))?;
            let t = LocalTarget::new();
            let report = rt.block_on(copy_content(&t, Bytes::from(bytes), "src", &opts));
            if let Some(m) = report.message() {
                let mut f = fail(m);
                if let Some(b) = report.files.first().and_then(|r| r.backup_file.clone()) {
                    f.extra.insert("backup_file".into(), b.into());
                }
                return Err(f);
            }
            backup_file = report.files.first().and_then(|r| r.backup_file.clone());
        }
        changed = true;
    }

    let src_param = p.str("src").unwrap_or_default();
    let dest_param = p.str("dest").unwrap_or_default();
    if checksum_src.is_none()
        && checksum_dest.is_none()
        && remote_src
        && is_dir(&src_param)
        && (is_dir(&dest_param) || !exists(&dest_param))
    {
        let (mut s, mut d) = (src_param.clone(), dest_param.clone());
        if !s.ends_with('/') {
            d = pjoin(&d, basename(&s));
            s.push('/');
        }
        let tree = Tree {
            local_follow,
            check,
            attrs: &attrs,
        };
        changed |= tree.copy_directory(&s, &d)?;
    }

    let mut out = Map::new();
    out.insert("dest".into(), dest.clone().into());
    out.insert("src".into(), src.into());
    out.insert(
        "md5sum".into(),
        md5_src.map(Value::from).unwrap_or(Value::Null),
    );
    out.insert(
        "checksum".into(),
        checksum_src.map(Value::from).unwrap_or(Value::Null),
    );
    if let Some(b) = backup_file {
        out.insert("backup_file".into(), b.into());
    }
    changed |= attrs.apply(&dest, check)?;
    out.insert("changed".into(), changed.into());
    exit(out)
}

#[cfg(test)]
mod tests {
    use super::super::copy::{handler as copy_handler, spec};
    use super::super::run_on;
    use super::*;
    use serde_json::json;

    fn run(args: Value) -> (Value, i32) {
        let (m, code) = run_on(&spec(), args.to_string().as_bytes(), copy_handler);
        (Value::Object(m), code)
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    use std::path::Path;

    #[test]
    fn path_helpers_match_python() {
        assert_eq!(dirname("/a/b"), "/a");
        assert_eq!(dirname("/a"), "/");
        assert_eq!(dirname("./x"), ".");
        assert_eq!(dirname("/a/b/"), "/a/b");
        assert_eq!(pjoin("/a/", "b"), "/a/b");
        assert_eq!(pjoin("/a", "b"), "/a/b");
    }

    #[test]
    fn uploaded_file_into_new_dirs_like_the_builtin_module() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join(".source.txt");
        std::fs::write(&src, "foo\n").unwrap();
        let d = dir.path().join("a/b");
        let dest = format!("{}/", d.to_str().unwrap());
        let args = json!({"src": src, "dest": dest, "_original_basename": "foo.txt",
                          "checksum": sha1_hex(b"foo\n"), "directory_mode": "0700"});
        let (out, code) = run(args.clone());
        assert_eq!(code, 0, "{out}");
        let f = dir.path().join("a/b/foo.txt");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "foo\n");
        assert_eq!(out["dest"], json!(f.to_str().unwrap()));
        assert_eq!(out["md5sum"], json!("d3b07384d113edec49eaa6238ad5ff00"));
        assert_eq!(out["checksum"], json!(sha1_hex(b"foo\n")));
        assert_eq!(out["changed"], json!(true));
        assert_eq!(out["state"], json!("file"));
        assert_eq!(mode_of(&dir.path().join("a")), 0o700);
        // again: nothing to do
        let (out, _) = run(args);
        assert_eq!(out["changed"], json!(false), "{out}");
        // a wrong checksum fails before anything is written
        let (out, code) = run(json!({"src": src, "dest": f, "checksum": "0".repeat(40)}));
        assert_eq!(code, 1);
        assert_eq!(
            out["msg"],
            json!("Copied file does not match the expected checksum. Transfer failed.")
        );
        // force=false keeps an existing file
        std::fs::write(&src, "other\n").unwrap();
        let (out, _) = run(json!({"src": src, "dest": f, "force": false}));
        assert_eq!(out["msg"], json!("file already exists"), "{out}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "foo\n");
        // a missing parent without a trailing slash: the builtin's message
        let (out, code) = run(json!({"src": src, "dest": dir.path().join("no/f")}));
        assert_eq!(code, 1);
        assert!(
            out["msg"].as_str().unwrap().ends_with("/no does not exist"),
            "{out}"
        );
        let (out, _) = run(json!({"src": dir.path().join("missing"), "dest": f}));
        assert!(out["msg"].as_str().unwrap().starts_with("Source "), "{out}");
    }

    #[test]
    fn remote_src_directory_merge_and_preserve() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("src");
        std::fs::create_dir_all(s.join("sub")).unwrap();
        std::fs::write(s.join("a"), "a").unwrap();
        std::fs::write(s.join("sub/b"), "b").unwrap();
        std::fs::set_permissions(s.join("a"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let d = dir.path().join("dest");
        // without a trailing slash the directory itself lands under dest
        let (out, code) = run(json!({"src": s, "dest": d, "remote_src": true}));
        assert_eq!(code, 0, "{out}");
        assert_eq!(out["changed"], json!(true));
        assert_eq!(std::fs::read_to_string(d.join("src/sub/b")).unwrap(), "b");
        assert_eq!(mode_of(&d.join("src/a")), 0o600);
        let (out, _) = run(json!({"src": s, "dest": d, "remote_src": true}));
        assert_eq!(out["changed"], json!(false), "{out}");
        // with one: its contents merged into dest, a changed file replaced
        std::fs::write(s.join("sub/b"), "bb").unwrap();
        let (out, _) = run(json!({"src": format!("{}/", s.to_str().unwrap()),
                                   "dest": d.join("src"), "remote_src": true}));
        assert_eq!(out["changed"], json!(true), "{out}");
        assert_eq!(std::fs::read_to_string(d.join("src/sub/b")).unwrap(), "bb");
        // a single file with mode=preserve takes the source's mode
        let (out, code) = run(json!({"src": s.join("a"), "dest": dir.path().join("one"),
                                      "remote_src": true, "mode": "preserve"}));
        assert_eq!(code, 0, "{out}");
        assert_eq!(mode_of(&dir.path().join("one")), 0o600);
        assert_eq!(out["mode"], json!("0600"));
        // a source that is neither a file nor a directory
        let (out, code) = run(json!({"src": "/dev/null", "dest": dir.path().join("x"),
                                      "remote_src": true}));
        assert_eq!(code, 1);
        assert!(out["msg"].as_str().unwrap().contains("not a file"), "{out}");
    }
}
