//! The conventional control-plane addresses of a `weft up` mesh — mTLS discovery on the
//! bridge (15012) and admin on the host (15014) — lead to the control plane of the `default`
//! tag: each connection is passed, bytes as they are, to the address the tag's revision bound
//! when it arrives. TLS runs end to end between the proxy and the control plane, which
//! authenticates it; this only picks which control plane. Moving the tag moves new
//! connections; established ones stay where they are until that control plane goes away (a
//! proxy then reconnects, and lands on the new one).
//!
//! Only connections from one source address are forwarded (the host's bridge address, where
//! the gateways and node proxies connect from): the CA checks that a credential is used from
//! the address it was registered for, and a forwarded connection arrives from the host's. A
//! pod coming this way could pass for the host; it is closed instead. Pods reach their
//! revision's control plane directly.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

/// Where a new connection goes now, if anywhere.
pub(super) type Target = Arc<dyn Fn() -> Option<SocketAddr> + Send + Sync>;

/// Binds `addr` (before returning, so a port in use is an error here) and forwards every
/// connection to `target` until the task is aborted.
pub(super) async fn bind(
    addr: SocketAddr,
    what: &'static str,
    from: IpAddr,
    target: Target,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{what}: cannot listen on {addr}: {e}"))?;
    Ok(tokio::spawn(serve(listener, from, target)))
}

async fn serve(listener: TcpListener, from: IpAddr, target: Target) {
    loop {
        let Ok((mut inbound, peer)) = listener.accept().await else {
            continue;
        };
        if peer.ip() != from {
            continue;
        }
        let Some(to) = target() else {
            // No control plane to send it to: the proxy retries.
            continue;
        };
        tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            let Ok(mut outbound) = TcpStream::connect(to).await else {
                return;
            };
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn connections_go_where_the_target_says_when_they_arrive() {
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let to = Arc::new(std::sync::Mutex::new(a_addr));
        let t = to.clone();
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = probe.local_addr().unwrap();
        drop(probe);
        let local = IpAddr::from([127, 0, 0, 1]);
        let task = bind(
            front,
            "test",
            local,
            Arc::new(move || Some(*t.lock().unwrap())),
        )
        .await
        .unwrap();
        for (listener, name) in [(a, "a"), (b, "b")] {
            tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    let _ = s.write_all(name.as_bytes()).await;
                }
            });
        }
        let read = |addr| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut got = String::new();
            s.read_to_string(&mut got).await.unwrap();
            got
        };
        assert_eq!(read(front).await, "a");
        *to.lock().unwrap() = b_addr;
        assert_eq!(read(front).await, "b");
        task.abort();
        // From another address: closed, not forwarded.
        // A free port: the listener that found it is dropped at once.
        let other = TcpListener::bind("127.0.0.2:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let guarded = bind(
            other,
            "test",
            IpAddr::from([127, 0, 0, 9]),
            Arc::new(move || Some(a_addr)),
        )
        .await
        .unwrap();
        assert_eq!(read(other).await, "");
        guarded.abort();
    }
}
