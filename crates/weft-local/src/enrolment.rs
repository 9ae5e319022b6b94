//! The enrolment file of a node: the ambient pods its node proxy is to serve, with the network
//! namespace it opens their listeners in (`weft proxy --node NAME --enrolled FILE`). The runtime
//! writes it whole, through a rename, whenever the node's ambient pods change; the node proxy
//! re-reads it, serves the pods it gained and releases those it lost.
//!
//! ```json
//! {"pods": [{"id": "web-0.shop", "namespace": "shop", "name": "web-0", "ip": "198.18.0.3",
//!   "netns": "/run/netns/weft-shop-web-0"}]}
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::net;
use crate::plan::PodPlan;

/// One enrolled pod, as the node proxy reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrolled {
    /// The pod's proxy id (`POD.NAMESPACE`).
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub ip: IpAddr,
    pub netns: PathBuf,
}

impl Enrolled {
    pub fn of(pod: &PodPlan) -> Enrolled {
        Enrolled {
            id: pod.pod().id,
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            ip: pod.ip.into(),
            netns: net::netns_path(&pod.netns),
        }
    }
}

#[derive(Serialize)]
struct File<'a> {
    pods: &'a [Enrolled],
}

/// The pods of `pods` that `node`'s proxy is to serve: those on it in ambient mode.
pub fn of_node<'a>(pods: impl IntoIterator<Item = &'a PodPlan>, node: &str) -> Vec<Enrolled> {
    pods.into_iter()
        .filter(|p| p.ambient() && p.node == node)
        .map(Enrolled::of)
        .collect()
}

/// The file's text for `pods`.
pub fn text(pods: &[Enrolled]) -> Vec<u8> {
    serde_json::to_vec_pretty(&File { pods }).expect("an enrolment serializes")
}

/// Writes the enrolment file `path` (through a rename: never read half-written).
pub fn write(path: &Path, pods: &[Enrolled]) -> anyhow::Result<()> {
    let text = text(pods);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_has_the_fields_the_node_proxy_reads() {
        let e = Enrolled {
            id: "web-0.shop".into(),
            namespace: "shop".into(),
            name: "web-0".into(),
            ip: [198, 19, 70, 3].into(),
            netns: "/run/netns/t-shop-web-0".into(),
        };
        let v: serde_json::Value = serde_json::from_slice(&text(&[e])).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"pods": [{"id": "web-0.shop", "namespace": "shop",
                "name": "web-0", "ip": "198.19.70.3", "netns": "/run/netns/t-shop-web-0"}]})
        );
    }
}
