//! What was sent to each proxy, per resource type, and what it ACKed or NACKed: the data
//! behind `weft status`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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
