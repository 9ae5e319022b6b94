//! The decisions of a request's journey, without I/O, clocks or the network: which rule
//! matches, which backend is drawn, what the filters do to the request, and how it is to be
//! sent (upstream HTTP version, connect and request timeouts, the retry policy, mirrors).
//! Shared by every role that routes HTTP; table-tested in `plan/tests.rs`. TCP connections
//! get their backend from [`tcp`].

use std::sync::Arc;
use std::time::Duration;

use http::Version;
use http::request::Parts;
use weft_core::model::{Backend, HttpRule, Protocol, TcpRule};
use weft_core::resources::http_route::{HttpFilterType, HttpRouteFilter};

use super::retry::Policy;
use super::table::Table;
use crate::error::{Kind, ProxyError};
use crate::route::{RequestView, pick_backend};
use crate::state::ServiceEntry;
use crate::{authority, filters, forward};

/// The rule a request matched (borrowed from the table: nothing is copied per request), and
/// the backend drawn from it.
#[derive(Debug, Clone)]
pub(crate) struct Route<'a> {
    /// `None`: a Service without routes for this port, served as its own backend.
    pub rule: Option<&'a HttpRule>,
    /// The `PathPrefix` value that matched, for `ReplacePrefixMatch`.
    pub prefix: Option<&'a str>,
    /// `None` when the rule answers by itself (a redirect).
    pub backend: Option<Backend>,
}

/// What to do with a request once its backend is known.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Answer at once, without a body (a `RequestRedirect`).
    Respond(http::response::Parts),
    Forward(Forward),
}

/// How to send a request upstream.
#[derive(Debug)]
pub(crate) struct Forward {
    /// The backend Service: its balancer picks each attempt's endpoint.
    pub service: Arc<ServiceEntry>,
    /// The backend port.
    pub port: u16,
    /// The HTTP version spoken upstream; `None` keeps the client's.
    pub version: Option<Version>,
    pub connect_timeout: Duration,
    /// For the whole request, retries included.
    pub timeout: Option<Duration>,
    pub retry: Policy,
    /// The rule's `ResponseHeaderModifier`s, then the backend's.
    pub response_filters: Vec<HttpRouteFilter>,
    /// Copies to send (bodiless requests only), each with the share of requests it gets.
    pub mirrors: Vec<Mirror>,
}

/// A `RequestMirror`: the Service `ns/name` and port the copy goes to, for `percent` of the
/// requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mirror {
    pub service: String,
    pub port: u16,
    pub percent: u32,
}

/// Matches the request against the table's routes for `port` and draws a backend by weight.
/// A Service port no route attaches to is served as if the Service had no routes; a Gateway
/// listener without a matching route answers 404.
pub(crate) fn route<'a>(
    table: &'a Table,
    port: u16,
    parts: &Parts,
    rng: &mut fastrand::Rng,
) -> Result<Route<'a>, ProxyError> {
    let gateway = matches!(table, Table::Gateway(_));
    let routes = table.routes().filter(|r| gateway || r.covers(port));
    let Some(routes) = routes else {
        return match table {
            Table::Service(key, _) => Ok(Route {
                rule: None,
                prefix: None,
                backend: Some(Backend {
                    service: key.to_string(),
                    port,
                    weight: 1,
                    filters: Vec::new(),
                    unresolved: None,
                }),
            }),
            Table::Gateway(_) => Err(Kind::NoRoute.into()),
        };
    };
    let view = RequestView {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        host: authority::host(&parts.uri, &parts.headers),
        port,
    };
    let selected = routes.select(&view).ok_or(Kind::NoRoute)?;
    let rule = selected.rule;
    let redirects = rule
        .filters
        .iter()
        .any(|f| f.filter_type == HttpFilterType::RequestRedirect);
    let backend = match redirects {
        true => None,
        false => Some(pick(&rule.name, &rule.backends, rng)?.clone()),
    };
    Ok(Route {
        rule: Some(rule),
        prefix: selected.matched_prefix,
        backend,
    })
}

/// Whether the request is a gRPC call (`content-type: application/grpc`, `+proto` etc.).
fn is_grpc(parts: &Parts) -> bool {
    let ct = parts.headers.get(http::header::CONTENT_TYPE);
    ct.and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Applies the filters to the request and decides how to send it to `service`, the Service of
/// `route.backend` (`None` only when the route answers by itself). Timeouts and retries come
/// from the rule, else the called Service's policy (the table's), else the backend's.
/// `bodiless`: the request has no body, so it can be sent again and mirrored (a gRPC call with
/// a body can be sent again too).
pub(crate) fn plan(
    route: Route<'_>,
    service: Option<Arc<ServiceEntry>>,
    table: &Table,
    port: u16,
    bodiless: bool,
    parts: &mut Parts,
) -> Result<Plan, ProxyError> {
    let (prefix, rule) = (route.prefix, route.rule);
    if let Some(rule) = rule
        && let Some(redirect) = filters::apply_to_request(&rule.filters, parts, prefix)
    {
        return Ok(Plan::Respond(redirect.into_parts().0));
    }
    let (Some(backend), Some(service)) = (route.backend, service) else {
        let name = rule.map_or("the route", |r| r.name.as_str());
        return Err(Kind::NoBackend(format!("{name} has no backend")).into());
    };
    if filters::apply_to_request(&backend.filters, parts, prefix).is_some() {
        return Err(Kind::NoBackend("redirects are not allowed on backends".into()).into());
    }
    let bport = if backend.port == 0 {
        port
    } else {
        backend.port
    };
    let policy = table.policy().unwrap_or(&service.config.policy);
    let upgrade = forward::is_upgrade(parts);
    // A port declared http is spoken as HTTP/1.1 upstream, http2/grpc as HTTP/2, whatever the
    // client used; an undeclared port keeps the client's version.
    let version = match service.config.port(bport).map(|p| p.protocol) {
        Some(Protocol::Http) if !upgrade => Some(Version::HTTP_11),
        Some(Protocol::Http2 | Protocol::Grpc) => Some(Version::HTTP_2),
        _ => None,
    };
    let retry = rule
        .and_then(|r| r.retry.as_ref())
        .or(policy.retry.as_ref());
    let per_try = rule
        .and_then(|r| r.per_try_timeout)
        .or(policy.per_try_timeout);
    // A body is streamed, and sent once — but a gRPC call always has one, and is kept for its
    // retries (see `replay`). An upgrade hands the connection over on the first answer: it is
    // never sent again.
    let replayable = (bodiless || is_grpc(parts)) && !upgrade;
    let retry = Policy::new(retry, per_try.map(|d| d.as_std()), replayable);
    let mut response_filters = Vec::new();
    let mut mirrors = Vec::new();
    if let Some(rule) = rule {
        response_filters.extend(rule.filters.iter().filter(|f| is_response(f)).cloned());
        if bodiless {
            mirrors.extend(filters::mirrors(&rule.filters).map(|m| Mirror {
                service: format!(
                    "{}/{}",
                    m.backend_ref.namespace.as_deref().unwrap_or(table.namespace()),
                    m.backend_ref.name
                ),
                port: m.backend_ref.port.unwrap_or(port),
                percent: m.percent.unwrap_or(100),
            }));
        }
    }
    response_filters.extend(backend.filters.iter().filter(|f| is_response(f)).cloned());
    Ok(Plan::Forward(Forward {
        connect_timeout: service.config.policy.connect_timeout.as_std(),
        timeout: rule
            .and_then(|r| r.timeout)
            .or(policy.timeout)
            .map(|d| d.as_std()),
        service,
        port: bport,
        version,
        retry,
        response_filters,
        mirrors,
    }))
}

fn is_response(f: &HttpRouteFilter) -> bool {
    f.filter_type == HttpFilterType::ResponseHeaderModifier
}

/// The backend of an opaque TCP connection to `port` of `service`: its first TCPRoute rule
/// for the port, drawn by weight, else the Service itself. `port` is the backend port.
pub(crate) fn tcp<'a>(
    service: &'a ServiceEntry,
    port: u16,
    rng: &mut fastrand::Rng,
) -> Result<(Option<&'a TcpRule>, String, u16), ProxyError> {
    let rule = (service.config.tcp.iter()).find(|r| r.ports.is_empty() || r.ports.contains(&port));
    let Some(rule) = rule else {
        return Ok((None, service.config.key(), port));
    };
    let b = pick(&rule.name, &rule.backends, rng)?;
    if let Some(e) = ProxyError::unresolved(b) {
        return Err(e);
    }
    let bport = if b.port == 0 { port } else { b.port };
    Ok((Some(rule), b.service.clone(), bport))
}

/// A backend drawn by weight from the rule `name`.
fn pick<'a>(
    name: &str,
    backends: &'a [Backend],
    rng: &mut fastrand::Rng,
) -> Result<&'a Backend, ProxyError> {
    pick_backend(backends, rng)
        .ok_or_else(|| Kind::NoBackend(format!("{name} has no backend with weight > 0")).into())
}

#[cfg(test)]
mod tests;
