//! Waypoints in the served model: which Services and pods use one, the waypoint's own Service
//! and policies, and what the pods behind it admit.

use std::collections::BTreeMap;

use super::tests::pod;
use super::*;
use crate::load::parse_str;

const MESH: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {weft.dev/dataplane-mode: ambient, weft.dev/use-waypoint: wp}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wl, namespace: shop, labels: {weft.dev/waypoint-for: workload}}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: pricing, namespace: shop}
spec: {command: [x]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: cart, namespace: shop, labels: {app: cart, weft.dev/use-waypoint: wl}}
spec: {command: [x]}
---
apiVersion: v1
kind: Service
metadata: {name: pricing, namespace: shop}
spec: {selector: {app: pricing}, ports: [{port: 80, appProtocol: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop, labels: {weft.dev/use-waypoint: none}}
spec: {selector: {app: cart}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: typo, namespace: shop, labels: {weft.dev/use-waypoint: nosuch}}
spec: {selector: {app: typo}, ports: [{port: 80}]}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: pricing}]
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: everything, namespace: shop}
spec:
  action: DENY
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: wp}]
  rules: [{to: [{operation: {paths: [/admin]}}]}]
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: selected, namespace: shop}
spec:
  selector: {matchLabels: {app: pricing}}
  rules: [{from: [{source: {namespaces: [shop]}}]}]
"#;

const CART: &[(&str, &str)] = &[("app", "cart"), ("weft.dev/use-waypoint", "wl")];

fn labelled(mut p: Pod, labels: &[(&str, &str)]) -> Pod {
    p.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    p
}

fn snapshot() -> Snapshot {
    let out = parse_str("/cfg/mesh.yaml", MESH);
    assert!(out.is_ok(), "{:#?}", out.errors);
    let pods = [
        labelled(pod("pricing", 1, "pricing"), &[("app", "pricing")]),
        labelled(pod("cart", 2, "cart"), CART),
        labelled(
            pod("wp", 3, "wp"),
            &[("gateway.networking.k8s.io/gateway-name", "wp")],
        ),
    ];
    Snapshot::build(&out.config, &pods)
}

fn spiffe(sa: &str) -> String {
    format!("spiffe://cluster.local/ns/shop/sa/{sa}")
}

#[test]
fn services_use_the_waypoint_their_own_label_or_their_namespace_names() {
    let s = snapshot();
    let pricing = s.services["shop/pricing"]
        .waypoint
        .clone()
        .expect("namespace label");
    assert_eq!(pricing.service, "shop/wp");
    assert_eq!(pricing.identity, spiffe("wp"));
    // `none` on the Service beats the namespace's label.
    assert_eq!(s.services["shop/cart"].waypoint, None);
    // A label naming no waypoint still sends traffic there: it fails closed.
    assert_eq!(
        s.services["shop/typo"]
            .waypoint
            .as_ref()
            .map(|w| w.service.as_str()),
        Some("shop/nosuch")
    );
}

#[test]
fn a_waypoint_has_a_service_of_its_name_whose_endpoints_are_its_pods() {
    let s = snapshot();
    let wp = &s.services["shop/wp"];
    assert_eq!(wp.waypoint, None, "a waypoint never uses a waypoint");
    assert_eq!(wp.ports[0].port, TUNNEL_PORT);
    let eps: Vec<_> = wp.endpoints.iter().map(|e| e.pod.as_str()).collect();
    assert_eq!(eps, ["wp-3"]);
    let ep = &wp.endpoints[0];
    assert_eq!(ep.tunnel, Some("198.18.0.13:15008".parse().unwrap()));
    assert_eq!(ep.identity, spiffe("wp"));
    assert!(s.is_waypoint_pod(&labelled(
        pod("wp", 3, "wp"),
        &[("gateway.networking.k8s.io/gateway-name", "wp")]
    )));
}

#[test]
fn pods_behind_a_waypoint_admit_only_its_identity() {
    let s = snapshot();
    let pricing = s.proxy(&labelled(
        pod("pricing", 1, "pricing"),
        &[("app", "pricing")],
    ));
    assert_eq!(pricing.waypoints, [spiffe("wp")]);
    // Selected policies stay with the pod; attached ones go to the waypoint.
    let names: Vec<_> = pricing
        .authorization
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["shop/selected"]);
    // cart's Service opts out, but its Workload uses a workload waypoint.
    let cart = s.proxy(&labelled(pod("cart", 2, "cart"), CART));
    assert_eq!(cart.waypoints, [spiffe("wl")]);
    let by_address = s.address("198.18.0.12".parse().unwrap()).unwrap();
    let ep = by_address.pod.expect("a pod address");
    assert_eq!(ep.waypoint.map(|w| w.service), Some("shop/wl".to_string()));
    // A service waypoint is not used for a pod's own address.
    let by_address = s.address("198.18.0.11".parse().unwrap()).unwrap();
    assert_eq!(by_address.pod.unwrap().waypoint, None);
}

#[test]
fn a_waypoint_gets_the_policies_attached_to_it_and_to_its_services() {
    let s = snapshot();
    let wp = &s.gateways["shop/wp"];
    assert!(wp.waypoint);
    assert_eq!(wp.listeners[0].port, TUNNEL_PORT);
    let policies: Vec<_> = wp
        .authorization
        .iter()
        .map(|p| (p.name.as_str(), p.services.clone()))
        .collect();
    assert_eq!(
        policies,
        [
            ("shop/get-only", vec!["shop/pricing".to_string()]),
            ("shop/everything", vec![]),
        ]
    );
    assert!(s.gateways["shop/wl"].authorization.is_empty());
}

#[test]
fn waypoints_are_summarized_with_their_instances_users_and_policies() {
    let s = snapshot();
    let all = s.waypoints();
    let names: Vec<_> = all.iter().map(|w| (w.name.as_str(), w.exists)).collect();
    assert_eq!(
        names,
        [("shop/nosuch", false), ("shop/wl", true), ("shop/wp", true)]
    );
    let wp = &all[2];
    assert_eq!(
        wp.instances,
        [("wp-3".to_string(), "198.18.0.13:15008".to_string())]
    );
    assert_eq!(wp.services, ["shop/pricing"]);
    assert_eq!(wp.policies, ["shop/get-only", "shop/everything"]);
    assert_eq!(all[0].services, ["shop/typo"]);
    assert_eq!(all[1].handles, crate::annotations::WaypointFor::Workload);
}
