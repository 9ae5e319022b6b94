//! DestinationRule → TrafficPolicy, and per-version Services for its subsets.
//!
//! The Gateway API has no subsets: each subset a route (or mirror) uses becomes a Service
//! `<service>-<subset>` selecting the parent Service's selector plus the subset's labels, with
//! the parent's ports, as weft's demo shop writes `pricing-v1` and `pricing-v2`. The
//! DestinationRule's traffic policy applies to the Service and to those per-version Services;
//! a subset's own policy overrides it field by field, in a TrafficPolicy of its own.

use serde_json::{Map, Value, json};

use super::Converted;
use super::context::{Context, Host};
use super::matches::duration;
use super::types::{DestinationRule, TrafficPolicy, spec};
use crate::resources::WEFT_API;

pub(super) fn convert(ctx: &mut Context, i: usize, c: &mut Converted) -> Result<(), String> {
    let d = &ctx.docs[i];
    let dr: DestinationRule = spec(&d.value)?;
    let (svc_ns, svc) = match ctx.resolve(&dr.host, &d.namespace) {
        Host::Service(ns, n) => (ns, n),
        Host::Missing(ns, n) => {
            c.general(format!(
                "host {}: no Service {ns}/{n} in the input; the policy and subsets name it",
                dr.host
            ));
            (ns, n)
        }
        Host::External(h) => {
            return Err(format!(
                "host {h} is not a Service of the mesh (a ServiceEntry or external host): weft applies traffic policy to its own Services only"
            ));
        }
    };
    if svc_ns != d.namespace {
        c.general(format!(
            "in namespace {}, for a Service in {svc_ns}: a TrafficPolicy lives in its Service's namespace and applies to every client, where Istio applied this one to clients in {} only",
            d.namespace, d.namespace
        ));
    }
    let parent = ctx.services.get(&(svc_ns.clone(), svc.clone())).cloned();

    // Per-version Services for the subsets routes use.
    let mut inherit = vec![svc.clone()];
    let mut own: Vec<(usize, String, TrafficPolicy)> = Vec::new();
    for (k, s) in dr.subsets.iter().enumerate() {
        let at = format!("subsets[{k}]");
        let name = ctx.subset_service(&svc, &s.name);
        if !ctx
            .used_subsets
            .contains(&(svc_ns.clone(), svc.clone(), s.name.clone()))
        {
            c.general(format!(
                "{at} {}: no route uses it, so no Service {name} is written",
                s.name
            ));
            continue;
        }
        if let Some(existing) = ctx.services.get(&(svc_ns.clone(), name.clone())) {
            c.general(format!(
                "{at} {}: the input already has a Service {name} (selector {:?}); it is used as the subset",
                s.name, existing.selector
            ));
        } else {
            let mut selector: Map<String, Value> = Map::new();
            if let Some(p) = &parent {
                for (k, v) in &p.selector {
                    selector.insert(k.clone(), json!(v));
                }
            }
            for (k, v) in &s.labels {
                selector.insert(k.clone(), json!(v));
            }
            let out = c.add(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": svc_ns},
                "spec": {"selector": selector, "ports": []},
            }));
            c.comment(
                out,
                "",
                format!(
                    "subset {} of Service {svc} (DestinationRule {})",
                    s.name, d.name
                ),
            );
            // The parent's ports, targetPorts and protocols, as written.
            if let Some(p) = parent_ports(ctx, &svc_ns, &svc) {
                c.outs[out].value["spec"]["ports"] = p;
            } else {
                c.note(
                    out,
                    "spec",
                    format!("no Service {svc_ns}/{svc} in the input: copy its ports here, and its selector next to the subset's labels"),
                );
            }
        }
        for key in s.rest.keys() {
            c.general(format!(
                "{at}.{key}: not converted (weft has no equivalent)"
            ));
        }
        match &s.traffic_policy {
            Some(p) => own.push((k, name, merged(dr.traffic_policy.as_ref(), p))),
            None => inherit.push(name),
        }
    }

    if let Some(p) = &dr.traffic_policy {
        policy(c, &d.name, &svc_ns, &inherit, p, "trafficPolicy");
    }
    for (k, name, p) in &own {
        policy(
            c,
            name,
            &svc_ns,
            std::slice::from_ref(name),
            p,
            &format!("subsets[{k}].trafficPolicy"),
        );
    }
    if dr.export_to.is_some() {
        c.general(
            "exportTo: not converted (a TrafficPolicy applies to every client of its Services)",
        );
    }
    if dr.workload_selector.is_some() {
        c.general("workloadSelector: not converted (a TrafficPolicy applies to every client of its Services)");
    }
    c.unknown(None, "", "", &dr.rest);
    if c.outs.is_empty() {
        c.general("nothing to write: no traffic policy and no subset used by a route");
    }
    Ok(())
}

/// The parent Service's `spec.ports`, as written.
fn parent_ports(ctx: &Context, ns: &str, name: &str) -> Option<Value> {
    ctx.docs
        .iter()
        .find(|d| {
            d.api_version == "v1" && d.kind == "Service" && d.namespace == ns && d.name == name
        })
        .and_then(|d| d.value.get("spec")?.get("ports").cloned())
}

/// A subset's policy over the DestinationRule's: each top-level setting the subset sets wins.
fn merged(top: Option<&TrafficPolicy>, sub: &TrafficPolicy) -> TrafficPolicy {
    let mut p = top.cloned().unwrap_or_default();
    if sub.load_balancer.is_some() {
        p.load_balancer = sub.load_balancer.clone();
    }
    if sub.connection_pool.is_some() {
        p.connection_pool = sub.connection_pool.clone();
    }
    if sub.outlier_detection.is_some() {
        p.outlier_detection = sub.outlier_detection.clone();
    }
    if sub.tls.is_some() {
        p.tls = sub.tls.clone();
    }
    if sub.port_level_settings.is_some() {
        p.port_level_settings = sub.port_level_settings.clone();
    }
    p.rest.extend(sub.rest.clone());
    p
}

/// A TrafficPolicy `name` for `targets`, from Istio's `p` at `at`.
fn policy(
    c: &mut Converted,
    name: &str,
    ns: &str,
    targets: &[String],
    p: &TrafficPolicy,
    at: &str,
) {
    let mut notes = Vec::new();
    let mut spec = Map::new();
    spec.insert(
        "targetRefs".into(),
        Value::Array(
            targets
                .iter()
                .map(|t| json!({"kind": "Service", "name": t}))
                .collect(),
        ),
    );
    if let Some(lb) = &p.load_balancer {
        match lb.simple.as_deref() {
            Some("ROUND_ROBIN") => {
                spec.insert("loadBalancer".into(), json!({"type": "ROUND_ROBIN"}));
            }
            Some("LEAST_REQUEST" | "LEAST_CONN") => {
                spec.insert("loadBalancer".into(), json!({"type": "LEAST_REQUEST"}));
            }
            Some("RANDOM") => {
                spec.insert("loadBalancer".into(), json!({"type": "RANDOM"}));
            }
            Some(other) => notes.push(format!(
                "{at}.loadBalancer.simple {other}: not converted (weft balances LEAST_REQUEST, ROUND_ROBIN or RANDOM)"
            )),
            None => {}
        }
        if lb.consistent_hash.is_some() {
            notes.push(format!(
                "{at}.loadBalancer.consistentHash: not converted (weft has no sticky, hash-based balancing)"
            ));
        }
        if lb.locality_lb_setting.is_some() {
            notes.push(format!("{at}.loadBalancer.localityLbSetting: not converted (weft does not balance by locality)"));
        }
        if lb.warmup_duration_secs.is_some() {
            notes.push(format!(
                "{at}.loadBalancer.warmupDurationSecs: not converted (weft has no slow start)"
            ));
        }
        unknown(&mut notes, &format!("{at}.loadBalancer"), &lb.rest);
    }
    if let Some(cp) = &p.connection_pool {
        let mut pool = Map::new();
        if let Some(tcp) = &cp.tcp {
            if let Some(n) = tcp.max_connections {
                pool.insert("maxConnections".into(), json!(n));
                notes.push(format!(
                    "{at}.connectionPool.tcp.maxConnections: Istio limits connections to the whole Service, weft per endpoint"
                ));
            }
            if let Some(t) = &tcp.connect_timeout {
                pool.insert("connectTimeout".into(), json!(dur(t, &mut notes, at)));
            }
            for (f, v) in [
                ("tcpKeepalive", &tcp.tcp_keepalive),
                ("maxConnectionDuration", &tcp.max_connection_duration),
                ("idleTimeout", &tcp.idle_timeout),
            ] {
                if v.is_some() {
                    notes.push(format!(
                        "{at}.connectionPool.tcp.{f}: not converted (weft has no equivalent)"
                    ));
                }
            }
            unknown(&mut notes, &format!("{at}.connectionPool.tcp"), &tcp.rest);
        }
        if let Some(http) = &cp.http {
            if let Some(n) = http.http1_max_pending_requests {
                pool.insert("maxPendingRequests".into(), json!(n));
            }
            if let Some(n) = http.max_requests_per_connection {
                pool.insert("maxRequestsPerConnection".into(), json!(n));
            }
            if let Some(t) = &http.idle_timeout {
                pool.insert("idleTimeout".into(), json!(dur(t, &mut notes, at)));
            }
            for (f, v) in [
                ("http2MaxRequests", &http.http2_max_requests),
                ("maxRetries", &http.max_retries),
                ("h2UpgradePolicy", &http.h2_upgrade_policy),
                ("useClientProtocol", &http.use_client_protocol),
                ("maxConcurrentStreams", &http.max_concurrent_streams),
            ] {
                if v.is_some() {
                    notes.push(format!(
                        "{at}.connectionPool.http.{f}: not converted (weft has no equivalent)"
                    ));
                }
            }
            unknown(&mut notes, &format!("{at}.connectionPool.http"), &http.rest);
        }
        unknown(&mut notes, &format!("{at}.connectionPool"), &cp.rest);
        if !pool.is_empty() {
            spec.insert("connectionPool".into(), Value::Object(pool));
        }
    }
    if let Some(od) = &p.outlier_detection {
        let mut o = Map::new();
        let errors = od.consecutive_5xx_errors.or(od.consecutive_errors);
        match (errors, od.consecutive_gateway_errors) {
            (Some(n), _) => {
                o.insert("consecutiveErrors".into(), json!(n));
                if od.consecutive_gateway_errors.is_some() {
                    notes.push(format!(
                        "{at}.outlierDetection.consecutiveGatewayErrors: not converted (weft counts every 5xx and connect failure)"
                    ));
                }
            }
            (None, Some(n)) => {
                o.insert("consecutiveErrors".into(), json!(n));
                notes.push(format!(
                    "{at}.outlierDetection.consecutiveGatewayErrors: weft counts every 5xx and connect failure, not only 502-504"
                ));
            }
            (None, None) => {}
        }
        if let Some(t) = &od.interval {
            o.insert("interval".into(), json!(dur(t, &mut notes, at)));
        }
        if let Some(t) = &od.base_ejection_time {
            o.insert("baseEjectionTime".into(), json!(dur(t, &mut notes, at)));
        }
        if let Some(n) = od.max_ejection_percent {
            o.insert("maxEjectionPercent".into(), json!(n));
        }
        for (f, v) in [
            ("minHealthPercent", &od.min_health_percent),
            (
                "splitExternalLocalOriginErrors",
                &od.split_external_local_origin_errors,
            ),
            (
                "consecutiveLocalOriginFailures",
                &od.consecutive_local_origin_failures,
            ),
        ] {
            if v.is_some() {
                notes.push(format!(
                    "{at}.outlierDetection.{f}: not converted (weft has no equivalent)"
                ));
            }
        }
        unknown(&mut notes, &format!("{at}.outlierDetection"), &od.rest);
        if !o.is_empty() {
            spec.insert("outlierDetection".into(), Value::Object(o));
        }
    }
    if let Some(tls) = &p.tls {
        match tls.mode.as_deref() {
            Some("ISTIO_MUTUAL") | None => {}
            Some(mode) => notes.push(format!(
                "{at}.tls.mode {mode}: not converted (between mesh workloads weft always uses its own mTLS; it originates no TLS to other servers)"
            )),
        }
        unknown(&mut notes, &format!("{at}.tls"), &tls.rest);
    }
    if p.port_level_settings.is_some() {
        notes.push(format!("{at}.portLevelSettings: not converted (a TrafficPolicy applies to all ports of its Services)"));
    }
    for (f, v) in [("tunnel", &p.tunnel), ("proxyProtocol", &p.proxy_protocol)] {
        if v.is_some() {
            notes.push(format!("{at}.{f}: not converted (weft has no equivalent)"));
        }
    }
    unknown(&mut notes, at, &p.rest);

    if spec.len() == 1 {
        for n in notes {
            c.general(n);
        }
        return;
    }
    let out = c.add(json!({
        "apiVersion": WEFT_API,
        "kind": "TrafficPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }));
    for n in notes {
        c.note(out, "spec", n);
    }
}

fn dur(s: &str, notes: &mut Vec<String>, at: &str) -> String {
    match duration(s) {
        Ok(d) => d.to_string(),
        Err(e) => {
            notes.push(format!("{at}: {e}"));
            s.to_string()
        }
    }
}

fn unknown(notes: &mut Vec<String>, at: &str, rest: &super::types::Rest) {
    for key in rest.keys() {
        notes.push(format!(
            "{at}.{key}: not converted (weft has no equivalent)"
        ));
    }
}
