//! `weft analyze --live`: the running mesh's faults that no file shows, as findings with a fix:
//! pods not ready (and crash loops), proxies that rejected their config or are stale,
//! certificates whose renewal is overdue, Services without a ready endpoint, workloads without
//! a proxy that a policy or STRICT mTLS is meant to cover, apps not listening on the ports they
//! declare, and recent denials by policy.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use weft_core::analyze::Severity;
use weft_core::resources::mesh::MtlsMode;

use crate::diagnose::facts::Facts;
use crate::diagnose::probe::listening_ports;

/// Restarts past which a pod is crash-looping.
const CRASH_LOOP: u32 = 3;
/// How far back denials count.
const RECENT_MS: u64 = 15 * 60 * 1000;

/// The live checks, with their codes, for `--explain` and the docs.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "WEFT0901",
        "pod not ready, or crash-looping (with its last exit)",
    ),
    (
        "WEFT0902",
        "proxy rejected (NACKED) its config, or is STALE",
    ),
    ("WEFT0903", "workload certificate renewal overdue"),
    ("WEFT0904", "Service without a ready endpoint"),
    (
        "WEFT0905",
        "workload without a proxy that a policy or STRICT mTLS should cover",
    ),
    (
        "WEFT0906",
        "app not listening on a port it declares or a Service targets",
    ),
    (
        "WEFT0907",
        "requests denied by an AuthorizationPolicy recently",
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    /// `Pod/ns/name`, `Service/ns/name`, `Proxy/id`.
    pub object: String,
    pub message: String,
    pub fix: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "live: {} {}: {} [{}]\n  fix: {}",
            self.severity, self.code, self.message, self.object, self.fix
        )
    }
}

/// What the control plane says: its proxies (`/debug/syncz`) and its CA (`/debug/ca`).
pub struct Control {
    pub syncz: Option<Value>,
    pub ca: Option<Value>,
}

pub fn check(f: &Facts, control: &Control) -> Vec<Finding> {
    let mut out = Vec::new();
    pods(f, &mut out);
    proxies(control, &mut out);
    certificates(control, &mut out);
    services(f, &mut out);
    unproxied(f, &mut out);
    ports(f, &mut out);
    denials(f, &mut out);
    out
}

fn add(
    out: &mut Vec<Finding>,
    code: &'static str,
    severity: Severity,
    object: String,
    message: String,
    fix: String,
) {
    out.push(Finding {
        code,
        severity,
        object,
        message,
        fix,
    });
}

fn pods(f: &Facts, out: &mut Vec<Finding>) {
    for p in &f.status.pods {
        if p.ready() || p.terminating {
            continue;
        }
        let object = format!("Pod/{}/{}", p.namespace, p.name);
        let logs = format!("`weft logs {}/{}`", p.namespace, p.name);
        let why = p.not_ready(weft_local::status::now_ms());
        let (message, fix) = match (&p.app.last_exit, p.app.restarts) {
            _ if why.is_some() && p.app.restarts < CRASH_LOOP => {
                let why = why.expect("checked");
                let fix = why
                    .fix
                    .unwrap_or_else(|| format!("{logs} shows the app's output"));
                (
                    format!("{}/{} is not ready: {}", p.namespace, p.name, why.reason),
                    fix,
                )
            }
            (Some(exit), n) if n >= CRASH_LOOP => (
                format!(
                    "{}/{} is crash-looping: its app {exit}, {n} restarts",
                    p.namespace, p.name
                ),
                format!("{logs} shows why the app exits; fix its command or config"),
            ),
            (Some(exit), n) => (
                format!(
                    "{}/{} is not ready: its app {exit} ({n} restarts), now {}",
                    p.namespace, p.name, p.app.state
                ),
                format!("{logs} shows the app's output"),
            ),
            _ if matches!(p.mode.as_str(), "sidecar" | "ambient") && p.proxy.state != "ready" => (
                format!(
                    "{}/{} is not ready: its proxy is {}",
                    p.namespace, p.name, p.proxy.state
                ),
                format!("{logs} --proxy shows why"),
            ),
            _ => (
                format!(
                    "{}/{} is not ready: its app is {}",
                    p.namespace, p.name, p.app.state
                ),
                format!(
                    "{logs}; an app is ready when it accepts connections on its first declared port"
                ),
            ),
        };
        add(out, "WEFT0901", Severity::Error, object, message, fix);
    }
}

fn proxies(control: &Control, out: &mut Vec<Finding>) {
    let Some(list) = control.syncz.as_ref().and_then(Value::as_array) else {
        return;
    };
    for p in list {
        let id = p["node"]["id"].as_str().unwrap_or("?");
        for (ty, t) in p["types"].as_object().into_iter().flatten() {
            let ty = ty.trim_start_matches("weft.dev/");
            match t["state"].as_str() {
                Some("NACKED") => add(
                    out, "WEFT0902", Severity::Error, format!("Proxy/{id}"),
                    format!("proxy {id} rejected its {ty} config: {}", t["nack"]["error"].as_str().unwrap_or("?")),
                    "fix what the message names (it keeps its last good config meanwhile); `weft diagnose` shows what it breaks".into(),
                ),
                Some("STALE") => add(
                    out, "WEFT0902", Severity::Warning, format!("Proxy/{id}"),
                    format!("proxy {id} is STALE on {ty}: it has not acknowledged the newest config"),
                    format!("check its log (`weft logs {id} --proxy`) and its connection to the control plane"),
                ),
                _ => {}
            }
        }
    }
}

fn certificates(control: &Control, out: &mut Vec<Finding>) {
    let overdue = control
        .ca
        .as_ref()
        .and_then(|c| c["renewalOverdue"].as_array().cloned())
        .unwrap_or_default();
    for o in overdue {
        let pod = o["pod"].as_str().unwrap_or("?");
        add(
            out,
            "WEFT0903",
            Severity::Error,
            format!("Pod/{pod}"),
            format!(
                "the certificate of {pod} ({}) expires in {}s and has not been renewed",
                o["identity"].as_str().unwrap_or("?"),
                o["expiresInSeconds"]
            ),
            format!("its proxy cannot reach the CA: `weft logs {pod} --proxy`"),
        );
    }
}

fn services(f: &Facts, out: &mut Vec<Finding>) {
    for s in f.snapshot.services.values() {
        if !s.endpoints.is_empty() || s.vip.is_none() {
            continue;
        }
        let selected = f.selected_pods(&s.namespace, &s.name);
        let why = match selected.is_empty() {
            true => "no pod matches its selector".to_string(),
            false => format!("{} pods selected, none ready", selected.len()),
        };
        add(
            out, "WEFT0904", Severity::Warning, format!("Service/{}", s.key()),
            format!("Service {} has no ready endpoint: {why}; calls to it fail with 503", s.key()),
            "check its selector against the pods' labels and why the pods are not ready (`weft get pods`)".into(),
        );
    }
}

fn unproxied(f: &Facts, out: &mut Vec<Finding>) {
    for pod in f.pods.iter() {
        let Some(st) = f.pod_status(&pod.namespace, &pod.name) else {
            continue;
        };
        if st.mode != "none" {
            continue;
        }
        let config = f.snapshot.proxy(pod);
        let object = format!("Pod/{}/{}", pod.namespace, pod.name);
        if !config.authorization.is_empty() {
            let names: Vec<&str> = config
                .authorization
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            add(
                out,
                "WEFT0905",
                Severity::Error,
                object.clone(),
                format!(
                    "{}/{} has no proxy, so AuthorizationPolicy {} that selects it is not enforced",
                    pod.namespace,
                    pod.name,
                    names.join(", ")
                ),
                format!(
                    "give workload {} a proxy (label weft.dev/dataplane-mode: sidecar or ambient)",
                    pod.workload
                ),
            );
        } else if config.settings.mtls_mode == MtlsMode::Strict {
            add(
                out,
                "WEFT0905",
                Severity::Info,
                object,
                format!(
                    "{}/{} has no proxy: STRICT mTLS does not cover it, and its traffic is plaintext",
                    pod.namespace, pod.name
                ),
                format!(
                    "give workload {} a proxy, unless it is meant to stay outside the mesh",
                    pod.workload
                ),
            );
        }
    }
}

fn ports(f: &Facts, out: &mut Vec<Finding>) {
    // Ports the Services target, per pod address.
    let mut targeted: BTreeMap<std::net::IpAddr, Vec<(u16, String)>> = BTreeMap::new();
    for s in f.snapshot.services.values() {
        for e in &s.endpoints {
            for target in e.ports.values() {
                targeted
                    .entry(e.address)
                    .or_default()
                    .push((*target, s.key()));
            }
        }
    }
    for p in &f.status.pods {
        let plan = (f.plan.pods.iter()).find(|pp| pp.namespace == p.namespace && pp.name == p.name);
        let Some(netns) = plan
            .filter(|_| p.app.state == "ready")
            .map(|pp| pp.netns.as_str())
        else {
            continue;
        };
        let Ok(ip) = p.ip.parse::<std::net::IpAddr>() else {
            continue;
        };
        let listening = listening_ports(netns);
        if listening.is_empty() {
            continue;
        }
        let mut wanted: Vec<(u16, String)> = f
            .plan
            .pods
            .iter()
            .filter(|pp| pp.namespace == p.namespace && pp.name == p.name)
            .filter_map(|pp| {
                pp.ready_port.map(|port| {
                    (
                        port,
                        format!("Workload {}/{} declares it", pp.namespace, pp.workload),
                    )
                })
            })
            .collect();
        wanted.extend(
            targeted
                .get(&ip)
                .into_iter()
                .flatten()
                .map(|(port, svc)| (*port, format!("Service {svc} targets it"))),
        );
        let app: Vec<String> = listening
            .iter()
            .filter(|l| !(15000..=15099).contains(*l))
            .map(|l| format!(":{l}"))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for (port, why) in wanted {
            if listening.contains(&port) || !seen.insert(port) {
                continue;
            }
            add(
                out,
                "WEFT0906",
                Severity::Error,
                format!("Pod/{}/{}", p.namespace, p.name),
                format!(
                    "the app of {}/{} is not listening on :{port} ({why}); it listens on {}",
                    p.namespace,
                    p.name,
                    if app.is_empty() {
                        "nothing".into()
                    } else {
                        app.join(", ")
                    }
                ),
                match app.first() {
                    Some(other) => {
                        format!("make the app listen on :{port}, or change the port to {other}")
                    }
                    None => format!("make the app listen on :{port}"),
                },
            );
        }
    }
}

fn denials(f: &Facts, out: &mut Vec<Finding>) {
    let since = weft_local::status::now_ms().saturating_sub(RECENT_MS);
    // (policy, caller, destination) -> count
    let mut counts: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for p in &f.status.pods {
        let path = f.dir.log(&format!("{}/{}.proxy", p.namespace, p.name));
        for line in weft_local::rundir::tail(&path, 2000) {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["error"] != "denied" || v["ts_ms"].as_u64().is_none_or(|t| t < since) {
                continue;
            }
            let key = (
                v["policy"].as_str().unwrap_or("?").to_string(),
                v["peer_identity"]
                    .as_str()
                    .unwrap_or("a plaintext client")
                    .to_string(),
                format!("{}/{}", p.namespace, p.name),
            );
            *counts.entry(key).or_default() += 1;
        }
    }
    for ((policy, caller, pod), n) in counts {
        add(
            out,
            "WEFT0907",
            Severity::Warning,
            format!("Pod/{pod}"),
            format!(
                "{n} requests from {caller} to {pod} denied by AuthorizationPolicy {policy} in the last 15 minutes"
            ),
            format!(
                "if {caller} should be allowed, add it to {policy}; `weft diagnose` shows the rule"
            ),
        );
    }
}
