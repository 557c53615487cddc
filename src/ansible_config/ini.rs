//! Python's `configparser.ConfigParser(inline_comment_prefixes=(';',))` as Ansible uses it
//! to read `ansible.cfg`, read back with `get(section, key, raw=True)`.
//!
//! Ported from CPython 3.11's `RawConfigParser._read`: `[section]` headers (the `DEFAULT`
//! section supplies values to every section), `key = value` and `key: value` (first `=` or `:`
//! splits; keys are lower-cased), full-line `#`/`;` comments, inline `;` comments after
//! whitespace, continuation lines indented deeper than their key (joined with `\n`, blank lines
//! kept inside, trailing ones dropped), strict mode (a repeated section or key is an error).
//! Ansible reads values raw: `%(name)s` is **not** interpolated, and `%` is literal.

use std::collections::BTreeMap;

/// One `key = value` of a section, with the line its key is on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub line: usize,
}

/// A parsed file: sections in file order, plus the `DEFAULT` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IniFile {
    sections: Vec<(String, BTreeMap<String, Entry>)>,
    defaults: BTreeMap<String, Entry>,
}

/// Why a file is not valid for configparser (its exception, with the line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    #[error("line {line}: text before the first [section] header: {text:?}")]
    MissingSectionHeader { line: usize, text: String },
    #[error("line {line}: section [{section}] already exists")]
    DuplicateSection { line: usize, section: String },
    #[error("line {line}: option {key:?} in section [{section}] already exists")]
    DuplicateOption {
        line: usize,
        section: String,
        key: String,
    },
    #[error("line {line}: not a `key = value` line: {text:?}")]
    Parsing { line: usize, text: String },
}

impl IniError {
    /// The 1-based line the error is on.
    pub fn line(&self) -> usize {
        match self {
            IniError::MissingSectionHeader { line, .. }
            | IniError::DuplicateSection { line, .. }
            | IniError::DuplicateOption { line, .. }
            | IniError::Parsing { line, .. } => *line,
        }
    }
}

const DEFAULT_SECTION: &str = "DEFAULT";

/// Where the key/value lines being read go.
#[derive(Clone, Copy)]
enum Cur {
    None,
    Defaults,
    Section(usize),
}

impl IniFile {
    /// Parse `text` as `ConfigParser.read_string` does.
    pub fn parse(text: &str) -> Result<IniFile, IniError> {
        let mut f = IniFile::default();
        // Values as lists of lines until the end (configparser joins them at the end).
        let mut raw: Vec<(Cur, String, usize, Vec<String>)> = Vec::new();
        let mut cur = Cur::None;
        let mut cur_name = String::new();
        let mut opt: Option<usize> = None; // index into raw of the option being continued
        let mut indent_level = 0usize;
        let mut seen_sections: Vec<String> = Vec::new();
        let mut seen_opts: Vec<(String, String)> = Vec::new();
        let mut first_error: Option<IniError> = None;

        for (idx, line) in split_lines_keep(text).enumerate() {
            let lineno = idx + 1;
            // Inline `;` comments: a `;` at the start or after whitespace.
            let mut comment_start: Option<usize> = None;
            let chars: Vec<(usize, char)> = line.char_indices().collect();
            for (i, &(b, c)) in chars.iter().enumerate() {
                if c == ';' && (i == 0 || chars[i - 1].1.is_whitespace()) {
                    comment_start = Some(b);
                    break;
                }
            }
            let stripped = line.trim();
            if stripped.starts_with('#') || stripped.starts_with(';') {
                comment_start = Some(0);
            }
            let value = line[..comment_start.unwrap_or(line.len())].trim();
            if value.is_empty() {
                // An empty line inside a value is kept, unless it carried a comment.
                if comment_start.is_none()
                    && !matches!(cur, Cur::None)
                    && let Some(o) = opt
                {
                    raw[o].3.push(String::new());
                }
                continue;
            }
            let cur_indent = line
                .char_indices()
                .find(|(_, c)| !c.is_whitespace())
                .map(|(b, _)| b)
                .unwrap_or(0);
            if !matches!(cur, Cur::None)
                && let Some(o) = opt
                && cur_indent > indent_level
            {
                raw[o].3.push(value.to_string());
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = section_header(value) {
                if header == DEFAULT_SECTION {
                    cur = Cur::Defaults;
                } else if let Some(i) = f.sections.iter().position(|(n, _)| n == header) {
                    if seen_sections.iter().any(|s| s == header) {
                        return Err(IniError::DuplicateSection {
                            line: lineno,
                            section: header.to_string(),
                        });
                    }
                    cur = Cur::Section(i);
                } else {
                    f.sections.push((header.to_string(), BTreeMap::new()));
                    seen_sections.push(header.to_string());
                    cur = Cur::Section(f.sections.len() - 1);
                }
                cur_name = header.to_string();
                opt = None;
                continue;
            }
            if matches!(cur, Cur::None) {
                return Err(IniError::MissingSectionHeader {
                    line: lineno,
                    text: line.trim_end_matches(['\n', '\r']).to_string(),
                });
            }
            // `(?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$`
            match value.find(['=', ':']) {
                Some(pos) => {
                    let key = value[..pos].trim_end();
                    if key.is_empty() && first_error.is_none() {
                        first_error = Some(IniError::Parsing {
                            line: lineno,
                            text: line.trim_end_matches(['\n', '\r']).to_string(),
                        });
                    }
                    let key = key.to_lowercase();
                    let pair = (cur_name.clone(), key.clone());
                    if seen_opts.contains(&pair) {
                        return Err(IniError::DuplicateOption {
                            line: lineno,
                            section: cur_name.clone(),
                            key,
                        });
                    }
                    seen_opts.push(pair);
                    let v = value[pos + 1..].trim().to_string();
                    // A later definition of the same key (after a repeated DEFAULT header is
                    // impossible in strict mode) replaces the earlier one.
                    raw.push((cur, key, lineno, vec![v]));
                    opt = Some(raw.len() - 1);
                }
                None => {
                    if first_error.is_none() {
                        first_error = Some(IniError::Parsing {
                            line: lineno,
                            text: line.trim_end_matches(['\n', '\r']).to_string(),
                        });
                    }
                    // configparser keeps going (and keeps the option being continued).
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        for (cur, key, line, lines) in raw {
            let value = lines.join("\n").trim_end().to_string();
            let entry = Entry { value, line };
            match cur {
                Cur::Defaults => {
                    f.defaults.insert(key, entry);
                }
                Cur::Section(i) => {
                    f.sections[i].1.insert(key, entry);
                }
                Cur::None => {}
            }
        }
        Ok(f)
    }

    /// `parser.get(section, key, raw=True, fallback=None)`: the section's value, else the
    /// `DEFAULT` section's; `None` when the section does not exist.
    pub fn get(&self, section: &str, key: &str) -> Option<&Entry> {
        let key = key.to_lowercase();
        let (_, sect) = self.sections.iter().find(|(n, _)| n == section)?;
        sect.get(&key).or_else(|| self.defaults.get(&key))
    }

    /// Section names in file order (without `DEFAULT`).
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n.as_str())
    }
}

/// `\[(?P<header>.+)\]` matched at the start of the (stripped) line: greedy, so the header
/// runs to the last `]`.
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

/// Lines with their terminators, as iterating a `StringIO` yields them (`\n`, `\r\n`, `\r`).
fn split_lines_keep(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .find(['\n', '\r'])
            .map(|i| {
                if rest[i..].starts_with("\r\n") {
                    i + 2
                } else {
                    i + 1
                }
            })
            .unwrap_or(rest.len());
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(f: &'a IniFile, s: &str, k: &str) -> Option<&'a str> {
        f.get(s, k).map(|e| e.value.as_str())
    }

    // Every expectation below is what CPython 3.11's configparser returns for the same text
    // (checked with target/venv/bin/python).
    #[test]
    fn sections_defaults_comments_continuations() {
        let f = IniFile::parse(
            "[DEFAULT]\nx = 1\n[a] junk\nk = v ;c\n  cont;x\n\n  more\n\n[b]\nK2 : w=z\n",
        )
        .unwrap();
        assert_eq!(f.sections().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(get(&f, "a", "k"), Some("v\ncont;x\n\nmore"));
        assert_eq!(get(&f, "b", "x"), Some("1"));
        assert_eq!(get(&f, "b", "k2"), Some("w=z"));
        assert_eq!(get(&f, "b", "K2"), Some("w=z"));
        assert_eq!(f.get("a", "k").unwrap().line, 4);
        assert_eq!(get(&f, "nosuch", "x"), None);
        assert_eq!(get(&f, "a", "nosuch"), None);
    }

    #[test]
    fn raw_values_no_interpolation() {
        let f = IniFile::parse(
            "[DEFAULT]\nbase = d\n[defaults]\nremote_user = %(base)s_x\np = 100%%\n",
        )
        .unwrap();
        assert_eq!(get(&f, "defaults", "remote_user"), Some("%(base)s_x"));
        assert_eq!(get(&f, "defaults", "p"), Some("100%%"));
    }

    #[test]
    fn comment_forms() {
        let f = IniFile::parse(
            "# top\n; top\n[s]\n  # indented comment\na = 1 ; inline\nb = x;y\nc = ;all comment\nd =\ne: \"q\" # not a comment\n",
        )
        .unwrap();
        assert_eq!(get(&f, "s", "a"), Some("1"));
        assert_eq!(get(&f, "s", "b"), Some("x;y"));
        assert_eq!(get(&f, "s", "c"), Some(""));
        assert_eq!(get(&f, "s", "d"), Some(""));
        assert_eq!(get(&f, "s", "e"), Some("\"q\" # not a comment"));
    }

    #[test]
    fn indented_keys_after_header_and_crlf() {
        let f = IniFile::parse("[s]\r\n  a = 1\r\n  b = 2\r\n    more\r\n").unwrap();
        assert_eq!(get(&f, "s", "a"), Some("1"));
        assert_eq!(get(&f, "s", "b"), Some("2\nmore"));
    }

    #[test]
    fn errors_with_lines() {
        assert_eq!(
            IniFile::parse("x=1\n").unwrap_err(),
            IniError::MissingSectionHeader {
                line: 1,
                text: "x=1".into()
            }
        );
        assert_eq!(IniFile::parse("[a]\nbogus\nfoo\n").unwrap_err().line(), 2);
        assert_eq!(
            IniFile::parse("[a]\nk=1\nK=2\n").unwrap_err(),
            IniError::DuplicateOption {
                line: 3,
                section: "a".into(),
                key: "k".into()
            }
        );
        assert_eq!(
            IniFile::parse("[defaults]\na=1\n[x]\n[defaults]\n").unwrap_err(),
            IniError::DuplicateSection {
                line: 4,
                section: "defaults".into()
            }
        );
        assert_eq!(IniFile::parse("[a]\n=v\n").unwrap_err().line(), 2);
        // DEFAULT may be repeated; its keys may not.
        assert!(IniFile::parse("[DEFAULT]\na=1\n[DEFAULT]\nb=2\n").is_ok());
        assert!(IniFile::parse("[DEFAULT]\na=1\n[DEFAULT]\na=2\n").is_err());
    }
}
