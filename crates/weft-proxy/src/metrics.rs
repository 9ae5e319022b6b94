//! Proxy metrics in Prometheus text format. One [`registry`] per proxy, made by the wiring
//! (the engine); each module registers its own families into a sub-registry of it
//! ([`crate::pool::Metrics`], [`crate::balance::Metrics`], [`crate::xds::Metrics`],
//! [`crate::certs::Metrics`]), and [`encode`] renders it all at once for `GET /metrics` on the
//! metrics port (15020 by default) and `GET /stats/prometheus` on the admin port — unless the
//! proxy's settings turn metrics off (`weft.dev/metrics: "false"`).
//!
//! The request and connection families below are derived from the same records as the access
//! log (so they count whether or not the log is on):
//!
//! - `weft_requests_total{direction, service, status, error}` — HTTP requests
//! - `weft_request_duration_seconds{direction, service}` — HTTP request latency
//! - `weft_tcp_connections_total{direction, service, error}` — opaque TCP connections
//! - `weft_tcp_bytes_total{direction, service, flow}` — bytes copied (`sent` = to upstream)
//! - `weft_authz_denied_total{policy}` — requests and connections denied by AuthorizationPolicy
//! - `weft_mtls_refused_total{reason}` — inbound connections refused before any policy:
//!   a failed tunnel handshake (another CA, expired, no certificate) or plaintext under STRICT
//! - `weft_retries_skipped_total{service}` — retries not sent because the destination's retry
//!   budget was spent (see [`crate::balance::Budget`])

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::record::Record;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    direction: String,
    service: String,
    status: String,
    error: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    direction: String,
    service: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TcpLabels {
    direction: String,
    service: String,
    error: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    direction: String,
    service: String,
    flow: String,
}

type Durations = Family<ServiceLabels, Histogram, fn() -> Histogram>;

/// Request and connection counters; clones count into the same families.
#[derive(Debug, Clone)]
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
    tcp: Family<TcpLabels, Counter>,
    bytes: Family<FlowLabels, Counter>,
    denied: Family<PolicyLabels, Counter>,
    refused: Family<ReasonLabels, Counter>,
    retries_skipped: Family<DestinationLabels, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    service: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

fn latency_histogram() -> Histogram {
    // 100µs to ~3.3s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// A proxy's registry: every family it holds is named `weft_…`.
pub fn registry() -> Registry {
    Registry::with_prefix("weft")
}

/// The text exposition format of `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

impl Default for Metrics {
    /// Families registered nowhere (tests).
    fn default() -> Self {
        let mut throwaway = Registry::default();
        Metrics::register(&mut throwaway)
    }
}

impl Metrics {
    /// Registers the request and connection families into `registry` (the proxy's root).
    pub fn register(registry: &mut Registry) -> Metrics {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests handled by the proxy",
            requests.clone(),
        );
        let durations: Durations = Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from request to response headers, as the proxy saw it",
            durations.clone(),
        );
        let tcp = Family::<TcpLabels, Counter>::default();
        registry.register(
            "tcp_connections",
            "Opaque TCP connections, counted when closed",
            tcp.clone(),
        );
        let bytes = Family::<FlowLabels, Counter>::default();
        registry.register(
            "tcp_bytes",
            "Bytes copied on opaque TCP connections",
            bytes.clone(),
        );
        let denied = Family::<PolicyLabels, Counter>::default();
        registry.register(
            "authz_denied",
            "Requests and connections denied by an AuthorizationPolicy",
            denied.clone(),
        );
        let refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "mtls_refused",
            "Inbound connections refused for their transport: failed mTLS handshake or plaintext under STRICT",
            refused.clone(),
        );
        let retries_skipped = Family::<DestinationLabels, Counter>::default();
        registry.register(
            "retries_skipped",
            "Retries not sent because the destination Service's retry budget was spent",
            retries_skipped.clone(),
        );
        Metrics {
            retries_skipped,
            requests,
            durations,
            tcp,
            bytes,
            denied,
            refused,
        }
    }

    /// An inbound connection refused for its transport (`reason`: handshake, plaintext, …).
    pub fn mtls_refused(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// A retry to `service` not sent: its retry budget was spent.
    pub fn retry_skipped(&self, service: &str) {
        self.retries_skipped
            .get_or_create(&DestinationLabels {
                service: service.to_string(),
            })
            .inc();
    }

    pub fn observe(&self, r: &Record) {
        if r.error == Some("denied") {
            let policy = r.policy.clone().unwrap_or_default();
            self.denied.get_or_create(&PolicyLabels { policy }).inc();
        }
        let direction = r.direction.to_string();
        let service = r.service.clone().unwrap_or_default();
        let error = r.error.unwrap_or("").to_string();
        if r.protocol == "TCP" {
            self.tcp
                .get_or_create(&TcpLabels {
                    direction: direction.clone(),
                    service: service.clone(),
                    error,
                })
                .inc();
            for (flow, n) in [("sent", r.bytes_sent), ("received", r.bytes_received)] {
                if let Some(n) = n {
                    let labels = FlowLabels {
                        direction: direction.clone(),
                        service: service.clone(),
                        flow: flow.into(),
                    };
                    self.bytes.get_or_create(&labels).inc_by(n);
                }
            }
            return;
        }
        let status = r.status.map(|s| s.to_string()).unwrap_or_default();
        self.requests
            .get_or_create(&RequestLabels {
                direction: direction.clone(),
                service: service.clone(),
                status,
                error,
            })
            .inc();
        self.durations
            .get_or_create(&ServiceLabels { direction, service })
            .observe(r.duration_ms / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_counters_and_histograms() {
        let mut registry = registry();
        let m = Metrics::register(&mut registry);
        let mut r = Record::new("outbound");
        r.protocol = "HTTP/1.1".into();
        r.service = Some("shop/web".into());
        r.status = Some(503);
        r.error = Some("no-healthy-endpoint");
        r.duration_ms = 2.0;
        m.observe(&r);
        m.observe(&r);
        let mut t = Record::new("inbound");
        t.protocol = "TCP".into();
        t.bytes_sent = Some(10);
        m.observe(&t);
        m.retry_skipped("shop/web");
        let text = encode(&registry);
        assert!(
            text.contains(r#"weft_retries_skipped_total{service="shop/web"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"weft_requests_total{direction="outbound",service="shop/web",status="503",error="no-healthy-endpoint"} 2"#), "{text}");
        assert!(
            text.contains(
                r#"weft_request_duration_seconds_count{direction="outbound",service="shop/web"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"weft_tcp_bytes_total{direction="inbound",service="",flow="sent"} 10"#),
            "{text}"
        );
    }
}
