//! A proxy's metrics text (`GET /metrics` on port 15020, Prometheus text as
//! `prometheus_client` writes it, OpenMetrics style) → the [`Sample`] of that pod. Only the
//! request counter and the request latency histogram are read, summed over every label set;
//! comments, `# EOF`, other families, timestamps and exemplars are passed over.
//!
//! The families are Istio's, as every weft proxy exports them: `istio_requests_total`
//! (status in `response_code`) and `istio_request_duration_milliseconds`. Both `reporter`s of
//! one request (the client's proxy and the server's) are summed: a page holds the series its
//! own proxy reports, and the judge compares a workload with itself, so the sum is fair.

use std::collections::BTreeMap;

use super::Error;
use super::sample::{Sample, merge};

/// Request counters, in order of preference: the sample name and the label holding the HTTP
/// status code (empty or `0` when no response came).
pub const REQUESTS: [(&str, &str); 1] = [("istio_requests_total", "response_code")];

/// Request latency histograms, in order of preference: the family name (before `_bucket`,
/// `_sum`, `_count`) and how many seconds one unit of its boundaries is.
pub const DURATIONS: [(&str, f64); 1] = [("istio_request_duration_milliseconds", 0.001)];

/// The label holding a histogram bucket's upper bound.
pub const LE: &str = "le";

/// The longest piece of a malformed line quoted back in an error.
const QUOTED: usize = 160;

type Labels = Vec<(String, String)>;

/// Which relevant sample a line holds, with the index of its spelling.
enum Kind {
    Requests(usize),
    Bucket(usize),
    /// `_sum` and `_count`: checked for form, not needed (`+Inf` is the count).
    Other,
}

fn kind(name: &str) -> Option<Kind> {
    if let Some(i) = REQUESTS.iter().position(|(n, _)| *n == name) {
        return Some(Kind::Requests(i));
    }
    DURATIONS
        .iter()
        .enumerate()
        .find_map(|(i, (family, _))| match name.strip_prefix(family)? {
            "_bucket" => Some(Kind::Bucket(i)),
            "_sum" | "_count" => Some(Kind::Other),
            _ => None,
        })
}

/// The [`Sample`] of one scrape. A malformed line of a family read here is an error naming
/// its line number; anything else that does not parse is ignored.
pub fn parse(text: &str) -> Result<Sample, Error> {
    // Per spelling: requests, errors, whether any line was seen.
    let mut counts = [(0.0, 0.0, false); REQUESTS.len()];
    let mut histograms: [BTreeMap<Labels, Vec<(f64, f64)>>; DURATIONS.len()] = Default::default();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .unwrap_or(line.len());
        let Some(kind) = kind(&line[..name_end]) else {
            continue;
        };
        let bad = |reason: String| Error::Scrape {
            line: index + 1,
            reason,
            text: raw.chars().take(QUOTED).collect(),
        };
        let (labels, value) = series(&line[name_end..]).map_err(bad)?;
        match kind {
            Kind::Requests(i) => {
                let value = count(value).map_err(bad)?;
                let status_label = REQUESTS[i].1;
                let status = label(&labels, status_label)
                    .ok_or_else(|| bad(format!("no `{status_label}` label")))?;
                let failed = failed(status).map_err(bad)?;
                let (requests, errors, seen) = &mut counts[i];
                *requests += value;
                if failed {
                    *errors += value;
                }
                *seen = true;
            }
            Kind::Bucket(i) => {
                let value = count(value).map_err(bad)?;
                let le = label(&labels, LE).ok_or_else(|| bad(format!("no `{LE}` label")))?;
                let le = match le.parse::<f64>() {
                    Ok(le) if !le.is_nan() => le * DURATIONS[i].1,
                    _ => return Err(bad(format!("bucket bound `{le}` is not a number"))),
                };
                let mut key: Labels = labels.into_iter().filter(|(n, _)| n != LE).collect();
                key.sort();
                histograms[i].entry(key).or_default().push((le, value));
            }
            Kind::Other => {}
        }
    }
    let (requests, errors, _) = counts
        .into_iter()
        .find(|c| c.2)
        .unwrap_or((0.0, 0.0, false));
    let buckets = match histograms.iter_mut().find(|h| !h.is_empty()) {
        Some(series) => {
            for buckets in series.values_mut() {
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            let series: Vec<&[(f64, f64)]> = series.values().map(Vec::as_slice).collect();
            merge(&series)
        }
        None => Vec::new(),
    };
    Ok(Sample {
        requests,
        errors,
        buckets,
    })
}

/// Whether a request with this status failed: a 5xx, or no response (empty or `0`).
fn failed(status: &str) -> Result<bool, String> {
    if status.is_empty() {
        return Ok(true);
    }
    match status.parse::<u16>() {
        Ok(code) => Ok(code == 0 || code >= 500),
        Err(_) => Err(format!("status `{status}` is not an HTTP status code")),
    }
}

fn count(value: f64) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("count {value} is not a non-negative number"))
    }
}

fn label<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// What follows a sample's name: an optional `{label="value",…}` set, then the value (an
/// optional timestamp and exemplar after it are ignored).
fn series(rest: &str) -> Result<(Labels, f64), String> {
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inside) => label_set(inside)?,
        None => (Vec::new(), rest),
    };
    let value = rest.split_whitespace().next().ok_or("no value")?;
    let value = value
        .parse::<f64>()
        .map_err(|_| format!("value `{value}` is not a number"))?;
    Ok((labels, value))
}

/// The label set after its `{`, and what follows its `}`. Values may hold escaped quotes and
/// backslashes (`\"`, `\\`), newlines (`\n`), commas and braces.
fn label_set(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        if end == 0 {
            return Err(if s.is_empty() {
                "the label set is not closed".into()
            } else {
                "expected a label name".into()
            });
        }
        let name = &s[..end];
        s = s[end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("expected `=` after label `{name}`"))?
            .trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("expected a quoted value for label `{name}`"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => break s.len(),
                },
                Some((_, c)) => value.push(c),
                None => break s.len(),
            }
        };
        if close == s.len() {
            return Err(format!("the value of label `{name}` is not closed"));
        }
        labels.push((name.to_string(), value));
        s = s[close + 1..].trim_start();
        match s.strip_prefix(',') {
            Some(after) => s = after,
            None if s.starts_with('}') => {}
            None => return Err(format!("expected `,` or `}}` after label `{name}`")),
        }
    }
}

#[cfg(test)]
mod tests;
