//! Simulated proxies: delta discovery streams as a sidecar opens them
//! (`crates/weft-proxy/src/xds.rs`): a node on the first request, subscriptions by name, and an
//! ACK for every response. Many streams share one HTTP/2 connection, as proxies behind one
//! node would; each connection carries at most [`STREAMS_PER_CONNECTION`] of them, below the
//! server's limit on concurrent streams (hyper's default is 200 per connection).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use weft_core::model::SERVICE_TYPE;
use weft_proto::discovery::discovery_client::DiscoveryClient;
use weft_proto::discovery::{DeltaRequest, DeltaResponse, Node};

use crate::mesh;

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
    /// The proxy holds every Service it subscribed to.
    Synced,
    /// The proxy ACKed a new version of Service [`HOT`], `after` the change began.
    Pushed {
        change: u64,
        after: Duration,
    },
    Failed(usize, String),
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
    clock: Arc<Clock>,
    events: mpsc::UnboundedReceiver<Event>,
    _tasks: JoinSet<()>,
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
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        let ch = Endpoint::from_shared(endpoint.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("connecting to {endpoint}"))?;
        channels.push(ch);
    }
    let clock = Arc::new(Clock {
        current: Mutex::new((0, Instant::now())),
    });
    let (tx, events) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let node = node(i, announce);
        let names = subscriptions(i, services);
        let (ch, clock, tx) = (channels[i % connections].clone(), clock.clone(), tx.clone());
        tasks.spawn(async move {
            if let Err(e) = proxy(ch, node, names, clock, tx.clone()).await {
                let _ = tx.send(Event::Failed(i, format!("{e:#}")));
            }
        });
    }
    Ok(Fleet {
        proxies: n,
        connections,
        clock,
        events,
        _tasks: tasks,
    })
}

fn node(i: usize, announce: bool) -> Node {
    let ip = if announce {
        // 198.19.0.0/16, outside the generated pods' range; never contacted.
        let n = 1 + i as u32;
        std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 19, 0, 0)) + n).to_string()
    } else {
        String::new()
    };
    Node {
        id: format!("sim-{i}.{}", mesh::NAMESPACE),
        role: "sidecar".into(),
        namespace: mesh::NAMESPACE.into(),
        workload: "sim".into(),
        pod: format!("sim-{i}"),
        ip,
        service_account: "sim".into(),
        labels: [("app".to_string(), "sim".to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

async fn proxy(
    channel: Channel,
    node: Node,
    names: Vec<String>,
    clock: Arc<Clock>,
    events: mpsc::UnboundedSender<Event>,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel(8);
    tx.send(DeltaRequest {
        node: Some(node),
        type_url: SERVICE_TYPE.into(),
        subscribe: names.clone(),
        ..Default::default()
    })
    .await?;
    let mut client = DiscoveryClient::new(channel).max_decoding_message_size(64 << 20);
    let mut responses = client
        .delta(ReceiverStream::new(rx))
        .await
        .context("discovery stream refused")?
        .into_inner();
    let hot = mesh::service_key(HOT);
    let mut held: std::collections::HashMap<String, String> = Default::default();
    let mut synced = false;
    let mut seen_change = 0;
    while let Some(resp) = responses.message().await? {
        let mut new_hot = false;
        for r in &resp.resources {
            let previous = held.insert(r.name.clone(), r.version.clone());
            if r.name == hot && previous.is_some_and(|p| p != r.version) {
                new_hot = true;
            }
        }
        for name in &resp.removed {
            held.remove(name);
        }
        tx.send(ack(&resp)).await?;
        if new_hot {
            let (change, began) = *clock.current.lock().unwrap_or_else(|p| p.into_inner());
            if change > seen_change {
                seen_change = change;
                let _ = events.send(Event::Pushed {
                    change,
                    after: began.elapsed(),
                });
            }
        }
        if !synced && names.iter().all(|n| held.contains_key(n)) {
            synced = true;
            let _ = events.send(Event::Synced);
        }
    }
    bail!("the control plane closed the stream")
}

fn ack(resp: &DeltaResponse) -> DeltaRequest {
    DeltaRequest {
        type_url: resp.type_url.clone(),
        response_nonce: resp.nonce.clone(),
        ..Default::default()
    }
}

impl Fleet {
    /// Waits until every proxy holds all its subscriptions.
    pub async fn synced(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let mut left = self.proxies;
        let deadline = tokio::time::Instant::now() + timeout;
        while left > 0 {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Event::Synced)) => left -= 1,
                Ok(Some(Event::Failed(i, e))) => bail!("simulated proxy {i}: {e}"),
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
                Ok(Some(Event::Failed(i, e))) => bail!("simulated proxy {i}: {e}"),
                Ok(Some(_)) => {}
                Ok(None) => bail!("every simulated proxy stopped"),
                Err(_) => break,
            }
        }
        Ok(out)
    }
}
