//! Builds the served resources from the configuration and the pods that are running.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::vip::{self, Cidr};
use super::{
    AddressConfig, ClientPolicy, Endpoint, GatewayConfig, GatewayListener, HttpRoutes, PortConfig,
    Protocol, ProxyConfig, Retry, ServiceConfig, routes, spiffe_id,
};
use crate::annotations::{DataplaneMode, ProxySettings};
use crate::authz::ServedPolicy;
use crate::load::Config;
use crate::meta::selects;
use crate::resources::gateway::INGRESS_CLASS;
use crate::resources::mesh::MeshSpec;
use crate::resources::mesh::MtlsMode;
use crate::resources::policy::AuthorizationPolicy;
use crate::resources::service::IntOrString;
use crate::resources::{Resource, Workload};

type Labels = BTreeMap<String, String>;

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
}

fn default_service_account() -> String {
    "default".into()
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
    pub mesh: MeshSpec,
    pub services: BTreeMap<String, ServiceConfig>,
    pub addresses: BTreeMap<IpAddr, String>,
    /// Every pod by its address (a Service VIP wins where both claim one).
    pub pods: BTreeMap<IpAddr, Endpoint>,
    /// Ingress Gateways (class `weft`) by `<namespace>/<name>`.
    pub gateways: BTreeMap<String, GatewayConfig>,
    workloads: BTreeMap<(String, String), Workload>,
    /// Namespace name → (labels, annotations).
    namespaces: BTreeMap<String, (Labels, Labels)>,
    policies: Vec<AuthorizationPolicy>,
}

impl Snapshot {
    pub fn build(config: &Config, pods: &[Pod]) -> Snapshot {
        let mut snap = Snapshot::default();
        let mut fixed_vips = BTreeMap::new();
        for l in &config.resources {
            let meta = l.resource.metadata();
            match &l.resource {
                Resource::Mesh(m) => snap.mesh = m.spec.clone(),
                Resource::Workload(w) => {
                    snap.workloads
                        .insert((meta.namespace().to_string(), meta.name.clone()), w.clone());
                }
                Resource::AuthorizationPolicy(p) => snap.policies.push(p.clone()),
                Resource::Namespace(_) => {
                    snap.namespaces.insert(
                        meta.name.clone(),
                        (meta.labels.clone(), meta.annotations.clone()),
                    );
                }
                Resource::Service(s) => {
                    let key = format!("{}/{}", meta.namespace(), meta.name);
                    let fixed = s.spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok());
                    fixed_vips.insert(key, fixed);
                }
                Resource::Gateway(g) if g.spec.gateway_class_name == INGRESS_CLASS => {
                    let listeners = g
                        .spec
                        .listeners
                        .iter()
                        .filter(|x| super::gateway::is_http(x))
                        .map(|x| GatewayListener {
                            name: x.name.clone(),
                            port: x.port,
                            hostname: x.hostname.clone(),
                        })
                        .collect();
                    let gateway = GatewayConfig {
                        namespace: meta.namespace().to_string(),
                        name: meta.name.clone(),
                        listeners,
                        http: HttpRoutes::default(),
                    };
                    snap.gateways.insert(gateway.key(), gateway);
                }
                _ => {}
            }
        }
        let range: Cidr = snap
            .mesh
            .network
            .service_cidr
            .parse()
            .unwrap_or_else(|_| "198.18.128.0/17".parse().expect("valid default range"));
        let vips = vip::assign(range, &fixed_vips);

        for l in &config.resources {
            let Resource::Service(s) = &l.resource else {
                continue;
            };
            let ns = s.metadata.namespace().to_string();
            let name = s.metadata.name.clone();
            let key = format!("{ns}/{name}");
            let vip = vips.get(&key).copied();
            let ports: Vec<PortConfig> = s
                .spec
                .ports
                .iter()
                .map(|p| PortConfig {
                    port: p.port,
                    name: p.name.clone(),
                    protocol: p.app_protocol().into(),
                })
                .collect();
            let endpoints = if s.spec.selector.is_empty() {
                Vec::new()
            } else {
                pods.iter()
                    .filter(|p| p.namespace == ns && selects(&s.spec.selector, snap.labels(p)))
                    .map(|p| {
                        let ports = s
                            .spec
                            .ports
                            .iter()
                            .filter_map(|sp| Some((sp.port, snap.target_port(p, &sp.target())?)))
                            .collect();
                        snap.endpoint(p, ports)
                    })
                    .collect()
            };
            let hostnames = vec![
                name.clone(),
                format!("{name}.{ns}"),
                format!("{name}.{ns}.svc"),
                format!("{name}.{ns}.svc.cluster.local"),
            ];
            if let Some(ip) = vip {
                snap.addresses.insert(ip, key.clone());
            }
            snap.services.insert(
                key,
                ServiceConfig {
                    namespace: ns,
                    name,
                    vip,
                    hostnames,
                    ports,
                    endpoints,
                    http: None,
                    tcp: Vec::new(),
                    policy: ClientPolicy::default(),
                },
            );
        }
        let namespace_labels: BTreeMap<String, Labels> = snap
            .namespaces
            .iter()
            .map(|(name, (labels, _))| (name.clone(), labels.clone()))
            .collect();
        routes::attach(
            config,
            &namespace_labels,
            &mut snap.services,
            &mut snap.gateways,
        );
        traffic_policies(config, &mut snap.services);
        for p in pods {
            let ep = snap.endpoint(p, BTreeMap::new());
            snap.pods.insert(p.ip, ep);
        }
        snap
    }

    /// `pod` as an endpoint with `ports` (service port → pod port).
    fn endpoint(&self, p: &Pod, ports: BTreeMap<u16, u16>) -> Endpoint {
        Endpoint {
            pod: p.name.clone(),
            workload: p.workload.clone(),
            address: p.ip,
            ports,
            identity: spiffe_id(&self.mesh.trust_domain, &p.namespace, &p.service_account),
            inbound: p.inbound,
            tunnel: self.tunnel(p),
        }
    }

    fn labels<'a>(&'a self, pod: &'a Pod) -> &'a BTreeMap<String, String> {
        if !pod.labels.is_empty() {
            return &pod.labels;
        }
        self.workloads
            .get(&(pod.namespace.clone(), pod.workload.clone()))
            .map(|w| &w.metadata.labels)
            .unwrap_or(&pod.labels)
    }

    fn target_port(&self, pod: &Pod, target: &IntOrString) -> Option<u16> {
        match target {
            IntOrString::Int(n) => Some(*n),
            IntOrString::String(name) => self
                .workloads
                .get(&(pod.namespace.clone(), pod.workload.clone()))?
                .spec
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.container_port),
        }
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
            pod: Some(ep.clone()),
        })
    }

    /// The configuration of the proxy of `pod`.
    /// The pod's effective proxy settings: Mesh, then Namespace, then Workload.
    pub fn settings(&self, pod: &Pod) -> ProxySettings {
        let empty = BTreeMap::new();
        let (ns_labels, ns_annotations) = self
            .namespaces
            .get(&pod.namespace)
            .map(|(l, a)| (l, a))
            .unwrap_or((&empty, &empty));
        let workload = self
            .workloads
            .get(&(pod.namespace.clone(), pod.workload.clone()));
        let w_annotations = workload.map(|w| &w.metadata.annotations).unwrap_or(&empty);
        ProxySettings::resolve(
            &self.mesh,
            &[ns_annotations, w_annotations],
            &[ns_labels, self.labels(pod)],
        )
    }

    /// Where peers reach the pod over the mTLS tunnel: none when it has no sidecar or its mTLS
    /// mode is DISABLE (peers then send plaintext).
    fn tunnel(&self, pod: &Pod) -> Option<SocketAddr> {
        let s = self.settings(pod);
        let meshed = s.dataplane_mode == DataplaneMode::Sidecar && s.mtls_mode != MtlsMode::Disable;
        meshed.then(|| {
            pod.tunnel
                .unwrap_or(SocketAddr::new(pod.ip, super::TUNNEL_PORT))
        })
    }

    /// The AuthorizationPolicies that select the pod: in its namespace, by label selector.
    fn authorization(&self, pod: &Pod) -> Vec<ServedPolicy> {
        let labels = self.labels(pod);
        self.policies
            .iter()
            .filter(|p| p.metadata.namespace() == pod.namespace)
            .filter(|p| p.spec.selector.as_ref().is_none_or(|s| s.matches(labels)))
            .map(|p| ServedPolicy {
                name: format!("{}/{}", pod.namespace, p.metadata.name),
                action: p.spec.action,
                rules: p.spec.rules.clone(),
            })
            .collect()
    }

    pub fn proxy(&self, pod: &Pod) -> ProxyConfig {
        let settings = self.settings(pod);
        let mut inbound_ports: Vec<PortConfig> = Vec::new();
        for svc in self.services.values() {
            if !svc
                .endpoints
                .iter()
                .any(|e| e.pod == pod.name && svc.namespace == pod.namespace)
            {
                continue;
            }
            for ep in svc.endpoints.iter().filter(|e| e.pod == pod.name) {
                for (svc_port, target) in &ep.ports {
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
        ProxyConfig {
            id: pod.id.clone(),
            namespace: pod.namespace.clone(),
            workload: pod.workload.clone(),
            identity: spiffe_id(
                &self.mesh.trust_domain,
                &pod.namespace,
                &pod.service_account,
            ),
            trust_domain: self.mesh.trust_domain.clone(),
            settings,
            inbound_ports,
            outbound_traffic_policy: self.mesh.outbound_traffic_policy,
            authorization: self.authorization(pod),
        }
    }
}

fn traffic_policies(config: &Config, services: &mut BTreeMap<String, ServiceConfig>) {
    for l in &config.resources {
        let Resource::TrafficPolicy(p) = &l.resource else {
            continue;
        };
        let ns = p.metadata.namespace();
        for t in &p.spec.target_refs {
            let Some(svc) = services.get_mut(&format!("{ns}/{}", t.name)) else {
                continue;
            };
            let c = &mut svc.policy;
            if let Some(lb) = &p.spec.load_balancer {
                c.load_balancer = lb.lb_type;
            }
            if let Some(pool) = &p.spec.connection_pool {
                c.connect_timeout = pool.connect_timeout;
                c.idle_timeout = pool.idle_timeout;
                c.max_connections = pool.max_connections;
            }
            if let Some(o) = &p.spec.outlier_detection {
                c.consecutive_errors = o.consecutive_errors;
                c.base_ejection_time = o.base_ejection_time;
                c.max_ejection_percent = o.max_ejection_percent;
            }
            if let Some(r) = &p.spec.retries {
                c.retry = Some(Retry {
                    attempts: r.attempts,
                    codes: r.retry_on.iter().filter_map(|s| s.parse().ok()).collect(),
                    backoff: crate::duration::Duration::from_millis(25),
                });
                c.per_try_timeout = r.per_try_timeout;
            }
            c.timeout = p.spec.timeout.or(c.timeout);
        }
    }
}
