//! In-process mesh tests: a real control plane and real proxies on port 0 with echo backends,
//! over real TCP. Proxies run in explicit mode (no packet capture; that is `weft up`'s job).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::*;

const WEB: &str = "198.18.128.10:80";
const EMPTY: &str = "198.18.128.20:80";

fn mesh(default_rule: &str, extra: &str) -> String {
    format!(
        r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: web-v1, namespace: shop, labels: {{app: web, version: v1}}}}
spec: {{command: [web], ports: [{{name: http, containerPort: 8080}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: web-v2, namespace: shop, labels: {{app: web, version: v2}}}}
spec: {{command: [web], ports: [{{name: http, containerPort: 8080}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: client, namespace: shop, labels: {{app: client}}}}
spec: {{command: [client]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{clusterIP: 198.18.128.10, selector: {{app: web}}, ports: [{{name: http, port: 80, targetPort: http}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-v1, namespace: shop}}
spec: {{clusterIP: 198.18.128.11, selector: {{app: web, version: v1}}, ports: [{{name: http, port: 80, targetPort: http}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: web-v2, namespace: shop}}
spec: {{clusterIP: 198.18.128.12, selector: {{app: web, version: v2}}, ports: [{{name: http, port: 80, targetPort: http}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: empty, namespace: shop, annotations: {{weft.dev/analyze-ignore: WEFT0106}}}}
spec: {{clusterIP: 198.18.128.20, selector: {{app: nothing}}, ports: [{{name: http, port: 80}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: shop}}
spec:
  parentRefs: [{{group: "", kind: Service, name: web, port: 80}}]
  rules:
  - matches: [{{path: {{value: /v2}}}}, {{headers: [{{name: x-canary, value: "1"}}]}}]
    backendRefs: [{{name: web-v2, port: 80}}]
    filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{add: [{{name: x-routed, value: canary}}]}}}}]
  - matches: [{{path: {{value: /mirrored}}}}]
    filters: [{{type: RequestMirror, requestMirror: {{backendRef: {{name: web-v2, port: 80}}}}}}]
    backendRefs: [{{name: web-v1, port: 80}}]
  - matches: [{{path: {{type: Exact, value: /moved}}}}]
    filters: [{{type: RequestRedirect, requestRedirect: {{path: {{type: ReplaceFullPath, replaceFullPath: /new}}, statusCode: 301}}}}]
  - {default_rule}
{extra}"#
    )
}

const OUTLIER: &str = r#"---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: web-v1, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: web-v1}]
  outlierDetection: {consecutiveErrors: 2, baseEjectionTime: 1s}
"#;

const SPLIT_90_10: &str = "backendRefs: [{name: web-v1, port: 80, weight: 90}, {name: web-v2, port: 80, weight: 10}]\n    retry: {attempts: 2, codes: [503]}";
const ALL_V2: &str = "backendRefs: [{name: web-v2, port: 80}]";

struct Mesh {
    dir: Dir,
    cp: weft_control::Bound,
    client: weft_proxy::Bound,
    servers: Vec<(weft_proxy::Bound, Echo)>,
}

async fn start(name: &str) -> Mesh {
    start_with(name, OUTLIER).await
}

/// The mesh with `extra` documents (TrafficPolicies) after the routes.
async fn start_with(name: &str, extra: &str) -> Mesh {
    let dir = Dir::new(name);
    dir.write("mesh.yaml", &mesh(SPLIT_90_10, extra));
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let mut servers = Vec::new();
    for (workload, pod, label) in [
        ("web-v1", "web-v1-0", "v1a"),
        ("web-v1", "web-v1-1", "v1b"),
        ("web-v2", "web-v2-0", "v2"),
    ] {
        let app = echo(label).await;
        let p = proxy(cp.discovery, "shop", workload, pod, None, Some(app.addr)).await;
        servers.push((p, app));
    }
    let client = proxy(
        cp.discovery,
        "shop",
        "client",
        "client-0",
        Some(WEB.parse().unwrap()),
        None,
    )
    .await;
    Mesh {
        dir,
        cp,
        client,
        servers,
    }
}

/// Replaces the mesh's config and waits until the control plane has it in force, so no proxy
/// asks about an address before it exists (and sends it elsewhere as passthrough).
async fn rewrite(m: &Mesh, text: &str) {
    let generation = async || {
        admin(m.cp.admin, "/debug/config").await["generation"]
            .as_u64()
            .expect("generation")
    };
    let before = generation().await;
    m.dir.write("mesh.yaml", text);
    eventually("the new config in force", WAIT, async || {
        generation().await > before
    })
    .await;
}

async fn client_to(m: &Mesh, target: &str) -> weft_proxy::Bound {
    proxy(
        m.cp.discovery,
        "shop",
        "client",
        &format!("client-{}", target.replace(['.', ':'], "-")),
        Some(target.parse().unwrap()),
        None,
    )
    .await
}

#[tokio::test]
async fn http_passes_through_both_proxies_with_host_and_headers_kept() {
    let m = start("basic").await;
    let r = get(m.client.outbound, "web.shop", "/hello?x=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        ["v1a", "v1b", "v2"].contains(&r.header("x-server")),
        "{}",
        r.header("x-server")
    );
    assert!(
        r.body.contains("/hello host=web.shop"),
        "Host is kept: {}",
        r.body
    );
    // Both sidecars saw it: the client proxy's outbound and one server proxy's inbound.
    // Both sidecars counted it in their metrics.
    let client_metrics = get(m.client.metrics, "x", "/metrics").await.body;
    assert!(
        client_metrics.lines().any(
            |l| l.starts_with(r#"istio_requests_total{reporter="source""#)
                && l.contains(r#"destination_service="web.shop.svc.cluster.local""#)
                && l.contains(r#"response_code="200""#)
                && l.ends_with("} 1")
        ),
        "{client_metrics}"
    );
    let mut inbound = 0;
    for (p, _) in &m.servers {
        let text = get(p.metrics, "x", "/metrics").await.body;
        inbound += text
            .lines()
            .filter(|l| {
                l.starts_with(r#"istio_requests_total{reporter="destination""#) && l.ends_with(" 1")
            })
            .count();
    }
    assert_eq!(inbound, 1, "exactly one server sidecar saw the request");
    // The readiness port answers readiness and nothing else.
    assert_eq!(
        get(m.client.readiness, "x", "/config_dump").await.status,
        404
    );
    assert_eq!(
        get(m.client.readiness, "x", "/healthz/ready").await.status,
        200
    );
    let served: usize = m
        .servers
        .iter()
        .map(|(_, e)| e.hits.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert_eq!(served, 1);
}

#[tokio::test]
async fn routes_match_path_and_header_and_apply_filters() {
    let m = start("routes").await;
    let r = get(m.client.outbound, "web", "/v2/items").await;
    assert_eq!(r.header("x-server"), "v2");
    assert!(
        r.body.contains("x-routed=canary"),
        "request header added: {}",
        r.body
    );
    let r = send(
        m.client.outbound,
        http::Request::get("/other")
            .header("host", "web")
            .header("x-canary", "1")
            .body(Default::default())
            .unwrap(),
    )
    .await;
    assert_eq!(r.header("x-server"), "v2");
    let r = get(m.client.outbound, "web", "/moved").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.headers["location"], "http://web/new");
}

#[tokio::test]
async fn mirrored_requests_reach_the_mirror_too() {
    let m = start("mirror").await;
    let v2 = m.servers[2].1.hits.clone();
    for _ in 0..5 {
        let r = get(m.client.outbound, "web", "/mirrored").await;
        assert!(
            r.header("x-server").starts_with("v1"),
            "the answer comes from the backend, not the mirror"
        );
    }
    eventually("the mirror got every request", WAIT, async || {
        v2.load(std::sync::atomic::Ordering::Relaxed) == 5
    })
    .await;
}

#[tokio::test]
async fn weighted_split_follows_weights() {
    let m = start("split").await;
    let mut v2 = 0;
    let n = 1000;
    for _ in 0..n {
        let r = get(m.client.outbound, "web", "/").await;
        assert_eq!(r.status, 200);
        if r.header("x-server") == "v2" {
            v2 += 1;
        }
    }
    // 10% expected; ±5 standard deviations (0.95%) keeps this from ever flaking.
    assert!((53..=147).contains(&v2), "v2 got {v2} of {n}");
}

#[tokio::test]
async fn errors_name_the_stage_that_failed() {
    let m = start("errors").await;
    let empty = client_to(&m, EMPTY).await;
    let r = get(empty.outbound, "empty", "/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["weft-error"], "no-healthy-endpoint");
    assert!(
        r.body.contains("shop/empty has no healthy endpoint"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_dead_endpoint_is_retried_around_and_comes_back() {
    let mut m = start("failover").await;
    // Stop v1b's app: its proxy answers 503 connect-refused, the client retries elsewhere.
    // Keep its proxy running: only the app behind it dies.
    let (_v1b_proxy, dead) = m.servers.remove(1);
    let addr = dead.addr;
    drop(dead);
    for _ in 0..60 {
        let r = get(m.client.outbound, "web", "/").await;
        assert_eq!(
            r.status,
            200,
            "{} {:?}",
            r.body,
            r.headers.get("weft-error")
        );
        assert_ne!(r.header("x-server"), "v1b");
    }
    // It comes back on the same address and serves again (after its ejection ends).
    let back = echo_on(addr, "v1b").await;
    eventually("v1b serves again", WAIT, async || {
        get(m.client.outbound, "web", "/").await.header("x-server") == "v1b"
    })
    .await;
    drop(back);
}

#[tokio::test]
async fn a_retry_goes_to_another_endpoint_than_the_one_that_failed() {
    // No ejection: only the retry's choice keeps requests off the dead endpoint. Before, each
    // of the three attempts could land on it (it fails fast, so it never looks busy).
    let no_ejection = OUTLIER.replace("consecutiveErrors: 2", "consecutiveErrors: 0");
    let mut m = start_with("retry-elsewhere", &no_ejection).await;
    let (_v1b_proxy, dead) = m.servers.remove(1);
    drop(dead);
    let mut answered = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..60 {
        let r = get(m.client.outbound, "web", "/").await;
        assert_eq!(
            r.status,
            200,
            "{} {:?}",
            r.body,
            r.headers.get("weft-error")
        );
        *answered
            .entry(r.header("x-server").to_string())
            .or_default() += 1;
    }
    assert!(!answered.contains_key("v1b"), "{answered:?}");
}

#[tokio::test]
async fn config_changes_reach_proxies_and_nacked_ones_keep_the_old() {
    let m = start("changes").await;
    m.dir.write("mesh.yaml", &mesh(ALL_V2, OUTLIER));
    eventually("all traffic moves to v2", WAIT, async || {
        let mut all = true;
        for _ in 0..10 {
            all &= get(m.client.outbound, "web", "/").await.header("x-server") == "v2";
        }
        all
    })
    .await;

    // A filter this proxy does not implement: the control plane accepts it, the proxy NACKs.
    let ext = "  - matches: [{path: {value: /ext}}]\n    filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: Lua, name: script}}]\n    backendRefs: [{name: web-v1, port: 80}]\n";
    let text = mesh(ALL_V2, OUTLIER).replace(
        "  - backendRefs: [{name: web-v2",
        &format!("{ext}  - backendRefs: [{{name: web-v2"),
    );
    m.dir.write("mesh.yaml", &text);
    eventually("the client proxy NACKs", WAIT, async || {
        let list = admin(m.cp.admin, "/debug/syncz").await;
        list.as_array().unwrap().iter().any(|p| {
            p["node"]["id"] == "client-0.shop"
                && p["types"]["weft.dev/Service"]["state"] == "NACKED"
        })
    })
    .await;
    let dump = admin(m.cp.admin, "/debug/config_dump?proxy=client-0.shop").await;
    let why = dump["types"]["weft.dev/Service"]["nack"]["error"]
        .as_str()
        .unwrap();
    assert!(
        why.contains("ExtensionRef") && why.contains("not supported"),
        "{why}"
    );
    // The previous routes stay in force: /ext is not routed to v1.
    for _ in 0..5 {
        assert_eq!(
            get(m.client.outbound, "web", "/ext")
                .await
                .header("x-server"),
            "v2"
        );
    }
}

#[tokio::test]
async fn control_plane_restart_fails_no_request() {
    let m = start("restart").await;
    let discovery = m.cp.discovery;
    let Mesh {
        dir,
        cp,
        client,
        servers,
    } = m;
    // The client has used both backends, so it holds their config. ("/" is split 90/10, so
    // ask until v1 answered: one request may well have gone to v2.)
    assert_eq!(
        get(client.outbound, "web", "/v2").await.header("x-server"),
        "v2"
    );
    let mut v1 = false;
    for _ in 0..50 {
        let r = get(client.outbound, "web", "/").await;
        assert_eq!(r.status, 200);
        if r.header("x-server").starts_with("v1") {
            v1 = true;
            break;
        }
    }
    assert!(v1, "no answer from web-v1 in 50 requests");
    cp.shutdown().await;
    // Static stability: the last good config keeps serving while the control plane is away.
    for _ in 0..20 {
        let r = get(client.outbound, "web", "/").await;
        assert_eq!(r.status, 200, "{} {:?}", r.body, r.headers);
    }
    let cp = control(&dir, discovery, Duration::from_millis(2500)).await;
    let mut ok = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < deadline {
        let r = get(client.outbound, "web", "/").await;
        assert_eq!(
            r.status,
            200,
            "request failed during restart: {} {:?}",
            r.body,
            r.headers.get("weft-error")
        );
        ok += 1;
        // Pacing, not synchronisation: steady traffic for the whole restart.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok > 50);
    eventually("every proxy is back and SYNCED", WAIT, async || {
        let list = admin(cp.admin, "/debug/syncz").await;
        let list = list.as_array().unwrap();
        list.len() == 4
            && list.iter().all(|p| {
                p["types"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(|t| t["state"] == "SYNCED")
            })
    })
    .await;
    drop(servers);
}

#[tokio::test]
async fn websocket_upgrade_is_spliced_through() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let m = start("ws").await;
    let mut s = tokio::net::TcpStream::connect(m.client.outbound)
        .await
        .unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: web\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping over the tunnel").await.unwrap();
    let mut buf = [0u8; 20];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping over the tunnel");
}

#[tokio::test]
async fn grpc_streaming_with_trailers_passes_through() {
    use tokio_stream::wrappers::ReceiverStream;
    use weft_proto::discovery::discovery_client::DiscoveryClient;
    use weft_proto::discovery::{DeltaRequest, Node};
    let m = start("grpc").await;
    // The gRPC server behind the mesh is another control plane: a real bidirectional stream.
    let inner_dir = Dir::new("grpc-inner");
    inner_dir.write(
        "mesh.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
    );
    let inner = control(&inner_dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    rewrite(&m, &mesh(SPLIT_90_10, &format!("{OUTLIER}{}", r#"---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: grpc, namespace: shop, labels: {app: grpc}}
spec: {command: [grpc], ports: [{name: grpc, containerPort: 15010}]}
---
apiVersion: v1
kind: Service
metadata: {name: grpc, namespace: shop}
spec: {clusterIP: 198.18.128.30, selector: {app: grpc}, ports: [{name: grpc, port: 15010, targetPort: grpc, appProtocol: grpc}]}
"#)))
    .await;
    let _server = proxy(
        m.cp.discovery,
        "shop",
        "grpc",
        "grpc-0",
        None,
        Some(inner.discovery),
    )
    .await;
    let client = client_to(&m, "198.18.128.30:15010").await;
    let mut grpc = DiscoveryClient::connect(format!("http://{}", client.outbound))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(DeltaRequest {
        node: Some(Node {
            id: "probe".into(),
            protocol_version: weft_proto::PROTOCOL_VERSION,
            ..Default::default()
        }),
        type_url: "weft.dev/Service".into(),
        subscribe: vec!["x/missing".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut stream = grpc
        .delta(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.removed, ["x/missing"]);
    // A second message on the same stream, then an error status carried in trailers.
    tx.send(DeltaRequest {
        type_url: "bogus".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let err = stream.message().await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("unknown type_url"),
        "{}",
        err.message()
    );
    inner.shutdown().await;
}

#[tokio::test]
async fn drain_finishes_in_flight_requests() {
    let m = start("drain").await;
    let Mesh {
        client, servers, ..
    } = m;
    let hits = || -> usize {
        servers
            .iter()
            .map(|(_, app)| app.hits.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    };
    let before = hits();
    let addr: SocketAddr = client.outbound;
    // The backend holds this request for 300ms: it is in flight when the drain starts.
    let slow = tokio::spawn(async move { get(addr, "web", "/?sleep=300").await });
    eventually("the slow request to reach a backend", WAIT, async || {
        hits() > before
    })
    .await;
    let admin_addr = client.admin;
    let draining = tokio::spawn(client.drain(Some(Duration::from_secs(5))));
    eventually("not ready while draining", WAIT, async || {
        let ready = get(admin_addr, "admin", "/ready").await;
        (ready.status == 503).then_some(()).ok_or(ready.status)
    })
    .await;
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "in-flight request completed");
    draining.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn opaque_tcp_follows_tcp_routes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let m = start("tcp").await;
    rewrite(&m, &mesh(SPLIT_90_10, &format!("{OUTLIER}{}", r#"---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: tcp, namespace: shop, labels: {app: tcp}}
spec: {command: [tcp], ports: [{name: tcp, containerPort: 9000}]}
---
apiVersion: v1
kind: Service
metadata: {name: tcp, namespace: shop}
spec: {clusterIP: 198.18.128.40, selector: {app: tcp}, ports: [{name: tcp-echo, port: 9000, targetPort: tcp}]}
---
apiVersion: v1
kind: Service
metadata: {name: tcp-front, namespace: shop, annotations: {weft.dev/analyze-ignore: WEFT0106}}
spec: {clusterIP: 198.18.128.41, selector: {app: none}, ports: [{name: tcp-front, port: 9000}]}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: front, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: tcp-front, port: 9000}]
  rules: [{backendRefs: [{name: tcp, port: 9000}]}]
"#)))
    .await;
    // A raw TCP echo: no HTTP anywhere.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let _server = proxy(m.cp.discovery, "shop", "tcp", "tcp-0", None, Some(app)).await;
    let client = client_to(&m, "198.18.128.41:9000").await;
    let mut s = tokio::net::TcpStream::connect(client.outbound)
        .await
        .unwrap();
    s.write_all(b"\x00\x01 not http at all").await.unwrap();
    let mut buf = [0u8; 18];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"\x00\x01 not http at all");
}
