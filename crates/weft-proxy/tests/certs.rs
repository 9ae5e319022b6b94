//! The workload certificate source against a real in-process control plane: fetch, rotation
//! under open TLS connections, and the proxy's readiness and `/certs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use weft_core::identity::SpiffeId;
use weft_proxy::certs::{self, CertInfo, GrpcIssuer, Source};
use weft_proxy::tunnel::Credentials;
use weft_test_support::dir::TempDir;
use weft_test_support::http::{self, Reply};
use weft_test_support::wait::eventually;

const MESH: &str = "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: mesh}\nspec: {trustDomain: shop.local}\n";
const CART: &str = "spiffe://shop.local/ns/shop/sa/cart";

/// A config dir, the CA's state and bootstrap file, and the proxy's token file.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = TempDir::new(&format!("proxy-certs-{name}"));
        dir.write("config/mesh.yaml", MESH);
        dir.write("token", "cart-token\n");
        Env { dir }
    }

    fn token_file(&self) -> PathBuf {
        self.dir.join("token")
    }

    fn credentials(&self, tokens: &[&str]) {
        let creds: Vec<serde_json::Value> = tokens
            .iter()
            .map(|t| {
                let sha = weft_control::ca::auth::token_sha256(t);
                serde_json::json!({"tokenSha256": sha, "namespace": "shop", "serviceAccount": "cart", "pod": format!("cart-{t}")})
            })
            .collect();
        let file = serde_json::json!({ "credentials": creds }).to_string();
        self.dir.write("bootstrap.json", &file);
    }

    async fn control_plane(&self) -> weft_control::Bound {
        let mut cfg =
            weft_control::Config::loopback(self.dir.join("config"), self.dir.join("state"));
        cfg.ca.bootstrap = Some(self.dir.join("bootstrap.json"));
        weft_control::build(cfg)
            .await
            .expect("control plane starts")
    }
}

/// The mesh tunnel's own mTLS configs on both sides, each handshake taking the source's
/// current certificate (and never resuming a session).
fn configs(source: &Arc<Source>) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let creds: Arc<dyn Credentials> = source.clone();
    let id = source.info().expect("a certificate").spiffe_id;
    (
        weft_proxy::tunnel::tls::server_config(creds.clone()),
        weft_proxy::tunnel::tls::client_config(creds, vec![id]),
    )
}

type Client = tokio_rustls::client::TlsStream<tokio::io::DuplexStream>;
type Server = tokio_rustls::server::TlsStream<tokio::io::DuplexStream>;

async fn connect(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) -> (Client, Server) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server.clone());
    let accept = tokio::spawn(async move { acceptor.accept(b).await });
    let c = tokio_rustls::TlsConnector::from(client.clone())
        .connect(ServerName::try_from("cart.shop").unwrap(), a)
        .await
        .expect("client handshake");
    let s = accept.await.unwrap().expect("server handshake");
    (c, s)
}

fn serial_of(certs: Option<&[CertificateDer<'static>]>) -> String {
    let der = &certs.expect("the peer sent a certificate")[0];
    let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
    c.raw_serial()
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .unwrap_or_else(|_| panic!("{what} within 15s"))
}

#[tokio::test]
async fn fetches_from_the_control_plane_and_rotates_while_open_connections_keep_the_old_one() {
    let env = Env::new("rotate");
    env.credentials(&["cart-token"]);
    let cp = env.control_plane().await;
    let source = Source::new();
    let issuer = GrpcIssuer::new(
        &certs::Config {
            control_plane: format!("http://{}", cp.discovery).into(),
            token_file: env.token_file(),
            ttl: Some(Duration::from_secs(2)),
        },
        None,
    )
    .unwrap();
    let (_id, rx) = watch::channel(Some(SpiffeId::parse(CART).unwrap()));
    let task = tokio::spawn(certs::run(
        source.clone(),
        issuer,
        Some(Duration::from_secs(2)),
        rx,
    ));

    within("first certificate", source.ready().wait_for(|r| *r))
        .await
        .unwrap();
    let first: CertInfo = source.info().unwrap();
    assert_eq!(first.spiffe_id, CART);
    assert_eq!(
        first.bundle_pem,
        cp.ca.trust_bundle_pem(),
        "the CA's bundle"
    );
    assert!(
        first.not_after - first.not_before <= 62,
        "2s TTL, 60s back-dated"
    );

    let (server_cfg, client_cfg) = configs(&source);
    let (mut c1, mut s1) = connect(&server_cfg, &client_cfg).await;
    assert_eq!(serial_of(c1.get_ref().1.peer_certificates()), first.serial);
    assert_eq!(serial_of(s1.get_ref().1.peer_certificates()), first.serial);
    let old_key = source.certified_key().unwrap();

    let mut sub = source.subscribe();
    let second = within(
        "a rotation",
        sub.wait_for(|i| i.as_ref().is_some_and(|i| i.serial != first.serial)),
    )
    .await
    .unwrap()
    .clone()
    .unwrap();

    // The open connection is untouched: same certificates, still carrying data.
    c1.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    s1.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    s1.write_all(b"pong").await.unwrap();
    c1.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
    assert_eq!(serial_of(c1.get_ref().1.peer_certificates()), first.serial);
    assert_eq!(
        serial_of(Some(&old_key.cert)),
        first.serial,
        "a held key does not change"
    );

    // A new handshake with the same configs gets the new certificate (the one current then:
    // on a slow machine yet another rotation may have come in between).
    let before = source.info().unwrap().serial;
    let (c2, s2) = connect(&server_cfg, &client_cfg).await;
    let after = source.info().unwrap().serial;
    for got in [
        serial_of(c2.get_ref().1.peer_certificates()),
        serial_of(s2.get_ref().1.peer_certificates()),
    ] {
        assert_ne!(got, first.serial);
        assert!(got == before || got == after, "{got} is not current");
    }
    assert_ne!(second.serial, first.serial);

    let issued = http::get(cp.admin, "admin", "/debug/ca").await.json();
    let serials: Vec<&str> = issued["issued"][CART]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["serial"].as_str())
        .collect();
    assert!(serials.contains(&second.serial.as_str()), "{serials:?}");
    task.abort();
    cp.shutdown().await;
}

#[tokio::test]
async fn the_proxy_is_ready_only_with_a_certificate_and_shows_it_at_certs() {
    let env = Env::new("ready");
    env.credentials(&["someone-else"]);
    let cp = env.control_plane().await;
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let proxy = weft_proxy::build(weft_proxy::Config {
        identity: weft_proxy::Identity {
            id: "cart-0.shop".into(),
            namespace: "shop".into(),
            workload: "cart".into(),
            pod: "cart-0".into(),
            ip: "127.0.0.1".parse().unwrap(),
            service_account: "cart".into(),
            labels: Default::default(),
        },
        outbound: any,
        inbound: any,
        outbound_target: None,
        inbound_app: Some("127.0.0.1:9".parse().unwrap()),
        tunnel: any,
        engine: weft_proxy::Settings {
            control_plane: format!("http://{}", cp.discovery).into(),
            admin: any,
            readiness: any,
            metrics: any,
            set_log_level: None,
            log_level: "info".into(),
            bootstrap_token_file: Some(env.token_file()),
            credentials: None,
            mark: 0,
            revision: None,
        },
    })
    .await
    .unwrap();

    // Not ready, and the reason says what is missing and why.
    let wait = Duration::from_secs(15);
    let body = eventually("the refusal to show in readiness", wait, async || {
        let r = http::get(proxy.readiness, "proxy", "/healthz/ready").await;
        assert_eq!(r.status, 503, "{}", r.body);
        let shown = r.body.contains("unknown bootstrap token");
        if shown { Ok(r.body) } else { Err(r.body) }
    })
    .await;
    assert!(
        body.contains("certificate not issued: the CA refused (Unauthenticated)"),
        "{body}"
    );
    assert!(
        !body.contains("waiting for first config"),
        "config arrived: {body}"
    );
    let Reply { status, body, .. } = http::get(proxy.admin, "proxy", "/certs").await;
    assert_eq!(status, 503);
    assert!(body.contains("certificate not issued"), "{body}");

    // The operator adds the credential: the proxy retries and becomes ready.
    env.credentials(&["someone-else", "cart-token"]);
    assert!(
        proxy.ready(Duration::from_secs(15)).await,
        "ready with a certificate"
    );
    let Reply { status, body, .. } = http::get(proxy.admin, "proxy", "/certs").await;
    assert_eq!(status, 200, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["spiffeId"], CART);
    let held = proxy.certificate().unwrap();
    assert_eq!(info["serial"], held.serial);
    assert_eq!(info["notAfter"], held.not_after);
    assert_eq!(info["chainPem"].as_array().unwrap().len(), 1);
    assert_eq!(info["bundlePem"][0], cp.ca.trust_bundle_pem()[0]);
    let text = certs::describe(&held);
    assert!(
        text.contains(CART) && text.contains("weft root CA shop.local"),
        "{text}"
    );
    // A sidecar lists no enrolled pods, and says why.
    let Reply { status, body, .. } = http::get(proxy.admin, "proxy", "/pods").await;
    assert_eq!(status, 404);
    assert!(body.contains("not a node proxy"), "{body}");
    let status = http::get(proxy.readiness, "proxy", "/healthz/ready")
        .await
        .status;
    assert_eq!(status, 200);
    proxy.drain(Some(Duration::ZERO)).await;
    cp.shutdown().await;
}
