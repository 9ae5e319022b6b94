//! [`Bound`]: a running `weft up` mesh, with every address its processes really bound, and
//! the ordered teardown that stops it and removes everything it created.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::controls::Controls;
use super::phase::Phase;
use super::pods::Pods;
use super::spec::{gateway_addresses, node_addresses, proxy_addresses};
use crate::addresses::{self, ControlAddresses, ProxyAddresses};
use crate::cleanup;
use crate::plan::Plan;
use crate::revisions::Revision;
use crate::rundir::{Lock, RunDir};
use crate::supervise::{Board, Report};

/// Every real address of a running mesh, as its processes reported them once it was up (also
/// in the runtime directory's `bound.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Addresses {
    pub control: ControlAddresses,
    /// In the order of the plan's pods.
    pub pods: Vec<PodAddresses>,
    /// In the order of the plan's gateways.
    pub gateways: Vec<GatewayAddresses>,
    /// In the order of the plan's nodes.
    #[serde(default)]
    pub nodes: Vec<NodeAddresses>,
    /// The Prometheus `--prometheus` runs: its UI and query API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<SocketAddr>,
}

/// A pod's address and what its sidecar bound inside the pod's network namespace: a wildcard
/// (`0.0.0.0`) there is given as the pod's address, where it is reached; a loopback address
/// (the proxy's admin) is reached only from inside the pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodAddresses {
    pub namespace: String,
    pub name: String,
    pub ip: Ipv4Addr,
    /// None without a sidecar, or while the sidecar has not bound its listeners yet.
    pub proxy: Option<ProxyAddresses>,
}

/// What a node proxy bound on the host (its admin on loopback, its readiness and metrics on the
/// host's bridge address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAddresses {
    pub name: String,
    /// None while the node has no node proxy (no ambient pod yet) or it has not bound yet.
    pub proxy: Option<ProxyAddresses>,
}

/// What an ingress gateway bound on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayAddresses {
    pub namespace: String,
    pub name: String,
    /// None while the gateway has not bound its listeners yet.
    pub proxy: Option<ProxyAddresses>,
}

impl Addresses {
    /// What the proxies reported so far: a process not ready when `weft up` stopped waiting
    /// may not have written its file yet.
    pub(super) fn gather(plan: &Plan, dir: &RunDir, control: ControlAddresses) -> Addresses {
        let pods = plan
            .pods
            .iter()
            .map(|p| PodAddresses {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                ip: p.ip,
                proxy: p
                    .sidecar()
                    .then(|| addresses::read(&proxy_addresses(dir, p)).ok())
                    .flatten()
                    .map(|a| in_pod(a, p.ip)),
            })
            .collect();
        let gateways = plan
            .gateways
            .iter()
            .map(|g| GatewayAddresses {
                namespace: g.namespace.clone(),
                name: g.name.clone(),
                proxy: addresses::read(&gateway_addresses(dir, g)).ok(),
            })
            .collect();
        let nodes = (plan.nodes.iter())
            .map(|n| NodeAddresses {
                name: n.clone(),
                proxy: addresses::read(&node_addresses(dir, n)).ok(),
            })
            .collect();
        Addresses {
            control,
            pods,
            gateways,
            nodes,
            prometheus: plan.prometheus.as_ref().map(|p| p.listen),
        }
    }

    /// Every ingress listener on the host.
    pub fn ingress(&self) -> Vec<SocketAddr> {
        self.gateways
            .iter()
            .filter_map(|g| g.proxy.as_ref())
            .flat_map(|p| p.listeners.iter().map(|(_, a)| *a))
            .collect()
    }
}

/// A sidecar's addresses with each wildcard one replaced by the pod's address.
fn in_pod(mut a: ProxyAddresses, ip: Ipv4Addr) -> ProxyAddresses {
    let at = |addr: &mut SocketAddr| {
        if addr.ip().is_unspecified() {
            addr.set_ip(ip.into());
        }
    };
    for addr in [&mut a.admin, &mut a.readiness, &mut a.metrics]
        .into_iter()
        .chain(a.outbound.as_mut())
        .chain(a.inbound.as_mut())
    {
        at(addr);
    }
    a
}

/// A running mesh. [`Bound::wait_shutdown`] or [`Bound::stop`] stops it in order (gateways,
/// apps, proxies, control plane) and removes what it created; dropping it without either leaves
/// the processes and the network for `weft down` to remove.
pub struct Bound {
    pub addresses: Addresses,
    /// What the wait for readiness found: every pod ready, or which are not and why.
    pub readiness: Readiness,
    pub(super) teardown: Teardown,
}

/// What `weft up`'s wait for readiness found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `all pods ready`, or how many are not.
    pub summary: String,
    /// What is not ready (pods, gateways, Prometheus), one line each with why and the fix
    /// when there is one; empty when everything is.
    pub not_ready: Vec<String>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("addresses", &self.addresses)
            .field("readiness", &self.readiness)
            .finish_non_exhaustive()
    }
}

impl Bound {
    /// Runs until `shutdown` completes, then stops.
    pub async fn wait_shutdown(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.stop().await;
    }

    /// Stops everything in order and removes the network and the runtime directory.
    pub async fn stop(self) {
        self.teardown.run().await;
    }
}

/// What a started (or partly started) mesh holds until it is torn down.
pub(super) struct Teardown {
    /// The plan `weft up` started with (its network is what is removed).
    pub plan: Plan,
    pub dir: RunDir,
    pub board: Arc<Board>,
    pub report: Report,
    /// The pods' control planes, apps, sidecars and node proxies, and what each pod runs in
    /// now.
    pub pods: Arc<Pods>,
    pub gateways: Phase,
    /// The Prometheus scraping the mesh, if `--prometheus` asked for one.
    pub prometheus: Phase,
    /// The conventional control-plane addresses, leading to the `default` tag's.
    pub forwarding: Vec<tokio::task::JoinHandle<()>>,
    /// Keeps the Service translation of pods without a proxy current.
    pub translating: Option<tokio::task::JoinHandle<()>>,
    /// Follows the configuration's dataplane modes.
    pub following: Option<tokio::task::JoinHandle<()>>,
    /// Takes `weft restart` requests.
    pub restarting: Option<tokio::task::JoinHandle<()>>,
    /// Samples what the pods' processes use ([`super::sample`]).
    pub sampling: Option<tokio::task::JoinHandle<()>>,
    pub lock: Lock,
}

impl Teardown {
    pub(super) fn new(
        plan: Plan,
        dir: RunDir,
        board: Arc<Board>,
        report: Report,
        lock: Lock,
        weft: std::path::PathBuf,
        first: Revision,
    ) -> Self {
        let controls = Controls::new(&plan, dir.clone(), board.clone(), report.clone(), first);
        let pods = Pods::new(
            plan.clone(),
            dir.clone(),
            board.clone(),
            report.clone(),
            weft,
            Arc::new(controls),
        );
        Teardown {
            plan,
            dir,
            board,
            report,
            pods: Arc::new(pods),
            gateways: Phase::new(),
            prometheus: Phase::new(),
            forwarding: Vec::new(),
            translating: None,
            following: None,
            restarting: None,
            sampling: None,
            lock,
        }
    }

    /// Prometheus, then gateways, then apps, then proxies and node proxies (which drain), then
    /// the control plane; then the network and the runtime directory. The instance lock is
    /// released last.
    pub(super) async fn run(self) {
        let report = &self.report;
        report(
            "stopping: gateways, then apps, then proxies and node proxies (draining), then the control plane".into(),
        );
        // No more restarts (one under way ends when its node proxy stops).
        if let Some(t) = self.restarting {
            t.abort();
        }
        if let Some(t) = self.sampling {
            t.abort();
        }
        // No more switches: a pod is left as it is.
        if let Some(t) = self.following {
            t.abort();
            let _ = t.await;
        }
        if let Some(t) = self.translating {
            t.abort();
        }
        self.prometheus.stop().await;
        self.gateways.stop().await;
        self.pods.apps.stop().await;
        self.pods.sidecars.stop().await;
        self.pods.forget_enrolments();
        self.pods.nodes.stop().await;
        for t in self.forwarding {
            t.abort();
        }
        self.pods.controls.phase.stop().await;
        self.board.update(|s| s.phase = "stopping".into());
        // The pods in force now (some may have come or gone while it ran).
        cleanup::remove_network(&self.pods.plan().visible(), report);
        if let Ok(h) = crate::cgroup::hierarchy() {
            h.remove_instance(&self.dir.name());
        }
        let _ = std::fs::remove_dir_all(&self.dir.path);
        drop(self.lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sidecars_wildcard_addresses_are_given_as_the_pods_own() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let reported = ProxyAddresses {
            outbound: Some(a("127.0.0.1:15001")),
            inbound: Some(a("0.0.0.0:15006")),
            admin: a("127.0.0.1:15000"),
            readiness: a("0.0.0.0:15021"),
            metrics: a("0.0.0.0:15020"),
            listeners: vec![],
        };
        let pod = in_pod(reported, Ipv4Addr::new(198, 19, 60, 5));
        assert_eq!(pod.inbound, Some(a("198.19.60.5:15006")));
        assert_eq!(pod.readiness, a("198.19.60.5:15021"));
        assert_eq!(pod.metrics, a("198.19.60.5:15020"));
        // Loopback stays loopback: reached from inside the pod only.
        assert_eq!(pod.outbound, Some(a("127.0.0.1:15001")));
        assert_eq!(pod.admin, a("127.0.0.1:15000"));
    }
}
