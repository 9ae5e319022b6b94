//! Sends one request to one upstream address and turns the answer into the downstream response:
//! hop-by-hop headers dropped, `Host`/`:authority` kept, bodies and trailers streamed, and
//! protocol upgrades (WebSocket) spliced through.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;

use crate::authority;
use crate::body::{self, Body};
use crate::error::{Kind, ProxyError};
use crate::pool::{Pool, Upstream};

const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes connection-specific headers; keeps `Connection: upgrade` + `Upgrade` when
/// `upgrade` is set, and `TE: trailers` (gRPC needs it).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && n == header::UPGRADE))
        .collect();
    let saved_upgrade = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    for n in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(n);
    }
    if headers
        .get(header::TE)
        .is_some_and(|v| v.as_bytes() != b"trailers")
    {
        headers.remove(header::TE);
    }
    if let Some(u) = saved_upgrade {
        headers.insert(header::UPGRADE, u);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// HTTP/2 may split `cookie` into several fields; HTTP/1.1 servers expect one, joined with
/// "; " (RFC 9113 §8.2.3).
fn merge_cookies(headers: &mut HeaderMap) {
    let values: Vec<&[u8]> = headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if values.len() < 2 {
        return;
    }
    let joined = values.join(&b"; "[..]);
    if let Ok(v) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, v);
    }
}

/// True for an HTTP/1.1 upgrade request (WebSocket and others; not h2c, which is served as
/// HTTP/1.1 by ignoring the offer as RFC 9113 allows).
pub fn is_upgrade(parts: &http::request::Parts) -> bool {
    parts.version == Version::HTTP_11
        && parts
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.eq_ignore_ascii_case("h2c"))
}

/// Sends `parts` + `body` to `target` with the same HTTP version as the client used.
pub async fn forward(
    pool: &Pool,
    target: &Upstream<'_>,
    mut parts: http::request::Parts,
    body: Body,
    connect_timeout: Duration,
) -> Result<Response<Body>, ProxyError> {
    let upgrade = is_upgrade(&parts);
    let on_upgrade = if upgrade {
        parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
    } else {
        None
    };
    if parts
        .headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"h2c"))
    {
        parts.headers.remove("http2-settings");
    }
    strip_hop_by_hop(&mut parts.headers, upgrade);
    let authority = authority::of(&parts.uri, &parts.headers)
        .map_or_else(|| target.addr.to_string(), str::to_string);
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    if parts.version == Version::HTTP_2 {
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query(path.as_str())
            .build()
            .map_err(|e| {
                ProxyError::caused(Kind::BadRequest(format!("authority {authority:?}")), e)
            })?;
        parts.headers.remove(header::HOST);
    } else {
        parts.uri = path
            .parse()
            .map_err(|e| ProxyError::caused(Kind::BadRequest(format!("path {path:?}")), e))?;
        merge_cookies(&mut parts.headers);
        if !parts.headers.contains_key(header::HOST)
            && let Ok(v) = HeaderValue::from_str(&authority)
        {
            parts.headers.insert(header::HOST, v);
        }
    }
    let req = Request::from_parts(parts, body);
    let mut res = pool.send(target, req, connect_timeout).await?;
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream = hyper::upgrade::on(&mut res);
        if let Some(downstream) = on_upgrade {
            tokio::spawn(async move {
                match (downstream.await, upstream.await) {
                    (Ok(d), Ok(u)) => {
                        let mut d = TokioIo::new(d);
                        let mut u = TokioIo::new(u);
                        let _ = tokio::io::copy_bidirectional(&mut d, &mut u).await;
                    }
                    (d, u) => tracing::debug!(
                        downstream_error = d.err().map(tracing::field::display),
                        upstream_error = u.err().map(tracing::field::display),
                        "upgrade failed"
                    ),
                }
            });
        }
        let (parts, _) = res.into_parts();
        return Ok(Response::from_parts(parts, body::empty()));
    }
    let (mut parts, incoming) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    // Each hop speaks its own version: an HTTP/1.0 answer (a body delimited by the upstream
    // closing) goes downstream as HTTP/1.1, chunked, on a connection that stays usable.
    // Passing 1.0 on made the downstream server delimit by close too, and a pooled
    // connection could end a response before its body.
    parts.version = Version::HTTP_11;
    Ok(Response::from_parts(parts, body::stream(incoming)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_cookies_are_joined_for_http1() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        merge_cookies(&mut h);
        assert_eq!(h.get_all(header::COOKIE).iter().count(), 1);
        assert_eq!(h[header::COOKIE], "a=1; b=2");
    }

    #[test]
    fn hop_by_hop_headers_go_but_te_trailers_and_upgrades_stay() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert!(h.get("x-private").is_none() && h.get("keep-alive").is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert_eq!(h[header::TE], "trailers");
        assert_eq!(h["x-kept"], "1");
        let mut u = HeaderMap::new();
        u.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        u.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        strip_hop_by_hop(&mut u, true);
        assert_eq!(u[header::UPGRADE], "websocket");
        assert_eq!(u[header::CONNECTION], "upgrade");
    }
}
