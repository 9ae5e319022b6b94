//! The checks `weft diagnose` makes before sending anything: the source and its proxy, the
//! name, the route, the endpoints, identities and mTLS, and the authorization decision, each
//! worked out with the model the control plane serves and the matcher the proxies run.

use std::sync::Arc;

use serde_json::Value;
use weft_core::model::{Endpoint, HttpRule, Protocol, ServiceConfig};
use weft_local::plan::PodPlan;
use weft_local::status::PodStatus;
use weft_proxy::route::explain;

use super::facts::{Destination, Facts};
use super::{Mark, Problem, Report};

/// The request `weft diagnose` reasons about (and then sends).
pub struct Request<'a> {
    pub method: &'a str,
    pub headers: &'a [(String, String)],
}

/// What the checks settled, for the probe: the Service and port, and the pods expected to
/// answer.
pub struct Route {
    pub service: Arc<ServiceConfig>,
    pub port: u16,
    pub endpoints: Vec<Endpoint>,
    pub rule: Option<HttpRule>,
}

/// The source pod and its proxy. A config its proxy rejected is a problem of this request when
/// it is the proxy's own or the destination's (`dst`, `ns/name`); others are only shown.
pub fn source(
    f: &Facts,
    pod: &PodPlan,
    st: &PodStatus,
    sync: Option<&Value>,
    dst: Option<&str>,
    r: &mut Report,
) {
    let identity = f.identity(pod.ip.into());
    let mut lines = vec![format!(
        "{}/{} (workload {}, {} mode, {} ready: app {}, proxy {})",
        pod.namespace,
        pod.name,
        pod.workload,
        st.mode,
        if st.ready() { "is" } else { "NOT" },
        st.app.state,
        st.proxy.state
    )];
    if let Some(id) = &identity {
        lines.push(format!("identity {id}"));
    }
    let mut mark = Mark::Ok;
    if st.mode == "sidecar" && st.proxy.state != "ready" {
        mark = Mark::Fail;
        r.problem(Problem::new(
            format!("the source's sidecar is not ready ({})", st.proxy.state),
            format!("look at `weft logs {}/{} --proxy`", pod.namespace, pod.name),
        ));
    }
    if let Some(states) = sync.and_then(|s| proxy_sync(s, pod, st)) {
        for (ty, state, error) in states {
            let ours = ty == "Proxy" || dst.is_some_and(|d| error.contains(d));
            match state.as_str() {
                "NACKED" if !ours => {
                    mark = mark.max(Mark::Warn);
                    lines.push(format!(
                        "its proxy rejected a {ty} config this request does not use: {error}"
                    ));
                }
                "NACKED" => {
                    mark = Mark::Fail;
                    lines.push(format!("its proxy REJECTED the {ty} config: {error}"));
                    r.problem(Problem::new(
                        format!("the source's proxy rejected its {ty} config: {error}"),
                        "fix the config the message names (`weft analyze --live` shows it), or upgrade the proxy; it runs on its last good config until then".to_string(),
                    ));
                }
                "STALE" => {
                    mark = mark.max(Mark::Warn);
                    lines.push(format!("its proxy is STALE on {ty}: the control plane's newest config has not reached it"));
                    r.problem(Problem::new(
                        format!("the source's proxy is STALE on {ty}: it has not acknowledged the newest config"),
                        format!("check the control plane's reach: `weft status`, `weft logs {}/{} --proxy`", pod.namespace, pod.name),
                    ));
                }
                _ => {}
            }
        }
    }
    if st.mode == "none" {
        lines.push("no proxy: the request leaves as plaintext, with no identity".into());
    }
    r.step("Source", mark, lines);
}

/// The proxy's entries in `/debug/syncz`: (type, state, nack error).
fn proxy_sync(
    list: &Value,
    pod: &PodPlan,
    st: &PodStatus,
) -> Option<Vec<(String, String, String)>> {
    let id = format!("{}.{}", pod.name, pod.namespace);
    let node = st.served_by.clone().unwrap_or_default();
    let entry = list.as_array()?.iter().find(|p| {
        p["node"]["id"] == id.as_str()
            || (st.mode == "ambient"
                && p["node"]["role"] == "node"
                && p["node"]["pod"] == node.as_str())
    })?;
    let types = entry["types"].as_object()?;
    Some(
        types
            .iter()
            .map(|(ty, t)| {
                (
                    ty.trim_start_matches("weft.dev/").to_string(),
                    t["state"].as_str().unwrap_or("?").to_string(),
                    t["nack"]["error"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
    )
}

/// Resolves the destination to a Service and port.
pub fn name(
    f: &Facts,
    src: &PodPlan,
    dst: &Destination,
    r: &mut Report,
) -> Option<(Arc<ServiceConfig>, u16)> {
    let Some(svc) = f.service(&dst.host, &src.namespace) else {
        let names = f.service_names();
        let near = names
            .iter()
            .map(|n| {
                (
                    strsim::damerau_levenshtein(&dst.host, n.rsplit('/').next().unwrap_or(n)),
                    n,
                )
            })
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, n)| n.clone());
        r.step(
            "Name",
            Mark::Fail,
            vec![format!(
                "{:?} is no Service of the mesh (seen from namespace {})",
                dst.host, src.namespace
            )],
        );
        r.problem(Problem::new(
            format!("{:?} does not resolve to a Service", dst.host),
            match near {
                Some(n) => format!("did you mean {n}? Services: {}", names.join(", ")),
                None => format!("Services: {}", names.join(", ")),
            },
        ));
        return None;
    };
    let ports: Vec<String> = svc.ports.iter().map(|p| p.port.to_string()).collect();
    let port = match dst.port {
        Some(p) => p,
        None => match svc.ports.first() {
            Some(p) => p.port,
            None => {
                r.step(
                    "Name",
                    Mark::Fail,
                    vec![format!("Service {} has no ports", svc.key())],
                );
                r.problem(Problem::new(
                    format!("Service {} has no ports", svc.key()),
                    "add a port to its spec.ports",
                ));
                return None;
            }
        },
    };
    let Some(pc) = svc.port(port) else {
        r.step(
            "Name",
            Mark::Fail,
            vec![format!(
                "Service {} has no port {port} (ports: {})",
                svc.key(),
                ports.join(", ")
            )],
        );
        r.problem(Problem::new(
            format!("Service {} has no port {port}", svc.key()),
            format!(
                "call one of its ports ({}), or add port {port} to the Service",
                ports.join(", ")
            ),
        ));
        return None;
    };
    let vip = svc.vip.map_or("no address".to_string(), |v| v.to_string());
    r.step(
        "Name",
        Mark::Ok,
        vec![format!(
            "{} → Service {} at {vip}:{port} ({})",
            dst.host,
            svc.key(),
            format!("{:?}", pc.protocol).to_lowercase()
        )],
    );
    Some((svc, port))
}

/// The rule the request matches and the Services it leads to.
pub fn route(
    f: &Facts,
    svc: &Arc<ServiceConfig>,
    port: u16,
    dst: &Destination,
    ask: &Request<'_>,
    r: &mut Report,
) -> Option<Route> {
    let http = svc.port(port).is_some_and(|p| p.protocol != Protocol::Tcp);
    if let Some(w) = &svc.waypoint {
        r.step(
            "Route",
            Mark::Info,
            vec![format!(
                "through waypoint {}: its routes and policies apply there",
                w.service
            )],
        );
    }
    let routes = svc
        .http
        .as_ref()
        .filter(|h| http && explain::covers(h, port));
    let Some(routes) = routes else {
        r.step(
            "Route",
            Mark::Ok,
            vec![format!(
                "no route attaches to port {port}: straight to {}'s endpoints",
                svc.key()
            )],
        );
        return Some(Route {
            service: svc.clone(),
            port,
            endpoints: svc.endpoints.clone(),
            rule: None,
        });
    };
    let req = explain::Request {
        method: ask.method,
        path: &dst.path,
        host: &dst.host,
        port,
        headers: ask.headers,
    };
    let rule = match explain::select(routes, &req) {
        Ok(rule) => rule,
        Err(e) => {
            r.step(
                "Route",
                Mark::Fail,
                vec![format!("the routes cannot be compiled: {e}")],
            );
            r.problem(Problem::new(
                format!(
                    "the routes of {} are refused by the proxies: {e}",
                    svc.key()
                ),
                "fix the route the message names; `weft analyze` checks it",
            ));
            return None;
        }
    };
    let mut lines: Vec<String> = Vec::new();
    let Some(rule) = rule else {
        lines.push(format!(
            "no rule matches {} {} on port {port}; the rules:",
            ask.method, dst.path
        ));
        lines.extend(
            routes
                .entries
                .iter()
                .map(|e| format!("  {}: {}", routes.rules[e.rule].name, describe_match(e))),
        );
        r.step("Route", Mark::Fail, lines);
        r.problem(Problem::new(
            format!("no route of {} matches {} {} (the proxy answers 404, flag NR)", svc.key(), ask.method, dst.path),
            "add a rule that matches this path (or a catch-all PathPrefix /), or call a path a rule matches".to_string(),
        ));
        return None;
    };
    lines.push(format!("{} matches", rule.name));
    let others: Vec<String> = routes
        .entries
        .iter()
        .filter(|e| routes.rules[e.rule].name != rule.name)
        .map(|e| format!("  not {}: {}", routes.rules[e.rule].name, describe_match(e)))
        .collect();
    lines.extend(others);
    let total: u32 = rule.backends.iter().map(|b| b.weight).sum();
    for b in &rule.backends {
        let share = if total > 0 {
            f64::from(b.weight) * 100.0 / f64::from(total)
        } else {
            0.0
        };
        let state = b
            .unresolved
            .as_deref()
            .map_or(String::new(), |u| format!(" — UNRESOLVED: {u}"));
        lines.push(format!(
            "backend {}:{} {share:.0}%{state}",
            b.service, b.port
        ));
    }
    if let Some(t) = rule.timeout {
        lines.push(format!("timeout {t}"));
    }
    let mut mark = Mark::Ok;
    let mut endpoints = Vec::new();
    for b in rule.backends.iter().filter(|b| b.weight > 0) {
        if let Some(u) = &b.unresolved {
            mark = Mark::Fail;
            r.problem(Problem::new(
                format!(
                    "{} sends requests to {}:{}, which does not resolve: {u} (those answer 500)",
                    rule.name, b.service, b.port
                ),
                "fix the backendRef: name an existing Service and port",
            ));
            continue;
        }
        if let Some(s) = f.snapshot.services.get(&b.service) {
            endpoints.extend(
                s.endpoints
                    .iter()
                    .filter(|e| e.ports.contains_key(&b.port))
                    .cloned(),
            );
        }
    }
    r.step("Route", mark, lines);
    Some(Route {
        service: svc.clone(),
        port,
        endpoints,
        rule: Some(rule),
    })
}

fn describe_match(e: &weft_core::model::MatchEntry) -> String {
    let m = &e.matcher;
    let mut parts = Vec::new();
    if let Some(p) = &m.path {
        parts.push(
            format!("path {:?} {}", p.match_type, p.value)
                .to_lowercase()
                .replacen("pathprefix", "prefix", 1),
        );
    }
    if let Some(method) = m.method {
        parts.push(
            format!("method {method:?}")
                .to_uppercase()
                .replacen("METHOD", "method", 1),
        );
    }
    for h in &m.headers {
        parts.push(format!("header {}={}", h.name, h.value));
    }
    for q in &m.query_params {
        parts.push(format!("query {}={}", q.name, q.value));
    }
    if !e.hostnames.is_empty() {
        parts.push(format!("hosts {}", e.hostnames.join(",")));
    }
    if parts.is_empty() {
        "any request".into()
    } else {
        parts.join(", ")
    }
}

/// The endpoints: ready ones, and why the others are not.
pub fn endpoints(f: &Facts, route: &Route, r: &mut Report) -> bool {
    let mut lines = Vec::new();
    for e in &route.endpoints {
        let target = e.target(route.port).map_or("?".into(), |t| t.to_string());
        let proxy = if e.tunnel.is_some() {
            "mTLS"
        } else {
            "plaintext (no proxy)"
        };
        lines.push(format!(
            "{target} {} ready, {proxy}, identity {}",
            e.pod, e.identity
        ));
    }
    let backends: Vec<String> = match &route.rule {
        Some(rule) => rule
            .backends
            .iter()
            .filter(|b| b.weight > 0)
            .map(|b| b.service.clone())
            .collect(),
        None => vec![route.service.key()],
    };
    let mut unready = Vec::new();
    for key in &backends {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        for (pod, st) in f.selected_pods(ns, name) {
            if st.is_some_and(PodStatus::ready) {
                continue;
            }
            let why = st.map_or("not started".to_string(), not_ready_reason);
            unready.push(format!("{}/{} not ready: {why}", pod.namespace, pod.name));
        }
    }
    lines.extend(unready.iter().cloned());
    if route.endpoints.is_empty() {
        let why = if unready.is_empty() {
            "no pod is selected by the Service (check its selector and the pods' labels)"
                .to_string()
        } else {
            unready.join("; ")
        };
        lines.insert(0, "no ready endpoint".into());
        r.step("Endpoints", Mark::Fail, lines);
        r.problem(Problem::new(
            format!(
                "no ready endpoint for {} (the proxy answers 503, flag UH): {why}",
                backends.join(", ")
            ),
            "make the pods ready: `weft get pods` and `weft logs POD` show why they are not",
        ));
        return false;
    }
    let mark = if unready.is_empty() {
        Mark::Ok
    } else {
        Mark::Warn
    };
    r.step("Endpoints", mark, lines);
    true
}

fn not_ready_reason(s: &PodStatus) -> String {
    if let Some(why) = s.not_ready(weft_local::status::now_ms()) {
        return why.to_string();
    }
    if s.terminating {
        return "terminating".into();
    }
    let mut parts = vec![format!("app {}", s.app.state)];
    if let Some(exit) = &s.app.last_exit {
        parts.push(format!("last {exit}, {} restarts", s.app.restarts));
    }
    if matches!(s.mode.as_str(), "sidecar" | "ambient") && s.proxy.state != "ready" {
        parts.push(format!("proxy {}", s.proxy.state));
    }
    parts.join(", ")
}
