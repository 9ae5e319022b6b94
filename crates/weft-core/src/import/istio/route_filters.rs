//! The parts of an Istio HTTP route that become Gateway API filters and backends: faults
//! (a weft `Fault` referenced by an ExtensionRef filter), header operations, mirrors,
//! redirects, rewrites and weighted destinations; and the check that a rule fits a GRPCRoute.

use serde_json::{Map, Value, json};

use super::context::Host;
use super::matches::{self, Match, PathKind};
use super::route::Scope;
use super::types::{
    Destination, Fault, HeaderOps, Headers, HttpRoute, Redirect, Rewrite, RouteDestination,
};
use crate::resources::WEFT_API;

/// The Fault of route `k` of VirtualService `vs`: `<vs>-<name>` or `<vs>-fault-<k>`.
pub fn fault_name(vs: &str, rule: Option<&str>, k: usize) -> String {
    let raw = match rule {
        Some(r) => format!("{vs}-{r}"),
        None => format!("{vs}-fault-{k}"),
    };
    let clean: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let cut: String = clean.chars().take(63).collect();
    cut.trim_matches('-').to_string()
}

/// The weft `Fault` document for an Istio `fault`.
pub fn fault(
    f: &Fault,
    name: &str,
    ns: &str,
    at: &str,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let pct = |p: &Option<super::types::Percent>, legacy: Option<f64>| -> Value {
        let v = p.as_ref().map(|p| p.value).or(legacy).unwrap_or(100.0);
        number(v)
    };
    let mut spec = Map::new();
    if let Some(d) = &f.delay {
        if d.exponential_delay.is_some() {
            notes.push(format!(
                "{at}.fault.delay.exponentialDelay: not converted (weft delays by a fixed time)"
            ));
        }
        if let Some(fixed) = &d.fixed_delay {
            let t = matches::duration(fixed)
                .map_err(|e| format!("{at}.fault.delay.fixedDelay: {e}"))?;
            spec.insert(
                "delay".into(),
                json!({"fixedDelay": t.to_string(), "percentage": pct(&d.percentage, d.percent)}),
            );
        }
        for key in d.rest.keys() {
            notes.push(format!(
                "{at}.fault.delay.{key}: not converted (weft has no equivalent)"
            ));
        }
    }
    if let Some(a) = &f.abort {
        let mut abort = Map::new();
        if let Some(code) = a.http_status {
            if (200..=599).contains(&code) {
                abort.insert("httpStatus".into(), json!(code));
            } else {
                notes.push(format!(
                    "{at}.fault.abort.httpStatus {code}: not converted (weft aborts with 200 to 599)"
                ));
            }
        } else if let Some(g) = &a.grpc_status {
            match grpc_code(g) {
                Some(n) => {
                    abort.insert("grpcStatus".into(), json!(n));
                }
                None => notes.push(format!(
                    "{at}.fault.abort.grpcStatus {g}: not a gRPC status; not converted"
                )),
            }
        }
        if a.http2_error.is_some() {
            notes.push(format!("{at}.fault.abort.http2Error: not converted (weft aborts with an HTTP or gRPC status)"));
        }
        for key in a.rest.keys() {
            notes.push(format!(
                "{at}.fault.abort.{key}: not converted (weft has no equivalent)"
            ));
        }
        if !abort.is_empty() {
            abort.insert("percentage".into(), pct(&a.percentage, a.percent));
            spec.insert("abort".into(), Value::Object(abort));
        }
    }
    for key in f.rest.keys() {
        notes.push(format!(
            "{at}.fault.{key}: not converted (weft has no equivalent)"
        ));
    }
    if spec.is_empty() {
        return Err(format!(
            "{at}.fault: nothing weft can inject; not converted"
        ));
    }
    Ok(json!({
        "apiVersion": WEFT_API,
        "kind": "Fault",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
}

/// A whole number as an integer, otherwise as it is.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && (0.0..=1e9).contains(&v) {
        json!(v as u64)
    } else {
        json!(v)
    }
}

/// A gRPC status: a number, or its name (`UNAVAILABLE`).
fn grpc_code(v: &Value) -> Option<u8> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    match v {
        Value::Number(n) => n.as_u64().filter(|n| *n <= 16).map(|n| n as u8),
        Value::String(s) => {
            let up = s.to_ascii_uppercase();
            NAMES
                .iter()
                .position(|n| *n == up)
                .map(|i| i as u8)
                .or_else(|| s.parse().ok().filter(|n| *n <= 16))
        }
        _ => None,
    }
}

/// Header operations as RequestHeaderModifier / ResponseHeaderModifier filters.
pub fn headers(h: &Headers, at: &str, notes: &mut Vec<String>) -> Vec<Value> {
    let mut out = Vec::new();
    for (ops, ty, field) in [
        (&h.request, "RequestHeaderModifier", "requestHeaderModifier"),
        (
            &h.response,
            "ResponseHeaderModifier",
            "responseHeaderModifier",
        ),
    ] {
        if let Some(ops) = ops {
            if let Some(m) = modifier(ops) {
                out.push(json!({"type": ty, field: m}));
            }
            for key in ops.rest.keys() {
                notes.push(format!(
                    "{at}.{key}: not converted (weft has no equivalent)"
                ));
            }
        }
    }
    for key in h.rest.keys() {
        notes.push(format!(
            "{at}.{key}: not converted (weft has no equivalent)"
        ));
    }
    out
}

fn modifier(ops: &HeaderOps) -> Option<Value> {
    let pairs = |m: &std::collections::BTreeMap<String, String>| -> Vec<Value> {
        m.iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect()
    };
    let mut m = Map::new();
    if !ops.set.is_empty() {
        m.insert("set".into(), Value::Array(pairs(&ops.set)));
    }
    if !ops.add.is_empty() {
        m.insert("add".into(), Value::Array(pairs(&ops.add)));
    }
    if !ops.remove.is_empty() {
        m.insert("remove".into(), json!(ops.remove));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// `mirror` (with `mirrorPercentage`) and `mirrors` as RequestMirror filters.
pub fn mirrors(s: &Scope<'_>, r: &HttpRoute, at: &str, notes: &mut Vec<String>) -> Vec<Value> {
    let legacy = r.mirror_percent;
    let mut list: Vec<(&Destination, Option<f64>, String)> = Vec::new();
    if let Some(m) = &r.mirror {
        list.push((
            m,
            r.mirror_percentage.as_ref().map(|p| p.value).or(legacy),
            format!("{at}.mirror"),
        ));
    }
    for (j, m) in r.mirrors.iter().enumerate() {
        list.push((
            &m.destination,
            m.percentage.as_ref().map(|p| p.value),
            format!("{at}.mirrors[{j}]"),
        ));
        for key in m.rest.keys() {
            notes.push(format!(
                "{at}.mirrors[{j}].{key}: not converted (weft has no equivalent)"
            ));
        }
    }
    let mut out = Vec::new();
    for (dest, pct, where_) in list {
        let Some(backend) = backend(s, dest, &where_, notes) else {
            continue;
        };
        let mut m = json!({"backendRef": backend});
        if let Some(p) = pct.filter(|p| *p < 100.0) {
            let whole = p.round() as u32;
            if (p - f64::from(whole)).abs() > f64::EPSILON {
                notes.push(format!(
                    "{where_}: mirrors {p}% of requests; weft mirrors whole percents: {whole}%"
                ));
            }
            m["percent"] = json!(whole);
        }
        out.push(json!({"type": "RequestMirror", "requestMirror": m}));
    }
    out
}

/// An Istio redirect as a RequestRedirect filter (Istio answers 301 unless told otherwise).
pub fn redirect(r: &Redirect, at: &str, notes: &mut Vec<String>) -> Value {
    let mut m = Map::new();
    if let Some(s) = &r.scheme {
        m.insert("scheme".into(), json!(s));
    }
    if let Some(h) = &r.authority {
        m.insert("hostname".into(), json!(h));
    }
    if let Some(u) = &r.uri {
        m.insert(
            "path".into(),
            json!({"type": "ReplaceFullPath", "replaceFullPath": u}),
        );
    }
    if let Some(p) = r.port {
        m.insert("port".into(), json!(p));
    }
    let code = r.redirect_code.unwrap_or(301);
    if [301, 302, 303, 307, 308].contains(&code) {
        m.insert("statusCode".into(), json!(code));
    } else {
        notes.push(format!("{at}.redirect.redirectCode {code}: weft redirects with 301, 302, 303, 307 or 308; 301 used"));
        m.insert("statusCode".into(), json!(301));
    }
    if r.derive_port.is_some() {
        notes.push(format!("{at}.redirect.derivePort: not converted (the Location keeps the request's port unless port is set)"));
    }
    for key in r.rest.keys() {
        notes.push(format!(
            "{at}.redirect.{key}: not converted (weft has no equivalent)"
        ));
    }
    json!({"type": "RequestRedirect", "requestRedirect": m})
}

/// Splits matches by what a URL rewrite does to them: a `uri` rewrite replaces the matched
/// prefix of prefix matches and the whole path of the others.
pub fn rewrite_groups(
    rw: &Rewrite,
    ms: Vec<Match>,
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<(Vec<Match>, Option<Value>)> {
    if rw.uri_regex_rewrite.is_some() {
        notes.push(format!(
            "{at}.rewrite.uriRegexRewrite: not converted (weft rewrites a prefix or the whole path)"
        ));
    }
    for key in rw.rest.keys() {
        notes.push(format!(
            "{at}.rewrite.{key}: not converted (weft has no equivalent)"
        ));
    }
    let filter = |path: Option<Value>| -> Option<Value> {
        let mut m = Map::new();
        if let Some(h) = &rw.authority {
            m.insert("hostname".into(), json!(h));
        }
        if let Some(p) = path {
            m.insert("path".into(), p);
        }
        (!m.is_empty()).then(|| json!({"type": "URLRewrite", "urlRewrite": m}))
    };
    let Some(uri) = &rw.uri else {
        return vec![(ms, filter(None))];
    };
    let prefix = json!({"type": "ReplacePrefixMatch", "replacePrefixMatch": uri});
    let full = json!({"type": "ReplaceFullPath", "replaceFullPath": uri});
    if ms.is_empty() {
        // No match: Istio matches the prefix "/".
        return vec![(ms, filter(Some(prefix)))];
    }
    let (pre, other): (Vec<Match>, Vec<Match>) = ms
        .into_iter()
        .partition(|m| matches!(m.path, PathKind::Prefix | PathKind::Any));
    let mut out = Vec::new();
    if !pre.is_empty() {
        out.push((pre, filter(Some(prefix))));
    }
    if !other.is_empty() {
        out.push((other, filter(Some(full))));
    }
    out
}

/// Istio destinations as weighted backendRefs.
pub fn backends(
    s: &Scope<'_>,
    route: &[RouteDestination],
    at: &str,
    notes: &mut Vec<String>,
) -> Vec<Value> {
    let all_unweighted = route.len() > 1 && route.iter().all(|d| d.weight.is_none());
    if all_unweighted {
        notes.push(format!(
            "{at}.route: several destinations without weights; weft splits them evenly"
        ));
    }
    let mut out = Vec::new();
    for (j, d) in route.iter().enumerate() {
        let where_ = format!("{at}.route[{j}]");
        let Some(mut b) = backend(s, &d.destination, &where_, notes) else {
            continue;
        };
        if route.len() > 1 && !all_unweighted {
            b["weight"] = json!(d.weight.unwrap_or(0).max(0));
        }
        if let Some(h) = &d.headers {
            let f = headers(h, &format!("{where_}.headers"), notes);
            if !f.is_empty() {
                b["filters"] = Value::Array(f);
            }
        }
        for key in d.rest.keys() {
            notes.push(format!(
                "{where_}.{key}: not converted (weft has no equivalent)"
            ));
        }
        out.push(b);
    }
    out
}

/// A destination as a backendRef `{name, namespace?, port}`; `None` (with a note) when it
/// names no Service of the mesh.
pub fn backend(s: &Scope<'_>, d: &Destination, at: &str, notes: &mut Vec<String>) -> Option<Value> {
    let (ns, svc) = match s.ctx.resolve(&d.host, s.ns) {
        Host::Service(ns, n) | Host::Missing(ns, n) => (ns, n),
        Host::External(h) => {
            notes.push(format!(
                "{at}: destination {h} is not a Service of the mesh (a ServiceEntry or an external host); not converted"
            ));
            return None;
        }
    };
    let info = s.ctx.services.get(&(ns.clone(), svc.clone()));
    if info.is_none() {
        notes.push(format!("{at}: no Service {ns}/{svc} in the input"));
    }
    let name = match &d.subset {
        None => svc.clone(),
        Some(subset) => {
            let defined = s
                .ctx
                .subsets
                .get(&(ns.clone(), svc.clone()))
                .is_some_and(|m| m.contains(subset));
            if !defined {
                notes.push(format!(
                    "{at}: no DestinationRule in the input defines subset {subset} of {svc} (Istio answers 503); the backend is Service {}, which you need to define",
                    s.ctx.subset_service(&svc, subset)
                ));
            }
            s.ctx.subset_service(&svc, subset)
        }
    };
    let port = match d.port.as_ref().and_then(|p| p.number) {
        Some(p) => Some(p),
        None => match info.map(|i| i.ports.as_slice()) {
            Some([only]) => Some(only.port),
            Some([first, ..]) => {
                notes.push(format!(
                    "{at}: {svc} has several ports and the destination names none; Istio keeps the request's port, weft's backend uses port {}",
                    first.port
                ));
                Some(first.port)
            }
            _ => {
                notes.push(format!(
                    "{at}: the destination's port is unknown; add `port` to the backendRef"
                ));
                None
            }
        },
    };
    if let Some(p) = &d.port {
        for key in p.rest.keys() {
            notes.push(format!(
                "{at}.port.{key}: not converted (weft has no equivalent)"
            ));
        }
    }
    for key in d.rest.keys() {
        notes.push(format!(
            "{at}.{key}: not converted (weft has no equivalent)"
        ));
    }
    let mut b = json!({"name": name});
    if ns != s.ns {
        b["namespace"] = json!(ns);
    }
    if let Some(p) = port {
        b["port"] = json!(p);
    }
    Some(b)
}

/// An HTTPRoute rule as a GRPCRoute rule; `Err` names what a GRPCRoute cannot hold.
pub fn to_grpc(rule: &Value) -> Result<Value, String> {
    let mut out = rule.clone();
    let o = out.as_object_mut().expect("a rule is an object");
    for key in ["timeouts", "retry"] {
        if o.contains_key(key) {
            return Err(format!("a GRPCRoute rule has no {key}"));
        }
    }
    if let Some(fs) = o.get("filters").and_then(Value::as_array) {
        for f in fs {
            let t = f["type"].as_str().unwrap_or_default();
            if !matches!(
                t,
                "RequestHeaderModifier"
                    | "ResponseHeaderModifier"
                    | "RequestMirror"
                    | "ExtensionRef"
            ) {
                return Err(format!("a GRPCRoute has no {t} filter"));
            }
        }
    }
    if let Some(ms) = o.get_mut("matches").and_then(Value::as_array_mut) {
        for m in ms.iter_mut() {
            let mo = m.as_object_mut().expect("a match is an object");
            if mo.contains_key("method") || mo.contains_key("queryParams") {
                return Err("a GRPCRoute matches no HTTP method or query parameter".into());
            }
            if let Some(path) = mo.remove("path") {
                let value = path["value"].as_str().unwrap_or("/");
                let parts: Vec<&str> = value.trim_matches('/').split('/').collect();
                let method = match (path["type"].as_str(), parts.as_slice()) {
                    (Some("Exact"), [svc, method]) => json!({"service": svc, "method": method}),
                    (Some("PathPrefix"), [""]) => continue,
                    (Some("PathPrefix"), [svc]) => json!({"service": svc}),
                    _ => return Err(format!("path {value} is not a gRPC service or method")),
                };
                mo.insert("method".into(), method);
            }
        }
    }
    Ok(out)
}
