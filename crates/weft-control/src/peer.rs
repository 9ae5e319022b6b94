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

/// Why a verified client certificate names no workload.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No single `spiffe://` URI SAN, or not X.509 at all.
    #[error(transparent)]
    Cert(#[from] weft_core::cert::Error),
    /// A `spiffe://` URI that is not `spiffe://<td>/ns/<ns>/sa/<sa>`.
    #[error(transparent)]
    Identity(#[from] weft_core::identity::Reason),
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
    pub fn parse(der: &[u8]) -> Result<ClientCert, Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(uris: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cart-0");
        params.subject_alt_names = uris
            .iter()
            .map(|u| rcgen::SanType::URI((*u).try_into().unwrap()))
            .collect();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_identity_and_pod() {
        let c = ClientCert::parse(&leaf(&["spiffe://td/ns/shop/sa/cart"])).unwrap();
        assert_eq!(c.identity, SpiffeId::new("td", "shop", "cart"));
        assert_eq!(c.pod, "cart-0");
    }

    #[test]
    fn says_why_a_certificate_names_no_workload() {
        let err = ClientCert::parse(&leaf(&[])).unwrap_err();
        assert!(
            matches!(err, Error::Cert(weft_core::cert::Error::NoSan)),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the certificate has no subjectAltName");
        let err = ClientCert::parse(&leaf(&["spiffe://td/ns/shop"])).unwrap_err();
        assert!(matches!(err, Error::Identity(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "the path has 2 segments, not the 4 of /ns/<namespace>/sa/<service-account>"
        );
    }
}
