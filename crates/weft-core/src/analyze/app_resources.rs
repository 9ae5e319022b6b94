//! WEFT0610: a Workload's `spec.resources` that no cgroup (and no kubelet) can honour.

use super::{Index, Report, Rule, Severity};
use crate::load::Loaded;
use crate::resources::workload::AppResources;

pub const RULES: &[Rule] = &[Rule {
    code: "WEFT0610",
    severity: Severity::Error,
    title: "Workload resources: a limit below its request",
    explain: "A program's `spec.resources` request is what it is guaranteed and its limit the \
most it may use; Kubernetes refuses a container whose limit is below its request, and `weft up` \
would run it in a cgroup it cannot fit. (A limit without a request is its request too.)",
    bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec:
  command: [./api]
  resources: {requests: {memory: 256Mi}, limits: {memory: 128Mi}}
"#,
    good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec:
  command: [./api]
  resources: {requests: {memory: 128Mi}, limits: {memory: 256Mi}}
"#,
}];

pub fn check(ix: &Index<'_>, out: &mut Report) {
    for (l, w) in ix.workloads() {
        if let Some(r) = &w.spec.resources {
            limits(l, r, out);
        }
    }
}

/// Each of CPU and memory whose limit is below its request.
fn limits(l: &Loaded, r: &AppResources, out: &mut Report) {
    let cpu = (r.requests.cpu.zip(r.limits.cpu)).filter(|(req, lim)| lim < req);
    if let Some((req, lim)) = cpu {
        out.add(
            "WEFT0610",
            l,
            "spec.resources.limits.cpu",
            format!("CPU limit {lim} is below the request {req}"),
            format!("raise the limit to at least {req}, or lower the request"),
        );
    }
    let memory = (r.requests.memory.zip(r.limits.memory)).filter(|(req, lim)| lim < req);
    if let Some((req, lim)) = memory {
        out.add(
            "WEFT0610",
            l,
            "spec.resources.limits.memory",
            format!("memory limit {lim} is below the request {req}"),
            format!("raise the limit to at least {req}, or lower the request"),
        );
    }
}
