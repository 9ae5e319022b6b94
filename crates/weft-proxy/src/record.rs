//! What happened to one request or TCP connection: the access log's line and the metrics'
//! input.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// The peer's SPIFFE ID: the client's (inbound over mTLS), or the server's (outbound to a
    /// pod address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<String>,
    /// The AuthorizationPolicy that denied the request, or that allowed it when one had to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
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
        Record {
            protocol: format!("{:?}", parts.version),
            method: Some(parts.method.to_string()),
            path: parts.uri.path_and_query().map(|p| p.to_string()),
            authority: crate::authority::of(&parts.uri, &parts.headers).map(str::to_string),
            downstream: Some(peer.to_string()),
            ..Record::new(direction)
        }
    }

    pub fn finish(&mut self, elapsed: Duration) {
        self.duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    }
}
