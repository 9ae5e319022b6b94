//! Wiring: bind the listeners, start discovery, serve admin and readiness; `Bound` holds the
//! real addresses (tests bind port 0) and drains on shutdown.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use weft_core::identity::SpiffeId;
use weft_proto::discovery::Node;

use crate::access_log::AccessLog;
use crate::certs;
use crate::drain::{self, Drain, Trigger};
use crate::pool::Pool;
use crate::state::Store;
use crate::xds;

/// Changes the process's log level (`POST /logging?level=`).
pub type SetLogLevel = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Who this proxy serves.
#[derive(Debug, Clone)]
pub struct Identity {
    pub id: String,
    pub namespace: String,
    pub workload: String,
    pub pod: String,
    pub ip: IpAddr,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone)]
pub struct Config {
    pub identity: Identity,
    /// Discovery endpoint, e.g. `http://127.0.0.1:15010`.
    pub control_plane: String,
    pub outbound: SocketAddr,
    pub inbound: SocketAddr,
    pub admin: SocketAddr,
    pub readiness: SocketAddr,
    /// Prometheus `/metrics`; port 15020 by convention.
    pub metrics: SocketAddr,
    /// Explicit mode: every outbound connection goes to this destination (no capture).
    pub outbound_target: Option<SocketAddr>,
    /// Explicit mode: inbound traffic goes to this app address, and peers are told to reach
    /// this proxy at its inbound listener.
    pub inbound_app: Option<SocketAddr>,
    pub set_log_level: Option<SetLogLevel>,
    pub log_level: String,
    /// The bootstrap token for the CA; with it the proxy gets a workload certificate and is
    /// not ready until it has one. None: no certificate.
    pub bootstrap_token_file: Option<PathBuf>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("identity", &self.identity)
            .field("control_plane", &self.control_plane)
            .field("outbound", &self.outbound)
            .field("inbound", &self.inbound)
            .field("bootstrap_token_file", &self.bootstrap_token_file)
            .finish_non_exhaustive()
    }
}

/// State every connection shares.
pub struct Shared {
    pub store: Arc<Store>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub pool: Pool,
    pub drain: Drain,
    pub status: watch::Receiver<xds::Status>,
    pub set_log_level: Option<SetLogLevel>,
    pub log_level: Mutex<String>,
    /// The workload certificate, when a bootstrap token is configured.
    pub certs: Option<Arc<certs::Source>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    pub fn log(&self) -> AccessLog {
        let enabled = self
            .store
            .proxy_config()
            .is_none_or(|p| p.settings.access_log);
        AccessLog {
            enabled,
            metrics: self.metrics.clone(),
        }
    }

    /// Completes an HTTP request: the error (if any) becomes its response, and the record gets
    /// status and duration and is logged and counted.
    pub fn finish(
        &self,
        mut record: crate::access_log::Record,
        start: std::time::Instant,
        result: Result<http::Response<crate::body::Body>, crate::error::ProxyError>,
    ) -> http::Response<crate::body::Body> {
        let res = match result {
            Ok(r) => r,
            Err(e) => {
                record.error = Some(e.stage());
                e.into_response()
            }
        };
        record.status = Some(res.status().as_u16());
        record.finish(start.elapsed());
        self.log().write(&record);
        res
    }

    /// None when ready; else why not.
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.drain.is_draining() {
            return Some("draining".into());
        }
        let mut missing = Vec::new();
        {
            let s = self.status.borrow();
            if !s.configured {
                missing.push(match &s.last_error {
                    Some(e) => format!("waiting for first config from the control plane: {e}"),
                    None => "waiting for first config from the control plane".into(),
                });
            }
        }
        if let Some(why) = self.certs.as_ref().and_then(|c| c.not_ready_reason()) {
            missing.push(why);
        }
        (!missing.is_empty()).then(|| missing.join("; "))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({what}): {source}")]
pub struct BindError {
    what: &'static str,
    addr: SocketAddr,
    source: std::io::Error,
}

/// A running proxy.
#[derive(Debug)]
pub struct Bound {
    pub outbound: SocketAddr,
    pub inbound: SocketAddr,
    pub admin: SocketAddr,
    pub readiness: SocketAddr,
    pub metrics: SocketAddr,
    pub shared: Arc<Shared>,
    trigger: Trigger,
    tasks: JoinSet<()>,
}

pub async fn build(cfg: Config) -> Result<Bound, BindError> {
    let bind = |what, addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { what, addr, source })
    };
    let outbound_l = bind("outbound", cfg.outbound).await?;
    let inbound_l = bind("inbound", cfg.inbound).await?;
    let admin_l = bind("admin", cfg.admin).await?;
    let ready_l = bind("readiness", cfg.readiness).await?;
    let metrics_l = bind("metrics", cfg.metrics).await?;
    let metrics = metrics_l.local_addr().unwrap_or(cfg.metrics);
    let addr = |l: &TcpListener, d| l.local_addr().unwrap_or(d);
    let (outbound, inbound, admin, readiness) = (
        addr(&outbound_l, cfg.outbound),
        addr(&inbound_l, cfg.inbound),
        addr(&admin_l, cfg.admin),
        addr(&ready_l, cfg.readiness),
    );

    let (store, subscriptions) = Store::new();
    let (status_tx, status_rx) = watch::channel(xds::Status::default());
    let (trigger, drain) = drain::new();
    let shared = Arc::new(Shared {
        store: store.clone(),
        metrics: Arc::default(),
        pool: Pool::default(),
        drain,
        status: status_rx,
        set_log_level: cfg.set_log_level.clone(),
        log_level: Mutex::new(cfg.log_level.clone()),
        certs: cfg
            .bootstrap_token_file
            .as_ref()
            .map(|_| certs::Source::new()),
    });
    let id = &cfg.identity;
    let node = Node {
        id: id.id.clone(),
        role: "sidecar".into(),
        namespace: id.namespace.clone(),
        workload: id.workload.clone(),
        pod: id.pod.clone(),
        ip: id.ip.to_string(),
        service_account: id.service_account.clone(),
        labels: id.labels.clone().into_iter().collect(),
        revision: String::new(),
        // Peers dial this address: a wildcard bind is announced as the pod's own address.
        inbound_address: if cfg.inbound_app.is_some() {
            let ip = if inbound.ip().is_unspecified() {
                id.ip
            } else {
                inbound.ip()
            };
            SocketAddr::new(ip, inbound.port()).to_string()
        } else {
            String::new()
        },
    };
    let mut tasks = JoinSet::new();
    if let (Some(source), Some(token_file)) = (&shared.certs, &cfg.bootstrap_token_file) {
        let certs_cfg = certs::Config {
            control_plane: cfg.control_plane.clone(),
            token_file: token_file.clone(),
            ttl: None,
        };
        match certs::GrpcIssuer::new(&certs_cfg) {
            Ok(issuer) => {
                let (id_tx, id_rx) = watch::channel(None);
                tasks.spawn(identity_of(store.proxy(), id_tx));
                tasks.spawn(certs::run(source.clone(), issuer, None, id_rx));
            }
            Err(e) => {
                tracing::error!("no workload certificate: {e}");
                source.fail(e);
            }
        }
    }
    tasks.spawn(xds::run(
        cfg.control_plane.clone(),
        node,
        store,
        subscriptions,
        status_tx,
    ));
    tasks.spawn(crate::outbound::run(
        outbound_l,
        shared.clone(),
        cfg.outbound_target,
    ));
    tasks.spawn(crate::inbound::run(
        inbound_l,
        shared.clone(),
        cfg.inbound_app,
    ));
    for (l, readiness_only) in [(admin_l, false), (ready_l, true), (metrics_l, true)] {
        let shared = shared.clone();
        tasks.spawn(async move {
            loop {
                let Ok((stream, _)) = l.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let sh = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        crate::admin::handle(sh.clone(), readiness_only, req)
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    }
    tracing::info!(%outbound, %inbound, %admin, %readiness, "proxy listening");
    Ok(Bound {
        outbound,
        inbound,
        admin,
        readiness,
        metrics,
        shared,
        trigger,
        tasks,
    })
}

/// Follows the SPIFFE ID the control plane gives this proxy in its config.
async fn identity_of(
    mut proxy: watch::Receiver<Option<Arc<weft_core::model::ProxyConfig>>>,
    tx: watch::Sender<Option<SpiffeId>>,
) {
    loop {
        let id = proxy.borrow_and_update().as_ref().and_then(|p| {
            SpiffeId::parse(&p.identity)
                .inspect_err(|e| tracing::error!("no workload certificate for this identity: {e}"))
                .ok()
        });
        tx.send_if_modified(|cur| {
            let changed = *cur != id;
            *cur = id;
            changed
        });
        if proxy.changed().await.is_err() {
            return;
        }
    }
}

impl Bound {
    /// Waits until ready (first config applied and, with a bootstrap token, the first
    /// workload certificate held), or `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let mut status = self.shared.status.clone();
        let certs = self.shared.certs.as_ref().map(|c| c.ready());
        tokio::time::timeout(timeout, async move {
            status.wait_for(|s| s.configured).await.is_ok()
                && match certs {
                    Some(mut ready) => ready.wait_for(|r| *r).await.is_ok(),
                    None => true,
                }
        })
        .await
        .unwrap_or(false)
    }

    /// Stops accepting, lets in-flight requests finish for up to the drain duration (from the
    /// proxy's settings unless `deadline` is given), then stops everything.
    pub async fn drain(mut self, deadline: Option<Duration>) {
        let deadline = deadline.unwrap_or_else(|| {
            self.shared
                .store
                .proxy_config()
                .map_or(Duration::from_secs(5), |p| {
                    p.settings.drain_duration.as_std()
                })
        });
        let left = self.trigger.drain(deadline).await;
        if left > 0 {
            tracing::warn!(
                open = left,
                "drain deadline reached with connections still open"
            );
        } else {
            tracing::info!("drained");
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}
