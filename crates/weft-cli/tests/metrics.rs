//! Proxy metrics in one process: a running sidecar shows Istio's standard families and every
//! module's own at `/metrics`; a request from `frontend` to `catalog` over mTLS is labelled
//! the same way by both ends (each with its `reporter`); a Service with no endpoint shows
//! `503`/`UH`; the page parses with Prometheus' strict text 0.0.4 parser and, when asked for,
//! as OpenMetrics; and a workload annotated `weft.dev/metrics: "false"` serves none (its
//! metrics port answers 404 with the reason) while its readiness keeps working.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use weft_test_support::ca::TestCa;

use support::*;

const CONFIG: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {trustDomain: cluster.local}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog, namespace: shop, labels: {app: catalog, version: v2}}
spec: {command: [catalog], serviceAccountName: catalog, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: frontend, namespace: shop, labels: {app: frontend, version: v1}}
spec: {command: [frontend], serviceAccountName: frontend}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: quiet
  namespace: shop
  labels: {app: quiet}
  annotations: {weft.dev/metrics: "false"}
spec: {command: [quiet]}
---
apiVersion: v1
kind: Service
metadata: {name: catalog, namespace: shop}
spec: {clusterIP: 198.18.128.50, selector: {app: catalog}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec: {clusterIP: 198.18.128.51, selector: {app: nobody}, ports: [{name: http, port: 80, targetPort: 8080}]}
"#;

const CATALOG: &str = "198.18.128.50:80";
const EMPTY: &str = "198.18.128.51:80";
const FRONTEND_ID: &str = "spiffe://cluster.local/ns/shop/sa/frontend";
const CATALOG_ID: &str = "spiffe://cluster.local/ns/shop/sa/catalog";
const HOUR: Duration = Duration::from_secs(3600);

struct Mesh {
    _dir: Dir,
    cp: weft_control::Bound,
    ca: TestCa,
    catalog: weft_proxy::Bound,
    _app: Echo,
}

/// A control plane and catalog's sidecar, with a certificate when `mtls`.
async fn start(name: &str, mtls: bool) -> Mesh {
    let dir = Dir::new(name);
    dir.write("mesh.yaml", CONFIG);
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let ca = TestCa::new("cluster.local");
    let app = echo("catalog").await;
    let certs = Certs::Fixed(mtls.then(|| fixed(ca.leaf(CATALOG_ID, HOUR))));
    let catalog = proxy_certs(
        cp.discovery,
        "shop",
        "catalog",
        "catalog-0",
        None,
        Some(app.addr),
        certs,
    )
    .await;
    Mesh {
        _dir: dir,
        cp,
        ca,
        catalog,
        _app: app,
    }
}

/// A sidecar of `frontend` whose outbound goes to `target`, with a certificate when `mtls`.
async fn frontend(m: &Mesh, target: &str, mtls: bool) -> weft_proxy::Bound {
    let certs = Certs::Fixed(mtls.then(|| fixed(m.ca.leaf(FRONTEND_ID, HOUR))));
    let pod = format!("frontend-{}", target.replace(['.', ':'], "-"));
    proxy_certs(
        m.cp.discovery,
        "shop",
        "frontend",
        &pod,
        Some(target.parse().unwrap()),
        None,
        certs,
    )
    .await
}

/// The page at `addr`, asking for `accept` when given.
async fn page(addr: SocketAddr, path: &str, accept: Option<&str>) -> Reply {
    let mut req = http::Request::get(path).header("host", "metrics");
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    send(addr, req.body(Full::new(Bytes::new())).unwrap()).await
}

/// The one line of `family` whose labels include all of `labels`; panics naming what is there.
fn series<'a>(text: &'a str, family: &str, labels: &[(&str, &str)]) -> &'a str {
    let found: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!(r#"{k}="{v}""#)))
        })
        .collect();
    assert_eq!(found.len(), 1, "one {family} with {labels:?} in:\n{text}");
    found[0]
}

#[tokio::test]
async fn both_ends_label_a_request_as_istio_does() {
    let m = start("metrics-istio", true).await;
    let client = frontend(&m, CATALOG, true).await;
    let r = get(client.outbound, "catalog.shop", "/items/42").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let shared = [
        ("source_workload", "frontend"),
        ("source_workload_namespace", "shop"),
        ("source_principal", FRONTEND_ID),
        ("source_app", "frontend"),
        ("source_version", "v1"),
        ("destination_workload", "catalog"),
        ("destination_workload_namespace", "shop"),
        ("destination_principal", CATALOG_ID),
        ("destination_app", "catalog"),
        ("destination_version", "v2"),
        ("destination_service", "catalog.shop.svc.cluster.local"),
        ("destination_service_name", "catalog"),
        ("destination_service_namespace", "shop"),
        ("request_protocol", "http"),
        ("response_code", "200"),
        ("grpc_response_status", ""),
        ("response_flags", "-"),
        ("connection_security_policy", "mutual_tls"),
    ];
    let client_page = get(client.metrics, "x", "/metrics").await.body;
    let mut labels = vec![("reporter", "source")];
    labels.extend(shared);
    let line = series(&client_page, "istio_requests_total", &labels);
    assert!(line.ends_with("} 1"), "{line}");
    // The response body is recorded once it has been sent: the server's count may lag the
    // client's answer by a moment.
    let mut labels = vec![("reporter", "destination")];
    labels.extend(shared);
    eventually("the server's series", Duration::from_secs(5), async || {
        let text = get(m.catalog.metrics, "x", "/metrics").await.body;
        text.lines().any(|l| {
            l.starts_with("istio_requests_total{")
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!(r#"{k}="{v}""#)))
                && l.ends_with("} 1")
        })
    })
    .await;
    let server_page = get(m.catalog.metrics, "x", "/metrics").await.body;
    series(
        &server_page,
        "istio_request_duration_milliseconds_count",
        &labels,
    );
    let sizes = series(&client_page, "istio_response_bytes_sum", &shared);
    assert!(!sizes.ends_with("} 0.0"), "the body was counted: {sizes}");
    // No path, pod name or address anywhere in the labels.
    for page in [&client_page, &server_page] {
        for forbidden in ["/items/42", "frontend-198", "catalog-0", "127.0.0.1"] {
            assert!(!page.contains(forbidden), "{forbidden} in:\n{page}");
        }
    }
}

#[tokio::test]
async fn a_service_without_endpoints_shows_503_uh() {
    let m = start("metrics-uh", false).await;
    let client = frontend(&m, EMPTY, false).await;
    let r = get(client.outbound, "empty.shop", "/").await;
    assert_eq!(r.status, 503, "{}", r.body);
    let text = get(client.metrics, "x", "/metrics").await.body;
    let line = series(
        &text,
        "istio_requests_total",
        &[
            ("reporter", "source"),
            ("source_workload", "frontend"),
            ("destination_service", "empty.shop.svc.cluster.local"),
            ("destination_workload", "unknown"),
            ("response_code", "503"),
            ("response_flags", "UH"),
        ],
    );
    assert!(line.ends_with("} 1"), "{line}");
}

/// Parses `text` with the Python `prometheus_client` parser `module.function`, printing each
/// family's name; panics with the parser's error.
fn python_parse(module: &str, function: &str, text: &str) -> String {
    weft_test_support::exposition::python_parse(module, function, text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[tokio::test]
async fn the_page_parses_as_text_0_0_4_and_as_openmetrics_when_asked() {
    let m = start("metrics-parse", true).await;
    let client = frontend(&m, CATALOG, true).await;
    assert_eq!(get(client.outbound, "catalog.shop", "/").await.status, 200);
    assert_eq!(get(client.outbound, "catalog.shop", "/").await.status, 200);
    for (addr, path) in [
        (client.metrics, "/metrics"),
        (client.admin, "/stats/prometheus"),
    ] {
        let text = page(addr, path, None).await;
        assert_eq!(text.status, 200, "{}", text.body);
        assert_eq!(
            text.headers["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert!(!text.body.contains("# EOF"), "{}", text.body);
        assert!(
            text.body.contains("# TYPE istio_requests_total counter\n"),
            "{}",
            text.body
        );
        let families = python_parse(
            "prometheus_client.parser",
            "text_string_to_metric_families",
            &text.body,
        );
        for family in [
            "istio_requests counter",
            "istio_request_duration_milliseconds histogram",
            "istio_request_bytes histogram",
            "istio_response_bytes histogram",
            "weft_pool_connections_opened counter",
            "weft_xds_connected gauge",
        ] {
            assert!(families.contains(family), "{family} in {families}");
        }
        let declared = text.body.matches("# TYPE ").count();
        assert_eq!(families.lines().count(), declared, "{families}");

        let open = page(
            addr,
            path,
            Some("application/openmetrics-text;version=1.0.0;q=0.9,text/plain;q=0.5"),
        )
        .await;
        assert_eq!(
            open.headers["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert!(open.body.ends_with("# EOF\n"), "{}", open.body);
        let families = python_parse(
            "prometheus_client.openmetrics.parser",
            "text_string_to_metric_families",
            &open.body,
        );
        assert!(families.contains("istio_requests counter"), "{families}");
    }
}

#[tokio::test]
async fn a_running_proxy_shows_every_modules_families() {
    let m = start("metrics-on", false).await;
    let client = frontend(&m, CATALOG, false).await;
    let r = get(client.outbound, "catalog.shop", "/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let text = get(client.metrics, "x", "/metrics").await;
    assert_eq!(text.status, 200, "{}", text.body);
    for line in [
        "# TYPE istio_requests_total counter",
        r#"weft_pool_connections_opened_total{transport="plain"} 1"#,
        r#"weft_pool_requests_total{protocol="http1",connection="new"} 1"#,
        r#"weft_xds_updates_total{type="weft.dev/Service",result="applied"}"#,
        "weft_xds_connected 1",
        "weft_xds_connects_total 1",
        "# TYPE weft_balance_ejections_total counter",
        "# TYPE weft_certs_renewals_total counter",
    ] {
        assert!(text.body.contains(line), "{line} not in {}", text.body);
    }
    for gone in [
        "weft_requests_total",
        "weft_request_duration_seconds",
        "weft_tcp_",
    ] {
        assert!(!text.body.contains(gone), "{gone} in {}", text.body);
    }
    series(
        &text.body,
        "istio_requests_total",
        &[
            ("response_code", "200"),
            ("connection_security_policy", "none"),
        ],
    );
    // The admin port serves the same registry.
    let stats = get(client.admin, "x", "/stats/prometheus").await;
    assert!(
        stats.body.contains("weft_xds_connected 1"),
        "{}",
        stats.body
    );
}

#[tokio::test]
async fn metrics_off_in_the_settings_turns_metrics_off_and_keeps_readiness() {
    let m = start("metrics-off", false).await;
    let quiet = proxy(m.cp.discovery, "shop", "quiet", "quiet-0", None, None).await;
    let off = get(quiet.metrics, "x", "/metrics").await;
    assert_eq!(off.status, 404, "{}", off.body);
    assert_eq!(off.body.lines().count(), 1, "one line: {}", off.body);
    assert!(off.body.contains("weft.dev/metrics"), "{}", off.body);
    assert_eq!(get(quiet.admin, "x", "/stats/prometheus").await.status, 404);
    assert_eq!(
        get(quiet.readiness, "x", "/healthz/ready").await.status,
        200
    );
    assert_eq!(get(quiet.metrics, "x", "/healthz/ready").await.status, 200);
}
