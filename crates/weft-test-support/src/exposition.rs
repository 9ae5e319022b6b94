//! Prometheus pages read by the Python `prometheus_client` parsers: the strict text 0.0.4
//! parser (`prometheus_client.parser`) and the OpenMetrics one, as a scraper other than
//! Prometheus itself reads them.

use std::io::Write;
use std::process::{Command, Stdio};

/// Parses `text` with `module.function` (for example `prometheus_client.parser`,
/// `text_string_to_metric_families`): one `name type samples` line per family, or the
/// parser's error.
pub fn python_parse(module: &str, function: &str, text: &str) -> Result<String, String> {
    let script = format!(
        "import sys\nfrom {module} import {function}\n\
         for f in {function}(sys.stdin.read()):\n    print(f.name, f.type, len(f.samples))\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3 (with prometheus-client) does not run: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(format!(
            "{module}.{function} rejects the page: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// [`python_parse`] with the strict text 0.0.4 parser.
pub fn parse_text_0_0_4(text: &str) -> Result<String, String> {
    python_parse(
        "prometheus_client.parser",
        "text_string_to_metric_families",
        text,
    )
}
