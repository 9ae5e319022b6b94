//! Compiles HTTPRoute, GRPCRoute and TCPRoute rules attached to Services (mesh routing) and
//! HTTPRoute and GRPCRoute rules attached to ingress Gateways into match entries ordered by
//! Gateway API precedence: most specific host name, exact path, longest prefix, method, most
//! headers, most query parameters, then route name and rule order.

use std::collections::BTreeMap;

use super::gateway::{self, Labels};
use super::{
    Backend, GatewayConfig, HttpRoutes, HttpRule, MatchEntry, Retry, ServiceConfig, TcpRule,
};
use crate::duration::Duration;
use crate::load::Config;
use crate::resources::grpc_route::GrpcRouteMatch;
use crate::resources::http_route::{
    HttpMethod, HttpPathMatch, HttpRouteFilter, HttpRouteMatch, PathMatchType,
};
use crate::resources::route_common::{ParentReference, StringMatchType};
use crate::resources::{Kind, Resource};

/// Ports, hostnames, one match and its rule, before ordering.
type Pending = (Vec<u16>, Vec<String>, HttpRouteMatch, HttpRule);

/// What a route's rules are compiled into: `<namespace>/<name>` of a Service or a Gateway.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Parent {
    Service(String),
    Gateway(String),
}

/// One attachment of a route: the parent, the ports its entries apply to (empty: all), and
/// their host names (empty: any).
#[derive(Debug)]
pub(super) struct Attached {
    pub parent: Parent,
    pub ports: Vec<u16>,
    pub hostnames: Vec<String>,
}

/// Where a route attaches: its Service parents and, for HTTP kinds, its Gateway listeners.
struct Parents<'a> {
    services: &'a BTreeMap<String, ServiceConfig>,
    gateways: gateway::Index<'a>,
}

impl Parents<'_> {
    fn of(&self, l: &Resource, refs: &[ParentReference], hostnames: &[String]) -> Vec<Attached> {
        let ns = l.metadata().namespace();
        let mut out = service_parents(ns, refs, hostnames, self.services);
        if matches!(l.kind(), Kind::HttpRoute | Kind::GrpcRoute) {
            out.extend(self.gateways.attach(l.kind(), ns, refs, hostnames));
        }
        out
    }
}

fn service_parents(
    ns: &str,
    refs: &[ParentReference],
    hostnames: &[String],
    services: &BTreeMap<String, ServiceConfig>,
) -> Vec<Attached> {
    refs.iter()
        .filter(|p| p.is_service())
        .filter_map(|p| {
            let key = format!("{}/{}", p.namespace.as_deref().unwrap_or(ns), p.name);
            let svc = services.get(&key)?;
            let ports = match (&p.port, &p.section_name) {
                (Some(port), _) => vec![*port],
                (None, Some(section)) => svc
                    .ports
                    .iter()
                    .filter(|sp| sp.name.as_ref() == Some(section))
                    .map(|sp| sp.port)
                    .collect(),
                (None, None) => Vec::new(),
            };
            Some(Attached {
                parent: Parent::Service(key),
                ports,
                hostnames: hostnames.to_vec(),
            })
        })
        .collect()
}

/// A mirror's backend defaults to the route's namespace, like every other backend reference.
fn mirrors_in(ns: &str, mut filters: Vec<HttpRouteFilter>) -> Vec<HttpRouteFilter> {
    for f in &mut filters {
        if let Some(m) = &mut f.request_mirror
            && m.backend_ref.namespace.is_none()
        {
            m.backend_ref.namespace = Some(ns.to_string());
        }
    }
    filters
}

pub(super) fn attach(
    config: &Config,
    namespace_labels: &BTreeMap<String, Labels>,
    services: &mut BTreeMap<String, ServiceConfig>,
    gateways: &mut BTreeMap<String, GatewayConfig>,
) {
    let mut routes: Vec<_> = config
        .resources
        .iter()
        .filter(|l| {
            matches!(
                l.resource,
                Resource::HttpRoute(_) | Resource::GrpcRoute(_) | Resource::TcpRoute(_)
            )
        })
        .collect();
    routes.sort_by_key(|l| l.resource.id());
    let parents = Parents {
        services,
        gateways: gateway::Index::new(config, namespace_labels),
    };
    let mut http: BTreeMap<Parent, Vec<Pending>> = BTreeMap::new();
    let mut tcp: Vec<(String, TcpRule)> = Vec::new();
    for l in routes {
        let id = l.resource.id();
        let ns = l.resource.metadata().namespace();
        let backend =
            |name: &str, namespace: &Option<String>, port: Option<u16>, weight: u32, filters| {
                Backend {
                    service: format!("{}/{name}", namespace.as_deref().unwrap_or(ns)),
                    port: port.unwrap_or(0),
                    weight,
                    filters: mirrors_in(ns, filters),
                }
            };
        match &l.resource {
            Resource::HttpRoute(r) => {
                for at in parents.of(&l.resource, &r.spec.parent_refs, &r.spec.hostnames) {
                    for (i, rule) in r.spec.rules.iter().enumerate() {
                        let retry = rule.retry.as_ref().map(|x| Retry {
                            attempts: x.attempts.unwrap_or(2),
                            codes: if x.codes.is_empty() {
                                vec![502, 503, 504]
                            } else {
                                x.codes.clone()
                            },
                            backoff: x.backoff.unwrap_or(Duration::from_millis(25)),
                        });
                        let compiled = HttpRule {
                            name: format!("{id} rule {i}"),
                            filters: mirrors_in(ns, rule.filters.clone()),
                            backends: rule
                                .backend_refs
                                .iter()
                                .filter(|b| b.as_backend().is_service())
                                .map(|b| {
                                    backend(
                                        &b.name,
                                        &b.namespace,
                                        b.port,
                                        b.weight,
                                        b.filters.clone(),
                                    )
                                })
                                .collect(),
                            timeout: rule.timeouts.as_ref().and_then(|t| t.request),
                            per_try_timeout: rule.timeouts.as_ref().and_then(|t| t.backend_request),
                            retry,
                        };
                        let matches = if rule.matches.is_empty() {
                            vec![HttpRouteMatch::default()]
                        } else {
                            rule.matches.clone()
                        };
                        let pending = http.entry(at.parent.clone()).or_default();
                        add_matches(pending, &at, matches, &compiled);
                    }
                }
            }
            Resource::GrpcRoute(r) => {
                for at in parents.of(&l.resource, &r.spec.parent_refs, &r.spec.hostnames) {
                    for (i, rule) in r.spec.rules.iter().enumerate() {
                        let filters = rule.filters.iter().map(|f| f.to_http()).collect();
                        let compiled = HttpRule {
                            name: format!("{id} rule {i}"),
                            filters: mirrors_in(ns, filters),
                            backends: rule
                                .backend_refs
                                .iter()
                                .filter(|b| b.as_backend().is_service())
                                .map(|b| {
                                    let filters = b.filters.iter().map(|f| f.to_http()).collect();
                                    backend(&b.name, &b.namespace, b.port, b.weight, filters)
                                })
                                .collect(),
                            timeout: None,
                            per_try_timeout: None,
                            retry: None,
                        };
                        let matches = if rule.matches.is_empty() {
                            vec![GrpcRouteMatch::default()]
                        } else {
                            rule.matches.clone()
                        };
                        let pending = http.entry(at.parent.clone()).or_default();
                        let matches = matches.iter().map(grpc_match).collect();
                        add_matches(pending, &at, matches, &compiled);
                    }
                }
            }
            Resource::TcpRoute(r) => {
                for at in parents.of(&l.resource, &r.spec.parent_refs, &[]) {
                    let Parent::Service(key) = at.parent else {
                        continue;
                    };
                    for (i, rule) in r.spec.rules.iter().enumerate() {
                        let rule = TcpRule {
                            name: format!("{id} rule {i}"),
                            ports: at.ports.clone(),
                            backends: rule
                                .backend_refs
                                .iter()
                                .filter(|b| b.is_service())
                                .map(|b| {
                                    backend(&b.name, &b.namespace, b.port, b.weight, Vec::new())
                                })
                                .collect(),
                        };
                        tcp.push((key.clone(), rule));
                    }
                }
            }
            _ => {}
        }
    }
    for (key, rule) in tcp {
        if let Some(svc) = services.get_mut(&key) {
            svc.tcp.push(rule);
        }
    }
    for (parent, list) in http {
        let routes = order(list);
        match parent {
            Parent::Service(key) => {
                if let Some(svc) = services.get_mut(&key) {
                    svc.http = Some(routes);
                }
            }
            Parent::Gateway(key) => {
                if let Some(gw) = gateways.get_mut(&key) {
                    gw.http = routes;
                }
            }
        }
    }
}

/// Sorts pending entries by precedence and numbers their rules.
fn order(mut list: Vec<Pending>) -> HttpRoutes {
    // Stable sort: ties keep route name and rule order.
    list.sort_by_key(|(_, hosts, m, _)| std::cmp::Reverse((host_precedence(hosts), precedence(m))));
    let mut rules: Vec<HttpRule> = Vec::new();
    let mut entries = Vec::new();
    for (ports, hostnames, matcher, rule) in list {
        let idx = match rules.iter().position(|r| r.name == rule.name) {
            Some(i) => i,
            None => {
                rules.push(rule);
                rules.len() - 1
            }
        };
        entries.push(MatchEntry {
            ports,
            hostnames,
            matcher,
            rule: idx,
        });
    }
    HttpRoutes { rules, entries }
}

/// Queues one entry per match of a compiled rule, and per host name when there are several, so
/// each can be ordered by how specific its host name is.
fn add_matches(
    pending: &mut Vec<Pending>,
    at: &Attached,
    matches: Vec<HttpRouteMatch>,
    rule: &HttpRule,
) {
    let hosts: Vec<Vec<String>> = if at.hostnames.is_empty() {
        vec![Vec::new()]
    } else {
        at.hostnames.iter().map(|h| vec![h.clone()]).collect()
    };
    for m in matches {
        for h in &hosts {
            pending.push((at.ports.clone(), h.clone(), m.clone(), rule.clone()));
        }
    }
}

/// Gateway API: the longest exact host name first, then the longest wildcard, then any host.
fn host_precedence(hostnames: &[String]) -> (usize, usize) {
    match hostnames.first() {
        None => (0, 0),
        Some(h) if h.starts_with('*') => (0, h.len()),
        Some(h) => (h.len(), h.len()),
    }
}

fn precedence(m: &HttpRouteMatch) -> (u8, usize, bool, usize, usize) {
    let (rank, len) = match &m.path {
        Some(p) => match p.match_type {
            PathMatchType::Exact => (3, p.value.len()),
            PathMatchType::RegularExpression => (2, p.value.len()),
            PathMatchType::PathPrefix => (1, p.value.len()),
        },
        None => (1, 1),
    };
    (
        rank,
        len,
        m.method.is_some(),
        m.headers.len(),
        m.query_params.len(),
    )
}

/// gRPC calls are `POST /<service>/<method>`: method matches become path matches.
fn grpc_match(m: &GrpcRouteMatch) -> HttpRouteMatch {
    let path = m.method.as_ref().and_then(|mm| {
        let (svc, method) = (mm.service.as_deref(), mm.method.as_deref());
        let (match_type, value) = match (mm.match_type, svc, method) {
            (_, None, None) => return None,
            (StringMatchType::Exact, Some(s), Some(me)) => {
                (PathMatchType::Exact, format!("/{s}/{me}"))
            }
            (StringMatchType::Exact, Some(s), None) => (PathMatchType::PathPrefix, format!("/{s}")),
            (StringMatchType::Exact, None, Some(me)) => (
                PathMatchType::RegularExpression,
                format!("/[^/]+/{}", regex::escape(me)),
            ),
            (StringMatchType::RegularExpression, s, me) => (
                PathMatchType::RegularExpression,
                format!("/{}/{}", s.unwrap_or("[^/]+"), me.unwrap_or("[^/]+")),
            ),
        };
        Some(HttpPathMatch { match_type, value })
    });
    HttpRouteMatch {
        path,
        headers: m.headers.clone(),
        query_params: Vec::new(),
        method: m.method.as_ref().map(|_| HttpMethod::Post),
    }
}
