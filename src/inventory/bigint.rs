//! Integers of any size, as Python (and so Ansible) keeps them: a value such as
//! `123456789012345678901234567890` in an inventory stays that integer in
//! `ansible-inventory --list`. serde_json's `arbitrary_precision` feature lets a
//! [`Number`] hold any integer as its decimal text; this module builds such numbers from
//! literal digits in any radix and normalizes numbers read from JSON text the way Python's
//! `json` module reads them (floats as floats, integers exact).

use serde_json::{Number, Value};

/// Decimal digits of the magnitude written in `digits` (radix 2..=16, no sign, no
/// underscores), without leading zeros; `None` for a digit outside the radix.
pub fn to_decimal(digits: &str, radix: u32) -> Option<String> {
    if digits.is_empty() {
        return None;
    }
    // Little-endian base-1e9 limbs.
    let mut limbs: Vec<u64> = vec![0];
    for c in digits.chars() {
        let d = c.to_digit(radix)? as u64;
        let mut carry = d;
        for l in limbs.iter_mut() {
            let v = *l * radix as u64 + carry;
            *l = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
    }
    let mut s = limbs.last().copied().unwrap_or(0).to_string();
    for l in limbs.iter().rev().skip(1) {
        s.push_str(&format!("{l:09}"));
    }
    Some(s)
}

/// The integer `-?magnitude` (decimal digits, no leading zeros) as an exact [`Number`].
pub fn number(neg: bool, magnitude: &str) -> Option<Number> {
    let text = if neg && magnitude != "0" {
        format!("-{magnitude}")
    } else {
        magnitude.to_string()
    };
    serde_json::from_str::<Number>(&text).ok()
}

/// Whether a number read from JSON text is a float (has a fraction or an exponent).
fn is_float_text(n: &Number) -> bool {
    n.to_string().contains(['.', 'e', 'E'])
}

/// Numbers parsed from JSON text as Python's `json.loads` gives them: a float becomes the
/// f64 it denotes (so `1e5` prints as a float, as before), an integer keeps every digit
/// (`-0` is 0).
pub fn normalize_json(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if is_float_text(n) {
                if let Some(f) = n.as_f64().and_then(Number::from_f64) {
                    *n = f;
                }
            } else if n.to_string() == "-0" {
                *n = Number::from(0);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_json),
        Value::Object(o) => o.values_mut().for_each(normalize_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_conversion() {
        for (digits, radix, want) in [
            ("0", 10, "0"),
            ("000", 10, "0"),
            (
                "123456789012345678901234567890",
                10,
                "123456789012345678901234567890",
            ),
            ("ff", 16, "255"),
            (
                "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
                16,
                "340282366920938463463374607431768211455",
            ),
            ("777", 8, "511"),
            ("1".repeat(70).as_str(), 2, "1180591620717411303423"),
        ] {
            assert_eq!(to_decimal(digits, radix).as_deref(), Some(want), "{digits}");
        }
        assert_eq!(to_decimal("12a", 10), None);
        assert_eq!(to_decimal("", 10), None);
    }

    #[test]
    fn exact_numbers_and_json_normalization() {
        let n = number(true, "123456789012345678901234567890").unwrap();
        assert_eq!(n.to_string(), "-123456789012345678901234567890");
        assert_eq!(
            serde_json::to_string(&Value::Number(n)).unwrap(),
            "-123456789012345678901234567890"
        );
        assert_eq!(number(true, "0").unwrap().to_string(), "0");
        let mut v: Value =
            serde_json::from_str(r#"[1e5, 1.50, -0, 99999999999999999999999, 7]"#).unwrap();
        normalize_json(&mut v);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            "[100000.0,1.5,0,99999999999999999999999,7]"
        );
    }
}
