//! Data-path errors that say which stage failed. Each becomes a response with the
//! `weft-error` header (and a one-line body) and a field in the access log, instead of a bare
//! 503.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};

use weft_core::model::Backend;

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
    /// The backend picked by weight does not resolve (a Service, port or kind that does not
    /// exist): Gateway API answers its share of requests with 500. The header names it.
    UnresolvedBackend { backend: String, why: String },
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
            ProxyError::NoBackend(_) | ProxyError::UnresolvedBackend { .. } => "no-backend",
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
            ProxyError::NoBackend(_) | ProxyError::UnresolvedBackend { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
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

    /// The error for a backend whose reference does not resolve, if it does not.
    pub fn unresolved(b: &Backend) -> Option<ProxyError> {
        let why = b.unresolved.as_ref()?;
        Some(ProxyError::UnresolvedBackend {
            backend: format!("{}:{}", b.service, b.port),
            why: why.clone(),
        })
    }

    /// The `weft-error` value: the stage, and for an unresolved backend which one
    /// (`no-backend; backend=ns/name:port`).
    pub fn header_value(&self) -> HeaderValue {
        if let ProxyError::UnresolvedBackend { backend, .. } = self
            && let Ok(v) = HeaderValue::from_str(&format!("{}; backend={backend}", self.stage()))
        {
            return v;
        }
        HeaderValue::from_static(self.stage())
    }

    pub fn into_response(self) -> Response<Body> {
        let text = format!("weft: {self}\n");
        let mut res = Response::new(body::full(Bytes::from(text)));
        *res.status_mut() = self.status();
        res.headers_mut().insert(ERROR_HEADER, self.header_value());
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
            ProxyError::UnresolvedBackend { backend, why } => {
                write!(f, "backend {backend} does not resolve: {why}")
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(unresolved: Option<&str>) -> Backend {
        Backend {
            service: "shop/ghost".into(),
            port: 80,
            weight: 1,
            filters: Vec::new(),
            unresolved: unresolved.map(Into::into),
        }
    }

    #[test]
    fn an_unresolved_backend_answers_500_naming_it() {
        assert_eq!(ProxyError::unresolved(&backend(None)), None);
        let e = ProxyError::unresolved(&backend(Some("Service shop/ghost does not exist")))
            .expect("unresolved");
        assert_eq!(e.stage(), "no-backend");
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            res.headers()[ERROR_HEADER],
            "no-backend; backend=shop/ghost:80"
        );
    }

    #[test]
    fn other_errors_carry_only_their_stage() {
        let res =
            ProxyError::NoBackend("rule 0 has no backend with weight > 0".into()).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()[ERROR_HEADER], "no-backend");
    }
}
