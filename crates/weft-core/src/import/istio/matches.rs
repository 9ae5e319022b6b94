//! The pieces of an Istio HTTP route that map field by field: request matches, retries and
//! durations; and the one place where the two models order rules differently (Istio tries
//! routes in order, the Gateway API by specificity), which [`reordered`] detects.

use serde_json::{Map, Value, json};

use super::types::{HttpMatch, Retries, StringMatch};
use crate::duration::Duration;

/// How a converted match selects the path; a URL rewrite depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// No path condition: every path.
    Any,
    Prefix,
    Exact,
    Regex,
}

/// A converted match.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub value: Value,
    pub path: PathKind,
}

/// An Istio match as a Gateway API match; `Err` says why it cannot be one. `at` is the
/// match's Istio path (`http[0].match[1]`); `notes` collects differences that do convert.
pub fn http_match(m: &HttpMatch, at: &str, notes: &mut Vec<String>) -> Result<Match, String> {
    let not = |field: &str, why: &str| Err(format!("{at}.{field}: {why}"));
    if m.source_labels.is_some() {
        return not(
            "sourceLabels",
            "weft routes do not match on the calling workload",
        );
    }
    if m.source_namespace.is_some() {
        return not(
            "sourceNamespace",
            "weft routes do not match on the caller's namespace",
        );
    }
    if m.port.is_some() {
        return not(
            "port",
            "a weft route applies to a Service's ports through its parentRefs, not per rule",
        );
    }
    if m.authority.is_some() {
        return not(
            "authority",
            "weft routes match host names only per route (hostnames, on Gateway parents)",
        );
    }
    if m.scheme.is_some() {
        return not("scheme", "weft routes do not match on the scheme");
    }
    if m.without_headers.is_some() {
        return not(
            "withoutHeaders",
            "Gateway API matches cannot require a header to be absent",
        );
    }
    if m.ignore_uri_case == Some(Value::Bool(true)) {
        return not(
            "ignoreUriCase",
            "Gateway API path matches are case-sensitive",
        );
    }
    if m.gateways.is_some() {
        return not(
            "gateways",
            "a weft rule applies to every parent of its route",
        );
    }
    if let Some(key) = m.rest.keys().next() {
        return not(key, "weft has no equivalent");
    }
    if m.name.is_some() {
        notes.push(format!(
            "{at}.name: dropped (Gateway API matches have no name)"
        ));
    }
    if m.stat_prefix.is_some() {
        notes.push(format!(
            "{at}.statPrefix: dropped (weft's metrics are per route)"
        ));
    }
    let mut out = Map::new();
    let mut path = PathKind::Any;
    if let Some(uri) = &m.uri {
        let (kind, value) = string_match(uri, &format!("{at}.uri"))?;
        let (t, v) = match kind {
            Kind::Exact => (PathKind::Exact, value),
            Kind::Regex => (PathKind::Regex, value),
            Kind::Prefix => {
                if !(value.ends_with('/') || value.is_empty()) {
                    notes.push(format!(
                        "{at}.uri prefix {value}: Istio also matches {value}-and-more ({value}x); PathPrefix matches {value} and {value}/... only"
                    ));
                }
                (
                    PathKind::Prefix,
                    if value.is_empty() { "/".into() } else { value },
                )
            }
            Kind::Present => (PathKind::Any, "/".into()),
        };
        path = t;
        if t != PathKind::Any {
            let ty = match t {
                PathKind::Exact => "Exact",
                PathKind::Regex => "RegularExpression",
                _ => "PathPrefix",
            };
            out.insert("path".into(), json!({"type": ty, "value": v}));
        }
    }
    let headers = string_matches(&m.headers, &format!("{at}.headers"))?;
    if !headers.is_empty() {
        out.insert("headers".into(), Value::Array(headers));
    }
    let query = string_matches(&m.query_params, &format!("{at}.queryParams"))?;
    if !query.is_empty() {
        out.insert("queryParams".into(), Value::Array(query));
    }
    if let Some(method) = &m.method {
        match string_match(method, &format!("{at}.method"))? {
            (Kind::Exact, v) if METHODS.contains(&v.to_ascii_uppercase().as_str()) => {
                out.insert("method".into(), Value::String(v.to_ascii_uppercase()));
            }
            _ => {
                return not(
                    "method",
                    "Gateway API matches one exact method (GET, POST, ...)",
                );
            }
        }
    }
    Ok(Match {
        value: Value::Object(out),
        path,
    })
}

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

enum Kind {
    Exact,
    Prefix,
    Regex,
    /// `{}`: the header is present.
    Present,
}

fn string_match(m: &StringMatch, at: &str) -> Result<(Kind, String), String> {
    if let Some(key) = m.rest.keys().next() {
        return Err(format!("{at}.{key}: weft has no equivalent"));
    }
    Ok(match (&m.exact, &m.prefix, &m.regex) {
        (Some(v), None, None) => (Kind::Exact, v.clone()),
        (None, Some(v), None) => (Kind::Prefix, v.clone()),
        (None, None, Some(v)) => (Kind::Regex, v.clone()),
        (None, None, None) => (Kind::Present, String::new()),
        _ => return Err(format!("{at}: more than one of exact, prefix, regex")),
    })
}

/// Header or query matches: exact ones exact, prefixes and presence as regular expressions.
fn string_matches(
    map: &std::collections::BTreeMap<String, StringMatch>,
    at: &str,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (name, m) in map {
        let (ty, value) = match string_match(m, &format!("{at}.{name}"))? {
            (Kind::Exact, v) => ("Exact", v),
            (Kind::Regex, v) => ("RegularExpression", v),
            (Kind::Prefix, v) => ("RegularExpression", format!("{}.*", regex_escape(&v))),
            (Kind::Present, _) => ("RegularExpression", ".*".into()),
        };
        let mut h = Map::new();
        if ty != "Exact" {
            h.insert("type".into(), ty.into());
        }
        h.insert("name".into(), name.clone().into());
        h.insert("value".into(), value.into());
        out.push(Value::Object(h));
    }
    Ok(out)
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An Istio duration (`10s`, `1.5s`, `100ms`, `1m`) as weft writes it.
pub fn duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration");
    let mut nanos: u128 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let per: f64 = match &rest[..unit_len] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        nanos += (number * per).round() as u128;
    }
    format!("{nanos}ns").parse().map_err(|_| bad())
}

/// Istio retries as a Gateway API `retry` and the per-try timeout.
pub struct Retry {
    pub retry: Value,
    pub per_try: Option<Duration>,
}

/// Converts `retries` at `at` (`http[0].retries`); differences go to `notes`.
pub fn retry(r: &Retries, at: &str, notes: &mut Vec<String>) -> Result<Retry, String> {
    let mut retry = Map::new();
    if let Some(n) = r.attempts {
        retry.insert("attempts".into(), json!(n.max(0)));
    }
    let mut codes: Vec<u16> = Vec::new();
    let mut connect = false;
    let on = r.retry_on.clone().unwrap_or_else(|| {
        // Istio's default conditions.
        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes".into()
    });
    let explicit = r.retry_on.is_some();
    let mut retriable = false;
    let mut grpc: Vec<&str> = Vec::new();
    for cond in on.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match cond {
            "5xx" => codes.extend(500..=599),
            "gateway-error" => codes.extend([502, 503, 504]),
            "retriable-4xx" => codes.push(409),
            "retriable-status-codes" => retriable = true,
            "connect-failure" | "refused-stream" | "reset" | "reset-before-request" => {
                connect = true;
            }
            "cancelled" | "deadline-exceeded" | "internal" | "resource-exhausted"
            | "unavailable" => grpc.push(cond),
            code if code.parse::<u16>().is_ok() => codes.extend(code.parse::<u16>().ok()),
            other => notes.push(format!(
                "{at}.retryOn {other}: not converted (weft retries connection failures, resets and status codes)"
            )),
        }
    }
    if explicit && !grpc.is_empty() {
        let list = grpc.join(", ");
        notes.push(format!(
            "{at}.retryOn {}: not converted: a route's retry names HTTP status codes only, and a gRPC error arrives as status 200. weft retries these gRPC statuses with a TrafficPolicy on the Service (retries.retryOn: [{list}]), but a route's retry replaces the Service's: to use it, move this rule's retry there (it then applies to every route to the Service without a retry of its own)",
            grpc.join(",")
        ));
    }
    if retriable && codes.is_empty() {
        codes.push(503);
    }
    if explicit && !connect {
        notes.push(format!(
            "{at}.retryOn: weft also retries connection failures and resets (when the request can be sent again)"
        ));
    }
    codes.sort_unstable();
    codes.dedup();
    if codes.is_empty() {
        notes.push(format!(
            "{at}.retryOn {on}: names no status code; weft's route retry then retries 502, 503 and 504 too"
        ));
    } else {
        retry.insert("codes".into(), json!(codes));
    }
    if r.retry_remote_localities.is_some() {
        notes.push(format!(
            "{at}.retryRemoteLocalities: not converted (weft does not balance by locality)"
        ));
    }
    for key in r.rest.keys() {
        notes.push(format!(
            "{at}.{key}: not converted (weft has no equivalent)"
        ));
    }
    let per_try = r
        .per_try_timeout
        .as_deref()
        .map(duration)
        .transpose()
        .map_err(|e| format!("{at}.perTryTimeout: {e}"))?;
    Ok(Retry {
        retry: Value::Object(retry),
        per_try,
    })
}

/// Gateway API precedence of a converted match: path kind and length, method, headers,
/// query parameters (as weft orders them; see `model::precedence`).
fn precedence(m: &Value) -> (u8, usize, bool, usize, usize) {
    let (rank, len) = match m.get("path") {
        Some(p) => {
            let len = p["value"].as_str().map_or(1, str::len);
            match p["type"].as_str() {
                Some("Exact") => (3, len),
                Some("RegularExpression") => (2, len),
                _ => (1, len),
            }
        }
        None => (1, 1),
    };
    let count = |k: &str| m.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    (
        rank,
        len,
        m.get("method").is_some(),
        count("headers"),
        count("queryParams"),
    )
}

/// Whether some request can satisfy both matches (conservatively: yes unless they
/// plainly exclude each other).
fn overlap(a: &Value, b: &Value) -> bool {
    let path = |m: &Value| {
        m.get("path").map(|p| {
            (
                p["type"].as_str().unwrap_or("PathPrefix").to_string(),
                p["value"].as_str().unwrap_or("/").to_string(),
            )
        })
    };
    let within = |prefix: &str, path: &str| {
        let p = prefix.trim_end_matches('/');
        path.strip_prefix(p)
            .is_some_and(|rest| p.is_empty() || rest.is_empty() || rest.starts_with('/'))
    };
    let paths = match (path(a), path(b)) {
        (Some((ta, va)), Some((tb, vb))) => match (ta.as_str(), tb.as_str()) {
            ("Exact", "Exact") => va == vb,
            ("Exact", "PathPrefix") => within(&vb, &va),
            ("PathPrefix", "Exact") => within(&va, &vb),
            ("PathPrefix", "PathPrefix") => within(&va, &vb) || within(&vb, &va),
            _ => true,
        },
        _ => true,
    };
    let methods = match (a.get("method"), b.get("method")) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    };
    let exact = |m: &Value, key: &str| -> Vec<(String, String)> {
        m.get(key)
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter(|h| h.get("type").is_none())
                    .map(|h| {
                        let s = |k: &str| h[k].as_str().unwrap_or_default().to_string();
                        (s("name").to_ascii_lowercase(), s("value"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let clash = |key: &str| {
        let (x, y) = (exact(a, key), exact(b, key));
        x.iter()
            .any(|(n, v)| y.iter().any(|(m, w)| n == m && v != w))
    };
    paths && methods && !clash("headers") && !clash("queryParams")
}

/// Pairs (earlier, later) of Istio route indexes where a request matching both went to the
/// earlier one in Istio but goes to the later one in weft, whose match is more specific.
/// `rules` holds each converted rule's Istio index and matches (empty: every request).
pub fn reordered(rules: &[(usize, Vec<Value>)]) -> Vec<(usize, usize)> {
    let any = vec![json!({})];
    let mut out = Vec::new();
    for (i, (ia, ma)) in rules.iter().enumerate() {
        for (ib, mb) in &rules[i + 1..] {
            if ia == ib {
                continue;
            }
            let ma = if ma.is_empty() { &any } else { ma };
            let mb = if mb.is_empty() { &any } else { mb };
            let flips = ma.iter().any(|a| {
                mb.iter()
                    .any(|b| precedence(b) > precedence(a) && overlap(a, b))
            });
            if flips && !out.contains(&(*ia, *ib)) {
                out.push((*ia, *ib));
            }
        }
    }
    out
}
