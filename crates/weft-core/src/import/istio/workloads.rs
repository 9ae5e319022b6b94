//! Istio's labels and annotations on Namespaces and workloads (Deployments and the other
//! Kubernetes workload kinds, Pods, weft Workloads) as weft's: sidecar injection, revisions,
//! ambient enrolment, waypoints, proxy resources and log level, and `proxy.istio.io/config`
//! (`holdApplicationUntilProxyStarts`, drain duration, concurrency, trace sampling). Where
//! weft's default already does what the Istio setting asked for, nothing is written.

use serde_json::{Value, json};

use super::context::Context;
use crate::annotations::{
    CONCURRENCY, DATAPLANE_MODE, DRAIN_DURATION, HOLD_APPLICATION, LOG_LEVEL, PROXY_CPU_LIMIT,
    PROXY_CPU_REQUEST, PROXY_MEMORY_LIMIT, PROXY_MEMORY_REQUEST, REV, TRACE_SAMPLING, USE_WAYPOINT,
};

/// What to do with one Istio key.
enum Change {
    /// Replace it with (label or annotation, key, value).
    To(Place, &'static str, String),
    /// Drop it: weft's default does the same, or Istio wrote it.
    Drop,
    /// Keep it; weft does not read it.
    Keep,
}

#[derive(Clone, Copy, PartialEq)]
enum Place {
    Label,
    Annotation,
}

pub(super) fn convert(ctx: &mut Context, i: usize) {
    let d = &ctx.docs[i];
    if !(d.is_workload() || (d.api_version == "v1" && d.kind == "Namespace")) {
        return;
    }
    let meta = d.pod_meta_path();
    let (label_path, ann_path) = (format!("{meta}.labels"), format!("{meta}.annotations"));
    let labels = d.strings_at(&label_path);
    let annotations = d.strings_at(&ann_path);
    let mut plan: Vec<(Place, String, Change, String)> = Vec::new();
    for (k, v) in &labels {
        if let Some((change, why)) = label(k, v) {
            plan.push((Place::Label, k.clone(), change, why));
        }
    }
    for (k, v) in &annotations {
        if let Some((change, why)) = annotation(k, v) {
            plan.push((Place::Annotation, k.clone(), change, why));
        }
        if k == "proxy.istio.io/config" {
            for (change, why) in proxy_config(v) {
                plan.push((Place::Annotation, k.clone(), change, why));
            }
            let why = "dropped: each of its settings is converted or listed here".into();
            plan.push((Place::Annotation, k.clone(), Change::Drop, why));
        }
    }
    if plan.is_empty() {
        return;
    }
    let d = &mut ctx.docs[i];
    d.istio_meta = true;
    let path = |p: Place| {
        if p == Place::Label {
            &label_path
        } else {
            &ann_path
        }
    };
    for (place, key, change, why) in plan {
        match change {
            Change::To(to, new_key, value) => {
                d.map_at(path(place)).remove(&key);
                let target = d.map_at(path(to));
                let have = target
                    .get(new_key)
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match have {
                    Some(have) if have != value => {
                        d.note(
                            path(to),
                            format!("{key}: {why}, but {new_key} is already {have}; kept"),
                        );
                        continue;
                    }
                    _ => {
                        target.insert(new_key.into(), json!(value));
                    }
                }
                let text = match why.contains('→') {
                    true => format!("{key}: {why}"),
                    false => format!("{key} → {why}"),
                };
                d.note(path(to), text);
            }
            Change::Drop => {
                d.map_at(path(place)).remove(&key);
                d.note(path(place), format!("{key}: {why}"));
            }
            Change::Keep => d.note(path(place), format!("{key}: {why}")),
        }
    }
    for p in [&label_path, &ann_path] {
        if d.map_at(p).is_empty() {
            let (parent, field) = p.rsplit_once('.').expect("a dotted path");
            d.map_at(parent).remove(field);
        }
    }
}

fn label(k: &str, v: &str) -> Option<(Change, String)> {
    Some(match k {
        "istio-injection" | "sidecar.istio.io/inject" => injection(k, v),
        "istio.io/rev" => (
            Change::To(Place::Label, REV, v.into()),
            format!("{REV}: {v} (the revision must exist: `weft revision list`)"),
        ),
        "istio.io/dataplane-mode" => match v {
            "ambient" | "none" => (
                Change::To(Place::Label, DATAPLANE_MODE, v.into()),
                format!("{DATAPLANE_MODE}: {v}"),
            ),
            _ => (
                Change::Keep,
                format!("value {v} not converted (weft's modes: sidecar, ambient, none)"),
            ),
        },
        "istio.io/use-waypoint" => (
            Change::To(Place::Label, USE_WAYPOINT, v.into()),
            format!("{USE_WAYPOINT}: {v}"),
        ),
        _ if k.contains("istio.io") => {
            (Change::Keep, "not converted (weft does not read it)".into())
        }
        _ => return None,
    })
}

fn injection(k: &str, v: &str) -> (Change, String) {
    match v {
        "disabled" | "false" => (
            Change::To(Place::Label, DATAPLANE_MODE, "none".into()),
            format!("{DATAPLANE_MODE}: none (no proxy)"),
        ),
        "enabled" | "true" => (
            Change::Drop,
            "nothing to write: weft gives every workload a sidecar by default".into(),
        ),
        other => (Change::Keep, format!("{k}={other} not converted")),
    }
}

fn annotation(k: &str, v: &str) -> Option<(Change, String)> {
    let to = |key: &'static str| {
        (
            Change::To(Place::Annotation, key, v.into()),
            format!("{key}: {v}"),
        )
    };
    Some(match k {
        "sidecar.istio.io/inject" => injection(k, v),
        "sidecar.istio.io/proxyCPU" => to(PROXY_CPU_REQUEST),
        "sidecar.istio.io/proxyCPULimit" => to(PROXY_CPU_LIMIT),
        "sidecar.istio.io/proxyMemory" => to(PROXY_MEMORY_REQUEST),
        "sidecar.istio.io/proxyMemoryLimit" => to(PROXY_MEMORY_LIMIT),
        "sidecar.istio.io/logLevel" => {
            let level = match v {
                "trace" | "debug" | "info" | "error" => v,
                "warning" | "warn" => "warn",
                "critical" | "off" => "error",
                _ => return Some((Change::Keep, format!("level {v} not converted"))),
            };
            (
                Change::To(Place::Annotation, LOG_LEVEL, level.into()),
                format!("{LOG_LEVEL}: {level}"),
            )
        }
        "proxy.istio.io/config" => return None,
        "sidecar.istio.io/status" | "istio.io/rev" => {
            (Change::Drop, "written by Istio's injector; dropped".into())
        }
        _ if k.contains("istio.io") => (Change::Keep, format!("not converted ({})", why_not(k))),
        _ => return None,
    })
}

fn why_not(k: &str) -> &'static str {
    if k.starts_with("traffic.sidecar.istio.io/") {
        "weft captures all of a pod's TCP traffic; it has no per-port or per-range exclusions"
    } else if k.starts_with("readiness.status.sidecar.istio.io/")
        || k.starts_with("status.sidecar.istio.io/")
    {
        "weft's proxy readiness is on port 15021 and not configurable"
    } else {
        "weft does not read it"
    }
}

/// `proxy.istio.io/config`: a ProxyConfig in YAML.
fn proxy_config(text: &str) -> Vec<(Change, String)> {
    let (docs, err) = crate::load::yaml::parse_documents(text);
    let Some(Value::Object(cfg)) = docs
        .into_iter()
        .next()
        .map(|d| d.value)
        .filter(|_| err.is_none())
    else {
        return vec![(Change::Keep, "does not parse as YAML; not converted".into())];
    };
    let mut out = Vec::new();
    for (k, v) in &cfg {
        let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        out.push(match (k.as_str(), v) {
            ("holdApplicationUntilProxyStarts", Value::Bool(true)) => (
                Change::Keep,
                "holdApplicationUntilProxyStarts: true: nothing to write, weft holds the app until its proxy is ready by default".into(),
            ),
            ("holdApplicationUntilProxyStarts", Value::Bool(false)) => (
                Change::To(Place::Annotation, HOLD_APPLICATION, "false".into()),
                format!("holdApplicationUntilProxyStarts: false → {HOLD_APPLICATION}: \"false\""),
            ),
            ("terminationDrainDuration", _) => match super::matches::duration(&s) {
                Ok(d) => (
                    Change::To(Place::Annotation, DRAIN_DURATION, d.to_string()),
                    format!("terminationDrainDuration → {DRAIN_DURATION}: {d}"),
                ),
                Err(e) => (Change::Keep, format!("terminationDrainDuration: {e}; not converted")),
            },
            ("concurrency", Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=64).contains(&n)) => (
                Change::To(Place::Annotation, CONCURRENCY, s.clone()),
                format!("concurrency → {CONCURRENCY}: {s}"),
            ),
            ("concurrency", _) => (
                Change::Keep,
                format!("concurrency {s}: not converted (weft's concurrency is 1 to 64 worker threads; default 2)"),
            ),
            ("tracing", Value::Object(t)) if t.get("sampling").is_some_and(Value::is_number) => {
                let rate = t["sampling"].to_string();
                (
                    Change::To(Place::Annotation, TRACE_SAMPLING, rate.clone()),
                    format!("tracing.sampling → {TRACE_SAMPLING}: {rate}"),
                )
            }
            (other, _) => (Change::Keep, format!("{other}: not converted (weft has no equivalent)")),
        });
    }
    out
}
