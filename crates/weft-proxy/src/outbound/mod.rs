//! Outbound: traffic the local app sends. The original destination (or the configured target
//! in explicit mode) names a Service by its VIP, where the port's protocol, or detection,
//! decides between HTTP routing and opaque TCP; or a mesh pod by its own address, reached
//! through that pod's tunnel with both identities (its proxy applies its policy per request).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use weft_core::model::{AddressConfig, Endpoint, Protocol};
use weft_core::resources::mesh::OutboundTrafficPolicy;

use crate::detect::{self, DETECT_TIMEOUT, Detected};
use crate::error::{Kind, ProxyError};
use crate::io::Io;
use crate::pool::Upstream;
use crate::record::Record;
use crate::request::table::service_error;
use crate::request::{self, Routing, plan};
use crate::shared::Shared;
use crate::state::{LookupError, ServiceEntry};
use crate::tunnel::peer::Metadata;
use crate::waypoint::client as waypoint;
use crate::{capture, serve};

pub async fn run(listener: TcpListener, shared: Arc<Shared>, fixed: Option<SocketAddr>) {
    let drain = shared.drain.clone();
    serve::accept(listener, drain, "outbound", move |stream, peer| {
        let shared = shared.clone();
        async move {
            let dst = match fixed {
                Some(d) => d,
                None => match capture::original_dst(&stream) {
                    Ok(d) => d,
                    Err(e) => {
                        return tracing::warn!(%peer, "outbound: no original destination: {e}");
                    }
                },
            };
            connection(stream, peer, dst, shared).await;
        }
    })
    .await;
}

async fn connection(stream: TcpStream, peer: SocketAddr, dst: SocketAddr, shared: Arc<Shared>) {
    // Relayed or routed, bytes go out as they come: no Nagle delay on the client's side.
    let _ = stream.set_nodelay(true);
    let mut record = Record::new("outbound");
    record.downstream = Some(peer.to_string());
    // Only a destination the control plane says is not a Service passes through; when it
    // cannot be asked, the connection is refused rather than sent somewhere unchecked.
    let svc = match shared.store.address(dst.ip()).await {
        Ok(AddressConfig { pod: Some(ep), .. }) => {
            return pod(stream, dst, ep, shared, record).await;
        }
        Ok(AddressConfig { service: key, .. }) => match shared.store.service(&key).await {
            Ok(svc) => svc,
            Err(e) => return refuse(shared, record, key, e),
        },
        Err(LookupError::Missing) => return passthrough(stream, dst, shared, record).await,
        Err(e) => return refuse(shared, record, dst.to_string(), e),
    };
    record.service = Some(svc.config.key());
    let protocol = svc
        .config
        .port(dst.port())
        .map_or(Protocol::Detect, |p| p.protocol);
    // Its L7 runs at its waypoint: the bytes go there as they are.
    if let Some(w) = waypoint::needed(&shared, svc.config.waypoint.as_ref()) {
        let w = w.clone();
        return waypoint::relay(stream, dst, &w, protocol, shared, record).await;
    }
    let detected = match protocol {
        _ if shared.l4_only => Detected::Tcp,
        Protocol::Tcp => Detected::Tcp,
        Protocol::Http | Protocol::Http2 | Protocol::Grpc => Detected::Http1,
        Protocol::Detect => detect::detect(&stream, DETECT_TIMEOUT).await,
    };
    if detected == Detected::Tcp {
        return tcp(stream, dst, &svc, shared, record).await;
    }
    let key: Arc<str> = svc.config.key().into();
    let port = dst.port();
    let drain = shared.drain.clone();
    serve::http(stream, drain, move |req| {
        let shared = shared.clone();
        let routing = Routing::Service(key.clone());
        // Boxed: hyper moves the handler's future, and this one is several KiB.
        async move {
            Ok::<_, Infallible>(Box::pin(request::serve(shared, routing, port, peer, req)).await)
        }
    })
    .await;
}

fn refuse(shared: Arc<Shared>, record: Record, what: String, e: LookupError) {
    serve::refuse_tcp(shared.log(), record, &service_error(&what, e));
}

/// A destination that is not a mesh Service: passed through as TCP, or refused.
async fn passthrough(stream: TcpStream, dst: SocketAddr, shared: Arc<Shared>, record: Record) {
    let policy = shared.proxy_config().map(|p| p.outbound_traffic_policy);
    // Without a proxy config the policy is unknown: refuse rather than fail open.
    if policy != Some(OutboundTrafficPolicy::AllowAny) {
        let err = Kind::UnknownDestination(dst.to_string()).into();
        return serve::refuse_tcp(shared.log(), record, &err);
    }
    let log = shared.log();
    serve::tcp(
        stream,
        dst,
        shared.connector.connect(dst, Duration::from_secs(5)),
        shared.drain.clone(),
        log,
        record,
        None,
    )
    .await;
}

/// A mesh pod called by its own address: the bytes go through its tunnel (or in plaintext
/// when it takes no tunnel), and its proxy detects HTTP and authorizes each request.
async fn pod(
    stream: TcpStream,
    dst: SocketAddr,
    ep: Endpoint,
    shared: Arc<Shared>,
    mut record: Record,
) {
    if let Some(w) = waypoint::needed(&shared, ep.waypoint.as_ref()) {
        let w = w.clone();
        return waypoint::relay(stream, dst, &w, Protocol::Detect, shared, record).await;
    }
    record.peer_identity = Some(ep.identity.clone());
    let up = Upstream {
        addr: ep.direct(dst.port()),
        tunnel: ep.tunnel.map(|t| (t, ep.identity.as_str())),
        local: false,
    };
    let mtls = shared.pool.tunnels(&up);
    record.mtls = Some(mtls);
    record.destination = Some(Arc::new(Metadata::of_endpoint(&ep, mtls)));
    let (log, drain, addr) = (shared.log(), shared.drain.clone(), up.addr);
    let upstream = shared.pool.open(&up, POD_CONNECT_TIMEOUT);
    serve::tcp(stream, addr, upstream, drain, log, record, None).await
}

/// Connect timeout towards a pod called by its address (no Service policy applies).
const POD_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Opaque TCP to a Service: its TCP route (if any) picks the backend, whose balancer picks the
/// endpoint.
pub(crate) async fn tcp<S: Io>(
    stream: S,
    dst: SocketAddr,
    svc: &ServiceEntry,
    shared: Arc<Shared>,
    mut record: Record,
) {
    let log = shared.log();
    let target = async {
        let (rule, backend, port) = plan::tcp(svc, dst.port(), &mut fastrand::Rng::new())?;
        record.route = rule.map(|r| r.name.clone());
        let backend =
            (shared.store.service(&backend).await).map_err(|e| service_error(&backend, e))?;
        let pick = (backend.balancer.pick())
            .ok_or_else(|| Kind::NoHealthyEndpoint(backend.config.key()))?;
        let timeout = backend.config.policy.connect_timeout.as_std();
        Ok::<_, ProxyError>((timeout, pick, port))
    };
    match target.await {
        Ok((timeout, pick, port)) => {
            let endpoint = (*pick).clone();
            let Some(up) = Upstream::endpoint(&endpoint, port) else {
                let e = Kind::NoHealthyEndpoint(svc.config.key()).into();
                return serve::refuse_tcp(log, record, &e);
            };
            let mtls = shared.pool.tunnels(&up);
            record.mtls = Some(mtls);
            record.destination = Some(Arc::new(Metadata::of_endpoint(&endpoint, mtls)));
            let (drain, addr) = (shared.drain.clone(), up.addr);
            let upstream = shared.pool.open(&up, timeout);
            serve::tcp(stream, addr, upstream, drain, log, record, Some(pick)).await
        }
        Err(e) => serve::refuse_tcp(log, record, &e),
    }
}
