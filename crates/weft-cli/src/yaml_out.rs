//! A small YAML writer for command output. Strings are always double-quoted (JSON escapes are
//! valid YAML), so any value round-trips without a YAML library.

use serde_json::Value;

pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v, 0, false);
    out.trim_end().to_string()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

fn key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plain {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(o) if !o.is_empty())
}

/// `inline`: the first line continues a `- ` already written.
fn write(out: &mut String, v: &Value, indent: usize, inline: bool) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (i, (k, val)) in o.iter().enumerate() {
                if !(inline && i == 0) {
                    out.push_str(&pad);
                }
                out.push_str(&key(k));
                out.push(':');
                if is_block(val) {
                    out.push('\n');
                    write(out, val, indent + 2, false);
                } else {
                    out.push(' ');
                    out.push_str(&scalar(val));
                    out.push('\n');
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                out.push_str(&pad);
                out.push_str("- ");
                if is_block(item) && item.is_object() {
                    write(out, item, indent + 2, true);
                } else if is_block(item) {
                    out.push('\n');
                    write(out, item, indent + 2, false);
                } else {
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_read_back_as_the_same_json() {
        let v = serde_json::json!({
            "findings": [{"code": "WEFT0101", "location": {"file": "a: b.yaml", "line": 3}}, [1, 2]],
            "empty": [], "none": {}, "n": null, "s": "multi\nline \"quoted\"",
        });
        let yaml = to_yaml(&v);
        let (docs, err) = weft_core::load::yaml::parse_documents(&yaml);
        assert!(err.is_none(), "{yaml}");
        assert_eq!(docs[0].value, v, "{yaml}");
    }
}
