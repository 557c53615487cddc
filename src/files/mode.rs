//! File modes as users write them: octal strings (`"0644"`, `"644"`, `"01777"`) and Ansible's
//! symbolic modes (`u=rw,g=r,o=r`, `u+x`, `go-w`, `a=rX`, `g=u`), plus `preserve`.
//!
//! Symbolic modes are relative: [`ModeSpec::apply`] takes the base mode they modify. Copy and
//! replicate use the *source* file's mode as the base, so every destination host gets the same
//! result regardless of what it had before. Unlike `chmod`, an empty "who" (`+x`) means `a`
//! without consulting the umask (as Ansible does on the remote side; the umask there is not
//! ours to know).

use std::fmt;

/// A mode that could not be parsed. Names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid mode {input:?}: {reason}")]
pub struct ModeError {
    pub input: String,
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> ModeError {
    ModeError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// One symbolic clause: who (bitmask of u=4, g=2, o=1) and a list of (operator, perms).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Clause {
    who: u8,
    actions: Vec<(char, String)>,
}

/// A requested mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeSpec {
    /// Absolute permission bits (`0o7777` mask).
    Octal(u32),
    /// Relative symbolic clauses applied to a base mode.
    Symbolic(String, Vec<ClauseRepr>),
    /// Keep the source file's mode (Ansible's `mode: preserve`).
    Preserve,
}

/// Opaque parsed clause (public only so [`ModeSpec`] can be matched on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClauseRepr(Clause);

const WHO_U: u8 = 4;
const WHO_G: u8 = 2;
const WHO_O: u8 = 1;

impl ModeSpec {
    /// Parse a mode string the way Ansible's `mode` option reads one.
    pub fn parse(input: &str) -> Result<ModeSpec, ModeError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err(input, "empty"));
        }
        if s == "preserve" {
            return Ok(ModeSpec::Preserve);
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            let v = u32::from_str_radix(s, 8)
                .map_err(|_| err(input, "octal modes use only the digits 0-7"))?;
            if v > 0o7777 {
                return Err(err(input, "octal mode is larger than 07777"));
            }
            return Ok(ModeSpec::Octal(v));
        }
        let mut clauses = Vec::new();
        for part in s.split(',') {
            clauses.push(ClauseRepr(parse_clause(input, part)?));
        }
        Ok(ModeSpec::Symbolic(s.to_string(), clauses))
    }

    /// A mode given as a number (e.g. YAML `mode: 0644`, which arrives as decimal 420).
    pub fn from_int(v: u64) -> Result<ModeSpec, ModeError> {
        if v > 0o7777 {
            return Err(err(&v.to_string(), "mode is larger than 07777"));
        }
        Ok(ModeSpec::Octal(v as u32))
    }

    /// The resulting permission bits for an object whose current (or source) mode is `base`.
    pub fn apply(&self, base: u32, is_dir: bool) -> u32 {
        match self {
            ModeSpec::Octal(v) => *v,
            ModeSpec::Preserve => base & 0o7777,
            ModeSpec::Symbolic(_, clauses) => {
                let mut mode = base & 0o7777;
                for ClauseRepr(c) in clauses {
                    for (op, perms) in &c.actions {
                        mode = apply_action(mode, c.who, *op, perms, is_dir);
                    }
                }
                mode
            }
        }
    }
}

impl fmt::Display for ModeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModeSpec::Octal(v) => write!(f, "{v:04o}"),
            ModeSpec::Symbolic(s, _) => f.write_str(s),
            ModeSpec::Preserve => f.write_str("preserve"),
        }
    }
}

/// Render permission bits as Ansible reports them (`"0644"`).
pub fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

fn parse_clause(input: &str, part: &str) -> Result<Clause, ModeError> {
    let bytes: Vec<char> = part.chars().collect();
    let mut i = 0;
    let mut who = 0u8;
    while i < bytes.len() && "ugoa".contains(bytes[i]) {
        who |= match bytes[i] {
            'u' => WHO_U,
            'g' => WHO_G,
            'o' => WHO_O,
            _ => WHO_U | WHO_G | WHO_O,
        };
        i += 1;
    }
    if who == 0 {
        who = WHO_U | WHO_G | WHO_O;
    }
    let mut actions = Vec::new();
    if i >= bytes.len() {
        return Err(err(
            input,
            format!("clause {part:?} has no operator (+, - or =)"),
        ));
    }
    while i < bytes.len() {
        let op = bytes[i];
        if !"+-=".contains(op) {
            return Err(err(
                input,
                format!("unexpected {op:?} in clause {part:?} (expected + - or =)"),
            ));
        }
        i += 1;
        let start = i;
        while i < bytes.len() && !"+-=".contains(bytes[i]) {
            i += 1;
        }
        let perms: String = bytes[start..i].iter().collect();
        if let Some(bad) = perms.chars().find(|c| !"rwxXstugo".contains(*c)) {
            return Err(err(
                input,
                format!("unknown permission {bad:?} in clause {part:?}"),
            ));
        }
        let copies = perms.chars().filter(|c| "ugo".contains(*c)).count();
        if copies > 0 && (copies != perms.len() || copies > 1) {
            return Err(err(
                input,
                format!("clause {part:?}: copy a single class (u, g or o) or list permissions"),
            ));
        }
        actions.push((op, perms));
    }
    Ok(Clause { who, actions })
}

/// Bits for `perms` (letters) for one class. `mode` is the mode before this action (for `X`
/// and for copying another class's bits).
fn class_bits(class: u8, perms: &str, mode: u32, is_dir: bool) -> u32 {
    let (r, w, x, s, shift) = match class {
        WHO_U => (0o400, 0o200, 0o100, 0o4000, 6),
        WHO_G => (0o040, 0o020, 0o010, 0o2000, 3),
        _ => (0o004, 0o002, 0o001, 0, 0),
    };
    let mut bits = 0;
    for c in perms.chars() {
        bits |= match c {
            'r' => r,
            'w' => w,
            'x' => x,
            'X' if is_dir || mode & 0o111 != 0 => x,
            'X' => 0,
            's' => s,
            't' if class == WHO_O => 0o1000,
            't' => 0,
            'u' => ((mode >> 6) & 7) << shift,
            'g' => ((mode >> 3) & 7) << shift,
            'o' => (mode & 7) << shift,
            _ => 0,
        };
    }
    bits
}

fn class_mask(class: u8) -> u32 {
    match class {
        WHO_U => 0o4700,
        WHO_G => 0o2070,
        _ => 0o1007,
    }
}

fn apply_action(mode: u32, who: u8, op: char, perms: &str, is_dir: bool) -> u32 {
    let mut out = mode;
    for class in [WHO_U, WHO_G, WHO_O] {
        if who & class == 0 {
            continue;
        }
        let bits = class_bits(class, perms, mode, is_dir);
        out = match op {
            '+' => out | bits,
            '-' => out & !bits,
            _ => (out & !class_mask(class)) | bits,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str, base: u32) -> u32 {
        ModeSpec::parse(s).unwrap().apply(base, false)
    }

    #[test]
    fn octal_forms() {
        assert_eq!(ModeSpec::parse("0644").unwrap(), ModeSpec::Octal(0o644));
        assert_eq!(ModeSpec::parse("644").unwrap(), ModeSpec::Octal(0o644));
        assert_eq!(ModeSpec::parse("01777").unwrap(), ModeSpec::Octal(0o1777));
        assert_eq!(ModeSpec::parse("0").unwrap(), ModeSpec::Octal(0));
        assert!(ModeSpec::parse("0648").is_err());
        assert!(ModeSpec::parse("17777").is_err());
        assert!(ModeSpec::parse("").is_err());
        assert_eq!(ModeSpec::from_int(420).unwrap(), ModeSpec::Octal(0o644));
        assert!(ModeSpec::from_int(0o10000).is_err());
        assert_eq!(ModeSpec::parse("0640").unwrap().to_string(), "0640");
    }

    #[test]
    fn symbolic_absolute_clauses() {
        assert_eq!(m("u=rw,g=r,o=r", 0o777), 0o644);
        assert_eq!(m("u=rwx,go=", 0o644), 0o700);
        assert_eq!(m("a=r", 0o4755), 0o444);
        assert_eq!(m("=r", 0o755), 0o444);
    }

    #[test]
    fn symbolic_relative_clauses() {
        assert_eq!(m("u+x", 0o644), 0o744);
        assert_eq!(m("go-w", 0o666), 0o644);
        assert_eq!(m("+x", 0o644), 0o755);
        assert_eq!(m("u+r-w", 0o200), 0o400);
        assert_eq!(m("g=u", 0o640), 0o660);
        assert_eq!(m("o=g", 0o750), 0o755);
    }

    #[test]
    fn capital_x_setid_sticky() {
        assert_eq!(m("a+X", 0o644), 0o644);
        assert_eq!(m("a+X", 0o744), 0o755);
        assert_eq!(ModeSpec::parse("a+X").unwrap().apply(0o644, true), 0o755);
        assert_eq!(m("u+s", 0o755), 0o4755);
        assert_eq!(m("g+s", 0o755), 0o2755);
        assert_eq!(m("o+t", 0o777), 0o1777);
        assert_eq!(m("u+t", 0o777), 0o777);
        assert_eq!(m("u=rwx", 0o4755), 0o755);
    }

    #[test]
    fn bad_symbolic_modes_name_the_problem() {
        for bad in ["u", "u=rwz", "x=r", "u=ug", "u=rg", "rw", "u=r,,g=r"] {
            let e = ModeSpec::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(!e.reason.is_empty());
        }
    }

    #[test]
    fn preserve_keeps_base() {
        assert_eq!(m("preserve", 0o100640), 0o640);
        assert_eq!(mode_string(0o644), "0644");
        assert_eq!(mode_string(0o4755), "4755");
    }
}
