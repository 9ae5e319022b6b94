//! 06xx, continued: what ambient mode's node proxy cannot do, and waypoints. The node proxy is
//! L4 only: HTTP rules of an AuthorizationPolicy are enforced by a waypoint the policy is
//! attached to (`targetRefs`); selected by a `selector`, they fail closed at the node proxy.

use super::{Index, Report, Rule, Severity};
use crate::annotations::{DataplaneMode, USE_WAYPOINT};
use crate::resources::policy::AuthorizationAction;
use crate::resources::{Resource, route_common::GATEWAY_GROUP};

pub const RULES: &[Rule] = &[WEFT0606, WEFT0607];

const WEFT0606: Rule = Rule {
    code: "WEFT0606",
    severity: Severity::Warning,
    title: "HTTP policy on an ambient workload without a waypoint",
    explain: "In ambient mode a workload's traffic passes its node's proxy, which works at L4: it \
sees identities and ports, never methods, paths or headers. An AuthorizationPolicy rule that \
needs HTTP is enforced by a waypoint, attached to it with `targetRefs` (the waypoint, or a \
Service that uses it). A policy that selects the workload is enforced by the node proxy, where \
such a rule fails closed: an ALLOW rule that needs HTTP is never met, and a DENY rule that needs \
HTTP denies every connection on its ports. Add a waypoint (a Gateway with `gatewayClassName: \
weft-waypoint`, the Namespace or Workload labelled `weft.dev/use-waypoint: NAME`) and attach \
the policy to it, or write the rules with sources and ports only.",
    bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: api, weft.dev/dataplane-mode: ambient}
spec: {command: [api]}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
"#,
    good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: api, weft.dev/dataplane-mode: ambient}
spec: {command: [api]}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{to: [{operation: {ports: [8080]}}]}]
"#,
};

const WEFT0607: Rule = Rule {
    code: "WEFT0607",
    severity: Severity::Error,
    title: "AuthorizationPolicy attached to no waypoint",
    explain: "An AuthorizationPolicy with `targetRefs` is enforced by a waypoint: a target must be \
a waypoint Gateway (`kind: Gateway`, `group: gateway.networking.k8s.io`, class `weft-waypoint`) \
or a Service that uses one (`kind: Service`, labelled `weft.dev/use-waypoint` or in a Namespace \
that is). A policy with `targetRefs` selects no workload, so `selector` cannot be set with it. \
Any other target is enforced nowhere.",
    bad: r#"apiVersion: v1
kind: Service
metadata: {name: api}
spec: {selector: {app: api}, ports: [{port: 80}]}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: api}
spec:
  targetRefs: [{kind: Service, name: api}]
  rules: [{to: [{operation: {methods: [GET]}}]}]
"#,
    good: r#"apiVersion: v1
kind: Service
metadata: {name: api, labels: {weft.dev/use-waypoint: waypoint}}
spec: {selector: {app: api}, ports: [{port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: api}
spec:
  targetRefs: [{kind: Service, name: api}]
  rules: [{to: [{operation: {methods: [GET]}}]}]
"#,
};

pub fn check(ix: &Index<'_>, out: &mut Report) {
    http_rules_at_the_node(ix, out);
    attached(ix, out);
}

/// WEFT0607: every target of an attached policy is a waypoint, or a Service behind one.
fn attached(ix: &Index<'_>, out: &mut Report) {
    let policies = ix.each(|r| match r {
        Resource::AuthorizationPolicy(p) => Some(p),
        _ => None,
    });
    for (l, p) in policies.filter(|(_, p)| !p.spec.target_refs.is_empty()) {
        let ns = p.metadata.namespace();
        if p.spec.selector.is_some() {
            out.add(
                "WEFT0607",
                l,
                "spec.selector",
                "a policy with targetRefs is enforced by a waypoint and selects no workload"
                    .to_string(),
                "remove the selector, or write two policies",
            );
        }
        for (i, t) in p.spec.target_refs.iter().enumerate() {
            let path = format!("spec.targetRefs[{i}]");
            let problem = match (t.kind.as_str(), t.group.as_str()) {
                ("Gateway", GATEWAY_GROUP) => match ix.gateway(ns, &t.name) {
                    Some((_, g)) if g.is_waypoint() => None,
                    Some(_) => Some(format!("Gateway {ns}/{} is not a waypoint", t.name)),
                    None => Some(format!("waypoint {ns}/{} does not exist", t.name)),
                },
                ("Service", "") => match ix.service(ns, &t.name) {
                    None => Some(format!("Service {ns}/{} does not exist", t.name)),
                    Some((_, s)) => {
                        let label = s
                            .metadata
                            .labels
                            .get(USE_WAYPOINT)
                            .or_else(|| ix.namespace_labels(ns).get(USE_WAYPOINT));
                        match label {
                            Some(w) if w != "none" => None,
                            _ => Some(format!(
                                "Service {ns}/{} uses no waypoint, so nothing enforces the policy for it",
                                t.name
                            )),
                        }
                    }
                },
                (kind, group) => Some(format!(
                    "targetRef {group:?}/{kind} is not a waypoint Gateway or a Service"
                )),
            };
            if let Some(message) = problem {
                out.add("WEFT0607", l, &path, message,
                    format!("target a Gateway with gatewayClassName: weft-waypoint (group {GATEWAY_GROUP}), or a Service labelled {USE_WAYPOINT}: NAME"));
            }
        }
    }
}

/// WEFT0606: HTTP rules in policies the node proxy enforces.
fn http_rules_at_the_node(ix: &Index<'_>, out: &mut Report) {
    for (_, w) in ix.workloads() {
        if ix.settings(w).dataplane_mode != DataplaneMode::Ambient {
            continue;
        }
        let ns = w.metadata.namespace();
        let waypoint = w
            .metadata
            .labels
            .get(USE_WAYPOINT)
            .or_else(|| ix.namespace_labels(ns).get(USE_WAYPOINT));
        let waypoint = waypoint.filter(|name| *name != "none");
        for (l, p) in ix.policies_for(w) {
            let http = p
                .spec
                .rules
                .iter()
                .position(|r| r.to.iter().any(|t| t.operation.is_l7()));
            let Some(i) = http else { continue };
            let (action, outcome) = match p.spec.action {
                AuthorizationAction::Deny => ("DENY", "denies every connection on its ports"),
                _ => ("ALLOW", "is never met"),
            };
            out.add(
                "WEFT0606",
                l,
                &format!("spec.rules[{i}]"),
                format!(
                    "needs HTTP, but Workload {ns}/{} is in ambient mode and this policy selects \
it: its node proxy is L4 only, so this {action} rule {outcome}",
                    w.metadata.name
                ),
                match waypoint {
                    Some(name) => format!(
                        "attach the policy to waypoint {name} instead of selecting the workload: \
targetRefs: [{{kind: Gateway, group: {GATEWAY_GROUP}, name: {name}}}] (or the Service), or write \
the rule with sources and ports only"
                    ),
                    None => format!(
                        "add a Gateway with gatewayClassName: weft-waypoint, label Namespace {ns} \
(or the Workload) with {USE_WAYPOINT}: NAME and attach the policy to it with targetRefs, or write \
the rule with sources and ports only"
                    ),
                },
            );
        }
    }
}
