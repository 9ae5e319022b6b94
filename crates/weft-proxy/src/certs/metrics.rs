//! The workload certificate's metrics, registered under `weft_certs_`:
//!
//! - `weft_certs_renewals_total{result}` — certificates requested from the CA: `ok` (installed)
//!   or `failed` (the held one, if any, stays in service)
//! - `weft_certs_expiry_seconds` — seconds until the held certificate expires, computed at
//!   each scrape (absent before the first certificate)

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Counters of one proxy's certificate source. `Default` registers nowhere (tests).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    renewals: Family<ResultLabels, Counter>,
    expiry: Expiry,
}

impl Metrics {
    /// Registers the families into `registry` (give it a `certs` sub-registry).
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        // Both results show from the start, at 0.
        for result in ["ok", "failed"] {
            drop(m.renewals.get_or_create(&ResultLabels { result }));
        }
        registry.register(
            "renewals",
            "Workload certificates requested from the CA, by result",
            m.renewals.clone(),
        );
        registry.register(
            "expiry_seconds",
            "Seconds until the held workload certificate expires",
            m.expiry.clone(),
        );
        m
    }

    pub(super) fn renewal(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.renewals.get_or_create(&ResultLabels { result }).inc();
    }

    /// A certificate valid until `not_after` (Unix seconds) is held.
    pub(super) fn holds(&self, not_after: i64) {
        self.expiry.0.store(not_after, Ordering::Relaxed);
    }
}

/// A gauge read at scrape time: the held certificate's `not_after` minus now.
#[derive(Debug, Clone, Default)]
struct Expiry(Arc<AtomicI64>);

impl TypedMetric for Expiry {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for Expiry {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let left = self.0.load(Ordering::Relaxed) as f64 - now;
        encoder.encode_gauge(&left.round())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    fn is_empty(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}
