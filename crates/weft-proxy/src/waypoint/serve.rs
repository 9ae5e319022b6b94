//! The waypoint's side of a tunnel stream: the destination must be a Service (or pod) that
//! uses this waypoint; its traffic is authorized with the waypoint's policies and the client's
//! identity, then routed as a sidecar would route it (HTTP request by request, anything else as
//! TCP) and sent on with the waypoint's identity.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use weft_core::authz::{self, Ask, Decision, HttpAsk};
use weft_core::model::{AddressConfig, Endpoint, Protocol};

use crate::body::Body;
use crate::detect::{self, DETECT_TIMEOUT, Detected};
use crate::error::{Kind, ProxyError};
use crate::io::Rewind;
use crate::pool::Upstream;
use crate::record::Record;
use crate::request::{self, Routing};
use crate::shared::Shared;
use crate::tunnel::{self, Accepted, Credentials, peer};
use crate::{outbound, serve};

const POD_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn run(
    listener: TcpListener,
    creds: Arc<dyn Credentials>,
    shared: Arc<Shared>,
    me: Arc<str>,
) {
    let metrics = shared.metrics.clone();
    let refused: tunnel::OnRefused = Arc::new(move |reason| metrics.mtls_refused(reason));
    let drain = shared.drain.clone();
    tunnel::run(listener, creds, drain, refused, move |a: Accepted| {
        let (shared, me) = (shared.clone(), me.clone());
        async move { stream(a, shared, me).await }
    })
    .await;
}

/// One stream from a client: the destination it names must use this waypoint.
async fn stream(a: Accepted, shared: Arc<Shared>, me: Arc<str>) {
    let mut record = Record::new("waypoint");
    record.downstream = Some(a.peer.to_string());
    record.peer_identity = Some(a.identity.to_string());
    record.source = Some(a.metadata.clone());
    record.upstream = Some(a.target.to_string());
    let not_mine = |what: String| {
        Kind::Denied(format!(
            "{what} does not use waypoint {me}: a waypoint serves only its own destinations"
        ))
    };
    let log = shared.log();
    let svc = match shared.store.address(a.target.ip()).await {
        Ok(AddressConfig { pod: Some(ep), .. }) => {
            if ep.waypoint.as_ref().is_none_or(|w| *w.service != *me) {
                let e = not_mine(format!("pod {}", ep.pod)).into();
                return serve::refuse_tcp(log, record, &e);
            }
            return pod(a, ep, shared, record).await;
        }
        Ok(AddressConfig { service: key, .. }) => match shared.store.service(&key).await {
            Ok(svc) => svc,
            Err(e) => {
                let e = crate::request::table::service_error(&key, e);
                return serve::refuse_tcp(log, record, &e);
            }
        },
        Err(_) => {
            let e = Kind::UnknownDestination(a.target.to_string()).into();
            return serve::refuse_tcp(log, record, &e);
        }
    };
    let key = svc.config.key();
    record.service = Some(key.clone());
    if svc
        .config
        .waypoint
        .as_ref()
        .is_none_or(|w| *w.service != *me)
    {
        let e = not_mine(format!("service {key}")).into();
        return serve::refuse_tcp(log, record, &e);
    }
    let protocol = svc
        .config
        .port(a.target.port())
        .map_or(Protocol::Detect, |p| p.protocol);
    let (detected, io) = match protocol {
        Protocol::Tcp => (Detected::Tcp, Rewind::new(Default::default(), a.io)),
        Protocol::Http | Protocol::Http2 | Protocol::Grpc => {
            (Detected::Http1, Rewind::new(Default::default(), a.io))
        }
        Protocol::Detect => detect::detect_read(a.io, DETECT_TIMEOUT).await,
    };
    let (identity, source): (Arc<str>, _) = (a.identity.clone(), a.metadata.clone());
    if detected == Detected::Tcp {
        let ask = ask(&identity, a.target.port(), None, &key);
        if let Err(e) = authorize(&shared, &me, &ask, &mut record).await {
            return serve::refuse_tcp(log, record, &e);
        }
        return outbound::tcp(io, a.target, &svc, shared, record).await;
    }
    let (port, peer, drain) = (a.target.port(), a.peer, shared.drain.clone());
    let key: Arc<str> = key.into();
    serve::http(io, drain, move |mut req| {
        let (shared, me, key, identity) =
            (shared.clone(), me.clone(), key.clone(), identity.clone());
        // The client's workload rides with the request to its record.
        req.extensions_mut().insert(source.clone());
        // Boxed: hyper moves the handler's future, and this one is several KiB.
        async move {
            let served = Box::pin(request(shared, me, key, identity, port, peer, req));
            Ok::<_, Infallible>(served.await)
        }
    })
    .await
}

/// One HTTP request: authorized with the client's identity, counted against the Service's
/// local rate limit, then routed to the Service.
async fn request(
    shared: Arc<Shared>,
    me: Arc<str>,
    key: Arc<str>,
    identity: Arc<str>,
    port: u16,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let refused = {
        let header = |name: &str| -> Vec<String> {
            req.headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect()
        };
        let http = HttpAsk {
            method: req.method().as_str(),
            path: req.uri().path(),
            header: &header,
        };
        let ask = ask(&identity, port, Some(http), &key);
        let mut record = shared.record("waypoint", &parts_of(&req), peer);
        record.source = req.extensions().get::<peer::Shared>().cloned();
        record.service = Some(key.to_string());
        record.peer_identity = Some(identity.to_string());
        match authorize(&shared, &me, &ask, &mut record).await {
            Ok(()) => limited(&shared, &me, record).await,
            Err(e) => Some(shared.finish(record, Instant::now(), Err(e))),
        }
    };
    if let Some(res) = refused {
        return res;
    }
    request::serve(shared, Routing::Waypoint(key, identity), port, peer, req).await
}

/// The refusal of a request over its Service's local rate limit, counted in this
/// waypoint instance's bucket for the Service; None when it may pass.
async fn limited(shared: &Shared, me: &str, mut record: Record) -> Option<Response<Body>> {
    let gateway = shared.store.gateway(me).await.ok()?;
    let limits = &gateway.config.local_rate_limits;
    let res = crate::ratelimit::check(&shared.rate_limits, limits, &mut record)?;
    Some(shared.finish(record, Instant::now(), Ok(res)))
}

/// The request head alone, for the record of a denied or rate-limited request.
fn parts_of(req: &Request<Incoming>) -> http::request::Parts {
    let mut head = Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .version(req.version())
        .body(())
        .unwrap_or_default();
    *head.headers_mut() = req.headers().clone();
    head.into_parts().0
}

fn ask<'a>(identity: &'a str, port: u16, http: Option<HttpAsk<'a>>, service: &'a str) -> Ask<'a> {
    Ask {
        identity: Some(identity),
        port,
        http,
        service: Some(service),
    }
}

/// The waypoint's AuthorizationPolicies for `ask`; a denial is logged on `record`. Without the
/// waypoint's configuration nothing is let through.
async fn authorize(
    shared: &Shared,
    me: &str,
    ask: &Ask<'_>,
    record: &mut Record,
) -> Result<(), ProxyError> {
    let gateway = shared.store.gateway(me).await.map_err(|_| {
        ProxyError::from(Kind::NotReady(format!(
            "waypoint {me} has no configuration from the control plane"
        )))
    })?;
    match authz::evaluate(&gateway.config.authorization, ask) {
        Decision::Allow { policy, rule } => {
            record.policy = policy;
            record.policy_rule = rule;
            Ok(())
        }
        Decision::Deny {
            policy,
            rule,
            reason,
        } => {
            record.policy_rule = rule;
            tracing::info!(peer_identity = ask.identity, port = ask.port, service = ask.service, %policy, "denied: {reason}");
            record.policy = Some(policy);
            Err(Kind::Denied(reason).into())
        }
    }
}

/// A pod that uses this waypoint, called by its own address: L4 policy, then its tunnel.
async fn pod(a: Accepted, ep: Endpoint, shared: Arc<Shared>, mut record: Record) {
    let me = shared.gateway.clone().unwrap_or_default();
    let ask = Ask {
        identity: Some(&a.identity),
        port: a.target.port(),
        http: None,
        service: None,
    };
    if let Err(e) = authorize(&shared, &me, &ask, &mut record).await {
        return serve::refuse_tcp(shared.log(), record, &e);
    }
    let up = Upstream {
        addr: ep.direct(a.target.port()),
        tunnel: ep.tunnel.map(|t| (t, ep.identity.as_str())),
        local: false,
    };
    let (log, drain, addr) = (shared.log(), shared.drain.clone(), up.addr);
    let upstream = shared.pool.open(&up, POD_CONNECT_TIMEOUT);
    serve::tcp(a.io, addr, upstream, drain, log, record, None).await
}
