//! One routed HTTP request, sent to a Service (sidecar outbound) or arriving at an ingress
//! Gateway listener (gateway role). Read it as the request's journey:
//!
//! 1. [`table`]: the routing table — the Service's routes, or the Gateway's.
//! 2. [`plan::route`] (pure): the rule that matches and the backend drawn by weight.
//! 3. The backend Service, looked up (asking the control plane on first use); a reference
//!    that does not resolve fails here, naming the backend.
//! 4. [`plan::plan`] (pure): filters applied, then either an answer (a redirect) or a
//!    [`plan::Forward`]: backend, port, upstream HTTP version, timeouts, retry policy, mirrors.
//! 5. [`execute`]: attempts against endpoints the balancer picks, with per-try timeouts and
//!    the retry decisions of [`retry`] (a gRPC call's body kept for them by [`replay`]);
//!    mirrors sent; response filters applied.
//! 6. [`Shared::finish`]: an error becomes its `weft-error` response; the access log and
//!    metrics get the record.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use http::{Request, Response};
use hyper::body::{Body as _, Incoming};

use crate::body::{self, Body};
use crate::error::ProxyError;
use crate::record::Record;
use crate::shared::Shared;

pub(crate) mod execute;
pub(crate) mod fault;
pub(crate) mod plan;
pub(crate) mod replay;
pub(crate) mod retry;
pub(crate) mod table;

pub(crate) use table::Routing;

/// Serves one HTTP request. `port` is the Service port (outbound) or the Gateway listener port.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    routing: Routing,
    port: u16,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    let start = Instant::now();
    let (mut parts, incoming) = req.into_parts();
    let mut record = shared.record(routing.direction(), &parts, peer);
    record.trace = Some(crate::trace::start(
        shared.proxy_config().as_deref(),
        &mut parts.headers,
    ));
    if let Some(key) = routing.service() {
        record.service = Some(key.to_string());
    }
    // At a waypoint the caller is known by its certificate.
    if let Routing::Waypoint(_, client) = &routing {
        record.peer_identity = Some(client.to_string());
    }
    let bytes = Arc::new(AtomicU64::new(0));
    record.request_body = Some(bytes.clone());
    let body = body::counted(incoming, bytes);
    let result = journey(&shared, &routing, port, parts, body, &mut record).await;
    shared.finish(record, start, result)
}

/// Steps 1 to 5 of the journey.
async fn journey(
    shared: &Arc<Shared>,
    routing: &Routing,
    port: u16,
    mut parts: http::request::Parts,
    body: Body,
    record: &mut Record,
) -> Result<Response<Body>, ProxyError> {
    let table = table::Table::get(shared, routing).await?;
    let mut rng = fastrand::Rng::new();
    let route = plan::route(&table, port, &parts, &mut rng)?;
    if let Some(rule) = &route.rule {
        record.route = Some(rule.name.clone());
        if let Some(f) = &rule.fault
            && let Some(res) = fault::inject(f, record.grpc, record, &mut rng).await
        {
            return Ok(res);
        }
    }
    let backend = match &route.backend {
        Some(b) => {
            record.service.get_or_insert_with(|| b.service.clone());
            if let Some(unresolved) = ProxyError::unresolved(b) {
                return Err(unresolved);
            }
            Some(table.backend(shared, b).await?)
        }
        None => None,
    };
    let bodiless = body.is_end_stream();
    let forward = match plan::plan(route, backend, &table, port, bodiless, &mut parts)? {
        plan::Plan::Respond(res) => return Ok(Response::from_parts(res, body::empty())),
        plan::Plan::Forward(f) => f,
    };
    execute::forward(shared, forward, parts, body, record).await
}
