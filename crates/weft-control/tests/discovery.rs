//! Boots a real control plane on port 0 over a temporary config directory and talks to it as a
//! proxy would: subscribe, ACK, NACK, config changes, rejected changes.

use std::time::Duration;

use weft_core::model::{GATEWAY_TYPE, GatewayConfig, PROXY_TYPE, SERVICE_TYPE, ServiceConfig};
use weft_proto::discovery::DeltaRequest;
use weft_test_support::dir::TempDir;
use weft_test_support::wait::eventually;

mod common;
use common::{SHOP, Stream, config_dir};

const T: Duration = Duration::from_secs(10);

async fn start(dir: &TempDir) -> weft_control::Bound {
    common::start(common::config(dir)).await
}

/// A sidecar of shop/web with pod id `id`, subscribed to shop/web and to a missing Service.
async fn connect(cp: &weft_control::Bound, id: &str) -> Stream {
    let mut first = common::sidecar(id, "198.18.0.7");
    first.subscribe.push("shop/nope".into());
    Stream::open(cp, first).await
}

async fn get_text(cp: &weft_control::Bound, path: &str) -> String {
    common::admin(cp, path).await.body
}

async fn get(cp: &weft_control::Bound, path: &str) -> serde_json::Value {
    common::admin(cp, path).await.json()
}

async fn sync_state(cp: &weft_control::Bound, id: &str, ty: &str) -> String {
    let list = get(cp, "/debug/syncz").await;
    let p = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node"]["id"] == id)
        .expect("proxy listed");
    p["types"][ty]["state"].as_str().unwrap_or("").to_string()
}

async fn listed(cp: &weft_control::Bound, id: &str) -> bool {
    let list = get(cp, "/debug/syncz").await;
    list.as_array()
        .unwrap()
        .iter()
        .any(|p| p["node"]["id"] == id)
}

#[tokio::test]
async fn subscribe_ack_nack_and_missing_names() {
    let dir = config_dir("ack", SHOP);
    let cp = start(&dir).await;
    let mut proxy = connect(&cp, "web-0.shop").await;
    let first = proxy.next().await;
    assert_eq!(first.type_url, SERVICE_TYPE);
    assert_eq!(
        first.removed,
        ["shop/nope"],
        "missing names are reported, not awaited"
    );
    let svc: ServiceConfig = serde_json::from_slice(&first.resources[0].body).unwrap();
    assert_eq!(svc.key(), "shop/web");
    // The proxy's own pod is an endpoint, its named targetPort resolved.
    assert_eq!(svc.endpoints.len(), 1);
    assert_eq!(svc.endpoints[0].ports[&80], 8080);
    assert_eq!(sync_state(&cp, "web-0.shop", SERVICE_TYPE).await, "STALE");

    proxy.reply(&first, None).await;
    eventually("the Service ACK to show as SYNCED", T, async || {
        sync_state(&cp, "web-0.shop", SERVICE_TYPE).await == "SYNCED"
    })
    .await;

    // Subscribing to the proxy's own config, then rejecting it, shows NACKED with the reason.
    proxy
        .tx
        .send(DeltaRequest {
            type_url: PROXY_TYPE.into(),
            subscribe: vec!["web-0.shop".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let own = proxy.next().await;
    assert_eq!(own.resources[0].name, "web-0.shop");
    proxy
        .reply(&own, Some("filter ExtensionRef is not supported"))
        .await;
    eventually("the proxy config NACK to show", T, async || {
        sync_state(&cp, "web-0.shop", PROXY_TYPE).await == "NACKED"
    })
    .await;
    let dump = get(&cp, "/debug/config_dump?proxy=web-0.shop").await;
    assert_eq!(
        dump["types"][PROXY_TYPE]["nack"]["error"],
        "filter ExtensionRef is not supported"
    );
    assert!(dump["types"][SERVICE_TYPE]["resources"]["shop/web"].is_object());
    let list = get(&cp, "/debug/syncz").await;
    assert_eq!(
        list[0]["types"][PROXY_TYPE]["nackedResources"],
        serde_json::json!(["web-0.shop"])
    );
    // A later, accepted response of the same type does not hide the rejection.
    proxy
        .tx
        .send(DeltaRequest {
            type_url: PROXY_TYPE.into(),
            unsubscribe: vec![],
            subscribe: vec!["other".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let other = proxy.next().await;
    assert_eq!(other.removed, ["other"]);
    proxy.reply(&other, None).await;
    eventually("the later ACK to be recorded", T, async || {
        let list = get(&cp, "/debug/syncz").await;
        let acked = &list[0]["types"][PROXY_TYPE]["ackedNonce"];
        (acked == other.nonce.as_str())
            .then_some(())
            .ok_or(format!("ackedNonce {acked}"))
    })
    .await;
    assert_eq!(sync_state(&cp, "web-0.shop", PROXY_TYPE).await, "NACKED");
    cp.shutdown().await;
}

#[tokio::test]
async fn config_changes_are_pushed_and_bad_ones_rejected() {
    let dir = config_dir("push", SHOP);
    let cp = start(&dir).await;
    let mut proxy = connect(&cp, "web-0.shop").await;
    let first = proxy.next().await;
    proxy.reply(&first, None).await;

    // A good change: a second port, pushed once the write settles.
    std::fs::write(dir.join("config/mesh.yaml"), SHOP.replace(
        "ports: [{name: http, port: 80, targetPort: http}]",
        "ports: [{name: http, port: 80, targetPort: http}, {name: http-alt, port: 81, targetPort: http}]",
    )).unwrap();
    let update = proxy.next().await;
    let svc: ServiceConfig = serde_json::from_slice(&update.resources[0].body).unwrap();
    assert_eq!(svc.ports.len(), 2);
    proxy.reply(&update, None).await;
    let generation = get(&cp, "/debug/config").await["generation"]
        .as_u64()
        .unwrap();

    // A bad change is rejected with file:line, and the last good config stays.
    std::fs::write(dir.join("config/broken.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: shop}\nspec:\n  ports: [{port: eighty}]\n").unwrap();
    eventually("the broken file to be rejected", T, async || {
        !get(&cp, "/debug/config").await["rejected"].is_null()
    })
    .await;
    let status = get(&cp, "/debug/config").await;
    assert_eq!(status["generation"].as_u64().unwrap(), generation);
    let problem = status["rejected"]["problems"][0].as_str().unwrap();
    assert!(
        problem.contains("broken.yaml:5:") && problem.contains("spec.ports[0].port"),
        "{problem}"
    );

    let metrics = get_text(&cp, "/metrics").await;
    assert!(
        metrics.contains("weft_control_config_changes_total{result=\"rejected\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weft_control_config_changes_total{result=\"applied\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("weft_control_proxies 1"), "{metrics}");
    // Fixing it applies again.
    std::fs::remove_file(dir.join("config/broken.yaml")).unwrap();
    eventually("the rejection to clear", T, async || {
        get(&cp, "/debug/config").await["rejected"].is_null()
    })
    .await;
    // Nothing was pushed for the rejected change (nor for its removal, which changed no
    // resource): the next push the proxy sees is the next good change.
    std::fs::write(dir.join("config/mesh.yaml"), SHOP.replace(
        "ports: [{name: http, port: 80, targetPort: http}]",
        "ports: [{name: http, port: 80, targetPort: http}, {name: http-alt, port: 81, targetPort: http}, {name: http-3, port: 82, targetPort: http}]",
    )).unwrap();
    let next = proxy.next().await;
    let svc: ServiceConfig = serde_json::from_slice(&next.resources[0].body).unwrap();
    assert_eq!(
        svc.ports.len(),
        3,
        "the first push after the rejection: {svc:?}"
    );
    cp.shutdown().await;
}

#[tokio::test]
async fn disconnect_removes_the_endpoint_for_others() {
    let dir = config_dir("endpoints", SHOP);
    let cp = start(&dir).await;
    let mut watcher = connect(&cp, "web-0.shop").await;
    let first = watcher.next().await;
    watcher.reply(&first, None).await;
    let other = connect(&cp, "web-1.shop").await;
    // web-1 joins with the same IP in this test; the endpoint list grows to two pods.
    let grown = watcher.next().await;
    let svc: ServiceConfig = serde_json::from_slice(&grown.resources[0].body).unwrap();
    assert_eq!(svc.endpoints.len(), 2);
    drop(other);
    let shrunk = watcher.next().await;
    let svc: ServiceConfig = serde_json::from_slice(&shrunk.resources[0].body).unwrap();
    assert_eq!(svc.endpoints.len(), 1);
    cp.shutdown().await;
}

#[tokio::test]
async fn invalid_initial_config_refuses_to_start_with_the_reason() {
    let dir = config_dir(
        "invalid",
        "apiVersion: v1\nkind: Servce\nmetadata: {name: x}\n",
    );
    let err = weft_control::build(common::config(&dir)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("mesh.yaml:2:7") && text.contains("did you mean `Service`?"),
        "{text}"
    );
}

#[tokio::test]
async fn a_stale_stream_closing_does_not_remove_its_reconnected_proxy() {
    let dir = config_dir("reconnect", SHOP);
    let cp = start(&dir).await;
    let mut watcher = connect(&cp, "web-0.shop").await;
    let first = watcher.next().await;
    watcher.reply(&first, None).await;
    let old = connect(&cp, "web-1.shop").await;
    let grown = watcher.next().await;
    let svc: ServiceConfig = serde_json::from_slice(&grown.resources[0].body).unwrap();
    assert_eq!(svc.endpoints.len(), 2);
    watcher.reply(&grown, None).await;
    // web-1 reconnects before the control plane noticed its old stream died.
    let _new = connect(&cp, "web-1.shop").await;
    eventually("web-1 listed again", T, async || {
        listed(&cp, "web-1.shop").await
    })
    .await;
    drop(old);
    // Three streams were open (the watcher, web-1's old and new ones); wait for the old one's
    // close to be handled, then for anything it may have pushed.
    eventually("the old stream of web-1 to close", T, async || {
        let open = common::metric(&cp, "weft_control_discovery_streams").await;
        (open == 2)
            .then_some(())
            .ok_or(format!("{open} open streams"))
    })
    .await;
    // A later change: web-2 joins. Every push up to the one that brings it keeps web-1.
    let _web2 = connect(&cp, "web-2.shop").await;
    loop {
        let r = watcher.next().await;
        let svc: ServiceConfig = serde_json::from_slice(&r.resources[0].body).unwrap();
        let pods: Vec<&str> = svc.endpoints.iter().map(|e| e.pod.as_str()).collect();
        assert!(
            pods.contains(&"web-1"),
            "web-1 is still connected on its new stream: {pods:?}"
        );
        if pods.contains(&"web-2") {
            break;
        }
    }
    assert!(
        !sync_state(&cp, "web-1.shop", SERVICE_TYPE).await.is_empty(),
        "still listed"
    );
    cp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_pushed_even_while_requests_keep_arriving() {
    let dir = config_dir("busy", SHOP);
    let cp = start(&dir).await;
    let mut watcher = connect(&cp, "web-0.shop").await;
    let first = watcher.next().await;
    watcher.reply(&first, None).await;
    // Keep the stream busy with subscriptions queued behind each other.
    let tx = watcher.tx.clone();
    let filler = tokio::spawn(async move {
        for i in 0..1500 {
            let req = DeltaRequest {
                type_url: SERVICE_TYPE.into(),
                subscribe: vec![format!("shop/{i}-{}", "x".repeat(4096))],
                ..Default::default()
            };
            if tx.send(req).await.is_err() {
                break;
            }
        }
    });
    eventually(
        "the control plane to be taking in the flood",
        T,
        async || {
            let list = get(&cp, "/debug/syncz").await;
            let subscribed = list[0]["types"][SERVICE_TYPE]["subscribed"]
                .as_u64()
                .unwrap_or(0);
            (subscribed >= 50)
                .then_some(())
                .ok_or(format!("{subscribed} subscribed"))
        },
    )
    .await;
    // A change the watcher must hear about: a second pod joins shop/web.
    let _other = connect(&cp, "web-1.shop").await;
    let mut pushed = false;
    while !pushed
        && let Ok(Ok(Some(r))) =
            tokio::time::timeout(Duration::from_secs(3), watcher.rx.message()).await
    {
        if let Some(res) = r.resources.iter().find(|x| x.name == "shop/web") {
            let svc: ServiceConfig = serde_json::from_slice(&res.body).unwrap();
            pushed |= svc.endpoints.len() == 2;
        }
    }
    filler.abort();
    assert!(pushed, "the second endpoint of shop/web was never pushed");
    cp.shutdown().await;
}

const INGRESS: &str = r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: weft
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: edge, namespace: shop}
spec:
  parentRefs: [{name: ingress}]
  rules: [{matches: [{path: {value: /}}], backendRefs: [{name: web, port: 80}]}]
"#;

#[tokio::test]
async fn gateways_are_served_by_name_with_ack_nack_and_pushes() {
    let dir = config_dir("gateway", &format!("{SHOP}{INGRESS}"));
    let cp = start(&dir).await;
    let mut proxy = connect(&cp, "web-0.shop").await;
    let first = proxy.next().await;
    proxy.reply(&first, None).await;
    proxy
        .tx
        .send(DeltaRequest {
            type_url: GATEWAY_TYPE.into(),
            subscribe: vec!["shop/ingress".into(), "shop/nope".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let resp = proxy.next().await;
    assert_eq!(resp.type_url, GATEWAY_TYPE);
    assert_eq!(resp.removed, ["shop/nope"]);
    assert_eq!(resp.resources[0].name, "shop/ingress");
    let gw: GatewayConfig = serde_json::from_slice(&resp.resources[0].body).unwrap();
    assert_eq!(gw.http.entries[0].ports, [8080]);
    assert_eq!(gw.http.rules[0].backends[0].service, "shop/web");
    let version = resp.resources[0].version.clone();
    proxy.reply(&resp, None).await;
    eventually("the Gateway ACK to show as SYNCED", T, async || {
        sync_state(&cp, "web-0.shop", GATEWAY_TYPE).await == "SYNCED"
    })
    .await;

    // A route change is pushed with a new version; a NACK shows with its reason.
    std::fs::write(
        dir.join("config/mesh.yaml"),
        format!("{SHOP}{}", INGRESS.replace("value: /}", "value: /shop}")),
    )
    .unwrap();
    let update = proxy.next().await;
    assert_eq!(update.type_url, GATEWAY_TYPE);
    assert_ne!(update.resources[0].version, version);
    proxy
        .reply(&update, Some("gateway shop/ingress: bad"))
        .await;
    eventually("the Gateway NACK to show", T, async || {
        sync_state(&cp, "web-0.shop", GATEWAY_TYPE).await == "NACKED"
    })
    .await;
    let dump = get(&cp, "/debug/config_dump?proxy=web-0.shop").await;
    assert_eq!(
        dump["types"][GATEWAY_TYPE]["nack"]["error"],
        "gateway shop/ingress: bad"
    );
    assert_eq!(
        dump["types"][GATEWAY_TYPE]["resources"]["shop/ingress"]["http"]["entries"][0]["match"]["path"]
            ["value"],
        "/shop"
    );
    cp.shutdown().await;
}
