//! The client side: one TLS connection per peer (its tunnel address and the identity it must
//! prove), HTTP/2 over it, and a CONNECT stream for each upstream connection, whose target is
//! the original destination.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::client::conn::http2;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;

use super::peer::Metadata;
use super::tls::{self, Credentials};
use crate::body::{self, Body};
use crate::connect::Connector;
use crate::error::{Kind, ProxyError};

/// A byte stream to the original destination, through the peer's proxy.
pub type Stream = TokioIo<Upgraded>;

type Slot = Arc<tokio::sync::Mutex<Option<http2::SendRequest<Body>>>>;

/// (peer tunnel address, identity it must prove, identity this proxy presents).
type PeerKey = (SocketAddr, Arc<str>, Arc<str>);

/// The configuration of the workload a client speaks for (its [`super::peer`] metadata).
pub type Workload = tokio::sync::watch::Receiver<Option<Arc<weft_core::model::ProxyConfig>>>;

#[derive(Debug)]
pub struct Client {
    creds: Arc<dyn Credentials>,
    peers: Mutex<HashMap<PeerKey, Slot>>,
    connector: Connector,
    workload: Option<Workload>,
}

impl Client {
    pub fn new(creds: Arc<dyn Credentials>) -> Client {
        Client {
            creds,
            peers: Mutex::new(HashMap::new()),
            connector: Connector::default(),
            workload: None,
        }
    }

    /// Names `workload` on each CONNECT ([`super::peer::HEADER`]), for the peer's metrics.
    pub fn with_workload(mut self, workload: Workload) -> Client {
        self.workload = Some(workload);
        self
    }

    /// Opens its TCP connections with `connector` (the proxy's socket mark).
    pub fn with_connector(mut self, connector: Connector) -> Client {
        self.connector = connector;
        self
    }

    /// This proxy's credentials.
    pub fn credentials(&self) -> &Arc<dyn Credentials> {
        &self.creds
    }

    /// Opens a stream to `target` through the proxy at `peer`, which must prove `identity`,
    /// on a connection made while this proxy presented `source`.
    pub async fn connect(
        &self,
        peer: SocketAddr,
        identity: &Arc<str>,
        source: &Arc<str>,
        target: SocketAddr,
        timeout: Duration,
    ) -> Result<Stream, ProxyError> {
        let mut sender = self.sender(peer, identity, source, timeout).await?;
        let meta = (self.workload.as_ref())
            .and_then(|w| w.borrow().as_deref().map(Metadata::of_config))
            .and_then(|m| m.header());
        let mut req = Request::builder()
            .method(Method::CONNECT)
            .uri(target.to_string());
        if let Some(v) = meta {
            req = req.header(super::peer::HEADER, v);
        }
        let req = req
            .body(body::empty())
            .map_err(|e| ProxyError::caused(Kind::Tunnel(format!("CONNECT {target}")), e))?;
        let res = sender.send_request(req).await.map_err(|e| {
            ProxyError::caused(Kind::Tunnel(format!("CONNECT {target} via {peer}")), e)
        })?;
        match res.status() {
            StatusCode::OK => {}
            StatusCode::FORBIDDEN => {
                let why = res
                    .headers()
                    .get(crate::error::ERROR_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("denied by the peer")
                    .to_string();
                return Err(Kind::Denied(why).into());
            }
            s => {
                return Err(Kind::Tunnel(format!(
                    "CONNECT {target} via {peer}: the peer answered {s}"
                ))
                .into());
            }
        }
        hyper::upgrade::on(res)
            .await
            .map(TokioIo::new)
            .map_err(|e| {
                ProxyError::caused(Kind::Tunnel(format!("CONNECT {target} via {peer}")), e)
            })
    }

    /// The HTTP/2 connection to `peer`, made (once, even for concurrent callers) if needed.
    async fn sender(
        &self,
        peer: SocketAddr,
        identity: &Arc<str>,
        source: &Arc<str>,
        timeout: Duration,
    ) -> Result<http2::SendRequest<Body>, ProxyError> {
        let slot = {
            let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            peers.retain(|_, s| {
                s.try_lock()
                    .map_or(true, |g| g.as_ref().is_some_and(|c| !c.is_closed()))
            });
            peers
                .entry((peer, identity.clone(), source.clone()))
                .or_default()
                .clone()
        };
        let mut held = slot.lock().await;
        if let Some(s) = held.as_ref().filter(|s| !s.is_closed()) {
            let mut s = s.clone();
            if s.ready().await.is_ok() {
                return Ok(s);
            }
        }
        let sender = self.handshake(peer, identity, timeout).await?;
        *held = Some(sender.clone());
        Ok(sender)
    }

    async fn handshake(
        &self,
        peer: SocketAddr,
        identity: &str,
        timeout: Duration,
    ) -> Result<http2::SendRequest<Body>, ProxyError> {
        let tcp = self.connector.connect(peer, timeout).await?;
        let _ = tcp.set_nodelay(true);
        let cfg = tls::client_config(self.creds.clone(), vec![identity.to_string()]);
        let name = ServerName::from(peer.ip());
        let tls = tokio::time::timeout(
            timeout,
            tokio_rustls::TlsConnector::from(cfg).connect(name, tcp),
        )
        .await
        .map_err(|_| {
            ProxyError::from(Kind::Tunnel(format!("TLS handshake with {peer} timed out")))
        })?
        .map_err(|e| ProxyError::caused(Kind::Tunnel(format!("TLS handshake with {peer}")), e))?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_stream_window_size(super::STREAM_WINDOW)
            .initial_connection_window_size(super::CONNECTION_WINDOW)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ProxyError::caused(Kind::Tunnel(format!("HTTP/2 with {peer}")), e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "tunnel connection ended: {e}");
            }
        });
        Ok(sender)
    }
}
