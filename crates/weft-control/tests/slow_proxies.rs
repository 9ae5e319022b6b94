//! Proxies that misbehave on their discovery stream: one that never ACKs, one that stops
//! reading, one that reconnects in a loop. The others keep getting their pushes, the control
//! plane keeps a bounded amount for each, and `/debug/syncz` tells the truth about every one.

use std::time::Duration;

use weft_core::model::{Pod, PodList, SERVICE_TYPE};
use weft_proto::discovery::DeltaResponse;
use weft_test_support::wait::eventually;

mod common;
use common::{SHOP, Stream, config_dir, service, sidecar};

const T: Duration = Duration::from_secs(30);

/// The Service port in the pushed `shop/web`, if the response carries it.
fn port(resp: &DeltaResponse) -> Option<u16> {
    service(resp)?.ports.first().map(|p| p.port)
}

/// Reads (and ACKs) until `shop/web` arrives with Service port `want`.
async fn until_port(proxy: &mut Stream, want: u16) {
    loop {
        let resp = tokio::time::timeout(T, proxy.rx.message())
            .await
            .unwrap_or_else(|_| panic!("no push of port {want}"))
            .unwrap()
            .expect("the stream stays open");
        proxy.reply(&resp, None).await;
        if port(&resp) == Some(want) {
            return;
        }
    }
}

fn with_port(port: u16) -> String {
    SHOP.replace("port: 80,", &format!("port: {port},"))
}

/// The `/debug/syncz` entry of proxy `id`.
async fn syncz(cp: &weft_control::Bound, id: &str) -> Option<serde_json::Value> {
    let list = common::admin(cp, "/debug/syncz").await.json();
    list.as_array()?
        .iter()
        .find(|p| p["node"]["id"] == id)
        .cloned()
}

/// Waits until `/debug/syncz` says proxy `id` ACKed all it was sent.
async fn until_synced(cp: &weft_control::Bound, id: &str) {
    eventually(&format!("{id} to be synced"), T, async || {
        let entry = syncz(cp, id).await.unwrap();
        entry["types"][SERVICE_TYPE]["state"] == "SYNCED"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_never_acks_is_stale_and_holds_back_no_other() {
    let dir = config_dir("never-ack", SHOP);
    let cp = common::start(common::config(&dir)).await;
    let mut good = Stream::open(&cp, sidecar("web-0.shop", "198.18.0.7")).await;
    let first = good.next().await;
    good.reply(&first, None).await;
    // Reads every push, answers none.
    let mut mute = Stream::open(&cp, sidecar("web-1.shop", "198.18.0.8")).await;
    let (ports_tx, mut ports) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Ok(Some(resp)) = mute.rx.message().await {
            let _ = ports_tx.send(port(&resp));
        }
    });
    for n in 1..=100u16 {
        dir.write("config/mesh.yaml", &with_port(8000 + n));
        until_port(&mut good, 8000 + n).await;
    }
    // The ACKing proxy is synced, whatever the other does.
    until_synced(&cp, "web-0.shop").await;
    let entry = syncz(&cp, "web-1.shop").await.unwrap();
    assert_eq!(entry["types"][SERVICE_TYPE]["state"], "STALE", "{entry}");
    assert_eq!(
        entry["types"][SERVICE_TYPE]["ackedNonce"],
        serde_json::Value::Null
    );
    // It is sent the changes all the same, up to the last.
    tokio::time::timeout(T, async { while ports.recv().await != Some(Some(8100)) {} })
        .await
        .expect("the last change pushed to the proxy that never ACKs");
    reader.abort();
}

/// Pods for the pods file: `n` endpoints of `shop/web`, so every push of it is large.
fn many_pods(n: u32) -> String {
    let pods = (0..n)
        .map(|i| Pod {
            id: format!("web-{i}.shop"),
            namespace: "shop".into(),
            workload: "web".into(),
            name: format!("web-{i}"),
            ip: std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 2)) + i)
                .into(),
            service_account: "web".into(),
            labels: Default::default(),
            inbound: None,
            tunnel: None,
            node: String::new(),
            ready: true,
        })
        .collect();
    serde_json::to_string(&PodList { pods }).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_stops_reading_is_disconnected_and_the_others_go_on() {
    let dir = config_dir("stuck", SHOP);
    dir.write("pods.json", &many_pods(2000));
    let mut cfg = common::config(&dir);
    cfg.pods_file = Some(dir.join("pods.json"));
    cfg.send_timeout = Duration::from_secs(1);
    let cp = common::start(cfg).await;
    let mut good = Stream::open(&cp, sidecar("web-0.shop", "198.18.0.2")).await;
    let first = good.next().await;
    good.reply(&first, None).await;
    // Subscribes, then never reads: its pushes pile up in the transport, then in the
    // control plane's bounded queue, until the send timeout ends the stream.
    let stuck = Stream::open(&cp, sidecar("web-1.shop", "198.18.0.3")).await;
    assert!(syncz(&cp, "web-1.shop").await.is_some());
    let mut n = 0u16;
    while common::metric(&cp, "weft_control_stuck_streams_total").await == 0 {
        n += 1;
        assert!(n < 2000, "the stuck stream was never disconnected");
        dir.write("config/mesh.yaml", &with_port(1000 + n));
        // Everyone else still gets each change.
        until_port(&mut good, 1000 + n).await;
    }
    eventually("the stuck proxy to leave the status", T, async || {
        syncz(&cp, "web-1.shop").await.is_none()
    })
    .await;
    dir.write("config/mesh.yaml", &with_port(999));
    until_port(&mut good, 999).await;
    until_synced(&cp, "web-0.shop").await;
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_reconnecting_in_a_loop_leaves_one_entry_and_one_endpoint() {
    let dir = config_dir("flap", SHOP);
    let cp = common::start(common::config(&dir)).await;
    let mut watcher = Stream::open(&cp, sidecar("watcher.shop", "198.18.9.9")).await;
    let first = watcher.next().await;
    watcher.reply(&first, None).await;
    let flapper = sidecar("web-0.shop", "198.18.0.7");
    for _ in 0..200 {
        let mut s = Stream::open(&cp, flapper.clone()).await;
        let resp = s.next().await;
        s.reply(&resp, None).await;
        // Gone again before anything else; the admin API answers all along.
        drop(s);
        assert_eq!(common::admin(&cp, "/debug/config").await.status, 200);
    }
    let last = Stream::open(&cp, flapper).await;
    // The streams of the loop all end: only the watcher and the last connection stay.
    eventually("two open discovery streams", T, async || {
        common::metric(&cp, "weft_control_discovery_streams").await == 2
    })
    .await;
    let list = common::admin(&cp, "/debug/syncz").await.json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    // The watcher sees the flapping pod once, as the endpoint of its last connection.
    let mut endpoints = 0;
    while endpoints != 2 {
        let resp = watcher.next().await;
        watcher.reply(&resp, None).await;
        endpoints = service(&resp).map_or(endpoints, |s| s.endpoints.len());
    }
    // And a change still reaches it at once.
    dir.write("config/mesh.yaml", &with_port(81));
    until_port(&mut watcher, 81).await;
    drop(last);
}
