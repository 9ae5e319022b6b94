use http::{HeaderMap, HeaderValue, Method, Uri};
use weft_core::model::{Backend, HttpRoutes, HttpRule, MatchEntry};
use weft_core::resources::http_route::{
    HttpFilterType, HttpMethod, HttpPathMatch, HttpRouteFilter, HttpRouteMatch, PathMatchType,
};
use weft_core::resources::route_common::{HeaderMatch, LocalObjectReference, StringMatchType};

use super::*;

fn rule(name: &str) -> HttpRule {
    HttpRule {
        name: name.into(),
        filters: Vec::new(),
        fault: None,
        backends: vec![backend("shop/a", 1)],
        timeout: None,
        per_try_timeout: None,
        retry: None,
    }
}

fn backend(service: &str, weight: u32) -> Backend {
    Backend {
        service: service.into(),
        port: 0,
        weight,
        filters: Vec::new(),
        unresolved: None,
    }
}

fn path(match_type: PathMatchType, value: &str) -> HttpRouteMatch {
    HttpRouteMatch {
        path: Some(HttpPathMatch {
            match_type,
            value: value.into(),
        }),
        ..HttpRouteMatch::default()
    }
}

fn prefix(value: &str) -> HttpRouteMatch {
    path(PathMatchType::PathPrefix, value)
}

fn entry(matcher: HttpRouteMatch, rule: usize) -> MatchEntry {
    MatchEntry {
        ports: Vec::new(),
        hostnames: Vec::new(),
        matcher,
        rule,
    }
}

fn exact(name: &str, value: &str) -> HeaderMatch {
    HeaderMatch {
        match_type: StringMatchType::Exact,
        name: name.into(),
        value: value.into(),
    }
}

fn regex(name: &str, value: &str) -> HeaderMatch {
    HeaderMatch {
        match_type: StringMatchType::RegularExpression,
        ..exact(name, value)
    }
}

/// One rule per entry: rule `i` is named `r<i>`.
fn compile(entries: Vec<MatchEntry>) -> CompiledRoutes {
    let rules = (0..entries.len()).map(|i| rule(&format!("r{i}"))).collect();
    CompiledRoutes::new(&HttpRoutes { rules, entries }).expect("routes compile")
}

/// A request; `target` may hold a query.
struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    host: Option<&'static str>,
    port: u16,
}

fn req(target: &str) -> Req {
    Req {
        method: Method::GET,
        uri: target.parse().unwrap(),
        headers: HeaderMap::new(),
        host: Some("pricing.shop"),
        port: 80,
    }
}

impl Req {
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.append(name, HeaderValue::from_static(value));
        self
    }

    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            path: self.uri.path(),
            query: self.uri.query(),
            headers: &self.headers,
            host: self.host,
            port: self.port,
        }
    }
}

/// Index of the rule `routes` selects for `r`.
fn pick(routes: &CompiledRoutes, r: &Req) -> Option<usize> {
    routes
        .select(&r.view())
        .and_then(|s| routes.rules.iter().position(|x| std::ptr::eq(x, s.rule)))
}

fn matches(m: HttpRouteMatch, r: &Req) -> bool {
    pick(&compile(vec![entry(m, 0)]), r).is_some()
}

#[test]
fn select_takes_the_first_matching_entry_in_order() {
    // Entries arrive sorted by precedence: exact, longest prefix, then `/`.
    let routes = compile(vec![
        entry(path(PathMatchType::Exact, "/api/v1"), 0),
        entry(prefix("/api/v1"), 1),
        entry(prefix("/api"), 2),
        entry(prefix("/"), 3),
    ]);
    assert_eq!(pick(&routes, &req("/api/v1")), Some(0));
    assert_eq!(pick(&routes, &req("/api/v1/items")), Some(1));
    assert_eq!(pick(&routes, &req("/api/v2")), Some(2));
    assert_eq!(pick(&routes, &req("/other")), Some(3));
    let selected = routes.select(&req("/api/v2").view()).unwrap();
    assert_eq!(selected.rule.name, "r2");
    assert_eq!(selected.matched_prefix, Some("/api"));
    let exact = routes.select(&req("/api/v1").view()).unwrap();
    assert_eq!(exact.matched_prefix, None);
}

#[test]
fn several_entries_may_share_a_rule() {
    let routes = CompiledRoutes::new(&HttpRoutes {
        rules: vec![rule("a"), rule("b")],
        entries: vec![
            entry(prefix("/x"), 1),
            entry(prefix("/y"), 1),
            entry(prefix("/"), 0),
        ],
    })
    .unwrap();
    assert_eq!(pick(&routes, &req("/y/1")), Some(1));
    assert_eq!(pick(&routes, &req("/z")), Some(0));
    assert_eq!(routes.rules.len(), 2);
}

#[test]
fn no_entry_matching_selects_nothing() {
    let routes = compile(vec![entry(prefix("/api"), 0)]);
    assert_eq!(pick(&routes, &req("/web")), None);
    assert!(compile(Vec::new()).select(&req("/").view()).is_none());
}

#[test]
fn path_prefix_matches_whole_path_elements() {
    for (prefix_value, path, expected) in [
        ("/foo", "/foo", true),
        ("/foo", "/foo/", true),
        ("/foo", "/foo/bar", true),
        ("/foo", "/foobar", false),
        ("/foo", "/fo", false),
        ("/foo", "/", false),
        ("/foo/", "/foo", true),
        ("/foo/", "/foo/bar", true),
        ("/foo/", "/foobar", false),
        ("/foo/bar", "/foo/bar/baz", true),
        ("/foo/bar", "/foo/barbaz", false),
        ("/", "/", true),
        ("/", "/anything/at/all", true),
        ("/Foo", "/foo", false),
    ] {
        assert_eq!(
            matches(prefix(prefix_value), &req(path)),
            expected,
            "prefix {prefix_value} on {path}"
        );
    }
}

#[test]
fn a_match_without_path_is_prefix_slash() {
    let routes = compile(vec![entry(HttpRouteMatch::default(), 0)]);
    let selected = routes.select(&req("/a/b?c=d").view()).unwrap();
    assert_eq!(selected.matched_prefix, Some("/"));
}

#[test]
fn exact_path_is_the_whole_path_without_query() {
    let m = || path(PathMatchType::Exact, "/login");
    assert!(matches(m(), &req("/login")));
    assert!(matches(m(), &req("/login?next=/home")));
    assert!(!matches(m(), &req("/login/")));
    assert!(!matches(m(), &req("/login/x")));
}

#[test]
fn path_regex_must_match_the_whole_path() {
    let m = || path(PathMatchType::RegularExpression, "/items/[0-9]+");
    assert!(matches(m(), &req("/items/42")));
    assert!(!matches(m(), &req("/items/42/reviews")));
    assert!(!matches(m(), &req("/v1/items/42")));
    // Alternation stays inside the anchors.
    let alt = || path(PathMatchType::RegularExpression, "/a|/b");
    assert!(matches(alt(), &req("/a")));
    assert!(matches(alt(), &req("/b")));
    assert!(!matches(alt(), &req("/a/x")));
    assert!(!matches(alt(), &req("/x/b")));
}

#[test]
fn invalid_regex_is_an_error_naming_the_rule() {
    for m in [
        path(PathMatchType::RegularExpression, "/items/(["),
        HttpRouteMatch {
            headers: vec![regex("x-v", "a(")],
            ..HttpRouteMatch::default()
        },
        HttpRouteMatch {
            query_params: vec![regex("q", "*")],
            ..HttpRouteMatch::default()
        },
    ] {
        let err = CompiledRoutes::new(&HttpRoutes {
            rules: vec![rule("HTTPRoute/shop/pricing rule 0")],
            entries: vec![entry(m, 0)],
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid regular expression"), "{err}");
        assert!(err.contains("HTTPRoute/shop/pricing rule 0"), "{err}");
    }
}

#[test]
fn entry_with_a_missing_rule_is_an_error() {
    let err = CompiledRoutes::new(&HttpRoutes {
        rules: vec![rule("a")],
        entries: vec![entry(prefix("/"), 3)],
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("rule 3"), "{err}");
}

#[test]
fn hostnames_match_exactly_or_by_wildcard_ignoring_case() {
    let routes = compile(vec![MatchEntry {
        hostnames: vec!["pricing.shop".into(), "*.Example.com".into()],
        ..entry(prefix("/"), 0)
    }]);
    for (host, expected) in [
        (Some("pricing.shop"), true),
        (Some("PRICING.Shop"), true),
        (Some("pricing.shop."), true),
        (Some("a.example.com"), true),
        (Some("a.b.EXAMPLE.com"), true),
        (Some("example.com"), false),
        (Some(".example.com"), false),
        (Some("aexample.com"), false),
        (Some("cart.shop"), false),
        (None, false),
    ] {
        let mut r = req("/");
        r.host = host;
        assert_eq!(pick(&routes, &r).is_some(), expected, "{host:?}");
    }
}

#[test]
fn empty_hostnames_match_any_host_or_none() {
    let routes = compile(vec![entry(prefix("/"), 0)]);
    let mut r = req("/");
    r.host = None;
    assert_eq!(pick(&routes, &r), Some(0));
}

#[test]
fn entries_apply_to_their_ports_only() {
    let routes = compile(vec![
        MatchEntry {
            ports: vec![8080, 9090],
            ..entry(prefix("/"), 0)
        },
        entry(prefix("/"), 1),
    ]);
    for (port, expected) in [(8080, 0), (9090, 0), (80, 1)] {
        let mut r = req("/");
        r.port = port;
        assert_eq!(pick(&routes, &r), Some(expected), "port {port}");
    }
}

#[test]
fn a_port_no_route_attaches_to_is_not_covered() {
    let routes = compile(vec![MatchEntry {
        ports: vec![80],
        ..entry(prefix("/"), 0)
    }]);
    assert!(routes.covers(80));
    assert!(
        !routes.covers(81),
        "port 81 is served as if the Service had no routes"
    );
    let everywhere = compile(vec![entry(prefix("/"), 0)]);
    assert!(everywhere.covers(81));
}

fn extension_filter() -> HttpRouteFilter {
    HttpRouteFilter {
        filter_type: HttpFilterType::ExtensionRef,
        request_header_modifier: None,
        response_header_modifier: None,
        request_mirror: None,
        request_redirect: None,
        url_rewrite: None,
        extension_ref: Some(LocalObjectReference {
            group: "example.com".into(),
            kind: "Auth".into(),
            name: "jwt".into(),
        }),
    }
}

#[test]
fn extension_ref_filters_are_rejected() {
    let mut r = rule("HTTPRoute/shop/pricing rule 1");
    r.filters.push(extension_filter());
    let err = CompiledRoutes::new(&HttpRoutes {
        rules: vec![r],
        entries: Vec::new(),
    })
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "filter ExtensionRef example.com/Auth/jwt in HTTPRoute/shop/pricing rule 1 is not \
         supported by this proxy"
    );
    // On a backend too.
    let mut r = rule("HTTPRoute/shop/pricing rule 2");
    r.backends[0].filters.push(extension_filter());
    let err = CompiledRoutes::new(&HttpRoutes {
        rules: vec![r],
        entries: Vec::new(),
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("in HTTPRoute/shop/pricing rule 2"), "{err}");
}

#[test]
fn pick_backend_none_without_weight() {
    let mut rng = fastrand::Rng::with_seed(7);
    assert!(pick_backend(&[], &mut rng).is_none());
    assert!(pick_backend(&[backend("a", 0), backend("b", 0)], &mut rng).is_none());
    let only = [backend("a", 0), backend("b", 3)];
    for _ in 0..100 {
        assert_eq!(pick_backend(&only, &mut rng).unwrap().service, "b");
    }
}

#[test]
fn pick_backend_follows_weights() {
    // 10 000 draws at p = 0.1: the standard deviation of the share is 0.3%, so 7%..13% is
    // ten standard deviations either side (odds of failing below 1e-20).
    let backends = [backend("v1", 90), backend("v2", 10)];
    let draws = 10_000;
    let mut rng = fastrand::Rng::new();
    let v2 = (0..draws)
        .filter(|_| pick_backend(&backends, &mut rng).unwrap().service == "v2")
        .count();
    assert!((700..=1300).contains(&v2), "v2 got {v2} of {draws}");
}

#[test]
fn pick_backend_handles_large_weights() {
    let backends = [backend("a", u32::MAX), backend("b", u32::MAX)];
    let mut rng = fastrand::Rng::with_seed(7);
    assert!(pick_backend(&backends, &mut rng).is_some());
}

mod headers_query;
