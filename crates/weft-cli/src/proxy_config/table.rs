//! The tables of `weft proxy-config workloads|services`, made purely from what the proxy
//! answered.

use serde_json::Value;
use weft_proxy::node::{PodView, Pods};

use crate::get::{header, table};

/// A node proxy's pods (`/pods`) at `now` (Unix seconds): one row each, then why any pod is
/// not served or holds no certificate, and the node's open connections.
pub fn workloads(pods: &Pods, now: i64) -> String {
    let mut rows = vec![header(&[
        "POD",
        "STATE",
        "IDENTITY",
        "CERT EXPIRES",
        "POLICIES",
        "WAYPOINT",
    ])];
    let mut notes = vec![];
    for p in &pods.pods {
        let pod = pod_name(&p.id);
        let cert = match &p.certificate {
            Some(c) => weft_proxy::certs::time_left(c, now),
            None => "none".into(),
        };
        rows.push(vec![
            pod.clone(),
            p.state.clone(),
            p.identity.clone().unwrap_or_else(|| "-".into()),
            cert,
            or_dash(&p.policies),
            or_dash(&p.waypoints),
        ]);
        notes.extend(note(&pod, p));
    }
    let mut out = match pods.pods.is_empty() {
        true => format!("node {} serves no pods (none is enrolled)\n", pods.node),
        false => table(&rows),
    };
    for n in notes {
        out += &format!("{n}\n");
    }
    out += &format!(
        "{} connection(s) open on the listeners of node {}'s pods (not counted per pod)\n",
        pods.open_connections, pods.node
    );
    out
}

/// Why `p` is not served, or served without a certificate.
fn note(pod: &str, p: &PodView) -> Option<String> {
    match (p.state.as_str(), &p.reason, &p.no_certificate) {
        ("refused", Some(why), _) => Some(format!("{pod} refused: {why}")),
        ("pending", ..) => Some(format!(
            "{pod} pending: waiting for its configuration from the control plane"
        )),
        ("served", _, Some(why)) => Some(format!("{pod} has no certificate: {why}")),
        _ => None,
    }
}

/// `web-0.shop` as `shop/web-0`, the way `weft get pods` names pods.
pub(super) fn pod_name(id: &str) -> String {
    match id.split_once('.') {
        Some((name, ns)) => format!("{ns}/{name}"),
        None => id.to_string(),
    }
}

/// The Services of a `/config_dump`: address, ports, endpoints (and how many are ejected)
/// and waypoint; or what is known instead (missing, rejected).
pub fn services(dump: &Value) -> String {
    let mut rows = vec![header(&[
        "SERVICE",
        "ADDRESS",
        "PORTS",
        "ENDPOINTS",
        "WAYPOINT",
    ])];
    let empty = serde_json::Map::new();
    let all = dump["services"].as_object().unwrap_or(&empty);
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    for name in names {
        let v = &all[name];
        let row = match v {
            Value::Object(_) if v.get("rejected").is_none() => service_row(v),
            _ => {
                let what = match (v.as_str(), v["rejected"].as_str()) {
                    (Some(s), _) => s.to_string(),
                    (None, Some(why)) => format!("rejected: {why}"),
                    _ => v.to_string(),
                };
                ["-".into(), "-".into(), what, "-".into()]
            }
        };
        rows.push(std::iter::once(name.clone()).chain(row).collect());
    }
    match rows.len() {
        1 => "no Services held (a proxy asks for a Service on its first connection to it)\n".into(),
        _ => table(&rows),
    }
}

/// Address, ports, endpoints and waypoint of a Service held (a `ServiceConfig` with the
/// endpoints its balancer ejected now).
fn service_row(v: &Value) -> [String; 4] {
    let len = |v: &Value| v.as_array().map_or(0, Vec::len);
    let endpoints = match len(&v["ejected"]) {
        0 => len(&v["endpoints"]).to_string(),
        n => format!("{} ({n} ejected)", len(&v["endpoints"])),
    };
    let ports: Vec<String> = (v["ports"].as_array().into_iter().flatten())
        .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("?")))
        .collect();
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    [
        text(&v["vip"]),
        or_dash(&ports),
        endpoints,
        text(&v["waypoint"]["service"]),
    ]
}

fn or_dash(list: &[String]) -> String {
    match list.is_empty() {
        true => "-".into(),
        false => list.join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_proxy::certs::CertInfo;

    fn pod(id: &str, state: &str) -> PodView {
        PodView {
            id: id.into(),
            netns: format!("/run/netns/{id}").into(),
            state: state.into(),
            listeners: None,
            reason: None,
            identity: None,
            mtls_mode: None,
            policies: vec![],
            waypoints: vec![],
            certificate: None,
            no_certificate: None,
        }
    }

    #[test]
    fn workloads_show_each_pod_with_identity_expiry_and_policies_and_say_why_refused() {
        let served = PodView {
            identity: Some("spiffe://cluster.local/ns/shop/sa/web".into()),
            mtls_mode: Some("STRICT".into()),
            policies: vec!["shop/allow-frontend".into()],
            waypoints: vec!["spiffe://cluster.local/ns/shop/sa/wp".into()],
            certificate: Some(CertInfo {
                spiffe_id: "spiffe://cluster.local/ns/shop/sa/web".into(),
                serial: "01".into(),
                not_before: 1_000,
                not_after: 1_000 + 86_400,
                chain_pem: vec![],
                bundle_pem: vec![],
            }),
            ..pod("web-0.shop", "served")
        };
        let refused = PodView {
            reason: Some("not in ambient mode".into()),
            no_certificate: Some("the pod is not served (refused)".into()),
            ..pod("db-0.shop", "refused")
        };
        let pods = Pods {
            node: "node-1".into(),
            open_connections: 2,
            pods: vec![served, refused],
        };
        let text = workloads(&pods, 1_060);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("POD"), "{text}");
        let web = lines[1].split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            web,
            [
                "shop/web-0",
                "served",
                "spiffe://cluster.local/ns/shop/sa/web",
                "23h59m",
                "left",
                "shop/allow-frontend",
                "spiffe://cluster.local/ns/shop/sa/wp"
            ],
            "{text}"
        );
        let db = lines[2].split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            db,
            ["shop/db-0", "refused", "-", "none", "-", "-"],
            "{text}"
        );
        assert!(
            text.contains("shop/db-0 refused: not in ambient mode"),
            "{text}"
        );
        assert!(text.contains("2 connection(s) open"), "{text}");

        let none = Pods {
            node: "node-2".into(),
            open_connections: 0,
            pods: vec![],
        };
        assert!(workloads(&none, 0).starts_with("node node-2 serves no pods"));
    }

    #[test]
    fn services_show_ports_endpoints_and_what_is_missing() {
        let dump = serde_json::json!({"services": {
            "shop/catalog": {
                "namespace": "shop", "name": "catalog", "vip": "10.96.0.10",
                "hostnames": ["catalog"],
                "ports": [{"port": 80, "protocol": "http"}],
                "endpoints": [], "policy": {}, "ejected": [],
                "waypoint": {"service": "shop/wp", "identity": "spiffe://t/ns/shop/sa/wp"}
            },
            "shop/typo": "missing",
            "shop/bad": {"rejected": "no port"},
        }});
        let text = services(&dump);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0][0], "SERVICE", "{text}");
        assert_eq!(
            lines[1],
            ["shop/bad", "-", "-", "rejected:", "no", "port", "-"]
        );
        assert_eq!(
            lines[2][..4],
            ["shop/catalog", "10.96.0.10", "80/http", "0"],
            "{text}"
        );
        assert_eq!(lines[2][4], "shop/wp", "{text}");
        assert_eq!(lines[3], ["shop/typo", "-", "-", "missing", "-"]);
        assert!(services(&serde_json::json!({})).starts_with("no Services held"));
    }
}
