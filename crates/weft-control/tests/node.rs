//! A node proxy's discovery stream (ambient mode): it gets the proxy configuration of exactly
//! the pods on its node in ambient mode, follows enrolment as labels change (a pod that leaves
//! ambient mode is removed from it), and never the configuration of a pod on another node or
//! of a pod with its own sidecar. Ambient pods are reached over the tunnel like sidecar pods.

use std::collections::BTreeSet;
use std::time::Duration;

use weft_core::model::{PROXY_TYPE, SERVICE_TYPE, ServiceConfig};
use weft_proto::discovery::{DeltaRequest, DeltaResponse, Node};
use weft_test_support::dir::TempDir;

mod common;
use common::{Stream, config_dir};

const T: Duration = Duration::from_secs(10);

/// `web` enrolled in ambient mode by its Workload's label, `db` with a sidecar.
fn mesh(web_mode: &str, db_mode: &str) -> String {
    format!(
        r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: web, namespace: shop, labels: {{app: web, weft.dev/dataplane-mode: {web_mode}}}}}
spec:
  command: [web]
  ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: db, namespace: shop, labels: {{app: db, weft.dev/dataplane-mode: {db_mode}}}}}
spec:
  command: [db]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"#
    )
}

fn pod(name: &str, workload: &str, ip: &str, node: &str) -> String {
    format!(
        r#"{{"id": "{name}.shop", "namespace": "shop", "workload": "{workload}", "name": "{name}", "ip": "{ip}", "serviceAccount": "{workload}", "node": "{node}"}}"#
    )
}

async fn start(name: &str, mesh: &str) -> (TempDir, weft_control::Bound) {
    let dir = config_dir(&format!("node-{name}"), mesh);
    let pods = [
        pod("web-0", "web", "198.18.0.10", "node-a"),
        pod("web-1", "web", "198.18.0.11", "node-b"),
        pod("db-0", "db", "198.18.0.12", "node-a"),
    ];
    dir.write("pods.json", &format!("{{\"pods\": [{}]}}", pods.join(", ")));
    let cp = common::start(weft_control::Config {
        pods_file: Some(dir.join("pods.json")),
        ..common::config(&dir)
    })
    .await;
    (dir, cp)
}

/// The node proxy of node `node`, asking for the configs of every pod of the test.
async fn node_proxy(cp: &weft_control::Bound, node: &str) -> Stream {
    let first = DeltaRequest {
        node: Some(Node {
            id: format!("{node}.weft-system"),
            protocol_version: weft_proto::PROTOCOL_VERSION,
            role: "node".into(),
            namespace: "weft-system".into(),
            pod: node.into(),
            service_account: "weft-node".into(),
            ..Default::default()
        }),
        type_url: PROXY_TYPE.into(),
        subscribe: vec!["web-0.shop".into(), "web-1.shop".into(), "db-0.shop".into()],
        ..Default::default()
    };
    Stream::open(cp, first).await
}

/// What a node proxy holds after each response: the names it was sent, less those removed.
#[derive(Default)]
struct Held(BTreeSet<String>);

impl Held {
    fn apply(&mut self, resp: &DeltaResponse) {
        for r in &resp.resources {
            self.0.insert(r.name.clone());
        }
        for name in &resp.removed {
            self.0.remove(name);
        }
    }

    fn names(&self) -> Vec<&str> {
        self.0.iter().map(String::as_str).collect()
    }
}

/// Reads (and ACKs) until the node proxy holds exactly `want`.
async fn until_holds(s: &mut Stream, held: &mut Held, want: &[&str]) {
    tokio::time::timeout(T, async {
        while held.names() != want {
            let resp = s.next().await;
            s.reply(&resp, None).await;
            held.apply(&resp);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("holds {:?}, expected {want:?}", held.names()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_proxy_gets_the_configs_of_its_nodes_ambient_pods_only() {
    let (_dir, cp) = start("only", &mesh("ambient", "sidecar")).await;
    let mut a = node_proxy(&cp, "node-a").await;
    let first = a.next().await;
    a.reply(&first, None).await;
    // web-0 is ambient on node-a; web-1 is on node-b; db-0 has its own sidecar.
    let sent: Vec<&str> = first.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(sent, ["web-0.shop"]);
    let mut removed = first.removed.clone();
    removed.sort();
    assert_eq!(
        removed,
        ["db-0.shop", "web-1.shop"],
        "told what it cannot have"
    );
    let config: weft_core::model::ProxyConfig =
        serde_json::from_slice(&first.resources[0].body).unwrap();
    assert_eq!(config.identity, "spiffe://cluster.local/ns/shop/sa/web");
    let mut b = node_proxy(&cp, "node-b").await;
    let first = b.next().await;
    let sent: Vec<&str> = first.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(sent, ["web-1.shop"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relabelling_a_workload_enrols_and_releases_its_pods() {
    let (dir, cp) = start("relabel", &mesh("ambient", "sidecar")).await;
    let mut a = node_proxy(&cp, "node-a").await;
    let mut held = Held::default();
    until_holds(&mut a, &mut held, &["web-0.shop"]).await;
    // db moves to ambient: node-a now serves db-0 too.
    dir.write("config/mesh.yaml", &mesh("ambient", "ambient"));
    until_holds(&mut a, &mut held, &["db-0.shop", "web-0.shop"]).await;
    // web opts out: its pod is released (removed), db-0 stays.
    dir.write("config/mesh.yaml", &mesh("none", "ambient"));
    until_holds(&mut a, &mut held, &["db-0.shop"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambient_pods_are_reached_over_the_tunnel() {
    let (_dir, cp) = start("tunnel", &mesh("ambient", "sidecar")).await;
    let mut s = Stream::open(
        &cp,
        DeltaRequest {
            node: Some(Node {
                id: "tool.shop".into(),
                role: "sidecar".into(),
                namespace: "shop".into(),
                protocol_version: weft_proto::PROTOCOL_VERSION,
                ..Default::default()
            }),
            type_url: SERVICE_TYPE.into(),
            subscribe: vec!["shop/web".into()],
            ..Default::default()
        },
    )
    .await;
    let resp = s.next().await;
    let svc: ServiceConfig = serde_json::from_slice(&resp.resources[0].body).unwrap();
    let tunnels: Vec<String> = svc
        .endpoints
        .iter()
        .map(|e| e.tunnel.map(|t| t.to_string()).unwrap_or_default())
        .collect();
    assert_eq!(tunnels, ["198.18.0.10:15008", "198.18.0.11:15008"]);
}
