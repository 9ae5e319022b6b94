//! `weft proxy-config POD listeners|routes|clusters|endpoints|secrets|all` over `weft up`: before
//! any traffic, when the proxy has fetched nothing, a sidecar's tables already show every
//! Service it can call (what the control plane intends, not what the proxy happened to
//! learn); `-o json` carries the same; the gateway shows its ingress route and where it is
//! bound; an unknown pod is a clear error. After traffic, the proxy's live state (what it
//! fetched) shows beside it. In the ambient shop, a node proxy lists its pods' listeners and
//! the waypoint routes pricing's split.

use std::time::Duration;

use serde_json::Value;
use weft_e2e::{ConfigDir, Mesh, http_get, serial, shop, text};

/// The cells of a table's rows (columns are two or more spaces apart), without notes.
fn rows(out: &str) -> Vec<Vec<String>> {
    (out.lines())
        .filter(|l| !l.starts_with('(') && !l.trim().is_empty())
        .map(|l| {
            (l.split("  ").map(str::trim))
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        })
        .collect()
}

/// `weft proxy-config ARGS`: its stdout, after checking it succeeded.
fn table(mesh: &Mesh, args: &[&str]) -> String {
    let mut all = vec!["proxy-config"];
    all.extend(args);
    let out = mesh.weft(&all);
    assert!(out.status.success(), "weft {all:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(mesh: &Mesh, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = table(mesh, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{all:?}: {e}\n{out}"))
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn proxy_config_shows_the_full_intended_config_before_any_traffic() {
    let _serial = serial();
    let cfg = shop("pcfg", 87);
    let mesh = Mesh::up("pcfg", &cfg.path);
    let pods = mesh.pods();
    let ip = |name: &str| Mesh::pod(&pods, name)["ip"].as_str().unwrap().to_string();

    // The proxy has fetched nothing yet: its own dump holds neither catalog nor cart.
    let dump: Value = serde_json::from_str(&table(&mesh, &["config", "frontend-0"])).unwrap();
    assert!(dump["services"].get("shop/catalog").is_none(), "{dump:#}");

    // Routes: catalog's and cart's (each its own backend), pricing's 90/10 split.
    let routes = table(&mesh, &["frontend-0", "routes"]);
    let r = rows(&routes);
    assert_eq!(
        r[0][..4],
        ["NAME", "DOMAINS", "MATCH", "BACKENDS"],
        "{routes}"
    );
    let route = |name: &str| {
        (r.iter().find(|row| row[0] == name))
            .unwrap_or_else(|| panic!("no route {name}:\n{routes}"))
    };
    assert_eq!(route("shop/catalog:8080")[3], "catalog:8080", "{routes}");
    assert_eq!(route("shop/cart:8080")[3], "cart:8080", "{routes}");
    assert_eq!(
        route("shop/pricing:8080")[3],
        "pricing-v1:8080 90%, pricing-v2:8080 10%",
        "{routes}"
    );

    // Clusters: both versions of pricing, with mTLS to pricing's identity; none fetched yet.
    let clusters = table(&mesh, &["frontend-0", "clusters"]);
    let c = rows(&clusters);
    for fqdn in [
        "pricing-v1.shop.svc.cluster.local",
        "pricing-v2.shop.svc.cluster.local",
    ] {
        let row =
            (c.iter().find(|row| row[0] == fqdn)).unwrap_or_else(|| panic!("{fqdn}:\n{clusters}"));
        assert_eq!(row[6..8], ["mTLS", "shop/pricing"], "{clusters}");
    }
    let catalog = c
        .iter()
        .find(|row| row[0] == "catalog.shop.svc.cluster.local")
        .unwrap();
    assert_eq!(
        catalog.last().unwrap(),
        "no",
        "not fetched yet:\n{clusters}"
    );

    // Endpoints: each pricing pod healthy, with its identity.
    let endpoints = table(&mesh, &["frontend-0", "endpoints"]);
    let e = rows(&endpoints);
    for pod in ["pricing-v1-0", "pricing-v2-0"] {
        let addr = format!("{}:8080", ip(pod));
        let row = (e.iter())
            .find(|row| row[0] == addr && row[3] == "outbound|8080||pricing.shop.svc.cluster.local")
            .unwrap_or_else(|| panic!("no endpoint {addr}:\n{endpoints}"));
        assert_eq!(row[1], "HEALTHY", "{endpoints}");
        assert_eq!(row[4], format!("shop/{pod}"), "{endpoints}");
        assert_eq!(
            row.last().unwrap(),
            "spiffe://shop.local/ns/shop/sa/pricing",
            "{endpoints}"
        );
    }

    // Listeners: the pod's port 8080 and the tunnel.
    let listeners = table(&mesh, &["frontend-0", "listeners"]);
    let l = rows(&listeners);
    let own = ip("frontend-0");
    assert!(
        l.iter().any(|row| row[0] == own && row[1] == "8080"),
        "{listeners}"
    );
    let matcher = (l[0].iter().position(|c| c == "MATCH")).unwrap_or_else(|| panic!("{listeners}"));
    let tunnel = (l.iter().find(|row| row[1] == "15008")).unwrap_or_else(|| panic!("{listeners}"));
    assert_eq!(tunnel[matcher], "mTLS, HTTP/2 CONNECT", "{listeners}");
    // Where the sidecar bound its capture listener, as it reported it.
    let outbound =
        (l.iter().find(|row| row[1] == "15001")).unwrap_or_else(|| panic!("{listeners}"));
    assert_eq!(outbound[2], "127.0.0.1:15001", "{listeners}");

    // `-o json` has the same content.
    let j = json(&mesh, &["frontend-0", "all"]);
    assert_eq!(j["proxy"]["role"], "sidecar", "{j:#}");
    let names: Vec<&str> = (j["routes"].as_array().unwrap().iter())
        .filter_map(|r| r["name"].as_str())
        .collect();
    let table_names: Vec<&str> = r[1..].iter().map(|row| row[0].as_str()).collect::<Vec<_>>();
    for name in &names {
        assert!(table_names.contains(name), "{name} not in\n{routes}");
    }
    let pricing = (j["endpoints"].as_array().unwrap().iter())
        .filter(|x| x["cluster"] == "outbound|8080||pricing.shop.svc.cluster.local")
        .map(|x| {
            (
                x["address"].as_str().unwrap().to_string(),
                x["health"].as_str().unwrap().to_string(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(
        pricing,
        [
            (
                format!("{}:8080", ip("pricing-v1-0")),
                "HEALTHY".to_string()
            ),
            (
                format!("{}:8080", ip("pricing-v2-0")),
                "HEALTHY".to_string()
            ),
        ]
    );
    assert_eq!(
        j["clusters"].as_array().unwrap().len(),
        c.len() - 1,
        "{clusters}"
    );
    assert_eq!(
        j["secrets"]["held"][0]["certificate"]["spiffeId"],
        "spiffe://shop.local/ns/shop/sa/frontend"
    );
    let listed = json(&mesh, &["listeners", "frontend-0"]);
    assert_eq!(listed["listeners"].as_array().unwrap().len(), l.len() - 1);

    // The gateway: its ingress HTTPRoute on its listener.
    let gw = table(&mesh, &["gateway-shop-ingress", "routes"]);
    let g = rows(&gw);
    assert_eq!(
        g[1],
        [
            "shop/ingress:8080",
            "*",
            "/*",
            "frontend:8080",
            "-",
            "-",
            "HTTPRoute/shop/shop rule 0"
        ],
        "{gw}"
    );

    // The gateway's listener is bound where `weft up` put it on the host.
    let gw = table(&mesh, &["gateway-shop-ingress", "listeners"]);
    let bound = format!("127.0.0.1:{}", mesh.ingress_port);
    let g = rows(&gw);
    assert_eq!(g[0][..3], ["ADDRESS", "PORT", "BOUND"], "{gw}");
    assert!(
        g.iter().any(|row| row[1] == "8080" && row[2] == bound),
        "{gw}"
    );

    // Secrets: the workload certificate and the root.
    let secrets = table(&mesh, &["frontend-0", "secrets"]);
    let s = rows(&secrets);
    assert_eq!(
        s[1][..4],
        ["default", "Cert Chain", "ACTIVE", "true"],
        "{secrets}"
    );
    assert_eq!(
        s[1].last().unwrap(),
        "spiffe://shop.local/ns/shop/sa/frontend"
    );
    assert_eq!(s[2][..2], ["ROOTCA", "CA"], "{secrets}");

    // An unknown pod: a clear error and a failing exit.
    let out = mesh.weft(&["proxy-config", "nosuch-0", "routes"]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(
        err.contains("no pod, gateway or node \"nosuch-0\""),
        "{err}"
    );
    assert!(
        err.contains("shop/frontend-0"),
        "the error lists the pods: {err}"
    );

    // Traffic makes the proxy fetch catalog: the live column says so.
    mesh.eventually("the shop answers", Duration::from_secs(30), || {
        matches!(http_get(mesh.ingress_port, "/"), Ok((200, _)))
    });
    mesh.eventually(
        "frontend-0 to have fetched catalog",
        Duration::from_secs(30),
        || {
            // Either frontend pod may have served the request; ask until frontend-0 has.
            let _ = http_get(mesh.ingress_port, "/");
            let clusters = table(&mesh, &["frontend-0", "clusters", "--service", "catalog"]);
            rows(&clusters).iter().any(|row| {
                row[0] == "catalog.shop.svc.cluster.local" && row.last().unwrap() == "yes"
            })
        },
    );
    mesh.down();
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn node_proxies_ambient_pods_and_waypoints_have_their_config_too() {
    let _serial = serial();
    let cfg = ConfigDir::new("pcfgamb").with_example("shop-ambient");
    let mesh_yaml = std::fs::read_to_string(cfg.path.join("mesh.yaml")).unwrap();
    cfg.write(
        "mesh.yaml",
        &mesh_yaml.replace(
            "    nodes: 2",
            "    nodes: 2\n    podCidr: 198.19.87.0/25\n    serviceCidr: 198.19.87.128/25",
        ),
    );
    let mesh = Mesh::up("pcfgamb", &cfg.path);
    let pods = mesh.pods();
    let node = Mesh::pod(&pods, "cart-0")["node"]
        .as_str()
        .unwrap()
        .to_string();

    // The node proxy: the tunnel of each of its pods, in that pod.
    let listeners = table(&mesh, &[&node, "listeners", "--port", "15008"]);
    let l = rows(&listeners);
    assert_eq!(l[0][0], "POD", "{listeners}");
    assert!(l.iter().any(|row| row[0] == "shop/cart-0"), "{listeners}");

    // An ambient pod: L4 only, pricing sent to its waypoint.
    let routes = table(&mesh, &["cart-0", "routes"]);
    let pricing = (rows(&routes).into_iter())
        .find(|row| row[0] == "shop/pricing:8080")
        .unwrap_or_else(|| panic!("{routes}"));
    assert_eq!(
        pricing[3], "waypoint shop/waypoint (its routes apply)",
        "{routes}"
    );
    let j = json(&mesh, &["cart-0", "listeners"]);
    assert_eq!(j["proxy"]["role"], "ambient");
    assert_eq!(j["proxy"]["node"], node.as_str());

    // The waypoint: pricing's 90/10 split is its route.
    let routes = table(&mesh, &["waypoint-0", "routes"]);
    let r = rows(&routes);
    assert_eq!(r.len(), 2, "only pricing uses the waypoint:\n{routes}");
    assert_eq!(r[1][0], "shop/pricing:8080", "{routes}");
    assert_eq!(
        r[1][3], "pricing-v1:8080 90%, pricing-v2:8080 10%",
        "{routes}"
    );

    // Each ambient pod's certificate, as its node proxy holds it.
    let secrets = table(&mesh, &[&node, "secrets"]);
    assert!(
        secrets.contains("spiffe://shop.local/ns/shop/sa/cart"),
        "{secrets}"
    );
    mesh.down();
}
