//! Proxy metrics in one process: a running sidecar shows every module's families at
//! `/metrics`, and a workload annotated `weft.dev/metrics: "false"` serves none (its metrics
//! port answers 404 with the reason) while its readiness keeps working.

mod support;

use std::time::Duration;

use support::*;

const CONFIG: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {command: [web], ports: [{name: http, containerPort: 8080}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {command: [client]}
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
metadata: {name: web, namespace: shop}
spec: {clusterIP: 198.18.128.50, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
"#;

const WEB: &str = "198.18.128.50:80";

#[tokio::test]
async fn a_running_proxy_shows_every_modules_families() {
    let dir = Dir::new("metrics-on");
    dir.write("mesh.yaml", CONFIG);
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let app = echo("web").await;
    let _web = proxy(cp.discovery, "shop", "web", "web-0", None, Some(app.addr)).await;
    let client = proxy(
        cp.discovery,
        "shop",
        "client",
        "client-0",
        Some(WEB.parse().unwrap()),
        None,
    )
    .await;
    let r = get(client.outbound, "web.shop", "/").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = get(client.metrics, "x", "/metrics").await;
    assert_eq!(m.status, 200, "{}", m.body);
    for line in [
        r#"weft_requests_total{direction="outbound",service="shop/web",status="200",error=""} 1"#,
        r#"weft_pool_connections_opened_total{transport="plain"} 1"#,
        r#"weft_pool_requests_total{protocol="http1",connection="new"} 1"#,
        r#"weft_xds_updates_total{type="weft.dev/Service",result="applied"}"#,
        "weft_xds_connected 1",
        "weft_xds_connects_total 1",
        "# TYPE weft_balance_ejections counter",
        "# TYPE weft_certs_renewals counter",
    ] {
        assert!(m.body.contains(line), "{line} not in {}", m.body);
    }
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
    let dir = Dir::new("metrics-off");
    dir.write("mesh.yaml", CONFIG);
    let cp = control(&dir, "127.0.0.1:0".parse().unwrap(), Duration::ZERO).await;
    let quiet = proxy(cp.discovery, "shop", "quiet", "quiet-0", None, None).await;
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
