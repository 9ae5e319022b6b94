use super::*;

const INF: f64 = f64::INFINITY;

/// What the proxy's encoder writes (crates/weft-proxy/src/metrics/), in text format 0.0.4,, with two services in
/// two directions, a request that got no response, and other families around.
const PROXY: &str = r#"# HELP istio_requests_total Requests (HTTP and gRPC) the proxy handled.
# TYPE istio_requests_total counter
istio_requests_total{reporter="source",destination_service="shop/web",response_code="503",response_flags="no-healthy-endpoint"} 2
istio_requests_total{reporter="source",destination_service="shop/web",response_code="200",response_flags="-"} 90
istio_requests_total{reporter="destination",destination_service="shop/cart",response_code="200",response_flags="-"} 40
istio_requests_total{reporter="destination",destination_service="shop/cart",response_code="404",response_flags="-"} 5
istio_requests_total{reporter="destination",destination_service="shop/cart",response_code="0",response_flags="upstream-reset"} 3
# HELP istio_request_duration_milliseconds Time from the request to its response headers, in milliseconds.
# TYPE istio_request_duration_milliseconds histogram
istio_request_duration_milliseconds_sum{reporter="source",destination_service="shop/web"} 0.2
istio_request_duration_milliseconds_count{reporter="source",destination_service="shop/web"} 92
istio_request_duration_milliseconds_bucket{le="0.1",reporter="source",destination_service="shop/web"} 0
istio_request_duration_milliseconds_bucket{le="1.6",reporter="source",destination_service="shop/web"} 50
istio_request_duration_milliseconds_bucket{le="3.2",reporter="source",destination_service="shop/web"} 90
istio_request_duration_milliseconds_bucket{le="3276.8",reporter="source",destination_service="shop/web"} 92
istio_request_duration_milliseconds_bucket{le="+Inf",reporter="source",destination_service="shop/web"} 92
istio_request_duration_milliseconds_sum{reporter="destination",destination_service="shop/cart"} 0.1
istio_request_duration_milliseconds_count{reporter="destination",destination_service="shop/cart"} 48
istio_request_duration_milliseconds_bucket{le="0.1",reporter="destination",destination_service="shop/cart"} 1
istio_request_duration_milliseconds_bucket{le="1.6",reporter="destination",destination_service="shop/cart"} 40
istio_request_duration_milliseconds_bucket{le="3.2",reporter="destination",destination_service="shop/cart"} 47
istio_request_duration_milliseconds_bucket{le="3276.8",reporter="destination",destination_service="shop/cart"} 48
istio_request_duration_milliseconds_bucket{le="+Inf",reporter="destination",destination_service="shop/cart"} 48
# HELP istio_tcp_connections_closed_total TCP connections closed.
# TYPE istio_tcp_connections_closed_total counter
istio_tcp_connections_closed_total{reporter="destination",response_code="0"} 1
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
        r#"istio_requests_total{reporter="source",destination_service="a",response_code="0",response_flags="UT"} 4"#,
    )
    .unwrap();
    assert_eq!((s.requests, s.errors), (4.0, 4.0));
}

#[test]
fn escaped_quotes_commas_and_braces_in_values() {
    let text = r#"istio_requests_total{reporter="source",destination_service="we\"ird, {name}\\",response_code="500",response_flags="a,b"} 7 1700000000000
istio_requests_total{ reporter = "destination" , destination_service="x", response_code="200", response_flags="", } 3 # {trace_id="1"} 1
"#;
    let s = parse(text).unwrap();
    assert_eq!((s.requests, s.errors), (10.0, 7.0));
}

#[test]
fn unknown_families_and_odd_lines_elsewhere_are_ignored() {
    let text =
        "something else entirely {{{\nistio_tcp_sent_bytes_total{reporter=\"source\" 12\n# EOF\n";
    assert_eq!(parse(text).unwrap(), Sample::default());
    assert_eq!(parse("").unwrap(), Sample::default());
}

#[test]
fn a_malformed_line_of_a_relevant_family_names_its_line() {
    let cases = [
        r#"istio_requests_total{reporter="destination",response_code="200" 3"#,
        r#"istio_requests_total{reporter="destination",response_code="200"} three"#,
        r#"istio_requests_total{reporter="destination",response_code="200"}"#,
        r#"istio_requests_total{reporter="destination",response_code="2xx"} 1"#,
        r#"istio_requests_total{reporter="destination"} 1"#,
        r#"istio_requests_total{reporter="destination",response_code="200"} -1"#,
        r#"istio_requests_total{reporter="destination,response_code="200"} 1"#,
        r#"istio_request_duration_milliseconds_bucket{reporter="destination"} 1"#,
        r#"istio_request_duration_milliseconds_bucket{le="fast"} 1"#,
        r#"istio_request_duration_milliseconds_count{le="1"} x"#,
    ];
    for case in cases {
        let text = format!("# HELP istio_requests_total Requests\n\n{case}\n# EOF\n");
        match parse(&text) {
            Err(Error::Scrape { line: 3, text, .. }) => assert_eq!(text, case),
            other => panic!("{case}: {other:?}"),
        }
    }
    let message = parse("istio_requests_total{response_code=\"200\"} x")
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
fn weft_spelling_is_no_longer_read_and_both_reporters_are_summed() {
    // One request, seen by the client's proxy and by the server's: both count (the judge
    // compares a workload with itself, so the doubling cancels out).
    let text = r#"istio_requests_total{reporter="source",response_code="200"} 10
istio_requests_total{reporter="destination",response_code="200"} 10
weft_requests_total{direction="inbound",service="a",status="500",error=""} 10
"#;
    let s = parse(text).unwrap();
    assert_eq!((s.requests, s.errors), (20.0, 0.0));
}
