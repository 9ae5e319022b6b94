//! One proxy's discovery stream: subscriptions, pushes on change, ACK/NACK bookkeeping.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};
use weft_core::events::Type;
use weft_core::model::{ADDRESS_TYPE, GATEWAY_TYPE, PROXY_TYPE, Pod, SERVICE_TYPE, Snapshot};
use weft_proto::discovery::{DeltaRequest, DeltaResponse, Node, Resource};

use super::{admit, push, skew};
use crate::ca::Ca;
use crate::peer::Peer;
use crate::state::{State, now_ms};
use crate::status::{Nack, NodeInfo, ProxyStatus, TypeStatus};

/// How long a new stream may take to send its first request.
const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Responses of one type a proxy may leave unanswered before the oldest are forgotten.
const MAX_UNANSWERED: usize = 64;

const TYPES: [&str; 4] = [SERVICE_TYPE, ADDRESS_TYPE, PROXY_TYPE, GATEWAY_TYPE];

#[derive(Default)]
struct Subscription {
    names: BTreeSet<String>,
    /// Name → version the proxy holds (sent, or announced on reconnect).
    sent: BTreeMap<String, String>,
    /// Names already reported as missing.
    missing: BTreeSet<String>,
    /// Nonce → (name, version the proxy held before) of responses not yet answered, so a
    /// NACK can restore what the proxy really runs.
    inflight: BTreeMap<String, Vec<(String, Option<String>)>>,
}

pub(super) struct Connection {
    state: Arc<State>,
    ca: Arc<Ca>,
    tx: mpsc::Sender<Result<DeltaResponse, Status>>,
    pod: Option<Pod>,
    /// A node proxy's node.
    node: Option<String>,
    id: Option<String>,
    subs: BTreeMap<String, Subscription>,
    nonce: u64,
    connection: u64,
    /// The snapshot generation this stream last looked at for changes.
    seen: u64,
    /// The generation that has this stream's own pod (its first answers wait for it).
    joined: u64,
    send_timeout: std::time::Duration,
    /// This control plane's revision, if it has one.
    revision: Option<Arc<str>>,
}

impl Connection {
    pub(super) fn new(
        state: Arc<State>,
        ca: Arc<Ca>,
        tx: mpsc::Sender<Result<DeltaResponse, Status>>,
    ) -> Self {
        Connection {
            state,
            ca,
            tx,
            pod: None,
            node: None,
            id: None,
            subs: BTreeMap::new(),
            nonce: 0,
            connection: 0,
            seen: 0,
            joined: 0,
            send_timeout: super::SEND_TIMEOUT,
            revision: None,
        }
    }

    pub(super) fn revision(mut self, revision: Option<Arc<str>>) -> Self {
        self.revision = revision;
        self
    }

    pub(super) fn send_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    pub(super) async fn run(mut self, mut requests: Streaming<DeltaRequest>, peer: Option<Peer>) {
        self.connection = self.state.next_connection();
        self.state.metrics.streams.inc();
        let mut snapshots = self.state.snapshot();
        self.seen = snapshots.borrow().generation();
        let mut stopping = self.state.stopping.subscribe();
        // A client that opens a stream and says nothing holds it no longer than this.
        let hello_by = tokio::time::Instant::now() + HELLO_TIMEOUT;
        loop {
            tokio::select! {
                biased;
                _ = async { let _ = stopping.wait_for(|s| *s).await; } => break,
                _ = tokio::time::sleep_until(hello_by), if self.id.is_none() => {
                    self.state.metrics.refused("no-hello");
                    let _ = self.tx.send(Err(Status::deadline_exceeded(
                        "no first request with `node` within 10s",
                    ))).await;
                    break;
                }
                msg = requests.message() => match msg {
                    Ok(Some(req)) => {
                        if let Err(status) = self.handle(req, peer.as_ref(), &mut snapshots).await {
                            let _ = tokio::time::timeout(self.send_timeout, self.tx.send(Err(status))).await;
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(proxy = self.id.as_deref(), "discovery stream ended: {e}");
                        break;
                    }
                },
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let snap = snapshots.borrow_and_update().clone();
                    if !self.push_changes(&snap).await {
                        return self.close();
                    }
                }
            }
        }
        self.close();
    }

    fn close(&self) {
        self.state.metrics.streams.dec();
        if let Some(id) = &self.id {
            tracing::info!(proxy = %id, "proxy disconnected");
            let mut proxies = self.state.proxies();
            let gone = proxies
                .get(id)
                .filter(|p| p.connection == self.connection)
                .map(|p| p.node.clone());
            if gone.is_some() {
                proxies.remove(id);
            }
            drop(proxies);
            if let Some(node) = gone.filter(|_| !*self.state.stopping.borrow()) {
                let message = format!("{} disconnected from discovery", node.role);
                (self.state.events).proxy(&node, Type::Normal, "ProxyDisconnected", message);
            }
            // On shutdown, proxies keep their endpoints: nobody should be told they left.
            if !*self.state.stopping.borrow() {
                self.state.remove_pod(id, self.connection);
            }
        }
    }

    async fn handle(
        &mut self,
        req: DeltaRequest,
        peer: Option<&Peer>,
        snapshots: &mut watch::Receiver<Arc<Snapshot>>,
    ) -> Result<(), Status> {
        if self.id.is_none() {
            let node = req.node.clone().ok_or_else(|| {
                tracing::warn!(
                    from = peer.map(|p| tracing::field::display(p.addr)),
                    "discovery refused: the first request carries no `node`"
                );
                self.state.metrics.refused("claim");
                Status::invalid_argument("the first request must carry `node`")
            })?;
            self.hello(node, peer)?;
            // Let the other proxies of a restarted control plane re-register first.
            tokio::time::sleep_until(self.state.serve_after).await;
            // Pod changes are published in batches: answer from a snapshot that has this pod.
            let joined = self.joined;
            let _ = snapshots.wait_for(|s| s.generation() >= joined).await;
        }
        // Read after hello: the snapshot then includes this proxy's own pod. Not marked seen:
        // the run loop must still push a change to the names already subscribed.
        let snap = snapshots.borrow().clone();
        let ty = req.type_url.as_str();
        if !TYPES.contains(&ty) {
            return Err(Status::invalid_argument(format!(
                "unknown type_url {ty:?}; known: {TYPES:?}"
            )));
        }
        if !req.response_nonce.is_empty() {
            self.record_reply(ty, &req);
        }
        let sub = self.subs.entry(ty.to_string()).or_default();
        for (name, version) in &req.initial_versions {
            sub.sent.insert(name.clone(), version.clone());
        }
        for name in &req.unsubscribe {
            sub.names.remove(name);
            sub.sent.remove(name);
            sub.missing.remove(name);
        }
        let new: Vec<String> = req
            .subscribe
            .iter()
            .filter(|n| sub.names.insert((*n).clone()))
            .cloned()
            .collect();
        if !new.is_empty() {
            let names: BTreeSet<String> = new.into_iter().collect();
            if !self.push(ty, &snap, Some(names)).await {
                return Err(Status::deadline_exceeded(
                    "the proxy does not read its discovery stream",
                ));
            }
        }
        self.update_status(ty);
        Ok(())
    }

    fn hello(&mut self, node: Node, peer: Option<&Peer>) -> Result<(), Status> {
        let authenticated = peer.is_some_and(|p| p.tls);
        let info = |id: &str| NodeInfo {
            id: id.to_string(),
            role: node.role.clone(),
            namespace: node.namespace.clone(),
            workload: node.workload.clone(),
            pod: node.pod.clone(),
            ip: node.ip.clone(),
            revision: node.revision.clone(),
            protocol_version: node.protocol_version,
            weft_version: node.weft_version.clone(),
            peer: peer.map(|p| p.addr.to_string()),
            authenticated,
        };
        let refuse = |r: admit::Refused| {
            let from = peer.map_or_else(|| "-".into(), |p| p.addr.to_string());
            tracing::warn!(%from, claimed = %node.id, reason = r.reason, "discovery refused: {}", r.message);
            self.state.metrics.refused(r.reason);
            match r.reason {
                // What the proxy runs or where it points: the operator's to fix, so it is
                // listed for them until the proxy is served.
                skew::VERSION_SKEW | skew::REVISION => {
                    let first =
                        (self.state.refused).record(info(&node.id), r.reason, &r.message, now_ms());
                    if first {
                        let message = format!("refused ({}): {}", r.reason, r.message);
                        (self.state.events).proxy(
                            &info(&node.id),
                            Type::Warning,
                            "ProxyRefused",
                            message,
                        );
                    }
                    Status::failed_precondition(r.message)
                }
                "no-certificate" => Status::unauthenticated(r.message),
                "duplicate" => Status::already_exists(r.message),
                _ => Status::permission_denied(r.message),
            }
        };
        // Before anything is read from it: a proxy this control plane cannot serve is told
        // why, not admitted and mis-served.
        skew::check(&node, self.revision.as_deref()).map_err(refuse)?;
        let trust_domain = self.state.trust_domain();
        let admitted = admit::admit(&node, peer, &trust_domain, |ns, pod| {
            self.ca.registered(ns, pod)
        })
        .map_err(refuse)?;
        let id = admitted.id;
        let info = info(&id);
        // One live stream per proxy admitted by certificate: a second one cannot displace the
        // first (nor, when it ends, remove it). A restarted proxy's old stream ends with its
        // process, and the new one retries until then. Among streams of the loopback port the
        // newest wins.
        {
            // Checked and taken under one lock, so two racing streams cannot both get in.
            let mut proxies = self.state.proxies();
            // A stream admitted by certificate is never displaced; it displaces one that was
            // only claimed on the loopback port.
            if let Some(live) = proxies.get(&id).filter(|live| live.node.authenticated) {
                let message = format!(
                    "proxy {id} already has a discovery stream (from {}, connected at {} ms); \
                     a second one is refused while it lasts",
                    live.node.peer.as_deref().unwrap_or("-"),
                    live.connected_at_ms
                );
                drop(proxies);
                return Err(refuse(admit::Refused {
                    reason: "duplicate",
                    message,
                }));
            }
            let message = format!(
                "{} connected{}{} (weft {})",
                info.role,
                if info.authenticated { " over mTLS" } else { "" },
                Some(info.revision.as_str())
                    .filter(|r| !r.is_empty())
                    .map_or_else(String::new, |r| format!(", revision {r}")),
                info.weft_version
            );
            (self.state.events).proxy(&info, Type::Normal, "ProxyConnected", message);
            proxies.insert(
                id.clone(),
                ProxyStatus {
                    connection: self.connection,
                    node: info,
                    connected_at_ms: now_ms(),
                    types: BTreeMap::new(),
                },
            );
        }
        self.state.refused.clear(&id);
        // A proxy of no revision has none in the line (rather than an empty one).
        let revision = Some(node.revision.as_str()).filter(|r| !r.is_empty());
        tracing::info!(proxy = %id, role = %node.role, revision, weft = %node.weft_version, "proxy connected");
        self.id = Some(id.clone());
        self.node = admitted.node;
        if let Some(pod) = admitted.proxy {
            if admitted.endpoint {
                self.joined = self.state.add_pod(self.connection, pod.clone());
            }
            self.pod = Some(pod);
        }
        Ok(())
    }

    fn record_reply(&mut self, ty: &str, req: &DeltaRequest) {
        // What that response carried; on NACK the proxy still holds the previous versions, so
        // they are restored and the next change resends those resources.
        let carried = self
            .subs
            .get_mut(ty)
            .and_then(|s| {
                let carried = s.inflight.remove(&req.response_nonce)?;
                if req.error_detail.is_some() {
                    for (name, prev) in &carried {
                        match prev {
                            Some(v) => s.sent.insert(name.clone(), v.clone()),
                            None => s.sent.remove(name),
                        };
                    }
                }
                Some(carried)
            })
            .unwrap_or_default();
        let Some(id) = &self.id else { return };
        let mut proxies = self.state.proxies();
        let Some(p) = proxies.get_mut(id) else { return };
        let node = p.node.clone();
        let t = p.types.entry(ty.to_string()).or_default();
        match &req.error_detail {
            Some(err) => {
                self.state.metrics.nack(ty);
                tracing::warn!(proxy = %id, type_url = ty, nonce = %req.response_nonce, "proxy rejected config: {}", err.message);
                let message = format!(
                    "proxy rejected {} config, it keeps its previous one: {}",
                    ty.trim_start_matches("weft.dev/"),
                    err.message
                );
                (self.state.events).proxy(&node, Type::Warning, "ConfigNacked", message);
                t.nack = Some(Nack {
                    nonce: req.response_nonce.clone(),
                    error: err.message.clone(),
                    at_ms: now_ms(),
                });
                t.nacked.extend(carried.into_iter().map(|(n, _)| n));
            }
            None => {
                for (name, _) in &carried {
                    t.nacked.remove(name);
                }
                t.acked_nonce = Some(req.response_nonce.clone());
                t.acked_at_ms = Some(now_ms());
            }
        }
    }

    /// Sends, for each type, the subscribed resources that changed since the last snapshot
    /// this stream looked at. Returns false when the proxy is gone.
    async fn push_changes(&mut self, snap: &Snapshot) -> bool {
        let since = std::mem::replace(&mut self.seen, snap.generation());
        for ty in TYPES {
            let only = push::changed(
                ty,
                snap,
                since,
                push::Serves::of(self.node.as_deref(), self.pod.as_ref()),
            );
            if only.as_ref().is_some_and(BTreeSet::is_empty) {
                continue;
            }
            if !self.push(ty, snap, only).await {
                return false;
            }
        }
        true
    }

    /// Sends what changed for `ty` among the subscribed names: all of them, or those in
    /// `only`. Returns false when the proxy is gone.
    async fn push(&mut self, ty: &str, snap: &Snapshot, only: Option<BTreeSet<String>>) -> bool {
        // Field by field, so the subscription below can be borrowed mutably beside it.
        let serves = push::Serves::of(self.node.as_deref(), self.pod.as_ref());
        let Some(sub) = self.subs.get_mut(ty) else {
            return true;
        };
        let names: Vec<String> = match &only {
            Some(n) => n
                .iter()
                .filter(|n| sub.names.contains(*n))
                .cloned()
                .collect(),
            None => sub.names.iter().cloned().collect(),
        };
        let mut resources = Vec::new();
        let mut removed = Vec::new();
        let mut bodies = Vec::new();
        let mut previous = Vec::new();
        for name in names {
            match push::encode(ty, &name, snap, serves) {
                Some(encoded) => {
                    sub.missing.remove(&name);
                    if sub.sent.get(&name) == Some(&encoded.version) {
                        continue;
                    }
                    let old = sub.sent.insert(name.clone(), encoded.version.clone());
                    previous.push((name.clone(), old));
                    resources.push(Resource {
                        name: name.clone(),
                        version: encoded.version.clone(),
                        body: encoded.body.clone(),
                    });
                    bodies.push((name, encoded));
                }
                None => {
                    let was_sent = sub.sent.remove(&name).is_some();
                    if was_sent || sub.missing.insert(name.clone()) {
                        removed.push(name);
                    }
                }
            }
        }
        if resources.is_empty() && removed.is_empty() {
            return true;
        }
        self.nonce += 1;
        let nonce = format!("{}-{}", self.nonce, now_ms());
        if let Some(sub) = self.subs.get_mut(ty) {
            sub.inflight.insert(nonce.clone(), previous);
            // A proxy that never answers must not grow this without bound: the oldest
            // unanswered responses are forgotten (a late NACK of one restores nothing).
            while sub.inflight.len() > MAX_UNANSWERED {
                let oldest = (sub.inflight.keys())
                    .min_by_key(|n| n.split('-').next().and_then(|n| n.parse::<u64>().ok()))
                    .cloned();
                let Some(oldest) = oldest else { break };
                sub.inflight.remove(&oldest);
            }
        }
        if let Some(id) = &self.id
            && let Some(p) = self.state.proxies().get_mut(id)
        {
            let t = p.types.entry(ty.to_string()).or_default();
            t.last_nonce = Some(nonce.clone());
            t.last_sent_at_ms = Some(now_ms());
            for (name, body) in bodies {
                t.bodies.insert(name, body);
            }
            for name in &removed {
                t.bodies.remove(name);
            }
        }
        self.update_status(ty);
        self.state.metrics.push(ty);
        let response = DeltaResponse {
            type_url: ty.to_string(),
            resources,
            removed,
            nonce,
        };
        match tokio::time::timeout(self.send_timeout, self.tx.send(Ok(response))).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                // Back-pressure has a limit: a proxy that reads nothing is disconnected rather
                // than queued for without end. It reconnects and gets the current state.
                tracing::warn!(
                    proxy = self.id.as_deref(),
                    timeout_ms = self.send_timeout.as_millis() as u64,
                    "proxy stopped reading its discovery stream; disconnecting it"
                );
                self.state.metrics.stuck.inc();
                false
            }
        }
    }

    fn update_status(&self, ty: &str) {
        let (Some(id), Some(sub)) = (&self.id, self.subs.get(ty)) else {
            return;
        };
        let mut proxies = self.state.proxies();
        let Some(p) = proxies.get_mut(id) else { return };
        let t: &mut TypeStatus = p.types.entry(ty.to_string()).or_default();
        t.subscribed = sub.names.clone();
        t.sent = sub.sent.clone();
    }
}
