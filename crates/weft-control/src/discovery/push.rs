//! What a stream sends when the snapshot changes: of the resources it subscribed to, only those
//! that changed since the generation it last looked at, each in a wire form encoded once.

use std::collections::BTreeSet;
use std::sync::Arc;

use weft_core::model::{
    ADDRESS_TYPE, Encoded, GATEWAY_TYPE, PROXY_TYPE, Pod, SERVICE_TYPE, Snapshot,
};

/// The names of type `ty` that may differ in `snap` from generation `since`; `None` when any
/// may (a new configuration). `own` is the stream's pod id (its proxy config changes with it).
pub(super) fn changed(
    ty: &str,
    snap: &Snapshot,
    since: u64,
    own: Option<&str>,
) -> Option<BTreeSet<String>> {
    match ty {
        SERVICE_TYPE => Some(snap.changed_services(since)?.map(String::from).collect()),
        ADDRESS_TYPE => Some(
            snap.changed_addresses(since)?
                .map(|ip| ip.to_string())
                .collect(),
        ),
        // One lookup for the stream's own pod, however many pods changed meanwhile.
        PROXY_TYPE => match own {
            Some(id) => {
                let changed = snap.pod_changed_after(id, since)?;
                Some(changed.then(|| id.to_string()).into_iter().collect())
            }
            None => Some(BTreeSet::new()),
        },
        GATEWAY_TYPE => Some(snap.changed_gateways(since)?.map(String::from).collect()),
        _ => Some(BTreeSet::new()),
    }
}

/// The wire form of resource `name` of type `ty`, or None when it does not exist. Services are
/// encoded once per version for every stream; the rest are small and per proxy.
pub(super) fn encode(
    ty: &str,
    name: &str,
    snap: &Snapshot,
    pod: Option<&Pod>,
) -> Option<Arc<Encoded>> {
    let encoded = match ty {
        SERVICE_TYPE => return snap.encoded(name),
        ADDRESS_TYPE => Encoded::of(&snap.address(name.parse().ok()?)?),
        GATEWAY_TYPE => Encoded::of(snap.gateways.get(name)?),
        PROXY_TYPE => Encoded::of(&snap.proxy(pod.filter(|p| p.id == name)?)),
        _ => None,
    };
    encoded.map(Arc::new)
}
