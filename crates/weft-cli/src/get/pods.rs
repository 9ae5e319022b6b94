//! `weft get pods`: every pod of the mesh with its role — the workloads' (and waypoints'), then
//! the mesh's own: each ingress gateway, each running node proxy, each control plane (and the
//! Prometheus of `weft up --prometheus`), named as [`crate::names`] says. Each row says
//! whether the pod is ready, why not, and what proxy serves it; `-o json` has the same pods,
//! each with a `role` (`workload`, `waypoint`, `gateway`, `node-proxy`, `control-plane`,
//! `prometheus`).

use serde_json::{Value, json};
use weft_local::plan::Plan;
use weft_local::runtime::{NODE_NAMESPACE, gateway_pod};
use weft_local::status::{PodStatus, Process, Status};
use weft_local::supervise::limits::{OOM_KILLED, oom_kill};

use super::{Item, age};

const COLUMNS: [&str; 11] = [
    "NAMESPACE",
    "NAME",
    "READY",
    "STATUS",
    "RESTARTS",
    "IP",
    "MODE",
    "NODE",
    "PROXY",
    "AGE",
    "REASON",
];

pub fn list(plan: &Plan, status: &Status) -> (&'static [&'static str], Vec<Item>) {
    let mut items: Vec<Item> = status.pods.iter().map(workload_pod).collect();
    let host = plan.host_ip.to_string();
    for (g, named) in plan.gateways.iter().zip(&status.gateways) {
        let pod = System {
            namespace: &g.namespace,
            name: gateway_pod(g),
            role: "gateway",
            workload: &g.name,
            ip: &host,
            node: "-",
            process: &named.process,
            proxy: "itself (gateway)",
        };
        items.push(pod.item());
    }
    for n in status.nodes.iter().filter(|n| n.process.state != "none") {
        let pod = System {
            namespace: NODE_NAMESPACE,
            name: n.name.clone(),
            role: "node-proxy",
            workload: "weft-node",
            ip: &host,
            node: &n.name,
            process: &n.process,
            proxy: "itself (node proxy)",
        };
        items.push(pod.item());
    }
    let revisions = (status.revisions.iter()).filter(|r| r.process.state != "uninstalled");
    let prometheus = status.prometheus.iter();
    for (named, role) in
        (revisions.map(|r| (r, "control-plane"))).chain(prometheus.map(|p| (p, "prometheus")))
    {
        let name = match role {
            "control-plane" => format!("control-{}", named.name),
            _ => named.name.clone(),
        };
        let pod = System {
            namespace: NODE_NAMESPACE,
            name,
            role,
            workload: role,
            ip: &host,
            node: "-",
            process: &named.process,
            proxy: "-",
        };
        items.push(pod.item());
    }
    (&COLUMNS, items)
}

/// A workload's (or waypoint's) pod: its app, and its sidecar or the node proxy serving it.
fn workload_pod(p: &PodStatus) -> Item {
    // An ambient pod's proxy is its node's, serving it: it counts, it has no process.
    let procs: Vec<&Process> = match p.mode.as_str() {
        "sidecar" | "ambient" => vec![&p.proxy, &p.app],
        _ => vec![&p.app],
    };
    let ready = procs.iter().filter(|p| p.state == "ready").count();
    let restarts: u32 = procs.iter().map(|p| p.restarts).sum();
    let row = vec![
        p.namespace.clone(),
        p.name.clone(),
        format!("{ready}/{}", procs.len()),
        pod_state(p),
        restarts.to_string(),
        p.ip.clone(),
        p.mode.clone(),
        p.node.clone(),
        proxy(p),
        age(p.proxy.started_at_ms.or(p.app.started_at_ms)),
        // Why it is not ready; empty when it is.
        (p.not_ready(weft_local::status::now_ms()))
            .map(|r| r.reason)
            .unwrap_or_default(),
    ];
    let mut json = serde_json::to_value(p).unwrap_or(Value::Null);
    let role = match p.mode.as_str() {
        "waypoint" => "waypoint",
        _ => "workload",
    };
    json["role"] = role.into();
    Item {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        row,
        json,
    }
}

/// What serves the pod's traffic: its sidecar, its node's proxy, or nothing.
fn proxy(p: &PodStatus) -> String {
    match (p.mode.as_str(), &p.served_by) {
        ("sidecar", _) => "sidecar".into(),
        ("ambient", Some(node)) => format!("node proxy {node}"),
        ("ambient", None) => format!("none yet ({})", p.proxy.state),
        ("waypoint", _) => "itself (waypoint)".into(),
        _ => "-".into(),
    }
}

/// One word for a pod, with the reason when it is not running.
fn pod_state(p: &PodStatus) -> String {
    let crash = |who: &str, proc: &Process| match proc.last_exit.as_deref() {
        Some(e) if oom_kill(e) => format!("{OOM_KILLED}({who})"),
        e => format!("CrashLoop({who}: {})", e.unwrap_or("exited")),
    };
    match (p.proxy.state.as_str(), p.app.state.as_str()) {
        ("restarting", _) => crash("proxy", &p.proxy),
        (_, "restarting") => crash("app", &p.app),
        ("enrolling", "waiting") => "WaitingForNodeProxy".into(),
        (_, "waiting") => "WaitingForProxy".into(),
        (_, "stopped") => "Stopped".into(),
        _ => "Running".into(),
    }
}

/// One of the mesh's own pods: a single process with a role.
struct System<'a> {
    namespace: &'a str,
    name: String,
    role: &'static str,
    workload: &'a str,
    ip: &'a str,
    node: &'a str,
    process: &'a Process,
    proxy: &'static str,
}

impl System<'_> {
    fn item(&self) -> Item {
        let p = self.process;
        let state = match p.state.as_str() {
            "restarting" => format!(
                "CrashLoop({}: {})",
                self.role,
                p.last_exit.as_deref().unwrap_or("exited")
            ),
            "ready" | "running" => "Running".into(),
            "stopped" => "Stopped".into(),
            "waiting" => "Waiting".into(),
            _ => "Starting".into(),
        };
        let row = vec![
            self.namespace.to_string(),
            self.name.clone(),
            format!("{}/1", u8::from(p.state == "ready")),
            state,
            p.restarts.to_string(),
            self.ip.to_string(),
            self.role.to_string(),
            self.node.to_string(),
            self.proxy.to_string(),
            age(p.started_at_ms),
            String::new(),
        ];
        // The shape of a workload's pod: a proxy's process is its `proxy`, any other its `app`.
        let none = json!({"state": "none", "restarts": 0});
        let process = serde_json::to_value(p).unwrap_or(Value::Null);
        let (proxy, app) = match self.proxy {
            "-" => (none, process),
            _ => (process, none),
        };
        let json = json!({
            "namespace": self.namespace,
            "name": self.name,
            "workload": self.workload,
            "role": self.role,
            "mode": self.role,
            "ip": self.ip,
            "node": if self.node == "-" { "" } else { self.node },
            "sidecar": false,
            "proxy": proxy,
            "app": app,
        });
        Item {
            namespace: self.namespace.to_string(),
            name: self.name.clone(),
            row,
            json,
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_local::plan::Options;
    use weft_local::status::Named;

    use super::*;

    const MESH: &str = "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: web, namespace: shop}\nspec: {command: [web]}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ingress, namespace: shop}\nspec:\n  gatewayClassName: weft\n  listeners: [{name: http, port: 8080, protocol: HTTP}]\n";

    fn process(state: &str) -> Process {
        Process {
            state: state.into(),
            ..Process::default()
        }
    }

    /// The gateway, a running node proxy and the control plane are pods with their role; a
    /// node proxy that never started and an uninstalled control plane are not.
    #[test]
    fn the_meshs_own_processes_are_pods_with_their_role() {
        let outcome = weft_core::parse_str("/cfg/mesh.yaml", MESH);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        let opts = Options {
            name: "t".into(),
            weft: "/usr/bin/weft".into(),
            ingress_port: None,
            admin: "127.0.0.1:15014".parse().unwrap(),
        };
        let plan = Plan::new(&outcome.config, std::path::Path::new("/cfg"), &opts).unwrap();
        let named = |name: &str, state: &str| Named {
            name: name.into(),
            process: process(state),
        };
        let status = Status {
            pods: vec![PodStatus {
                namespace: "shop".into(),
                name: "web-0".into(),
                mode: "sidecar".into(),
                proxy: process("ready"),
                app: process("ready"),
                ..PodStatus::default()
            }],
            gateways: vec![named("shop/ingress", "ready")],
            nodes: vec![named("node-1", "ready"), named("node-2", "none")],
            revisions: vec![named("v1", "ready"), named("old", "uninstalled")],
            ..Status::default()
        };
        let (_, items) = list(&plan, &status);
        let rows: Vec<(String, &str, &str)> = (items.iter())
            .map(|i| {
                (
                    format!("{}/{}", i.namespace, i.name),
                    i.row[6].as_str(),
                    i.json["role"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("shop/web-0".to_string(), "sidecar", "workload"),
                ("shop/gateway-ingress".into(), "gateway", "gateway"),
                ("weft-system/node-1".into(), "node-proxy", "node-proxy"),
                (
                    "weft-system/control-v1".into(),
                    "control-plane",
                    "control-plane"
                ),
            ]
        );
        let gateway = &items[1];
        assert_eq!(gateway.row[2..4], ["1/1", "Running"]);
        assert_eq!(gateway.json["proxy"]["state"], "ready");
        assert_eq!(gateway.json["app"]["state"], "none");
    }
}
