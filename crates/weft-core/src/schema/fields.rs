//! A kind's fields as table rows, walked from its JSON Schema: dotted paths (`[]` for list
//! items), types, defaults and descriptions.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// `$defs` documented once, in their own section, rather than under every kind.
pub(super) const SHARED: &[(&str, &str)] = &[("ObjectMeta", "[Metadata](#metadata)")];

/// Formatted string types, explained once under "Value types": `$defs` name and type shown.
pub(super) const VALUE_TYPES: &[(&str, &str)] = &[
    ("Duration", "duration"),
    ("CpuQuantity", "CPU quantity"),
    ("MemoryQuantity", "memory quantity"),
];

/// A field's type, what to expand below it, and the docs its type carries.
#[derive(Default)]
struct Shape {
    ty: String,
    /// `$defs` name of an object whose fields are listed under this one.
    target: Option<String>,
    /// Appended to the path before the nested fields: `[]` per list level.
    suffix: String,
    doc: Option<String>,
    /// `(value, doc)` of documented enum values.
    variants: Vec<(String, String)>,
}

pub(super) struct Walker<'a> {
    defs: &'a Map<String, Value>,
    pub(super) rows: Vec<[String; 4]>,
    /// Objects already listed, and where.
    listed: HashMap<String, String>,
}

impl<'a> Walker<'a> {
    pub(super) fn new(defs: &'a Map<String, Value>) -> Self {
        Walker {
            defs,
            rows: Vec::new(),
            listed: HashMap::new(),
        }
    }

    pub(super) fn object(&mut self, obj: &Value, prefix: &str) {
        let required: Vec<&str> = obj["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(properties) = obj["properties"].as_object() else {
            return;
        };
        for (name, prop) in properties {
            let path = format!("{prefix}{name}");
            let shape = self.shape(prop);
            let default = if required.contains(&name.as_str()) {
                "*required*".to_string()
            } else {
                prop.get("default").map(render_default).unwrap_or_default()
            };
            let mut desc = prop["description"]
                .as_str()
                .map(one_line)
                .or(shape.doc.clone())
                .unwrap_or_default();
            for (value, doc) in &shape.variants {
                desc += &format!(" `{value}`: {}", one_line(doc));
            }
            let mut expand = None;
            if let Some(target) = &shape.target {
                let shared = SHARED.iter().find(|(n, _)| n == target);
                let note = match (shared, self.listed.get(target)) {
                    (Some((_, link)), _) => format!("See {link}."),
                    (None, Some(at)) => format!("Same fields as `{at}`."),
                    (None, None) => {
                        let at = format!("{path}{}", shape.suffix);
                        self.listed.insert(target.clone(), at.clone());
                        expand = Some((target.clone(), at));
                        String::new()
                    }
                };
                if !note.is_empty() {
                    desc = format!("{desc} {note}").trim_start().to_string();
                }
            }
            self.rows.push([
                format!("`{path}`"),
                shape.ty,
                default,
                desc.replace('|', "\\|"),
            ]);
            if let Some((target, at)) = expand {
                let defs = self.defs;
                self.object(&defs[&target], &format!("{at}."));
            }
        }
    }

    fn shape(&self, s: &Value) -> Shape {
        if let Some(name) = s["$ref"].as_str().and_then(|r| r.strip_prefix("#/$defs/")) {
            let def = &self.defs[name];
            let doc = def["description"].as_str().map(one_line);
            if let Some((_, shown)) = VALUE_TYPES.iter().find(|(n, _)| *n == name) {
                return Shape {
                    ty: format!("[{shown}](#value-types)"),
                    doc,
                    ..Shape::default()
                };
            }
            if def.get("properties").is_some() {
                return Shape {
                    ty: "object".into(),
                    target: Some(name.into()),
                    doc,
                    ..Shape::default()
                };
            }
            return Shape {
                doc,
                ..self.shape(def)
            };
        }
        if let Some(any) = s["anyOf"].as_array() {
            let real: Vec<&Value> = any.iter().filter(|v| v["type"] != "null").collect();
            if let [one] = real[..] {
                return self.shape(one);
            }
            let tys: Vec<String> = real.iter().map(|v| self.shape(v).ty).collect();
            return Shape {
                ty: tys.join(" or "),
                ..Shape::default()
            };
        }
        let values: Vec<(String, Option<&str>)> =
            match (s["enum"].as_array(), s["oneOf"].as_array()) {
                (Some(e), _) => e.iter().map(|v| (flow(v), None)).collect(),
                (_, Some(o)) => o
                    .iter()
                    .map(|v| (flow(&v["const"]), v["description"].as_str()))
                    .collect(),
                _ if !s["const"].is_null() => vec![(flow(&s["const"]), None)],
                _ => Vec::new(),
            };
        if !values.is_empty() {
            let shown: Vec<String> = values.iter().map(|(v, _)| format!("`{v}`")).collect();
            let ty = if shown.len() == 1 {
                shown[0].clone()
            } else {
                format!("one of {}", shown.join(", "))
            };
            let variants = values
                .into_iter()
                .filter_map(|(v, d)| Some((v, d?.to_string())))
                .collect();
            return Shape {
                ty,
                variants,
                ..Shape::default()
            };
        }
        let types: Vec<&str> = match &s["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ => {
                return Shape {
                    ty: "any".into(),
                    ..Shape::default()
                };
            }
        };
        if let ["array"] = types[..] {
            let inner = self.shape(&s["items"]);
            return Shape {
                ty: format!("list of {}", inner.ty),
                suffix: format!("[]{}", inner.suffix),
                ..inner
            };
        }
        if let (["object"], Some(_)) = (&types[..], s["additionalProperties"].as_object()) {
            let inner = self.shape(&s["additionalProperties"]);
            return Shape {
                ty: format!("map of string to {}", inner.ty),
                ..Shape::default()
            };
        }
        let range = (s["minimum"].as_u64(), s["maximum"].as_u64());
        let tys: Vec<String> = types
            .iter()
            .map(|t| match (*t, s["format"].as_str(), range) {
                ("integer", _, (Some(min), Some(max))) => format!("integer {min}–{max}"),
                ("integer", Some("uint16"), _) => "integer 0–65535".into(),
                ("integer", Some(f), _) if f.starts_with("uint") => "integer ≥ 0".into(),
                (t, _, _) => t.into(),
            })
            .collect();
        Shape {
            ty: tys.join(" or "),
            ..Shape::default()
        }
    }
}

pub(super) fn defs_of(root: &Value) -> &Map<String, Value> {
    root["$defs"]
        .as_object()
        .expect("every kind's schema has $defs")
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A default as compact YAML flow, or nothing when it is empty or too long to help. Empty
/// members of an object are left out: the rows below it show them.
fn render_default(v: &Value) -> String {
    let v = match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(_, m)| !is_empty(m))
                .map(|(k, m)| (k.clone(), m.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    match flow(&v) {
        _ if is_empty(&v) => String::new(),
        f if f.chars().count() > 60 => String::new(),
        f => format!("`{f}`"),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

pub(super) fn flow(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => {
            let entries: Vec<String> = o.iter().map(|(k, v)| format!("{k}: {}", flow(v))).collect();
            format!("{{{}}}", entries.join(", "))
        }
        other => other.to_string(),
    }
}
