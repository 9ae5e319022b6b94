//! Control-plane metrics in Prometheus text format, at `GET /metrics` on the admin port (15014).
//!
//! - `weft_control_proxies` — connected proxies
//! - `weft_control_config_generation` — generation of the configuration in force
//! - `weft_control_config_changes_total{result}` — applied / rejected changes
//! - `weft_control_pushes_total{type}` — responses sent to proxies
//! - `weft_control_nacks_total{type}` — responses proxies rejected
//! - `weft_control_stuck_streams_total` — streams closed because their proxy stopped reading
//! - `weft_control_discovery_refused_total{reason}` — connections and discovery streams refused:
//!   failed TLS handshakes, no client certificate, claims that do not match the certificate or
//!   the pod's registration, `version-skew` (a discovery protocol this control plane does not
//!   serve) and `revision` (a proxy of another revision)
//! - `weft_ca_*` — the CA's, see [`crate::ca::metrics`]

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub proxies: Gauge,
    /// Open discovery streams: a proxy that reconnected before its old stream closed holds two.
    pub streams: Gauge,
    pub generation: Gauge,
    changes: Family<ResultLabel, Counter>,
    pushes: Family<TypeLabel, Counter>,
    nacks: Family<TypeLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
    pub stuck: Counter,
    pub ca: crate::ca::Metrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        let ca = crate::ca::Metrics::register(root.sub_registry_with_prefix("weft_ca"));
        let registry = root.sub_registry_with_prefix("weft_control");
        let proxies = Gauge::default();
        registry.register("proxies", "Connected proxies", proxies.clone());
        let streams = Gauge::default();
        registry.register(
            "discovery_streams",
            "Open discovery streams",
            streams.clone(),
        );
        let generation = Gauge::default();
        registry.register(
            "config_generation",
            "Generation of the configuration in force",
            generation.clone(),
        );
        let changes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "config_changes",
            "Configuration changes, applied or rejected",
            changes.clone(),
        );
        let pushes = Family::<TypeLabel, Counter>::default();
        registry.register(
            "pushes",
            "Discovery responses sent to proxies",
            pushes.clone(),
        );
        let nacks = Family::<TypeLabel, Counter>::default();
        registry.register(
            "nacks",
            "Discovery responses rejected by proxies",
            nacks.clone(),
        );
        let refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "discovery_refused",
            "Discovery connections and streams refused, by reason",
            refused.clone(),
        );
        let stuck = Counter::default();
        registry.register(
            "stuck_streams",
            "Discovery streams closed because their proxy stopped reading",
            stuck.clone(),
        );
        Metrics {
            registry: root,
            proxies,
            streams,
            generation,
            changes,
            pushes,
            nacks,
            refused,
            stuck,
            ca,
        }
    }
}

impl Metrics {
    pub fn change(&self, applied: bool) {
        let result = if applied { "applied" } else { "rejected" };
        self.changes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    pub fn push(&self, ty: &str) {
        self.pushes
            .get_or_create(&TypeLabel { r#type: ty.into() })
            .inc();
    }

    pub fn nack(&self, ty: &str) {
        self.nacks
            .get_or_create(&TypeLabel { r#type: ty.into() })
            .inc();
    }

    /// A refused connection or discovery stream (the reason is one of a few fixed words).
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
