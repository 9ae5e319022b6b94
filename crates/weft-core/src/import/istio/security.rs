//! `security.istio.io`: AuthorizationPolicy → weft's AuthorizationPolicy, PeerAuthentication →
//! an mTLS mode (Mesh, Namespace annotation or workload annotations).
//!
//! A condition weft cannot check is never turned into a wider grant: an ALLOW rule (or `from`
//! / `to` alternative) that needs one is left out, so less is allowed; a DENY rule loses the
//! condition, so more is denied — as Istio itself treats conditions it cannot check.

use serde_json::{Map, Value, json};

use super::Converted;
use super::context::Context;
use super::types::{self, AuthorizationPolicy, AuthzRule, PeerAuthentication, spec};
use crate::annotations::MTLS_MODE;
use crate::resources::WEFT_API;

pub(super) fn authorization(ctx: &mut Context, i: usize, c: &mut Converted) -> Result<(), String> {
    let d = &ctx.docs[i];
    let p: AuthorizationPolicy = spec(&d.value)?;
    let action = p.action.as_deref().unwrap_or("ALLOW").to_ascii_uppercase();
    let deny = match action.as_str() {
        "ALLOW" => false,
        "DENY" => true,
        "AUDIT" => return Err(
            "action AUDIT: weft has no audit-only policies (its access log records every request)"
                .into(),
        ),
        "CUSTOM" => {
            return Err("action CUSTOM: weft has no external authorization; requests it would have checked are NOT checked — write the decision as ALLOW/DENY rules".into());
        }
        other => return Err(format!("action {other}: not an Istio action")),
    };
    let mut notes = Vec::new();
    let mut spec = Map::new();
    if let Some(sel) = &p.selector {
        spec.insert("selector".into(), json!({"matchLabels": sel.match_labels}));
        unknown(&mut notes, "selector", &sel.rest);
    }
    spec.insert("action".into(), json!(action));
    let mut refs = Vec::new();
    for (k, t) in p.target_ref.iter().chain(&p.target_refs).enumerate() {
        match t.kind.as_str() {
            "Service" | "Gateway" => {
                let group = match (t.kind.as_str(), t.group.as_str()) {
                    ("Gateway", "") => "gateway.networking.k8s.io",
                    (_, g) => g,
                };
                refs.push(json!({"group": group, "kind": t.kind, "name": t.name}));
                unknown(&mut notes, &format!("targetRefs[{k}]"), &t.rest);
            }
            other => notes.push(format!("targetRefs[{k}]: kind {other} not converted (weft attaches policies to Services and waypoints)")),
        }
    }
    if !refs.is_empty() {
        spec.insert("targetRefs".into(), Value::Array(refs));
    }
    if p.provider.is_some() {
        notes.push("provider: not converted (weft has no external authorization)".into());
    }
    let mut rules = Vec::new();
    for (k, r) in p.rules.iter().enumerate() {
        if let Some(rule) = rule(r, &format!("rules[{k}]"), deny, &mut notes) {
            rules.push(rule);
        }
    }
    if !p.rules.is_empty() && rules.is_empty() && !deny {
        notes.push("every rule was left out: this ALLOW policy now allows nothing to the workloads it selects".into());
    }
    if !p.rules.is_empty() || !rules.is_empty() {
        spec.insert("rules".into(), Value::Array(rules));
    }
    unknown(&mut notes, "", &p.rest);

    let namespaces: Vec<String> = if d.namespace == ctx.root_namespace {
        let list: Vec<String> = ctx.namespaces.iter().cloned().collect();
        notes.push(format!(
            "in Istio's root namespace {}: mesh-wide; weft has no root namespace, so it is copied to every namespace of the input ({})",
            ctx.root_namespace,
            list.join(", ")
        ));
        list
    } else {
        vec![d.namespace.clone()]
    };
    let name = d.name.clone();
    for ns in namespaces {
        let out = c.add(json!({
            "apiVersion": WEFT_API,
            "kind": "AuthorizationPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }));
        if out == 0 {
            for n in &notes {
                c.note(out, "spec", n.clone());
            }
        }
    }
    if c.outs.is_empty() {
        return Err("no namespace in the input to copy this mesh-wide policy to".into());
    }
    Ok(())
}

/// One rule, or `None` when it is left out.
fn rule(r: &AuthzRule, at: &str, deny: bool, notes: &mut Vec<String>) -> Option<Value> {
    let mut froms: Vec<Map<String, Value>> = Vec::new();
    for (j, f) in r.from.iter().enumerate() {
        let where_ = format!("{at}.from[{j}].source");
        let s = &f.source;
        let mut src = Map::new();
        put(&mut src, "principals", &s.principals);
        put(&mut src, "notPrincipals", &s.not_principals);
        put(&mut src, "namespaces", &s.namespaces);
        put(&mut src, "notNamespaces", &s.not_namespaces);
        // `ns/sa` service accounts are principals in any trust domain.
        let sa = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|x| match x.split_once('/') {
                    Some((ns, sa)) => format!("*/ns/{ns}/sa/{sa}"),
                    None => format!("*/sa/{x}"),
                })
                .collect()
        };
        extend(&mut src, "principals", sa(&s.service_accounts));
        extend(&mut src, "notPrincipals", sa(&s.not_service_accounts));
        let mut lost: Vec<String> = s.rest.keys().map(|k| format!("{where_}.{k}")).collect();
        lost.extend(f.rest.keys().map(|k| format!("{at}.from[{j}].{k}")));
        if !lost.is_empty() {
            let why = "weft matches peers by identity and namespace only (no JWT request principals, no IP blocks)";
            if deny {
                notes.push(format!(
                    "{}: not converted ({why}); the DENY applies without it, to more requests",
                    lost.join(", ")
                ));
            } else {
                notes.push(format!(
                    "{}: not converted ({why}); this source is left out, so it allows less",
                    lost.join(", ")
                ));
                continue;
            }
        }
        froms.push(src);
    }
    if !r.from.is_empty() && froms.is_empty() {
        notes.push(format!("{at}: left out (none of its sources converts)"));
        return None;
    }
    let mut tos: Vec<Map<String, Value>> = Vec::new();
    for (j, t) in r.to.iter().enumerate() {
        let where_ = format!("{at}.to[{j}].operation");
        let o = &t.operation;
        let mut op = Map::new();
        let ports = |list: &[Value]| -> Result<Vec<u16>, String> {
            list.iter()
                .map(|v| {
                    let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    s.parse::<u16>()
                        .map_err(|_| format!("port {s} is not a number"))
                })
                .collect()
        };
        let mut lost: Vec<String> = o.rest.keys().map(|k| format!("{where_}.{k}")).collect();
        lost.extend(t.rest.keys().map(|k| format!("{at}.to[{j}].{k}")));
        match (ports(&o.ports), ports(&o.not_ports)) {
            (Ok(p), Ok(np)) => {
                if !p.is_empty() {
                    op.insert("ports".into(), json!(p));
                }
                if !np.is_empty() {
                    op.insert("notPorts".into(), json!(np));
                }
            }
            (Err(e), _) | (_, Err(e)) => lost.push(format!("{where_}.ports ({e})")),
        }
        put(&mut op, "methods", &o.methods);
        put(&mut op, "notMethods", &o.not_methods);
        put(&mut op, "paths", &o.paths);
        put(&mut op, "notPaths", &o.not_paths);
        if !lost.is_empty() {
            let why = "weft matches ports, methods, paths and headers (no hosts)";
            if deny {
                notes.push(format!(
                    "{}: not converted ({why}); the DENY applies without it, to more requests",
                    lost.join(", ")
                ));
            } else {
                notes.push(format!(
                    "{}: not converted ({why}); this operation is left out, so it allows less",
                    lost.join(", ")
                ));
                continue;
            }
        }
        tos.push(op);
    }
    if !r.to.is_empty() && tos.is_empty() {
        notes.push(format!("{at}: left out (none of its operations converts)"));
        return None;
    }

    // `when` conditions narrow every source or operation of the rule.
    for (j, w) in r.when.iter().enumerate() {
        let where_ = format!("{at}.when[{j}]");
        let into_from = |froms: &mut Vec<Map<String, Value>>, key: &str, values: &[String]| {
            if froms.is_empty() {
                froms.push(Map::new());
            }
            for f in froms.iter_mut() {
                narrow(f, key, values);
            }
        };
        let into_to = |tos: &mut Vec<Map<String, Value>>, key: &str, values: Value| {
            if tos.is_empty() {
                tos.push(Map::new());
            }
            for t in tos.iter_mut() {
                if key == "headers" {
                    let h = t.entry("headers").or_insert_with(|| json!({}));
                    if let (Some(h), Some(add)) = (h.as_object_mut(), values.as_object()) {
                        h.extend(add.clone());
                    }
                } else {
                    t.insert(key.into(), values.clone());
                }
            }
        };
        let header = w
            .key
            .strip_prefix("request.headers[")
            .and_then(|k| k.strip_suffix(']'));
        let converted = match (w.key.as_str(), header) {
            (_, Some(h)) if w.not_values.is_empty() => {
                into_to(
                    &mut tos,
                    "headers",
                    json!({h.to_ascii_lowercase(): w.values}),
                );
                true
            }
            ("source.namespace", _) => {
                if !w.values.is_empty() {
                    into_from(&mut froms, "namespaces", &w.values);
                }
                if !w.not_values.is_empty() {
                    into_from(&mut froms, "notNamespaces", &w.not_values);
                }
                true
            }
            ("source.principal", _) => {
                if !w.values.is_empty() {
                    into_from(&mut froms, "principals", &w.values);
                }
                if !w.not_values.is_empty() {
                    into_from(&mut froms, "notPrincipals", &w.not_values);
                }
                true
            }
            ("destination.port", _) => {
                let parse = |l: &[String]| {
                    l.iter()
                        .filter_map(|p| p.parse::<u16>().ok())
                        .collect::<Vec<_>>()
                };
                if !w.values.is_empty() {
                    into_to(&mut tos, "ports", json!(parse(&w.values)));
                }
                if !w.not_values.is_empty() {
                    into_to(&mut tos, "notPorts", json!(parse(&w.not_values)));
                }
                true
            }
            _ => false,
        };
        if !converted {
            let why = format!(
                "{where_} {}: not converted (weft checks peer identity, namespace, port, method, path and headers)",
                w.key
            );
            if deny {
                notes.push(format!(
                    "{why}; the DENY applies without it, to more requests"
                ));
            } else {
                notes.push(format!("{why}; the rule is left out, so it allows less"));
                return None;
            }
        }
        unknown(notes, &where_, &w.rest);
    }
    unknown(notes, at, &r.rest);

    let mut rule = Map::new();
    if !froms.is_empty() {
        rule.insert(
            "from".into(),
            Value::Array(froms.into_iter().map(|s| json!({"source": s})).collect()),
        );
    }
    if !tos.is_empty() {
        rule.insert(
            "to".into(),
            Value::Array(tos.into_iter().map(|o| json!({"operation": o})).collect()),
        );
    }
    Some(Value::Object(rule))
}

fn put(m: &mut Map<String, Value>, key: &str, list: &[String]) {
    if !list.is_empty() {
        m.insert(key.into(), json!(list));
    }
}

fn extend(m: &mut Map<String, Value>, key: &str, list: Vec<String>) {
    if list.is_empty() {
        return;
    }
    let entry = m.entry(key).or_insert_with(|| json!([]));
    if let Some(a) = entry.as_array_mut() {
        a.extend(list.into_iter().map(Value::String));
    }
}

/// Both the source's `key` and the condition must hold: the lists intersect (or the
/// condition's list is taken when the source has none).
fn narrow(src: &mut Map<String, Value>, key: &str, values: &[String]) {
    let next: Vec<String> = match src.get(key).and_then(Value::as_array) {
        Some(have) if key.starts_with("not") => {
            let mut all: Vec<String> = have
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            all.extend(values.iter().cloned());
            all
        }
        Some(have) => have
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|v| values.iter().any(|w| w == v))
            .map(str::to_string)
            .collect(),
        None => values.to_vec(),
    };
    src.insert(key.into(), json!(next));
}

fn unknown(notes: &mut Vec<String>, at: &str, rest: &types::Rest) {
    for key in rest.keys() {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        notes.push(format!("{path}: not converted (weft has no equivalent)"));
    }
}

/// PeerAuthentication: mesh-wide (root namespace, no selector) on the Mesh, namespace-wide on
/// the Namespace, with a selector on the workloads it selects — each as weft's mTLS mode.
pub(super) fn peer_authentication(
    ctx: &mut Context,
    i: usize,
    c: &mut Converted,
) -> Result<(), String> {
    let d = &ctx.docs[i];
    let pa: PeerAuthentication = spec(&d.value)?;
    let (ns, name) = (d.namespace.clone(), d.name.clone());
    let mode = pa
        .mtls
        .as_ref()
        .and_then(|m| m.mode.clone())
        .unwrap_or_else(|| "UNSET".into())
        .to_ascii_uppercase();
    if pa.port_level_mtls.is_some() {
        c.general(
            "portLevelMtls: not converted (weft's mTLS mode is per workload, for all its ports)",
        );
    }
    if let Some(m) = &pa.mtls {
        for key in m.rest.keys() {
            c.general(format!(
                "mtls.{key}: not converted (weft has no equivalent)"
            ));
        }
    }
    c.unknown(None, "", "", &pa.rest);
    if mode == "UNSET" {
        c.general("mode UNSET: inherits, as weft does without a setting; nothing to write");
        return Ok(());
    }
    if !matches!(mode.as_str(), "STRICT" | "PERMISSIVE" | "DISABLE") {
        return Err(format!("mode {mode}: not an Istio mTLS mode"));
    }
    let source = format!("PeerAuthentication {ns}/{name}");
    match &pa.selector {
        None if ns == ctx.root_namespace => {
            let m = ctx.mesh_doc(i);
            let doc = &mut ctx.docs[m];
            let spec = doc.map_at("spec");
            let mtls = spec.entry("mtls").or_insert_with(|| json!({}));
            mtls["mode"] = json!(mode);
            doc.note("spec.mtls", format!("mode from {source} (mesh-wide)"));
            c.elsewhere
                .push(format!("Mesh {} spec.mtls.mode: {mode}", doc.name));
            if mode == "STRICT" {
                c.general("STRICT is weft's default too");
            }
        }
        None => {
            let n = ctx.namespace_doc(&ns, i);
            let doc = &mut ctx.docs[n];
            doc.map_at("metadata.annotations")
                .insert(MTLS_MODE.into(), json!(mode));
            doc.note("metadata.annotations", format!("{MTLS_MODE} from {source}"));
            c.elsewhere
                .push(format!("Namespace {ns} annotation {MTLS_MODE}: {mode}"));
        }
        Some(sel) => {
            let found = ctx.workloads_matching(&ns, &sel.match_labels);
            if found.is_empty() {
                return Err(format!(
                    "no workload in the input has the labels {:?}; add the annotation {MTLS_MODE}: {mode} to the workloads it selects",
                    sel.match_labels
                ));
            }
            for w in found {
                let doc = &mut ctx.docs[w];
                let path = format!("{}.annotations", doc.pod_meta_path());
                doc.map_at(&path).insert(MTLS_MODE.into(), json!(mode));
                doc.note(&path, format!("{MTLS_MODE} from {source}"));
                c.elsewhere
                    .push(format!("{} annotation {MTLS_MODE}: {mode}", doc.title()));
            }
        }
    }
    Ok(())
}
