//! The compact resources the control plane serves to proxies: what one proxy needs to call a
//! Service (its ports, endpoints, routes and client policy), where an address leads, and the
//! proxy's own settings. Built from a [`crate::Config`] plus the running pods by [`Snapshot`].

mod backends;
mod base;
mod build;
mod changes;
pub mod effective;
mod faults;
mod gateway;
mod parents;
mod pods;
mod precedence;
mod reconfigure;
mod routes;
pub mod vip;
mod waypoint;
pub use waypoint::WaypointStatus;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

pub use build::{Pod, PodList, Snapshot};
pub use changes::Encoded;
pub use parents::parent_ports;

use crate::annotations::ProxySettings;
use crate::duration::Duration;
use crate::resources::http_route::{HttpRouteFilter, HttpRouteMatch};
use crate::resources::mesh::OutboundTrafficPolicy;
use crate::resources::policy::{LoadBalancerType, LocalRateLimit};
use crate::resources::service::AppProtocol;

/// The conventional port of the mTLS tunnel between proxies.
pub const TUNNEL_PORT: u16 = 15008;
/// The conventional port of a proxy's admin API (localhost only).
pub const ADMIN_PORT: u16 = 15000;
/// The conventional port of a sidecar's outbound listener, where capture sends the app's
/// connections.
pub const OUTBOUND_PORT: u16 = 15001;
/// The conventional port of a sidecar's inbound listener, where capture sends peers'
/// plaintext connections.
pub const INBOUND_PORT: u16 = 15006;
/// The conventional port of a proxy's readiness endpoint.
pub const READINESS_PORT: u16 = 15021;

/// Type URL of [`ServiceConfig`] resources, named `<namespace>/<name>`.
pub const SERVICE_TYPE: &str = "weft.dev/Service";
/// Type URL of [`AddressConfig`] resources, named by IP address.
pub const ADDRESS_TYPE: &str = "weft.dev/Address";
/// Type URL of [`ProxyConfig`] resources, named by proxy id.
pub const PROXY_TYPE: &str = "weft.dev/Proxy";
/// Type URL of [`GatewayConfig`] resources, named `<namespace>/<name>`.
pub const GATEWAY_TYPE: &str = "weft.dev/Gateway";

/// Everything a client proxy needs to send traffic to one Service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConfig {
    pub namespace: String,
    pub name: String,
    /// Virtual IP clients connect to.
    pub vip: Option<IpAddr>,
    /// Names that resolve to the VIP: `name`, `name.ns`, `name.ns.svc.cluster.local`.
    pub hostnames: Vec<String>,
    pub ports: Vec<PortConfig>,
    pub endpoints: Vec<Endpoint>,
    /// HTTP (and gRPC) routes attached to this Service, as match entries in precedence order.
    #[serde(default)]
    pub http: Option<HttpRoutes>,
    /// TCP routes attached to this Service.
    #[serde(default)]
    pub tcp: Vec<TcpRule>,
    pub policy: ClientPolicy,
    /// The waypoint traffic to this Service goes through (its L7 runs there, not in the
    /// client). None: clients route it themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waypoint: Option<WaypointRef>,
    /// The requests each pod of the Service accepts (its TrafficPolicy's `localRateLimit`):
    /// enforced by the Service's waypoint, else by each pod's sidecar; clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_rate_limit: Option<LocalRateLimit>,
}

/// A waypoint some traffic must pass: clients send it there through the tunnel, and the
/// destination admits it only from the waypoint's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaypointRef {
    /// The waypoint's Service (`<namespace>/<gateway name>`), whose endpoints are its pods.
    /// It may not exist (a label naming no waypoint): the traffic then fails closed.
    pub service: String,
    /// The waypoint's SPIFFE identity (service account = the Gateway's name).
    pub identity: String,
}

impl ServiceConfig {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn port(&self, port: u16) -> Option<&PortConfig> {
        self.ports.iter().find(|p| p.port == port)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    Tcp,
    /// Detect from the first bytes.
    Detect,
}

impl From<AppProtocol> for Protocol {
    fn from(p: AppProtocol) -> Protocol {
        match p {
            AppProtocol::Http => Protocol::Http,
            AppProtocol::Http2 => Protocol::Http2,
            AppProtocol::Grpc => Protocol::Grpc,
            AppProtocol::Tcp => Protocol::Tcp,
            AppProtocol::Detect => Protocol::Detect,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortConfig {
    pub port: u16,
    #[serde(default)]
    pub name: Option<String>,
    pub protocol: Protocol,
}

/// One pod behind a Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub pod: String,
    pub workload: String,
    /// The pod's namespace, `app` and `version` (see [`app_version`]): what the metrics of
    /// the proxies that reach it say about their destination; never used for policy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    pub address: IpAddr,
    /// Service port → pod port.
    pub ports: BTreeMap<u16, u16>,
    /// SPIFFE identity of the pod.
    pub identity: String,
    /// When set, connect here instead of `address:port` (uncaptured mode: tests, explicit
    /// configuration); the inbound proxy knows the app port.
    #[serde(default)]
    pub inbound: Option<SocketAddr>,
    /// Where the pod's proxy accepts the mTLS tunnel; None: the pod takes plaintext (no
    /// sidecar, or mTLS DISABLE).
    #[serde(default)]
    pub tunnel: Option<SocketAddr>,
    /// The waypoint traffic sent to this pod's own address goes through (`waypoint-for:
    /// workload` or `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waypoint: Option<WaypointRef>,
}

impl Endpoint {
    /// Where to connect for `port` of the pod's own address (not a Service port).
    pub fn direct(&self, port: u16) -> SocketAddr {
        self.inbound
            .unwrap_or_else(|| SocketAddr::new(self.address, port))
    }

    /// Where to connect for service port `port`.
    pub fn target(&self, port: u16) -> Option<SocketAddr> {
        if let Some(inbound) = self.inbound {
            return Some(inbound);
        }
        self.ports
            .get(&port)
            .map(|p| SocketAddr::new(self.address, *p))
    }
}

/// HTTP routing for a Service or a Gateway: rules, and match entries sorted by Gateway API
/// precedence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoutes {
    pub rules: Vec<HttpRule>,
    /// Tried in order; the first that matches picks `rules[rule]`.
    pub entries: Vec<MatchEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchEntry {
    /// Ports of the Service (or listener ports of the Gateway) this entry applies to; empty =
    /// all.
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(rename = "match")]
    pub matcher: HttpRouteMatch,
    pub rule: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRule {
    /// `Kind/namespace/route` and the rule index, for logs and errors.
    pub name: String,
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Delays and aborts injected into the rule's requests (a `Fault` the rule names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<crate::resources::fault::FaultSpec>,
    pub backends: Vec<Backend>,
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub per_try_timeout: Option<Duration>,
    #[serde(default)]
    pub retry: Option<Retry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// `<namespace>/<name>` of the backend Service.
    pub service: String,
    pub port: u16,
    pub weight: u32,
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Why the reference cannot be followed (a Service or port that does not exist, a kind
    /// that is not a Service); None when it can. An unresolved backend keeps its weight:
    /// requests that pick it are answered with 500, as Gateway API requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Status codes that are retried (connection failures always are).
    pub codes: Vec<u16>,
    /// gRPC status codes that are retried when a response head carries them (a trailers-only
    /// gRPC answer), as Envoy's `retryOn: unavailable` etc. Absent for older proxies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grpc_codes: Vec<u32>,
    pub backoff: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpRule {
    pub name: String,
    #[serde(default)]
    pub ports: Vec<u16>,
    pub backends: Vec<Backend>,
}

/// How clients balance, limit, eject and retry, from the Service's TrafficPolicy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientPolicy {
    pub load_balancer: LoadBalancerType,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
    #[serde(default)]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub retry: Option<Retry>,
    #[serde(default)]
    pub per_try_timeout: Option<Duration>,
    pub consecutive_errors: u32,
    pub base_ejection_time: Duration,
    pub max_ejection_percent: u32,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        ClientPolicy {
            load_balancer: LoadBalancerType::LeastRequest,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(90),
            max_connections: 1024,
            timeout: None,
            retry: None,
            per_try_timeout: None,
            consecutive_errors: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: 50,
        }
    }
}

/// An ingress Gateway (class `weft`): what a gateway proxy serves. Backends are Services, as in
/// Service routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfig {
    pub namespace: String,
    pub name: String,
    /// The Gateway's HTTP listeners (other protocols are not served).
    pub listeners: Vec<GatewayListener>,
    /// Routes attached to the listeners. Each entry's `ports` are the listener ports its route
    /// attached to (by the parentRef's `sectionName`/`port`), its `hostnames` the intersection
    /// of the listener's hostname and the route's hostnames.
    pub http: HttpRoutes,
    /// A waypoint (class `weft-waypoint`): it serves one tunnel listener and the traffic of
    /// the Services and pods that use it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waypoint: bool,
    /// A waypoint's AuthorizationPolicies (those attached with `targetRefs` to it or to the
    /// Services that use it), each scoped to the Services it names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization: Vec<crate::authz::ServedPolicy>,
    /// A waypoint's local rate limits: Service (`ns/name`) → its limit, for the Services that
    /// use the waypoint and have one. Each waypoint instance keeps its own bucket per Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub local_rate_limits: BTreeMap<String, LocalRateLimit>,
}

impl GatewayConfig {
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayListener {
    pub name: String,
    pub port: u16,
    /// Host name the listener accepts (`*.example.com` allowed). None: any.
    #[serde(default)]
    pub hostname: Option<String>,
}

/// Where an address leads: the Service whose VIP it is, or the mesh pod that has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressConfig {
    pub address: IpAddr,
    /// `<namespace>/<name>` of the Service whose VIP this is; empty for a pod address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    /// The pod whose address this is (its `ports` map is empty: a port on a pod address is
    /// the pod's own port). Reached through its proxy's tunnel like a Service endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Endpoint>,
}

/// A proxy's own configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfig {
    pub id: String,
    pub namespace: String,
    pub workload: String,
    /// The workload's `app` and `version` (see [`app_version`]), for the proxy's metrics.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Pod port → the Service that targets it, when exactly one does: the
    /// `destination_service` of inbound metrics (absent when none or several do).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inbound_services: BTreeMap<u16, String>,
    /// Ports that several Services target, with those Services (`ns/name`): an HTTP request's
    /// host picks among them for its metrics (only a name listed here, so the labels stay
    /// bounded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inbound_service_choices: BTreeMap<u16, Vec<String>>,
    /// `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.
    pub identity: String,
    pub trust_domain: String,
    pub settings: ProxySettings,
    /// Ports of the workload and their protocol, from the Services that select it.
    pub inbound_ports: Vec<PortConfig>,
    pub outbound_traffic_policy: OutboundTrafficPolicy,
    /// AuthorizationPolicies that select this workload, enforced on its inbound traffic.
    #[serde(default)]
    pub authorization: Vec<crate::authz::ServedPolicy>,
    /// The identities of the waypoints in front of this workload: when any, its inbound
    /// traffic is admitted only from them (nothing skips the waypoint's L7 policy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waypoints: Vec<String>,
    /// Local rate limits of the Services that select this workload and have no waypoint:
    /// Service (`ns/name`) → its limit, enforced on inbound HTTP with a bucket per Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub local_rate_limits: BTreeMap<String, LocalRateLimit>,
}

impl ProxyConfig {
    /// The configuration of workload `workload` in `namespace` with identity `identity` and
    /// every mesh default: no ports, Services, policies or waypoints (tests and tools start
    /// from it and set what they need).
    pub fn with_defaults(id: &str, namespace: &str, workload: &str, identity: &str) -> ProxyConfig {
        let mesh = crate::resources::mesh::MeshSpec::default();
        ProxyConfig {
            id: id.into(),
            namespace: namespace.into(),
            workload: workload.into(),
            app: String::new(),
            version: String::new(),
            inbound_services: BTreeMap::new(),
            inbound_service_choices: BTreeMap::new(),
            identity: identity.into(),
            trust_domain: mesh.trust_domain.clone(),
            settings: crate::annotations::ProxySettings::resolve(&mesh, &[], &[]),
            inbound_ports: Vec::new(),
            outbound_traffic_policy: Default::default(),
            authorization: Vec::new(),
            waypoints: Vec::new(),
            local_rate_limits: BTreeMap::new(),
        }
    }
}

/// A workload's `app` and `version` from its labels, as Istio reads them: `app` (else
/// `app.kubernetes.io/name`) and `version` (else `app.kubernetes.io/version`); empty when
/// absent.
pub fn app_version(labels: &BTreeMap<String, String>) -> (String, String) {
    let first = |keys: [&str; 2]| {
        keys.iter()
            .find_map(|k| labels.get(*k).filter(|v| !v.is_empty()))
            .cloned()
            .unwrap_or_default()
    };
    (
        first(["app", "app.kubernetes.io/name"]),
        first(["version", "app.kubernetes.io/version"]),
    )
}

/// SPIFFE identity of a service account.
pub fn spiffe_id(trust_domain: &str, namespace: &str, service_account: &str) -> String {
    crate::identity::SpiffeId::new(trust_domain, namespace, service_account).to_string()
}

/// A stable version string for a serializable value: a hash of its JSON.
pub fn version_of<T: Serialize>(value: &T) -> String {
    version_of_json(&serde_json::to_vec(value).unwrap_or_default())
}

/// [`version_of`] a value whose JSON is `json`.
pub fn version_of_json(json: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gamma;
#[cfg(test)]
mod tests_pods;
#[cfg(test)]
mod tests_ratelimit;
#[cfg(test)]
mod tests_retry;
#[cfg(test)]
mod tests_waypoint;
