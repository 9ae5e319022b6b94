//! Sending through a waypoint: traffic to a Service (or pod) that has one goes to one of the
//! waypoint's ready instances over the tunnel, with the original destination as the CONNECT
//! target and the waypoint's identity (from configuration) as the identity it must prove. The
//! client applies none of the destination's L7 itself: the waypoint does. A waypoint that is
//! missing or has no ready instance fails closed with `waypoint-unavailable`, never skips it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_core::model::{Protocol, ServiceConfig, WaypointRef};

use crate::balance::{Pick, Tried};
use crate::detect::{self, DETECT_TIMEOUT, Detected};
use crate::error::{Kind, ProxyError};
use crate::io::Io;
use crate::pool::Upstream;
use crate::record::Record;
use crate::serve;
use crate::shared::Shared;
use crate::state::{LookupError, ServiceEntry};

/// Connect timeout towards a waypoint instance.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The waypoint that traffic must pass, unless this proxy is that waypoint.
pub(crate) fn needed<'a>(shared: &Shared, w: Option<&'a WaypointRef>) -> Option<&'a WaypointRef> {
    w.filter(|w| shared.gateway.as_deref() != Some(w.service.as_str()))
}

/// How to reach one destination through its waypoint.
pub(crate) struct Via {
    waypoint: WaypointRef,
    /// The waypoint's Service: its balancer picks the instance.
    service: Arc<ServiceEntry>,
    /// The original destination, the CONNECT target.
    dst: SocketAddr,
}

impl Via {
    /// The waypoint of `svc` for its port `port`, looked up; None when it needs none.
    pub(crate) async fn of(
        shared: &Shared,
        svc: &ServiceConfig,
        port: u16,
    ) -> Result<Option<Via>, ProxyError> {
        let Some(w) = needed(shared, svc.waypoint.as_ref()) else {
            return Ok(None);
        };
        let Some(vip) = svc.vip else {
            let why = format!("service {} has no address to send through it", svc.key());
            return Err(unavailable(w, why));
        };
        Via::to(shared, w, SocketAddr::new(vip, port))
            .await
            .map(Some)
    }

    /// Waypoint `w` for traffic to `dst`, looked up.
    pub(crate) async fn to(
        shared: &Shared,
        w: &WaypointRef,
        dst: SocketAddr,
    ) -> Result<Via, ProxyError> {
        let service = shared.store.service(&w.service).await.map_err(|e| {
            let why = match e {
                LookupError::Missing => "no such waypoint".to_string(),
                LookupError::Timeout => "no answer from the control plane about it".to_string(),
                LookupError::Rejected(why) => format!("its config was rejected: {why}"),
            };
            unavailable(w, why)
        })?;
        Ok(Via {
            waypoint: w.clone(),
            service,
            dst,
        })
    }

    /// An instance not in `tried` when one is left, else any ready one.
    pub(crate) fn pick(&self, tried: &Tried) -> Result<Pick, ProxyError> {
        let none = || unavailable(&self.waypoint, "no ready instance".into());
        self.service.balancer.pick_avoiding(tried).ok_or_else(none)
    }

    /// The upstream that reaches the destination through the instance `pick`.
    pub(crate) fn upstream(&self, pick: &Pick) -> Result<Upstream<'_>, ProxyError> {
        let tunnel = pick.tunnel.ok_or_else(|| {
            unavailable(&self.waypoint, format!("pod {} takes no tunnel", pick.pod))
        })?;
        Ok(Upstream {
            addr: self.dst,
            tunnel: Some((tunnel, self.waypoint.identity.as_str())),
            local: false,
        })
    }
}

pub(crate) fn unavailable(w: &WaypointRef, why: String) -> ProxyError {
    Kind::WaypointUnavailable(format!("waypoint {} is unavailable: {why}", w.service)).into()
}

/// Relays a connection for `dst` through waypoint `w`. When the waypoint is unavailable the
/// connection is refused; on an HTTP port (declared, or detected) each request is answered
/// 503 with `weft-error: waypoint-unavailable`, so the client learns why.
pub(crate) async fn relay<S: Io>(
    stream: S,
    dst: SocketAddr,
    w: &WaypointRef,
    protocol: Protocol,
    shared: Arc<Shared>,
    mut record: Record,
) {
    record.peer_identity = Some(w.identity.clone());
    let via = match Via::to(&shared, w, dst).await {
        Ok(via) => via,
        Err(e) => return refuse(stream, protocol, e, shared, record).await,
    };
    // Another instance when one refuses: up to three, while there are others to try.
    let attempts = via.service.config.endpoints.len().clamp(1, 3);
    let mut tried = Tried::default();
    let mut failed = None;
    for _ in 0..attempts {
        let pick = match via.pick(&tried) {
            Ok(pick) => pick,
            Err(e) => return refuse(stream, protocol, e, shared, record).await,
        };
        let up = match via.upstream(&pick) {
            Ok(up) => up,
            Err(e) => return refuse(stream, protocol, e, shared, record).await,
        };
        record.mtls = Some(shared.pool.tunnels(&up));
        match shared.pool.open(&up, CONNECT_TIMEOUT).await {
            Ok(io) => {
                let (log, drain) = (shared.log(), shared.drain.clone());
                let upstream = async { Ok::<_, ProxyError>(io) };
                return serve::tcp(stream, dst, upstream, drain, log, record, Some(pick)).await;
            }
            Err(e) => {
                tried.add(&pick);
                pick.failure();
                failed = Some(e);
            }
        }
    }
    let why = failed.map_or_else(|| "no ready instance".into(), |e| e.chain());
    refuse(stream, protocol, unavailable(w, why), shared, record).await
}

/// Refuses a connection with `kind`: answered request by request when it speaks HTTP.
async fn refuse<S: Io>(
    stream: S,
    protocol: Protocol,
    e: ProxyError,
    shared: Arc<Shared>,
    record: Record,
) {
    let why = e.chain();
    let kind = e.kind().clone();
    let (http, stream) = match protocol {
        Protocol::Http | Protocol::Http2 | Protocol::Grpc => {
            (true, crate::io::Rewind::new(Default::default(), stream))
        }
        Protocol::Tcp => (false, crate::io::Rewind::new(Default::default(), stream)),
        Protocol::Detect => {
            let (d, s) = detect::detect_read(stream, DETECT_TIMEOUT).await;
            (d != Detected::Tcp, s)
        }
    };
    tracing::info!(service = record.service.as_deref(), "refused: {why}");
    if !http {
        return serve::refuse_tcp(shared.log(), record, &e);
    }
    let (drain, direction) = (shared.drain.clone(), record.direction);
    let peer: SocketAddr = record
        .downstream
        .as_deref()
        .and_then(|d| d.parse().ok())
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    let service = record.service.clone();
    serve::http(stream, drain, move |req| {
        let (shared, kind, service) = (shared.clone(), kind.clone(), service.clone());
        async move {
            let (parts, _) = req.into_parts();
            let mut record = shared.record(direction, &parts, peer);
            record.service = service;
            let e = ProxyError::from(kind);
            Ok::<_, std::convert::Infallible>(shared.finish(record, Instant::now(), Err(e)))
        }
    })
    .await
}
