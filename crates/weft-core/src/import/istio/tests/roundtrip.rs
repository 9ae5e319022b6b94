//! A whole Bookinfo-style Istio configuration, converted, loads in weft without errors and
//! the analyzer finds no error in it.

use super::{APPS, SUBSETS, run};
use crate::analyze::{Severity, analyze};
use crate::load::parse_str;

/// Bookinfo's traffic rules as Istio users write them.
pub const BOOKINFO: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 90}
    - {destination: {host: reviews, subset: v3}, weight: 10}
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "gateway-error,connect-failure,refused-stream"}
    timeout: 10s
    mirror: {host: reviews, subset: v2}
    mirrorPercentage: {value: 5}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo}
spec:
  hosts: [ratings.bookinfo.svc.cluster.local]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {delay: {percentage: {value: 100.0}, fixedDelay: 7s}}
    route: [{destination: {host: ratings, subset: v1}}]
  - route: [{destination: {host: ratings, subset: v1}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/bookinfo/sa/productpage]}}]
    to: [{operation: {methods: [GET]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: bookinfo}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
"#;

#[test]
fn converted_bookinfo_loads_and_analyzes_without_errors() {
    let c = run(&format!("{APPS}---\n{SUBSETS}---\n{BOOKINFO}"));
    let out = parse_str("converted.yaml", &c.text);
    let errs: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
    assert!(errs.is_empty(), "{}\n{}", errs.join("\n"), c.text);
    assert!(
        out.config.foreign.is_empty(),
        "Istio documents left:\n{}",
        c.text
    );
    let errors: Vec<String> = analyze(&out.config)
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{}\n{}", errors.join("\n"), c.text);
}
