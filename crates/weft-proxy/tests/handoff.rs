//! Restarting a node proxy without resets, against a real control plane and a pod in a
//! network namespace of its own (198.18.77.0/24 on its loopback): a second node proxy on the
//! same hand-off path takes the pod's listeners over while a client keeps making requests
//! through them and holds one long-lived connection. No request fails, the long-lived
//! connection keeps exchanging data on the old proxy until the client closes it, the old proxy
//! is done then, and the new one serves every new connection. The same over mTLS discovery,
//! where the control plane admits one stream per node credential and the pod has its own
//! certificate. A new proxy that never gets ready leaves the old one serving, and a later one
//! still takes over.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{T, control_plane_config, enrolled, node_config, served, write_enrolled};
use futures_util::FutureExt;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use weft_proxy::handoff;
use weft_proxy::node::{self, PodState};
use weft_test_support::dir::TempDir;
use weft_test_support::http;
use weft_test_support::wait::eventually;

/// The pod's address, and the address of the app it sends every connection to.
const POD_IP: [u8; 4] = [198, 18, 77, 2];
const APP_IP: [u8; 4] = [198, 18, 77, 3];

/// A network namespace made for one test (`ip netns`), removed when dropped.
struct Namespace {
    name: String,
    ns: weft_proxy::netns::Netns,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {} (this test needs root)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Namespace {
    fn new(tag: &str) -> Namespace {
        let name = format!("weft-handoff-{}-{tag}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Namespace {
            ns: weft_proxy::netns::Netns::open(&PathBuf::from(format!("/run/netns/{name}")))
                .unwrap(),
            name,
        };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        for addr in [POD_IP, APP_IP] {
            let a = format!("{}/32", IpAddr::from(addr));
            ip(&["-n", &ns.name, "addr", "add", &a, "dev", "lo"]);
        }
        ns
    }

    fn path(&self) -> String {
        self.ns.path().display().to_string()
    }

    /// A connection to `addr` from inside the namespace.
    async fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let s = self.ns.socket(addr)?;
        s.set_nonblocking(true)?;
        tokio::net::TcpSocket::from_std_stream(s.into())
            .connect(addr)
            .await
    }

    /// Sends `what`, closes its side, and reads the echo to the end.
    async fn request(&self, addr: SocketAddr, what: &str) -> std::io::Result<String> {
        let mut s = self.connect(addr).await?;
        s.write_all(what.as_bytes()).await?;
        s.shutdown().await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// An echo server inside the namespace, at APP_IP.
fn echo_app(ns: &Namespace) -> SocketAddr {
    let l = ns.ns.listen(SocketAddr::from((APP_IP, 0))).unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Requests through both of the pod's listeners, one after the other, until stopped; every
/// one that does not come back whole is a failure.
#[derive(Default)]
struct Load {
    ok: AtomicU64,
    failed: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Load {
    fn start(ns: Arc<Namespace>, through: Vec<SocketAddr>) -> Arc<Load> {
        let load = Arc::new(Load::default());
        let l = load.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            while !l.stop.load(Ordering::Relaxed) {
                for &addr in &through {
                    n += 1;
                    let want = format!("request {n}");
                    match tokio::time::timeout(T, ns.request(addr, &want)).await {
                        Ok(Ok(got)) if got == want => l.ok.fetch_add(1, Ordering::Relaxed),
                        other => {
                            l.failed.lock().unwrap().push(format!("{addr}: {other:?}"));
                            0
                        }
                    };
                }
            }
        });
        load
    }

    fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits for `n` more successful requests.
    async fn more(&self, n: u64) {
        let target = self.ok() + n;
        eventually(&format!("{n} more requests"), T, async || {
            self.ok() >= target
        })
        .await;
    }

    fn stop(&self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.failed.lock().unwrap().clone()
    }
}

/// One line out, the same line back.
async fn exchange(c: &mut BufReader<TcpStream>, line: &str) {
    c.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut back = String::new();
    tokio::time::timeout(T, c.read_line(&mut back))
        .await
        .expect("the echo in time")
        .unwrap();
    assert_eq!(back, format!("{line}\n"));
}

async fn metrics(addr: SocketAddr) -> String {
    http::get(addr, "localhost", "/metrics").await.body
}

/// The metrics line starting with `prefix` (labels included), for messages.
fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(prefix))
}

struct Fixture {
    dir: TempDir,
    _cp: weft_control::Bound,
    ns: Arc<Namespace>,
    /// `host:port` of plaintext discovery, or of mTLS discovery with the mesh root to pin.
    discovery: String,
    mtls: Option<Vec<CertificateDer<'static>>>,
}

/// The node proxy's credential (role node) and web-0's registration on node-a.
fn bootstrap(dir: &TempDir) {
    let sha = weft_control::ca::auth::token_sha256;
    let creds = serde_json::json!([
        {"tokenSha256": sha("node-token"), "namespace": "weft-system", "serviceAccount": "weft-node",
            "pod": "node-a", "role": "node", "address": "127.0.0.1"},
        {"tokenSha256": sha("web-token"), "namespace": "shop", "serviceAccount": "web",
            "pod": "web-0", "node": "node-a"},
    ]);
    let file = serde_json::json!({ "credentials": creds }).to_string();
    dir.write("bootstrap.json", &file);
    dir.write("node-token", "node-token\n");
}

async fn fixture(tag: &str, mtls: bool) -> Fixture {
    let dir = TempDir::new(&format!("handoff-{tag}"));
    let mut cfg = control_plane_config(&dir, IpAddr::from(POD_IP));
    if mtls {
        bootstrap(&dir);
        cfg.secure_discovery_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        cfg.ca.bootstrap = Some(dir.join("bootstrap.json"));
    }
    let cp = weft_control::build(cfg).await.unwrap();
    let ns = Arc::new(Namespace::new(tag));
    let app = echo_app(&ns);
    let pod = enrolled("web-0.shop", IpAddr::from(POD_IP), &ns.path(), app);
    write_enrolled(&dir, &[pod]);
    let (discovery, mtls) = match cp.secure_discovery.filter(|_| mtls) {
        Some(secure) => {
            let root = std::fs::read(dir.join("state/ca/root-cert.pem")).unwrap();
            let roots = CertificateDer::pem_slice_iter(&root).collect::<Result<_, _>>();
            (secure.to_string(), Some(roots.unwrap()))
        }
        None => (cp.discovery.to_string(), None),
    };
    Fixture {
        dir,
        _cp: cp,
        ns,
        discovery,
        mtls,
    }
}

impl Fixture {
    /// A node proxy on the fixture's hand-off path; `discovery` overrides the control plane.
    async fn node(
        &self,
        discovery: Option<&str>,
        ready_within: Duration,
    ) -> Result<node::Bound, node::Error> {
        let mut cfg = node_config(&self.dir, discovery.unwrap_or(&self.discovery));
        if let Some(roots) = &self.mtls {
            let cp = &mut cfg.engine.control_plane;
            cp.address = cp.address.replace("http://", "https://");
            cp.roots = roots.clone();
            cp.trust_domain = Some("cluster.local".into());
            cfg.engine.bootstrap_token_file = Some(self.dir.join("node-token"));
        }
        cfg.handoff = Some(handoff::Config {
            path: self.dir.join("node-a.handoff"),
            ready_within,
        });
        node::build(cfg).await
    }
}

/// A node proxy serving the pod hands over to a new one while a client makes requests
/// through `listeners` of the pod and holds a long-lived connection through the first.
async fn hand_off_under_load(f: Fixture, through: fn(&node::PodListeners) -> Vec<SocketAddr>) {
    let old = f.node(None, T).await.unwrap();
    let pod = served(&old, "web-0.shop").await;
    let through = through(&pod);
    let load = Load::start(f.ns.clone(), through.clone());
    let mut long = BufReader::new(f.ns.connect(through[0]).await.unwrap());
    exchange(&mut long, "before").await;
    load.more(20).await;

    // The new proxy returns once it serves the pod with the same sockets and the old one
    // stopped accepting.
    let new = f.node(None, T).await.unwrap();
    assert_eq!(new.pod("web-0.shop"), Some(PodState::Served(pod)));
    tokio::time::timeout(T, old.handed_off()).await.unwrap();
    // Its own listeners too: admin, readiness and metrics stay where they were.
    let own = |n: &node::Bound| (n.admin, n.readiness, n.metrics);
    assert_eq!(own(&new), own(&old));
    let took = metrics(new.metrics).await;
    let taken = "weft_node_handoffs_total{side=\"take\",result=\"ok\"} 1";
    assert!(
        took.contains(taken),
        "{:?}",
        line(&took, "weft_node_handoffs")
    );

    // The old proxy drains: its long-lived connection keeps working, and holds it up.
    let mut old_exit = tokio::spawn(old.drain(Some(Duration::from_secs(120))));
    for i in 0..5 {
        exchange(&mut long, &format!("after {i}")).await;
        load.more(10).await;
    }
    assert!(
        (&mut old_exit).now_or_never().is_none(),
        "the old proxy must wait for its connection"
    );
    // Every new connection is the new proxy's.
    let served_new = "istio_tcp_connections_opened_total{";
    eventually("the new proxy to count connections", T, async || {
        line(&metrics(new.metrics).await, served_new).map(str::to_string)
    })
    .await;

    // The client closes; the close comes back clean (no reset) and the old proxy is done.
    long.get_mut().shutdown().await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(T, long.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "a clean close: {read:?}");
    drop(long);
    tokio::time::timeout(T, old_exit)
        .await
        .expect("the old proxy is done once its connection closed")
        .unwrap();

    load.more(50).await;
    let failed = load.stop();
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
    assert!(load.ok() > 100, "{} requests", load.ok());
    new.drain(Some(T)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: creates a network namespace (ip netns) and enters it (setns)"]
async fn a_new_node_proxy_takes_the_listeners_over_without_failing_a_request() {
    let f = fixture("ok", false).await;
    hand_off_under_load(f, |pod| vec![pod.inbound, pod.outbound]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: creates a network namespace (ip netns) and enters it (setns)"]
async fn over_mtls_the_old_node_proxy_yields_its_discovery_stream_to_the_new_one() {
    let f = fixture("mtls", true).await;
    // Plaintext inbound is refused under STRICT mTLS: the client goes out through the pod.
    hand_off_under_load(f, |pod| {
        assert!(
            pod.tunnel.is_some(),
            "a pod with a certificate has a tunnel"
        );
        vec![pod.outbound]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: creates a network namespace (ip netns) and enters it (setns)"]
async fn a_new_node_proxy_that_never_gets_ready_leaves_the_old_one_serving() {
    let f = fixture("unready", false).await;
    let old = f.node(None, T).await.unwrap();
    let pod = served(&old, "web-0.shop").await;
    let load = Load::start(f.ns.clone(), vec![pod.inbound, pod.outbound]);
    load.more(20).await;

    // Its control plane is unreachable: no config for the pod, so never ready.
    let nowhere = "127.0.0.1:1";
    let err = f
        .node(Some(nowhere), Duration::from_secs(2))
        .await
        .expect_err("a proxy with no control plane cannot be ready");
    assert!(err.to_string().contains("not ready within 2s"), "{err}");
    load.more(20).await;
    assert!(old.handed_off().now_or_never().is_none(), "still accepting");
    let text = metrics(old.metrics).await;
    let failed = "weft_node_handoffs_total{side=\"give\",result=\"failed\"} 1";
    assert!(
        text.contains(failed),
        "{:?}",
        line(&text, "weft_node_handoffs")
    );

    // The old proxy still owns the path and its discovery: a proxy that can be ready takes
    // over.
    let new = f.node(None, T).await.unwrap();
    assert_eq!(new.pod("web-0.shop"), Some(PodState::Served(pod)));
    tokio::time::timeout(T, old.handed_off()).await.unwrap();
    let old_exit = tokio::spawn(old.drain(Some(T)));
    load.more(20).await;
    tokio::time::timeout(T, old_exit).await.unwrap().unwrap();
    let failed = load.stop();
    assert!(failed.is_empty(), "{} failed: {failed:#?}", failed.len());
    new.drain(Some(T)).await;
}
