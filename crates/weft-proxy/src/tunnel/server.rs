//! The server side, on port 15008: TLS with a required client certificate from the mesh, then
//! HTTP/2 whose CONNECT streams each carry one connection to the original destination. A
//! refused handshake (another CA, expired, plaintext) is logged and counted; nothing else
//! notices.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

use super::tls::{self, Credentials};
use crate::body::{self, Body};
use crate::drain::Drain;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One CONNECT stream, authenticated.
#[derive(Debug)]
pub struct Accepted {
    pub io: TokioIo<Upgraded>,
    /// The peer proxy's address.
    pub peer: SocketAddr,
    /// The peer's SPIFFE ID, from its certificate.
    pub identity: Arc<str>,
    /// The original destination the client asked for.
    pub target: SocketAddr,
    /// The client's workload, for metrics only ([`super::peer`]).
    pub metadata: super::peer::Shared,
}

/// What the server tells about refused handshakes (for metrics).
pub type OnRefused = Arc<dyn Fn(&str) + Send + Sync>;

pub async fn run<F, Fut>(
    listener: TcpListener,
    creds: Arc<dyn Credentials>,
    drain: Drain,
    refused: OnRefused,
    handle: F,
) where
    F: Fn(Accepted) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(creds));
    crate::serve::accept(listener, drain.clone(), "tunnel", move |tcp, peer| {
        let (acceptor, drain, refused, handle) = (
            acceptor.clone(),
            drain.clone(),
            refused.clone(),
            handle.clone(),
        );
        async move { connection(tcp, peer, acceptor, drain, refused, handle).await }
    })
    .await;
}

async fn connection<F, Fut>(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    drain: Drain,
    refused: OnRefused,
    handle: F,
) where
    F: Fn(Accepted) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _guard = drain.guard();
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::warn!(%peer, "tunnel: refused a TLS handshake: {e}");
            return refused("handshake");
        }
        Err(_) => {
            tracing::warn!(%peer, "tunnel: TLS handshake timed out");
            return refused("handshake-timeout");
        }
    };
    let identity = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        Some(cert) => match tls::spiffe_id(cert) {
            Ok(id) => Arc::<str>::from(id),
            Err(e) => {
                tracing::warn!(%peer, "tunnel: {e}");
                return refused("identity");
            }
        },
        None => return refused("no-client-certificate"),
    };
    let svc = hyper::service::service_fn(move |req| {
        let (handle, identity) = (handle.clone(), identity.clone());
        async move { Ok::<_, Infallible>(stream(req, peer, identity, handle)) }
    });
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(super::STREAM_WINDOW)
        .initial_connection_window_size(super::CONNECTION_WINDOW)
        .serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(%peer, "tunnel connection ended: {e}");
            }
            return;
        }
        _ = drain.signaled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

fn stream<F, Fut>(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    identity: Arc<str>,
    handle: F,
) -> Response<Body>
where
    F: Fn(Accepted) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if req.method() != Method::CONNECT {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "the tunnel serves CONNECT only",
        );
    }
    let Some(target) = req
        .uri()
        .authority()
        .and_then(|a| a.as_str().parse::<SocketAddr>().ok())
    else {
        return reply(StatusCode::BAD_REQUEST, "CONNECT needs an IP:port target");
    };
    let metadata = Arc::new(super::peer::Metadata::claimed(
        req.headers().get(super::peer::HEADER),
        &identity,
    ));
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(up) => {
                handle(Accepted {
                    io: TokioIo::new(up),
                    peer,
                    identity,
                    target,
                    metadata,
                })
                .await
            }
            Err(e) => {
                tracing::debug!(%peer, destination = %target, "tunnel stream not opened: {e}")
            }
        }
    });
    Response::new(body::empty())
}

fn reply(status: StatusCode, why: &'static str) -> Response<Body> {
    let mut r = Response::new(body::full(why));
    *r.status_mut() = status;
    r
}
