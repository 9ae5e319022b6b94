//! What a line of a weft JSON log must be: one flat JSON object.
//!
//! [`check`] parses a line and says what is wrong with it: not a JSON object, a key twice
//! (serde_json's own maps keep the last value of a repeated key without a word, so the keys
//! are read one by one here), a value that is an object, an array or null, a string that is
//! the `Debug` form of an `Option` (`Some(…)`, `None`), or an ANSI escape anywhere.

use std::fmt;

use serde::Deserializer as _;
use serde::de::{MapAccess, Visitor};
use serde_json::{Map, Value};

/// The keys and values of `line` in order, or why it is not a flat JSON object.
pub fn check(line: &str) -> Result<Map<String, Value>, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let entries = de
        .deserialize_map(Entries)
        .map_err(|e| format!("not a JSON object ({e})"))?;
    de.end()
        .map_err(|e| format!("more after the object ({e})"))?;
    let mut map = Map::new();
    for (key, value) in entries {
        if map.contains_key(&key) {
            return Err(format!("key {key:?} appears twice"));
        }
        if key.contains('\u{1b}') {
            return Err(format!("key {key:?} holds an ANSI escape"));
        }
        match &value {
            Value::Object(_) | Value::Array(_) | Value::Null => {
                return Err(format!("{key:?} is not a scalar: {value}"));
            }
            Value::String(s) if s.starts_with("Some(") || s == "None" => {
                return Err(format!("{key:?} is the Debug form of an Option: {s:?}"));
            }
            Value::String(s) if s.contains('\u{1b}') => {
                return Err(format!("{key:?} holds an ANSI escape: {s:?}"));
            }
            _ => {}
        }
        map.insert(key, value);
    }
    Ok(map)
}

/// A JSON object's entries as they come, repeated keys included.
struct Entries;

impl<'de> Visitor<'de> for Entries {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Value>()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn a_flat_object_passes_with_its_keys_in_order() {
        let map = check(r#"{"level":"INFO","message":"hi","n":3,"ok":true}"#).unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["level", "message", "n", "ok"]);
    }

    #[test]
    fn each_fault_is_named() {
        for (line, fault) in [
            ("weft proxy: listening", "not a JSON object"),
            ("[1, 2]", "not a JSON object"),
            (r#"{"a":1} {"b":2}"#, "more after the object"),
            (r#"{"target":"x","target":"y"}"#, "appears twice"),
            (r#"{"span":{"pod":"a"}}"#, "not a scalar"),
            (r#"{"spans":[]}"#, "not a scalar"),
            (r#"{"tunnel":null}"#, "not a scalar"),
            (
                r#"{"peer":"Some(\"spiffe://x\")"}"#,
                "Debug form of an Option",
            ),
            (r#"{"revision":"None"}"#, "Debug form of an Option"),
            (r#"{"message":"\u001b[32mINFO"}"#, "ANSI escape"),
        ] {
            let err = check(line).unwrap_err();
            assert!(err.contains(fault), "{line}: {err}");
        }
    }
}
