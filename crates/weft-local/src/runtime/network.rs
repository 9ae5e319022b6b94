//! The network `weft up` sets up before anything runs: each namespace's hosts file, the bridge,
//! every pod's namespace and interface, and capture in every pod that has a proxy (a sidecar,
//! or in ambient mode its node's: the same rules).

use std::net::SocketAddrV4;

use anyhow::Context;

use super::PROXY_MARK;
use crate::net;
use crate::plan::{Plan, PodPlan};
use crate::ports;
use crate::rundir::RunDir;
use crate::supervise::Report;

/// Pods have no route out of the mesh, so no DNS server: Service names come from the pod's
/// hosts file, and a lookup of anything else fails at once instead of timing out.
const RESOLV_CONF: &str = "# Written by weft up: Service names are in /etc/hosts; pods have no DNS server.\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n";

/// The capture rules of `pod`: its outbound TCP to the proxy's 15001, inbound to its 15006;
/// the proxy's own connections (socket mark), the control plane and the proxy's own ports pass.
pub(super) fn capture(plan: &Plan, pod: &PodPlan) -> net::Capture {
    net::Capture {
        pod_ip: pod.ip,
        outbound_port: ports::OUTBOUND,
        inbound_port: ports::INBOUND,
        proxy_mark: PROXY_MARK,
        inbound_exempt_ports: ports::inbound_exempt(plan.metrics_port),
        outbound_exempt: vec![SocketAddrV4::new(plan.host_ip, plan.discovery().port())],
    }
}

pub(super) async fn setup(plan: &Plan, dir: &RunDir, report: &Report) -> anyhow::Result<()> {
    write_hosts(plan, dir)?;
    let plan2 = plan.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let plan = plan2;
        net::create_bridge(&plan.bridge, plan.host_ip, plan.prefix)?;
        for pod in &plan.pods {
            add_pod_blocking(&plan, pod)?;
        }
        Ok(())
    })
    .await??;
    let ambient = plan.pods.iter().filter(|p| p.ambient()).count();
    report(format!(
        "network: bridge {} {}/{}, {} pods in {} ({ambient} ambient, on {} node{}), services in {}",
        plan.bridge,
        plan.host_ip,
        plan.prefix,
        plan.pods.len(),
        plan.pod_cidr,
        plan.nodes.len(),
        if plan.nodes.len() == 1 { "" } else { "s" },
        plan.service_cidr
    ));
    Ok(())
}

/// Writes each namespace's `hosts` and `resolv.conf` where its pods see them. A file that
/// exists is rewritten in place — its pods' processes see it through a bind mount of that very
/// file — from the start, then cut to length: with pods added or removed only its end changes,
/// so a process reading it meanwhile sees every Service name.
pub(super) fn write_hosts(plan: &Plan, dir: &RunDir) -> anyhow::Result<()> {
    use std::io::Write;
    for (ns, hosts) in &plan.hosts {
        let etc = dir.etc_dir(ns);
        std::fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
        for (name, text) in [("hosts", hosts.as_str()), ("resolv.conf", RESOLV_CONF)] {
            let path = etc.join(name);
            if std::fs::read_to_string(&path).is_ok_and(|now| now == text) {
                continue;
            }
            let write = || -> std::io::Result<()> {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)?;
                f.write_all(text.as_bytes())?;
                f.set_len(text.len() as u64)
            };
            write().with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Gives `pod` its network namespace, its link to the bridge and, if it has a proxy, capture.
fn add_pod_blocking(plan: &Plan, pod: &PodPlan) -> anyhow::Result<()> {
    let id = pod.id();
    net::create_netns(&pod.netns).with_context(|| format!("pod {id}"))?;
    net::add_pod_interface(&net::PodInterface {
        bridge: plan.bridge.clone(),
        host_side: pod.veth.clone(),
        netns: pod.netns.clone(),
        addr: pod.ip,
        prefix: plan.prefix,
        gateway: plan.host_ip,
    })
    .with_context(|| format!("pod {id}"))?;
    if pod.captured() {
        net::install_capture(&pod.netns, &capture(plan, pod))
            .with_context(|| format!("pod {id}"))?;
    }
    Ok(())
}

/// Sets up the network of a pod added while the mesh runs ([`add_pod_blocking`]).
pub(super) async fn add_pod(plan: &Plan, pod: &PodPlan) -> anyhow::Result<()> {
    let (plan, pod) = (plan.clone(), pod.clone());
    tokio::task::spawn_blocking(move || add_pod_blocking(&plan, &pod)).await?
}

/// Removes the link and network namespace of a pod whose processes have stopped.
pub(super) async fn remove_pod(pod: &PodPlan) -> anyhow::Result<()> {
    let pod = pod.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let id = pod.id();
        net::delete_link(&pod.veth).with_context(|| format!("pod {id}: link {}", pod.veth))?;
        net::delete_netns(&pod.netns)
            .with_context(|| format!("pod {id}: network namespace {}", pod.netns))
    })
    .await?
}
