//! The sidecar role's wiring: binds the outbound (captured or explicit), inbound and mTLS
//! tunnel listeners, starts the [`Engine`] (discovery, certificate, admin, readiness,
//! metrics), and returns a [`Bound`] with every real address (tests bind port 0); the bound
//! proxy drains on shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use crate::engine::{BindError, Engine, EngineConfig, Identity, Settings, bind, node};

#[derive(Clone)]
pub struct Config {
    pub identity: Identity,
    /// Discovery, certificate, admin, readiness, metrics: as for every role.
    pub engine: Settings,
    pub outbound: SocketAddr,
    pub inbound: SocketAddr,
    /// Explicit mode: every outbound connection goes to this destination (no capture).
    pub outbound_target: Option<SocketAddr>,
    /// Explicit mode: inbound traffic goes to this app address, and peers are told to reach
    /// this proxy at its inbound listener.
    pub inbound_app: Option<SocketAddr>,
    /// The mTLS tunnel listener; port 15008 by convention.
    pub tunnel: SocketAddr,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("identity", &self.identity)
            .field("engine", &self.engine)
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
    let mtls = cfg.engine.credentials.is_some() || cfg.engine.bootstrap_token_file.is_some();
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
        gateway: None,
        settings: cfg.engine.clone(),
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
    tracing::info!(
        %outbound,
        %inbound,
        tunnel = tunnel.map(tracing::field::display),
        %admin,
        %readiness,
        %metrics,
        "proxy listening"
    );
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
