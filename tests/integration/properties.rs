//! Property tests (proptest) for the pure authorized_keys model (issue 9):
//! - render∘parse = identity: any text parses into lines that render back byte for byte, and
//!   a key rendered from its parts parses back into the same parts;
//! - apply∘apply = apply: applying the same edit (present / absent / exclusive, with or
//!   without `key_options`, `comment`, `keep_comments`) to its own output changes nothing;
//! - the edit keeps its promises on any file: wanted keys present exactly once (or gone),
//!   lines the edit does not address kept byte for byte and in order, never an empty
//!   exclusive set.
//!
//! Inputs mix valid keys from a small pool (so edits hit existing lines), comments, blank
//! lines, invalid lines, CRLF and a missing final newline. Failures shrink to a minimal file.

use base64::Engine;
use proptest::prelude::*;
use sshfleet::authorized_keys::{
    AuthorizedKeys, EditSpec, KeyCheck, LineKind, PublicKey, State, apply_edit,
};

/// The `i`-th ed25519 key blob of the pool (valid: type string + 32 bytes).
fn ed25519_blob(i: u8) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&11u32.to_be_bytes());
    b.extend_from_slice(b"ssh-ed25519");
    b.extend_from_slice(&32u32.to_be_bytes());
    b.extend_from_slice(&[i.wrapping_mul(37).wrapping_add(1); 32]);
    b
}

fn b64(blob: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(blob)
}

const POOL: u8 = 5;

/// Options sshd accepts, as they may appear in a file or in `key_options`.
fn options() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(String::new()),
        Just("no-pty".to_string()),
        Just(r#"from="127.0.0.1""#.to_string()),
        Just("no-pty,no-agent-forwarding".to_string()),
        Just(r#"command="echo hi, there",no-pty"#.to_string()),
        Just(r#"environment="A=b c""#.to_string()),
        Just(r#"restrict,pty,permitopen="localhost:80""#.to_string()),
    ]
}

/// A key comment: anything on one line, no leading/trailing blanks (parsing trims them).
fn comment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9@._:=,\"#-]{0,6}([ \t]{1,2}[a-zA-Z0-9@._ü€-]{1,6}){0,2}"
        .prop_map(|s| s.trim_matches([' ', '\t']).to_string())
}

/// Whitespace between fields.
fn sep() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(" "), Just(" "), Just("  "), Just("\t"), Just(" \t ")]
}

/// A key line's parts: pool index, options, comment.
#[derive(Debug, Clone)]
struct KeyParts {
    idx: u8,
    options: String,
    comment: String,
}

fn key_parts() -> impl Strategy<Value = KeyParts> {
    (0..POOL, options(), comment()).prop_map(|(idx, options, comment)| KeyParts {
        idx,
        options,
        comment,
    })
}

impl KeyParts {
    fn line(&self, s1: &str, s2: &str, s3: &str) -> String {
        let mut l = String::new();
        if !self.options.is_empty() {
            l.push_str(&self.options);
            l.push_str(s1);
        }
        l.push_str("ssh-ed25519");
        l.push_str(s2);
        l.push_str(&b64(&ed25519_blob(self.idx)));
        if !self.comment.is_empty() {
            l.push_str(s3);
            l.push_str(&self.comment);
        }
        l
    }
    fn key(&self) -> PublicKey {
        PublicKey::parse_line(&self.line(" ", " ", " ")).expect("pool key parses")
    }
}

/// One line of a generated file, without its terminator.
fn file_line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (key_parts(), sep(), sep(), sep(), prop_oneof![Just(""), Just(" "), Just("\t")])
            .prop_map(|(k, a, b, c, lead)| format!("{lead}{}", k.line(a, b, c))),
        1 => "#[ -~]{0,20}".prop_map(|s| s),
        1 => prop_oneof![Just(String::new()), Just("   ".to_string()), Just("\t".to_string())],
        1 => prop_oneof![
            Just("garbage line".to_string()),
            Just("ssh-ed25519 !!!notbase64 c".to_string()),
            Just("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIAAA wrong-type".to_string()),
            Just(r#"from="unterminated ssh-ed25519 AAAA"#.to_string()),
            Just("ssh-ed25519".to_string()),
            "[ -~]{1,30}".prop_map(|s| s),
        ],
    ]
}

/// A whole file: lines with `\n` or `\r\n`, the last one maybe without a terminator.
fn file_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((file_line(), prop::bool::weighted(0.15)), 0..10),
        any::<bool>(),
    )
        .prop_map(|(lines, final_nl)| {
            let n = lines.len();
            let mut s = String::new();
            for (i, (l, crlf)) in lines.into_iter().enumerate() {
                s.push_str(&l);
                if i + 1 < n || final_nl {
                    s.push_str(if crlf { "\r\n" } else { "\n" });
                }
            }
            s
        })
}

fn edit_spec() -> impl Strategy<Value = EditSpec> {
    (
        prop_oneof![3 => Just(State::Present), 1 => Just(State::Absent)],
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.3, options()),
        prop::option::weighted(0.3, comment()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(state, exclusive, keep_comments, key_options, comment, lenient, keep_position)| {
                EditSpec {
                    state,
                    exclusive,
                    keep_comments,
                    key_options,
                    comment,
                    check: if lenient {
                        KeyCheck::Lenient
                    } else {
                        KeyCheck::Strict
                    },
                    keep_position,
                }
            },
        )
}

/// The blobs of the key lines of `text`, in order.
fn blobs(text: &str) -> Vec<Vec<u8>> {
    AuthorizedKeys::parse(text)
        .keys()
        .map(|(_, k)| k.blob.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any text, however broken, renders back byte for byte (nothing lost on a no-op).
    #[test]
    fn properties_render_parse_is_identity_on_any_text(text in "(?s).{0,300}") {
        let f = AuthorizedKeys::parse(&text);
        prop_assert_eq!(f.render(), text.clone());
        // Line numbers are 1..=n and each line but the last ends with '\n'.
        for (i, l) in f.lines.iter().enumerate() {
            prop_assert_eq!(l.number, i + 1);
            if i + 1 < f.lines.len() {
                prop_assert!(l.text.ends_with('\n'));
            }
        }
    }

    /// The same on generated authorized_keys files (keys, comments, CRLF, ...).
    #[test]
    fn properties_render_parse_is_identity_on_key_files(text in file_text()) {
        prop_assert_eq!(AuthorizedKeys::parse(&text).render(), text);
    }

    /// A key built from parts renders to a line that parses back to the same parts, and
    /// rendering is a fixed point: render(parse(render(k))) = render(k).
    #[test]
    fn properties_key_render_parse_round_trip(
        k in key_parts(), a in sep(), b in sep(), c in sep()
    ) {
        let line = k.line(a, b, c);
        let parsed = PublicKey::parse_line(&line).map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
        prop_assert_eq!(&parsed.blob, &ed25519_blob(k.idx));
        prop_assert_eq!(parsed.options.render(), k.options.clone());
        prop_assert_eq!(&parsed.comment, &k.comment);
        let rendered = parsed.render();
        let again = PublicKey::parse_line(&rendered).map_err(|e| TestCaseError::fail(format!("{rendered:?}: {e}")))?;
        prop_assert_eq!(&again, &PublicKey { blob_b64: again.blob_b64.clone(), ..parsed.clone() });
        prop_assert_eq!(again.render(), rendered.clone());
        // The canonical rendering has single spaces and no trailing blank.
        prop_assert!(!rendered.ends_with(' ') && !rendered.ends_with('\t'));
        prop_assert_eq!(rendered, k.line(" ", " ", " "));
    }

    /// apply∘apply = apply, and the second application reports no change.
    #[test]
    fn properties_apply_twice_equals_apply_once(
        text in prop::option::weighted(0.9, file_text()),
        keys in prop::collection::vec(key_parts(), 0..4),
        spec in edit_spec(),
    ) {
        let keys: Vec<PublicKey> = keys.iter().map(KeyParts::key).collect();
        let once = match apply_edit(text.as_deref(), &keys, &spec) {
            Ok(o) => o,
            Err(e) => {
                // The only refusals possible with these inputs: an empty exclusive set.
                prop_assert!(spec.exclusive && spec.state == State::Present && keys.is_empty(), "{e}");
                return Ok(());
            }
        };
        // A key supplied twice with different options/comments is, in upstream's order,
        // rewritten twice per run and may move once more on the second run (as upstream's
        // module does); from then on the file is stable.
        let conflicting = keys.iter().enumerate().any(|(i, a)| {
            keys[i + 1..].iter().any(|b| a.blob == b.blob && !a.same_entry(b))
        });
        let (text, once) = if conflicting && !spec.keep_position {
            let again = apply_edit(Some(&once.content), &keys, &spec).expect("second apply");
            (Some(once.content.clone()), again)
        } else {
            (text, once)
        };
        let twice = apply_edit(Some(&once.content), &keys, &spec).expect("second apply");
        prop_assert_eq!(&twice.content, &once.content);
        prop_assert!(!twice.changed, "second apply changed: {:?}", twice);
        prop_assert!(twice.added.is_empty() && twice.removed.is_empty() && twice.updated.is_empty());
        // `changed` is exactly "bytes differ".
        let before = text.clone().unwrap_or_default();
        prop_assert_eq!(once.changed, once.content != before || (text.is_none() && !once.content.is_empty()));
    }

    /// What each state promises, on any file.
    #[test]
    fn properties_edit_keeps_its_promises(
        text in file_text(),
        keys in prop::collection::vec(key_parts(), 1..4),
        spec in edit_spec(),
    ) {
        let keys: Vec<PublicKey> = keys.iter().map(KeyParts::key).collect();
        let out = apply_edit(Some(&text), &keys, &spec).expect("apply");
        let after = blobs(&out.content);
        let wanted: Vec<Vec<u8>> = keys.iter().map(|k| k.blob.clone()).collect();
        let old = AuthorizedKeys::parse(&text);
        match (spec.state, spec.exclusive) {
            (State::Absent, _) => {
                for w in &wanted {
                    prop_assert!(!after.contains(w), "absent key still there");
                }
                // Every other line is kept byte for byte, in order.
                let kept: String = old.lines.iter().filter(|l| !matches!(&l.kind, LineKind::Key(k) if wanted.contains(&k.blob))).map(|l| l.text.as_str()).collect();
                prop_assert_eq!(&out.content, &kept);
            }
            (State::Present, excl) => {
                for w in &wanted {
                    prop_assert_eq!(after.iter().filter(|b| *b == w).count(), 1, "wanted key not present exactly once");
                }
                if excl {
                    prop_assert!(after.iter().all(|b| wanted.contains(b)), "exclusive left another key");
                    for l in AuthorizedKeys::parse(&out.content).lines {
                        match l.kind {
                            LineKind::Key(_) => {}
                            LineKind::Comment | LineKind::Blank => prop_assert!(spec.keep_comments, "comment kept without keep_comments: {:?}", l.text),
                            LineKind::Invalid(r) => prop_assert!(false, "invalid line kept by exclusive: {:?} ({r})", l.text),
                        }
                    }
                } else {
                    // Lines that are not wanted keys stay, byte for byte, in order.
                    let others = |t: &str| -> Vec<String> {
                        AuthorizedKeys::parse(t).lines.into_iter()
                            .filter(|l| !matches!(&l.kind, LineKind::Key(k) if wanted.contains(&k.blob)))
                            .map(|l| l.text.trim_end_matches(['\r', '\n']).to_string())
                            .collect()
                    };
                    prop_assert_eq!(others(&out.content), others(&text));
                }
            }
        }
    }
}
