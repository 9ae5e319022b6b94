//! 06xx, continued: protection that a workload without a proxy silently does without. Policy
//! and mTLS are enforced by the workload's own sidecar; with `weft.dev/dataplane-mode: none`
//! there is none, so what the config promises for it does not happen.

use super::{Index, Report, Rule, Severity};
use crate::annotations::{DATAPLANE_MODE, DataplaneMode, MTLS_MODE};
use crate::resources::Workload;
use crate::resources::mesh::MtlsMode;

pub const RULES: &[Rule] = &[Rule {
    code: "WEFT0605",
    severity: Severity::Warning,
    title: "policy or STRICT mTLS on a workload without a proxy",
    explain: "AuthorizationPolicies and mTLS STRICT are enforced by the workload's own proxy. A \
workload with `weft.dev/dataplane-mode: none` (on itself or its Namespace) has none: a policy \
that selects it is not enforced, and STRICT (the Mesh default, a Namespace or the Workload's \
`weft.dev/mtls-mode`) does not stop it from accepting plaintext from anyone who can reach it. \
The configuration is still served; it just does not do what it says for this workload. Run the \
workload with a sidecar (remove the label, or set it to `sidecar`). If it must stay outside the \
mesh, say so: set `weft.dev/mtls-mode: PERMISSIVE` on it and take it out of the policies' \
selectors, or list this code in its `weft.dev/analyze-ignore`.",
    bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web, weft.dev/dataplane-mode: none}
spec: {command: [api]}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {namespaces: [default]}}]}]
"#,
    good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
spec: {command: [api]}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {namespaces: [default]}}]}]
"#,
}];

pub fn check(ix: &Index<'_>, out: &mut Report) {
    for (l, w) in ix.workloads() {
        let settings = ix.settings(w);
        if settings.dataplane_mode != DataplaneMode::None {
            continue;
        }
        let ns = w.metadata.namespace();
        let policies: Vec<String> = ix
            .policies_for(w)
            .map(|(_, p)| format!("{ns}/{}", p.metadata.name))
            .collect();
        let strict = settings.mtls_mode == MtlsMode::Strict;
        if policies.is_empty() && !strict {
            continue;
        }
        let mut unenforced = Vec::new();
        if !policies.is_empty() {
            let s = if policies.len() == 1 { "y" } else { "ies" };
            unenforced.push(format!(
                "AuthorizationPolic{s} {} selects it but is not enforced",
                policies.join(", ")
            ));
        }
        if strict {
            unenforced.push(format!(
                "mTLS STRICT ({}) covers it but plaintext is accepted",
                mtls_source(ix, w)
            ));
        }
        let (path, whose) = match w.metadata.labels.get(DATAPLANE_MODE) {
            Some(_) => (
                format!("metadata.labels.{DATAPLANE_MODE}"),
                "its".to_string(),
            ),
            None => ("metadata".to_string(), format!("its Namespace {ns}'s")),
        };
        out.add(
            "WEFT0605",
            l,
            &path,
            format!(
                "no proxy ({whose} {DATAPLANE_MODE}: none): {}; anyone who can reach the pod gets in",
                unenforced.join("; ")
            ),
            "run it with a sidecar (remove the label or set it to sidecar); to keep it outside the \
mesh on purpose, set weft.dev/mtls-mode: PERMISSIVE on it and drop it from the policies' selectors",
        );
    }
}

/// Where the workload's STRICT mode comes from, most specific first.
fn mtls_source(ix: &Index<'_>, w: &Workload) -> String {
    let ns = w.metadata.namespace();
    if w.metadata.annotation(MTLS_MODE).is_some() {
        format!("its {MTLS_MODE}")
    } else if ix.namespace_annotations(ns).contains_key(MTLS_MODE) {
        format!("Namespace {ns}'s {MTLS_MODE}")
    } else {
        "the Mesh default".to_string()
    }
}

#[cfg(test)]
mod tests {
    use crate::analyze::{Analysis, EXAMPLE_BASE, analyze};
    use crate::load::parse_str;

    fn run(extra: &str) -> Analysis {
        let text = format!("{EXAMPLE_BASE}---\n{extra}");
        let out = parse_str("example.yaml", &text);
        assert!(out.is_ok(), "{:#?}", out.errors);
        analyze(&out.config)
    }

    fn messages(a: &Analysis) -> Vec<String> {
        a.findings
            .iter()
            .filter(|f| f.code == "WEFT0605")
            .map(|f| format!("{} {}", f.resource, f.message))
            .collect()
    }

    const PROXYLESS: &str = "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: api\n  labels: {app: api, weft.dev/dataplane-mode: none}\nANNOTATIONS\nspec: {command: [api]}\n";

    fn proxyless(annotations: &str) -> String {
        PROXYLESS.replace("ANNOTATIONS\n", annotations)
    }

    const POLICY: &str = "---\napiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: api-callers}\nspec:\n  selector: {matchLabels: {app: api}}\n  rules: [{from: [{source: {namespaces: [default]}}]}]\n";

    #[test]
    fn a_policy_on_a_proxyless_workload_is_named_as_unenforced() {
        let a = run(&format!(
            "{}{POLICY}",
            proxyless("  annotations: {weft.dev/mtls-mode: PERMISSIVE}\n")
        ));
        let m = messages(&a);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].starts_with("Workload/default/api no proxy (its weft.dev/dataplane-mode: none)"),
            "{m:?}"
        );
        assert!(
            m[0].contains("AuthorizationPolicy default/api-callers selects it but is not enforced"),
            "{m:?}"
        );
        assert!(!m[0].contains("STRICT"), "{m:?}");
        let f = a.findings.iter().find(|f| f.code == "WEFT0605").unwrap();
        assert_eq!(f.severity, crate::analyze::Severity::Warning);
        assert_eq!(
            f.location.line,
            14 + 5,
            "points at the dataplane-mode label"
        );
    }

    #[test]
    fn strict_by_mesh_default_namespace_or_workload_says_plaintext_is_accepted() {
        let m = messages(&run(&proxyless("")));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains("mTLS STRICT (the Mesh default) covers it but plaintext is accepted"),
            "{m:?}"
        );
        let ns = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  annotations: {weft.dev/mtls-mode: STRICT}\n";
        let m = messages(&run(&format!("{}{ns}", proxyless(""))));
        assert!(m[0].contains("STRICT (Namespace default's"), "{m:?}");
        let m = messages(&run(&proxyless(
            "  annotations: {weft.dev/mtls-mode: STRICT}\n",
        )));
        assert!(m[0].contains("STRICT (its weft.dev/mtls-mode)"), "{m:?}");
    }

    #[test]
    fn the_namespace_label_makes_a_workload_proxyless() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: legacy\n  labels: {weft.dev/dataplane-mode: none}\n---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: old, namespace: legacy, labels: {app: old}}\nspec: {command: [old]}\n---\napiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: all, namespace: legacy}\nspec: {rules: [{}]}\n";
        let m = messages(&run(text));
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains("its Namespace legacy's weft.dev/dataplane-mode: none"),
            "{m:?}"
        );
        assert!(
            m[0].contains("AuthorizationPolicy legacy/all selects it"),
            "{m:?}"
        );
    }

    #[test]
    fn silent_for_sidecars_and_for_permissive_or_disabled_without_policy() {
        // A sidecar workload under STRICT with a policy: its proxy enforces both.
        let sidecar = PROXYLESS
            .replace(", weft.dev/dataplane-mode: none", "")
            .replace("ANNOTATIONS\n", "");
        assert_eq!(
            messages(&run(&format!("{sidecar}{POLICY}"))),
            [] as [String; 0]
        );
        for mode in ["PERMISSIVE", "DISABLE"] {
            let a = run(&proxyless(&format!(
                "  annotations: {{weft.dev/mtls-mode: {mode}}}\n"
            )));
            assert_eq!(messages(&a), [] as [String; 0], "{mode}");
        }
        // A policy in another namespace, or selecting other workloads, does not count.
        let other = POLICY.replace("{app: api}", "{app: web}");
        let a = run(&format!(
            "{}{other}",
            proxyless("  annotations: {weft.dev/mtls-mode: PERMISSIVE}\n")
        ));
        assert_eq!(messages(&a), [] as [String; 0]);
    }
}
