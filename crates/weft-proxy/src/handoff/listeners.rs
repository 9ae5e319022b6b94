//! A node proxy's listeners across hand-offs (its pods', and its own admin, readiness and
//! metrics): the sockets received from the old process (taken once each, for the same pod,
//! namespace and address), the sockets this process would give to the next (a copy of each
//! open listener, gone when the listener closes), the gate that says when this process
//! accepts on those it received and when it stops accepting, and which pods are ready.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::message::{Header, Kind};

/// When this process accepts on its pod listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Not yet on the listeners received: it is taking them over and not ready (the old
    /// process accepts on them meanwhile). New listeners accept at once.
    Closed,
    Open,
    /// No longer on any: a new process took them over.
    Stopped,
}

type Key = (String, Kind);

#[derive(Debug)]
struct Offered {
    id: u64,
    header: Header,
    fd: OwnedFd,
}

#[derive(Debug, Default)]
struct Settle {
    /// The enrolled pods, once the enrolment was read.
    enrolled: Option<BTreeSet<String>>,
    /// Served with their certificate, or refused by the control plane.
    settled: BTreeSet<String>,
}

#[derive(Debug)]
pub struct Listeners {
    inherited: Mutex<BTreeMap<Key, (Header, OwnedFd)>>,
    /// The pods whose listeners were received: the hand-off waits for them (not for the
    /// node's own listeners, which belong to no pod).
    wanted: BTreeSet<String>,
    offered: Mutex<BTreeMap<Key, Offered>>,
    next: AtomicU64,
    gate: watch::Sender<Gate>,
    settle: watch::Sender<Settle>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Listeners {
    /// With the listeners received from the old process (none when there was none); the
    /// gate is closed.
    pub fn new(inherited: Vec<(Header, OwnedFd)>) -> Arc<Listeners> {
        let wanted = inherited
            .iter()
            .filter(|(h, _)| !h.pod.is_empty())
            .map(|(h, _)| h.pod.clone())
            .collect();
        let inherited = inherited
            .into_iter()
            .map(|(h, fd)| ((h.pod.clone(), h.kind), (h, fd)))
            .collect();
        Arc::new(Listeners {
            inherited: Mutex::new(inherited),
            wanted,
            offered: Mutex::default(),
            next: AtomicU64::new(0),
            gate: watch::Sender::new(Gate::Closed),
            settle: watch::Sender::new(Settle::default()),
        })
    }

    /// `pod`'s `kind` listener on `addr` in `netns`: the one received for it if it matches,
    /// else a new one from `bind`.
    pub fn open(
        self: &Arc<Self>,
        pod: &str,
        kind: Kind,
        netns: &Path,
        addr: SocketAddr,
        bind: impl FnOnce() -> io::Result<TcpListener>,
    ) -> io::Result<Listening> {
        let header = Header {
            pod: pod.into(),
            kind,
            netns: netns.into(),
            addr,
        };
        let (listener, received) = match self.take(&header) {
            Some(l) => (l?, true),
            None => (bind()?, false),
        };
        let fd = listener.as_fd().try_clone_to_owned()?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let key = (pod.to_string(), kind);
        lock(&self.offered).insert(key.clone(), Offered { id, header, fd });
        Ok(Listening {
            listener,
            offering: Offering {
                listeners: self.clone(),
                key,
                id,
            },
            gate: self.gate.subscribe(),
            received,
        })
    }

    fn take(&self, want: &Header) -> Option<io::Result<TcpListener>> {
        let (header, fd) = lock(&self.inherited).remove(&(want.pod.clone(), want.kind))?;
        let (pod, kind) = (&want.pod, want.kind.as_str());
        if header != *want {
            tracing::info!(
                pod,
                kind,
                "hand-off: the listener received was for {} in {}; the pod is now enrolled with {} in {}: opening a new one",
                header.addr,
                header.netns.display(),
                want.addr,
                want.netns.display()
            );
            return None;
        }
        tracing::info!(pod, kind, addr = %want.addr, "hand-off: serving the listener received");
        Some(listener(fd))
    }

    /// A copy of every open listener, for a new process.
    pub(super) fn offered(&self) -> io::Result<Vec<(Header, OwnedFd)>> {
        lock(&self.offered)
            .values()
            .map(|o| Ok((o.header.clone(), o.fd.try_clone()?)))
            .collect()
    }

    /// Closes the received listeners that no pod took; returns how many.
    pub(super) fn drop_unused(&self) -> usize {
        std::mem::take(&mut *lock(&self.inherited)).len()
    }

    pub fn gate(&self) -> Gate {
        *self.gate.borrow()
    }

    pub fn set_gate(&self, gate: Gate) {
        self.gate.send_replace(gate);
    }

    /// Resolves once a new process took the listeners over.
    pub async fn handed_off(&self) {
        let _ = self
            .gate
            .subscribe()
            .wait_for(|g| *g == Gate::Stopped)
            .await;
    }

    /// The enrolment was read: these pods are enrolled.
    pub fn enrolled(&self, pods: BTreeSet<String>) {
        self.settle.send_modify(|s| s.enrolled = Some(pods));
    }

    /// `pod` is served with its certificate, or the control plane does not give it to this
    /// node: the hand-off does not wait for it.
    pub fn settled(&self, pod: &str) {
        self.settle
            .send_if_modified(|s| s.settled.insert(pod.to_string()));
    }

    /// The pods received that are enrolled and not settled yet; None before the enrolment
    /// was read.
    pub fn unsettled(&self) -> Option<Vec<String>> {
        let s = self.settle.borrow();
        let enrolled = s.enrolled.as_ref()?;
        Some(
            self.wanted
                .iter()
                .filter(|p| enrolled.contains(*p) && !s.settled.contains(*p))
                .cloned()
                .collect(),
        )
    }

    /// Resolves when every pod received is settled or no longer enrolled.
    pub async fn all_settled(&self) {
        let mut rx = self.settle.subscribe();
        loop {
            if self.unsettled().is_some_and(|u| u.is_empty()) {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

/// A received descriptor as a listener, if it is one.
fn listener(fd: OwnedFd) -> io::Result<TcpListener> {
    let s = socket2::Socket::from(fd);
    if !s.is_listener()? {
        return Err(io::Error::other("the socket received is not listening"));
    }
    s.set_nonblocking(true)?;
    TcpListener::from_std(s.into())
}

/// An open listener, offered to a new process while it lives.
#[derive(Debug)]
pub struct Listening {
    listener: TcpListener,
    offering: Offering,
    gate: watch::Receiver<Gate>,
    /// Received from the old process, which accepts on it until the gate opens.
    received: bool,
}

impl Listening {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs `serve` on the listener (one received, once the gate opens), until it returns or
    /// a new process takes the listeners over; then the listener (and its offered copy)
    /// closes. Connections accepted run on their own and are not cut.
    pub async fn serve<F>(self, serve: impl FnOnce(TcpListener) -> F)
    where
        F: Future<Output = ()>,
    {
        let Listening {
            listener,
            offering,
            mut gate,
            received,
        } = self;
        if received {
            let open = gate.wait_for(|g| *g != Gate::Closed).await.map(|g| *g);
            if !matches!(open, Ok(Gate::Open)) {
                return;
            }
        }
        tokio::select! {
            () = serve(listener) => {}
            _ = gate.wait_for(|g| *g == Gate::Stopped) => {}
        }
        drop(offering);
    }
}

/// Removes an open listener's copy from the offer when it closes.
#[derive(Debug)]
struct Offering {
    listeners: Arc<Listeners>,
    key: Key,
    id: u64,
}

impl Drop for Offering {
    fn drop(&mut self) {
        let mut offered = lock(&self.listeners.offered);
        // A pod served again may already have put its new listener under this key.
        if offered.get(&self.key).is_some_and(|o| o.id == self.id) {
            offered.remove(&self.key);
        }
    }
}
