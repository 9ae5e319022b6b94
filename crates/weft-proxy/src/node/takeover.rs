//! The node proxy's part in a hand-off ([`crate::handoff`]): before anything binds, ask the
//! node proxy on the hand-off path for its listeners; once the engine and the pods are up,
//! ready every pod received and finish the hand-off (or open new listeners when nobody
//! answered); then listen on the path for the next one.

use std::sync::Arc;

use prometheus_client::registry::Registry;

use super::{States, lock};
use crate::engine::Engine;
use crate::handoff::{self, Gate, Listeners, Side};

/// A start, with or without a hand-off.
#[derive(Debug)]
pub(super) struct Takeover {
    taking: Option<handoff::Taking>,
    pub listeners: Arc<Listeners>,
    metrics: handoff::Metrics,
}

/// Takes the listeners of the node proxy on the path, if one answers.
pub(super) async fn begin(cfg: Option<&handoff::Config>) -> Result<Takeover, handoff::Error> {
    let (taking, inherited) = match cfg {
        Some(h) => handoff::take(h).await?.unzip(),
        None => (None, None),
    };
    Ok(Takeover {
        taking,
        listeners: Listeners::new(inherited.unwrap_or_default()),
        metrics: handoff::Metrics::default(),
    })
}

impl Takeover {
    /// Registers the hand-off counter with the node's metrics (`weft_node_handoffs_total`).
    pub fn register(&self, registry: &mut Registry) {
        self.metrics
            .register(registry.sub_registry_with_prefix("node"));
    }

    /// Starts accepting: after a hand-off, once every pod received is ready; then listens on
    /// the path for the next node proxy, until one takes over or this one drains.
    pub async fn finish(
        self,
        cfg: Option<&handoff::Config>,
        engine: &mut Engine,
        states: &States,
    ) -> Result<(), handoff::Error> {
        let Some(cfg) = cfg else {
            self.listeners.set_gate(Gate::Open);
            return Ok(());
        };
        let claimed = match self.taking {
            Some(taking) => {
                let claimed = ready_then_finish(engine, states, &self.listeners, taking).await;
                self.metrics.handoff(Side::Take, claimed.is_ok());
                if let Err(e) = &claimed {
                    tracing::error!("hand-off failed: {e}");
                }
                claimed?
            }
            None => {
                self.listeners.set_gate(Gate::Open);
                handoff::claim(&cfg.path).map_err(|source| handoff::Error::Socket {
                    path: cfg.path.clone(),
                    source,
                })?
            }
        };
        let give = handoff::Give {
            listeners: self.listeners,
            discovery: engine.discovery.clone(),
            metrics: self.metrics,
            drain: engine.shared.drain.clone(),
        };
        engine.tasks.spawn(give.run(claimed));
        Ok(())
    }
}

/// Readies every pod whose listeners were received (its config, its certificate), then
/// finishes the hand-off; fails after the configured wait, leaving the old proxy serving.
async fn ready_then_finish(
    engine: &Engine,
    states: &States,
    listeners: &Listeners,
    taking: handoff::Taking,
) -> Result<handoff::Claimed, handoff::Error> {
    let limit = taking.ready_within();
    let ready = async {
        if engine.ready(limit).await {
            listeners.all_settled().await
        } else {
            std::future::pending().await
        }
    };
    let why = || {
        if let Some(why) = engine.not_ready_reason() {
            return why;
        }
        let Some(pods) = listeners.unsettled() else {
            return "the enrolled pods were not read yet".into();
        };
        let states = lock(states);
        let pods: Vec<String> = pods
            .iter()
            .map(|p| format!("{p}: {:?}", states.get(p).map(|h| &h.state)))
            .collect();
        format!("pods not served yet: {}", pods.join("; "))
    };
    taking.finish(listeners, ready, why).await
}
