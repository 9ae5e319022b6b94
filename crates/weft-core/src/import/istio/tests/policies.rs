//! DestinationRule, AuthorizationPolicy and PeerAuthentication conversions.

use serde_json::{Value, json};

use super::{APPS, run, with_apps};

#[test]
fn destination_rules_become_traffic_policies_over_the_service_and_its_subsets() {
    let c = run(&format!(
        r#"{APPS}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: bookinfo}}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {{simple: ROUND_ROBIN}}
    connectionPool:
      tcp: {{maxConnections: 100, connectTimeout: 30ms}}
      http: {{http1MaxPendingRequests: 10, maxRequestsPerConnection: 1, http2MaxRequests: 1000}}
    outlierDetection: {{consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m, maxEjectionPercent: 100, minHealthPercent: 50}}
    tls: {{mode: ISTIO_MUTUAL}}
  subsets:
  - name: v1
    labels: {{version: v1}}
  - name: v2
    labels: {{version: v2}}
    trafficPolicy:
      loadBalancer: {{consistentHash: {{httpHeaderName: x-user}}}}
      outlierDetection: {{consecutive5xxErrors: 2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: bookinfo}}
spec:
  hosts: [reviews]
  http:
  - route:
    - {{destination: {{host: reviews, subset: v1}}, weight: 50}}
    - {{destination: {{host: reviews, subset: v2}}, weight: 50}}
"#
    ));
    let p = c.doc("TrafficPolicy", "reviews");
    assert_eq!(
        p["spec"],
        json!({
            "targetRefs": [{"kind": "Service", "name": "reviews"}, {"kind": "Service", "name": "reviews-v1"}],
            "loadBalancer": {"type": "ROUND_ROBIN"},
            "connectionPool": {"maxConnections": 100, "connectTimeout": "30ms", "maxPendingRequests": 10, "maxRequestsPerConnection": 1},
            "outlierDetection": {"consecutiveErrors": 7, "interval": "5m", "baseEjectionTime": "15m", "maxEjectionPercent": 100},
        })
    );
    // The subset's own policy overrides the top-level one field by field.
    let v2 = c.doc("TrafficPolicy", "reviews-v2");
    assert_eq!(
        v2["spec"]["targetRefs"],
        json!([{"kind": "Service", "name": "reviews-v2"}])
    );
    assert_eq!(
        v2["spec"]["outlierDetection"],
        json!({"consecutiveErrors": 2})
    );
    assert_eq!(v2["spec"]["connectionPool"]["maxConnections"], 100);
    assert!(v2["spec"].get("loadBalancer").is_none());
    let n = c.notes();
    for want in [
        "trafficPolicy.connectionPool.http.http2MaxRequests: not converted",
        "outlierDetection.minHealthPercent: not converted",
        "subsets[1].trafficPolicy.loadBalancer.consistentHash: not converted",
        "Istio limits connections to the whole Service, weft per endpoint",
    ] {
        assert!(n.contains(want), "{want}: {n}");
    }
    assert!(
        !n.contains("tls.mode"),
        "ISTIO_MUTUAL is weft's default: {n}"
    );
}

#[test]
fn authorization_policies_convert_and_what_cannot_convert_fails_closed() {
    let cases: &[(&str, &str, serde_json::Value, &[&str])] = &[
        (
            "allow by principal and method",
            "action: ALLOW\n  selector: {matchLabels: {app: reviews}}\n  rules:\n  - from: [{source: {principals: [cluster.local/ns/bookinfo/sa/productpage]}}]\n    to: [{operation: {methods: [GET], ports: [\"9080\"]}}]\n",
            json!({"selector": {"matchLabels": {"app": "reviews"}}, "action": "ALLOW", "rules": [{
                "from": [{"source": {"principals": ["cluster.local/ns/bookinfo/sa/productpage"]}}],
                "to": [{"operation": {"ports": [9080], "methods": ["GET"]}}],
            }]}),
            &[],
        ),
        (
            "deny with conditions",
            "action: DENY\n  rules:\n  - from: [{source: {notNamespaces: [bookinfo]}}]\n    when:\n    - {key: \"request.headers[X-Debug]\", values: [\"1\"]}\n    - {key: destination.port, values: [\"9080\"]}\n",
            json!({"action": "DENY", "rules": [{
                "from": [{"source": {"notNamespaces": ["bookinfo"]}}],
                "to": [{"operation": {"headers": {"x-debug": ["1"]}, "ports": [9080]}}],
            }]}),
            &[],
        ),
        (
            "an ALLOW source weft cannot check is left out",
            "rules:\n  - from:\n    - source: {ipBlocks: [10.0.0.0/8]}\n    - source: {namespaces: [bookinfo]}\n  - from: [{source: {requestPrincipals: [\"*\"]}}]\n",
            json!({"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["bookinfo"]}}]}]}),
            &[
                "rules[0].from[0].source.ipBlocks: not converted",
                "so it allows less",
                "rules[1]: left out",
            ],
        ),
        (
            "a DENY condition weft cannot check is dropped, denying more",
            "action: DENY\n  rules:\n  - from: [{source: {notRequestPrincipals: [\"*\"]}}]\n    to: [{operation: {paths: [/admin*]}}]\n",
            json!({"action": "DENY", "rules": [{"from": [{"source": {}}], "to": [{"operation": {"paths": ["/admin*"]}}]}]}),
            &[
                "notRequestPrincipals: not converted",
                "the DENY applies without it, to more requests",
            ],
        ),
        (
            "an ALLOW condition on a JWT claim drops the rule",
            "rules:\n  - when: [{key: \"request.auth.claims[group]\", values: [admin]}]\n",
            json!({"action": "ALLOW", "rules": []}),
            &[
                "request.auth.claims[group]: not converted",
                "now allows nothing",
            ],
        ),
        ("allow nothing", "{}\n", json!({"action": "ALLOW"}), &[]),
    ];
    for (name, spec, want, notes) in cases {
        let c = run(&format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p, namespace: bookinfo}}\nspec:\n  {spec}"
        ));
        assert_eq!(
            c.doc("AuthorizationPolicy", "p")["spec"],
            *want,
            "{name}:\n{}",
            c.text
        );
        let n = c.notes();
        for w in *notes {
            assert!(n.contains(w), "{name}: {w}: {n}");
        }
    }
}

#[test]
fn custom_and_root_namespace_policies() {
    let c = with_apps(
        r#"
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: bookinfo}
spec:
  action: CUSTOM
  provider: {name: opa}
  rules: [{to: [{operation: {paths: ["/api/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-debug, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/debug*"]}}]}]
"#,
    );
    let row = c.row("AuthorizationPolicy bookinfo/ext");
    assert!(row.converted.is_empty());
    assert!(row.notes[0].contains("CUSTOM"), "{row:?}");
    assert!(
        c.text
            .contains("# weft import: not converted: action CUSTOM"),
        "{}",
        c.text
    );
    let copy = c.doc("AuthorizationPolicy", "deny-debug");
    assert_eq!(copy["metadata"]["namespace"], "bookinfo");
    assert!(
        c.notes()
            .contains("copied to every namespace of the input (bookinfo)")
    );
}

#[test]
fn peer_authentication_sets_the_mtls_mode_where_istio_applied_it() {
    let c = with_apps(
        r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: bookinfo}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: DISABLE}
  portLevelMtls: {"9080": {mode: STRICT}}
"#,
    );
    assert_eq!(
        c.doc("Mesh", "mesh")["spec"],
        json!({"mtls": {"mode": "PERMISSIVE"}})
    );
    assert_eq!(
        c.doc("Namespace", "bookinfo")["metadata"]["annotations"],
        json!({"weft.dev/mtls-mode": "STRICT"})
    );
    let ratings = c.doc("Deployment", "ratings-v1");
    assert_eq!(
        ratings["spec"]["template"]["metadata"]["annotations"],
        json!({"weft.dev/mtls-mode": "DISABLE"})
    );
    assert!(c.notes().contains("portLevelMtls: not converted"));
    assert_eq!(
        c.row("PeerAuthentication bookinfo/ratings").converted,
        vec!["Deployment bookinfo/ratings-v1 annotation weft.dev/mtls-mode: DISABLE"]
    );
    assert!(
        !c.import
            .rows
            .iter()
            .any(|r| r.source == "(no PeerAuthentication)"),
        "the default is only noted when there is no PeerAuthentication"
    );
}

/// An EnvoyFilter inserting Envoy's local_ratelimit filter, the way Istio's docs write it:
/// `TYPED` is the filter's typed_config, `SELECTOR` its workloadSelector labels, `CONTEXT` the
/// patch's context.
const RATE_LIMIT: &str = r#"apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: reviews-ratelimit, namespace: bookinfo}
spec:
  workloadSelector: {labels: SELECTOR}
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: CONTEXT
      listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager}}}
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config: TYPED
  - applyTo: CLUSTER
    patch: {operation: MERGE, value: {connect_timeout: 1s}}
"#;

const STRUCT: &str = r#"{"@type": type.googleapis.com/udpa.type.v1.TypedStruct, type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, value: {stat_prefix: http_local_rate_limiter, token_bucket: {max_tokens: 10, tokens_per_fill: 5, fill_interval: 60s}, filter_enabled: {runtime_key: e, default_value: {numerator: 100, denominator: HUNDRED}}, filter_enforced: {runtime_key: f, default_value: {numerator: 100}}, response_headers_to_add: [{append: false, header: {key: x-local-rate-limit, value: "true"}}]}}"#;

#[test]
fn a_local_ratelimit_envoy_filter_becomes_a_traffic_policy_on_the_selected_services() {
    let direct = STRUCT
        .replace("udpa.type.v1.TypedStruct, type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, value: {", "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit, ")
        .replace("\"true\"}}]}}", "\"true\"}}]}");
    let shadow = STRUCT.replace("numerator: 100, denominator", "numerator: 50, denominator");
    let not_enabled = STRUCT.replace(
        "filter_enabled: {runtime_key: e, default_value: {numerator: 100, denominator: HUNDRED}}, ",
        "",
    );
    let extras = STRUCT.replace("stat_prefix:", "status: {code: 503}, stat_prefix:");
    // (typed_config, selector, context, the TrafficPolicy's spec or None, notes it must carry)
    type Case<'a> = (&'a str, &'a str, &'a str, Option<Value>, &'a [&'a str]);
    let cases: [Case; 7] = [
        (
            STRUCT,
            "{app: reviews}",
            "SIDECAR_INBOUND",
            Some(
                json!({"targetRefs": [{"kind": "Service", "name": "reviews"}], "localRateLimit": {"requests": 5, "per": "1m", "burst": 10}}),
            ),
            &["configPatches[1]: not converted: CLUSTER patch"],
        ),
        (
            &direct,
            "{app: ratings, version: v1}",
            "SIDECAR_INBOUND",
            Some(
                json!({"targetRefs": [{"kind": "Service", "name": "ratings"}], "localRateLimit": {"requests": 5, "per": "1m", "burst": 10}}),
            ),
            &[
                "Service bookinfo/ratings selects",
                "applies to every pod of the Service",
            ],
        ),
        (
            STRUCT,
            "{app: nothing}",
            "SIDECAR_INBOUND",
            None,
            &["no Service in the input selects the workloads labelled"],
        ),
        (
            STRUCT,
            "{app: reviews}",
            "SIDECAR_OUTBOUND",
            None,
            &["a local rate limit in context SIDECAR_OUTBOUND"],
        ),
        (
            &shadow,
            "{app: reviews}",
            "SIDECAR_INBOUND",
            None,
            &["filter_enabled is 50%"],
        ),
        (
            &not_enabled,
            "{app: reviews}",
            "SIDECAR_INBOUND",
            None,
            &["filter_enabled is 0% (Envoy's default is 0%)"],
        ),
        (
            &extras,
            "{app: reviews}",
            "SIDECAR_INBOUND",
            Some(
                json!({"targetRefs": [{"kind": "Service", "name": "reviews"}], "localRateLimit": {"requests": 5, "per": "1m", "burst": 10}}),
            ),
            &["status: not converted"],
        ),
    ];
    for (typed, selector, context, want, notes) in cases {
        let filter = RATE_LIMIT
            .replace("TYPED", typed)
            .replace("SELECTOR", selector)
            .replace("CONTEXT", context);
        let c = run(&format!("{APPS}---\n{filter}"));
        let row = c.row("EnvoyFilter bookinfo/reviews-ratelimit");
        match &want {
            Some(spec) => {
                assert_eq!(
                    c.doc("TrafficPolicy", "reviews-ratelimit")["spec"],
                    *spec,
                    "{}",
                    c.text
                );
                assert_eq!(row.converted, ["TrafficPolicy bookinfo/reviews-ratelimit"]);
            }
            None => {
                assert!(!c.has("TrafficPolicy", "reviews-ratelimit"), "{}", c.text);
                assert!(row.converted.is_empty(), "{row:?}");
            }
        }
        let n = c.notes();
        for want in notes {
            assert!(
                n.contains(want),
                "{selector} {context}: {want:?} not in:\n{n}"
            );
        }
        // What converts passes weft's own loader.
        if want.is_some() {
            let out = crate::load::parse_str("out.yaml", &c.text);
            assert!(out.errors.is_empty(), "{:#?}\n{}", out.errors, c.text);
        }
    }
}
