//! The served resources of one configuration version with one set of pods: [`Snapshot`].
//!
//! [`Snapshot::build`] computes everything from scratch: the configuration-derived part once
//! (`super::base`), then every Service's endpoints from the pods in one pass. The control plane
//! then keeps the snapshot current pod by pod (`super::pods`), which gives the same result, and
//! publishes clones: Services, pods and the configuration-derived maps are shared behind `Arc`s,
//! so a clone copies pointers and unchanged Services are shared between versions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::base::Base;
use super::changes::{Changes, Encoded};
use super::pods::{Index, assemble};
use super::{
    AddressConfig, Endpoint, GatewayConfig, PortConfig, Protocol, ProxyConfig, ServiceConfig,
    spiffe_id,
};
use crate::annotations::ProxySettings;
use crate::load::Config;
use crate::resources::mesh::MeshSpec;

/// A running pod, as its proxy announced it or as the local runtime listed it (JSON, camelCase:
/// `{"id": "web-0.shop", "namespace": "shop", "workload": "web", "name": "web-0",
/// "ip": "10.0.0.7", "serviceAccount": "web", "labels": {}, "inbound": null}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    /// Unique in the mesh; a proxy's id (`POD.NAMESPACE` by default).
    pub id: String,
    pub namespace: String,
    pub workload: String,
    pub name: String,
    pub ip: IpAddr,
    #[serde(default = "default_service_account")]
    pub service_account: String,
    /// Empty: the Workload's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where peers connect instead of `ip:port` (uncaptured mode).
    #[serde(default)]
    pub inbound: Option<SocketAddr>,
    /// Where the pod's proxy accepts the mTLS tunnel, when not `ip:15008` (uncaptured mode).
    #[serde(default)]
    pub tunnel: Option<SocketAddr>,
    /// The node the pod runs on: an ambient pod is served by that node's proxy. Empty: the
    /// only node.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Whether the pod takes traffic (its app, and its proxy if it has one, are ready). A pod
    /// that is not is known (its address, its proxy's configuration: a node proxy serves it
    /// before its app starts) but no Service's endpoint. Default: true.
    #[serde(default = "ready", skip_serializing_if = "is_ready")]
    pub ready: bool,
}

fn default_service_account() -> String {
    "default".into()
}

fn ready() -> bool {
    true
}

fn is_ready(ready: &bool) -> bool {
    *ready
}

/// The pods file the local runtime writes for the control plane: `{"pods": [Pod, ...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodList {
    pub pods: Vec<Pod>,
}

/// The resources of one configuration version with one set of pods.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub mesh: Arc<MeshSpec>,
    pub services: BTreeMap<String, Arc<ServiceConfig>>,
    /// Service VIP → `<namespace>/<name>`.
    pub addresses: Arc<BTreeMap<IpAddr, String>>,
    /// Every pod by its address (a Service VIP wins where both claim one; of two pods with one
    /// address, the smaller id).
    pub pods: BTreeMap<IpAddr, Arc<Endpoint>>,
    /// Ingress Gateways (class `weft`) by `<namespace>/<name>`.
    pub gateways: Arc<BTreeMap<String, GatewayConfig>>,
    pub(super) base: Arc<Base>,
    pub(super) index: Index,
    pub(super) changes: Changes,
}

impl Snapshot {
    /// The resources of `config` with `pods` (of two pods with one id, the later counts).
    /// Endpoints are sorted by pod id.
    pub fn build(config: &Config, pods: &[Pod]) -> Snapshot {
        Snapshot::assemble(Arc::new(Base::new(config)), pods.iter(), 0)
    }

    /// A full rebuild for `config` with the pods in force, continuing this snapshot's
    /// generations: every resource counts as changed.
    pub fn rebuild(&self, config: &Config) -> Snapshot {
        self.rebuild_with(Arc::new(Base::new(config)))
    }

    pub(super) fn rebuild_with(&self, base: Arc<Base>) -> Snapshot {
        let next = self.changes.generation() + 1;
        Snapshot::assemble(base, self.current_pods(), next)
    }

    fn assemble<'a>(base: Arc<Base>, pods: impl Iterator<Item = &'a Pod>, generation: u64) -> Self {
        let latest: BTreeMap<&str, &Pod> = pods.map(|p| (p.id.as_str(), p)).collect();
        let (services, index) = assemble(&base, latest);
        let mut addresses = BTreeMap::new();
        for (ip, id) in &index.by_ip {
            addresses
                .entry(*ip)
                .or_insert_with(|| Arc::clone(&index.pods[id].endpoint));
        }
        Snapshot {
            mesh: Arc::clone(&base.mesh),
            addresses: Arc::clone(&base.addresses),
            gateways: Arc::clone(&base.gateways),
            changes: Changes::new(generation, services.keys()),
            services,
            pods: addresses,
            index,
            base,
        }
    }

    /// The pods in force, by id.
    pub fn current_pods(&self) -> impl Iterator<Item = &Pod> {
        self.index.pods.values().map(|m| &m.pod)
    }

    /// The pod in force with id `id`.
    pub fn pod(&self, id: &str) -> Option<&Pod> {
        self.index.pods.get(id).map(|m| &m.pod)
    }

    /// Counts changes: each [`Snapshot::set_pod`] or [`Snapshot::remove_pod`] that changed
    /// something adds one.
    pub fn generation(&self) -> u64 {
        self.changes.generation()
    }

    /// Keys of the Services that changed after `generation` (most recent first); None when
    /// that cannot be told (the configuration changed since, or `generation` is not of this
    /// snapshot's line): re-examine all.
    pub fn changed_services(&self, generation: u64) -> Option<impl Iterator<Item = &str>> {
        self.changes.services_since(generation)
    }

    /// Keys of the ingress Gateways that changed after `generation`; None as in
    /// [`Snapshot::changed_services`].
    pub fn changed_gateways(&self, generation: u64) -> Option<impl Iterator<Item = &str>> {
        self.changes.gateways_since(generation)
    }

    /// Pod addresses whose [`Snapshot::address`] may have changed after `generation`; None as
    /// in [`Snapshot::changed_services`]. Service VIPs change only with the configuration.
    pub fn changed_addresses(&self, generation: u64) -> Option<impl Iterator<Item = IpAddr>> {
        self.changes.addresses_since(generation)
    }

    /// Ids of the pods set or removed after `generation` (their [`Snapshot::proxy`] may have
    /// changed); None as in [`Snapshot::changed_services`].
    pub fn changed_pods(&self, generation: u64) -> Option<impl Iterator<Item = &str>> {
        self.changes.pods_since(generation)
    }

    /// Whether the pod `id` was set or removed after `generation` (its [`Snapshot::proxy`] may
    /// have changed); None as in [`Snapshot::changed_services`].
    pub fn pod_changed_after(&self, id: &str, generation: u64) -> Option<bool> {
        self.changes.pod_since(id, generation)
    }

    /// The wire form of Service `key`, encoded once per version of the Service and shared by
    /// every caller (and by later snapshots in which it did not change).
    pub fn encoded(&self, key: &str) -> Option<Arc<Encoded>> {
        let svc = self.services.get(key)?;
        let cell = self.changes.cell(key)?;
        cell.get_or_init(|| Encoded::of(&**svc).map(Arc::new))
            .clone()
    }

    pub fn address(&self, ip: IpAddr) -> Option<AddressConfig> {
        if let Some(s) = self.addresses.get(&ip) {
            return Some(AddressConfig {
                address: ip,
                service: s.clone(),
                pod: None,
            });
        }
        self.pods.get(&ip).map(|ep| AddressConfig {
            address: ip,
            service: String::new(),
            pod: Some((**ep).clone()),
        })
    }

    /// The pod's effective proxy settings: Mesh, then Namespace, then Workload.
    pub fn settings(&self, pod: &Pod) -> ProxySettings {
        self.base.settings(pod)
    }

    /// Whether `pod` runs a waypoint (no node proxy serves it; it is its own proxy).
    pub fn is_waypoint_pod(&self, pod: &Pod) -> bool {
        self.base.is_waypoint_pod(pod)
    }

    /// The configuration of the proxy of `pod`. Its inbound ports are those of its endpoints
    /// (endpoints name their pod by name: every pod in force named like `pod` in its namespace
    /// counts), found through the index, not by a walk over every Service.
    pub fn proxy(&self, pod: &Pod) -> ProxyConfig {
        let ids: Vec<&str> = self
            .index
            .named(&pod.namespace, &pod.name)
            .map(|id| &**id)
            .collect();
        let keys: BTreeSet<&str> = ids
            .iter()
            .filter_map(|id| self.index.pods.get(*id))
            .flat_map(|m| m.services.iter().map(String::as_str))
            .collect();
        let mut inbound_ports: Vec<PortConfig> = Vec::new();
        let mut targeted: BTreeMap<u16, BTreeSet<&str>> = BTreeMap::new();
        for &key in &keys {
            let Some(svc) = self.services.get(key) else {
                continue;
            };
            for ep in ids.iter().filter_map(|id| self.endpoint_of(key, id)) {
                for (svc_port, target) in &ep.ports {
                    targeted.entry(*target).or_default().insert(key);
                    let protocol = svc.port(*svc_port).map_or(Protocol::Detect, |p| p.protocol);
                    if !inbound_ports.iter().any(|p| p.port == *target) {
                        inbound_ports.push(PortConfig {
                            port: *target,
                            name: None,
                            protocol,
                        });
                    }
                }
            }
        }
        inbound_ports.sort_by_key(|p| p.port);
        let mut waypoints = self.base.waypoints_of(keys.iter().copied());
        let own = ids.iter().filter_map(|id| self.index.pods.get(*id));
        for w in own.filter_map(|m| m.endpoint.waypoint.as_ref()) {
            if !waypoints.contains(&w.identity) {
                waypoints.push(w.identity.clone());
            }
        }
        let inbound_service_choices = (targeted.iter())
            .filter(|(_, keys)| keys.len() > 1)
            .map(|(port, keys)| (*port, keys.iter().map(|k| k.to_string()).collect()))
            .collect();
        let inbound_services = targeted
            .into_iter()
            .filter(|(_, keys)| keys.len() == 1)
            .filter_map(|(port, keys)| Some((port, keys.first()?.to_string())))
            .collect();
        // A Service behind a waypoint is limited there, not again at each pod.
        let local_rate_limits = (keys.iter())
            .filter_map(|key| self.services.get(*key))
            .filter(|s| s.waypoint.is_none())
            .filter_map(|s| Some((s.key(), s.local_rate_limit?)))
            .collect();
        let (app, version) = super::app_version(self.base.labels(pod));
        ProxyConfig {
            id: pod.id.clone(),
            namespace: pod.namespace.clone(),
            workload: pod.workload.clone(),
            app,
            version,
            inbound_services,
            inbound_service_choices,
            identity: spiffe_id(
                &self.mesh.trust_domain,
                &pod.namespace,
                &pod.service_account,
            ),
            trust_domain: self.mesh.trust_domain.clone(),
            settings: self.settings(pod),
            inbound_ports,
            outbound_traffic_policy: self.mesh.outbound_traffic_policy,
            authorization: self.base.authorization(pod),
            waypoints,
            local_rate_limits,
        }
    }
}
