//! What the node-proxy tests share: a mesh with an ambient `web` workload and a `db` with its
//! own sidecar, a control plane over it with their pods registered on node-a, the node
//! proxy's configuration, the enrolment file the runtime writes, and waiting for a pod to be
//! served.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use weft_proxy::control::ControlPlane;
use weft_proxy::engine::Settings;
use weft_proxy::node::{self, PodState};
use weft_test_support::dir::TempDir;
use weft_test_support::wait::eventually;

pub const T: Duration = Duration::from_secs(20);

/// `web` (with `weft.dev/dataplane-mode: web_mode`) and `db` (sidecar).
pub fn mesh(web_mode: &str) -> String {
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

/// A control plane on loopback over `dir/config/mesh.yaml` (ambient `web`), with pods
/// `web-0` and `db-0` at `ip` registered on node-a.
pub async fn control_plane(dir: &TempDir, ip: IpAddr) -> weft_control::Bound {
    weft_control::build(control_plane_config(dir, ip))
        .await
        .unwrap()
}

/// The configuration of [`control_plane`], its files written.
pub fn control_plane_config(dir: &TempDir, ip: IpAddr) -> weft_control::Config {
    dir.write("config/mesh.yaml", &mesh("ambient"));
    let pod = |name: &str, workload: &str| {
        format!(
            r#"{{"id": "{name}.shop", "namespace": "shop", "workload": "{workload}", "name": "{name}", "ip": "{ip}", "serviceAccount": "{workload}", "node": "node-a"}}"#
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
    weft_control::Config {
        pods_file: Some(dir.join("pods.json")),
        ..weft_control::Config::loopback(dir.join("config"), dir.join("state"))
    }
}

/// The node proxy of node-a (at 127.0.0.1), plaintext discovery at `discovery`, every port 0,
/// its pods listed in `dir/enrolled.json`.
pub fn node_config(dir: &TempDir, discovery: &str) -> node::Config {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    node::Config {
        node: "node-a".into(),
        ip: "127.0.0.1".parse().unwrap(),
        engine: Settings {
            control_plane: ControlPlane::from(format!("http://{discovery}")),
            admin: any,
            readiness: any,
            metrics: any,
            set_log_level: None,
            log_level: "info".into(),
            bootstrap_token_file: None,
            credentials: None::<Arc<dyn weft_proxy::tunnel::Credentials>>,
            mark: 0,
            revision: None,
        },
        pods_file: dir.join("enrolled.json"),
        handoff: None,
    }
}

/// Pod `id` (`NAME.NAMESPACE`) at `ip` in the namespace `netns`, uncaptured: its listeners on
/// `ip` port 0, inbound traffic to `app`, every outbound connection to `app` too.
pub fn enrolled(id: &str, ip: IpAddr, netns: &str, app: SocketAddr) -> serde_json::Value {
    let (name, ns) = id.split_once('.').unwrap();
    let any = SocketAddr::new(ip, 0);
    serde_json::json!({
        "id": id, "namespace": ns, "name": name, "ip": ip,
        "netns": netns,
        "outbound": any, "inbound": any, "tunnel": any,
        "inboundApp": app, "outboundTarget": app,
    })
}

pub fn write_enrolled(dir: &TempDir, pods: &[serde_json::Value]) {
    let text = serde_json::json!({ "pods": pods }).to_string();
    // Through a rename, as the runtime writes it: never read half-written.
    let tmp = dir.write("enrolled.json.tmp", &text);
    std::fs::rename(tmp, dir.join("enrolled.json")).unwrap();
}

pub async fn served(n: &node::Bound, id: &str) -> node::PodListeners {
    eventually(&format!("{id} to be served"), T, async || match n.pod(id) {
        Some(PodState::Served(l)) => Ok(l),
        other => Err(format!("{other:?}")),
    })
    .await
}
