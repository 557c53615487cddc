//! An `authorized_keys` file as a list of lines: keys, comments, blank lines, and lines that
//! do not parse (kept verbatim). Parsing keeps every byte, so rendering an unedited file gives
//! back exactly the input.

use super::KeyError;
use super::pubkey::{KeyCheck, PublicKey};

/// What one line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    Key(PublicKey),
    /// A `#` line (leading whitespace allowed).
    Comment,
    /// Empty or whitespace only.
    Blank,
    /// Not a key sshd would accept; the reason why.
    Invalid(String),
}

/// One line with its terminator (`\n`, `\r\n`, or none for a last line without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the parsed text.
    pub number: usize,
    /// The line exactly as read, terminator included.
    pub text: String,
    pub kind: LineKind,
}

/// A parsed `authorized_keys` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizedKeys {
    pub lines: Vec<Line>,
}

/// Classify one line (terminator may be included), keys checked strictly.
pub fn classify(text: &str) -> LineKind {
    classify_with(text, KeyCheck::Strict)
}

/// Classify one line, keys checked as `check` says.
pub fn classify_with(text: &str, check: KeyCheck) -> LineKind {
    let t = text.trim();
    if t.is_empty() {
        LineKind::Blank
    } else if t.starts_with('#') {
        LineKind::Comment
    } else {
        match PublicKey::parse_line_with(text, check) {
            Ok(k) => LineKind::Key(k),
            Err(reason) => LineKind::Invalid(reason),
        }
    }
}

impl AuthorizedKeys {
    /// Parse text; never fails (lines that are not keys are kept as they are).
    pub fn parse(content: &str) -> AuthorizedKeys {
        Self::parse_with(content, KeyCheck::Strict)
    }

    /// [`Self::parse`] with keys checked as `check` says.
    pub fn parse_with(content: &str, check: KeyCheck) -> AuthorizedKeys {
        let lines = content
            .split_inclusive('\n')
            .enumerate()
            .map(|(i, text)| Line {
                number: i + 1,
                text: text.to_string(),
                kind: classify_with(text, check),
            })
            .collect();
        AuthorizedKeys { lines }
    }

    /// Parse file bytes; content that is not UTF-8 is refused (naming the first bad line) so
    /// it is never rewritten with replacement characters.
    pub fn parse_bytes(bytes: &[u8]) -> Result<AuthorizedKeys, KeyError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Self::parse(s)),
            Err(e) => {
                let line = bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1;
                Err(KeyError::NotUtf8 { line })
            }
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        self.lines.iter().map(|l| l.text.as_str()).collect()
    }

    /// The keys with their line numbers, in file order.
    pub fn keys(&self) -> impl Iterator<Item = (usize, &PublicKey)> {
        self.lines.iter().filter_map(|l| match &l.kind {
            LineKind::Key(k) => Some((l.number, k)),
            _ => None,
        })
    }

    /// Lines that are neither keys, comments nor blank, with the reason.
    pub fn invalid(&self) -> impl Iterator<Item = (usize, &str)> {
        self.lines.iter().filter_map(|l| match &l.kind {
            LineKind::Invalid(r) => Some((l.number, r.as_str())),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::testkeys::*;

    #[test]
    fn round_trip_is_byte_identical() {
        let inputs = [
            String::new(),
            "\n".into(),
            ED1.to_string(),
            format!("{ED1}\n"),
            format!("# c\r\n{ED1}\r\n\n  \nnot a key\n{RSA1}  \n\tno-pty {EC1}"),
            format!("{ED1} \n{}\n", bare(ED2)),
            format!("{SK_ED}\n{SK_EC}\n{ED2_CERT}\n"),
        ];
        for input in inputs {
            let f = AuthorizedKeys::parse(&input);
            assert_eq!(f.render(), input);
        }
    }

    #[test]
    fn classifies_lines() {
        let text = format!("# c\n\n{ED1}\nbogus line\nno-pty {RSA1}\n");
        let f = AuthorizedKeys::parse(&text);
        let kinds: Vec<&str> = f
            .lines
            .iter()
            .map(|l| match l.kind {
                LineKind::Key(_) => "key",
                LineKind::Comment => "comment",
                LineKind::Blank => "blank",
                LineKind::Invalid(_) => "invalid",
            })
            .collect();
        assert_eq!(kinds, ["comment", "blank", "key", "invalid", "key"]);
        let keys: Vec<usize> = f.keys().map(|(n, _)| n).collect();
        assert_eq!(keys, [3, 5]);
        assert_eq!(f.invalid().next().unwrap().0, 4);
    }

    #[test]
    fn non_utf8_names_the_line() {
        let e = AuthorizedKeys::parse_bytes(b"# ok\n# bad \xff\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2 is not valid UTF-8; refusing to edit the file"
        );
    }
}
