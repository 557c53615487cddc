//! Editing an `authorized_keys` file: make a set of keys present (optionally exclusively) or
//! absent. Pure: old text and the wanted keys in, new text and what changed out.
//!
//! Rules (see the module docs of [`super`] for how they relate to
//! `ansible.posix.authorized_key`):
//! - a key's identity is its decoded blob; options and comment decide whether its line must
//!   be rewritten;
//! - `present`: a key not in the file is appended after every existing line, in the order
//!   given; a key whose line differs (type, options, comment) is rewritten in place; further
//!   lines with the same key are removed (sshd would otherwise still honour their options);
//! - `absent`: every line with the key is removed;
//! - `exclusive` (with `present`): every other key line is removed, and so are lines that are
//!   not keys, except comment and blank lines when `keep_comments` is set;
//! - lines not addressed are kept byte for byte; `changed` is true only when bytes change.

use std::collections::HashSet;

use super::KeyError;
use super::file::{AuthorizedKeys, LineKind};
use super::options::KeyOptions;
use super::pubkey::{PublicKey, normalize_comment};

/// `state` of the authorized_key operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

/// How to edit (everything except the keys themselves).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditSpec {
    pub state: State,
    /// With `present`: remove every key not supplied.
    pub exclusive: bool,
    /// With `exclusive`: keep `#` comment lines and blank lines.
    pub keep_comments: bool,
    /// Replaces the options of every supplied key (`Some("")` removes them).
    pub key_options: Option<String>,
    /// Replaces the comment of every supplied key.
    pub comment: Option<String>,
}

/// The result of an edit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EditOutcome {
    /// The new file content.
    pub content: String,
    /// Whether `content` differs from the old content (a missing file counts as different
    /// from any non-empty content and equal to empty content).
    pub changed: bool,
    /// Fingerprints of keys appended, rewritten, and removed.
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    /// Notes about lines of the old file (`line N: ...`).
    pub warnings: Vec<String>,
}

/// The keys as they should appear: `key_options` and `comment` applied, comments taken from
/// the supplied keys whitespace-normalized, duplicates collapsed (the last one wins, as in
/// ansible.posix).
pub fn desired_keys(keys: &[PublicKey], spec: &EditSpec) -> Result<Vec<PublicKey>, KeyError> {
    let options = match &spec.key_options {
        Some(s) => {
            let o = KeyOptions::parse(s).map_err(KeyError::KeyOptions)?;
            o.check_names().map_err(KeyError::KeyOptions)?;
            Some(o)
        }
        None => None,
    };
    let comment = match &spec.comment {
        Some(c) if c.contains(|ch: char| ch.is_control() && ch != '\t') => {
            return Err(KeyError::Comment(
                "comment must not contain a line break, NUL or other control character".into(),
            ));
        }
        Some(c) => Some(c.trim().to_string()),
        None => None,
    };
    let mut out: Vec<PublicKey> = Vec::with_capacity(keys.len());
    for k in keys {
        let mut d = k.clone();
        if let Some(o) = &options {
            d.options = o.clone();
        }
        d.comment = match &comment {
            Some(c) => c.clone(),
            None => normalize_comment(&k.comment),
        };
        out.retain(|e| e.blob != d.blob);
        out.push(d);
    }
    Ok(out)
}

/// Apply `spec` with `keys` to `current` (`None`: the file does not exist).
pub fn apply_edit(
    current: Option<&str>,
    keys: &[PublicKey],
    spec: &EditSpec,
) -> Result<EditOutcome, KeyError> {
    let want = desired_keys(keys, spec)?;
    let exclusive = spec.exclusive && spec.state == State::Present;
    if exclusive && want.is_empty() {
        return Err(KeyError::EmptyExclusive);
    }
    let mut file = current.map(AuthorizedKeys::parse).unwrap_or_default();
    let mut keep = vec![true; file.lines.len()];
    let mut out = EditOutcome::default();
    let wanted: HashSet<&[u8]> = want.iter().map(|k| k.blob.as_slice()).collect();
    let mut appended: Vec<String> = Vec::new();

    match spec.state {
        State::Present => {
            for d in &want {
                let idxs: Vec<usize> = file
                    .lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| matches!(&l.kind, LineKind::Key(k) if k.blob == d.blob))
                    .map(|(i, _)| i)
                    .collect();
                let Some((&first, dups)) = idxs.split_first() else {
                    appended.push(d.render());
                    out.added.push(d.fingerprint());
                    continue;
                };
                let line = &mut file.lines[first];
                let same = matches!(&line.kind, LineKind::Key(k) if k.same_entry(d));
                if !same {
                    line.text = format!("{}\n", d.render());
                    line.kind = LineKind::Key(d.clone());
                    out.updated.push(d.fingerprint());
                }
                let first_no = line.number;
                for &i in dups {
                    keep[i] = false;
                    out.warnings.push(format!(
                        "line {}: duplicate of line {first_no} for key {} removed",
                        file.lines[i].number,
                        d.fingerprint()
                    ));
                }
            }
            if exclusive {
                for (i, l) in file.lines.iter().enumerate() {
                    match &l.kind {
                        LineKind::Key(k) if !wanted.contains(k.blob.as_slice()) => {
                            keep[i] = false;
                            out.removed.push(k.fingerprint());
                        }
                        LineKind::Invalid(reason) => {
                            keep[i] = false;
                            out.warnings.push(format!(
                                "line {}: not a valid key ({reason}); removed (exclusive)",
                                l.number
                            ));
                        }
                        LineKind::Comment | LineKind::Blank if !spec.keep_comments => {
                            keep[i] = false;
                        }
                        _ => {}
                    }
                }
            }
        }
        State::Absent => {
            for (i, l) in file.lines.iter().enumerate() {
                if let LineKind::Key(k) = &l.kind
                    && wanted.contains(k.blob.as_slice())
                {
                    keep[i] = false;
                    out.removed.push(k.fingerprint());
                }
            }
        }
    }
    for (i, l) in file.lines.iter().enumerate() {
        if let (true, LineKind::Invalid(reason)) = (keep[i], &l.kind) {
            out.warnings.push(format!(
                "line {}: not a valid key ({reason}); kept as it is",
                l.number
            ));
        }
    }

    let mut content: String = file
        .lines
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(l, _)| l.text.as_str())
        .collect();
    if !appended.is_empty() && !content.is_empty() && !content.ends_with('\n') {
        content.push('\n');
    }
    for a in appended {
        content.push_str(&a);
        content.push('\n');
    }
    out.changed = match current {
        None => !content.is_empty(),
        Some(c) => c != content,
    };
    out.content = content;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::parse_key_list;
    use crate::authorized_keys::testkeys::*;

    fn keys(text: &str) -> Vec<PublicKey> {
        parse_key_list(text).unwrap()
    }

    fn spec(f: impl FnOnce(&mut EditSpec)) -> EditSpec {
        let mut s = EditSpec::default();
        f(&mut s);
        s
    }

    fn present() -> EditSpec {
        EditSpec::default()
    }

    /// (name, old file or None, keys, spec, expected new content, expected changed)
    type Case = (&'static str, Option<String>, String, EditSpec, String, bool);

    fn cases() -> Vec<Case> {
        let b1 = bare(ED1);
        let b2 = bare(ED2);
        vec![
            (
                "add to missing file",
                None,
                ED1.into(),
                present(),
                format!("{ED1}\n"),
                true,
            ),
            (
                "add to empty file",
                Some(String::new()),
                ED1.into(),
                present(),
                format!("{ED1}\n"),
                true,
            ),
            (
                "already present",
                Some(format!("{ED1}\n")),
                ED1.into(),
                present(),
                format!("{ED1}\n"),
                false,
            ),
            (
                "appended after existing lines, order kept",
                Some(format!("# team\n{ED2}\n\n")),
                ED1.into(),
                present(),
                format!("# team\n{ED2}\n\n{ED1}\n"),
                true,
            ),
            (
                "last line without newline gets one before the append",
                Some("# team".into()),
                ED1.into(),
                present(),
                format!("# team\n{ED1}\n"),
                true,
            ),
            (
                "several keys appended in the order given",
                Some(format!("{ED3}\n")),
                format!("{ED2}\n# skip me\n\n{ED1}"),
                present(),
                format!("{ED3}\n{ED2}\n{ED1}\n"),
                true,
            ),
            (
                "key without comment: no trailing space",
                None,
                b1.clone(),
                present(),
                format!("{b1}\n"),
                true,
            ),
            (
                "supplied key without comment clears the comment",
                Some(format!("{ED1}\n")),
                b1.clone(),
                present(),
                format!("{b1}\n"),
                true,
            ),
            (
                "existing line with a trailing space is left alone",
                Some(format!("{b1} \n")),
                b1.clone(),
                present(),
                format!("{b1} \n"),
                false,
            ),
            (
                "comment option replaces the comment in place",
                Some(format!("{ED2}\n{ED1}\n{ED3}\n")),
                ED1.into(),
                spec(|s| s.comment = Some("laptop 2024".into())),
                format!("{ED2}\n{b1} laptop 2024\n{ED3}\n"),
                true,
            ),
            (
                "comment whitespace differences are not a change",
                Some(format!("{b1} a  b\n")),
                format!("{b1} a b"),
                present(),
                format!("{b1} a  b\n"),
                false,
            ),
            (
                "key_options added",
                Some(format!("{ED1}\n")),
                ED1.into(),
                spec(|s| s.key_options = Some(r#"no-pty,from="10.0.0.1""#.into())),
                format!("no-pty,from=\"10.0.0.1\" {ED1}\n"),
                true,
            ),
            (
                "key_options idempotent, also with stray whitespace (ansible.posix#327)",
                Some(format!(
                    "command=\"borg serve --append-only\",restrict {ED1}\n"
                )),
                ED1.into(),
                spec(|s| {
                    s.key_options = Some(r#"command="borg serve --append-only",restrict "#.into())
                }),
                format!("command=\"borg serve --append-only\",restrict {ED1}\n"),
                false,
            ),
            (
                "key_options in another order is not a change",
                Some(format!("no-pty,from=\"1\" {ED1}\n")),
                ED1.into(),
                spec(|s| s.key_options = Some("from=\"1\",no-pty".into())),
                format!("no-pty,from=\"1\" {ED1}\n"),
                false,
            ),
            (
                "empty key_options removes options",
                Some(format!("no-pty {ED1}\n")),
                ED1.into(),
                spec(|s| s.key_options = Some(String::new())),
                format!("{ED1}\n"),
                true,
            ),
            (
                "no key_options: options of the supplied key are used",
                Some(format!("no-pty {ED1}\n")),
                format!("restrict {ED1}"),
                present(),
                format!("restrict {ED1}\n"),
                true,
            ),
            (
                "no key_options and none in the key: existing options removed (as upstream)",
                Some(format!("no-pty {ED1}\n")),
                ED1.into(),
                present(),
                format!("{ED1}\n"),
                true,
            ),
            (
                "duplicates of a supplied key are removed",
                Some(format!("{ED1}\n{ED2}\nno-pty {ED1}\n")),
                ED1.into(),
                present(),
                format!("{ED1}\n{ED2}\n"),
                true,
            ),
            (
                "absent removes every line of the key",
                Some(format!("# c\n{ED1}\n{ED2}\nno-pty {b1}\n")),
                ED1.into(),
                spec(|s| s.state = State::Absent),
                format!("# c\n{ED2}\n"),
                true,
            ),
            (
                "absent ignores options and comment",
                Some(format!("no-pty {b2} other\n")),
                ED2.into(),
                spec(|s| s.state = State::Absent),
                String::new(),
                true,
            ),
            (
                "absent on a missing file",
                None,
                ED1.into(),
                spec(|s| s.state = State::Absent),
                String::new(),
                false,
            ),
            (
                "absent of a key that is not there",
                Some(format!("{ED2}\n")),
                ED1.into(),
                spec(|s| s.state = State::Absent),
                format!("{ED2}\n"),
                false,
            ),
            (
                "exclusive keeps only supplied keys, existing order first",
                Some(format!("# c\n{ED3}\n\n{ED2}\nbogus\n")),
                format!("{ED1}\n{ED2}"),
                spec(|s| s.exclusive = true),
                format!("{ED2}\n{ED1}\n"),
                true,
            ),
            (
                "exclusive with keep_comments keeps # and blank lines",
                Some(format!("# c\n{ED3}\n\n{ED2}\nbogus\n")),
                format!("{ED1}\n{ED2}"),
                spec(|s| {
                    s.exclusive = true;
                    s.keep_comments = true
                }),
                format!("# c\n\n{ED2}\n{ED1}\n"),
                true,
            ),
            (
                "exclusive already satisfied",
                Some(format!("{ED2}\n{ED1}\n")),
                format!("{ED1}\n{ED2}"),
                spec(|s| s.exclusive = true),
                format!("{ED2}\n{ED1}\n"),
                false,
            ),
            (
                "exclusive is ignored with absent (as upstream)",
                Some(format!("{ED2}\n{ED1}\n")),
                ED1.into(),
                spec(|s| {
                    s.exclusive = true;
                    s.state = State::Absent
                }),
                format!("{ED2}\n"),
                true,
            ),
            (
                "all key types",
                None,
                format!("{SK_ED}\n{SK_EC}\n{ED2_CERT}\n{RSA1}\n{EC1}"),
                present(),
                format!("{SK_ED}\n{SK_EC}\n{ED2_CERT}\n{RSA1}\n{EC1}\n"),
                true,
            ),
            (
                "CRLF lines not addressed are kept",
                Some(format!("{ED2}\r\n{ED3}\r\n")),
                ED1.into(),
                present(),
                format!("{ED2}\r\n{ED3}\r\n{ED1}\n"),
                true,
            ),
            (
                "supplied duplicates: the last one wins",
                None,
                format!("{ED1}\n{b1} second"),
                present(),
                format!("{b1} second\n"),
                true,
            ),
        ]
    }

    #[test]
    fn table() {
        for (name, old, supplied, spec, want, changed) in cases() {
            let got = apply_edit(old.as_deref(), &keys(&supplied), &spec)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got.content, want, "{name}");
            assert_eq!(got.changed, changed, "{name}");
            assert!(
                !got.content.lines().any(|l| l.ends_with(' '))
                    || old.is_some_and(|o| o.contains(" \n")),
                "{name}: trailing space"
            );
        }
    }

    #[test]
    fn apply_is_idempotent() {
        for (name, old, supplied, spec, _, _) in cases() {
            let k = keys(&supplied);
            let once = apply_edit(old.as_deref(), &k, &spec).unwrap();
            let twice = apply_edit(Some(&once.content), &k, &spec).unwrap();
            assert_eq!(twice.content, once.content, "{name}");
            assert!(!twice.changed, "{name}: second apply reported a change");
        }
    }

    #[test]
    fn reports_what_changed() {
        let old = format!("{ED2}\nno-pty {ED3}\nbogus line\n");
        let got = apply_edit(
            Some(&old),
            &keys(&format!("{ED1}\n{ED3}")),
            &spec(|s| s.exclusive = true),
        )
        .unwrap();
        let fp = |l: &str| PublicKey::parse_line(l).unwrap().fingerprint();
        assert_eq!(got.added, [fp(ED1)]);
        assert_eq!(got.updated, [fp(ED3)]);
        assert_eq!(got.removed, [fp(ED2)]);
        assert_eq!(got.warnings.len(), 1);
        assert!(
            got.warnings[0].starts_with("line 3: not a valid key"),
            "{:?}",
            got.warnings
        );
        assert_eq!(got.content, format!("{ED3}\n{ED1}\n"));
    }

    #[test]
    fn refusals() {
        let e = apply_edit(Some("x\n"), &[], &spec(|s| s.exclusive = true)).unwrap_err();
        assert!(matches!(e, KeyError::EmptyExclusive));
        let e = apply_edit(
            None,
            &keys(ED1),
            &spec(|s| s.comment = Some("a\nssh-rsa AAAA".into())),
        )
        .unwrap_err();
        assert!(e.to_string().contains("line break"), "{e}");
        let e = apply_edit(
            None,
            &keys(ED1),
            &spec(|s| s.key_options = Some("no pty".into())),
        )
        .unwrap_err();
        assert!(e.to_string().contains("key_options"), "{e}");
        // an empty non-exclusive present is a no-op, not an error
        let got = apply_edit(Some("x\n"), &[], &present()).unwrap();
        assert!(!got.changed);
    }

    #[test]
    fn untouched_lines_are_byte_identical() {
        let old = format!("  # weird  spacing \n{ED2}   c  \n\tno-pty\t{ED3}\nbogus\n\n");
        let got = apply_edit(Some(&old), &keys(ED1), &present()).unwrap();
        assert_eq!(got.content, format!("{old}{ED1}\n"));
    }
}
