//! The delta discovery server (gRPC `weft.v1.Discovery/Delta`).

pub mod status;
mod stream;

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use weft_proto::discovery::discovery_server::{Discovery, DiscoveryServer};
use weft_proto::discovery::{DeltaRequest, DeltaResponse};

use crate::state::State;

#[derive(Debug, Clone)]
pub struct Server {
    state: Arc<State>,
}

impl Server {
    pub fn new(state: Arc<State>) -> DiscoveryServer<Server> {
        DiscoveryServer::new(Server { state })
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
        let peer = request.remote_addr();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let conn = stream::Connection::new(self.state.clone(), tx);
        tokio::spawn(conn.run(request.into_inner(), peer));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
