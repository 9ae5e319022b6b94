//! The processes `weft up` supervises, as [`Spec`]s: the control plane, sidecars, node proxies
//! and gateways (from the typed launch contract in [`crate::launch`]) and apps, with their
//! logs, readiness probes, the files they report their addresses in, and grace periods.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::PROXY_MARK;
use super::controls::Serving;
use crate::cgroup::Limits;
use crate::credentials::token_file;
use crate::launch::{GatewayLaunch, NodeLaunch, ProxyLaunch, WaypointLaunch};
use crate::net;
use crate::plan::{GatewayPlan, Plan, PodPlan};
use crate::ports;
use crate::readiness::Probe;
use crate::rundir::RunDir;
use crate::supervise::limits::Limited;
use crate::supervise::{Slot, Spec};

/// Time an app gets between SIGTERM and SIGKILL.
const APP_GRACE: Duration = Duration::from_secs(10);

/// Where a pod's proxy reports its addresses.
pub(super) fn proxy_addresses(dir: &RunDir, pod: &PodPlan) -> PathBuf {
    dir.addresses(&format!("pod-{}.{}", pod.namespace, pod.name))
}

/// Where a gateway reports its addresses.
pub(super) fn gateway_addresses(dir: &RunDir, g: &GatewayPlan) -> PathBuf {
    dir.addresses(&format!("gateway-{}.{}", g.namespace, g.name))
}

/// Where the node proxy of `node` reports its addresses.
pub(super) fn node_addresses(dir: &RunDir, node: &str) -> PathBuf {
    dir.addresses(&format!("node-{node}"))
}

/// The hand-off path of `node`'s proxy: each new process of it takes the listeners of the
/// one running there.
pub(super) fn handoff_path(dir: &RunDir, node: &str) -> PathBuf {
    dir.path.join("handoff").join(format!("{node}.sock"))
}

/// The enrolment file of `node`: the ambient pods its proxy serves.
pub(super) fn enrolment_file(dir: &RunDir, node: &str) -> PathBuf {
    dir.path.join(format!("enrolled-{node}.json"))
}

/// The namespace, service account and workload a node proxy's credential registers.
pub const NODE_NAMESPACE: &str = "weft-system";
pub(crate) const NODE_ACCOUNT: &str = "weft-node";

/// Host ports of the host-side proxies: gateway `i` serves readiness and metrics 1000·i above
/// the conventional ports, node proxy `i` 1000·i + 500 above, so none collide.
pub(crate) fn host_port_offset(i: usize, node: bool) -> u16 {
    1000 * i as u16 + if node { 500 } else { 0 }
}

/// The pod name a gateway proxy goes by.
pub fn gateway_pod(g: &GatewayPlan) -> String {
    format!("gateway-{}", g.name)
}

/// The limits of process `container` of `pod`, and its group in this instance.
fn limited(
    dir: &RunDir,
    pod: &PodPlan,
    container: &str,
    limits: Option<Limits>,
) -> Option<Limited> {
    Limited::new(&dir.name(), &pod.namespace, &pod.name, container, limits)
}

/// The binary followed by its arguments.
fn argv(weft: &Path, args: Vec<String>) -> Vec<String> {
    std::iter::once(weft.display().to_string())
        .chain(args)
        .collect()
}

fn pod_log(dir: &RunDir, pod: &PodPlan, proxy: bool) -> PathBuf {
    let suffix = if proxy { ".proxy" } else { "" };
    dir.log(&format!("{}/{}{suffix}", pod.namespace, pod.name))
}

/// Pod `i`'s sidecar, on revision `rev` (its binary, its control plane).
pub(super) fn proxy_spec(
    plan: &Plan,
    pod: &PodPlan,
    i: usize,
    rev: &Serving,
    dir: &RunDir,
) -> Spec {
    let weft = rev.binary.as_path();
    let launch = ProxyLaunch {
        control_plane: format!("https://{}", rev.discovery),
        ca_root: Plan::ca_root(&dir.path),
        trust_domain: plan.trust_domain.clone(),
        namespace: pod.namespace.clone(),
        workload: pod.workload.clone(),
        pod: pod.name.clone(),
        ip: pod.ip.into(),
        service_account: pod.service_account.clone(),
        labels: pod.labels.clone().into_iter().collect(),
        mark: Some(PROXY_MARK),
        log_level: Some(pod.log_level.clone()),
        concurrency: Some(pod.concurrency.max(1)),
        bootstrap_token_file: token_file(&dir.path, &pod.namespace, &pod.name),
        gateway: None,
        admin: None,
        metrics: Some(ports::any(plan.metrics_port)),
        readiness: None,
        addresses_file: Some(proxy_addresses(dir, pod)),
        revision: Some(rev.revision.clone()),
    };
    Spec {
        label: format!("pod {} proxy", pod.id()),
        slot: Slot::Proxy(i),
        argv: argv(weft, launch.to_args()),
        env: vec![],
        cwd: None,
        pod: Some((net::netns_path(&pod.netns), dir.etc_dir(&pod.namespace))),
        weft: weft.to_path_buf(),
        log: pod_log(dir, pod, true),
        ready: Some(Probe::Http(
            SocketAddr::from((pod.ip, ports::READINESS)),
            "/healthz/ready",
        )),
        addresses: Some(proxy_addresses(dir, pod)),
        grace: Duration::from_secs_f64(pod.drain_seconds + 5.0),
        limits: limited(dir, pod, "proxy", Some(pod.proxy_limits)),
    }
}

/// The argv of a waypoint's pod: `weft proxy --waypoint`, on revision `rev`.
fn waypoint_argv(plan: &Plan, pod: &PodPlan, rev: &Serving, dir: &RunDir) -> Vec<String> {
    let launch = WaypointLaunch {
        control_plane: format!("https://{}", rev.discovery),
        ca_root: Plan::ca_root(&dir.path),
        trust_domain: plan.trust_domain.clone(),
        namespace: pod.namespace.clone(),
        name: pod.workload.clone(),
        pod: pod.name.clone(),
        ip: pod.ip.into(),
        log_level: Some(pod.log_level.clone()),
        bootstrap_token_file: token_file(&dir.path, &pod.namespace, &pod.name),
        tunnel: ports::any(ports::TUNNEL),
        admin: ports::localhost(ports::PROXY_ADMIN),
        metrics: ports::any(plan.metrics_port),
        readiness: ports::any(ports::READINESS),
        revision: Some(rev.revision.clone()),
    };
    argv(&rev.binary, launch.to_args())
}

/// Pod `i`'s app (a waypoint's pod runs the waypoint on revision `rev`).
pub(super) fn app_spec(
    plan: &Plan,
    pod: &PodPlan,
    i: usize,
    weft: &Path,
    rev: &Serving,
    dir: &RunDir,
) -> Spec {
    let (argv, ready) = match pod.waypoint {
        // Ready when the waypoint says so: its config and certificate are in.
        true => (
            waypoint_argv(plan, pod, rev, dir),
            Some(Probe::Http(
                SocketAddr::from((pod.ip, ports::READINESS)),
                "/healthz/ready",
            )),
        ),
        // Ready once its first declared port accepts connections (like a TCP probe).
        false => (
            pod.command.clone(),
            pod.ready_port.map(|port| Probe::Tcp {
                netns: pod.netns.clone(),
                addr: SocketAddr::from((pod.ip, port)),
                mark: PROXY_MARK,
                proxy_ports: ports::proxy_ports(plan.metrics_port),
            }),
        ),
    };
    Spec {
        label: format!("pod {} app", pod.id()),
        slot: Slot::App(i),
        argv,
        env: pod.env.clone(),
        cwd: Some(pod.cwd.clone()),
        pod: Some((net::netns_path(&pod.netns), dir.etc_dir(&pod.namespace))),
        weft: weft.to_path_buf(),
        log: pod_log(dir, pod, false),
        ready,
        addresses: None,
        grace: APP_GRACE,
        limits: limited(dir, pod, "app", pod.app_limits),
    }
}

pub(super) fn gateway_spec(
    plan: &Plan,
    g: &GatewayPlan,
    i: usize,
    weft: &Path,
    dir: &RunDir,
) -> Spec {
    // Readiness and metrics on the host's bridge address: unique to this instance.
    let offset = host_port_offset(i, false);
    let readiness = SocketAddr::from((plan.host_ip, ports::READINESS + offset));
    let launch = ProxyLaunch {
        control_plane: format!("https://{}", plan.discovery()),
        ca_root: Plan::ca_root(&dir.path),
        trust_domain: plan.trust_domain.clone(),
        namespace: g.namespace.clone(),
        workload: g.name.clone(),
        pod: gateway_pod(g),
        ip: plan.host_ip.into(),
        service_account: g.name.clone(),
        labels: vec![],
        mark: None,
        log_level: None,
        concurrency: None,
        bootstrap_token_file: token_file(&dir.path, &g.namespace, &gateway_pod(g)),
        gateway: Some(GatewayLaunch {
            namespace: g.namespace.clone(),
            name: g.name.clone(),
            listen: g.listeners.clone(),
        }),
        admin: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        metrics: Some(SocketAddr::from((
            plan.host_ip,
            plan.metrics_port.saturating_add(offset),
        ))),
        readiness: Some(readiness),
        addresses_file: Some(gateway_addresses(dir, g)),
        revision: None,
    };
    Spec {
        label: format!("gateway {}/{}", g.namespace, g.name),
        slot: Slot::Gateway(i),
        argv: argv(weft, launch.to_args()),
        env: vec![],
        cwd: None,
        pod: None,
        weft: weft.to_path_buf(),
        log: dir.log(&format!("gateway-{}-{}", g.namespace, g.name)),
        ready: Some(Probe::Http(readiness, "/healthz/ready")),
        addresses: Some(gateway_addresses(dir, g)),
        grace: Duration::from_secs(10),
        limits: None,
    }
}

/// The node proxy of the plan's node `i`: on the host, serving the ambient pods listed in its
/// enrolment file, with listeners inside their namespaces.
pub(super) fn node_spec(plan: &Plan, i: usize, weft: &Path, dir: &RunDir) -> Spec {
    let node = &plan.nodes[i];
    let offset = host_port_offset(i, true);
    let readiness = SocketAddr::from((plan.host_ip, ports::READINESS + offset));
    let launch = NodeLaunch {
        control_plane: format!("https://{}", plan.discovery()),
        ca_root: Plan::ca_root(&dir.path),
        trust_domain: plan.trust_domain.clone(),
        node: node.clone(),
        // It runs on the host and reaches the control plane from its bridge address.
        ip: plan.host_ip.into(),
        enrolled: enrolment_file(dir, node),
        mark: PROXY_MARK,
        log_level: None,
        bootstrap_token_file: token_file(&dir.path, NODE_NAMESPACE, node),
        admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        metrics: SocketAddr::from((plan.host_ip, plan.metrics_port.saturating_add(offset))),
        readiness,
        addresses_file: Some(node_addresses(dir, node)),
        handoff: Some(handoff_path(dir, node)),
        revision: None,
    };
    Spec {
        label: format!("node proxy {node}"),
        slot: Slot::Node(i),
        argv: argv(weft, launch.to_args()),
        env: vec![],
        cwd: None,
        pod: None,
        weft: weft.to_path_buf(),
        log: dir.log(&format!("nodes/{node}")),
        ready: Some(Probe::Http(readiness, "/healthz/ready")),
        addresses: Some(node_addresses(dir, node)),
        grace: Duration::from_secs(10),
        limits: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Options;

    const MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {metrics: {port: 15090}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop}
spec: {command: [web]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: weft
  listeners: [{name: http, port: 8080, protocol: HTTP}]
"#;

    fn plan(yaml: &str) -> Plan {
        let out = weft_core::parse_str("/cfg/mesh.yaml", yaml);
        assert!(out.is_ok(), "{:?}", out.errors);
        let opts = Options {
            name: "t1".into(),
            weft: "/usr/bin/weft".into(),
            ingress_port: None,
            admin: "127.0.0.1:15014".parse().unwrap(),
        };
        Plan::new(&out.config, Path::new("/cfg"), &opts).unwrap()
    }

    /// The value after `flag` in `argv`.
    fn arg<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
        let i = argv.iter().position(|a| a == flag)?;
        argv.get(i + 1).map(String::as_str)
    }

    #[test]
    fn the_meshs_metrics_port_is_where_every_proxy_serves_metrics() {
        let p = plan(MESH);
        assert_eq!(p.metrics_port, 15090);
        let dir = RunDir {
            path: "/run/weft/t1".into(),
        };
        let weft = Path::new("/usr/bin/weft");
        let rev = Serving {
            revision: "v0-1-0".into(),
            binary: weft.into(),
            discovery: "198.18.0.1:40000".parse().unwrap(),
        };
        let sidecar = proxy_spec(&p, &p.pods[0], 0, &rev, &dir);
        assert_eq!(sidecar.argv[0], "/usr/bin/weft");
        assert_eq!(
            arg(&sidecar.argv, "--control-plane"),
            Some("https://198.18.0.1:40000")
        );
        assert_eq!(arg(&sidecar.argv, "--metrics"), Some("0.0.0.0:15090"));
        let gateway = gateway_spec(&p, &p.gateways[0], 0, weft, &dir);
        let host = p.host_ip;
        assert_eq!(
            arg(&gateway.argv, "--metrics"),
            Some(format!("{host}:15090").as_str())
        );
        // Without a Mesh, the conventional port.
        let default = plan(MESH.split_once("---").unwrap().1);
        let sidecar = proxy_spec(&default, &default.pods[0], 0, &rev, &dir);
        let want = ports::any(ports::METRICS).to_string();
        assert_eq!(arg(&sidecar.argv, "--metrics"), Some(want.as_str()));
        assert_eq!(ports::inbound_exempt(15090), [15008, 15090, 15021]);
    }

    #[test]
    fn node_proxies_and_gateways_take_host_ports_that_do_not_collide() {
        let yaml = MESH.replace(
            "spec: {metrics: {port: 15090}}",
            "spec: {network: {nodes: 3}}",
        );
        let p = plan(&yaml);
        let dir = RunDir {
            path: "/run/weft/t1".into(),
        };
        let weft = Path::new("/usr/bin/weft");
        let mut taken = vec![];
        for i in 0..3 {
            let node = node_spec(&p, i, weft, &dir);
            assert_eq!(node.slot, Slot::Node(i));
            taken.push(arg(&node.argv, "--readiness").unwrap().to_string());
            taken.push(arg(&node.argv, "--metrics").unwrap().to_string());
            assert_eq!(arg(&node.argv, "--node"), Some(p.nodes[i].as_str()));
            assert_eq!(
                arg(&node.argv, "--mark"),
                Some(PROXY_MARK.to_string().as_str())
            );
        }
        let gateway = gateway_spec(&p, &p.gateways[0], 0, weft, &dir);
        taken.push(arg(&gateway.argv, "--readiness").unwrap().to_string());
        taken.push(arg(&gateway.argv, "--metrics").unwrap().to_string());
        let host = p.host_ip;
        assert_eq!(taken[0], format!("{host}:15521"));
        assert_eq!(taken[2], format!("{host}:16521"));
        let mut unique = taken.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), taken.len(), "{taken:?}");
        let node = node_spec(&p, 1, weft, &dir);
        assert_eq!(
            arg(&node.argv, "--enrolled"),
            Some("/run/weft/t1/enrolled-node-2.json")
        );
        assert_eq!(
            arg(&node.argv, "--bootstrap-token-file"),
            Some("/run/weft/t1/tokens/weft-system/node-2")
        );
        assert_eq!(
            arg(&node.argv, "--handoff"),
            Some("/run/weft/t1/handoff/node-2.sock")
        );
    }

    /// Every weft process logs JSON lines, and so does the launcher that starts a pod's
    /// proxy (its error would be a line of the proxy's log); an app's launcher writes text.
    #[test]
    fn weft_processes_and_their_launcher_log_json_and_an_apps_does_not() {
        let p = plan(MESH);
        let dir = RunDir {
            path: "/run/weft/t1".into(),
        };
        let weft = Path::new("/usr/bin/weft");
        let rev = Serving {
            revision: "v0-1-0".into(),
            binary: weft.into(),
            discovery: "198.18.0.1:40000".parse().unwrap(),
        };
        let args = |spec: &Spec| -> Vec<String> {
            let cmd = spec.command().unwrap();
            (cmd.as_std().get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let sidecar = proxy_spec(&p, &p.pods[0], 0, &rev, &dir);
        assert_eq!(arg(&sidecar.argv, "--log-format"), Some("json"));
        let launcher = args(&sidecar);
        let split = launcher.iter().position(|a| a == "--").unwrap();
        assert_eq!(launcher[0], "pod-exec");
        assert_eq!(arg(&launcher[..split], "--log-format"), Some("json"));
        let gateway = gateway_spec(&p, &p.gateways[0], 0, weft, &dir);
        assert_eq!(arg(&gateway.argv, "--log-format"), Some("json"));
        let app = app_spec(&p, &p.pods[0], 0, weft, &rev, &dir);
        let launcher = args(&app);
        let split = launcher.iter().position(|a| a == "--").unwrap();
        assert_eq!(
            arg(&launcher[..split], "--log-format"),
            None,
            "{launcher:?}"
        );
    }
}
