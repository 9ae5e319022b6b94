//! The engine's own listeners (admin, readiness, metrics): bound here, or, for a node proxy
//! that hands over on upgrade, taken from the old process and offered to the next like its
//! pods' listeners ([`crate::handoff`]), so their fixed ports stay served across a restart.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{BindError, bind};
use crate::handoff::{Kind, Listeners, Listening};
use crate::shared::Shared;

/// One of the engine's listeners.
pub(super) enum Own {
    Bound(TcpListener),
    Handed(Listening),
}

/// The `kind` listener on `addr`: through `handoff` when given (the node's own listeners
/// belong to no pod), else bound.
pub(super) async fn open(
    handoff: Option<&Arc<Listeners>>,
    kind: Kind,
    addr: SocketAddr,
) -> Result<Own, BindError> {
    let what = kind.as_str();
    let Some(h) = handoff else {
        return Ok(Own::Bound(bind(what, addr).await?));
    };
    let bind = || {
        let l = std::net::TcpListener::bind(addr)?;
        l.set_nonblocking(true)?;
        TcpListener::from_std(l)
    };
    h.open("", kind, Path::new(""), addr, bind)
        .map(Own::Handed)
        .map_err(|source| BindError { what, addr, source })
}

impl Own {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Own::Bound(l) => l.local_addr().ok(),
            Own::Handed(l) => l.local_addr().ok(),
        }
    }

    /// Serves the admin API on it (`readiness_only`: only readiness and metrics).
    pub fn spawn(self, tasks: &mut JoinSet<()>, shared: Arc<Shared>, readiness_only: bool) {
        match self {
            Own::Bound(l) => tasks.spawn(serve(l, shared, readiness_only)),
            Own::Handed(l) => tasks.spawn(l.serve(move |l| serve(l, shared, readiness_only))),
        };
    }
}

async fn serve(l: TcpListener, shared: Arc<Shared>, readiness_only: bool) {
    loop {
        let Ok((stream, _)) = l.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let sh = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                crate::admin::handle(sh.clone(), readiness_only, req)
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
