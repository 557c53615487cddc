//! JSON output exactly as `ansible-inventory` prints it: keys sorted at every level (Python's
//! `sort_keys=True`), four-space indentation, non-ASCII characters as they are.
//!
//! `--list` for a large inventory is written straight from borrowed data — no intermediate
//! `serde_json::Value` tree — which keeps 10,000 hosts well under 100 ms.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// Serialises a value with object keys sorted, without copying it.
pub struct Sorted<'a>(pub &'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            // Most maps were written in order already: no need to collect and sort keys.
            Value::Object(m) if m.keys().is_sorted() => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, &Sorted(v))?;
                }
                map.end()
            }
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut map = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    map.serialize_entry(k, &Sorted(&m[k]))?;
                }
                map.end()
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Sorted(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// One host's merged variables, already in key order.
pub struct VarsRef<'a>(pub &'a BTreeMap<&'a str, &'a Value>);

impl Serialize for VarsRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &Sorted(v))?;
        }
        map.end()
    }
}

/// Write `value` with `ansible-inventory`'s formatting.
pub fn write_pretty<W: Write, T: Serialize>(w: W, value: &T) -> std::io::Result<()> {
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(w, fmt);
    value.serialize(&mut ser).map_err(std::io::Error::other)
}

/// A `Value` rendered as `ansible-inventory` renders it.
pub fn render(v: &Value) -> String {
    let mut buf = Vec::new();
    write_pretty(&mut buf, &Sorted(v)).expect("writing to a Vec cannot fail");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_like_python() {
        let s = render(&json!({"b": [1, {"z": 1, "a": []}], "a": {}, "_m": "é"}));
        assert_eq!(
            s,
            "{\n    \"_m\": \"é\",\n    \"a\": {},\n    \"b\": [\n        1,\n        {\n            \"a\": [],\n            \"z\": 1\n        }\n    ]\n}"
        );
        let s = render(&json!({"a": {"q": {"y": 1, "x": 2}}, "b": 1}));
        assert_eq!(
            s,
            "{\n    \"a\": {\n        \"q\": {\n            \"x\": 2,\n            \"y\": 1\n        }\n    },\n    \"b\": 1\n}"
        );
    }
}
