//! gRPC retries through two sidecars against a real control plane and a real HTTP/2 server:
//! a TrafficPolicy `retryOn: [unavailable, resource-exhausted]` sends a call again when the
//! answer's head is a trailers-only `grpc-status` it names (the call's body replayed as it
//! was), and not for a status it does not name, nor for one that arrives in trailers after a
//! streamed body (as Envoy).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use weft_test_support::dir::TempDir;
use weft_test_support::wait::eventually;

const T: Duration = Duration::from_secs(20);
const VIP: &str = "198.18.128.30:15010";
/// One length-prefixed gRPC message, `hello`.
const CALL: &[u8] = b"\0\0\0\0\x05hello";

const MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: grpc, namespace: shop, labels: {app: grpc}}
spec: {command: [grpc], ports: [{name: grpc, containerPort: 15010}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {command: [client]}
---
apiVersion: v1
kind: Service
metadata: {name: grpc, namespace: shop}
spec: {clusterIP: 198.18.128.30, selector: {app: grpc}, ports: [{name: grpc, port: 15010, targetPort: grpc, appProtocol: grpc}]}
---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: grpc, namespace: shop}
spec:
  targetRefs: [{kind: Service, name: grpc}]
  retries: {attempts: 2, retryOn: [connect-failure, unavailable, resource-exhausted]}
"#;

type Body = BoxBody<Bytes, Infallible>;

/// The calls the server received: the bodies, by method path.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<BTreeMap<String, Vec<Bytes>>>>);

impl Calls {
    fn of(&self, path: &str) -> Vec<Bytes> {
        self.0
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

/// A gRPC server (HTTP/2 only). By method: `Ping` succeeds; `Flaky` answers its first call
/// with a trailers-only UNAVAILABLE (14), then succeeds; `Missing` is always a trailers-only
/// NOT_FOUND (5); `Late` streams a message, then UNAVAILABLE in trailers.
async fn server(calls: Calls) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let calls = calls.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| answer(calls.clone(), req));
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

async fn answer(calls: Calls, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    // The whole call is read before the answer, as a unary gRPC server does.
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let n = {
        let mut all = calls.0.lock().unwrap();
        let list = all.entry(path.clone()).or_default();
        list.push(body);
        list.len()
    };
    let trailers_only = |status: &str| {
        Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", status)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap()
    };
    let streamed = |status: &'static str| {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", status.parse().unwrap());
        let frames = [
            Frame::data(Bytes::from_static(b"\0\0\0\0\x02ok")),
            Frame::trailers(trailers),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames.map(Ok)));
        Response::builder()
            .header("content-type", "application/grpc")
            .body(body.boxed())
            .unwrap()
    };
    Ok(match path.as_str() {
        "/demo.Svc/Flaky" if n == 1 => trailers_only("14"),
        "/demo.Svc/Missing" => trailers_only("5"),
        "/demo.Svc/Late" => streamed("14"),
        _ => streamed("0"),
    })
}

/// The grpc-status of a call of `method` through the proxy at `addr`: from the head, else
/// the trailers.
async fn call(addr: SocketAddr, method: &str) -> Result<String, String> {
    let s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::post(format!("http://{VIP}/demo.Svc/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(CALL)))
        .unwrap();
    let res = tokio::time::timeout(T, sender.send_request(req))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let (head, body) = res.into_parts();
    let status = |h: &HeaderMap| {
        h.get("grpc-status")
            .map(|v| v.to_str().unwrap_or("?").to_string())
    };
    if let Some(s) = status(&head.headers) {
        return Ok(s);
    }
    let collected = body.collect().await.map_err(|e| e.to_string())?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    status(&trailers).ok_or_else(|| format!("{} without grpc-status", head.status))
}

/// A sidecar in explicit mode (no mTLS): outbound to `target`, inbound to `app`.
async fn sidecar(
    cp: SocketAddr,
    workload: &str,
    target: Option<SocketAddr>,
    app: Option<SocketAddr>,
) -> weft_proxy::Bound {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bound = weft_proxy::build(weft_proxy::Config {
        identity: weft_proxy::Identity {
            id: format!("{workload}-0.shop"),
            namespace: "shop".into(),
            workload: workload.into(),
            pod: format!("{workload}-0"),
            ip: "127.0.0.1".parse().unwrap(),
            service_account: workload.into(),
            labels: Default::default(),
        },
        outbound: any,
        inbound: any,
        outbound_target: target,
        inbound_app: app,
        tunnel: any,
        engine: weft_proxy::Settings {
            control_plane: format!("http://{cp}").into(),
            admin: any,
            readiness: any,
            metrics: any,
            set_log_level: None,
            log_level: "info".into(),
            credentials: None,
            bootstrap_token_file: None,
            mark: 0,
            revision: None,
        },
    })
    .await
    .expect("proxy binds");
    assert!(bound.ready(T).await, "{workload} proxy ready");
    bound
}

#[tokio::test]
async fn a_trailers_only_grpc_status_the_policy_names_is_retried_with_the_same_call() {
    let dir = TempDir::new("grpc-retry");
    dir.write("config/mesh.yaml", MESH);
    let cp = weft_control::build(weft_control::Config::loopback(
        dir.join("config"),
        dir.join("state"),
    ))
    .await
    .expect("control plane starts");
    let calls = Calls::default();
    let app = server(calls.clone()).await;
    let _server = sidecar(cp.discovery, "grpc", None, Some(app)).await;
    let client = sidecar(cp.discovery, "client", Some(VIP.parse().unwrap()), None).await;
    eventually("the server's endpoint is known", T, async || {
        call(client.outbound, "Ping").await.map(|s| s == "0")
    })
    .await;

    // (method, grpc-status the client gets, calls the server gets)
    let cases = [("Flaky", "0", 2), ("Missing", "5", 1), ("Late", "14", 1)];
    for (method, status, attempts) in cases {
        assert_eq!(
            call(client.outbound, method).await,
            Ok(status.to_string()),
            "{method}"
        );
        let got = calls.of(&format!("/demo.Svc/{method}"));
        assert_eq!(got.len(), attempts, "{method}");
        assert!(
            got.iter().all(|b| b == CALL),
            "{method}: the call replayed whole: {got:?}"
        );
    }
    cp.shutdown().await;
}
