//! Which node each pod runs on: a Workload's `spec.nodeName` when it names one, otherwise the
//! nodes in turn, in the order pods are planned, so that the replicas of a Workload land on
//! different nodes (as long as there are enough) and the nodes carry about as many pods each.

use anyhow::bail;

/// Hands out nodes to pods one at a time.
#[derive(Debug, Clone)]
pub struct Spread {
    nodes: Vec<String>,
    /// How many pods were given a node in turn.
    turn: usize,
}

impl Spread {
    /// Over `nodes` (at least one).
    pub fn new(nodes: Vec<String>) -> Spread {
        assert!(!nodes.is_empty(), "a mesh has at least one node");
        Spread { nodes, turn: 0 }
    }

    /// The node of the next pod: `pinned` when given (it must be one of the nodes), otherwise
    /// the next node in turn. `who` names the Workload in the error.
    pub fn next(&mut self, pinned: Option<&str>, who: &str) -> anyhow::Result<String> {
        if let Some(name) = pinned {
            if !self.nodes.iter().any(|n| n == name) {
                bail!(
                    "{who}: spec.nodeName {name:?} is not a node of this mesh; its nodes are {} \
                     (the Mesh's spec.network.nodes says how many)",
                    self.nodes.join(", ")
                );
            }
            return Ok(name.to_string());
        }
        let node = self.nodes[self.turn % self.nodes.len()].clone();
        self.turn += 1;
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: u32) -> Vec<String> {
        (1..=n).map(|i| format!("node-{i}")).collect()
    }

    #[test]
    fn pods_take_the_nodes_in_turn_and_pins_do_not_take_a_turn() {
        let mut s = Spread::new(nodes(3));
        let mut next = |pin| s.next(pin, "Workload shop/web").unwrap();
        let got: Vec<String> = [None, None, Some("node-3"), None, None, Some("node-1"), None]
            .into_iter()
            .map(&mut next)
            .collect();
        assert_eq!(
            got,
            [
                "node-1", "node-2", "node-3", "node-3", "node-1", "node-1", "node-2"
            ]
        );
    }

    #[test]
    fn one_node_takes_every_pod_and_an_unknown_pin_is_refused() {
        let mut s = Spread::new(nodes(1));
        assert_eq!(s.next(None, "w").unwrap(), "node-1");
        assert_eq!(s.next(None, "w").unwrap(), "node-1");
        let e = s.next(Some("node-2"), "Workload shop/web").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Workload shop/web: spec.nodeName \"node-2\" is not a node of this mesh; its nodes \
             are node-1 (the Mesh's spec.network.nodes says how many)"
        );
    }
}
