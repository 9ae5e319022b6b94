//! The channel to the control plane, shared by discovery and the certificate source.
//!
//! Two kinds of address:
//! - `https://HOST:15012`: TLS that pins the mesh roots given at start (`--ca-root`) plus the
//!   trust bundle of the workload certificate, and checks the server proves
//!   [`CONTROL_PLANE_NAME`]. The proxy presents its workload certificate once it has one: the
//!   CA answers without it (the bootstrap token authenticates), discovery only with it.
//! - `http://127.0.0.1:15010`: plaintext, which the control plane serves on loopback only
//!   (tests, tools, a proxy on the control plane's own host).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls_pki_types::{CertificateDer, ServerName};
use tonic::transport::{Channel, Endpoint};
use weft_core::identity::CONTROL_PLANE_NAME;

use crate::connect::Connector;
use crate::tunnel::{Credentials, tls};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the control plane is and how to trust it.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    /// `https://HOST:PORT` (mTLS) or `http://HOST:PORT` (plaintext, loopback).
    pub address: String,
    /// For `https://`: the mesh roots to pin before the first certificate.
    pub roots: Vec<CertificateDer<'static>>,
    /// For `https://`: the trust domain of the identity to ask the CA for, which discovery
    /// (admitted only with a certificate) cannot tell yet.
    pub trust_domain: Option<String>,
    /// Opens the TCP connection of a TLS channel (with the proxy's socket mark); the wiring
    /// sets it from the proxy's config.
    pub connector: Connector,
}

/// Why the channel to the control plane cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid control plane address {address}: {source}")]
    InvalidAddress {
        address: String,
        source: tonic::transport::Error,
    },
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: tonic::transport::Error,
    },
    #[error("{address} is a TLS address but no mesh root is pinned (--ca-root FILE)")]
    NoRoot { address: String },
    #[error("no usable mesh root: {0}")]
    NoUsableRoot(#[source] rustls::client::VerifierBuilderError),
    #[error("TLS settings: {0}")]
    Tls(#[from] rustls::Error),
}

impl From<String> for ControlPlane {
    fn from(address: String) -> ControlPlane {
        ControlPlane {
            address,
            roots: Vec::new(),
            trust_domain: None,
            connector: Connector::default(),
        }
    }
}

impl ControlPlane {
    /// True for an `https://` address: the channel is TLS and discovery needs a certificate.
    pub fn secure(&self) -> bool {
        self.address.starts_with("https://")
    }

    /// The endpoint with the proxy's connection settings (timeouts, keepalives). The scheme
    /// given to tonic is always `http`: TLS, when asked for, is done by [`Self::connector`].
    fn endpoint(&self) -> Result<Endpoint, Error> {
        let plain = self.address.replacen("https://", "http://", 1);
        Ok(Endpoint::from_shared(plain)
            .map_err(|source| Error::InvalidAddress {
                address: self.address.clone(),
                source,
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .tcp_keepalive(Some(Duration::from_secs(30))))
    }

    /// Connects now.
    pub async fn connect(&self, creds: Option<Arc<dyn Credentials>>) -> Result<Channel, Error> {
        let endpoint = self.endpoint()?;
        let result = match self.tls(creds)? {
            Some(cfg) => endpoint.connect_with_connector(connector(cfg)).await,
            None => endpoint.connect().await,
        };
        result.map_err(|source| Error::Connect {
            address: self.address.clone(),
            source,
        })
    }

    /// A channel that connects on first use and reconnects by itself.
    pub fn connect_lazy(&self, creds: Option<Arc<dyn Credentials>>) -> Result<Channel, Error> {
        let endpoint = self.endpoint()?;
        Ok(match self.tls(creds)? {
            Some(cfg) => endpoint.connect_with_connector_lazy(connector(cfg)),
            None => endpoint.connect_lazy(),
        })
    }

    fn tls(&self, creds: Option<Arc<dyn Credentials>>) -> Result<Option<Tls>, Error> {
        if !self.secure() {
            return Ok(None);
        }
        if self.roots.is_empty() {
            return Err(Error::NoRoot {
                address: self.address.clone(),
            });
        }
        Ok(Some(Tls {
            roots: Arc::new(self.roots.clone()),
            creds,
            connector: self.connector.clone(),
        }))
    }
}

#[derive(Debug, Clone)]
struct Tls {
    roots: Arc<Vec<CertificateDer<'static>>>,
    creds: Option<Arc<dyn Credentials>>,
    connector: Connector,
}

impl Tls {
    /// Built per connection: the bundle may have gained a root since the last one.
    fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let mut store = RootCertStore::empty();
        let bundle = self.creds.as_ref().map(|c| c.trust_bundle());
        for root in self
            .roots
            .iter()
            .chain(bundle.iter().flat_map(|b| b.iter()))
        {
            // A root that does not parse is skipped; the others still verify.
            let _ = store.add(root.clone());
        }
        let provider = tls::provider();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(Error::NoUsableRoot)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut cfg = match &self.creds {
            Some(c) => builder.with_client_cert_resolver(Arc::new(tls::Current(c.clone()))),
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// Connects TCP (with the proxy's socket mark, so capture lets it pass) and TLS.
fn connector(
    tls: Tls,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Error = std::io::Error,
    Future = impl Send,
> + Send
+ 'static {
    tower::service_fn(move |uri: Uri| {
        let tls = tls.clone();
        async move {
            let other = |e: String| std::io::Error::other(e);
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            let ip: std::net::IpAddr = host.parse().map_err(|_| {
                other(format!(
                    "{uri}: the control plane must be given by IP address"
                ))
            })?;
            let addr = SocketAddr::new(ip, uri.port_u16().unwrap_or(15012));
            let tcp = tls
                .connector
                .connect(addr, CONNECT_TIMEOUT)
                .await
                .map_err(|e| other(e.to_string()))?;
            let cfg = tls.client_config().map_err(std::io::Error::other)?;
            let name =
                ServerName::try_from(CONTROL_PLANE_NAME).map_err(|e| other(e.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await
                .map_err(|e| other(format!("TLS with the control plane at {addr}: {e}")))?;
            Ok(TokioIo::new(stream))
        }
    })
}
