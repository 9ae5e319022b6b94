//! Compiles HTTPRoute, GRPCRoute and TCPRoute rules attached to Services (mesh routing) and
//! HTTPRoute and GRPCRoute rules attached to ingress Gateways into match entries ordered by
//! Gateway API precedence (see [`super::precedence`]). Which Service ports a route attaches to
//! is decided in [`super::parents`], how its backends resolve in [`super::backends`].

use std::collections::BTreeMap;

use super::backends::{Resolver, mirrors_in};
use super::gateway::{self, Labels};
use super::parents::service_parents;
use super::precedence::{Pending, order, route_key};
use super::{GatewayConfig, HttpRule, Retry, ServiceConfig, TcpRule};
use crate::duration::Duration;
use crate::load::Config;
use crate::resources::grpc_route::GrpcRouteMatch;
use crate::resources::http_route::{HttpMethod, HttpPathMatch, HttpRouteMatch, PathMatchType};
use crate::resources::route_common::{ParentReference, StringMatchType};
use crate::resources::{Kind, Resource};

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
        let l7 = matches!(l.kind(), Kind::HttpRoute | Kind::GrpcRoute);
        let mut out = service_parents(ns, refs, l7, self.services);
        if l7 {
            out.extend(self.gateways.attach(l.kind(), ns, refs, hostnames));
        }
        out
    }
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
    routes.sort_by_cached_key(|l| route_key(&l.resource));
    let parents = Parents {
        services,
        gateways: gateway::Index::new(config, namespace_labels),
    };
    let mut http: BTreeMap<Parent, Vec<Pending>> = BTreeMap::new();
    let mut tcp: Vec<(String, TcpRule)> = Vec::new();
    for l in routes {
        let id = l.resource.id();
        let ns = l.resource.metadata().namespace();
        let resolve = Resolver {
            services: parents.services,
            namespace: ns,
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
                            // The Gateway API's route retry has no gRPC conditions.
                            grpc_codes: Vec::new(),
                            backoff: x.backoff.unwrap_or(Duration::from_millis(25)),
                        });
                        let mut filters = rule.filters.clone();
                        let fault = super::faults::take(config, ns, &mut filters);
                        let compiled = HttpRule {
                            name: format!("{id} rule {i}"),
                            filters: mirrors_in(ns, filters),
                            fault,
                            backends: rule
                                .backend_refs
                                .iter()
                                .map(|b| resolve.backend(&b.as_backend(), b.filters.clone()))
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
                        let mut filters = rule.filters.iter().map(|f| f.to_http()).collect();
                        let fault = super::faults::take(config, ns, &mut filters);
                        let compiled = HttpRule {
                            name: format!("{id} rule {i}"),
                            filters: mirrors_in(ns, filters),
                            fault,
                            backends: rule
                                .backend_refs
                                .iter()
                                .map(|b| {
                                    let filters = b.filters.iter().map(|f| f.to_http()).collect();
                                    resolve.backend(&b.as_backend(), filters)
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
                                .map(|b| resolve.backend(b, Vec::new()))
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
