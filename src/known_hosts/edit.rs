//! Editing a known_hosts file in place: add a host's key next to its other entries, replace
//! one key by another, remove one key or all of a host's keys, and write the result atomically.
//!
//! # API (used by `hostkeys scan --update-known-hosts`, `hostkeys rotate/retire`)
//!
//! ```no_run
//! use sshfleet::known_hosts::edit::{self, Form};
//! # let (old_blob, new_blob): (Vec<u8>, Vec<u8>) = (vec![], vec![]);
//! let path = std::path::Path::new("/home/me/.ssh/known_hosts");
//! let name = "[10.0.0.5]:2222"; // known_hosts::host_key_name(host, port), or a HostKeyAlias
//! let edited = edit::edit_file(path, true, |doc| {
//!     // publish: the new key goes next to the old one, in the same hashed/plain form
//!     doc.add(&[name], "ssh-ed25519", &new_blob, Form::auto())
//! })?;
//! println!("{}", edited.changed()); // false when the key was already there
//! // retire: drop the old key (only that key of that name; other lines stay byte for byte)
//! edit::edit_file(path, true, |doc| doc.remove(name, &old_blob))?;
//! # Ok::<(), edit::FileEditError>(())
//! ```
//!
//! - [`Document`] is the file as lines, each kept as its exact bytes (terminator included).
//!   The edits are pure methods on it ([`Document::add`], [`Document::replace`],
//!   [`Document::remove`], [`Document::remove_host`]); [`Document::text`] gives the new file.
//!   Comments, blank lines, unparsable lines, `@revoked` and `@cert-authority` lines and every
//!   entry of other hosts are never touched, as in OpenSSH's `hostfile_replace_entries`.
//! - Names are the looked-up names ([`super::host_key_name`]: `host`, `[host]:port`, or a
//!   `HostKeyAlias`), compared case-insensitively; OpenSSH writes them lower-cased, so do we.
//! - Hashed or plain ([`Form`]): `Form::auto()` writes a new entry hashed when the host's
//!   existing entries are hashed (the last one decides), else — for a host the file does not
//!   list — when every entry of the file is hashed (a file that went through `ssh-keygen -H`),
//!   else plain. A hashed entry gets a fresh random salt and one line per name, exactly what
//!   OpenSSH writes with `HashKnownHosts yes` (`|1|base64(salt)|base64(HMAC-SHA1(salt, name))`).
//! - Where: a new key goes on a new line right after the host's last entry (a replaced key at
//!   the place of the old one), or at the end for a host not listed. (OpenSSH's
//!   `UpdateHostKeys` appends at the end; keeping a host's keys together reads better and is
//!   equivalent for lookups.)
//! - Removing a key of a name that shares a plain line with other names (`web1,10.0.0.5 …`)
//!   removes only that name from the line (the rest of the line is kept as is). OpenSSH's
//!   `ssh-keygen -R` drops the whole line instead; we deliberately do not lose the other names'
//!   entry. A key reached only through a wildcard pattern (`*.example.com`) or a negation is
//!   shared with other hosts: removing it is refused ([`EditError::Shared`]) and nothing
//!   changes; the user edits such lines by hand.
//! - [`edit_file`] reads, applies one closure, and when the text changed (and `write` is set,
//!   i.e. not check mode) writes it with [`write_atomic`]: a temp file in the same directory,
//!   same mode and owner, fsync, rename over the original (following a symlink to its target),
//!   fsync of the directory. The file is re-read just before the rename; if someone else (an
//!   `ssh` appending with accept-new) changed it meanwhile, the edit is redone on the new text
//!   (three tries, then [`FileEditError::Raced`] and nothing written).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Entry, HostMatcher, Marker, fingerprint, hmac_sha1, parse_line};

/// Hashed or plain host names for a new entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Follow the file (see the module doc); `hash_when_unknown` decides for a file with no
    /// entries at all (pass the client's `HashKnownHosts`).
    Auto {
        hash_when_unknown: bool,
    },
    Hashed,
    Plain,
}

impl Form {
    /// [`Form::Auto`] with OpenSSH's default `HashKnownHosts no` for an empty file.
    pub fn auto() -> Self {
        Form::Auto {
            hash_when_unknown: false,
        }
    }
}

/// One change an edit made, for reports and `--diff` (lines without their terminator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(String),
    Removed(String),
    /// A shared plain line lost one of its names.
    Rewritten {
        old: String,
        new: String,
    },
}

/// An edit that cannot be made; the document is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error(
        "line {line}: {name} is listed there through the pattern {field:?}, shared with other hosts; edit that line by hand"
    )]
    Shared {
        line: usize,
        name: String,
        field: String,
    },
    #[error("{name} has no {fingerprint} key to replace")]
    NoSuchKey { name: String, fingerprint: String },
    #[error("{0:?} is not a valid known_hosts host name")]
    BadName(String),
}

/// Editing a file failed; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum FileEditError {
    #[error("{}: {source}", path.display())]
    Edit {
        path: PathBuf,
        #[source]
        source: EditError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: changed by another program on every try while being edited; nothing written", path.display())]
    Raced { path: PathBuf },
}

#[derive(Debug, Clone)]
struct Line {
    /// The exact bytes, terminator included (the last line may lack one).
    raw: String,
    /// A key entry (`None` for comments, blanks and unparsable lines).
    entry: Option<Entry>,
    /// Byte range of the host field in `raw`.
    host_field: Option<std::ops::Range<usize>>,
    gone: bool,
}

impl Line {
    fn new(raw: String, number: usize) -> Self {
        let body = raw.trim_end_matches(['\n', '\r']);
        let t = body.trim();
        let (entry, host_field) = if t.is_empty() || t.starts_with('#') {
            (None, None)
        } else {
            match parse_line(t) {
                Ok(mut e) => {
                    e.line = number;
                    (Some(e), host_field_range(body))
                }
                Err(_) => (None, None),
            }
        };
        Line {
            raw,
            entry,
            host_field,
            gone: false,
        }
    }

    fn body(&self) -> &str {
        self.raw.trim_end_matches(['\n', '\r'])
    }

    /// A plain-key entry (no marker).
    fn key_entry(&self) -> Option<&Entry> {
        self.entry
            .as_ref()
            .filter(|e| !self.gone && e.marker == Marker::None)
    }
}

/// The byte range of the host field: the first whitespace-separated field, or the second
/// after a `@marker`.
fn host_field_range(body: &str) -> Option<std::ops::Range<usize>> {
    let mut fields = Vec::new();
    let mut start = None;
    for (i, c) in body.char_indices() {
        if c == ' ' || c == '\t' {
            if let Some(s) = start.take() {
                fields.push(s..i);
                if fields.len() == 2 {
                    break;
                }
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start
        && fields.len() < 2
    {
        fields.push(s..body.len());
    }
    let first = fields.first()?.clone();
    if body[first.clone()].starts_with('@') {
        fields.get(1).cloned()
    } else {
        Some(first)
    }
}

/// How a name appears in an entry's host field.
#[derive(Debug, PartialEq, Eq)]
enum HowListed {
    No,
    Hashed,
    /// Literally, as one of the comma-separated names.
    Literal,
    /// Only through a wildcard pattern.
    Pattern,
}

fn how_listed(e: &Entry, name: &str) -> HowListed {
    if !e.hosts.matches(name) {
        return HowListed::No;
    }
    match &e.hosts {
        HostMatcher::Hashed { .. } => HowListed::Hashed,
        HostMatcher::Patterns(p) => {
            if p.iter().any(|(neg, pat)| !neg && pat == name) {
                HowListed::Literal
            } else {
                HowListed::Pattern
            }
        }
    }
}

fn check_name(name: &str) -> Result<String, EditError> {
    let ok = !name.is_empty()
        && !name.starts_with(['@', '|', '!', '#'])
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == '*' || c == '?');
    if ok {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(EditError::BadName(name.to_string()))
    }
}

fn random_salt() -> [u8; 20] {
    let mut salt = [0u8; 20];
    let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom is readable");
    std::io::Read::read_exact(&mut f, &mut salt).expect("/dev/urandom gives bytes");
    salt
}

/// `|1|salt|hash` for `name` with `salt`, as `HashKnownHosts` writes it.
pub fn hashed_name(name: &str, salt: &[u8]) -> String {
    format!(
        "|1|{}|{}",
        STANDARD.encode(salt),
        STANDARD.encode(hmac_sha1(salt, name.as_bytes()))
    )
}

/// A known_hosts file as editable lines.
#[derive(Debug, Clone)]
pub struct Document {
    lines: Vec<Line>,
}

impl Document {
    pub fn parse(text: &str) -> Self {
        Document {
            lines: text
                .split_inclusive('\n')
                .enumerate()
                .map(|(i, l)| Line::new(l.to_string(), i + 1))
                .collect(),
        }
    }

    /// The file's text now.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .filter(|l| !l.gone)
            .map(|l| l.raw.as_str())
            .collect()
    }

    /// Plain keys listed for `name` (marker-less entries): (key type, blob).
    pub fn keys_for(&self, name: &str) -> Vec<(String, Vec<u8>)> {
        let name = name.to_ascii_lowercase();
        self.lines
            .iter()
            .filter_map(|l| l.key_entry())
            .filter(|e| e.hosts.matches(&name))
            .map(|e| (e.key_type.clone(), e.blob.clone()))
            .collect()
    }

    fn listed(&self, name: &str, blob: &[u8]) -> bool {
        self.lines
            .iter()
            .filter_map(|l| l.key_entry())
            .any(|e| e.blob == blob && e.hosts.matches(name))
    }

    /// Resolve [`Form::Auto`] for `names`.
    fn hashed(&self, names: &[String], form: Form) -> bool {
        let hash_when_unknown = match form {
            Form::Hashed => return true,
            Form::Plain => return false,
            Form::Auto { hash_when_unknown } => hash_when_unknown,
        };
        let entries: Vec<&Entry> = self.lines.iter().filter_map(|l| l.key_entry()).collect();
        if let Some(last) = entries
            .iter()
            .rev()
            .find(|e| names.iter().any(|n| e.hosts.matches(n)))
        {
            return matches!(last.hosts, HostMatcher::Hashed { .. });
        }
        if entries.is_empty() {
            return hash_when_unknown;
        }
        entries
            .iter()
            .all(|e| matches!(e.hosts, HostMatcher::Hashed { .. }))
    }

    fn new_lines(names: &[String], hashed: bool, key_type: &str, blob: &[u8]) -> Vec<String> {
        let key = format!("{key_type} {}", STANDARD.encode(blob));
        if hashed {
            names
                .iter()
                .map(|n| format!("{} {key}\n", hashed_name(n, &random_salt())))
                .collect()
        } else {
            vec![format!("{} {key}\n", names.join(","))]
        }
    }

    /// Insert `new` after line index `after` (or at the end), making sure the line before ends
    /// with a newline.
    fn insert(&mut self, after: Option<usize>, new: Vec<String>) -> Vec<Change> {
        let at = match after {
            Some(i) => i + 1,
            None => self.lines.len(),
        };
        if let Some(prev) = self.lines[..at].iter_mut().rev().find(|l| !l.gone)
            && !prev.raw.ends_with('\n')
        {
            prev.raw.push('\n');
        }
        let changes = new
            .iter()
            .map(|l| Change::Added(l.trim_end().to_string()))
            .collect();
        for (k, raw) in new.into_iter().enumerate() {
            self.lines.insert(at + k, Line::new(raw, 0));
        }
        changes
    }

    /// Add `key_type blob` for `names` (the names that do not list it yet), right after the
    /// last entry of any of them, hashed or plain per `form`. No change when every name lists
    /// the key already.
    pub fn add(
        &mut self,
        names: &[&str],
        key_type: &str,
        blob: &[u8],
        form: Form,
    ) -> Result<Vec<Change>, EditError> {
        let names = names
            .iter()
            .map(|n| check_name(n))
            .collect::<Result<Vec<_>, _>>()?;
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !self.listed(n, blob))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(vec![]);
        }
        let hashed = self.hashed(&names, form);
        let after = self.lines.iter().rposition(|l| {
            l.key_entry()
                .is_some_and(|e| names.iter().any(|n| e.hosts.matches(n)))
        });
        let new = Self::new_lines(&missing, hashed, key_type, blob);
        Ok(self.insert(after, new))
    }

    /// Remove the key `blob` of `name` (only for that name; see the module doc for shared
    /// lines). No change when `name` does not list it.
    pub fn remove(&mut self, name: &str, blob: &[u8]) -> Result<Vec<Change>, EditError> {
        let name = check_name(name)?;
        self.remove_where(&name, |e| e.blob == blob)
    }

    /// Remove every plain key of `name` (`ssh-keygen -R name`, but see the module doc for
    /// shared lines; `@revoked` and `@cert-authority` lines stay, as with `ssh-keygen -R`).
    pub fn remove_host(&mut self, name: &str) -> Result<Vec<Change>, EditError> {
        let name = check_name(name)?;
        self.remove_where(&name, |_| true)
    }

    fn remove_where(
        &mut self,
        name: &str,
        pick: impl Fn(&Entry) -> bool,
    ) -> Result<Vec<Change>, EditError> {
        // First pass: refuse before changing anything.
        let mut todo = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            let Some(e) = l.key_entry() else { continue };
            if !pick(e) {
                continue;
            }
            match how_listed(e, name) {
                HowListed::No => {}
                HowListed::Pattern => {
                    let field = l.host_field.clone().map(|r| l.raw[r].to_string());
                    return Err(EditError::Shared {
                        line: e.line,
                        name: name.to_string(),
                        field: field.unwrap_or_default(),
                    });
                }
                HowListed::Hashed | HowListed::Literal => todo.push(i),
            }
        }
        let mut changes = Vec::new();
        for i in todo {
            let line = &mut self.lines[i];
            let old = line.body().to_string();
            let keep: Option<String> = match (&line.entry.as_ref().unwrap().hosts, &line.host_field)
            {
                (HostMatcher::Patterns(_), Some(r)) => {
                    let field = &line.raw[r.clone()];
                    let rest: Vec<&str> = field
                        .split(',')
                        .filter(|p| !p.is_empty() && !p.eq_ignore_ascii_case(name))
                        .collect();
                    // Another positive name left: keep the line for it.
                    if rest.iter().any(|p| !p.starts_with('!')) {
                        Some(rest.join(","))
                    } else {
                        None
                    }
                }
                _ => None,
            };
            match keep {
                Some(field) => {
                    let r = line.host_field.clone().unwrap();
                    let raw = format!("{}{}{}", &line.raw[..r.start], field, &line.raw[r.end..]);
                    let number = line.entry.as_ref().unwrap().line;
                    *line = Line::new(raw, number);
                    changes.push(Change::Rewritten {
                        old,
                        new: line.body().to_string(),
                    });
                }
                None => {
                    line.gone = true;
                    changes.push(Change::Removed(old));
                }
            }
        }
        Ok(changes)
    }

    /// Replace the key `old_blob` of `name` by `key_type new_blob`, at the place of the old
    /// entry and in its hashed/plain form (unless `form` says otherwise).
    /// [`EditError::NoSuchKey`] when `name` does not list `old_blob`.
    pub fn replace(
        &mut self,
        name: &str,
        old_blob: &[u8],
        key_type: &str,
        new_blob: &[u8],
        form: Form,
    ) -> Result<Vec<Change>, EditError> {
        let lname = check_name(name)?;
        let Some(at) = self.lines.iter().position(|l| {
            l.key_entry()
                .is_some_and(|e| e.blob == old_blob && e.hosts.matches(&lname))
        }) else {
            return Err(EditError::NoSuchKey {
                name: name.to_string(),
                fingerprint: fingerprint(old_blob),
            });
        };
        let was_hashed = matches!(
            self.lines[at].entry.as_ref().unwrap().hosts,
            HostMatcher::Hashed { .. }
        );
        let mut changes = self.remove(&lname, old_blob)?;
        if !self.listed(&lname, new_blob) {
            let hashed = match form {
                Form::Auto { .. } => was_hashed,
                f => self.hashed(std::slice::from_ref(&lname), f),
            };
            let new = Self::new_lines(&[lname], hashed, key_type, new_blob);
            changes.extend(self.insert(Some(at), new));
        }
        Ok(changes)
    }
}

/// The outcome of [`edit_file`].
#[derive(Debug, Clone)]
pub struct Edited {
    pub path: PathBuf,
    pub before: String,
    pub after: String,
    pub changes: Vec<Change>,
    /// Whether the file was written (false in check mode or when nothing changed).
    pub written: bool,
}

impl Edited {
    pub fn changed(&self) -> bool {
        self.before != self.after
    }
}

fn read_or_empty(path: &Path) -> Result<String, FileEditError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(FileEditError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Read `path` (missing = empty), apply `edit`, and when the text changed and `write` is set,
/// write it atomically ([`write_atomic`]), redoing the edit if the file changed under us.
pub fn edit_file(
    path: &Path,
    write: bool,
    mut edit: impl FnMut(&mut Document) -> Result<Vec<Change>, EditError>,
) -> Result<Edited, FileEditError> {
    let ioerr = |source| FileEditError::Io {
        path: path.to_path_buf(),
        source,
    };
    for _ in 0..3 {
        let before = read_or_empty(path)?;
        let mut doc = Document::parse(&before);
        let changes = edit(&mut doc).map_err(|source| FileEditError::Edit {
            path: path.to_path_buf(),
            source,
        })?;
        let after = doc.text();
        let mut out = Edited {
            path: path.to_path_buf(),
            before,
            after,
            changes,
            written: false,
        };
        if !write || !out.changed() {
            return Ok(out);
        }
        let guard = || -> std::io::Result<bool> {
            Ok(read_or_empty(path).map_err(|e| match e {
                FileEditError::Io { source, .. } => source,
                _ => unreachable!(),
            })? == out.before)
        };
        if write_atomic_if(path, out.after.as_bytes(), guard).map_err(ioerr)? {
            out.written = true;
            return Ok(out);
        }
    }
    Err(FileEditError::Raced {
        path: path.to_path_buf(),
    })
}

/// Replace the file at `path` by `bytes` atomically: temp file in the same directory with the
/// original's mode and owner (0600 for a new file), fsync, rename, fsync of the directory. A
/// symlink is followed (its target is replaced, the link stays).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_if(path, bytes, || Ok(true)).map(|_| ())
}

/// [`write_atomic`], renaming only if `still_ok()` says so right before the rename (false:
/// temp removed, nothing changed, returns `Ok(false)`).
fn write_atomic_if(
    path: &Path,
    bytes: &[u8],
    still_ok: impl FnOnce() -> std::io::Result<bool>,
) -> std::io::Result<bool> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let meta = match std::fs::metadata(&target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if meta.is_none() && !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "known_hosts".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{base}.sshfleet-{}-{nanos}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if let Some(m) = &meta {
            if m.uid() != unsafe { libc::geteuid() } || m.gid() != unsafe { libc::getegid() } {
                std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid()))?;
            }
            f.set_permissions(std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
        f.sync_all()?;
        drop(f);
        if !still_ok()? {
            return Ok(false);
        }
        std::fs::rename(&tmp, &target)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(true)
    })();
    if !matches!(result, Ok(true)) {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::known_hosts::{KnownHosts, KnownHostsFile, Verdict};

    const A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIPNKk17//p3pZqOsxCs5BBVAO1iSeA/XgCCnF9t1qFTr";
    const B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    // hashed "[127.0.0.1]:2222" and "example.com" (ssh-keygen -H)
    const HASHED_PORT: &str = "|1|vFVkxwvJeogr3wbsMpZEzHlHLHY=|Nbr1v4QKFFyV8emgLBc02Ly21lw=";
    const HASHED_NAME: &str = "|1|72kzPk7M8QCPiLqd8pNtGmfop3w=|n/kbT5KkpuxnuAyntwQDn+AB/nw=";
    const ED: &str = "ssh-ed25519";

    fn blob(b64: &str) -> Vec<u8> {
        STANDARD.decode(b64).unwrap()
    }

    fn check(text: &str, name: &str, b64: &str) -> Verdict {
        KnownHosts {
            files: vec![KnownHostsFile::parse("/kh", text)],
        }
        .check_name(name, &blob(b64))
    }

    #[test]
    fn add_plain_next_to_host_keeping_everything_else() {
        let text = format!(
            "# fleet\n\nweb1 {ED} {A} old comment\r\nweb2 {ED} {A}\n@revoked * {ED} {B}\n   junk line\n"
        );
        let mut d = Document::parse(&text);
        let ch = d.add(&["WEB1"], ED, &blob(B), Form::auto()).unwrap();
        assert_eq!(ch, vec![Change::Added(format!("web1 {ED} {B}"))]);
        assert_eq!(
            d.text(),
            format!(
                "# fleet\n\nweb1 {ED} {A} old comment\r\nweb1 {ED} {B}\nweb2 {ED} {A}\n@revoked * {ED} {B}\n   junk line\n"
            )
        );
        // Already there: no change.
        assert!(
            d.add(&["web1"], ED, &blob(B), Form::auto())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn add_hashed_when_host_is_hashed() {
        let text = format!("other {ED} {B}\n{HASHED_PORT} {ED} {A}\nlast {ED} {A}");
        let mut d = Document::parse(&text);
        d.add(&["[127.0.0.1]:2222"], ED, &blob(B), Form::auto())
            .unwrap();
        let out = d.text();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], format!("other {ED} {B}"));
        assert_eq!(lines[1], format!("{HASHED_PORT} {ED} {A}"));
        assert!(lines[2].starts_with("|1|") && lines[2].ends_with(&format!(" {ED} {B}")));
        assert_ne!(lines[2], format!("{HASHED_PORT} {ED} {B}"), "fresh salt");
        assert_eq!(lines[3], format!("last {ED} {A}"));
        assert!(matches!(
            check(&out, "[127.0.0.1]:2222", B),
            Verdict::Known(_)
        ));
        assert!(matches!(
            check(&out, "[127.0.0.1]:2222", A),
            Verdict::Known(_)
        ));
    }

    #[test]
    fn new_host_follows_the_file() {
        // All hashed: hashed, one line per name.
        let text = format!("{HASHED_NAME} {ED} {A}\n@cert-authority *.x {ED} {B}\n");
        let mut d = Document::parse(&text);
        d.add(&["h1", "[h1]:2200"], ED, &blob(B), Form::auto())
            .unwrap();
        let out = d.text();
        assert!(out.starts_with(&text));
        let new: Vec<&str> = out[text.len()..].lines().collect();
        assert_eq!(new.len(), 2);
        assert!(new.iter().all(|l| l.starts_with("|1|")));
        assert!(matches!(check(&out, "h1", B), Verdict::Known(_)));
        assert!(matches!(check(&out, "[h1]:2200", B), Verdict::Known(_)));
        // Mixed: plain, one line, at the end (missing newline fixed).
        let text = format!("{HASHED_NAME} {ED} {A}\nweb {ED} {A}");
        let mut d = Document::parse(&text);
        d.add(&["h1", "h2"], ED, &blob(B), Form::auto()).unwrap();
        assert_eq!(d.text(), format!("{text}\nh1,h2 {ED} {B}\n"));
        // Empty file: the caller's HashKnownHosts decides.
        let mut d = Document::parse("");
        d.add(
            &["h1"],
            ED,
            &blob(B),
            Form::Auto {
                hash_when_unknown: true,
            },
        )
        .unwrap();
        assert!(d.text().starts_with("|1|"));
        let mut d = Document::parse("");
        d.add(&["h1"], ED, &blob(B), Form::auto()).unwrap();
        assert_eq!(d.text(), format!("h1 {ED} {B}\n"));
    }

    #[test]
    fn remove_keeps_other_names_on_a_shared_line() {
        let text = format!("# c\nWeb1,10.0.0.5 {ED} {A} cmt\nweb1 {ED} {B}\n");
        let mut d = Document::parse(&text);
        let ch = d.remove("web1", &blob(A)).unwrap();
        assert_eq!(
            ch,
            vec![Change::Rewritten {
                old: format!("Web1,10.0.0.5 {ED} {A} cmt"),
                new: format!("10.0.0.5 {ED} {A} cmt"),
            }]
        );
        assert_eq!(
            d.text(),
            format!("# c\n10.0.0.5 {ED} {A} cmt\nweb1 {ED} {B}\n")
        );
        // remove_host drops the rest; a line naming only that host goes.
        let ch = d.remove_host("web1").unwrap();
        assert_eq!(ch, vec![Change::Removed(format!("web1 {ED} {B}"))]);
        assert_eq!(d.text(), format!("# c\n10.0.0.5 {ED} {A} cmt\n"));
    }

    #[test]
    fn remove_hashed_and_markers_untouched() {
        let text = format!(
            "@revoked {HASHED_NAME} {ED} {A}\n{HASHED_NAME} {ED} {A}\n{HASHED_NAME} {ED} {B}\n"
        );
        let mut d = Document::parse(&text);
        d.remove("example.com", &blob(A)).unwrap();
        assert_eq!(
            d.text(),
            format!("@revoked {HASHED_NAME} {ED} {A}\n{HASHED_NAME} {ED} {B}\n")
        );
        assert!(d.remove("nothere", &blob(A)).unwrap().is_empty());
    }

    #[test]
    fn wildcard_lines_are_refused_and_nothing_changes() {
        let text = format!("web1 {ED} {B}\n*.example.com,!bad.example.com {ED} {A}\n");
        let mut d = Document::parse(&text);
        let e = d.remove_host("a.example.com").unwrap_err();
        assert!(matches!(e, EditError::Shared { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("*.example.com"));
        assert_eq!(d.text(), text);
        // A name that is not a plain name.
        assert!(matches!(
            d.add(&["*.x"], ED, &blob(A), Form::auto()),
            Err(EditError::BadName(_))
        ));
    }

    #[test]
    fn replace_in_place_and_in_form() {
        let text = format!("a {ED} {A}\n{HASHED_PORT} {ED} {A}\nweb {ED} {A}\nz {ED} {A}\n");
        let mut d = Document::parse(&text);
        d.replace("[127.0.0.1]:2222", &blob(A), ED, &blob(B), Form::auto())
            .unwrap();
        d.replace("web", &blob(A), ED, &blob(B), Form::auto())
            .unwrap();
        let out = d.text();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], format!("a {ED} {A}"));
        assert!(lines[1].starts_with("|1|") && lines[1].ends_with(B));
        assert_eq!(lines[2], format!("web {ED} {B}"));
        assert_eq!(lines[3], format!("z {ED} {A}"));
        assert!(matches!(
            check(&out, "[127.0.0.1]:2222", A),
            Verdict::Changed(_)
        ));
        let e = d
            .replace("web", &blob(A), ED, &blob(B), Form::auto())
            .unwrap_err();
        assert!(matches!(e, EditError::NoSuchKey { .. }));
    }

    fn ssh_keygen(args: &[&str]) -> std::process::Output {
        std::process::Command::new("ssh-keygen")
            .args(args)
            .output()
            .expect("ssh-keygen runs")
    }

    /// `ssh-keygen -F` (OpenSSH's own lookup) finds what we add, hashed and plain, and no
    /// longer finds what we remove; `ssh-keygen -R` gives the same file as `remove_host` where
    /// no line is shared.
    #[test]
    fn ssh_keygen_is_the_oracle() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("known_hosts");
        let start = format!(
            "# keep me\n{HASHED_NAME} {ED} {B}\nweb1 {ED} {B}\n[h]:2200 {ED} {B}\n@cert-authority * {ED} {A}\n"
        );
        std::fs::write(&p, &start).unwrap();
        let ps = p.to_str().unwrap();
        edit_file(&p, true, |d| {
            let mut c = d.add(&["example.com"], ED, &blob(A), Form::auto())?;
            c.extend(d.add(&["[h]:2200"], ED, &blob(A), Form::auto())?);
            c.extend(d.add(&["new.host"], ED, &blob(A), Form::Hashed)?);
            Ok(c)
        })
        .unwrap();
        for name in ["example.com", "[h]:2200", "new.host"] {
            let out = ssh_keygen(&["-F", name, "-f", ps]);
            let s = String::from_utf8_lossy(&out.stdout);
            assert!(s.contains(A), "{name}: {s}");
        }
        // The hashed host's new entry is hashed: its name is nowhere in clear.
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains("example.com") && !text.contains("new.host"));
        // remove one key: -F finds the other only.
        edit_file(&p, true, |d| d.remove("example.com", &blob(B))).unwrap();
        let s = String::from_utf8_lossy(&ssh_keygen(&["-F", "example.com", "-f", ps]).stdout)
            .into_owned();
        assert!(s.contains(A) && !s.contains(B), "{s}");
        // remove_host == ssh-keygen -R on a copy.
        let q = dir.path().join("copy");
        std::fs::copy(&p, &q).unwrap();
        let out = ssh_keygen(&["-R", "[h]:2200", "-f", q.to_str().unwrap()]);
        assert!(out.status.success());
        edit_file(&p, true, |d| d.remove_host("[h]:2200")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            std::fs::read_to_string(&q).unwrap()
        );
        assert!(
            std::fs::read_to_string(&p)
                .unwrap()
                .starts_with("# keep me\n")
        );
    }

    #[test]
    fn atomic_write_keeps_mode_and_follows_symlink_check_mode_writes_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real_kh");
        std::fs::write(&real, format!("web1 {ED} {A}\n")).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("known_hosts");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = edit_file(&link, false, |d| {
            d.add(&["web1"], ED, &blob(B), Form::auto())
        })
        .unwrap();
        assert!(e.changed() && !e.written);
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            format!("web1 {ED} {A}\n")
        );
        let e = edit_file(&link, true, |d| {
            d.add(&["web1"], ED, &blob(B), Form::auto())
        })
        .unwrap();
        assert!(e.written);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(&real).unwrap(),
            format!("web1 {ED} {A}\nweb1 {ED} {B}\n")
        );
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // A new file in a new directory: 0600.
        let fresh = dir.path().join("sub/kh");
        edit_file(&fresh, true, |d| d.add(&["x"], ED, &blob(A), Form::auto())).unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn edit_is_redone_when_the_file_changes_underneath() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kh");
        std::fs::write(&p, format!("web1 {ED} {A}\n")).unwrap();
        let mut tries = 0;
        let e = edit_file(&p, true, |d| {
            tries += 1;
            if tries == 1 {
                // Another ssh appends (accept-new) while we edit.
                std::fs::write(&p, format!("web1 {ED} {A}\nweb9 {ED} {A}\n")).unwrap();
            }
            d.add(&["web1"], ED, &blob(B), Form::auto())
        })
        .unwrap();
        assert_eq!(tries, 2);
        assert!(e.written);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("web1 {ED} {A}\nweb1 {ED} {B}\nweb9 {ED} {A}\n")
        );
    }
}
