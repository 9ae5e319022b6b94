//! What happened to one request or TCP connection: the access log's line and the metrics'
//! input.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::tunnel::peer::{self, Metadata};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    pub ts_ms: u64,
    /// `outbound`, `inbound` or `gateway`.
    pub direction: &'static str,
    /// `HTTP/1.1`, `HTTP/2.0`, `TCP`.
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub duration_ms: f64,
    /// Destination Service (`ns/name`) when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Route rule that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Address the request was sent to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Stage that failed (`weft-error`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downstream: Option<String>,
    /// Bytes to the upstream: TCP payload, or an HTTP request's body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    /// Bytes from the upstream: TCP payload, or an HTTP response's body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// The `grpc-status` of a gRPC response (from its trailers, or its headers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<u32>,
    /// The peer's SPIFFE ID: the client's (inbound over mTLS), or the server's (outbound to a
    /// pod address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<String>,
    /// The AuthorizationPolicy that denied the request, or that allowed it when one had to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The rule of `policy` that decided (its index in `rules`), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_rule: Option<usize>,
    /// The request is gRPC (`content-type: application/grpc…`).
    #[serde(skip)]
    pub grpc: bool,
    /// The client's workload as its proxy named it on the tunnel (inbound, waypoint): for
    /// metrics only, see [`crate::tunnel::peer`].
    #[serde(skip)]
    pub source: Option<Arc<Metadata>>,
    /// The workload of the endpoint the request or connection went to.
    #[serde(skip)]
    pub destination: Option<Arc<Metadata>>,
    /// Whether the hop this proxy reports on was mTLS (None: not known, e.g. it failed before
    /// an endpoint was picked).
    #[serde(skip)]
    pub mtls: Option<bool>,
    /// A `Fault` delayed the request (flag `DI`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fault_delayed: bool,
    /// The client went away before the whole response was sent.
    #[serde(skip)]
    pub disconnected: bool,
    /// The request headers the access-log format reads (lower-case names), kept only when it
    /// reads some ([`crate::shared::Shared::record`]).
    #[serde(skip)]
    pub request_headers: Vec<(String, String)>,
    /// The response headers the access-log format reads.
    #[serde(skip)]
    pub response_headers: Vec<(String, String)>,
    /// Counts the request body as it streams (read into `bytes_sent` when the response ends).
    #[serde(skip)]
    pub request_body: Option<Arc<AtomicU64>>,
    /// This proxy's span of an HTTP request (`trace_id`, `span_id`, `parent_span_id`,
    /// `sampled` in the log).
    #[serde(flatten)]
    pub trace: Option<crate::trace::Span>,
}

impl Record {
    pub fn new(direction: &'static str) -> Self {
        Record {
            ts_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            direction,
            ..Default::default()
        }
    }

    /// A record for an HTTP request, from what the client sent.
    pub fn for_request(
        direction: &'static str,
        parts: &http::request::Parts,
        peer: std::net::SocketAddr,
    ) -> Self {
        let grpc = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        Record {
            grpc,
            source: parts.extensions.get::<peer::Shared>().cloned(),
            protocol: format!("{:?}", parts.version),
            method: Some(parts.method.to_string()),
            path: parts.uri.path_and_query().map(|p| p.to_string()),
            authority: crate::authority::of(&parts.uri, &parts.headers).map(str::to_string),
            downstream: Some(peer.to_string()),
            ..Record::new(direction)
        }
    }

    /// Keeps the values of the headers in `names` (lower-case) that `headers` has.
    pub fn keep_headers(names: &[String], headers: &http::HeaderMap) -> Vec<(String, String)> {
        names
            .iter()
            .filter_map(|n| {
                let v = headers.get(n.as_str())?;
                Some((
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                ))
            })
            .collect()
    }

    /// The `weft-policy` header of a denial: `shop/pricing` or `shop/pricing; rule=0`.
    pub fn policy_header(&self) -> Option<String> {
        let policy = self.policy.as_deref()?;
        Some(match self.policy_rule {
            Some(i) => format!("{policy}; rule={i}"),
            None => policy.to_string(),
        })
    }

    /// Reads a `weft-policy` header back into `policy` and `policy_rule`.
    pub fn read_policy_header(&mut self, value: &str) {
        let (policy, rule) = match value.split_once("; rule=") {
            Some((p, r)) => (p, r.trim().parse().ok()),
            None => (value, None),
        };
        self.policy = Some(policy.trim().to_string());
        self.policy_rule = rule;
    }

    pub fn finish(&mut self, elapsed: Duration) {
        self.duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    }
}
