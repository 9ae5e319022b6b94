//! 04xx: `weft.dev/` annotations and labels — typos, bad values, wrong place — and other
//! meshes' settings that have a weft equivalent.

use super::{Index, Report, Rule, Severity};
use crate::annotations::{self, PREFIX, ValueKind, check_value, closest};
use crate::load::Loaded;

pub const RULES: &[Rule] = &[
    Rule {
        code: "WEFT0401",
        severity: Severity::Warning,
        title: "unknown `weft.dev/` annotation or label",
        explain: "weft ignores `weft.dev/` keys it does not know, so a misspelt setting silently \
does nothing. The finding names the closest known key; docs/config.md lists them all.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/hold-aplication: "true"}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/hold-application: "true"}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0402",
        severity: Severity::Error,
        title: "invalid value for a `weft.dev/` key",
        explain: "The value cannot be read as the setting needs (a boolean, a duration like `5s`, a \
quantity like `100m` or `64Mi`, a mode), so the default is used instead of what you meant.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/proxy-memory-limit: 64MB}
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
        code: "WEFT0403",
        severity: Severity::Warning,
        title: "`weft.dev/` key in the wrong place",
        explain: "Revision, dataplane mode and waypoint are labels (they select); proxy settings \
are annotations. A key in the other map is ignored.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/dataplane-mode: ambient}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/dataplane-mode: ambient}
spec: {command: [api]}
"#,
    },
    Rule {
        code: "WEFT0404",
        severity: Severity::Info,
        title: "another mesh's setting that weft reads differently",
        explain: "Manifests moved from Istio often carry `sidecar.istio.io/` and `proxy.istio.io/` \
annotations. weft does not read them; most are weft defaults already (hold-application, drain), \
the rest have a `weft.dev/` annotation. The finding names it.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {sidecar.istio.io/proxyMemoryLimit: 256Mi}
spec: {command: [api]}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/proxy-memory-limit: 256Mi}
spec: {command: [api]}
"#,
    },
];

/// Istio keys and what to write in weft instead.
const FOREIGN: &[(&str, &str)] = &[
    ("sidecar.istio.io/proxyCPU", "weft.dev/proxy-cpu-request"),
    ("sidecar.istio.io/proxyCPULimit", "weft.dev/proxy-cpu-limit"),
    (
        "sidecar.istio.io/proxyMemory",
        "weft.dev/proxy-memory-request",
    ),
    (
        "sidecar.istio.io/proxyMemoryLimit",
        "weft.dev/proxy-memory-limit",
    ),
    ("sidecar.istio.io/logLevel", "weft.dev/log-level"),
    (
        "sidecar.istio.io/inject",
        "the label weft.dev/dataplane-mode (sidecar or none)",
    ),
    (
        "proxy.istio.io/config",
        "weft.dev/ annotations (hold-application and drain are on by default)",
    ),
    (
        "istio.io/dataplane-mode",
        "the label weft.dev/dataplane-mode",
    ),
    ("istio.io/use-waypoint", "the label weft.dev/use-waypoint"),
];

pub fn check(ix: &Index<'_>, out: &mut Report) {
    for l in &ix.config.resources {
        let meta = l.resource.metadata();
        for (key, value) in &meta.annotations {
            one(l, key, value, false, out);
        }
        for (key, value) in &meta.labels {
            one(l, key, value, true, out);
        }
    }
}

fn one(l: &Loaded, key: &str, value: &str, in_labels: bool, out: &mut Report) {
    let map = if in_labels { "labels" } else { "annotations" };
    let path = format!("metadata.{map}.{key}");
    if let Some((_, instead)) = FOREIGN.iter().find(|(k, _)| *k == key) {
        out.add(
            "WEFT0404",
            l,
            &path,
            format!("{key} is not read by weft"),
            format!("use {instead}"),
        );
        return;
    }
    if !key.starts_with(PREFIX) {
        return;
    }
    let Some(known) = annotations::key(key) else {
        let fix = match closest(key) {
            Some(best) => format!("did you mean {best}?"),
            None => "see docs/config.md for the weft.dev/ keys".into(),
        };
        out.add(
            "WEFT0401",
            l,
            &path,
            format!("unknown key {key}; weft ignores it"),
            fix,
        );
        return;
    };
    if known.is_label != in_labels {
        let (is, should) = if known.is_label {
            ("an annotation", "labels")
        } else {
            ("a label", "annotations")
        };
        out.add(
            "WEFT0403",
            l,
            &path,
            format!("{key} is set as {is} and is ignored there"),
            format!("move it to metadata.{should}"),
        );
    }
    // Revision labels (either key) are checked with the other revision rules, 07xx.
    if known.kind == ValueKind::Revision {
        return;
    }
    if let Err(why) = check_value(known.kind, value) {
        out.add(
            "WEFT0402",
            l,
            &path,
            format!("{key}: {why}"),
            format!("write a valid value; the default is {:?}", known.default),
        );
    }
}
