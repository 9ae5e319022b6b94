//! What was sent to each proxy, per resource type, and what it ACKed or NACKed; which proxies
//! were refused for version skew or another revision; and what this control plane is: the data
//! behind `weft status`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use weft_core::model::Encoded;

/// The proxy as it introduced itself.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: String,
    pub role: String,
    pub namespace: String,
    pub workload: String,
    pub pod: String,
    pub ip: String,
    pub revision: String,
    /// The discovery protocol it speaks (0: it predates versioning).
    pub protocol_version: u32,
    /// Its build, e.g. "0.1.0" (empty: not sent).
    pub weft_version: String,
    pub peer: Option<String>,
    /// Admitted on the mTLS port by its certificate (else: the loopback port, as claimed).
    #[serde(default)]
    pub authenticated: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStatus {
    /// The discovery stream this status belongs to.
    pub connection: u64,
    pub node: NodeInfo,
    pub connected_at_ms: u64,
    /// Per type URL.
    pub types: BTreeMap<String, TypeStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SyncState {
    /// Everything sent was ACKed.
    #[serde(rename = "SYNCED")]
    Synced,
    /// A response is waiting for its ACK.
    #[serde(rename = "STALE")]
    Stale,
    /// The last response was rejected; the proxy runs its previous config.
    #[serde(rename = "NACKED")]
    Nacked,
    /// Nothing was sent yet.
    #[serde(rename = "NOT SENT")]
    NotSent,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeStatus {
    pub subscribed: BTreeSet<String>,
    /// Name → version last sent.
    pub sent: BTreeMap<String, String>,
    /// Name → what was last sent (the proxy's config once ACKed); shared with the snapshot and
    /// every other stream that sent the same version.
    #[serde(skip)]
    pub bodies: BTreeMap<String, Arc<Encoded>>,
    pub last_nonce: Option<String>,
    pub last_sent_at_ms: Option<u64>,
    pub acked_nonce: Option<String>,
    pub acked_at_ms: Option<u64>,
    pub nack: Option<Nack>,
    /// Resources whose latest version the proxy rejected and has not accepted since.
    pub nacked: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Nack {
    pub nonce: String,
    pub error: String,
    pub at_ms: u64,
}

impl TypeStatus {
    pub fn compute_state(&self) -> SyncState {
        if !self.nacked.is_empty() {
            return SyncState::Nacked;
        }
        match (&self.last_nonce, &self.nack, &self.acked_nonce) {
            // A reconnecting proxy announced versions that are current: nothing to send.
            (None, _, _) if !self.sent.is_empty() => SyncState::Synced,
            (None, _, _) => SyncState::NotSent,
            (Some(n), Some(nack), _) if nack.nonce == *n => SyncState::Nacked,
            (Some(n), _, Some(a)) if a == n => SyncState::Synced,
            _ => SyncState::Stale,
        }
    }
}

/// What this control plane is, shown by the admin API so an operator (or `weft status`) sees
/// which revision and build answers, and which proxies it serves.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct About {
    pub weft_version: &'static str,
    /// `weft control --revision`; None: proxies of every revision are served.
    pub revision: Option<String>,
    pub protocol_version: u32,
    pub oldest_supported_proxy: u32,
}

impl About {
    pub fn new(revision: Option<String>) -> About {
        About {
            weft_version: weft_proto::WEFT_VERSION,
            revision,
            protocol_version: weft_proto::PROTOCOL_VERSION,
            oldest_supported_proxy: weft_proto::OLDEST_SUPPORTED_PROXY,
        }
    }
}

/// A proxy whose discovery stream was refused for what it runs or where it points (version
/// skew, another revision): it keeps retrying, so the operator is the one to act.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedProxy {
    pub node: NodeInfo,
    pub reason: String,
    pub message: String,
    pub first_at_ms: u64,
    pub last_at_ms: u64,
    /// Refusals since the first (the proxy retries with backoff).
    pub times: u64,
}

/// Proxies most recently refused, by id. Bounded: a flood of made-up ids forgets the oldest.
const MAX_REFUSED: usize = 256;

/// The proxies refused for skew or revision that have not been served since.
#[derive(Debug, Default)]
pub struct Refusals(Mutex<BTreeMap<String, RefusedProxy>>);

impl Refusals {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RefusedProxy>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a refusal; true when the proxy was not refused already (a new refusal, not its
    /// retry).
    pub fn record(&self, node: NodeInfo, reason: &str, message: &str, at_ms: u64) -> bool {
        let mut all = self.lock();
        let first = !all.contains_key(&node.id);
        let entry = all.entry(node.id.clone()).or_insert_with(|| RefusedProxy {
            node: node.clone(),
            reason: String::new(),
            message: String::new(),
            first_at_ms: at_ms,
            last_at_ms: at_ms,
            times: 0,
        });
        entry.node = node;
        entry.reason = reason.to_string();
        entry.message = message.to_string();
        entry.last_at_ms = at_ms;
        entry.times += 1;
        while all.len() > MAX_REFUSED {
            let oldest = all
                .iter()
                .min_by_key(|(_, r)| r.last_at_ms)
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else { break };
            all.remove(&oldest);
        }
        first
    }

    /// The proxy `id` was served: it is no longer refused.
    pub fn clear(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn list(&self) -> Vec<RefusedProxy> {
        self.lock().values().cloned().collect()
    }
}
