//! The control plane under bad input: a configuration flipping between valid and invalid every
//! 10 ms, and a storm of proxies joining and leaving at once. It stays responsive, keeps the
//! last good configuration in force, and its status tells the truth afterwards.

use std::time::Duration;

use weft_test_support::wait::eventually;

mod common;
use common::{SHOP, Stream, config_dir, service, sidecar};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_flipping_every_10ms_keeps_the_last_good_one_and_the_api_answering() {
    let dir = config_dir("flip", SHOP);
    let cp = common::start(common::config(&dir)).await;
    let mut proxy = Stream::open(&cp, sidecar("web-0.shop", "198.18.0.7")).await;
    let first = proxy.next().await;
    proxy.reply(&first, None).await;
    let writer = {
        let dir = dir.join("config");
        tokio::spawn(async move {
            for i in 0..100u16 {
                let text = match i % 2 {
                    0 => SHOP.replace("port: 80,", &format!("port: {},", 8000 + i)),
                    _ => "kind: Service\nmetadata: {name: [broken\n".to_string(),
                };
                std::fs::write(dir.join("mesh.yaml"), text).unwrap();
                // The scenario itself: a change every 10 ms.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            std::fs::write(
                dir.join("mesh.yaml"),
                SHOP.replace("port: 80,", "port: 9999,"),
            )
            .unwrap();
        })
    };
    // The admin API answers all along.
    while !writer.is_finished() {
        let reply = common::admin(&cp, "/debug/config").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    writer.await.unwrap();
    // The last (valid) version reaches the proxy, which keeps ACKing.
    let mut port = None;
    while port != Some(9999) {
        let resp = tokio::time::timeout(T, proxy.rx.message()).await;
        if resp.is_err() {
            let status = common::admin(&cp, "/debug/config").await.body;
            let file = std::fs::read_to_string(dir.join("config/mesh.yaml")).unwrap();
            panic!(
                "no push of port 9999 (last seen {port:?}); config status {status}\nfile:\n{file}"
            );
        }
        let resp = resp.unwrap().unwrap().expect("the stream stays open");
        proxy.reply(&resp, None).await;
        if let Some(svc) = service(&resp) {
            port = svc.ports.first().map(|p| p.port);
        }
    }
    eventually(
        "the last change to be in force, with nothing rejected after it",
        T,
        async || {
            let status = common::admin(&cp, "/debug/config").await.json();
            status["rejected"].is_null()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_storm_is_served_and_leaves_no_endpoint_behind() {
    let dir = config_dir("storm", SHOP);
    let cp = common::start(common::config(&dir)).await;
    let n = 300;
    let joins = (0..n).map(|i| {
        let cp = &cp;
        async move {
            let id = format!("web-{i}.shop");
            let ip = format!("198.18.{}.{}", 1 + i / 250, 1 + i % 250);
            let mut s = Stream::open(cp, sidecar(&id, &ip)).await;
            let first = s.next().await;
            s.reply(&first, None).await;
            s
        }
    });
    let streams = futures_util::future::join_all(joins).await;
    // A proxy that joins after the storm sees every pod of it as an endpoint of shop/web.
    let mut watcher = Stream::open(&cp, sidecar("watcher.shop", "198.18.9.9")).await;
    let endpoints =
        |r: &weft_proto::discovery::DeltaResponse| service(r).map(|s| s.endpoints.len());
    let mut seen = endpoints(&watcher.next().await);
    while seen != Some(n + 1) {
        seen = endpoints(&watcher.next().await).or(seen);
    }
    let listed = common::admin(&cp, "/debug/syncz").await.json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        n + 1,
        "every proxy listed"
    );
    // All leave at once: their endpoints go, and the status lists only the watcher.
    drop(streams);
    while seen != Some(1) {
        seen = endpoints(&watcher.next().await).or(seen);
    }
    eventually("only the watcher to be listed", T, async || {
        let listed = common::admin(&cp, "/debug/syncz").await.json();
        listed.as_array().map(Vec::len) == Some(1)
    })
    .await;
}
