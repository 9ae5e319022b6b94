//! What every role runs besides its traffic listeners: discovery with the control plane, the
//! workload certificate, admin, readiness and metrics listeners, and the drain. A role's wiring
//! file (the sidecar's, the gateway's) binds its own listeners and starts an
//! [`Engine`] for the rest.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use weft_core::identity::SpiffeId;
use weft_core::model::GATEWAY_TYPE;
use weft_proto::discovery::Node;

use crate::access_log;
use crate::certs;
use crate::connect::Connector;
use crate::control::ControlPlane;
use crate::drain::{self, Trigger};
use crate::pool::{self, Pool};
use crate::shared::{SetLogLevel, Shared};
use crate::state::Store;
use crate::tunnel::{self, Credentials};
use crate::{balance, metrics, xds};

mod own;

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

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({what}): {source}")]
pub struct BindError {
    what: &'static str,
    addr: SocketAddr,
    source: std::io::Error,
}

pub(crate) async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { what, addr, source })
}

/// What every role runs besides its traffic listeners: discovery, admin, readiness, metrics,
/// and the drain.
/// Every role's `Bound` dereferences to its engine: readiness and the certificate are asked
/// the same way of any proxy.
#[derive(Debug)]
pub struct Engine {
    pub(crate) admin: SocketAddr,
    pub(crate) readiness: SocketAddr,
    pub(crate) metrics: SocketAddr,
    pub(crate) shared: Arc<Shared>,
    pub(crate) tasks: JoinSet<()>,
    /// `true` ends the discovery stream until it is `false` again: a node proxy handing over
    /// yields it to its successor ([`crate::handoff`]).
    pub(crate) discovery: Arc<watch::Sender<bool>>,
    trigger: Trigger,
}

/// What every role's engine is configured with, the same for the sidecar and the gateway.
#[derive(Clone)]
pub struct Settings {
    /// The control plane: `https://HOST:15012` (mTLS) or `http://127.0.0.1:15010`.
    pub control_plane: ControlPlane,
    /// Admin API; localhost only by convention (15000).
    pub admin: SocketAddr,
    /// `GET /healthz/ready`; port 15021 by convention.
    pub readiness: SocketAddr,
    /// Prometheus `/metrics`; port 15020 by convention.
    pub metrics: SocketAddr,
    pub set_log_level: Option<SetLogLevel>,
    pub log_level: String,
    /// The bootstrap token for the CA; with it the proxy gets (and rotates) a workload
    /// certificate, does mTLS, and is not ready until it holds one.
    pub bootstrap_token_file: Option<PathBuf>,
    /// A fixed certificate source instead (tests). Neither this nor a token: this proxy does
    /// no mTLS (it sends and accepts plaintext, whatever the mTLS mode says).
    pub credentials: Option<Arc<dyn Credentials>>,
    /// The socket mark of the proxy's own connections (0: none), which capture lets pass.
    pub mark: u32,
    /// The control-plane revision this proxy belongs to, sent in `Node.revision`: a control
    /// plane of another revision refuses it. None: any control plane serves it.
    pub revision: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("control_plane", &self.control_plane)
            .field("admin", &self.admin)
            .field("readiness", &self.readiness)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

/// What [`Engine::start`] needs.
pub(crate) struct EngineConfig {
    pub node: Node,
    /// Gateway role: the Gateway served (`ns/name`).
    pub gateway: Option<String>,
    pub settings: Settings,
}

/// The discovery node of a proxy of `role`, with the protocol and build it speaks (the
/// revision comes from [`Settings::revision`] when the engine starts).
pub(crate) fn node(
    id: &Identity,
    role: &str,
    inbound_address: String,
    tunnel_address: String,
) -> Node {
    Node {
        id: id.id.clone(),
        role: role.into(),
        namespace: id.namespace.clone(),
        workload: id.workload.clone(),
        pod: id.pod.clone(),
        ip: id.ip.to_string(),
        service_account: id.service_account.clone(),
        labels: id.labels.clone().into_iter().collect(),
        revision: String::new(),
        inbound_address,
        tunnel_address,
        protocol_version: weft_proto::PROTOCOL_VERSION,
        weft_version: weft_proto::WEFT_VERSION.into(),
    }
}

impl Engine {
    /// Binds admin, readiness and metrics and starts discovery.
    pub(crate) async fn start(cfg: EngineConfig) -> Result<Engine, BindError> {
        Engine::start_with(cfg, |_| {}, None).await
    }

    /// [`Engine::start`], with the role's own metric families registered by `register`, and
    /// its listeners taken from and offered through `handoff` (a node proxy's).
    pub(crate) async fn start_with(
        cfg: EngineConfig,
        register: impl FnOnce(&mut prometheus_client::registry::Registry),
        handoff: Option<&Arc<crate::handoff::Listeners>>,
    ) -> Result<Engine, BindError> {
        use crate::handoff::Kind;
        let admin_l = own::open(handoff, Kind::Admin, cfg.settings.admin).await?;
        let ready_l = own::open(handoff, Kind::Readiness, cfg.settings.readiness).await?;
        let metrics_l = own::open(handoff, Kind::Metrics, cfg.settings.metrics).await?;
        let addr = |l: &own::Own, d| l.local_addr().unwrap_or(d);
        let (admin, readiness, metrics) = (
            addr(&admin_l, cfg.settings.admin),
            addr(&ready_l, cfg.settings.readiness),
            addr(&metrics_l, cfg.settings.metrics),
        );
        // One registry per proxy; each module registers its families into its own part.
        let mut registry = metrics::registry();
        let request_metrics = Arc::new(metrics::Metrics::register(&mut registry));
        let pool_metrics = pool::Metrics::register(registry.sub_registry_with_prefix("pool"));
        let balance_metrics =
            balance::Metrics::register(registry.sub_registry_with_prefix("balance"));
        let xds_metrics = xds::Metrics::register(registry.sub_registry_with_prefix("xds"));
        let certs_metrics = certs::Metrics::register(registry.sub_registry_with_prefix("certs"));
        let trace_metrics =
            crate::trace::Metrics::register(registry.sub_registry_with_prefix("trace"));
        register(&mut registry);
        let connector = Connector::new(cfg.settings.mark);
        let mut cfg = cfg;
        cfg.settings.control_plane.connector = connector.clone();
        cfg.node.revision = cfg.settings.revision.clone().unwrap_or_default();
        let (store, subscriptions) = Store::with_metrics(balance_metrics);
        let (status_tx, status_rx) = watch::channel(xds::Status::default());
        let (trigger, drain) = drain::new();
        if let Some(gateway) = &cfg.gateway {
            store.want(GATEWAY_TYPE, gateway);
        }
        let mut tasks = JoinSet::new();
        let log_buffer = access_log::Buffer::stdout();
        let certs = cfg
            .settings
            .bootstrap_token_file
            .as_ref()
            .map(|token_file| {
                let source = certs::Source::with_metrics(certs_metrics);
                start_certs(&mut tasks, &source, &store, &cfg, token_file);
                source
            });
        let credentials = cfg
            .settings
            .credentials
            .or_else(|| certs.clone().map(|c| c as Arc<dyn Credentials>));
        if credentials.is_none() {
            tracing::warn!(
                "no workload certificate source (--bootstrap-token-file): this proxy does no mTLS, it sends and accepts plaintext"
            );
        }
        let trace = crate::trace::Tracer::new(connector.clone(), trace_metrics);
        let shared = Arc::new(Shared {
            proxy: store.proxy(),
            store: store.clone(),
            metrics: request_metrics,
            registry: Arc::new(registry),
            l4_only: false,
            log_buffer,
            tap: Arc::default(),
            connector: connector.clone(),
            pool: Pool::new(credentials.clone().map(|c| {
                let client = tunnel::Client::new(c).with_connector(connector.clone());
                Arc::new(client.with_workload(store.proxy()))
            }))
            .with(connector, pool_metrics),
            drain,
            status: status_rx,
            set_log_level: cfg.settings.set_log_level,
            log_level: Mutex::new(cfg.settings.log_level),
            gateway: cfg.gateway,
            credentials,
            certs,
            identity_ip: cfg.node.ip.parse().ok(),
            pods: std::sync::OnceLock::new(),
            trace,
            rate_limits: Default::default(),
        });
        let discovery = Arc::new(watch::Sender::new(false));
        tasks.spawn(xds::run(
            cfg.settings.control_plane,
            shared.certs.clone(),
            cfg.node,
            store,
            subscriptions,
            status_tx,
            xds_metrics,
            discovery.subscribe(),
        ));
        for (l, readiness_only) in [(admin_l, false), (ready_l, true), (metrics_l, true)] {
            l.spawn(&mut tasks, shared.clone(), readiness_only);
        }
        Ok(Engine {
            admin,
            readiness,
            metrics,
            shared,
            tasks,
            discovery,
            trigger,
        })
    }

    /// Waits until ready (first config applied; the certificate and, for a gateway, its
    /// Gateway received), or `timeout`.
    pub async fn ready(&self, timeout: Duration) -> bool {
        self.shared.wait_ready(timeout).await
    }

    /// Why the proxy is not ready, if it is not.
    pub fn not_ready_reason(&self) -> Option<String> {
        self.shared.not_ready_reason()
    }

    /// The workload certificate it holds, if it got one with a bootstrap token.
    pub fn certificate(&self) -> Option<certs::CertInfo> {
        self.shared.certs.as_ref().and_then(|c| c.info())
    }

    /// Stops accepting, lets in-flight requests finish for up to the drain duration (from the
    /// proxy's settings unless `deadline` is given), then stops everything.
    pub(crate) async fn drain(mut self, deadline: Option<Duration>) {
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
        self.shared.log_buffer.flush();
    }
}

/// Fetches and rotates the workload certificate, for the identity the control plane gives
/// this proxy in its config. Over mTLS discovery needs the certificate first, so the proxy
/// starts with the identity its namespace, service account and trust domain make.
fn start_certs(
    tasks: &mut JoinSet<()>,
    source: &Arc<certs::Source>,
    store: &Arc<Store>,
    core: &EngineConfig,
    token_file: &std::path::Path,
) {
    let cfg = certs::Config {
        control_plane: core.settings.control_plane.clone(),
        token_file: token_file.to_path_buf(),
        ttl: None,
    };
    let creds = source.clone() as Arc<dyn Credentials>;
    match certs::GrpcIssuer::new(&cfg, Some(creds)) {
        Ok(issuer) => {
            let first = core
                .settings
                .control_plane
                .trust_domain
                .as_ref()
                .and_then(|td| {
                    let sa = &core.node.service_account;
                    let sa = if sa.is_empty() { "default" } else { sa };
                    SpiffeId::parse(&format!("spiffe://{td}/ns/{}/sa/{sa}", core.node.namespace))
                        .inspect_err(|e| {
                            tracing::error!("no workload certificate for this identity: {e}")
                        })
                        .ok()
                });
            let (id_tx, id_rx) = watch::channel(first);
            tasks.spawn(identity_of(store.proxy(), id_tx));
            tasks.spawn(certs::run(source.clone(), issuer, None, id_rx));
        }
        Err(e) => {
            tracing::error!("no workload certificate: {e}");
            source.fail(&e);
        }
    }
}

/// Follows the SPIFFE ID the control plane gives this proxy in its config.
pub(crate) async fn identity_of(
    mut proxy: watch::Receiver<Option<Arc<weft_core::model::ProxyConfig>>>,
    tx: watch::Sender<Option<SpiffeId>>,
) {
    loop {
        let id = proxy.borrow_and_update().as_ref().and_then(|p| {
            SpiffeId::parse(&p.identity)
                .inspect_err(|e| tracing::error!("no workload certificate for this identity: {e}"))
                .ok()
        });
        // No config yet keeps the identity the proxy started with.
        if id.is_some() {
            tx.send_if_modified(|cur| {
                let changed = *cur != id;
                *cur = id;
                changed
            });
        }
        if proxy.changed().await.is_err() {
            return;
        }
    }
}
