//! The control plane's events ([`weft_core::events`]): a configuration change applied or
//! rejected (with its problems), a proxy connected or gone, a push a proxy refused (with its
//! error), a proxy refused for what it runs. Written to the events file the control plane was
//! given (`weft up` gives each control plane its mesh's); without one, nothing is written and
//! the log lines alone tell.

use std::path::PathBuf;
use std::sync::OnceLock;

use weft_core::events::{Event, Log, Type};

use crate::status::NodeInfo;

/// Where events go, once set.
#[derive(Debug, Default)]
pub struct Events(OnceLock<Sink>);

#[derive(Debug)]
struct Sink {
    log: Log,
    /// `control plane` or `control plane REV`.
    source: String,
}

impl Events {
    /// From now on, events are appended to `path`, recorded as seen by the control plane of
    /// `revision`.
    pub fn to_file(&self, path: PathBuf, revision: Option<&str>) {
        let source = match revision {
            Some(r) => format!("control plane {r}"),
            None => "control plane".to_string(),
        };
        let _ = self.0.set(Sink {
            log: Log::new(path),
            source,
        });
    }

    /// Records an event about `object`; `details` are more lines (problems, errors).
    pub fn record(
        &self,
        kind: Type,
        reason: &str,
        object: String,
        message: String,
        details: Vec<String>,
    ) {
        let Some(sink) = self.0.get() else { return };
        let event = Event {
            details,
            ..Event::new(kind, reason, object, message, &sink.source)
        };
        if let Err(e) = sink.log.append(&event) {
            tracing::warn!(path = %sink.log.path.display(), "cannot record an event: {e}");
        }
    }

    /// Records an event about the pod a proxy runs for (or as).
    pub fn proxy(&self, node: &NodeInfo, kind: Type, reason: &str, message: String) {
        self.record(kind, reason, object(node), message, vec![]);
    }
}

/// The object of a proxy: `pod/NAMESPACE/POD` (a node proxy's pod is its node, a gateway's
/// `gateway-NAME`), or from its id `POD.NAMESPACE` when it gave no pod.
pub fn object(node: &NodeInfo) -> String {
    match (node.namespace.as_str(), node.pod.as_str()) {
        (ns, pod) if !ns.is_empty() && !pod.is_empty() => Event::pod(ns, pod),
        _ => match node.id.split_once('.') {
            Some((pod, ns)) => Event::pod(ns, pod),
            None => format!("proxy/{}", node.id),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_is_named_by_its_pod() {
        let node = |id: &str, ns: &str, pod: &str| NodeInfo {
            id: id.into(),
            namespace: ns.into(),
            pod: pod.into(),
            ..NodeInfo::default()
        };
        assert_eq!(
            object(&node("cart-0.shop", "shop", "cart-0")),
            "pod/shop/cart-0"
        );
        assert_eq!(object(&node("cart-0.shop", "", "")), "pod/shop/cart-0");
        assert_eq!(object(&node("odd", "", "")), "proxy/odd");
    }

    #[test]
    fn without_a_file_nothing_is_written_and_with_one_each_event_is_a_line() {
        let events = Events::default();
        events.record(Type::Normal, "X", "config/c".into(), "m".into(), vec![]);
        let dir = std::env::temp_dir().join(format!("weft-cp-events-{}", std::process::id()));
        let path = dir.join("events.jsonl");
        events.to_file(path.clone(), Some("canary"));
        let problems = vec!["a.yaml:3:1: bad".to_string()];
        let message = "rejected".to_string();
        let object = "config/c".to_string();
        events.record(Type::Warning, "ConfigRejected", object, message, problems);
        let read = Log::new(&path).read();
        assert_eq!(read.len(), 1, "{read:?}");
        assert_eq!(read[0].source, "control plane canary");
        assert_eq!(read[0].details, ["a.yaml:3:1: bad"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
