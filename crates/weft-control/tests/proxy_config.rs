//! `/debug/proxy_config`: the full configuration the control plane intends for one proxy, by
//! pod or by connected proxy id, whatever the proxy subscribed to; and clear errors for what
//! does not exist.

use std::time::Duration;

use weft_test_support::wait::eventually;

mod common;
use common::{SHOP, Stream, config_dir};

const T: Duration = Duration::from_secs(10);

/// The shop plus a Service the proxy never subscribes to.
const MORE: &str = r#"
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 81, targetPort: http}]
"#;

#[tokio::test]
async fn a_proxy_config_holds_every_service_not_only_those_subscribed() {
    let dir = config_dir("pcfg", &format!("{SHOP}{MORE}"));
    let cp = common::start(common::config(&dir)).await;
    // Subscribed to shop/web only.
    let mut proxy = Stream::open(&cp, common::sidecar("web-0.shop", "198.18.0.7")).await;
    let first = proxy.next().await;
    proxy.reply(&first, None).await;

    let mut body = serde_json::Value::Null;
    eventually("the proxy's pod to be in force", T, async || {
        let reply = common::admin(&cp, "/debug/proxy_config?proxy=web-0.shop").await;
        body = reply.json();
        reply.status == 200
    })
    .await;
    assert_eq!(body["proxy"]["role"], "sidecar", "{body:#}");
    let routes: Vec<&str> = (body["routes"].as_array().unwrap().iter())
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(routes, ["shop/other:81", "shop/web:80"], "{body:#}");
    let endpoints: Vec<(&str, &str)> = (body["endpoints"].as_array().unwrap().iter())
        .map(|e| {
            (
                e["cluster"].as_str().unwrap(),
                e["address"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        endpoints.contains(&(
            "outbound|81||other.shop.svc.cluster.local",
            "198.18.0.7:8080"
        )),
        "{endpoints:?}"
    );
    assert!(body["configGeneration"].is_u64(), "{body:#}");

    // The same by pod id.
    let by_pod = common::admin(&cp, "/debug/proxy_config?pod=web-0.shop").await;
    assert_eq!(by_pod.json()["routes"], body["routes"]);
    drop(proxy);
}

#[tokio::test]
async fn unknown_targets_and_missing_parameters_are_explained() {
    let dir = config_dir("pcfg-err", SHOP);
    let cp = common::start(common::config(&dir)).await;
    let none = common::admin(&cp, "/debug/proxy_config").await;
    assert_eq!(none.status, 400);
    assert!(none.body.contains("?pod=ID"), "{}", none.body);
    let pod = common::admin(&cp, "/debug/proxy_config?pod=nosuch.shop").await;
    assert_eq!(pod.status, 404);
    assert!(
        pod.body.contains("no pod \\\"nosuch.shop\\\""),
        "{}",
        pod.body
    );
    let gw = common::admin(&cp, "/debug/proxy_config?gateway=shop%2Fnosuch").await;
    assert_eq!(gw.status, 404);
    assert!(gw.body.contains("shop/nosuch"), "{}", gw.body);
    let id = common::admin(&cp, "/debug/proxy_config?proxy=ghost").await;
    assert_eq!(id.status, 404);
    assert!(id.body.contains("no connected proxy"), "{}", id.body);
    // A node with no ambient pods has a configuration all the same (it serves none yet).
    let node = common::admin(&cp, "/debug/proxy_config?node=node-9")
        .await
        .json();
    assert_eq!(node["proxy"]["role"], "node");
}
