//! 01xx: references to things that do not exist.
//!
//! Gateway API says what a route with a dangling reference does: a parentRef that names no
//! parent, or no port or listener of it, does not attach the route there; a backendRef that
//! does not resolve answers its share of requests with 500. weft serves exactly that, so those
//! findings are warnings (the route's status, in Gateway API terms): the rest of the change is
//! applied. Only references the API itself rejects (a Service backend without `port`) are
//! errors.

mod routes;

use super::{Index, Report, Rule, Severity};
use crate::annotations::USE_WAYPOINT;
use crate::resources::Resource;
use crate::resources::gateway::WAYPOINT_CLASS;
use crate::resources::service::IntOrString;

pub const RULES: &[Rule] = &[
    Rule {
        code: "WEFT0101",
        severity: Severity::Warning,
        title: "route attached to a Service that does not exist",
        explain: "A route whose parentRef names a Service that is not defined applies to no traffic: \
requests to the intended Service keep going to its default backends (Gateway API: the parent does \
not accept the route). The rest of the configuration is served. Check the name and namespace (a \
parentRef without `namespace` means the route's own namespace).",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: webb, port: 80}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
    },
    Rule {
        code: "WEFT0102",
        severity: Severity::Warning,
        title: "route attached to a port or listener its parent does not have",
        explain: "A parentRef's `port` or `sectionName` must name a port of the Service (by number \
or name) or a listener of the Gateway; with both, one port or listener must match both. \
Otherwise Gateway API leaves the route detached from that parent: it applies to none of its \
traffic, which keeps its default routing, while the rest of the configuration is served. A \
parentRef with neither attaches an HTTP or gRPC route to every HTTP port of the Service.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 8080}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
    },
    Rule {
        code: "WEFT0103",
        severity: Severity::Warning,
        title: "backend Service does not exist",
        explain: "A backendRef to a Service that is not defined (or to a kind other than Service) \
keeps its weight, as Gateway API requires: the share of requests that would have gone to it is \
answered with 500 and the header `weft-error: no-backend; backend=<namespace>/<name>:<port>`, \
and the other backends of the rule get the rest. A mirror to it is not sent. The configuration \
is served; define the Service or fix the name.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules: [{backendRefs: [{name: web-v2, port: 80}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
    },
    Rule {
        code: "WEFT0104",
        severity: Severity::Error,
        title: "Service backend without `port`",
        explain: "A Service backendRef must say which Service port receives the traffic: Gateway \
API requires `port` for Service backends (the Kubernetes API server refuses the route without \
it), so the route has no defined meaning.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules: [{backendRefs: [{name: web}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
    },
    Rule {
        code: "WEFT0105",
        severity: Severity::Warning,
        title: "route attached to a Gateway that does not exist",
        explain: "A parentRef without `kind` means a Gateway. If no Gateway of that name exists \
the route is not served at the edge (it is not attached there); the rest of the configuration is \
served. For mesh routing set `group: \"\"` and `kind: Service`.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
    },
    Rule {
        code: "WEFT0106",
        severity: Severity::Warning,
        title: "Service selects no workload",
        explain: "A Service whose selector matches no workload has no endpoints: every request to \
it fails with `weft-error: no-healthy-endpoint`. Compare the selector with the workloads' labels.",
        bad: r#"apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#,
        good: r#"apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"#,
    },
    Rule {
        code: "WEFT0107",
        severity: Severity::Warning,
        title: "AuthorizationPolicy selects no workload",
        explain: "A policy whose selector matches no workload in its namespace protects nothing. \
Usually the labels are misspelt or the policy sits in the wrong namespace.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web}
spec:
  selector: {matchLabels: {app: wbe}}
  rules: [{from: [{source: {namespaces: [default]}}]}]
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {namespaces: [default]}}]}]
"#,
    },
    Rule {
        code: "WEFT0108",
        severity: Severity::Error,
        title: "TrafficPolicy targets a Service that does not exist",
        explain: "A TrafficPolicy applies to the Services in its `targetRefs` (kind `Service`, same \
namespace). A missing target means the policy does nothing.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: web}
spec:
  targetRefs: [{kind: Service, name: webapp}]
  loadBalancer: {type: ROUND_ROBIN}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: web}
spec:
  targetRefs: [{kind: Service, name: web}]
  loadBalancer: {type: ROUND_ROBIN}
"#,
    },
    Rule {
        code: "WEFT0109",
        severity: Severity::Error,
        title: "`weft.dev/use-waypoint` names no waypoint",
        explain: "The label must name a Gateway with `gatewayClassName: weft-waypoint` in the same \
namespace (or be `none`). Otherwise L7 policy for the ambient workloads is not applied.",
        bad: r#"apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels: {weft.dev/dataplane-mode: ambient, weft.dev/use-waypoint: waypoint}
"#,
        good: r#"apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels: {weft.dev/dataplane-mode: ambient, weft.dev/use-waypoint: waypoint}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
"#,
    },
    Rule {
        code: "WEFT0110",
        severity: Severity::Warning,
        title: "Service targetPort not declared by its workloads",
        explain: "A Service's `targetPort` (a number or a port name) should be a port its workloads \
declare. A named targetPort that no workload declares cannot be resolved at all.",
        bad: r#"apiVersion: v1
kind: Service
metadata: {name: web-admin}
spec:
  selector: {app: web}
  ports: [{name: http-admin, port: 9090, targetPort: admin}]
"#,
        good: r#"apiVersion: v1
kind: Service
metadata: {name: web-admin}
spec:
  selector: {app: web}
  ports: [{name: http-admin, port: 9090, targetPort: http}]
"#,
    },
    Rule {
        code: "WEFT0111",
        severity: Severity::Warning,
        title: "backend port not on the Service",
        explain: "A backendRef's `port` must be a port of the Service. Otherwise the backend does \
not resolve and keeps its weight, as Gateway API requires: the share of requests that would have \
gone to it is answered with 500 and `weft-error: no-backend; backend=<namespace>/<name>:<port>`, \
and the other backends get the rest. The configuration is served; use one of the Service's ports.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
    },
];

pub fn check(ix: &Index<'_>, out: &mut Report) {
    routes::check(ix, out);
    services(ix, out);
    policies(ix, out);
    waypoints(ix, out);
}

fn services(ix: &Index<'_>, out: &mut Report) {
    for (l, svc) in ix.each(|r| match r {
        Resource::Service(s) => Some(s),
        _ => None,
    }) {
        if svc.spec.selector.is_empty() {
            continue;
        }
        let ns = svc.metadata.namespace();
        let selected: Vec<_> = ix.selected(ns, &svc.spec.selector).collect();
        if selected.is_empty() {
            let want: Vec<String> = svc
                .spec
                .selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.add(
                "WEFT0106",
                l,
                "spec.selector",
                format!(
                    "selector {} matches no workload in namespace {ns}",
                    want.join(",")
                ),
                "fix the selector, or add these labels to the workload's metadata.labels",
            );
            continue;
        }
        let declared: Vec<_> = selected
            .iter()
            .filter(|(_, w)| !w.spec.ports.is_empty())
            .collect();
        if declared.is_empty() {
            continue;
        }
        for (i, sp) in svc.spec.ports.iter().enumerate() {
            let target = sp.target();
            let found = declared.iter().any(|(_, w)| {
                w.spec.ports.iter().any(|cp| match &target {
                    IntOrString::Int(n) => cp.container_port == *n,
                    IntOrString::String(s) => cp.name.as_deref() == Some(s.as_str()),
                })
            });
            if !found {
                let shown = match &target {
                    IntOrString::Int(n) => n.to_string(),
                    IntOrString::String(s) => format!("{s:?}"),
                };
                out.add("WEFT0110", l, &format!("spec.ports[{i}].targetPort"),
                    format!("targetPort {shown} is not a port of the selected workloads"),
                    "declare it in the workload's spec.ports, or point targetPort at a declared port");
            }
        }
    }
}

fn policies(ix: &Index<'_>, out: &mut Report) {
    for (l, p) in ix.each(|r| match r {
        Resource::AuthorizationPolicy(p) => Some(p),
        _ => None,
    }) {
        let Some(sel) = &p.spec.selector else {
            continue;
        };
        if sel.match_labels.is_empty() {
            continue;
        }
        let ns = p.metadata.namespace();
        if ix.selected(ns, &sel.match_labels).next().is_none() {
            out.add(
                "WEFT0107",
                l,
                "spec.selector.matchLabels",
                format!("selector matches no workload in namespace {ns}"),
                "fix the labels, or move the policy to the workloads' namespace",
            );
        }
    }
    for (l, p) in ix.each(|r| match r {
        Resource::TrafficPolicy(p) => Some(p),
        _ => None,
    }) {
        let ns = p.metadata.namespace();
        for (i, t) in p.spec.target_refs.iter().enumerate() {
            if t.kind != "Service" || !t.group.is_empty() {
                out.add(
                    "WEFT0108",
                    l,
                    &format!("spec.targetRefs[{i}].kind"),
                    format!("targetRef kind {:?} is not supported", t.kind),
                    "target a Service: `kind: Service`, `group: \"\"`",
                );
            } else if ix.service(ns, &t.name).is_none() {
                out.add(
                    "WEFT0108",
                    l,
                    &format!("spec.targetRefs[{i}].name"),
                    format!("Service {ns}/{} does not exist", t.name),
                    "fix the name, or define the Service in the policy's namespace",
                );
            }
        }
    }
}

fn waypoints(ix: &Index<'_>, out: &mut Report) {
    for l in &ix.config.resources {
        let meta = l.resource.metadata();
        let Some(name) = meta.label(USE_WAYPOINT) else {
            continue;
        };
        if name == "none" {
            continue;
        }
        let ns = match l.resource {
            Resource::Namespace(_) => meta.name.as_str(),
            _ => meta.namespace(),
        };
        let path = format!("metadata.labels.{USE_WAYPOINT}");
        match ix.gateway(ns, name) {
            None => out.add("WEFT0109", l, &path,
                format!("waypoint {ns}/{name} does not exist"),
                format!("define a Gateway {name:?} with gatewayClassName: {WAYPOINT_CLASS} in namespace {ns}, or set the label to `none`")),
            Some((_, gw)) if !gw.is_waypoint() => out.add("WEFT0109", l, &path,
                format!("Gateway {ns}/{name} is not a waypoint (gatewayClassName {:?})", gw.spec.gateway_class_name),
                format!("set its gatewayClassName to {WAYPOINT_CLASS}, or name a waypoint Gateway")),
            Some(_) => {}
        }
    }
}
