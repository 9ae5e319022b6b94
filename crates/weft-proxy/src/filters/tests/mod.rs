use http::{HeaderMap, Request, StatusCode};
use weft_core::resources::http_route::{
    HttpFilterType, HttpPathModifier, HttpRequestRedirect, HttpRouteFilter, HttpUrlRewrite,
    PathModifierType,
};
use weft_core::resources::route_common::{BackendRef, HeaderModifier, HeaderValue, RequestMirror};

use super::*;

fn filter(filter_type: HttpFilterType) -> HttpRouteFilter {
    HttpRouteFilter {
        filter_type,
        request_header_modifier: None,
        response_header_modifier: None,
        request_mirror: None,
        request_redirect: None,
        url_rewrite: None,
        extension_ref: None,
    }
}

fn hv(name: &str, value: &str) -> HeaderValue {
    HeaderValue {
        name: name.into(),
        value: value.into(),
    }
}

fn modifier(set: &[(&str, &str)], add: &[(&str, &str)], remove: &[&str]) -> HeaderModifier {
    HeaderModifier {
        set: set.iter().map(|(n, v)| hv(n, v)).collect(),
        add: add.iter().map(|(n, v)| hv(n, v)).collect(),
        remove: remove.iter().map(|n| n.to_string()).collect(),
    }
}

fn request_headers(m: HeaderModifier) -> HttpRouteFilter {
    HttpRouteFilter {
        request_header_modifier: Some(m),
        ..filter(HttpFilterType::RequestHeaderModifier)
    }
}

fn parts(uri: &str, headers: &[(&'static str, &'static str)]) -> request::Parts {
    let mut b = Request::builder().uri(uri);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[test]
fn request_header_modifier_sets_adds_and_removes() {
    let mut p = parts(
        "/",
        &[
            ("x-set", "old"),
            ("x-set", "older"),
            ("x-add", "foo"),
            ("x-remove", "gone"),
            ("x-keep", "kept"),
        ],
    );
    let f = request_headers(modifier(
        &[("X-Set", "new"), ("x-new", "fresh")],
        &[("x-add", "bar,baz"), ("x-added", "1")],
        &["X-Remove", "x-absent"],
    ));
    assert!(apply_to_request(&[f], &mut p, None).is_none());
    assert_eq!(values(&p.headers, "x-set"), ["new"]);
    assert_eq!(values(&p.headers, "x-new"), ["fresh"]);
    assert_eq!(values(&p.headers, "x-add"), ["foo,bar,baz"]);
    assert_eq!(values(&p.headers, "x-added"), ["1"]);
    assert!(p.headers.get("x-remove").is_none());
    assert_eq!(values(&p.headers, "x-keep"), ["kept"]);
}

#[test]
fn header_modifiers_apply_in_filter_order() {
    let mut p = parts("/", &[]);
    let filters = [
        request_headers(modifier(&[("x-a", "1")], &[], &[])),
        request_headers(modifier(&[], &[("x-a", "2")], &[])),
        request_headers(modifier(&[("x-b", "3")], &[], &["x-b"])),
    ];
    apply_to_request(&filters, &mut p, None);
    assert_eq!(values(&p.headers, "x-a"), ["1,2"]);
    assert!(p.headers.get("x-b").is_none());
}

#[test]
fn invalid_header_names_and_values_are_skipped() {
    let mut p = parts("/", &[("x-a", "1")]);
    let f = request_headers(modifier(
        &[("bad name", "v"), ("x-ok", "bad\nvalue"), ("x-ok2", "ok")],
        &[("x-a", "bad\rvalue"), ("", "v")],
        &["bad name", ""],
    ));
    apply_to_request(&[f], &mut p, None);
    assert_eq!(values(&p.headers, "x-a"), ["1"]);
    assert!(p.headers.get("x-ok").is_none());
    assert_eq!(values(&p.headers, "x-ok2"), ["ok"]);
    assert_eq!(p.headers.len(), 2);
}

#[test]
fn response_header_modifier_changes_response_headers_only() {
    let mut resp = http::Response::builder()
        .header("server", "app")
        .header("set-cookie", "a=1")
        .header("vary", "accept")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let filters = [
        HttpRouteFilter {
            response_header_modifier: Some(modifier(
                &[("x-served-by", "weft")],
                &[("set-cookie", "b=2"), ("vary", "origin")],
                &["server"],
            )),
            ..filter(HttpFilterType::ResponseHeaderModifier)
        },
        request_headers(modifier(&[("x-request-only", "1")], &[], &[])),
    ];
    apply_to_response(&filters, &mut resp);
    assert_eq!(values(&resp.headers, "x-served-by"), ["weft"]);
    // Cookies are never joined.
    assert_eq!(values(&resp.headers, "set-cookie"), ["a=1", "b=2"]);
    assert_eq!(values(&resp.headers, "vary"), ["accept,origin"]);
    assert!(resp.headers.get("server").is_none());
    assert!(resp.headers.get("x-request-only").is_none());
    // And the request side ignores response modifiers.
    let mut p = parts("/", &[]);
    apply_to_request(&filters[..1], &mut p, None);
    assert!(p.headers.is_empty());
}

fn path_modifier(modifier_type: PathModifierType, value: &str) -> HttpPathModifier {
    let full = modifier_type == PathModifierType::ReplaceFullPath;
    HttpPathModifier {
        modifier_type,
        replace_full_path: full.then(|| value.to_string()),
        replace_prefix_match: (!full).then(|| value.to_string()),
    }
}

fn url_rewrite(hostname: Option<&str>, path: Option<HttpPathModifier>) -> HttpRouteFilter {
    HttpRouteFilter {
        url_rewrite: Some(HttpUrlRewrite {
            hostname: hostname.map(str::to_string),
            path,
        }),
        ..filter(HttpFilterType::URLRewrite)
    }
}

fn rewritten(uri: &str, f: &HttpRouteFilter, matched_prefix: Option<&str>) -> String {
    let mut p = parts(uri, &[("host", "pricing.shop")]);
    assert!(apply_to_request(std::slice::from_ref(f), &mut p, matched_prefix).is_none());
    p.uri.to_string()
}

#[test]
fn url_rewrite_replaces_the_full_path_and_keeps_the_query() {
    let f = url_rewrite(
        None,
        Some(path_modifier(PathModifierType::ReplaceFullPath, "/new")),
    );
    assert_eq!(rewritten("/old/path", &f, None), "/new");
    assert_eq!(rewritten("/old?a=1&b=2", &f, Some("/old")), "/new?a=1&b=2");
}

#[test]
fn url_rewrite_replaces_the_prefix_per_gateway_api() {
    // The table of the Gateway API `ReplacePrefixMatch` documentation, plus prefix `/`.
    for (path, prefix, replacement, expected) in [
        ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
        ("/foo", "/foo", "/xyz", "/xyz"),
        ("/foo/", "/foo", "/xyz", "/xyz/"),
        ("/foo/bar", "/foo", "", "/bar"),
        ("/foo/", "/foo", "", "/"),
        ("/foo", "/foo", "", "/"),
        ("/foo/", "/foo", "/", "/"),
        ("/foo", "/foo", "/", "/"),
        ("/strip-prefix/three", "/strip-prefix", "/", "/three"),
        ("/api/items?page=2", "/api", "/v2", "/v2/items?page=2"),
        ("/anything", "/", "/xyz", "/xyz/anything"),
        ("/", "/", "/xyz", "/xyz"),
        ("/foo/bar", "/foo", "xyz", "/xyz/bar"),
    ] {
        let f = url_rewrite(
            None,
            Some(path_modifier(
                PathModifierType::ReplacePrefixMatch,
                replacement,
            )),
        );
        assert_eq!(
            rewritten(path, &f, Some(prefix)),
            expected,
            "{path} prefix {prefix} → {replacement:?}"
        );
    }
}

#[test]
fn replace_prefix_without_a_matching_prefix_leaves_the_path() {
    let f = url_rewrite(
        None,
        Some(path_modifier(PathModifierType::ReplacePrefixMatch, "/v2")),
    );
    assert_eq!(rewritten("/api/items", &f, None), "/api/items");
    assert_eq!(rewritten("/other/items", &f, Some("/api")), "/other/items");
    assert_eq!(rewritten("/apis", &f, Some("/api")), "/apis");
}

#[test]
fn invalid_rewritten_path_leaves_the_uri() {
    let f = url_rewrite(
        None,
        Some(path_modifier(PathModifierType::ReplaceFullPath, "/a b")),
    );
    assert_eq!(rewritten("/old", &f, None), "/old");
}

#[test]
fn url_rewrite_hostname_sets_host_and_absolute_authority() {
    let f = url_rewrite(Some("cart.shop"), None);
    let mut p = parts("/x?y=1", &[("host", "pricing.shop:8080")]);
    apply_to_request(std::slice::from_ref(&f), &mut p, None);
    assert_eq!(p.headers["host"], "cart.shop");
    assert_eq!(p.uri, "/x?y=1");
    // HTTP/2 style: the authority is in the URI.
    let mut p = parts("http://pricing.shop:8080/x?y=1", &[]);
    apply_to_request(std::slice::from_ref(&f), &mut p, None);
    assert_eq!(p.headers["host"], "cart.shop");
    assert_eq!(p.uri, "http://cart.shop/x?y=1");
    // Not a host name: nothing changes.
    let bad = url_rewrite(Some("bad\nhost"), None);
    let mut p = parts("/x", &[("host", "pricing.shop")]);
    apply_to_request(&[bad], &mut p, None);
    assert_eq!(p.headers["host"], "pricing.shop");
}

#[test]
fn url_rewrite_hostname_and_path_together() {
    let f = url_rewrite(
        Some("cart.shop"),
        Some(path_modifier(PathModifierType::ReplacePrefixMatch, "/cart")),
    );
    let mut p = parts("https://pricing.shop/prices/1?c=eur", &[]);
    apply_to_request(std::slice::from_ref(&f), &mut p, Some("/prices"));
    assert_eq!(p.uri, "https://cart.shop/cart/1?c=eur");
}

#[test]
fn filter_types_without_their_settings_do_nothing() {
    let mut p = parts("/x", &[("host", "a.b")]);
    let filters = [
        filter(HttpFilterType::RequestHeaderModifier),
        filter(HttpFilterType::URLRewrite),
        filter(HttpFilterType::RequestRedirect),
        filter(HttpFilterType::RequestMirror),
        filter(HttpFilterType::ExtensionRef),
    ];
    assert!(apply_to_request(&filters, &mut p, Some("/")).is_none());
    assert_eq!(p.uri, "/x");
    assert_eq!(p.headers.len(), 1);
    assert_eq!(mirrors(&filters).count(), 0);
}

#[test]
fn mirrors_lists_request_mirrors_in_order() {
    let mirror = |name: &str, percent| HttpRouteFilter {
        request_mirror: Some(RequestMirror {
            backend_ref: BackendRef {
                group: None,
                kind: None,
                name: name.into(),
                namespace: None,
                port: Some(8080),
                weight: 1,
            },
            percent,
        }),
        ..filter(HttpFilterType::RequestMirror)
    };
    let filters = [
        mirror("shadow-a", None),
        request_headers(modifier(&[("x", "1")], &[], &[])),
        mirror("shadow-b", Some(10)),
    ];
    let found: Vec<_> = mirrors(&filters)
        .map(|m| (m.backend_ref.name.as_str(), m.percent))
        .collect();
    assert_eq!(found, [("shadow-a", None), ("shadow-b", Some(10))]);
    // The request itself is untouched by mirrors.
    let mut p = parts("/", &[]);
    assert!(apply_to_request(&filters[..1], &mut p, None).is_none());
    assert!(p.headers.is_empty());
}

mod redirect;
