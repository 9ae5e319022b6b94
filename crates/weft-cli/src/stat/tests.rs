use super::compute::{self, Kind, Pod, Proxy, Row};
use super::parse::{self, Who};

/// cart-0's sidecar, Istio names: server side 90 × 200 and 10 × 503 at first.
const CART_BEFORE: &str = r#"# HELP istio_requests_total Requests.
# TYPE istio_requests_total counter
istio_requests_total{reporter="destination",source_workload="frontend",destination_service="cart.shop.svc.cluster.local",destination_workload="cart",destination_workload_namespace="shop",response_code="200"} 90
istio_requests_total{reporter="destination",source_workload="frontend",destination_service="cart.shop.svc.cluster.local",destination_workload="cart",destination_workload_namespace="shop",response_code="503"} 10
istio_requests_total{reporter="source",source_workload="cart",destination_service="pricing.shop.svc.cluster.local",destination_workload="pricing",destination_workload_namespace="shop",response_code="200"} 500
istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local",le="1.0"} 0
istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local",le="10.0"} 50
istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local",le="100.0"} 100
istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local",le="+Inf"} 100
istio_request_duration_milliseconds_bucket{reporter="source",destination_workload="pricing",destination_workload_namespace="shop",le="+Inf"} 500
istio_tcp_connections_opened_total{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local"} 4
istio_tcp_connections_closed_total{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local"} 1
# EOF
"#;

/// Ten seconds later: 100 more requests, 5 of them 503; 80 of the new ones under 1ms, the
/// rest under 10ms; two connections closed, one opened.
const CART_AFTER: &str = r#"istio_requests_total{reporter="destination",source_workload="frontend",destination_service="cart.shop.svc.cluster.local",destination_workload="cart",destination_workload_namespace="shop",response_code="200"} 185
istio_requests_total{reporter="destination",source_workload="frontend",destination_service="cart.shop.svc.cluster.local",destination_workload="cart",destination_workload_namespace="shop",response_code="503"} 15
istio_requests_total{reporter="source",source_workload="cart",destination_service="pricing.shop.svc.cluster.local",destination_workload="pricing",destination_workload_namespace="shop",response_code="200"} 900
istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local",le="1.0"} 80
istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local",le="10.0"} 150
istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local",le="100.0"} 200
istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local",le="+Inf"} 200
istio_tcp_connections_opened_total{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local"} 5
istio_tcp_connections_closed_total{reporter="destination",destination_workload="cart",destination_workload_namespace="shop",destination_service="cart.shop.svc.cluster.local"} 3
"#;

fn pod(id: &str, workload: &str, services: &[&str], meshed: bool) -> Pod {
    Pod {
        id: id.into(),
        workload: workload.into(),
        services: services.iter().map(|s| s.to_string()).collect(),
        meshed,
    }
}

fn shop() -> (Vec<Pod>, Vec<Proxy>) {
    let pods = vec![
        pod("shop/cart-0", "shop/cart", &["shop/cart"], true),
        pod("shop/frontend-0", "shop/frontend", &["shop/frontend"], true),
        pod(
            "shop/frontend-1",
            "shop/frontend",
            &["shop/frontend"],
            false,
        ),
    ];
    let cart = Proxy {
        pod: Some(("shop/cart-0".into(), "shop/cart".into())),
        service: None,
        first: parse::page(CART_BEFORE),
        second: parse::page(CART_AFTER),
    };
    let frontend = Proxy {
        pod: Some(("shop/frontend-0".into(), "shop/frontend".into())),
        ..Proxy::default()
    };
    (pods, vec![cart, frontend])
}

#[test]
fn pages_keep_the_server_side_only() {
    let page = parse::page(CART_BEFORE);
    let cart = Who {
        workload: Some("shop/cart".into()),
        service: Some("shop/cart".into()),
    };
    assert_eq!(
        page.requests,
        vec![(cart.clone(), false, 90.0), (cart.clone(), true, 10.0)]
    );
    let les: Vec<f64> = page.buckets.iter().map(|b| b.2).collect();
    assert_eq!(
        les,
        [0.001, 0.01, 0.1, f64::INFINITY],
        "milliseconds → seconds"
    );
    assert_eq!(page.tcp, vec![(cart.clone(), 4.0, 0.0), (cart, 0.0, 1.0)]);
    assert!(page.counts_connections);
}

#[test]
fn rows_are_what_the_servers_did_between_the_scrapes() {
    let (pods, proxies) = shop();
    let rows = compute::rows(Kind::Workloads, &pods, &proxies, 10.0);
    assert_eq!(rows.len(), 2);
    let cart = &rows[0];
    assert_eq!(
        cart,
        &Row {
            namespace: "shop".into(),
            name: "cart".into(),
            meshed: 1,
            pods: 1,
            success: Some(0.95),
            rps: 10.0,
            // 80 of 100 under 1ms: p50 at rank 50 is 50/80 of the way to 1ms.
            latency_p50_ms: Some(0.625),
            // Ranks 95 and 99 fall in (1ms, 10ms], holding 20: 15/20 and 19/20 of the way.
            latency_p95_ms: Some(7.75),
            latency_p99_ms: Some(9.55),
            tcp_conn: Some(2.0),
        }
    );
    let frontend = &rows[1];
    assert_eq!(
        (frontend.name.as_str(), frontend.meshed, frontend.pods),
        ("frontend", 1, 2)
    );
    assert_eq!(
        (frontend.success, frontend.rps, frontend.latency_p99_ms),
        (None, 0.0, None)
    );
    let services = compute::rows(Kind::Services, &pods, &proxies, 10.0);
    assert_eq!(services[0].name, "cart");
    assert_eq!(services[0].rps, 10.0);
    let by_pod = compute::rows(Kind::Pods, &pods, &proxies, 10.0);
    let names: Vec<&str> = by_pod.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["cart-0", "frontend-0", "frontend-1"]);
    assert_eq!(by_pod[0].success, Some(0.95));
}

#[test]
fn a_restarted_proxy_counts_from_zero() {
    let (pods, mut proxies) = shop();
    // The second scrape is of a new process: its counters are all of the window.
    let cart = &mut proxies[0];
    std::mem::swap(&mut cart.first, &mut cart.second);
    let rows = compute::rows(Kind::Workloads, &pods, &proxies, 10.0);
    assert_eq!(rows[0].rps, 10.0, "100 requests since the restart");
    assert_eq!(rows[0].success, Some(0.9));
}

#[test]
fn weft_names_are_read_until_the_istio_ones_land() {
    let before = r#"weft_requests_total{direction="inbound",service="",status="200",error=""} 10
weft_requests_total{direction="outbound",service="shop/pricing",status="200",error=""} 10
weft_request_duration_seconds_bucket{direction="inbound",service="",le="0.001"} 10
weft_request_duration_seconds_bucket{direction="inbound",service="",le="+Inf"} 10
"#;
    let after = before.replace("} 10", "} 30");
    let (pods, _) = shop();
    let proxies = vec![Proxy {
        pod: Some(("shop/cart-0".into(), "shop/cart".into())),
        service: Some("shop/cart".into()),
        first: parse::page(before),
        second: parse::page(&after),
    }];
    let rows = compute::rows(Kind::Workloads, &pods, &proxies, 5.0);
    assert_eq!(rows[0].name, "cart");
    assert_eq!((rows[0].rps, rows[0].success), (4.0, Some(1.0)));
    assert_eq!(rows[0].latency_p50_ms, Some(0.5));
    assert_eq!(
        rows[0].tcp_conn, None,
        "weft's names count no open connections"
    );
    let services = compute::rows(Kind::Services, &pods, &proxies, 5.0);
    assert_eq!(
        services[0].rps, 4.0,
        "inbound series are the pod's one Service's"
    );
}

#[test]
fn the_table_has_a_column_each() {
    let (pods, proxies) = shop();
    let rows = compute::rows(Kind::Workloads, &pods, &proxies, 10.0);
    let text = compute::table(Kind::Workloads, &rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "NAMESPACE  WORKLOAD  MESHED  SUCCESS  RPS      LATENCY_P50  LATENCY_P95  LATENCY_P99  TCP_CONN",
            "shop       cart      1/1     95.00%   10.0rps  0.6ms        7.8ms        9.6ms        2",
            "shop       frontend  1/2     -        0.0rps   -            -            -            0",
        ]
    );
}
