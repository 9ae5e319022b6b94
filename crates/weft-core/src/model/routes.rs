//! Compiles HTTPRoute, GRPCRoute and TCPRoute rules attached to Services into match entries
//! ordered by Gateway API precedence: exact path, longest prefix, method, most headers, most
//! query parameters, then route name and rule order.

use std::collections::BTreeMap;

use super::{Backend, HttpRoutes, HttpRule, MatchEntry, Retry, ServiceConfig, TcpRule};
use crate::duration::Duration;
use crate::load::Config;
use crate::resources::Resource;
use crate::resources::grpc_route::GrpcRouteMatch;
use crate::resources::http_route::{HttpMethod, HttpPathMatch, HttpRouteMatch, PathMatchType};
use crate::resources::route_common::{ParentReference, StringMatchType};

/// Ports, hostnames, one match and its rule, before ordering.
type Pending = (Vec<u16>, Vec<String>, HttpRouteMatch, HttpRule);

struct Attached {
    service: String,
    ports: Vec<u16>,
}

fn parents(
    ns: &str,
    refs: &[ParentReference],
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
                service: key,
                ports,
            })
        })
        .collect()
}

pub(super) fn attach(config: &Config, services: &mut BTreeMap<String, ServiceConfig>) {
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
    let mut http: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
    for l in routes {
        let id = l.resource.id();
        let ns = l.resource.metadata().namespace();
        let backend =
            |name: &str, namespace: &Option<String>, port: Option<u16>, weight: u32, filters| {
                Backend {
                    service: format!("{}/{name}", namespace.as_deref().unwrap_or(ns)),
                    port: port.unwrap_or(0),
                    weight,
                    filters,
                }
            };
        match &l.resource {
            Resource::HttpRoute(r) => {
                for at in parents(ns, &r.spec.parent_refs, services) {
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
                            filters: rule.filters.clone(),
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
                        let pending = http.entry(at.service.clone()).or_default();
                        add_matches(pending, &at, &r.spec.hostnames, matches, &compiled);
                    }
                }
            }
            Resource::GrpcRoute(r) => {
                for at in parents(ns, &r.spec.parent_refs, services) {
                    for (i, rule) in r.spec.rules.iter().enumerate() {
                        let compiled = HttpRule {
                            name: format!("{id} rule {i}"),
                            filters: rule.filters.iter().map(|f| f.to_http()).collect(),
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
                        let pending = http.entry(at.service.clone()).or_default();
                        let matches = matches.iter().map(grpc_match).collect();
                        add_matches(pending, &at, &r.spec.hostnames, matches, &compiled);
                    }
                }
            }
            Resource::TcpRoute(r) => {
                for at in parents(ns, &r.spec.parent_refs, services) {
                    let Some(svc) = services.get_mut(&at.service) else {
                        continue;
                    };
                    for (i, rule) in r.spec.rules.iter().enumerate() {
                        svc.tcp.push(TcpRule {
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
                        });
                    }
                }
            }
            _ => {}
        }
    }
    for (key, mut list) in http {
        let Some(svc) = services.get_mut(&key) else {
            continue;
        };
        // Stable sort: ties keep route name and rule order.
        list.sort_by_key(|(_, _, m, _)| std::cmp::Reverse(precedence(m)));
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
        svc.http = Some(HttpRoutes { rules, entries });
    }
}

/// Queues one entry per match of a compiled rule.
fn add_matches(
    pending: &mut Vec<Pending>,
    at: &Attached,
    hostnames: &[String],
    matches: Vec<HttpRouteMatch>,
    rule: &HttpRule,
) {
    for m in matches {
        pending.push((at.ports.clone(), hostnames.to_vec(), m, rule.clone()));
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
