//! EnvoyFilter → TrafficPolicy `localRateLimit`, for the one patch weft has an equivalent of:
//! Envoy's `local_ratelimit` HTTP filter inserted on the inbound side of the selected
//! workloads (`context: SIDECAR_INBOUND`), enabled and enforced for every request. The
//! TrafficPolicy targets the Services whose selector the `workloadSelector`'s labels satisfy.
//! Every other patch has no equivalent: weft's proxy is not Envoy.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Converted;
use super::context::Context;
use super::matches::duration;
use crate::resources::WEFT_API;

const FILTER: &str = "envoy.filters.http.local_ratelimit";
const TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
const NOT_ENVOY: &str = "weft's proxy is not Envoy; only a local_ratelimit HTTP filter on SIDECAR_INBOUND converts (to a TrafficPolicy localRateLimit)";

pub(super) fn convert(ctx: &mut Context, i: usize, c: &mut Converted) -> Result<(), String> {
    let d = &ctx.docs[i];
    let spec = d.value.get("spec").cloned().unwrap_or(Value::Null);
    let patches = spec["configPatches"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut limit: Option<(usize, Value)> = None;
    for (k, p) in patches.iter().enumerate() {
        let at = format!("configPatches[{k}]");
        let Some(config) = local_ratelimit(p) else {
            let what = p["applyTo"].as_str().unwrap_or("a");
            c.general(format!("{at}: not converted: {what} patch: {NOT_ENVOY}"));
            continue;
        };
        let context = p["match"]["context"].as_str().unwrap_or("ANY");
        if context != "SIDECAR_INBOUND" {
            c.general(format!("{at}: not converted: a local rate limit in context {context}: weft enforces localRateLimit where a Service's requests arrive (its pods' sidecars, or its waypoint), so only SIDECAR_INBOUND converts"));
            continue;
        }
        if limit.is_some() {
            c.general(format!(
                "{at}: not converted: a second local_ratelimit filter (a TrafficPolicy has one localRateLimit)"
            ));
            continue;
        }
        match bucket(&config, c, &at) {
            Ok(l) => limit = Some((k, l)),
            Err(why) => c.general(format!("{at}: not converted: {why}")),
        }
    }
    let Some((k, limit)) = limit else {
        if patches.is_empty() {
            return Err(NOT_ENVOY.into());
        }
        return Ok(());
    };
    let selector = d.value["spec"]["workloadSelector"]["labels"].clone();
    let labels: BTreeMap<String, String> = serde_json::from_value(selector).unwrap_or_default();
    let everywhere = d.namespace == ctx.root_namespace;
    let mut targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((ns, name), svc) in &ctx.services {
        let in_scope = everywhere || *ns == d.namespace;
        let selects =
            !svc.selector.is_empty() && svc.selector.iter().all(|(k, v)| labels.get(k) == Some(v));
        if in_scope && (selects || (labels.is_empty() && !svc.selector.is_empty())) {
            targets.entry(ns.clone()).or_default().push(name.clone());
            if !labels.is_empty() && svc.selector != labels {
                c.general(format!("Service {ns}/{name} selects {:?}, the filter's workloadSelector {labels:?}: the limit applies to every pod of the Service", svc.selector));
            }
        }
    }
    if targets.is_empty() {
        c.general(format!("configPatches[{k}]: not converted: no Service in the input selects the workloads labelled {labels:?}, and weft's localRateLimit is set on a Service: write a TrafficPolicy with targetRefs naming it and localRateLimit: {limit}"));
        return Ok(());
    }
    if labels.is_empty() {
        c.general(format!(
            "no workloadSelector: the limit applies to every Service of {}",
            if everywhere {
                "the mesh".to_string()
            } else {
                format!("namespace {}", d.namespace)
            }
        ));
    }
    let name = d.name.clone();
    for (ns, services) in targets {
        let refs: Vec<Value> = (services.iter())
            .map(|s| json!({"kind": "Service", "name": s}))
            .collect();
        let out = c.add(json!({
            "apiVersion": WEFT_API,
            "kind": "TrafficPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"targetRefs": refs, "localRateLimit": limit},
        }));
        c.comment(out, "", format!("EnvoyFilter {} configPatches[{k}]: Envoy's local_ratelimit as weft's localRateLimit: a bucket per pod, refilled continuously rather than every fill_interval", d.name));
        for s in &services {
            if ctx.subsets.contains_key(&(ns.clone(), s.clone())) {
                c.note(out, "spec.localRateLimit", format!("a DestinationRule for Service {ns}/{s} also becomes a TrafficPolicy: move localRateLimit into it (only one TrafficPolicy per Service takes effect)"));
            }
        }
    }
    Ok(())
}

/// The LocalRateLimit config of a patch that inserts Envoy's local_ratelimit HTTP filter.
fn local_ratelimit(p: &Value) -> Option<Value> {
    if p["applyTo"] != "HTTP_FILTER" {
        return None;
    }
    let value = &p["patch"]["value"];
    let typed = &value["typed_config"];
    let config = match typed["@type"].as_str() {
        Some(TYPE) => typed.clone(),
        Some(t) if t.ends_with("TypedStruct") && typed["type_url"] == TYPE => {
            typed["value"].clone()
        }
        _ => return None,
    };
    (value["name"] == FILTER || value["name"].is_null()).then_some(config)
}

/// `{requests, per, burst}` from a LocalRateLimit config, or why it cannot be.
fn bucket(config: &Value, c: &mut Converted, at: &str) -> Result<Value, String> {
    for key in ["filter_enabled", "filter_enforced"] {
        let share = percent(&config[key]);
        if share < 100.0 {
            return Err(format!(
                "{key} is {share}% (Envoy's default is 0%): Envoy limits only that share of requests, weft limits every one"
            ));
        }
    }
    let b = &config["token_bucket"];
    let max = b["max_tokens"]
        .as_u64()
        .filter(|n| *n > 0)
        .ok_or("token_bucket.max_tokens is missing or 0")?;
    let fill = b["tokens_per_fill"].as_u64().unwrap_or(1).max(1);
    let interval = b["fill_interval"]
        .as_str()
        .ok_or("token_bucket.fill_interval is missing")?;
    let per = duration(interval).map_err(|e| format!("token_bucket.fill_interval: {e}"))?;
    let requests = fill.min(max);
    if fill > max {
        c.general(format!("{at}: tokens_per_fill {fill} is above max_tokens {max}: the bucket never holds more than {max}, so the rate is {max} per {per}"));
    }
    let mut limit = json!({"requests": requests, "per": per.to_string()});
    if max > requests {
        limit["burst"] = json!(max);
    }
    for (key, v) in config.as_object().into_iter().flatten() {
        match key.as_str() {
            "@type" | "stat_prefix" | "token_bucket" | "filter_enabled" | "filter_enforced" => {}
            "response_headers_to_add" if only_the_usual_header(v) => {}
            _ => c.general(format!("{at}: {key}: not converted (weft answers 429 local_rate_limited with x-local-rate-limit: true and nothing else)")),
        }
    }
    Ok(limit)
}

/// A runtime fraction's default as a percentage (absent: 0, Envoy's default).
fn percent(v: &Value) -> f64 {
    let d = &v["default_value"];
    let Some(n) = d["numerator"].as_f64() else {
        return 0.0;
    };
    let of = match d["denominator"].as_str().unwrap_or("HUNDRED") {
        "TEN_THOUSAND" => 10_000.0,
        "MILLION" => 1_000_000.0,
        _ => 100.0,
    };
    n * 100.0 / of
}

/// Whether the headers added are `x-local-rate-limit: true` alone, which weft always sets.
fn only_the_usual_header(v: &Value) -> bool {
    let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .all(|h| h["header"]["key"] == "x-local-rate-limit" && h["header"]["value"] == "true")
}
