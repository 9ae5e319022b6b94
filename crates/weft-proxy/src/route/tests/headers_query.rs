//! Method, header and query parameter matches.

use super::*;

#[test]
fn method_must_be_equal() {
    let m = || HttpRouteMatch {
        method: Some(HttpMethod::Post),
        ..prefix("/")
    };
    let mut post = req("/");
    post.method = Method::POST;
    assert!(matches(m(), &post));
    assert!(!matches(m(), &req("/")));
}

#[test]
fn header_names_are_case_insensitive_values_are_not() {
    let m = || HttpRouteMatch {
        headers: vec![exact("X-Version", "v2")],
        ..HttpRouteMatch::default()
    };
    assert!(matches(m(), &req("/").header("x-version", "v2")));
    assert!(matches(m(), &req("/").header("X-VERSION", "v2")));
    assert!(!matches(m(), &req("/").header("x-version", "V2")));
    assert!(!matches(m(), &req("/")));
}

#[test]
fn all_header_matches_must_hold() {
    let m = || HttpRouteMatch {
        headers: vec![exact("x-a", "1"), regex("x-b", "[0-9]+")],
        ..HttpRouteMatch::default()
    };
    assert!(matches(
        m(),
        &req("/").header("x-a", "1").header("x-b", "22")
    ));
    assert!(!matches(m(), &req("/").header("x-a", "1")));
    assert!(!matches(
        m(),
        &req("/").header("x-a", "1").header("x-b", "2a")
    ));
}

#[test]
fn header_regex_must_match_the_whole_value() {
    let m = || HttpRouteMatch {
        headers: vec![regex("user-agent", "curl/.*")],
        ..HttpRouteMatch::default()
    };
    assert!(matches(m(), &req("/").header("user-agent", "curl/8.5")));
    assert!(!matches(
        m(),
        &req("/").header("user-agent", "Mozilla curl/8.5")
    ));
    let unanchored = || HttpRouteMatch {
        headers: vec![regex("x-env", "prod")],
        ..HttpRouteMatch::default()
    };
    assert!(!matches(unanchored(), &req("/").header("x-env", "preprod")));
}

#[test]
fn repeated_request_headers_match_one_value_or_all_joined() {
    let one = || HttpRouteMatch {
        headers: vec![exact("x-tag", "b")],
        ..HttpRouteMatch::default()
    };
    assert!(matches(
        one(),
        &req("/").header("x-tag", "a").header("x-tag", "b")
    ));
    let joined = || HttpRouteMatch {
        headers: vec![exact("x-tag", "a,b")],
        ..HttpRouteMatch::default()
    };
    assert!(matches(
        joined(),
        &req("/").header("x-tag", "a").header("x-tag", "b")
    ));
}

#[test]
fn only_the_first_match_of_a_header_name_counts() {
    let m = || HttpRouteMatch {
        headers: vec![exact("x-a", "1"), exact("X-A", "2")],
        ..HttpRouteMatch::default()
    };
    assert!(matches(m(), &req("/").header("x-a", "1")));
}

#[test]
fn invalid_header_name_never_matches() {
    let m = || HttpRouteMatch {
        headers: vec![exact("bad header", "1")],
        ..HttpRouteMatch::default()
    };
    assert!(!matches(m(), &req("/")));
}

#[test]
fn query_params_match_by_exact_name() {
    let m = || HttpRouteMatch {
        query_params: vec![exact("animal", "whale"), regex("size", "[0-9]+")],
        ..HttpRouteMatch::default()
    };
    assert!(matches(m(), &req("/?animal=whale&size=12")));
    assert!(matches(m(), &req("/?size=3&x=&animal=whale")));
    assert!(!matches(m(), &req("/?animal=whale")));
    assert!(!matches(m(), &req("/?Animal=whale&size=1")));
    assert!(!matches(m(), &req("/?animal=Whale&size=1")));
    assert!(!matches(m(), &req("/?animal=whale&size=1x")));
    assert!(!matches(m(), &req("/")));
}

#[test]
fn query_values_are_percent_decoded_and_the_first_one_counts() {
    let m = || HttpRouteMatch {
        query_params: vec![exact("q", "a b")],
        ..HttpRouteMatch::default()
    };
    assert!(matches(m(), &req("/?q=a%20b")));
    assert!(!matches(m(), &req("/?q=ab&q=a%20b")));
    let empty = || HttpRouteMatch {
        query_params: vec![exact("flag", "")],
        ..HttpRouteMatch::default()
    };
    assert!(matches(empty(), &req("/?flag")));
    assert_eq!(percent_decode("100%"), "100%");
    assert_eq!(percent_decode("%zz%41"), "%zzA");
    assert_eq!(percent_decode("%ff"), "%ff");
}
