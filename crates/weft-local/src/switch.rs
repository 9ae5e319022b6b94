//! What a configuration change means for the pods that run, decided without touching them:
//! [`diff`] compares the plan in force with the plan of the new configuration, and [`steps`]
//! says, for one pod whose dataplane mode (or labels) changed, what to do in which order so
//! that its app keeps running and its traffic has somewhere to go at every step.
//!
//! | from → to         | steps                                                                  |
//! |-------------------|------------------------------------------------------------------------|
//! | sidecar → ambient | stop the sidecar (it drains), enrol on the node, wait until served     |
//! | ambient → sidecar | unenrol, wait until the node proxy released the pod, start the sidecar |
//! | ambient → none    | translate Services, remove capture, unenrol, wait until released       |
//! | none → ambient    | enrol, wait until served, install capture, stop translating Services   |
//! | sidecar → none    | translate Services, remove capture, stop the sidecar                   |
//! | none → sidecar    | start the sidecar, install capture, stop translating Services          |
//!
//! Capture is the same for a sidecar and a node proxy, so it stays between those two. Every
//! switch first registers the pod anew (mode, labels: the plan, the status, the pods file and
//! the bootstrap file). A sidecar pod whose labels changed restarts its sidecar, which claims
//! its labels when it connects. What else changed (pods added or removed, commands, nodes,
//! Services, gateways, settings) is reported as needing a restart of `weft up`.

use std::collections::BTreeMap;

use weft_core::annotations::{DataplaneMode, REV};

use crate::plan::{Plan, PodPlan, mode_name};

/// One pod to switch: its index in the plan and its mode before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub pod: usize,
    pub from: DataplaneMode,
    pub to: DataplaneMode,
    /// Its labels changed.
    pub labels: bool,
}

/// What a new plan changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub switches: Vec<Switch>,
    /// What changed that only a restart of `weft up` applies, one line each.
    pub ignored: Vec<String>,
    /// Pods whose revision label changed, and nothing else: registered anew (`weft status`
    /// shows the revision they ask for), not restarted — a pod moves when it restarts.
    pub revisions: Vec<usize>,
}

/// One step of a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Put the pod's new mode and labels in force: plan, status, pods file, registration.
    Register,
    /// Stop its sidecar process and wait until it has exited (it drains first).
    StopSidecar,
    /// Start its sidecar and wait until it is ready.
    StartSidecar,
    /// Put it on its node's enrolment file (starting the node proxy if needed).
    Enrol,
    /// Wait until its node proxy serves it (its tunnel listener is open in the pod).
    WaitServed,
    /// Take it off its node's enrolment file.
    Unenrol,
    /// Wait until its node proxy released it (no tunnel listener in the pod).
    WaitReleased,
    InstallCapture,
    RemoveCapture,
    /// Give it Service address translation (it has no proxy to do it).
    TranslateServices,
    UntranslateServices,
}

/// The steps of `s`, in order.
pub fn steps(s: &Switch) -> Vec<Step> {
    use DataplaneMode::{Ambient, None, Sidecar};
    use Step::*;
    let mut out = vec![Register];
    out.extend_from_slice(match (s.from, s.to) {
        (Sidecar, Ambient) => &[StopSidecar, Enrol, WaitServed][..],
        (Ambient, Sidecar) => &[Unenrol, WaitReleased, StartSidecar],
        (Ambient, None) => &[TranslateServices, RemoveCapture, Unenrol, WaitReleased],
        (None, Ambient) => &[Enrol, WaitServed, InstallCapture, UntranslateServices],
        (Sidecar, None) => &[TranslateServices, RemoveCapture, StopSidecar],
        (None, Sidecar) => &[StartSidecar, InstallCapture, UntranslateServices],
        // The same mode: only the labels changed. A sidecar claims its labels when it
        // connects: a new one claims the new labels.
        (Sidecar, Sidecar) => &[StopSidecar, StartSidecar],
        (Ambient, Ambient) | (None, None) => &[],
    });
    out
}

/// What `wanted` (the plan of a new configuration) changes in `running` (the plan in force).
/// Pods are matched by namespace and name.
pub fn diff(running: &Plan, wanted: &Plan) -> Diff {
    let mut d = Diff::default();
    for (i, old) in running.pods.iter().enumerate() {
        let Some(new) = wanted.pods.iter().find(|p| p.id() == old.id()) else {
            d.ignored
                .push(format!("pod {} is gone from the configuration", old.id()));
            continue;
        };
        let changed = other_changes(old, new);
        if !changed.is_empty() {
            d.ignored
                .push(format!("pod {}: {} changed", old.id(), changed.join(", ")));
        }
        let labels = without_rev(&old.labels) != without_rev(&new.labels);
        if old.mode != new.mode || labels {
            d.switches.push(Switch {
                pod: i,
                from: old.mode,
                to: new.mode,
                labels,
            });
        } else if old.rev != new.rev || old.labels != new.labels {
            d.revisions.push(i);
        }
    }
    for new in &wanted.pods {
        if !running.pods.iter().any(|p| p.id() == new.id()) {
            d.ignored.push(format!("pod {} is new", new.id()));
        }
    }
    if running.nodes != wanted.nodes {
        d.ignored.push(format!(
            "nodes: {} now, {} wanted",
            running.nodes.len(),
            wanted.nodes.len()
        ));
    }
    if running.services != wanted.services {
        d.ignored
            .push("Services (addresses, ports or backends of pods without a proxy)".into());
    }
    if running.hosts != wanted.hosts {
        d.ignored.push("names in the pods' /etc/hosts".into());
    }
    let gateways = |p: &Plan| -> Vec<(String, String)> {
        (p.gateways.iter())
            .map(|g| (g.namespace.clone(), g.name.clone()))
            .collect()
    };
    if gateways(running) != gateways(wanted) {
        d.ignored.push("ingress Gateways".into());
    }
    d
}

/// Labels but the revision's: a new revision label alone does not restart a proxy.
fn without_rev(labels: &BTreeMap<String, String>) -> BTreeMap<&String, &String> {
    (labels.iter())
        .filter(|(k, _)| *k != REV && k.as_str() != "istio.io/rev")
        .collect()
}

/// The pod's fields other than its mode and labels that differ.
fn other_changes(old: &PodPlan, new: &PodPlan) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name: &'static str, same: bool| {
        if !same {
            out.push(name);
        }
    };
    check("address", old.ip == new.ip);
    check("command", old.command == new.command);
    check("environment", old.env == new.env);
    check("working directory", old.cwd == new.cwd);
    check("ports", old.ready_port == new.ready_port);
    check(
        "service account",
        old.service_account == new.service_account,
    );
    check("node", old.node == new.node);
    check(
        "proxy settings",
        old.hold_application == new.hold_application
            && old.drain_seconds == new.drain_seconds
            && old.log_level == new.log_level
            && old.concurrency == new.concurrency,
    );
    out
}

/// `shop/web-0: sidecar → ambient`, for reports.
pub fn describe(s: &Switch, pod: &PodPlan) -> String {
    match s.from == s.to {
        true => format!("{}: labels changed ({})", pod.id(), mode_name(s.to)),
        false => format!("{}: {} → {}", pod.id(), mode_name(s.from), mode_name(s.to)),
    }
}

#[cfg(test)]
mod tests;
