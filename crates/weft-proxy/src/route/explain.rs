//! Route selection for tools (`weft diagnose`): which rule of a Service's routes a request
//! would match, decided by the same compiled matcher the proxy uses.

use weft_core::model::{HttpRoutes, HttpRule};

use super::{CompiledRoutes, RequestView};

/// A request as a tool describes it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Path, with the query if any.
    pub path: &'a str,
    /// The host the request is sent to, without `:port`.
    pub host: &'a str,
    pub port: u16,
    pub headers: &'a [(String, String)],
}

/// The rule `req` matches, if any; an error when the routes cannot be compiled (the proxy
/// would have refused them).
pub fn select(routes: &HttpRoutes, req: &Request<'_>) -> Result<Option<HttpRule>, String> {
    let compiled = CompiledRoutes::new(routes).map_err(|e| e.to_string())?;
    if !compiled.covers(req.port) {
        return Ok(None);
    }
    let method = http::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut headers = http::HeaderMap::new();
    for (k, v) in req.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
        let value = http::HeaderValue::from_str(v).map_err(|e| e.to_string())?;
        headers.append(name, value);
    }
    let (path, query) = match req.path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req.path, None),
    };
    let view = RequestView {
        method: &method,
        path,
        query,
        headers: &headers,
        host: Some(req.host),
        port: req.port,
    };
    Ok(compiled.select(&view).map(|s| s.rule.clone()))
}

/// Whether any route attaches to `port`.
pub fn covers(routes: &HttpRoutes, port: u16) -> bool {
    routes
        .entries
        .iter()
        .any(|e| e.ports.is_empty() || e.ports.contains(&port))
}
