//! What a configuration change means for the mesh that runs, decided without touching it:
//! [`diff`] compares the plan in force with the plan of the new configuration (fitted to it by
//! [`Plan::next`]: running pods keep their addresses) and says what to do, pod by pod.
//!
//! | what changed in a Workload                                  | what happens                   |
//! |-------------------------------------------------------------|--------------------------------|
//! | `replicas` up, a new Workload                               | new pods start ([`Change::added`]) |
//! | `replicas` down, a Workload gone                            | pods stop, highest ordinal first, drained ([`Change::removed`]) |
//! | command, args, env, workingDir, ports, serviceAccountName, proxy annotations | a rolling restart ([`Change::restarts`]) |
//! | dataplane mode, labels                                      | a switch, the app keeps running ([`crate::switch`]) |
//! | its revision label alone                                    | registered; it moves when restarted |
//! | `spec.nodeName` of a running pod                            | refused                        |
//!
//! What the running mesh cannot change — its network, nodes, trust domain, metrics port and
//! ingress gateways are set up when `weft up` starts — is refused ([`Change::refused`]), one
//! line naming the field and why; the rest of the change is applied.

use std::collections::BTreeMap;

use weft_core::annotations::REV;

use crate::plan::{Plan, PodPlan};
use crate::switch::Switch;

/// What a new plan changes in the running one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// Pods to start: new replicas and the pods of new Workloads, with their new addresses.
    pub added: Vec<PodPlan>,
    /// Pods to stop and remove (indexes in the running plan): of each Workload the highest
    /// ordinal first.
    pub removed: Vec<usize>,
    /// Pods whose spec changed, to replace one at a time, in plan order.
    pub restarts: Vec<Restart>,
    /// Pods whose dataplane mode (or labels) changed, with the pod to put in force.
    pub switches: Vec<(Switch, PodPlan)>,
    /// Pods whose revision label alone changed: registered anew, not restarted.
    pub revisions: Vec<(usize, PodPlan)>,
    /// What cannot be applied while the mesh runs: one line each, naming the field and why.
    pub refused: Vec<String>,
}

/// A pod to replace: its index in the running plan, the pod it becomes, and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Restart {
    pub pod: usize,
    pub to: PodPlan,
    pub changed: Vec<&'static str>,
}

impl Change {
    /// Nothing to do (what is refused aside).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.restarts.is_empty()
            && self.switches.is_empty()
            && self.revisions.is_empty()
    }
}

/// Why the mesh's own settings cannot change while it runs.
const AT_START: &str = "weft up sets it up when it starts; restart weft up (weft down, then \
                        weft up) to apply it";

/// What `wanted` (the new configuration's plan, fitted by [`Plan::next`]) changes in
/// `running` (the plan in force). Pods are matched by namespace and name; removed ones are
/// left out.
pub fn diff(running: &Plan, wanted: &Plan) -> Change {
    let mut c = Change {
        refused: refused_mesh(running, wanted),
        ..Change::default()
    };
    let mut nodes_refused = BTreeMap::new();
    for (i, old) in running.pods.iter().enumerate() {
        if old.removed {
            continue;
        }
        let Some(new) = wanted.pods.iter().find(|p| p.id() == old.id()) else {
            c.removed.push(i);
            continue;
        };
        if old.node != new.node {
            let workload = format!("{}/{}", old.namespace, old.workload);
            nodes_refused.entry(workload).or_insert_with(|| {
                format!(
                    "{} → {}",
                    old.node_name.as_deref().unwrap_or(&old.node),
                    new.node_name.as_deref().unwrap_or(&new.node)
                )
            });
            continue;
        }
        let changed = spec_changes(old, new);
        let labels = without_rev(&old.labels) != without_rev(&new.labels);
        if old.mode != new.mode || (labels && changed.is_empty()) {
            let s = Switch {
                pod: i,
                from: old.mode,
                to: new.mode,
                labels,
            };
            c.switches.push((s, new.clone()));
        }
        if !changed.is_empty() {
            c.restarts.push(Restart {
                pod: i,
                to: new.clone(),
                changed,
            });
        } else if old.mode == new.mode && !labels && (old.rev != new.rev || old != new) {
            c.revisions.push((i, new.clone()));
        }
    }
    for (workload, change) in nodes_refused {
        c.refused.push(format!(
            "Workload {workload} spec.nodeName: {change}: a running pod stays on the node it \
             started on; give the Workload another name to start its pods there, or restart \
             weft up"
        ));
    }
    let live = |p: &&PodPlan| !p.removed;
    for new in &wanted.pods {
        if !running.pods.iter().filter(live).any(|p| p.id() == new.id()) {
            c.added.push(new.clone());
        }
    }
    // Of each Workload, the highest ordinal first.
    c.removed
        .sort_by_key(|i| std::cmp::Reverse(ordinal(&running.pods[*i])));
    c
}

/// `web-12` → 12 (a waypoint's pod, `NAME-0`, too).
fn ordinal(p: &PodPlan) -> u32 {
    (p.name.rsplit_once('-'))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// The mesh-wide settings that differ, each refused with the field's name.
fn refused_mesh(running: &Plan, wanted: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, old: String, new: String| {
        if old != new {
            out.push(format!("{field}: {old} → {new}: {AT_START}"));
        }
    };
    check(
        "Mesh spec.network.podCidr",
        running.pod_cidr.clone(),
        wanted.pod_cidr.clone(),
    );
    check(
        "Mesh spec.network.serviceCidr",
        running.service_cidr.clone(),
        wanted.service_cidr.clone(),
    );
    check(
        "Mesh spec.network.nodes",
        running.nodes.len().to_string(),
        wanted.nodes.len().to_string(),
    );
    check(
        "Mesh spec.trustDomain",
        running.trust_domain.clone(),
        wanted.trust_domain.clone(),
    );
    check(
        "Mesh spec.metrics.port",
        running.metrics_port.to_string(),
        wanted.metrics_port.to_string(),
    );
    // A Gateway's host ports are bound when its proxy starts (`--ingress-port` moves the
    // first one): compared by the Gateway's own listener ports.
    let gateways = |p: &Plan| -> Vec<String> {
        (p.gateways.iter())
            .map(|g| {
                let ports: Vec<String> = g.listeners.iter().map(|l| l.0.to_string()).collect();
                format!("{}/{} (ports {})", g.namespace, g.name, ports.join(", "))
            })
            .collect()
    };
    let (old, new) = (gateways(running), gateways(wanted));
    if old != new {
        let none = |v: Vec<String>| match v.is_empty() {
            true => "none".to_string(),
            false => v.join(", "),
        };
        out.push(format!(
            "ingress Gateways: {} → {}: their proxies bind host ports when weft up starts; \
             restart weft up (weft down, then weft up) to apply it",
            none(old),
            none(new)
        ));
    }
    out
}

/// Labels but the revision's: a new revision label alone does not restart a proxy.
fn without_rev(labels: &BTreeMap<String, String>) -> BTreeMap<&String, &String> {
    (labels.iter())
        .filter(|(k, _)| *k != REV && k.as_str() != "istio.io/rev")
        .collect()
}

/// What differs in the pod's spec that only new processes apply.
fn spec_changes(old: &PodPlan, new: &PodPlan) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name: &'static str, same: bool| {
        if !same {
            out.push(name);
        }
    };
    check("command", old.command == new.command);
    check("env", old.env == new.env);
    check("workingDir", old.cwd == new.cwd);
    check("ports", old.ready_port == new.ready_port);
    check(
        "serviceAccountName",
        old.service_account == new.service_account,
    );
    check(
        "proxy annotations",
        old.hold_application == new.hold_application
            && old.drain_seconds == new.drain_seconds
            && old.log_level == new.log_level
            && old.concurrency == new.concurrency
            && old.metrics == new.metrics,
    );
    out
}

#[cfg(test)]
mod tests;
