//! The mTLS listener: the control plane's serving certificate, issued by its own CA and
//! renewed at half-life; client certificates verified against the CA's trust bundle (read
//! per connection, so a root rotation applies at once) and optional at the TLS layer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::Stream;
use rcgen::KeyPair;
use rustls::RootCertStore;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use weft_core::identity::CONTROL_PLANE_NAME;

use crate::ca::{Ca, cert};
use crate::peer::{ClientCert, Conn, Peer};
use crate::state::State;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; past this, new connections are closed at once (and
/// counted), so a flood of half-open connections cannot hold every task and descriptor.
const MAX_HANDSHAKES: usize = 256;
/// The serving certificate's lifetime; it is replaced at half of it.
const SERVING_TTL: Duration = Duration::from_secs(24 * 3600);

/// Accepted and authenticated connections; handshakes run concurrently, so a slow or
/// hostile client holds up nobody.
pub fn incoming(
    listener: TcpListener,
    ca: Arc<Ca>,
    state: Arc<State>,
) -> impl Stream<Item = std::io::Result<Conn<TlsStream<TcpStream>>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let serving = Arc::new(Serving {
        ca: ca.clone(),
        held: Mutex::new(None),
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let (tcp, addr) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("discovery (mTLS): accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                state.metrics.refused("overload");
                drop(tcp);
                continue;
            };
            let (tx, ca, serving, state) = (tx.clone(), ca.clone(), serving.clone(), state.clone());
            tokio::spawn(async move {
                let _slot = slot;
                match handshake(tcp, addr, &ca, serving).await {
                    Ok(conn) => {
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Err((reason, why)) => {
                        tracing::warn!(peer = %addr, reason, "discovery (mTLS): refused a connection: {why}");
                        state.metrics.refused(reason);
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

async fn handshake(
    tcp: TcpStream,
    addr: SocketAddr,
    ca: &Ca,
    serving: Arc<Serving>,
) -> Result<Conn<TlsStream<TcpStream>>, (&'static str, String)> {
    let _ = tcp.set_nodelay(true);
    let cfg = server_config(ca, serving).map_err(|e| ("config", e))?;
    let accept = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return Err(("handshake", e.to_string())),
        Err(_) => return Err(("handshake-timeout", "no TLS handshake in 10s".into())),
    };
    let client = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        Some(leaf) => Some(ClientCert::parse(leaf).map_err(|e| ("identity", e.to_string()))?),
        None => None,
    };
    Ok(Conn {
        io: tls,
        peer: Peer {
            addr,
            tls: true,
            client,
        },
    })
}

fn server_config(ca: &Ca, serving: Arc<Serving>) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for (der, _) in ca.authority().trust_bundle() {
        let _ = roots.add(der);
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("no usable root in the trust bundle: {e}"))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(serving);
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// The control plane's serving certificate, issued on first use and again past half-life.
#[derive(Debug)]
struct Serving {
    ca: Arc<Ca>,
    /// The key and when to replace it (Unix seconds).
    held: Mutex<Option<(Arc<CertifiedKey>, i64)>>,
}

impl Serving {
    fn issue(&self) -> Result<(Arc<CertifiedKey>, i64), String> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let authority = self.ca.authority();
        let leaf = authority
            .sign_serving(&key, CONTROL_PLANE_NAME, SERVING_TTL)
            .map_err(|e| e.to_string())?;
        let summary = cert::Summary::of(&leaf).map_err(|e| e.to_string())?;
        let chain = std::iter::once(leaf)
            .chain(authority.chain().iter().cloned())
            .collect();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signer = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(der)
            .map_err(|e| e.to_string())?;
        let renew_at = summary.not_before + (summary.not_after - summary.not_before) / 2;
        tracing::info!(name = CONTROL_PLANE_NAME, serial = %summary.serial, "control-plane serving certificate issued");
        Ok((Arc::new(CertifiedKey::new(chain, signer)), renew_at))
    }
}

impl ResolvesServerCert for Serving {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match &*held {
            Some((key, renew_at)) if *renew_at > cert::now() => Some(key.clone()),
            _ => match self.issue() {
                Ok((key, renew_at)) => {
                    *held = Some((key.clone(), renew_at));
                    Some(key)
                }
                Err(e) => {
                    tracing::error!("cannot issue the control plane's serving certificate: {e}");
                    // An older certificate beats none while it is still valid.
                    held.as_ref().map(|(k, _)| k.clone())
                }
            },
        }
    }
}
