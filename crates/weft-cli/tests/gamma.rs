//! Gateway API mesh semantics end to end, in one process: a route whose Service parentRef
//! names no port applies to the Service's HTTP port and leaves its TCP port alone, and a
//! backend that does not exist answers its share of requests with 500 while the rest are
//! served. Both used to make the control plane reject the whole configuration.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::*;

const HTTP_PORT: &str = "198.18.128.40:80";
const TCP_PORT: &str = "198.18.128.40:5432";

const CONFIG: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-v1, namespace: shop, labels: {app: web, version: v1}}
spec: {command: [web], ports: [{name: http, containerPort: 8080}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {command: [client]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 198.18.128.40
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: raw, port: 5432, targetPort: http, appProtocol: tcp}
---
apiVersion: v1
kind: Service
metadata: {name: web-v1, namespace: shop}
spec: {clusterIP: 198.18.128.41, selector: {app: web, version: v1}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - matches: [{path: {type: Exact, value: /off}}]
    backendRefs: [{name: web-v1, port: 80, weight: 0}]
  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-route, value: web}]}}]
    backendRefs:
    - {name: web-v1, port: 80}
    - {name: ghost, port: 80}
"#;

async fn client(cp: SocketAddr, target: &str) -> weft_proxy::Bound {
    let pod = format!("client-{}", target.replace(['.', ':'], "-"));
    proxy(
        cp,
        "shop",
        "client",
        &pod,
        Some(target.parse().unwrap()),
        None,
    )
    .await
}

#[tokio::test]
async fn missing_backend_gets_its_share_as_500_and_tcp_port_is_left_alone() {
    let dir = Dir::new("gamma");
    dir.write("mesh.yaml", CONFIG);
    // Accepted: the route is served, with warnings rather than errors.
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let status = admin(cp.admin, "/debug/config").await;
    let findings = status["findings"].as_array().expect("findings listed");
    assert!(
        findings
            .iter()
            .any(|f| f["code"] == "WEFT0103" && f["severity"] == "warning"),
        "{status:#}"
    );
    let app = echo("v1").await;
    let _server = proxy(
        cp.discovery,
        "shop",
        "web-v1",
        "web-v1-0",
        None,
        Some(app.addr),
    )
    .await;

    let http = client(cp.discovery, HTTP_PORT).await;
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..40 {
        let r = get(http.outbound, "web.shop", "/").await;
        match r.status {
            200 => {
                assert_eq!(r.header("x-server"), "v1");
                assert_eq!(r.headers["x-route"], "web", "the route applies on port 80");
                ok += 1;
            }
            500 => {
                assert_eq!(r.headers["weft-error"], "no-backend; backend=shop/ghost:80");
                assert!(r.body.contains("shop/ghost does not exist"), "{}", r.body);
                failed += 1;
            }
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    // Equal weights: about half each (outside 8..=32 of 40 has odds of about 1 in 10^5).
    assert!((8..=32).contains(&failed), "{ok} served, {failed} got 500");

    // A rule whose only backend has weight 0 sends nothing anywhere.
    let r = get(http.outbound, "web.shop", "/off").await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.headers["weft-error"], "no-backend");

    // The TCP port is carried as bytes, untouched by the HTTP route.
    let tcp = client(cp.discovery, TCP_PORT).await;
    let mut s = tokio::net::TcpStream::connect(tcp.outbound).await.unwrap();
    s.write_all(b"GET /raw HTTP/1.1\r\nhost: web.shop:5432\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    let head = answer.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{answer}");
    assert!(head.contains("x-server: v1"), "{answer}");
    assert!(
        !head.contains("x-route"),
        "the HTTP route applied on the TCP port: {answer}"
    );
    assert!(!head.contains("weft-error"), "{answer}");
}
