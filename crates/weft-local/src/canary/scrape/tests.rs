use super::*;

const INF: f64 = f64::INFINITY;

/// What the proxy's encoder writes (crates/weft-proxy/src/metrics.rs), with two services in
/// two directions, a request that got no response, and other families around.
const PROXY: &str = r#"# HELP weft_requests HTTP requests handled by the proxy.
# TYPE weft_requests counter
weft_requests_total{direction="outbound",service="shop/web",status="503",error="no-healthy-endpoint"} 2
weft_requests_total{direction="outbound",service="shop/web",status="200",error=""} 90
weft_requests_total{direction="inbound",service="shop/cart",status="200",error=""} 40
weft_requests_total{direction="inbound",service="shop/cart",status="404",error=""} 5
weft_requests_total{direction="inbound",service="shop/cart",status="",error="upstream-reset"} 3
# HELP weft_request_duration_seconds Time from request to response headers, as the proxy saw it.
# TYPE weft_request_duration_seconds histogram
weft_request_duration_seconds_sum{direction="outbound",service="shop/web"} 0.2
weft_request_duration_seconds_count{direction="outbound",service="shop/web"} 92
weft_request_duration_seconds_bucket{le="0.0001",direction="outbound",service="shop/web"} 0
weft_request_duration_seconds_bucket{le="0.0016",direction="outbound",service="shop/web"} 50
weft_request_duration_seconds_bucket{le="0.0032",direction="outbound",service="shop/web"} 90
weft_request_duration_seconds_bucket{le="3.2768",direction="outbound",service="shop/web"} 92
weft_request_duration_seconds_bucket{le="+Inf",direction="outbound",service="shop/web"} 92
weft_request_duration_seconds_sum{direction="inbound",service="shop/cart"} 0.1
weft_request_duration_seconds_count{direction="inbound",service="shop/cart"} 48
weft_request_duration_seconds_bucket{le="0.0001",direction="inbound",service="shop/cart"} 1
weft_request_duration_seconds_bucket{le="0.0016",direction="inbound",service="shop/cart"} 40
weft_request_duration_seconds_bucket{le="0.0032",direction="inbound",service="shop/cart"} 47
weft_request_duration_seconds_bucket{le="3.2768",direction="inbound",service="shop/cart"} 48
weft_request_duration_seconds_bucket{le="+Inf",direction="inbound",service="shop/cart"} 48
# HELP weft_tcp_connections Opaque TCP connections, counted when closed.
# TYPE weft_tcp_connections counter
weft_tcp_connections_total{direction="inbound",service="",error=""} 1
# HELP weft_retries_skipped Retries not sent because the destination Service's retry budget was spent.
# TYPE weft_retries_skipped counter
weft_retries_skipped_total{service="shop/web"} 1
# EOF
"#;

#[test]
fn reads_the_proxy_encoder_output() {
    let s = parse(PROXY).unwrap();
    assert_eq!(s.requests, 140.0);
    // The 503s and the request that got no response; the 404s are the client's doing.
    assert_eq!(s.errors, 5.0);
    assert_eq!(
        s.buckets,
        vec![
            (0.0001, 1.0),
            (0.0016, 90.0),
            (0.0032, 137.0),
            (3.2768, 140.0),
            (INF, 140.0)
        ]
    );
}

#[test]
fn status_zero_is_a_failure() {
    let s = parse(
        r#"weft_requests_total{direction="gateway",service="a",status="0",error="timeout"} 4"#,
    )
    .unwrap();
    assert_eq!((s.requests, s.errors), (4.0, 4.0));
}

#[test]
fn escaped_quotes_commas_and_braces_in_values() {
    let text = r#"weft_requests_total{direction="outbound",service="we\"ird, {name}\\",status="500",error="a,b"} 7 1700000000000
weft_requests_total{ direction = "inbound" , service="x", status="200", error="", } 3 # {trace_id="1"} 1
"#;
    let s = parse(text).unwrap();
    assert_eq!((s.requests, s.errors), (10.0, 7.0));
}

#[test]
fn unknown_families_and_odd_lines_elsewhere_are_ignored() {
    let text = "something else entirely {{{\nweft_tcp_bytes_total{flow=\"sent\" 12\n# EOF\n";
    assert_eq!(parse(text).unwrap(), Sample::default());
    assert_eq!(parse("").unwrap(), Sample::default());
}

#[test]
fn a_malformed_line_of_a_relevant_family_names_its_line() {
    let cases = [
        r#"weft_requests_total{direction="inbound",status="200" 3"#,
        r#"weft_requests_total{direction="inbound",status="200"} three"#,
        r#"weft_requests_total{direction="inbound",status="200"}"#,
        r#"weft_requests_total{direction="inbound",status="2xx"} 1"#,
        r#"weft_requests_total{direction="inbound"} 1"#,
        r#"weft_requests_total{direction="inbound",status="200"} -1"#,
        r#"weft_requests_total{direction="inbound,status="200"} 1"#,
        r#"weft_request_duration_seconds_bucket{direction="inbound"} 1"#,
        r#"weft_request_duration_seconds_bucket{le="fast"} 1"#,
        r#"weft_request_duration_seconds_count{le="1"} x"#,
    ];
    for case in cases {
        let text = format!("# HELP weft_requests HTTP requests\n\n{case}\n# EOF\n");
        match parse(&text) {
            Err(Error::Scrape { line: 3, text, .. }) => assert_eq!(text, case),
            other => panic!("{case}: {other:?}"),
        }
    }
    let message = parse("weft_requests_total{status=\"200\"} x")
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("metrics line 1: value `x` is not a number"),
        "{message}"
    );
}

#[test]
fn reads_istio_spelling_in_milliseconds() {
    let text = r#"# TYPE istio_requests counter
istio_requests_total{reporter="destination",response_code="200",destination_service="a"} 97
istio_requests_total{reporter="source",response_code="503",destination_service="b"} 3
istio_request_duration_milliseconds_bucket{reporter="destination",le="1"} 50
istio_request_duration_milliseconds_bucket{reporter="destination",le="5"} 100
istio_request_duration_milliseconds_bucket{reporter="destination",le="+Inf"} 100
# EOF
"#;
    let s = parse(text).unwrap();
    assert_eq!((s.requests, s.errors), (100.0, 3.0));
    assert_eq!(s.buckets, vec![(0.001, 50.0), (0.005, 100.0), (INF, 100.0)]);
}

#[test]
fn a_proxy_exporting_both_spellings_is_counted_once() {
    let text = r#"istio_requests_total{reporter="destination",response_code="200"} 10
weft_requests_total{direction="inbound",service="a",status="200",error=""} 10
"#;
    assert_eq!(parse(text).unwrap().requests, 10.0);
}
