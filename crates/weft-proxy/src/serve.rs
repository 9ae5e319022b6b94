//! Serving accepted connections: HTTP (HTTP/1.x and HTTP/2 on one builder, with upgrades)
//! and opaque TCP, both stopping cleanly when the proxy drains.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;

use crate::access_log::AccessLog;
use crate::body::Body;
use crate::drain::Drain;
use crate::error::ProxyError;
use crate::io::Io;
use crate::record::Record;

/// Accepts connections until the drain starts, handing each to `handle` on its own task.
pub async fn accept<F, Fut>(
    listener: tokio::net::TcpListener,
    drain: Drain,
    what: &'static str,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => { tokio::spawn(handle(stream, peer)); }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!("{what} accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = drain.signaled() => return,
        }
    }
}

/// Serves HTTP on `stream` with `handler` until the client closes or the drain finishes it:
/// on drain, in-flight requests complete and idle keep-alive connections close.
pub async fn http<S: Io, F, Fut>(stream: S, drain: Drain, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    let _guard = drain.guard();
    let svc = hyper::service::service_fn(move |req| (handler.clone())(req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!("downstream connection ended: {e}");
            }
            return;
        }
        _ = drain.signaled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Copies bytes both ways between `client` and `target` (reached by `upstream`), logging one
/// record.
pub async fn tcp<S: Io, U: Io>(
    mut client: S,
    target: SocketAddr,
    upstream: impl Future<Output = Result<U, ProxyError>>,
    drain: Drain,
    log: AccessLog,
    mut record: Record,
    pick: Option<crate::balance::Pick>,
) {
    let _guard = drain.guard();
    let start = Instant::now();
    record.protocol = "TCP".into();
    record.upstream = Some(target.to_string());
    let opened = upstream.await;
    // Counted once it is known whether the upstream was reached.
    if let Err(e) = &opened {
        record.error = Some(e.stage());
    }
    log.opened(&record);
    match opened {
        Ok(mut upstream) => {
            // The pick stays held (counted as outstanding) for the connection's life.
            // Opaque streams cannot be finished early; they run until the drain deadline.
            if let Ok((sent, received)) =
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await
            {
                record.bytes_sent = Some(sent);
                record.bytes_received = Some(received);
            }
            if let Some(p) = pick {
                p.success();
            }
        }
        Err(e) => {
            if let Some(p) = pick {
                p.failure();
            }
            tracing::debug!(upstream = %target, "tcp: {}", e.chain());
        }
    }
    record.finish(start.elapsed());
    log.write(&record);
}

/// Closes a TCP client that cannot be served, logging why.
pub fn refuse_tcp(log: AccessLog, mut record: Record, err: &ProxyError) {
    record.protocol = "TCP".into();
    record.error = Some(err.stage());
    log.opened(&record);
    log.write(&record);
    tracing::debug!("tcp connection refused: {}", err.chain());
}
