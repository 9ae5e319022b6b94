//! Core `v1` kinds weft reads: `Service` and `Namespace`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::workload::Protocol;
use crate::meta::ObjectMeta;

/// A Kubernetes `v1` Service: a stable name and virtual IP in front of the workloads its
/// selector picks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    pub metadata: ObjectMeta,
    /// Which workloads back the Service, and the ports it exposes.
    #[serde(default)]
    pub spec: ServiceSpec,
    /// Set by Kubernetes; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// Workloads whose labels contain all of these are the Service's endpoints.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// Ports the Service exposes, each forwarded to a port of the selected workloads.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// Kubernetes service type; accepted and ignored by the local runtime.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    /// Fixed virtual IP; accepted, assigned by the runtime when absent.
    #[serde(default, rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, rename = "clusterIPs", skip_serializing)]
    pub cluster_ips: Option<serde_json::Value>,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub ip_families: Option<serde_json::Value>,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub ip_family_policy: Option<serde_json::Value>,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub session_affinity: Option<serde_json::Value>,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub internal_traffic_policy: Option<serde_json::Value>,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub external_traffic_policy: Option<serde_json::Value>,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub publish_not_ready_addresses: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// Port name. A name starting `http`, `http2`, `grpc` or `tcp` declares the protocol when
    /// `appProtocol` is absent (e.g. `http-web`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port clients connect to on the Service's virtual IP.
    pub port: u16,
    /// Port (number or container port name) on the workload. Default: same as `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Application protocol: `http`, `http2`, `grpc`, `tcp` (or `kubernetes.io/h2c`). Skips detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub node_port: Option<serde_json::Value>,
}

/// What a port carries, as far as configuration tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppProtocol {
    Http,
    Http2,
    Grpc,
    Tcp,
    /// Unknown from config: the proxy detects it from the first bytes.
    Detect,
}

impl ServicePort {
    /// The protocol declared by `appProtocol`, or else by the port name's prefix.
    pub fn app_protocol(&self) -> AppProtocol {
        let declared = self.app_protocol.as_deref().or_else(|| {
            let name = self.name.as_deref()?;
            Some(name.split('-').next().unwrap_or(name))
        });
        match declared.map(str::to_ascii_lowercase).as_deref() {
            Some("http") | Some("http1") => AppProtocol::Http,
            Some("http2") | Some("h2c") | Some("kubernetes.io/h2c") => AppProtocol::Http2,
            Some("grpc") | Some("grpc-web") => AppProtocol::Grpc,
            Some("tcp") | Some("mongo") | Some("redis") | Some("mysql") => AppProtocol::Tcp,
            _ => AppProtocol::Detect,
        }
    }

    /// The workload port, by number or name.
    pub fn target(&self) -> IntOrString {
        self.target_port
            .clone()
            .unwrap_or(IntOrString::Int(self.port))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum IntOrString {
    Int(u16),
    String(String),
}

/// A Kubernetes `v1` Namespace. weft reads its labels (`weft.dev/rev` or its alias `istio.io/rev`,
/// `weft.dev/dataplane-mode`, `weft.dev/use-waypoint`) and `weft.dev/` annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Namespace {
    pub metadata: ObjectMeta,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub spec: Option<serde_json::Value>,
    /// Kubernetes field; accepted and ignored.
    #[serde(default, skip_serializing)]
    pub status: Option<serde_json::Value>,
}
