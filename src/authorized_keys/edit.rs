//! Editing an `authorized_keys` file: make a set of keys present (optionally exclusively) or
//! absent. Pure: old text and the wanted keys in, new text and what changed out.
//!
//! Rules (see the module docs of [`super`] for how they relate to
//! `ansible.posix.authorized_key`):
//! - a key's identity is its decoded blob; options and comment decide whether its line must
//!   be rewritten;
//! - `present`: the supplied keys are applied one after the other, as upstream does: a key
//!   not in the file is appended after every existing line; a key whose line differs (type,
//!   options, comment) is removed from where it is and appended, so appended keys end up in
//!   the order of their last change; a key supplied twice with different comments is
//!   rewritten twice. With [`EditSpec::keep_position`] a differing line is rewritten in place
//!   instead and a key supplied several times counts once (its last occurrence). Either way,
//!   further lines with the same key are removed (sshd would otherwise still honour their
//!   options);
//! - `absent`: every line with the key is removed;
//! - `exclusive` (with `present`): every other key line is removed, and so are lines that are
//!   not keys, except comment and blank lines when `keep_comments` is set;
//! - lines not addressed are kept byte for byte; `changed` is true only when bytes change.

use std::collections::HashSet;

use super::KeyError;
use super::file::{AuthorizedKeys, LineKind};
use super::options::KeyOptions;
use super::pubkey::{KeyCheck, PublicKey, normalize_comment};

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
    /// Lines of the file are read with this check (`key_options` names are checked only when
    /// strict); the supplied keys were parsed with it too.
    pub check: KeyCheck,
    /// Rewrite a differing key where it is (instead of moving it to the end, as upstream
    /// does) and collapse a key supplied several times to its last occurrence.
    pub keep_position: bool,
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
/// the supplied keys whitespace-normalized; with `keep_position` duplicates are collapsed
/// (the last one wins, where it is).
pub fn desired_keys(keys: &[PublicKey], spec: &EditSpec) -> Result<Vec<PublicKey>, KeyError> {
    let options = match &spec.key_options {
        Some(s) => {
            let o = KeyOptions::parse(s).map_err(KeyError::KeyOptions)?;
            if spec.check == KeyCheck::Strict {
                o.check_names().map_err(KeyError::KeyOptions)?;
            }
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
        if spec.keep_position {
            out.retain(|e| e.blob != d.blob);
        }
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
    let mut file = current
        .map(|c| AuthorizedKeys::parse_with(c, spec.check))
        .unwrap_or_default();
    let mut keep = vec![true; file.lines.len()];
    let mut out = EditOutcome::default();
    let wanted: HashSet<&[u8]> = want.iter().map(|k| k.blob.as_slice()).collect();
    let mut appended: Vec<String> = Vec::new();
    // A fingerprint once per list.
    let note = |list: &mut Vec<String>, k: &PublicKey| {
        let fp = k.fingerprint();
        if !list.contains(&fp) {
            list.push(fp);
        }
    };

    match spec.state {
        State::Present => {
            // Appended keys with the index of the supplied key that last changed them.
            let mut tail: Vec<(usize, PublicKey)> = Vec::new();
            for (rank, d) in want.iter().enumerate() {
                if let Some(pos) = tail.iter().position(|(_, k)| k.blob == d.blob) {
                    // Supplied before in this task (upstream mode only).
                    if !tail[pos].1.same_entry(d) {
                        tail.remove(pos);
                        tail.push((rank, d.clone()));
                        note(&mut out.updated, d);
                    }
                    continue;
                }
                let idxs: Vec<usize> = file
                    .lines
                    .iter()
                    .enumerate()
                    .filter(|(i, l)| {
                        keep[*i] && matches!(&l.kind, LineKind::Key(k) if k.blob == d.blob)
                    })
                    .map(|(i, _)| i)
                    .collect();
                let Some((&first, dups)) = idxs.split_first() else {
                    tail.push((rank, d.clone()));
                    note(&mut out.added, d);
                    continue;
                };
                let first_no = file.lines[first].number;
                for &i in dups {
                    keep[i] = false;
                    out.warnings.push(format!(
                        "line {}: duplicate of line {first_no} for key {} removed",
                        file.lines[i].number,
                        d.fingerprint()
                    ));
                }
                let line = &mut file.lines[first];
                if matches!(&line.kind, LineKind::Key(k) if k.same_entry(d)) {
                    continue;
                }
                note(&mut out.updated, d);
                if spec.keep_position {
                    line.text = format!("{}\n", d.render());
                    line.kind = LineKind::Key(d.clone());
                } else {
                    keep[first] = false;
                    tail.push((rank, d.clone()));
                }
            }
            tail.sort_by_key(|(rank, _)| *rank);
            appended = tail.iter().map(|(_, k)| k.render()).collect();
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
    if !out.changed {
        // A key supplied twice with different comments is rewritten twice (upstream's order)
        // and may end as it was: nothing was done then.
        out.added.clear();
        out.updated.clear();
        out.removed.clear();
    }
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

    /// The CLI's edit: strict keys, differing lines rewritten in place.
    fn spec(f: impl FnOnce(&mut EditSpec)) -> EditSpec {
        let mut s = EditSpec {
            keep_position: true,
            ..EditSpec::default()
        };
        f(&mut s);
        s
    }

    fn present() -> EditSpec {
        spec(|_| {})
    }

    /// The module's default edit: ansible.posix's order and leniency.
    fn upstream(f: impl FnOnce(&mut EditSpec)) -> EditSpec {
        let mut s = EditSpec {
            check: KeyCheck::Lenient,
            ..EditSpec::default()
        };
        f(&mut s);
        s
    }

    fn lenient_keys(text: &str) -> Vec<PublicKey> {
        crate::authorized_keys::parse_key_list_with(text, KeyCheck::Lenient).unwrap()
    }

    /// ansible.posix's own integration target, step by step (the file content after each
    /// task is what upstream's module writes, minus its re-rendering of untouched lines).
    #[test]
    fn upstream_order_and_leniency() {
        let existing = "# I like candy\nssh-rsa somekeydata somekeyalias\n# It is a very pleasant temperature outside today.\nssh-rsa otherkeydata otherkeyalias\n\n";
        let base = "ssh-rsa DATA_BASIC 1@testing\nssh-dss DATA_TRAILING 2@testing foo bar baz\nssh-dss DATA_TRAILING 3@testing foo bar baz\necdsa-sha2-nistp521 ECDSA_DATA 4@testing\n";
        let order2 = "ssh-dss DATA_TRAILING 2@testing foo bar baz\nssh-rsa WHATEVER 2.5@testing\nssh-dss DATA_TRAILING 3@testing foo bar baz\nssh-rsa DATA_BASIC 1@testing\necdsa-sha2-nistp521 ECDSA_DATA 4@testing\n";
        let order = "ssh-dss DATA_TRAILING 2@testing foo bar baz\nssh-dss DATA_TRAILING 3@testing foo bar baz\nssh-rsa DATA_BASIC 1@testing\necdsa-sha2-nistp521 ECDSA_DATA 4@testing\n";
        let run = |old: Option<&str>, keys: &str, s: EditSpec| {
            apply_edit(old, &lenient_keys(keys), &s).unwrap()
        };
        let got = run(Some(existing), order2, upstream(|_| {}));
        assert!(got.changed);
        assert_eq!(
            got.content,
            format!(
                "{existing}ssh-rsa WHATEVER 2.5@testing\nssh-dss DATA_TRAILING 3@testing foo bar baz\nssh-rsa DATA_BASIC 1@testing\necdsa-sha2-nistp521 ECDSA_DATA 4@testing\n"
            )
        );
        let got = run(Some(""), base, upstream(|_| {}));
        let after_base = "ssh-rsa DATA_BASIC 1@testing\nssh-dss DATA_TRAILING 3@testing foo bar baz\necdsa-sha2-nistp521 ECDSA_DATA 4@testing\n";
        assert_eq!(got.content, after_base);
        // The same keys in another order, the duplicate first: upstream rewrites the key twice
        // and moves it to the end, so the file changes.
        let got = run(Some(after_base), order, upstream(|_| {}));
        assert!(got.changed);
        assert_eq!(
            got.content,
            "ssh-rsa DATA_BASIC 1@testing\necdsa-sha2-nistp521 ECDSA_DATA 4@testing\nssh-dss DATA_TRAILING 3@testing foo bar baz\n"
        );
        // keep_position: nothing to do, the last occurrence is already there.
        let got = run(
            Some(after_base),
            order,
            upstream(|s| s.keep_position = true),
        );
        assert!(!got.changed);
        // A rewritten key moves to the end; with keep_position it stays.
        let two = "ssh-rsa A x\nssh-rsa B y\n";
        let got = run(Some(two), "ssh-rsa A z", upstream(|_| {}));
        assert_eq!(got.content, "ssh-rsa B y\nssh-rsa A z\n");
        let got = run(
            Some(two),
            "ssh-rsa A z",
            upstream(|s| s.keep_position = true),
        );
        assert_eq!(got.content, "ssh-rsa A z\nssh-rsa B y\n");
        // Unknown option names are written as given; key_options replaces them.
        let got = run(
            Some(""),
            "idle-timeout=5m ssh-dss DATA_UNQUOTED_OPTION root@testing",
            upstream(|_| {}),
        );
        assert_eq!(
            got.content,
            "idle-timeout=5m ssh-dss DATA_UNQUOTED_OPTION root@testing\n"
        );
        let opts = r#"no-agent-forwarding,no-X11-forwarding,permitopen="10.9.8.1:8080",permitopen="10.9.8.1:9001""#;
        let got = run(
            Some("ssh-dss DATA_BASIC root@testing\n"),
            "ssh-dss DATA_BASIC root@testing",
            upstream(|s| s.key_options = Some(opts.into())),
        );
        assert_eq!(
            got.content,
            format!("{opts} ssh-dss DATA_BASIC root@testing\n")
        );
        assert!(
            apply_edit(
                None,
                &lenient_keys("ssh-dss X y"),
                &spec(|s| s.key_options = Some("idle-timeout=5m".into()))
            )
            .is_err(),
            "strict checks key_options names"
        );
    }

    #[test]
    fn upstream_mode_is_idempotent() {
        for (name, old, supplied, mut spec, _, _) in cases() {
            spec.keep_position = false;
            let k = keys(&supplied);
            let once = apply_edit(old.as_deref(), &k, &spec).unwrap();
            let twice = apply_edit(Some(&once.content), &k, &spec).unwrap();
            assert_eq!(twice.content, once.content, "{name}");
            assert!(!twice.changed, "{name}: second apply reported a change");
        }
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
