//! What a [`Snapshot`](super::Snapshot) derives from the configuration alone: the mesh,
//! workloads, namespaces and policies, every Service with its ports, VIP, host names, routes
//! and client policy (but no endpoints), the ingress Gateways, the VIP table, and per namespace
//! the Services whose selector picks pods, with the port targets an endpoint needs. Computed
//! once per configuration version and shared by every snapshot of it; pods are applied on top
//! (see `super::pods`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::build::Pod;
use super::vip::{self, Cidr};
use super::waypoint::{self, Waypoints};
use super::{
    ClientPolicy, Endpoint, GatewayConfig, GatewayListener, HttpRoutes, PortConfig, Retry,
    ServiceConfig, WaypointRef, routes, spiffe_id,
};
use crate::annotations::{DataplaneMode, GATEWAY_NAME, ProxySettings};
use crate::authz::ServedPolicy;
use crate::load::Config;
use crate::meta::selects;
use crate::resources::gateway::INGRESS_CLASS;
use crate::resources::mesh::{MeshSpec, MtlsMode};
use crate::resources::policy::AuthorizationPolicy;
use crate::resources::service::{IntOrString, Service};
use crate::resources::{Resource, Workload};

pub(super) type Labels = BTreeMap<String, String>;

/// The configuration-derived part of a snapshot.
#[derive(Debug, Clone, Default)]
pub(super) struct Base {
    pub mesh: Arc<MeshSpec>,
    /// Every Service, with no endpoints.
    pub services: BTreeMap<String, Arc<ServiceConfig>>,
    /// Service VIP → `<namespace>/<name>`.
    pub addresses: Arc<BTreeMap<IpAddr, String>>,
    pub gateways: Arc<BTreeMap<String, GatewayConfig>>,
    workloads: BTreeMap<(String, String), Workload>,
    pub(super) waypoints: Waypoints,
    /// Namespace name → (labels, annotations).
    namespaces: BTreeMap<String, (Labels, Labels)>,
    policies: Vec<AuthorizationPolicy>,
    /// Service key → the TrafficPolicies (`ns/name`) that set its client policy, in the
    /// order they apply.
    pub traffic_policies: BTreeMap<String, Vec<String>>,
    /// Every Service with a non-empty selector, by key.
    selecting: BTreeMap<String, Selecting>,
    /// Namespace → label → value → the keys of the Services whose selector's first label is
    /// that pair: a pod is checked only against Services that can select it, not every
    /// Service of its namespace.
    by_label: BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<String>>>>,
}

/// A Service that picks its endpoints by label selector.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Selecting {
    /// `<namespace>/<name>`.
    pub key: String,
    pub namespace: String,
    selector: Labels,
    /// Service port → targetPort (a number or the name of a Workload port).
    targets: Vec<(u16, IntOrString)>,
}

impl Base {
    pub fn new(config: &Config) -> Base {
        let mut base = Base::default();
        let mut mesh = MeshSpec::default();
        let mut gateways = BTreeMap::new();
        let mut fixed_vips = BTreeMap::new();
        let mut selecting: BTreeMap<String, Selecting> = BTreeMap::new();
        for l in &config.resources {
            let meta = l.resource.metadata();
            match &l.resource {
                Resource::Mesh(m) => mesh = m.spec.clone(),
                Resource::Workload(w) => {
                    base.workloads
                        .insert((meta.namespace().to_string(), meta.name.clone()), w.clone());
                }
                Resource::AuthorizationPolicy(p) => base.policies.push(p.clone()),
                Resource::Namespace(_) => {
                    base.namespaces.insert(
                        meta.name.clone(),
                        (meta.labels.clone(), meta.annotations.clone()),
                    );
                }
                Resource::Service(s) => add_service(s, &mut fixed_vips, &mut selecting),
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
                        waypoint: false,
                        authorization: Vec::new(),
                        local_rate_limits: BTreeMap::new(),
                    };
                    gateways.insert(gateway.key(), gateway);
                }
                _ => {}
            }
        }
        let waypoint_services = Waypoints::services(config);
        for s in &waypoint_services {
            add_service(s, &mut fixed_vips, &mut selecting);
        }
        for s in selecting.values() {
            if let Some((k, v)) = s.selector.first_key_value() {
                let keys = base.by_label.entry(s.namespace.clone()).or_default();
                let values = keys.entry(k.clone()).or_default();
                values.entry(v.clone()).or_default().push(s.key.clone());
            }
        }
        base.selecting = selecting;
        let range: Cidr = mesh
            .network
            .service_cidr
            .parse()
            .unwrap_or_else(|_| "198.18.128.0/17".parse().expect("valid default range"));
        let vips = vip::assign(range, &fixed_vips);
        let namespace_labels: BTreeMap<String, Labels> = base
            .namespaces
            .iter()
            .map(|(name, (labels, _))| (name.clone(), labels.clone()))
            .collect();
        base.waypoints = Waypoints::new(config, &mesh.trust_domain);
        let all: Vec<&Service> = config
            .resources
            .iter()
            .filter_map(|l| match &l.resource {
                Resource::Service(s) => Some(s),
                _ => None,
            })
            .chain(&waypoint_services)
            .collect();
        let (mut services, addresses) = services(&all, &vips, |s| {
            let ns = s.metadata.namespace();
            let empty = Labels::new();
            let ns_labels = namespace_labels.get(ns).unwrap_or(&empty);
            let key = format!("{ns}/{}", s.metadata.name);
            (!base.waypoints.is_waypoint(&key))
                .then(|| {
                    base.waypoints
                        .for_service(ns, &s.metadata.labels, ns_labels)
                })
                .flatten()
        });
        routes::attach(config, &namespace_labels, &mut services, &mut gateways);
        base.traffic_policies = traffic_policies(config, &mut services);
        gateways.extend(waypoint::gateways(config, &services, &base.policies));
        base.services = services
            .into_iter()
            .map(|(k, s)| (k, Arc::new(s)))
            .collect();
        base.mesh = Arc::new(mesh);
        base.addresses = Arc::new(addresses);
        base.gateways = Arc::new(gateways);
        base
    }

    /// The Services that may select `pod` (those whose selector's first label it has), sorted
    /// by key: found through the label index, however many Services its namespace has.
    pub fn selecting(&self, pod: &Pod) -> Vec<&Selecting> {
        let Some(keys) = self.by_label.get(&pod.namespace) else {
            return Vec::new();
        };
        let mut out: Vec<&Selecting> = self
            .labels(pod)
            .iter()
            .filter_map(|(k, v)| keys.get(k)?.get(v))
            .flatten()
            .filter_map(|key| self.selecting.get(key))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The Service `key`'s selector and port targets, when it picks pods by selector.
    pub fn selecting_entry(&self, key: &str) -> Option<&Selecting> {
        self.selecting.get(key)
    }

    /// Whether pods become the same endpoints and proxies' settings under `other` as under
    /// this configuration: the same mesh, namespaces and workloads (labels, ports, settings).
    pub fn same_pod_view(&self, other: &Base) -> bool {
        self.mesh == other.mesh
            && self.namespaces == other.namespaces
            && self.workloads == other.workloads
            && self.waypoints == other.waypoints
            && self.service_waypoints() == other.service_waypoints()
    }

    /// Which Service uses which waypoint (the pods behind it admit only that waypoint).
    fn service_waypoints(&self) -> BTreeMap<&str, &WaypointRef> {
        self.services
            .iter()
            .filter_map(|(k, s)| Some((k.as_str(), s.waypoint.as_ref()?)))
            .collect()
    }

    /// The waypoint identities of the Services `keys`.
    pub fn waypoints_of<'a>(&'a self, keys: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut out: Vec<String> = keys
            .filter_map(|k| self.services.get(k)?.waypoint.as_ref())
            .map(|w| w.identity.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Namespaces whose AuthorizationPolicies differ between this configuration and `other`.
    pub fn policy_namespaces(&self, other: &Base) -> BTreeSet<String> {
        let (a, b) = (self.policies_by_namespace(), other.policies_by_namespace());
        super::reconfigure::differing(&a, &b)
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn policies_by_namespace(&self) -> BTreeMap<&str, Vec<&AuthorizationPolicy>> {
        let mut m: BTreeMap<&str, Vec<&AuthorizationPolicy>> = BTreeMap::new();
        for p in &self.policies {
            m.entry(p.metadata.namespace()).or_default().push(p);
        }
        m
    }

    /// `pod` as an endpoint of `service`, or None when the Service does not select it or the pod
    /// is not ready.
    pub fn service_endpoint(&self, service: &Selecting, pod: &Pod) -> Option<Endpoint> {
        if !pod.ready || !selects(&service.selector, self.labels(pod)) {
            return None;
        }
        let ports = service
            .targets
            .iter()
            .filter_map(|(port, target)| Some((*port, self.target_port(pod, target)?)))
            .collect();
        Some(self.endpoint(pod, ports))
    }

    /// `pod` as an endpoint with `ports` (service port → pod port).
    pub fn endpoint(&self, p: &Pod, ports: BTreeMap<u16, u16>) -> Endpoint {
        let (app, version) = super::app_version(self.labels(p));
        Endpoint {
            pod: p.name.clone(),
            workload: p.workload.clone(),
            namespace: p.namespace.clone(),
            app,
            version,
            address: p.ip,
            ports,
            identity: spiffe_id(&self.mesh.trust_domain, &p.namespace, &p.service_account),
            inbound: p.inbound,
            tunnel: self.tunnel(p),
            waypoint: self.workload_waypoint(p),
        }
    }

    /// The waypoint of traffic to the pod's own address.
    fn workload_waypoint(&self, pod: &Pod) -> Option<WaypointRef> {
        let empty = Labels::new();
        let ns_labels = self
            .namespaces
            .get(&pod.namespace)
            .map_or(&empty, |(l, _)| l);
        self.waypoints
            .for_workload(&pod.namespace, self.labels(pod), ns_labels)
    }

    /// The pod's labels: its own, else its Workload's.
    pub fn labels<'a>(&'a self, pod: &'a Pod) -> &'a Labels {
        if !pod.labels.is_empty() {
            return &pod.labels;
        }
        self.workload(pod)
            .map(|w| &w.metadata.labels)
            .unwrap_or(&pod.labels)
    }

    fn workload(&self, pod: &Pod) -> Option<&Workload> {
        self.workloads
            .get(&(pod.namespace.clone(), pod.workload.clone()))
    }

    fn target_port(&self, pod: &Pod, target: &IntOrString) -> Option<u16> {
        match target {
            IntOrString::Int(n) => Some(*n),
            IntOrString::String(name) => self
                .workload(pod)?
                .spec
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.container_port),
        }
    }

    /// The pod's effective proxy settings: Mesh, then Namespace, then Workload.
    pub fn settings(&self, pod: &Pod) -> ProxySettings {
        let empty = BTreeMap::new();
        let (ns_labels, ns_annotations) = self
            .namespaces
            .get(&pod.namespace)
            .map(|(l, a)| (l, a))
            .unwrap_or((&empty, &empty));
        let w_annotations = self
            .workload(pod)
            .map(|w| &w.metadata.annotations)
            .unwrap_or(&empty);
        ProxySettings::resolve(
            &self.mesh,
            &[ns_annotations, w_annotations],
            &[ns_labels, self.labels(pod)],
        )
    }

    /// Where peers reach the pod over the mTLS tunnel (its sidecar's, or in ambient mode its
    /// node proxy's listener inside the pod, once the pod is on a node): none when it is not
    /// in the mesh or its mTLS mode is DISABLE (peers then send plaintext).
    fn tunnel(&self, pod: &Pod) -> Option<SocketAddr> {
        let own = || {
            pod.tunnel
                .unwrap_or(SocketAddr::new(pod.ip, super::TUNNEL_PORT))
        };
        // A waypoint's pod is its own proxy.
        if self.is_waypoint_pod(pod) {
            return Some(own());
        }
        let s = self.settings(pod);
        let proxied = match s.dataplane_mode {
            DataplaneMode::Sidecar => true,
            DataplaneMode::Ambient => !pod.node.is_empty(),
            DataplaneMode::None => false,
        };
        let meshed = proxied && s.mtls_mode != MtlsMode::Disable;
        meshed.then(own)
    }

    /// Whether the pod runs a waypoint (it is never enrolled on a node proxy).
    pub fn is_waypoint_pod(&self, pod: &Pod) -> bool {
        self.labels(pod).contains_key(GATEWAY_NAME)
    }

    /// The AuthorizationPolicies that select the pod: in its namespace, by label selector.
    pub fn authorization(&self, pod: &Pod) -> Vec<ServedPolicy> {
        let labels = self.labels(pod);
        self.policies
            .iter()
            .filter(|p| p.metadata.namespace() == pod.namespace)
            // Attached to a waypoint: the waypoint enforces it.
            .filter(|p| p.spec.target_refs.is_empty())
            .filter(|p| p.spec.selector.as_ref().is_none_or(|s| s.matches(labels)))
            .map(|p| ServedPolicy {
                name: format!("{}/{}", pod.namespace, p.metadata.name),
                action: p.spec.action,
                rules: p.spec.rules.clone(),
                services: Vec::new(),
            })
            .collect()
    }
}

/// A Service's VIP request, and its selector when it picks pods.
fn add_service(
    s: &Service,
    fixed_vips: &mut BTreeMap<String, Option<IpAddr>>,
    selecting: &mut BTreeMap<String, Selecting>,
) {
    let ns = s.metadata.namespace().to_string();
    let key = format!("{ns}/{}", s.metadata.name);
    let fixed = s.spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok());
    fixed_vips.insert(key.clone(), fixed);
    if s.spec.selector.is_empty() {
        selecting.remove(&key);
    } else {
        let targets = s.spec.ports.iter().map(|p| (p.port, p.target())).collect();
        let entry = Selecting {
            key: key.clone(),
            namespace: ns,
            selector: s.spec.selector.clone(),
            targets,
        };
        selecting.insert(key, entry);
    }
}

/// The Services without endpoints, routes or traffic policy, with their waypoints, and their
/// VIPs.
fn services(
    all: &[&Service],
    vips: &BTreeMap<String, IpAddr>,
    waypoint: impl Fn(&Service) -> Option<WaypointRef>,
) -> (BTreeMap<String, ServiceConfig>, BTreeMap<IpAddr, String>) {
    let mut services = BTreeMap::new();
    let mut addresses = BTreeMap::new();
    for s in all {
        let ns = s.metadata.namespace().to_string();
        let name = s.metadata.name.clone();
        let key = format!("{ns}/{name}");
        let vip = vips.get(&key).copied();
        let ports = s
            .spec
            .ports
            .iter()
            .map(|p| PortConfig {
                port: p.port,
                name: p.name.clone(),
                protocol: p.app_protocol().into(),
            })
            .collect();
        let hostnames = vec![
            name.clone(),
            format!("{name}.{ns}"),
            format!("{name}.{ns}.svc"),
            format!("{name}.{ns}.svc.cluster.local"),
        ];
        if let Some(ip) = vip {
            addresses.insert(ip, key.clone());
        }
        let svc = ServiceConfig {
            namespace: ns,
            name,
            vip,
            hostnames,
            ports,
            endpoints: Vec::new(),
            http: None,
            tcp: Vec::new(),
            policy: ClientPolicy::default(),
            waypoint: waypoint(s),
            local_rate_limit: None,
        };
        services.insert(key, svc);
    }
    (services, addresses)
}

/// Applies every TrafficPolicy to the client policy of the Services it targets; returns which
/// policies each Service got.
fn traffic_policies(
    config: &Config,
    services: &mut BTreeMap<String, ServiceConfig>,
) -> BTreeMap<String, Vec<String>> {
    let mut applied: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in &config.resources {
        let Resource::TrafficPolicy(p) = &l.resource else {
            continue;
        };
        let ns = p.metadata.namespace();
        for t in &p.spec.target_refs {
            let key = format!("{ns}/{}", t.name);
            let Some(svc) = services.get_mut(&key) else {
                continue;
            };
            (applied.entry(key).or_default()).push(format!("{ns}/{}", p.metadata.name));
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
                let on = r.conditions();
                c.retry = Some(Retry {
                    attempts: r.attempts,
                    codes: on.codes,
                    grpc_codes: on.grpc_codes,
                    backoff: crate::duration::Duration::from_millis(25),
                });
                c.per_try_timeout = r.per_try_timeout;
            }
            c.timeout = p.spec.timeout.or(c.timeout);
            if let Some(limit) = p.spec.local_rate_limit {
                svc.local_rate_limit = Some(limit);
            }
        }
    }
    applied
}
