//! A YAML writer for converted configuration: block style, with short maps and lists of
//! scalars in flow style (`{name: reviews-v1, port: 9080}`), strings written plain wherever a
//! YAML reader (1.1 or 1.2) reads them back as the same string, and comments placed right
//! before the field or list item they are about.

use std::collections::BTreeMap;

use serde_json::Value;

/// Widest flow-style line (indent included) before a map or list is written in block style.
const FLOW_WIDTH: usize = 88;

/// Comment lines by field path (`spec.rules[0].filters[1]`; `""` for the top of the document).
/// A path the value does not have is moved to its nearest enclosing one.
pub type Comments = BTreeMap<String, Vec<String>>;

/// Writes one document (without `---`), comments included.
pub fn document(value: &Value, comments: &Comments) -> String {
    let mut placed = Comments::new();
    for (path, lines) in comments {
        let mut p = path.as_str();
        while !p.is_empty() && lookup(value, p).is_none() {
            p = parent(p);
        }
        placed
            .entry(p.to_string())
            .or_default()
            .extend(lines.iter().cloned());
    }
    let mut w = Writer {
        out: String::new(),
        comments: &placed,
    };
    w.comment("", 0);
    w.block(value, "", 0, false);
    w.out
}

/// Comment lines, each starting `# `.
pub fn comment_lines(lines: &[String], indent: usize) -> String {
    let pad = " ".repeat(indent);
    lines
        .iter()
        .flat_map(|l| l.lines())
        .map(|l| format!("{pad}# {l}\n"))
        .collect()
}

struct Writer<'a> {
    out: String,
    comments: &'a Comments,
}

impl Writer<'_> {
    fn comment(&mut self, path: &str, indent: usize) {
        if let Some(lines) = self.comments.get(path) {
            self.out.push_str(&comment_lines(lines, indent));
        }
    }

    /// Whether a comment sits below `path` (one at `path` itself goes above it).
    fn commented_under(&self, path: &str) -> bool {
        self.comments.keys().any(|k| {
            k != path
                && (k.starts_with(path)
                    && (path.is_empty()
                        || matches!(k.as_bytes().get(path.len()), Some(b'.' | b'['))))
        })
    }

    /// `v` at `path`; `inline`: the first line continues a `- ` already written.
    fn block(&mut self, v: &Value, path: &str, indent: usize, inline: bool) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(o) if !o.is_empty() => {
                for (i, (k, val)) in o.iter().enumerate() {
                    let p = join(path, k);
                    if !(inline && i == 0) {
                        self.comment(&p, indent);
                        self.out.push_str(&pad);
                    }
                    self.out.push_str(&key(k));
                    self.out.push(':');
                    self.value_after_key(val, &p, indent);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, item) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    self.comment(&p, indent);
                    self.out.push_str(&pad);
                    self.out.push_str("- ");
                    match item {
                        Value::Object(o) if !o.is_empty() && !self.flows(item, &p, indent + 2) => {
                            // The first field's comments go above the item.
                            let first = join(&p, o.keys().next().map_or("", String::as_str));
                            if self.comments.contains_key(&first) {
                                self.out.truncate(self.out.len() - pad.len() - 2);
                                self.comment(&first, indent);
                                self.out.push_str(&pad);
                                self.out.push_str("- ");
                            }
                            self.block(item, &p, indent + 2, true);
                        }
                        Value::Array(x) if !x.is_empty() && !self.flows(item, &p, indent + 2) => {
                            self.out.push('\n');
                            self.block(item, &p, indent + 2, false);
                        }
                        _ => {
                            self.out.push_str(&flow(item));
                            self.out.push('\n');
                        }
                    }
                }
            }
            other => {
                self.out.push_str(&pad);
                self.out.push_str(&flow(other));
                self.out.push('\n');
            }
        }
    }

    fn value_after_key(&mut self, val: &Value, path: &str, indent: usize) {
        let nested = matches!(val, Value::Object(o) if !o.is_empty())
            || matches!(val, Value::Array(a) if !a.is_empty());
        let numbers =
            matches!(val, Value::Array(a) if a.len() > 1 && a.iter().all(Value::is_number));
        if numbers && !self.commented_under(path) {
            // A long list of numbers (status codes) wraps, in flow style.
            self.out.push(' ');
            let column = self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1);
            self.out.push_str(&wrapped(val, column, indent + 2));
            self.out.push('\n');
        } else if nested && !self.flows(val, path, indent + 2) {
            self.out.push('\n');
            // Lists sit at the key's indent, as Kubernetes writes them.
            let inner = if val.is_array() { indent } else { indent + 2 };
            self.block(val, path, inner, false);
        } else {
            self.out.push(' ');
            self.out.push_str(&flow(val));
            self.out.push('\n');
        }
    }

    /// Whether `v` is written on one line: no comments inside, only scalars (or small flow
    /// maps and lists), and short enough.
    fn flows(&self, v: &Value, path: &str, indent: usize) -> bool {
        fn depth(v: &Value) -> usize {
            match v {
                Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
                Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        !self.commented_under(path) && depth(v) <= 2 && indent + flow(v).len() <= FLOW_WIDTH
    }
}

/// A list of scalars in flow style starting at `column`, continued on lines indented by
/// `indent` past the width.
fn wrapped(v: &Value, column: usize, indent: usize) -> String {
    let items: Vec<String> = v.as_array().into_iter().flatten().map(flow).collect();
    let mut out = String::from("[");
    let mut line = column + 1;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
            if line + item.len() + 2 > FLOW_WIDTH {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                line = indent;
            } else {
                out.push(' ');
            }
        }
        out.push_str(item);
        line += item.len() + 2;
    }
    out.push(']');
    out
}

/// A value on one line, in flow style.
pub fn flow(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{}: {}", key(k), flow(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(s) => string(s),
        other => other.to_string(),
    }
}

fn key(k: &str) -> String {
    string(k)
}

/// `s` plain when every YAML reader takes it back as this string, double-quoted otherwise.
pub fn string(s: &str) -> String {
    if plain(s) {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn plain(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
    {
        return false;
    }
    if first == '-' || RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s)) {
        return false;
    }
    // Anything a reader might take for a number (`10`, `1.5`, `0x1f`, `1e3`, `.5`).
    let numeric = |c: char| c.is_ascii_hexdigit() || matches!(c, '.' | '_' | 'x' | 'X' | 'o');
    let numberish = (first.is_ascii_digit() || first == '.') && s.chars().all(numeric);
    !numberish && !s.eq_ignore_ascii_case(".inf") && !s.eq_ignore_ascii_case(".nan")
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `""`.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

/// The value at `path`, if there is one. Keys with dots are not addressed.
fn lookup<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let n: usize = idx.trim_end_matches(']').parse().ok()?;
            cur = cur.get(n)?;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strings_are_plain_only_where_they_read_back_as_strings() {
        for (s, want) in [
            ("reviews-v1", "reviews-v1"),
            ("7s", "7s"),
            ("/api/v1", "/api/v1"),
            ("weft.dev/rev", "weft.dev/rev"),
            ("10", "\"10\""),
            ("1.5", "\"1.5\""),
            ("1e3", "\"1e3\""),
            ("0x1f", "\"0x1f\""),
            ("true", "\"true\""),
            ("Yes", "\"Yes\""),
            ("off", "\"off\""),
            ("", "\"\""),
            ("-x", "\"-x\""),
            ("a b", "\"a b\""),
            ("a: b", "\"a: b\""),
            ("spiffe://x/ns/a", "\"spiffe://x/ns/a\""),
            ("*", "\"*\""),
        ] {
            assert_eq!(string(s), want, "{s:?}");
        }
    }

    #[test]
    fn documents_read_back_as_written_with_comments_in_place() {
        let v = json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "reviews", "namespace": "bookinfo", "labels": {"version": "10"}},
            "spec": {
                "parentRefs": [{"group": "", "kind": "Service", "name": "reviews"}],
                "rules": [
                    {"matches": [{"headers": [{"name": "end-user", "value": "jason"}]}],
                     "backendRefs": [{"name": "reviews-v2", "port": 9080}]},
                    {"backendRefs": [{"name": "reviews-v1", "port": 9080, "weight": 90},
                                     {"name": "reviews-v3", "port": 9080, "weight": 10}],
                     "retry": {"attempts": 3, "codes": (500..=599).collect::<Vec<u16>>()},
                     "empty": [], "none": {}}
                ]
            }
        });
        let mut c = Comments::new();
        c.insert("".into(), vec!["from VirtualService reviews".into()]);
        c.insert(
            "spec.rules[1]".into(),
            vec!["http[1].corsPolicy: not converted".into()],
        );
        c.insert(
            "spec.rules[0].matches".into(),
            vec!["a match was dropped".into()],
        );
        c.insert("spec.nothing[3].here".into(), vec!["moved to spec".into()]);
        let text = document(&v, &c);
        assert!(
            text.starts_with("# from VirtualService reviews\napiVersion:"),
            "{text}"
        );
        assert!(
            text.contains("  # http[1].corsPolicy: not converted\n  - backendRefs:"),
            "{text}"
        );
        assert!(
            text.contains("  # a match was dropped\n  - matches:"),
            "{text}"
        );
        assert!(text.contains("# moved to spec\nspec:"), "{text}");
        assert!(
            text.contains("- {name: reviews-v1, port: 9080, weight: 90}"),
            "{text}"
        );
        assert!(text.contains("codes: [500, 501,"), "{text}");
        assert!(text.lines().all(|l| l.len() <= FLOW_WIDTH), "{text}");
        let (docs, err) = crate::load::yaml::parse_documents(&text);
        assert!(err.is_none(), "{err:?}\n{text}");
        assert_eq!(docs[0].value, v, "{text}");
    }
}
