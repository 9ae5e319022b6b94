//! Data-path errors: which stage failed ([`Kind`]), the error underneath (kept as the source),
//! and whether the request may be sent again ([`Retry`]), including "only if it failed on a
//! reused connection". Each becomes a response with the `weft-error` header (and a one-line
//! body) and a field in the access log, instead of a bare 503.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};

use weft_core::model::Backend;

use crate::body::{self, Body};

/// Header naming the stage that failed.
pub const ERROR_HEADER: &str = "weft-error";

type Source = Box<dyn std::error::Error + Send + Sync>;

/// A failed request or connection: what failed ([`Kind`]), the error underneath it, and
/// whether it happened on a connection that had carried requests before.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct ProxyError {
    kind: Kind,
    #[source]
    source: Option<Source>,
    reused: bool,
}

/// Where a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Kind {
    /// The destination is not a known Service and the mesh refuses unknown destinations.
    #[error("{0} is not a mesh service and the mesh allows only registered destinations")]
    UnknownDestination(String),
    /// No route rule matched the request.
    #[error("no route rule matches this request")]
    NoRoute,
    /// The matched rule names no usable backend (none, weights all 0, or Service missing).
    #[error("no backend: {0}")]
    NoBackend(String),
    /// The backend picked by weight does not resolve (a Service, port or kind that does not
    /// exist): Gateway API answers its share of requests with 500. The header names it.
    #[error("backend {backend} does not resolve: {why}")]
    UnresolvedBackend { backend: String, why: String },
    /// The backend Service has no ready endpoint.
    #[error("service {0} has no healthy endpoint")]
    NoHealthyEndpoint(String),
    /// The endpoint refused the connection.
    #[error("connection to {0} refused")]
    ConnectRefused(String),
    /// Connecting to the endpoint failed otherwise (unreachable, no route, …).
    #[error("cannot connect to {0}")]
    Connect(String),
    /// Connecting to the endpoint timed out.
    #[error("connection to {0} timed out")]
    ConnectTimeout(String),
    /// The request timeout (or per-try timeout on the last try) expired.
    #[error("request timed out")]
    Timeout,
    /// The upstream closed or reset the connection before a response.
    #[error("upstream reset: {0}")]
    UpstreamReset(String),
    /// The connection closed before the request was written: nothing reached the upstream.
    #[error("upstream closed the connection before the request was sent: {0}")]
    NotSent(String),
    /// The request cannot be forwarded as written (e.g. an unparseable authority).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The proxy has no configuration for this yet (control plane unreachable at start).
    #[error("proxy not ready: {0}")]
    NotReady(String),
    /// The mTLS tunnel to the peer proxy failed: TLS handshake, the peer's identity, HTTP/2.
    #[error("mTLS tunnel: {0}")]
    Tunnel(String),
    /// An AuthorizationPolicy refused the request.
    #[error("{0}")]
    Denied(String),
    /// Plaintext to a workload whose mTLS mode is STRICT.
    #[error("{0}")]
    Plaintext(String),
    /// The destination's waypoint is missing or has no ready instance: the traffic is refused
    /// rather than sent without the waypoint's L7 policy.
    #[error("{0}")]
    WaypointUnavailable(String),
    /// Traffic that must pass a waypoint arrived from someone else.
    #[error("{0}")]
    WaypointBypassed(String),
}

/// Whether an attempt that failed may be sent again (to another endpoint, if one is left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// No: the request itself is at fault, or a policy refused it.
    Never,
    /// Yes: nothing reached an application (a refused or timed-out connect, a failed tunnel
    /// handshake, a request the connection closed on before it was written).
    Safe,
    /// Only an idempotent method: the application may have seen the request.
    IfIdempotent,
    /// Any method when it failed on a reused connection (a keep-alive connection the upstream
    /// closed as the request went out: almost always unseen); else only an idempotent one.
    IfReused,
}

impl From<Kind> for ProxyError {
    fn from(kind: Kind) -> Self {
        ProxyError {
            kind,
            source: None,
            reused: false,
        }
    }
}

impl ProxyError {
    /// `kind`, caused by `source`.
    pub fn caused(kind: Kind, source: impl Into<Source>) -> Self {
        ProxyError {
            kind,
            source: Some(source.into()),
            reused: false,
        }
    }

    /// Marks the error as one that happened on a reused connection.
    pub fn on_reused(mut self, reused: bool) -> Self {
        self.reused = reused;
        self
    }

    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The stage, as written in the header and the access log.
    pub fn stage(&self) -> &'static str {
        match self.kind {
            Kind::UnknownDestination(_) => "unknown-destination",
            Kind::NoRoute => "no-route",
            Kind::NoBackend(_) | Kind::UnresolvedBackend { .. } => "no-backend",
            Kind::NoHealthyEndpoint(_) => "no-healthy-endpoint",
            Kind::ConnectRefused(_) => "connect-refused",
            Kind::ConnectTimeout(_) => "connect-timeout",
            Kind::Timeout => "timeout",
            Kind::UpstreamReset(_) | Kind::NotSent(_) | Kind::Connect(_) => "upstream-reset",
            Kind::NotReady(_) => "not-ready",
            Kind::BadRequest(_) => "bad-request",
            Kind::Tunnel(_) => "tunnel",
            Kind::Denied(_) => "denied",
            Kind::Plaintext(_) => "plaintext-refused",
            Kind::WaypointUnavailable(_) => "waypoint-unavailable",
            Kind::WaypointBypassed(_) => "waypoint-bypassed",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            Kind::UnknownDestination(_) => StatusCode::BAD_GATEWAY,
            Kind::NoRoute => StatusCode::NOT_FOUND,
            Kind::NoBackend(_) | Kind::UnresolvedBackend { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Kind::NoHealthyEndpoint(_)
            | Kind::ConnectRefused(_)
            | Kind::NotReady(_)
            | Kind::WaypointUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Kind::ConnectTimeout(_) | Kind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Kind::UpstreamReset(_) | Kind::NotSent(_) | Kind::Connect(_) | Kind::Tunnel(_) => {
                StatusCode::BAD_GATEWAY
            }
            Kind::BadRequest(_) => StatusCode::BAD_REQUEST,
            Kind::Denied(_) | Kind::Plaintext(_) | Kind::WaypointBypassed(_) => {
                StatusCode::FORBIDDEN
            }
        }
    }

    /// Whether another attempt may be made, and on what condition.
    pub fn retry(&self) -> Retry {
        match self.kind {
            Kind::ConnectRefused(_)
            | Kind::ConnectTimeout(_)
            | Kind::Connect(_)
            | Kind::Tunnel(_)
            | Kind::NotSent(_) => Retry::Safe,
            Kind::UpstreamReset(_) => Retry::IfReused,
            Kind::Timeout => Retry::IfIdempotent,
            _ => Retry::Never,
        }
    }

    /// Whether this failure allows sending a request with `method` again.
    pub fn may_retry(&self, method: &Method) -> bool {
        match self.retry() {
            Retry::Never => false,
            Retry::Safe => true,
            Retry::IfIdempotent => method.is_idempotent(),
            Retry::IfReused => self.reused || method.is_idempotent(),
        }
    }

    /// Whether the endpoint is to blame (it counts against the endpoint's health).
    pub fn endpoint_failed(&self) -> bool {
        !matches!(
            self.kind,
            Kind::BadRequest(_) | Kind::Denied(_) | Kind::WaypointBypassed(_)
        )
    }

    /// The error for a backend whose reference does not resolve, if it does not.
    pub fn unresolved(b: &Backend) -> Option<ProxyError> {
        let why = b.unresolved.as_ref()?;
        Some(
            Kind::UnresolvedBackend {
                backend: format!("{}:{}", b.service, b.port),
                why: why.clone(),
            }
            .into(),
        )
    }

    /// The `weft-error` value: the stage, and for an unresolved backend which one
    /// (`no-backend; backend=ns/name:port`).
    pub fn header_value(&self) -> HeaderValue {
        if let Kind::UnresolvedBackend { backend, .. } = &self.kind
            && let Ok(v) = HeaderValue::from_str(&format!("{}; backend={backend}", self.stage()))
        {
            return v;
        }
        HeaderValue::from_static(self.stage())
    }

    /// The response the client gets: the status, the `weft-error` header, and the error with
    /// its causes on one line.
    pub fn into_response(self) -> Response<Body> {
        let text = format!("weft: {}\n", self.chain());
        let mut res = Response::new(body::full(Bytes::from(text)));
        *res.status_mut() = self.status();
        res.headers_mut().insert(ERROR_HEADER, self.header_value());
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        res
    }

    /// The error and its sources, `: `-separated.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let s = c.to_string();
            if !text.contains(&s) {
                text.push_str(": ");
                text.push_str(&s);
            }
            cause = c.source();
        }
        text
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
        assert!(ProxyError::unresolved(&backend(None)).is_none());
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
        let res = ProxyError::from(Kind::NoBackend(
            "rule 0 has no backend with weight > 0".into(),
        ))
        .into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()[ERROR_HEADER], "no-backend");
    }
}
