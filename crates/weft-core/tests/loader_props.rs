//! Property tests for the configuration loader: no input makes it panic, every error it reports
//! points at a real place in the text, and well-formed documents load exactly as written.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::select;
use weft_core::load::Outcome;
use weft_core::meta::ObjectMeta;
use weft_core::resources::service::{IntOrString, ServicePort, ServiceSpec};
use weft_core::resources::workload::Protocol;
use weft_core::resources::{Namespace, Service};
use weft_core::{Resource, parse_str};

/// Cases per property; `PROPTEST_CASES` overrides it for a longer run.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// The highest line number a position in `text` can have. Counts every character a YAML parser
/// might take for a line break, so it is an upper bound whatever the parser's choice.
fn max_line(text: &str) -> usize {
    let mut lines = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}' => lines += 1,
            _ => {}
        }
    }
    lines
}

/// Loads `text` and checks what holds for any input: every error and every resource is placed
/// in `file` at a line and column that exist, every error says something, and loading is
/// deterministic.
fn load_checked(file: &str, text: &str) -> Result<Outcome, TestCaseError> {
    let out = parse_str(file, text);
    let last = max_line(text);
    for e in &out.errors {
        prop_assert_eq!(&e.location.file, file, "{}", e);
        prop_assert!(e.location.line >= 1, "error without a line: {}", e);
        prop_assert!(e.location.column >= 1, "error without a column: {}", e);
        prop_assert!(
            e.location.line <= last,
            "error at line {} of a {}-line text: {}",
            e.location.line,
            last,
            e
        );
        prop_assert!(!e.message.trim().is_empty(), "empty message: {:?}", e);
        if let Some(hint) = &e.hint {
            prop_assert!(!hint.trim().is_empty(), "empty hint: {:?}", e);
        }
        for r in &e.related {
            prop_assert!(r.line >= 1 && r.line <= last, "related at {}: {}", r, e);
        }
    }
    for r in &out.config.resources {
        prop_assert!(
            r.origin.line >= 1 && r.origin.line <= last && r.origin.column >= 1,
            "{} at {}",
            r.resource.id(),
            r.origin
        );
    }
    for (loc, _) in &out.config.skipped {
        prop_assert!(loc.line >= 1 && loc.line <= last, "skipped at {}", loc);
    }
    let again = parse_str(file, text);
    prop_assert_eq!(
        &out.errors,
        &again.errors,
        "loading twice gave different errors"
    );
    prop_assert_eq!(out.config.resources.len(), again.config.resources.len());
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// (a) Arbitrary text and YAML token soup.

const TOKENS: &[&str] = &[
    ":",
    ": ",
    "-",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "?",
    "? ",
    "&a ",
    "&b",
    "*a",
    "*b",
    "*zz",
    "!!str ",
    "!!map",
    "!!seq ",
    "!!int ",
    "!local ",
    "!<tag:yaml.org,2002:str> ",
    "<<: ",
    "---",
    "\n---\n",
    "...",
    "%YAML 1.2\n",
    "%TAG ! tag:x,2000:\n",
    "'",
    "\"",
    "''",
    "\\",
    "\\u",
    "#",
    " # c",
    "|",
    "|-\n",
    ">",
    ">+2\n",
    "\n",
    "\r\n",
    "\r",
    " ",
    "  ",
    "    ",
    "\t",
    "apiVersion",
    "apiVersion: v1\n",
    "apiVersion: weft.dev/v1alpha1\n",
    "apiVersion: gateway.networking.k8s.io/v1\n",
    "kind",
    "kind: Service\n",
    "kind: Namespace\n",
    "kind: Workload\n",
    "kind: HTTPRoute\n",
    "kind: Mesh\n",
    "kind: Deployment\n",
    "metadata",
    "metadata:\n  name: a\n",
    "name",
    "namespace",
    "labels",
    "spec",
    "spec:\n",
    "ports",
    "port",
    "targetPort",
    "rules",
    "matches",
    "backendRefs",
    "selector",
    "replicas",
    "a",
    "web",
    "8080",
    "0",
    "-1",
    "65536",
    "99999999999999999999999",
    "1e999",
    "0x",
    "0x1F",
    "0o9",
    ".5",
    "-.inf",
    "null",
    "true",
    "~",
    "é",
    "\u{feff}",
    "\u{0}",
    "\u{85}",
    "\u{2028}",
    "😀",
    "@",
    "`",
    "%",
];

fn arbitrary_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..256).prop_map(String::from_iter)
}

fn token_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => select(TOKENS).prop_map(str::to_string),
        1 => any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..96).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_panics(text in arbitrary_text()) {
        load_checked("fuzz.yaml", &text)?;
    }

    #[test]
    fn yaml_token_soup_never_panics(text in token_soup()) {
        load_checked("fuzz.yaml", &text)?;
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Mutations of the example configuration.

fn examples() -> &'static [(String, String)] {
    static EXAMPLES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/shop");
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("examples/shop exists")
            .map(|e| e.expect("readable directory").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).expect("readable example"))
            })
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no examples in {dir}");
        let all: Vec<&str> = files.iter().map(|(_, t)| t.as_str()).collect();
        files.push(("all.yaml".into(), all.join("---\n")));
        files
    })
}

/// Replacements for one scalar: other types, other collections, and YAML that means something
/// else entirely.
const SCALARS: &[&str] = &[
    "0",
    "-1",
    "65536",
    "99999999999999999999",
    "3.14",
    "1e309",
    ".inf",
    ".nan",
    "0x1F",
    "-0",
    "+5",
    "true",
    "false",
    "null",
    "~",
    "\"\"",
    "''",
    "[]",
    "{}",
    "[1, 2]",
    "{a: b}",
    "\"quoted\"",
    "'single'",
    "!!str 1",
    "!!int x",
    "&anchor v",
    "*anchor",
    "*nope",
    "|",
    ">-",
    "- x",
    "a: b",
    "#",
    "%",
    "@",
    "`",
    "---",
    "...",
    "?",
    "\"unterminated",
    "[unclosed",
    "{unclosed",
    "Ünïcødé",
    "😀",
    "",
];

/// Which line, word or byte a mutation picks: taken modulo the number there is.
type Pick = usize;

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(Pick),
    DuplicateLine(Pick),
    SwapLines(Pick, Pick),
    /// Adds (positive) or removes (negative) leading spaces.
    Indent(Pick, i8),
    IndentWithTab(Pick),
    /// Replaces the n-th scalar-looking word of a line.
    ReplaceScalar(Pick, Pick, &'static str),
    /// Cuts the text at a byte offset (moved back to a character boundary).
    Truncate(Pick),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => any::<Pick>().prop_map(Mutation::DeleteLine),
        1 => any::<Pick>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Pick>(), any::<Pick>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (any::<Pick>(), (-4i8..=4).prop_filter("a change", |d| *d != 0))
            .prop_map(|(i, d)| Mutation::Indent(i, d)),
        1 => any::<Pick>().prop_map(Mutation::IndentWithTab),
        3 => (any::<Pick>(), any::<Pick>(), select(SCALARS))
            .prop_map(|(l, w, s)| Mutation::ReplaceScalar(l, w, s)),
        1 => any::<Pick>().prop_map(Mutation::Truncate),
    ]
}

/// Byte ranges of the scalar-looking words of a line.
fn words(line: &str) -> Vec<(usize, usize)> {
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | '/');
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (is_word(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, line.len()));
    }
    out
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    if lines.is_empty() {
        return text.to_string();
    }
    let n = lines.len();
    match m {
        Mutation::DeleteLine(i) => {
            lines.remove(i % lines.len());
        }
        Mutation::DuplicateLine(i) => {
            let i = i % lines.len();
            let mut copy = lines[i].clone();
            if !copy.ends_with('\n') {
                copy.push('\n');
            }
            lines.insert(i, copy);
        }
        Mutation::SwapLines(a, b) => {
            let (a, b) = (a % lines.len(), b % lines.len());
            lines.swap(a, b);
        }
        Mutation::Indent(i, delta) => {
            let line = &mut lines[i % n];
            let spaces = line.len() - line.trim_start_matches(' ').len();
            let new = (spaces as i32 + i32::from(*delta)).max(0) as usize;
            *line = format!("{}{}", " ".repeat(new), &line[spaces..]);
        }
        Mutation::IndentWithTab(i) => lines[i % n].insert(0, '\t'),
        Mutation::ReplaceScalar(l, w, with) => {
            let line = &mut lines[l % n];
            let ws = words(line);
            if ws.is_empty() {
                let body = line.trim_end_matches('\n').len();
                line.replace_range(..body, with);
            } else {
                let (s, e) = ws[w % ws.len()];
                line.replace_range(s..e, with);
            }
        }
        Mutation::Truncate(i) => {
            let mut text = lines.concat();
            let mut at = i % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.truncate(at);
            return text;
        }
    }
    lines.concat()
}

#[test]
fn examples_load_cleanly() {
    for (name, text) in examples() {
        let out = parse_str(name, text);
        assert!(out.is_ok(), "{name}: {:#?}", out.errors);
        assert!(!out.config.resources.is_empty(), "{name} has no resources");
    }
}

#[test]
fn mutations_do_what_they_say() {
    let text = "a: 1\n  b: [x, y]\n";
    assert_eq!(apply(text, &Mutation::DeleteLine(2)), "  b: [x, y]\n");
    assert_eq!(
        apply(text, &Mutation::DuplicateLine(0)),
        "a: 1\na: 1\n  b: [x, y]\n"
    );
    assert_eq!(
        apply(text, &Mutation::SwapLines(0, 1)),
        "  b: [x, y]\na: 1\n"
    );
    assert_eq!(apply(text, &Mutation::Indent(1, -2)), "a: 1\nb: [x, y]\n");
    assert_eq!(
        apply(text, &Mutation::IndentWithTab(0)),
        "\ta: 1\n  b: [x, y]\n"
    );
    assert_eq!(
        apply(text, &Mutation::ReplaceScalar(0, 1, "[]")),
        "a: []\n  b: [x, y]\n"
    );
    assert_eq!(
        apply(text, &Mutation::ReplaceScalar(1, 4, "{}")),
        "a: 1\n  b: [{}, y]\n"
    );
    assert_eq!(apply(text, &Mutation::Truncate(3)), "a: ");
    // Inside a two-byte character: back to its start.
    assert_eq!(apply("aé", &Mutation::Truncate(2)), "a");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_examples_never_panic_and_locate_every_error(
        example in any::<Pick>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let (name, original) = &examples()[example % examples().len()];
        let mut text = original.clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        load_checked(name, &text)?;
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Generated valid Service and Namespace documents load exactly as written.

#[derive(Debug, Clone, Copy)]
enum Style {
    Block,
    Flow,
    Json,
}

#[derive(Debug, Clone, Copy)]
enum Quoting {
    /// Quote only what must be quoted.
    AsNeeded,
    Double,
    Single,
}

fn dns_label() -> impl Strategy<Value = String> {
    "[a-z]([a-z0-9-]{0,30}[a-z0-9])?"
}

fn label_key() -> impl Strategy<Value = String> {
    "([a-z][a-z0-9]{0,6}\\.[a-z]{2,4}/)?[a-zA-Z][a-zA-Z0-9_.-]{0,15}"
}

/// Any printable text, including what YAML would read as another type.
fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9.-]{0,12}",
        select(
            &[
                "", "true", "null", "~", "8080", "1.5", "0x10", "- a", "a: b", "#x", "[1]"
            ][..]
        )
        .prop_map(str::to_string),
        "[ -~\u{a0}-\u{d7ff}]{0,24}",
    ]
}

fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(label_key(), text_value(), 0..4)
}

fn metadata(namespaced: bool) -> impl Strategy<Value = ObjectMeta> {
    let namespace = if namespaced {
        proptest::option::of(dns_label()).boxed()
    } else {
        Just(None).boxed()
    };
    (dns_label(), namespace, string_map(), string_map()).prop_map(
        |(name, namespace, labels, annotations)| ObjectMeta {
            name,
            namespace,
            labels,
            annotations,
            ..ObjectMeta::default()
        },
    )
}

fn service_port() -> impl Strategy<Value = ServicePort> {
    (
        proptest::option::of("[a-z][a-z0-9-]{0,10}"),
        any::<u16>(),
        proptest::option::of(prop_oneof![
            any::<u16>().prop_map(IntOrString::Int),
            "[a-z][a-z0-9-]{0,10}".prop_map(IntOrString::String),
        ]),
        select(&[Protocol::Tcp, Protocol::Udp, Protocol::Sctp][..]),
        proptest::option::of(select(&["http", "http2", "grpc", "kubernetes.io/h2c"][..])),
    )
        .prop_map(
            |(name, port, target_port, protocol, app_protocol)| ServicePort {
                name,
                port,
                target_port,
                protocol,
                app_protocol: app_protocol.map(str::to_string),
                node_port: None,
            },
        )
}

/// A Namespace or a Service.
fn doc() -> impl Strategy<Value = Resource> {
    prop_oneof![
        metadata(false).prop_map(|metadata| Resource::Namespace(Namespace {
            metadata,
            spec: None,
            status: None,
        })),
        (
            metadata(true),
            string_map(),
            proptest::collection::vec(service_port(), 0..4)
        )
            .prop_map(|(metadata, selector, ports)| Resource::Service(Service {
                metadata,
                spec: ServiceSpec {
                    selector,
                    ports,
                    ..ServiceSpec::default()
                },
                status: None,
            })),
    ]
}

/// Writes a YAML scalar that reads back as the string `s`.
fn yaml_str(s: &str, q: Quoting) -> String {
    let plain_ok = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/' | '_'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "null" | "true" | "false" | "nan" | "inf"
        );
    match q {
        Quoting::AsNeeded if plain_ok => s.to_string(),
        Quoting::Single => format!("'{}'", s.replace('\'', "''")),
        _ => serde_json::to_string(s).unwrap(),
    }
}

/// The document as JSON: `apiVersion`, `kind`, then the resource's fields in declaration order.
fn json_value(doc: &Resource) -> serde_json::Value {
    let (kind, fields) = match doc {
        Resource::Namespace(n) => ("Namespace", serde_json::to_value(n).unwrap()),
        Resource::Service(s) => ("Service", serde_json::to_value(s).unwrap()),
        other => unreachable!("not generated: {}", other.id()),
    };
    let mut obj = serde_json::Map::new();
    obj.insert("apiVersion".into(), "v1".into());
    obj.insert("kind".into(), kind.into());
    obj.extend(fields.as_object().unwrap().clone());
    serde_json::Value::Object(obj)
}

/// Renders one document; returns its text and the line (1-based, within it) of `metadata.name`.
fn render(doc: &Resource, style: Style, q: Quoting) -> (String, usize) {
    let value = json_value(doc);
    match style {
        Style::Json => (format!("{value}\n"), 1),
        Style::Flow => {
            let mut out = format!(
                "apiVersion: v1\nkind: {}\n",
                value["kind"].as_str().unwrap()
            );
            out += &format!("metadata: {}\n", flow(&value["metadata"], q));
            if let Some(spec) = value.get("spec") {
                out += &format!("spec: {}\n", flow(spec, q));
            }
            (out, 3)
        }
        Style::Block => {
            let mut out = String::new();
            let mut name_line = 0;
            for (k, v) in value.as_object().unwrap() {
                block(k, v, 0, q, &mut out);
                if k == "metadata" {
                    // metadata's first key is `name` (struct field order).
                    name_line = out.lines().count()
                        - out
                            .lines()
                            .rev()
                            .take_while(|l| l.starts_with("  "))
                            .count()
                        + 1;
                }
            }
            (out, name_line)
        }
    }
}

fn flow(v: &serde_json::Value, q: Quoting) -> String {
    use serde_json::Value;
    match v {
        Value::String(s) => yaml_str(s, q),
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", yaml_str(k, q), flow(v, q)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(|v| flow(v, q)).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn block(key: &str, v: &serde_json::Value, indent: usize, q: Quoting, out: &mut String) {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    let key = yaml_str(key, q);
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str(&format!("{pad}{key}:\n"));
            for (k, v) in m {
                block(k, v, indent + 2, q, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str(&format!("{pad}{key}:\n"));
            for item in a {
                // `- ` then the item's first key on the same line, the rest under it.
                let mut inner = String::new();
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        for (k, v) in m {
                            block(k, v, indent + 2, q, &mut inner);
                        }
                    }
                    other => inner = format!("{pad}  {}\n", flow(other, q)),
                }
                out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
            }
        }
        other => out.push_str(&format!("{pad}{key}: {}\n", flow(other, q))),
    }
}

fn docs() -> impl Strategy<Value = Vec<Resource>> {
    proptest::collection::vec(doc(), 1..4).prop_map(|mut docs| {
        // Resources must be unique per kind, namespace and name.
        for (i, d) in docs.iter_mut().enumerate() {
            let meta = match d {
                Resource::Namespace(n) => &mut n.metadata,
                Resource::Service(s) => &mut s.metadata,
                other => unreachable!("not generated: {}", other.id()),
            };
            meta.name = format!("{}-{i}", meta.name);
        }
        docs
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_services_and_namespaces_load_as_written(
        docs in docs(),
        style in select(&[Style::Block, Style::Flow, Style::Json][..]),
        quoting in select(&[Quoting::AsNeeded, Quoting::Double, Quoting::Single][..]),
        comment in any::<bool>(),
    ) {
        let mut text = String::new();
        if comment {
            text += "# generated\n";
        }
        let mut expected = Vec::new();
        for (i, d) in docs.iter().enumerate() {
            if i > 0 || comment {
                text += "---\n";
            }
            let start = text.lines().count() + 1;
            let (body, name_line) = render(d, style, quoting);
            text += &body;
            expected.push((d.clone(), start, start + name_line - 1));
        }

        let out = load_checked("gen.yaml", &text)?;
        prop_assert!(out.errors.is_empty(), "{}\n{:#?}", text, out.errors);
        prop_assert!(out.config.skipped.is_empty());
        prop_assert_eq!(out.config.resources.len(), expected.len(), "{}", text);
        for (loaded, (resource, start, name_line)) in out.config.resources.iter().zip(&expected) {
            prop_assert_eq!(&loaded.resource, resource, "{}", text);
            prop_assert_eq!(loaded.origin.line, *start, "{}", text);
            prop_assert_eq!(loaded.locate("metadata.name").line, *name_line, "{}", text);
        }
    }
}
