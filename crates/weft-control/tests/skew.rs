//! Version skew and revisions, as a proxy meets them: a control plane serves proxies of its own
//! discovery protocol and of the one before it, and refuses any other, or a proxy of another
//! revision, with FAILED_PRECONDITION and a message naming both sides and the fix. Refusals
//! are counted and listed for the operator until the proxy is served.

use std::time::Duration;

use weft_proto::discovery::{DeltaResponse, Node};
use weft_proto::{OLDEST_SUPPORTED_PROXY, PROTOCOL_VERSION, WEFT_VERSION};
use weft_test_support::dir::TempDir;

mod common;
use common::{SHOP, Stream, config_dir};

async fn start(dir: &TempDir, revision: Option<&str>) -> weft_control::Bound {
    common::start(weft_control::Config {
        revision: revision.map(String::from),
        ..common::config(dir)
    })
    .await
}

/// Sidecar web-0.shop speaking protocol `version` as weft 0.0.9, of `revision`.
fn proxy(version: u32, revision: &str) -> Node {
    let mut first = common::sidecar("web-0.shop", "198.18.0.7");
    let node = first.node.take().unwrap();
    Node {
        protocol_version: version,
        weft_version: "0.0.9".into(),
        revision: revision.into(),
        ..node
    }
}

/// The stream `node` opens (subscribed to shop/web), and what the control plane first answers
/// on it: a response, or the status that ended it.
async fn first_answer(
    cp: &weft_control::Bound,
    node: Node,
) -> (Stream, Result<DeltaResponse, tonic::Status>) {
    let mut first = common::sidecar("web-0.shop", "198.18.0.7");
    first.node = Some(node);
    let mut stream = Stream::open(cp, first).await;
    let next = tokio::time::timeout(Duration::from_secs(5), stream.rx.message())
        .await
        .expect("an answer within 5s");
    (
        stream,
        next.map(|r| r.expect("a response, not the end of the stream")),
    )
}

/// Asserts `node` is sent shop/web; its stream stays open while the result lives.
async fn served(cp: &weft_control::Bound, node: Node) -> Stream {
    let (stream, answer) = first_answer(cp, node).await;
    let resp = answer.expect("served");
    assert!(common::service(&resp).is_some(), "shop/web sent: {resp:?}");
    stream
}

async fn refused(cp: &weft_control::Bound, node: Node) -> String {
    let status = first_answer(cp, node).await.1.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    status.message().to_string()
}

#[tokio::test]
async fn a_proxy_of_this_protocol_is_served_and_listed_with_its_build() {
    let dir = config_dir("skew-same", SHOP);
    let cp = start(&dir, None).await;
    let _proxy = served(&cp, proxy(PROTOCOL_VERSION, "")).await;
    let list = common::admin(&cp, "/debug/syncz").await.json();
    let node = &list[0]["node"];
    assert_eq!(node["id"], "web-0.shop");
    assert_eq!(node["protocolVersion"], PROTOCOL_VERSION);
    assert_eq!(node["weftVersion"], "0.0.9");
    assert_eq!(node["revision"], "");
}

/// The skew upgrades rely on: the control plane is one protocol version ahead of the proxy.
#[tokio::test]
async fn a_proxy_one_protocol_behind_is_served() {
    let dir = config_dir("skew-behind", SHOP);
    let cp = start(&dir, None).await;
    assert_eq!(OLDEST_SUPPORTED_PROXY, PROTOCOL_VERSION - 1);
    served(&cp, proxy(OLDEST_SUPPORTED_PROXY, "")).await;
}

#[tokio::test]
async fn a_proxy_from_before_versioning_is_refused_naming_both_versions() {
    let dir = config_dir("skew-old", SHOP);
    let cp = start(&dir, None).await;
    let message = refused(&cp, proxy(0, "")).await;
    assert_eq!(
        message,
        format!(
            "proxy web-0.shop speaks discovery protocol 0 (weft 0.0.9); this control plane \
             (weft {WEFT_VERSION}) serves protocol {OLDEST_SUPPORTED_PROXY} to {PROTOCOL_VERSION}: \
             restart the proxy on a newer revision (weft rollout restart) or point it at a \
             control plane of its own version"
        )
    );
    let sample = r#"weft_control_discovery_refused_total{reason="version-skew"}"#;
    assert_eq!(common::metric(&cp, sample).await, 1);
    // The operator sees it with the message it was sent; it is not a connected proxy.
    let config = common::admin(&cp, "/debug/config").await.json();
    let listed = &config["refusedProxies"][0];
    assert_eq!(listed["node"]["id"], "web-0.shop");
    assert_eq!(listed["reason"], "version-skew");
    assert_eq!(listed["message"], message.as_str());
    let syncz = common::admin(&cp, "/debug/syncz").await.json();
    assert_eq!(syncz, serde_json::json!([]));
}

#[tokio::test]
async fn a_proxy_newer_than_the_control_plane_is_refused_naming_both_versions() {
    let dir = config_dir("skew-new", SHOP);
    let cp = start(&dir, None).await;
    let newer = PROTOCOL_VERSION + 1;
    let message = refused(&cp, proxy(newer, "canary")).await;
    assert_eq!(
        message,
        format!(
            "proxy web-0.shop speaks discovery protocol {newer} (weft 0.0.9), which is newer \
             than this control plane (weft {WEFT_VERSION}, protocol {OLDEST_SUPPORTED_PROXY} to \
             {PROTOCOL_VERSION}): upgrade the control plane first (weft install --revision canary)"
        )
    );
}

#[tokio::test]
async fn a_proxy_of_another_revision_is_refused_until_it_comes_back_on_this_one() {
    let dir = config_dir("skew-revision", SHOP);
    let cp = start(&dir, Some("stable")).await;
    let message = refused(&cp, proxy(PROTOCOL_VERSION, "canary")).await;
    assert_eq!(
        message,
        "proxy web-0.shop belongs to revision canary; this control plane serves revision \
         stable: point it at canary's control plane"
    );
    let sample = r#"weft_control_discovery_refused_total{reason="revision"}"#;
    assert_eq!(common::metric(&cp, sample).await, 1);
    let config = common::admin(&cp, "/debug/config").await.json();
    assert_eq!(config["refusedProxies"][0]["node"]["revision"], "canary");
    // Restarted on this revision it is served, and no longer listed as refused.
    served(&cp, proxy(PROTOCOL_VERSION, "stable")).await;
    let config = common::admin(&cp, "/debug/config").await.json();
    assert_eq!(config["refusedProxies"], serde_json::json!([]));
}

#[tokio::test]
async fn a_proxy_of_this_revision_or_of_none_is_served_and_the_control_plane_says_which() {
    let dir = config_dir("skew-same-revision", SHOP);
    let cp = start(&dir, Some("stable")).await;
    let _stable = served(&cp, proxy(PROTOCOL_VERSION, "stable")).await;
    let other = Node {
        id: "web-1.shop".into(),
        pod: "web-1".into(),
        ip: "198.18.0.8".into(),
        ..proxy(PROTOCOL_VERSION, "")
    };
    let _unnamed = served(&cp, other).await;
    for path in ["/debug/config", "/ready", "/"] {
        let about = &common::admin(&cp, path).await.json()["controlPlane"];
        assert_eq!(about["revision"], "stable", "{path}");
        assert_eq!(about["weftVersion"], WEFT_VERSION, "{path}");
        assert_eq!(about["protocolVersion"], PROTOCOL_VERSION, "{path}");
        assert_eq!(
            about["oldestSupportedProxy"], OLDEST_SUPPORTED_PROXY,
            "{path}"
        );
    }
    let syncz = common::admin(&cp, "/debug/syncz").await.json();
    let revisions: Vec<&str> = (syncz.as_array().unwrap().iter())
        .map(|p| p["node"]["revision"].as_str().unwrap())
        .collect();
    assert_eq!(revisions, ["stable", ""]);
}
