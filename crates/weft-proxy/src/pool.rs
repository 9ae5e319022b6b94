//! Upstream connections: HTTP/1.1 keep-alive reuse and one multiplexed HTTP/2 connection per
//! [`Key`], each with a connect timeout. Requests keep their own `Host` / `:authority`; the pool
//! decides only where the bytes go.
//!
//! A connection is reused only for the same destination reached the same way between the same
//! two identities: the key holds the address and the [`Transport`] (delivery to this pod's own
//! app, plaintext, or the tunnel with the peer identity it proved and the identity this proxy
//! presented). So delivery to the local app, which comes after inbound policy, never shares a
//! connection with outbound traffic to the same pod address, and a request can neither skip
//! the server side's authorization nor loop back into this pod's own tunnel.

mod metrics;

pub use metrics::Metrics;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

use weft_core::model::Endpoint;

use crate::body::Body;
use crate::connect::Connector;
use crate::error::{Kind, ProxyError};
use crate::io::Io;
use crate::tunnel;

/// Idle HTTP/1 connections kept per key.
const MAX_IDLE_PER_ENDPOINT: usize = 64;

/// Idle HTTP/1 connections are closed after this long unused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type Idle = Arc<Mutex<HashMap<Key, Vec<(tokio::time::Instant, http1::SendRequest<Body>)>>>>;

/// Where an upstream connection goes: an address, reached directly or through the mTLS tunnel
/// of the proxy in front of it.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    pub addr: SocketAddr,
    /// The peer proxy's tunnel address and the identity it must prove.
    pub tunnel: Option<(SocketAddr, &'a str)>,
    /// Delivery to the app of this proxy's own pod, after inbound policy.
    pub local: bool,
}

impl Upstream<'_> {
    /// The app in this proxy's own pod.
    pub fn local(addr: SocketAddr) -> Upstream<'static> {
        Upstream {
            addr,
            tunnel: None,
            local: true,
        }
    }

    /// An address reached directly, in plaintext (a destination outside the mesh).
    #[cfg(test)]
    pub fn direct(addr: SocketAddr) -> Upstream<'static> {
        Upstream {
            addr,
            tunnel: None,
            local: false,
        }
    }

    /// Endpoint `ep` on service port `port`: through its proxy's tunnel when it has one.
    pub fn endpoint(ep: &Endpoint, port: u16) -> Option<Upstream<'_>> {
        Some(Upstream {
            addr: ep.target(port)?,
            tunnel: ep.tunnel.map(|t| (t, ep.identity.as_str())),
            local: false,
        })
    }
}

/// How a pooled connection is secured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    /// To the app of this proxy's own pod (after inbound policy).
    Local,
    /// Plaintext TCP, outbound.
    Plain,
    /// A stream through the tunnel of the proxy at `peer`, which proved `peer_identity`,
    /// opened while this proxy presented `source`.
    Tunnel {
        peer: SocketAddr,
        peer_identity: Arc<str>,
        source: Arc<str>,
    },
}

/// Everything that makes two upstream connections different.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub addr: SocketAddr,
    pub transport: Transport,
}

#[derive(Debug, Default)]
pub struct Pool {
    /// HTTP/1 connections that are ready for a request.
    h1: Idle,
    h2: Mutex<HashMap<Key, http2::SendRequest<Body>>>,
    /// The mTLS tunnel; None when this proxy has no workload certificate source (it then
    /// reaches every endpoint directly, in plaintext).
    tunnel: Option<Arc<tunnel::Client>>,
    /// Opens TCP connections (with the proxy's socket mark).
    connector: Connector,
    metrics: Metrics,
}

impl Pool {
    pub fn new(tunnel: Option<Arc<tunnel::Client>>) -> Pool {
        Pool {
            tunnel,
            ..Pool::default()
        }
    }

    /// Where it counts (a node proxy's pods count into the node's families).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Opens TCP connections with `connector` and counts into `metrics`.
    pub fn with(mut self, connector: Connector, metrics: Metrics) -> Pool {
        self.connector = connector;
        self.metrics = metrics;
        self
    }

    /// The key of a connection to `up` made now: the tunnel when both ends do mTLS (and this
    /// proxy holds a certificate), else plaintext.
    pub fn key(&self, up: &Upstream<'_>) -> Key {
        let transport = match (&self.tunnel, up.tunnel) {
            _ if up.local => Transport::Local,
            (Some(client), Some((peer, identity))) => Transport::Tunnel {
                peer,
                peer_identity: Arc::from(identity),
                // Before the first certificate the handshake fails anyway; the key stays apart.
                source: client
                    .credentials()
                    .identity()
                    .unwrap_or_else(|| Arc::from("")),
            },
            _ => Transport::Plain,
        };
        Key {
            addr: up.addr,
            transport,
        }
    }

    /// Whether a connection to `up` made now goes through the mTLS tunnel.
    pub fn tunnels(&self, up: &Upstream<'_>) -> bool {
        matches!(self.key(up).transport, Transport::Tunnel { .. })
    }

    /// Opens a connection for `key`: a tunnel stream, or TCP.
    pub async fn open_key(&self, key: &Key, timeout: Duration) -> Result<Box<dyn Io>, ProxyError> {
        let opened = self.open_io(key, timeout).await;
        match &opened {
            Ok(_) => self.metrics.opened(&key.transport),
            Err(e) => self.metrics.failed(&key.transport, e.stage()),
        }
        opened
    }

    async fn open_io(&self, key: &Key, timeout: Duration) -> Result<Box<dyn Io>, ProxyError> {
        match (&self.tunnel, &key.transport) {
            (
                Some(client),
                Transport::Tunnel {
                    peer,
                    peer_identity,
                    source,
                },
            ) => Ok(Box::new(
                client
                    .connect(*peer, peer_identity, source, key.addr, timeout)
                    .await?,
            )),
            _ => Ok(Box::new(self.connector.connect(key.addr, timeout).await?)),
        }
    }

    /// Opens a connection to `up` (not pooled: TCP proxying).
    pub async fn open(
        &self,
        up: &Upstream<'_>,
        timeout: Duration,
    ) -> Result<Box<dyn Io>, ProxyError> {
        self.open_key(&self.key(up), timeout).await
    }

    /// Sends `req` to `target` over HTTP/2 when `version` is 2, else HTTP/1.1.
    pub async fn send(
        &self,
        target: &Upstream<'_>,
        req: Request<Body>,
        connect_timeout: Duration,
    ) -> Result<Response<Incoming>, ProxyError> {
        if req.version() == Version::HTTP_2 {
            self.send_h2(target, req, connect_timeout).await
        } else {
            self.send_h1(target, req, connect_timeout).await
        }
    }

    async fn send_h1(
        &self,
        up: &Upstream<'_>,
        req: Request<Body>,
        connect_timeout: Duration,
    ) -> Result<Response<Incoming>, ProxyError> {
        let key = self.key(up);
        let target = up.addr;
        let idle = self.take_h1(&key);
        self.metrics.request("http1", idle.is_some());
        let (mut sender, reused) = match idle {
            Some(s) => (s, true),
            None => (self.handshake_h1(&key, connect_timeout).await?, false),
        };
        let upgrade = req.headers().contains_key(http::header::UPGRADE);
        let res = match sender.try_send_request(req).await {
            Ok(res) => res,
            Err(mut e) => match e.take_message() {
                // A kept-alive connection the upstream closed before the request went out:
                // nothing was written, so it goes on a new connection.
                Some(req) if reused => {
                    sender = self.handshake_h1(&key, connect_timeout).await?;
                    sender
                        .send_request(req)
                        .await
                        .map_err(|e| reset(target, e, false))?
                }
                Some(_) => {
                    let kind = Kind::NotSent(target.to_string());
                    return Err(ProxyError::caused(kind, e.into_error()));
                }
                None => return Err(reset(target, e.into_error(), reused)),
            },
        };
        // The connection becomes ready again once this response's body is read; it returns
        // to the idle list then (unless an upgrade takes it over), so the list holds only
        // connections another request can use.
        if !upgrade && res.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            let idle = self.h1.clone();
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    put_h1(&idle, key, sender);
                }
            });
        }
        Ok(res)
    }

    /// A new HTTP/1.1 connection for `key`.
    async fn handshake_h1(
        &self,
        key: &Key,
        connect_timeout: Duration,
    ) -> Result<http1::SendRequest<Body>, ProxyError> {
        let target = key.addr;
        let io = self.open_key(key, connect_timeout).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| reset(target, e, false))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(upstream = %target, "upstream HTTP/1 connection ended: {e}");
            }
        });
        Ok(sender)
    }

    fn take_h1(&self, key: &Key) -> Option<http1::SendRequest<Body>> {
        let mut pools = self.h1.lock().unwrap_or_else(|p| p.into_inner());
        let list = pools.get_mut(key)?;
        list.retain(|(since, s)| !s.is_closed() && since.elapsed() < IDLE_TIMEOUT);
        let found = list.iter().position(|(_, s)| s.is_ready());
        let taken = found.map(|i| list.swap_remove(i).1);
        if list.is_empty() {
            // Endpoints that went away leave nothing behind.
            pools.remove(key);
        }
        taken
    }

    async fn send_h2(
        &self,
        up: &Upstream<'_>,
        req: Request<Body>,
        connect_timeout: Duration,
    ) -> Result<Response<Incoming>, ProxyError> {
        let key = self.key(up);
        let target = up.addr;
        let existing = {
            let pools = self.h2.lock().unwrap_or_else(|p| p.into_inner());
            pools.get(&key).filter(|s| !s.is_closed()).cloned()
        };
        let reused = existing.is_some();
        self.metrics.request("http2", reused);
        let mut sender = match existing {
            Some(s) => s,
            None => {
                let io = self.open_key(&key, connect_timeout).await?;
                let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                    .handshake(TokioIo::new(io))
                    .await
                    .map_err(|e| reset(target, e, false))?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(upstream = %target, "upstream HTTP/2 connection ended: {e}");
                    }
                });
                let mut pools = self.h2.lock().unwrap_or_else(|p| p.into_inner());
                // Connections that ended (endpoints gone, identities rotated) leave nothing.
                pools.retain(|_, s| !s.is_closed());
                pools.insert(key, sender.clone());
                sender
            }
        };
        sender.ready().await.map_err(|e| reset(target, e, reused))?;
        sender.try_send_request(req).await.map_err(|mut e| {
            if e.take_message().is_some() {
                ProxyError::caused(Kind::NotSent(target.to_string()), e.into_error())
            } else {
                reset(target, e.into_error(), reused)
            }
        })
    }
}

/// The upstream at `target` reset or closed the connection before answering.
fn reset(target: SocketAddr, e: hyper::Error, reused: bool) -> ProxyError {
    ProxyError::caused(Kind::UpstreamReset(target.to_string()), e).on_reused(reused)
}

fn put_h1(idle: &Idle, key: Key, sender: http1::SendRequest<Body>) {
    let mut pools = idle.lock().unwrap_or_else(|p| p.into_inner());
    let list = pools.entry(key).or_default();
    list.retain(|(since, s)| !s.is_closed() && since.elapsed() < IDLE_TIMEOUT);
    if list.len() < MAX_IDLE_PER_ENDPOINT {
        list.push((tokio::time::Instant::now(), sender));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_to_the_local_app_never_shares_a_key_with_outbound_traffic() {
        let pool = Pool::new(None);
        let addr: SocketAddr = "198.18.0.5:8080".parse().unwrap();
        let local = pool.key(&Upstream::local(addr));
        let outbound = pool.key(&Upstream::direct(addr));
        assert_eq!(local.transport, Transport::Local);
        assert_eq!(outbound.transport, Transport::Plain);
        assert_ne!(local, outbound);
        // Without a tunnel client an endpoint with a tunnel is reached in plaintext, and keyed
        // so.
        let ep = Endpoint {
            pod: "catalog-0".into(),
            workload: "catalog".into(),
            namespace: "shop".into(),
            app: String::new(),
            version: String::new(),
            address: addr.ip(),
            ports: [(8080, 8080)].into(),
            identity: "spiffe://t/ns/shop/sa/catalog".into(),
            inbound: None,
            tunnel: Some("198.18.0.5:15008".parse().unwrap()),
            waypoint: None,
        };
        let via = pool.key(&Upstream::endpoint(&ep, 8080).unwrap());
        assert_eq!(via, outbound);
    }
}
