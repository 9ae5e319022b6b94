//! The node proxy's wiring (ambient mode): one [`Engine`] for the node (discovery as role
//! `node`, admin, readiness, metrics, drain) and, for each pod the runtime on the node enrols,
//! the pod's outbound, inbound and tunnel listeners opened inside the pod's network namespace,
//! its own certificate, and the L4 path with the pod's configuration.
//!
//! The runtime lists the enrolled pods in a file (`{"pods": [Enrolled, ...]}`), re-read when
//! it changes. A pod is served once the control plane sends its configuration, which it does
//! only for a pod on this node in ambient mode; a pod it refuses or later removes (it left
//! ambient mode, or the node) gets no listeners, or loses them.
//! Its admin API lists the enrolled pods, each with its state, config and certificate
//! (`GET /pods`, [`Pods`]).
//!
//! With a hand-off path, a new node proxy takes the listeners of the one running and the old
//! one's connections finish there ([`crate::handoff`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;
use weft_core::identity::SpiffeId;

use crate::engine::{BindError, Engine, EngineConfig, Identity, Settings, node};
use crate::handoff::{self, Kind, Listeners};
use crate::netns::Netns;
use crate::pool::Pool;
use crate::shared::Shared;
use crate::tunnel::{self, Credentials};
use crate::{certs, inbound, outbound};

/// The role a node proxy announces.
pub const ROLE: &str = "node";

/// Why an enrolled pod is not served when the control plane has no config for it.
const NOT_OURS: &str = "the control plane has no configuration for this pod on this node (it is \
                        not in ambient mode, or not on this node)";

mod netns_watch;
mod takeover;
mod view;

pub use view::{PodView, Pods};

/// How often the enrolment file is checked for changes.
const POLL: Duration = Duration::from_millis(200);

/// A pod the runtime enrolled on this node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Enrolled {
    /// The pod's proxy id (`POD.NAMESPACE`).
    pub id: String,
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    pub ip: IpAddr,
    /// Its network namespace (`/run/netns/NAME` or `/proc/PID/ns/net`).
    pub netns: PathBuf,
    /// Listen addresses inside the pod: 15001, 15006 and 15008 on every address by default.
    #[serde(default = "any_port::<15001>")]
    pub outbound: SocketAddr,
    #[serde(default = "any_port::<15006>")]
    pub inbound: SocketAddr,
    #[serde(default = "any_port::<15008>")]
    pub tunnel: SocketAddr,
    /// Uncaptured mode (tests, hosts without capture): inbound traffic goes here, and every
    /// outbound connection to `outbound_target`.
    #[serde(default)]
    pub inbound_app: Option<SocketAddr>,
    #[serde(default)]
    pub outbound_target: Option<SocketAddr>,
}

fn any_port<const P: u16>() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], P))
}

#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolledList {
    pods: Vec<Enrolled>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The node's name, as the runtime registered its proxy.
    pub node: String,
    /// The node's address.
    pub ip: IpAddr,
    pub engine: Settings,
    /// The enrolled pods, written by the runtime on the node.
    pub pods_file: PathBuf,
    /// Take the listeners of the node proxy on this path, if one answers, and listen there
    /// for the next.
    pub handoff: Option<handoff::Config>,
}

/// Why a node proxy did not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("hand-off: {0}")]
    Handoff(#[from] handoff::Error),
}

/// Where a served pod's listeners are (inside its namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodListeners {
    pub outbound: SocketAddr,
    pub inbound: SocketAddr,
    pub tunnel: Option<SocketAddr>,
}

/// What the node proxy does for each enrolled pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    /// Waiting for the pod's configuration from the control plane.
    Pending,
    Served(PodListeners),
    /// Not served, and why (the control plane refused or removed it, or its namespace or
    /// listeners failed).
    Refused(String),
}

type States = Arc<Mutex<BTreeMap<String, view::Held>>>;

/// A running node proxy.
#[derive(Debug)]
pub struct Bound {
    pub admin: SocketAddr,
    pub readiness: SocketAddr,
    pub metrics: SocketAddr,
    states: States,
    listeners: Arc<Listeners>,
    engine: Engine,
}

impl Bound {
    /// Resolves once a new node proxy took the listeners over: this one no longer accepts;
    /// drain it.
    pub async fn handed_off(&self) {
        self.listeners.handed_off().await
    }

    /// What it does for the pod `id`, if it is enrolled.
    pub fn pod(&self, id: &str) -> Option<PodState> {
        lock(&self.states).get(id).map(|p| p.state.clone())
    }

    pub async fn drain(self, deadline: Option<Duration>) {
        self.engine.drain(deadline).await
    }
}

impl std::ops::Deref for Bound {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        &self.engine
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a node proxy. With a hand-off path where a node proxy answers, returns once this
/// one serves every pod with the listeners received and the old one stops accepting.
pub async fn build(cfg: Config) -> Result<Bound, Error> {
    let takeover = takeover::begin(cfg.handoff.as_ref()).await?;
    let listeners = takeover.listeners.clone();
    let identity = Identity {
        id: format!("{}.weft-system", cfg.node),
        namespace: "weft-system".into(),
        workload: "weft-node".into(),
        pod: cfg.node.clone(),
        ip: cfg.ip,
        service_account: "weft-node".into(),
        labels: BTreeMap::new(),
    };
    let config = EngineConfig {
        node: node(&identity, ROLE, String::new(), String::new()),
        gateway: None,
        settings: cfg.engine.clone(),
    };
    let handing = cfg.handoff.as_ref().map(|_| &listeners);
    let lost = netns_watch::Lost::default();
    let register = |r: &mut prometheus_client::registry::Registry| {
        takeover.register(r);
        lost.register(r);
    };
    let mut engine = Engine::start_with(config, register, handing).await?;
    let states = States::default();
    let shared = &engine.shared;
    let pods = view::hook(
        cfg.node.clone(),
        shared.store.clone(),
        shared.drain.clone(),
        states.clone(),
    );
    let _ = shared.pods.set(pods);
    let follow = Follow {
        settings: cfg.engine,
        node: engine.shared.clone(),
        states: states.clone(),
        listeners: listeners.clone(),
        lost,
    };
    engine.tasks.spawn(follow.run(cfg.pods_file));
    takeover
        .finish(cfg.handoff.as_ref(), &mut engine, &states)
        .await?;
    let (admin, readiness, metrics) = (engine.admin, engine.readiness, engine.metrics);
    tracing::info!(node = %cfg.node, %admin, %readiness, %metrics, "node proxy listening");
    Ok(Bound {
        admin,
        readiness,
        metrics,
        states,
        listeners,
        engine,
    })
}

/// Follows the enrolment file: serves the pods it adds, releases those it drops.
struct Follow {
    settings: Settings,
    node: Arc<Shared>,
    states: States,
    listeners: Arc<Listeners>,
    lost: netns_watch::Lost,
}

impl Follow {
    async fn run(self, file: PathBuf) {
        let mut served: BTreeMap<String, (Enrolled, JoinSet<()>)> = BTreeMap::new();
        let mut last_error = None;
        loop {
            match read(&file) {
                Ok(list) => {
                    last_error = None;
                    self.apply(&mut served, list);
                }
                Err(e) if last_error.as_ref() != Some(&e) => {
                    tracing::error!("enrolled pods: {e}; the pods served stay as they are");
                    last_error = Some(e);
                }
                Err(_) => {}
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn apply(&self, served: &mut BTreeMap<String, (Enrolled, JoinSet<()>)>, list: EnrolledList) {
        let wanted: BTreeMap<String, Enrolled> =
            list.pods.into_iter().map(|p| (p.id.clone(), p)).collect();
        self.listeners.enrolled(wanted.keys().cloned().collect());
        served.retain(|id, (pod, _)| {
            let keep = wanted.get(id) == Some(pod);
            if !keep {
                tracing::info!(pod = %id, "pod released");
                self.node.store.release_pod(id);
                lock(&self.states).remove(id);
            }
            keep
        });
        for (id, pod) in wanted {
            if served.contains_key(&id) {
                continue;
            }
            tracing::info!(pod = %id, netns = %pod.netns.display(), "pod enrolled");
            lock(&self.states).insert(id.clone(), view::Held::pending(pod.netns.clone()));
            let mut tasks = JoinSet::new();
            let serve = Serve {
                settings: self.settings.clone(),
                node: self.node.clone(),
                states: self.states.clone(),
                listeners: self.listeners.clone(),
                lost: self.lost.clone(),
                pod: pod.clone(),
            };
            tasks.spawn(serve.run());
            served.insert(id, (pod, tasks));
        }
    }
}

fn read(file: &Path) -> Result<EnrolledList, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(EnrolledList::default()),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))
}

/// One enrolled pod, served while its task runs.
struct Serve {
    settings: Settings,
    node: Arc<Shared>,
    states: States,
    listeners: Arc<Listeners>,
    lost: netns_watch::Lost,
    pod: Enrolled,
}

impl Serve {
    /// Serves the pod while the control plane sends its config: it may come, go (the pod left
    /// ambient mode or the node) and come back (it was enrolled again by a label).
    async fn run(self) {
        let id = self.pod.id.clone();
        let store = self.node.store.clone();
        let mut config = store.serve_pod(&id);
        loop {
            let known = config.wait_for(|c| c.is_some() || store.pod_removed(&id));
            if known.await.is_err() {
                return;
            }
            if config.borrow().is_none() {
                self.state(PodState::Refused(NOT_OURS.into()), None);
                self.listeners.settled(&id);
                tracing::warn!(pod = %id, "not served: {NOT_OURS}");
                if config.wait_for(Option::is_some).await.is_err() {
                    return;
                }
            }
            let mut tasks = JoinSet::new();
            let netns = netns_watch::identity(&self.pod.netns);
            match self.start(&mut tasks, config.clone()) {
                Ok((listeners, cert)) => {
                    tracing::info!(
                        pod = %id,
                        outbound = %listeners.outbound,
                        inbound = %listeners.inbound,
                        tunnel = listeners.tunnel.map(tracing::field::display),
                        "pod served"
                    );
                    self.state(PodState::Served(listeners), cert.clone());
                    tasks.spawn(settle(self.listeners.clone(), id.clone(), cert));
                }
                Err(e) => {
                    tracing::error!(pod = %id, "cannot serve the pod: {e}");
                    return self.state(PodState::Refused(e), None);
                }
            }
            let lost = tokio::select! {
                r = config.wait_for(Option::is_none) => match r {
                    Ok(_) => None,
                    Err(_) => return,
                },
                why = netns_watch::gone(self.pod.netns.clone(), netns) => Some(why),
            };
            // Its listeners close; its established connections with them.
            tasks.abort_all();
            if let Some(why) = lost {
                // A deleted pod the runtime did not un-enrol: its namespace is let go, and the
                // pod is served again if a namespace appears at its path.
                tracing::warn!(pod = %id, "released: {why}");
                self.lost.inc();
                self.state(PodState::Refused(format!("released: {why}")), None);
                netns_watch::back(self.pod.netns.clone()).await;
                tracing::info!(pod = %id, netns = %self.pod.netns.display(), "a network namespace is at the pod's path again: serving it");
            }
        }
    }

    /// Its state, and its certificate while it is served (for `/pods`).
    fn state(&self, state: PodState, cert: Option<Arc<certs::Source>>) {
        if let Some(held) = lock(&self.states).get_mut(&self.pod.id) {
            (held.state, held.cert) = (state, cert);
        }
    }

    /// Opens the pod's listeners inside its namespace and starts serving them.
    fn start(
        &self,
        tasks: &mut JoinSet<()>,
        config: watch::Receiver<Option<Arc<weft_core::model::ProxyConfig>>>,
    ) -> Result<(PodListeners, Option<Arc<certs::Source>>), String> {
        let pod = &self.pod;
        let netns = Arc::new(Netns::open(&pod.netns).map_err(|e| e.to_string())?);
        // The listener received from the old node proxy for it, or a new one.
        let listen = |kind: Kind, addr: SocketAddr| {
            let bind = || netns.listen(addr);
            self.listeners
                .open(&pod.id, kind, &pod.netns, addr, bind)
                .map_err(|e| {
                    let what = kind.as_str();
                    format!("{what} listener {addr} in {}: {e}", pod.netns.display())
                })
        };
        let outbound_l = listen(Kind::Outbound, pod.outbound)?;
        let inbound_l = listen(Kind::Inbound, pod.inbound)?;
        let cert = self.certificate(tasks, config.clone());
        let creds = cert.clone().map(|c| c as Arc<dyn Credentials>);
        let tunnel_l = match creds {
            Some(_) => Some(listen(Kind::Tunnel, pod.tunnel)?),
            None => None,
        };
        let addr = |l: &handoff::Listening| l.local_addr().map_err(|e| e.to_string());
        let listeners = PodListeners {
            outbound: addr(&outbound_l)?,
            inbound: addr(&inbound_l)?,
            tunnel: tunnel_l.as_ref().map(addr).transpose()?,
        };
        let connector = self.node.connector.in_netns(netns);
        let tunnel_client = creds.clone().map(|c| {
            let client = tunnel::Client::new(c).with_connector(connector.clone());
            Arc::new(client.with_workload(config.clone()))
        });
        let shared = Arc::new(Shared {
            store: self.node.store.clone(),
            proxy: config,
            metrics: self.node.metrics.clone(),
            registry: self.node.registry.clone(),
            l4_only: true,
            log_buffer: self.node.log_buffer.clone(),
            tap: self.node.tap.clone(),
            connector: connector.clone(),
            pool: Pool::new(tunnel_client).with(connector, self.node.pool.metrics().clone()),
            drain: self.node.drain.clone(),
            status: self.node.status.clone(),
            set_log_level: None,
            log_level: Mutex::new(lock(&self.node.log_level).clone()),
            gateway: None,
            credentials: creds.clone(),
            certs: None,
            identity_ip: Some(pod.ip),
            pods: std::sync::OnceLock::new(),
            // L4 only: no request is ever traced here.
            trace: crate::trace::Tracer::new(Default::default(), Default::default()),
            rate_limits: Default::default(),
        });
        // Each accepts once the gate opens (at once, or when a hand-off is done).
        let (app, target) = (pod.inbound_app, pod.outbound_target);
        if let (Some(l), Some(creds)) = (tunnel_l, creds.clone()) {
            let shared = shared.clone();
            tasks.spawn(l.serve(move |l| inbound::run_tunnel(l, creds, shared, app)));
        }
        let out = shared.clone();
        tasks.spawn(outbound_l.serve(move |l| outbound::run(l, out, target)));
        tasks.spawn(inbound_l.serve(move |l| inbound::run(l, shared, app)));
        Ok((listeners, cert))
    }

    /// The pod's own certificate, asked for with the node's credential and rotated: None when
    /// the node proxy does no mTLS (no bootstrap token).
    fn certificate(
        &self,
        tasks: &mut JoinSet<()>,
        config: watch::Receiver<Option<Arc<weft_core::model::ProxyConfig>>>,
    ) -> Option<Arc<certs::Source>> {
        let token_file = self.settings.bootstrap_token_file.clone()?;
        let mut control_plane = self.settings.control_plane.clone();
        control_plane.connector = self.node.connector.clone();
        let cfg = certs::Config {
            control_plane,
            token_file,
            ttl: None,
        };
        let issuer = match certs::GrpcIssuer::new(&cfg, self.node.credentials.clone()) {
            Ok(i) => i.for_pod(&format!("{}/{}", self.pod.namespace, self.pod.name)),
            Err(e) => {
                tracing::error!(pod = %self.pod.id, "no certificate for the pod: {e}");
                return None;
            }
        };
        let source = certs::Source::new();
        let (id_tx, id_rx) = watch::channel(None::<SpiffeId>);
        tasks.spawn(crate::engine::identity_of(config, id_tx));
        tasks.spawn(certs::run(source.clone(), issuer, None, id_rx));
        Some(source)
    }
}

/// A served pod is ready for a hand-off once it holds its certificate, if it does mTLS.
async fn settle(listeners: Arc<Listeners>, pod: String, cert: Option<Arc<certs::Source>>) {
    if let Some(cert) = cert
        && cert.ready().wait_for(|r| *r).await.is_err()
    {
        return;
    }
    listeners.settled(&pod);
}
