//! The authorization half of `weft diagnose`'s checks: mTLS on each hop (STRICT against a
//! source without a proxy, a destination without one that a policy selects) and the decision
//! each destination's proxy would make, with the policy and rule that decide.

use weft_core::authz::{self, Ask, Decision, HttpAsk};
use weft_core::model::Protocol;
use weft_core::resources::mesh::MtlsMode;
use weft_local::plan::PodPlan;
use weft_local::status::PodStatus;

use super::checks::{Request, Route};
use super::facts::{Destination, Facts};
use super::{Mark, Problem, Report};

/// mTLS on each hop, and the authorization decision at each endpoint's proxy.
pub fn policy(
    f: &Facts,
    src: &PodPlan,
    src_status: &PodStatus,
    route: &Route,
    dst: &Destination,
    ask: &Request<'_>,
    r: &mut Report,
) {
    let src_identity = f.identity(src.ip.into());
    let src_proxied = matches!(src_status.mode.as_str(), "sidecar" | "ambient");
    let mut lines = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let header = |name: &str| -> Vec<String> {
        ask.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let path = dst.path.split('?').next().unwrap_or("/");
    let mut mark = Mark::Ok;
    for e in &route.endpoints {
        if !seen.insert(e.workload.clone()) {
            continue;
        }
        let Some(pod) = f.pods.iter().find(|p| p.ip == e.address) else {
            continue;
        };
        let config = f.snapshot.proxy(pod);
        let strict = config.settings.mtls_mode == MtlsMode::Strict;
        if e.tunnel.is_none() {
            let policies = config.authorization.len();
            mark = mark.max(Mark::Warn);
            lines.push(format!(
                "{}: no proxy, so no mTLS and no policy enforcement{}",
                e.workload,
                if policies > 0 {
                    format!(" — {policies} AuthorizationPolicy selects it and CANNOT be enforced")
                } else {
                    String::new()
                }
            ));
            if policies > 0 {
                r.problem(Problem::new(format!("{} has no proxy: the AuthorizationPolicy that selects it cannot be enforced, and its traffic is plaintext", e.workload), format!("give {} a proxy (label weft.dev/dataplane-mode: sidecar or ambient)", e.workload)));
            }
            continue;
        }
        if !src_proxied && strict {
            mark = Mark::Fail;
            lines.push(format!(
                "{}: mTLS STRICT, and the source has no proxy: plaintext is refused",
                e.workload
            ));
            r.problem(Problem::new(format!("{}/{} has no proxy, and {} takes only mTLS (STRICT): the connection is refused", src.namespace, src.name, e.workload), format!("give {} a proxy (label weft.dev/dataplane-mode: sidecar), or set weft.dev/mtls-mode: PERMISSIVE on {} while migrating", src.workload, e.workload)));
            continue;
        }
        let identity = src_identity.as_deref().filter(|_| src_proxied);
        let target_port = e.ports.get(&route.port).copied().unwrap_or(route.port);
        let is_http = route
            .service
            .port(route.port)
            .is_some_and(|p| p.protocol != Protocol::Tcp);
        let ask = Ask {
            identity,
            port: target_port,
            http: is_http.then_some(HttpAsk {
                method: ask.method,
                path,
                header: &header,
            }),
            service: None,
        };
        match authz::evaluate(&config.authorization, &ask) {
            Decision::Allow { policy: None, .. } => lines.push(format!(
                "{}: allowed (no AuthorizationPolicy selects it), mTLS",
                e.workload
            )),
            Decision::Allow {
                policy: Some(p),
                rule,
            } => lines.push(format!(
                "{}: allowed by {p} rule {}, mTLS",
                e.workload,
                rule.unwrap_or(0)
            )),
            Decision::Deny {
                policy,
                rule,
                reason,
            } => {
                mark = Mark::Fail;
                lines.push(format!("{}: DENIED — {reason}", e.workload));
                let fix = deny_fix(f, &policy, rule, identity);
                r.problem(Problem::new(
                    format!("{} denies the request (403): {reason}", e.workload),
                    fix,
                ));
            }
        }
    }
    r.step("Policy", mark, lines);
}

/// How to let the caller in: a principal that names no workload is likely the typo.
fn deny_fix(f: &Facts, policy: &str, rule: Option<usize>, caller: Option<&str>) -> String {
    let Some(caller) = caller else {
        return "the caller has no identity (no proxy): give it one, or allow it by namespace"
            .into();
    };
    if let Some(i) = rule {
        return format!(
            "rule {i} of DENY policy {policy} matches this call; change it if the call should pass"
        );
    }
    let short = caller.strip_prefix("spiffe://").unwrap_or(caller);
    let known: Vec<String> = f
        .pods
        .iter()
        .map(|p| {
            format!(
                "{}/ns/{}/sa/{}",
                f.plan.trust_domain, p.namespace, p.service_account
            )
        })
        .collect();
    let typo = f.principals_of(policy).into_iter().find(|p| {
        let p = p.strip_prefix("spiffe://").unwrap_or(p);
        !p.contains('*')
            && !known.iter().any(|k| k == p)
            && strsim::damerau_levenshtein(p, short) <= 3
    });
    match typo {
        Some(p) => format!(
            "principal {p:?} in {policy} matches no workload; did you mean {caller}? Fix the principal"
        ),
        None => format!(
            "add {caller} to a rule's principals in {policy}, if this caller should be allowed"
        ),
    }
}
