//! The balancers' metrics, registered under `weft_balance_`:
//!
//! - `weft_balance_ejections_total{service}` — endpoints ejected by outlier detection
//! - `weft_balance_no_healthy_endpoint_total{service}` — picks that found no endpoint that was
//!   not ejected (all ejected: the request goes to one anyway; none at all: it fails)

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

/// The families of every balancer of one proxy. `Default` registers nowhere (tests).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    ejections: Family<ServiceLabels, Counter>,
    no_healthy: Family<ServiceLabels, Counter>,
}

impl Metrics {
    /// Registers the families into `registry` (give it a `balance` sub-registry).
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        registry.register(
            "ejections",
            "Endpoints ejected by outlier detection after consecutive failures",
            m.ejections.clone(),
        );
        registry.register(
            "no_healthy_endpoint",
            "Endpoint picks that found every endpoint ejected, or none at all",
            m.no_healthy.clone(),
        );
        m
    }

    /// The counters of the balancer of `service` (`namespace/name`).
    pub fn service(&self, service: &str) -> ServiceMetrics {
        let labels = ServiceLabels {
            service: service.to_string(),
        };
        ServiceMetrics {
            ejections: self.ejections.get_or_create(&labels).clone(),
            no_healthy: self.no_healthy.get_or_create(&labels).clone(),
        }
    }
}

/// One Service's counters, held by its [`super::Balancer`].
#[derive(Debug, Clone, Default)]
pub struct ServiceMetrics {
    pub(super) ejections: Counter,
    pub(super) no_healthy: Counter,
}
