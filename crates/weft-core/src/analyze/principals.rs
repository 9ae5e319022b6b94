//! 06xx, continued: AuthorizationPolicy sources that name an identity or a namespace nothing in
//! the mesh has. A policy for `sa/carts` when the workload runs as `sa/cart` matches no
//! request: an ALLOW then denies the caller it meant to let in, a DENY protects nothing.

use std::collections::BTreeSet;

use super::{Index, Report, Rule, Severity};
use crate::resources::Resource;

pub const RULES: &[Rule] = &[WEFT0608];

const WEFT0608: Rule = Rule {
    code: "WEFT0608",
    severity: Severity::Warning,
    title: "policy source that matches no workload",
    explain: "Each identity in the mesh is `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccountName>` \
of a Workload (a Gateway or waypoint runs as `sa/<its name>`). A principal or namespace in an \
AuthorizationPolicy's `from` that no Workload, Gateway or waypoint has matches no request: an \
ALLOW rule then lets nobody in (the caller meant gets 403), a DENY rule stops nothing. Usually \
a misspelt service account or namespace; the finding names the nearest identity there is.",
    bad: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: cart, labels: {app: cart}}
spec: {command: [cart], serviceAccountName: cart}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: pricing}
spec:
  rules: [{from: [{source: {principals: ["spiffe://cluster.local/ns/default/sa/carts"]}}]}]
"#,
    good: r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: cart, labels: {app: cart}}
spec: {command: [cart], serviceAccountName: cart}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: pricing}
spec:
  rules: [{from: [{source: {principals: ["spiffe://cluster.local/ns/default/sa/cart"]}}]}]
"#,
};

/// Every identity of the mesh, `<trustDomain>/ns/<ns>/sa/<sa>`, with what runs as it.
fn identities(ix: &Index<'_>) -> Vec<(String, String)> {
    let domain = &ix.mesh.trust_domain;
    let mut out: Vec<(String, String)> = ix
        .workloads()
        .map(|(_, w)| {
            let ns = w.metadata.namespace();
            let id = format!("{domain}/ns/{ns}/sa/{}", w.spec.service_account_name);
            (id, format!("Workload {ns}/{}", w.metadata.name))
        })
        .collect();
    for (_, g) in ix.each(|r| match r {
        Resource::Gateway(g) => Some(g),
        _ => None,
    }) {
        let ns = g.metadata.namespace();
        let id = format!("{domain}/ns/{ns}/sa/{}", g.metadata.name);
        out.push((id, format!("Gateway {ns}/{}", g.metadata.name)));
    }
    out
}

pub fn check(ix: &Index<'_>, out: &mut Report) {
    let known = identities(ix);
    let namespaces: BTreeSet<&str> = known
        .iter()
        .filter_map(|(id, _)| id.split('/').nth(2))
        .collect();
    for (l, p) in ix.each(|r| match r {
        Resource::AuthorizationPolicy(p) => Some(p),
        _ => None,
    }) {
        for (i, rule) in p.spec.rules.iter().enumerate() {
            for (j, from) in rule.from.iter().enumerate() {
                let at = format!("spec.rules[{i}].from[{j}].source");
                for (k, principal) in from.source.principals.iter().enumerate() {
                    if let Some((message, fix)) =
                        unmatched_principal(principal, &known, &ix.mesh.trust_domain)
                    {
                        out.add(
                            "WEFT0608",
                            l,
                            &format!("{at}.principals[{k}]"),
                            message,
                            fix,
                        );
                    }
                }
                for (k, ns) in from.source.namespaces.iter().enumerate() {
                    if ns.contains('*') || namespaces.contains(ns.as_str()) {
                        continue;
                    }
                    let near = nearest(ns, namespaces.iter().copied());
                    let fix = match near {
                        Some(n) => format!("did you mean namespace {n:?}?"),
                        None => "name a namespace where workloads run".into(),
                    };
                    let message =
                        format!("namespace {ns:?} has no workload, so no caller matches it");
                    out.add(
                        "WEFT0608",
                        l,
                        &format!("{at}.namespaces[{k}]"),
                        message,
                        fix,
                    );
                }
            }
        }
    }
}

/// The finding for a principal nothing runs as: the message and the fix. Wildcards and
/// principals of another form are left to WEFT0603.
fn unmatched_principal(
    principal: &str,
    known: &[(String, String)],
    domain: &str,
) -> Option<(String, String)> {
    let id = principal.strip_prefix("spiffe://").unwrap_or(principal);
    if id.split('/').next() != Some(domain) {
        return None;
    }
    let ["ns", _, "sa", _] = id.split_once('/')?.1.split('/').collect::<Vec<_>>()[..] else {
        return None;
    };
    if id.contains('*') || known.iter().any(|(k, _)| k == id) {
        return None;
    }
    let message =
        format!("principal {principal:?} is no workload's identity, so no caller matches it");
    let fix = match nearest(id, known.iter().map(|(k, _)| k.as_str())) {
        Some(near) => {
            let who = &known.iter().find(|(k, _)| k == near).expect("a known identity").1;
            format!("did you mean spiffe://{near} ({who})?")
        }
        None => "name the identity of a workload: spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccountName>".into(),
    };
    Some((message, fix))
}

fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_service_account_names_the_one_that_runs() {
        let known = vec![(
            "shop.local/ns/shop/sa/cart".to_string(),
            "Workload shop/cart".to_string(),
        )];
        let (message, fix) =
            unmatched_principal("spiffe://shop.local/ns/shop/sa/carts", &known, "shop.local")
                .unwrap();
        assert!(message.contains("no workload's identity"), "{message}");
        assert_eq!(
            fix,
            "did you mean spiffe://shop.local/ns/shop/sa/cart (Workload shop/cart)?"
        );
        let none = |p: &str| unmatched_principal(p, &known, "shop.local").is_none();
        assert!(none("shop.local/ns/shop/sa/cart"));
        assert!(none("shop.local/ns/shop/sa/*"));
        assert!(none("cart"), "WEFT0603's");
        assert!(none("spiffe://other.td/ns/shop/sa/carts"), "WEFT0603's");
    }
}
