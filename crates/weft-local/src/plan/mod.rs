//! What `weft up` will run, worked out from the configuration before anything starts: the
//! network (bridge, pod and service addresses), every pod with its command and settings, the
//! names each namespace resolves, the Services that pods without a sidecar reach, and the
//! ingress gateways.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::{Deserialize, Serialize};
use weft_core::Config;
use weft_core::annotations::{DataplaneMode, GATEWAY_NAME, ProxySettings};
use weft_core::model::vip::Cidr;
use weft_core::model::{Pod, Snapshot};
use weft_core::resources::Resource;
use weft_core::resources::gateway::INGRESS_CLASS;

use crate::cgroup::Limits;
use crate::ports;

mod keep;
mod nodes;
mod pod;
mod services;

pub use nodes::Spread;
pub use pod::{PodPlan, mode_name};
pub use services::{PortPlan, ServicePlan};

/// Choices made on the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// Instance name: names the bridge, the namespaces and the runtime directory.
    pub name: String,
    /// The `weft` executable that runs the control plane, proxies and `weft demo`.
    pub weft: PathBuf,
    /// Host port for the first listener of the first ingress Gateway (others keep their port).
    pub ingress_port: Option<u16>,
    /// Control-plane admin API on the host.
    pub admin: SocketAddr,
}

/// Everything one `weft up` runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub name: String,
    /// The revision `weft up` starts with (`--revision`; by default the version, `v0-1-0`).
    #[serde(default)]
    pub revision: String,
    pub config_dir: PathBuf,
    pub bridge: String,
    /// The host's address on the bridge: pods' gateway, where the control plane listens.
    pub host_ip: Ipv4Addr,
    pub prefix: u8,
    pub pod_cidr: String,
    pub service_cidr: String,
    pub admin: SocketAddr,
    pub pods: Vec<PodPlan>,
    /// The simulated nodes (`node-1`, …): each runs a node proxy for its ambient pods.
    pub nodes: Vec<String>,
    pub gateways: Vec<GatewayPlan>,
    /// Namespace → the `/etc/hosts` its pods see.
    pub hosts: BTreeMap<String, String>,
    /// Services with their VIPs and backends, for the pods without a sidecar.
    #[serde(default)]
    pub services: Vec<ServicePlan>,
    /// The Mesh's trust domain: the proxies ask the CA for identities in it.
    #[serde(default)]
    pub trust_domain: String,
    /// The Mesh's `metrics.port`: where every proxy serves `/metrics`.
    #[serde(default = "default_metrics_port")]
    pub metrics_port: u16,
    /// A Prometheus `weft up` runs for the mesh (`--prometheus`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusPlan>,
}

/// The Prometheus `weft up --prometheus` runs: its binary (found before anything starts) and
/// where it serves its UI and query API (loopback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusPlan {
    pub binary: PathBuf,
    pub listen: SocketAddr,
}

fn default_metrics_port() -> u16 {
    ports::METRICS
}

/// An ingress Gateway served from the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayPlan {
    pub namespace: String,
    pub name: String,
    /// Gateway listener port → host address.
    pub listeners: Vec<(u16, SocketAddr)>,
}

/// Names must fit interface names (15 bytes): `<name>0` and `<name>-<index>`.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 8
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !ok {
        bail!(
            "instance name {name:?} must be 1 to 8 lowercase letters or digits, starting with a letter"
        );
    }
    Ok(())
}

impl Plan {
    pub fn new(config: &Config, config_dir: &Path, opts: &Options) -> anyhow::Result<Plan> {
        check_name(&opts.name)?;
        let snap = Snapshot::build(config, &[]);
        let network = &snap.mesh.network;
        let pod_cidr: Cidr = network
            .pod_cidr
            .parse()
            .map_err(|e| anyhow::anyhow!("Mesh spec.network.podCidr: {e}"))?;
        let service_cidr: Cidr = network
            .service_cidr
            .parse()
            .map_err(|e| anyhow::anyhow!("Mesh spec.network.serviceCidr: {e}"))?;
        if pod_cidr.contains(service_cidr.base) || service_cidr.contains(pod_cidr.base) {
            bail!(
                "Mesh spec.network: podCidr {} and serviceCidr {} overlap; give them separate ranges",
                network.pod_cidr,
                network.service_cidr
            );
        }
        let mut plan = Plan {
            name: opts.name.clone(),
            config_dir: config_dir.to_path_buf(),
            bridge: format!("{}0", opts.name),
            host_ip: pod_cidr.host(0),
            prefix: pod_cidr.len,
            pod_cidr: network.pod_cidr.clone(),
            service_cidr: network.service_cidr.clone(),
            admin: opts.admin,
            revision: crate::revisions::version_name(env!("CARGO_PKG_VERSION")),
            pods: Vec::new(),
            nodes: network.node_names(),
            gateways: Vec::new(),
            hosts: BTreeMap::new(),
            services: Vec::new(),
            trust_domain: snap.mesh.trust_domain.clone(),
            metrics_port: snap.mesh.metrics.port,
            prometheus: None,
        };
        plan.add_pods(config, &snap, pod_cidr, opts)?;
        plan.add_gateways(config, opts);
        plan.refresh(config);
        Ok(plan)
    }

    /// The plan of `config` for the mesh that runs `running`: the pods that run keep their
    /// addresses and nodes, new ones take free addresses ([`keep`]).
    pub fn next(
        config: &Config,
        config_dir: &Path,
        opts: &Options,
        running: &Plan,
    ) -> anyhow::Result<Plan> {
        let mut plan = Plan::new(config, config_dir, opts)?;
        keep::fit(&mut plan, running)?;
        plan.refresh(config);
        Ok(plan)
    }

    /// The Services and hosts files again, from the pods that are not removed (after pods
    /// came or went).
    pub fn refresh(&mut self, config: &Config) {
        let pods: Vec<Pod> = (self.pods.iter())
            .filter(|p| !p.removed)
            .map(PodPlan::pod)
            .collect();
        self.services = services::plan(&Snapshot::build(config, &pods), &self.pods);
        self.hosts = hosts_files(config, &self.pods);
    }

    /// The plan as written out: without the pods removed while the mesh runs (Service
    /// backends renumbered to match).
    pub fn visible(&self) -> Plan {
        let mut out = self.clone();
        if !self.pods.iter().any(|p| p.removed) {
            return out;
        }
        let mut index = Vec::with_capacity(self.pods.len());
        let mut n = 0;
        for p in &self.pods {
            index.push((!p.removed).then_some(n));
            n += usize::from(!p.removed);
        }
        out.pods.retain(|p| !p.removed);
        for port in out.services.iter_mut().flat_map(|s| s.ports.iter_mut()) {
            port.backends = (port.backends.iter())
                .filter_map(|(i, to)| Some((index.get(*i).copied().flatten()?, *to)))
                .collect();
        }
        out
    }

    fn add_pods(
        &mut self,
        config: &Config,
        snap: &Snapshot,
        pod_cidr: Cidr,
        opts: &Options,
    ) -> anyhow::Result<()> {
        let mut workloads: Vec<_> = config
            .resources
            .iter()
            .filter_map(|l| match &l.resource {
                Resource::Workload(w) => Some((w, &l.origin.file)),
                _ => None,
            })
            .collect();
        workloads
            .sort_by_key(|(w, _)| (w.metadata.namespace().to_string(), w.metadata.name.clone()));
        let mut spread = Spread::new(self.nodes.clone());
        for (w, file) in workloads {
            let ns = w.metadata.namespace();
            let wl = &w.metadata.name;
            if w.spec.command.is_empty() {
                bail!(
                    "{file}: Workload {ns}/{wl} has no spec.command; `weft up` runs programs, not images"
                );
            }
            let base = Path::new(file).parent().unwrap_or(Path::new("."));
            let cwd = match &w.spec.working_dir {
                Some(d) => base.join(d),
                None => base.to_path_buf(),
            };
            let mut command: Vec<String> = w.spec.command.clone();
            command.extend(w.spec.args.iter().cloned());
            if command[0] == "weft" {
                command[0] = opts.weft.display().to_string();
            }
            for i in 0..w.spec.replicas {
                let n = self.pods.len() as u32 + 1;
                if n >= pod_cidr.hosts() {
                    bail!(
                        "podCidr {} has room for {} pods; the config asks for more",
                        self.pod_cidr,
                        pod_cidr.hosts() - 1
                    );
                }
                let name = format!("{wl}-{i}");
                let ip = pod_cidr.host(n);
                let who = format!("{file}: Workload {ns}/{wl}");
                let node = spread.next(w.spec.node_name.as_deref(), &who)?;
                let pod = Pod {
                    id: format!("{name}.{ns}"),
                    namespace: ns.to_string(),
                    workload: wl.clone(),
                    name: name.clone(),
                    ip: IpAddr::V4(ip),
                    service_account: w.spec.service_account_name.clone(),
                    labels: w.metadata.labels.clone(),
                    inbound: None,
                    tunnel: None,
                    node: node.clone(),
                    ready: true,
                };
                let settings = snap.proxy(&pod).settings;
                let mut env = vec![
                    ("POD_NAME".to_string(), name.clone()),
                    ("POD_NAMESPACE".to_string(), ns.to_string()),
                    ("POD_IP".to_string(), ip.to_string()),
                ];
                env.extend(w.spec.env.iter().map(|e| (e.name.clone(), e.value.clone())));
                self.pods.push(PodPlan {
                    namespace: ns.to_string(),
                    workload: wl.clone(),
                    netns: format!("{}-{ns}-{name}", self.name),
                    veth: format!("{}-{n}", self.name),
                    name,
                    ip,
                    command: command.clone(),
                    ready_port: w.spec.ports.first().map(|p| p.container_port),
                    env,
                    cwd: cwd.clone(),
                    labels: w.metadata.labels.clone(),
                    service_account: w.spec.service_account_name.clone(),
                    mode: settings.dataplane_mode,
                    node,
                    node_name: w.spec.node_name.clone(),
                    hold_application: settings.hold_application,
                    drain_seconds: settings.drain_duration.as_std().as_secs_f64(),
                    log_level: serde_json::to_value(settings.log_level)?
                        .as_str()
                        .unwrap_or("info")
                        .to_string(),
                    concurrency: settings.concurrency,
                    metrics: settings.metrics,
                    waypoint: false,
                    rev: revision_label(config, ns, &w.metadata.labels),
                    proxy_limits: Limits::proxy(&settings),
                    app_limits: w.spec.resources.as_ref().map(Limits::app),
                    removed: false,
                });
            }
        }
        self.add_waypoints(config, snap, pod_cidr, &mut spread)
    }

    /// One pod per waypoint Gateway, running `weft proxy --waypoint`: labelled with the
    /// Gateway's name (so it is its waypoint Service's endpoint) and running as service account
    /// NAME (the identity the waypoint's destinations admit).
    fn add_waypoints(
        &mut self,
        config: &Config,
        snap: &Snapshot,
        pod_cidr: Cidr,
        spread: &mut Spread,
    ) -> anyhow::Result<()> {
        let mut waypoints: Vec<_> = config
            .resources
            .iter()
            .filter_map(|l| match &l.resource {
                Resource::Gateway(g) if g.is_waypoint() => Some(g),
                _ => None,
            })
            .collect();
        waypoints.sort_by_key(|g| (g.metadata.namespace().to_string(), g.metadata.name.clone()));
        for g in waypoints {
            let n = self.pods.len() as u32 + 1;
            if n >= pod_cidr.hosts() {
                bail!(
                    "podCidr {} has room for {} pods; the config asks for more (waypoints run in pods too)",
                    self.pod_cidr,
                    pod_cidr.hosts() - 1
                );
            }
            let (ns, wl) = (g.metadata.namespace(), &g.metadata.name);
            let name = format!("{wl}-0");
            let who = format!("waypoint {ns}/{wl}");
            self.pods.push(PodPlan {
                namespace: ns.to_string(),
                workload: wl.clone(),
                netns: format!("{}-{ns}-{name}", self.name),
                veth: format!("{}-{n}", self.name),
                name,
                ip: pod_cidr.host(n),
                // The runtime writes its command: it needs the run directory's paths.
                command: Vec::new(),
                ready_port: None,
                env: Vec::new(),
                cwd: self.config_dir.clone(),
                labels: [(GATEWAY_NAME.to_string(), wl.clone())].into(),
                service_account: wl.clone(),
                mode: DataplaneMode::None,
                node: spread.next(None, &who)?,
                node_name: None,
                hold_application: false,
                drain_seconds: 5.0,
                log_level: "info".into(),
                concurrency: 2,
                metrics: true,
                waypoint: true,
                rev: revision_label(config, ns, &g.metadata.labels),
                proxy_limits: Limits::default(),
                // Its program is the waypoint's proxy: the Mesh's proxy resources, or its
                // Gateway's `weft.dev/proxy-*` annotations.
                app_limits: Some(Limits::proxy(&ProxySettings::resolve(
                    &snap.mesh,
                    &[&g.metadata.annotations],
                    &[],
                ))),
                removed: false,
            });
        }
        Ok(())
    }

    fn add_gateways(&mut self, config: &Config, opts: &Options) {
        for l in &config.resources {
            let Resource::Gateway(g) = &l.resource else {
                continue;
            };
            if g.spec.gateway_class_name != INGRESS_CLASS {
                continue;
            }
            let first_gateway = self.gateways.is_empty();
            let listeners: Vec<(u16, SocketAddr)> = g
                .spec
                .listeners
                .iter()
                .filter(|l| matches!(l.protocol.as_str(), "HTTP" | "HTTPS"))
                .enumerate()
                .map(|(i, l)| {
                    // Only the first listener of the first Gateway takes the chosen port.
                    let port = match opts.ingress_port {
                        Some(p) if first_gateway && i == 0 => p,
                        _ => l.port,
                    };
                    (l.port, SocketAddr::from(([127, 0, 0, 1], port)))
                })
                .collect();
            if !listeners.is_empty() {
                self.gateways.push(GatewayPlan {
                    namespace: g.metadata.namespace().to_string(),
                    name: g.metadata.name.clone(),
                    listeners,
                });
            }
        }
    }

    /// What the pods run in, in one line: `4 pods: 1 with a sidecar, 3 ambient (node-1: 2,
    /// node-2: 1), none without a proxy`, and `, 1 waypoint` when there are waypoints.
    pub fn summary(&self) -> String {
        let count = |f: &dyn Fn(&PodPlan) -> bool| self.pods.iter().filter(|p| f(p)).count();
        let per_node: Vec<String> = (self.nodes.iter())
            .map(|n| (n, count(&|p| p.ambient() && &p.node == n)))
            .filter(|(_, k)| *k > 0)
            .map(|(n, k)| format!("{n}: {k}"))
            .collect();
        let ambient = match per_node.is_empty() {
            true => "none ambient".to_string(),
            false => format!(
                "{} ambient ({})",
                count(&PodPlan::ambient),
                per_node.join(", ")
            ),
        };
        let none = match count(&|p| !p.captured() && !p.waypoint) {
            0 => "none".to_string(),
            k => k.to_string(),
        };
        let waypoints = match count(&|p| p.waypoint) {
            0 => String::new(),
            1 => ", 1 waypoint".to_string(),
            k => format!(", {k} waypoints"),
        };
        format!(
            "{} pods: {} with a sidecar, {ambient}, {none} without a proxy{waypoints}",
            self.pods.len(),
            count(&PodPlan::sidecar)
        )
    }

    /// Pod `NAMESPACE/NAME`, `NAME` when only one namespace has one, or `NAME.NAMESPACE` (a
    /// proxy's id); `pod/` in front is allowed.
    pub fn pod(&self, name: &str) -> Option<&PodPlan> {
        let name = name.strip_prefix("pod/").unwrap_or(name);
        let mut same = self.pods.iter().filter(|p| p.name == name);
        if let (Some(one), None) = (same.next(), same.next()) {
            return Some(one);
        }
        (self.pods.iter()).find(|p| p.id() == name || format!("{}.{}", p.name, p.namespace) == name)
    }

    /// The pods file: the pods whose processes are ready, which the control plane serves as
    /// endpoints.
    pub fn pods_file(dir: &Path) -> PathBuf {
        dir.join("pods.json")
    }

    /// Where the control plane serves discovery and the CA over mTLS, for the proxies.
    pub fn discovery(&self) -> SocketAddr {
        SocketAddr::from((self.host_ip, ports::SECURE_DISCOVERY))
    }

    /// The mesh root the proxies pin when they first reach the control plane (the CA's root,
    /// generated in the run directory's state).
    pub fn ca_root(dir: &Path) -> PathBuf {
        dir.join("state").join("ca").join("root-cert.pem")
    }
}

/// `/etc/hosts` for the pods of each namespace: Services by `name.ns` and
/// `name.ns.svc.cluster.local`, and by bare `name` in their own namespace; pods by name.
fn hosts_files(config: &Config, pods: &[PodPlan]) -> BTreeMap<String, String> {
    let snap = Snapshot::build(config, &[]);
    let mut namespaces: Vec<String> = (pods.iter())
        .filter(|p| !p.removed)
        .map(|p| p.namespace.clone())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let mut out = BTreeMap::new();
    for ns in namespaces {
        let mut text = String::from(
            "# Written by weft up.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n",
        );
        for svc in snap.services.values() {
            let Some(vip) = svc.vip else { continue };
            let names: Vec<&str> = svc
                .hostnames
                .iter()
                .map(String::as_str)
                .filter(|h| h.contains('.') || svc.namespace == ns)
                .collect();
            text.push_str(&format!("{vip}\t{}\n", names.join(" ")));
        }
        for p in pods.iter().filter(|p| p.namespace == ns && !p.removed) {
            text.push_str(&format!("{}\t{}\n", p.ip, p.name));
        }
        out.insert(ns, text);
    }
    out
}

/// Loads and analyzes `dir`; any error stops `weft up` before anything starts.
pub fn load(dir: &Path) -> anyhow::Result<Config> {
    weft_core::analyze::load_checked(dir).map_err(|problems| {
        anyhow::anyhow!(
            "the configuration in {} has errors; nothing was started:\n{}",
            dir.display(),
            problems.join("\n")
        )
    })
}

#[cfg(test)]
mod tests;

/// The revision label that applies to a workload in namespace `ns`: its own, else its
/// Namespace's (`weft.dev/rev`, or Istio's `istio.io/rev`). Two that disagree on one object
/// are an analyzer error (WEFT0701), so a plan never sees them.
fn revision_label(config: &Config, ns: &str, labels: &BTreeMap<String, String>) -> Option<String> {
    let empty = BTreeMap::new();
    let ns_labels = config
        .resources
        .iter()
        .find_map(|r| match &r.resource {
            Resource::Namespace(n) if n.metadata.name == ns => Some(&n.metadata.labels),
            _ => None,
        })
        .unwrap_or(&empty);
    let found = weft_core::annotations::revision_label(ns_labels, labels);
    found.ok().flatten().map(|r| r.value)
}
