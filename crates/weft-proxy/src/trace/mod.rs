//! Distributed tracing: every HTTP request a proxy handles (sidecar outbound and inbound,
//! gateway, waypoint) is a span.
//!
//! Propagation is always on, collector or not: [`start`] reads the trace context the request
//! came with ([`context`]: W3C `traceparent`/`tracestate`, or B3), or starts a trace sampled at
//! the workload's rate (`Mesh spec.tracing.samplingPercent`, `weft.dev/trace-sampling`), gives
//! this proxy's span its id, and rewrites the headers so upstream sees this span as its parent.
//! The ids go on the [`Record`], so the access log shows `trace_id`, `span_id`,
//! `parent_span_id` and `sampled`.
//!
//! Export, only with a collector (`spec.tracing.enabled` and `endpoint`): when the request is
//! finished, [`Tracer::end`] turns a sampled record into an OTLP span ([`span_of`]) and hands
//! it to the [`export`] task, which never blocks the request.
//!
//! A span: name `<authority>/*` (Envoy's), kind CLIENT (outbound, gateway, waypoint) or SERVER
//! (inbound), the request's start and end, attributes `http.method`, `http.url`,
//! `http.status_code`, `upstream_address`, `weft.direction`, `weft.service`, `weft.route`,
//! `weft.peer_identity`, `weft.error` (the failed stage) when set; status ERROR on 5xx. Its
//! resource's `service.name` is `<workload>.<namespace>`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use tokio::sync::mpsc;
use weft_core::model::ProxyConfig;

use crate::connect::Connector;
use crate::record::Record;

pub mod context;
pub(crate) mod export;
pub mod otlp;

pub use context::SpanContext;
pub use export::Metrics;

/// This proxy's span of a request, as the [`Record`] carries it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Span {
    #[serde(flatten)]
    pub context: SpanContext,
    #[serde(skip)]
    pub start_unix_nano: u64,
    /// The `tracestate` the request came with, exported as the span's.
    #[serde(skip)]
    pub trace_state: Option<String>,
}

/// Reads or starts the request's trace, makes this proxy's span, and rewrites `headers` for
/// upstream (see [`context`]).
pub(crate) fn start(config: Option<&ProxyConfig>, headers: &mut HeaderMap) -> Span {
    let percent = config.map_or_else(
        || weft_core::annotations::TraceSettings::default().sampling_percent,
        |c| c.settings.tracing.sampling_percent,
    );
    let incoming = context::extract(headers);
    let span = context::decide(incoming.as_ref(), percent, &mut fastrand::Rng::new());
    context::inject(&span, incoming.and_then(|i| i.b3), headers);
    Span {
        context: span,
        start_unix_nano: now_nanos(),
        trace_state: headers
            .get(context::TRACESTATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The OTLP span of a finished, traced record.
pub fn span_of(record: &Record, span: &Span) -> otlp::Span {
    use otlp::KeyValue as Kv;
    let kind = match record.direction {
        "inbound" => otlp::SpanKind::Server,
        _ => otlp::SpanKind::Client,
    };
    let authority = record.authority.as_deref().unwrap_or("unknown");
    let mut attributes = vec![Kv::string("weft.direction", record.direction)];
    let mut add = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            attributes.push(Kv::string(key, v));
        }
    };
    add("http.method", record.method.as_deref());
    let url = record
        .path
        .as_ref()
        .map(|p| format!("http://{authority}{p}"));
    add("http.url", url.as_deref());
    add("http.protocol", Some(&record.protocol));
    add("upstream_address", record.upstream.as_deref());
    add("downstream_address", record.downstream.as_deref());
    add("weft.service", record.service.as_deref());
    add("weft.route", record.route.as_deref());
    add("weft.peer_identity", record.peer_identity.as_deref());
    add("weft.error", record.error);
    if let Some(status) = record.status {
        attributes.push(Kv::int("http.status_code", status.into()));
    }
    let status = match record.status {
        Some(s) if s >= 500 => otlp::Status {
            message: record.error.unwrap_or_default().to_string(),
            code: otlp::StatusCode::Error as i32,
        },
        _ => otlp::Status::default(),
    };
    let c = &span.context;
    let duration = (record.duration_ms * 1e6) as u64;
    otlp::Span {
        trace_id: c.trace_id.0.to_vec(),
        span_id: c.span_id.0.to_vec(),
        trace_state: span.trace_state.clone().unwrap_or_default(),
        parent_span_id: c.parent_span_id.map(|p| p.0.to_vec()).unwrap_or_default(),
        name: format!("{authority}/*"),
        kind: kind as i32,
        start_time_unix_nano: span.start_unix_nano,
        end_time_unix_nano: span.start_unix_nano + duration,
        attributes,
        status: Some(status),
        flags: u32::from(c.sampled),
    }
}

/// Hands finished spans to the exporter of the workload's collector (one per proxy, started
/// on the first sampled span, replaced when the collector changes).
#[derive(Debug)]
pub struct Tracer {
    connector: Connector,
    metrics: Metrics,
    exporter: Mutex<Option<Exporter>>,
}

#[derive(Debug)]
struct Exporter {
    collector: String,
    service: String,
    /// None: the collector's address is invalid (said once, when it was set).
    queue: Option<mpsc::Sender<otlp::Span>>,
}

impl Tracer {
    pub fn new(connector: Connector, metrics: Metrics) -> Tracer {
        Tracer {
            connector,
            metrics,
            exporter: Mutex::new(None),
        }
    }

    /// Exports `record`'s span when it is sampled and the workload has a collector. Never
    /// waits: a full queue drops the span (counted).
    pub(crate) fn end(&self, record: &Record, config: impl FnOnce() -> Option<Arc<ProxyConfig>>) {
        let Some(span) = record.trace.as_ref().filter(|s| s.context.sampled) else {
            return;
        };
        let Some(config) = config() else { return };
        let Some(collector) = &config.settings.tracing.collector else {
            return;
        };
        let service = format!("{}.{}", config.workload, config.namespace);
        let mut exporter = self.exporter.lock().unwrap_or_else(PoisonError::into_inner);
        let current = exporter
            .as_ref()
            .is_some_and(|e| e.collector == *collector && e.service == service);
        if !current {
            let queue = export::spawn(
                collector,
                &service,
                self.connector.clone(),
                self.metrics.clone(),
            )
            .inspect_err(|e| tracing::warn!("spans are not exported: {e}"))
            .ok();
            *exporter = Some(Exporter {
                collector: collector.clone(),
                service,
                queue,
            });
        }
        let Some(queue) = exporter.as_ref().and_then(|e| e.queue.clone()) else {
            return;
        };
        drop(exporter);
        if queue.try_send(span_of(record, span)).is_err() {
            self.metrics.dropped("queue_full", 1);
        }
    }
}

#[cfg(test)]
mod tests;
