//! 03xx: the source article's common errors — proxy resources, hold-application, metrics,
//! access logs, mTLS and drain switched off or set wrong.

use super::{Index, Report, Rule, Severity};
use crate::annotations::{
    ACCESS_LOG, DRAIN_DURATION, HOLD_APPLICATION, METRICS, MTLS_MODE, PROXY_CPU_LIMIT,
    PROXY_CPU_REQUEST, PROXY_MEMORY_LIMIT, PROXY_MEMORY_REQUEST, parse_bool,
};
use crate::duration::Duration;
use crate::load::Loaded;
use crate::quantity::{Cpu, Memory};
use crate::resources::Resource;
use crate::resources::mesh::MtlsMode;
use crate::sizing::{OVERSIZED_CPU, OVERSIZED_MEMORY, PROXY_CPU_FLOOR, PROXY_MEMORY_FLOOR};

pub const RULES: &[Rule] = &[
    Rule {
        code: "WEFT0301",
        severity: Severity::Error,
        title: "proxy memory limit below what the proxy needs",
        explain: "A proxy memory limit under 32Mi gets the proxy OOM-killed under load, taking the \
workload's traffic with it. weft's proxy idles in a few MiB and grows with the services a \
workload uses; the default limit is 128Mi. Use `weft right-size` to choose from observed use.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/proxy-memory-limit: 16Mi}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/proxy-memory-limit: 64Mi}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0302",
        severity: Severity::Warning,
        title: "proxy CPU limit below what the proxy needs",
        explain: "A proxy CPU limit under 100m throttles the proxy in bursts and adds milliseconds \
to every request it carries. The default is 1 CPU with a 20m request: the proxy uses what it \
needs and is billed for little.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/proxy-cpu-limit: 50m}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/proxy-cpu-limit: 500m}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0303",
        severity: Severity::Error,
        title: "proxy limit below its request",
        explain: "Kubernetes refuses a container whose limit is below its request, and the local \
runtime cannot honour it either. Raise the limit or lower the request.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/proxy-memory-request: 256Mi, weft.dev/proxy-memory-limit: 128Mi}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/proxy-memory-request: 64Mi, weft.dev/proxy-memory-limit: 128Mi}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0304",
        severity: Severity::Warning,
        title: "hold-application switched off",
        explain: "With hold-application off the app may start before its proxy is ready; its first \
outbound calls then fail (the classic sidecar start-up race). weft holds the app by default. \
Switch it off only for a workload that makes no calls at start-up.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/hold-application: "false"}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0305",
        severity: Severity::Warning,
        title: "metrics switched off",
        explain: "Without proxy metrics there is no request rate, error rate or latency for the \
workload, and `weft right-size` has nothing to learn from. Metrics cost little; keep them on.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {metrics: {enabled: false}}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {metrics: {enabled: true}}
"#,
    },
    Rule {
        code: "WEFT0306",
        severity: Severity::Warning,
        title: "access logs switched off",
        explain: "Access logs are the first thing to read when a request fails: each line says \
which stage answered (route, policy, upstream) and why. weft writes them as JSON to stdout by \
default. To cut volume, keep them on and filter in your log pipeline.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/access-log: "false"}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0307",
        severity: Severity::Warning,
        title: "mTLS weakened to PERMISSIVE",
        explain: "PERMISSIVE accepts plaintext from anything that can reach the workload, so \
identity-based policy can be bypassed. Use it only while migrating workloads into the mesh, \
then return to STRICT (the default).",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {mtls: {mode: PERMISSIVE}}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {mtls: {mode: STRICT}}
"#,
    },
    Rule {
        code: "WEFT0308",
        severity: Severity::Warning,
        title: "mTLS switched off",
        explain: "DISABLE sends traffic between proxies in the clear and gives up workload identity: \
AuthorizationPolicies that name principals can no longer match. Keep STRICT (the default).",
        bad: r#"apiVersion: v1
kind: Namespace
metadata:
  name: default
  annotations: {weft.dev/mtls-mode: DISABLE}
"#,
        good: r#"apiVersion: v1
kind: Namespace
metadata: {name: default}
"#,
    },
    Rule {
        code: "WEFT0309",
        severity: Severity::Warning,
        title: "drain on shutdown switched off",
        explain: "A drain duration of 0 closes the proxy together with the app, cutting in-flight \
requests and refusing new ones while callers still route to the pod. The default 5s lets the \
proxy finish what it carries.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/drain-duration: 0s}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/drain-duration: 10s}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0310",
        severity: Severity::Info,
        title: "proxy requests far above what the proxy uses",
        explain: "Requests of 100m CPU and 128Mi per proxy are another mesh's defaults, sized for \
a heavier proxy: across 1000 pods that reserves 100 cores and 128 GiB that sit idle. weft's \
defaults are 20m and 24Mi; `weft right-size` recommends values from observed use.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec:
  proxy:
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: "2", memory: 256Mi}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec:
  proxy:
    resources:
      requests: {cpu: 20m, memory: 24Mi}
      limits: {cpu: "2", memory: 256Mi}
"#,
    },
];

/// Where a proxy setting can be written: a Mesh field, or an annotation.
struct Site<'a> {
    loaded: &'a Loaded,
}

impl Site<'_> {
    fn annotation(&self, key: &str) -> Option<(&str, String)> {
        let v = self.loaded.resource.metadata().annotation(key)?;
        Some((v, format!("metadata.annotations.{key}")))
    }
}

pub fn check(ix: &Index<'_>, out: &mut Report) {
    if let Some(l) = ix.mesh_resource {
        mesh(ix, l, out);
    }
    let sites = ix
        .config
        .resources
        .iter()
        .filter(|l| matches!(l.resource, Resource::Namespace(_) | Resource::Workload(_)));
    for loaded in sites {
        annotated(&Site { loaded }, out);
    }
    for (l, w) in ix.workloads() {
        let s = ix.settings(w);
        let own = |k: &str| w.metadata.annotation(k).is_some();
        if s.cpu_limit < s.cpu_request && (own(PROXY_CPU_LIMIT) || own(PROXY_CPU_REQUEST)) {
            out.add(
                "WEFT0303",
                l,
                &format!("metadata.annotations.{PROXY_CPU_LIMIT}"),
                format!(
                    "proxy CPU limit {} is below its request {}",
                    s.cpu_limit, s.cpu_request
                ),
                "raise the limit to at least the request, or lower the request",
            );
        }
        if s.memory_limit < s.memory_request
            && (own(PROXY_MEMORY_LIMIT) || own(PROXY_MEMORY_REQUEST))
        {
            out.add(
                "WEFT0303",
                l,
                &format!("metadata.annotations.{PROXY_MEMORY_LIMIT}"),
                format!(
                    "proxy memory limit {} is below its request {}",
                    s.memory_limit, s.memory_request
                ),
                "raise the limit to at least the request, or lower the request",
            );
        }
    }
}

fn mesh(ix: &Index<'_>, l: &Loaded, out: &mut Report) {
    let m = &ix.mesh;
    let r = &m.proxy.resources;
    let base = "spec.proxy.resources";
    memory_limit(l, r.limits.memory, &format!("{base}.limits.memory"), out);
    cpu_limit(l, r.limits.cpu, &format!("{base}.limits.cpu"), out);
    if r.limits.cpu < r.requests.cpu {
        out.add(
            "WEFT0303",
            l,
            &format!("{base}.limits.cpu"),
            format!(
                "proxy CPU limit {} is below its request {}",
                r.limits.cpu, r.requests.cpu
            ),
            "raise the limit to at least the request, or lower the request",
        );
    }
    if r.limits.memory < r.requests.memory {
        out.add(
            "WEFT0303",
            l,
            &format!("{base}.limits.memory"),
            format!(
                "proxy memory limit {} is below its request {}",
                r.limits.memory, r.requests.memory
            ),
            "raise the limit to at least the request, or lower the request",
        );
    }
    oversized(
        l,
        Some(r.requests.cpu),
        Some(r.requests.memory),
        &format!("{base}.requests"),
        out,
    );
    if !m.proxy.hold_application {
        hold_off(l, "spec.proxy.holdApplication", out);
    }
    if !m.metrics.enabled {
        metrics_off(l, "spec.metrics.enabled", out);
    }
    if !m.access_log.enabled {
        access_log_off(l, "spec.accessLog.enabled", out);
    }
    mtls(l, m.mtls.mode, "spec.mtls.mode", out);
    if m.proxy.drain_duration.is_zero() {
        drain_off(l, "spec.proxy.drainDuration", out);
    }
}

fn annotated(site: &Site<'_>, out: &mut Report) {
    let l = site.loaded;
    if let Some((v, path)) = site.annotation(PROXY_MEMORY_LIMIT)
        && let Ok(m) = v.parse::<Memory>()
    {
        memory_limit(l, m, &path, out);
    }
    if let Some((v, path)) = site.annotation(PROXY_CPU_LIMIT)
        && let Ok(c) = v.parse::<Cpu>()
    {
        cpu_limit(l, c, &path, out);
    }
    let cpu = site
        .annotation(PROXY_CPU_REQUEST)
        .and_then(|(v, _)| v.parse().ok());
    let mem = site
        .annotation(PROXY_MEMORY_REQUEST)
        .and_then(|(v, _)| v.parse().ok());
    let req_path = match site.annotation(PROXY_CPU_REQUEST) {
        Some((_, p)) => p,
        None => format!("metadata.annotations.{PROXY_MEMORY_REQUEST}"),
    };
    oversized(l, cpu, mem, &req_path, out);
    let off = |key: &str| {
        site.annotation(key)
            .filter(|(v, _)| parse_bool(v) == Some(false))
            .map(|(_, p)| p)
    };
    if let Some(p) = off(HOLD_APPLICATION) {
        hold_off(l, &p, out);
    }
    if let Some(p) = off(METRICS) {
        metrics_off(l, &p, out);
    }
    if let Some(p) = off(ACCESS_LOG) {
        access_log_off(l, &p, out);
    }
    if let Some((v, p)) = site.annotation(MTLS_MODE)
        && let Ok(mode) = v.parse::<MtlsMode>()
    {
        mtls(l, mode, &p, out);
    }
    if let Some((v, p)) = site.annotation(DRAIN_DURATION)
        && v.parse::<Duration>().is_ok_and(Duration::is_zero)
    {
        drain_off(l, &p, out);
    }
}

fn memory_limit(l: &Loaded, m: Memory, path: &str, out: &mut Report) {
    if m < PROXY_MEMORY_FLOOR {
        out.add("WEFT0301", l, path,
            format!("proxy memory limit {m} is below the {PROXY_MEMORY_FLOOR} the proxy needs under load"),
            format!("set it to at least {PROXY_MEMORY_FLOOR} (default 128Mi), or run `weft right-size`"));
    }
}

fn cpu_limit(l: &Loaded, c: Cpu, path: &str, out: &mut Report) {
    if c < PROXY_CPU_FLOOR {
        out.add(
            "WEFT0302",
            l,
            path,
            format!("proxy CPU limit {c} is below {PROXY_CPU_FLOOR}; the proxy will be throttled"),
            format!("set it to at least {PROXY_CPU_FLOOR} (default 1), or remove it"),
        );
    }
}

fn oversized(l: &Loaded, cpu: Option<Cpu>, mem: Option<Memory>, path: &str, out: &mut Report) {
    let big_cpu = cpu.filter(|c| *c >= OVERSIZED_CPU);
    let big_mem = mem.filter(|m| *m >= OVERSIZED_MEMORY);
    if big_cpu.is_some() || big_mem.is_some() {
        let what: Vec<String> = big_cpu
            .map(|c| format!("CPU {c}"))
            .into_iter()
            .chain(big_mem.map(|m| format!("memory {m}")))
            .collect();
        out.add(
            "WEFT0310",
            l,
            path,
            format!(
                "proxy requests {} are far above what a weft proxy uses",
                what.join(" and ")
            ),
            "use the defaults (20m, 24Mi) or `weft right-size` recommendations",
        );
    }
}

fn hold_off(l: &Loaded, path: &str, out: &mut Report) {
    out.add(
        "WEFT0304",
        l,
        path,
        "hold-application is off: the app may start before its proxy and lose its first requests",
        "remove the setting (on by default)",
    );
}

fn metrics_off(l: &Loaded, path: &str, out: &mut Report) {
    out.add(
        "WEFT0305",
        l,
        path,
        "proxy metrics are off: no request rate, errors or latency for these workloads",
        "remove the setting (on by default)",
    );
}

fn access_log_off(l: &Loaded, path: &str, out: &mut Report) {
    out.add(
        "WEFT0306",
        l,
        path,
        "access logs are off: failed requests leave no trace of which stage failed",
        "remove the setting (JSON to stdout by default)",
    );
}

fn mtls(l: &Loaded, mode: MtlsMode, path: &str, out: &mut Report) {
    match mode {
        MtlsMode::Permissive => out.add("WEFT0307", l, path,
            "mTLS is PERMISSIVE: plaintext from outside the mesh is accepted",
            "return to STRICT once every client is in the mesh"),
        MtlsMode::Disable => out.add("WEFT0308", l, path,
            "mTLS is disabled: traffic between proxies is plaintext and identities cannot be checked",
            "remove the setting (STRICT by default)"),
        MtlsMode::Strict => {}
    }
}

fn drain_off(l: &Loaded, path: &str, out: &mut Report) {
    out.add(
        "WEFT0309",
        l,
        path,
        "drain duration is 0: in-flight requests are cut when the pod stops",
        "remove the setting (5s by default) or set the time your slowest request needs",
    );
}
