//! Proxy metrics. Two registries per proxy, made by the wiring (the engine): Istio's standard
//! families ([`istio`], named `istio_…`, held by [`Metrics`]) and weft's own (named `weft_…`,
//! [`registry`]), where each module registers its families into a sub-registry
//! ([`crate::pool::Metrics`], [`crate::balance::Metrics`], [`crate::xds::Metrics`],
//! [`crate::certs::Metrics`]). [`exposition::render`] writes both, in the format the scraper
//! negotiates, for `GET /metrics` on the metrics port (15020 by default) and
//! `GET /stats/prometheus` on the admin port — unless the proxy's settings turn metrics off
//! (`weft.dev/metrics: "false"`). docs/metrics.md lists every series.
//!
//! The request and connection families are derived from the same records as the access log
//! (so they count whether or not the log is on), in one place: [`istio::labels`] and
//! [`flags`]. Besides them, weft's own:
//!
//! - `weft_authz_denied_total{policy}` — requests and connections denied by AuthorizationPolicy
//! - `weft_mtls_refused_total{reason}` — inbound connections refused before any policy:
//!   a failed tunnel handshake (another CA, expired, no certificate) or plaintext under STRICT
//! - `weft_retries_skipped_total{service}` — retries not sent because the destination's retry
//!   budget was spent (see [`crate::balance::Budget`])

pub mod exposition;
pub mod flags;
pub mod istio;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use weft_core::model::ProxyConfig;

pub use exposition::Format;

use crate::record::Record;

/// Request and connection counters; clones count into the same families.
#[derive(Debug, Clone)]
pub struct Metrics {
    istio: istio::Families,
    /// The registry of the Istio families (no prefix), rendered before weft's own.
    istio_registry: Arc<Registry>,
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

/// A proxy's registry for weft's own families: every family it holds is named `weft_…`.
pub fn registry() -> Registry {
    Registry::with_prefix("weft")
}

/// `registry` in text format 0.0.4 (tests of one module's families).
#[cfg(test)]
pub fn encode(registry: &Registry) -> String {
    exposition::render(&[registry], Format::Text)
}

impl Default for Metrics {
    /// Families registered nowhere (tests).
    fn default() -> Self {
        let mut throwaway = Registry::default();
        Metrics::register(&mut throwaway)
    }
}

impl Metrics {
    /// Registers weft's request-path families into `registry` (the proxy's root), and the
    /// Istio families into a registry of their own.
    pub fn register(registry: &mut Registry) -> Metrics {
        let mut istio_registry = Registry::default();
        let istio = istio::Families::register(&mut istio_registry);
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
            istio,
            istio_registry: Arc::new(istio_registry),
            retries_skipped,
            denied,
            refused,
        }
    }

    /// The page of every family: Istio's, then `weft` (the proxy's registry).
    pub fn render(&self, weft: &Registry, format: Format) -> String {
        exposition::render(&[&self.istio_registry, weft], format)
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

    /// Counts a finished request or closed connection of the workload `me` serves.
    pub fn observe(&self, r: &Record, me: Option<&ProxyConfig>) {
        if r.error == Some("denied") {
            let policy = r.policy.clone().unwrap_or_default();
            self.denied.get_or_create(&PolicyLabels { policy }).inc();
        }
        self.istio.observe(r, me);
    }

    /// Counts an opened TCP connection of the workload `me` serves.
    pub fn opened(&self, r: &Record, me: Option<&ProxyConfig>) {
        self.istio.opened(r, me);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_istio_series_beside_weft_families() {
        let mut registry = registry();
        let m = Metrics::register(&mut registry);
        let mut r = Record::new("outbound");
        r.protocol = "HTTP/1.1".into();
        r.service = Some("shop/web".into());
        r.status = Some(503);
        r.error = Some("no-healthy-endpoint");
        r.duration_ms = 2.0;
        m.observe(&r, None);
        m.observe(&r, None);
        let mut t = Record::new("inbound");
        t.protocol = "TCP".into();
        t.bytes_sent = Some(10);
        m.opened(&t, None);
        m.observe(&t, None);
        m.retry_skipped("shop/web");
        let text = m.render(&registry, Format::Text);
        assert!(
            text.contains(r#"weft_retries_skipped_total{service="shop/web"} 1"#),
            "{text}"
        );
        let requests = text
            .lines()
            .find(|l| l.starts_with("istio_requests_total{"))
            .expect(&text);
        for want in [
            r#"reporter="source""#,
            r#"destination_service="web.shop.svc.cluster.local""#,
            r#"destination_service_name="web""#,
            r#"response_code="503""#,
            r#"response_flags="UH""#,
            r#"source_workload="unknown""#,
            r#"grpc_response_status="""#,
        ] {
            assert!(requests.contains(want), "{want} in {requests}");
        }
        assert!(requests.ends_with("} 2"), "{requests}");
        assert!(
            text.contains("istio_request_duration_milliseconds_bucket{")
                && text.contains(r#"{le="0.5",reporter="source""#),
            "{text}"
        );
        let sent = text
            .lines()
            .find(|l| l.starts_with("istio_tcp_sent_bytes_total{"))
            .expect(&text);
        assert!(
            sent.contains(r#"reporter="destination""#) && sent.ends_with("} 10"),
            "{sent}"
        );
        assert!(
            text.contains("istio_tcp_connections_opened_total{"),
            "{text}"
        );
        assert!(
            text.contains("istio_tcp_connections_closed_total{"),
            "{text}"
        );
    }
}
