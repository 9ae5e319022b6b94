//! The control plane's state: the configuration in force, the last rejected change, the pods
//! (announced by their proxies, or listed in the pods file), the snapshot built from both, and
//! each proxy's sync status.
//!
//! Which pods are endpoints: with a pods file in force, exactly the pods it lists (the runtime
//! lists only pods that are ready); a proxy's announcement then only adds where that pod's proxy
//! listens. Without one (hand-run proxies, in-process tests), every announced pod is one.
//!
//! Changes are incremental: a pod joining or leaving touches only the resources that select it
//! ([`Snapshot::set_pod`], [`Snapshot::remove_pod`]), and so does a new configuration
//! ([`Snapshot::reconfigure`]; a change to the mesh, a namespace or a workload rebuilds). Pod
//! changes are published in batches ([`BATCH`]): a burst of joins becomes one new snapshot for
//! the discovery streams, and each stream then looks only at what changed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, watch};
use weft_core::Config;
use weft_core::model::{Pod, Snapshot};

use crate::status::ProxyStatus;

/// Milliseconds since the Unix epoch, for status times.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// Increases with every applied change.
    pub generation: u64,
    pub applied_at_ms: u64,
    pub resources: usize,
    /// The analyzer's warnings and notes on the configuration in force (errors keep a change
    /// out of force, so there are none here).
    pub findings: Vec<weft_core::analyze::Finding>,
    /// The last rejected change, if it came after the one in force.
    pub rejected: Option<Rejected>,
    /// The pods file, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods_file: Option<PodsFileStatus>,
}

/// What was read from the pods file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsFileStatus {
    pub path: String,
    /// Pods in the list in force.
    pub pods: usize,
    /// When the list in force was read; None until one was.
    pub loaded_at_ms: Option<u64>,
    /// Why the file's current content is not in force, if it is not.
    pub error: Option<Rejected>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    pub at_ms: u64,
    pub problems: Vec<String>,
}

mod pods;

/// How long pod changes gather before they are published together.
pub const BATCH: Duration = Duration::from_millis(50);

#[derive(Debug)]
struct Inner {
    config: Arc<Config>,
    status: ConfigStatus,
    /// The announced and listed pods.
    pods: pods::Pods,
    /// The snapshot changes are applied to; [`State::publish`] hands a copy to the streams.
    working: Snapshot,
}

#[derive(Debug)]
pub struct State {
    /// Discovery answers wait until this instant (see `Config::warmup`).
    pub serve_after: tokio::time::Instant,
    /// Set on shutdown: every discovery stream ends.
    pub stopping: watch::Sender<bool>,
    inner: Mutex<Inner>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    /// Wakes the publisher: pod changes are waiting.
    publish: Arc<Notify>,
    proxies: Mutex<BTreeMap<String, ProxyStatus>>,
    connections: std::sync::atomic::AtomicU64,
    /// Proxies refused for version skew or another revision, until they are served.
    pub refused: crate::status::Refusals,
    /// Where the control plane's events go ([`crate::events`]).
    pub events: crate::events::Events,
    pub metrics: crate::metrics::Metrics,
}

impl State {
    /// The state for `config`; with a tokio runtime, pod changes are published in batches by a
    /// task of their own (without one, at once).
    pub fn new(config: Config, warmup: std::time::Duration) -> Arc<State> {
        let working = Snapshot::build(&config, &[]);
        let snapshot = Arc::new(working.clone());
        let status = ConfigStatus {
            generation: 1,
            applied_at_ms: now_ms(),
            resources: config.resources.len(),
            findings: weft_core::analyze::analyze(&config).findings,
            rejected: None,
            pods_file: None,
        };
        let state = Arc::new(State {
            serve_after: tokio::time::Instant::now() + warmup,
            stopping: watch::Sender::new(false),
            inner: Mutex::new(Inner {
                config: Arc::new(config),
                status,
                pods: pods::Pods::default(),
                working,
            }),
            snapshot: watch::Sender::new(snapshot),
            publish: Arc::new(Notify::new()),
            proxies: Mutex::new(BTreeMap::new()),
            connections: std::sync::atomic::AtomicU64::new(0),
            refused: crate::status::Refusals::default(),
            events: crate::events::Events::default(),
            metrics: {
                let m = crate::metrics::Metrics::default();
                m.generation.set(1);
                m
            },
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(publisher(Arc::downgrade(&state), state.publish.clone()));
        }
        state
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn proxies(&self) -> MutexGuard<'_, BTreeMap<String, ProxyStatus>> {
        self.proxies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts a new configuration in force, with the analyzer's `findings` on it. The snapshot
    /// is updated by what the change touched ([`Snapshot::reconfigure`]) and published at once.
    pub fn apply(&self, config: Config, findings: Vec<weft_core::analyze::Finding>) {
        let mut inner = self.inner();
        inner.status.generation += 1;
        inner.status.applied_at_ms = now_ms();
        inner.status.resources = config.resources.len();
        inner.status.findings = findings;
        inner.status.rejected = None;
        inner.config = Arc::new(config);
        self.metrics.change(true);
        self.metrics.generation.set(inner.status.generation as i64);
        inner.working = inner.working.reconfigure(&inner.config);
        self.snapshot.send_replace(Arc::new(inner.working.clone()));
    }

    /// Records a rejected change; the configuration in force does not change.
    pub fn reject(&self, problems: Vec<String>) {
        self.metrics.change(false);
        self.inner().status.rejected = Some(Rejected {
            at_ms: now_ms(),
            problems,
        });
    }

    /// A number for a new discovery stream, so a stale stream's close cannot remove what a
    /// reconnected one registered.
    pub fn next_connection(&self) -> u64 {
        self.connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// Registers the pod its proxy announced; returns the snapshot generation that has it
    /// (streams wait for it to be published).
    pub fn add_pod(&self, connection: u64, pod: Pod) -> u64 {
        let mut inner = self.inner();
        let Inner { pods, working, .. } = &mut *inner;
        pods.announce(working, connection, pod);
        self.pods_changed(&inner)
    }

    /// Removes the pod if `connection` is still the one that announced it.
    pub fn remove_pod(&self, id: &str, connection: u64) {
        let mut inner = self.inner();
        let Inner { pods, working, .. } = &mut *inner;
        if pods.announced_by(id, connection) {
            pods.withdraw(working, id);
            self.pods_changed(&inner);
        }
    }

    /// Puts the pods file's list in force (`path` for the status).
    pub fn set_file_pods(&self, path: &str, pods: Vec<Pod>) {
        let mut inner = self.inner();
        inner.status.pods_file = Some(PodsFileStatus {
            path: path.to_string(),
            pods: pods.len(),
            loaded_at_ms: Some(now_ms()),
            error: None,
        });
        let Inner {
            pods: state,
            working,
            ..
        } = &mut *inner;
        state.set_list(working, pods);
        // The file is already a batch (the watcher debounces it), and the runtime lists a pod
        // once it is ready: published at once, so its endpoints reach every proxy without
        // waiting for a batch window.
        self.snapshot.send_replace(Arc::new(inner.working.clone()));
    }

    /// Records why the pods file cannot be read; the list in force does not change.
    pub fn reject_file_pods(&self, path: &str, problem: String) {
        let mut inner = self.inner();
        let status = inner
            .status
            .pods_file
            .get_or_insert_with(|| PodsFileStatus {
                path: path.to_string(),
                pods: 0,
                loaded_at_ms: None,
                error: None,
            });
        status.error = Some(Rejected {
            at_ms: now_ms(),
            problems: vec![problem],
        });
    }

    /// Schedules the publication of pod changes; returns the working generation.
    fn pods_changed(&self, inner: &Inner) -> u64 {
        self.publish.notify_one();
        if tokio::runtime::Handle::try_current().is_err() {
            self.snapshot.send_replace(Arc::new(inner.working.clone()));
        }
        inner.working.generation()
    }

    /// Hands the working snapshot to the discovery streams.
    fn publish(&self) {
        let snapshot = Arc::new(self.inner().working.clone());
        if snapshot.generation() != self.snapshot.borrow().generation() {
            self.snapshot.send_replace(snapshot);
        }
    }

    /// The trust domain of the Mesh configuration in force.
    pub fn trust_domain(&self) -> String {
        self.snapshot.borrow().mesh.trust_domain.clone()
    }

    pub fn snapshot(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    pub fn config_status(&self) -> ConfigStatus {
        self.inner().status.clone()
    }
}

/// Publishes pod changes: the first change after a quiet spell waits [`BATCH`] for the rest of
/// its burst; changes during a publication wait for the next.
async fn publisher(state: Weak<State>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        tokio::time::sleep(BATCH).await;
        match state.upgrade() {
            Some(state) => state.publish(),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests;
