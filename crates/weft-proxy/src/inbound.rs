//! Inbound: traffic for the local app. The original destination (or the configured app
//! address in explicit mode) says where the app listens; HTTP is proxied request by request so
//! it is logged (and, with identity, authorized), anything else is copied as TCP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::{TcpListener, TcpStream};
use weft_core::model::Protocol;

use crate::access_log::Record;
use crate::app::Shared;
use crate::body::{self, Body};
use crate::detect::{self, Detected};
use crate::outbound::DETECT_TIMEOUT;
use crate::{capture, forward, pool, serve};

const APP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(listener: TcpListener, shared: Arc<Shared>, app: Option<SocketAddr>) {
    let own_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let drain = shared.drain.clone();
    serve::accept(listener, drain, "inbound", move |stream, peer| {
        let shared = shared.clone();
        async move {
            let target = match app {
                Some(a) => a,
                None => match capture::original_dst(&stream) {
                    // Deliver to where the client was going, the pod address: an app bound to
                    // localhost only stays private, as it is without the mesh. The proxy's own
                    // connections are exempt from capture, so this reaches the app directly.
                    Ok(d) if d.port() == own_port => {
                        return tracing::warn!(%peer, "inbound: refusing a connection to the proxy's own port");
                    }
                    Ok(d) => d,
                    Err(e) => return tracing::warn!(%peer, "inbound: no original destination: {e}"),
                },
            };
            connection(stream, peer, target, shared).await;
        }
    })
    .await;
}

async fn connection(stream: TcpStream, peer: SocketAddr, target: SocketAddr, shared: Arc<Shared>) {
    let mut record = Record::new("inbound");
    record.downstream = Some(peer.to_string());
    let declared = shared.store.proxy_config().and_then(|p| {
        p.inbound_ports
            .iter()
            .find(|x| x.port == target.port())
            .map(|x| x.protocol)
    });
    let detected = match declared {
        Some(Protocol::Tcp) => Detected::Tcp,
        Some(Protocol::Http | Protocol::Http2 | Protocol::Grpc) => Detected::Http1,
        _ => detect::detect(&stream, DETECT_TIMEOUT).await,
    };
    if detected == Detected::Tcp {
        let log = shared.log();
        return serve::tcp(
            stream,
            target,
            pool::connect(target, APP_CONNECT_TIMEOUT),
            shared.drain.clone(),
            log,
            record,
            None,
        )
        .await;
    }
    let drain = shared.drain.clone();
    let _ = stream.set_nodelay(true);
    serve::http(stream, drain, move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(request(&shared, target, peer, req).await) }
    })
    .await;
}

async fn request(
    shared: &Shared,
    target: SocketAddr,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let (parts, incoming) = req.into_parts();
    let mut record = Record::for_request("inbound", &parts, peer);
    record.upstream = Some(target.to_string());
    let result = forward::forward(
        &shared.pool,
        target,
        parts,
        body::stream(incoming),
        APP_CONNECT_TIMEOUT,
    )
    .await;
    shared.finish(record, start, result)
}
