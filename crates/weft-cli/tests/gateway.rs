//! The ingress gateway role in process: a control plane, sidecars in explicit mode in front of
//! echo backends, and a gateway proxy serving a Gateway's HTTPRoutes on port 0.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use support::*;

const MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: a, namespace: shop, labels: {app: a}}
spec: {command: [a], ports: [{name: http, containerPort: 8080}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: b, namespace: shop, labels: {app: b}}
spec: {command: [b], ports: [{name: http, containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: shop}
spec: {selector: {app: a}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: shop}
spec: {selector: {app: b}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: weft
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
  - {name: admin, port: 9090, protocol: HTTP}
"#;

/// Prefix /a → a, exact /b → b, on the `http` listener only.
const ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: edge, namespace: shop}
spec:
  parentRefs: [{name: ingress, sectionName: http}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /a}}]
    backendRefs: [{name: a, port: 80}]
  - matches: [{path: {type: Exact, value: /b}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-via, value: gateway}]}}]
    backendRefs: [{name: b, port: 80}]
"#;

struct Ingress {
    dir: Dir,
    cp: weft_control::Bound,
    gateway: weft_proxy::gateway::Bound,
    _backends: Vec<(weft_proxy::Bound, Echo)>,
}

async fn start(name: &str) -> Ingress {
    let dir = Dir::new(name);
    dir.write("mesh.yaml", MESH);
    dir.write("route.yaml", ROUTE);
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let mut backends = Vec::new();
    for (workload, label) in [("a", "a"), ("b", "b")] {
        let app = echo(label).await;
        let pod = format!("{workload}-0");
        let p = proxy(cp.discovery, "shop", workload, &pod, None, Some(app.addr)).await;
        backends.push((p, app));
    }
    let gateway = gateway(cp.discovery, "shop/ingress", &[8080, 9090]).await;
    Ingress {
        dir,
        cp,
        gateway,
        _backends: backends,
    }
}

impl Ingress {
    fn http(&self) -> std::net::SocketAddr {
        self.gateway.listeners[&8080]
    }
}

#[tokio::test]
async fn gateway_routes_match_by_path_and_reach_backends_through_their_sidecars() {
    let m = start("gw-routes").await;
    let r = get(m.http(), "shop.example", "/a/items?x=1").await;
    assert_eq!(
        r.status,
        200,
        "{} {:?}",
        r.body,
        r.headers.get("weft-error")
    );
    assert_eq!(r.header("x-server"), "a");
    assert!(r.body.contains("/a/items host=shop.example"), "{}", r.body);
    let r = get(m.http(), "shop.example", "/b").await;
    assert_eq!(r.header("x-server"), "b");
    assert!(
        r.body.contains("x-via=gateway"),
        "filters apply: {}",
        r.body
    );
    // HTTP/2 (prior knowledge) takes the same routes.
    let r = send_h2(
        m.http(),
        http::Request::get("http://shop.example/a")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.header("x-server"), "a", "{}", r.body);

    // Exact /b does not match /b/x, and nothing matches /c: a 404 naming the stage.
    for path in ["/b/x", "/c"] {
        let r = get(m.http(), "shop.example", path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.headers["weft-error"], "no-route");
        assert!(r.body.contains("no route rule matches"), "{}", r.body);
    }
    // The route attaches to the `http` listener only: port 9090 routes nothing.
    let r = get(m.gateway.listeners[&9090], "shop.example", "/a").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["weft-error"], "no-route");

    let metrics = get(m.gateway.metrics, "x", "/metrics").await.body;
    // A gateway reports as the source, with itself as the source workload.
    let count = |labels: &[&str]| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("istio_requests_total{"))
            .filter(|l| l.contains(r#"reporter="source",source_workload="ingress""#))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    for (labels, want) in [
        (
            [
                r#"destination_service="a.shop.svc.cluster.local""#,
                r#"response_code="200""#,
            ],
            2.0,
        ),
        (
            [
                r#"destination_service="b.shop.svc.cluster.local""#,
                r#"response_code="200""#,
            ],
            1.0,
        ),
        ([r#"response_code="404""#, r#"response_flags="NR""#], 3.0),
    ] {
        assert_eq!(count(&labels), want, "{labels:?} in:\n{metrics}");
    }
    assert_eq!(
        get(m.gateway.readiness, "x", "/healthz/ready").await.status,
        200
    );

    // The control plane serves the Gateway like any other type, and shows it.
    let dump = admin(m.cp.admin, "/debug/config_dump?proxy=ingress.shop").await;
    let gw = &dump["types"]["weft.dev/Gateway"];
    assert_eq!(gw["state"], "SYNCED", "{dump:#}");
    assert_eq!(
        gw["resources"]["shop/ingress"]["listeners"][0]["port"],
        8080
    );
    let syncz = admin(m.cp.admin, "/debug/syncz").await;
    let me = syncz
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node"]["id"] == "ingress.shop")
        .expect("gateway listed");
    assert_eq!(me["node"]["role"], "gateway");
    // The gateway is not an endpoint of anything: shop/a has its one pod.
    let snap = m.cp.state.snapshot().borrow().clone();
    assert_eq!(snap.services["shop/a"].endpoints.len(), 1);
    // And the proxy shows what it holds.
    let held = admin(m.gateway.admin, "/config_dump").await;
    assert_eq!(held["gateways"]["shop/ingress"]["name"], "ingress");
}

#[tokio::test]
async fn gateway_route_changes_apply_live() {
    let m = start("gw-live").await;
    assert_eq!(get(m.http(), "x", "/b").await.header("x-server"), "b");
    assert_eq!(get(m.http(), "x", "/b/more").await.status, 404);
    // /b becomes a prefix, served by a.
    m.dir.write(
        "route.yaml",
        &ROUTE.replace(
            "{type: Exact, value: /b}}]\n    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-via, value: gateway}]}}]\n    backendRefs: [{name: b, port: 80}]",
            "{type: PathPrefix, value: /b}}]\n    backendRefs: [{name: a, port: 80}]",
        ),
    );
    eventually("/b moves to a", WAIT, async || {
        get(m.http(), "x", "/b").await.header("x-server") == "a"
    })
    .await;
    let r = get(m.http(), "x", "/b/more").await;
    assert_eq!((r.status, r.header("x-server")), (200, "a"), "{}", r.body);
    // A route removed: everything is a 404, and the gateway stays up.
    std::fs::remove_file(m.dir.config().join("route.yaml")).unwrap();
    eventually("no routes left", WAIT, async || {
        get(m.http(), "x", "/a").await.status == 404
    })
    .await;
    assert_eq!(
        get(m.gateway.readiness, "x", "/healthz/ready").await.status,
        200
    );
}

#[tokio::test]
async fn a_gateway_proxy_for_a_missing_gateway_is_not_ready_and_says_why() {
    let dir = Dir::new("gw-missing");
    dir.write("mesh.yaml", MESH);
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let gw = gateway_proxy(cp.discovery, "shop/edge", &[8080]).await;
    eventually("the gateway is known missing", WAIT, async || {
        let r = get(gw.readiness, "x", "/healthz/ready").await;
        r.status == 503 && r.body.contains("gateway shop/edge does not exist")
    })
    .await;
    let r = get(gw.admin, "x", "/ready").await;
    assert!(
        r.body.contains("gatewayClassName is not weft"),
        "{}",
        r.body
    );
    let r = get(gw.listeners[&8080], "x", "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["weft-error"], "not-ready");
    // Defining it makes the proxy ready.
    dir.write(
        "edge.yaml",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: shop}\nspec:\n  gatewayClassName: weft\n  listeners: [{name: http, port: 8080, protocol: HTTP}]\n",
    );
    assert!(
        gw.ready(Duration::from_secs(10)).await,
        "ready once it exists"
    );
}
