//! Pods applied one at a time: the encoding cache and `proxy()` give what a fresh
//! serialization gives, order does not matter, and changes are reported where they happened.

use std::sync::Arc;

use super::tests::pod;
use super::*;
use crate::load::{Config, load_paths};

fn shop() -> Config {
    let out = load_paths(&[concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/shop")]);
    assert!(out.is_ok(), "{:#?}", out.errors);
    out.config
}

fn pods() -> Vec<Pod> {
    vec![
        pod("pricing-v2", 2, "pricing"),
        pod("pricing-v1", 1, "pricing"),
        pod("frontend", 3, "frontend"),
        pod("cart", 4, "cart"),
    ]
}

/// What the discovery stream computed for every resource before the cache: a JSON value, its
/// bytes and `version_of` the value.
fn streamed<T: serde::Serialize>(resource: &T) -> (String, Vec<u8>) {
    let value = serde_json::to_value(resource).unwrap();
    (version_of(&value), serde_json::to_vec(&value).unwrap())
}

#[test]
fn encoded_services_match_a_fresh_serialization_and_are_computed_once() {
    let s = Snapshot::build(&shop(), &pods());
    for (key, svc) in &s.services {
        let encoded = s.encoded(key).unwrap();
        let (version, body) = streamed(&**svc);
        assert_eq!(encoded.body, body, "{key}");
        assert_eq!(encoded.version, version, "{key}");
        assert_eq!(encoded.version, version_of(&**svc), "{key}");
        assert!(Arc::ptr_eq(&encoded, &s.encoded(key).unwrap()), "{key}");
    }
    assert!(s.encoded("shop/nothing").is_none());
}

#[test]
fn a_changed_service_is_encoded_anew_and_an_unchanged_one_is_shared() {
    let mut s = Snapshot::build(&shop(), &pods());
    let before = s.clone();
    let (pricing, cart) = (before.encoded("shop/pricing"), before.encoded("shop/cart"));
    s.remove_pod("pricing-v1-1.shop");
    let now = s.encoded("shop/pricing").unwrap();
    assert_ne!(Some(&now), pricing.as_ref());
    assert_eq!(now.version, streamed(&*s.services["shop/pricing"]).0);
    assert!(Arc::ptr_eq(
        &cart.unwrap(),
        &s.encoded("shop/cart").unwrap()
    ));
    assert!(Arc::ptr_eq(
        &before.services["shop/cart"],
        &s.services["shop/cart"]
    ));
}

#[test]
fn proxy_config_from_the_index_matches_a_full_build() {
    let config = shop();
    let mut s = Snapshot::build(&config, &[]);
    for p in pods() {
        s.set_pod(p);
    }
    let full = Snapshot::build(&config, &pods());
    let p = pod("pricing-v1", 1, "pricing");
    let proxy = s.proxy(&p);
    assert_eq!(streamed(&proxy), streamed(&full.proxy(&p)));
    assert_eq!(
        proxy.inbound_ports,
        [PortConfig {
            port: 8080,
            name: None,
            protocol: Protocol::Http
        }]
    );
    // A pod that left has no inbound ports, whatever Services it was an endpoint of.
    s.remove_pod(&p.id);
    assert!(s.proxy(&p).inbound_ports.is_empty());
}

#[test]
fn endpoints_and_address_owners_do_not_depend_on_arrival_order() {
    let config = shop();
    let mut twin = pod("pricing-v1", 9, "pricing");
    twin.ip = pod("pricing-v1", 1, "pricing").ip;
    let mut forward = pods();
    forward.push(twin);
    let backward: Vec<Pod> = forward.iter().rev().cloned().collect();
    let (a, b) = (
        Snapshot::build(&config, &forward),
        Snapshot::build(&config, &backward),
    );
    assert_eq!(a.services, b.services);
    assert_eq!(a.pods, b.pods);
    let ids: Vec<_> = a.services["shop/pricing"]
        .endpoints
        .iter()
        .map(|e| e.pod.as_str())
        .collect();
    assert_eq!(ids, ["pricing-v1-1", "pricing-v1-9", "pricing-v2-2"]);
    let ip = forward[1].ip;
    assert_eq!(
        a.pods[&ip].pod, "pricing-v1-1",
        "the smaller id owns the address"
    );
}

#[test]
fn changes_name_what_a_pod_touched() {
    let config = shop();
    let mut s = Snapshot::build(&config, &pods());
    let g = s.generation();
    s.set_pod(pod("pricing-v2", 5, "pricing"));
    let services: Vec<&str> = s.changed_services(g).unwrap().collect();
    assert_eq!(services, ["shop/pricing-v2", "shop/pricing"]);
    let ip = pod("pricing-v2", 5, "pricing").ip;
    assert_eq!(s.changed_addresses(g).unwrap().collect::<Vec<_>>(), [ip]);
    assert_eq!(
        s.changed_pods(g).unwrap().collect::<Vec<_>>(),
        ["pricing-v2-5.shop"]
    );
    assert_eq!(s.pod_changed_after("pricing-v2-5.shop", g), Some(true));
    assert_eq!(s.pod_changed_after("pricing-v1-1.shop", g), Some(false));
    // Setting the same pod again and removing an unknown one change nothing.
    let g = s.generation();
    s.set_pod(pod("pricing-v2", 5, "pricing"));
    s.remove_pod("nobody");
    assert_eq!(s.generation(), g);
    assert_eq!(s.changed_services(g).unwrap().count(), 0);
    // After a full rebuild, what changed since an older generation is unknown.
    let rebuilt = s.rebuild(&config);
    assert!(rebuilt.generation() > g);
    assert!(rebuilt.changed_services(g).is_none());
    assert!(rebuilt.pod_changed_after("pricing-v2-5.shop", g).is_none());
    assert_eq!(
        rebuilt
            .changed_services(rebuilt.generation())
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn a_pod_that_is_not_ready_is_known_but_no_endpoint() {
    let config = shop();
    let mut waiting = pod("pricing-v2", 2, "pricing");
    waiting.ready = false;
    waiting.node = "node-1".into();
    let mut s = Snapshot::build(&config, &[pod("pricing-v1", 1, "pricing"), waiting.clone()]);
    let endpoints = |s: &Snapshot| -> Vec<String> {
        s.services["shop/pricing"]
            .endpoints
            .iter()
            .map(|e| e.pod.clone())
            .collect()
    };
    assert_eq!(endpoints(&s), ["pricing-v1-1"]);
    assert!(s.services["shop/pricing-v2"].endpoints.is_empty());
    // Known all the same: its proxy's configuration and its address.
    assert_eq!(s.pod("pricing-v2-2.shop"), Some(&waiting));
    assert!(s.pods.contains_key(&waiting.ip));
    // Once ready, an endpoint like any other.
    waiting.ready = true;
    s.set_pod(waiting);
    assert_eq!(endpoints(&s), ["pricing-v1-1", "pricing-v2-2"]);
    // The pods file says so only when it is false.
    let json = serde_json::to_value(pod("cart", 4, "cart")).unwrap();
    assert!(json.get("ready").is_none(), "{json}");
    let listed: Pod = serde_json::from_value(json).unwrap();
    assert!(listed.ready);
}
