//! 06xx: workloads that cannot run as written, and authorization policies that do something
//! other than what they appear to.

use super::{Index, Report, Rule, Severity};
use crate::resources::Resource;
use crate::resources::policy::AuthorizationAction;

pub const RULES: &[Rule] = &[
    Rule {
        code: "WEFT0601",
        severity: Severity::Error,
        title: "Workload has no command",
        explain: "The local runtime starts each pod by running `command` (then `args`). A Workload \
without one (and without an `image`, as read from Kubernetes manifests) cannot start.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec:
  args: [--port, "8080"]
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec:
  command: [./api]
  args: [--port, "8080"]
"#,
    },
    Rule {
        code: "WEFT0602",
        severity: Severity::Warning,
        title: "ALLOW policy with no rules denies everything",
        explain: "An ALLOW AuthorizationPolicy allows what its rules match. With no rules it \
matches nothing, and since the workload is now selected by an ALLOW policy, every request to it \
is denied. To allow all, write one empty rule (`rules: [{}]`); to deny all on purpose, say so \
with this code in `weft.dev/analyze-ignore`.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules: [{from: [{source: {namespaces: [default]}}]}]
"#,
    },
    Rule {
        code: "WEFT0603",
        severity: Severity::Warning,
        title: "principal outside the mesh's trust domain",
        explain: "Principals are SPIFFE IDs `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`. One that is \
malformed or names another trust domain never matches a workload of this mesh, so an ALLOW rule \
admits no one and a DENY rule blocks no one.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {principals: ["spiffe://cluster.locl/ns/default/sa/frontend"]}}]}]
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {principals: ["spiffe://cluster.local/ns/default/sa/frontend"]}}]}]
"#,
    },
    Rule {
        code: "WEFT0604",
        severity: Severity::Info,
        title: "Workload scaled to zero",
        explain: "`replicas: 0` runs no pod; Services selecting only this workload have no \
endpoints. Fine while parked on purpose.",
        bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec: {command: [api], replicas: 0}
"#,
        good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, labels: {app: web}}
spec: {command: [api], replicas: 1}
"#,
    },
];

pub fn check(ix: &Index<'_>, out: &mut Report) {
    for (l, w) in ix.workloads() {
        if w.spec.command.is_empty() && w.spec.image.is_none() {
            out.add(
                "WEFT0601",
                l,
                "spec",
                "no `command`: the local runtime has nothing to run",
                "add `command:` (a string or a list, e.g. [python3, -m, http.server])",
            );
        }
        if w.spec.replicas == 0 {
            out.add(
                "WEFT0604",
                l,
                "spec.replicas",
                "replicas is 0: no pod runs",
                "set replicas to 1 or more when the workload should serve",
            );
        }
    }
    let domain = ix.mesh.trust_domain.as_str();
    for (l, p) in ix.each(|r| match r {
        Resource::AuthorizationPolicy(p) => Some(p),
        _ => None,
    }) {
        if p.spec.action == AuthorizationAction::Allow && p.spec.rules.is_empty() {
            out.add(
                "WEFT0602",
                l,
                "spec",
                "ALLOW policy without rules: every request to the selected workloads is denied",
                "add the rules that should be allowed (`rules: [{}]` allows everything)",
            );
        }
        for (i, rule) in p.spec.rules.iter().enumerate() {
            for (j, from) in rule.from.iter().enumerate() {
                let s = &from.source;
                for (field, list) in [
                    ("principals", &s.principals),
                    ("notPrincipals", &s.not_principals),
                ] {
                    for (k, principal) in list.iter().enumerate() {
                        if let Err(why) = check_principal(principal, domain) {
                            out.add(
                                "WEFT0603",
                                l,
                                &format!("spec.rules[{i}].from[{j}].source.{field}[{k}]"),
                                format!("principal {principal:?} {why}"),
                                format!(
                                    "write spiffe://{domain}/ns/<namespace>/sa/<service-account>"
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Why an AuthorizationPolicy principal matches no workload identity of this mesh. The text
/// completes a sentence that starts with the principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PrincipalError {
    #[error("is not a SPIFFE ID")]
    NotSpiffeId,
    #[error("is in trust domain {found:?}, not the mesh's {mesh:?}")]
    OtherTrustDomain { found: String, mesh: String },
    #[error("is not of the form <trust-domain>/ns/<ns>/sa/<sa>")]
    Shape,
}

fn check_principal(p: &str, domain: &str) -> Result<(), PrincipalError> {
    if p == "*" {
        return Ok(());
    }
    let id = p.strip_prefix("spiffe://").unwrap_or(p);
    let (td, rest) = id.split_once('/').ok_or(PrincipalError::NotSpiffeId)?;
    if td != domain && td != "*" {
        return Err(PrincipalError::OtherTrustDomain {
            found: td.to_string(),
            mesh: domain.to_string(),
        });
    }
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["ns", ns, "sa", sa] if !ns.is_empty() && !sa.is_empty() => Ok(()),
        ["ns", "*"] | ["*"] => Ok(()),
        _ if rest.ends_with('*') => Ok(()),
        _ => Err(PrincipalError::Shape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_errors_read_after_the_principal() {
        let why = |p: &str| check_principal(p, "shop.local").unwrap_err().to_string();
        assert_eq!(
            check_principal("spiffe://shop.local/ns/a/sa/b", "shop.local"),
            Ok(())
        );
        assert_eq!(check_principal("*/ns/a/*", "shop.local"), Ok(()));
        assert_eq!(why("cart"), "is not a SPIFFE ID");
        assert_eq!(
            why("spiffe://other/ns/a/sa/b"),
            "is in trust domain \"other\", not the mesh's \"shop.local\""
        );
        assert_eq!(
            why("shop.local/ns/a/sa"),
            "is not of the form <trust-domain>/ns/<ns>/sa/<sa>"
        );
    }
}
