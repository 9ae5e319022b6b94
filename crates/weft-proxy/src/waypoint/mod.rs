//! The waypoint role (ambient mode's L7): one mTLS tunnel listener. Clients (node proxies,
//! sidecars, the ingress gateway) send it the traffic of the Services and pods that use it,
//! each tunnel stream naming the original destination. The waypoint does what a sidecar's L7
//! does for that destination — the Service's routes, retries and timeouts, AuthorizationPolicies
//! attached to it with `targetRefs` (with the client's identity from its certificate) — and
//! sends it on to the destination's tunnel with its own identity, which is the only one the
//! destination admits for that traffic. Access log and metrics report direction `waypoint`.
//!
//! [`client`] is the other side: how any proxy sends through a waypoint.

use std::net::SocketAddr;
use std::time::Duration;

use crate::engine::{BindError, Engine, EngineConfig, Identity, Settings, bind, node};

pub(crate) mod client;
mod serve;

/// The role a waypoint announces.
pub const ROLE: &str = "waypoint";

#[derive(Clone)]
pub struct Config {
    /// Who the waypoint is: its pod, registered with the label
    /// `gateway.networking.k8s.io/gateway-name: NAME` and service account NAME.
    pub identity: Identity,
    pub engine: Settings,
    /// The waypoint Gateway served, `<namespace>/<name>`.
    pub waypoint: String,
    /// The tunnel listener; port 15008 by convention.
    pub tunnel: SocketAddr,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("identity", &self.identity)
            .field("waypoint", &self.waypoint)
            .field("tunnel", &self.tunnel)
            .finish_non_exhaustive()
    }
}

/// A running waypoint.
#[derive(Debug)]
pub struct Bound {
    pub tunnel: SocketAddr,
    pub admin: SocketAddr,
    pub readiness: SocketAddr,
    pub metrics: SocketAddr,
    engine: Engine,
}

/// Why a waypoint cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(
        "a waypoint needs a workload certificate (--bootstrap-token-file): it serves mTLS only"
    )]
    NoCredentials,
}

pub async fn build(cfg: Config) -> Result<Bound, Error> {
    let listener = bind("waypoint tunnel", cfg.tunnel).await?;
    let tunnel = listener.local_addr().unwrap_or(cfg.tunnel);
    // A wildcard bind is implied (the pod's address, port 15008); a specific one is announced.
    let announced = match tunnel.ip().is_unspecified() {
        true => String::new(),
        false => tunnel.to_string(),
    };
    let mut engine = Engine::start(EngineConfig {
        node: node(&cfg.identity, ROLE, String::new(), announced),
        gateway: Some(cfg.waypoint.clone()),
        settings: cfg.engine.clone(),
    })
    .await?;
    let shared = engine.shared.clone();
    let creds = shared.credentials.clone().ok_or(Error::NoCredentials)?;
    let key = cfg.waypoint.as_str().into();
    engine
        .tasks
        .spawn(serve::run(listener, creds, shared.clone(), key));
    let (admin, readiness, metrics) = (engine.admin, engine.readiness, engine.metrics);
    tracing::info!(waypoint = %cfg.waypoint, %tunnel, %admin, %readiness, %metrics, "waypoint listening");
    Ok(Bound {
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
    /// Stops accepting, lets in-flight requests and connections finish for up to the drain
    /// duration (or `deadline`), then stops everything.
    pub async fn drain(self, deadline: Option<Duration>) {
        self.engine.drain(deadline).await
    }
}
