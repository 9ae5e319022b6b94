//! Simulated proxies: delta discovery streams as a sidecar opens them
//! (`crates/weft-proxy/src/xds.rs`): a node on the first request, its own Proxy resource and
//! Services by name, and an ACK for every response. A proxy is *served* once every name it
//! subscribed to has been answered (sent, or said not to exist). Many streams share one HTTP/2 connection, as proxies behind one
//! node would; each connection carries at most [`STREAMS_PER_CONNECTION`] of them, below the
//! server's limit on concurrent streams (hyper's default is 200 per connection).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};
use weft_core::model::{PROXY_TYPE, SERVICE_TYPE};
use weft_proto::discovery::discovery_client::DiscoveryClient;
use weft_proto::discovery::{DeltaRequest, DeltaResponse, Node};

use crate::mesh;

pub mod churn;

pub const STREAMS_PER_CONNECTION: usize = 100;

/// Every proxy subscribes to the changed Service and two others.
pub const HOT: usize = 0;

/// The Services proxy `i` subscribes to: Service [`HOT`] and two more.
pub fn subscriptions(i: usize, services: usize) -> Vec<String> {
    let mut names = vec![mesh::service_key(HOT)];
    if services > 1 {
        for k in [
            1 + (i * 7) % (services - 1),
            1 + (i * 13 + 3) % (services - 1),
        ] {
            let key = mesh::service_key(k);
            if !names.contains(&key) {
                names.push(key);
            }
        }
    }
    names
}

#[derive(Debug)]
enum Event {
    /// The proxy has been served: every name it subscribed to was answered.
    Synced,
    /// The proxy ACKed a new version of Service [`HOT`], `after` the change began.
    Pushed { change: u64, after: Duration },
    /// The proxy's stream failed or was closed; it opens a new one after a backoff, as a
    /// sidecar does.
    Retried(usize, String),
}

/// A sidecar's reconnect backoff (`crates/weft-proxy/src/xds.rs`): doubling from 100 ms to 5 s.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The wait before reconnect number `attempt` of proxy `i`: the backoff plus up to half of it
/// again, spread over proxies and attempts without a random source.
pub fn backoff(i: usize, attempt: u32) -> Duration {
    let base = BACKOFF_MIN
        .saturating_mul(1 << attempt.min(6))
        .min(BACKOFF_MAX);
    let spread = (base.as_millis() as u64 / 2).max(1);
    let jitter = (i as u64).wrapping_mul(7919) ^ u64::from(attempt).wrapping_mul(104_729);
    base + Duration::from_millis(jitter % spread)
}

/// The change being measured: its number and when the config file was written.
#[derive(Debug)]
struct Clock {
    current: Mutex<(u64, Instant)>,
}

/// N simulated proxies, connected.
#[derive(Debug)]
pub struct Fleet {
    pub proxies: usize,
    pub connections: usize,
    /// Streams that failed or were closed and were opened again, so far.
    pub retries: usize,
    /// The first few of their errors.
    pub errors: Vec<String>,
    clock: Arc<Clock>,
    events: mpsc::UnboundedReceiver<Event>,
    _tasks: JoinSet<()>,
}

/// Opens `n` HTTP/2 connections to `endpoint`.
pub async fn connect(endpoint: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        let ch = Endpoint::from_shared(endpoint.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connecting to {endpoint}"))?;
        channels.push(ch);
    }
    Ok(channels)
}

/// Opens `n` streams to `endpoint` over `ceil(n / STREAMS_PER_CONNECTION)` connections.
/// `announce`: each node carries a pod address, as a sidecar's does, so the control plane
/// registers it as a pod (a snapshot rebuild per proxy).
pub async fn start(
    endpoint: &str,
    n: usize,
    services: usize,
    announce: bool,
) -> anyhow::Result<Fleet> {
    let connections = n.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let channels = connect(endpoint, connections).await?;
    let clock = Arc::new(Clock {
        current: Mutex::new((0, Instant::now())),
    });
    let (tx, events) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let node = node(&format!("sim-{i}"), announce.then(|| address(i)));
        let names = subscriptions(i, services);
        let (ch, clock, tx) = (channels[i % connections].clone(), clock.clone(), tx.clone());
        tasks.spawn(proxy(i, ch, node, names, clock, tx));
    }
    Ok(Fleet {
        proxies: n,
        connections,
        retries: 0,
        errors: Vec::new(),
        clock,
        events,
        _tasks: tasks,
    })
}

/// The pod address of simulated proxy `i`: 198.19.0.0/16 from .0.1 up, outside the generated
/// pods' range; never contacted. Wraps after 65 534 proxies.
pub fn address(i: usize) -> std::net::Ipv4Addr {
    let n = 1 + (i % 65_534) as u32;
    std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 19, 0, 0)) + n)
}

/// The node a simulated sidecar for pod `pod` sends; `ip` announces its pod address.
pub fn node(pod: &str, ip: Option<std::net::Ipv4Addr>) -> Node {
    Node {
        id: format!("{pod}.{}", mesh::NAMESPACE),
        protocol_version: weft_proto::PROTOCOL_VERSION,
        role: "sidecar".into(),
        namespace: mesh::NAMESPACE.into(),
        workload: "sim".into(),
        pod: pod.into(),
        ip: ip.map(|a| a.to_string()).unwrap_or_default(),
        service_account: "sim".into(),
        labels: [("app".to_string(), "sim".to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

/// What one response changed for the proxy.
#[derive(Debug, Default)]
pub struct Update {
    /// A new version of Service [`HOT`] (not its first).
    pub new_hot: bool,
    /// This response completed the proxy's first answers to every subscription.
    pub served: bool,
}

/// One simulated proxy's discovery stream. Dropping it closes the stream: the proxy leaves.
pub struct Stream {
    tx: mpsc::Sender<DeltaRequest>,
    responses: Streaming<DeltaResponse>,
    /// (type, name) → version held; "" for a name answered as not existing.
    held: std::collections::HashMap<(String, String), String>,
    wanted: Vec<(String, String)>,
    served: bool,
}

impl Stream {
    /// Opens the stream as a sidecar does: the node and its own Proxy resource first, then the
    /// Services `names`.
    pub async fn open(channel: Channel, node: Node, names: Vec<String>) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel(8);
        let mut wanted = vec![(PROXY_TYPE.to_string(), node.id.clone())];
        wanted.extend(names.iter().map(|n| (SERVICE_TYPE.to_string(), n.clone())));
        tx.send(DeltaRequest {
            type_url: PROXY_TYPE.into(),
            subscribe: vec![node.id.clone()],
            node: Some(node),
            ..Default::default()
        })
        .await?;
        tx.send(DeltaRequest {
            type_url: SERVICE_TYPE.into(),
            subscribe: names,
            ..Default::default()
        })
        .await?;
        let mut client = DiscoveryClient::new(channel).max_decoding_message_size(64 << 20);
        let responses = client
            .delta(ReceiverStream::new(rx))
            .await
            .context("discovery stream refused")?
            .into_inner();
        Ok(Stream {
            tx,
            responses,
            held: Default::default(),
            wanted,
            served: false,
        })
    }

    /// The next response, ACKed. Fails when the control plane closes the stream.
    pub async fn next(&mut self) -> anyhow::Result<Update> {
        let Some(resp) = self.responses.message().await? else {
            bail!("the control plane closed the stream")
        };
        let hot = mesh::service_key(HOT);
        let mut update = Update::default();
        for r in &resp.resources {
            let key = (resp.type_url.clone(), r.name.clone());
            let previous = self.held.insert(key, r.version.clone());
            if resp.type_url == SERVICE_TYPE
                && r.name == hot
                && previous.is_some_and(|p| !p.is_empty() && p != r.version)
            {
                update.new_hot = true;
            }
        }
        for name in &resp.removed {
            self.held
                .insert((resp.type_url.clone(), name.clone()), String::new());
        }
        self.tx.send(ack(&resp)).await?;
        if !self.served && self.wanted.iter().all(|k| self.held.contains_key(k)) {
            self.served = true;
            update.served = true;
        }
        Ok(update)
    }
}

/// A steady proxy: served once, then ACKing every push; a failed stream is opened again.
async fn proxy(
    i: usize,
    channel: Channel,
    node: Node,
    names: Vec<String>,
    clock: Arc<Clock>,
    events: mpsc::UnboundedSender<Event>,
) {
    let (mut served, mut seen_change, mut attempt) = (false, 0, 0);
    loop {
        let session = async {
            let mut stream = Stream::open(channel.clone(), node.clone(), names.clone()).await?;
            loop {
                let update = stream.next().await?;
                attempt = 0;
                if update.new_hot {
                    let (change, began) = *clock.current.lock().unwrap_or_else(|p| p.into_inner());
                    if change > seen_change {
                        seen_change = change;
                        let _ = events.send(Event::Pushed {
                            change,
                            after: began.elapsed(),
                        });
                    }
                }
                if update.served && !served {
                    served = true;
                    let _ = events.send(Event::Synced);
                }
            }
        };
        let e: anyhow::Result<()> = session.await;
        let e = e.err().map_or_else(String::new, |e| format!("{e:#}"));
        if events.send(Event::Retried(i, e)).is_err() {
            return;
        }
        tokio::time::sleep(backoff(i, attempt)).await;
        attempt += 1;
    }
}

fn ack(resp: &DeltaResponse) -> DeltaRequest {
    DeltaRequest {
        type_url: resp.type_url.clone(),
        response_nonce: resp.nonce.clone(),
        ..Default::default()
    }
}

impl Fleet {
    /// Counts the retries reported so far that no wait has read yet.
    pub fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            if let Event::Retried(i, e) = event {
                self.retried(i, e);
            }
        }
    }

    fn retried(&mut self, i: usize, error: String) {
        self.retries += 1;
        if self.errors.len() < 5 {
            self.errors.push(format!("simulated proxy {i}: {error}"));
        }
    }

    /// Waits until every proxy holds all its subscriptions.
    pub async fn synced(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let mut left = self.proxies;
        let deadline = tokio::time::Instant::now() + timeout;
        while left > 0 {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Event::Synced)) => left -= 1,
                Ok(Some(Event::Retried(i, e))) => self.retried(i, e),
                Ok(Some(Event::Pushed { .. })) => {}
                Ok(None) => bail!("every simulated proxy stopped"),
                Err(_) => bail!(
                    "{left} of {} proxies not synced within {timeout:?}",
                    self.proxies
                ),
            }
        }
        Ok(())
    }

    /// Starts change number `change` now: `apply` writes the config. Returns, per proxy that
    /// ACKed the new version within `timeout`, how long after the write it did.
    pub async fn change(
        &mut self,
        change: u64,
        apply: impl FnOnce() -> anyhow::Result<()>,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Duration>> {
        *self.clock.current.lock().unwrap_or_else(|p| p.into_inner()) = (change, Instant::now());
        apply()?;
        let mut out = Vec::with_capacity(self.proxies);
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < self.proxies {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Event::Pushed { change: c, after })) if c == change => out.push(after),
                Ok(Some(Event::Retried(i, e))) => self.retried(i, e),
                Ok(Some(_)) => {}
                Ok(None) => bail!("every simulated proxy stopped"),
                Err(_) => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_and_stays_within_the_maximum_and_a_half() {
        for i in [0, 1, 999] {
            let first = backoff(i, 0);
            assert!(
                first >= BACKOFF_MIN && first < BACKOFF_MIN * 3 / 2,
                "{first:?}"
            );
            let third = backoff(i, 2);
            assert!(
                third >= BACKOFF_MIN * 4 && third < BACKOFF_MIN * 6,
                "{third:?}"
            );
            let late = backoff(i, 40);
            assert!(
                late >= BACKOFF_MAX && late < BACKOFF_MAX * 3 / 2,
                "{late:?}"
            );
        }
    }

    #[test]
    fn every_proxy_subscribes_to_the_changed_service_and_has_its_own_address() {
        for i in [0, 1, 500, 9_999] {
            let names = subscriptions(i, 1000);
            assert_eq!(names[0], mesh::service_key(HOT));
            assert!((2..=3).contains(&names.len()));
        }
        let addresses: std::collections::BTreeSet<_> = (0..20_000).map(address).collect();
        assert_eq!(addresses.len(), 20_000);
        let node = node("sim-7", Some(address(7)));
        assert_eq!(
            (node.id.as_str(), node.ip.as_str()),
            ("sim-7.scale", "198.19.0.8")
        );
    }
}
