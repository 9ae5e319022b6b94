//! The ingress gateway role: binds a host address for each listener of one Gateway (no capture,
//! no inbound or outbound listener) and routes every HTTP/1.1 or HTTP/2 request by the
//! Gateway's routes for that listener port to a backend Service, through the same request path
//! ([`crate::request`]) as outbound traffic (filters, balancing, retries, timeouts, `weft-error`, access log with
//! direction `gateway`, metrics). Ready once the Gateway has been received.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{self, BindError, Engine, EngineConfig, Identity, Settings};
use crate::request::{self, Routing};
use crate::serve;
use crate::shared::Shared;

/// How to run a gateway proxy.
#[derive(Clone)]
pub struct Config {
    /// Who the gateway is to the control plane; `ip` is the host address it connects from.
    pub identity: Identity,
    /// Discovery, certificate, admin, readiness, metrics: as for every role.
    pub engine: Settings,
    /// The Gateway served, `<namespace>/<name>`.
    pub gateway: String,
    /// Gateway listener port → host address to bind for it.
    pub listeners: BTreeMap<u16, SocketAddr>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("identity", &self.identity)
            .field("engine", &self.engine)
            .field("gateway", &self.gateway)
            .field("listeners", &self.listeners)
            .finish_non_exhaustive()
    }
}

/// A running gateway proxy.
#[derive(Debug)]
pub struct Bound {
    /// Gateway listener port → the address bound for it.
    pub listeners: BTreeMap<u16, SocketAddr>,
    pub admin: SocketAddr,
    pub readiness: SocketAddr,
    pub metrics: SocketAddr,
    engine: Engine,
}

pub async fn build(cfg: Config) -> Result<Bound, BindError> {
    let mut bound = Vec::new();
    for (port, addr) in &cfg.listeners {
        bound.push((*port, engine::bind("gateway listener", *addr).await?));
    }
    let mut engine = Engine::start(EngineConfig {
        node: engine::node(&cfg.identity, "gateway", String::new(), String::new()),
        gateway: Some(cfg.gateway.clone()),
        settings: cfg.engine.clone(),
    })
    .await?;
    let shared = engine.shared.clone();
    let key: Arc<str> = cfg.gateway.as_str().into();
    let mut listeners = BTreeMap::new();
    for (port, l) in bound {
        listeners.insert(port, l.local_addr().unwrap_or(cfg.listeners[&port]));
        engine
            .tasks
            .spawn(run(l, shared.clone(), Routing::Gateway(key.clone()), port));
    }
    // `PORT=ADDR` as `--listen` takes them: a string, not a map, so the line stays flat.
    let shown: Vec<String> = (listeners.iter())
        .map(|(port, addr)| format!("{port}={addr}"))
        .collect();
    tracing::info!(
        gateway = %cfg.gateway,
        listeners = %shown.join(" "),
        admin = %engine.admin,
        readiness = %engine.readiness,
        metrics = %engine.metrics,
        "gateway listening"
    );
    Ok(Bound {
        listeners,
        admin: engine.admin,
        readiness: engine.readiness,
        metrics: engine.metrics,
        engine,
    })
}

/// Serves HTTP on one listener; requests are matched against the routes for `port`.
async fn run(listener: tokio::net::TcpListener, shared: Arc<Shared>, routing: Routing, port: u16) {
    let drain = shared.drain.clone();
    serve::accept(listener, drain, "gateway", move |stream, peer| {
        let shared = shared.clone();
        let routing = routing.clone();
        async move {
            let drain = shared.drain.clone();
            serve::http(stream, drain, move |req| {
                let (shared, routing) = (shared.clone(), routing.clone());
                async move {
                    Ok::<_, Infallible>(
                        Box::pin(request::serve(shared, routing, port, peer, req)).await,
                    )
                }
            })
            .await;
        }
    })
    .await;
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
