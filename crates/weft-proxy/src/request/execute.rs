//! Carrying out a [`Forward`] plan: mirrors sent, then attempts, each to an endpoint the
//! backend's balancer picks (avoiding those already tried), under the per-try timeout, until
//! one answers or [`retry`](super::retry) and the destination's retry budget say stop, or the
//! body cannot be sent again ([`replay`](super::replay)); all under the request timeout.
//! Endpoint health learns from every attempt.

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{Request, Response};
use http_body_util::BodyExt;
use weft_core::resources::http_route::HttpRouteFilter;

use super::plan::{Forward, Mirror};
use super::replay::Replay;
use crate::balance::{InFlight, Tried};
use crate::body::{self, Body};
use crate::error::{Kind, ProxyError};
use crate::pool::Upstream;
use crate::record::Record;
use crate::shared::Shared;
use crate::tunnel::peer::Metadata;
use crate::waypoint::client::Via;
use crate::{filters, forward};

/// A mirror's answer is awaited (and dropped) for at most this long.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the request as `plan` says; `record` gets the attempts and the upstream address.
pub(crate) async fn forward(
    shared: &Arc<Shared>,
    plan: Forward,
    parts: Parts,
    body: Body,
    record: &mut Record,
) -> Result<Response<Body>, ProxyError> {
    for m in &plan.mirrors {
        if fastrand::u32(0..100) < m.percent {
            tokio::spawn(mirror(shared.clone(), m.clone(), clone_parts(&parts)));
        }
    }
    let work = attempts(shared, &plan, parts, body, record);
    within(plan.timeout, work).await
}

async fn attempts(
    shared: &Shared,
    plan: &Forward,
    mut parts: Parts,
    body: Body,
    record: &mut Record,
) -> Result<Response<Body>, ProxyError> {
    let (svc, retry) = (&plan.service, &plan.retry);
    let no_endpoint = || ProxyError::from(Kind::NoHealthyEndpoint(svc.config.key()));
    // A backend with a waypoint is reached through it: each attempt picks an instance.
    let via = Via::of(shared, &svc.config, plan.port).await?;
    let (first, replay) = Replay::new(body, retry.attempts > 1);
    let mut body = Some(first);
    let mut tried = Tried::default();
    let mut in_flight = svc.balancer.budget().request();
    let mut attempt = 0;
    loop {
        attempt += 1;
        record.attempts = Some(attempt);
        let pick = match &via {
            Some(via) => via.pick(&tried)?,
            None => svc.balancer.pick_avoiding(&tried).ok_or_else(no_endpoint)?,
        };
        let target = match &via {
            Some(via) => via.upstream(&pick)?,
            None => Upstream::endpoint(&pick, plan.port).ok_or_else(no_endpoint)?,
        };
        record.upstream = Some(target.addr.to_string());
        let mtls = shared.pool.tunnels(&target);
        record.mtls = Some(mtls);
        // Through a waypoint the destination workload is the waypoint's to pick: not known here.
        record.destination = match &via {
            Some(_) => None,
            None => Some(Arc::new(Metadata::of_endpoint(&pick, mtls))),
        };
        let last = attempt >= retry.attempts;
        let mut p = clone_parts(&parts);
        if let Some(v) = plan.version {
            p.version = v;
        }
        if last {
            // The last try owns the upgrade, if any.
            p.extensions = std::mem::take(&mut parts.extensions);
        }
        // The first attempt streams the body; a retry is decided with its copy in hand.
        let b = body.take().unwrap_or_else(body::empty);
        // Boxed: the timeout moves it, and it is several KiB.
        let sent = Box::pin(forward::forward(
            &shared.pool,
            &target,
            p,
            b,
            plan.connect_timeout,
        ));
        let result = within(retry.per_try_timeout, sent).await;
        if !last {
            tried.add(&pick);
        }
        match result {
            Ok(res) => {
                let status = res.status();
                if status == http::StatusCode::FORBIDDEN && mtls {
                    denied_by(&res, record);
                }
                if status.is_server_error() {
                    pick.failure()
                } else {
                    pick.success()
                }
                let again = retry.again_after_status(attempt, status.as_u16(), res.headers());
                match again.then(|| replay.again()).flatten() {
                    Some(next) if budget(shared, &mut in_flight, plan) => body = Some(next),
                    _ => return Ok(respond(res, &plan.response_filters)),
                }
                drop(res);
            }
            Err(e) => {
                if e.endpoint_failed() {
                    pick.failure();
                }
                let again = retry.again_after_error(attempt, &e, &parts.method);
                match again.then(|| replay.again()).flatten() {
                    Some(next) if budget(shared, &mut in_flight, plan) => body = Some(next),
                    _ => return Err(e),
                }
            }
        }
        tokio::time::sleep(retry.backoff(attempt, fastrand::f64())).await;
    }
}

/// A 403 from the server's proxy (over mTLS, so from a proxy of the mesh) names the policy and
/// rule that denied it: the caller's record names them too.
fn denied_by(res: &http::Response<crate::body::Body>, record: &mut Record) {
    let h = res.headers();
    let denied = h
        .get(crate::error::ERROR_HEADER)
        .is_some_and(|v| v == "denied");
    let policy = h
        .get(crate::inbound::DENIED_BY_HEADER)
        .and_then(|v| v.to_str().ok());
    if let (true, Some(policy)) = (denied, policy) {
        record.read_policy_header(policy);
    }
}

/// `work`, limited to `limit` when there is one.
async fn within<T>(
    limit: Option<Duration>,
    work: impl Future<Output = Result<T, ProxyError>>,
) -> Result<T, ProxyError> {
    match limit {
        Some(t) => (tokio::time::timeout(t, work).await).unwrap_or(Err(Kind::Timeout.into())),
        None => work.await,
    }
}

/// Whether the retry budget allows one more retry; counted in the metrics when it does not.
fn budget(shared: &Shared, in_flight: &mut InFlight<'_>, plan: &Forward) -> bool {
    let allowed = in_flight.retry();
    if !allowed {
        shared.metrics.retry_skipped(&plan.service.config.key());
    }
    allowed
}

/// The answer with the response filters applied.
fn respond(res: Response<Body>, response_filters: &[HttpRouteFilter]) -> Response<Body> {
    if response_filters.is_empty() {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    filters::apply_to_response(response_filters, &mut parts);
    Response::from_parts(parts, body)
}

/// Sends a copy of a bodiless request to a mirror backend; its answer is dropped.
async fn mirror(shared: Arc<Shared>, m: Mirror, parts: Parts) {
    let Ok(svc) = shared.store.service(&m.service).await else {
        return tracing::debug!(service = %m.service, "mirror backend does not exist");
    };
    let Some(pick) = svc.balancer.pick() else {
        return;
    };
    let Some(target) = Upstream::endpoint(&pick, m.port) else {
        return;
    };
    let timeout = svc.config.policy.connect_timeout.as_std();
    let sent = forward::forward(&shared.pool, &target, parts, body::empty(), timeout);
    // A hung mirror must not hold a task and a connection forever.
    let result = within(Some(MIRROR_TIMEOUT), async {
        let _ = sent.await?.into_body().collect().await;
        Ok(())
    })
    .await;
    match result {
        Ok(()) => pick.success(),
        Err(e) => {
            pick.failure();
            tracing::debug!(service = %m.service, "mirror: {}", e.chain());
        }
    }
}

/// A copy of the request head, without its extensions.
fn clone_parts(p: &Parts) -> Parts {
    let mut req = Request::builder()
        .method(p.method.clone())
        .uri(p.uri.clone())
        .version(p.version)
        .body(())
        .unwrap_or_default();
    *req.headers_mut() = p.headers.clone();
    req.into_parts().0
}
