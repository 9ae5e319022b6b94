//! Log setup for the long-running roles: human-readable to stderr, or with `--log-format json`
//! one flat JSON object per line ([`json`]), the form `weft up` starts every process with.
//!
//! Text is coloured only when stderr is a terminal (and `NO_COLOR` is unset): a log file or a
//! pipe gets plain text. A process that logs JSON writes its panics and the error that ends it
//! as JSON lines too ([`fatal`]), so its log holds nothing else.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::JsonFields;

mod json;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Why the level could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum LevelError {
    #[error("invalid level {level:?}: {source}")]
    Invalid {
        level: String,
        source: tracing_subscriber::filter::ParseError,
    },
    /// The subscriber that the handle reloads is gone.
    #[error(transparent)]
    Reload(#[from] tracing_subscriber::reload::Error),
}

/// Changes the level at run time (`POST /logging?level=` on a proxy); the error is a
/// [`LevelError`].
pub type SetLevel = weft_proxy::SetLogLevel;

/// Whether this process logs JSON lines (set by [`init`]).
static JSON: AtomicBool = AtomicBool::new(false);

/// `level` is the default filter; `RUST_LOG` overrides it. Returns a handle that changes the
/// level later.
pub fn init(level: &str, format: Format) -> SetLevel {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    macro_rules! install {
        ($builder:expr) => {{
            let builder = $builder.with_env_filter(filter).with_filter_reloading();
            let handle = builder.reload_handle();
            let _ = builder.try_init();
            std::sync::Arc::new(move |level: &str| {
                let filter = EnvFilter::try_new(level).map_err(|source| LevelError::Invalid {
                    level: level.to_string(),
                    source,
                })?;
                handle.reload(filter).map_err(LevelError::from)?;
                Ok(())
            })
        }};
    }
    match format {
        Format::Text => install!(text_format(std::io::stderr, colour())),
        Format::Json => {
            JSON.store(true, Ordering::Relaxed);
            std::panic::set_hook(Box::new(panic_line));
            install!(json_format(std::io::stderr))
        }
    }
}

/// Colour only for a person at a terminal who did not turn it off.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The text format, to `writer`.
fn text_format<W>(
    writer: W,
    ansi: bool,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    tracing_subscriber::fmt::format::Format,
    tracing_subscriber::filter::LevelFilter,
    W,
>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(ansi)
}

/// The JSON format ([`json::FlatJson`]), to `writer`.
fn json_format<W>(
    writer: W,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    JsonFields,
    json::FlatJson,
    tracing_subscriber::filter::LevelFilter,
    W,
>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .fmt_fields(JsonFields::new())
        .event_format(json::FlatJson)
}

/// A panic of a process that logs JSON, as a JSON line (with the backtrace when
/// `RUST_BACKTRACE` asks for one).
fn panic_line(info: &std::panic::PanicHookInfo<'_>) {
    let payload = (info.payload().downcast_ref::<&str>().copied())
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let mut fields = vec![];
    if let Some(at) = info.location() {
        fields.push(("location", at.to_string().into()));
    }
    if let Some(name) = std::thread::current().name() {
        fields.push(("thread", name.into()));
    }
    let trace = std::backtrace::Backtrace::capture();
    if trace.status() == std::backtrace::BacktraceStatus::Captured {
        fields.push(("backtrace", trace.to_string().into()));
    }
    json::emit(
        tracing::Level::ERROR,
        "panic",
        format!("panicked: {payload}"),
        fields,
    );
}

/// The line a role prints once it serves (its addresses, for a person or a script reading
/// text): on stderr in text, left out in JSON, where the role's own event says as much in
/// fields.
pub fn banner(line: std::fmt::Arguments<'_>) {
    if !JSON.load(Ordering::Relaxed) {
        eprintln!("{line}");
    }
}

/// The error that ends the process: `weft: error: …` on stderr, or a JSON line when the
/// process logs JSON.
pub fn fatal(e: &anyhow::Error) {
    report(
        if JSON.load(Ordering::Relaxed) {
            Format::Json
        } else {
            Format::Text
        },
        "weft",
        &format!("{e:#}"),
    );
}

/// An error line in `format`, outside the subscriber (which may not be installed, or may
/// filter errors out): `TARGET: error: MESSAGE`, or a JSON line with that target.
pub fn report(format: Format, target: &str, message: &str) {
    match format {
        Format::Text => eprintln!("{target}: error: {message}"),
        Format::Json => json::emit(tracing::Level::ERROR, target, message.to_string(), vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The callback's error is a [`LevelError`] naming the level, with the parser's error as
    /// its cause; the filter is parsed before anything is reloaded, so this holds whether or
    /// not this test's subscriber became the global one.
    #[test]
    fn an_invalid_level_is_named_with_the_parser_error() {
        let set = init("info", Format::Text);
        let err = set("weft=loud").unwrap_err();
        let parser = EnvFilter::try_new("weft=loud").unwrap_err().to_string();
        assert_eq!(
            err.to_string(),
            format!("invalid level \"weft=loud\": {parser}")
        );
        let typed = err.downcast_ref::<LevelError>().expect("a LevelError");
        assert!(matches!(typed, LevelError::Invalid { .. }), "{typed:?}");
        assert!(std::error::Error::source(typed).is_some());
    }

    /// Lines written to a buffer the test reads back.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    /// An event inside two spans whose fields clash with the event's, with each other and
    /// with the line's own keys: one flat object, each key once, the event's values under the
    /// plain keys and a differing span value under `SPAN.KEY`.
    #[test]
    fn a_json_line_from_an_event_inside_spans_is_flat_with_each_key_once() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = json_format(move || writer.clone())
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("request", pod = "cart-0", target = "10.0.0.1:80");
            let _outer = outer.enter();
            let inner = tracing::info_span!("stream", pod = "cart-0", peer = "10.0.0.2:1");
            let _inner = inner.enter();
            let tunnel: Option<std::net::SocketAddr> = None;
            let error = std::io::Error::other("reset by peer");
            tracing::info!(
                pod = "cart-0",
                peer = "10.0.0.3:2",
                level = 3,
                tunnel = tunnel.map(tracing::field::display),
                error = &error as &dyn std::error::Error,
                "hello {}",
                "there"
            );
        });
        let lines = buf.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = weft_test_support::log_line::check(&lines[0])
            .unwrap_or_else(|e| panic!("{e}: {}", lines[0]));
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "message",
                "pod",
                "peer",
                "field.level",
                "error",
                "stream.peer",
                "request.target",
                "target"
            ],
            "{}",
            lines[0]
        );
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "hello there");
        assert_eq!(line["peer"], "10.0.0.3:2");
        assert_eq!(line["field.level"], 3);
        assert_eq!(line["error"], "reset by peer");
        assert_eq!(line["stream.peer"], "10.0.0.2:1");
        assert_eq!(line["request.target"], "10.0.0.1:80");
        assert_eq!(line["target"], module_path!());
    }

    /// The panic and fatal-error lines are flat JSON objects too, one line each, and a field
    /// named like a key of every line does not repeat it.
    #[test]
    fn a_line_outside_the_subscriber_is_a_flat_object() {
        let text = json::standalone(
            tracing::Level::ERROR,
            "panic",
            "panicked: boom\nat two lines".into(),
            vec![
                ("location", "src/main.rs:1:1".into()),
                ("target", "x".into()),
            ],
        );
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        let line = weft_test_support::log_line::check(text.trim_end())
            .unwrap_or_else(|e| panic!("{e}: {text}"));
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "message",
                "location",
                "field.target",
                "target"
            ]
        );
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["target"], "panic");
    }

    /// Colour is the caller's choice: without it, text lines carry no escape codes.
    #[test]
    fn text_without_colour_has_no_escape_codes() {
        for ansi in [false, true] {
            let buf = Buf::default();
            let writer = buf.clone();
            let subscriber = text_format(move || writer.clone(), ansi).finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::warn!(pod = "cart-0", "refused");
            });
            let text = buf.lines().join("\n");
            assert_eq!(text.contains('\u{1b}'), ansi, "{text:?}");
            assert!(text.contains("refused"), "{text:?}");
        }
    }
}
