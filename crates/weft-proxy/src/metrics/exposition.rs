//! The page `/metrics` and `/stats/prometheus` serve, in the format the scraper asks for:
//! Prometheus text 0.0.4 by default, OpenMetrics 1.0.0 when `Accept` prefers
//! `application/openmetrics-text`.
//!
//! `prometheus_client` writes OpenMetrics only. Strict 0.0.4 parsers reject parts of it (a
//! counter's `# TYPE` naming the family without `_total`, `# UNIT`, `_created` samples,
//! exemplars, `# EOF`), so [`render`] rewrites the page line by line for 0.0.4.

use prometheus_client::registry::Registry;

/// A format of the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// `application/openmetrics-text` with a quality at least that of any text format it
    /// accepts (`text/plain`, `text/*`, `*/*`); else text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let (mut open, mut text) = (0.0_f32, 0.0_f32);
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
            match media.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if open > 0.0 && open >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The page for `registries`, one after another, in `format`.
pub fn render(registries: &[&Registry], format: Format) -> String {
    let mut open = String::new();
    for r in registries {
        let _ = prometheus_client::encoding::text::encode_registry(&mut open, r);
    }
    match format {
        Format::OpenMetrics => {
            open.push_str("# EOF\n");
            open
        }
        Format::Text => to_text(&open),
    }
}

/// OpenMetrics (without `# EOF`) rewritten as text format 0.0.4.
fn to_text(open: &str) -> String {
    let mut out = String::with_capacity(open.len());
    // The family being written: its type, and its `# HELP` line held until its `# TYPE`
    // says what to name it.
    let mut kind = "";
    let mut help: Option<(&str, &str)> = None;
    for line in open.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, t) = match t {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gauge" | "histogram" | "summary" => (name.to_string(), t),
                _ => (name.to_string(), "untyped"),
            };
            kind = t;
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {}\n", escape_help(text)));
            }
            out.push_str(&format!("# TYPE {name} {t}\n"));
            continue;
        }
        if line.starts_with('#') {
            // `# UNIT`, `# EOF`: 0.0.4 has neither.
            continue;
        }
        let sample = without_exemplar(line);
        let name = sample.split(['{', ' ']).next().unwrap_or("");
        if name.ends_with("_created") && matches!(kind, "counter" | "histogram" | "summary") {
            continue;
        }
        out.push_str(sample);
        out.push('\n');
    }
    out
}

/// 0.0.4 escapes `\` in help text (`prometheus_client` writes it raw; it has no newline).
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\")
}

/// A sample line without its exemplar (` # {…} value`): the first ` # ` outside the labels'
/// quoted values.
fn without_exemplar(line: &str) -> &str {
    let (mut quoted, mut escaped, mut depth) = (false, false, 0);
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '{' if !quoted => depth += 1,
            '}' if !quoted => depth -= 1,
            '#' if !quoted && depth == 0 && line[..i].ends_with(' ') => {
                return line[..i].trim_end();
            }
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::histogram::Histogram;

    #[test]
    fn accept_picks_the_format() {
        let cases = [
            (None, Format::Text),
            (Some("*/*"), Format::Text),
            (Some("text/plain;version=0.0.4"), Format::Text),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                ),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0.2,text/plain;q=0.9"),
                Format::Text,
            ),
            (Some("application/openmetrics-text;q=0"), Format::Text),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn text_names_counters_with_total_and_drops_what_0_0_4_lacks() {
        let mut r = Registry::default();
        let c = Counter::<u64>::default();
        r.register("istio_requests", "Requests", c.clone());
        let h = Histogram::new([1.0]);
        r.register("weft_x_seconds", "X", h.clone());
        c.inc();
        h.observe(0.5);
        let text = render(&[&r], Format::Text);
        assert!(
            text.contains("# TYPE istio_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP istio_requests_total Requests.\n"),
            "{text}"
        );
        assert!(text.contains("istio_requests_total 1\n"), "{text}");
        assert!(text.contains("# TYPE weft_x_seconds histogram\n"), "{text}");
        assert!(
            !text.contains("EOF") && !text.contains("_created"),
            "{text}"
        );
        let open = render(&[&r], Format::OpenMetrics);
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(open.contains("# TYPE istio_requests counter\n"), "{open}");
    }

    #[test]
    fn exemplars_go_and_quoted_hashes_stay() {
        assert_eq!(
            without_exemplar(r#"a_total{x="1 # 2"} 3 # {t="u"} 1.0"#),
            r#"a_total{x="1 # 2"} 3"#
        );
        assert_eq!(without_exemplar("a 1"), "a 1");
    }
}
