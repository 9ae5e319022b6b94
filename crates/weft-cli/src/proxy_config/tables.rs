//! The tables of `weft proxy-config POD listeners|routes|clusters|endpoints`, with Istio's
//! `istioctl proxy-config` columns as the guide, made purely from a [`View`]. Columns from the
//! proxy's own live state (FETCHED, OUTLIER CHECK) are named in a closing note.

use weft_core::model::effective::{Cluster, Direction, Effective, RouteEntry, Tls};
use weft_core::model::{Backend, ClientPolicy, Retry};
use weft_core::resources::http_route::{HttpRouteMatch, PathMatchType};
use weft_core::resources::route_common::StringMatchType;

use super::view::{View, service_of};
use crate::get::{header, table};

/// ADDRESS PORT MATCH DESTINATION, a node proxy's with the POD whose namespace each is in,
/// and BOUND when the proxy reported where it bound them.
pub fn listeners(view: &View) -> String {
    let e = &view.effective;
    let node = e.listeners.iter().any(|l| l.pod.is_some());
    let bound = e.listeners.iter().any(|l| view.live.bound_of(l).is_some());
    let mut cols = vec!["ADDRESS", "PORT", "MATCH", "DESTINATION"];
    if bound {
        cols.insert(2, "BOUND");
    }
    if node {
        cols.insert(0, "POD");
    }
    let mut rows = vec![header(&cols)];
    for l in &e.listeners {
        let mut row = vec![
            l.address.clone(),
            l.port.to_string(),
            l.matcher.clone(),
            l.destination.clone(),
        ];
        if bound {
            let at = view.live.bound_of(l);
            row.insert(2, at.map_or("-".into(), |a| a.to_string()));
        }
        if node {
            let pod = l.pod.as_deref().map(super::table::pod_name);
            row.insert(0, pod.unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
    }
    let mut out = table(&rows);
    if bound {
        out += "(BOUND is live, from the addresses the proxy reported; the rest is what the control plane intends)\n";
    }
    out
}

pub fn routes(e: &Effective) -> String {
    let mut rows = vec![header(&[
        "NAME", "DOMAINS", "MATCH", "BACKENDS", "TIMEOUT", "RETRIES", "RULE",
    ])];
    for r in &e.routes {
        let domains = domains(&r.domains);
        if let Some(w) = &r.waypoint {
            let to = format!("waypoint {w} (its routes apply)");
            let row = [&r.name, &domains, "*", &to, "-", "-", "-"];
            rows.push(row.iter().map(|s| s.to_string()).collect());
            continue;
        }
        let ns = r.name.split('/').next().unwrap_or_default();
        for entry in &r.entries {
            let hosts = match entry.hostnames.is_empty() {
                true => domains.clone(),
                false => entry.hostnames.join(","),
            };
            rows.push(vec![
                r.name.clone(),
                hosts,
                matcher(entry),
                backends(&entry.backends, ns, r.port, entry),
                entry.timeout.map_or("-".into(), |t| t.to_string()),
                entry.retry.as_ref().map_or("-".into(), retries),
                entry.rule.clone(),
            ]);
        }
    }
    table(&rows)
}

/// Retries, status codes and gRPC statuses retried: `2x 503`, `2x 503 grpc 14`.
fn retries(r: &Retry) -> String {
    let codes: Vec<String> = r.codes.iter().map(u16::to_string).collect();
    let mut cell = format!("{}x {}", r.attempts, codes.join(","));
    if !r.grpc_codes.is_empty() {
        let grpc: Vec<String> = r.grpc_codes.iter().map(u32::to_string).collect();
        cell = format!("{} grpc {}", cell.trim_end(), grpc.join(","));
    }
    cell
}

/// A Service's names in a line: the first two and how many more.
fn domains(all: &[String]) -> String {
    match all.len() {
        0..=2 => all.join(","),
        n => format!("{} +{} more", all[..2].join(","), n - 2),
    }
}

/// `GET /price/*`, `/exact`, `~regex`, with `[header=value]` and `?param=value`; `TCP` for
/// opaque TCP; `/*` for every request.
fn matcher(e: &RouteEntry) -> String {
    let Some(m) = &e.matcher else {
        return if e.tcp { "TCP".into() } else { "/*".into() };
    };
    describe_match(m)
}

pub(crate) fn describe_match(m: &HttpRouteMatch) -> String {
    let mut out = String::new();
    if let Some(method) = &m.method {
        let name = serde_json::to_value(method).unwrap_or_default();
        out += &format!("{} ", name.as_str().unwrap_or("?"));
    }
    out += &match &m.path {
        None => "/*".to_string(),
        Some(p) => match p.match_type {
            PathMatchType::Exact => p.value.clone(),
            PathMatchType::PathPrefix if p.value == "/" => "/*".to_string(),
            PathMatchType::PathPrefix => format!("{}*", p.value),
            PathMatchType::RegularExpression => format!("~{}", p.value),
        },
    };
    let pair = |name: &str, t: StringMatchType, value: &str| match t {
        StringMatchType::Exact => format!("{name}={value}"),
        StringMatchType::RegularExpression => format!("{name}~{value}"),
    };
    for h in &m.headers {
        out += &format!(" [{}]", pair(&h.name, h.match_type, &h.value));
    }
    for q in &m.query_params {
        out += &format!(" ?{}", pair(&q.name, q.match_type, &q.value));
    }
    out
}

/// `pricing-v1:8080 90%, pricing-v2:8080 10%` (the namespace only when not `ns`), a redirect,
/// or a backend that cannot be followed.
fn backends(all: &[Backend], ns: &str, port: u16, e: &RouteEntry) -> String {
    if all.is_empty() {
        let redirect =
            (e.filters.iter()).any(|f| format!("{:?}", f.filter_type) == "RequestRedirect");
        return if redirect {
            "redirect".into()
        } else {
            "none".into()
        };
    }
    let total: u32 = all.iter().map(|b| b.weight).sum();
    let list: Vec<String> = all
        .iter()
        .map(|b| {
            let name = b
                .service
                .strip_prefix(&format!("{ns}/"))
                .unwrap_or(&b.service);
            let port = if b.port == 0 { port } else { b.port };
            let mut s = format!("{name}:{port}");
            if all.len() > 1 && total > 0 {
                s += &format!(" {}%", b.weight * 100 / total);
            }
            if b.unresolved.is_some() {
                s += " (unresolved)";
            }
            s
        })
        .collect();
    list.join(", ")
}

pub fn clusters(view: &View) -> String {
    let mut rows = vec![header(&[
        "SERVICE FQDN",
        "PORT",
        "DIRECTION",
        "LB",
        "POOL",
        "OUTLIER",
        "TLS",
        "IDENTITIES",
        "ENDPOINTS",
        "TRAFFIC POLICY",
        "FETCHED",
    ])];
    for c in &view.effective.clusters {
        let (lb, pool, outlier) = match &c.policy {
            Some(p) => policy(p),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let fetched = match c.direction {
            Direction::Outbound => view.live.fetched(&c.service, c.version.as_deref()),
            Direction::Inbound => "-".into(),
        };
        rows.push(vec![
            c.fqdn.clone(),
            c.port.to_string(),
            format!("{:?}", c.direction).to_lowercase(),
            lb,
            pool,
            outlier,
            tls(c),
            or_dash(
                &c.identities
                    .iter()
                    .map(|i| short_identity(i))
                    .collect::<Vec<_>>(),
            ),
            c.endpoints.to_string(),
            or_dash(&c.traffic_policies),
            fetched,
        ]);
    }
    table(&rows) + &live_note(view, "FETCHED")
}

/// LB, POOL and OUTLIER of a client policy.
fn policy(p: &ClientPolicy) -> (String, String, String) {
    let lb = serde_json::to_value(p.load_balancer).unwrap_or_default();
    (
        lb.as_str().unwrap_or("?").to_string(),
        format!("{} max, connect {}", p.max_connections, p.connect_timeout),
        format!(
            "{} errors, {}, max {}%",
            p.consecutive_errors, p.base_ejection_time, p.max_ejection_percent
        ),
    )
}

fn tls(c: &Cluster) -> String {
    let mode = match c.tls {
        Tls::Mtls => "mTLS",
        Tls::Plaintext => "plaintext",
        Tls::Mixed if c.direction == Direction::Inbound => "mTLS or plaintext",
        Tls::Mixed => "mixed",
        Tls::None => "-",
    };
    match &c.waypoint {
        Some(w) => format!("mTLS via waypoint {}", w.service),
        None => mode.into(),
    }
}

/// `spiffe://td/ns/shop/sa/cart` as `shop/cart`.
fn short_identity(id: &str) -> String {
    match id
        .split_once("/ns/")
        .and_then(|(_, rest)| rest.split_once("/sa/"))
    {
        Some((ns, sa)) => format!("{ns}/{sa}"),
        None => id.to_string(),
    }
}

pub fn endpoints(view: &View) -> String {
    let e = &view.effective;
    let mut rows = vec![header(&[
        "ENDPOINT",
        "STATUS",
        "OUTLIER CHECK",
        "CLUSTER",
        "POD",
        "NODE",
        "TLS",
        "IDENTITY",
    ])];
    for x in &e.endpoints {
        let inbound = x.cluster.starts_with("inbound|");
        let tls = match (inbound, x.tunnel) {
            (true, _) => "-".to_string(),
            (false, Some(t)) => format!("mTLS {t}"),
            (false, None) => "plaintext".into(),
        };
        let outlier = match inbound {
            true => "-",
            false => view.live.outlier(service_of(e, &x.cluster), x.address.ip()),
        };
        rows.push(vec![
            x.address.to_string(),
            serde_json::to_value(x.health)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            outlier.into(),
            x.cluster.clone(),
            x.pod.clone(),
            x.node.clone().unwrap_or_else(|| "-".into()),
            tls,
            x.identity.clone(),
        ]);
    }
    table(&rows) + &live_note(view, "OUTLIER CHECK")
}

/// Which column came from the proxy, or why it could not be asked.
fn live_note(view: &View, column: &str) -> String {
    match &view.live.error {
        Some(why) => format!("({column}: the proxy could not be asked: {why})\n"),
        None => format!(
            "({column} is live, from {}; the rest is what the control plane intends)\n",
            view.live.source
        ),
    }
}

fn or_dash(list: &[String]) -> String {
    match list.is_empty() {
        true => "-".into(),
        false => list.join(","),
    }
}

#[cfg(test)]
mod tests;
