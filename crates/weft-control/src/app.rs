//! Wiring: load the configuration, the pods file and the CA, bind the discovery (and CA) and
//! admin listeners, start the watchers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use weft_proto::ca::CertificatesServer;
use weft_proto::discovery::discovery_server::DiscoveryServer;

use crate::ca::{self, Ca};
use crate::discovery;
use crate::state::State;
use crate::{listen, pods, source};

/// How to run the control plane.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of configuration, watched for changes.
    pub config_dir: PathBuf,
    /// Pods listed by the local runtime (`{"pods": [...]}`), watched for changes; once read,
    /// they and only they are endpoints, whether or not a proxy announced them. See
    /// [`crate::pods`].
    pub pods_file: Option<PathBuf>,
    /// Plaintext discovery and CA (gRPC) listen address, loopback only; port 15010 by
    /// convention. Claims made here stand as made: it is for tools and tests on this host.
    pub discovery_addr: SocketAddr,
    /// The mTLS discovery and CA listen address for proxies; port 15012 by convention.
    pub secure_discovery_addr: Option<SocketAddr>,
    /// Admin/debug HTTP listen address; port 15014 by convention.
    pub admin_addr: SocketAddr,
    /// After a (re)start, how long to collect reconnecting proxies before answering, so no
    /// proxy is sent a view of the mesh in which its peers' endpoints are missing.
    pub warmup: std::time::Duration,
    /// How long a push may wait for a proxy to read its discovery stream; a proxy that reads
    /// nothing for longer is disconnected (it reconnects and is sent the current state), so a
    /// stuck proxy holds a bounded buffer, never a growing one.
    pub send_timeout: std::time::Duration,
    /// The certificate authority: state dir, signing CA, bootstrap credentials, TTL.
    pub ca: ca::Config,
    /// The revision's mesh settings (`--set key=value`), applied over the Mesh of every
    /// configuration read.
    pub mesh_sets: Vec<weft_core::resources::mesh_set::MeshSet>,
    /// The revision this control plane serves (several run side by side during an upgrade):
    /// a proxy that declares another is refused and told which control plane is its own. None:
    /// proxies of every revision are served.
    pub revision: Option<String>,
    /// Where to append the control plane's events as JSON lines ([`crate::events`]); `weft up`
    /// gives every control plane its mesh's file. None: none are written.
    pub events_file: Option<PathBuf>,
}

impl Config {
    /// A control plane for one process to embed (tests, benchmarks): every listener on
    /// 127.0.0.1 port 0 (the real addresses are in [`Bound`]), no mTLS port, no pods file, no
    /// warm-up, and the CA's defaults with its root kept in `state_dir`.
    pub fn loopback(config_dir: PathBuf, state_dir: PathBuf) -> Config {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Config {
            config_dir,
            pods_file: None,
            discovery_addr: any,
            secure_discovery_addr: None,
            admin_addr: any,
            warmup: std::time::Duration::ZERO,
            send_timeout: crate::discovery::SEND_TIMEOUT,
            ca: ca::Config::new(state_dir),
            mesh_sets: Vec::new(),
            revision: None,
            events_file: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration in {dir} is invalid:\n{}", problems.join("\n"))]
    InvalidConfig { dir: String, problems: Vec<String> },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Insecure(#[from] listen::plain::Error),
    #[error("the CA cannot start: {0}")]
    Ca(#[from] ca::Error),
}

/// A running control plane with its real listen addresses.
#[derive(Debug)]
pub struct Bound {
    pub discovery: SocketAddr,
    /// The mTLS discovery address, when one was asked for.
    pub secure_discovery: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub state: Arc<State>,
    pub ca: Arc<Ca>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Bound {
    /// Stops accepting, closes streams, and waits for the tasks.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.state.stopping.send_replace(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs until ctrl-c / SIGTERM.
    pub async fn wait(self) {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

pub async fn build(cfg: Config) -> Result<Bound, Error> {
    listen::plain::check(cfg.discovery_addr)?;
    let dir = cfg.config_dir.clone();
    // State::new analyzes it again for the status: once, at start.
    let sets = cfg.mesh_sets.clone();
    let (config, _) = tokio::task::spawn_blocking(move || source::load(&dir, &sets))
        .await
        .unwrap_or_else(|e| Err(vec![e.to_string()]))
        .map_err(|problems| Error::InvalidConfig {
            dir: cfg.config_dir.display().to_string(),
            problems,
        })?;
    let state = State::new(config, cfg.warmup);
    if let Some(path) = &cfg.events_file {
        state.events.to_file(path.clone(), cfg.revision.as_deref());
    }
    source::log_warnings(&state);
    // Before serving, so the first answers already count the listed pods.
    let pods_seen = match &cfg.pods_file {
        Some(path) => {
            let (p, st) = (path.clone(), state.clone());
            let seen = tokio::task::spawn_blocking(move || pods::load(&p, &st))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            Some((path.clone(), seen))
        }
        None => None,
    };
    let ca_cfg = cfg.ca.clone();
    let (snapshot, ca_metrics) = (state.snapshot(), state.metrics.ca.clone());
    let ca = tokio::task::spawn_blocking(move || Ca::new(&ca_cfg, snapshot, ca_metrics))
        .await
        .map_err(|e| ca::Error::Config(format!("CA start failed: {e}")))??;
    let bind = |what, addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { what, addr, source })
    };
    let discovery_listener = bind("discovery", cfg.discovery_addr).await?;
    let secure_listener = match cfg.secure_discovery_addr {
        Some(addr) => Some(bind("discovery (mTLS)", addr).await?),
        None => None,
    };
    let secure_discovery = secure_listener.as_ref().and_then(|l| l.local_addr().ok());
    let admin_listener = bind("admin", cfg.admin_addr).await?;
    let discovery = discovery_listener
        .local_addr()
        .unwrap_or(cfg.discovery_addr);
    let admin = admin_listener.local_addr().unwrap_or(cfg.admin_addr);
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    tasks.spawn(source::watch(
        cfg.config_dir.clone(),
        state.clone(),
        cfg.mesh_sets.clone(),
    ));
    if let Some((path, seen)) = pods_seen {
        tasks.spawn(pods::watch(path, state.clone(), seen));
    }
    if let Some(bootstrap) = ca.bootstrap() {
        tasks.spawn(bootstrap.watch());
    }
    tasks.spawn(ca::expiry::watch(
        ca.clone(),
        state.metrics.ca.overdue.clone(),
    ));

    let about = Arc::new(crate::status::About::new(cfg.revision.clone()));
    let svc = discovery::Server::new(
        state.clone(),
        ca.clone(),
        cfg.send_timeout,
        cfg.revision.clone(),
    );
    let ca_svc = ca::Server::new(ca.clone());
    let plain = listen::plain::incoming(discovery_listener);
    tasks.spawn(serve_grpc(
        svc.clone(),
        ca_svc.clone(),
        plain,
        stop_rx.clone(),
    ));
    if let Some(l) = secure_listener {
        let secure = listen::tls::incoming(l, ca.clone(), state.clone());
        tasks.spawn(serve_grpc(svc, ca_svc, secure, stop_rx.clone()));
    }

    let admin_state = state.clone();
    let admin_ca = ca.clone();
    let admin_about = about.clone();
    tasks.spawn(async move {
        loop {
            let Ok((stream, _)) = admin_listener.accept().await else {
                continue;
            };
            let (st, ca, about) = (admin_state.clone(), admin_ca.clone(), admin_about.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    crate::admin::handle(st.clone(), ca.clone(), about.clone(), req)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });

    tracing::info!(
        %discovery,
        secure_discovery = secure_discovery.map(tracing::field::display),
        %admin,
        revision = about.revision.as_deref(),
        weft = about.weft_version,
        protocol = about.protocol_version,
        "control plane ready"
    );
    Ok(Bound {
        discovery,
        secure_discovery,
        admin,
        state,
        ca,
        stop,
        tasks,
    })
}

/// Serves discovery and the CA on one listener's connections until `stop`.
async fn serve_grpc<S, IO>(
    svc: DiscoveryServer<discovery::Server>,
    ca_svc: CertificatesServer<ca::Server>,
    incoming: S,
    mut stop: watch::Receiver<bool>,
) where
    S: futures_util::Stream<Item = std::io::Result<IO>> + Send + 'static,
    IO: tonic::transport::server::Connected
        + tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + Unpin
        + Send
        + 'static,
{
    // Keepalives find proxies that vanished without closing their connection.
    let result = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(5)))
        .add_service(svc)
        .add_service(ca_svc)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!("discovery server failed: {e}");
    }
}
