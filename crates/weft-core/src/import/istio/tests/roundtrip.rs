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

/// Everything else the converter writes: a Gateway with an HTTPS redirect and the routes
/// bound to it, a TCP route, traffic policies, a root-namespace policy, a workload's mTLS
/// mode and Istio's labels and annotations.
const MORE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: bookinfo, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: bookinfo}
spec: {selector: {app: db}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: bookinfo}
spec:
  template:
    metadata:
      labels: {app: db}
      annotations:
        sidecar.istio.io/proxyMemoryLimit: 64Mi
        proxy.istio.io/config: '{"holdApplicationUntilProxyStarts": true, "terminationDrainDuration": "10s"}'
    spec: {containers: [{name: db, image: postgres, ports: [{containerPort: 5432}]}]}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: bookinfo}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 8081, name: http-redirect, protocol: HTTP}
    hosts: [bookinfo.example.com]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {exact: /productpage}}, {uri: {prefix: /static/}}]
    route: [{destination: {host: productpage, port: {number: 9080}}}]
  - match: [{uri: {prefix: /api/v1/}}]
    rewrite: {uri: /}
    route: [{destination: {host: reviews}}]
    headers: {response: {set: {x-served-by: weft}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: bookinfo}
spec:
  hosts: [db]
  tcp: [{match: [{port: 5432}], route: [{destination: {host: db, port: {number: 5432}}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: bookinfo}
spec:
  host: db
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 100, connectTimeout: 1s}}
    outlierDetection: {consecutive5xxErrors: 3, interval: 30s, baseEjectionTime: 1m}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-debug, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/debug*"]}}], when: [{key: source.namespace, notValues: [bookinfo]}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: db, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: db}}
  mtls: {mode: STRICT}
"#;

#[test]
fn gateways_tcp_policies_and_annotations_load_and_analyze_without_errors() {
    let c = run(&format!("{APPS}---\n{SUBSETS}---\n{MORE}"));
    for (kind, name) in [
        ("Gateway", "bookinfo-gateway"),
        ("HTTPRoute", "bookinfo"),
        ("HTTPRoute", "bookinfo-gateway-http-redirect-https-redirect"),
        ("TCPRoute", "db-tcp"),
        ("TrafficPolicy", "db"),
        ("AuthorizationPolicy", "deny-debug"),
    ] {
        assert!(c.has(kind, name), "{kind} {name}:\n{}", c.text);
    }
    let out = parse_str("converted.yaml", &c.text);
    let errs: Vec<String> = out.errors.iter().map(ToString::to_string).collect();
    assert!(errs.is_empty(), "{}\n{}", errs.join("\n"), c.text);
    assert!(out.config.foreign.is_empty());
    let errors: Vec<String> = analyze(&out.config)
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{}\n{}", errors.join("\n"), c.text);
}
