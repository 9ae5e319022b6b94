//! Opening TCP connections upstream: with a connect timeout that names the failure, and with
//! the socket mark that lets the proxy's own traffic pass the capture rules.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::{Kind, ProxyError};

/// Opens the proxy's own TCP connections (to endpoints, peer tunnels, the local app and the
/// control plane). One per proxy (a node proxy: one per pod, inside the pod's network
/// namespace), made from its config; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Connector {
    /// `SO_MARK` on every connection (0: none; setting one needs CAP_NET_ADMIN). Capture rules
    /// let marked traffic pass, so the proxy's connections are not redirected back to itself.
    mark: u32,
    /// The namespace connections are made from (None: the proxy's own).
    netns: Option<Arc<crate::netns::Netns>>,
}

impl Connector {
    /// A connector that marks its connections with `mark` (0: no mark).
    pub fn new(mark: u32) -> Connector {
        Connector { mark, netns: None }
    }

    /// The same, connecting from inside the network namespace `netns`.
    pub fn in_netns(&self, netns: Arc<crate::netns::Netns>) -> Connector {
        Connector {
            mark: self.mark,
            netns: Some(netns),
        }
    }

    /// The socket mark it sets (0: none).
    pub fn mark(&self) -> u32 {
        self.mark
    }

    async fn open(&self, target: SocketAddr) -> std::io::Result<TcpStream> {
        if self.mark == 0 && self.netns.is_none() {
            return TcpStream::connect(target).await;
        }
        let socket = match &self.netns {
            Some(ns) => ns.socket(target)?,
            None => socket2::Socket::new(
                socket2::Domain::for_address(target),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?,
        };
        if self.mark != 0 {
            socket.set_mark(self.mark)?;
        }
        socket.set_nonblocking(true)?;
        let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
        socket.connect(target).await
    }

    /// Opens a TCP connection with a timeout, naming the failure.
    pub async fn connect(
        &self,
        target: SocketAddr,
        timeout: Duration,
    ) -> Result<TcpStream, ProxyError> {
        let addr = target.to_string();
        match tokio::time::timeout(timeout, self.open(target)).await {
            Err(_) => Err(Kind::ConnectTimeout(addr).into()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(Kind::ConnectRefused(addr).into())
            }
            Ok(Err(e)) => Err(ProxyError::caused(Kind::Connect(addr), e)),
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unmarked_connector_connects_and_names_a_refusal() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let c = Connector::default();
        assert_eq!(c.mark(), 0);
        assert!(c.connect(addr, Duration::from_secs(5)).await.is_ok());
        drop(l);
        let err = c.connect(addr, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err.kind(), Kind::ConnectRefused(_)), "{err:?}");
    }
}
