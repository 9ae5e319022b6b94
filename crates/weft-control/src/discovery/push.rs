//! What a stream sends when the snapshot changes: of the resources it subscribed to, only those
//! that changed since the generation it last looked at, each in a wire form encoded once.

use std::collections::BTreeSet;
use std::sync::Arc;

use weft_core::annotations::DataplaneMode;
use weft_core::model::{
    ADDRESS_TYPE, Encoded, GATEWAY_TYPE, PROXY_TYPE, Pod, SERVICE_TYPE, Snapshot,
};

/// Who a stream serves: its own pod (a sidecar), or a node's ambient pods (a node proxy).
#[derive(Debug, Clone, Copy)]
pub(super) enum Serves<'a> {
    Pod(Option<&'a Pod>),
    Node(&'a str),
}

impl<'a> Serves<'a> {
    /// A node proxy's node, else the sidecar's pod (if it announced one).
    pub(super) fn of(node: Option<&'a str>, pod: Option<&'a Pod>) -> Serves<'a> {
        match node {
            Some(node) => Serves::Node(node),
            None => Serves::Pod(pod),
        }
    }
}

/// The names of type `ty` that may differ in `snap` from generation `since`; `None` when any
/// may (a new configuration rebuilt). A proxy config changes with its pod.
pub(super) fn changed(
    ty: &str,
    snap: &Snapshot,
    since: u64,
    serves: Serves<'_>,
) -> Option<BTreeSet<String>> {
    match ty {
        SERVICE_TYPE => Some(snap.changed_services(since)?.map(String::from).collect()),
        ADDRESS_TYPE => Some(
            snap.changed_addresses(since)?
                .map(|ip| ip.to_string())
                .collect(),
        ),
        // One lookup for the stream's own pod, however many pods changed meanwhile.
        PROXY_TYPE => match serves {
            Serves::Pod(Some(pod)) => {
                let changed = snap.pod_changed_after(&pod.id, since)?;
                Some(changed.then(|| pod.id.clone()).into_iter().collect())
            }
            Serves::Pod(None) => Some(BTreeSet::new()),
            Serves::Node(_) => Some(snap.changed_pods(since)?.map(String::from).collect()),
        },
        GATEWAY_TYPE => Some(snap.changed_gateways(since)?.map(String::from).collect()),
        _ => Some(BTreeSet::new()),
    }
}

/// The wire form of resource `name` of type `ty`, or None when it does not exist (for this
/// stream). Services are encoded once per version for every stream; the rest are small and
/// per proxy. A proxy config exists for a sidecar's own pod, and for a node proxy for each
/// pod on its node in ambient mode: a pod that leaves the node or ambient mode is removed.
pub(super) fn encode(
    ty: &str,
    name: &str,
    snap: &Snapshot,
    serves: Serves<'_>,
) -> Option<Arc<Encoded>> {
    let encoded = match ty {
        SERVICE_TYPE => return snap.encoded(name),
        ADDRESS_TYPE => Encoded::of(&snap.address(name.parse().ok()?)?),
        GATEWAY_TYPE => Encoded::of(snap.gateways.get(name)?),
        PROXY_TYPE => {
            let pod = match serves {
                Serves::Pod(pod) => pod.filter(|p| p.id == name)?,
                Serves::Node(node) => snap.pod(name).filter(|p| {
                    p.node == node
                        && snap.settings(p).dataplane_mode == DataplaneMode::Ambient
                        && !snap.is_waypoint_pod(p)
                })?,
            };
            Encoded::of(&snap.proxy(pod))
        }
        _ => None,
    };
    encoded.map(Arc::new)
}
