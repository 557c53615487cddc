//! The per-file decision shared by copy and replicate: given what should be at the destination
//! and what is there now, what to do (create, replace, fix attributes only, nothing, or keep
//! the existing file because `force` is off), and with which attributes and precondition the
//! atomic write runs.
//!
//! Rules (Ansible's copy):
//! - same bytes → never rewritten; mode/owner/group fixed if they differ (`changed` only then);
//! - different bytes → replaced; without an explicit owner/group the existing file's are kept
//!   (Ansible's `atomic_move` copies them onto the new file);
//! - `force: false` and the destination exists → left alone, `ok`;
//! - a symlink at the destination is replaced by a regular file (Ansible's `follow: no`);
//! - a directory or special file at the destination fails.
//!
//! The write's precondition ([`Expect`]) is "still absent" for a new file and "still the bytes
//! we saw" for a replacement, so a file someone changes meanwhile is not clobbered.

use crate::files::checksum::Sha256Digest;
use crate::target::{Expect, FileKind, FileStat};

/// A destination path that cannot receive a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: destination is a directory")]
    IsDir { path: String },
    #[error("{path}: destination exists and is not a regular file")]
    NotAFile { path: String },
}

/// What the destination file should end up as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub sha256: Sha256Digest,
    /// Permission bits.
    pub mode: u32,
    /// Resolved owner/group, if requested.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// What to do with one destination file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Does not exist: write it.
    Create,
    /// Exists with other bytes (or is a symlink): replace it.
    Replace,
    /// Same bytes, attributes differ: fix them only.
    FixAttrs,
    /// Already exactly right.
    Nothing,
    /// Exists and `force` is off: leave it.
    KeepExisting,
}

impl Action {
    pub fn changes(self) -> bool {
        matches!(self, Action::Create | Action::Replace | Action::FixAttrs)
    }

    pub fn writes_content(self) -> bool {
        matches!(self, Action::Create | Action::Replace)
    }
}

/// Attribute changes for [`Action::FixAttrs`] (each `None` = already right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttrFix {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The decision for one destination file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub action: Action,
    /// Precondition for the write (content actions only).
    pub expect: Expect,
    /// Attributes the new file is written with (content actions only).
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// For [`Action::FixAttrs`].
    pub fix: AttrFix,
}

/// Decide for `path`. `current` is the destination's `lstat` and, for a regular file, its
/// sha256.
pub fn decide(
    path: &str,
    desired: &Desired,
    current: Option<(&FileStat, Option<Sha256Digest>)>,
    force: bool,
) -> Result<Plan, PlanError> {
    let write = |action, expect, uid, gid| Plan {
        action,
        expect,
        mode: desired.mode,
        uid,
        gid,
        fix: AttrFix::default(),
    };
    let Some((stat, sha)) = current else {
        return Ok(write(
            Action::Create,
            Expect::Absent,
            desired.uid,
            desired.gid,
        ));
    };
    match stat.kind {
        FileKind::Dir => {
            return Err(PlanError::IsDir {
                path: path.to_string(),
            });
        }
        FileKind::Other => {
            return Err(PlanError::NotAFile {
                path: path.to_string(),
            });
        }
        FileKind::Symlink | FileKind::File => {}
    }
    if !force {
        return Ok(write(Action::KeepExisting, Expect::Any, None, None));
    }
    if stat.kind == FileKind::Symlink {
        return Ok(write(
            Action::Replace,
            Expect::Any,
            desired.uid,
            desired.gid,
        ));
    }
    match sha {
        Some(s) if s == desired.sha256 => {
            let fix = AttrFix {
                mode: (stat.mode & 0o7777 != desired.mode).then_some(desired.mode),
                uid: desired.uid.filter(|u| *u != stat.uid),
                gid: desired.gid.filter(|g| *g != stat.gid),
            };
            let action = if fix == AttrFix::default() {
                Action::Nothing
            } else {
                Action::FixAttrs
            };
            Ok(Plan {
                fix,
                ..write(action, Expect::Any, None, None)
            })
        }
        Some(s) => Ok(write(
            Action::Replace,
            Expect::Sha256(s),
            Some(desired.uid.unwrap_or(stat.uid)),
            Some(desired.gid.unwrap_or(stat.gid)),
        )),
        None => Ok(write(
            Action::Replace,
            Expect::Any,
            Some(desired.uid.unwrap_or(stat.uid)),
            Some(desired.gid.unwrap_or(stat.gid)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::checksum::sha256;

    fn st(kind: FileKind, mode: u32, uid: u32, gid: u32) -> FileStat {
        FileStat {
            kind,
            size: 3,
            mode,
            uid,
            gid,
            mtime: 0,
        }
    }

    fn want(mode: u32, uid: Option<u32>, gid: Option<u32>) -> Desired {
        Desired {
            sha256: sha256(b"new"),
            mode,
            uid,
            gid,
        }
    }

    #[test]
    fn absent_is_created_with_requested_attrs() {
        let p = decide("/d", &want(0o640, Some(7), None), None, true).unwrap();
        assert_eq!(p.action, Action::Create);
        assert_eq!(p.expect, Expect::Absent);
        assert_eq!((p.mode, p.uid, p.gid), (0o640, Some(7), None));
        // force=false still creates a missing file.
        assert_eq!(
            decide("/d", &want(0o640, None, None), None, false)
                .unwrap()
                .action,
            Action::Create
        );
    }

    #[test]
    fn same_bytes_same_attrs_is_nothing() {
        let s = st(FileKind::File, 0o644, 1, 1);
        let p = decide(
            "/d",
            &want(0o644, Some(1), Some(1)),
            Some((&s, Some(sha256(b"new")))),
            true,
        )
        .unwrap();
        assert_eq!(p.action, Action::Nothing);
        assert!(!p.action.changes());
        // Unrequested owner never counts as a difference.
        let p = decide(
            "/d",
            &want(0o644, None, None),
            Some((&s, Some(sha256(b"new")))),
            true,
        )
        .unwrap();
        assert_eq!(p.action, Action::Nothing);
    }

    #[test]
    fn same_bytes_other_attrs_fixes_only_those() {
        let s = st(FileKind::File, 0o600, 1, 1);
        let p = decide(
            "/d",
            &want(0o644, Some(1), Some(2)),
            Some((&s, Some(sha256(b"new")))),
            true,
        )
        .unwrap();
        assert_eq!(p.action, Action::FixAttrs);
        assert!(!p.action.writes_content());
        assert_eq!(
            p.fix,
            AttrFix {
                mode: Some(0o644),
                uid: None,
                gid: Some(2)
            }
        );
    }

    #[test]
    fn other_bytes_replaced_keeping_existing_owner() {
        let s = st(FileKind::File, 0o600, 5, 6);
        let old = sha256(b"old");
        let p = decide(
            "/d",
            &want(0o644, None, Some(9)),
            Some((&s, Some(old))),
            true,
        )
        .unwrap();
        assert_eq!(p.action, Action::Replace);
        assert_eq!(p.expect, Expect::Sha256(old));
        assert_eq!((p.mode, p.uid, p.gid), (0o644, Some(5), Some(9)));
    }

    #[test]
    fn no_force_keeps_existing_even_if_different() {
        let s = st(FileKind::File, 0o600, 5, 6);
        let p = decide(
            "/d",
            &want(0o644, None, None),
            Some((&s, Some(sha256(b"old")))),
            false,
        )
        .unwrap();
        assert_eq!(p.action, Action::KeepExisting);
        assert!(!p.action.changes());
    }

    #[test]
    fn symlink_replaced_dir_and_special_refused() {
        let l = st(FileKind::Symlink, 0o777, 0, 0);
        let p = decide("/d", &want(0o644, None, None), Some((&l, None)), true).unwrap();
        assert_eq!((p.action, p.expect), (Action::Replace, Expect::Any));
        let d = st(FileKind::Dir, 0o755, 0, 0);
        assert_eq!(
            decide("/d", &want(0o644, None, None), Some((&d, None)), true).unwrap_err(),
            PlanError::IsDir { path: "/d".into() }
        );
        let o = st(FileKind::Other, 0o644, 0, 0);
        assert!(decide("/d", &want(0o644, None, None), Some((&o, None)), true).is_err());
    }
}
