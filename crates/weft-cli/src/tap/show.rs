//! How a tapped line reads: one text line per request, or JSON with who tapped it and the
//! caller's pod added.
//!
//! `req  13:04:05.123  in   shop/frontend-0 → cart.shop  GET cart:8080/cart  200  3.2ms
//! peer=spiffe://…  route=…` — time in UTC; `tcp` for a connection; the caller is named by
//! its pod when the mesh has one at its address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use weft_local::plan::Plan;
use weft_proxy::tap::Line;

/// Pod names by address, to name callers and upstreams.
#[derive(Debug, Default)]
pub struct Names(HashMap<IpAddr, String>);

impl Names {
    pub fn of(plan: &Plan) -> Names {
        Names(
            (plan.pods.iter())
                .map(|p| (IpAddr::V4(p.ip), p.id()))
                .collect(),
        )
    }

    #[cfg(test)]
    pub fn from(pairs: &[(&str, &str)]) -> Names {
        Names(
            pairs
                .iter()
                .map(|(ip, n)| (ip.parse().unwrap(), n.to_string()))
                .collect(),
        )
    }

    /// The pod at `addr` (`ip:port`), if any.
    pub fn pod(&self, addr: Option<&str>) -> Option<&str> {
        let addr = addr?.parse::<SocketAddr>().ok()?;
        self.0.get(&addr.ip()).map(String::as_str)
    }
}

/// The caller: the tapped pod itself for outbound, else its pod by address, its identity,
/// its address.
pub fn source(line: &Line, proxy: &str, names: &Names) -> String {
    if line.direction == "outbound" {
        return proxy.to_string();
    }
    (names.pod(line.downstream.as_deref()).map(str::to_string))
        .or_else(|| line.peer_identity.clone())
        .or_else(|| line.downstream.clone())
        .unwrap_or_else(|| "-".into())
}

/// The destination: its Service (`name.ns`), else the pod or address it went to, else (inbound)
/// the tapped pod.
pub fn destination(line: &Line, proxy: &str, names: &Names) -> String {
    if let Some(svc) = &line.destination.service {
        return match svc.split_once('/') {
            Some((ns, name)) => format!("{name}.{ns}"),
            None => svc.clone(),
        };
    }
    let upstream = line.destination.upstream.as_deref();
    match (names.pod(upstream), upstream, line.direction.as_str()) {
        (Some(pod), _, _) => pod.to_string(),
        (None, _, "inbound") => proxy.to_string(),
        (None, Some(addr), _) => addr.to_string(),
        (None, None, _) => "-".into(),
    }
}

/// `HH:MM:SS.mmm` (UTC) of Unix milliseconds.
pub fn clock(ts_ms: u64) -> String {
    let day_ms = ts_ms % 86_400_000;
    let (h, m, s, ms) = (
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000,
    );
    format!("{h:02}:{m:02}:{s:02}.{ms:03}")
}

/// The text line of one tapped request or connection.
pub fn text(line: &Line, proxy: &str, names: &Names) -> String {
    let kind = if line.protocol == "TCP" { "tcp" } else { "req" };
    let dir = match line.direction.as_str() {
        "inbound" => "in ",
        "outbound" => "out",
        "gateway" => "gw ",
        other => other,
    };
    let mut out = format!(
        "{kind}  {}  {dir}  {} → {}",
        clock(line.ts_ms),
        source(line, proxy, names),
        destination(line, proxy, names)
    );
    if let Some(m) = &line.method {
        out += &format!(
            "  {m} {}{}",
            line.authority.as_deref().unwrap_or(""),
            line.path.as_deref().unwrap_or("")
        );
    }
    let status = line.status.map_or("-".into(), |s| s.to_string());
    out += &format!("  {status}  {}", latency(line.latency_ms));
    for (k, v) in [
        ("error", &line.error),
        ("peer", &line.peer_identity),
        ("route", &line.route),
        ("policy", &line.policy),
    ] {
        if let Some(v) = v {
            out += &format!("  {k}={v}");
        }
    }
    out
}

/// `3.2ms`, `120ms`, `1.25s`.
pub fn latency(ms: f64) -> String {
    match ms {
        ms if ms >= 1000.0 => format!("{:.2}s", ms / 1000.0),
        ms if ms >= 100.0 => format!("{ms:.0}ms"),
        ms => format!("{ms:.1}ms"),
    }
}

/// A JSON line: the proxy's, with the tapped proxy and the caller's pod.
#[derive(Debug, Serialize)]
pub struct Json<'a> {
    /// The pod (or gateway) whose proxy saw it.
    pub proxy: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_pod: Option<&'a str>,
    #[serde(flatten)]
    pub line: &'a Line,
}

impl<'a> Json<'a> {
    pub fn new(line: &'a Line, proxy: &'a str, names: &'a Names) -> Json<'a> {
        let source_pod = match line.direction.as_str() {
            "outbound" => Some(proxy),
            _ => names.pod(line.downstream.as_deref()),
        };
        Json {
            proxy,
            source_pod,
            line,
        }
    }
}

#[cfg(test)]
mod tests {
    use weft_proxy::tap::Destination;

    use super::*;

    fn inbound() -> Line {
        Line {
            ts_ms: 1_700_000_645_123,
            direction: "inbound".into(),
            protocol: "HTTP/1.1".into(),
            downstream: Some("198.19.82.4:41000".into()),
            destination: Destination {
                service: Some("shop/cart".into()),
                upstream: Some("127.0.0.1:8080".into()),
            },
            method: Some("GET".into()),
            authority: Some("cart:8080".into()),
            path: Some("/cart".into()),
            status: Some(200),
            latency_ms: 3.21,
            peer_identity: Some("spiffe://shop.local/ns/shop/sa/frontend".into()),
            route: Some("default".into()),
            ..Line::default()
        }
    }

    #[test]
    fn a_request_reads_on_one_line() {
        let names = Names::from(&[("198.19.82.4", "shop/frontend-0")]);
        assert_eq!(
            text(&inbound(), "shop/cart-0", &names),
            "req  22:24:05.123  in   shop/frontend-0 → cart.shop  GET cart:8080/cart  200  \
             3.2ms  peer=spiffe://shop.local/ns/shop/sa/frontend  route=default"
        );
        let tcp = Line {
            direction: "outbound".into(),
            protocol: "TCP".into(),
            destination: Destination {
                service: None,
                upstream: Some("198.19.82.9:5432".into()),
            },
            latency_ms: 1500.0,
            error: Some("upstream".into()),
            ..Line::default()
        };
        assert_eq!(
            text(
                &tcp,
                "shop/cart-0",
                &Names::from(&[("198.19.82.9", "shop/db-0")])
            ),
            "tcp  00:00:00.000  out  shop/cart-0 → shop/db-0  -  1.50s  error=upstream"
        );
    }

    #[test]
    fn json_lines_add_the_proxy_and_the_callers_pod() {
        let names = Names::from(&[("198.19.82.4", "shop/frontend-0")]);
        let line = inbound();
        let v = serde_json::to_value(Json::new(&line, "shop/cart-0", &names)).unwrap();
        assert_eq!(v["proxy"], "shop/cart-0");
        assert_eq!(v["source_pod"], "shop/frontend-0");
        assert_eq!(v["status"], 200);
        assert_eq!(v["destination"]["service"], "shop/cart");
    }
}
