//! One pod of the plan: a replica of a Workload, with its address, command, dataplane mode
//! and node.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weft_core::annotations::DataplaneMode;
use weft_core::model::Pod;

use crate::cgroup::Limits;

/// One replica of a Workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodPlan {
    pub namespace: String,
    pub workload: String,
    pub name: String,
    pub ip: Ipv4Addr,
    /// Network namespace name (`ip netns list` shows it).
    pub netns: String,
    /// Host side of the pod's veth pair.
    pub veth: String,
    pub command: Vec<String>,
    /// The app is ready once this port (its first declared one) accepts connections.
    pub ready_port: Option<u16>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    /// `sidecar`: a sidecar proxy runs in the pod; `ambient`: its node's proxy serves it;
    /// `none`: no proxy. Traffic is captured in the first two (the same rules).
    pub mode: DataplaneMode,
    /// The node the pod runs on (`node-1`, …).
    pub node: String,
    /// The node its Workload names (`spec.nodeName`), if it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// The app starts only once the proxy is ready.
    pub hold_application: bool,
    pub drain_seconds: f64,
    pub log_level: String,
    pub concurrency: u32,
    /// Its proxy serves `/metrics` (`weft.dev/metrics`, the Mesh's `metrics.enabled`): only
    /// then is it a Prometheus target ([`crate::prometheus`]).
    #[serde(default = "yes")]
    pub metrics: bool,
    /// The pod runs a waypoint (its "app" is `weft proxy --waypoint`): no capture, no
    /// sidecar; its label names the Gateway, its service account is the Gateway's name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waypoint: bool,
    /// Its `weft.dev/rev` label (its Workload's, else its Namespace's): a tag or a revision;
    /// none: the `default` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    /// Its sidecar's CPU and memory (`weft.dev/proxy-*`, else the Mesh's proxy defaults), made
    /// real with a cgroup ([`crate::cgroup`]).
    #[serde(default)]
    pub proxy_limits: Limits,
    /// Its program's: the Workload's `resources` (a waypoint's pod: its proxy's); none, the
    /// program runs unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_limits: Option<Limits>,
    /// Gone from the configuration and stopped while the mesh runs: kept in its list so that
    /// indexes do not move, never written out ([`super::Plan::visible`]).
    #[serde(skip)]
    pub removed: bool,
}

fn yes() -> bool {
    true
}

impl PodPlan {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// A sidecar proxy runs in the pod.
    pub fn sidecar(&self) -> bool {
        self.mode == DataplaneMode::Sidecar
    }

    /// Its node's proxy serves the pod.
    pub fn ambient(&self) -> bool {
        self.mode == DataplaneMode::Ambient
    }

    /// The pod's traffic is captured into a proxy (its sidecar or its node's).
    pub fn captured(&self) -> bool {
        self.mode != DataplaneMode::None
    }

    /// The pod's mode as `weft get pods` shows it: `waypoint` for a waypoint's pod, else its
    /// dataplane mode.
    pub fn mode_label(&self) -> &'static str {
        match self.waypoint {
            true => "waypoint",
            false => mode_name(self.mode),
        }
    }

    /// Gives the pod address `ip` (host number `n` of the pod range) and its host link:
    /// `POD_IP` in its environment follows.
    pub fn readdress(&mut self, instance: &str, n: u32, ip: Ipv4Addr) {
        self.ip = ip;
        self.veth = format!("{instance}-{n}");
        for (k, v) in &mut self.env {
            if k == "POD_IP" {
                *v = ip.to_string();
            }
        }
    }

    /// The pod as the control plane knows it (its proxy announces the same id).
    pub fn pod(&self) -> Pod {
        Pod {
            id: format!("{}.{}", self.name, self.namespace),
            namespace: self.namespace.clone(),
            workload: self.workload.clone(),
            name: self.name.clone(),
            ip: IpAddr::V4(self.ip),
            service_account: self.service_account.clone(),
            labels: self.labels.clone(),
            inbound: None,
            tunnel: None,
            node: self.node.clone(),
            ready: true,
        }
    }
}

/// The word for a dataplane mode, as in the `weft.dev/dataplane-mode` label.
pub fn mode_name(mode: DataplaneMode) -> &'static str {
    match mode {
        DataplaneMode::Sidecar => "sidecar",
        DataplaneMode::Ambient => "ambient",
        DataplaneMode::None => "none",
    }
}
