//! 05xx, continued: `extensionRef` filters. A `Fault` a rule names must exist and be whole (a
//! rule whose Fault cannot be resolved answers 500); other kinds are not run by weft's proxies,
//! which refuse the Service's routes that carry them.

use super::{Index, Report, Rule, Severity};
use crate::resources::Resource;
use crate::resources::fault::{self, Fault};
use crate::resources::route_common::LocalObjectReference;

pub const RULES: &[Rule] = &[WEFT0512, WEFT0513];

const WEFT0512: Rule = Rule {
    code: "WEFT0512",
    severity: Severity::Error,
    title: "Fault filter that does not resolve",
    explain: "A route rule's `ExtensionRef` filter to `weft.dev/Fault` injects that Fault's delay \
and abort. A name that matches no Fault in the route's namespace, or a Fault whose abort has \
neither or both of `httpStatus` and `grpcStatus`, cannot be run: as Gateway API requires, the \
filter is not skipped and every request of the rule is answered 500.",
    bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs: [{name: web, port: 80}]
    filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: Fault, name: slow}}]
"#,
    good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs: [{name: web, port: 80}]
    filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: Fault, name: slow}}]
---
apiVersion: weft.dev/v1alpha1
kind: Fault
metadata: {name: slow}
spec: {delay: {fixedDelay: 1s, percentage: 10}}
"#,
};

const WEFT0513: Rule = Rule {
    code: "WEFT0513",
    severity: Severity::Warning,
    title: "ExtensionRef filter weft's proxies do not run",
    explain: "weft's proxies run one kind of `ExtensionRef` filter, `weft.dev/Fault`. A proxy \
given a route with any other refuses that Service's configuration (NACK) and keeps the last it \
had, so the Service's routes do not change on that proxy. Remove the filter, or use a Fault.",
    bad: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs: [{name: web, port: 80}]
    filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: Lua, name: script}}]
"#,
    good: r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#,
};

pub fn check(ix: &Index<'_>, out: &mut Report) {
    let faults: Vec<&Fault> = ix
        .each(|r| match r {
            Resource::Fault(f) => Some(f),
            _ => None,
        })
        .map(|(_, f)| f)
        .collect();
    for l in &ix.config.resources {
        let ns = l.resource.metadata().namespace();
        let refs: Vec<(String, &LocalObjectReference)> = match &l.resource {
            Resource::HttpRoute(r) => (r.spec.rules.iter().enumerate())
                .flat_map(|(i, rule)| rule.filters.iter().enumerate().map(move |(j, f)| (i, j, f)))
                .filter_map(|(i, j, f)| {
                    Some((
                        format!("spec.rules[{i}].filters[{j}].extensionRef"),
                        f.extension_ref.as_ref()?,
                    ))
                })
                .collect(),
            Resource::GrpcRoute(r) => (r.spec.rules.iter().enumerate())
                .flat_map(|(i, rule)| rule.filters.iter().enumerate().map(move |(j, f)| (i, j, f)))
                .filter_map(|(i, j, f)| {
                    Some((
                        format!("spec.rules[{i}].filters[{j}].extensionRef"),
                        f.extension_ref.as_ref()?,
                    ))
                })
                .collect(),
            _ => continue,
        };
        for (path, r) in refs {
            if r.group != fault::GROUP || r.kind != fault::KIND {
                out.add(
                    "WEFT0513",
                    l,
                    &path,
                    format!("filter {}/{} {:?} is not run by weft's proxies: they refuse this Service's routes", r.group, r.kind, r.name),
                    "remove the filter, or inject faults with a weft.dev Fault",
                );
                continue;
            }
            let found = faults
                .iter()
                .find(|f| f.metadata.namespace() == ns && f.metadata.name == r.name);
            let problem = match found {
                None => Some(format!("no Fault {:?} in namespace {ns}", r.name)),
                Some(f) => f.spec.abort.as_ref().and_then(|a| a.problem()),
            };
            if let Some(p) = problem {
                out.add(
                    "WEFT0512",
                    l,
                    &path,
                    format!("{p}: every request of this rule is answered 500"),
                    "create the Fault (kind: Fault, apiVersion: weft.dev/v1alpha1) or fix the name",
                );
            }
        }
    }
}
