//! Applies pods to a [`Snapshot`] one at a time: [`Snapshot::set_pod`] and
//! [`Snapshot::remove_pod`] touch only the Services of the pod's namespace that select it (or
//! selected it) and the pod's address, never the whole mesh.
//!
//! The indexes kept for that: pod id → the pod and the Services it is an endpoint of; per
//! Service the pod ids of its endpoints (endpoints are sorted by pod id, so the order does not
//! depend on the order pods arrived); (address, pod id), where the smallest id owns an address
//! two pods claim; and (namespace, pod name, pod id), since endpoints name their pod by name.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use super::base::Base;
use super::build::{Pod, Snapshot};
use super::{Endpoint, ServiceConfig};

/// A pod id, namespace or name in the indexes: shared, so cloning an index copies no text.
pub(super) type Id = Arc<str>;

/// A pod as the snapshot holds it.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub id: Id,
    namespace: Id,
    name: Id,
    pub pod: Pod,
    /// The pod as the target of its own address (no Service ports).
    pub endpoint: Arc<Endpoint>,
    /// Keys of the Services it is an endpoint of, sorted.
    pub services: Vec<String>,
}

impl Member {
    pub fn new(base: &Base, pod: Pod, services: Vec<String>) -> Member {
        Member {
            endpoint: Arc::new(base.endpoint(&pod, BTreeMap::new())),
            id: Id::from(pod.id.as_str()),
            namespace: Id::from(pod.namespace.as_str()),
            name: Id::from(pod.name.as_str()),
            pod,
            services,
        }
    }
}

/// The pod indexes of a snapshot.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    /// Pod id → the pod.
    pub pods: BTreeMap<Id, Arc<Member>>,
    /// Service key → the pod ids of its endpoints, in the order of its endpoints.
    pub members: BTreeMap<String, Arc<Vec<Id>>>,
    /// (address, pod id) of every pod.
    pub by_ip: BTreeSet<(IpAddr, Id)>,
    /// (namespace, pod name, pod id) of every pod.
    pub by_name: BTreeSet<(Id, Id, Id)>,
}

impl Index {
    pub fn insert(&mut self, member: Member) {
        let m = &member;
        self.by_ip.insert((m.pod.ip, m.id.clone()));
        self.by_name
            .insert((m.namespace.clone(), m.name.clone(), m.id.clone()));
        self.pods.insert(m.id.clone(), Arc::new(member));
    }

    pub fn remove(&mut self, id: &str) -> Option<Arc<Member>> {
        let m = self.pods.remove(id)?;
        self.by_ip.remove(&(m.pod.ip, m.id.clone()));
        self.by_name
            .remove(&(m.namespace.clone(), m.name.clone(), m.id.clone()));
        Some(m)
    }

    /// The pod that owns address `ip`: the smallest id among the pods that have it.
    pub fn owner(&self, ip: IpAddr) -> Option<&Member> {
        let (owner_ip, id) = self.by_ip.range((ip, Id::from(""))..).next()?;
        (*owner_ip == ip).then(|| self.pods.get(id).map(|m| &**m))?
    }

    /// Ids of the pods named `name` in namespace `ns`, sorted.
    pub fn named<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Id> {
        self.by_name
            .range((Id::from(ns), Id::from(name), Id::from(""))..)
            .take_while(move |(n, m, _)| **n == *ns && **m == *name)
            .map(|(_, _, id)| id)
    }

    /// Ids of the pods of namespace `ns`.
    pub fn in_namespace<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a Id> {
        self.by_name
            .range((Id::from(ns), Id::from(""), Id::from(""))..)
            .take_while(move |(n, _, _)| **n == *ns)
            .map(|(_, _, id)| id)
    }

    /// Position of pod `id` among the endpoints of Service `key`.
    pub fn position(&self, key: &str, id: &str) -> Result<usize, usize> {
        self.members
            .get(key)
            .map_or(Err(0), |ids| ids.binary_search_by(|x| (**x).cmp(id)))
    }
}

impl Snapshot {
    /// Puts `pod` in force: inserts it, or replaces the pod with the same id (its labels,
    /// address, inbound or tunnel may have changed).
    pub fn set_pod(&mut self, pod: Pod) {
        if self
            .index
            .pods
            .get(pod.id.as_str())
            .is_some_and(|m| m.pod == pod)
        {
            return;
        }
        self.changes.next();
        let base = Arc::clone(&self.base);
        let selected: Vec<(&str, Endpoint)> = base
            .selecting(&pod)
            .into_iter()
            .filter_map(|s| Some((s.key.as_str(), base.service_endpoint(s, &pod)?)))
            .collect();
        let old = self.index.remove(&pod.id);
        if let Some(old) = &old {
            for key in &old.services {
                if selected
                    .binary_search_by(|(k, _)| k.cmp(&key.as_str()))
                    .is_err()
                {
                    self.remove_endpoint(key, &pod.id);
                }
            }
        }
        let services = selected.iter().map(|(k, _)| k.to_string()).collect();
        let ip = pod.ip;
        let named = (pod.namespace.clone(), pod.name.clone());
        let member = Member::new(&base, pod, services);
        for (key, endpoint) in selected {
            self.put_endpoint(key, &member.id, endpoint);
        }
        self.index.insert(member);
        self.pod_changed(&named.0, &named.1);
        self.refresh_address(ip);
        if let Some(old) = old {
            if (&old.pod.namespace, &old.pod.name) != (&named.0, &named.1) {
                self.pod_changed(&old.pod.namespace, &old.pod.name);
            }
            if old.pod.ip != ip {
                self.refresh_address(old.pod.ip);
            }
        }
    }

    /// Takes the pod `id` out of force; nothing happens when there is none.
    pub fn remove_pod(&mut self, id: &str) {
        let Some(old) = self.index.remove(id) else {
            return;
        };
        self.changes.next();
        for key in &old.services {
            self.remove_endpoint(key, id);
        }
        self.changes.pod(&old.id);
        self.pod_changed(&old.pod.namespace, &old.pod.name);
        self.refresh_address(old.pod.ip);
    }

    /// A pod named `name` in `ns` changed: the proxies of every pod of that name see its
    /// endpoints (see [`Snapshot::proxy`]).
    pub(super) fn pod_changed(&mut self, ns: &str, name: &str) {
        let ids: Vec<Id> = self.index.named(ns, name).cloned().collect();
        for id in ids {
            self.changes.pod(&id);
        }
    }

    /// Inserts or replaces pod `id`'s endpoint in Service `key`.
    fn put_endpoint(&mut self, key: &str, id: &Id, endpoint: Endpoint) {
        let at = self.index.position(key, id);
        let Some(svc) = self.services.get_mut(key) else {
            return;
        };
        match at {
            Ok(i) if svc.endpoints[i] == endpoint => return,
            Ok(i) => Arc::make_mut(svc).endpoints[i] = endpoint,
            Err(i) => {
                Arc::make_mut(svc).endpoints.insert(i, endpoint);
                let ids = self.index.members.entry(key.to_string()).or_default();
                Arc::make_mut(ids).insert(i, id.clone());
            }
        }
        self.changes.service(key);
    }

    fn remove_endpoint(&mut self, key: &str, id: &str) {
        let Ok(i) = self.index.position(key, id) else {
            return;
        };
        if let Some(svc) = self.services.get_mut(key) {
            Arc::make_mut(svc).endpoints.remove(i);
        }
        if let Some(ids) = self.index.members.get_mut(key) {
            Arc::make_mut(ids).remove(i);
            if ids.is_empty() {
                self.index.members.remove(key);
            }
        }
        self.changes.service(key);
    }

    /// Points address `ip` at its owner, if it changed.
    fn refresh_address(&mut self, ip: IpAddr) {
        let owner = self.index.owner(ip).map(|m| Arc::clone(&m.endpoint));
        if self.pods.get(&ip) == owner.as_ref() {
            return;
        }
        match owner {
            Some(ep) => self.pods.insert(ip, ep),
            None => self.pods.remove(&ip),
        };
        self.changes.address(ip);
    }

    /// The endpoints of Service `key` that are pod `id`.
    pub(super) fn endpoint_of(&self, key: &str, id: &str) -> Option<&Endpoint> {
        let i = self.index.position(key, id).ok()?;
        self.services.get(key)?.endpoints.get(i)
    }
}

/// The endpoints of every selecting Service for `pods` (sorted by id, one per id), with the
/// index they make: the batch form of [`Snapshot::set_pod`]. Each pod is checked only against
/// the Services that can select it (see [`Base::selecting`]).
pub(super) fn assemble(
    base: &Base,
    pods: BTreeMap<&str, &Pod>,
) -> (BTreeMap<String, Arc<ServiceConfig>>, Index) {
    let mut services = base.services.clone();
    let mut index = Index::default();
    let mut endpoints: BTreeMap<&str, (Vec<Endpoint>, Vec<Id>)> = BTreeMap::new();
    for (id, p) in pods {
        let mut keys = Vec::new();
        for s in base.selecting(p) {
            if let Some(ep) = base.service_endpoint(s, p) {
                let (eps, ids) = endpoints.entry(s.key.as_str()).or_default();
                eps.push(ep);
                ids.push(Id::from(id));
                keys.push(s.key.clone());
            }
        }
        index.insert(Member::new(base, p.clone(), keys));
    }
    for (key, (eps, ids)) in endpoints {
        if let Some(svc) = services.get_mut(key) {
            Arc::make_mut(svc).endpoints = eps;
            index.members.insert(key.to_string(), Arc::new(ids));
        }
    }
    (services, index)
}
