//! A node proxy against a real control plane: it serves an enrolled ambient pod (listeners
//! opened inside the pod's network namespace, here the test's own), refuses an enrolled pod
//! that has its own sidecar, releases a pod that leaves ambient mode and serves it again when
//! it comes back, and closes a pod's listeners when the runtime drops it from the file.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_proxy::control::ControlPlane;
use weft_proxy::engine::Settings;
use weft_proxy::node::{self, PodState};
use weft_test_support::dir::TempDir;
use weft_test_support::wait::eventually;

const T: Duration = Duration::from_secs(20);

fn mesh(web_mode: &str) -> String {
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
metadata: {{name: db, namespace: shop, labels: {{app: db}}}}
spec:
  command: [db]
"#
    )
}

/// Answers every connection with `hello`.
async fn app() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"hello").await;
            });
        }
    });
    addr
}

fn enrolled(id: &str, app: SocketAddr) -> serde_json::Value {
    let (name, ns) = id.split_once('.').unwrap();
    serde_json::json!({
        "id": id, "namespace": ns, "name": name, "ip": "127.0.0.1",
        "netns": "/proc/self/ns/net",
        "outbound": "127.0.0.1:0", "inbound": "127.0.0.1:0", "tunnel": "127.0.0.1:0",
        "inboundApp": app, "outboundTarget": app,
    })
}

fn write_enrolled(dir: &TempDir, pods: &[serde_json::Value]) {
    let text = serde_json::json!({ "pods": pods }).to_string();
    // Through a rename, as the runtime writes it: never read half-written.
    let tmp = dir.write("enrolled.json.tmp", &text);
    std::fs::rename(tmp, dir.join("enrolled.json")).unwrap();
}

async fn served(n: &node::Bound, id: &str) -> node::PodListeners {
    eventually(&format!("{id} to be served"), T, async || {
        matches!(n.pod(id), Some(PodState::Served(_)))
    })
    .await;
    match n.pod(id) {
        Some(PodState::Served(l)) => l,
        other => panic!("{id}: {other:?}"),
    }
}

async fn read_from(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the node proxy enters a network namespace (setns)"]
async fn a_node_proxy_serves_its_ambient_pods_and_follows_enrolment() {
    let dir = TempDir::new("node-proxy");
    dir.write("config/mesh.yaml", &mesh("ambient"));
    let pod = |name: &str, workload: &str| {
        format!(
            r#"{{"id": "{name}.shop", "namespace": "shop", "workload": "{workload}", "name": "{name}", "ip": "127.0.0.1", "serviceAccount": "{workload}", "node": "node-a"}}"#
        )
    };
    dir.write(
        "pods.json",
        &format!(
            "{{\"pods\": [{}, {}]}}",
            pod("web-0", "web"),
            pod("db-0", "db")
        ),
    );
    let cp = weft_control::build(weft_control::Config {
        pods_file: Some(dir.join("pods.json")),
        ..weft_control::Config::loopback(dir.join("config"), dir.join("state"))
    })
    .await
    .unwrap();
    let app = app().await;
    write_enrolled(
        &dir,
        &[enrolled("web-0.shop", app), enrolled("db-0.shop", app)],
    );
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let n = node::build(node::Config {
        node: "node-a".into(),
        ip: "127.0.0.1".parse().unwrap(),
        engine: Settings {
            control_plane: ControlPlane::from(format!("http://{}", cp.discovery)),
            admin: any,
            readiness: any,
            metrics: any,
            set_log_level: None,
            log_level: "info".into(),
            bootstrap_token_file: None,
            credentials: None::<Arc<dyn weft_proxy::tunnel::Credentials>>,
            mark: 0,
        },
        pods_file: dir.join("enrolled.json"),
        handoff: None,
    })
    .await
    .unwrap();
    assert!(n.ready(T).await, "{:?}", n.not_ready_reason());

    // web-0 is ambient on node-a: its inbound listener leads to its app.
    let web = served(&n, "web-0.shop").await;
    assert_eq!(read_from(web.inbound).await.unwrap(), "hello");
    // db-0 has its own sidecar: the control plane does not give it to the node proxy.
    eventually("db-0 to be refused", T, async || {
        matches!(n.pod("db-0.shop"), Some(PodState::Refused(_)))
    })
    .await;

    // web leaves ambient mode: released, its listener closed; back in ambient: served again.
    dir.write("config/mesh.yaml", &mesh("sidecar"));
    eventually("web-0 to be released", T, async || {
        matches!(n.pod("web-0.shop"), Some(PodState::Refused(_)))
    })
    .await;
    eventually("web-0's listener to close", T, async || {
        read_from(web.inbound).await.is_err()
    })
    .await;
    dir.write("config/mesh.yaml", &mesh("ambient"));
    let web = served(&n, "web-0.shop").await;
    assert_eq!(read_from(web.inbound).await.unwrap(), "hello");

    // The runtime drops it from the file: no longer enrolled, its listener closed.
    write_enrolled(&dir, &[enrolled("db-0.shop", app)]);
    eventually("web-0 to be gone", T, async || {
        n.pod("web-0.shop").is_none()
    })
    .await;
    eventually("web-0's listener to close", T, async || {
        read_from(web.inbound).await.is_err()
    })
    .await;
}
