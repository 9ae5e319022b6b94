//! Local rate limits in the served model: a TrafficPolicy's `localRateLimit` reaches the
//! sidecars of the Service's pods, or the Service's waypoint when it has one (never both), and
//! a change to it alone reaches those proxies.

use std::collections::BTreeMap;

use super::tests::pod;
use super::*;
use crate::load::parse_str;

fn mesh(requests: u32) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: wp, namespace: shop}}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{{name: mesh, port: 15008, protocol: HBONE}}]
---
apiVersion: v1
kind: Service
metadata: {{name: pricing, namespace: shop}}
spec: {{selector: {{app: pricing}}, ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: cart, namespace: shop, labels: {{weft.dev/use-waypoint: wp}}}}
spec: {{selector: {{app: cart}}, ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: plain, namespace: shop}}
spec: {{selector: {{app: plain}}, ports: [{{port: 80, targetPort: 8080}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {{name: limits, namespace: shop}}
spec:
  targetRefs: [{{kind: Service, name: pricing}}, {{kind: Service, name: cart}}]
  localRateLimit: {{requests: {requests}, per: 1m}}
"#
    )
}

fn labelled(workload: &str, n: u8) -> Pod {
    let mut p = pod(workload, n, workload);
    p.labels = BTreeMap::from([("app".to_string(), workload.to_string())]);
    p
}

fn pods() -> [Pod; 3] {
    [
        labelled("pricing", 1),
        labelled("cart", 2),
        labelled("plain", 3),
    ]
}

fn config(requests: u32) -> crate::load::Config {
    let out = parse_str("/cfg/mesh.yaml", &mesh(requests));
    assert!(out.is_ok(), "{:#?}", out.errors);
    out.config
}

#[test]
fn the_limit_reaches_the_pods_sidecar_or_the_services_waypoint_not_both() {
    let s = Snapshot::build(&config(5), &pods());
    let limit: LocalRateLimit = LocalRateLimit {
        requests: 5,
        per: "1m".parse().unwrap(),
        burst: None,
    };
    let [pricing, cart, plain] = pods();
    assert_eq!(
        s.proxy(&pricing).local_rate_limits,
        BTreeMap::from([("shop/pricing".to_string(), limit)])
    );
    // cart's waypoint enforces its limit: its pods do not count the same requests again.
    assert!(s.proxy(&cart).local_rate_limits.is_empty());
    assert!(s.proxy(&plain).local_rate_limits.is_empty());
    let wp = s.gateways.get("shop/wp").expect("the waypoint's config");
    assert_eq!(
        wp.local_rate_limits,
        BTreeMap::from([("shop/cart".to_string(), limit)])
    );
    assert_eq!(s.services["shop/pricing"].local_rate_limit, Some(limit));
}

#[test]
fn changing_only_the_limit_reaches_the_pods_that_enforce_it() {
    let [pricing, _, plain] = pods();
    let before = Snapshot::build(&config(5), &pods());
    let g = before.generation();
    let after = before.reconfigure(&config(50));
    assert_eq!(
        after.proxy(&pricing).local_rate_limits["shop/pricing"].requests,
        50
    );
    assert_eq!(after.pod_changed_after(&pricing.id, g), Some(true));
    assert_eq!(after.pod_changed_after(&plain.id, g), Some(false));
    let gateways: Vec<&str> = after.changed_gateways(g).expect("known").collect();
    assert_eq!(gateways, ["shop/wp"]);
    assert_eq!(
        after.gateways["shop/wp"].local_rate_limits["shop/cart"].requests,
        50
    );
}
