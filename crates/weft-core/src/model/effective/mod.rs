//! The full configuration the control plane intends for one proxy, in the shape operators read
//! it (`weft proxy-config POD listeners|routes|clusters|endpoints`): every listener it binds,
//! the routes of every Service it can call (or of its Gateway's listeners), a cluster per
//! Service port it can send to with that Service's client policy and TLS, and every endpoint
//! with its identity and node.
//!
//! A proxy asks for Services on demand, so what it holds is a subset; this is the whole of what
//! it would get, computed from a [`Snapshot`] alone. Live state only the proxy has (outlier
//! ejections, what it fetched, its certificate) is merged in by the tools that show it.
//!
//! What each role serves:
//! - a **sidecar**: outbound capture (15001) for every Service VIP, inbound capture (15006) and
//!   the tunnel (15008) for its own ports; every Service is a cluster;
//! - an **ambient** pod: the same listeners inside the pod, opened by its node's proxy, L4 only;
//! - a **node** proxy: those of each ambient pod on its node;
//! - a **waypoint**: the tunnel only, routing the Services that use it with their L7 routes;
//! - an ingress **gateway**: its Gateway's HTTP listeners and their routes.

mod clusters;
mod listeners;
mod routes;

use serde::{Deserialize, Serialize};

pub use clusters::{Cluster, Direction, EndpointEntry, Health, Tls};
pub use listeners::Listener;
pub use routes::{RouteConfig, RouteEntry};

use super::{GatewayConfig, Pod, ProxyConfig, Snapshot, spiffe_id};
use crate::annotations::{DataplaneMode, GATEWAY_NAME};
use crate::resources::mesh::{MtlsMode, OutboundTrafficPolicy};

/// Whose configuration to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A pod by id (`name.namespace` under `weft up`): its sidecar, its waypoint, or for an
    /// ambient pod its part of its node proxy.
    Pod(&'a str),
    /// An ingress Gateway, `namespace/name`.
    Gateway(&'a str),
    /// The node proxy of a node.
    Node(&'a str),
}

/// What kind of proxy the configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Sidecar,
    /// An ambient pod, served by its node's proxy (L4).
    Ambient,
    Node,
    Waypoint,
    Gateway,
}

impl Role {
    /// The role routes HTTP itself (a node proxy and ambient pods are L4 only).
    fn l7(self) -> bool {
        !matches!(self, Role::Ambient | Role::Node)
    }
}

/// Why there is no configuration for a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the control plane has no pod {id:?} in force (not started, or not ready yet)")]
    NoPod { id: String },
    #[error("pod {id} has no proxy: its dataplane mode is none")]
    NoProxy { id: String },
    #[error("ambient pod {id} is on no node, so no node proxy serves it")]
    NoNode { id: String },
    #[error("no ingress Gateway {key:?} (of class weft); Gateways: {known}")]
    NoGateway { key: String, known: String },
}

/// The proxy a configuration is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub role: Role,
    /// The pod id, the Gateway's `namespace/name`, or the node.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Its SPIFFE identity (a node proxy holds one per pod: none of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The node it runs on (an ambient pod: the node whose proxy serves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls_mode: Option<MtlsMode>,
    pub outbound_traffic_policy: OutboundTrafficPolicy,
    /// A node proxy's ambient pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
}

/// Everything the control plane intends for one proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Effective {
    pub proxy: Subject,
    pub listeners: Vec<Listener>,
    pub routes: Vec<RouteConfig>,
    pub clusters: Vec<Cluster>,
    pub endpoints: Vec<EndpointEntry>,
}

/// What the parts are computed from.
struct Who<'a> {
    role: Role,
    /// The sidecar's, waypoint's or ambient pod's own configuration.
    proxy: Option<ProxyConfig>,
    pod: Option<&'a Pod>,
    /// A waypoint's or gateway's Gateway.
    gateway: Option<&'a GatewayConfig>,
    /// A node proxy's ambient pods, with their configurations.
    node_pods: Vec<(&'a Pod, ProxyConfig)>,
}

impl Snapshot {
    /// The full configuration this snapshot intends for the proxy of `target`.
    pub fn effective(&self, target: Target<'_>) -> Result<Effective, Error> {
        let (who, subject) = self.who(target)?;
        let listeners = listeners::of(self, &who);
        let routes = routes::of(self, &who);
        let (clusters, mut endpoints) = clusters::of(self, &who, &routes);
        endpoints.extend(clusters::endpoints(self, &clusters));
        Ok(Effective {
            proxy: subject,
            listeners,
            routes,
            clusters,
            endpoints,
        })
    }

    fn who(&self, target: Target<'_>) -> Result<(Who<'_>, Subject), Error> {
        let policy = self.mesh.outbound_traffic_policy;
        match target {
            Target::Pod(id) => {
                let pod = self.pod(id).ok_or_else(|| Error::NoPod { id: id.into() })?;
                let proxy = self.proxy(pod);
                let role = match (self.is_waypoint_pod(pod), proxy.settings.dataplane_mode) {
                    (true, _) => Role::Waypoint,
                    (false, DataplaneMode::Sidecar) => Role::Sidecar,
                    (false, DataplaneMode::Ambient) if pod.node.is_empty() => {
                        return Err(Error::NoNode { id: id.into() });
                    }
                    (false, DataplaneMode::Ambient) => Role::Ambient,
                    (false, DataplaneMode::None) => return Err(Error::NoProxy { id: id.into() }),
                };
                let gateway = match role {
                    Role::Waypoint => self.waypoint_of(pod),
                    _ => None,
                };
                let subject = Subject {
                    role,
                    name: pod.id.clone(),
                    namespace: pod.namespace.clone(),
                    identity: Some(proxy.identity.clone()),
                    node: (!pod.node.is_empty()).then(|| pod.node.clone()),
                    mtls_mode: Some(proxy.settings.mtls_mode),
                    outbound_traffic_policy: policy,
                    pods: Vec::new(),
                };
                let who = Who {
                    role,
                    proxy: Some(proxy),
                    pod: Some(pod),
                    gateway,
                    node_pods: Vec::new(),
                };
                Ok((who, subject))
            }
            Target::Gateway(key) => {
                let gateway = (self.gateways.get(key))
                    .filter(|g| !g.waypoint)
                    .ok_or_else(|| Error::NoGateway {
                        key: key.into(),
                        known: self.ingress_gateways(),
                    })?;
                let subject = Subject {
                    role: Role::Gateway,
                    name: key.to_string(),
                    namespace: gateway.namespace.clone(),
                    // Its service account is the Gateway's name (as `weft up` runs it).
                    identity: Some(spiffe_id(
                        &self.mesh.trust_domain,
                        &gateway.namespace,
                        &gateway.name,
                    )),
                    node: None,
                    mtls_mode: None,
                    outbound_traffic_policy: policy,
                    pods: Vec::new(),
                };
                let who = Who {
                    role: Role::Gateway,
                    proxy: None,
                    pod: None,
                    gateway: Some(gateway),
                    node_pods: Vec::new(),
                };
                Ok((who, subject))
            }
            Target::Node(node) => {
                let node_pods: Vec<(&Pod, ProxyConfig)> = self
                    .current_pods()
                    .filter(|p| p.node == node && !self.is_waypoint_pod(p))
                    .filter(|p| self.settings(p).dataplane_mode == DataplaneMode::Ambient)
                    .map(|p| (p, self.proxy(p)))
                    .collect();
                let subject = Subject {
                    role: Role::Node,
                    name: node.to_string(),
                    namespace: String::new(),
                    identity: None,
                    node: Some(node.to_string()),
                    mtls_mode: None,
                    outbound_traffic_policy: policy,
                    pods: node_pods.iter().map(|(p, _)| p.id.clone()).collect(),
                };
                let who = Who {
                    role: Role::Node,
                    proxy: None,
                    pod: None,
                    gateway: None,
                    node_pods,
                };
                Ok((who, subject))
            }
        }
    }

    /// The waypoint Gateway a waypoint's pod runs.
    fn waypoint_of(&self, pod: &Pod) -> Option<&GatewayConfig> {
        let name = self.base.labels(pod).get(GATEWAY_NAME)?;
        (self.gateways.get(&format!("{}/{name}", pod.namespace))).filter(|g| g.waypoint)
    }

    /// The ingress Gateways, for an error message.
    fn ingress_gateways(&self) -> String {
        let keys: Vec<String> = (self.gateways.values())
            .filter(|g| !g.waypoint)
            .map(|g| g.key())
            .collect();
        match keys.is_empty() {
            true => "none".into(),
            false => keys.join(", "),
        }
    }

    /// The TrafficPolicies (`namespace/name`) that set the client policy of Service `key`.
    pub fn traffic_policies(&self, key: &str) -> &[String] {
        self.base
            .traffic_policies
            .get(key)
            .map_or(&[], Vec::as_slice)
    }
}

/// `name.namespace.svc.cluster.local` of Service `ns/name`.
pub(crate) fn fqdn(key: &str) -> String {
    match key.split_once('/') {
        Some((ns, name)) => format!("{name}.{ns}.svc.cluster.local"),
        None => key.to_string(),
    }
}

#[cfg(test)]
mod tests;
