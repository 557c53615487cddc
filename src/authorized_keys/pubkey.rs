//! One public key as it appears in an `authorized_keys` line or a `.pub` file:
//! `[options] type base64-blob [comment]`. Parsing validates the blob (it must decode and
//! carry the type string the line names) unless asked to be lenient as
//! `ansible.posix.authorized_key` is ([`KeyCheck`]), computes fingerprints like
//! `ssh-keygen -lf`, and recognizes private key material so it can be refused without being
//! echoed.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};

use super::KeyError;
use super::keytype::{blob_type_for, is_key_type};
use super::options::{KeyOptions, field_len};

/// A parsed public key (with the options and comment of its line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Options before the key type (empty when there are none).
    pub options: KeyOptions,
    /// The key type as written (`ssh-ed25519`, `sk-ssh-ed25519@openssh.com`, ...).
    pub key_type: String,
    /// The base64 blob as written.
    pub blob_b64: String,
    /// The decoded blob: the key's identity. A blob that does not decode (accepted only by
    /// [`KeyCheck::Lenient`]) is identified by its text: `blob` holds those bytes then.
    pub blob: Vec<u8>,
    /// Everything after the blob, trimmed (internal whitespace as written; may be empty).
    pub comment: String,
}

/// How strictly a key is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyCheck {
    /// The blob must be base64 of a key of the type the line names, and option names must be
    /// ones sshd knows (the CLI; the module's `validate_keys`).
    #[default]
    Strict,
    /// As `ansible.posix.authorized_key`: a known key type followed by any blob word; option
    /// names are not checked (the module's default; upstream's own tests use keys such as
    /// `ssh-rsa DATA_BASIC root@testing` and the option `idle-timeout=5m`).
    Lenient,
}

/// Base64 as OpenSSH writes it; padding optional on input.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const B64_NOPAD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_encode_padding(false),
);

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Split off the first whitespace-delimited token.
fn next_token(s: &str) -> (&str, &str) {
    let s = s.trim_start_matches(is_ws);
    match s.find(is_ws) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Decode and check a key blob against its key type.
fn check_blob(key_type: &str, b64: &str) -> Result<Vec<u8>, String> {
    let blob = B64
        .decode(b64)
        .map_err(|e| format!("key data is not valid base64 ({e})"))?;
    let want = blob_type_for(key_type).ok_or_else(|| format!("unknown key type {key_type}"))?;
    let read_string = |at: usize| -> Option<(&[u8], usize)> {
        let len = u32::from_be_bytes(blob.get(at..at + 4)?.try_into().ok()?) as usize;
        let end = at.checked_add(4)?.checked_add(len)?;
        Some((blob.get(at + 4..end)?, end))
    };
    let (embedded, next) = read_string(0).ok_or("key data is truncated")?;
    if embedded != want.as_bytes() {
        return Err(format!(
            "key data is for type {:?}, but the line says {key_type}",
            String::from_utf8_lossy(embedded)
        ));
    }
    if key_type == "ssh-ed25519" {
        match read_string(next) {
            Some((pk, end)) if pk.len() == 32 && end == blob.len() => {}
            _ => return Err("ssh-ed25519 key data has the wrong length".into()),
        }
    }
    Ok(blob)
}

/// Collapse runs of whitespace to one space (how the comment of a key is compared, and how
/// `ansible.posix.authorized_key` writes a comment taken from a supplied key).
pub fn normalize_comment(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `text` holds private key material (PEM/OpenSSH/PuTTY private key headers).
pub fn looks_like_private_key(text: &str) -> bool {
    text.contains("PRIVATE KEY-----")
        || text.contains("PuTTY-User-Key-File-")
        || text.contains("BEGIN SSH2 ENCRYPTED PRIVATE KEY")
}

impl PublicKey {
    /// Parse one line (no line terminator): `[options] type blob [comment]`, strictly.
    pub fn parse_line(line: &str) -> Result<PublicKey, String> {
        Self::parse_line_with(line, KeyCheck::Strict)
    }

    /// Parse one line checking the blob as `check` says.
    pub fn parse_line_with(line: &str, check: KeyCheck) -> Result<PublicKey, String> {
        let line = line.trim_end_matches(['\r', '\n']).trim_matches(is_ws);
        if line.is_empty() {
            return Err("empty line".into());
        }
        // sshd reads lines as C strings: a NUL (or any other control character) would cut or
        // corrupt the entry, so such a key is refused rather than written.
        if let Some(pos) = line.find(|c: char| c.is_control() && c != '\t') {
            let c = line[pos..].chars().next().unwrap_or('\0');
            return Err(format!(
                "key line contains a control character ({:?}) at byte {pos}",
                c
            ));
        }
        let (first, rest) = next_token(line);
        let (options, key_type, rest) = if is_key_type(first) {
            (KeyOptions::default(), first, rest)
        } else {
            let n = field_len(line)?;
            let options = KeyOptions::from_field(&line[..n])?;
            let (key_type, rest) = next_token(&line[n..]);
            if key_type.is_empty() {
                return Err(format!(
                    "no key type after the options (unknown key type {:?}?)",
                    excerpt(first, 80)
                ));
            }
            if !is_key_type(key_type) {
                return Err(format!("unknown key type {:?}", excerpt(key_type, 80)));
            }
            (options, key_type, rest)
        };
        let (blob_b64, rest) = next_token(rest);
        if blob_b64.is_empty() {
            return Err(format!("no key data after the key type {key_type}"));
        }
        let blob = match (check_blob(key_type, blob_b64), check) {
            (Ok(b), _) => b,
            (Err(_), KeyCheck::Lenient) => blob_b64.as_bytes().to_vec(),
            (Err(e), KeyCheck::Strict) => return Err(e),
        };
        Ok(PublicKey {
            options,
            key_type: key_type.to_string(),
            blob_b64: blob_b64.to_string(),
            blob,
            comment: rest.trim().to_string(),
        })
    }

    /// `SHA256:<base64 without padding>` of the blob, as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.blob)
    }

    /// `type blob` (no options, no comment): the key itself.
    pub fn key_text(&self) -> String {
        format!("{} {}", self.key_type, self.blob_b64)
    }

    /// The line for this key: `[options ]type blob[ comment]`, never a trailing space.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if !self.options.is_empty() {
            s.push_str(&self.options.render());
            s.push(' ');
        }
        s.push_str(&self.key_type);
        s.push(' ');
        s.push_str(&self.blob_b64);
        if !self.comment.is_empty() {
            s.push(' ');
            s.push_str(&self.comment);
        }
        s
    }

    /// Same key type, options (as ansible compares them) and comment (whitespace-normalized).
    /// The blob is assumed equal (it is the identity).
    pub fn same_entry(&self, other: &PublicKey) -> bool {
        self.key_type == other.key_type
            && self.options.same_as(&other.options)
            && normalize_comment(&self.comment) == normalize_comment(&other.comment)
    }
}

/// Fingerprint of a raw key blob.
pub fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", B64_NOPAD.encode(Sha256::digest(blob)))
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub(crate) fn excerpt(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

/// Parse a list of public keys: a key string, several newline-separated ones, or the content
/// of a `.pub` / `authorized_keys`-style file. Blank lines and `#` lines are skipped; `\#`
/// becomes `#` (an escape YAML users write). Private key material is refused without
/// echoing any of it. Keys are checked strictly.
pub fn parse_key_list(text: &str) -> Result<Vec<PublicKey>, KeyError> {
    parse_key_list_with(text, KeyCheck::Strict)
}

/// [`parse_key_list`] checking keys as `check` says (option names only when strict).
pub fn parse_key_list_with(text: &str, check: KeyCheck) -> Result<Vec<PublicKey>, KeyError> {
    if looks_like_private_key(text) {
        return Err(KeyError::PrivateKey);
    }
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let unescaped = line.replace(r"\#", "#");
        let key = PublicKey::parse_line_with(&unescaped, check)
            .and_then(|k| match check {
                KeyCheck::Strict => k.options.check_names().map(|()| k),
                KeyCheck::Lenient => Ok(k),
            })
            .map_err(|reason| KeyError::InvalidKey {
                line: i + 1,
                text: excerpt(t, 120),
                reason,
            })?;
        keys.push(key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::*;

    #[test]
    fn fingerprint_matches_ssh_keygen() {
        for (line, fp, comment) in [
            (ED1, ED1_FP, "user1@example"),
            (RSA1, RSA1_FP, "rsa@example"),
            (EC1, EC1_FP, "ec@example"),
        ] {
            let k = PublicKey::parse_line(line).unwrap();
            assert_eq!(k.fingerprint(), fp);
            assert_eq!(k.comment, comment);
            assert_eq!(k.render(), line);
        }
        for line in [ED2_CERT, SK_ED, SK_EC] {
            let k = PublicKey::parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(k.render(), line);
        }
    }

    #[test]
    fn parse_line_table() {
        let blob = ED1.split(' ').nth(1).unwrap();
        let ok: &[(String, &[&str], &str, &str)] = &[
            (format!("ssh-ed25519 {blob}"), &[], "ssh-ed25519", ""),
            (format!("ssh-ed25519 {blob} "), &[], "ssh-ed25519", ""),
            (
                format!("ssh-ed25519\t{blob}\tc  d\r"),
                &[],
                "ssh-ed25519",
                "c  d",
            ),
            (
                format!(r#"from="10.0.0.1",command="echo ssh-rsa \"a b\"" ssh-ed25519 {blob} x"#),
                &[r#"from="10.0.0.1""#, r#"command="echo ssh-rsa \"a b\"""#],
                "ssh-ed25519",
                "x",
            ),
            (
                format!("  no-pty   ssh-ed25519   {blob}   c "),
                &["no-pty"],
                "ssh-ed25519",
                "c",
            ),
        ];
        for (line, opts, ty, comment) in ok {
            let k = PublicKey::parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(k.options.parts(), *opts, "{line}");
            assert_eq!(k.key_type, *ty);
            assert_eq!(k.comment, *comment);
            assert_eq!(k.blob_b64, blob);
        }
        let bad: &[(String, &str)] = &[
            ("ssh-ed25519".into(), "no key data"),
            ("ssh-ed25519 !!!!".into(), "not valid base64"),
            (format!("ssh-rsa {blob}"), "key data is for type"),
            (format!("ssh-ed448 {blob}"), "unknown key type"),
            (format!("no-pty foo {blob}"), "unknown key type"),
            (
                format!(r#"command="x ssh-ed25519 {blob}"#),
                "unterminated quote",
            ),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHw".into(),
                "wrong length",
            ),
            (
                format!("ssh-ed25519-cert-v01@openssh.com {blob}"),
                "key data is for type",
            ),
            (
                SK_ED.replacen(
                    "sk-ssh-ed25519@openssh.com",
                    "sk-ecdsa-sha2-nistp256@openssh.com",
                    1,
                ),
                "key data is for type",
            ),
            ("ssh-ed25519 AAAA".into(), "truncated"),
        ];
        for (line, want) in bad {
            let e = PublicKey::parse_line(line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
    }

    #[test]
    fn key_list_skips_blank_and_comments_and_unescapes() {
        let text = format!("\n# team keys\n{ED1}\n  \n\\#not-a-comment-here {ED1}\r\n");
        let err = parse_key_list(&text).unwrap_err().to_string();
        assert!(
            err.contains("line 5") && err.contains("unknown key option"),
            "{err}"
        );
        let text = format!("\n# team keys\n{ED1}\n\n{ED1} \\#1\n");
        let keys = parse_key_list(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].comment, "user1@example #1");
    }

    #[test]
    fn lenient_accepts_any_blob_word_as_upstream() {
        let k = PublicKey::parse_line_with(
            r#"idle-timeout=5m ssh-dss DATA_UNQUOTED_OPTION root@testing"#,
            KeyCheck::Lenient,
        )
        .unwrap();
        assert_eq!(k.key_type, "ssh-dss");
        assert_eq!(k.blob, b"DATA_UNQUOTED_OPTION");
        assert_eq!(k.options.parts(), ["idle-timeout=5m"]);
        assert_eq!(k.comment, "root@testing");
        // A valid key is identified by its decoded blob either way.
        let strict = PublicKey::parse_line(ED1).unwrap();
        assert_eq!(
            PublicKey::parse_line_with(ED1, KeyCheck::Lenient).unwrap(),
            strict
        );
        // Still refused: unknown key types, a missing blob.
        for bad in ["ssh-ed448 AAAA", "ssh-rsa", "no-pty foo DATA"] {
            assert!(
                PublicKey::parse_line_with(bad, KeyCheck::Lenient).is_err(),
                "{bad}"
            );
        }
        let keys = parse_key_list_with(
            "ssh-rsa DATA_BASIC 1@testing\n# c\nidle-timeout=5m ssh-dss X y",
            KeyCheck::Lenient,
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert!(parse_key_list("ssh-rsa DATA_BASIC 1@testing").is_err());
        assert!(parse_key_list_with("idle-timeout=5m ssh-dss X y", KeyCheck::Strict).is_err());
    }

    #[test]
    fn private_keys_refused_without_echo() {
        let secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQSECRET\n-----END OPENSSH PRIVATE KEY-----\n";
        let e = parse_key_list(secret).unwrap_err().to_string();
        assert!(e.contains("private key"), "{e}");
        assert!(!e.contains("SECRET") && !e.contains("b3Bl"), "{e}");
    }
}
