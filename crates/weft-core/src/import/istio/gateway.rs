//! `networking.istio.io` Gateway → a Gateway API Gateway of class `weft` (weft's ingress):
//! one listener per server and host. VirtualServices bound to the Istio Gateway attach to its
//! listeners (except those that only redirect to HTTPS, which get a redirect route of their
//! own).

use serde_json::{Map, Value, json};

use super::Converted;
use super::context::Context;
use super::types::{Gateway, Server, spec};
use crate::resources::GATEWAY_API;
use crate::resources::gateway::INGRESS_CLASS;

/// A listener of a converted server.
struct Listener {
    name: String,
    value: Value,
    /// It only redirects to HTTPS.
    redirect: bool,
}

fn listeners(g: &Gateway, notes: &mut Vec<String>) -> Vec<Listener> {
    let mut out = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for (k, s) in g.servers.iter().enumerate() {
        let at = format!("servers[{k}]");
        let Some(protocol) = protocol(s, &at, notes) else {
            continue;
        };
        let base = listener_name(s, k);
        let hosts: Vec<Option<String>> = if s.hosts.is_empty() {
            vec![None]
        } else {
            s.hosts.iter().map(|h| host(h, &at, notes)).collect()
        };
        // One listener per host name; `*` (any host) once.
        let mut hosts: Vec<Option<String>> = hosts.into_iter().fold(Vec::new(), |mut acc, h| {
            if !acc.contains(&h) {
                acc.push(h);
            }
            acc
        });
        if hosts.contains(&None) {
            hosts = vec![None];
        }
        let redirect = s.tls.as_ref().and_then(|t| t.https_redirect) == Some(true);
        for (j, h) in hosts.iter().enumerate() {
            let mut name = if j == 0 {
                base.clone()
            } else {
                format!("{base}-{j}")
            };
            while !used.insert(name.clone()) {
                name.push_str("-x");
            }
            let mut l = Map::new();
            l.insert("name".into(), json!(name));
            if let Some(h) = h {
                l.insert("hostname".into(), json!(h));
            }
            l.insert("port".into(), json!(s.port.number));
            l.insert("protocol".into(), json!(protocol));
            if let Some(tls) = tls(s, &at, notes) {
                l.insert("tls".into(), tls);
            }
            // Istio binds VirtualServices from any namespace to a Gateway.
            l.insert(
                "allowedRoutes".into(),
                json!({"namespaces": {"from": "All"}}),
            );
            out.push(Listener {
                name,
                value: Value::Object(l),
                redirect,
            });
        }
        for (f, v) in [
            ("bind", &s.bind),
            ("defaultEndpoint", &s.default_endpoint),
            ("port.targetPort", &s.port.target_port),
        ] {
            if v.is_some() {
                notes.push(format!(
                    "{at}.{f}: not converted (weft's gateway listens on the listener's port)"
                ));
            }
        }
        for key in s.rest.keys().chain(s.port.rest.keys()) {
            notes.push(format!(
                "{at}.{key}: not converted (weft has no equivalent)"
            ));
        }
    }
    out
}

fn listener_name(s: &Server, k: usize) -> String {
    let raw = s
        .port
        .name
        .clone()
        .or_else(|| s.name.clone())
        .unwrap_or_else(|| format!("port-{}", s.port.number));
    let clean: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let clean = clean.trim_matches('-').to_string();
    if clean.is_empty() {
        format!("server-{k}")
    } else {
        clean
    }
}

fn protocol(s: &Server, at: &str, notes: &mut Vec<String>) -> Option<&'static str> {
    let p = s
        .port
        .protocol
        .as_deref()
        .unwrap_or("HTTP")
        .to_ascii_uppercase();
    let mode = s
        .tls
        .as_ref()
        .and_then(|t| t.mode.as_deref())
        .unwrap_or("SIMPLE");
    Some(match p.as_str() {
        "HTTP" | "HTTP2" | "GRPC" => "HTTP",
        "HTTPS" if mode == "PASSTHROUGH" => "TLS",
        "HTTPS" => "HTTPS",
        "TLS" => "TLS",
        "TCP" => "TCP",
        other => {
            notes.push(format!("{at}.port.protocol {other}: not converted (weft's gateway speaks HTTP, HTTPS, TLS and TCP)"));
            return None;
        }
    })
}

/// `ns/host` → host (the namespace part has no Gateway API equivalent); `*` → any.
fn host(h: &str, at: &str, notes: &mut Vec<String>) -> Option<String> {
    let (ns, name) = h.split_once('/').unwrap_or(("*", h));
    if ns != "*" && ns != "." {
        notes.push(format!(
            "{at}.hosts {h}: the namespace part is not converted (routes from every namespace may attach)"
        ));
    }
    (name != "*").then(|| name.to_string())
}

fn tls(s: &Server, at: &str, notes: &mut Vec<String>) -> Option<Value> {
    let t = s.tls.as_ref()?;
    for key in t.rest.keys() {
        notes.push(format!(
            "{at}.tls.{key}: not converted (weft has no equivalent)"
        ));
    }
    match t.mode.as_deref() {
        _ if t.https_redirect == Some(true)
            && s.port
                .protocol
                .as_deref()
                .is_none_or(|p| p.eq_ignore_ascii_case("HTTP")) =>
        {
            None
        }
        Some("PASSTHROUGH") => Some(json!({"mode": "Passthrough"})),
        Some("SIMPLE") | None => {
            let mut v = json!({"mode": "Terminate"});
            if let Some(c) = &t.credential_name {
                v["certificateRefs"] = json!([{"kind": "Secret", "name": c}]);
            }
            Some(v)
        }
        Some(other) => {
            notes.push(format!(
                "{at}.tls.mode {other}: not converted (client certificates at the gateway are not supported); terminated as SIMPLE"
            ));
            let mut v = json!({"mode": "Terminate"});
            if let Some(c) = &t.credential_name {
                v["certificateRefs"] = json!([{"kind": "Secret", "name": c}]);
            }
            Some(v)
        }
    }
}

/// The listener names that VirtualServices bound to this Istio Gateway attach to.
pub(super) fn route_listeners(doc: &Value) -> Vec<String> {
    let Ok(g) = spec::<Gateway>(doc) else {
        return Vec::new();
    };
    listeners(&g, &mut Vec::new())
        .into_iter()
        .filter(|l| !l.redirect)
        .map(|l| l.name)
        .collect()
}

pub(super) fn convert(ctx: &mut Context, i: usize, c: &mut Converted) -> Result<(), String> {
    let d = &ctx.docs[i];
    let g: Gateway = spec(&d.value)?;
    let mut notes = Vec::new();
    let ls = listeners(&g, &mut notes);
    if ls.is_empty() {
        return Err(format!("no server converts ({})", notes.join("; ")));
    }
    let out = c.add(json!({
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": {"name": d.name, "namespace": d.namespace},
        "spec": {
            "gatewayClassName": INGRESS_CLASS,
            "listeners": ls.iter().map(|l| l.value.clone()).collect::<Vec<_>>(),
        },
    }));
    if let Some(sel) = &g.selector {
        c.comment(
            out,
            "spec.gatewayClassName",
            format!("selector {sel:?} picked Istio's gateway pods; weft runs its own ingress for class {INGRESS_CLASS}"),
        );
    }
    for n in notes {
        c.note(out, "spec.listeners", n);
    }
    c.unknown(Some(out), "spec", "", &g.rest);
    for l in ls.iter().filter(|l| l.redirect) {
        c.add(json!({
            "apiVersion": GATEWAY_API,
            "kind": "HTTPRoute",
            "metadata": {"name": format!("{}-{}-https-redirect", d.name, l.name), "namespace": d.namespace},
            "spec": {
                "parentRefs": [{"name": d.name, "sectionName": l.name}],
                "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}],
            },
        }));
    }
    Ok(())
}
