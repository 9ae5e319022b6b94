//! Data-path errors that say which stage failed. Each becomes a response with the
//! `weft-error` header (and a one-line body) and a field in the access log, instead of a bare
//! 503.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

use crate::body::{self, Body};

/// Header naming the stage that failed.
pub const ERROR_HEADER: &str = "weft-error";

/// Where a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// The destination is not a known Service and the mesh refuses unknown destinations.
    UnknownDestination(String),
    /// No route rule matched the request.
    NoRoute,
    /// The matched rule names no usable backend (none, weights all 0, or Service missing).
    NoBackend(String),
    /// The backend Service has no ready endpoint.
    NoHealthyEndpoint(String),
    /// The endpoint refused the connection.
    ConnectRefused(String),
    /// Connecting to the endpoint timed out.
    ConnectTimeout(String),
    /// The request timeout (or per-try timeout on the last try) expired.
    Timeout,
    /// The upstream closed or reset the connection before a response.
    UpstreamReset(String),
    /// The request cannot be forwarded as written (e.g. an unparseable authority).
    BadRequest(String),
    /// The proxy has no configuration for this yet (control plane unreachable at start).
    NotReady(String),
    /// The mTLS tunnel to the peer proxy failed: TLS handshake, the peer's identity, HTTP/2.
    Tunnel(String),
    /// An AuthorizationPolicy refused the request.
    Denied(String),
    /// Plaintext to a workload whose mTLS mode is STRICT.
    Plaintext(String),
}

impl ProxyError {
    /// The stage, as written in the header and the access log.
    pub fn stage(&self) -> &'static str {
        match self {
            ProxyError::UnknownDestination(_) => "unknown-destination",
            ProxyError::NoRoute => "no-route",
            ProxyError::NoBackend(_) => "no-backend",
            ProxyError::NoHealthyEndpoint(_) => "no-healthy-endpoint",
            ProxyError::ConnectRefused(_) => "connect-refused",
            ProxyError::ConnectTimeout(_) => "connect-timeout",
            ProxyError::Timeout => "timeout",
            ProxyError::UpstreamReset(_) => "upstream-reset",
            ProxyError::NotReady(_) => "not-ready",
            ProxyError::BadRequest(_) => "bad-request",
            ProxyError::Tunnel(_) => "tunnel",
            ProxyError::Denied(_) => "denied",
            ProxyError::Plaintext(_) => "plaintext-refused",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::UnknownDestination(_) => StatusCode::BAD_GATEWAY,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoBackend(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::NoHealthyEndpoint(_)
            | ProxyError::ConnectRefused(_)
            | ProxyError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ConnectTimeout(_) | ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::UpstreamReset(_) => StatusCode::BAD_GATEWAY,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Tunnel(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Denied(_) | ProxyError::Plaintext(_) => StatusCode::FORBIDDEN,
        }
    }

    /// Whether the failure was in reaching the endpoint (a reset may still have reached the
    /// application; the caller decides by method).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ProxyError::ConnectRefused(_)
                | ProxyError::ConnectTimeout(_)
                | ProxyError::UpstreamReset(_)
                | ProxyError::Tunnel(_)
        )
    }

    pub fn into_response(self) -> Response<Body> {
        let text = format!("weft: {self}\n");
        let mut res = Response::new(body::full(Bytes::from(text)));
        *res.status_mut() = self.status();
        res.headers_mut()
            .insert(ERROR_HEADER, HeaderValue::from_static(self.stage()));
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        res
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::UnknownDestination(d) => write!(
                f,
                "{d} is not a mesh service and the mesh allows only registered destinations"
            ),
            ProxyError::NoRoute => write!(f, "no route rule matches this request"),
            ProxyError::NoBackend(why) => write!(f, "no backend: {why}"),
            ProxyError::NoHealthyEndpoint(svc) => {
                write!(f, "service {svc} has no healthy endpoint")
            }
            ProxyError::ConnectRefused(ep) => write!(f, "connection to {ep} refused"),
            ProxyError::ConnectTimeout(ep) => write!(f, "connection to {ep} timed out"),
            ProxyError::Timeout => write!(f, "request timed out"),
            ProxyError::UpstreamReset(why) => write!(f, "upstream reset: {why}"),
            ProxyError::NotReady(why) => write!(f, "proxy not ready: {why}"),
            ProxyError::BadRequest(why) => write!(f, "bad request: {why}"),
            ProxyError::Tunnel(why) => write!(f, "mTLS tunnel: {why}"),
            ProxyError::Denied(why) | ProxyError::Plaintext(why) => write!(f, "{why}"),
        }
    }
}
