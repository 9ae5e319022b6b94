//! `Workload`: a program the local runtime runs as pods (on Kubernetes: Deployments and Pods).

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::meta::ObjectMeta;
use crate::quantity::{Cpu, Memory};

/// A program run as `replicas` pods. Pod labels are the Workload's `metadata.labels`;
/// proxy settings are its `weft.dev/` annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    pub metadata: ObjectMeta,
    /// What to run, how many pods, and the program's ports and identity.
    pub spec: WorkloadSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Program and leading arguments: a string (`python3`) or a list (`[python3, -m, http.server]`).
    /// Required for the local runtime; Workloads read from Kubernetes manifests use `image`.
    #[serde(default, deserialize_with = "string_or_list")]
    #[schemars(with = "StringOrList")]
    pub command: Vec<String>,
    /// Further arguments, appended to `command`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables. `POD_NAME`, `POD_NAMESPACE` and `POD_IP` are always set.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Working directory. Default: the directory of the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Container image, when the Workload was read from a Kubernetes manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Number of pods. Default: 1.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Ports the program listens on.
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    /// Service account: the `sa` part of the workload's identity. Default: `default`.
    #[serde(default = "default_sa")]
    pub service_account_name: String,
    /// The node every pod of the Workload runs on in the local runtime (`node-1` to `node-N`
    /// of the Mesh's `spec.network.nodes`). Default: the pods are spread over the nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// The program's CPU and memory (a Kubernetes container's `resources`). In `weft up` each
    /// pod's program runs in a cgroup of its own with these limits; without them it runs
    /// unlimited. The proxy's are set apart, with `weft.dev/proxy-*` annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<AppResources>,
}

/// A program's CPU and memory requests and limits, each optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppResources {
    /// What the program is guaranteed: CPU weight under contention, memory kept from reclaim.
    #[serde(default)]
    pub requests: Amounts,
    /// The most it may use: CPU is throttled past it, the program is OOM-killed past memory.
    #[serde(default)]
    pub limits: Amounts,
}

/// CPU (`250m`, `0.5`) and memory (`64Mi`), each optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Amounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
}

fn one() -> u32 {
    1
}
fn default_sa() -> String {
    "default".into()
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    match Either::deserialize(d) {
        Ok(Either::One(s)) => Ok(vec![s]),
        Ok(Either::Many(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom(
            "expected a string or a list of strings",
        )),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Variable value.
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerPort {
    /// Port name, referenced by a Service's `targetPort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port number the program listens on.
    pub container_port: u16,
    /// `TCP` (default) or `UDP`. UDP passes the mesh untouched.
    #[serde(default)]
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}
