//! [`Peer`]: what the transport proved about a connection, handed to every request on it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;
use weft_core::identity::SpiffeId;

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Where it connects from.
    pub addr: SocketAddr,
    /// True on the TLS port: discovery there admits only proxies with a workload certificate.
    pub tls: bool,
    /// The verified client certificate, when one was presented.
    pub client: Option<ClientCert>,
}

/// What a verified workload certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub identity: SpiffeId,
    /// The pod it was issued to (the subject's common name); empty when it names none.
    pub pod: String,
}

impl ClientCert {
    /// Reads the one `spiffe://` URI SAN and the subject's common name of a leaf that the TLS
    /// layer has already verified.
    pub fn parse(der: &[u8]) -> Result<ClientCert, String> {
        let leaf = weft_core::cert::read(der)?;
        let identity = SpiffeId::parse(&leaf.spiffe_uri).map_err(|e| e.reason)?;
        Ok(ClientCert {
            identity,
            pod: leaf.common_name,
        })
    }
}

/// A connection with its [`Peer`], as tonic's server takes it.
#[derive(Debug)]
pub struct Conn<S> {
    pub io: S,
    pub peer: Peer,
}

impl<S: Unpin> Connected for Conn<S> {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
