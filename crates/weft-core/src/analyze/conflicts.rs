//! 02xx: resources that contradict each other.

use std::collections::HashMap;

use super::{Index, Report, Rule, Severity};
use crate::annotations::REV_KEYS;
use crate::load::Loaded;
use crate::resources::Resource;
use crate::resources::http_route::{HttpPathMatch, HttpRouteMatch, PathMatchType};

pub const RULES: &[Rule] = &[
    Rule {
        code: "WEFT0201",
        severity: Severity::Warning,
        title: "two routes have the same match on the same parent",
        explain: "When two HTTPRoute rules attached to the same Service or Gateway have identical \
matches, only one can win (Gateway API picks the oldest route, then by name), so the other never \
sees traffic. Merge them into one route with weighted backends, or make the matches differ.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-a}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{matches: [{path: {value: /api}}], backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-b}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{matches: [{path: {value: /api}}], backendRefs: [{name: web, port: 80}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-a}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{matches: [{path: {value: /api}}], backendRefs: [{name: web, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-b}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{matches: [{path: {value: /admin}}], backendRefs: [{name: web, port: 80}]}]
"#,
    },
    Rule {
        code: "WEFT0202",
        severity: Severity::Warning,
        title: "backend weights sum to zero",
        explain: "A rule whose backends all have `weight: 0` sends nothing anywhere: Gateway API \
gives a backend of weight 0 no requests, so every request matching the rule is answered with 500 \
(`weft-error: no-backend`). That is valid (a rule drained on purpose) and is served; give at \
least one backend a positive weight if it was not meant.",
        bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80, weight: 0}]}]
"#,
        good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80, weight: 1}]}]
"#,
    },
    Rule {
        code: "WEFT0203",
        severity: Severity::Error,
        title: "namespace labelled for two revisions",
        explain: "A namespace must be served by exactly one control plane. A weft revision label \
(`weft.dev/rev`, or `istio.io/rev`, which weft reads as its alias) next to Istio's injection \
label `istio-injection=enabled` makes two control planes claim the same workloads. Keep the \
revision label; move namespaces between revisions by changing it. (A label listing several \
revisions is WEFT0702, two revision labels that disagree WEFT0701.)",
        bad: r#"apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels: {weft.dev/rev: stable, istio-injection: enabled}
"#,
        good: r#"apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels: {weft.dev/rev: stable}
"#,
    },
    Rule {
        code: "WEFT0204",
        severity: Severity::Error,
        title: "duplicate Service port",
        explain: "Two entries of a Service's `ports` with the same port number or the same name \
make routing to that port ambiguous. Kubernetes rejects such a Service too.",
        bad: r#"apiVersion: v1
kind: Service
metadata: {name: web-admin}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: http-admin, port: 80, targetPort: 8080}
"#,
        good: r#"apiVersion: v1
kind: Service
metadata: {name: web-admin}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: http-admin, port: 81, targetPort: 8080}
"#,
    },
    Rule {
        code: "WEFT0205",
        severity: Severity::Error,
        title: "duplicate workload port",
        explain: "A workload declares the same container port number or port name twice. Services \
that target it by name cannot tell which one is meant.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec:
  command: [api]
  ports: [{name: http, containerPort: 8080}, {name: http, containerPort: 9090}]
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec:
  command: [api]
  ports: [{name: http, containerPort: 8080}, {name: http-admin, containerPort: 9090}]
"#,
    },
    Rule {
        code: "WEFT0206",
        severity: Severity::Warning,
        title: "several TrafficPolicies target one Service",
        explain: "Only one TrafficPolicy per Service takes effect (the oldest, then by name); the \
others are ignored. Merge their settings into one policy.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: web-lb}
spec:
  targetRefs: [{kind: Service, name: web}]
  loadBalancer: {type: ROUND_ROBIN}
---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: web-retries}
spec:
  targetRefs: [{kind: Service, name: web}]
  retries: {attempts: 3}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: web}
spec:
  targetRefs: [{kind: Service, name: web}]
  loadBalancer: {type: ROUND_ROBIN}
  retries: {attempts: 3}
"#,
    },
    Rule {
        code: "WEFT0207",
        severity: Severity::Error,
        title: "more than one Mesh",
        explain: "Mesh holds mesh-wide settings; there can be one. weft uses the first it reads and \
ignores the rest, so settings in the others silently do nothing.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {trustDomain: example.org}
---
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh-tracing}
spec: {tracing: {enabled: true, endpoint: "http://127.0.0.1:4317"}}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec:
  trustDomain: example.org
  tracing: {enabled: true, endpoint: "http://127.0.0.1:4317"}
"#,
    },
];

pub fn check(ix: &Index<'_>, out: &mut Report) {
    same_matches(ix, out);
    zero_weights(ix, out);
    revisions(ix, out);
    duplicate_ports(ix, out);
    traffic_policies(ix, out);
    meshes(ix, out);
}

fn same_matches(ix: &Index<'_>, out: &mut Report) {
    let mut seen: HashMap<String, String> = HashMap::new();
    for (l, r) in ix.each(|r| match r {
        Resource::HttpRoute(h) => Some(h),
        _ => None,
    }) {
        let ns = r.metadata.namespace();
        let mut hosts = r.spec.hostnames.clone();
        hosts.sort();
        for p in &r.spec.parent_refs {
            let parent = format!(
                "{}/{}/{}/{:?}/{:?}",
                p.kind.as_deref().unwrap_or("Gateway"),
                p.namespace.as_deref().unwrap_or(ns),
                p.name,
                p.port,
                p.section_name
            );
            for (i, rule) in r.spec.rules.iter().enumerate() {
                let matches = if rule.matches.is_empty() {
                    vec![HttpRouteMatch::default()]
                } else {
                    rule.matches.clone()
                };
                for (j, m) in matches.into_iter().enumerate() {
                    let key = format!("{parent}|{hosts:?}|{}", normalized(m));
                    let here = format!("{} rule {i}", l.resource.id());
                    match seen.get(&key) {
                        Some(first) if *first != here => {
                            out.add("WEFT0201", l, &format!("spec.rules[{i}].matches[{j}]"),
                                format!("same match and parent as {first}; only one of them receives traffic"),
                                "merge the two into one rule with weighted backends, or make the matches differ");
                        }
                        Some(_) => {}
                        None => {
                            seen.insert(key, here);
                        }
                    }
                }
            }
        }
    }
}

fn normalized(mut m: HttpRouteMatch) -> String {
    if m.path.is_none() {
        m.path = Some(HttpPathMatch {
            match_type: PathMatchType::PathPrefix,
            value: "/".into(),
        });
    }
    m.headers.sort_by_key(|h| h.name.to_ascii_lowercase());
    m.query_params.sort_by(|a, b| a.name.cmp(&b.name));
    serde_json::to_string(&m).unwrap_or_default()
}

fn zero_weights(ix: &Index<'_>, out: &mut Report) {
    for l in &ix.config.resources {
        let rules: Vec<Vec<u32>> = match &l.resource {
            Resource::HttpRoute(r) => r
                .spec
                .rules
                .iter()
                .map(|x| x.backend_refs.iter().map(|b| b.weight).collect())
                .collect(),
            Resource::GrpcRoute(r) => r
                .spec
                .rules
                .iter()
                .map(|x| x.backend_refs.iter().map(|b| b.weight).collect())
                .collect(),
            Resource::TcpRoute(r) => r
                .spec
                .rules
                .iter()
                .map(|x| x.backend_refs.iter().map(|b| b.weight).collect())
                .collect(),
            _ => continue,
        };
        for (i, weights) in rules.iter().enumerate() {
            if !weights.is_empty() && weights.iter().all(|w| *w == 0) {
                out.add(
                    "WEFT0202",
                    l,
                    &format!("spec.rules[{i}].backendRefs"),
                    "every backend of this rule has weight 0, so no request can be sent",
                    "give at least one backend a positive weight (the default is 1)",
                );
            }
        }
    }
}

fn revisions(ix: &Index<'_>, out: &mut Report) {
    for (l, _) in ix.each(|r| match r {
        Resource::Namespace(n) => Some(n),
        _ => None,
    }) {
        let labels = &l.resource.metadata().labels;
        let Some((key, rev)) = REV_KEYS.iter().find_map(|k| labels.get(*k).map(|v| (k, v))) else {
            continue;
        };
        if labels.get(ISTIO_INJECTION).map(String::as_str) == Some("enabled") {
            out.add(
                "WEFT0203",
                l,
                &format!("metadata.labels.{key}"),
                format!(
                    "labelled for weft revision {rev:?} and by {ISTIO_INJECTION}=enabled; two \
control planes would inject into it"
                ),
                "remove the other mesh's label once its workloads have moved to weft",
            );
        }
    }
}

/// Istio's injection label; weft does not read it.
const ISTIO_INJECTION: &str = "istio-injection";

fn duplicate_ports(ix: &Index<'_>, out: &mut Report) {
    for l in &ix.config.resources {
        let (ports, code, field): (Vec<(u16, Option<&str>)>, _, _) = match &l.resource {
            Resource::Service(s) => (
                s.spec
                    .ports
                    .iter()
                    .map(|p| (p.port, p.name.as_deref()))
                    .collect(),
                "WEFT0204",
                "port",
            ),
            Resource::Workload(w) => (
                w.spec
                    .ports
                    .iter()
                    .map(|p| (p.container_port, p.name.as_deref()))
                    .collect(),
                "WEFT0205",
                "containerPort",
            ),
            _ => continue,
        };
        dup_report(l, &ports, code, field, out);
    }
}

fn dup_report(
    l: &Loaded,
    ports: &[(u16, Option<&str>)],
    code: &'static str,
    field: &str,
    out: &mut Report,
) {
    for (i, (port, name)) in ports.iter().enumerate() {
        if let Some(j) = ports[..i].iter().position(|(p, _)| p == port) {
            out.add(
                code,
                l,
                &format!("spec.ports[{i}].{field}"),
                format!("port {port} is declared twice (also spec.ports[{j}])"),
                "give each port its own number, or remove the copy",
            );
        } else if let Some(n) = name
            && let Some(j) = ports[..i].iter().position(|(_, other)| other == &Some(*n))
        {
            out.add(
                code,
                l,
                &format!("spec.ports[{i}].name"),
                format!("port name {n:?} is used twice (also spec.ports[{j}])"),
                "give each port its own name",
            );
        }
    }
}

fn traffic_policies(ix: &Index<'_>, out: &mut Report) {
    let mut seen: HashMap<(String, String), String> = HashMap::new();
    for (l, p) in ix.each(|r| match r {
        Resource::TrafficPolicy(p) => Some(p),
        _ => None,
    }) {
        for (i, t) in p.spec.target_refs.iter().enumerate() {
            let key = (p.metadata.namespace().to_string(), t.name.clone());
            match seen.get(&key) {
                Some(first) if *first != p.metadata.name => out.add("WEFT0206", l, &format!("spec.targetRefs[{i}]"),
                    format!("TrafficPolicy {first:?} already targets Service {}/{}; only one takes effect", key.0, key.1),
                    format!("merge this policy's settings into {first:?}")),
                Some(_) => {}
                None => {
                    seen.insert(key, p.metadata.name.clone());
                }
            }
        }
    }
}

fn meshes(ix: &Index<'_>, out: &mut Report) {
    let Some(first) = ix.mesh_resource else {
        return;
    };
    for (l, _) in ix.each(|r| match r {
        Resource::Mesh(m) => Some(m),
        _ => None,
    }) {
        if !std::ptr::eq(l, first) {
            out.add(
                "WEFT0207",
                l,
                "metadata.name",
                format!(
                    "a second Mesh; {} at {} is the one in force",
                    first.resource.id(),
                    first.origin
                ),
                "merge its settings into the first Mesh and delete this one",
            );
        }
    }
}
