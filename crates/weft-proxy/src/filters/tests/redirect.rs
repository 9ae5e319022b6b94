//! `RequestRedirect`.

use super::*;

fn redirect_filter(r: HttpRequestRedirect) -> HttpRouteFilter {
    HttpRouteFilter {
        request_redirect: Some(r),
        ..filter(HttpFilterType::RequestRedirect)
    }
}

fn redirected(
    uri: &str,
    host: Option<&'static str>,
    r: HttpRequestRedirect,
    matched_prefix: Option<&str>,
) -> (StatusCode, String) {
    let headers: Vec<_> = host.map(|h| ("host", h)).into_iter().collect();
    let mut p = parts(uri, &headers);
    let resp = apply_to_request(&[redirect_filter(r)], &mut p, matched_prefix).expect("a redirect");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    (resp.status(), location)
}

fn redir() -> HttpRequestRedirect {
    HttpRequestRedirect {
        status_code: 302,
        ..HttpRequestRedirect::default()
    }
}

#[test]
fn redirect_defaults_to_302_to_the_same_url() {
    let (status, location) = redirected("/a/b?x=1", Some("pricing.shop"), redir(), None);
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(location, "http://pricing.shop/a/b?x=1");
}

#[test]
fn redirect_status_code_is_kept_when_it_is_a_redirect() {
    for (code, expected) in [
        (301, 301),
        (303, 303),
        (307, 307),
        (308, 308),
        (200, 302),
        (9, 302),
    ] {
        let r = HttpRequestRedirect {
            status_code: code,
            ..redir()
        };
        let (status, _) = redirected("/", Some("pricing.shop"), r, None);
        assert_eq!(status.as_u16(), expected, "{code}");
    }
}

#[test]
fn redirect_scheme_sets_the_well_known_port() {
    let https = HttpRequestRedirect {
        scheme: Some("https".into()),
        status_code: 301,
        ..redir()
    };
    let (status, location) = redirected("/login?next=/", Some("shop.example:8080"), https, None);
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(location, "https://shop.example/login?next=/");
    // A scheme without a well-known port keeps the request's port.
    let other = HttpRequestRedirect {
        scheme: Some("ftp".into()),
        ..redir()
    };
    let (_, location) = redirected("/f", Some("shop.example:8080"), other, None);
    assert_eq!(location, "ftp://shop.example:8080/f");
}

#[test]
fn redirect_without_scheme_keeps_the_request_port() {
    let r = HttpRequestRedirect {
        hostname: Some("other.example".into()),
        ..redir()
    };
    let (_, location) = redirected("/p", Some("shop.example:8080"), r.clone(), None);
    assert_eq!(location, "http://other.example:8080/p");
    let (_, location) = redirected("/p", Some("shop.example"), r.clone(), None);
    assert_eq!(location, "http://other.example/p");
    // The port of the URI's authority when there is no Host header.
    let (_, location) = redirected("https://shop.example:8443/p", None, r, None);
    assert_eq!(location, "https://other.example:8443/p");
}

#[test]
fn redirect_port_is_explicit_unless_it_is_the_default() {
    let to = |scheme: Option<&str>, port| HttpRequestRedirect {
        scheme: scheme.map(str::to_string),
        port: Some(port),
        ..redir()
    };
    let host = Some("shop.example:8080");
    assert_eq!(
        redirected("/", host, to(None, 9090), None).1,
        "http://shop.example:9090/"
    );
    assert_eq!(
        redirected("/", host, to(None, 80), None).1,
        "http://shop.example/"
    );
    assert_eq!(
        redirected("/", host, to(Some("https"), 443), None).1,
        "https://shop.example/"
    );
    assert_eq!(
        redirected("/", host, to(Some("https"), 80), None).1,
        "https://shop.example:80/"
    );
}

#[test]
fn redirect_path_modifiers() {
    let full = HttpRequestRedirect {
        path: Some(path_modifier(PathModifierType::ReplaceFullPath, "/moved")),
        ..redir()
    };
    let (_, location) = redirected("/old/x?q=1", Some("a.b"), full, Some("/old"));
    assert_eq!(location, "http://a.b/moved?q=1");
    let prefix = HttpRequestRedirect {
        path: Some(path_modifier(PathModifierType::ReplacePrefixMatch, "/new")),
        ..redir()
    };
    let (_, location) = redirected("/old/x?q=1", Some("a.b"), prefix, Some("/old"));
    assert_eq!(location, "http://a.b/new/x?q=1");
}

#[test]
fn redirect_keeps_ipv6_brackets_and_handles_a_missing_host() {
    let (_, location) = redirected("/v6", Some("[::1]:8080"), redir(), None);
    assert_eq!(location, "http://[::1]:8080/v6");
    let (_, location) = redirected("/nowhere?x", None, redir(), None);
    assert_eq!(location, "/nowhere?x");
}

#[test]
fn redirect_with_an_invalid_location_has_no_location() {
    let r = HttpRequestRedirect {
        hostname: Some("bad\nhost".into()),
        ..redir()
    };
    let mut p = parts("/", &[("host", "a.b")]);
    let resp = apply_to_request(&[redirect_filter(r)], &mut p, None).unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(resp.headers().get("location").is_none());
}

#[test]
fn redirect_stops_the_filters_that_follow() {
    let mut p = parts("/", &[("host", "a.b")]);
    let filters = [
        redirect_filter(redir()),
        request_headers(modifier(&[("x-after", "1")], &[], &[])),
    ];
    assert!(apply_to_request(&filters, &mut p, None).is_some());
    assert!(p.headers.get("x-after").is_none());
}
