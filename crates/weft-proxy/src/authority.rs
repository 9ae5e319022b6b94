//! The authority a request was sent to, read one way everywhere: route matching, filters,
//! forwarding and the access log.
//!
//! The URI's authority wins over `Host` (an absolute-form HTTP/1.1 target, or HTTP/2's
//! `:authority`, which hyper puts in the URI), as RFC 9112 §3.2.2 and RFC 9113 §8.3.1 say;
//! `Host` comes next. A host keeps the brackets of an IPv6 literal, so it can be written back
//! into a URI or a `Location` as it is.

use http::Uri;
use http::header::{HOST, HeaderMap};

/// `host[:port]` as the client sent it, if it named one.
pub fn of<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    uri.authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()))
        .filter(|a| !a.is_empty())
}

/// The host a request was sent to, without the port (see [`of`]).
pub fn host<'a>(uri: &'a Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let host = split(of(uri, headers)?).0;
    (!host.is_empty()).then_some(host)
}

/// `[userinfo@]host[:port]` → host and port (when present and valid). `[v6]:port` keeps the
/// brackets; a bare IPv6 literal is not an authority and is returned whole.
pub fn split(authority: &str) -> (&str, Option<u16>) {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let colon = match authority.rfind(']') {
        Some(end) => authority[end..].find(':').map(|i| end + i),
        None if authority.matches(':').count() > 1 => None,
        None => authority.rfind(':'),
    };
    match colon {
        Some(i) => (&authority[..i], authority[i + 1..].parse().ok()),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn request(uri: &str, host: Option<&'static str>) -> (Uri, HeaderMap) {
        let mut headers = HeaderMap::new();
        if let Some(h) = host {
            headers.insert(HOST, HeaderValue::from_static(h));
        }
        (uri.parse().unwrap(), headers)
    }

    #[test]
    fn the_uri_authority_wins_over_host() {
        let cases = [
            ("/x", None, None, None),
            ("/x", Some(""), None, None),
            (
                "http://Cart.shop:8080/x",
                None,
                Some("Cart.shop:8080"),
                Some("Cart.shop"),
            ),
            (
                "http://cart.shop/x",
                Some("evil.shop"),
                Some("cart.shop"),
                Some("cart.shop"),
            ),
            (
                "/x",
                Some("pricing.shop:80"),
                Some("pricing.shop:80"),
                Some("pricing.shop"),
            ),
            ("/x", Some("[::1]:8080"), Some("[::1]:8080"), Some("[::1]")),
            ("/x", Some("[::1]"), Some("[::1]"), Some("[::1]")),
            (
                "http://[fd00::5]:80/",
                Some("x"),
                Some("[fd00::5]:80"),
                Some("[fd00::5]"),
            ),
        ];
        for (uri, host_header, authority, host_only) in cases {
            let (uri, headers) = request(uri, host_header);
            assert_eq!(of(&uri, &headers), authority, "{uri} Host {host_header:?}");
            assert_eq!(
                host(&uri, &headers),
                host_only,
                "{uri} Host {host_header:?}"
            );
        }
    }

    #[test]
    fn split_keeps_ipv6_brackets_and_drops_userinfo() {
        assert_eq!(split("a.b:8080"), ("a.b", Some(8080)));
        assert_eq!(split("a.b"), ("a.b", None));
        assert_eq!(split("a.b:http"), ("a.b", None));
        assert_eq!(split("u:p@a.b:81"), ("a.b", Some(81)));
        assert_eq!(split("[::1]:8080"), ("[::1]", Some(8080)));
        assert_eq!(split("[::1]"), ("[::1]", None));
        assert_eq!(split("::1"), ("::1", None));
    }
}
