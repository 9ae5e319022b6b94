use std::collections::BTreeMap;

use super::*;
use crate::duration::Duration;
use crate::load::{load_paths, parse_str};
use crate::model::tests::pod;

fn shop(pods: &[Pod]) -> Snapshot {
    let out = load_paths(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/shop")]);
    assert!(out.is_ok(), "{:#?}", out.errors);
    Snapshot::build(&out.config, pods)
}

fn shop_pods() -> Vec<Pod> {
    let not_ready = Pod {
        ready: false,
        ..pod("pricing-v2", 4, "pricing")
    };
    vec![
        pod("pricing-v1", 1, "pricing"),
        pod("pricing-v2", 2, "pricing"),
        pod("frontend", 3, "frontend"),
        not_ready,
    ]
}

fn route<'a>(e: &'a Effective, name: &str) -> &'a RouteConfig {
    (e.routes.iter().find(|r| r.name == name)).unwrap_or_else(|| panic!("no route {name}"))
}

fn cluster<'a>(e: &'a Effective, name: &str) -> &'a Cluster {
    (e.clusters.iter().find(|c| c.name == name)).unwrap_or_else(|| panic!("no cluster {name}"))
}

#[test]
fn a_sidecar_gets_every_service_it_can_call_not_only_those_it_asked_for() {
    let s = shop(&shop_pods());
    let e = s.effective(Target::Pod("frontend-3.shop")).unwrap();
    assert_eq!(e.proxy.role, Role::Sidecar);
    assert_eq!(
        e.proxy.identity.as_deref(),
        Some("spiffe://shop.local/ns/shop/sa/frontend")
    );

    // Routes: a Service without routes is its own backend; pricing's split with its timeout
    // and retries.
    let catalog = route(&e, "shop/catalog:8080");
    assert_eq!(catalog.entries.len(), 1);
    assert_eq!(catalog.entries[0].rule, "default");
    assert_eq!(catalog.entries[0].backends[0].service, "shop/catalog");
    assert!(
        catalog
            .domains
            .contains(&"catalog.shop.svc.cluster.local".to_string())
    );
    route(&e, "shop/cart:8080");
    let pricing = route(&e, "shop/pricing:8080");
    let split: Vec<(&str, u32)> = (pricing.entries[0].backends.iter())
        .map(|b| (b.service.as_str(), b.weight))
        .collect();
    assert_eq!(split, [("shop/pricing-v1", 90), ("shop/pricing-v2", 10)]);
    assert_eq!(
        pricing.entries[0].rule,
        "HTTPRoute/shop/pricing-split rule 0"
    );
    assert_eq!(pricing.entries[0].timeout, Some(Duration::from_secs(2)));
    assert_eq!(
        pricing.entries[0].retry.as_ref().map(|r| r.attempts),
        Some(2)
    );

    // Clusters: each version's, and pricing's with its TrafficPolicy and the identity its
    // endpoints prove.
    let p = cluster(&e, "outbound|8080||pricing.shop.svc.cluster.local");
    assert_eq!(p.traffic_policies, ["shop/pricing"]);
    assert_eq!(p.tls, Tls::Mtls);
    assert_eq!(p.identities, ["spiffe://shop.local/ns/shop/sa/pricing"]);
    assert_eq!(p.endpoints, 2);
    assert!(p.version.is_some());
    cluster(&e, "outbound|8080||pricing-v1.shop.svc.cluster.local");
    cluster(&e, "outbound|8080||pricing-v2.shop.svc.cluster.local");
    let inbound = cluster(&e, "inbound|8080||");
    assert_eq!(
        (inbound.direction, inbound.service.as_str()),
        (Direction::Inbound, "shop/frontend")
    );

    // Endpoints: ready pods healthy, a selected pod that is not ready unhealthy.
    let of_pricing: Vec<(String, Health, &str)> = (e.endpoints.iter())
        .filter(|x| x.cluster == "outbound|8080||pricing.shop.svc.cluster.local")
        .map(|x| (x.address.to_string(), x.health, x.pod.as_str()))
        .collect();
    assert_eq!(
        of_pricing,
        [
            (
                "198.18.0.11:8080".into(),
                Health::Healthy,
                "shop/pricing-v1-1"
            ),
            (
                "198.18.0.12:8080".into(),
                Health::Healthy,
                "shop/pricing-v2-2"
            ),
            (
                "198.18.0.14:8080".into(),
                Health::Unhealthy,
                "shop/pricing-v2-4"
            ),
        ]
    );
    let v1 = (e.endpoints.iter())
        .find(|x| x.pod == "shop/pricing-v1-1")
        .unwrap();
    assert_eq!(v1.identity, "spiffe://shop.local/ns/shop/sa/pricing");
    assert_eq!(
        v1.tunnel.map(|t| t.to_string()).as_deref(),
        Some("198.18.0.11:15008")
    );

    // Listeners: capture, the tunnel, the pod's port and each Service VIP.
    let listener = |name: &str| e.listeners.iter().find(|l| l.name == name).cloned();
    let app = listener("inbound :8080").expect("the pod's port");
    assert_eq!((app.address.as_str(), app.port), ("198.18.0.13", 8080));
    assert!(app.destination.contains("shop/frontend"), "{app:?}");
    assert_eq!(listener("tunnel").map(|l| l.port), Some(15008));
    assert_eq!(listener("outbound").map(|l| l.port), Some(15001));
    let vip = listener("outbound shop/pricing:8080").unwrap();
    assert_eq!(vip.destination, "Route: shop/pricing:8080");
    assert!(listener("metrics").is_some() && listener("admin").is_some());
}

#[test]
fn a_gateway_routes_its_listeners_and_calls_only_its_backends() {
    let s = shop(&shop_pods());
    let e = s.effective(Target::Gateway("shop/ingress")).unwrap();
    assert_eq!(e.proxy.role, Role::Gateway);
    assert_eq!(e.routes.len(), 1);
    let r = &e.routes[0];
    assert_eq!(
        (r.name.as_str(), r.domains.as_slice()),
        ("shop/ingress:8080", &["*".to_string()][..])
    );
    assert_eq!(r.entries[0].rule, "HTTPRoute/shop/shop rule 0");
    assert_eq!(r.entries[0].backends[0].service, "shop/frontend");
    let clusters: Vec<&str> = e.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(clusters, ["outbound|8080||frontend.shop.svc.cluster.local"]);
    assert_eq!(e.endpoints.len(), 1);
    assert_eq!(e.listeners[0].name, "gateway http");
}

#[test]
fn unknown_targets_say_what_exists() {
    let s = shop(&shop_pods());
    let err = s.effective(Target::Pod("nosuch.shop")).unwrap_err();
    assert_eq!(
        err,
        Error::NoPod {
            id: "nosuch.shop".into()
        }
    );
    let err = s.effective(Target::Gateway("shop/nosuch")).unwrap_err();
    assert!(err.to_string().contains("Gateways: shop/ingress"), "{err}");
    let none = Pod {
        labels: [("weft.dev/dataplane-mode".to_string(), "none".to_string())].into(),
        ..pod("outsider", 5, "default")
    };
    let s = shop(&[none]);
    let err = s.effective(Target::Pod("outsider-5.shop")).unwrap_err();
    assert!(matches!(err, Error::NoProxy { .. }), "{err}");
}

const AMBIENT: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {weft.dev/dataplane-mode: ambient}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: pricing, namespace: shop, labels: {app: pricing}}
spec: {command: [x], ports: [{containerPort: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: pricing, namespace: shop, labels: {weft.dev/use-waypoint: wp}}
spec: {selector: {app: pricing}, ports: [{port: 80, appProtocol: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: shop}
spec: {selector: {app: pricing}, ports: [{port: 9000, targetPort: 80}]}
"#;

fn ambient() -> Snapshot {
    let out = parse_str("/cfg/mesh.yaml", AMBIENT);
    assert!(out.is_ok(), "{:#?}", out.errors);
    let on_node = |mut p: Pod, labels: &[(&str, &str)]| {
        p.node = "node-1".into();
        p.labels = (labels.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        p
    };
    let pods = [
        on_node(pod("pricing", 1, "pricing"), &[("app", "pricing")]),
        on_node(pod("wp", 2, "wp"), &[(GATEWAY_NAME, "wp")]),
    ];
    Snapshot::build(&out.config, &pods)
}

#[test]
fn a_node_proxy_serves_its_pods_on_l4_and_sends_waypointed_services_to_the_waypoint() {
    let s = ambient();
    let e = s.effective(Target::Node("node-1")).unwrap();
    assert_eq!(e.proxy.pods, ["pricing-1.shop"]);
    let tunnel = (e.listeners.iter()).find(|l| l.name == "tunnel").unwrap();
    assert_eq!(tunnel.pod.as_deref(), Some("pricing-1.shop"));
    assert_eq!(
        route(&e, "shop/pricing:80").waypoint.as_deref(),
        Some("shop/wp")
    );
    let echo = route(&e, "shop/echo:9000");
    assert!(echo.entries[0].tcp, "{echo:?}");
    cluster(&e, "inbound|80||pricing-1.shop");

    let pod = s.effective(Target::Pod("pricing-1.shop")).unwrap();
    assert_eq!(
        (pod.proxy.role, pod.proxy.node.as_deref()),
        (Role::Ambient, Some("node-1"))
    );
    assert!(
        pod.listeners.iter().all(|l| l.name != "admin"),
        "the node proxy's"
    );
}

#[test]
fn a_waypoint_routes_the_services_that_use_it() {
    let s = ambient();
    let e = s.effective(Target::Pod("wp-2.shop")).unwrap();
    assert_eq!(e.proxy.role, Role::Waypoint);
    let names: Vec<&str> = e.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["shop/pricing:80"]);
    assert_eq!(e.routes[0].waypoint, None);
    assert_eq!(e.routes[0].entries[0].rule, "default");
    let c = cluster(&e, "outbound|80||pricing.shop.svc.cluster.local");
    assert_eq!(c.waypoint, None, "it is the waypoint");
}

#[test]
fn the_json_reads_back_the_same() {
    let s = shop(&shop_pods());
    let e = s.effective(Target::Pod("frontend-3.shop")).unwrap();
    let json = serde_json::to_string(&e).unwrap();
    let back: Effective = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
}
