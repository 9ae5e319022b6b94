//! The clusters of a proxy (one per Service port it can send to, named as Istio names them:
//! `outbound|PORT||FQDN`, and one per port of each pod it serves: `inbound|PORT||`) with the
//! Service's client policy (load balancing, connection pool, outlier detection, retries), how
//! its endpoints are reached (mTLS through their tunnel, or plaintext) and as whom; and every
//! endpoint of those clusters, ready or not, with its pod, identity and node.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::routes::RouteConfig;
use super::{Role, Who, fqdn};
use crate::model::{ClientPolicy, Endpoint, Pod, Protocol, ProxyConfig, Snapshot, WaypointRef};
use crate::resources::mesh::MtlsMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Outbound,
    Inbound,
}

/// How a cluster's endpoints are reached (outbound) or its peers arrive (inbound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tls {
    /// Through the peer's mTLS tunnel, checking its identity.
    Mtls,
    Plaintext,
    /// Some endpoints one way, some the other (inbound: mTLS PERMISSIVE).
    Mixed,
    /// No endpoints to tell.
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// `outbound|PORT||FQDN` or `inbound|PORT||` (a node proxy's: `inbound|PORT||POD`).
    pub name: String,
    pub direction: Direction,
    /// `namespace/name` of the Service (inbound: the Service that targets the port, `-` when
    /// none or several do).
    pub service: String,
    pub fqdn: String,
    pub port: u16,
    pub protocol: Protocol,
    /// The version of the Service resource the control plane serves (compare with what the
    /// proxy fetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Load balancing, connection pool, outlier detection, timeouts and retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ClientPolicy>,
    /// The TrafficPolicies (`namespace/name`) that set `policy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_policies: Vec<String>,
    pub tls: Tls,
    /// The identities its endpoints must prove (inbound: the only ones admitted, when
    /// restricted to waypoints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<String>,
    /// Ready endpoints.
    pub endpoints: usize,
    /// The traffic goes to this waypoint instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waypoint: Option<WaypointRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Health {
    /// Ready: an endpoint the proxy balances over.
    Healthy,
    /// Selected, but its pod is not ready: no traffic is sent to it.
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointEntry {
    pub cluster: String,
    /// Where connections go (the pod's address and port).
    pub address: SocketAddr,
    pub health: Health,
    /// `namespace/name`.
    pub pod: String,
    pub workload: String,
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The pod's mTLS tunnel; None: reached in plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<SocketAddr>,
    /// Traffic to the pod's own address goes through this waypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waypoint: Option<String>,
}

/// The clusters of the proxy of `who`, and the endpoints of its inbound ones (its pods' apps).
pub(super) fn of(
    snap: &Snapshot,
    who: &Who<'_>,
    routes: &[RouteConfig],
) -> (Vec<Cluster>, Vec<EndpointEntry>) {
    let mut out = Vec::new();
    let mut apps = Vec::new();
    let mut own: Vec<(&Pod, &ProxyConfig, Option<&str>)> = Vec::new();
    if let (Role::Sidecar | Role::Ambient, Some(cfg), Some(pod)) = (who.role, &who.proxy, who.pod) {
        own.push((pod, cfg, None));
    }
    own.extend(
        who.node_pods
            .iter()
            .map(|(p, c)| (*p, c, Some(p.id.as_str()))),
    );
    for (pod, cfg, on) in own {
        for c in inbound(cfg, pod, on) {
            apps.push(EndpointEntry {
                cluster: c.name.clone(),
                address: SocketAddr::new(pod.ip, c.port),
                health: if pod.ready {
                    Health::Healthy
                } else {
                    Health::Unhealthy
                },
                pod: format!("{}/{}", pod.namespace, pod.name),
                workload: pod.workload.clone(),
                identity: cfg.identity.clone(),
                node: (!pod.node.is_empty()).then(|| pod.node.clone()),
                tunnel: None,
                waypoint: None,
            });
            out.push(c);
        }
    }
    // Sidecars and node proxies can call every Service; a waypoint or gateway what its
    // routes lead to.
    let ports: BTreeSet<(String, u16)> = match who.role {
        Role::Sidecar | Role::Ambient | Role::Node => (snap.services.values())
            .flat_map(|s| s.ports.iter().map(|p| (s.key(), p.port)))
            .collect(),
        Role::Waypoint | Role::Gateway => (routes.iter())
            .flat_map(|r| {
                let itself = r.service.clone().map(|s| (s, r.port));
                let backends = (r.entries.iter()).flat_map(|e| &e.backends);
                let backends = backends
                    .filter(|b| b.unresolved.is_none())
                    .map(|b| (b.service.clone(), if b.port == 0 { r.port } else { b.port }));
                itself.into_iter().chain(backends).collect::<Vec<_>>()
            })
            .collect(),
    };
    for (key, port) in ports {
        if let Some(c) = outbound(snap, who, &key, port) {
            out.push(c);
        }
    }
    (out, apps)
}

/// The cluster of port `port` of Service `key`.
fn outbound(snap: &Snapshot, who: &Who<'_>, key: &str, port: u16) -> Option<Cluster> {
    let s = snap.services.get(key)?;
    let eps: Vec<&Endpoint> = (s.endpoints.iter())
        .filter(|e| e.target(port).is_some())
        .collect();
    let tls = match (
        eps.iter().all(|e| e.tunnel.is_some()),
        eps.iter().any(|e| e.tunnel.is_some()),
    ) {
        _ if eps.is_empty() => Tls::None,
        (true, _) => Tls::Mtls,
        (false, true) => Tls::Mixed,
        (false, false) => Tls::Plaintext,
    };
    let identities: BTreeSet<&str> = (eps.iter())
        .filter(|e| e.tunnel.is_some())
        .map(|e| e.identity.as_str())
        .collect();
    let own_waypoint = who
        .gateway
        .filter(|_| who.role == Role::Waypoint)
        .map(|g| g.key());
    Some(Cluster {
        name: format!("outbound|{port}||{}", fqdn(key)),
        direction: Direction::Outbound,
        service: key.to_string(),
        fqdn: fqdn(key),
        port,
        protocol: s.port(port).map_or(Protocol::Detect, |p| p.protocol),
        version: snap.encoded(key).map(|e| e.version.clone()),
        policy: Some(s.policy.clone()),
        traffic_policies: snap.traffic_policies(key).to_vec(),
        tls,
        identities: identities.into_iter().map(String::from).collect(),
        endpoints: eps.len(),
        waypoint: (s.waypoint.clone()).filter(|w| Some(&w.service) != own_waypoint.as_ref()),
    })
}

/// A cluster per port of the pod: its app, reached on the pod's address.
fn inbound(cfg: &ProxyConfig, pod: &Pod, on: Option<&str>) -> Vec<Cluster> {
    let tls = match cfg.settings.mtls_mode {
        MtlsMode::Strict => Tls::Mtls,
        MtlsMode::Permissive => Tls::Mixed,
        MtlsMode::Disable => Tls::Plaintext,
    };
    (cfg.inbound_ports.iter())
        .map(|p| {
            let service = (cfg.inbound_services.get(&p.port).cloned())
                .or_else(|| (cfg.inbound_service_choices.get(&p.port)).map(|c| c.join("|")));
            Cluster {
                name: format!("inbound|{}||{}", p.port, on.unwrap_or_default()),
                direction: Direction::Inbound,
                fqdn: service.as_deref().map_or("-".into(), fqdn),
                service: service.unwrap_or_else(|| "-".into()),
                port: p.port,
                protocol: p.protocol,
                version: None,
                policy: None,
                traffic_policies: Vec::new(),
                tls,
                identities: cfg.waypoints.clone(),
                endpoints: usize::from(pod.ready),
                waypoint: None,
            }
        })
        .collect()
}

/// Every endpoint of the outbound `clusters`: ready ones as served, then selected pods that
/// are not ready.
pub(super) fn endpoints(snap: &Snapshot, clusters: &[Cluster]) -> Vec<EndpointEntry> {
    let nodes: BTreeMap<(&str, &str), &str> = (snap.current_pods())
        .filter(|p| !p.node.is_empty())
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p.node.as_str()))
        .collect();
    let unready = unready(snap);
    let mut out = Vec::new();
    for c in clusters
        .iter()
        .filter(|c| c.direction == Direction::Outbound)
    {
        let Some(s) = snap.services.get(&c.service) else {
            continue;
        };
        let not_ready = unready
            .get(c.service.as_str())
            .map_or(&[][..], Vec::as_slice);
        let all = (s.endpoints.iter().map(|e| (e, Health::Healthy)))
            .chain(not_ready.iter().map(|e| (e, Health::Unhealthy)));
        for (e, health) in all {
            let Some(address) = e.target(c.port) else {
                continue;
            };
            let node = nodes.get(&(e.namespace.as_str(), e.pod.as_str()));
            out.push(EndpointEntry {
                cluster: c.name.clone(),
                address,
                health,
                pod: format!("{}/{}", e.namespace, e.pod),
                workload: e.workload.clone(),
                identity: e.identity.clone(),
                node: node.map(|n| n.to_string()),
                tunnel: e.tunnel,
                waypoint: e.waypoint.as_ref().map(|w| w.service.clone()),
            });
        }
    }
    out
}

/// Service key → the pods its selector picks that are not ready, as endpoints.
fn unready(snap: &Snapshot) -> BTreeMap<&str, Vec<Endpoint>> {
    let mut out: BTreeMap<&str, Vec<Endpoint>> = BTreeMap::new();
    for pod in snap.current_pods().filter(|p| !p.ready) {
        let as_ready = Pod {
            ready: true,
            ..pod.clone()
        };
        for sel in snap.base.selecting(pod) {
            if let Some(ep) = snap.base.service_endpoint(sel, &as_ready) {
                out.entry(sel.key.as_str()).or_default().push(ep);
            }
        }
    }
    out
}
