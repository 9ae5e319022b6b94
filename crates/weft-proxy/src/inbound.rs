//! Inbound: traffic for the local app, from the mTLS tunnel (port 15008, the client's identity
//! known) or as captured plaintext (port 15006, accepted only when the workload's mTLS mode is
//! PERMISSIVE or DISABLE, or when this proxy does no mTLS at all). The original destination
//! (or the configured app address in explicit mode) says where the app listens. Every
//! connection and request passes the workload's AuthorizationPolicies: HTTP is proxied request
//! by request so it is logged and authorized with method, path and headers, then counted against
//! the Service's local rate limit ([`crate::ratelimit`]); anything else is decided on L4 and
//! copied as TCP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use weft_core::authz::{self, Ask, Decision, HttpAsk};
use weft_core::model::{Protocol, ProxyConfig};
use weft_core::resources::mesh::MtlsMode;

use crate::body::{self, Body};
use crate::detect::DETECT_TIMEOUT;
use crate::detect::{self, Detected};
use crate::error::{Kind, ProxyError};
use crate::io::Io;
use crate::pool::Upstream;
use crate::record::Record;
use crate::shared::Shared;
use crate::tunnel::{self, Credentials, peer};
use crate::{capture, forward, serve};

const APP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Names the policy that denied a request, next to `weft-error: denied`: `shop/pricing`, or
/// with the rule that decided `shop/no-admin; rule=0`.
pub const DENIED_BY_HEADER: &str = "weft-denied-by";

/// Tells the app who called it (`By=<this workload>;URI=<the client>`), as Envoy-based meshes
/// do; a value sent by the client is always removed first, so the app can trust it.
pub const CLIENT_CERT_HEADER: &str = "x-forwarded-client-cert";

/// The captured plaintext listener.
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
            if let Some(mode) = refuses_plaintext(&shared) {
                let mut record = Record::new("inbound");
                record.downstream = Some(peer.to_string());
                record.upstream = Some(target.to_string());
                shared.metrics.mtls_refused("plaintext");
                tracing::warn!(%peer, destination = %target, "inbound: refused plaintext: the workload's mTLS mode is {mode:?}");
                let err = Kind::Plaintext(format!("plaintext refused: mTLS mode {mode:?}")).into();
                return serve::refuse_tcp(shared.log(), record, &err);
            }
            let _ = stream.set_nodelay(true);
            connection(stream, peer, target, None, None, shared).await;
        }
    })
    .await;
}

/// Whether plaintext must be refused, with the mode that says so. A proxy without
/// credentials does no mTLS, so it cannot refuse plaintext; one with credentials but no
/// configuration yet fails closed.
fn refuses_plaintext(shared: &Shared) -> Option<MtlsMode> {
    shared.credentials.as_ref()?;
    let mode = shared
        .proxy_config()
        .map_or(MtlsMode::Strict, |p| p.settings.mtls_mode);
    (mode == MtlsMode::Strict).then_some(mode)
}

/// The mTLS tunnel listener: each CONNECT stream is one inbound connection from a known peer.
pub async fn run_tunnel(
    listener: TcpListener,
    creds: Arc<dyn Credentials>,
    shared: Arc<Shared>,
    app: Option<SocketAddr>,
) {
    let metrics = shared.metrics.clone();
    let refused: tunnel::OnRefused = Arc::new(move |reason| metrics.mtls_refused(reason));
    let drain = shared.drain.clone();
    tunnel::run(listener, creds, drain, refused, move |a: tunnel::Accepted| {
        let shared = shared.clone();
        async move {
            // The tunnel leads to this pod only: the proxy is nobody's relay.
            let target = match app {
                Some(app) => app,
                None if Some(a.target.ip()) == shared.identity_ip => a.target,
                None => {
                    return tracing::warn!(peer = %a.peer, peer_identity = %a.identity, destination = %a.target,
                        "tunnel: refusing a stream to an address that is not this pod");
                }
            };
            connection(a.io, a.peer, target, Some(a.identity), Some(a.metadata), shared).await;
        }
    })
    .await;
}

/// One inbound connection: from the tunnel (the client's `identity` proven, its workload
/// `source` named for metrics), or plaintext.
async fn connection<S: Io>(
    stream: S,
    peer: SocketAddr,
    target: SocketAddr,
    identity: Option<Arc<str>>,
    source: Option<peer::Shared>,
    shared: Arc<Shared>,
) {
    let mut record = Record::new("inbound");
    record.downstream = Some(peer.to_string());
    let config = shared.proxy_config();
    describe(&mut record, config.as_deref(), target, &identity, &source);
    if let Some(e) = bypassed(config.as_deref(), identity.as_deref()) {
        record.upstream = Some(target.to_string());
        tracing::info!(%peer, peer_identity = identity.as_deref(), destination = %target, "refused: {e}");
        return serve::refuse_tcp(shared.log(), record, &e);
    }
    let declared = config.as_ref().and_then(|p| {
        p.inbound_ports
            .iter()
            .find(|x| x.port == target.port())
            .map(|x| x.protocol)
    });
    let (detected, stream) = match declared {
        // A node proxy is L4 only: policy that needs HTTP fails closed (see authz).
        _ if shared.l4_only => (
            Detected::Tcp,
            crate::io::Rewind::new(Default::default(), stream),
        ),
        Some(Protocol::Tcp) => (
            Detected::Tcp,
            crate::io::Rewind::new(Default::default(), stream),
        ),
        Some(Protocol::Http | Protocol::Http2 | Protocol::Grpc) => (
            Detected::Http1,
            crate::io::Rewind::new(Default::default(), stream),
        ),
        _ => detect::detect_read(stream, DETECT_TIMEOUT).await,
    };
    if detected == Detected::Tcp {
        let ask = Ask {
            identity: identity.as_deref(),
            port: target.port(),
            http: None,
            service: None,
        };
        if let Err(e) = authorize(&shared, &ask, &mut record) {
            record.upstream = Some(target.to_string());
            return serve::refuse_tcp(shared.log(), record, &e);
        }
        let log = shared.log();
        return serve::tcp(
            stream,
            target,
            shared.connector.connect(target, APP_CONNECT_TIMEOUT),
            shared.drain.clone(),
            log,
            record,
            None,
        )
        .await;
    }
    let drain = shared.drain.clone();
    serve::http(stream, drain, move |req| {
        let (shared, identity, source) = (shared.clone(), identity.clone(), source.clone());
        // Boxed: hyper moves the handler's future, and this one is several KiB.
        async move {
            let handled = handle(&shared, target, peer, identity, source, req);
            Ok::<_, Infallible>(Box::pin(handled).await)
        }
    })
    .await;
}

/// What the record of an inbound connection or request says about its two ends: the client
/// (its identity, the workload it named), the hop's security, and the Service called: the one
/// Service that targets the port, else the only Service that selects the workload at all (an
/// app reached at a configured address, whose port is no Service's target).
fn describe(
    record: &mut Record,
    config: Option<&ProxyConfig>,
    target: SocketAddr,
    identity: &Option<Arc<str>>,
    source: &Option<peer::Shared>,
) {
    record.peer_identity = identity.as_deref().map(str::to_string);
    record.source = source.clone();
    record.mtls = Some(identity.is_some());
    record.service = config.and_then(|c| {
        let services = &c.inbound_services;
        let only = || {
            let mut all = services.values();
            let first = all.next()?;
            all.all(|s| s == first).then_some(first)
        };
        services.get(&target.port()).or_else(only).cloned()
    });
}

/// The Service an HTTP request's host names, among those that target `port` (when several
/// do): `name`, `name.ns`, `name.ns.svc` or `name.ns.svc.cluster.local`, with or without the
/// port. Only a listed Service can come out, whatever the host says.
fn called(config: &ProxyConfig, port: u16, host: &str) -> Option<String> {
    let choices = config.inbound_service_choices.get(&port)?;
    let host = host
        .rsplit_once(':')
        .map_or(host, |(h, p)| match p.parse::<u16>() {
            Ok(_) => h,
            Err(_) => host,
        });
    let mut parts = host.split('.');
    let name = parts.next()?;
    let ns = parts.next().unwrap_or(&config.namespace);
    let key = format!("{ns}/{name}");
    choices.iter().find(|c| **c == key).cloned()
}

/// Why a connection is refused when the workload is behind a waypoint and the peer is not
/// that waypoint: its L7 policy cannot be skipped by calling the workload directly.
fn bypassed(config: Option<&ProxyConfig>, identity: Option<&str>) -> Option<ProxyError> {
    let waypoints = &config?.waypoints;
    if waypoints.is_empty() || identity.is_some_and(|id| waypoints.iter().any(|w| w == id)) {
        return None;
    }
    let from = identity.map_or("a plaintext client".to_string(), |id| id.to_string());
    Some(
        Kind::WaypointBypassed(format!(
            "this workload is behind waypoint {}: traffic to it must come through it, not from {from}",
            waypoints.join(", ")
        ))
        .into(),
    )
}

/// Applies the workload's AuthorizationPolicies; a denial is logged on `record`.
fn authorize(shared: &Shared, ask: &Ask<'_>, record: &mut Record) -> Result<(), ProxyError> {
    let Some(config) = shared.proxy_config() else {
        return Ok(());
    };
    match authz::evaluate(&config.authorization, ask) {
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
            record.policy = Some(policy.clone());
            record.policy_rule = rule;
            tracing::info!(peer_identity = ask.identity, port = ask.port, %policy, "denied: {reason}");
            Err(Kind::Denied(reason).into())
        }
    }
}

async fn handle(
    shared: &Shared,
    target: SocketAddr,
    peer: SocketAddr,
    identity: Option<Arc<str>>,
    source: Option<peer::Shared>,
    req: Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let (mut parts, incoming) = req.into_parts();
    let mut record = shared.record("inbound", &parts, peer);
    record.upstream = Some(target.to_string());
    let config = shared.proxy_config();
    describe(&mut record, config.as_deref(), target, &identity, &source);
    if record.service.is_none()
        && let (Some(c), Some(host)) = (config.as_deref(), record.authority.as_deref())
    {
        record.service = called(c, target.port(), host);
    }
    let denied = {
        let header = |name: &str| -> Vec<String> {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect()
        };
        let ask = Ask {
            identity: identity.as_deref(),
            port: target.port(),
            http: Some(HttpAsk {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                header: &header,
            }),
            service: None,
        };
        authorize(shared, &ask, &mut record).err()
    };
    if let Some(e) = denied {
        return shared.finish(record, start, Err(e));
    }
    // After authorization, as Istio puts Envoy's local_ratelimit after RBAC: a denied request
    // takes no token.
    if let Some(c) = config.as_deref()
        && let Some(res) =
            crate::ratelimit::check(&shared.rate_limits, &c.local_rate_limits, &mut record)
    {
        return shared.finish(record, start, Ok(res));
    }
    parts.headers.remove(CLIENT_CERT_HEADER);
    record.trace = Some(crate::trace::start(
        shared.proxy_config().as_deref(),
        &mut parts.headers,
    ));
    if let (Some(peer_id), Some(config)) = (&identity, shared.proxy_config()) {
        let xfcc = format!("By={};URI={peer_id}", config.identity);
        if let Ok(v) = HeaderValue::from_str(&xfcc) {
            parts.headers.insert(CLIENT_CERT_HEADER, v);
        }
    }
    let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    record.request_body = Some(bytes.clone());
    let result = forward::forward(
        &shared.pool,
        &Upstream::local(target),
        parts,
        body::counted(incoming, bytes),
        APP_CONNECT_TIMEOUT,
    )
    .await;
    shared.finish(record, start, result)
}

#[cfg(test)]
mod called_tests {
    use super::*;

    #[test]
    fn a_requests_host_picks_among_the_services_on_its_port_and_only_those() {
        let config = ProxyConfig {
            inbound_service_choices: [(
                8080,
                vec!["shop/pricing".to_string(), "shop/pricing-v1".to_string()],
            )]
            .into(),
            ..ProxyConfig::with_defaults(
                "pricing-v1-0.shop",
                "shop",
                "pricing-v1",
                "spiffe://x/ns/shop/sa/pricing",
            )
        };
        let cases = [
            ("pricing:8080", Some("shop/pricing")),
            ("pricing-v1.shop.svc.cluster.local", Some("shop/pricing-v1")),
            ("pricing.shop:8080", Some("shop/pricing")),
            ("evil.example:8080", None),
            ("pricing.other", None),
        ];
        for (host, want) in cases {
            assert_eq!(called(&config, 8080, host).as_deref(), want, "{host}");
        }
        assert_eq!(called(&config, 9090, "pricing"), None);
    }
}
