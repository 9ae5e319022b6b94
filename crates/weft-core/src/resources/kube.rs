//! Reads the Kubernetes workload kinds users already have (Deployment, StatefulSet, DaemonSet,
//! ReplicaSet, Pod) as weft Workloads. Only the fields weft uses are read; the rest of the
//! Kubernetes schema is not weft's to check.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::workload::{
    Amounts, AppResources, ContainerPort, EnvVar, Protocol, Workload, WorkloadSpec,
};
use crate::meta::ObjectMeta;
use crate::quantity::{Cpu, Memory};

/// `(apiVersion, kind)` pairs read as Workloads.
pub const WORKLOAD_KINDS: &[(&str, &str)] = &[
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("v1", "Pod"),
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Controller {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: ControllerSpec,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ControllerSpec {
    replicas: Option<u32>,
    #[serde(default)]
    template: PodTemplate,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodTemplate {
    #[serde(default)]
    metadata: LooseMeta,
    #[serde(default)]
    spec: PodSpec,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LooseMeta {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    service_account_name: Option<String>,
    #[serde(default)]
    containers: Vec<Container>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    image: Option<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<KubeEnv>,
    working_dir: Option<String>,
    #[serde(default)]
    ports: Vec<KubePort>,
    /// Its `cpu` and `memory` only (other resources mean nothing to the local runtime).
    #[serde(default)]
    resources: Option<KubeResources>,
}

#[derive(Deserialize)]
struct KubeResources {
    #[serde(default)]
    requests: KubeAmounts,
    #[serde(default)]
    limits: KubeAmounts,
}

#[derive(Deserialize, Default)]
struct KubeAmounts {
    cpu: Option<Cpu>,
    memory: Option<Memory>,
}

impl From<KubeAmounts> for Amounts {
    fn from(a: KubeAmounts) -> Amounts {
        Amounts {
            cpu: a.cpu,
            memory: a.memory,
        }
    }
}

#[derive(Deserialize)]
struct KubeEnv {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KubePort {
    name: Option<String>,
    container_port: u16,
    #[serde(default)]
    protocol: Protocol,
}

#[derive(Deserialize)]
struct Pod {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: PodSpec,
}

/// Converts a Kubernetes workload document into a Workload.
pub fn to_workload(
    kind: &str,
    value: serde_json::Value,
) -> Result<Workload, serde_path_to_error::Error<serde_json::Error>> {
    if kind == "Pod" {
        let pod: Pod = serde_path_to_error::deserialize(value)?;
        return Ok(build(pod.metadata, LooseMeta::default(), Some(1), pod.spec));
    }
    let c: Controller = serde_path_to_error::deserialize(value)?;
    let replicas = if kind == "DaemonSet" {
        Some(1)
    } else {
        c.spec.replicas
    };
    Ok(build(
        c.metadata,
        c.spec.template.metadata,
        replicas,
        c.spec.template.spec,
    ))
}

fn build(mut meta: ObjectMeta, pod: LooseMeta, replicas: Option<u32>, spec: PodSpec) -> Workload {
    // Pods are selected by their template labels and configured by their template annotations.
    if !pod.labels.is_empty() {
        meta.labels = pod.labels;
    }
    meta.annotations.extend(pod.annotations);
    let ports = spec
        .containers
        .iter()
        .flat_map(|c| &c.ports)
        .map(|p| ContainerPort {
            name: p.name.clone(),
            container_port: p.container_port,
            protocol: p.protocol,
        })
        .collect();
    let main = spec.containers.into_iter().next();
    let (image, command, args, env, working_dir, resources) = match main {
        Some(c) => (
            c.image,
            c.command,
            c.args,
            c.env,
            c.working_dir,
            c.resources,
        ),
        None => Default::default(),
    };
    Workload {
        metadata: meta,
        spec: WorkloadSpec {
            command,
            args,
            env: env
                .into_iter()
                .map(|e| EnvVar {
                    name: e.name,
                    value: e.value.unwrap_or_default(),
                })
                .collect(),
            working_dir,
            image,
            replicas: replicas.unwrap_or(1),
            ports,
            service_account_name: spec
                .service_account_name
                .unwrap_or_else(|| "default".into()),
            // A cluster's node names mean nothing to the local runtime's nodes.
            node_name: None,
            resources: resources.map(|r| AppResources {
                requests: r.requests.into(),
                limits: r.limits.into(),
            }),
        },
    }
}
