//! Restarting or upgrading the node proxy without resetting connections: the old process
//! hands its pods' listening sockets to the new one over a Unix socket (the *hand-off path*,
//! `weft proxy --node ... --handoff PATH`), and its established connections finish on it.
//!
//! A listening socket is shared by both processes once handed over: one kernel queue, two
//! descriptors. Whichever process accepts a connection serves it, so no connection is refused
//! or lost while the old process stops accepting; it keeps its established connections until
//! they close or its drain deadline passes, then exits.
//!
//! ## Protocol
//!
//! [`message`]s over a `SOCK_SEQPACKET` Unix socket ([`packets`]), one per packet:
//!
//! 1. new → old `hello` (protocol version, pid, how long it may take to be ready). An old
//!    process of another version answers `refused`.
//! 2. old → new one `listener` per open pod listener (pod id, `outbound`/`inbound`/`tunnel`,
//!    the pod's namespace and configured address) and per listener of its own (`admin`,
//!    `readiness`, `metrics`: fixed ports on a node), the socket attached (SCM_RIGHTS); then
//!    `done` with the count. The old process then yields its discovery stream: the control
//!    plane admits one stream per node credential, and the new process needs one. The old one
//!    keeps serving with its last configuration meanwhile.
//! 3. The new process uses each listener received for the same pod (or its own), namespace
//!    and address, and opens new ones for the others; it does not accept on those received
//!    yet. When every pod received that is still enrolled is served, with its certificate (or
//!    the control plane no longer gives it to this node), it claims the path (below), starts
//!    accepting on them, closes the ones nothing took, and sends `ready`.
//! 4. On `ready` the old process stops accepting on every listener (drops its copies;
//!    connections queued meanwhile are accepted by the new process from the same queue), and
//!    drains.
//!
//! If the new process fails before `ready` (its control plane is unreachable, it crashes, it
//! gives up after its limit), the connection closes and the old process takes up discovery
//! again and keeps accepting: it never stops before `ready`. One that hangs without closing is
//! given up on 10 s after the limit it announced. If nobody answers on the path at
//! start (no socket file, or one whose process is gone), the new process opens its own
//! listeners. If someone answers and the hand-off then fails, the new process fails too rather
//! than starting on its own: it could not bind the old one's addresses anyway.
//!
//! ## Who owns the path
//!
//! The path is a name for one listening socket at a time. A process claims it by binding a
//! socket under a temporary name and renaming it over the path ([`claim`]), which is atomic: a
//! process connecting reaches the previous listener or the new one, never nothing. Ordering:
//!
//! - The new process claims the path *before* it sends `ready`, and only once it is ready; a
//!   third process started meanwhile reaches it and waits in its queue until this hand-off is
//!   done, then gets the listeners from it. One that had connected to the old process before
//!   the rename is cut off when the old one stops (it fails, and its supervisor starts it
//!   again).
//! - The old process stops listening on the path only after `ready`, when the path already
//!   leads to the new one. It never removes the file.
//! - When a hand-off fails, the old process checks whether the path still leads to it (inode)
//!   and claims it again if the failed process had replaced it.
//!
//! The socket file is mode 0600, and each side checks that the other runs as the same user
//! (or root) before anything is given or taken.
//!
//! So when a hand-off ends, the path leads to exactly one live listener: the new process's
//! after `ready`, the old one's otherwise. On SIGTERM without hand-off the process stops
//! listening on the path when it starts draining; the socket file stays, and the next process
//! finds nobody answering and starts on its own.
//!
//! Counted in [`Metrics`] (`weft_node_handoffs_total{side, result}`); every step is logged.

mod claim;
mod give;
mod listeners;
pub mod message;
mod metrics;
mod packets;
mod take;

#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

pub use claim::{Claimed, claim};
pub use give::Give;
pub use listeners::{Gate, Listeners, Listening};
pub use message::{DecodeError, Header, Kind, Message};
pub use metrics::{Metrics, Side};
pub use take::{Taking, take};

use packets::Packets;

/// How long a new process waits, by default, for every pod to be ready before it gives up
/// and leaves the old process serving.
pub const READY_WITHIN: Duration = Duration::from_secs(60);

/// The hand-off of a node proxy.
#[derive(Debug, Clone)]
pub struct Config {
    /// The hand-off path (a Unix socket).
    pub path: PathBuf,
    /// How long a new process waits for its pods to be ready.
    pub ready_within: Duration,
}

impl Config {
    pub fn new(path: PathBuf) -> Config {
        Config {
            path,
            ready_within: READY_WITHIN,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("hand-off socket {}: {source}", path.display())]
    Socket { path: PathBuf, source: io::Error },
    #[error("hand-off connection: {0}")]
    Io(#[from] io::Error),
    #[error("hand-off message: {0}")]
    Decode(#[from] DecodeError),
    #[error("expected {expected} from the other node proxy, got {got}")]
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
    #[error("the other node proxy closed the hand-off while this one waited for {0}")]
    Closed(&'static str),
    #[error("the other node proxy refused the hand-off: {0}")]
    Refused(String),
    #[error("{0}: only the same user (or root) may take or give listeners")]
    Untrusted(String),
    #[error("the other node proxy broke the protocol: {0}")]
    Protocol(String),
    #[error("no {1} from the other node proxy within {0:?}")]
    Timeout(Duration, &'static str),
    #[error("not ready within {limit:?} ({why}); the old node proxy keeps serving")]
    NotReady { limit: Duration, why: String },
}

impl Error {
    fn unexpected(expected: &'static str, got: &Message) -> Error {
        Error::Unexpected {
            expected,
            got: got.name(),
        }
    }
}

async fn send(conn: &Packets, m: &Message, fd: Option<BorrowedFd<'_>>) -> Result<(), Error> {
    Ok(conn.send(&message::encode(m), fd).await?)
}

/// The next message and the descriptors it carried; waiting for `what`.
async fn recv(conn: &Packets, what: &'static str) -> Result<(Message, Vec<OwnedFd>), Error> {
    let packet = conn.recv().await?.ok_or(Error::Closed(what))?;
    Ok((message::decode(&packet.bytes)?, packet.fds))
}
