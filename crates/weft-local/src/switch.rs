//! Switching a running pod to another dataplane mode, decided without touching it: [`steps`]
//! says, for one pod whose dataplane mode (or labels) changed ([`crate::change`] finds them),
//! what to do in which order so that its app keeps running and its traffic has somewhere to go
//! at every step.
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
//! its labels when it connects.

use weft_core::annotations::DataplaneMode;

use crate::plan::{PodPlan, mode_name};

/// One pod to switch: its index in the plan and its mode before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub pod: usize,
    pub from: DataplaneMode,
    pub to: DataplaneMode,
    /// Its labels changed.
    pub labels: bool,
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

/// `shop/web-0: sidecar → ambient`, for reports.
pub fn describe(s: &Switch, pod: &PodPlan) -> String {
    match s.from == s.to {
        true => format!("{}: labels changed ({})", pod.id(), mode_name(s.to)),
        false => format!("{}: {} → {}", pod.id(), mode_name(s.from), mode_name(s.to)),
    }
}

#[cfg(test)]
mod tests;
