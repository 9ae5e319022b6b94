//! What changed between two versions of a [`Snapshot`](super::Snapshot), and each Service's
//! wire form encoded once per version.
//!
//! Every change to a snapshot bumps its generation and stamps the Services, pod addresses and
//! pods it touched with it, so a discovery stream that served generation `g` re-examines only
//! what changed since (`Snapshot::changed_services(g)` and friends) instead of every resource it
//! subscribed to. A new configuration applied incrementally stamps what it changed, like a pod
//! does; after a full rebuild the changes since a generation before it are unknown (`None`).
//!
//! A Service's body and version are computed at most once per version of the Service and shared
//! by every stream and by later snapshots in which the Service did not change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

/// A resource's wire form: its JSON body and the version proxies compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// [`super::version_of`] of the resource.
    pub version: String,
    /// The resource as JSON.
    pub body: Vec<u8>,
}

impl Encoded {
    /// `value` as the discovery stream sends it (through a JSON value, as the stream does for
    /// resources it serializes itself), or None when it cannot be serialized.
    pub fn of<T: Serialize>(value: &T) -> Option<Encoded> {
        let value = serde_json::to_value(value).ok()?;
        let body = serde_json::to_vec(&value).ok()?;
        Some(Encoded {
            version: super::version_of_json(&body),
            body,
        })
    }
}

/// A Service's encoding, filled in by the first stream that asks for it.
pub(super) type Cell = Arc<OnceLock<Option<Arc<Encoded>>>>;

/// Keys a log remembers at most: beyond, the oldest are forgotten, so pods coming and going
/// for days cannot grow it without bound. A stream further behind than what is remembered
/// re-examines everything it subscribed to.
const LOG_LIMIT: usize = 16_384;

/// When each key last changed, and the keys in the order they changed.
#[derive(Debug, Clone)]
struct Log<K> {
    at: BTreeMap<K, u64>,
    order: BTreeSet<(u64, K)>,
    /// Changes at or before this generation may have been forgotten.
    floor: u64,
}

impl<K> Default for Log<K> {
    fn default() -> Self {
        Log {
            at: BTreeMap::new(),
            order: BTreeSet::new(),
            floor: 0,
        }
    }
}

impl<K: Ord + Clone> Log<K> {
    fn stamp(&mut self, key: &K, generation: u64) {
        if let Some(old) = self.at.insert(key.clone(), generation) {
            self.order.remove(&(old, key.clone()));
        }
        self.order.insert((generation, key.clone()));
        while self.at.len() > LOG_LIMIT {
            let Some((g, oldest)) = self.order.pop_first() else {
                break;
            };
            self.at.remove(&oldest);
            self.floor = self.floor.max(g);
        }
    }

    /// Whether every change after `generation` is still remembered.
    fn covers(&self, generation: u64) -> bool {
        generation >= self.floor
    }

    /// Keys stamped after `generation`: proportional to their number, not to the log's size.
    fn since(&self, generation: u64) -> impl Iterator<Item = &K> {
        self.order
            .iter()
            .rev()
            .take_while(move |(g, _)| *g > generation)
            .map(|(_, k)| k)
    }
}

/// The change bookkeeping of one snapshot.
#[derive(Debug, Clone, Default)]
pub(super) struct Changes {
    generation: u64,
    /// The generation at which the configuration came into force.
    configured: u64,
    services: Log<String>,
    addresses: Log<IpAddr>,
    pods: Log<Arc<str>>,
    gateways: Log<String>,
    cells: BTreeMap<String, Cell>,
}

impl Changes {
    /// Fresh bookkeeping at `generation` for a configuration with `services`.
    pub fn new<'a>(generation: u64, services: impl Iterator<Item = &'a String>) -> Changes {
        Changes {
            generation,
            configured: generation,
            cells: services.map(|k| (k.clone(), Cell::default())).collect(),
            ..Changes::default()
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Starts a change: what is stamped until the next call belongs to a new generation.
    pub fn next(&mut self) {
        self.generation += 1;
    }

    /// Service `key` changed: stamp it and forget its encoding.
    pub fn service(&mut self, key: &str) {
        self.services.stamp(&key.to_string(), self.generation);
        self.cells.insert(key.to_string(), Cell::default());
    }

    /// Service `key` is gone: stamp it and drop its encoding.
    pub fn service_removed(&mut self, key: &str) {
        self.services.stamp(&key.to_string(), self.generation);
        self.cells.remove(key);
    }

    pub fn gateway(&mut self, key: &str) {
        self.gateways.stamp(&key.to_string(), self.generation);
    }

    pub fn address(&mut self, ip: IpAddr) {
        self.addresses.stamp(&ip, self.generation);
    }

    pub fn pod(&mut self, id: &Arc<str>) {
        self.pods.stamp(id, self.generation);
    }

    pub fn cell(&self, key: &str) -> Option<&Cell> {
        self.cells.get(key)
    }

    fn known(&self, generation: u64) -> bool {
        generation >= self.configured && generation <= self.generation
    }

    pub fn services_since(&self, generation: u64) -> Option<impl Iterator<Item = &str>> {
        let known = self.known(generation) && self.services.covers(generation);
        known.then(|| self.services.since(generation).map(String::as_str))
    }

    pub fn gateways_since(&self, generation: u64) -> Option<impl Iterator<Item = &str>> {
        let known = self.known(generation) && self.gateways.covers(generation);
        known.then(|| self.gateways.since(generation).map(String::as_str))
    }

    pub fn addresses_since(&self, generation: u64) -> Option<impl Iterator<Item = IpAddr>> {
        let known = self.known(generation) && self.addresses.covers(generation);
        known.then(|| self.addresses.since(generation).copied())
    }

    /// Whether the pod `id` changed after `generation`: one lookup, whatever else changed.
    pub fn pod_since(&self, id: &str, generation: u64) -> Option<bool> {
        let known = self.known(generation) && self.pods.covers(generation);
        known.then(|| self.pods.at.get(id).is_some_and(|g| *g > generation))
    }

    pub fn pods_since(&self, generation: u64) -> Option<impl Iterator<Item = &str>> {
        let known = self.known(generation) && self.pods.covers(generation);
        known.then(|| self.pods.since(generation).map(|id| &**id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_forgets_its_oldest_keys_and_says_so() {
        let mut log: Log<u32> = Log::default();
        let n = LOG_LIMIT as u32 + 10;
        for k in 0..n {
            log.stamp(&k, u64::from(k) + 1);
        }
        assert_eq!(log.at.len(), LOG_LIMIT);
        assert_eq!(log.order.len(), LOG_LIMIT);
        // Keys 0..=9 (stamped at generations 1..=10) are forgotten: asking from before then
        // cannot be answered; from generation 10 on it can.
        assert!(!log.covers(9));
        assert!(log.covers(10));
        let recent: Vec<u32> = log.since(u64::from(n) - 2).copied().collect();
        assert_eq!(recent, [n - 1, n - 2]);
        // Stamping a remembered key again does not grow it.
        log.stamp(&(n - 1), u64::from(n) + 1);
        assert_eq!(log.at.len(), LOG_LIMIT);
    }
}
