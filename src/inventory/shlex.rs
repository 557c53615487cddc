//! Python's `shlex.split(s, comments=..., posix=True)`, which Ansible uses for INI host lines
//! and for `ansible_ssh_common_args`/`ansible_ssh_extra_args`.
//!
//! A faithful port of the posix-mode state machine: whitespace splits, `'` and `"` quote,
//! backslash escapes (inside `"` only before `"` and `\`), and with `comments` a `#` ends the
//! line even in the middle of a word.

/// Why a string could not be split (Python's `ValueError` messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShlexError {
    NoClosingQuotation,
    NoEscapedCharacter,
}

impl std::fmt::Display for ShlexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShlexError::NoClosingQuotation => "No closing quotation",
            ShlexError::NoEscapedCharacter => "No escaped character",
        })
    }
}

/// Split `s` into words like `shlex.split(s, comments=comments)`.
pub fn split(s: &str, comments: bool) -> Result<Vec<String>, ShlexError> {
    #[derive(Clone, Copy, PartialEq)]
    enum St {
        Space,
        Word,
        Quote(char),
        Escape(Esc),
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Esc {
        Word,
        Double,
    }
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let special = |c: char| matches!(c, '\'' | '"' | '\\') || (comments && c == '#');
    if !s.contains(special) {
        // Without quotes, escapes or comments every word is taken as written.
        return Ok(s
            .split(is_ws)
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect());
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let mut token = String::new();
    let mut quoted = false;
    let mut state = St::Space;
    let skip_line = |i: &mut usize| {
        while *i < chars.len() && chars[*i] != '\n' {
            *i += 1;
        }
        if *i < chars.len() {
            *i += 1;
        }
    };
    loop {
        let c = chars.get(i).copied();
        i += 1;
        match state {
            St::Space | St::Word => match c {
                None => {
                    if state == St::Word || quoted {
                        out.push(std::mem::take(&mut token));
                    }
                    break;
                }
                Some(c) if is_ws(c) => {
                    if state == St::Word || !token.is_empty() || quoted {
                        out.push(std::mem::take(&mut token));
                        quoted = false;
                    }
                    state = St::Space;
                }
                Some('#') if comments => {
                    skip_line(&mut i);
                    if state == St::Word || !token.is_empty() || quoted {
                        out.push(std::mem::take(&mut token));
                        quoted = false;
                    }
                    state = St::Space;
                }
                Some('\\') => state = St::Escape(Esc::Word),
                Some(q @ ('\'' | '"')) => state = St::Quote(q),
                Some(c) => {
                    token.push(c);
                    state = St::Word;
                }
            },
            St::Quote(q) => {
                quoted = true;
                match c {
                    None => return Err(ShlexError::NoClosingQuotation),
                    Some(c) if c == q => state = St::Word,
                    Some('\\') if q == '"' => state = St::Escape(Esc::Double),
                    Some(c) => token.push(c),
                }
            }
            St::Escape(back) => match c {
                None => return Err(ShlexError::NoEscapedCharacter),
                Some(c) => {
                    if back == Esc::Double && c != '\\' && c != '"' {
                        token.push('\\');
                    }
                    token.push(c);
                    state = match back {
                        Esc::Word => St::Word,
                        Esc::Double => St::Quote('"'),
                    };
                }
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(s: &str) -> Vec<String> {
        split(s, true).unwrap()
    }

    #[test]
    fn splits_like_python() {
        assert_eq!(sp("a b  c"), ["a", "b", "c"]);
        assert_eq!(sp("a#b c"), ["a"]);
        assert_eq!(sp("a \"b#c\" d"), ["a", "b#c", "d"]);
        assert_eq!(sp("x=\"a\\\\b\" y"), ["x=a\\b", "y"]);
        assert_eq!(sp("x=\"a\\nb\""), ["x=a\\nb"]);
        assert_eq!(sp("x='a\\nb'"), ["x=a\\nb"]);
        assert_eq!(sp("a\\ b"), ["a b"]);
        assert_eq!(sp("'' b"), ["", "b"]);
        assert_eq!(sp("h # comment"), ["h"]);
        assert_eq!(sp("   "), Vec::<String>::new());
        assert_eq!(sp(" h1\tx=1\r\n y=[1,2] "), ["h1", "x=1", "y=[1,2]"]);
        assert_eq!(split("a#b", false).unwrap(), ["a#b"]);
        assert_eq!(
            split("-o 'ProxyJump=a b'\n-oX=1", false).unwrap(),
            ["-o", "ProxyJump=a b", "-oX=1"]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(split("a 'b", true), Err(ShlexError::NoClosingQuotation));
        assert_eq!(split("a \\", true), Err(ShlexError::NoEscapedCharacter));
    }
}
