use serde_json::json;

use super::*;

fn policy(name: &str, action: &str, rules: serde_json::Value) -> ServedPolicy {
    ServedPolicy {
        name: name.into(),
        action: serde_json::from_value(json!(action)).unwrap(),
        rules: serde_json::from_value(rules).unwrap(),
        services: Vec::new(),
    }
}

const CART: &str = "spiffe://shop.local/ns/shop/sa/cart";
const FRONTEND: &str = "spiffe://shop.local/ns/shop/sa/frontend";
const OTHER_NS: &str = "spiffe://shop.local/ns/batch/sa/job";

fn no_headers(_: &str) -> Vec<String> {
    Vec::new()
}

fn tcp(identity: Option<&str>, port: u16) -> Ask<'_> {
    Ask {
        identity,
        port,
        http: None,
        service: None,
    }
}

fn http<'a>(
    identity: Option<&'a str>,
    method: &'a str,
    path: &'a str,
    header: &'a (dyn Fn(&str) -> Vec<String> + Sync),
) -> Ask<'a> {
    Ask {
        identity,
        port: 8080,
        http: Some(HttpAsk {
            method,
            path,
            header,
        }),
        service: None,
    }
}

#[test]
fn without_policies_everything_is_allowed() {
    assert_eq!(
        evaluate(&[], &tcp(None, 80)),
        Decision::Allow {
            policy: None,
            rule: None
        }
    );
}

#[test]
fn an_allow_policy_admits_only_what_it_names() {
    let p = [policy(
        "shop/pricing-callers",
        "ALLOW",
        json!([{"from": [{"source": {"principals": ["shop.local/ns/shop/sa/cart"]}}]}]),
    )];
    assert!(evaluate(&p, &tcp(Some(CART), 8080)).allowed());
    let Decision::Deny {
        policy,
        rule,
        reason,
    } = evaluate(&p, &tcp(Some(FRONTEND), 8080))
    else {
        panic!("frontend must be denied");
    };
    assert_eq!((policy.as_str(), rule), ("shop/pricing-callers", None));
    // The 403 says which rule wanted whom, and who called.
    assert_eq!(
        reason,
        format!(
            "no rule of AuthorizationPolicy shop/pricing-callers allows {FRONTEND} \
             (shop/pricing-callers rule 0: wants principals [shop.local/ns/shop/sa/cart], not {FRONTEND})"
        )
    );
    assert!(
        !evaluate(&p, &tcp(None, 8080)).allowed(),
        "plaintext has no identity"
    );
}

#[test]
fn deny_wins_over_allow() {
    let p = [
        policy("shop/all", "ALLOW", json!([{}])),
        policy(
            "shop/no-batch",
            "DENY",
            json!([{"from": [{"source": {"namespaces": ["batch"]}}]}]),
        ),
    ];
    assert!(evaluate(&p, &tcp(Some(CART), 1)).allowed());
    assert_eq!(
        evaluate(&p, &tcp(Some(OTHER_NS), 1)),
        Decision::Deny {
            policy: "shop/no-batch".into(),
            rule: Some(0),
            reason: "denied by AuthorizationPolicy shop/no-batch rule 0 (from namespaces [batch])"
                .into()
        }
    );
}

#[test]
fn l7_allow_rules_need_http_and_l7_deny_rules_fail_closed_on_tcp() {
    let allow = [policy(
        "shop/read-only",
        "ALLOW",
        json!([{"to": [{"operation": {"methods": ["GET"], "paths": ["/api/*"]}}]}]),
    )];
    assert!(evaluate(&allow, &http(Some(CART), "GET", "/api/items", &no_headers)).allowed());
    assert!(!evaluate(&allow, &http(Some(CART), "POST", "/api/items", &no_headers)).allowed());
    assert!(!evaluate(&allow, &http(Some(CART), "GET", "/admin", &no_headers)).allowed());
    assert!(
        !evaluate(&allow, &tcp(Some(CART), 8080)).allowed(),
        "TCP cannot show a method"
    );

    let deny = [policy(
        "shop/no-admin",
        "DENY",
        json!([{"to": [{"operation": {"paths": ["/admin*"]}}]}]),
    )];
    assert!(evaluate(&deny, &http(Some(CART), "GET", "/public", &no_headers)).allowed());
    assert!(!evaluate(&deny, &http(Some(CART), "GET", "/admin/users", &no_headers)).allowed());
    assert!(
        !evaluate(&deny, &tcp(Some(CART), 8080)).allowed(),
        "fails closed on TCP"
    );
}

#[test]
fn ports_namespaces_and_exclusions() {
    let p = [policy(
        "shop/mixed",
        "ALLOW",
        json!([{
            "from": [{"source": {"namespaces": ["shop"], "notPrincipals": ["*/sa/frontend"]}}],
            "to": [{"operation": {"ports": [8080, 9090], "notPorts": [9090]}}]
        }]),
    )];
    assert!(evaluate(&p, &tcp(Some(CART), 8080)).allowed());
    assert!(!evaluate(&p, &tcp(Some(CART), 9090)).allowed(), "notPorts");
    assert!(!evaluate(&p, &tcp(Some(CART), 7070)).allowed(), "ports");
    assert!(
        !evaluate(&p, &tcp(Some(FRONTEND), 8080)).allowed(),
        "notPrincipals suffix"
    );
    assert!(
        !evaluate(&p, &tcp(Some(OTHER_NS), 8080)).allowed(),
        "namespaces"
    );
}

#[test]
fn headers_match_by_lowercase_name_and_wildcard_value() {
    let p = [policy(
        "shop/tenant",
        "ALLOW",
        json!([{"to": [{"operation": {"headers": {"X-Tenant": ["acme-*"]}}}]}]),
    )];
    let acme = |name: &str| {
        if name == "x-tenant" {
            vec!["acme-eu".to_string()]
        } else {
            Vec::new()
        }
    };
    assert!(evaluate(&p, &http(Some(CART), "GET", "/", &acme)).allowed());
    assert!(!evaluate(&p, &http(Some(CART), "GET", "/", &no_headers)).allowed());
}

#[test]
fn an_allow_policy_without_rules_allows_nothing() {
    let p = [policy("shop/lockdown", "ALLOW", json!([]))];
    assert!(!evaluate(&p, &tcp(Some(CART), 8080)).allowed());
    let p = [policy("shop/open", "ALLOW", json!([{}]))];
    assert!(evaluate(&p, &tcp(None, 8080)).allowed());
}

#[test]
fn a_waypoint_applies_a_policy_only_to_the_services_it_is_attached_to() {
    let mut pricing_only = policy(
        "shop/pricing-callers",
        "ALLOW",
        json!([{"from": [{"source": {"principals": [FRONTEND]}}]}]),
    );
    pricing_only.services = vec!["shop/pricing".into()];
    let p = [pricing_only];
    let to = |service| Ask {
        service,
        ..tcp(Some(CART), 80)
    };
    // For the Service it is attached to, the ALLOW policy leaves cart out...
    assert!(!evaluate(&p, &to(Some("shop/pricing"))).allowed());
    // ...and for another Service through the same waypoint there is no policy at all.
    assert_eq!(
        evaluate(&p, &to(Some("shop/cart"))),
        Decision::Allow {
            policy: None,
            rule: None
        }
    );
}
