//! TLS 1.3 for the tunnel, with SPIFFE identities instead of host names: a chain must lead to
//! a root of the mesh's trust bundle (read at every handshake, so a root rotation applies at
//! once), and its leaf must carry exactly one `spiffe://` URI. A client also checks that the
//! server's identity is one the destination workload may have, not merely one the CA signed.

use std::fmt;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

/// Where the proxy's own certificate and the mesh's trust bundle come from.
pub trait Credentials: Send + Sync + fmt::Debug + 'static {
    /// The current certificate and key; None before the first one is issued.
    fn certified_key(&self) -> Option<Arc<CertifiedKey>>;
    /// Roots the proxy trusts.
    fn trust_bundle(&self) -> Arc<Vec<CertificateDer<'static>>>;
    /// The SPIFFE ID the current certificate proves; part of every connection-pool key, so a
    /// connection made under one identity never serves another.
    fn identity(&self) -> Option<Arc<str>> {
        let key = self.certified_key()?;
        spiffe_id(key.end_entity_cert().ok()?).ok().map(Arc::from)
    }
}

/// ALPN of the tunnel: HTTP/2 carrying CONNECT streams.
pub const ALPN: &[u8] = b"h2";

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a peer's certificate gives no identity.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not a workload certificate: no single `spiffe://` URI SAN, or not X.509 at all.
    #[error(transparent)]
    NoIdentity(#[from] weft_core::cert::Error),
}

/// The SPIFFE ID of a leaf certificate: its one `spiffe://` URI SAN.
pub fn spiffe_id(cert: &CertificateDer<'_>) -> Result<String, Error> {
    weft_core::cert::read(cert.as_ref())
        .map(|leaf| leaf.spiffe_uri)
        .map_err(Error::NoIdentity)
}

/// Verifies `end_entity` up to a root of `bundle` for `usage`; its SPIFFE ID.
fn verify_chain(
    algs: &WebPkiSupportedAlgorithms,
    bundle: &[CertificateDer<'static>],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
    usage: KeyUsage,
) -> Result<String, rustls::Error> {
    let anchors: Vec<_> = bundle
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    if anchors.is_empty() {
        return Err(rustls::Error::General("no trust bundle yet".into()));
    }
    let cert = EndEntityCert::try_from(end_entity).map_err(|e| cert_error(&e))?;
    cert.verify_for_usage(algs.all, &anchors, intermediates, now, usage, None, None)
        .map_err(|e| cert_error(&e))?;
    spiffe_id(end_entity).map_err(|e| {
        rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            std::io::Error::other(e),
        ))))
    })
}

fn cert_error(e: &webpki::Error) -> rustls::Error {
    use webpki::Error as W;
    let c = match e {
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::CertExpired { .. } => CertificateError::Expired,
        W::CertNotValidYet { .. } => CertificateError::NotValidYet,
        W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        other => CertificateError::Other(rustls::OtherError(Arc::new(std::io::Error::other(
            other.to_string(),
        )))),
    };
    rustls::Error::InvalidCertificate(c)
}

/// The mesh's trust, as both verifiers check it.
#[derive(Debug)]
struct Trust {
    creds: Arc<dyn Credentials>,
    algs: WebPkiSupportedAlgorithms,
}

impl Trust {
    fn new(creds: Arc<dyn Credentials>, provider: &CryptoProvider) -> Trust {
        Trust {
            creds,
            algs: provider.signature_verification_algorithms,
        }
    }

    /// The peer's SPIFFE ID, once its chain leads to the current bundle.
    fn chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: KeyUsage,
    ) -> Result<String, rustls::Error> {
        let bundle = self.creds.trust_bundle();
        verify_chain(&self.algs, &bundle, end_entity, intermediates, now, usage)
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }
}

fn no_tls12() -> rustls::Error {
    rustls::Error::General("TLS 1.2 is not used in the mesh".into())
}

/// Checks the server: a chain to the bundle, and an identity among `allowed`.
#[derive(Debug)]
struct ServerVerifier {
    trust: Trust,
    allowed: Vec<String>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let id = self
            .trust
            .chain(end_entity, intermediates, now, KeyUsage::server_auth())?;
        if !self.allowed.contains(&id) {
            return Err(rustls::Error::General(format!(
                "the peer is {id}, but the destination may only be {}",
                self.allowed.join(" or ")
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(no_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.trust.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.trust.algs.supported_schemes()
    }
}

/// Checks clients: a chain to the bundle; any mesh identity (policy decides the rest).
#[derive(Debug)]
struct ClientVerifier {
    trust: Trust,
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.trust
            .chain(end_entity, intermediates, now, KeyUsage::client_auth())?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(no_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.trust.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.trust.algs.supported_schemes()
    }
}

/// Presents the current certificate; a rotation applies to the next handshake.
/// Presents the current certificate (none before the first).
#[derive(Debug)]
pub(crate) struct Current(pub(crate) Arc<dyn Credentials>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.certified_key()
    }
}

impl ResolvesClientCert for Current {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.0.certified_key()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The tunnel server's TLS: TLS 1.3 only, client certificates required.
pub fn server_config(creds: Arc<dyn Credentials>) -> Arc<rustls::ServerConfig> {
    let provider = provider();
    let verifier = Arc::new(ClientVerifier {
        trust: Trust::new(creds.clone(), &provider),
    });
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(Current(creds)));
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    // Every handshake proves the peer's current certificate: no session resumption, which
    // would carry an identity over from before a rotation.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Arc::new(cfg)
}

/// TLS to a peer whose identity must be one of `allowed`.
pub fn client_config(
    creds: Arc<dyn Credentials>,
    allowed: Vec<String>,
) -> Arc<rustls::ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(ServerVerifier {
        trust: Trust::new(creds.clone(), &provider),
        allowed,
    });
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(Current(creds)));
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}
