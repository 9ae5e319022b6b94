//! The hand-off's metrics, registered under the node's prefix:
//!
//! - `weft_node_handoffs_total{side, result}` — hand-offs this process took part in: `side`
//!   `give` (it was the old process) or `take` (the new one), `result` `ok` or `failed`

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    side: &'static str,
    result: &'static str,
}

/// Which end of a hand-off this process was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Give,
    Take,
}

/// Clones count into the same family; `Default` registers nowhere.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    handoffs: Family<Labels, Counter>,
}

impl Metrics {
    /// Registers into `registry` (give it the node's `node` sub-registry).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "handoffs",
            "Listener hand-offs between node proxy processes, by side (give: the old process, take: the new one) and result",
            self.handoffs.clone(),
        );
    }

    pub fn handoff(&self, side: Side, ok: bool) {
        let side = match side {
            Side::Give => "give",
            Side::Take => "take",
        };
        let result = if ok { "ok" } else { "failed" };
        self.handoffs.get_or_create(&Labels { side, result }).inc();
    }
}
