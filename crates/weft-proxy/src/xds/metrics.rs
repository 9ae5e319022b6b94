//! The discovery client's metrics, registered under `weft_xds_`:
//!
//! - `weft_xds_updates_total{type, result}` — responses applied (ACK) or rejected (NACK)
//! - `weft_xds_connects_total` — discovery streams opened (the first and every reconnect)
//! - `weft_xds_connected` — 1 while the stream is up

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpdateLabels {
    r#type: String,
    result: &'static str,
}

/// Counters of one proxy's discovery client. `Default` registers nowhere (tests).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    updates: Family<UpdateLabels, Counter>,
    connects: Counter,
    connected: Gauge,
}

impl Metrics {
    /// Registers the families into `registry` (give it an `xds` sub-registry).
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        registry.register(
            "updates",
            "Discovery responses applied (ACK) or rejected (NACK), by resource type",
            m.updates.clone(),
        );
        registry.register(
            "connects",
            "Discovery streams opened to the control plane, the first and every reconnect",
            m.connects.clone(),
        );
        registry.register(
            "connected",
            "1 while the discovery stream to the control plane is up",
            m.connected.clone(),
        );
        m
    }

    pub(super) fn update(&self, type_url: &str, applied: bool) {
        let labels = UpdateLabels {
            r#type: type_url.to_string(),
            result: if applied { "applied" } else { "rejected" },
        };
        self.updates.get_or_create(&labels).inc();
    }

    pub(super) fn connected(&self, up: bool) {
        if up {
            self.connects.inc();
        }
        self.connected.set(i64::from(up));
    }
}
