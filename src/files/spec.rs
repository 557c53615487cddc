//! Where each source file goes: remote path helpers and the destination rules of Ansible's
//! `copy` (trailing slashes, directories, multiple sources), plus the `fetch` layout
//! `DIR/HOST/PATH`.
//!
//! Rules for a source `SRC` and `--dest D` (Ansible's copy):
//! - no `--dest`: every file goes to the same path it has on the source (replicate).
//! - `SRC` is a file: `D/` (trailing slash), several sources, or `D` being an existing directory
//!   on the destination host → `D/basename(SRC)`; otherwise `D` itself is the file.
//! - `SRC` is a directory (needs `-r`): `SRC/` (trailing slash) copies its *contents* into `D`;
//!   `SRC` without the slash copies the directory itself, to `D/basename(SRC)`.
//!
//! Names read from a remote directory listing are checked ([`check_entry_name`]) so a hostile
//! host cannot smuggle `..` or `/` into a destination path.

/// A path or destination that cannot be used. Names the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {msg}")]
    Path { path: String, msg: String },
    #[error("{path}: is a directory; use -r to copy directories")]
    DirWithoutRecurse { path: String },
    #[error("two sources would both be written to {dest}: {first} and {second}")]
    Collision {
        dest: String,
        first: String,
        second: String,
    },
}

/// Remove redundant slashes (`a//b/` → `a/b`); `/` stays `/`.
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The last component of a (normalized) path.
pub fn basename(path: &str) -> &str {
    let p = path.trim_end_matches('/');
    p.rsplit('/').next().unwrap_or(p)
}

/// The directory containing `path` (`/a/b` → `/a`, `/a` → `/`, `a` → `.`).
pub fn parent(path: &str) -> String {
    let p = normalize(path);
    match p.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => p[..i].to_string(),
        None => ".".to_string(),
    }
}

/// `dir/rel` (rel may be empty, meaning `dir` itself).
pub fn join(dir: &str, rel: &str) -> String {
    if rel.is_empty() {
        return normalize(dir);
    }
    normalize(&format!("{dir}/{rel}"))
}

/// `rel/name` for relative paths inside a tree (`""` + `n` → `n`).
pub fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Every ancestor directory of `path` from the top down, excluding `/` and `.` (`/a/b/c` →
/// `[/a, /a/b]`).
pub fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = parent(path);
    while p != "/" && p != "." {
        out.push(p.clone());
        p = parent(&p);
    }
    out.reverse();
    out
}

/// Check a user-supplied remote path: non-empty, no NUL, no `..` component.
pub fn check_path(path: &str) -> Result<(), SpecError> {
    let bad = |msg: &str| {
        Err(SpecError::Path {
            path: path.to_string(),
            msg: msg.to_string(),
        })
    };
    if path.is_empty() {
        return bad("empty path");
    }
    if path.contains('\0') {
        return bad("path contains a NUL byte");
    }
    if path.split('/').any(|c| c == "..") {
        return bad("path contains a `..` component");
    }
    Ok(())
}

/// Check one name from a directory listing: not empty, `.`, `..`, and no `/` or NUL.
pub fn check_entry_name(dir: &str, name: &str) -> Result<(), SpecError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(SpecError::Path {
            path: dir.to_string(),
            msg: format!("directory listing returned an unsafe name {name:?}"),
        });
    }
    Ok(())
}

/// What the user named as a source, and what it turned out to be on the source host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRoot {
    /// As given (a trailing slash matters for directories).
    pub given: String,
    pub is_dir: bool,
}

/// The destination of one source root on one destination host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestRoot {
    /// The root is a file and goes to exactly this path.
    File(String),
    /// The root is a directory whose contents go under this directory.
    Dir(String),
}

impl DestRoot {
    /// Where an entry at `rel` (relative to the source root; empty = the root itself) goes.
    pub fn path_for(&self, rel: &str) -> String {
        match self {
            DestRoot::File(p) => p.clone(),
            DestRoot::Dir(d) => join(d, rel),
        }
    }
}

/// Does resolving `--dest` need to know whether it is an existing directory on each
/// destination host? (Only for a single file source with a dest without trailing slash.)
pub fn dest_needs_probe(roots: &[SourceRoot], dest: Option<&str>) -> bool {
    matches!(dest, Some(d) if !d.ends_with('/')) && roots.len() == 1 && !roots[0].is_dir
}

/// Map every source root to its destination (see the module docs). `dest_is_dir` is whether
/// `--dest` names an existing directory on this destination host (only consulted when
/// [`dest_needs_probe`] says so). Fails on a directory without `recurse`, a `..` path, or two
/// roots mapping to the same destination.
pub fn dest_roots(
    roots: &[SourceRoot],
    dest: Option<&str>,
    recurse: bool,
    dest_is_dir: bool,
) -> Result<Vec<DestRoot>, SpecError> {
    let mut out: Vec<DestRoot> = Vec::with_capacity(roots.len());
    for root in roots {
        check_path(&root.given)?;
        if root.is_dir && !recurse {
            return Err(SpecError::DirWithoutRecurse {
                path: root.given.clone(),
            });
        }
        let src = normalize(&root.given);
        let d = match dest {
            None => {
                if root.is_dir {
                    DestRoot::Dir(src.clone())
                } else {
                    DestRoot::File(src.clone())
                }
            }
            Some(d) => {
                check_path(d)?;
                let into_dir = d.ends_with('/') || roots.len() > 1 || dest_is_dir;
                if root.is_dir {
                    if root.given.ends_with('/') {
                        DestRoot::Dir(normalize(d))
                    } else {
                        DestRoot::Dir(join(d, basename(&src)))
                    }
                } else if into_dir {
                    DestRoot::File(join(d, basename(&src)))
                } else {
                    DestRoot::File(normalize(d))
                }
            }
        };
        out.push(d);
    }
    // Two file roots to the same path, or a file root equal to a dir root, is ambiguous.
    for (i, a) in out.iter().enumerate() {
        for (j, b) in out.iter().enumerate().skip(i + 1) {
            let clash = match (a, b) {
                (DestRoot::File(x), DestRoot::File(y)) => x == y,
                (DestRoot::File(x), DestRoot::Dir(y)) | (DestRoot::Dir(y), DestRoot::File(x)) => {
                    x == y
                }
                (DestRoot::Dir(_), DestRoot::Dir(_)) => false,
            };
            if clash {
                return Err(SpecError::Collision {
                    dest: a.path_for(""),
                    first: roots[i].given.clone(),
                    second: roots[j].given.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Where `fetch` puts `path` from `host` on the controller: `DIR/HOST/PATH` (Ansible's
/// layout; the leading `/` of an absolute path is dropped).
pub fn fetch_path(
    dir: &std::path::Path,
    host: &str,
    path: &str,
) -> Result<std::path::PathBuf, SpecError> {
    check_path(path)?;
    if host.is_empty() || host.contains('/') || host == "." || host == ".." {
        return Err(SpecError::Path {
            path: host.to_string(),
            msg: "host name cannot be used as a directory name".to_string(),
        });
    }
    let rel = normalize(path);
    let rel = rel.trim_start_matches('/');
    let mut p = dir.join(host);
    if !rel.is_empty() && rel != "." {
        p.push(rel);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> SourceRoot {
        SourceRoot {
            given: p.into(),
            is_dir: false,
        }
    }
    fn dir(p: &str) -> SourceRoot {
        SourceRoot {
            given: p.into(),
            is_dir: true,
        }
    }

    #[test]
    fn path_helpers() {
        assert_eq!(normalize("/a//b/"), "/a/b");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("a/./b"), "a/b");
        assert_eq!(basename("/a/b/"), "b");
        assert_eq!(basename("b"), "b");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("a"), ".");
        assert_eq!(join("/d", "x/y"), "/d/x/y");
        assert_eq!(join("/d/", ""), "/d");
        assert_eq!(ancestors("/a/b/c"), vec!["/a", "/a/b"]);
        assert!(ancestors("/c").is_empty());
    }

    #[test]
    fn no_dest_means_same_path() {
        let r = dest_roots(
            &[file("/etc/pki/ca.crt"), dir("/etc/pki/certs")],
            None,
            true,
            false,
        )
        .unwrap();
        assert_eq!(r[0], DestRoot::File("/etc/pki/ca.crt".into()));
        assert_eq!(r[1], DestRoot::Dir("/etc/pki/certs".into()));
        assert_eq!(r[1].path_for("a/b.pem"), "/etc/pki/certs/a/b.pem");
    }

    #[test]
    fn file_source_trailing_slash_and_existing_dir() {
        let one = [file("/src/a.txt")];
        assert!(dest_needs_probe(&one, Some("/dst")));
        assert!(!dest_needs_probe(&one, Some("/dst/")));
        assert!(!dest_needs_probe(&one, None));
        assert_eq!(
            dest_roots(&one, Some("/dst"), false, false).unwrap(),
            vec![DestRoot::File("/dst".into())]
        );
        assert_eq!(
            dest_roots(&one, Some("/dst"), false, true).unwrap(),
            vec![DestRoot::File("/dst/a.txt".into())]
        );
        assert_eq!(
            dest_roots(&one, Some("/dst/"), false, false).unwrap(),
            vec![DestRoot::File("/dst/a.txt".into())]
        );
        let two = [file("/s/a"), file("/t/b")];
        assert!(!dest_needs_probe(&two, Some("/dst")));
        assert_eq!(
            dest_roots(&two, Some("/dst"), false, false).unwrap(),
            vec![
                DestRoot::File("/dst/a".into()),
                DestRoot::File("/dst/b".into())
            ]
        );
    }

    #[test]
    fn directory_trailing_slash_rules() {
        assert_eq!(
            dest_roots(&[dir("/src/conf")], Some("/dst"), true, false).unwrap(),
            vec![DestRoot::Dir("/dst/conf".into())]
        );
        assert_eq!(
            dest_roots(&[dir("/src/conf/")], Some("/dst"), true, false).unwrap(),
            vec![DestRoot::Dir("/dst".into())]
        );
        assert_eq!(
            dest_roots(&[dir("/src/conf")], Some("/dst"), false, false).unwrap_err(),
            SpecError::DirWithoutRecurse {
                path: "/src/conf".into()
            }
        );
    }

    #[test]
    fn collisions_and_bad_paths_are_refused() {
        let e = dest_roots(&[file("/a/x"), file("/b/x")], Some("/d/"), false, false).unwrap_err();
        assert!(matches!(e, SpecError::Collision { .. }), "{e}");
        assert!(dest_roots(&[file("/a/../x")], None, false, false).is_err());
        assert!(dest_roots(&[file("/a/x")], Some("/d/../e"), false, false).is_err());
        assert!(check_entry_name("/d", "..").is_err());
        assert!(check_entry_name("/d", "a/b").is_err());
        assert!(check_entry_name("/d", "").is_err());
        assert!(check_entry_name("/d", "ok name $(x)").is_ok());
    }

    #[test]
    fn fetch_layout() {
        let d = std::path::Path::new("/out");
        assert_eq!(
            fetch_path(d, "host01", "/etc/pki/ca.crt").unwrap(),
            std::path::PathBuf::from("/out/host01/etc/pki/ca.crt")
        );
        assert_eq!(
            fetch_path(d, "h", "rel/x").unwrap(),
            std::path::PathBuf::from("/out/h/rel/x")
        );
        assert!(fetch_path(d, "h", "/../etc/passwd").is_err());
        assert!(fetch_path(d, "../h", "/x").is_err());
    }
}
