//! VirtualService conversions, one case per Istio feature.

use serde_json::{Value, json};

use super::{Converted, with_apps};

fn vs(name: &str, http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: bookinfo}}\nspec:\n  hosts: [{name}]\n  http:\n{http}"
    )
}

fn rules<'a>(c: &'a Converted, name: &str) -> &'a Vec<Value> {
    c.doc("HTTPRoute", name)["spec"]["rules"]
        .as_array()
        .expect("rules")
}

type Check = fn(&Converted);

#[test]
fn virtual_services_convert_feature_by_feature() {
    let cases: &[(&str, &str, Check)] = &[
        (
            "header match to a version",
            "  - match: [{headers: {end-user: {exact: jason}}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n",
            |c| {
                let route = c.doc("HTTPRoute", "reviews");
                assert_eq!(
                    route["spec"]["parentRefs"],
                    json!([{"group": "", "kind": "Service", "name": "reviews"}])
                );
                let r = rules(c, "reviews");
                assert_eq!(
                    r[0]["matches"],
                    json!([{"headers": [{"name": "end-user", "value": "jason"}]}])
                );
                assert_eq!(
                    r[0]["backendRefs"],
                    json!([{"name": "reviews-v2", "port": 9080}])
                );
                assert_eq!(
                    r[1]["backendRefs"],
                    json!([{"name": "reviews-v1", "port": 9080}])
                );
                assert!(r[1].get("matches").is_none());
                // The subsets used get per-version Services; the unused one does not.
                let v2 = c.doc("Service", "reviews-v2");
                assert_eq!(
                    v2["spec"]["selector"],
                    json!({"app": "reviews", "version": "v2"})
                );
                assert_eq!(
                    v2["spec"]["ports"],
                    json!([{"name": "http", "port": 9080, "targetPort": 9080}])
                );
                assert!(!c.has("Service", "reviews-v3"));
                assert!(
                    c.notes().contains("subsets[2] v3: no route uses it"),
                    "{}",
                    c.notes()
                );
            },
        ),
        (
            "weighted canary",
            "  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 90\n    - destination: {host: reviews, subset: v3}\n      weight: 10\n",
            |c| {
                assert_eq!(
                    rules(c, "reviews")[0]["backendRefs"],
                    json!([{"name": "reviews-v1", "port": 9080, "weight": 90}, {"name": "reviews-v3", "port": 9080, "weight": 10}])
                );
            },
        ),
        (
            "retries and timeouts",
            "  - route: [{destination: {host: reviews}}]\n    timeout: 10s\n    retries: {attempts: 3, perTryTimeout: 2s, retryOn: \"gateway-error,connect-failure\"}\n",
            |c| {
                let r = &rules(c, "reviews")[0];
                assert_eq!(
                    r["timeouts"],
                    json!({"request": "10s", "backendRequest": "2s"})
                );
                assert_eq!(r["retry"], json!({"attempts": 3, "codes": [502, 503, 504]}));
                assert_eq!(r["backendRefs"], json!([{"name": "reviews", "port": 9080}]));
                assert!(!c.notes().contains("retryOn"), "{}", c.notes());
            },
        ),
        (
            "retryOn 5xx, a status code and gRPC conditions",
            "  - route: [{destination: {host: reviews}}]\n    timeout: 1s\n    retries: {attempts: 2, perTryTimeout: 1500ms, retryOn: \"5xx,409,unavailable,retriable-headers\"}\n",
            |c| {
                let r = &rules(c, "reviews")[0];
                let codes: Vec<u64> = r["retry"]["codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect();
                assert_eq!(codes.len(), 101);
                assert!(codes.contains(&409) && codes.contains(&500) && codes.contains(&599));
                assert_eq!(
                    r["timeouts"],
                    json!({"request": "1s", "backendRequest": "1s"})
                );
                let n = c.notes();
                for want in [
                    "retryOn unavailable: not converted",
                    "retryOn retriable-headers: not converted",
                    "perTryTimeout 1500ms is longer",
                    "also retries connection failures",
                ] {
                    assert!(n.contains(want), "{want}: {n}");
                }
            },
        ),
        (
            "retryOn a gRPC condition: noted, with the TrafficPolicy that does it",
            "  - route: [{destination: {host: reviews}}]\n    retries: {attempts: 2, retryOn: \"unavailable,connect-failure\"}\n",
            |c| {
                // No status code named: the route's retry keeps weft's default codes.
                let r = &rules(c, "reviews")[0];
                assert_eq!(r["retry"], json!({"attempts": 2}));
                let n = c.notes();
                assert!(
                    n.contains("http[0].retries.retryOn unavailable: not converted"),
                    "{n}"
                );
                assert!(n.contains("retries.retryOn: [unavailable]"), "{n}");
                assert!(n.contains("a route's retry replaces the Service's"), "{n}");
                assert!(!n.contains("also retries connection failures"), "{n}");
            },
        ),
        (
            "Istio's default retry conditions",
            "  - route: [{destination: {host: reviews}}]\n    retries: {attempts: 1}\n",
            |c| {
                assert_eq!(
                    rules(c, "reviews")[0]["retry"],
                    json!({"attempts": 1, "codes": [503]})
                );
            },
        ),
        (
            "routes without retries get Istio's default retries",
            "  - route: [{destination: {host: reviews}}]\n",
            |c| {
                assert_eq!(
                    rules(c, "reviews")[0]["retry"],
                    json!({"attempts": 2, "codes": [503]})
                );
                assert!(
                    c.text.contains("# weft import: Istio's default retries"),
                    "{}",
                    c.text
                );
                assert!(c.row("VirtualService bookinfo/reviews").notes.is_empty());
            },
        ),
        (
            "fault injection: delay and abort",
            "  - match: [{headers: {end-user: {exact: jason}}}]\n    fault:\n      delay: {percentage: {value: 100.0}, fixedDelay: 7s}\n      abort: {percentage: {value: 0.5}, grpcStatus: UNAVAILABLE}\n    route: [{destination: {host: ratings, subset: v1}}]\n  - fault: {abort: {httpStatus: 500, percentage: {value: 10}}}\n    route: [{destination: {host: ratings, subset: v1}}]\n",
            |c| {
                let f0 = c.doc("Fault", "reviews-fault-0");
                assert_eq!(f0["metadata"]["namespace"], "bookinfo");
                assert_eq!(
                    f0["spec"],
                    json!({"delay": {"fixedDelay": "7s", "percentage": 100}, "abort": {"grpcStatus": 14, "percentage": 0.5}})
                );
                let f1 = c.doc("Fault", "reviews-fault-1");
                assert_eq!(
                    f1["spec"],
                    json!({"abort": {"httpStatus": 500, "percentage": 10}})
                );
                let r = rules(c, "reviews");
                assert_eq!(
                    r[0]["filters"],
                    json!([{"type": "ExtensionRef", "extensionRef": {"group": "weft.dev", "kind": "Fault", "name": "reviews-fault-0"}}])
                );
                assert_eq!(
                    r[1]["backendRefs"],
                    json!([{"name": "ratings-v1", "port": 9080}])
                );
            },
        ),
        (
            "mirror with a percentage",
            "  - route: [{destination: {host: reviews, subset: v1}}]\n    mirror: {host: reviews, subset: v2}\n    mirrorPercentage: {value: 50.0}\n",
            |c| {
                assert_eq!(
                    rules(c, "reviews")[0]["filters"],
                    json!([{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "reviews-v2", "port": 9080}, "percent": 50}}])
                );
                assert!(
                    c.has("Service", "reviews-v2"),
                    "a mirrored subset gets its Service"
                );
            },
        ),
        (
            "rewrite of a prefix and of an exact path",
            "  - match: [{uri: {prefix: /api/}}, {uri: {exact: /old}}]\n    rewrite: {uri: /v2/, authority: reviews.internal}\n    route: [{destination: {host: reviews}}]\n",
            |c| {
                let r = rules(c, "reviews");
                assert_eq!(r.len(), 2, "one rule per kind of rewrite");
                assert_eq!(
                    r[0]["matches"],
                    json!([{"path": {"type": "PathPrefix", "value": "/api/"}}])
                );
                assert_eq!(
                    r[0]["filters"],
                    json!([{"type": "URLRewrite", "urlRewrite": {"hostname": "reviews.internal", "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2/"}}}])
                );
                assert_eq!(
                    r[1]["matches"],
                    json!([{"path": {"type": "Exact", "value": "/old"}}])
                );
                assert_eq!(
                    r[1]["filters"][0]["urlRewrite"]["path"],
                    json!({"type": "ReplaceFullPath", "replaceFullPath": "/v2/"})
                );
            },
        ),
        (
            "redirect",
            "  - match: [{uri: {exact: /v1/reviews}}]\n    redirect: {uri: /v2/reviews, authority: newreviews.bookinfo.svc.cluster.local}\n  - route: [{destination: {host: reviews}}]\n",
            |c| {
                let r = &rules(c, "reviews")[0];
                assert_eq!(
                    r["filters"],
                    json!([{"type": "RequestRedirect", "requestRedirect": {"hostname": "newreviews.bookinfo.svc.cluster.local", "path": {"type": "ReplaceFullPath", "replaceFullPath": "/v2/reviews"}, "statusCode": 301}}])
                );
                assert!(r.get("backendRefs").is_none());
            },
        ),
        (
            "header operations on the rule and on one destination",
            "  - headers:\n      request: {set: {x-canary: \"true\"}, remove: [x-debug]}\n      response: {add: {x-served-by: weft}}\n    route:\n    - destination: {host: reviews, subset: v1}\n      weight: 100\n      headers: {response: {set: {x-version: v1}}}\n",
            |c| {
                let r = &rules(c, "reviews")[0];
                assert_eq!(
                    r["filters"],
                    json!([
                        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-canary", "value": "true"}], "remove": ["x-debug"]}},
                        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"add": [{"name": "x-served-by", "value": "weft"}]}},
                    ])
                );
                assert_eq!(
                    r["backendRefs"][0]["filters"],
                    json!([{"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [{"name": "x-version", "value": "v1"}]}}])
                );
            },
        ),
        (
            "uri, query, method and header matches of every kind",
            "  - match:\n    - uri: {regex: \"/reviews/[0-9]+\"}\n      method: {exact: GET}\n      queryParams: {debug: {exact: \"1\"}}\n      headers: {x-user: {prefix: test.}, x-any: {}}\n    route: [{destination: {host: reviews}}]\n",
            |c| {
                assert_eq!(
                    rules(c, "reviews")[0]["matches"],
                    json!([{
                        "path": {"type": "RegularExpression", "value": "/reviews/[0-9]+"},
                        "headers": [
                            {"type": "RegularExpression", "name": "x-any", "value": ".*"},
                            {"type": "RegularExpression", "name": "x-user", "value": "test\\..*"},
                        ],
                        "queryParams": [{"name": "debug", "value": "1"}],
                        "method": "GET",
                    }])
                );
            },
        ),
        (
            "matches weft cannot express are left out, never widened",
            "  - match: [{sourceLabels: {app: productpage}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n  - match: [{headers: {end-user: {exact: jason}}}, {port: 9080}]\n    route: [{destination: {host: reviews, subset: v3}}]\n  - route: [{destination: {host: reviews, subset: v1}}]\n",
            |c| {
                let r = rules(c, "reviews");
                assert_eq!(r.len(), 2, "{}", c.text);
                assert_eq!(
                    r[0]["matches"],
                    json!([{"headers": [{"name": "end-user", "value": "jason"}]}])
                );
                let n = c.notes();
                assert!(n.contains("http[0]: not converted, no match of it converts: http[0].match[0].sourceLabels"), "{n}");
                assert!(n.contains("http[1].match[1].port:"), "{n}");
                assert!(
                    c.text.contains("# weft import: http[0]: not converted"),
                    "{}",
                    c.text
                );
            },
        ),
        (
            "a prefix that is not a whole segment, and rules the Gateway API orders differently",
            "  - match: [{uri: {prefix: /}}]\n    route: [{destination: {host: reviews, subset: v1}}]\n  - match: [{uri: {prefix: /static}}]\n    route: [{destination: {host: reviews, subset: v2}}]\n",
            |c| {
                let n = c.notes();
                assert!(n.contains("uri prefix /static: Istio also matches"), "{n}");
                assert!(n.contains("http[1] outranks http[0] here"), "{n}");
            },
        ),
        (
            "fields weft has no equivalent for are listed",
            "  - route: [{destination: {host: reviews}}]\n    corsPolicy: {allowOrigins: [{exact: \"*\"}]}\n    directResponse: {status: 503}\n    someNewField: 1\n",
            |c| {
                let n = c.notes();
                for want in [
                    "http[0].corsPolicy: not converted",
                    "http[0].directResponse: not converted",
                    "http[0].someNewField: not converted",
                ] {
                    assert!(n.contains(want), "{want}: {n}");
                }
                assert!(
                    c.text.contains("# weft import: http[0].corsPolicy"),
                    "{}",
                    c.text
                );
            },
        ),
        (
            "destinations outside the mesh and subsets no DestinationRule defines",
            "  - route:\n    - destination: {host: api.example.com}\n      weight: 50\n    - destination: {host: reviews, subset: v9}\n      weight: 50\n",
            |c| {
                assert_eq!(
                    rules(c, "reviews")[0]["backendRefs"],
                    json!([{"name": "reviews-v9", "port": 9080, "weight": 50}])
                );
                let n = c.notes();
                assert!(
                    n.contains("destination api.example.com is not a Service of the mesh"),
                    "{n}"
                );
                assert!(
                    n.contains("no DestinationRule in the input defines subset v9"),
                    "{n}"
                );
            },
        ),
    ];
    let mut failed = Vec::new();
    for (name, http, check) in cases {
        let c = with_apps(&vs("reviews", http));
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&c))).is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "cases failed: {failed:?}");
}

#[test]
fn a_virtual_service_bound_to_a_gateway_attaches_to_its_listeners_with_its_hosts() {
    let c = with_apps(
        r#"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: bookinfo}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 80, name: http-redirect, protocol: HTTP}
    hosts: [bookinfo.example.com]
    tls: {httpsRedirect: true}
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [bookinfo.example.com]
    tls: {mode: SIMPLE, credentialName: bookinfo-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: bookinfo}
spec:
  hosts: ["bookinfo.example.com"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {exact: /productpage}}, {uri: {prefix: /static/}}]
    route: [{destination: {host: productpage, port: {number: 9080}}}]
"#,
    );
    let g = c.doc("Gateway", "bookinfo-gateway");
    assert_eq!(g["spec"]["gatewayClassName"], "weft");
    assert_eq!(
        g["spec"]["listeners"],
        json!([
            {"name": "http", "port": 8080, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}},
            {"name": "http-redirect", "hostname": "bookinfo.example.com", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}},
            {"name": "https", "hostname": "bookinfo.example.com", "port": 443, "protocol": "HTTPS",
             "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "bookinfo-cert"}]},
             "allowedRoutes": {"namespaces": {"from": "All"}}},
        ])
    );
    let redirect = c.doc("HTTPRoute", "bookinfo-gateway-http-redirect-https-redirect");
    assert_eq!(
        redirect["spec"]["parentRefs"],
        json!([{"name": "bookinfo-gateway", "sectionName": "http-redirect"}])
    );
    let route = c.doc("HTTPRoute", "bookinfo");
    assert_eq!(
        route["spec"]["parentRefs"],
        json!([{"name": "bookinfo-gateway", "sectionName": "http"}, {"name": "bookinfo-gateway", "sectionName": "https"}])
    );
    assert_eq!(route["spec"]["hostnames"], json!(["bookinfo.example.com"]));
    assert!(c.text.contains("# weft import: selector"), "{}", c.text);
}

#[test]
fn a_grpc_service_gets_a_grpc_route_when_its_rules_fit_one() {
    let c = super::run(
        r#"
apiVersion: v1
kind: Service
metadata: {name: quotes, namespace: shop}
spec: {selector: {app: quotes}, ports: [{name: grpc, port: 9090}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: quotes, namespace: shop}
spec:
  hosts: [quotes.shop.svc.cluster.local]
  http:
  - match: [{uri: {exact: /shop.Pricing/Quote}}]
    route: [{destination: {host: quotes}}]
  - match: [{uri: {prefix: /shop.Pricing/}}]
    route: [{destination: {host: quotes}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: quotes-retry, namespace: shop}
spec:
  hosts: [quotes]
  http:
  - route: [{destination: {host: quotes}}]
    timeout: 2s
"#,
    );
    let r = c.doc("GRPCRoute", "quotes");
    assert_eq!(
        r["spec"]["rules"][0]["matches"],
        json!([{"method": {"service": "shop.Pricing", "method": "Quote"}}])
    );
    assert_eq!(
        r["spec"]["rules"][1]["matches"],
        json!([{"method": {"service": "shop.Pricing"}}])
    );
    assert!(
        c.has("HTTPRoute", "quotes-retry"),
        "timeouts need an HTTPRoute"
    );
    assert!(
        c.notes().contains("a GRPCRoute rule has no timeouts"),
        "{}",
        c.notes()
    );
}

#[test]
fn tcp_routes_become_tcp_routes_on_the_matched_port() {
    let c = super::run(
        r#"
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec: {selector: {app: db}, ports: [{name: tcp, port: 5432}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: shop}
spec:
  hosts: [db]
  tcp:
  - match: [{port: 5432}]
    route: [{destination: {host: db, port: {number: 5432}}}]
"#,
    );
    let r = c.doc("TCPRoute", "db-tcp");
    assert_eq!(
        r["spec"]["parentRefs"],
        json!([{"group": "", "kind": "Service", "name": "db", "port": 5432}])
    );
    assert_eq!(
        r["spec"]["rules"],
        json!([{"backendRefs": [{"name": "db", "port": 5432}]}])
    );
}
