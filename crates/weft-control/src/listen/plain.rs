//! The plaintext listener: loopback only, every connection a [`Peer`] without TLS.

use std::net::SocketAddr;

use futures_util::Stream;
use tokio::net::{TcpListener, TcpStream};

use crate::peer::{Conn, Peer};

/// A plaintext discovery address off loopback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "plaintext discovery listens on loopback only, not {0}: proxies elsewhere use the mTLS port \
     (--secure-discovery ADDR, 15012 by convention)"
)]
pub struct Error(pub SocketAddr);

/// Refuses an address off loopback: nothing that arrives over a network is trusted without
/// a certificate.
pub fn check(addr: SocketAddr) -> Result<(), Error> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(Error(addr))
    }
}

/// Accepted connections, each with its peer address.
pub fn incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<Conn<TcpStream>>> {
    futures_util::stream::unfold(listener, |l| async move {
        loop {
            match l.accept().await {
                Ok((io, addr)) => {
                    let _ = io.set_nodelay(true);
                    let peer = Peer {
                        addr,
                        tls: false,
                        client: None,
                    };
                    return Some((Ok(Conn { io, peer }), l));
                }
                // Out of file descriptors and the like: wait rather than spin or stop serving.
                Err(e) => {
                    tracing::warn!("discovery: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_allowed() {
        assert_eq!(check("127.0.0.1:15010".parse().unwrap()), Ok(()));
        assert_eq!(check("[::1]:15010".parse().unwrap()), Ok(()));
        let addr: SocketAddr = "0.0.0.0:15010".parse().unwrap();
        assert_eq!(check(addr), Err(Error(addr)));
        assert_eq!(
            Error(addr).to_string(),
            "plaintext discovery listens on loopback only, not 0.0.0.0:15010: proxies elsewhere \
             use the mTLS port (--secure-discovery ADDR, 15012 by convention)"
        );
    }
}
