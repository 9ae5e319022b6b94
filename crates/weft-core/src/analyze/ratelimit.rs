//! 06xx, continued: where a TrafficPolicy's `localRateLimit` is enforced. A Service's waypoint
//! enforces it, else each pod's sidecar; ambient mode's node proxy is L4 only and never sees a
//! request, and a workload with no proxy has nothing to enforce it.

use super::{Index, Report, Rule, Severity};
use crate::annotations::{DataplaneMode, USE_WAYPOINT};
use crate::resources::Resource;

pub const RULES: &[Rule] = &[WEFT0609];

const WEFT0609: Rule = Rule {
    code: "WEFT0609",
    severity: Severity::Warning,
    title: "local rate limit that no proxy enforces",
    explain: "A TrafficPolicy's `localRateLimit` counts HTTP requests where the destination's L7 \
runs: at the Service's waypoint when it uses one, else at each pod's sidecar. In ambient mode \
without a waypoint the pod's traffic passes its node's proxy, which relays TCP and never sees a \
request, so the limit is not enforced there; a workload in `weft.dev/dataplane-mode: none` has \
no proxy at all. Give the Service a waypoint (a Gateway with `gatewayClassName: \
weft-waypoint`, the Service or its Namespace labelled `weft.dev/use-waypoint: NAME`), or run \
the workload with a sidecar.",
    bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: api, weft.dev/dataplane-mode: ambient}
spec: {command: [api]}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: api}
spec:
  targetRefs: [{kind: Service, name: api}]
  localRateLimit: {requests: 100, per: 1s}
"#,
    good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: api}
spec: {command: [api]}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: api}
spec:
  targetRefs: [{kind: Service, name: api}]
  localRateLimit: {requests: 100, per: 1s}
"#,
};

pub fn check(ix: &Index<'_>, out: &mut Report) {
    let policies = ix.each(|r| match r {
        Resource::TrafficPolicy(p) => Some(p),
        _ => None,
    });
    for (l, p) in policies.filter(|(_, p)| p.spec.local_rate_limit.is_some()) {
        let ns = p.metadata.namespace();
        for (i, t) in p.spec.target_refs.iter().enumerate() {
            let Some((_, svc)) = ix.service(ns, &t.name) else {
                continue;
            };
            let waypoint = (svc.metadata.labels.get(USE_WAYPOINT))
                .or_else(|| ix.namespace_labels(ns).get(USE_WAYPOINT))
                .is_some_and(|w| w != "none");
            if waypoint || svc.spec.selector.is_empty() {
                continue;
            }
            for (_, w) in ix.selected(ns, &svc.spec.selector) {
                let why = match ix.settings(w).dataplane_mode {
                    DataplaneMode::Sidecar => continue,
                    DataplaneMode::Ambient => {
                        "is in ambient mode without a waypoint: its node proxy is L4 only and never sees a request"
                    }
                    DataplaneMode::None => "has no proxy (weft.dev/dataplane-mode: none)",
                };
                out.add(
                    "WEFT0609",
                    l,
                    &format!("spec.targetRefs[{i}]"),
                    format!(
                        "the local rate limit of Service {ns}/{} is not enforced on Workload {ns}/{}, which {why}",
                        t.name, w.metadata.name
                    ),
                    format!(
                        "label Service {ns}/{} (or Namespace {ns}) with {USE_WAYPOINT}: NAME of a Gateway with gatewayClassName: weft-waypoint, or run the workload with a sidecar",
                        t.name
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::{Analysis, analyze};
    use crate::load::parse_str;

    fn run(text: &str) -> Analysis {
        let out = parse_str("example.yaml", text);
        assert!(out.is_ok(), "{:#?}", out.errors);
        analyze(&out.config)
    }

    fn found(a: &Analysis) -> Vec<String> {
        (a.findings.iter())
            .filter(|f| f.code == "WEFT0609")
            .map(|f| format!("{} {}", f.location, f.message))
            .collect()
    }

    fn mesh(mode: &str, service_labels: &str) -> String {
        format!(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: api\n  labels: {{app: api, weft.dev/dataplane-mode: {mode}}}\nspec: {{command: [api]}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: api, labels: {{{service_labels}}}}}\nspec:\n  selector: {{app: api}}\n  ports: [{{port: 80, targetPort: 8080}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: wp}}\nspec:\n  gatewayClassName: weft-waypoint\n  listeners: [{{name: mesh, port: 15008, protocol: HBONE}}]\n---\napiVersion: weft.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {{name: api}}\nspec:\n  targetRefs: [{{kind: Service, name: api}}]\n  localRateLimit: {{requests: 10, per: 1s}}\n"
        )
    }

    #[test]
    fn only_workloads_without_an_l7_proxy_are_named() {
        let ambient = found(&run(&mesh("ambient", "")));
        assert_eq!(ambient.len(), 1, "{ambient:?}");
        assert!(
            ambient[0].starts_with("example.yaml:26:16 ")
                && ambient[0].contains("Workload default/api, which is in ambient mode"),
            "{ambient:?}"
        );
        let none = found(&run(&mesh("none", "")));
        assert!(none[0].contains("has no proxy"), "{none:?}");
        assert_eq!(found(&run(&mesh("sidecar", ""))), Vec::<String>::new());
        let behind_waypoint = mesh("ambient", "weft.dev/use-waypoint: wp");
        assert_eq!(found(&run(&behind_waypoint)), Vec::<String>::new());
    }
}
