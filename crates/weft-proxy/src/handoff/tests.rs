//! Both sides of a hand-off in one process, on a real hand-off path, with loopback listeners
//! standing for a pod's (no namespace needed).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use weft_test_support::wait::eventually;

use super::*;
use crate::drain;

const POD: &str = "web-0.shop";
const NETNS: &str = "/proc/self/ns/net";
const T: Duration = Duration::from_secs(10);

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("weft-handoff-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new process's hand-off on `path`, ready within `limit`.
fn within(path: &Path, limit: Duration) -> Config {
    Config {
        path: path.to_path_buf(),
        ready_within: limit,
    }
}

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Serves `pod`'s inbound listener from `listeners`, answering every connection with `name`.
fn serve(listeners: &Arc<Listeners>, name: &'static str) -> (SocketAddr, JoinHandle<()>) {
    let bind = || {
        let l = std::net::TcpListener::bind(any())?;
        l.set_nonblocking(true)?;
        TcpListener::from_std(l)
    };
    let listening = listeners
        .open(POD, Kind::Inbound, Path::new(NETNS), any(), bind)
        .unwrap();
    let addr = listening.local_addr().unwrap();
    let task = tokio::spawn(listening.serve(move |l| async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move { s.write_all(name.as_bytes()).await });
        }
    }));
    (addr, task)
}

async fn who(addr: SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// An old process serving one pod listener, listening on `path`.
struct Old {
    listeners: Arc<Listeners>,
    addr: SocketAddr,
    serving: JoinHandle<()>,
    discovery: Arc<watch::Sender<bool>>,
    metrics: Metrics,
    _drain: drain::Trigger,
}

fn old(path: &Path) -> Old {
    let listeners = Listeners::new(vec![]);
    listeners.set_gate(Gate::Open);
    let (addr, serving) = serve(&listeners, "old");
    let (trigger, drain) = drain::new();
    let discovery = Arc::new(watch::Sender::new(false));
    let metrics = Metrics::default();
    let give = Give {
        listeners: listeners.clone(),
        discovery: discovery.clone(),
        metrics: metrics.clone(),
        drain,
    };
    tokio::spawn(give.run(claim(path).unwrap()));
    Old {
        listeners,
        addr,
        serving,
        discovery,
        metrics,
        _drain: trigger,
    }
}

fn enrolled(l: &Listeners) {
    l.enrolled(BTreeSet::from([POD.to_string()]));
}

#[tokio::test]
async fn the_new_process_takes_the_same_socket_and_the_old_one_stops_accepting() {
    let dir = Dir::new("ok");
    let path = dir.0.join("handoff.sock");
    let old = old(&path);
    assert_eq!(who(old.addr).await, "old");

    let (taking, received) = take(&within(&path, T))
        .await
        .unwrap()
        .expect("the old process answers");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0.pod, POD);
    let new = Listeners::new(received);
    let (addr, _serving) = serve(&new, "new");
    assert_eq!(addr, old.addr, "the socket received, not a new one");
    assert!(*old.discovery.borrow(), "the old process yields discovery");
    // Not ready: the gate stays closed and the old process serves every connection.
    assert_eq!(new.gate(), Gate::Closed);
    assert_eq!(who(addr).await, "old");

    enrolled(&new);
    new.settled(POD);
    let claimed = taking
        .finish(&new, new.all_settled(), || unreachable!())
        .await
        .unwrap();
    assert!(claimed.holds());
    assert_eq!(new.gate(), Gate::Open);
    tokio::time::timeout(T, old.listeners.handed_off())
        .await
        .unwrap();
    tokio::time::timeout(T, old.serving).await.unwrap().unwrap();
    assert!(
        old.listeners.offered().unwrap().is_empty(),
        "its copy closed"
    );
    for _ in 0..5 {
        assert_eq!(who(addr).await, "new");
    }
    // The next hand-off asks the new process.
    let (_trigger, drain) = drain::new();
    let give = Give {
        listeners: new.clone(),
        discovery: Arc::new(watch::Sender::new(false)),
        metrics: Metrics::default(),
        drain,
    };
    tokio::spawn(give.run(claimed));
    let (_next, again) = take(&within(&path, T))
        .await
        .unwrap()
        .expect("the new process answers");
    assert_eq!(again.len(), 1);
}

#[tokio::test]
async fn a_new_process_that_is_not_ready_leaves_the_old_one_serving() {
    let dir = Dir::new("not-ready");
    let path = dir.0.join("handoff.sock");
    let old = old(&path);

    let limit = Duration::from_millis(100);
    let (taking, received) = take(&within(&path, limit)).await.unwrap().unwrap();
    let new = Listeners::new(received);
    let (addr, _serving) = serve(&new, "new");
    enrolled(&new);
    let err = taking
        .finish(&new, new.all_settled(), || {
            format!("waiting for {:?}", new.unsettled())
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("waiting for Some([\"web-0.shop\"])"),
        "{err}"
    );
    drop(new);

    // The old process takes discovery back, keeps accepting, and answers the next one.
    let mut discovery = old.discovery.subscribe();
    tokio::time::timeout(T, discovery.wait_for(|yielded| !*yielded))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.listeners.gate(), Gate::Open);
    assert_eq!(who(addr).await, "old");
    let (_again, received) = take(&within(&path, T))
        .await
        .unwrap()
        .expect("the old process answers");
    assert_eq!(received.len(), 1);
    let text = {
        let mut r = prometheus_client::registry::Registry::default();
        old.metrics.register(&mut r);
        crate::metrics::encode(&r)
    };
    assert!(
        text.contains("handoffs_total{side=\"give\",result=\"failed\"} 1"),
        "{text}"
    );
}

/// A new process that claimed the path and then went away before `ready`: the old process
/// claims the path back.
#[tokio::test]
async fn the_old_process_takes_the_path_back_from_a_failed_successor() {
    let dir = Dir::new("reclaim");
    let path = dir.0.join("handoff.sock");
    let old = old(&path);
    let (taking, _received) = take(&within(&path, T)).await.unwrap().unwrap();
    let stolen = claim(&path).unwrap();
    drop((taking, stolen));

    let received = eventually("the old process to answer again", T, async || {
        match take(&within(&path, T)).await {
            Ok(Some((_t, received))) => Ok(received.len()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(received, 1);
    assert_eq!(old.listeners.gate(), Gate::Open);
}

#[tokio::test]
async fn another_protocol_version_is_refused() {
    let dir = Dir::new("version");
    let path = dir.0.join("handoff.sock");
    let old = old(&path);
    let conn = Packets::connect(&path).await.unwrap();
    let hello = Message::Hello {
        version: 99,
        pid: 1,
        ready_within_ms: 1000,
    };
    send(&conn, &hello, None).await.unwrap();
    match recv(&conn, "an answer").await.unwrap().0 {
        Message::Refused { reason } => {
            assert!(reason.contains("version 1, not 99"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(old.listeners.gate(), Gate::Open);
    assert!(!*old.discovery.borrow());
}

#[tokio::test]
async fn a_listener_received_for_another_address_is_not_taken() {
    let dir = Dir::new("mismatch");
    let path = dir.0.join("handoff.sock");
    let _old = old(&path);
    let (_taking, received) = take(&within(&path, T)).await.unwrap().unwrap();
    let new = Listeners::new(received);
    let elsewhere: SocketAddr = "127.0.0.2:0".parse().unwrap();
    let fresh = new
        .open(POD, Kind::Inbound, Path::new(NETNS), elsewhere, || {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.set_nonblocking(true)?;
            TcpListener::from_std(l)
        })
        .unwrap();
    assert_eq!(
        new.drop_unused(),
        0,
        "the one received was dropped when not taken"
    );
    assert!(fresh.local_addr().is_ok());
}

/// The node proxy's own listeners (no pod) go over too, and the hand-off does not wait for a
/// pod for them; a listener opened anew accepts at once, gate closed or not.
#[tokio::test]
async fn the_node_proxys_own_listeners_go_over_without_a_pod() {
    let dir = Dir::new("own");
    let path = dir.0.join("handoff.sock");
    let old = old(&path);
    let bind = || {
        let l = std::net::TcpListener::bind(any())?;
        l.set_nonblocking(true)?;
        TcpListener::from_std(l)
    };
    let admin = old
        .listeners
        .open("", Kind::Admin, Path::new(""), any(), bind)
        .unwrap();
    let admin_addr = admin.local_addr().unwrap();

    let (_taking, received) = take(&within(&path, T)).await.unwrap().unwrap();
    let kinds: BTreeSet<Kind> = received.iter().map(|(h, _)| h.kind).collect();
    assert_eq!(kinds, BTreeSet::from([Kind::Inbound, Kind::Admin]));
    let new = Listeners::new(received);
    let taken = new
        .open("", Kind::Admin, Path::new(""), any(), || unreachable!())
        .unwrap();
    assert_eq!(taken.local_addr().unwrap(), admin_addr);
    new.enrolled(BTreeSet::new());
    assert_eq!(new.unsettled(), Some(vec![]), "no pod to wait for");

    // A listener of its own, not received: served while the gate is closed.
    assert_eq!(new.gate(), Gate::Closed);
    let fresh = new
        .open(POD, Kind::Tunnel, Path::new(NETNS), any(), bind)
        .unwrap();
    let fresh_addr = fresh.local_addr().unwrap();
    tokio::spawn(fresh.serve(|l| async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"fresh").await;
        }
    }));
    assert_eq!(who(fresh_addr).await, "fresh");
}
