//! The gRPC face of the CA: `weft.v1.Certificates/Create`.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use weft_proto::ca::{
    Certificates, CertificatesServer, CreateCertificateRequest, CreateCertificateResponse,
};

use super::Ca;
use crate::peer::Peer;

#[derive(Debug, Clone)]
pub struct Server {
    ca: Arc<Ca>,
}

impl Server {
    pub fn new(ca: Arc<Ca>) -> CertificatesServer<Server> {
        CertificatesServer::new(Server { ca })
    }
}

/// The token of `authorization: Bearer <token>`, if the metadata has that form.
fn bearer<T>(req: &Request<T>) -> Option<String> {
    let value = req.metadata().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

#[tonic::async_trait]
impl Certificates for Server {
    async fn create(
        &self,
        request: Request<CreateCertificateRequest>,
    ) -> Result<Response<CreateCertificateResponse>, Status> {
        let from = request
            .extensions()
            .get::<Peer>()
            .map(|p| p.addr)
            .or_else(|| request.remote_addr());
        let peer = from.map_or_else(|| "-".to_string(), |a| a.to_string());
        let token = bearer(&request);
        let req = request.into_inner();
        let metrics = self.ca.metrics();
        match self.ca.create(
            token.as_deref(),
            &req.csr_pem,
            req.ttl_seconds,
            from.map(|a| a.ip()),
            &req.pod,
        ) {
            Ok(resp) => {
                metrics.issued();
                Ok(Response::new(resp))
            }
            Err(r) => {
                metrics.refused(r.reason);
                tracing::warn!(who = %r.who, %peer, reason = r.reason.as_str(), "certificate request refused: {}", r.message);
                Err(Status::new(r.code, r.message))
            }
        }
    }
}
