//! Python `ast.literal_eval` as Ansible's INI plugin applies it to variable values.
//!
//! The INI plugin runs every `key=value` through `ast.literal_eval` and keeps the raw string
//! when that raises `ValueError`/`SyntaxError`. This module parses the same literal subset:
//! ints (`1_000`, `0x1f`, `0o17`, `0b101`), floats, complex numbers (rendered with `str()`, as
//! Ansible converts them), strings with prefixes and escapes (adjacent strings concatenated),
//! bytes (decoded as UTF-8), `True`/`False`/`None`, `...` (becomes the string `"..."`), lists,
//! tuples (also bare `1, 2`), sets, dicts, unary `+`/`-` on numbers, `a+bj`, `#` comments.
//! [`literal_eval`] returns `None` where Python would raise, and the caller keeps the string.

use serde_json::{Map, Number, Value};

/// Evaluate `src` like `ast.literal_eval`; `None` when Python would raise.
pub fn literal_eval(src: &str) -> Option<Value> {
    let src = src.trim_start_matches([' ', '\t']);
    match quick_eval(src) {
        Quick::Literal(v) => return Some(v),
        Quick::NotLiteral => return None,
        Quick::Undecided => {}
    }
    let toks = tokenize(src)?;
    let mut p = Parser { toks, pos: 0 };
    let lit = p.expr_list_top()?;
    if p.pos != p.toks.len() {
        return None;
    }
    lit.into_value()
}

/// The value an INI `key=value` gets: the literal, else the string itself.
pub fn ini_value(src: &str) -> Value {
    literal_eval(src).unwrap_or_else(|| Value::String(src.to_string()))
}

/// What [`quick_eval`] could tell without tokenizing.
#[derive(Debug, PartialEq)]
enum Quick {
    Literal(Value),
    NotLiteral,
    Undecided,
}

/// The shapes most inventory values have, decided without the tokenizer: a plain decimal
/// integer (no sign, no leading zero, fits an `i64`), or a bare ASCII word, which only for
/// `True`/`False`/`None` is a literal (any other name or keyword raises in Python).
fn quick_eval(src: &str) -> Quick {
    let b = src.as_bytes();
    match b.first() {
        Some(b'1'..=b'9') if b.iter().all(u8::is_ascii_digit) => src
            .parse::<i64>()
            .map_or(Quick::Undecided, |n| Quick::Literal(n.into())),
        Some(c)
            if (c.is_ascii_alphabetic() || *c == b'_')
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
        {
            match src {
                "True" => Quick::Literal(Value::Bool(true)),
                "False" => Quick::Literal(Value::Bool(false)),
                "None" => Quick::Literal(Value::Null),
                _ => Quick::NotLiteral,
            }
        }
        _ => Quick::Undecided,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(IntLit),
    Float(f64),
    Imag(f64),
    Str(Vec<u8>, bool), // content, is_bytes
    FStr,
    Name(String),
    Op(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
enum IntLit {
    Small(i128),
    /// Too large for i128: the decimal digits of the magnitude (kept exact, as Python does).
    Big {
        neg: bool,
        dec: String,
    },
}

/// Literal values before conversion (Python semantics: tuples, sets, complex).
#[derive(Debug, Clone)]
enum Lit {
    Int(IntLit),
    Float(f64),
    Complex(f64, f64),
    Str(String),
    Bytes(Vec<u8>),
    Bool(bool),
    None,
    Ellipsis,
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
    /// Set literal: becomes a list.
    Set(Vec<Lit>),
}

impl Lit {
    fn into_value(self) -> Option<Value> {
        Some(match self {
            Lit::Int(i) => int_value(i),
            Lit::Float(f) => float_value(f),
            Lit::Complex(re, im) => Value::String(complex_str(re, im)),
            Lit::Str(s) => Value::String(s),
            Lit::Bytes(b) => Value::String(String::from_utf8(b).ok()?),
            Lit::Bool(b) => Value::Bool(b),
            Lit::None => Value::Null,
            Lit::Ellipsis => Value::String("...".into()),
            Lit::List(v) | Lit::Set(v) => Value::Array(
                v.into_iter()
                    .map(Lit::into_value)
                    .collect::<Option<Vec<_>>>()?,
            ),
            Lit::Dict(kv) => {
                let mut m = Map::new();
                for (k, v) in kv {
                    let key = match k {
                        Lit::Str(s) => s,
                        Lit::Bytes(b) => String::from_utf8(b).ok()?,
                        Lit::Int(i) => json_key(&int_value(i)),
                        Lit::Float(f) => py_float_repr(f),
                        Lit::Bool(b) => (if b { "true" } else { "false" }).to_string(),
                        Lit::None => "null".to_string(),
                        // Unhashable or exotic keys: Python raises TypeError, which Ansible
                        // does not catch; treat as "not a literal".
                        _ => return None,
                    };
                    m.insert(key, v.into_value()?);
                }
                Value::Object(m)
            }
        })
    }
}

fn json_key(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn int_value(i: IntLit) -> Value {
    match i {
        IntLit::Small(n) => {
            if let Ok(v) = i64::try_from(n) {
                Value::Number(v.into())
            } else if let Ok(v) = u64::try_from(n) {
                Value::Number(v.into())
            } else {
                super::bigint::number(n < 0, &n.unsigned_abs().to_string())
                    .map(Value::Number)
                    .unwrap_or_else(|| float_value(n as f64))
            }
        }
        IntLit::Big { neg, dec } => super::bigint::number(neg, &dec)
            .map(Value::Number)
            .unwrap_or_else(|| float_value(big_f64(neg, &dec))),
    }
}

/// The nearest float to a big integer (for complex literals).
fn big_f64(neg: bool, dec: &str) -> f64 {
    let f = dec.parse::<f64>().unwrap_or(f64::INFINITY);
    if neg { -f } else { f }
}

fn float_value(f: f64) -> Value {
    Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(py_float_repr(f)))
}

/// Python's `repr(float)` (shortest round-trip form).
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{f:?}");
    // Rust Debug gives e.g. "1e16" / "1.5e-7"; Python gives "1e+16" / "1.5e-07".
    if let Some((mant, exp)) = s.split_once('e') {
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    let a = f.abs();
    if a >= 1e16 {
        // Python switches to exponent notation at 1e16.
        let e = format!("{f:e}");
        if let Some((mant, exp)) = e.split_once('e') {
            return format!("{mant}e+{exp:0>2}");
        }
    }
    s
}

/// `str(complex(re, im))` as Python prints it.
fn complex_str(re: f64, im: f64) -> String {
    fn part(f: f64) -> String {
        let s = py_float_repr(f);
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    }
    if re == 0.0 && re.is_sign_positive() {
        format!("{}j", part(im))
    } else {
        let ims = part(im);
        let sign = if ims.starts_with('-') { "" } else { "+" };
        format!("({}{}{}j)", part(re), sign, ims)
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------

fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let b: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let mut depth = 0i32;
    while i < b.len() {
        let c = b[i];
        if c == ' ' || c == '\t' || c == '\x0c' {
            i += 1;
            continue;
        }
        if c == '\\' && b.get(i + 1) == Some(&'\n') {
            i += 2;
            continue;
        }
        if c == '\n' || c == '\r' {
            // Newlines are only insignificant inside brackets; a second logical line is a
            // syntax error in eval mode.
            if depth > 0 {
                i += 1;
                continue;
            }
            // Trailing blank lines/comments are fine.
            let rest: String = b[i..].iter().collect();
            if rest
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            {
                break;
            }
            return None;
        }
        if c == '#' {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let (tok, n) = number(&b[i..])?;
            out.push(tok);
            i += n;
            continue;
        }
        if c == '_' || c.is_alphabetic() {
            let start = i;
            while i < b.len() && (b[i] == '_' || b[i].is_alphanumeric()) {
                i += 1;
            }
            let word: String = b[start..i].iter().collect();
            if i < b.len() && (b[i] == '\'' || b[i] == '"') && word.len() <= 2 {
                let w = word.to_ascii_lowercase();
                let (raw, bytes, fstr) = match w.as_str() {
                    "r" => (true, false, false),
                    "u" => (false, false, false),
                    "b" => (false, true, false),
                    "br" | "rb" => (true, true, false),
                    "f" => (false, false, true),
                    "fr" | "rf" => (true, false, true),
                    _ => return None,
                };
                let (s, n) = string(&b[i..], raw, bytes)?;
                i += n;
                out.push(if fstr { Tok::FStr } else { Tok::Str(s, bytes) });
                continue;
            }
            out.push(Tok::Name(word));
            continue;
        }
        if c == '\'' || c == '"' {
            let (s, n) = string(&b[i..], false, false)?;
            i += n;
            out.push(Tok::Str(s, false));
            continue;
        }
        if c == '.' && b.get(i + 1) == Some(&'.') && b.get(i + 2) == Some(&'.') {
            out.push(Tok::Op("..."));
            i += 3;
            continue;
        }
        let op: &'static str = match c {
            '(' => "(",
            ')' => ")",
            '[' => "[",
            ']' => "]",
            '{' => "{",
            '}' => "}",
            ',' => ",",
            ':' => ":",
            '+' => "+",
            '-' => "-",
            // Any other operator character can only make an expression that is not a literal
            // (ValueError) or a syntax error: either way the raw string is kept.
            _ => return None,
        };
        match op {
            // Python's parser gives up on deep nesting ("too many nested parentheses").
            "(" | "[" | "{" if depth >= 200 => return None,
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return None;
        }
        out.push(Tok::Op(op));
        i += 1;
    }
    if depth != 0 {
        return None;
    }
    Some(out)
}

/// Digits with single underscores between them; returns (digits without '_', consumed).
fn digitpart(b: &[char], ok: impl Fn(char) -> bool) -> Option<(String, usize)> {
    let mut i = 0;
    let mut s = String::new();
    if !b.first().is_some_and(|&c| ok(c)) {
        return None;
    }
    while i < b.len() {
        if ok(b[i]) {
            s.push(b[i]);
            i += 1;
        } else if b[i] == '_' && b.get(i + 1).is_some_and(|&c| ok(c)) {
            i += 1;
        } else {
            break;
        }
    }
    Some((s, i))
}

fn number(b: &[char]) -> Option<(Tok, usize)> {
    let after_ok = |i: usize| -> bool {
        // A number may not run into a name character ("1abc" is a syntax error).
        !b.get(i)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
    };
    if b[0] == '0' && matches!(b.get(1), Some('x' | 'X' | 'o' | 'O' | 'b' | 'B')) {
        let radix = match b[1] {
            'x' | 'X' => 16,
            'o' | 'O' => 8,
            _ => 2,
        };
        let mut i = 2;
        if b.get(i) == Some(&'_') {
            i += 1;
        }
        let (digits, n) = digitpart(&b[i..], |c| c.is_digit(radix))?;
        i += n;
        if !after_ok(i) {
            return None;
        }
        let v = match i128::from_str_radix(&digits, radix) {
            Ok(v) => IntLit::Small(v),
            Err(_) => IntLit::Big {
                neg: false,
                dec: super::bigint::to_decimal(&digits, radix)?,
            },
        };
        return Some((Tok::Int(v), i));
    }
    let mut i = 0;
    let mut intpart = String::new();
    if b[0] != '.' {
        let (d, n) = digitpart(b, |c| c.is_ascii_digit())?;
        intpart = d;
        i = n;
    }
    let mut is_float = false;
    let mut frac = String::new();
    if b.get(i) == Some(&'.') {
        is_float = true;
        i += 1;
        if b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            let (d, n) = digitpart(&b[i..], |c| c.is_ascii_digit())?;
            frac = d;
            i += n;
        }
    }
    let mut exp = String::new();
    if matches!(b.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        let mut sign = "";
        if matches!(b.get(j), Some('+' | '-')) {
            sign = if b[j] == '-' { "-" } else { "" };
            j += 1;
        }
        if let Some((d, n)) = digitpart(&b[j..], |c| c.is_ascii_digit()) {
            exp = format!("e{sign}{d}");
            is_float = true;
            i = j + n;
        } else {
            return None;
        }
    }
    let imag = matches!(b.get(i), Some('j' | 'J'));
    if imag {
        i += 1;
    }
    if !after_ok(i) {
        return None;
    }
    if is_float || imag {
        let text = format!(
            "{}.{}{}",
            if intpart.is_empty() { "0" } else { &intpart },
            if frac.is_empty() { "0" } else { &frac },
            exp
        );
        let f: f64 = text.parse().ok()?;
        return Some((if imag { Tok::Imag(f) } else { Tok::Float(f) }, i));
    }
    // Decimal integers may not have leading zeros (except all zeros).
    if intpart.len() > 1 && intpart.starts_with('0') && intpart.chars().any(|c| c != '0') {
        return None;
    }
    let v = match intpart.parse::<i128>() {
        Ok(v) => IntLit::Small(v),
        Err(_) => IntLit::Big {
            neg: false,
            dec: super::bigint::to_decimal(&intpart, 10)?,
        },
    };
    Some((Tok::Int(v), i))
}

/// A quoted string starting at `b[0]`; returns (bytes of the value, consumed).
fn string(b: &[char], raw: bool, bytes: bool) -> Option<(Vec<u8>, usize)> {
    let q = b[0];
    let triple = b.get(1) == Some(&q) && b.get(2) == Some(&q);
    let mut i = if triple { 3 } else { 1 };
    let mut out = String::new();
    let mut raw_bytes: Vec<u8> = Vec::new(); // for \x escapes in bytes literals
    let push = |out: &mut String, raw_bytes: &mut Vec<u8>, c: char| {
        if bytes {
            let mut buf = [0u8; 4];
            raw_bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        } else {
            out.push(c);
        }
    };
    loop {
        let c = *b.get(i)?;
        if c == q {
            if !triple {
                i += 1;
                break;
            }
            if b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q) {
                i += 3;
                break;
            }
            push(&mut out, &mut raw_bytes, c);
            i += 1;
            continue;
        }
        if (c == '\n' || c == '\r') && !triple {
            return None;
        }
        if bytes && !c.is_ascii() {
            return None; // bytes can only contain ASCII literal characters
        }
        if c != '\\' {
            push(&mut out, &mut raw_bytes, c);
            i += 1;
            continue;
        }
        let n = *b.get(i + 1)?;
        if raw {
            push(&mut out, &mut raw_bytes, '\\');
            push(&mut out, &mut raw_bytes, n);
            i += 2;
            continue;
        }
        i += 2;
        let simple = match n {
            '\n' => Some(None),
            '\\' => Some(Some('\\')),
            '\'' => Some(Some('\'')),
            '"' => Some(Some('"')),
            'a' => Some(Some('\x07')),
            'b' => Some(Some('\x08')),
            'f' => Some(Some('\x0c')),
            'n' => Some(Some('\n')),
            'r' => Some(Some('\r')),
            't' => Some(Some('\t')),
            'v' => Some(Some('\x0b')),
            _ => None,
        };
        if let Some(s) = simple {
            if let Some(ch) = s {
                push(&mut out, &mut raw_bytes, ch);
            }
            continue;
        }
        match n {
            '0'..='7' => {
                let mut v = n.to_digit(8)?;
                let mut k = 0;
                while k < 2 && b.get(i).is_some_and(|c| c.is_digit(8)) {
                    v = v * 8 + b[i].to_digit(8)?;
                    i += 1;
                    k += 1;
                }
                if bytes {
                    raw_bytes.push((v & 0xff) as u8);
                } else {
                    out.push(char::from_u32(v)?);
                }
            }
            'x' => {
                let h: String = b.get(i..i + 2)?.iter().collect();
                let v = u32::from_str_radix(&h, 16).ok()?;
                if !h.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                i += 2;
                if bytes {
                    raw_bytes.push(v as u8);
                } else {
                    out.push(char::from_u32(v)?);
                }
            }
            'u' | 'U' if !bytes => {
                let len = if n == 'u' { 4 } else { 8 };
                let h: String = b.get(i..i + len)?.iter().collect();
                if !h.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
                i += len;
            }
            // \N{NAME} needs the Unicode name database: treat as not-a-literal.
            'N' if !bytes => return None,
            _ => {
                // Unknown escape: kept verbatim (Python warns, Ansible silences the warning).
                push(&mut out, &mut raw_bytes, '\\');
                push(&mut out, &mut raw_bytes, n);
            }
        }
    }
    if bytes {
        Some((raw_bytes, i))
    } else {
        Some((out.into_bytes(), i))
    }
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }
    fn eat(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Top level: `a` or a bare tuple `a, b,`.
    fn expr_list_top(&mut self) -> Option<Lit> {
        let first = self.expr()?;
        if !self.is_op(",") {
            return Some(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            if self.peek().is_none() {
                break;
            }
            items.push(self.expr()?);
        }
        Some(Lit::List(items))
    }

    /// `signed_num (+|-) complex` or a single atom (with unary sign).
    fn expr(&mut self) -> Option<Lit> {
        let left = self.unary()?;
        if self.is_op("+") || self.is_op("-") {
            let neg = self.is_op("-");
            self.pos += 1;
            let right = self.unary_raw()?;
            // Only `real (+|-) imaginary` is a literal.
            let (re, lim) = match left {
                Lit::Int(IntLit::Small(n)) => (n as f64, 0.0),
                Lit::Int(IntLit::Big { neg, dec }) => (big_f64(neg, &dec), 0.0),
                Lit::Float(f) => (f, 0.0),
                _ => return None,
            };
            let im = match right {
                Lit::Complex(0.0, im) => im,
                _ => return None,
            };
            let im = if neg { lim - im } else { lim + im };
            if self.is_op("+") || self.is_op("-") {
                return None;
            }
            return Some(Lit::Complex(re, im));
        }
        Some(left)
    }

    /// Unary sign applied to a number; the operand must be a plain number literal.
    fn unary(&mut self) -> Option<Lit> {
        if self.is_op("+") || self.is_op("-") {
            let neg = self.is_op("-");
            self.pos += 1;
            let v = self.unary_raw()?;
            return Some(match (v, neg) {
                (v, false) => v,
                (Lit::Int(IntLit::Small(n)), true) => Lit::Int(IntLit::Small(-n)),
                (Lit::Int(IntLit::Big { neg, dec }), true) => {
                    Lit::Int(IntLit::Big { neg: !neg, dec })
                }
                (Lit::Float(f), true) => Lit::Float(-f),
                (Lit::Complex(re, im), true) => Lit::Complex(-re, -im),
                _ => return None,
            });
        }
        self.atom()
    }

    /// A number literal only (operand of a sign or of `+ 1j`).
    fn unary_raw(&mut self) -> Option<Lit> {
        match self.peek()?.clone() {
            Tok::Int(i) => {
                self.pos += 1;
                Some(Lit::Int(i))
            }
            Tok::Float(f) => {
                self.pos += 1;
                Some(Lit::Float(f))
            }
            Tok::Imag(f) => {
                self.pos += 1;
                Some(Lit::Complex(0.0, f))
            }
            // `-(1)` and `--1` parse in Python but are not literal_eval literals
            // (UnaryOp over a non-Constant): ValueError.
            _ => None,
        }
    }

    fn atom(&mut self) -> Option<Lit> {
        let t = self.peek()?.clone();
        self.pos += 1;
        match t {
            Tok::Int(i) => Some(Lit::Int(i)),
            Tok::Float(f) => Some(Lit::Float(f)),
            Tok::Imag(f) => Some(Lit::Complex(0.0, f)),
            Tok::FStr => None,
            Tok::Str(first, is_bytes) => {
                // Adjacent string literals concatenate; bytes and str cannot mix.
                let mut acc = first;
                while let Some(Tok::Str(more, b)) = self.peek().cloned() {
                    if b != is_bytes {
                        return None;
                    }
                    acc.extend(more);
                    self.pos += 1;
                }
                if matches!(self.peek(), Some(Tok::FStr)) {
                    return None;
                }
                if is_bytes {
                    Some(Lit::Bytes(acc))
                } else {
                    Some(Lit::Str(String::from_utf8(acc).ok()?))
                }
            }
            Tok::Name(n) => match n.as_str() {
                "True" => Some(Lit::Bool(true)),
                "False" => Some(Lit::Bool(false)),
                "None" => Some(Lit::None),
                "set" if self.is_op("(") => {
                    self.pos += 1;
                    if self.eat(")") {
                        Some(Lit::Set(Vec::new()))
                    } else {
                        None
                    }
                }
                _ => None,
            },
            Tok::Op("...") => Some(Lit::Ellipsis),
            Tok::Op("(") => {
                if self.eat(")") {
                    return Some(Lit::List(Vec::new()));
                }
                let first = self.expr()?;
                if self.eat(")") {
                    return Some(first);
                }
                let mut items = vec![first];
                while self.eat(",") {
                    if self.is_op(")") {
                        break;
                    }
                    items.push(self.expr()?);
                }
                if !self.eat(")") {
                    return None;
                }
                Some(Lit::List(items))
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                while !self.is_op("]") {
                    items.push(self.expr()?);
                    if !self.eat(",") {
                        break;
                    }
                }
                if !self.eat("]") {
                    return None;
                }
                Some(Lit::List(items))
            }
            Tok::Op("{") => {
                if self.eat("}") {
                    return Some(Lit::Dict(Vec::new()));
                }
                let first = self.expr()?;
                if self.eat(":") {
                    let mut kv = vec![(first, self.expr()?)];
                    while self.eat(",") {
                        if self.is_op("}") {
                            break;
                        }
                        let k = self.expr()?;
                        if !self.eat(":") {
                            return None;
                        }
                        kv.push((k, self.expr()?));
                    }
                    if !self.eat("}") {
                        return None;
                    }
                    // Later duplicate keys win, at the first key's position (Python dict).
                    let mut out: Vec<(Lit, Lit)> = Vec::new();
                    for (k, v) in kv {
                        let key = lit_key(&k);
                        if let Some(slot) = out
                            .iter_mut()
                            .find(|(ek, _)| key.is_some() && lit_key(ek) == key)
                        {
                            slot.1 = v;
                        } else {
                            out.push((k, v));
                        }
                    }
                    return Some(Lit::Dict(out));
                }
                let mut items = vec![first];
                while self.eat(",") {
                    if self.is_op("}") {
                        break;
                    }
                    items.push(self.expr()?);
                }
                if !self.eat("}") {
                    return None;
                }
                let mut seen: Vec<Option<String>> = Vec::new();
                let mut uniq = Vec::new();
                for it in items {
                    let k = lit_key(&it);
                    if k.is_some() && seen.contains(&k) {
                        continue;
                    }
                    seen.push(k);
                    uniq.push(it);
                }
                Some(Lit::Set(uniq))
            }
            _ => None,
        }
    }
}

/// A comparable identity for dict keys / set members (approximating Python hashing equality).
fn lit_key(l: &Lit) -> Option<String> {
    Some(match l {
        Lit::Str(s) => format!("s:{s}"),
        Lit::Bytes(b) => format!("b:{b:?}"),
        Lit::Int(IntLit::Small(n)) => format!("n:{n}"),
        Lit::Bool(b) => format!("n:{}", *b as i32),
        Lit::Float(f) if f.fract() == 0.0 && f.abs() < 1e18 => format!("n:{}", *f as i128),
        Lit::Float(f) => format!("f:{f}"),
        Lit::None => "none".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(s: &str) -> Value {
        ini_value(s)
    }

    #[test]
    fn quick_path_agrees_with_the_tokenizer() {
        let full = |s: &str| {
            let mut p = Parser {
                toks: tokenize(s)?,
                pos: 0,
            };
            let lit = p.expr_list_top()?;
            (p.pos == p.toks.len()).then_some(())?;
            lit.into_value()
        };
        for s in [
            "1",
            "42",
            "9223372036854775807",
            "True",
            "False",
            "None",
            "r04",
            "_x",
            "if",
            "lambda",
            "web01",
            "set",
            "x_1",
            "Truex",
        ] {
            assert_ne!(quick_eval(s), Quick::Undecided, "{s}");
            assert_eq!(literal_eval(s), full(s), "{s}");
        }
        for s in [
            "0",
            "00",
            "007",
            "1_000",
            "9223372036854775808",
            "1.5",
            "10.0.0.4",
            "1e3",
            "-1",
            "'a'",
            "r'a'",
            "4 # c",
            "4 ",
            "",
            "é",
            "[1]",
        ] {
            assert_eq!(quick_eval(s), Quick::Undecided, "{s}");
        }
        assert_eq!(ev("9223372036854775808"), json!(9223372036854775808u64));
        assert_eq!(ev("r04"), json!("r04"));
        assert_eq!(ev("None"), json!(null));
    }

    #[test]
    fn numbers() {
        assert_eq!(ev("1"), json!(1));
        assert_eq!(ev("-1"), json!(-1));
        assert_eq!(ev("+7"), json!(7));
        assert_eq!(ev("1_000"), json!(1000));
        assert_eq!(ev("0x1f"), json!(31));
        assert_eq!(ev("0o17"), json!(15));
        assert_eq!(ev("0b101"), json!(5));
        assert_eq!(ev("00"), json!(0));
        assert_eq!(ev("1.5"), json!(1.5));
        assert_eq!(ev("1."), json!(1.0));
        assert_eq!(ev(".5"), json!(0.5));
        assert_eq!(ev("1e3"), json!(1000.0));
        // Not literals: kept as strings.
        assert_eq!(ev("007"), json!("007"));
        assert_eq!(ev("1_"), json!("1_"));
        assert_eq!(ev("1abc"), json!("1abc"));
        assert_eq!(ev("1.2.3"), json!("1.2.3"));
        assert_eq!(ev("10.0.0.1"), json!("10.0.0.1"));
        assert_eq!(ev("inf"), json!("inf"));
    }

    #[test]
    fn complex_numbers_become_strings() {
        assert_eq!(ev("1j"), json!("1j"));
        assert_eq!(ev("1+2j"), json!("(1+2j)"));
        assert_eq!(ev("1.5-2j"), json!("(1.5-2j)"));
        assert_eq!(ev("-1j"), json!("(-0-1j)"));
    }

    #[test]
    fn constants_and_strings() {
        assert_eq!(ev("True"), json!(true));
        assert_eq!(ev("False"), json!(false));
        assert_eq!(ev("None"), json!(null));
        assert_eq!(ev("true"), json!("true"));
        assert_eq!(ev("yes"), json!("yes"));
        assert_eq!(ev("..."), json!("..."));
        assert_eq!(ev("'a b'"), json!("a b"));
        assert_eq!(ev("\"a\\nb\""), json!("a\nb"));
        assert_eq!(ev("r'a\\nb'"), json!("a\\nb"));
        assert_eq!(ev("'a' 'b'"), json!("ab"));
        assert_eq!(ev("b'abc'"), json!("abc"));
        assert_eq!(ev("'\\x41\\u00e9'"), json!("Aé"));
        assert_eq!(ev("'\\q'"), json!("\\q"));
        assert_eq!(ev("f'x'"), json!("f'x'"));
        assert_eq!(ev("'unterminated"), json!("'unterminated"));
        assert_eq!(ev(""), json!(""));
        assert_eq!(ev("hello world"), json!("hello world"));
        assert_eq!(ev("1 # comment"), json!(1));
        assert_eq!(ev("a # comment"), json!("a # comment"));
    }

    #[test]
    fn containers() {
        assert_eq!(ev("[1, 'a', [True]]"), json!([1, "a", [true]]));
        assert_eq!(ev("(1,)"), json!([1]));
        assert_eq!(ev("()"), json!([]));
        assert_eq!(ev("(1)"), json!(1));
        assert_eq!(ev("1,2"), json!([1, 2]));
        assert_eq!(ev("80,443,"), json!([80, 443]));
        assert_eq!(ev("a,b"), json!("a,b"));
        assert_eq!(ev("{'a': 1, 'b': [2]}"), json!({"a": 1, "b": [2]}));
        assert_eq!(ev("{1: 'x'}"), json!({"1": "x"}));
        assert_eq!(ev("{'a': 1, 'a': 2}"), json!({"a": 2}));
        assert_eq!(ev("{1, 2, 2}"), json!([1, 2]));
        assert_eq!(ev("set()"), json!([]));
        assert_eq!(ev("{a:1}"), json!("{a:1}"));
        assert_eq!(ev("[1, 2"), json!("[1, 2"));
        assert_eq!(ev("-(1)"), json!("-(1)"));
        assert_eq!(ev("1 + 2"), json!("1 + 2"));
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(ev(&deep), json!(deep));
    }

    #[test]
    fn float_repr_like_python() {
        assert_eq!(py_float_repr(1.5), "1.5");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1.5e-7), "1.5e-07");
        assert_eq!(py_float_repr(100.0), "100.0");
    }
}
