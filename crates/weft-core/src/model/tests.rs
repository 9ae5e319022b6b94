use std::collections::BTreeMap;

use super::*;
use crate::load::load_paths;

fn pod(workload: &str, n: u8, sa: &str) -> Pod {
    Pod {
        id: format!("{workload}-{n}.shop"),
        namespace: "shop".into(),
        workload: workload.into(),
        name: format!("{workload}-{n}"),
        ip: format!("198.18.0.{}", 10 + n).parse().unwrap(),
        service_account: sa.into(),
        labels: BTreeMap::new(),
        inbound: None,
    }
}

fn shop() -> Snapshot {
    let out = load_paths(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/shop")]);
    assert!(out.is_ok(), "{:#?}", out.errors);
    let pods = [
        pod("pricing-v1", 1, "pricing"),
        pod("pricing-v2", 2, "pricing"),
        pod("frontend", 3, "frontend"),
    ];
    Snapshot::build(&out.config, &pods)
}

#[test]
fn services_get_endpoints_from_their_selected_pods() {
    let s = shop();
    let pricing = &s.services["shop/pricing"];
    let pods: Vec<_> = pricing.endpoints.iter().map(|e| e.pod.as_str()).collect();
    assert_eq!(pods, ["pricing-v1-1", "pricing-v2-2"]);
    // targetPort `http` resolves to the workload's container port 8080.
    assert_eq!(pricing.endpoints[0].ports[&8080], 8080);
    assert_eq!(
        pricing.endpoints[0].identity,
        "spiffe://shop.local/ns/shop/sa/pricing"
    );
    assert_eq!(s.services["shop/pricing-v2"].endpoints.len(), 1);
    assert!(s.services["shop/cart"].endpoints.is_empty());
}

#[test]
fn routes_attach_to_their_parent_service() {
    let s = shop();
    let http = s.services["shop/pricing"]
        .http
        .as_ref()
        .expect("pricing has a route");
    assert_eq!(http.entries.len(), 1);
    let rule = &http.rules[0];
    let backends: Vec<_> = rule
        .backends
        .iter()
        .map(|b| (b.service.as_str(), b.port, b.weight))
        .collect();
    assert_eq!(
        backends,
        [("shop/pricing-v1", 8080, 90), ("shop/pricing-v2", 8080, 10)]
    );
    assert_eq!(rule.timeout, Some(Duration::from_secs(2)));
    assert_eq!(rule.retry.as_ref().unwrap().attempts, 2);
    assert_eq!(
        s.services["shop/pricing"].policy.load_balancer,
        LoadBalancerType::LeastRequest
    );
}

#[test]
fn vips_resolve_back_to_services() {
    let s = shop();
    let vip = s.services["shop/frontend"].vip.unwrap();
    assert_eq!(s.address(vip).unwrap().service, "shop/frontend");
    assert!(
        s.services["shop/frontend"]
            .hostnames
            .contains(&"frontend.shop.svc.cluster.local".to_string())
    );
}

#[test]
fn proxy_config_carries_identity_settings_and_inbound_ports() {
    let s = shop();
    let p = s.proxy(&pod("pricing-v1", 1, "pricing"));
    assert_eq!(p.identity, "spiffe://shop.local/ns/shop/sa/pricing");
    assert!(p.settings.hold_application);
    assert_eq!(
        p.inbound_ports,
        [PortConfig {
            port: 8080,
            name: None,
            protocol: Protocol::Http
        }]
    );
}

#[test]
fn precedence_puts_exact_before_prefix_and_longer_prefix_first() {
    let text = format!(
        "{}---\n{}",
        crate::analyze::EXAMPLE_BASE,
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - matches: [{path: {value: /}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /api}}, {path: {type: Exact, value: /api/login}}]
    backendRefs: [{name: web, port: 80}]
  - matches: [{path: {value: /api}, headers: [{name: x-canary, value: "1"}]}]
    backendRefs: [{name: web, port: 80}]
"#
    );
    let out = crate::load::parse_str("t.yaml", &text);
    let s = Snapshot::build(&out.config, &[]);
    let http = s.services["default/web"].http.as_ref().unwrap();
    let order: Vec<(String, usize)> = http
        .entries
        .iter()
        .map(|e| {
            (
                e.matcher.path.as_ref().unwrap().value.clone(),
                e.matcher.headers.len(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("/api/login".into(), 0),
            ("/api".into(), 1),
            ("/api".into(), 0),
            ("/".into(), 0)
        ]
    );
}

#[test]
fn grpc_route_filters_reach_the_proxy() {
    let text = format!(
        "{}---\n{}",
        crate::analyze::EXAMPLE_BASE,
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - matches: [{method: {service: shop.Pricing, method: Quote}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-route, value: grpc}]}}]
    backendRefs:
    - name: web
      port: 80
      filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {remove: [x-internal]}}]
"#
    );
    let out = crate::load::parse_str("g.yaml", &text);
    assert!(out.is_ok(), "{:#?}", out.errors);
    let s = Snapshot::build(&out.config, &[]);
    let http = s.services["default/web"].http.as_ref().unwrap();
    let rule = &http.rules[0];
    assert_eq!(
        http.entries[0].matcher.path.as_ref().unwrap().value,
        "/shop.Pricing/Quote"
    );
    let set = &rule.filters[0]
        .request_header_modifier
        .as_ref()
        .unwrap()
        .set[0];
    assert_eq!((set.name.as_str(), set.value.as_str()), ("x-route", "grpc"));
    let remove = &rule.backends[0].filters[0]
        .response_header_modifier
        .as_ref()
        .unwrap()
        .remove;
    assert_eq!(remove, &["x-internal".to_string()]);
}
