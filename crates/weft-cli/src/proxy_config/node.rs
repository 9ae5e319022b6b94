//! A node's proxy in the running mesh: its admin address, which it reports in the run
//! directory once bound (it listens on an ephemeral loopback port), and what it answers.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use weft_local::addresses::ProxyAddresses;
use weft_local::plan::PodPlan;
use weft_local::rundir::RunDir;
use weft_proxy::node::{PodView, Pods};

/// The admin address the proxy of `node` reported (the file the runtime names
/// `addresses/node-NODE.json`).
fn admin(dir: &RunDir, node: &str) -> anyhow::Result<SocketAddr> {
    let path = dir.addresses(&format!("node-{node}"));
    if !path.exists() {
        anyhow::bail!(
            "the proxy of {node} is not running: it starts once the node has an ambient pod \
             (`weft get pods` shows each pod's mode and node)"
        );
    }
    let bound: ProxyAddresses = weft_local::addresses::read(&path)?;
    Ok(bound.admin)
}

/// `GET path` on the admin API of `node`'s proxy: the body of a 200 answer.
pub fn get(dir: &RunDir, node: &str, path: &str) -> anyhow::Result<String> {
    let admin = admin(dir, node)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body) = rt
        .block_on(weft_local::http::get(admin, path, Duration::from_secs(5)))
        .with_context(|| format!("asking the proxy of {node} at {admin}{path}"))?;
    if status != 200 {
        anyhow::bail!("the proxy of {node} answered {status}: {}", body.trim());
    }
    Ok(body)
}

/// The pods `node`'s proxy serves (`GET /pods`).
pub fn pods(dir: &RunDir, node: &str) -> anyhow::Result<Pods> {
    let body = get(dir, node, "/pods")?;
    serde_json::from_str(&body)
        .with_context(|| format!("unexpected answer from the proxy of {node}"))
}

/// The entry of the ambient `pod` in its node proxy's `/pods`.
pub fn pod(dir: &RunDir, pod: &PodPlan) -> anyhow::Result<PodView> {
    let id = pod.pod().id;
    let all = pods(dir, &pod.node)?;
    let enrolled: Vec<String> = all.pods.iter().map(|p| p.id.clone()).collect();
    all.pods.into_iter().find(|p| p.id == id).ok_or_else(|| {
        anyhow::anyhow!(
            "the proxy of {} does not hold pod {} (not enrolled yet, or being switched); it \
             holds: {}",
            pod.node,
            pod.id(),
            if enrolled.is_empty() {
                "none".into()
            } else {
                enrolled.join(", ")
            }
        )
    })
}
