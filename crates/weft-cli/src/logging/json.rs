//! The lines of `--log-format json`: one flat JSON object per event, each key once.
//!
//! tracing-subscriber's own JSON format nests the spans an event is in (`"span": {..}`,
//! `"spans": [..]`) and writes an event field named `level`, `target` or `timestamp` next to
//! the key of the same name, so a line may hold an object or the same key twice. Here a line
//! is `timestamp`, `level`, `message`, the event's fields, the fields of the spans it is in
//! (innermost first), then `target`:
//! - an event field named like one of those keys is written as `field.NAME`;
//! - a span field whose key the line already has is left out when the value is the same, and
//!   written as `SPAN.KEY` when it differs (the event's own value, then the innermost span's,
//!   keep the plain key).
//!
//! Every value is a string, a number or a boolean.

use std::fmt;
use std::io::Write as _;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The keys of every line, which no field may take.
const RESERVED: [&str; 4] = ["timestamp", "level", "message", "target"];

/// The event format of `--log-format json` (span fields recorded by [`JsonFields`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = start(*meta.level(), fields.message);
        for (key, value) in fields.rest {
            add_event_field(&mut line, key, value);
        }
        for span in ctx.event_scope().into_iter().flatten() {
            let extensions = span.extensions();
            let Some(recorded) = extensions.get::<FormattedFields<JsonFields>>() else {
                continue;
            };
            let Ok(map) = serde_json::from_str::<Map<String, Value>>(recorded) else {
                continue;
            };
            for (key, value) in map {
                add_span_field(&mut line, span.name(), key, value);
            }
        }
        line.insert("target".into(), meta.target().into());
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// A line of its own, outside any subscriber (a panic, the error that ends the process): on
/// stderr in one write, whatever the level filter says.
pub fn emit(level: Level, target: &str, message: String, fields: Vec<(&str, Value)>) {
    let text = standalone(level, target, message, fields);
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The line [`emit`] writes, with its newline.
pub fn standalone(
    level: Level,
    target: &str,
    message: String,
    fields: Vec<(&str, Value)>,
) -> String {
    let mut line = start(level, Some(Value::String(message)));
    for (key, value) in fields {
        add_event_field(&mut line, key.to_string(), value);
    }
    line.insert("target".into(), target.into());
    format!("{}\n", Value::Object(line))
}

/// A line's first keys: the time, the level and the message.
fn start(level: Level, message: Option<Value>) -> Map<String, Value> {
    let mut timestamp = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
    let mut line = Map::new();
    line.insert("timestamp".into(), timestamp.into());
    line.insert("level".into(), level.as_str().into());
    if let Some(m) = message {
        line.insert("message".into(), m);
    }
    line
}

fn add_event_field(line: &mut Map<String, Value>, key: String, value: Value) {
    let key = match RESERVED.contains(&key.as_str()) {
        true => format!("field.{key}"),
        false => key,
    };
    if !line.contains_key(&key) {
        line.insert(key, flat(value));
    }
}

fn add_span_field(line: &mut Map<String, Value>, span: &str, key: String, value: Value) {
    let value = flat(value);
    let key = match line.get(&key) {
        None if !RESERVED.contains(&key.as_str()) => key,
        Some(v) if *v == value => return,
        _ => format!("{span}.{key}"),
    };
    if !line.contains_key(&key) {
        line.insert(key, value);
    }
}

/// Objects and arrays (which the field recorders do not make) as their JSON text.
fn flat(value: Value) -> Value {
    match value {
        Value::Object(_) | Value::Array(_) => Value::String(value.to_string()),
        v => v,
    }
}

/// An event's message and its other fields, as JSON scalars.
#[derive(Debug, Default)]
struct Fields {
    message: Option<Value>,
    rest: Vec<(String, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => self.message = Some(value),
            name => self.rest.push((name.to_string(), value)),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        let v = i64::try_from(value).map_or_else(|_| value.to_string().into(), Value::from);
        self.put(field, v);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        let v = u64::try_from(value).map_or_else(|_| value.to_string().into(), Value::from);
        self.put(field, v);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value)
            .map_or_else(|| value.to_string().into(), Value::Number);
        self.put(field, v);
    }

    /// An error as its message (`Display`), not its `Debug` form.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}
