//! The routes of a proxy: for each Service port it can call (a waypoint: those of the Services
//! that use it; a gateway: each listener of its Gateway), the match entries in the order they
//! are tried, each with its rule's filters, weighted backends, timeout and retries: what the
//! proxy's request plan step would pick from. A Service port no route attaches to is its own
//! backend; one whose L7 runs at a waypoint is sent there whole.

use serde::{Deserialize, Serialize};

use super::{Role, Who};
use crate::duration::Duration;
use crate::model::{
    Backend, ClientPolicy, GatewayConfig, HttpRule, MatchEntry, Protocol, Retry, ServiceConfig,
    Snapshot,
};
use crate::resources::http_route::{HttpRouteFilter, HttpRouteMatch};

/// The routes of one Service port or Gateway listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteConfig {
    /// `namespace/name:port` of the Service, or of the Gateway and its listener port.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
    /// Host names (and the VIP) requests to it carry; a Gateway listener's host name, or `*`.
    pub domains: Vec<String>,
    /// The waypoint the traffic is sent to: the routes below run there, not here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waypoint: Option<String>,
    /// In the order they are tried; the first that matches wins.
    pub entries: Vec<RouteEntry>,
}

/// One match entry and the rule it leads to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteEntry {
    /// The rule's name (`Kind/namespace/route rule N`), or `default` for a Service that is its
    /// own backend.
    pub rule: String,
    /// Opaque TCP (a TCPRoute, or a port that is not HTTP).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    /// Host names the request must carry (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// None: every request (or connection).
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<HttpRouteMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<HttpRouteFilter>,
    pub backends: Vec<Backend>,
    /// For the whole request, retries included: the rule's, else the called Service's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_try_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

/// `namespace/name:port`.
pub(super) fn route_name(key: &str, port: u16) -> String {
    format!("{key}:{port}")
}

pub(super) fn of(snap: &Snapshot, who: &Who<'_>) -> Vec<RouteConfig> {
    if let (Role::Gateway, Some(g)) = (who.role, who.gateway) {
        return gateway(snap, g);
    }
    let waypoint = who.gateway.filter(|_| who.role == Role::Waypoint);
    let mut out = Vec::new();
    for s in snap.services.values() {
        let serves = match waypoint {
            Some(g) => s.waypoint.as_ref().is_some_and(|w| w.service == g.key()),
            None => true,
        };
        if serves {
            out.extend(
                s.ports
                    .iter()
                    .map(|p| service_port(s, p.port, p.protocol, who)),
            );
        }
    }
    out
}

/// The routes of port `port` of `s` as the proxy of `who` applies them.
fn service_port(s: &ServiceConfig, port: u16, protocol: Protocol, who: &Who<'_>) -> RouteConfig {
    let key = s.key();
    let mut domains = s.hostnames.clone();
    domains.extend(s.vip.map(|v| v.to_string()));
    let mut route = RouteConfig {
        name: route_name(&key, port),
        service: Some(key.clone()),
        gateway: None,
        port,
        protocol,
        domains,
        waypoint: None,
        entries: Vec::new(),
    };
    if let Some(w) = s.waypoint.as_ref().filter(|_| who.role != Role::Waypoint) {
        route.waypoint = Some(w.service.clone());
        return route;
    }
    let l7 = who.role.l7() && protocol != Protocol::Tcp;
    if l7 {
        let entries = s.http.as_ref().map(|h| {
            (h.entries.iter())
                .filter(|e| covers(e, port))
                .filter_map(|e| Some(http_entry(e, h.rules.get(e.rule)?, Some(&s.policy))))
                .collect::<Vec<_>>()
        });
        match entries {
            Some(e) if !e.is_empty() => route.entries = e,
            _ => route.entries.push(itself(s, port, false)),
        }
    }
    // Not HTTP (or not detected as HTTP): the TCP rules, else the Service itself.
    if !l7 || protocol == Protocol::Detect {
        let tcp: Vec<RouteEntry> = (s.tcp.iter())
            .filter(|r| r.ports.is_empty() || r.ports.contains(&port))
            .map(|r| RouteEntry {
                rule: r.name.clone(),
                tcp: true,
                backends: r.backends.clone(),
                ..empty()
            })
            .collect();
        match tcp.is_empty() {
            true => route.entries.push(itself(s, port, true)),
            false => route.entries.extend(tcp),
        }
    }
    route
}

/// Whether a match entry applies to Service port (or listener port) `port`.
fn covers(e: &MatchEntry, port: u16) -> bool {
    e.ports.is_empty() || e.ports.contains(&port)
}

/// The Service as its own backend, with its policy's timeout and retries.
fn itself(s: &ServiceConfig, port: u16, tcp: bool) -> RouteEntry {
    RouteEntry {
        rule: "default".into(),
        tcp,
        backends: vec![Backend {
            service: s.key(),
            port,
            weight: 1,
            filters: Vec::new(),
            unresolved: None,
        }],
        timeout: s.policy.timeout.filter(|_| !tcp),
        per_try_timeout: s.policy.per_try_timeout.filter(|_| !tcp),
        retry: s.policy.retry.clone().filter(|_| !tcp),
        ..empty()
    }
}

/// An HTTP match entry and its rule, with timeouts and retries from `policy` where the rule
/// sets none.
fn http_entry(e: &MatchEntry, rule: &HttpRule, policy: Option<&ClientPolicy>) -> RouteEntry {
    RouteEntry {
        rule: rule.name.clone(),
        tcp: false,
        hostnames: e.hostnames.clone(),
        matcher: Some(e.matcher.clone()),
        filters: rule.filters.clone(),
        backends: rule.backends.clone(),
        timeout: rule.timeout.or(policy.and_then(|p| p.timeout)),
        per_try_timeout: (rule.per_try_timeout).or(policy.and_then(|p| p.per_try_timeout)),
        retry: (rule.retry.clone()).or_else(|| policy.and_then(|p| p.retry.clone())),
    }
}

fn empty() -> RouteEntry {
    RouteEntry {
        rule: String::new(),
        tcp: false,
        hostnames: Vec::new(),
        matcher: None,
        filters: Vec::new(),
        backends: Vec::new(),
        timeout: None,
        per_try_timeout: None,
        retry: None,
    }
}

/// Each listener of an ingress Gateway with the entries attached to its port. A rule without
/// a timeout or retries of its own takes its first backend Service's policy.
fn gateway(snap: &Snapshot, g: &GatewayConfig) -> Vec<RouteConfig> {
    let key = g.key();
    (g.listeners.iter())
        .map(|l| {
            let entries = (g.http.entries.iter())
                .filter(|e| covers(e, l.port))
                .filter_map(|e| {
                    let rule = g.http.rules.get(e.rule)?;
                    let first = rule.backends.first();
                    let policy = first.and_then(|b| snap.services.get(&b.service));
                    Some(http_entry(e, rule, policy.map(|s| &s.policy)))
                })
                .collect();
            RouteConfig {
                name: route_name(&key, l.port),
                service: None,
                gateway: Some(key.clone()),
                port: l.port,
                protocol: Protocol::Http,
                domains: vec![l.hostname.clone().unwrap_or_else(|| "*".into())],
                waypoint: None,
                entries,
            }
        })
        .collect()
}
