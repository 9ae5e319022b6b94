//! `Mesh`: mesh-wide settings and the defaults every proxy starts from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::access_log::{Encoding, FormatSource, LogFormat};
use crate::duration::Duration;
use crate::meta::ObjectMeta;
use crate::quantity::{Cpu, Memory};

/// Mesh-wide settings. At most one per configuration; every field has a default, so an
/// absent Mesh means "all best practices on".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mesh {
    pub metadata: ObjectMeta,
    /// The mesh-wide settings. Absent: every default.
    #[serde(default)]
    pub spec: MeshSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshSpec {
    /// Trust domain of workload identities: `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`.
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Mutual TLS between proxies.
    #[serde(default)]
    pub mtls: MtlsSettings,
    /// Defaults for every proxy; workloads override them with `weft.dev/` annotations.
    #[serde(default)]
    pub proxy: ProxyDefaults,
    /// Access logging by every proxy.
    #[serde(default, deserialize_with = "checked_access_log")]
    pub access_log: AccessLog,
    /// Prometheus metrics served by every proxy.
    #[serde(default)]
    pub metrics: Metrics,
    /// Distributed tracing (OpenTelemetry).
    #[serde(default)]
    pub tracing: Tracing,
    /// What a proxy does with traffic to a destination the mesh does not know.
    #[serde(default)]
    pub outbound_traffic_policy: OutboundTrafficPolicy,
    /// The local runtime's (`weft up`) address ranges and nodes.
    #[serde(default)]
    pub network: LocalNetwork,
}

impl Default for MeshSpec {
    fn default() -> Self {
        MeshSpec {
            trust_domain: default_trust_domain(),
            mtls: MtlsSettings::default(),
            proxy: ProxyDefaults::default(),
            access_log: AccessLog::default(),
            metrics: Metrics::default(),
            tracing: Tracing::default(),
            outbound_traffic_policy: OutboundTrafficPolicy::default(),
            network: LocalNetwork::default(),
        }
    }
}

fn default_trust_domain() -> String {
    "cluster.local".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MtlsSettings {
    /// `STRICT` (default): only mTLS from mesh workloads is accepted. `PERMISSIVE`: plaintext is
    /// accepted too (migration only). `DISABLE`: no mTLS.
    #[serde(default)]
    pub mode: MtlsMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    #[default]
    Strict,
    Permissive,
    Disable,
}

impl std::str::FromStr for MtlsMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "STRICT" => Ok(MtlsMode::Strict),
            "PERMISSIVE" => Ok(MtlsMode::Permissive),
            "DISABLE" => Ok(MtlsMode::Disable),
            _ => Err(()),
        }
    }
}

/// Proxy defaults. Each has a per-workload `weft.dev/` annotation (docs/config.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyDefaults {
    /// Start the application only after its proxy is ready, so no early request is lost.
    #[serde(default = "yes")]
    pub hold_application: bool,
    /// On shutdown, how long the proxy keeps finishing in-flight requests after the app got SIGTERM.
    #[serde(default = "default_drain")]
    pub drain_duration: Duration,
    /// Proxy CPU and memory requests and limits.
    #[serde(default)]
    pub resources: ProxyResources,
    /// Worker threads per proxy.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Proxy log level.
    #[serde(default)]
    pub log_level: LogLevel,
}

impl Default for ProxyDefaults {
    fn default() -> Self {
        ProxyDefaults {
            hold_application: true,
            drain_duration: default_drain(),
            resources: ProxyResources::default(),
            concurrency: default_concurrency(),
            log_level: LogLevel::default(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_drain() -> Duration {
    Duration::from_secs(5)
}
fn default_concurrency() -> u32 {
    2
}

/// Proxy resources. The defaults fit weft's proxy (a few MiB idle); raise them from
/// `weft right-size` recommendations, not by copying another mesh's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyResources {
    /// CPU and memory reserved for each proxy (Kubernetes requests).
    #[serde(default = "default_requests")]
    pub requests: ResourceAmounts,
    /// The most CPU and memory each proxy may use (Kubernetes limits).
    #[serde(default = "default_limits")]
    pub limits: ResourceAmounts,
}

impl Default for ProxyResources {
    fn default() -> Self {
        ProxyResources {
            requests: default_requests(),
            limits: default_limits(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceAmounts {
    pub cpu: Cpu,
    pub memory: Memory,
}

fn default_requests() -> ResourceAmounts {
    ResourceAmounts {
        cpu: Cpu(20),
        memory: Memory(24 << 20),
    }
}
fn default_limits() -> ResourceAmounts {
    ResourceAmounts {
        cpu: Cpu(1000),
        memory: Memory(128 << 20),
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl std::str::FromStr for LogLevel {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "trace" => Ok(LogLevel::Trace),
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLog {
    /// One line per request or connection, on the proxy's stdout (`weft logs POD --proxy`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `JSON` or `TEXT`. Default: what `format` is (JSON without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    /// Envoy command operators (`%REQ(:PATH)%`, `%RESPONSE_CODE%`, docs/access-log.md): a
    /// line of text, or for JSON a map of field names to templates (or that map as a JSON
    /// string, as Istio writes it). Absent: weft's JSON record, or with `encoding: TEXT`
    /// Istio's default line. Workloads override it with `weft.dev/access-log-format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FormatSource>,
}

impl Default for AccessLog {
    fn default() -> Self {
        AccessLog {
            enabled: true,
            encoding: None,
            format: None,
        }
    }
}

impl AccessLog {
    /// The checked format (the Mesh is rejected at load when it does not check).
    pub fn log_format(&self) -> LogFormat {
        LogFormat::compile(self.encoding, self.format.as_ref()).unwrap_or_default()
    }
}

/// `accessLog`, its encoding and format checked together.
fn checked_access_log<'de, D: serde::Deserializer<'de>>(d: D) -> Result<AccessLog, D::Error> {
    let log = AccessLog::deserialize(d)?;
    LogFormat::compile(log.encoding, log.format.as_ref())
        .map_err(|e| serde::de::Error::custom(format!("access-log format: {e}")))?;
    Ok(log)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metrics {
    /// Serve Prometheus metrics on every proxy.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Port of the metrics endpoint (`/metrics`).
    #[serde(default = "default_metrics_port")]
    pub port: u16,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            enabled: true,
            port: default_metrics_port(),
        }
    }
}

fn default_metrics_port() -> u16 {
    15020
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tracing {
    /// Export sampled spans to `endpoint`. Off by default: it needs a collector. Trace
    /// headers (W3C `traceparent`, B3) are propagated by every proxy either way.
    #[serde(default)]
    pub enabled: bool,
    /// OTLP/gRPC collector address, `host:port` or `http://host:port` (e.g.
    /// `http://127.0.0.1:4317`). Spans go to `opentelemetry.proto.collector.trace.v1.TraceService/Export`
    /// with the resource attribute `service.name` = `<workload>.<namespace>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Percentage of requests traced, 0–100 (`1` = 1 %, as Istio's `sampling`). Applies to
    /// requests that arrive without a trace; one that arrives with a sampling decision keeps
    /// it. Default: 1. Workloads override it with `weft.dev/trace-sampling`.
    #[serde(default = "default_sampling", deserialize_with = "percent")]
    #[schemars(range(min = 0, max = 100))]
    pub sampling_percent: f64,
}

/// A percentage from 0 to 100 (also a Fault's shares).
pub(crate) fn percent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let p = f64::deserialize(d)?;
    if !(0.0..=100.0).contains(&p) {
        return Err(serde::de::Error::custom(format!(
            "expected a percentage from 0 to 100, got {p}"
        )));
    }
    Ok(p)
}

impl Default for Tracing {
    fn default() -> Self {
        Tracing {
            enabled: false,
            endpoint: None,
            sampling_percent: default_sampling(),
        }
    }
}

fn default_sampling() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundTrafficPolicy {
    /// Pass traffic to unknown destinations through as plain TCP.
    #[default]
    AllowAny,
    /// Refuse traffic to destinations that are not mesh services.
    RegistryOnly,
}

/// Address ranges and nodes of the local runtime. Defaults sit in the benchmarking range
/// 198.18.0.0/15, which is never routed on the internet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalNetwork {
    /// Pod addresses.
    #[serde(default = "default_pod_cidr")]
    pub pod_cidr: String,
    /// Service virtual IPs.
    #[serde(default = "default_service_cidr")]
    pub service_cidr: String,
    /// How many nodes the local runtime simulates, named `node-1` to `node-N` (1 to 32). Pods
    /// are spread over them (the replicas of a Workload on different nodes, unless it names
    /// one in `spec.nodeName`); each node runs one node proxy for its ambient pods.
    #[serde(default = "one_node", deserialize_with = "node_count")]
    #[schemars(range(min = 1, max = 32))]
    pub nodes: u32,
}

impl Default for LocalNetwork {
    fn default() -> Self {
        LocalNetwork {
            pod_cidr: default_pod_cidr(),
            service_cidr: default_service_cidr(),
            nodes: one_node(),
        }
    }
}

/// The most nodes the local runtime simulates.
pub const MAX_LOCAL_NODES: u32 = 32;

fn one_node() -> u32 {
    1
}

fn node_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if !(1..=MAX_LOCAL_NODES).contains(&n) {
        return Err(serde::de::Error::custom(format!(
            "expected 1 to {MAX_LOCAL_NODES} nodes, got {n}"
        )));
    }
    Ok(n)
}

impl LocalNetwork {
    /// The names of the local runtime's nodes: `node-1` to `node-N`.
    pub fn node_names(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("node-{i}")).collect()
    }
}

fn default_pod_cidr() -> String {
    "198.18.0.0/17".into()
}
fn default_service_cidr() -> String {
    "198.18.128.0/17".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_defaults_match_serde_defaults() {
        // `MeshSpec::default()` is what an absent Mesh means; it must equal `spec: {}` and
        // `tracing: {}`, which take the per-field serde defaults.
        let from_empty: MeshSpec = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(from_empty, MeshSpec::default());
        let tracing: Tracing = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(tracing, Tracing::default());
        assert_eq!(Tracing::default().sampling_percent, 1.0);
        let over = serde_json::from_value::<Tracing>(serde_json::json!({"samplingPercent": 150}));
        let err = over.unwrap_err().to_string();
        assert!(err.contains("percentage from 0 to 100, got 150"), "{err}");
    }

    #[test]
    fn nodes_are_counted_from_one_to_the_limit() {
        let parse = |v| serde_json::from_value::<LocalNetwork>(serde_json::json!({"nodes": v}));
        assert_eq!(
            parse(3).unwrap().node_names(),
            ["node-1", "node-2", "node-3"]
        );
        assert_eq!(LocalNetwork::default().node_names(), ["node-1"]);
        let err = parse(0).unwrap_err().to_string();
        assert!(err.contains("expected 1 to 32 nodes, got 0"), "{err}");
        assert!(parse(33).is_err());
    }
}
