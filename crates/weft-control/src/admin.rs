//! Admin and debug HTTP API of the control plane (JSON). Read-only; binds to localhost by
//! default.
//!
//! - `GET /` — the endpoints, and what this control plane is (`controlPlane`: weft version,
//!   revision, the discovery protocols it serves)
//! - `GET /ready` — 200 once the configuration is loaded and the servers are bound, with
//!   `controlPlane`
//! - `GET /debug/config` — generation in force, when applied, the analyzer's warnings on it
//!   (served all the same), the last rejected change, `controlPlane`, and `refusedProxies`:
//!   proxies refused for version skew or another revision, with the message they were sent,
//!   until they are served
//! - `GET /debug/syncz` — every connected proxy (its node: revision, protocol and weft
//!   version) with per-type SYNCED / STALE / NACKED / NOT SENT
//! - `GET /debug/config_dump?proxy=ID` — what the control plane sent that proxy, with ACK state
//! - `GET /debug/proxy_config?pod=ID` (or `gateway=NS/NAME`, `node=NAME`, `proxy=ID`) — the
//!   full configuration intended for that proxy: listeners, routes, clusters and endpoints of
//!   every Service it can call, fetched or not ([`proxy_config`])
//! - `GET /debug/ca` — the CA: signing certificate, trusted roots with expiry, and recently
//!   issued certificates per identity with serial and expiry
//! - `GET /debug/waypoints` — every waypoint: whether it exists, its ready instances, the
//!   Services that use it and the policies attached to it
//! - `GET /metrics` — Prometheus metrics (see [`crate::metrics`])

mod proxy_config;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::ca::Ca;
use crate::state::State;
use crate::status::{About, ProxyStatus, TypeStatus};

pub async fn handle(
    state: Arc<State>,
    ca: Arc<Ca>,
    about: Arc<About>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "read-only API: use GET"}),
        ));
    }
    let query = req.uri().query().unwrap_or("");
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| proxy_config::decode(v))
    };
    let res = match req.uri().path() {
        "/ready" => reply(
            StatusCode::OK,
            json!({"ready": true, "controlPlane": *about}),
        ),
        "/metrics" => {
            let count = state.proxies().len() as i64;
            state.metrics.proxies.set(count);
            let mut res = Response::new(Full::new(Bytes::from(state.metrics.encode())));
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            return Ok(res);
        }
        "/debug/config" => {
            let mut status = json!(state.config_status());
            status["controlPlane"] = json!(*about);
            status["refusedProxies"] = json!(state.refused.list());
            reply(StatusCode::OK, status)
        }
        "/debug/ca" => reply(StatusCode::OK, ca.debug()),
        "/debug/waypoints" => reply(StatusCode::OK, json!(state.snapshot().borrow().waypoints())),
        "/debug/syncz" => {
            let proxies = state.proxies();
            let list: Vec<Value> = proxies
                .values()
                .map(|p| {
                    let types = per_type(p, |t| {
                        json!({
                            "state": t.compute_state(),
                            "subscribed": t.subscribed.len(),
                            "lastNonce": t.last_nonce,
                            "ackedNonce": t.acked_nonce,
                            "ackedAtMs": t.acked_at_ms,
                            "nack": t.nack,
                            "nackedResources": t.nacked,
                        })
                    });
                    json!({"node": p.node, "connectedAtMs": p.connected_at_ms, "types": types})
                })
                .collect();
            reply(StatusCode::OK, Value::Array(list))
        }
        "/debug/proxy_config" => {
            let (status, body) = proxy_config::answer(&state, param);
            reply(status, body)
        }
        "/debug/config_dump" => match param("proxy") {
            None => reply(
                StatusCode::BAD_REQUEST,
                json!({"error": "add ?proxy=<id>; /debug/syncz lists the ids"}),
            ),
            Some(id) => match state.proxies().get(&id) {
                None => reply(
                    StatusCode::NOT_FOUND,
                    json!({"error": format!("no connected proxy {id:?}")}),
                ),
                Some(p) => {
                    let types = per_type(p, |t| {
                        json!({
                            "state": t.compute_state(),
                            "versions": t.sent,
                            "resources": t.bodies.iter().map(|(name, e)| {
                                let body: serde_json::Value =
                                    serde_json::from_slice(&e.body).unwrap_or_default();
                                (name.clone(), body)
                            }).collect::<serde_json::Map<_, _>>(),
                            "nack": t.nack,
                        })
                    });
                    reply(StatusCode::OK, json!({"node": p.node, "types": types}))
                }
            },
        },
        "/" => reply(
            StatusCode::OK,
            json!({
                "controlPlane": *about,
                "endpoints": ["/ready", "/metrics", "/debug/config", "/debug/ca", "/debug/syncz", "/debug/config_dump?proxy=ID", "/debug/proxy_config?pod=ID|gateway=NS/NAME|node=NAME|proxy=ID", "/debug/waypoints"],
            }),
        ),
        other => reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no endpoint {other}; GET / lists them")}),
        ),
    };
    Ok(res)
}

/// One JSON object per resource type of a proxy.
fn per_type(p: &ProxyStatus, f: impl Fn(&TypeStatus) -> Value) -> serde_json::Map<String, Value> {
    p.types.iter().map(|(ty, t)| (ty.clone(), f(t))).collect()
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
