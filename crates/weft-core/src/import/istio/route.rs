//! VirtualService → HTTPRoute (a GRPCRoute when every parent is a gRPC Service and the rules
//! fit one; TCPRoutes for `tcp` routes), with a Fault per rule that injects faults.
//!
//! Parents: a mesh VirtualService (no `gateways`, or `mesh`) attaches to the Services its
//! hosts name; one bound to an Istio Gateway attaches to the converted Gateway, with its hosts
//! as `hostnames`. Destinations with a subset go to the subset's per-version Service (see
//! [`super::destination`]).

use serde_json::{Map, Value, json};

use super::Converted;
use super::context::{Context, Host};
use super::matches::{self, Match};
use super::route_filters as filters;
use super::types::{HttpRoute, TcpRoute, VirtualService, spec};
use crate::resources::{GATEWAY_API, fault};

/// One converted rule, before it gets its place.
pub(super) struct Rule {
    /// The Istio route it came from.
    pub from: usize,
    pub value: Map<String, Value>,
    pub notes: Vec<String>,
}

pub(super) struct Scope<'a> {
    pub ctx: &'a Context,
    pub ns: &'a str,
    pub vs: &'a str,
}

pub(super) fn convert(ctx: &mut Context, i: usize, c: &mut Converted) -> Result<(), String> {
    let d = &ctx.docs[i];
    let vs: VirtualService = spec(&d.value)?;
    let (ns, name) = (d.namespace.clone(), d.name.clone());
    let scope = Scope {
        ctx,
        ns: &ns,
        vs: &name,
    };
    let mut general = Vec::new();
    let (parents, hostnames, services) = parents(&scope, &vs, &mut general)?;

    let mut rules: Vec<Rule> = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    let mut faults: Vec<Value> = Vec::new();
    for (k, r) in vs.http.iter().enumerate() {
        match http_rules(&scope, r, k, &mut faults) {
            Ok(mut list) => rules.append(&mut list),
            Err(why) => dropped.push(why),
        }
    }
    for (a, b) in matches::reordered(
        &rules
            .iter()
            .map(|r| {
                let m = r.value.get("matches").and_then(Value::as_array);
                (r.from, m.cloned().unwrap_or_default())
            })
            .collect::<Vec<_>>(),
    ) {
        if let Some(r) = rules.iter_mut().find(|r| r.from == b) {
            r.notes.push(format!(
                "http[{b}] outranks http[{a}] here: Istio tries routes in order and sent a request matching both to http[{a}]; weft (Gateway API) picks the more specific match, http[{b}]"
            ));
        }
    }

    let grpc = !services.is_empty()
        && services.iter().all(|(s_ns, s)| {
            let ports = &ctx.services[&(s_ns.clone(), s.clone())].ports;
            !ports.is_empty() && ports.iter().all(|p| p.is_grpc())
        });
    let mut kind = "HTTPRoute";
    let mut rule_values: Vec<Value> = rules
        .iter()
        .map(|r| Value::Object(r.value.clone()))
        .collect();
    if grpc {
        match rule_values
            .iter()
            .map(filters::to_grpc)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(list) => {
                kind = "GRPCRoute";
                rule_values = list;
            }
            Err(why) => general.push(format!(
                "an HTTPRoute for gRPC Services: {why} (weft routes gRPC calls as HTTP/2 requests)"
            )),
        }
    }

    if !vs.http.is_empty() {
        let mut spec = Map::new();
        spec.insert("parentRefs".into(), json!(parents));
        if !hostnames.is_empty() {
            spec.insert("hostnames".into(), json!(hostnames));
        }
        let defaults = if kind == "HTTPRoute" {
            default_retries(&mut rule_values)
        } else {
            Vec::new()
        };
        spec.insert("rules".into(), Value::Array(rule_values));
        let out = c.add(json!({
            "apiVersion": GATEWAY_API,
            "kind": kind,
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }));
        for (k, r) in rules.iter().enumerate() {
            for n in &r.notes {
                c.note(out, &format!("spec.rules[{k}]"), n.clone());
            }
        }
        for why in dropped {
            c.note(out, "spec.rules", why);
        }
        for k in defaults {
            c.comment(
                out,
                &format!("spec.rules[{k}].retry"),
                "Istio's default retries, written out (weft retries only what a route or TrafficPolicy says)",
            );
        }
    }
    for f in faults {
        c.add(f);
    }
    for (k, t) in vs.tcp.iter().enumerate() {
        tcp_route(&scope, t, k, vs.tcp.len(), &services, c);
    }
    for g in general {
        c.general(g);
    }
    if vs.tls.is_some() {
        c.general(
            "tls: not converted (weft has no TLSRoute: SNI routing of TLS it does not terminate)",
        );
    }
    if vs.export_to.is_some() {
        c.general("exportTo: not converted (a weft route applies to every client of its parents)");
    }
    c.unknown(None, "", "", &vs.rest);
    if c.outs.is_empty() {
        return Err("no http or tcp routes that weft can serve".into());
    }
    Ok(())
}

/// Rules that send to backends and say nothing of retries get Istio's default: 2 retries on
/// connection failures (which weft always retries) and 503. Returns their indexes.
fn default_retries(rules: &mut [Value]) -> Vec<usize> {
    let mut out = Vec::new();
    for (k, r) in rules.iter_mut().enumerate() {
        let Some(o) = r.as_object_mut() else { continue };
        let backends = o.get("backendRefs").and_then(Value::as_array);
        if o.contains_key("retry") || backends.is_none_or(Vec::is_empty) {
            continue;
        }
        o.insert("retry".into(), json!({"attempts": 2, "codes": [503]}));
        out.push(k);
    }
    out
}

type Parents = (Vec<Value>, Vec<String>, Vec<(String, String)>);

/// The parentRefs, hostnames and mesh Services of a VirtualService.
fn parents(
    s: &Scope<'_>,
    vs: &VirtualService,
    general: &mut Vec<String>,
) -> Result<Parents, String> {
    let mesh = vs.gateways.is_empty() || vs.gateways.iter().any(|g| g == "mesh");
    let gateways: Vec<&String> = vs.gateways.iter().filter(|g| *g != "mesh").collect();
    let mut refs = Vec::new();
    let mut services = Vec::new();
    if mesh {
        for h in &vs.hosts {
            match s.ctx.resolve(h, s.ns) {
                Host::Service(ns, name) | Host::Missing(ns, name) => {
                    if !s.ctx.services.contains_key(&(ns.clone(), name.clone())) {
                        general.push(format!(
                            "host {h}: no Service {ns}/{name} in the input; the route attaches to it once it exists"
                        ));
                    } else if !services.contains(&(ns.clone(), name.clone())) {
                        services.push((ns.clone(), name.clone()));
                    }
                    let mut r = json!({"group": "", "kind": "Service", "name": name});
                    if ns != s.ns {
                        r["namespace"] = json!(ns);
                        general.push(format!(
                            "host {h}: a route in {} for a Service in {ns} is a consumer route in weft (Gateway API): it applies to clients in {} only",
                            s.ns, s.ns
                        ));
                    }
                    if !refs.contains(&r) {
                        refs.push(r);
                    }
                }
                Host::External(h) if gateways.is_empty() => general.push(format!(
                    "host {h}: not converted (not a Service of the mesh; weft routes mesh traffic by Service)"
                )),
                Host::External(_) => {}
            }
        }
    }
    let mut hostnames = Vec::new();
    if !gateways.is_empty() {
        for g in gateways {
            let (gns, gname) = match g.split_once('/') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (s.ns.to_string(), g.clone()),
            };
            let base = |section: Option<&String>| {
                let mut r = json!({"name": gname});
                if gns != s.ns {
                    r["namespace"] = json!(gns);
                }
                if let Some(sec) = section {
                    r["sectionName"] = json!(sec);
                }
                r
            };
            match s.ctx.gateways.get(&(gns.clone(), gname.clone())) {
                Some(listeners) if !listeners.is_empty() => {
                    refs.extend(listeners.iter().map(|l| base(Some(l))));
                }
                Some(_) => general.push(format!(
                    "gateway {g}: none of its servers is converted; no route attaches to it"
                )),
                None => {
                    general.push(format!(
                        "gateway {g}: not in the input; the route names the Gateway API Gateway {gname} it would become"
                    ));
                    refs.push(base(None));
                }
            }
        }
        hostnames = vs
            .hosts
            .iter()
            .filter(|h| *h != "*")
            .map(|h| h.split_once('/').map_or(h.as_str(), |(_, x)| x).to_string())
            .collect();
    }
    if refs.is_empty() {
        return Err(
            "no host names a Service and no gateway is bound: nothing to attach a route to".into(),
        );
    }
    Ok((refs, hostnames, services))
}

/// One Istio HTTP route as weft rules: usually one, two when a URL rewrite needs its prefix
/// matches apart from its other matches. `Err`: the route is dropped, and why.
fn http_rules(
    s: &Scope<'_>,
    r: &HttpRoute,
    k: usize,
    faults: &mut Vec<Value>,
) -> Result<Vec<Rule>, String> {
    let at = format!("http[{k}]");
    if r.delegate.is_some() {
        return Err(format!(
            "{at}: not converted (delegate: weft has no route delegation; write the delegate's routes here)"
        ));
    }
    let mut notes = Vec::new();
    let mut converted: Vec<Match> = Vec::new();
    let mut failed = Vec::new();
    for (j, m) in r.matches.iter().enumerate() {
        match matches::http_match(m, &format!("{at}.match[{j}]"), &mut notes) {
            Ok(m) => converted.push(m),
            Err(why) => failed.push(why),
        }
    }
    if !r.matches.is_empty() && converted.is_empty() {
        return Err(format!(
            "{at}: not converted, no match of it converts: {}",
            failed.join("; ")
        ));
    }
    for why in failed {
        notes.push(format!(
            "{why}; this match is left out (without it the rule would match more than in Istio)"
        ));
    }

    let mut rule = Map::new();
    if let Some(name) = &r.name {
        rule.insert("name".into(), json!(name));
    }
    let mut list = Vec::new();
    if let Some(fault) = &r.fault {
        let name = filters::fault_name(s.vs, r.name.as_deref(), k);
        match filters::fault(fault, &name, s.ns, &at, &mut notes) {
            Ok(doc) => {
                faults.push(doc);
                list.push(json!({"type": "ExtensionRef", "extensionRef": {"group": fault::GROUP, "kind": fault::KIND, "name": name}}));
            }
            Err(why) => notes.push(why),
        }
    }
    if let Some(h) = &r.headers {
        list.extend(filters::headers(h, &format!("{at}.headers"), &mut notes));
    }
    list.extend(filters::mirrors(s, r, &at, &mut notes));
    if r.cors_policy.is_some() {
        notes.push(format!(
            "{at}.corsPolicy: not converted (weft has no CORS filter)"
        ));
    }
    for key in r.rest.keys() {
        notes.push(format!(
            "{at}.{key}: not converted (weft has no equivalent)"
        ));
    }

    let timeout = r
        .timeout
        .as_deref()
        .map(matches::duration)
        .transpose()
        .map_err(|e| format!("{at}.timeout: {e}"))?;
    let mut timeouts = Map::new();
    if let Some(t) = timeout.filter(|t| !t.is_zero()) {
        timeouts.insert("request".into(), json!(t.to_string()));
    }
    if let Some(retries) = &r.retries {
        let x = matches::retry(retries, &format!("{at}.retries"), &mut notes)?;
        if let Some(mut p) = x.per_try.filter(|p| !p.is_zero()) {
            if let Some(t) = timeout.filter(|t| !t.is_zero() && *t < p) {
                notes.push(format!(
                    "{at}.retries.perTryTimeout {p} is longer than the route's timeout {t}: cut to {t} (weft requires backendRequest <= request)"
                ));
                p = t;
            }
            timeouts.insert("backendRequest".into(), json!(p.to_string()));
        }
        rule.insert("retry".into(), x.retry);
    }
    if !timeouts.is_empty() {
        rule.insert("timeouts".into(), Value::Object(timeouts));
    }

    if let Some(redirect) = &r.redirect {
        list.push(filters::redirect(redirect, &at, &mut notes));
        if !r.route.is_empty() {
            notes.push(format!(
                "{at}.route: ignored, as Istio does, beside a redirect"
            ));
        }
    } else if r.direct_response.is_some() {
        notes.push(format!(
            "{at}.directResponse: not converted (weft has no direct responses); the rule has no backends, so weft answers 500"
        ));
    } else {
        let backends = filters::backends(s, &r.route, &at, &mut notes);
        rule.insert("backendRefs".into(), Value::Array(backends));
    }

    // A rewrite of the matched prefix applies to prefix matches; other matches get the whole
    // path rewritten, in a rule of their own.
    let groups: Vec<(Vec<Match>, Option<Value>)> = match &r.rewrite {
        None => vec![(converted, None)],
        Some(rw) => filters::rewrite_groups(rw, converted, &at, &mut notes),
    };
    let mut out = Vec::new();
    for (n, (ms, rewrite)) in groups.into_iter().enumerate() {
        let mut v = rule.clone();
        if n > 0
            && let Some(name) = v.get("name").and_then(Value::as_str)
        {
            v.insert("name".into(), json!(format!("{name}-{n}")));
        }
        if !ms.is_empty() {
            v.insert(
                "matches".into(),
                Value::Array(ms.into_iter().map(|m| m.value).collect()),
            );
        }
        let mut fl = list.clone();
        if let Some(rw) = rewrite {
            fl.push(rw);
        }
        if !fl.is_empty() {
            v.insert("filters".into(), Value::Array(fl));
        }
        // Keep the Gateway API field order: name, matches, filters, backendRefs, timeouts, retry.
        let order = [
            "name",
            "matches",
            "filters",
            "backendRefs",
            "timeouts",
            "retry",
        ];
        let mut sorted = Map::new();
        for key in order {
            if let Some(x) = v.remove(key) {
                sorted.insert(key.into(), x);
            }
        }
        out.push(Rule {
            from: k,
            value: sorted,
            notes: if n == 0 { notes.clone() } else { Vec::new() },
        });
    }
    Ok(out)
}

/// A `tcp` route as a TCPRoute on the mesh Services (on the matched ports).
fn tcp_route(
    s: &Scope<'_>,
    t: &TcpRoute,
    k: usize,
    count: usize,
    services: &[(String, String)],
    c: &mut Converted,
) {
    let at = format!("tcp[{k}]");
    let mut notes = Vec::new();
    let ports: Vec<u16> = t.matches.iter().filter_map(|m| m.port).collect();
    for (j, m) in t.matches.iter().enumerate() {
        for key in m.rest.keys() {
            notes.push(format!(
                "{at}.match[{j}].{key}: not converted (a TCPRoute matches no more than the parent's port)"
            ));
        }
    }
    let mut parents = Vec::new();
    for (ns, name) in services {
        let base = json!({"group": "", "kind": "Service", "name": name});
        let mut with_ns = base.clone();
        if ns != s.ns {
            with_ns["namespace"] = json!(ns);
        }
        if ports.is_empty() {
            parents.push(with_ns);
        } else {
            for p in &ports {
                let mut r = with_ns.clone();
                r["port"] = json!(p);
                parents.push(r);
            }
        }
    }
    if parents.is_empty() {
        c.general(format!(
            "{at}: not converted (no mesh Service to attach a TCPRoute to)"
        ));
        return;
    }
    let backends = filters::backends(s, &t.route, &at, &mut notes);
    let name = if count == 1 {
        format!("{}-tcp", s.vs)
    } else {
        format!("{}-tcp-{k}", s.vs)
    };
    let out = c.add(json!({
        "apiVersion": "gateway.networking.k8s.io/v1alpha2",
        "kind": "TCPRoute",
        "metadata": {"name": name, "namespace": s.ns},
        "spec": {"parentRefs": parents, "rules": [{"backendRefs": backends}]},
    }));
    for n in notes {
        c.note(out, "spec.rules[0]", n);
    }
    c.unknown(Some(out), "spec", &format!("{at}."), &t.rest);
}
