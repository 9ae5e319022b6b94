//! The plan's tables: what each configuration turns into, without starting anything.

use super::*;

fn plan(yaml: &str) -> Plan {
    let out = weft_core::parse_str("/cfg/mesh.yaml", yaml);
    assert!(out.is_ok(), "{:?}", out.errors);
    let opts = Options {
        name: "t1".into(),
        weft: "/usr/bin/weft".into(),
        ingress_port: Some(18080),
        admin: "127.0.0.1:15014".parse().unwrap(),
    };
    Plan::new(&out.config, Path::new("/cfg"), &opts).unwrap()
}

const SHOP: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  command: [weft, demo, frontend]
  replicas: 2
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: db, namespace: data, labels: {app: db}, annotations: {weft.dev/hold-application: "false"}}
spec:
  command: python3
  args: [-m, http.server]
  workingDir: srv
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: data}
spec: {selector: {app: db}, ports: [{port: 8000}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: weft
  listeners: [{name: http, port: 8080, protocol: HTTP}, {name: alt, port: 9090, protocol: HTTP}]
"#;

#[test]
fn pods_get_addresses_commands_and_settings() {
    let p = plan(SHOP);
    assert_eq!(p.bridge, "t10");
    assert_eq!(p.host_ip, Ipv4Addr::new(198, 18, 0, 1));
    let names: Vec<String> = p.pods.iter().map(PodPlan::id).collect();
    assert_eq!(names, ["data/db-0", "shop/web-0", "shop/web-1"]);
    let ips: Vec<String> = p.pods.iter().map(|p| p.ip.to_string()).collect();
    assert_eq!(ips, ["198.18.0.2", "198.18.0.3", "198.18.0.4"]);
    let db = &p.pods[0];
    assert_eq!(db.command, ["python3", "-m", "http.server"]);
    assert_eq!(db.cwd, Path::new("/cfg/srv"));
    assert!(!db.hold_application);
    assert!(db.sidecar());
    assert_eq!(db.netns, "t1-data-db-0");
    let web = &p.pods[1];
    assert_eq!(
        web.command[0], "/usr/bin/weft",
        "`weft` means this executable"
    );
    assert!(
        web.hold_application,
        "the app waits for its proxy by default"
    );
    assert!(web.env.contains(&("POD_IP".into(), "198.18.0.3".into())));
}

#[test]
fn names_resolve_per_namespace() {
    let p = plan(SHOP);
    let shop = &p.hosts["shop"];
    let line = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().skip(1).any(|n| n == name))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
    };
    let web_vip = line(shop, "web").expect("bare name in its own namespace");
    assert_eq!(
        line(shop, "web.shop.svc.cluster.local"),
        Some(web_vip.clone())
    );
    assert!(web_vip.starts_with("198.18."), "{web_vip}");
    assert_eq!(
        line(shop, "db"),
        None,
        "bare names only within the namespace"
    );
    assert!(line(shop, "db.data").is_some());
    assert!(line(&p.hosts["data"], "db").is_some());
}

#[test]
fn the_ingress_port_moves_only_the_first_listener() {
    let p = plan(SHOP);
    let g = &p.gateways[0];
    assert_eq!(
        g.listeners,
        [
            (8080, "127.0.0.1:18080".parse().unwrap()),
            (9090, "127.0.0.1:9090".parse().unwrap())
        ]
    );
}

#[test]
fn overlapping_ranges_and_bad_names_are_refused() {
    let yaml = "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: mesh}\nspec: {network: {podCidr: 198.18.0.0/16, serviceCidr: 198.18.128.0/17}}\n";
    let out = weft_core::parse_str("m.yaml", yaml);
    let opts = Options {
        name: "t1".into(),
        weft: "weft".into(),
        ingress_port: None,
        admin: "127.0.0.1:15014".parse().unwrap(),
    };
    let e = Plan::new(&out.config, Path::new("."), &opts).unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
    assert!(check_name("Weft").is_err());
    assert!(check_name("toolongname").is_err());
    assert!(check_name("weft2").is_ok());
}

const MODES: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {network: {nodes: 2}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {weft.dev/dataplane-mode: ambient}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {command: [web], replicas: 3}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api, namespace: shop, labels: {app: api, weft.dev/dataplane-mode: sidecar}}
spec: {command: [api], replicas: 2}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: legacy, namespace: shop, labels: {app: legacy, weft.dev/dataplane-mode: none}}
spec: {command: [legacy], nodeName: node-2}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: db, namespace: data}
spec: {command: [db]}
"#;

#[test]
fn each_pod_has_its_mode_the_workloads_label_over_the_namespaces() {
    let p = plan(MODES);
    let modes: Vec<(String, &str)> = p.pods.iter().map(|p| (p.id(), mode_name(p.mode))).collect();
    assert_eq!(
        modes,
        [
            ("data/db-0".to_string(), "sidecar"),
            ("shop/api-0".to_string(), "sidecar"),
            ("shop/api-1".to_string(), "sidecar"),
            ("shop/legacy-0".to_string(), "none"),
            ("shop/web-0".to_string(), "ambient"),
            ("shop/web-1".to_string(), "ambient"),
            ("shop/web-2".to_string(), "ambient"),
        ]
    );
    let web = &p.pods[4];
    assert!(web.ambient() && web.captured() && !web.sidecar());
    assert!(!p.pods[3].captured());
}

#[test]
fn replicas_spread_over_the_nodes_and_a_pinned_workload_stays_on_its_node() {
    let p = plan(MODES);
    assert_eq!(p.nodes, ["node-1", "node-2"]);
    let on = |prefix: &str| -> Vec<&str> {
        p.pods
            .iter()
            .filter(|x| x.id().starts_with(prefix))
            .map(|x| x.node.as_str())
            .collect()
    };
    // In plan order: db, api ×2, legacy (pinned), web ×3.
    assert_eq!(on("data/db"), ["node-1"]);
    assert_eq!(on("shop/api"), ["node-2", "node-1"]);
    assert_eq!(on("shop/legacy"), ["node-2"]);
    assert_eq!(on("shop/web"), ["node-2", "node-1", "node-2"]);
    // The control plane is told each pod's node.
    assert_eq!(p.pods[1].pod().node, "node-2");
    assert!(p.pods[1].pod().ready);
    // One node by default.
    let one = plan(SHOP);
    assert_eq!(one.nodes, ["node-1"]);
    assert!(one.pods.iter().all(|x| x.node == "node-1"));
}

#[test]
fn the_summary_counts_pods_by_mode_and_ambient_pods_by_node() {
    assert_eq!(
        plan(MODES).summary(),
        "7 pods: 3 with a sidecar, 3 ambient (node-1: 1, node-2: 2), 1 without a proxy"
    );
    assert_eq!(
        plan(SHOP).summary(),
        "3 pods: 3 with a sidecar, none ambient, none without a proxy"
    );
}

#[test]
fn a_workload_pinned_to_a_node_the_mesh_lacks_is_refused() {
    let yaml = MODES.replace("nodeName: node-2", "nodeName: node-7");
    let out = weft_core::parse_str("/cfg/mesh.yaml", &yaml);
    let opts = Options {
        name: "t1".into(),
        weft: "weft".into(),
        ingress_port: None,
        admin: "127.0.0.1:15014".parse().unwrap(),
    };
    let e = Plan::new(&out.config, Path::new("/cfg"), &opts).unwrap_err();
    assert!(
        e.to_string().contains(
            "Workload shop/legacy: spec.nodeName \"node-7\" is not a node of this mesh; its nodes are node-1, node-2"
        ),
        "{e}"
    );
}

#[test]
fn each_waypoint_runs_in_a_pod_of_its_own_labelled_with_its_name() {
    let yaml = format!(
        "{SHOP}---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n\
metadata: {{name: wp, namespace: shop}}\nspec:\n  gatewayClassName: weft-waypoint\n  \
listeners: [{{name: mesh, port: 15008, protocol: HBONE}}]\n"
    );
    let p = plan(&yaml);
    let wp = p.pod("shop/wp-0").expect("the waypoint's pod");
    assert!(wp.waypoint && !wp.captured() && !wp.sidecar());
    assert_eq!(wp.mode_label(), "waypoint");
    assert_eq!(
        wp.service_account, "wp",
        "its identity is the Gateway's name"
    );
    assert_eq!(
        wp.labels.get(weft_core::annotations::GATEWAY_NAME),
        Some(&"wp".to_string())
    );
    assert!(p.summary().ends_with(", 1 waypoint"), "{}", p.summary());
    // It is the endpoint of its waypoint's Service.
    let snap = weft_core::model::Snapshot::build(
        &weft_core::parse_str("/cfg/mesh.yaml", &yaml).config,
        &[wp.pod()],
    );
    assert_eq!(snap.services["shop/wp"].endpoints[0].pod, "wp-0");
}
