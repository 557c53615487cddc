//! Splitting one configuration line into words exactly as OpenSSH's `misc.c` does:
//! [`Cursor::strdelim`] (the keyword and `Match` criteria: splits on blanks, one `=`, and
//! `"`-quotes) and [`argv_split`] (every other keyword's arguments: `"`/`'` quotes,
//! backslash escapes, a word starting with `#` ends the line).

/// OpenSSH's `WHITESPACE`.
pub const WS: &[u8] = b" \t\r\n";

/// A position in a line that `strdelim` consumes word by word (the C `char **s`; `None` is
/// the C `NULL`: nothing left, not even an empty string).
#[derive(Debug, Clone)]
pub struct Cursor {
    buf: Vec<u8>,
    pos: Option<usize>,
}

fn skip_ws(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && WS.contains(&b[p]) {
        p += 1;
    }
    p
}

impl Cursor {
    pub fn new(s: &str) -> Cursor {
        Cursor {
            buf: s.as_bytes().to_vec(),
            pos: Some(0),
        }
    }

    /// What is left (`None` when `strdelim` consumed the end).
    pub fn rest(&self) -> Option<String> {
        self.pos
            .map(|p| String::from_utf8_lossy(&self.buf[p..]).into_owned())
    }

    /// Mark everything consumed (the C `cp = NULL`).
    pub fn consume(&mut self) {
        self.pos = None;
    }

    /// `strdelim()`: the next word, splitting on whitespace or a single `=`; a `"` starts a
    /// quoted part that runs to the next `"`. `None` on an unmatched quote or when nothing
    /// is left.
    pub fn strdelim(&mut self) -> Option<String> {
        let start = self.pos?;
        let tok = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let Some(off) = self.buf[start..]
            .iter()
            .position(|c| WS.contains(c) || *c == b'"' || *c == b'=')
        else {
            self.pos = None;
            return Some(tok(&self.buf[start..]));
        };
        let i = start + off;
        if self.buf[i] == b'"' {
            self.buf.remove(i);
            match self.buf[i..].iter().position(|c| *c == b'"') {
                None => {
                    self.pos = None;
                    None
                }
                Some(q) => {
                    let end = i + q;
                    let t = tok(&self.buf[start..end]);
                    self.pos = Some(skip_ws(&self.buf, end + 1));
                    Some(t)
                }
            }
        } else {
            let wspace = self.buf[i] == b'=';
            let t = tok(&self.buf[start..i]);
            let mut p = skip_ws(&self.buf, i + 1);
            if p < self.buf.len() && self.buf[p] == b'=' && !wspace {
                p = skip_ws(&self.buf, p + 1);
            }
            self.pos = Some(p);
            Some(t)
        }
    }
}

/// An `argv_split` failure: a quote that is never closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidQuotes;

/// `argv_split(s, terminate_on_comment)`: words separated by blanks, `"`/`'` quotes,
/// backslash escapes of `\ " '` (and of a blank outside quotes); other backslashes are
/// kept.
pub fn argv_split(s: &str, terminate_on_comment: bool) -> Result<Vec<String>, InvalidQuotes> {
    let s = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s[i] == b' ' || s[i] == b'\t' {
            i += 1;
            continue;
        }
        if terminate_on_comment && s[i] == b'#' {
            break;
        }
        let mut quote = 0u8;
        let mut arg = Vec::new();
        while i < s.len() {
            let c = s[i];
            if c == b'\\' {
                let n = s.get(i + 1).copied();
                if matches!(n, Some(b'\'') | Some(b'"') | Some(b'\\'))
                    || (quote == 0 && n == Some(b' '))
                {
                    i += 1;
                    arg.push(s[i]);
                } else {
                    arg.push(c);
                }
            } else if quote == 0 && (c == b' ' || c == b'\t') {
                break;
            } else if quote == 0 && (c == b'"' || c == b'\'') {
                quote = c;
            } else if quote != 0 && c == quote {
                quote = 0;
            } else {
                arg.push(c);
            }
            i += 1;
        }
        out.push(String::from_utf8_lossy(&arg).into_owned());
        if i >= s.len() {
            if quote != 0 {
                return Err(InvalidQuotes);
            }
            break;
        }
        i += 1;
    }
    Ok(out)
}

/// A configuration line cut into its lower-cased keyword and the rest (leading blanks
/// skipped), as `process_config_line` does before looking at the keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Blank or comment.
    Empty,
    /// A keyword with nothing after it (an error for every keyword).
    NoArgument(String),
    Keyword {
        keyword: String,
        rest: String,
    },
}

/// Strip trailing blanks (and `\f`), then take the keyword with `strdelim`.
pub fn split_line(line: &str) -> Line {
    let mut b = line.as_bytes();
    if b.is_empty() {
        return Line::Empty;
    }
    // `for (len--; len > 0; len--)`: the first byte is never stripped.
    let mut len = b.len();
    while len > 1 && (WS.contains(&b[len - 1]) || b[len - 1] == b'\x0c') {
        len -= 1;
    }
    b = &b[..len];
    let mut cur = Cursor::new(&String::from_utf8_lossy(b));
    let Some(mut keyword) = cur.strdelim() else {
        return Line::Empty;
    };
    if keyword.is_empty() {
        match cur.strdelim() {
            Some(k) => keyword = k,
            None => return Line::Empty,
        }
    }
    if keyword.is_empty() || keyword.starts_with('\n') || keyword.starts_with('#') {
        return Line::Empty;
    }
    let keyword = keyword.to_ascii_lowercase();
    match cur.rest() {
        Some(r) => {
            let r = r.trim_start_matches([' ', '\t', '\r', '\n']).to_string();
            if r.is_empty() {
                Line::NoArgument(keyword)
            } else {
                Line::Keyword { keyword, rest: r }
            }
        }
        None => Line::NoArgument(keyword),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        let mut c = Cursor::new(s);
        let mut v = Vec::new();
        while let Some(w) = c.strdelim() {
            if w.is_empty() {
                break;
            }
            v.push(w);
        }
        v
    }

    #[test]
    fn strdelim_splits_like_openssh() {
        assert_eq!(words("host=foo"), ["host", "foo"]);
        assert_eq!(words("host = foo bar"), ["host", "foo", "bar"]);
        assert_eq!(
            words("exec \"test -f x\" host y"),
            ["exec", "test -f x", "host", "y"]
        );
        assert_eq!(words("a\"b c\" d"), ["ab c", "d"]);
        let mut c = Cursor::new("\"open");
        assert_eq!(c.strdelim(), None);
    }

    #[test]
    fn argv_split_quotes_escapes_comments() {
        assert_eq!(
            argv_split("a 'b c' \"d e\" f\\ g", true).unwrap(),
            ["a", "b c", "d e", "f g"]
        );
        assert_eq!(argv_split("pi  # comment", true).unwrap(), ["pi"]);
        assert_eq!(argv_split("a#b", true).unwrap(), ["a#b"]);
        assert_eq!(argv_split("x\\y \\\"", false).unwrap(), ["x\\y", "\""]);
        assert_eq!(
            argv_split("FOO=\"bar baz\"", true).unwrap(),
            ["FOO=bar baz"]
        );
        assert!(argv_split("'open", true).is_err());
        assert_eq!(argv_split("", true).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn lines() {
        assert_eq!(split_line("   \t"), Line::Empty);
        assert_eq!(split_line("# c"), Line::Empty);
        assert_eq!(split_line("  User"), Line::NoArgument("user".into()));
        assert_eq!(
            split_line("  HostName=%h.lan   \n"),
            Line::Keyword {
                keyword: "hostname".into(),
                rest: "%h.lan".into()
            }
        );
        assert_eq!(
            split_line("ProxyCommand = ssh -W %h:%p b # c"),
            Line::Keyword {
                keyword: "proxycommand".into(),
                rest: "ssh -W %h:%p b # c".into()
            }
        );
    }
}
