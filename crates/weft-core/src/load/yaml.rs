//! YAML (and JSON, which is YAML) into `serde_json::Value` documents, remembering where every
//! key and value stood so later errors can point at file:line:column.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// Just past the last character of `text`.
    fn end_of(text: &str) -> Pos {
        let mut end = Pos { line: 1, column: 1 };
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' | '\r' => {
                    end.line += 1;
                    end.column = 1;
                }
                _ => end.column += 1,
            }
        }
        end
    }
}

/// Where each field path (`spec.ports[0].port`) of a document stood: its key and its value.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    map: HashMap<String, (Pos, Pos)>,
}

impl Positions {
    /// Position of the value at `path`, or of the nearest enclosing value that has one.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.lookup(path).map(|(_, v)| v)
    }

    /// Whether `path` itself (not only an enclosing value) has a position.
    pub fn contains(&self, path: &str) -> bool {
        self.map.contains_key(path)
    }

    /// Position of the key at `path` (for "unknown field"), else of its value.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.lookup(path).map(|(k, _)| k)
    }

    fn lookup(&self, path: &str) -> Option<(Pos, Pos)> {
        let mut p = path;
        loop {
            if let Some(hit) = self.map.get(p) {
                return Some(*hit);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// One document of a stream.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub positions: Positions,
    /// Where the document's content starts.
    pub start: Pos,
}

/// A syntax error, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

const MAX_DEPTH: usize = 64;
const MAX_NODES: usize = 500_000;

/// Parses every document of `text`. Documents before a syntax error are returned with it.
pub fn parse_documents(text: &str) -> (Vec<Document>, Option<SyntaxError>) {
    let mut b = Builder {
        events: Parser::new_from_str(text),
        end: Pos::end_of(text),
        anchors: HashMap::new(),
        nodes: 0,
        positions: Positions::default(),
    };
    let mut docs = Vec::new();
    loop {
        match b.next() {
            Ok(Some((Event::DocumentStart(_), _))) => {}
            Ok(Some((Event::StreamEnd, _))) | Ok(None) => return (docs, None),
            Ok(Some((Event::DocumentEnd | Event::StreamStart | Event::Nothing, _))) => continue,
            Ok(Some(_)) => continue,
            Err(e) => return (docs, Some(e)),
        }
        // Inside a document: one node, then DocumentEnd.
        b.positions = Positions::default();
        let node = match b.next() {
            Ok(Some((Event::DocumentEnd, span))) => Ok((Value::Null, b.pos(&span.start))),
            Ok(Some((ev, span))) => b.node(ev, span, String::new(), 0),
            Ok(None) => return (docs, None),
            Err(e) => Err(e),
        };
        match node {
            Ok((value, start)) => {
                let positions = std::mem::take(&mut b.positions);
                docs.push(Document {
                    value,
                    positions,
                    start,
                });
            }
            Err(e) => return (docs, Some(e)),
        }
    }
}

struct Builder<'a> {
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    /// Where the text ends: no position lies beyond.
    end: Pos,
    anchors: HashMap<usize, Value>,
    nodes: usize,
    positions: Positions,
}

impl<'a> Builder<'a> {
    /// The position of a parser mark. The parser puts the end of a text that lacks a final line
    /// break on the line after it, which does not exist: that is moved back to the text's end.
    fn pos(&self, mark: &Marker) -> Pos {
        let pos = Pos {
            line: mark.line(),
            column: mark.col() + 1,
        };
        pos.min(self.end)
    }

    fn next(&mut self) -> Result<Option<(Event<'a>, Span)>, SyntaxError> {
        match self.events.next() {
            None => Ok(None),
            Some(Ok(ev)) => Ok(Some(ev)),
            Some(Err(e)) => Err(SyntaxError {
                pos: self.pos(e.marker()),
                message: format!("YAML syntax error: {}", e.info()),
            }),
        }
    }

    fn count(&mut self, n: usize, span: &Span) -> Result<(), SyntaxError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(SyntaxError {
                pos: self.pos(&span.start),
                message: format!(
                    "document too large: more than {MAX_NODES} values (are aliases expanding without end?)"
                ),
            });
        }
        Ok(())
    }

    fn node(
        &mut self,
        ev: Event<'a>,
        span: Span,
        path: String,
        depth: usize,
    ) -> Result<(Value, Pos), SyntaxError> {
        let pos = self.pos(&span.start);
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!("nested more than {MAX_DEPTH} levels deep"),
            });
        }
        self.count(1, &span)?;
        let (value, anchor) = match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let force_string = tag.as_ref().is_some_and(|t| t.suffix == "str");
                (scalar(&text, style, force_string), anchor)
            }
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().ok_or_else(|| SyntaxError {
                    pos,
                    message: "alias refers to an unknown anchor".into(),
                })?;
                self.count(weight(&v), &span)?;
                (v, 0)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        Some((Event::SequenceEnd, _)) => break,
                        Some((ev, span)) => {
                            let p = format!("{path}[{}]", items.len());
                            let (v, vpos) = self.node(ev, span, p.clone(), depth + 1)?;
                            self.positions.map.insert(p, (vpos, vpos));
                            items.push(v);
                        }
                        None => return Err(eof(pos)),
                    }
                }
                (Value::Array(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut map = Map::new();
                loop {
                    let (key_ev, key_span) = match self.next()? {
                        Some((Event::MappingEnd, _)) => break,
                        Some(kv) => kv,
                        None => return Err(eof(pos)),
                    };
                    let key_pos = self.pos(&key_span.start);
                    let key = match key_ev {
                        Event::Scalar(text, ..) => text.into_owned(),
                        _ => {
                            return Err(SyntaxError {
                                pos: key_pos,
                                message: "mapping keys must be plain strings".into(),
                            });
                        }
                    };
                    let p = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    let (vev, vspan) = self.next()?.ok_or_else(|| eof(pos))?;
                    let (v, vpos) = self.node(vev, vspan, p.clone(), depth + 1)?;
                    if map.contains_key(&key) {
                        let first = self.positions.key(&p).unwrap_or(key_pos);
                        return Err(SyntaxError {
                            pos: key_pos,
                            message: format!(
                                "duplicate key `{key}` (first at line {}); keep one",
                                first.line
                            ),
                        });
                    }
                    self.positions.map.insert(p, (key_pos, vpos));
                    map.insert(key, v);
                }
                (Value::Object(map), anchor)
            }
            _ => {
                return Err(SyntaxError {
                    pos,
                    message: "unexpected YAML event".into(),
                });
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok((value, pos))
    }
}

fn eof(pos: Pos) -> SyntaxError {
    SyntaxError {
        pos,
        message: "unexpected end of input".into(),
    }
}

fn weight(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(weight).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(weight).sum::<usize>(),
        _ => 1,
    }
}

/// YAML 1.2 core schema: plain scalars may be null, booleans or numbers; quoted ones are strings.
fn scalar(text: &str, style: ScalarStyle, force_string: bool) -> Value {
    if force_string || style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(text) {
        return Value::Number(n);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<Number> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude).ok()?;
        Some(Number::from(-v))
    } else {
        Some(Number::from(magnitude))
    }
}

fn looks_like_float(text: &str) -> bool {
    let t = text.trim_start_matches(['-', '+']);
    !t.is_empty()
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_point_at_keys_and_values() {
        let (docs, err) = parse_documents("a: 1\nb:\n  - x: \"2\"\n    y: true\n---\nc: ~\n");
        assert!(err.is_none());
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.value["b"][0]["x"], Value::String("2".into()));
        assert_eq!(d.value["b"][0]["y"], Value::Bool(true));
        assert_eq!(d.positions.key("b[0].y"), Some(Pos { line: 4, column: 5 }));
        assert_eq!(
            d.positions.value("b[0].x"),
            Some(Pos { line: 3, column: 8 })
        );
        // Unknown deeper paths fall back to the nearest known one.
        assert_eq!(
            d.positions.value("b[0].x.z"),
            Some(Pos { line: 3, column: 8 })
        );
        assert_eq!(docs[1].value["c"], Value::Null);
        assert_eq!(docs[1].start.line, 6);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let (_, err) = parse_documents("a: 1\nb: 2\na: 3\n");
        let err = err.unwrap();
        assert_eq!(err.pos.line, 3);
        assert!(
            err.message.contains("duplicate key `a` (first at line 1)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn aliases_expand_but_cannot_explode() {
        let (docs, err) = parse_documents("a: &x [1, 2]\nb: *x\n");
        assert!(err.is_none());
        assert_eq!(docs[0].value["b"], serde_json::json!([1, 2]));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let r = format!("*a{}", i - 1);
            bomb += &format!("a{i}: &a{i} [{r}, {r}, {r}, {r}, {r}, {r}, {r}, {r}, {r}, {r}]\n");
        }
        let (_, err) = parse_documents(&bomb);
        assert!(err.unwrap().message.contains("too large"));
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let (docs, _) = parse_documents("[1, -2, 0x1f, 1.5, '3', yes, null, 08, 1e3]");
        assert_eq!(
            docs[0].value,
            serde_json::json!([1, -2, 31, 1.5, "3", "yes", null, 8, 1000.0])
        );
    }

    #[test]
    fn errors_at_the_end_stay_inside_the_text() {
        // Without a final line break the parser reports the end on the line after the last.
        let (_, err) = parse_documents("a: 1\nb: [x,");
        assert_eq!(err.unwrap().pos, Pos { line: 2, column: 7 });
        let (_, err) = parse_documents("a: 1\r\nb: [");
        assert_eq!(err.unwrap().pos, Pos { line: 2, column: 5 });
        // With one, the end is the start of the (empty) next line.
        let (_, err) = parse_documents("a: [x,\n");
        assert_eq!(err.unwrap().pos, Pos { line: 2, column: 1 });
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(10_000);
        let (_, err) = parse_documents(&text);
        assert!(err.is_some());
    }
}
