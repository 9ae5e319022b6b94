//! Asking the CA: `weft.v1.Certificates/Create` over the control-plane channel, with the
//! bootstrap token as `authorization: Bearer` metadata.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use tonic::transport::Channel;
use weft_proto::ca::{CertificatesClient, CreateCertificateRequest};

use crate::control::{self, ControlPlane};
use crate::tunnel::Credentials;

/// How the proxy gets its certificate.
#[derive(Debug, Clone)]
pub struct Config {
    /// The control plane, e.g. `https://198.18.0.1:15012` (the discovery address).
    pub control_plane: ControlPlane,
    /// The bootstrap token, read at every request (so it can be replaced on disk).
    pub token_file: PathBuf,
    /// Lifetime to ask for; None: the CA's default.
    pub ttl: Option<Duration>,
}

/// What the CA answered: PEM, leaf first; the roots to trust.
#[derive(Debug, Clone)]
pub struct Issued {
    pub chain_pem: Vec<String>,
    pub bundle_pem: Vec<String>,
}

/// Why the CA gave no certificate.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("cannot read the bootstrap token file {}: {source}", .path.display())]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the bootstrap token file {} is empty", .0.display())]
    EmptyToken(PathBuf),
    #[error(
        "the bootstrap token in {} has characters that cannot go in gRPC metadata",
        .0.display()
    )]
    BadToken(PathBuf),
    #[error("cannot reach the CA at {control_plane}: {message}")]
    Unreachable {
        control_plane: String,
        message: String,
    },
    #[error("the CA refused ({code:?}): {message}")]
    Refused { code: tonic::Code, message: String },
    #[error(transparent)]
    Channel(#[from] control::Error),
}

/// Something that signs CSRs: the control plane's CA ([`GrpcIssuer`]) or a test CA.
pub trait Issue: Send + Sync + 'static {
    fn create(
        &self,
        csr_pem: String,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<Issued, IssueError>> + Send;
}

/// The control plane's CA.
#[derive(Debug, Clone)]
pub struct GrpcIssuer {
    channel: Channel,
    control_plane: String,
    token_file: PathBuf,
    /// A node proxy asking for one of its node's pods (`NAMESPACE/POD`); empty: its own.
    pod: String,
}

impl GrpcIssuer {
    /// Uses the proxy's control-plane channel ([`crate::control`]), presenting `creds` once
    /// they hold a certificate (renewals); the channel
    /// connects on first use and reconnects by itself.
    pub fn new(
        cfg: &Config,
        creds: Option<Arc<dyn Credentials>>,
    ) -> Result<GrpcIssuer, IssueError> {
        let channel = cfg.control_plane.connect_lazy(creds)?;
        Ok(GrpcIssuer {
            channel,
            control_plane: cfg.control_plane.address.clone(),
            token_file: cfg.token_file.clone(),
            pod: String::new(),
        })
    }

    /// The same CA, asked for the certificate of pod `pod` (`NAMESPACE/POD`) on this node.
    pub fn for_pod(&self, pod: &str) -> GrpcIssuer {
        GrpcIssuer {
            pod: pod.to_string(),
            ..self.clone()
        }
    }
}

impl Issue for GrpcIssuer {
    async fn create(&self, csr_pem: String, ttl: Option<Duration>) -> Result<Issued, IssueError> {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|source| IssueError::TokenFile {
                path: self.token_file.clone(),
                source,
            })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(IssueError::EmptyToken(self.token_file.clone()));
        }
        let mut req = tonic::Request::new(CreateCertificateRequest {
            csr_pem,
            ttl_seconds: ttl.map_or(0, |t| t.as_secs().max(1)),
            pod: self.pod.clone(),
        });
        req.set_timeout(Duration::from_secs(10));
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| IssueError::BadToken(self.token_file.clone()))?;
        req.metadata_mut().insert("authorization", value);
        let resp = CertificatesClient::new(self.channel.clone())
            .create(req)
            .await
            .map_err(|s| match s.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                    IssueError::Unreachable {
                        control_plane: self.control_plane.clone(),
                        message: s.message().to_string(),
                    }
                }
                code => IssueError::Refused {
                    code,
                    message: s.message().to_string(),
                },
            })?
            .into_inner();
        Ok(Issued {
            chain_pem: resp.cert_chain_pem,
            bundle_pem: resp.trust_bundle_pem,
        })
    }
}
