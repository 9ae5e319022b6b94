//! The listeners of a proxy: the capture listeners and tunnel of each pod it serves, one
//! virtual listener per Service port it routes (what the outbound listener does with a
//! connection to that VIP:port), a Gateway's listeners, and admin, metrics and readiness. The
//! addresses are the conventional ones (see [`super::super::OUTBOUND_PORT`] and its siblings).

use serde::{Deserialize, Serialize};

use super::routes::route_name;
use super::{Role, Who, fqdn};
use crate::model::{
    ADMIN_PORT, INBOUND_PORT, OUTBOUND_PORT, Pod, Protocol, ProxyConfig, READINESS_PORT,
    ServiceConfig, Snapshot, TUNNEL_PORT,
};
use crate::resources::mesh::{MtlsMode, OutboundTrafficPolicy};

/// One listener, or one destination the outbound listener tells apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// `outbound`, `inbound`, `tunnel`, `admin`, `metrics`, `readiness`, `outbound
    /// ns/svc:port` (a Service port), `inbound :port` (a port of the pod), `gateway NAME`.
    pub name: String,
    pub address: String,
    pub port: u16,
    /// What traffic it takes.
    #[serde(rename = "match")]
    pub matcher: String,
    /// What it does with it.
    pub destination: String,
    /// A node proxy's listeners: the pod whose network namespace they are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

fn listener(name: &str, address: &str, port: u16, matcher: &str, destination: &str) -> Listener {
    Listener {
        name: name.into(),
        address: address.into(),
        port,
        matcher: matcher.into(),
        destination: destination.into(),
        pod: None,
    }
}

pub(super) fn of(snap: &Snapshot, who: &Who<'_>) -> Vec<Listener> {
    let mut out = Vec::new();
    if let (Role::Sidecar | Role::Ambient, Some(pod), Some(cfg)) = (who.role, who.pod, &who.proxy) {
        let on = (who.role == Role::Ambient).then_some(pod.id.as_str());
        out.extend(pod_listeners(snap, pod, cfg, on));
    }
    for (pod, cfg) in &who.node_pods {
        out.extend(pod_listeners(snap, pod, cfg, Some(&pod.id)));
    }
    if let (Role::Waypoint, Some(g)) = (who.role, who.gateway) {
        let served: Vec<String> = served_by(snap, &g.key()).map(|s| s.key()).collect();
        let dest = match served.is_empty() {
            true => "no Service uses this waypoint".to_string(),
            false => format!("routes of {}", served.join(", ")),
        };
        let l = listener(
            "tunnel",
            "0.0.0.0",
            TUNNEL_PORT,
            "mTLS, HTTP/2 CONNECT",
            &dest,
        );
        out.push(l);
    }
    if let (Role::Gateway, Some(g)) = (who.role, who.gateway) {
        for l in &g.listeners {
            let host = l.hostname.as_deref().unwrap_or("*");
            let route = format!("Route: {}", route_name(&g.key(), l.port));
            let name = format!("gateway {}", l.name);
            out.push(listener(
                &name,
                "*",
                l.port,
                &format!("HTTP, Host: {host}"),
                &route,
            ));
        }
    }
    out.extend(service_listeners(snap, who));
    out.extend(own(snap, who));
    out
}

/// The Services whose waypoint is `key`.
pub(super) fn served_by<'a>(
    snap: &'a Snapshot,
    key: &'a str,
) -> impl Iterator<Item = &'a ServiceConfig> {
    (snap.services.values())
        .filter(move |s| s.waypoint.as_ref().is_some_and(|w| w.service == key))
        .map(|s| &**s)
}

/// Outbound and inbound capture, the tunnel, and one entry per port of the pod.
fn pod_listeners(snap: &Snapshot, pod: &Pod, cfg: &ProxyConfig, on: Option<&str>) -> Vec<Listener> {
    let services = snap.services.values().filter(|s| s.vip.is_some()).count();
    let other = match cfg.outbound_traffic_policy {
        OutboundTrafficPolicy::AllowAny => "PassthroughCluster (ALLOW_ANY)",
        OutboundTrafficPolicy::RegistryOnly => "BlackHoleCluster (REGISTRY_ONLY)",
    };
    // A node proxy opens the pod's listeners inside the pod on every address.
    let outbound_addr = if on.is_some() { "0.0.0.0" } else { "127.0.0.1" };
    let plaintext = match cfg.settings.mtls_mode {
        MtlsMode::Strict => "refused: mTLS STRICT (peers use the tunnel)",
        MtlsMode::Permissive => "accepted: mTLS PERMISSIVE",
        MtlsMode::Disable => "accepted: mTLS DISABLE",
    };
    let admits = match cfg.waypoints.is_empty() {
        true => "any mesh identity the policies allow".to_string(),
        false => format!("only its waypoints {}", cfg.waypoints.join(", ")),
    };
    let ports: Vec<String> = cfg
        .inbound_ports
        .iter()
        .map(|p| p.port.to_string())
        .collect();
    let mut out = vec![
        listener(
            "outbound",
            outbound_addr,
            OUTBOUND_PORT,
            "ALL (captured outbound)",
            &format!(
                "by original destination: {services} Service VIPs, mesh pods by their tunnel; other addresses: {other}"
            ),
        ),
        listener(
            "inbound",
            "0.0.0.0",
            INBOUND_PORT,
            "ALL (captured plaintext inbound)",
            plaintext,
        ),
        listener(
            "tunnel",
            "0.0.0.0",
            TUNNEL_PORT,
            "mTLS, HTTP/2 CONNECT",
            &format!(
                "ports {} as {}; admits {admits}",
                or_none(&ports),
                cfg.identity
            ),
        ),
    ];
    let policies: Vec<&str> = cfg.authorization.iter().map(|p| p.name.as_str()).collect();
    for p in &cfg.inbound_ports {
        let service = (cfg.inbound_services.get(&p.port).cloned())
            .or_else(|| (cfg.inbound_service_choices.get(&p.port)).map(|c| c.join("|")))
            .unwrap_or_else(|| "-".into());
        let dest = format!(
            "app {}:{} ({service}); policies: {}",
            pod.ip,
            p.port,
            or_none(&policies)
        );
        let name = format!("inbound :{}", p.port);
        let ip = pod.ip.to_string();
        out.push(listener(
            &name,
            &ip,
            p.port,
            // A node proxy serves the pod at L4.
            protocol(p.protocol, on.is_none()),
            &dest,
        ));
    }
    if let Some(id) = on {
        for l in &mut out {
            l.pod = Some(id.to_string());
        }
    }
    out
}

/// What the outbound listener (or a waypoint's tunnel) does with each Service port.
fn service_listeners(snap: &Snapshot, who: &Who<'_>) -> Vec<Listener> {
    let outbound = matches!(who.role, Role::Sidecar | Role::Ambient | Role::Node);
    let mut out = Vec::new();
    for s in snap.services.values() {
        let serves = match (who.role, who.gateway) {
            (Role::Waypoint, Some(g)) => s.waypoint.as_ref().is_some_and(|w| w.service == g.key()),
            _ => outbound,
        };
        let Some(vip) = s.vip.filter(|_| serves) else {
            continue;
        };
        for p in &s.ports {
            let l7 = who.role.l7() && p.protocol != Protocol::Tcp;
            let key = s.key();
            let cluster = format!("Cluster: outbound|{}||{}", p.port, fqdn(&key));
            let tcp_rules: Vec<&str> = (s.tcp.iter())
                .filter(|r| r.ports.is_empty() || r.ports.contains(&p.port))
                .map(|r| r.name.as_str())
                .collect();
            let tcp = match tcp_rules.is_empty() {
                true => cluster,
                false => format!("TCPRoute: {}", tcp_rules.join(", ")),
            };
            let dest = match s.waypoint.as_ref().filter(|_| who.role != Role::Waypoint) {
                Some(w) => format!("waypoint {} (its L7 applies)", w.service),
                None if !l7 => tcp,
                None if p.protocol == Protocol::Detect => {
                    format!("Route: {} (HTTP); {tcp} (TCP)", route_name(&key, p.port))
                }
                None => format!("Route: {}", route_name(&key, p.port)),
            };
            let name = format!("outbound {key}:{}", p.port);
            let matcher = match who.role {
                Role::Waypoint => format!("CONNECT, {}", protocol(p.protocol, true)),
                _ => protocol(p.protocol, who.role.l7()).to_string(),
            };
            out.push(listener(&name, &vip.to_string(), p.port, &matcher, &dest));
        }
    }
    out
}

/// Admin (localhost), metrics and readiness: every role but an ambient pod, whose are its
/// node proxy's.
fn own(snap: &Snapshot, who: &Who<'_>) -> Vec<Listener> {
    let metrics = match &who.proxy {
        Some(cfg) => cfg.settings.metrics,
        None => snap.mesh.metrics.enabled,
    };
    if who.role == Role::Ambient {
        return Vec::new();
    }
    let mut out = vec![listener(
        "admin",
        "127.0.0.1",
        ADMIN_PORT,
        "HTTP (localhost only)",
        "admin API: /config_dump, /certs, /ready, /tap",
    )];
    if metrics {
        let port = snap.mesh.metrics.port;
        out.push(listener(
            "metrics",
            "0.0.0.0",
            port,
            "HTTP GET /metrics",
            "Prometheus metrics",
        ));
    }
    out.push(listener(
        "readiness",
        "0.0.0.0",
        READINESS_PORT,
        "HTTP GET /healthz/ready",
        "readiness",
    ));
    out
}

/// How a port's traffic is told apart: its declared protocol, or detection (`l7`: the
/// proxy routes HTTP; else everything is TCP).
fn protocol(p: Protocol, l7: bool) -> &'static str {
    match (p, l7) {
        (_, false) => "TCP (L4 only)",
        (Protocol::Http, _) => "App: http/1.1",
        (Protocol::Http2, _) => "App: h2",
        (Protocol::Grpc, _) => "App: grpc",
        (Protocol::Tcp, _) => "TCP",
        (Protocol::Detect, _) => "detect: HTTP/1.1, h2c or TCP",
    }
}

fn or_none<S: AsRef<str>>(list: &[S]) -> String {
    match list.is_empty() {
        true => "none".into(),
        false => (list.iter().map(|s| s.as_ref()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}
