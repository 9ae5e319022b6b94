//! What the control plane's integration tests share: a shop config, a temporary directory
//! laid out as `config/` (watched) beside `state/` (the CA's root), a control plane on port 0
//! over it, discovery streams opened as a proxy would, and GETs on its admin API.

#![allow(dead_code)]

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use weft_core::model::{SERVICE_TYPE, ServiceConfig};
use weft_proto::discovery::discovery_client::DiscoveryClient;
use weft_proto::discovery::{DeltaRequest, DeltaResponse, ErrorDetail, Node};
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

/// The first request of sidecar `id` (`POD.shop`) of shop/web at `ip`, subscribed to shop/web.
pub fn sidecar(id: &str, ip: &str) -> DeltaRequest {
    DeltaRequest {
        node: Some(Node {
            id: id.into(),
            role: "sidecar".into(),
            namespace: "shop".into(),
            workload: "web".into(),
            pod: id.split('.').next().unwrap().into(),
            ip: ip.into(),
            service_account: "web".into(),
            protocol_version: weft_proto::PROTOCOL_VERSION,
            ..Default::default()
        }),
        type_url: SERVICE_TYPE.into(),
        subscribe: vec!["shop/web".into()],
        ..Default::default()
    }
}

/// shop/web as `resp` carries it, if it does.
pub fn service(resp: &DeltaResponse) -> Option<ServiceConfig> {
    let r = resp.resources.iter().find(|r| r.name == "shop/web")?;
    serde_json::from_slice(&r.body).ok()
}

/// A discovery stream as a proxy opens it: `first` is its first request (with the node).
#[derive(Debug)]
pub struct Stream {
    pub tx: mpsc::Sender<DeltaRequest>,
    pub rx: tonic::Streaming<DeltaResponse>,
}

impl Stream {
    pub async fn open(cp: &weft_control::Bound, first: DeltaRequest) -> Stream {
        let mut client = DiscoveryClient::connect(format!("http://{}", cp.discovery))
            .await
            .unwrap();
        let (tx, rx) = mpsc::channel(8);
        tx.send(first).await.unwrap();
        let rx = client
            .delta(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Stream { tx, rx }
    }

    /// The next response; panics if none comes within 5s or the stream ends.
    pub async fn next(&mut self) -> DeltaResponse {
        tokio::time::timeout(Duration::from_secs(5), self.rx.message())
            .await
            .expect("a response within 5s")
            .unwrap()
            .expect("stream open")
    }

    /// ACKs `resp`, or NACKs it with `error`.
    pub async fn reply(&self, resp: &DeltaResponse, error: Option<&str>) {
        self.tx
            .send(DeltaRequest {
                type_url: resp.type_url.clone(),
                response_nonce: resp.nonce.clone(),
                error_detail: error.map(|m| ErrorDetail { message: m.into() }),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}
