//! Gateway API filters applied to requests and responses: header modifiers, URL rewrites and
//! redirects. Request mirrors are only listed here ([`mirrors`]); the caller sends the copies.
//! Header names or values in the configuration that HTTP does not allow are skipped.

use http::header::{HOST, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, Uri, request, response};
use weft_core::resources::http_route::{
    HttpFilterType, HttpPathModifier, HttpRequestRedirect, HttpRouteFilter, HttpUrlRewrite,
    PathModifierType,
};
use weft_core::resources::route_common::{HeaderModifier, RequestMirror};

use crate::authority;

/// Applies the request filters in order. Returns the response to send instead of forwarding
/// when a `RequestRedirect` filter is reached. `matched_prefix` is the `PathPrefix` value the
/// route matched ([`crate::route::Selected::matched_prefix`]), for `ReplacePrefixMatch`.
pub fn apply_to_request(
    filters: &[HttpRouteFilter],
    parts: &mut request::Parts,
    matched_prefix: Option<&str>,
) -> Option<Response<()>> {
    for f in filters {
        match f.filter_type {
            HttpFilterType::RequestHeaderModifier => {
                if let Some(m) = &f.request_header_modifier {
                    modify_headers(&mut parts.headers, m);
                }
            }
            HttpFilterType::URLRewrite => {
                if let Some(r) = &f.url_rewrite {
                    rewrite(parts, r, matched_prefix);
                }
            }
            HttpFilterType::RequestRedirect => {
                if let Some(r) = &f.request_redirect {
                    return Some(redirect(parts, r, matched_prefix));
                }
            }
            HttpFilterType::ResponseHeaderModifier
            | HttpFilterType::RequestMirror
            | HttpFilterType::ExtensionRef => {}
        }
    }
    None
}

/// Applies the `ResponseHeaderModifier` filters in order.
pub fn apply_to_response(filters: &[HttpRouteFilter], parts: &mut response::Parts) {
    for f in filters {
        if f.filter_type == HttpFilterType::ResponseHeaderModifier
            && let Some(m) = &f.response_header_modifier
        {
            modify_headers(&mut parts.headers, m);
        }
    }
}

/// The `RequestMirror` filters, in order.
pub fn mirrors(filters: &[HttpRouteFilter]) -> impl Iterator<Item = &RequestMirror> {
    filters
        .iter()
        .filter(|f| f.filter_type == HttpFilterType::RequestMirror)
        .filter_map(|f| f.request_mirror.as_ref())
}

/// `set` replaces, `add` appends to the existing value (`foo` + `bar` → `foo,bar`; a new line
/// for `Set-Cookie`), `remove` deletes; in that order.
fn modify_headers(headers: &mut HeaderMap, m: &HeaderModifier) {
    let parse = |name: &str, value: &str| {
        Some((
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value).ok()?,
        ))
    };
    for (name, value) in m.set.iter().filter_map(|h| parse(&h.name, &h.value)) {
        headers.insert(name, value);
    }
    for (name, value) in m.add.iter().filter_map(|h| parse(&h.name, &h.value)) {
        if name == SET_COOKIE || !headers.contains_key(&name) {
            headers.append(name, value);
            continue;
        }
        let mut joined = Vec::new();
        for v in headers.get_all(&name).iter().chain([&value]) {
            if !joined.is_empty() {
                joined.push(b',');
            }
            joined.extend_from_slice(v.as_bytes());
        }
        if let Ok(v) = HeaderValue::from_bytes(&joined) {
            headers.insert(name, v);
        }
    }
    for name in &m.remove {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(name);
        }
    }
}

fn rewrite(parts: &mut request::Parts, r: &HttpUrlRewrite, matched_prefix: Option<&str>) {
    if let Some(host) = &r.hostname
        && let Ok(value) = HeaderValue::from_str(host)
    {
        parts.headers.insert(HOST, value);
        if parts.uri.authority().is_some()
            && let Some(uri) = with_uri(&parts.uri, Some(host), None)
        {
            parts.uri = uri;
        }
    }
    if let Some(m) = &r.path
        && let Some(path) = modified_path(parts.uri.path(), m, matched_prefix)
    {
        let pq = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Some(uri) = with_uri(&parts.uri, None, Some(&pq)) {
            parts.uri = uri;
        }
    }
}

/// `uri` with another authority and/or path and query; `None` if the result is not a URI.
fn with_uri(uri: &Uri, authority: Option<&str>, path_and_query: Option<&str>) -> Option<Uri> {
    let mut p = uri.clone().into_parts();
    if let Some(a) = authority {
        p.authority = Some(a.parse().ok()?);
    }
    if let Some(pq) = path_and_query {
        p.path_and_query = Some(pq.parse().ok()?);
    }
    Uri::from_parts(p).ok()
}

/// The path after a path modifier, or `None` to leave it unchanged (modifier without its
/// value, or `ReplacePrefixMatch` when the route did not match a prefix of this path).
fn modified_path(path: &str, m: &HttpPathModifier, matched_prefix: Option<&str>) -> Option<String> {
    match m.modifier_type {
        PathModifierType::ReplaceFullPath => m.replace_full_path.clone(),
        PathModifierType::ReplacePrefixMatch => {
            let replacement = m.replace_prefix_match.as_deref()?.trim_end_matches('/');
            let prefix = matched_prefix?.trim_end_matches('/');
            let rest = path.strip_prefix(prefix)?;
            let rest = match (prefix.is_empty(), rest) {
                // Prefix `/`: it is the whole of path `/`.
                (true, "/") => "",
                (true, _) => rest,
                (false, r) if r.is_empty() || r.starts_with('/') => r,
                (false, _) => return None,
            };
            let new = format!("{replacement}{rest}");
            Some(if new.starts_with('/') {
                new
            } else {
                format!("/{new}")
            })
        }
    }
}

/// The redirect response: `Location` is the request's URL with the scheme, host, port and path
/// the filter sets; the query is kept. The port is omitted when it is the scheme's default.
fn redirect(
    parts: &request::Parts,
    r: &HttpRequestRedirect,
    matched_prefix: Option<&str>,
) -> Response<()> {
    let status = StatusCode::from_u16(r.status_code)
        .ok()
        .filter(StatusCode::is_redirection)
        .unwrap_or(StatusCode::FOUND);
    let scheme = r
        .scheme
        .as_deref()
        .or(parts.uri.scheme_str())
        .unwrap_or("http")
        .to_ascii_lowercase();
    let authority = authority::of(&parts.uri, &parts.headers).unwrap_or("");
    let (request_host, request_port) = authority::split(authority);
    let host = r.hostname.as_deref().unwrap_or(request_host);
    let port = r.port.or_else(|| match &r.scheme {
        Some(_) => well_known_port(&scheme).or(request_port),
        None => request_port,
    });
    let port = match port {
        Some(p) if Some(p) != well_known_port(&scheme) => format!(":{p}"),
        _ => String::new(),
    };
    let path = r
        .path
        .as_ref()
        .and_then(|m| modified_path(parts.uri.path(), m, matched_prefix))
        .unwrap_or_else(|| parts.uri.path().to_string());
    let query = parts
        .uri
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let location = if host.is_empty() {
        format!("{path}{query}")
    } else {
        format!("{scheme}://{host}{port}{path}{query}")
    };
    let mut resp = Response::new(());
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
