//! `weft restart NODE`: what the command asks a running `weft up` ([`crate::requests`], kind
//! `restart`): to restart a node proxy by hand-off; the runtime starts the new process next to
//! the old one ([`crate::supervise::handoff`]) and replies with what happened.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::status::Named;

/// Restart the proxy of `node`, with `binary` instead of the running one's if given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    pub node: String,
    #[serde(default)]
    pub binary: Option<PathBuf>,
}

/// What a restart did: the old and new pids and the pods handed over, or why it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    pub node: String,
    pub old_pid: Option<u32>,
    pub new_pid: Option<u32>,
    /// The pods enrolled on the node: their listeners went to the new process.
    #[serde(default)]
    pub pods: Vec<String>,
    pub error: Option<String>,
}

impl Reply {
    pub fn failed(node: &str, error: String) -> Reply {
        Reply {
            node: node.into(),
            error: Some(error),
            ..Reply::default()
        }
    }

    /// One line for the person who asked.
    pub fn describe(&self) -> String {
        let node = &self.node;
        let old = self.old_pid.map_or("?".to_string(), |p| p.to_string());
        if let Some(e) = &self.error {
            return format!("node proxy {node} not restarted: {e}");
        }
        let new = self.new_pid.map_or("?".to_string(), |p| p.to_string());
        let pods = match self.pods.as_slice() {
            [] => "no pods".to_string(),
            p => format!("{} pods ({})", p.len(), p.join(", ")),
        };
        format!(
            "node proxy {node} restarted by hand-off: pid {old} → pid {new}; {pods} handed over; \
             pid {old} drains its connections and exits by itself"
        )
    }
}

/// Which node proxy a request is for: the index of `node` among the instance's nodes, if its
/// proxy runs and is ready (a process that is starting has no listeners to hand over yet).
pub fn check(nodes: &[Named], node: &str) -> Result<usize, String> {
    let Some(i) = nodes.iter().position(|n| n.name == node) else {
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(format!("no node {node:?}; nodes: {}", names.join(", ")));
    };
    match nodes[i].process.state.as_str() {
        "ready" => Ok(i),
        "none" => Err(format!(
            "node {node} has no node proxy: it starts with the node's first ambient pod"
        )),
        state => Err(format!(
            "its node proxy is {state}, not ready; try again once `weft get pods` shows it ready"
        )),
    }
}

/// The kind of request file `weft restart` writes ([`crate::requests`]).
pub const KIND: &str = "restart";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Process;

    #[test]
    fn a_request_is_for_a_node_whose_proxy_is_ready() {
        let node = |name: &str, state: &str| Named {
            name: name.into(),
            process: Process {
                state: state.into(),
                ..Process::default()
            },
        };
        let nodes = [
            node("node-1", "ready"),
            node("node-2", "none"),
            node("node-3", "restarting"),
        ];
        let cases = [
            ("node-1", Ok(0)),
            (
                "node-9",
                Err("no node \"node-9\"; nodes: node-1, node-2, node-3"),
            ),
            ("node-2", Err("node node-2 has no node proxy")),
            ("node-3", Err("its node proxy is restarting, not ready")),
        ];
        for (name, want) in cases {
            match (check(&nodes, name), want) {
                (Ok(i), Ok(w)) => assert_eq!(i, w),
                (Err(e), Err(w)) => assert!(e.starts_with(w), "{name}: {e}"),
                (got, want) => panic!("{name}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn a_reply_says_what_happened() {
        let ok = Reply {
            node: "node-1".into(),
            old_pid: Some(10),
            new_pid: Some(20),
            pods: vec!["a-0.shop".into(), "b-0.shop".into()],
            error: None,
        };
        assert_eq!(
            ok.describe(),
            "node proxy node-1 restarted by hand-off: pid 10 → pid 20; 2 pods (a-0.shop, \
             b-0.shop) handed over; pid 10 drains its connections and exits by itself"
        );
        let failed = Reply::failed("node-1", "cannot start /x: not found".into());
        assert_eq!(
            failed.describe(),
            "node proxy node-1 not restarted: cannot start /x: not found"
        );
    }
}
