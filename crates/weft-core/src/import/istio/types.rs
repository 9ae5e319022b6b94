//! Istio's kinds, as far as the converter reads them. Every struct keeps the fields it does
//! not name in `rest`, so nothing is dropped unseen: the converter lists them as not
//! converted. Fields weft has no equivalent for but whose meaning is known are named (as
//! `Option<Value>`) so the note can say why.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Fields a struct does not name.
pub type Rest = BTreeMap<String, Value>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    #[serde(default)]
    pub tcp: Vec<TcpRoute>,
    pub tls: Option<Value>,
    pub export_to: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    pub name: Option<String>,
    #[serde(default, rename = "match")]
    pub matches: Vec<HttpMatch>,
    #[serde(default)]
    pub route: Vec<RouteDestination>,
    pub redirect: Option<Redirect>,
    pub direct_response: Option<Value>,
    pub delegate: Option<Value>,
    pub rewrite: Option<Rewrite>,
    pub timeout: Option<String>,
    pub retries: Option<Retries>,
    pub fault: Option<Fault>,
    pub mirror: Option<Destination>,
    #[serde(default)]
    pub mirrors: Vec<Mirror>,
    pub mirror_percentage: Option<Percent>,
    pub mirror_percent: Option<f64>,
    pub cors_policy: Option<Value>,
    pub headers: Option<Headers>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    pub name: Option<String>,
    pub uri: Option<StringMatch>,
    pub method: Option<StringMatch>,
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatch>,
    #[serde(default)]
    pub query_params: BTreeMap<String, StringMatch>,
    pub scheme: Option<Value>,
    pub authority: Option<Value>,
    pub port: Option<Value>,
    pub source_labels: Option<Value>,
    pub source_namespace: Option<Value>,
    pub without_headers: Option<Value>,
    pub ignore_uri_case: Option<Value>,
    pub gateways: Option<Value>,
    pub stat_prefix: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// `{exact: v}`, `{prefix: v}` or `{regex: v}`; all empty matches presence (headers).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StringMatch {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub regex: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RouteDestination {
    pub destination: Destination,
    pub weight: Option<i64>,
    pub headers: Option<Headers>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Destination {
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<PortSelector>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PortSelector {
    pub number: Option<u16>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Mirror {
    pub destination: Destination,
    pub percentage: Option<Percent>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Percent {
    #[serde(default)]
    pub value: f64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Headers {
    pub request: Option<HeaderOps>,
    pub response: Option<HeaderOps>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HeaderOps {
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Redirect {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub port: Option<u16>,
    pub scheme: Option<String>,
    pub redirect_code: Option<u16>,
    pub derive_port: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rewrite {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub uri_regex_rewrite: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retries {
    pub attempts: Option<i64>,
    pub per_try_timeout: Option<String>,
    pub retry_on: Option<String>,
    pub retry_remote_localities: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Fault {
    pub delay: Option<Delay>,
    pub abort: Option<Abort>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delay {
    pub fixed_delay: Option<String>,
    pub exponential_delay: Option<Value>,
    pub percentage: Option<Percent>,
    pub percent: Option<f64>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Abort {
    pub http_status: Option<u16>,
    /// A gRPC status name (`UNAVAILABLE`) or number.
    pub grpc_status: Option<Value>,
    pub http2_error: Option<Value>,
    pub percentage: Option<Percent>,
    /// Deprecated integer percentage.
    pub percent: Option<f64>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TcpRoute {
    #[serde(default, rename = "match")]
    pub matches: Vec<L4Match>,
    #[serde(default)]
    pub route: Vec<RouteDestination>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct L4Match {
    pub port: Option<u16>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRule {
    pub host: String,
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(default)]
    pub subsets: Vec<Subset>,
    pub export_to: Option<Value>,
    pub workload_selector: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub traffic_policy: Option<TrafficPolicy>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    pub load_balancer: Option<LoadBalancer>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
    pub tls: Option<ClientTls>,
    pub port_level_settings: Option<Value>,
    pub tunnel: Option<Value>,
    pub proxy_protocol: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub simple: Option<String>,
    pub consistent_hash: Option<Value>,
    pub locality_lb_setting: Option<Value>,
    pub warmup_duration_secs: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConnectionPool {
    pub tcp: Option<TcpSettings>,
    pub http: Option<HttpSettings>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpSettings {
    pub max_connections: Option<u32>,
    pub connect_timeout: Option<String>,
    pub tcp_keepalive: Option<Value>,
    pub max_connection_duration: Option<Value>,
    pub idle_timeout: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpSettings {
    pub http1_max_pending_requests: Option<u32>,
    pub http2_max_requests: Option<Value>,
    pub max_requests_per_connection: Option<u32>,
    pub max_retries: Option<Value>,
    pub idle_timeout: Option<String>,
    pub h2_upgrade_policy: Option<Value>,
    pub use_client_protocol: Option<Value>,
    pub max_concurrent_streams: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutlierDetection {
    #[serde(rename = "consecutive5xxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub consecutive_errors: Option<u32>,
    pub interval: Option<String>,
    pub base_ejection_time: Option<String>,
    pub max_ejection_percent: Option<u32>,
    pub min_health_percent: Option<Value>,
    pub split_external_local_origin_errors: Option<Value>,
    pub consecutive_local_origin_failures: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientTls {
    pub mode: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Gateway {
    pub selector: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub servers: Vec<Server>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    pub port: ServerPort,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub tls: Option<ServerTls>,
    pub name: Option<String>,
    pub bind: Option<Value>,
    pub default_endpoint: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerPort {
    pub number: u16,
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub target_port: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTls {
    pub https_redirect: Option<bool>,
    pub mode: Option<String>,
    pub credential_name: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    pub selector: Option<Selector>,
    pub target_ref: Option<TargetRef>,
    #[serde(default)]
    pub target_refs: Vec<TargetRef>,
    pub action: Option<String>,
    pub provider: Option<Value>,
    #[serde(default)]
    pub rules: Vec<AuthzRule>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TargetRef {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthzRule {
    #[serde(default)]
    pub from: Vec<From>,
    #[serde(default)]
    pub to: Vec<To>,
    #[serde(default)]
    pub when: Vec<Condition>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct From {
    #[serde(default)]
    pub source: Source,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(default)]
    pub principals: Vec<String>,
    #[serde(default)]
    pub not_principals: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub not_namespaces: Vec<String>,
    #[serde(default)]
    pub service_accounts: Vec<String>,
    #[serde(default)]
    pub not_service_accounts: Vec<String>,
    /// `requestPrincipals`, `ipBlocks`, ... (weft has none of them).
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct To {
    #[serde(default)]
    pub operation: Operation,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    #[serde(default)]
    pub ports: Vec<Value>,
    #[serde(default)]
    pub not_ports: Vec<Value>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub not_methods: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub not_paths: Vec<String>,
    /// `hosts`, `notHosts` (weft matches no host in a policy).
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub not_values: Vec<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthentication {
    pub selector: Option<Selector>,
    pub mtls: Option<Mtls>,
    pub port_level_mtls: Option<Value>,
    #[serde(flatten)]
    pub rest: Rest,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Mtls {
    pub mode: Option<String>,
    #[serde(flatten)]
    pub rest: Rest,
}

/// `spec` of a document, deserialized with the failing field's path in the error.
pub fn spec<T: serde::de::DeserializeOwned>(doc: &Value) -> Result<T, String> {
    let spec = doc
        .get("spec")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        format!("spec.{path}: {}", e.into_inner())
    })
}
