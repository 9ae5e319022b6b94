//! The sidecar role's wiring: binds the outbound (captured or explicit), inbound and mTLS
//! tunnel listeners, starts the [`Engine`] (discovery, certificate, admin, readiness,
//! metrics), and returns a [`Bound`] with every real address (tests bind port 0); the bound
//! proxy drains on shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::control::ControlPlane;
use crate::engine::{BindError, Engine, EngineConfig, Identity, bind, node};
use crate::shared::SetLogLevel;
use crate::tunnel::Credentials;

#[derive(Clone)]
pub struct Config {
    pub identity: Identity,
    /// The control plane: `https://HOST:15012` (mTLS) or `http://127.0.0.1:15010`.
    pub control_plane: ControlPlane,
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
    /// The mTLS tunnel listener; port 15008 by convention.
    pub tunnel: SocketAddr,
    /// The bootstrap token for the CA; with it the proxy gets (and rotates) a workload
    /// certificate, does mTLS, and is not ready until it holds one.
    pub bootstrap_token_file: Option<PathBuf>,
    /// A fixed certificate source instead (tests). Neither this nor a token: this proxy does
    /// no mTLS (it sends and accepts plaintext, whatever the mTLS mode says).
    pub credentials: Option<Arc<dyn Credentials>>,
    /// The socket mark of the proxy's own connections (0: none), which capture lets pass.
    pub mark: u32,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("identity", &self.identity)
            .field("control_plane", &self.control_plane)
            .field("outbound", &self.outbound)
            .field("inbound", &self.inbound)
            .finish_non_exhaustive()
    }
}

/// A running proxy.
#[derive(Debug)]
pub struct Bound {
    pub outbound: SocketAddr,
    pub inbound: SocketAddr,
    /// The mTLS tunnel listener; none when the proxy does no mTLS.
    pub tunnel: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub readiness: SocketAddr,
    pub metrics: SocketAddr,
    engine: Engine,
}

pub async fn build(cfg: Config) -> Result<Bound, BindError> {
    let outbound_l = bind("outbound", cfg.outbound).await?;
    let inbound_l = bind("inbound", cfg.inbound).await?;
    let outbound = outbound_l.local_addr().unwrap_or(cfg.outbound);
    let inbound = inbound_l.local_addr().unwrap_or(cfg.inbound);
    let mtls = cfg.credentials.is_some() || cfg.bootstrap_token_file.is_some();
    let tunnel_l = match mtls {
        true => Some(bind("tunnel", cfg.tunnel).await?),
        false => None,
    };
    let tunnel = tunnel_l.as_ref().and_then(|l| l.local_addr().ok());
    let id = &cfg.identity;
    // Peers dial these addresses in explicit mode: a wildcard bind is announced as the pod's
    // own address. With capture they are implied (the pod address, ports 15006 and 15008).
    let announce = |addr: Option<SocketAddr>| match (cfg.inbound_app, addr) {
        (Some(_), Some(a)) => {
            let ip = if a.ip().is_unspecified() {
                id.ip
            } else {
                a.ip()
            };
            SocketAddr::new(ip, a.port()).to_string()
        }
        _ => String::new(),
    };
    let mut engine = Engine::start(EngineConfig {
        node: node(id, "sidecar", announce(Some(inbound)), announce(tunnel)),
        control_plane: cfg.control_plane.clone(),
        admin: cfg.admin,
        readiness: cfg.readiness,
        metrics: cfg.metrics,
        set_log_level: cfg.set_log_level.clone(),
        log_level: cfg.log_level.clone(),
        gateway: None,
        credentials: cfg.credentials.clone(),
        bootstrap_token_file: cfg.bootstrap_token_file.clone(),
        mark: cfg.mark,
    })
    .await?;
    let shared = engine.shared.clone();
    if let (Some(l), Some(creds)) = (tunnel_l, shared.credentials.clone()) {
        engine.tasks.spawn(crate::inbound::run_tunnel(
            l,
            creds,
            shared.clone(),
            cfg.inbound_app,
        ));
    }
    engine.tasks.spawn(crate::outbound::run(
        outbound_l,
        shared.clone(),
        cfg.outbound_target,
    ));
    engine.tasks.spawn(crate::inbound::run(
        inbound_l,
        shared.clone(),
        cfg.inbound_app,
    ));
    let (admin, readiness, metrics) = (engine.admin, engine.readiness, engine.metrics);
    tracing::info!(%outbound, %inbound, ?tunnel, %admin, %readiness, "proxy listening");
    Ok(Bound {
        outbound,
        inbound,
        tunnel,
        admin,
        readiness,
        metrics,
        engine,
    })
}

impl std::ops::Deref for Bound {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

impl Bound {
    /// Stops accepting, lets in-flight requests finish for up to the drain duration (from the
    /// proxy's settings unless `deadline` is given), then stops everything.
    pub async fn drain(self, deadline: Option<Duration>) {
        self.engine.drain(deadline).await
    }
}
