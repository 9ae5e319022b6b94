//! The discovery client: one delta stream to the control plane, ACK or NACK per response,
//! on-demand subscriptions, and reconnect with backoff. While disconnected the proxy keeps
//! serving with what it has (static stability); on reconnect it re-subscribes with the versions
//! it holds, so unchanged resources are not resent. Counted in [`Metrics`].
//!
//! The first request says which discovery protocol, build and revision the proxy has
//! ([`weft_proto::PROTOCOL_VERSION`]). A control plane that will not serve them (too old, too
//! new, another revision) ends the stream with FAILED_PRECONDITION and says what to do: that
//! is logged as an error once per distinct message, and the proxy goes on serving with its last
//! config and retrying with its usual backoff, so it is served once the operator has acted.

mod metrics;

pub use metrics::Metrics;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use weft_core::model::{ADDRESS_TYPE, GATEWAY_TYPE, PROXY_TYPE, SERVICE_TYPE};
use weft_proto::discovery::discovery_client::DiscoveryClient;
use weft_proto::discovery::{DeltaRequest, DeltaResponse, ErrorDetail, Node};

use crate::certs::Source;
use crate::control::{self, ControlPlane};
use crate::state::{Interest, Store};
use crate::tunnel::Credentials;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why a discovery session ended.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("stream closed by the control plane")]
    Closed,
    #[error("{0} needs a workload certificate: give the proxy --bootstrap-token-file")]
    NoCertificate(String),
    #[error(transparent)]
    Channel(#[from] control::Error),
    #[error("request channel closed")]
    RequestsClosed,
    #[error("discovery stream refused: {0}")]
    Refused(String),
    /// FAILED_PRECONDITION: the control plane does not serve this proxy's protocol version or
    /// revision; its message says which and what to do.
    #[error("the control plane does not serve this proxy: {0}")]
    NotServed(String),
    #[error("discovery stream failed: {0}")]
    Failed(String),
    #[error("stream yielded to the node proxy taking over")]
    Yielded,
}

/// Connection state, for readiness and the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub connected: bool,
    /// A proxy config was received and ACKed at least once.
    pub configured: bool,
    pub last_error: Option<String>,
}

/// Runs until the task is dropped. While `yielded` is true it holds no stream.
#[allow(clippy::too_many_arguments)] // the engine hands over each piece it wires
pub async fn run(
    control: ControlPlane,
    certs: Option<Arc<Source>>,
    node: Node,
    store: Arc<Store>,
    mut subscriptions: mpsc::UnboundedReceiver<Interest>,
    status: watch::Sender<Status>,
    metrics: Metrics,
    mut yielded: watch::Receiver<bool>,
) {
    store.want(PROXY_TYPE, &node.id);
    let mut backoff = BACKOFF_MIN;
    let mut refusals = Refusals::default();
    loop {
        // Yielded (a node proxy handing over): no stream until it is taken up again.
        if yielded.wait_for(|y| !*y).await.is_err() {
            return;
        }
        let result = tokio::select! {
            r = session(
                &control,
                &certs,
                &node,
                &store,
                &mut subscriptions,
                &status,
                &metrics,
                refusals.any(),
            ) => r,
            () = async {
                if yielded.wait_for(|y| *y).await.is_err() {
                    std::future::pending().await
                }
            } => Err(Error::Yielded),
        };
        let err = result.err().unwrap_or(Error::Closed);
        let not_served = match &err {
            Error::NotServed(message) => Some(message.clone()),
            _ => None,
        };
        if status.borrow().connected {
            // The session worked (a refusal arrives on an open stream, but is no session): the
            // next failure starts over from a short wait.
            if not_served.is_none() {
                backoff = BACKOFF_MIN;
                refusals.served();
            }
            metrics.connected(false);
        }
        let yielded_now = matches!(err, Error::Yielded);
        let err = err.to_string();
        status.send_modify(|s| {
            s.connected = false;
            s.last_error = Some(err.clone());
        });
        if yielded_now {
            tracing::info!("discovery: {err}; serving with the last config");
            continue;
        }
        match not_served {
            // Nothing changes by retrying until the operator acts: said loudly once, then quietly.
            Some(message) if refusals.first(&message) => {
                tracing::error!(control_plane = %control.address, "discovery: {err}; serving with the last config, retrying");
            }
            Some(_) => {
                tracing::debug!(control_plane = %control.address, "discovery: {err}; retrying in {backoff:?}");
            }
            None => {
                tracing::warn!(control_plane = %control.address, "discovery: {err}; serving with the last config, retrying in {backoff:?}");
            }
        }
        // Jitter spreads reconnects of many proxies after a control-plane restart.
        let jitter = Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64 / 2));
        tokio::time::sleep(backoff + jitter).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        if status.borrow().configured {
            backoff = backoff.min(Duration::from_secs(1));
        }
    }
}

/// One stream until it ends; `refused`: the last ones were refused, so connecting is not news.
#[allow(clippy::too_many_arguments)] // the pieces `run` holds, lent for one stream
async fn session(
    control: &ControlPlane,
    certs: &Option<Arc<Source>>,
    node: &Node,
    store: &Arc<Store>,
    subscriptions: &mut mpsc::UnboundedReceiver<Interest>,
    status: &watch::Sender<Status>,
    metrics: &Metrics,
    refused: bool,
) -> Result<(), Error> {
    let creds = certs.clone().map(|c| c as Arc<dyn Credentials>);
    if control.secure() {
        // Discovery over TLS is admitted only with the workload certificate.
        let Some(source) = certs else {
            return Err(Error::NoCertificate(control.address.clone()));
        };
        let mut ready = source.ready();
        let _ = ready.wait_for(|r| *r).await;
    }
    let channel = control.connect(creds).await?;
    let mut client = DiscoveryClient::new(channel);
    let (tx, rx) = mpsc::channel(64);
    // First request: who we are, and everything we already hold.
    let mut by_type: HashMap<String, (Vec<String>, HashMap<String, String>)> = HashMap::new();
    for (ty, name, version) in store.subscriptions() {
        let e = by_type.entry(ty).or_default();
        if let Some(v) = version {
            e.1.insert(name.clone(), v);
        }
        e.0.push(name);
    }
    let mut first = true;
    for ty in [PROXY_TYPE, GATEWAY_TYPE, ADDRESS_TYPE, SERVICE_TYPE] {
        let (names, versions) = by_type.remove(ty).unwrap_or_default();
        if names.is_empty() && !first {
            continue;
        }
        let req = DeltaRequest {
            node: first.then(|| node.clone()),
            type_url: ty.to_string(),
            subscribe: names,
            initial_versions: versions,
            ..Default::default()
        };
        first = false;
        tx.send(req).await.map_err(|_| Error::RequestsClosed)?;
    }
    let mut responses = client
        .delta(ReceiverStream::new(rx))
        .await
        .map_err(|e| match not_served(&e) {
            Some(err) => err,
            None => Error::Refused(e.message().to_string()),
        })?
        .into_inner();
    status.send_modify(|s| {
        s.connected = true;
        s.last_error = None;
    });
    metrics.connected(true);
    if node.role == crate::node::ROLE {
        // A node proxy has no configuration of its own: connected is configured (its pods
        // each wait for theirs).
        status.send_modify(|s| s.configured = true);
    }
    if refused {
        tracing::debug!(control_plane = %control.address, "discovery connected");
    } else {
        tracing::info!(control_plane = %control.address, "discovery connected");
    }
    loop {
        tokio::select! {
            msg = responses.message() => {
                let resp = match msg {
                    Ok(Some(r)) => r,
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        return Err(not_served(&e)
                            .unwrap_or_else(|| Error::Failed(e.message().to_string())));
                    }
                };
                let reply = handle(store, &resp, status, metrics);
                tx.send(reply).await.map_err(|_| Error::RequestsClosed)?;
            }
            sub = subscriptions.recv() => {
                let Some((ty, name, subscribe)) = sub else { return Ok(()) };
                let req = match subscribe {
                    true => DeltaRequest { type_url: ty, subscribe: vec![name], ..Default::default() },
                    false => DeltaRequest { type_url: ty, unsubscribe: vec![name], ..Default::default() },
                };
                tx.send(req).await.map_err(|_| Error::RequestsClosed)?;
            }
        }
    }
}

/// A refusal the operator must act on (FAILED_PRECONDITION), as [`Error::NotServed`].
fn not_served(status: &tonic::Status) -> Option<Error> {
    (status.code() == tonic::Code::FailedPrecondition)
        .then(|| Error::NotServed(status.message().to_string()))
}

/// The control plane's refusals already logged: each distinct message once, not every retry,
/// until the proxy is served again.
#[derive(Debug, Default)]
struct Refusals {
    logged: std::collections::BTreeSet<String>,
}

impl Refusals {
    /// Whether `message` is new (and so to be logged).
    fn first(&mut self, message: &str) -> bool {
        // Bounded: a control plane that keeps changing its words is logged again, not stored.
        if self.logged.len() >= 16 {
            self.logged.clear();
        }
        self.logged.insert(message.to_string())
    }

    fn served(&mut self) {
        self.logged.clear();
    }

    /// Whether the proxy has been refused since it was last served.
    fn any(&self) -> bool {
        !self.logged.is_empty()
    }
}

/// Applies a response and builds its ACK or NACK.
fn handle(
    store: &Store,
    resp: &DeltaResponse,
    status: &watch::Sender<Status>,
    metrics: &Metrics,
) -> DeltaRequest {
    let resources: Vec<(String, String, Vec<u8>)> = resp
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.version.clone(), r.body.clone()))
        .collect();
    let result = store.apply(&resp.type_url, &resources, &resp.removed);
    metrics.update(&resp.type_url, result.is_ok());
    let error_detail = match result {
        Ok(()) => {
            if resp.type_url == PROXY_TYPE && store.proxy_config().is_some() {
                status.send_modify(|s| s.configured = true);
            }
            tracing::debug!(type_url = %resp.type_url, n = resources.len(), removed = resp.removed.len(), "config applied");
            None
        }
        Err(e) => {
            let message = e.to_string();
            tracing::warn!(type_url = %resp.type_url, "config rejected, keeping the previous one: {message}");
            Some(ErrorDetail { message })
        }
    };
    DeltaRequest {
        type_url: resp.type_url.clone(),
        response_nonce: resp.nonce.clone(),
        error_detail,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use weft_proto::discovery::Resource;

    use super::*;

    fn response(body: &[u8]) -> DeltaResponse {
        DeltaResponse {
            type_url: SERVICE_TYPE.into(),
            nonce: "1".into(),
            resources: vec![Resource {
                name: "shop/web".into(),
                version: "1".into(),
                body: body.to_vec(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_refusal_is_logged_once_per_message_until_served() {
        let mut r = Refusals::default();
        assert!(r.first("protocol 0"));
        assert!(
            !r.first("protocol 0"),
            "a retry refused alike is not logged again"
        );
        assert!(r.first("revision canary"));
        r.served();
        assert!(
            r.first("protocol 0"),
            "refused again after being served: logged again"
        );
    }

    #[test]
    fn only_failed_precondition_is_a_refusal_to_act_on() {
        let refused = tonic::Status::failed_precondition("proxy p belongs to revision canary");
        assert!(matches!(
            not_served(&refused),
            Some(Error::NotServed(m)) if m == "proxy p belongs to revision canary"
        ));
        assert!(not_served(&tonic::Status::permission_denied("claim")).is_none());
    }

    #[test]
    fn applied_and_rejected_updates_are_counted_by_type() {
        let mut registry = crate::metrics::registry();
        let metrics = Metrics::register(registry.sub_registry_with_prefix("xds"));
        let (store, _subs) = Store::new();
        let (status, _) = watch::channel(Status::default());
        let nack = handle(&store, &response(b"not json"), &status, &metrics);
        assert!(nack.error_detail.is_some());
        let text = crate::metrics::encode(&registry);
        let line = r#"weft_xds_updates_total{type="weft.dev/Service",result="rejected"} 1"#;
        assert!(text.contains(line), "{line} not in {text}");
        assert!(text.contains("weft_xds_connected 0"), "{text}");
    }
}
