//! A mesh in one process: a control plane over a temporary config directory, proxies in
//! explicit mode on port 0, and echo backends that say who answered.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use weft_proxy::tunnel::Credentials;
use weft_test_support::dir::TempDir;
pub use weft_test_support::http::{Reply, get};
#[allow(unused_imports)]
pub use weft_test_support::wait::eventually;

/// A temporary directory: the config in `config/` (watched), the CA's state in `state/`.
pub struct Dir(TempDir);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let dir = TempDir::new(&format!("mesh-{name}"));
        std::fs::create_dir_all(dir.join("config")).unwrap();
        Dir(dir)
    }

    /// The config directory.
    pub fn config(&self) -> PathBuf {
        self.0.join("config")
    }

    /// Writes a config file (then renames it, so the watcher never reads half a file).
    pub fn write(&self, file: &str, text: &str) {
        self.0.write(Path::new("config").join(file), text);
    }

    /// The control plane's state dir (the CA root), beside the config dir.
    pub fn state(&self) -> PathBuf {
        self.0.join("state")
    }
}

/// How long a test waits for a condition (see [`eventually`]).
pub const WAIT: Duration = Duration::from_secs(10);

/// The control plane's config over `dir`: loopback port 0, no warm-up.
pub fn control_config(dir: &Dir) -> weft_control::Config {
    weft_control::Config::loopback(dir.config(), dir.state())
}

pub async fn control(dir: &Dir, discovery: SocketAddr, warmup: Duration) -> weft_control::Bound {
    weft_control::build(weft_control::Config {
        discovery_addr: discovery,
        warmup,
        ..control_config(dir)
    })
    .await
    .expect("control plane starts")
}

/// A sidecar in explicit mode: outbound goes to `target`, inbound to `app`; no mTLS.
pub async fn proxy(
    cp: SocketAddr,
    ns: &str,
    workload: &str,
    pod: &str,
    target: Option<SocketAddr>,
    app: Option<SocketAddr>,
) -> weft_proxy::Bound {
    proxy_certs(cp, ns, workload, pod, target, app, Certs::Fixed(None)).await
}

/// Pod `pod` of `ns/workload` on 127.0.0.1, its service account named for the workload.
fn identity(ns: &str, workload: &str, pod: &str) -> weft_proxy::Identity {
    weft_proxy::Identity {
        id: format!("{pod}.{ns}"),
        namespace: ns.into(),
        workload: workload.into(),
        pod: pod.into(),
        ip: "127.0.0.1".parse().unwrap(),
        service_account: workload.into(),
        labels: Default::default(),
    }
}

/// How a test proxy gets its workload certificate.
pub enum Certs {
    /// None: no mTLS.
    Fixed(Option<std::sync::Arc<dyn weft_proxy::tunnel::Credentials>>),
    /// From the control plane's CA with this bootstrap token file (and rotated).
    Token(PathBuf),
}

/// As [`proxy`], with a workload certificate: with one, peers are reached (and reach it)
/// over the mTLS tunnel.
pub async fn proxy_certs(
    cp: SocketAddr,
    ns: &str,
    workload: &str,
    pod: &str,
    target: Option<SocketAddr>,
    app: Option<SocketAddr>,
    certs: Certs,
) -> weft_proxy::Bound {
    let (credentials, bootstrap_token_file) = match certs {
        Certs::Fixed(c) => (c, None),
        Certs::Token(f) => (None, Some(f)),
    };
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bound = weft_proxy::build(weft_proxy::Config {
        identity: identity(ns, workload, pod),
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
            credentials,
            bootstrap_token_file,
            mark: 0,
            revision: None,
        },
    })
    .await
    .expect("proxy binds");
    assert!(
        bound.ready(Duration::from_secs(10)).await,
        "proxy {pod} ready"
    );
    bound
}

/// An ingress gateway proxy for the Gateway `ns/name`, each listener port bound on
/// 127.0.0.1:0 (the real addresses are in `Bound::listeners`); not waited for.
pub async fn gateway_proxy(
    cp: SocketAddr,
    gateway: &str,
    ports: &[u16],
) -> weft_proxy::gateway::Bound {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (ns, name) = gateway.split_once('/').expect("ns/name");
    weft_proxy::gateway::build(weft_proxy::gateway::Config {
        identity: identity(ns, name, name),
        gateway: gateway.into(),
        listeners: ports.iter().map(|p| (*p, any)).collect(),
        engine: weft_proxy::Settings {
            control_plane: format!("http://{cp}").into(),
            admin: any,
            readiness: any,
            metrics: any,
            set_log_level: None,
            log_level: "info".into(),
            bootstrap_token_file: None,
            credentials: None,
            mark: 0,
            revision: None,
        },
    })
    .await
    .expect("gateway binds")
}

/// [`gateway_proxy`], ready: its proxy config and its Gateway received.
pub async fn gateway(cp: SocketAddr, gateway: &str, ports: &[u16]) -> weft_proxy::gateway::Bound {
    let bound = gateway_proxy(cp, gateway, ports).await;
    assert!(
        bound.ready(Duration::from_secs(10)).await,
        "gateway {gateway} ready: {:?}",
        bound.not_ready_reason()
    );
    bound
}

/// An HTTP/1.1 + HTTP/2 server that answers `name` in the `x-server` header and body, echoes
/// request bodies, and can be told to answer a status with `?status=NNN` or wait `?sleep=ms`.
pub struct Echo {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn echo(name: &'static str) -> Echo {
    echo_on("127.0.0.1:0".parse().unwrap(), name).await
}

pub async fn echo_on(addr: SocketAddr, name: &'static str) -> Echo {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let h = h.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    h.fetch_add(1, Ordering::Relaxed);
                    answer(name, req)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Echo { addr, hits, task }
}

async fn answer(
    name: &str,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let query = req.uri().query().unwrap_or("").to_string();
    let get = |k: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(a, _)| *a == k)
            .map(|(_, v)| v.to_string())
    };
    if let Some(ms) = get("sleep") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    if req
        .headers()
        .get("upgrade")
        .is_some_and(|v| v == "websocket")
    {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(io) = on.await {
                let mut io = TokioIo::new(io);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        return Ok(Response::builder()
            .status(101)
            .header("upgrade", "websocket")
            .header("connection", "upgrade")
            .body(Full::new(Bytes::new()))
            .unwrap());
    }
    let status: u16 = get("status").and_then(|s| s.parse().ok()).unwrap_or(200);
    let path = req.uri().path().to_string();
    let version = format!("{:?}", req.version());
    let host = req
        .headers()
        .get("host")
        .map(|h| h.to_str().unwrap_or("").to_string())
        .unwrap_or_else(|| {
            req.uri()
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default()
        });
    let echoed: Vec<String> = req
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-"))
        .map(|(k, v)| format!("{k}={}", v.to_str().unwrap_or("")))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = if body.is_empty() {
        format!("{name} {version} {path} host={host} {}", echoed.join(" "))
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    Ok(Response::builder()
        .status(status)
        .header("x-server", name)
        .body(Full::new(Bytes::from(text)))
        .unwrap())
}

/// Sends one HTTP/1.1 request (any method, headers, body) to `addr` through hyper.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to proxy");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    reply(sender.send_request(req)).await
}

/// Sends one HTTP/2 request (prior knowledge) to `addr`.
pub async fn send_h2(addr: SocketAddr, req: Request<Full<Bytes>>) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to proxy");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    reply(sender.send_request(req)).await
}

/// The response to a request sent, read whole within the raw client's timeout.
async fn reply(
    sent: impl std::future::Future<Output = hyper::Result<Response<Incoming>>>,
) -> Reply {
    let res = tokio::time::timeout(weft_test_support::http::TIMEOUT, sent)
        .await
        .expect("response within the timeout")
        .expect("response");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// GET on an admin API, as JSON.
pub async fn admin(addr: SocketAddr, path: &str) -> serde_json::Value {
    get(addr, "admin", path).await.json()
}

/// A fixed certificate from the test CA, as a proxy's credentials.
#[derive(Debug)]
struct Fixed {
    key: Arc<CertifiedKey>,
    bundle: Arc<Vec<CertificateDer<'static>>>,
}

impl Credentials for Fixed {
    fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        Some(self.key.clone())
    }
    fn trust_bundle(&self) -> Arc<Vec<CertificateDer<'static>>> {
        self.bundle.clone()
    }
}

/// `leaf` as a proxy's fixed credentials (no rotation).
pub fn fixed(leaf: weft_test_support::ca::Leaf) -> Arc<dyn Credentials> {
    Arc::new(Fixed {
        key: leaf.certified_key(),
        bundle: Arc::new(leaf.bundle),
    })
}
