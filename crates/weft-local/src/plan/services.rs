//! The Services that pods without a sidecar reach: each Service's VIP and, per port, every
//! pod that may serve it. Worked out once with the rest of the [`Plan`](super::Plan); which of
//! those pods are ready is followed while the mesh runs, by the runtime's `services` module.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};
use weft_core::model::Snapshot;

use super::PodPlan;

/// A Service as the pods without a sidecar reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlan {
    pub namespace: String,
    pub name: String,
    pub vip: Ipv4Addr,
    pub ports: Vec<PortPlan>,
}

/// One Service port and every pod that may serve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortPlan {
    pub port: u16,
    /// (index in [`Plan::pods`](super::Plan::pods), the pod's target port).
    pub backends: Vec<(usize, u16)>,
}

/// The Services of `snap` (built with every pod of `pods` that is not removed) with their
/// VIPs and backends.
pub fn plan(snap: &Snapshot, pods: &[PodPlan]) -> Vec<ServicePlan> {
    let index = |ip: IpAddr| (pods.iter()).position(|p| !p.removed && IpAddr::V4(p.ip) == ip);
    snap.services
        .values()
        .filter_map(|svc| {
            let Some(IpAddr::V4(vip)) = svc.vip else {
                return None;
            };
            let ports = svc
                .ports
                .iter()
                .map(|p| PortPlan {
                    port: p.port,
                    backends: svc
                        .endpoints
                        .iter()
                        .filter_map(|e| Some((index(e.address)?, *e.ports.get(&p.port)?)))
                        .collect(),
                })
                .collect();
            Some(ServicePlan {
                namespace: svc.namespace.clone(),
                name: svc.name.clone(),
                vip,
                ports,
            })
        })
        .collect()
}
