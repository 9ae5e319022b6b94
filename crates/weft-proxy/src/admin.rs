//! Operator endpoints.
//!
//! Admin, on 127.0.0.1:15000 (localhost only):
//! - `GET /ready` — 200 when ready, else 503 with the reason
//! - `GET /config_dump` — the proxy's config, the Services, addresses and (gateway role) the
//!   Gateway it holds, versions, the last rejected update, and the discovery connection state
//! - `GET /logging` — the log level; `POST /logging?level=debug` changes it
//! - `GET /stats/prometheus` (also `/metrics`) — every metric of the proxy ([`crate::metrics`]),
//!   Prometheus text 0.0.4 unless `Accept` prefers OpenMetrics; 404 with the reason when the
//!   proxy's settings turn metrics off
//! - `GET /certs` — the workload certificate ([`crate::certs::CertInfo`]): SPIFFE ID, serial,
//!   validity, chain and trust bundle PEM
//! - `GET /pods` — node proxy only (404 with the reason elsewhere): each enrolled pod, its
//!   state (pending, served with its listeners, refused with the reason), identity, mTLS
//!   mode, policies, waypoints and certificate ([`crate::node::Pods`])
//! - `GET /tap?method=&path=&status=&to=&max_rps=` — finished requests and connections as they
//!   happen, one JSON line each ([`crate::tap::Line`]), streamed until the client leaves; at
//!   most `max_rps` lines a second (default 100), the rest counted in `{"dropped": N}` lines
//!
//! Readiness, on port 15021: `GET /healthz/ready` — the same answer as `/ready`, for
//! kubelets and `weft up`. Metrics, on port 15020: `GET /metrics` (and readiness).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::body::Body;
use crate::metrics::Format;
use crate::shared::Shared;

pub async fn handle(
    shared: Arc<Shared>,
    readiness_only: bool,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    if !readiness_only && req.method() == Method::GET && req.uri().path() == "/tap" {
        return Ok(tap(&shared, req.uri().query().unwrap_or("")));
    }
    let res = answer(shared, readiness_only, req).await?;
    Ok(res.map(|b| b.map_err(|e| match e {}).boxed()))
}

/// `GET /tap`: a stream of JSON lines, or 400 saying which parameter is wrong.
fn tap(shared: &Arc<Shared>, query: &str) -> Response<Body> {
    match crate::tap::Query::parse(query) {
        Ok(q) => Response::builder()
            .header(http::header::CONTENT_TYPE, "application/x-ndjson")
            .header(http::header::CACHE_CONTROL, "no-cache")
            .body(crate::tap::stream(&shared.tap, q))
            .unwrap_or_default(),
        Err(why) => reply(StatusCode::BAD_REQUEST, json!({ "error": why }))
            .map(|b| b.map_err(|e| match e {}).boxed()),
    }
}

async fn answer(
    shared: Arc<Shared>,
    readiness_only: bool,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // The readiness/metrics port is reachable from outside the pod: it answers readiness and
    // metrics only.
    if readiness_only {
        return Ok(match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz/ready") => ready(&shared),
            (&Method::GET, "/metrics") => metrics(&shared, &req),
            _ => reply(
                StatusCode::NOT_FOUND,
                json!({"error": "this port serves GET /healthz/ready and GET /metrics only"}),
            ),
        });
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let res = match (req.method(), req.uri().path()) {
        (&Method::GET, "/ready") | (&Method::GET, "/healthz/ready") => ready(&shared),
        (&Method::GET, "/stats/prometheus") | (&Method::GET, "/metrics") => {
            return Ok(metrics(&shared, &req));
        }
        (&Method::GET, "/config_dump") => {
            let mut dump = shared.store.dump();
            dump["discovery"] = json!(*shared.status.borrow());
            reply(StatusCode::OK, dump)
        }
        (&Method::GET, "/certs") => certs(&shared),
        (&Method::GET, "/pods") => match shared.pods.get() {
            Some(view) => reply(StatusCode::OK, view()),
            None => reply(
                StatusCode::NOT_FOUND,
                json!({"error": "this proxy is not a node proxy: /pods lists the ambient pods a node proxy serves"}),
            ),
        },
        (&Method::GET, "/logging") => reply(
            StatusCode::OK,
            json!({"level": *shared.log_level.lock().unwrap_or_else(|p| p.into_inner())}),
        ),
        (&Method::POST, "/logging") => {
            let level = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "level")
                .map(|(_, v)| v.to_string());
            match (level, &shared.set_log_level) {
                (None, _) => reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "add ?level=trace|debug|info|warn|error"}),
                ),
                (Some(_), None) => reply(
                    StatusCode::NOT_IMPLEMENTED,
                    json!({"error": "log level is fixed in this process"}),
                ),
                (Some(l), Some(set)) => match set(&l) {
                    Ok(()) => {
                        *shared.log_level.lock().unwrap_or_else(|p| p.into_inner()) = l.clone();
                        reply(StatusCode::OK, json!({"level": l}))
                    }
                    Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
                },
            }
        }
        (&Method::GET, "/") => reply(
            StatusCode::OK,
            json!({"endpoints": ["/ready", "/config_dump", "/certs", "/pods", "/logging", "POST /logging?level=", "/tap?method=&path=&status=&to=&max_rps="]}),
        ),
        (m, p) if m != Method::GET && m != Method::POST => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": format!("{m} {p}: use GET (POST changes state)")}),
        ),
        (_, p) => reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no endpoint {p}; GET / lists them")}),
        ),
    };
    Ok(res)
}

/// Every metric, in the format the `Accept` header negotiates ([`Format::negotiate`]).
fn metrics<B>(shared: &Shared, req: &Request<B>) -> Response<Full<Bytes>> {
    let accept = req.headers().get(http::header::ACCEPT);
    let format = Format::negotiate(accept.and_then(|v| v.to_str().ok()));
    let text = match shared.encode_metrics(format) {
        Ok(text) => text,
        Err(why) => {
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Full::new(Bytes::from(format!("{why}\n"))))
                .unwrap_or_default();
        }
    };
    Response::builder()
        .header(http::header::CONTENT_TYPE, format.content_type())
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_default()
}

fn certs(shared: &Shared) -> Response<Full<Bytes>> {
    let Some(source) = &shared.certs else {
        return reply(
            StatusCode::NOT_FOUND,
            json!({"error": "this proxy has no bootstrap token (--bootstrap-token-file), so it holds no workload certificate"}),
        );
    };
    match source.info() {
        Some(info) => reply(StatusCode::OK, json!(info)),
        None => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": source.not_ready_reason().unwrap_or_default()}),
        ),
    }
}

fn ready(shared: &Shared) -> Response<Full<Bytes>> {
    match shared.not_ready_reason() {
        None => reply(StatusCode::OK, json!({"ready": true})),
        Some(why) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"ready": false, "reason": why}),
        ),
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut text = serde_json::to_vec_pretty(&body).unwrap_or_default();
    text.push(b'\n');
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_default()
}
