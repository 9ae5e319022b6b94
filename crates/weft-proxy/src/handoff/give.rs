//! The old process's side: listens on the hand-off path, gives its listeners to a new
//! process that asks, and stops accepting once that one is ready. A hand-off that fails
//! leaves it serving as before, listening on the path again.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::claim::Claimed;
use super::listeners::{Gate, Listeners};
use super::message::{Message, VERSION};
use super::metrics::{Metrics, Side};
use super::packets::Packets;
use super::{Error, recv, send};
use crate::drain::Drain;

/// How long a new process has to say hello once connected.
const HELLO_WITHIN: Duration = Duration::from_secs(5);
/// How much longer than the new process said it may take the old one waits for `ready` (the
/// new one gives up at its limit and closes the connection, which ends the wait at once; this
/// bounds the wait, with discovery yielded, for one that hangs).
const READY_SLACK: Duration = Duration::from_secs(10);

/// What the old process's side works with.
#[derive(Debug)]
pub struct Give {
    pub listeners: Arc<Listeners>,
    /// The engine's discovery: `true` yields the stream (the new process needs it; the control
    /// plane admits one per node credential), `false` takes it up again.
    pub discovery: Arc<watch::Sender<bool>>,
    pub metrics: Metrics,
    /// Once the drain starts no hand-off is given (the path stops answering).
    pub drain: Drain,
}

impl Give {
    /// Serves hand-offs on `claimed` until one succeeds or the proxy drains.
    pub async fn run(self, mut claimed: Claimed) {
        let path = claimed.path().display().to_string();
        tracing::info!(%path, "hand-off: listening for a new node proxy");
        loop {
            let conn = tokio::select! {
                r = claimed.listener.accept() => r,
                () = self.drain.signaled() => {
                    return tracing::info!(%path, "hand-off: draining; no longer listening");
                }
            };
            let conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(%path, "hand-off: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.session(&conn).await {
                Ok(count) => {
                    self.metrics.handoff(Side::Give, true);
                    self.listeners.set_gate(Gate::Stopped);
                    return tracing::info!(
                        listeners = count,
                        "hand-off: the new node proxy is ready; stopped accepting, established connections drain here"
                    );
                }
                Err(e) => {
                    self.discovery.send_replace(false);
                    self.metrics.handoff(Side::Give, false);
                    tracing::warn!("hand-off failed, this node proxy keeps serving: {e}");
                }
            }
            claimed = match claimed.reclaim() {
                Ok(c) => c,
                Err(e) => {
                    return tracing::error!(%path, "hand-off: cannot listen again: {e}; no later hand-off from this process");
                }
            };
        }
    }

    /// One hand-off: hello, the listeners, then wait for ready.
    async fn session(&self, conn: &Packets) -> Result<usize, Error> {
        if !conn.peer_is_trusted()? {
            return Err(Error::Untrusted(
                "a process of another user connected".into(),
            ));
        }
        let hello = tokio::time::timeout(HELLO_WITHIN, recv(conn, "hello"))
            .await
            .map_err(|_| Error::Timeout(HELLO_WITHIN, "hello"))??;
        let ready_within = match hello.0 {
            Message::Hello {
                version,
                pid,
                ready_within_ms,
            } if version == VERSION => {
                tracing::info!(pid, "hand-off: a new node proxy asks for the listeners");
                Duration::from_millis(ready_within_ms) + READY_SLACK
            }
            Message::Hello { version, .. } => {
                let reason =
                    format!("this node proxy speaks hand-off version {VERSION}, not {version}");
                let _ = send(
                    conn,
                    &Message::Refused {
                        reason: reason.clone(),
                    },
                    None,
                )
                .await;
                return Err(Error::Refused(reason));
            }
            other => return Err(Error::unexpected("hello", &other)),
        };
        let offered = self.listeners.offered()?;
        for (header, fd) in &offered {
            send(conn, &Message::Listener(header.clone()), Some(fd.as_fd())).await?;
        }
        let count = offered.len();
        drop(offered);
        send(conn, &Message::Done { count }, None).await?;
        self.discovery.send_replace(true);
        tracing::info!(
            listeners = count,
            "hand-off: listeners sent; discovery yielded to the new node proxy until it is ready (serving with the last config meanwhile)"
        );
        let ready = tokio::time::timeout(ready_within, recv(conn, "ready"))
            .await
            .map_err(|_| Error::Timeout(ready_within, "ready"))??;
        match ready.0 {
            Message::Ready => Ok(count),
            other => Err(Error::unexpected("ready", &other)),
        }
    }
}
