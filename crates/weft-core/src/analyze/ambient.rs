//! 06xx, continued: what ambient mode's node proxy cannot do. It is L4 only: HTTP rules of an
//! AuthorizationPolicy are enforced by a waypoint, and without one they fail closed.

use super::{Index, Report, Rule, Severity};
use crate::annotations::{DataplaneMode, USE_WAYPOINT};
use crate::resources::policy::AuthorizationAction;

pub const RULES: &[Rule] = &[Rule {
    code: "WEFT0606",
    severity: Severity::Warning,
    title: "HTTP policy on an ambient workload without a waypoint",
    explain: "In ambient mode a workload's traffic passes its node's proxy, which works at L4: it \
sees identities and ports, never methods, paths or headers. An AuthorizationPolicy rule that \
needs HTTP is enforced by a waypoint; with none in use (no `weft.dev/use-waypoint` on the \
Workload or its Namespace, or `none`) it fails closed: an ALLOW rule that needs HTTP is never \
met, and a DENY rule that needs HTTP denies every connection on its ports. Add a waypoint (a \
Gateway with `gatewayClassName: weft-waypoint`) and label the Namespace or Workload with \
`weft.dev/use-waypoint: NAME`, or write the rules with sources and ports only.",
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
}];

pub fn check(ix: &Index<'_>, out: &mut Report) {
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
        if waypoint.is_some_and(|name| name != "none") {
            continue;
        }
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
                    "needs HTTP, but Workload {ns}/{} is in ambient mode with no waypoint: its node \
proxy is L4 only, so this {action} rule {outcome}",
                    w.metadata.name
                ),
                format!(
                    "add a Gateway with gatewayClassName: weft-waypoint and label Namespace {ns} \
(or the Workload) with {USE_WAYPOINT}: NAME, or write the rule with sources and ports only"
                ),
            );
        }
    }
}
