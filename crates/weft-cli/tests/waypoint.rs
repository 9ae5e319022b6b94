//! Waypoints in one process: traffic to a Service that uses a waypoint goes client → waypoint →
//! server over mTLS; the waypoint applies the Service's routes and the AuthorizationPolicy
//! attached to it with the client's identity; the server admits only the waypoint (calling it
//! directly is refused and counted); a waypoint that is down, or that does not exist, fails
//! closed with `weft-error: waypoint-unavailable`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_proxy::tunnel::Credentials;
use weft_test_support::ca::TestCa;
use weft_test_support::wait::eventually;

use support::*;

const WEB: &str = "198.18.128.10:80";
const TYPO: &str = "198.18.128.11:80";
const HOUR: Duration = Duration::from_secs(3600);
const T: Duration = Duration::from_secs(10);

fn id(sa: &str) -> String {
    format!("spiffe://wp.test/ns/shop/sa/{sa}")
}

const CONFIG: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {trustDomain: wp.test}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {weft.dev/use-waypoint: wp}}
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
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {command: [web], serviceAccountName: web, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {command: [client], serviceAccountName: client}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 198.18.128.10, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: typo, namespace: shop, labels: {weft.dev/use-waypoint: nosuch}, annotations: {weft.dev/analyze-ignore: WEFT0109}}
spec: {clusterIP: 198.18.128.11, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
  rules:
  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-routed-by, value: waypoint}]}}]
    backendRefs: [{name: web, port: 80}]
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: web}]
  rules: [{from: [{source: {principals: ["spiffe://wp.test/ns/shop/sa/client"]}}], to: [{operation: {methods: [GET]}}]}]
"#;

async fn waypoint(cp: SocketAddr, creds: Arc<dyn Credentials>) -> weft_proxy::waypoint::Bound {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let labels = [(
        "gateway.networking.k8s.io/gateway-name".to_string(),
        "wp".to_string(),
    )];
    let bound = weft_proxy::waypoint::build(weft_proxy::waypoint::Config {
        identity: weft_proxy::Identity {
            id: "wp-0.shop".into(),
            namespace: "shop".into(),
            workload: "wp".into(),
            pod: "wp-0".into(),
            ip: "127.0.0.1".parse().unwrap(),
            service_account: "wp".into(),
            labels: labels.into(),
        },
        engine: weft_proxy::Settings {
            control_plane: format!("http://{cp}").into(),
            admin: any,
            readiness: any,
            metrics: any,
            set_log_level: None,
            log_level: "info".into(),
            credentials: Some(creds),
            bootstrap_token_file: None,
            mark: 0,
            revision: None,
        },
        waypoint: "shop/wp".into(),
        tunnel: any,
    })
    .await
    .expect("waypoint binds");
    assert!(bound.ready(T).await, "{:?}", bound.not_ready_reason());
    bound
}

fn get(method: &str, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "web")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_a_waypoint_is_routed_and_authorized_there_and_cannot_be_skipped() {
    let dir = Dir::new("waypoint");
    dir.write("mesh.yaml", CONFIG);
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let ca = TestCa::new("wp.test");
    let app = echo("web").await;
    let creds = |sa: &str| Certs::Fixed(Some(fixed(ca.leaf(&id(sa), HOUR))));
    let server = proxy_certs(
        cp.discovery,
        "shop",
        "web",
        "web-0",
        None,
        Some(app.addr),
        creds("web"),
    )
    .await;
    let wp = waypoint(cp.discovery, fixed(ca.leaf(&id("wp"), HOUR))).await;
    let client = |target: &str| {
        let target = Some(target.parse().unwrap());
        proxy_certs(
            cp.discovery,
            "shop",
            "client",
            "client-0",
            target,
            None,
            creds("client"),
        )
    };
    let to_web = client(WEB).await;

    // Through the waypoint: its route ran, and the server saw the waypoint as its caller.
    eventually("a request through the waypoint", T, async || {
        send(to_web.outbound, get("GET", "/hello")).await.status == 200
    })
    .await;
    let r = send(to_web.outbound, get("GET", "/hello")).await;
    assert!(r.body.contains("x-routed-by=waypoint"), "{}", r.body);
    assert!(r.body.contains(&format!("URI={}", id("wp"))), "{}", r.body);
    let waypoint_metrics = get_text(wp.metrics).await;
    assert!(
        metric(
            &waypoint_metrics,
            "istio_requests_total{",
            &[
                r#"reporter="waypoint""#,
                r#"destination_service="web.shop.svc.cluster.local""#,
                r#"response_code="200""#,
                &format!(r#"source_principal="{}""#, id("client")),
            ]
        ) >= 1.0,
        "{waypoint_metrics}"
    );

    // The policy attached to the Service is the waypoint's, with the client's identity.
    let r = send(to_web.outbound, get("DELETE", "/hello")).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.headers["weft-error"], "denied");
    assert_eq!(r.headers["weft-denied-by"], "shop/get-only");

    // Skipping the waypoint: a mesh identity calling the server's tunnel directly is refused.
    let bypass = weft_proxy::tunnel::Client::new(fixed(ca.leaf(&id("client"), HOUR)));
    let server_tunnel = server.tunnel.expect("the server has a tunnel");
    let opened = bypass
        .connect(
            server_tunnel,
            &Arc::from(id("web")),
            &Arc::from(id("client")),
            app.addr,
            T,
        )
        .await;
    if let Ok(mut stream) = opened {
        let _ = stream
            .write_all(b"GET / HTTP/1.1\r\nhost: web\r\n\r\n")
            .await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(T, stream.read_to_end(&mut out)).await;
        assert!(
            out.is_empty(),
            "the bypass got an answer: {}",
            String::from_utf8_lossy(&out)
        );
    }
    eventually("the bypass is counted", T, async || {
        let text = get_text(server.metrics).await;
        // Only the waypoint calls the server legitimately: a connection closed from the client
        // itself is the refused bypass.
        metric(
            &text,
            "istio_tcp_connections_closed_total{",
            &[
                r#"reporter="destination""#,
                &format!(r#"source_principal="{}""#, id("client")),
            ],
        ) >= 1.0
    })
    .await;

    // A label naming no waypoint fails closed.
    let to_typo = client(TYPO).await;
    let r = send(to_typo.outbound, get("GET", "/hello")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.headers["weft-error"], "waypoint-unavailable");
    assert!(r.body.contains("shop/nosuch"), "{}", r.body);

    // The waypoint goes away: requests fail closed instead of skipping it.
    wp.drain(Some(Duration::from_millis(100))).await;
    let r = send(to_web.outbound, get("GET", "/hello")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.headers["weft-error"], "waypoint-unavailable");
    eventually(
        "no instance left once the control plane knows",
        T,
        async || {
            send(to_web.outbound, get("GET", "/hello"))
                .await
                .body
                .contains("no ready instance")
        },
    )
    .await;
}

async fn get_text(addr: SocketAddr) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .uri("/metrics")
        .header("host", "metrics")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap();
    String::from_utf8_lossy(&body.to_bytes()).into_owned()
}
