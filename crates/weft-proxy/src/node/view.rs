//! What the node proxy holds for each enrolled pod ([`Held`]), and `GET /pods` made from it
//! ([`Pods`]): each pod's state, the identity, mTLS mode, policies and waypoints of its
//! config, and its certificate. `weft proxy-config workloads NODE` reads it back.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use weft_core::model::ProxyConfig;

use super::{PodListeners, PodState, States, lock};
use crate::certs::{self, CertInfo};
use crate::drain::Drain;
use crate::shared::View;
use crate::state::Store;

/// Why a served pod has no certificate source.
const NO_MTLS: &str = "the node proxy does no mTLS (no bootstrap token), or could not set up \
                       the pod's certificate issuer (see its log)";

/// One enrolled pod as the node proxy holds it.
#[derive(Debug)]
pub(super) struct Held {
    pub state: PodState,
    pub netns: PathBuf,
    /// The certificate of the pod while it is served (None: not served, or no mTLS).
    pub cert: Option<Arc<certs::Source>>,
}

impl Held {
    pub fn pending(netns: PathBuf) -> Held {
        Held {
            state: PodState::Pending,
            netns,
            cert: None,
        }
    }
}

/// `GET /pods` of a node proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pods {
    pub node: String,
    /// Connections open on the listeners of every pod together (not counted per pod; a pod's
    /// L4 connections are relayed, not pooled, so it holds no idle upstream connections).
    pub open_connections: usize,
    pub pods: Vec<PodView>,
}

/// One enrolled pod in [`Pods`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodView {
    /// `POD.NAMESPACE`.
    pub id: String,
    pub netns: PathBuf,
    /// `pending`, `served` or `refused`.
    pub state: String,
    /// Served: its listeners inside its namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listeners: Option<PodListeners>,
    /// Refused: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// From its config (none before the control plane sent it): its SPIFFE ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// `STRICT`, `PERMISSIVE` or `DISABLE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls_mode: Option<String>,
    /// The AuthorizationPolicies enforced on its inbound traffic (`namespace/name`).
    #[serde(default)]
    pub policies: Vec<String>,
    /// The identities of the waypoints in front of it.
    #[serde(default)]
    pub waypoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertInfo>,
    /// Why it has no certificate, when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_certificate: Option<String>,
}

/// The `/pods` view of node `node` (set on the node's [`crate::shared::Shared`]).
pub(super) fn hook(node: String, store: Arc<Store>, drain: Drain, states: States) -> View {
    Arc::new(move || {
        let pods = lock(&states)
            .iter()
            .map(|(id, held)| view(id, held, store.pod_config(id).as_deref()))
            .collect();
        let pods = Pods {
            node: node.clone(),
            open_connections: drain.open(),
            pods,
        };
        serde_json::to_value(pods).unwrap_or_default()
    })
}

/// Pod `id` as it is held, with its config if the control plane sent one.
fn view(id: &str, held: &Held, config: Option<&ProxyConfig>) -> PodView {
    let (state, listeners, reason) = match &held.state {
        PodState::Pending => ("pending", None, None),
        PodState::Served(l) => ("served", Some(*l), None),
        PodState::Refused(why) => ("refused", None, Some(why.clone())),
    };
    let (certificate, no_certificate) = match (&held.cert, listeners) {
        (Some(c), _) => match c.info() {
            Some(info) => (Some(info), None),
            None => (None, c.not_ready_reason()),
        },
        (None, Some(_)) => (None, Some(NO_MTLS.into())),
        (None, None) => (None, Some(format!("the pod is not served ({state})"))),
    };
    let mtls_mode = config.and_then(|c| {
        let mode = serde_json::to_value(c.settings.mtls_mode).ok()?;
        mode.as_str().map(str::to_string)
    });
    PodView {
        id: id.into(),
        netns: held.netns.clone(),
        state: state.into(),
        listeners,
        reason,
        identity: config.map(|c| c.identity.clone()),
        mtls_mode,
        policies: config.map_or_else(Vec::new, |c| {
            c.authorization.iter().map(|p| p.name.clone()).collect()
        }),
        waypoints: config.map_or_else(Vec::new, |c| c.waypoints.clone()),
        certificate,
        no_certificate,
    }
}
