//! The pods file: pods listed by the local runtime are endpoints without a proxy, changes are
//! picked up, a broken file keeps the last good list, a pod both listed and announced by its
//! proxy appears once with the addresses its proxy announced, and an announced pod the file does
//! not list is no endpoint.

use std::time::Duration;

use weft_core::model::{Endpoint, SERVICE_TYPE, ServiceConfig};
use weft_proto::discovery::{DeltaRequest, Node};
use weft_test_support::dir::TempDir;
use weft_test_support::wait::eventually;

mod common;
use common::{SHOP, Stream, config_dir};

const T: Duration = Duration::from_secs(10);

/// A config dir with the shop; the pods file goes beside the config, as `pods.json`.
fn new_dir(name: &str) -> TempDir {
    config_dir(&format!("pods-{name}"), SHOP)
}

fn pod(n: u8) -> String {
    format!(
        r#"{{"id": "web-{n}.shop", "namespace": "shop", "workload": "web", "name": "web-{n}", "ip": "10.0.0.{n}", "serviceAccount": "web"}}"#
    )
}

fn pods(list: &[u8]) -> String {
    let items: Vec<String> = list.iter().map(|n| pod(*n)).collect();
    format!("{{\"pods\": [\n  {}\n]}}\n", items.join(",\n  "))
}

async fn start(dir: &TempDir) -> weft_control::Bound {
    common::start(weft_control::Config {
        pods_file: Some(dir.join("pods.json")),
        ..common::config(dir)
    })
    .await
}

/// The endpoints of shop/web in force, by pod name.
fn endpoints(cp: &weft_control::Bound) -> Vec<Endpoint> {
    cp.state.snapshot().borrow().services["shop/web"]
        .endpoints
        .clone()
}

fn names(endpoints: &[Endpoint]) -> Vec<&str> {
    endpoints.iter().map(|e| e.pod.as_str()).collect()
}

async fn debug_config(cp: &weft_control::Bound) -> serde_json::Value {
    common::admin(cp, "/debug/config").await.json()
}

/// A discovery client subscribed to shop/web, as a proxy with `node`.
async fn connect(cp: &weft_control::Bound, node: Node) -> Stream {
    let first = DeltaRequest {
        node: Some(node),
        type_url: SERVICE_TYPE.into(),
        subscribe: vec!["shop/web".into()],
        ..Default::default()
    };
    Stream::open(cp, first).await
}

/// The next shop/web pushed to `client`.
async fn next_service(client: &mut Stream) -> ServiceConfig {
    let resp = client.next().await;
    serde_json::from_slice(&resp.resources[0].body).unwrap()
}

/// The node of web-`n`'s sidecar, listening uncaptured on `127.0.0.1:1500n`.
fn web_node(n: u8) -> Node {
    Node {
        id: format!("web-{n}.shop"),
        protocol_version: weft_proto::PROTOCOL_VERSION,
        role: "sidecar".into(),
        namespace: "shop".into(),
        workload: "web".into(),
        pod: format!("web-{n}"),
        ip: format!("10.0.0.{n}"),
        service_account: "web".into(),
        inbound_address: format!("127.0.0.1:1500{n}"),
        ..Default::default()
    }
}

fn client_node() -> Node {
    Node {
        id: "client-0.shop".into(),
        role: "sidecar".into(),
        namespace: "shop".into(),
        workload: "client".into(),
        pod: "client-0".into(),
        ip: "10.0.1.1".into(),
        protocol_version: weft_proto::PROTOCOL_VERSION,
        ..Default::default()
    }
}

#[tokio::test]
async fn listed_pods_are_endpoints_and_follow_the_file() {
    let dir = new_dir("follow");
    dir.write("pods.json", &pods(&[1]));
    let cp = start(&dir).await;
    let mut client = connect(&cp, client_node()).await;
    let svc = next_service(&mut client).await;
    assert_eq!(names(&svc.endpoints), ["web-1"], "no proxy needed");
    let ep = &svc.endpoints[0];
    assert_eq!(ep.address.to_string(), "10.0.0.1");
    assert_eq!(ep.ports[&80], 8080, "named targetPort resolved");
    assert_eq!(ep.identity, "spiffe://cluster.local/ns/shop/sa/web");

    // A change is pushed.
    dir.write("pods.json", &pods(&[1, 2]));
    let svc = next_service(&mut client).await;
    assert_eq!(names(&svc.endpoints), ["web-1", "web-2"]);

    // A broken file is reported with path:line:column, and the last good list stays.
    dir.write(
        "pods.json",
        "{\"pods\": [\n  {\"id\": \"web-3.shop\", \"ip\": 7}\n]}\n",
    );
    eventually("the broken file is reported", T, async || {
        !debug_config(&cp).await["podsFile"]["error"].is_null()
    })
    .await;
    let status = debug_config(&cp).await["podsFile"].clone();
    let problem = status["error"]["problems"][0].as_str().unwrap();
    let at = format!("{}:2:", dir.join("pods.json").display());
    assert!(
        problem.starts_with(&at) && problem.contains("pods[0]"),
        "{problem}"
    );
    assert_eq!(status["pods"], 2);
    assert_eq!(names(&endpoints(&cp)), ["web-1", "web-2"]);

    // Fixed: applied again, the error cleared. Nothing was pushed for the broken file: the
    // next push is the fix.
    dir.write("pods.json", &pods(&[2]));
    let svc = next_service(&mut client).await;
    assert_eq!(
        names(&svc.endpoints),
        ["web-2"],
        "the first push after the broken file"
    );
    assert!(debug_config(&cp).await["podsFile"]["error"].is_null());
    cp.shutdown().await;
}

#[tokio::test]
async fn a_pod_listed_and_announced_by_its_proxy_appears_once_with_its_addresses() {
    let dir = new_dir("once");
    dir.write("pods.json", &pods(&[1]));
    let cp = start(&dir).await;
    let mut watcher = connect(&cp, client_node()).await;
    assert_eq!(
        names(&next_service(&mut watcher).await.endpoints),
        ["web-1"]
    );
    // Its proxy connects and says where it listens.
    let node = Node {
        inbound_address: "127.0.0.1:15006".into(),
        ..web_node(1)
    };
    let proxy = connect(&cp, node).await;
    let svc = next_service(&mut watcher).await;
    assert_eq!(names(&svc.endpoints), ["web-1"]);
    assert_eq!(
        svc.endpoints[0].inbound,
        Some("127.0.0.1:15006".parse().unwrap())
    );
    // The proxy leaves; the listed pod stays, as listed.
    drop(proxy);
    let svc = next_service(&mut watcher).await;
    assert_eq!(names(&svc.endpoints), ["web-1"]);
    assert_eq!(svc.endpoints[0].inbound, None);
    cp.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_invalid_file_at_start_does_not_stop_the_control_plane() {
    let dir = new_dir("start");
    let cp = start(&dir).await;
    let status = debug_config(&cp).await["podsFile"].clone();
    let problem = status["error"]["problems"][0].as_str().unwrap();
    assert!(problem.contains("cannot read the pods file"), "{problem}");
    assert!(endpoints(&cp).is_empty());
    dir.write("pods.json", "[not json");
    eventually("the invalid file is reported", T, async || {
        debug_config(&cp).await["podsFile"]["error"]["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("pods.json:1:3: ") && p.ends_with("expected ident"))
    })
    .await;
    dir.write("pods.json", &pods(&[4]));
    eventually("the pods appear", T, async || {
        names(&endpoints(&cp)) == ["web-4"]
    })
    .await;
    cp.shutdown().await;
}

#[tokio::test]
async fn the_file_decides_which_pods_are_endpoints_however_many_proxies_announce() {
    let dir = new_dir("authority");
    dir.write("pods.json", &pods(&[1]));
    let cp = start(&dir).await;
    let mut watcher = connect(&cp, client_node()).await;
    assert_eq!(
        names(&next_service(&mut watcher).await.endpoints),
        ["web-1"]
    );
    // Both replicas' sidecars are up, but web-2's app is not ready: the runtime does not list it.
    let _web1 = connect(&cp, web_node(1)).await;
    let _web2 = connect(&cp, web_node(2)).await;
    eventually("web-1 carries its proxy's address", T, async || {
        endpoints(&cp)
            .first()
            .is_some_and(|e| e.inbound == Some("127.0.0.1:15001".parse().unwrap()))
    })
    .await;
    assert_eq!(names(&endpoints(&cp)), ["web-1"], "web-2 is announced only");

    // web-2's app is ready: listed, with the address its proxy announced.
    dir.write("pods.json", &pods(&[1, 2]));
    eventually("web-2 joins", T, async || {
        names(&endpoints(&cp)) == ["web-1", "web-2"]
    })
    .await;
    assert_eq!(
        endpoints(&cp)[1].inbound,
        Some("127.0.0.1:15002".parse().unwrap())
    );

    // web-1's app crashes; its sidecar stays connected, and it is no endpoint any more.
    dir.write("pods.json", &pods(&[2]));
    eventually("web-1 leaves", T, async || {
        names(&endpoints(&cp)) == ["web-2"]
    })
    .await;
    let svc = loop {
        let svc = next_service(&mut watcher).await;
        if names(&svc.endpoints) == ["web-2"] {
            break svc;
        }
    };
    assert_eq!(
        svc.endpoints[0].inbound,
        Some("127.0.0.1:15002".parse().unwrap())
    );
    cp.shutdown().await;
}

#[tokio::test]
async fn without_a_pods_file_announced_pods_are_the_endpoints() {
    let dir = new_dir("announced");
    let cp = common::start(common::config(&dir)).await;
    let web1 = connect(&cp, web_node(1)).await;
    let _web2 = connect(&cp, web_node(2)).await;
    eventually("both announced pods are endpoints", T, async || {
        names(&endpoints(&cp)) == ["web-1", "web-2"]
    })
    .await;
    drop(web1);
    eventually("web-1 leaves with its proxy", T, async || {
        names(&endpoints(&cp)) == ["web-2"]
    })
    .await;
    cp.shutdown().await;
}
