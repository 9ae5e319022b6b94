//! The change table: what each edit of a Workload (or of the Mesh) does to a running mesh.

use std::path::Path;

use weft_core::annotations::DataplaneMode::{Ambient, Sidecar};

use super::*;
use crate::plan::Options;

fn opts() -> Options {
    Options {
        name: "ch".into(),
        weft: "/usr/bin/weft".into(),
        ingress_port: None,
        admin: "127.0.0.1:15014".parse().unwrap(),
    }
}

fn config(yaml: &str) -> weft_core::Config {
    let out = weft_core::parse_str("/cfg/mesh.yaml", yaml);
    assert!(out.is_ok(), "{:?}", out.errors);
    out.config
}

fn running(yaml: &str) -> Plan {
    Plan::new(&config(yaml), Path::new("/cfg"), &opts()).unwrap()
}

/// The change from the plan running `from` to configuration `to`.
fn change(from: &Plan, to: &str) -> Change {
    let wanted = Plan::next(&config(to), Path::new("/cfg"), &opts(), from).unwrap();
    diff(from, &wanted)
}

const SHOP: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog, namespace: shop, labels: {app: catalog}}
spec:
  command: [weft, demo, catalog]
  serviceAccountName: catalog
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: frontend, namespace: shop, labels: {app: frontend}}
spec:
  command: [weft, demo, frontend]
  env: [{name: CATALOG_URL, value: "http://catalog:8080"}]
  replicas: 2
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: weft
  listeners: [{name: http, port: 8080, protocol: HTTP}]
"#;

fn ids(p: &Plan, pods: &[usize]) -> Vec<String> {
    pods.iter().map(|i| p.pods[*i].id()).collect()
}

#[test]
fn the_same_configuration_changes_nothing() {
    let p = running(SHOP);
    let c = change(&p, SHOP);
    assert!(c.is_empty() && c.refused.is_empty(), "{c:?}");
}

#[test]
fn more_replicas_add_pods_and_fewer_remove_the_highest_ordinals_first() {
    let p = running(SHOP);
    let three = SHOP.replace(
        "serviceAccountName: catalog",
        "serviceAccountName: catalog\n  replicas: 3",
    );
    let c = change(&p, &three);
    let added: Vec<(String, String)> = (c.added.iter())
        .map(|p| (p.id(), p.ip.to_string()))
        .collect();
    // New addresses after every running pod's; nobody else moves.
    assert_eq!(
        added,
        [
            ("shop/catalog-1".to_string(), "198.18.0.5".to_string()),
            ("shop/catalog-2".to_string(), "198.18.0.6".to_string()),
        ]
    );
    assert!(c.removed.is_empty() && c.restarts.is_empty() && c.switches.is_empty());

    let big = running(&three);
    let c = change(&big, SHOP);
    assert_eq!(ids(&big, &c.removed), ["shop/catalog-2", "shop/catalog-1"]);
    assert!(c.added.is_empty() && c.restarts.is_empty(), "{c:?}");
    // A Workload gone: all its pods go.
    let without = SHOP.split("---").skip(1).collect::<Vec<_>>().join("---");
    let c = change(&big, &without);
    assert_eq!(
        ids(&big, &c.removed),
        ["shop/catalog-2", "shop/catalog-1", "shop/catalog-0"]
    );
}

#[test]
fn a_removed_pod_is_neither_running_nor_removed_again() {
    let mut p = running(SHOP);
    p.pods[0].removed = true;
    let without = SHOP.split("---").skip(1).collect::<Vec<_>>().join("---");
    let c = change(&p, &without);
    assert!(c.is_empty(), "{c:?}");
    // And back: a new pod of the same name, at a free address.
    let c = change(&p, SHOP);
    assert_eq!(c.added.len(), 1);
    assert_eq!(c.added[0].id(), "shop/catalog-0");
}

#[test]
fn a_changed_spec_restarts_each_pod_and_says_what_changed() {
    let p = running(SHOP);
    let env = SHOP.replace("http://catalog:8080", "http://catalog.shop:8080");
    let c = change(&p, &env);
    let restarts: Vec<(String, Vec<&str>)> = (c.restarts.iter())
        .map(|r| (p.pods[r.pod].id(), r.changed.clone()))
        .collect();
    assert_eq!(
        restarts,
        [
            ("shop/frontend-0".to_string(), vec!["env"]),
            ("shop/frontend-1".to_string(), vec!["env"]),
        ]
    );
    // The pod it becomes keeps its address.
    assert_eq!(c.restarts[0].to.ip, p.pods[1].ip);
    assert!(c.switches.is_empty() && c.added.is_empty() && c.refused.is_empty());

    let many = SHOP
        .replace("[weft, demo, catalog]", "[weft, demo, catalog2]")
        .replace("serviceAccountName: catalog", "serviceAccountName: shop")
        .replace(
            "ports: [{name: http, containerPort: 8080}]\n---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: frontend",
            "ports: [{name: http, containerPort: 9090}]\n---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: frontend",
        )
        .replace(
            "metadata: {name: catalog, namespace: shop, labels: {app: catalog}}",
            "metadata: {name: catalog, namespace: shop, labels: {app: catalog}, annotations: {weft.dev/log-level: debug}}",
        );
    let c = change(&p, &many);
    assert_eq!(c.restarts.len(), 1, "{c:?}");
    assert_eq!(
        c.restarts[0].changed,
        [
            "command",
            "ports",
            "serviceAccountName",
            "proxy annotations"
        ]
    );
}

#[test]
fn a_new_mode_or_labels_switch_the_pod_and_labels_with_a_new_spec_restart_it() {
    let p = running(SHOP);
    let ambient = SHOP.replace(
        "labels: {app: catalog}",
        "labels: {app: catalog, weft.dev/dataplane-mode: ambient}",
    );
    let c = change(&p, &ambient);
    let s: Vec<_> = (c.switches.iter())
        .map(|(s, to)| (p.pods[s.pod].id(), s.from, s.to, s.labels, to.mode))
        .collect();
    assert_eq!(
        s,
        [(
            "shop/catalog-0".to_string(),
            Sidecar,
            Ambient,
            true,
            Ambient
        )]
    );
    assert!(c.restarts.is_empty());

    let labels = SHOP.replace("labels: {app: frontend}", "labels: {app: frontend, v: b}");
    let c = change(&p, &labels);
    assert_eq!(c.switches.len(), 2);
    // New labels and a new env: the restart puts both in force, no switch first.
    let both = labels.replace("http://catalog:8080", "http://catalog.shop:8080");
    let c = change(&p, &both);
    assert!(c.switches.is_empty(), "{:?}", c.switches);
    assert_eq!(c.restarts.len(), 2);
    assert_eq!(c.restarts[0].to.labels["v"], "b");
}

#[test]
fn what_the_running_mesh_cannot_change_is_refused_by_name() {
    let p = running(SHOP);
    let mesh = format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {{name: mesh}}\nspec: {{trustDomain: other.local, network: {{nodes: 2}}}}\n---\n{SHOP}"
    );
    let c = change(&p, &mesh);
    assert_eq!(
        c.refused,
        [
            "Mesh spec.network.nodes: 1 → 2: weft up sets it up when it starts; restart weft up \
             (weft down, then weft up) to apply it",
            "Mesh spec.trustDomain: cluster.local → other.local: weft up sets it up when it \
             starts; restart weft up (weft down, then weft up) to apply it",
        ]
    );
    // Two nodes in the configuration, one running: the pods stay where they are.
    assert!(c.is_empty(), "{c:?}");

    let port = SHOP.replace("port: 8080, protocol: HTTP", "port: 9080, protocol: HTTP");
    let c = change(&p, &port);
    assert_eq!(c.refused.len(), 1);
    assert!(
        c.refused[0].starts_with(
            "ingress Gateways: shop/ingress (ports 8080) → shop/ingress (ports 9080): "
        ),
        "{:?}",
        c.refused
    );
}

#[test]
fn a_running_pod_is_not_moved_to_another_node() {
    let two = format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {{name: mesh}}\nspec: {{network: {{nodes: 2}}}}\n---\n{SHOP}"
    );
    let p = running(&two);
    // A new replica planned first would shift the turns of every later pod: nobody moves.
    let more = two.replace(
        "serviceAccountName: catalog",
        "serviceAccountName: catalog\n  replicas: 2",
    );
    let c = change(&p, &more);
    assert_eq!(c.added.len(), 1);
    assert!(c.restarts.is_empty() && c.refused.is_empty(), "{c:?}");
    // A node the Workload names now is refused, and the pod stays.
    let pinned = two.replace(
        "serviceAccountName: catalog",
        "serviceAccountName: catalog\n  nodeName: node-2",
    );
    let c = change(&p, &pinned);
    assert_eq!(
        c.refused,
        [
            "Workload shop/catalog spec.nodeName: node-1 → node-2: a running pod stays on the node \
          it started on; give the Workload another name to start its pods there, or restart \
          weft up"
        ]
    );
    assert!(c.is_empty(), "{c:?}");
}
