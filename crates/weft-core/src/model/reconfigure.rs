//! A new configuration applied to a [`Snapshot`] by what it changed ([`Snapshot::reconfigure`]).
//!
//! What makes a pod an endpoint, and what its proxy's settings are, comes from the mesh, the
//! namespaces and the workloads. While those stay the same, a change to Services, routes,
//! traffic or authorization policies touches only:
//! - the Services whose selector or port targets changed: their endpoints are found again among
//!   the pods of their namespace, and those pods' proxies (their inbound ports) are stamped;
//! - the Services whose served form changed (routes, policy, ports, VIP): stamped, the others
//!   keep their `Arc` and their encoding;
//! - the VIPs and ingress Gateways that differ;
//! - the proxies of the namespaces whose AuthorizationPolicies differ.
//!
//! A change to the mesh, a namespace or a workload is a full rebuild, as is the first
//! configuration. Both paths give the same snapshot (property-tested in
//! `tests/snapshot_props.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Endpoint;
use super::base::Base;
use super::build::Snapshot;
use super::pods::Id;
use crate::load::Config;

impl Snapshot {
    /// The snapshot for `config` with the pods in force, continuing this one's generations:
    /// only what the change touched is recomputed and reported by `changed_*`.
    pub fn reconfigure(&self, config: &Config) -> Snapshot {
        let base = Arc::new(Base::new(config));
        if !self.base.same_pod_view(&base) {
            return self.rebuild_with(base);
        }
        let mut next = self.clone();
        next.changes.next();
        let old = std::mem::replace(&mut next.base, Arc::clone(&base));
        let fresh = next.reselect(&old);
        next.restate_services(&old, fresh);
        next.readdress(&old);
        for ns in old.policy_namespaces(&base) {
            let ids: Vec<Id> = next.index.in_namespace(&ns).cloned().collect();
            for id in ids {
                next.changes.pod(&id);
            }
        }
        next
    }

    /// Finds the endpoints again of every Service whose selector or port targets changed;
    /// returns them by Service key (sorted by pod id).
    fn reselect(&mut self, old: &Base) -> BTreeMap<String, Vec<Endpoint>> {
        let keys: BTreeSet<String> = old
            .services
            .keys()
            .chain(self.base.services.keys())
            .filter(|k| old.selecting_entry(k) != self.base.selecting_entry(k))
            .cloned()
            .collect();
        let mut fresh = BTreeMap::new();
        for key in keys {
            let before = self.index.members.remove(&key).unwrap_or_default();
            for id in before.iter() {
                self.update_member(id, |services| services.retain(|k| *k != key));
            }
            let mut found: Vec<(Id, Endpoint)> = Vec::new();
            if let Some(sel) = self.base.selecting_entry(&key) {
                for id in self.index.in_namespace(&sel.namespace) {
                    let member = &self.index.pods[id];
                    if let Some(ep) = self.base.service_endpoint(sel, &member.pod) {
                        found.push((id.clone(), ep));
                    }
                }
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            let ids: Vec<Id> = found.iter().map(|(id, _)| id.clone()).collect();
            for id in &ids {
                self.update_member(id, |services| {
                    if let Err(i) = services.binary_search(&key) {
                        services.insert(i, key.clone());
                    }
                });
            }
            for id in before.iter().chain(&ids) {
                self.stamp_pod_group(id);
            }
            if !ids.is_empty() {
                self.index.members.insert(key.clone(), Arc::new(ids));
            }
            fresh.insert(key, found.into_iter().map(|(_, ep)| ep).collect());
        }
        fresh
    }

    /// Puts every Service's new served form in force where it differs (with `fresh` endpoints,
    /// or the ones it had), removes the Services that are gone.
    fn restate_services(&mut self, old: &Base, mut fresh: BTreeMap<String, Vec<Endpoint>>) {
        let keys: BTreeSet<String> = old
            .services
            .keys()
            .chain(self.base.services.keys())
            .cloned()
            .collect();
        for key in keys {
            let Some(new) = self.base.services.get(&key).cloned() else {
                self.services.remove(&key);
                self.changes.service_removed(&key);
                continue;
            };
            let endpoints = fresh.remove(&key);
            let was = old.services.get(&key);
            if endpoints.is_none() && was == Some(&new) {
                continue;
            }
            // The protocol of a proxy's inbound port comes from the Service port, and its
            // local rate limits from the Service's (unless a waypoint enforces them).
            let pods_changed = was.is_none_or(|w| {
                w.ports != new.ports
                    || (w.local_rate_limit, w.waypoint.is_none())
                        != (new.local_rate_limit, new.waypoint.is_none())
            });
            let mut svc = Arc::unwrap_or_clone(new);
            svc.endpoints = match endpoints {
                Some(eps) => eps,
                None => self
                    .services
                    .get(&key)
                    .map(|s| s.endpoints.clone())
                    .unwrap_or_default(),
            };
            if self.services.get(&key).map(|s| &**s) != Some(&svc) {
                self.services.insert(key.clone(), Arc::new(svc));
                self.changes.service(&key);
            }
            if pods_changed {
                let ids: Vec<Id> = self
                    .index
                    .members
                    .get(&key)
                    .map(|m| m.to_vec())
                    .unwrap_or_default();
                for id in &ids {
                    self.stamp_pod_group(id);
                }
            }
        }
    }

    /// Points the VIPs and ingress Gateways at the new configuration's, stamping those that
    /// differ.
    fn readdress(&mut self, old: &Base) {
        for ip in differing(&old.addresses, &self.base.addresses) {
            self.changes.address(ip);
        }
        for key in differing(&old.gateways, &self.base.gateways) {
            self.changes.gateway(&key);
        }
        self.mesh = Arc::clone(&self.base.mesh);
        self.addresses = Arc::clone(&self.base.addresses);
        self.gateways = Arc::clone(&self.base.gateways);
    }

    /// Changes pod `id`'s list of Services it is an endpoint of.
    fn update_member(&mut self, id: &str, change: impl FnOnce(&mut Vec<String>)) {
        if let Some(m) = self.index.pods.get_mut(id) {
            change(&mut Arc::make_mut(m).services);
        }
    }

    /// Stamps the proxies of every pod named like pod `id` (their inbound ports may change).
    fn stamp_pod_group(&mut self, id: &str) {
        let Some(m) = self.index.pods.get(id) else {
            return;
        };
        let (ns, name) = (m.pod.namespace.clone(), m.pod.name.clone());
        self.pod_changed(&ns, &name);
    }
}

/// The keys whose value differs between `before` and `after` (present in one only, or unequal).
pub(super) fn differing<K: Ord + Clone, V: PartialEq>(
    before: &BTreeMap<K, V>,
    after: &BTreeMap<K, V>,
) -> BTreeSet<K> {
    before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}
