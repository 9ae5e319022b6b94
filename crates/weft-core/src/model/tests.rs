use std::collections::BTreeMap;

use super::*;
use crate::load::load_paths;

/// A pod of the shop example (shared with the other model tests).
pub(super) fn pod(workload: &str, n: u8, sa: &str) -> Pod {
    Pod {
        id: format!("{workload}-{n}.shop"),
        namespace: "shop".into(),
        workload: workload.into(),
        name: format!("{workload}-{n}"),
        ip: format!("198.18.0.{}", 10 + n).parse().unwrap(),
        service_account: sa.into(),
        labels: BTreeMap::new(),
        inbound: None,
        tunnel: None,
        node: String::new(),
        ready: true,
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

const GATEWAY: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: weft
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
  - {name: shop, port: 8081, protocol: HTTP, hostname: "*.shop.example"}
  - {name: tls, port: 8443, protocol: HTTPS}
  - {name: open, port: 8082, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: shop}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a-section, namespace: shop}
spec:
  parentRefs: [{name: ingress, sectionName: http}]
  rules: [{backendRefs: [{name: frontend, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b-port, namespace: shop}
spec:
  parentRefs: [{name: ingress, port: 8081}]
  hostnames: [www.shop.example, other.example]
  rules: [{matches: [{path: {type: Exact, value: /b}}], backendRefs: [{name: frontend, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: c-all, namespace: shop}
spec:
  parentRefs: [{name: ingress}]
  hostnames: ["*.example"]
  rules: [{matches: [{path: {value: /c}}], backendRefs: [{name: frontend, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: d-elsewhere, namespace: web}
spec:
  parentRefs: [{name: ingress, namespace: shop}]
  rules:
  - matches: [{path: {value: /d}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: copy, port: 80}}}]
    backendRefs: [{name: api, port: 80}, {name: frontend, namespace: shop, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: e-disjoint, namespace: shop}
spec:
  parentRefs: [{name: ingress, sectionName: shop}]
  hostnames: [nope.example]
  rules: [{backendRefs: [{name: frontend, port: 8080}]}]
"#;

#[test]
fn gateway_routes_attach_to_listeners_by_section_and_port_with_hostnames_intersected() {
    let out = crate::load::parse_str("gw.yaml", GATEWAY);
    assert!(out.is_ok(), "{:#?}", out.errors);
    let s = Snapshot::build(&out.config, &[]);
    // Ingress and waypoint classes are served; routes attach to the ingress's HTTP listeners.
    assert_eq!(
        s.gateways.keys().collect::<Vec<_>>(),
        ["shop/ingress", "shop/waypoint"]
    );
    assert!(s.gateways["shop/waypoint"].waypoint && !s.gateways["shop/ingress"].waypoint);
    let gw = &s.gateways["shop/ingress"];
    let listeners: Vec<_> = gw
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.port, l.hostname.as_deref()))
        .collect();
    assert_eq!(
        listeners,
        [
            ("http", 8080, None),
            ("shop", 8081, Some("*.shop.example")),
            ("open", 8082, None)
        ]
    );
    let entries: Vec<(String, Vec<u16>, Vec<String>)> = gw
        .http
        .entries
        .iter()
        .map(|e| {
            let rule = &gw.http.rules[e.rule].name;
            let route = rule.split('/').nth(2).unwrap().split(' ').next().unwrap();
            (route.to_string(), e.ports.clone(), e.hostnames.clone())
        })
        .collect();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        entries,
        [
            // Exact host names first, then the longest wildcard, then any host.
            // sectionName `shop` by port: other.example does not overlap *.shop.example.
            ("b-port".into(), vec![8081], strings(&["www.shop.example"])),
            // No sectionName: every HTTP listener; *.example narrows to *.shop.example on it.
            ("c-all".into(), vec![8081], strings(&["*.shop.example"])),
            ("c-all".into(), vec![8080, 8082], strings(&["*.example"])),
            // Another namespace: only the listener that allows all namespaces.
            ("d-elsewhere".into(), vec![8082], vec![]),
            ("a-section".into(), vec![8080], vec![]),
        ]
    );
    // e-disjoint shares no host name with its listener: it attaches nowhere.
    assert!(!gw.http.rules.iter().any(|r| r.name.contains("e-disjoint")));
    // Backends and mirrors default to the route's namespace, not the Gateway's.
    let d = gw
        .http
        .rules
        .iter()
        .find(|r| r.name.contains("d-elsewhere"))
        .unwrap();
    let backends: Vec<_> = d.backends.iter().map(|b| b.service.as_str()).collect();
    assert_eq!(backends, ["web/api", "shop/frontend"]);
    let mirror = d.filters[0].request_mirror.as_ref().unwrap();
    assert_eq!(mirror.backend_ref.namespace.as_deref(), Some("web"));
}

#[test]
fn hostname_intersection_follows_gateway_api() {
    use super::gateway::intersect;
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(intersect(None, &v(&["a.example"])), Some(v(&["a.example"])));
    assert_eq!(intersect(Some("a.example"), &[]), Some(v(&["a.example"])));
    assert_eq!(
        intersect(
            Some("*.example"),
            &v(&["a.example", "example", "b.c.example"])
        ),
        Some(v(&["a.example", "b.c.example"]))
    );
    assert_eq!(
        intersect(Some("a.example"), &v(&["*.example"])),
        Some(v(&["a.example"]))
    );
    assert_eq!(
        intersect(Some("*.example"), &v(&["*.a.example"])),
        Some(v(&["*.a.example"]))
    );
    assert_eq!(intersect(Some("a.example"), &v(&["b.example"])), None);
    assert_eq!(intersect(Some("*.a.example"), &v(&["b.example"])), None);
}

#[test]
fn the_shop_ingress_routes_to_the_frontend() {
    let s = shop();
    let gw = &s.gateways["shop/ingress"];
    assert_eq!(gw.listeners[0].port, 8080);
    assert_eq!(gw.http.entries.len(), 1);
    assert_eq!(gw.http.entries[0].ports, [8080]);
    let b = &gw.http.rules[0].backends[0];
    assert_eq!((b.service.as_str(), b.port), ("shop/frontend", 8080));
}
