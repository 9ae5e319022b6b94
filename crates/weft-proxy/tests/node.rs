//! A node proxy against a real control plane: it serves an enrolled ambient pod (listeners
//! opened inside the pod's network namespace, here the test's own), refuses an enrolled pod
//! that has its own sidecar, releases a pod that leaves ambient mode and serves it again when
//! it comes back, and closes a pod's listeners when the runtime drops it from the file. Its
//! admin API lists the pods (`GET /pods`) with their state, identity and policies.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::{T, control_plane, control_plane_config, mesh, node_config, served, write_enrolled};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_proxy::node::{self, PodState};
use weft_test_support::dir::TempDir;
use weft_test_support::http;
use weft_test_support::wait::eventually;

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

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

/// Pod `id` in the test's own network namespace, on loopback.
fn enrolled(id: &str, app: SocketAddr) -> serde_json::Value {
    common::enrolled(id, LOOPBACK, "/proc/self/ns/net", app)
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
    let cp = control_plane(&dir, LOOPBACK).await;
    let app = app().await;
    write_enrolled(
        &dir,
        &[enrolled("web-0.shop", app), enrolled("db-0.shop", app)],
    );
    let n = node::build(node_config(&dir, &cp.discovery.to_string()))
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

/// A DENY policy on `web` that matches nothing the test sends.
const POLICY: &str = r#"
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: no-discard, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  action: DENY
  rules: [{to: [{operation: {ports: [9]}}]}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: the node proxy enters a network namespace (setns)"]
async fn a_node_proxys_admin_lists_its_pods_with_identity_policies_and_why_refused() {
    let dir = TempDir::new("node-pods");
    let cfg = control_plane_config(&dir, LOOPBACK);
    dir.write("config/mesh.yaml", &(mesh("ambient") + POLICY));
    let cp = weft_control::build(cfg).await.unwrap();
    let app = app().await;
    write_enrolled(
        &dir,
        &[enrolled("web-0.shop", app), enrolled("db-0.shop", app)],
    );
    let n = node::build(node_config(&dir, &cp.discovery.to_string()))
        .await
        .unwrap();
    let web = served(&n, "web-0.shop").await;
    eventually("db-0 to be refused", T, async || {
        matches!(n.pod("db-0.shop"), Some(PodState::Refused(_)))
    })
    .await;

    let reply = http::get(n.admin, "localhost", "/pods").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let pods: node::Pods = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(pods.node, "node-a");
    let [db, w] = &pods.pods[..] else {
        panic!("two pods: {pods:?}")
    };
    assert_eq!((w.id.as_str(), w.state.as_str()), ("web-0.shop", "served"));
    assert_eq!(w.listeners, Some(web));
    assert_eq!(w.netns, std::path::Path::new("/proc/self/ns/net"));
    let identity = w.identity.as_deref().unwrap_or_default();
    assert!(identity.ends_with("/ns/shop/sa/web"), "{w:?}");
    assert_eq!(w.mtls_mode.as_deref(), Some("STRICT"));
    assert_eq!(w.policies, ["shop/no-discard"]);
    assert!(w.waypoints.is_empty(), "{w:?}");
    // No bootstrap token here: no certificate, and it says why.
    assert!(w.certificate.is_none());
    assert!(
        w.no_certificate.as_deref().unwrap().contains("no mTLS"),
        "{w:?}"
    );

    // db-0 has its own sidecar: refused, with the reason, and no config of its own here.
    assert_eq!(
        (db.id.as_str(), db.state.as_str()),
        ("db-0.shop", "refused")
    );
    let reason = db.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("not in ambient mode"), "{db:?}");
    assert_eq!((db.identity.as_ref(), db.listeners), (None, None));

    let index = http::get(n.admin, "localhost", "/").await.body;
    assert!(index.contains("/pods"), "{index}");
}

/// Runs `ip ARGS`, panicking with its output when it fails.
fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

/// A named network namespace with its loopback up, removed again on drop.
struct NamedNetns(&'static str);

impl NamedNetns {
    fn add(name: &'static str) -> NamedNetns {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", name])
            .output();
        ip(&["netns", "add", name]);
        ip(&["-n", name, "link", "set", "lo", "up"]);
        NamedNetns(name)
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", self.0])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root: creates and deletes a network namespace"]
async fn a_pod_whose_namespace_disappears_is_released_and_counted_and_served_again_when_back() {
    const NS: &str = "weftt-nsgone";
    let dir = TempDir::new("node-nsgone");
    let cp = control_plane(&dir, LOOPBACK).await;
    let app = app().await;
    let pod_ns = NamedNetns::add(NS);
    let path = format!("/run/netns/{NS}");
    write_enrolled(
        &dir,
        &[
            common::enrolled("web-0.shop", LOOPBACK, &path, app),
            enrolled("db-0.shop", app),
        ],
    );
    let n = node::build(node_config(&dir, &cp.discovery.to_string()))
        .await
        .unwrap();
    served(&n, "web-0.shop").await;

    // The pod is deleted without being un-enrolled: the node proxy lets its namespace go.
    drop(pod_ns);
    eventually("web-0 released", T, async || match n.pod("web-0.shop") {
        Some(PodState::Refused(why)) if why.contains("is gone") => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    let metrics = http::get(n.metrics, "localhost", "/metrics").await.body;
    assert!(
        metrics.contains("weft_node_pods_netns_lost_total 1"),
        "{metrics}"
    );
    // Nothing else disturbed: db-0's state is what it was (refused: it has a sidecar).
    assert!(
        matches!(n.pod("db-0.shop"), Some(PodState::Refused(why)) if why.contains("not in ambient mode"))
    );

    // A namespace at the pod's path again: served again, listeners inside the new one.
    let _back = NamedNetns::add(NS);
    served(&n, "web-0.shop").await;
}
