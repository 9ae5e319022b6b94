//! How verbs print data: `-o table|json|yaml` ([`Format`]) the same way in each, through
//! stdout as a whole (an error, not a panic, when it is closed); and [`quiet_on_closed_pipe`],
//! so that `weft get pods -o json | head -1` ends quietly with status 0 wherever a verb still
//! prints with `println!`.
//!
//! No verb colours its output: tables and JSON are the same on a terminal and in a pipe (only
//! the text logs of the long-running roles are coloured, on a terminal without `NO_COLOR`).

use std::io::Write;

use serde_json::Value;

/// `-o`: a table for people (`text` and `wide` read the same), or JSON or YAML for tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    #[value(alias = "text", alias = "wide")]
    Table,
    Json,
    Yaml,
}

/// Prints `value` as JSON or YAML, or the `table` (computed only then).
pub fn print(format: Format, value: &Value, table: impl FnOnce() -> String) -> std::io::Result<()> {
    let text = match format {
        Format::Table => table(),
        Format::Json => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
        Format::Yaml => crate::yaml_out::to_yaml(value) + "\n",
    };
    write(&text)
}

/// Writes `text` to stdout and flushes: a closed pipe is an error the caller returns (`main`
/// ends quietly on it).
pub fn write(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Whether `e` (or what caused it) is a write to a closed pipe: the reader's choice (`| head`),
/// not a failure.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// From now on, a `println!` to a closed stdout ends the process quietly with status 0 instead
/// of a panic message (Rust ignores SIGPIPE, so the write fails and `println!` panics). Other
/// panics are reported as before.
pub fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = (payload.downcast_ref::<String>().map(String::as_str))
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if closed_pipe_panic(message) {
            std::process::exit(0);
        }
        report(info)
    }));
}

/// The message of `println!`'s panic on a closed pipe.
fn closed_pipe_panic(message: &str) -> bool {
    // EPIPE is 32 on Linux.
    message.starts_with("failed printing to std") && message.contains("(os error 32)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_told_from_other_errors() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = anyhow::Error::from(pipe).context("printing pods");
        assert!(is_closed_pipe(&e));
        assert!(!is_closed_pipe(&anyhow::anyhow!("no mesh named x")));
        // What `println!` panics with (std's words).
        let os = std::io::Error::from_raw_os_error(32);
        assert!(closed_pipe_panic(&format!(
            "failed printing to stdout: {os}"
        )));
        assert!(!closed_pipe_panic("index out of bounds"));
    }

    #[test]
    fn every_format_has_its_name_and_text_reads_as_table() {
        use clap::ValueEnum;
        let parse = |s: &str| Format::from_str(s, true).unwrap();
        assert_eq!(parse("table"), Format::Table);
        assert_eq!(parse("text"), Format::Table);
        assert_eq!(parse("wide"), Format::Table);
        assert_eq!(parse("json"), Format::Json);
        assert_eq!(parse("yaml"), Format::Yaml);
    }
}
