//! One routed HTTP request, sent to a Service (outbound) or arriving at an ingress Gateway
//! listener (gateway role): route, filter, pick a backend and an endpoint, forward with retries
//! and timeouts, mirror, log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::{Body as _, Incoming};
use weft_core::model::{Backend, Protocol};

use super::lookup_error;
pub(crate) use super::routing::Routing;
use super::routing::Table;
use crate::balance::{InFlight, Tried};
use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::pool::Upstream;
use crate::record::Record;
use crate::route::{RequestView, pick_backend};
use crate::shared::Shared;
use crate::{authority, filters, forward};

const MIRROR_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP request: route, filter, pick a backend and an endpoint, forward with retries and
/// timeouts, log. `port` is the Service port (outbound) or the Gateway listener port.
pub(crate) async fn request(
    shared: Arc<Shared>,
    routing: Routing,
    port: u16,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let (parts, incoming) = req.into_parts();
    let mut record = Record::for_request(routing.direction(), &parts, peer);
    if let Routing::Service(key) = &routing {
        record.service = Some(key.to_string());
    }
    let result = route(&shared, &routing, port, parts, incoming, &mut record).await;
    shared.finish(record, start, result)
}

async fn route(
    shared: &Arc<Shared>,
    routing: &Routing,
    port: u16,
    mut parts: http::request::Parts,
    incoming: Incoming,
    record: &mut Record,
) -> Result<Response<Body>, ProxyError> {
    let table = Table::get(shared, routing).await?;
    let host = authority::host(&parts.uri, &parts.headers).map(str::to_string);
    // A Service port no route attaches to is served as if the Service had no routes; a Gateway
    // listener without routes has nothing to serve.
    let gateway = matches!(routing, Routing::Gateway(_));
    let selected = match table.routes() {
        Some(routes) if gateway || routes.covers(port) => {
            let view = RequestView {
                method: &parts.method,
                path: parts.uri.path(),
                query: parts.uri.query(),
                headers: &parts.headers,
                host: host.as_deref(),
                port,
            };
            let sel = routes.select(&view).ok_or(ProxyError::NoRoute)?;
            Some((sel.rule.clone(), sel.matched_prefix.map(str::to_string)))
        }
        _ => None,
    };
    let (rule, prefix) = match selected {
        Some((r, p)) => (Some(r), p),
        None => (None, None),
    };
    if let Some(rule) = &rule {
        record.route = Some(rule.name.clone());
        if let Some(redirect) = filters::request(&rule.filters, &mut parts, prefix.as_deref()) {
            let (p, ()) = redirect.into_parts();
            return Ok(Response::from_parts(p, body::empty()));
        }
    }
    let backend = match (&rule, routing) {
        (Some(rule), _) => pick_backend(&rule.backends)
            .ok_or_else(|| {
                ProxyError::NoBackend(format!("{} has no backend with weight > 0", rule.name))
            })?
            .clone(),
        // A Service without routes is its own backend.
        (None, Routing::Service(key)) => Backend {
            service: key.to_string(),
            port,
            weight: 1,
            filters: Vec::new(),
            unresolved: None,
        },
        (None, Routing::Gateway(_)) => return Err(ProxyError::NoRoute),
    };
    if record.service.is_none() {
        record.service = Some(backend.service.clone());
    }
    if let Some(e) = ProxyError::unresolved(&backend) {
        return Err(e);
    }
    if filters::request(&backend.filters, &mut parts, prefix.as_deref()).is_some() {
        return Err(ProxyError::NoBackend(
            "redirects are not allowed on backends".into(),
        ));
    }
    let backend_svc = match table.service(&backend.service) {
        Some(svc) => svc,
        None => shared
            .store
            .service(&backend.service)
            .await
            .map_err(|e| lookup_error(&backend.service, e))?,
    };
    let bport = if backend.port == 0 {
        port
    } else {
        backend.port
    };
    let policy = table.policy().unwrap_or(&backend_svc.config.policy);
    let timeout = rule.as_ref().and_then(|r| r.timeout).or(policy.timeout);
    let per_try = rule
        .as_ref()
        .and_then(|r| r.per_try_timeout)
        .or(policy.per_try_timeout);
    let retry = rule
        .as_ref()
        .and_then(|r| r.retry.clone())
        .or_else(|| policy.retry.clone());
    if incoming.is_end_stream()
        && let Some(rule) = &rule
    {
        for m in filters::mirrors(&rule.filters) {
            if fastrand::u32(0..100) < m.percent.unwrap_or(100) {
                let ns = m
                    .backend_ref
                    .namespace
                    .as_deref()
                    .unwrap_or(table.namespace());
                let key = format!("{ns}/{}", m.backend_ref.name);
                let port = m.backend_ref.port.unwrap_or(port);
                tokio::spawn(mirror(shared.clone(), key, port, clone_parts(&parts)));
            }
        }
    }
    // A body can be sent once; only requests without one are retried.
    // Upgrades are not retried: the connection is handed over on the first answer.
    let replayable = incoming.is_end_stream() && !forward::is_upgrade(&parts);
    let mut body = Some(body::stream(incoming));
    let attempts = if replayable {
        retry.as_ref().map_or(0, |r| r.attempts) + 1
    } else {
        1
    };
    let connect_timeout = backend_svc.config.policy.connect_timeout.as_std();
    // A port declared http is spoken as HTTP/1.1 upstream, http2/grpc as HTTP/2, whatever the
    // client used; an undeclared port keeps the client's version.
    let upstream_version = match backend_svc.config.port(bport).map(|p| p.protocol) {
        Some(Protocol::Http) if !forward::is_upgrade(&parts) => Some(http::Version::HTTP_11),
        Some(Protocol::Http2 | Protocol::Grpc) => Some(http::Version::HTTP_2),
        _ => None,
    };

    let work = async {
        let mut last = None;
        // Retries skip the endpoints already tried and draw on the Service's budget.
        let mut tried = Tried::default();
        let mut in_flight = backend_svc.balancer.budget().request();
        for attempt in 1..=attempts {
            record.attempts = Some(attempt);
            let pick = backend_svc
                .balancer
                .pick_avoiding(&tried)
                .ok_or_else(|| ProxyError::NoHealthyEndpoint(backend_svc.config.key()))?;
            let target = Upstream::endpoint(&pick, bport)
                .ok_or_else(|| ProxyError::NoHealthyEndpoint(backend_svc.config.key()))?;
            record.upstream = Some(target.addr.to_string());
            let b = body.take().unwrap_or_else(body::empty);
            let mut p = clone_parts(&parts);
            if let Some(v) = upstream_version {
                p.version = v;
            }
            if attempt == attempts {
                // The last try owns the upgrade, if any.
                p.extensions = std::mem::take(&mut parts.extensions);
            }
            // Boxed: timeout() moves it, and it is several KiB.
            let sent = Box::pin(forward::forward(
                &shared.pool,
                &target,
                p,
                b,
                connect_timeout,
            ));
            let result = match per_try {
                Some(t) => tokio::time::timeout(t.as_std(), sent)
                    .await
                    .unwrap_or(Err(ProxyError::Timeout)),
                None => sent.await,
            };
            let more = attempt < attempts;
            if more {
                tried.add(&pick);
            }
            let budget = |f: &mut InFlight<'_>| may_retry(shared, f, &backend.service);
            match result {
                Ok(mut res) => {
                    let status = res.status().as_u16();
                    let retry_status = retry.as_ref().is_some_and(|r| r.codes.contains(&status));
                    if res.status().is_server_error() {
                        pick.failure()
                    } else {
                        pick.success()
                    }
                    if retry_status && more && budget(&mut in_flight) {
                        drop(res);
                        backoff(retry.as_ref(), attempt).await;
                        continue;
                    }
                    if let Some(rule) = &rule {
                        let (mut rp, rb) = res.into_parts();
                        filters::response(&rule.filters, &mut rp);
                        filters::response(&backend.filters, &mut rp);
                        res = Response::from_parts(rp, rb);
                    }
                    return Ok(res);
                }
                Err(e) => {
                    // A malformed request is the client's fault, not the endpoint's.
                    if matches!(e, ProxyError::BadRequest(_)) {
                        return Err(e);
                    }
                    pick.failure();
                    // A refused connection reached nothing; a reset or timeout may have reached
                    // the app, so only idempotent methods are sent again.
                    let safe = matches!(
                        e,
                        ProxyError::ConnectRefused(_) | ProxyError::ConnectTimeout(_)
                    ) || parts.method.is_idempotent();
                    let again = more
                        && safe
                        && (e.retryable() || matches!(e, ProxyError::Timeout))
                        && budget(&mut in_flight);
                    if !again {
                        return Err(e);
                    }
                    last = Some(Err(e));
                    backoff(retry.as_ref(), attempt).await;
                }
            }
        }
        last.unwrap_or(Err(ProxyError::Timeout))
    };
    match timeout {
        Some(t) => tokio::time::timeout(t.as_std(), work)
            .await
            .unwrap_or(Err(ProxyError::Timeout)),
        None => work.await,
    }
}

/// Sends a copy of a bodiless request to a mirror backend; its answer is dropped.
async fn mirror(shared: Arc<Shared>, key: String, port: u16, parts: http::request::Parts) {
    let Ok(svc) = shared.store.service(&key).await else {
        return tracing::debug!(service = %key, "mirror backend does not exist");
    };
    let Some(pick) = svc.balancer.pick() else {
        return;
    };
    let Some(target) = Upstream::endpoint(&pick, port) else {
        return;
    };
    let timeout = svc.config.policy.connect_timeout.as_std();
    let sent = forward::forward(&shared.pool, &target, parts, body::empty(), timeout);
    // A hung mirror must not hold a task and a connection forever.
    let result = tokio::time::timeout(MIRROR_TIMEOUT, async {
        let res = sent.await?;
        use http_body_util::BodyExt;
        let _ = res.into_body().collect().await;
        Ok::<_, ProxyError>(())
    })
    .await
    .unwrap_or(Err(ProxyError::Timeout));
    match result {
        Ok(()) => pick.success(),
        Err(e) => {
            pick.failure();
            tracing::debug!(service = %key, "mirror: {e}");
        }
    }
}

/// Whether the retry budget allows one more retry; counted in the metrics when it does not.
fn may_retry(shared: &Shared, in_flight: &mut InFlight<'_>, service: &str) -> bool {
    let allowed = in_flight.retry();
    if !allowed {
        shared.metrics.retry_skipped(service);
    }
    allowed
}

async fn backoff(retry: Option<&weft_core::model::Retry>, attempt: u32) {
    let base = retry.map_or(Duration::from_millis(25), |r| r.backoff.as_std());
    let d = base * 2u32.saturating_pow(attempt.saturating_sub(1)).min(8);
    let jitter = Duration::from_micros(fastrand::u64(0..=d.as_micros() as u64 / 2));
    tokio::time::sleep(d + jitter).await;
}

fn clone_parts(p: &http::request::Parts) -> http::request::Parts {
    let mut req = Request::builder()
        .method(p.method.clone())
        .uri(p.uri.clone())
        .version(p.version)
        .body(())
        .unwrap_or_default();
    *req.headers_mut() = p.headers.clone();
    req.into_parts().0
}
