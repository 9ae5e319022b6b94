//! What the control plane's integration tests share: a shop config, a temporary directory
//! laid out as `config/` (watched) beside `state/` (the CA's root), a control plane on port 0
//! over it, and GETs on its admin API.

#![allow(dead_code)]

use weft_test_support::dir::TempDir;
use weft_test_support::http::{self, Reply};

/// One Workload `shop/web` with a named port, and its Service.
pub const SHOP: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  command: [web]
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#;

/// A new temporary directory with `config/mesh.yaml` holding `mesh`.
pub fn config_dir(name: &str, mesh: &str) -> TempDir {
    let dir = TempDir::new(name);
    dir.write("config/mesh.yaml", mesh);
    dir
}

/// A control plane on loopback port 0 over `dir/config`, its CA state in `dir/state`.
pub fn config(dir: &TempDir) -> weft_control::Config {
    weft_control::Config::loopback(dir.join("config"), dir.join("state"))
}

/// Starts a control plane with `cfg`; panics if it does not.
pub async fn start(cfg: weft_control::Config) -> weft_control::Bound {
    weft_control::build(cfg)
        .await
        .expect("control plane starts")
}

/// GET `path` on the control plane's admin API.
pub async fn admin(cp: &weft_control::Bound, path: &str) -> Reply {
    http::get(cp.admin, "admin", path).await
}

/// The value of one sample on the admin API's `/metrics`.
pub async fn metric(cp: &weft_control::Bound, sample: &str) -> u64 {
    let text = admin(cp, "/metrics").await.body;
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
}
