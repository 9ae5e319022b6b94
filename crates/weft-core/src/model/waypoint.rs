//! Waypoints: Gateways of class `weft-waypoint`, and who uses which.
//!
//! - A waypoint's pods carry the label `gateway.networking.k8s.io/gateway-name: NAME` and run
//!   as service account NAME; each waypoint gets a Service of its name (port 15008, selecting
//!   those pods), as on Kubernetes, so clients find its ready pods like any endpoints. A
//!   Service of that name defined by the user wins (the analyzer reports the clash).
//! - `weft.dev/use-waypoint: NAME` on a Service, a Workload or their Namespace (the Service's or
//!   Workload's own label wins; `none` opts out) names the waypoint in the same namespace.
//!   Traffic to a Service uses it when the waypoint is `waypoint-for: service` (the default)
//!   or `all`; traffic to a pod's own address when it is `workload` or `all`. A label naming
//!   no waypoint still sends Service traffic to it: it fails closed rather than skip L7 policy.
//! - AuthorizationPolicies attached with `targetRefs` (to the waypoint, or to a Service that
//!   uses it) are the waypoint's, scoped to the Services they name.

use std::collections::BTreeMap;

use super::{GatewayConfig, GatewayListener, HttpRoutes, ServiceConfig, WaypointRef, spiffe_id};
use crate::annotations::{GATEWAY_NAME, USE_WAYPOINT, WAYPOINT_FOR, WaypointFor};
use crate::authz::ServedPolicy;
use crate::load::Config;
use crate::meta::ObjectMeta;
use crate::resources::Resource;
use crate::resources::gateway::Gateway;
use crate::resources::policy::AuthorizationPolicy;
use crate::resources::service::{IntOrString, Service, ServicePort, ServiceSpec};

pub(super) type Labels = BTreeMap<String, String>;

/// The name of a waypoint's tunnel listener and Service port.
const TUNNEL_PORT_NAME: &str = "tunnel";

/// The waypoints of a configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Waypoints {
    /// `<namespace>/<name>` → what it handles.
    pub(super) handles: BTreeMap<String, WaypointFor>,
    trust_domain: String,
}

impl Waypoints {
    pub(super) fn new(config: &Config, trust_domain: &str) -> Waypoints {
        let handles = waypoint_gateways(config)
            .map(|g| {
                let handles = g
                    .metadata
                    .label(WAYPOINT_FOR)
                    .and_then(WaypointFor::parse)
                    .unwrap_or_default();
                (key(&g.metadata), handles)
            })
            .collect();
        Waypoints {
            handles,
            trust_domain: trust_domain.to_string(),
        }
    }

    /// The Services that front the waypoints' pods, except where the user defined one of that
    /// name.
    pub(super) fn services(config: &Config) -> Vec<Service> {
        let defined: std::collections::BTreeSet<String> = config
            .resources
            .iter()
            .filter_map(|l| match &l.resource {
                Resource::Service(s) => Some(key(&s.metadata)),
                _ => None,
            })
            .collect();
        waypoint_gateways(config)
            .filter(|g| !defined.contains(&key(&g.metadata)))
            .map(|g| Service {
                metadata: ObjectMeta {
                    name: g.metadata.name.clone(),
                    namespace: g.metadata.namespace.clone(),
                    ..ObjectMeta::default()
                },
                spec: ServiceSpec {
                    selector: [(GATEWAY_NAME.to_string(), g.metadata.name.clone())].into(),
                    ports: vec![ServicePort {
                        name: Some(TUNNEL_PORT_NAME.into()),
                        port: super::TUNNEL_PORT,
                        target_port: Some(IntOrString::Int(super::TUNNEL_PORT)),
                        protocol: Default::default(),
                        app_protocol: Some("tcp".into()),
                        node_port: None,
                    }],
                    ..ServiceSpec::default()
                },
                status: None,
            })
            .collect()
    }

    /// Whether `key` is a waypoint's own Service (it never uses a waypoint itself).
    pub(super) fn is_waypoint(&self, key: &str) -> bool {
        self.handles.contains_key(key)
    }

    /// The waypoint of a Service in `ns` with `labels`.
    pub(super) fn for_service(
        &self,
        ns: &str,
        labels: &Labels,
        ns_labels: &Labels,
    ) -> Option<WaypointRef> {
        let name = named(labels, ns_labels)?;
        if let Some(handles) = self.handles.get(&format!("{ns}/{name}"))
            && !handles.services()
        {
            return None;
        }
        Some(self.reference(ns, name))
    }

    /// The waypoint of a pod's own address: its Workload's (or Namespace's) label, when that
    /// waypoint handles workload traffic. A waypoint's own pods use none.
    pub(super) fn for_workload(
        &self,
        ns: &str,
        labels: &Labels,
        ns_labels: &Labels,
    ) -> Option<WaypointRef> {
        if labels.contains_key(GATEWAY_NAME) {
            return None;
        }
        let name = named(labels, ns_labels)?;
        let handles = self.handles.get(&format!("{ns}/{name}"))?;
        handles.workloads().then(|| self.reference(ns, name))
    }

    fn reference(&self, ns: &str, name: &str) -> WaypointRef {
        WaypointRef {
            service: format!("{ns}/{name}"),
            identity: spiffe_id(&self.trust_domain, ns, name),
        }
    }
}

/// The waypoint a label names: the object's own, else its Namespace's; `none` opts out.
fn named<'a>(labels: &'a Labels, ns_labels: &'a Labels) -> Option<&'a str> {
    let name = labels
        .get(USE_WAYPOINT)
        .or_else(|| ns_labels.get(USE_WAYPOINT))?;
    (!name.is_empty() && name != "none").then_some(name.as_str())
}

fn key(meta: &ObjectMeta) -> String {
    format!("{}/{}", meta.namespace(), meta.name)
}

fn waypoint_gateways(config: &Config) -> impl Iterator<Item = &Gateway> {
    config.resources.iter().filter_map(|l| match &l.resource {
        Resource::Gateway(g) if g.is_waypoint() => Some(g),
        _ => None,
    })
}

/// The waypoints' served form: their tunnel listener and the AuthorizationPolicies attached to
/// them or to the Services that use them.
pub(super) fn gateways(
    config: &Config,
    services: &BTreeMap<String, ServiceConfig>,
    policies: &[AuthorizationPolicy],
) -> BTreeMap<String, GatewayConfig> {
    let mut out: BTreeMap<String, GatewayConfig> = waypoint_gateways(config)
        .map(|g| {
            let config = GatewayConfig {
                namespace: g.metadata.namespace().to_string(),
                name: g.metadata.name.clone(),
                listeners: vec![GatewayListener {
                    name: TUNNEL_PORT_NAME.into(),
                    port: super::TUNNEL_PORT,
                    hostname: None,
                }],
                http: HttpRoutes::default(),
                waypoint: true,
                authorization: Vec::new(),
                local_rate_limits: BTreeMap::new(),
            };
            (config.key(), config)
        })
        .collect();
    for svc in services.values() {
        let (Some(w), Some(limit)) = (&svc.waypoint, svc.local_rate_limit) else {
            continue;
        };
        if let Some(g) = out.get_mut(&w.service) {
            g.local_rate_limits.insert(svc.key(), limit);
        }
    }
    for p in policies.iter().filter(|p| !p.spec.target_refs.is_empty()) {
        let ns = p.metadata.namespace();
        // Waypoint key → the Services the policy is scoped to there (None: all its traffic).
        let mut scopes: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
        for t in &p.spec.target_refs {
            match t.kind.as_str() {
                "Gateway" => {
                    scopes.insert(format!("{ns}/{}", t.name), None);
                }
                "Service" => {
                    let svc = format!("{ns}/{}", t.name);
                    let Some(w) = services.get(&svc).and_then(|s| s.waypoint.as_ref()) else {
                        continue;
                    };
                    if let Some(list) = scopes.entry(w.service.clone()).or_insert(Some(vec![])) {
                        list.push(svc);
                    }
                }
                _ => {}
            }
        }
        for (waypoint, scope) in scopes {
            let Some(g) = out.get_mut(&waypoint) else {
                continue;
            };
            g.authorization.push(ServedPolicy {
                name: format!("{ns}/{}", p.metadata.name),
                action: p.spec.action,
                rules: p.spec.rules.clone(),
                services: scope.unwrap_or_default(),
            });
        }
    }
    out
}

/// What one waypoint is doing, for operators (`weft waypoint list`, the control plane's
/// `/debug/waypoints`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaypointStatus {
    /// `<namespace>/<name>`.
    pub name: String,
    /// False when labels name it but no Gateway of class `weft-waypoint` defines it: the
    /// traffic sent to it fails closed.
    pub exists: bool,
    /// What it handles (`weft.dev/waypoint-for`).
    #[serde(rename = "for")]
    pub handles: WaypointFor,
    pub identity: String,
    /// Its ready instances: pod and tunnel address.
    pub instances: Vec<(String, String)>,
    /// The Services whose traffic goes through it.
    pub services: Vec<String>,
    /// The AuthorizationPolicies attached to it (or to its Services).
    pub policies: Vec<String>,
}

impl super::Snapshot {
    /// Every waypoint defined or named by a label, with its instances and users.
    pub fn waypoints(&self) -> Vec<WaypointStatus> {
        let mut out: BTreeMap<String, WaypointStatus> = BTreeMap::new();
        let entry = |out: &mut BTreeMap<String, WaypointStatus>, key: &str, identity: &str| {
            out.entry(key.to_string())
                .or_insert_with(|| WaypointStatus {
                    name: key.to_string(),
                    exists: false,
                    handles: WaypointFor::default(),
                    identity: identity.to_string(),
                    instances: Vec::new(),
                    services: Vec::new(),
                    policies: Vec::new(),
                });
        };
        for (key, handles) in &self.base.waypoints.handles {
            let (ns, name) = key.split_once('/').unwrap_or(("", key));
            let identity = spiffe_id(&self.mesh.trust_domain, ns, name);
            entry(&mut out, key, &identity);
            let w = out.get_mut(key).expect("just added");
            w.exists = true;
            w.handles = *handles;
            if let Some(svc) = self.services.get(key) {
                w.instances = svc
                    .endpoints
                    .iter()
                    .map(|e| {
                        (
                            e.pod.clone(),
                            e.tunnel.map(|t| t.to_string()).unwrap_or_default(),
                        )
                    })
                    .collect();
            }
            if let Some(g) = self.gateways.get(key) {
                w.policies = g.authorization.iter().map(|p| p.name.clone()).collect();
            }
        }
        for (key, svc) in &self.services {
            if let Some(r) = &svc.waypoint {
                entry(&mut out, &r.service, &r.identity);
                if let Some(w) = out.get_mut(&r.service) {
                    w.services.push(key.clone());
                }
            }
        }
        out.into_values().collect()
    }
}
