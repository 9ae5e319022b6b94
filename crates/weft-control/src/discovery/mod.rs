//! The delta discovery server (gRPC `weft.v1.Discovery/Delta`).

pub mod admit;
mod push;
pub(crate) mod skew;
mod stream;

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use weft_proto::discovery::discovery_server::{Discovery, DiscoveryServer};
use weft_proto::discovery::{DeltaRequest, DeltaResponse};

use crate::ca::Ca;
use crate::peer::Peer;
use crate::state::State;

/// The default of [`crate::Config::send_timeout`].
pub const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Responses queued per stream beyond what its HTTP/2 flow control holds: with the send
/// timeout, all a proxy that stops reading can make the control plane keep for it.
const QUEUE: usize = 16;

#[derive(Debug, Clone)]
pub struct Server {
    state: Arc<State>,
    /// Whose registrations admit proxies on the mTLS port.
    ca: Arc<Ca>,
    send_timeout: std::time::Duration,
    /// This control plane's revision: proxies of another are refused ([`skew`]).
    revision: Option<Arc<str>>,
}

impl Server {
    pub fn new(
        state: Arc<State>,
        ca: Arc<Ca>,
        send_timeout: std::time::Duration,
        revision: Option<String>,
    ) -> DiscoveryServer<Server> {
        DiscoveryServer::new(Server {
            state,
            ca,
            send_timeout,
            revision: revision.map(Arc::from),
        })
    }
}

type Responses = Pin<Box<dyn Stream<Item = Result<DeltaResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Discovery for Server {
    type DeltaStream = Responses;

    async fn delta(
        &self,
        request: Request<Streaming<DeltaRequest>>,
    ) -> Result<Response<Responses>, Status> {
        let peer = request.extensions().get::<Peer>().cloned().or_else(|| {
            request.remote_addr().map(|addr| Peer {
                addr,
                tls: false,
                client: None,
            })
        });
        // On the mTLS port nothing is spawned for a client without a certificate.
        if let Some(p) = peer.as_ref().filter(|p| p.tls && p.client.is_none()) {
            tracing::warn!(from = %p.addr, "discovery refused: no client certificate");
            self.state.metrics.refused("no-certificate");
            return Err(Status::unauthenticated(
                "discovery on this port admits proxies by their workload certificate, and none \
                 was presented; a proxy gets one from the CA with its bootstrap credential first",
            ));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let conn = stream::Connection::new(self.state.clone(), self.ca.clone(), tx)
            .send_timeout(self.send_timeout)
            .revision(self.revision.clone());
        tokio::spawn(conn.run(request.into_inner(), peer));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
