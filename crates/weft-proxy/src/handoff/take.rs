//! The new process's side: asks whoever listens on the hand-off path for its listeners, and
//! once every pod is ready claims the path, starts accepting and tells the old process.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use super::claim::{Claimed, claim};
use super::listeners::{Gate, Listeners};
use super::message::{Header, Message, VERSION};
use super::packets::Packets;
use super::{Config, Error, recv, send};

/// How long the old process has to send its listeners.
const LISTENERS_WITHIN: Duration = Duration::from_secs(10);

/// A hand-off under way: the listeners are received, the old process waits for ready.
#[derive(Debug)]
pub struct Taking {
    conn: Packets,
    path: PathBuf,
    ready_within: Duration,
}

/// Asks the process listening on the hand-off path for its listeners. None when nobody
/// answers (no socket there, or one left by a process that is gone): start with new listeners.
pub async fn take(cfg: &Config) -> Result<Option<(Taking, Vec<(Header, OwnedFd)>)>, Error> {
    let path = cfg.path.as_path();
    let conn = match Packets::connect(path).await {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            tracing::info!(path = %path.display(), "hand-off: no node proxy answers ({e}); opening new listeners");
            return Ok(None);
        }
        Err(source) => {
            return Err(Error::Socket {
                path: path.into(),
                source,
            });
        }
    };
    if !conn.peer_is_trusted()? {
        return Err(Error::Untrusted(format!(
            "the process listening on {} runs as another user",
            path.display()
        )));
    }
    tracing::info!(path = %path.display(), "hand-off: a node proxy answers; asking for its listeners");
    let hello = Message::Hello {
        version: VERSION,
        pid: std::process::id(),
        ready_within_ms: u64::try_from(cfg.ready_within.as_millis()).unwrap_or(u64::MAX),
    };
    send(&conn, &hello, None).await?;
    let received = tokio::time::timeout(LISTENERS_WITHIN, receive(&conn))
        .await
        .map_err(|_| Error::Timeout(LISTENERS_WITHIN, "the listeners"))??;
    tracing::info!(
        listeners = received.len(),
        "hand-off: listeners received; readying every pod before the old node proxy stops accepting"
    );
    let taking = Taking {
        conn,
        path: path.into(),
        ready_within: cfg.ready_within,
    };
    Ok(Some((taking, received)))
}

async fn receive(conn: &Packets) -> Result<Vec<(Header, OwnedFd)>, Error> {
    let mut received = Vec::new();
    loop {
        let (m, mut fds) = recv(conn, "the listeners").await?;
        match m {
            Message::Listener(header) if fds.len() == 1 => {
                received.push((header, fds.remove(0)));
            }
            Message::Listener(header) => {
                return Err(Error::Protocol(format!(
                    "the {} listener of {} came with {} sockets, not one",
                    header.kind.as_str(),
                    header.pod,
                    fds.len()
                )));
            }
            Message::Done { count } if count == received.len() => return Ok(received),
            Message::Done { count } => {
                return Err(Error::Protocol(format!(
                    "{count} listeners announced, {} received",
                    received.len()
                )));
            }
            Message::Refused { reason } => return Err(Error::Refused(reason)),
            other => return Err(Error::unexpected("a listener", &other)),
        }
    }
}

impl Taking {
    /// How long it waits for its pods to be ready.
    pub fn ready_within(&self) -> Duration {
        self.ready_within
    }

    /// Waits for `ready` (every pod served) as long as configured; `why` says what is still
    /// missing when it is not. Then: claims the path, opens the gate, tells the old process.
    /// Fails, leaving the old process serving, if not ready in time.
    pub async fn finish(
        self,
        listeners: &Listeners,
        ready: impl Future<Output = ()>,
        why: impl FnOnce() -> String,
    ) -> Result<Claimed, Error> {
        let limit = self.ready_within;
        // The old process notices a failure when this connection closes.
        if tokio::time::timeout(limit, ready).await.is_err() {
            return Err(Error::NotReady { limit, why: why() });
        }
        // 1. The path leads here: a later process asks this one. Its queue waits until this
        //    hand-off is done.
        let claimed = claim(&self.path).map_err(|source| Error::Socket {
            path: self.path.clone(),
            source,
        })?;
        // 2. Accept alongside the old process, from the same queues.
        listeners.set_gate(Gate::Open);
        let unused = listeners.drop_unused();
        if unused > 0 {
            tracing::info!(
                listeners = unused,
                "hand-off: closed the listeners received for pods no longer enrolled here"
            );
        }
        // 3. The old process stops accepting and drains. If it is gone already, this process
        //    holds every listener anyway.
        match send(&self.conn, &Message::Ready, None).await {
            Ok(()) => tracing::info!("hand-off: ready; the old node proxy stops accepting"),
            Err(e) => {
                tracing::warn!(
                    "hand-off: the old node proxy did not hear ready ({e}); serving alone"
                )
            }
        }
        Ok(claimed)
    }
}
