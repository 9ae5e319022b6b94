//! A proxy's metrics page → its server-side series: what it served as the destination.
//!
//! Istio's names are read (`istio_requests_total{reporter="destination",
//! destination_workload, destination_workload_namespace, destination_service,
//! response_code}`, `istio_request_duration_milliseconds_bucket{le}`,
//! `istio_tcp_connections_opened_total`, `istio_tcp_connections_closed_total`), and weft's
//! own older ones when a page has no Istio request series (`weft_requests_total{direction=
//! "inbound", service, status}`, `weft_request_duration_seconds_bucket`; those name no
//! workload, which then is the scraped pod's, and count no open connections).

/// Labels of one sample.
pub type Labels = Vec<(String, String)>;

/// Whom a series is about; what a label does not say is None.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Who {
    /// `ns/name` of the workload that served.
    pub workload: Option<String>,
    /// `ns/name` of the Service asked for.
    pub service: Option<String>,
}

/// The server-side series of one page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Requests: whom, failed (5xx or no answer), count.
    pub requests: Vec<(Who, bool, f64)>,
    /// Latency buckets: whom, the series' other labels, `le` in seconds, cumulative count.
    pub buckets: Vec<(Who, Labels, f64, f64)>,
    /// TCP connections opened and closed (Istio names only): whom, opened, closed.
    pub tcp: Vec<(Who, f64, f64)>,
    /// Whether the page counts open connections at all.
    pub counts_connections: bool,
}

/// One spelling of the families read.
struct Names {
    requests: &'static str,
    bucket: &'static str,
    /// Seconds per unit of `le`.
    unit: f64,
    status: &'static str,
    /// The label and value of server-side series.
    side: (&'static str, &'static str),
}

const ISTIO: Names = Names {
    requests: "istio_requests_total",
    bucket: "istio_request_duration_milliseconds_bucket",
    unit: 0.001,
    status: "response_code",
    side: ("reporter", "destination"),
};

const WEFT: Names = Names {
    requests: "weft_requests_total",
    bucket: "weft_request_duration_seconds_bucket",
    unit: 1.0,
    status: "status",
    side: ("direction", "inbound"),
};

fn label<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    (labels.iter())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty() && *v != "unknown")
}

/// `cart.shop.svc.cluster.local`, `cart.shop` or `shop/cart` → `shop/cart`.
fn service_name(s: &str) -> String {
    if s.contains('/') {
        return s.to_string();
    }
    let mut parts = s.split('.');
    match (parts.next(), parts.next()) {
        (Some(name), Some(ns)) => format!("{ns}/{name}"),
        _ => s.to_string(),
    }
}

fn who(labels: &Labels) -> Who {
    let ns = label(labels, "destination_workload_namespace");
    let workload = label(labels, "destination_workload").map(|w| match ns {
        Some(ns) => format!("{ns}/{w}"),
        None => w.to_string(),
    });
    let service = match (
        label(labels, "destination_service_namespace"),
        label(labels, "destination_service_name"),
    ) {
        (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
        _ => label(labels, "destination_service")
            .or_else(|| label(labels, "service"))
            .map(service_name),
    };
    Who { workload, service }
}

/// The server-side series of `text` (lines that do not parse are passed over).
pub fn page(text: &str) -> Page {
    let samples: Vec<(&str, Labels, f64)> = text.lines().filter_map(sample).collect();
    let istio = samples
        .iter()
        .any(|(n, _, _)| *n == ISTIO.requests || *n == ISTIO.bucket);
    let names = if istio { ISTIO } else { WEFT };
    let mut page = Page {
        counts_connections: istio,
        ..Page::default()
    };
    let mut tcp: Vec<(Who, f64, f64)> = Vec::new();
    for (name, labels, value) in samples {
        if label(&labels, names.side.0) != Some(names.side.1) {
            continue;
        }
        match name {
            n if n == names.requests => {
                let failed = label(&labels, names.status)
                    .and_then(|s| s.parse::<u16>().ok())
                    .is_none_or(|c| c == 0 || c >= 500);
                page.requests.push((who(&labels), failed, value));
            }
            n if n == names.bucket => {
                let Some(le) = label(&labels, "le").and_then(|l| l.parse::<f64>().ok()) else {
                    continue;
                };
                let mut rest: Labels = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
                rest.sort();
                page.buckets
                    .push((who(&labels), rest, le * names.unit, value));
            }
            "istio_tcp_connections_opened_total" => tcp.push((who(&labels), value, 0.0)),
            "istio_tcp_connections_closed_total" => tcp.push((who(&labels), 0.0, value)),
            _ => {}
        }
    }
    page.tcp = tcp;
    page
}

/// One sample line: name, labels, value; None for comments and what does not parse.
fn sample(line: &str) -> Option<(&str, Labels, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let (name, mut rest) = line.split_at(end);
    let mut labels = Vec::new();
    if let Some(mut s) = rest.strip_prefix('{') {
        loop {
            s = s.trim_start_matches([' ', ',']);
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = s.split_once('=')?;
            let after = after.strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.trim().to_string(), value));
            s = &after[close + 1..];
        }
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    value.is_finite().then_some((name, labels, value))
}
