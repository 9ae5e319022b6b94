//! The tunnel over loopback with certificates from a test CA: streams reach their target and
//! carry the client's identity; one TLS connection serves many streams; a server with the
//! wrong identity, a client from another CA, and plaintext are refused.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

#[derive(Debug)]
struct Static {
    key: Arc<CertifiedKey>,
    bundle: Arc<Vec<CertificateDer<'static>>>,
}

impl Credentials for Static {
    fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        Some(self.key.clone())
    }
    fn trust_bundle(&self) -> Arc<Vec<CertificateDer<'static>>> {
        self.bundle.clone()
    }
}

struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    fn issue(&self, id: &str) -> Arc<dyn Credentials> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![SanType::URI(id.try_into().unwrap())];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer = tls::provider().key_provider.load_private_key(der).unwrap();
        Arc::new(Static {
            key: Arc::new(CertifiedKey::new(vec![cert.der().clone()], signer)),
            bundle: Arc::new(vec![self.0.der().clone()]),
        })
    }
}

const CLIENT: &str = "spiffe://test.local/ns/shop/sa/cart";
const SERVER: &str = "spiffe://test.local/ns/shop/sa/pricing";

struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, SocketAddr)>>>,
    refused: Arc<AtomicUsize>,
    _trigger: crate::drain::Trigger,
}

/// A tunnel server that answers each stream with `<identity> <target>` and then echoes.
async fn server(creds: Arc<dyn Credentials>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, drain) = crate::drain::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let (s, r) = (seen.clone(), refused.clone());
    let on_refused: OnRefused = Arc::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(run(
        listener,
        creds,
        drain,
        on_refused,
        move |mut a: Accepted| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push((a.identity.to_string(), a.peer));
                let hello = format!("{} {}\n", a.identity, a.target);
                a.io.write_all(hello.as_bytes()).await.unwrap();
                let mut buf = [0u8; 64];
                while let Ok(n) = a.io.read(&mut buf).await {
                    if n == 0 || a.io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        },
    ));
    Server {
        addr,
        seen,
        refused,
        _trigger: trigger,
    }
}

async fn line(s: &mut Stream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while s.read_exact(&mut b).await.is_ok() && b[0] != b'\n' {
        out.push(b[0]);
    }
    String::from_utf8(out).unwrap()
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn streams_reach_their_target_with_the_client_identity_over_one_connection() {
    let ca = Ca::new("mesh root");
    let srv = server(ca.issue(SERVER)).await;
    let client = Client::new(ca.issue(CLIENT));
    let target: SocketAddr = "198.18.0.9:8080".parse().unwrap();
    let mut a = client
        .connect(srv.addr, &SERVER.into(), &CLIENT.into(), target, T)
        .await
        .expect("first stream");
    assert_eq!(line(&mut a).await, format!("{CLIENT} {target}"));
    a.write_all(b"ping\n").await.unwrap();
    assert_eq!(line(&mut a).await, "ping");
    let other: SocketAddr = "198.18.0.9:9090".parse().unwrap();
    let mut b = client
        .connect(srv.addr, &SERVER.into(), &CLIENT.into(), other, T)
        .await
        .expect("second stream");
    assert_eq!(line(&mut b).await, format!("{CLIENT} {other}"));
    let seen = srv.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].1, seen[1].1,
        "both streams share one TLS connection"
    );
}

#[tokio::test]
async fn a_server_with_another_identity_is_refused_by_the_client() {
    let ca = Ca::new("mesh root");
    let srv = server(ca.issue("spiffe://test.local/ns/shop/sa/impostor")).await;
    let client = Client::new(ca.issue(CLIENT));
    let e = client
        .connect(
            srv.addr,
            &SERVER.into(),
            &CLIENT.into(),
            "198.18.0.9:80".parse().unwrap(),
            T,
        )
        .await
        .expect_err("wrong identity");
    let text = e.chain();
    assert!(text.contains("impostor") && text.contains(SERVER), "{text}");
    assert_eq!(e.stage(), "tunnel");
}

#[tokio::test]
async fn clients_from_another_ca_and_plaintext_are_refused_and_counted() {
    let ca = Ca::new("mesh root");
    let srv = server(ca.issue(SERVER)).await;
    let foreign = Client::new(Ca::new("another root").issue(CLIENT));
    let target: SocketAddr = "198.18.0.9:80".parse().unwrap();
    // The foreign client cannot verify the server either; both sides refuse.
    assert!(
        foreign
            .connect(srv.addr, &SERVER.into(), &CLIENT.into(), target, T)
            .await
            .is_err()
    );
    let mut plain = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(T, plain.read_to_end(&mut buf)).await;
    weft_test_support::wait::eventually("both refusals counted", T, async || {
        srv.refused.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert_eq!(srv.refused.load(Ordering::SeqCst), 2);
    assert!(srv.seen.lock().unwrap().is_empty(), "no stream was opened");
    // A good client still gets through afterwards.
    let good = Client::new(ca.issue(CLIENT));
    assert!(
        good.connect(srv.addr, &SERVER.into(), &CLIENT.into(), target, T)
            .await
            .is_ok()
    );
}
