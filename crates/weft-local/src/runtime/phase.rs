//! One phase of `weft up`'s ordered shutdown (gateways, apps, proxies, node proxies, control
//! plane): the supervised processes that get the stop signal together. One of them can also be
//! stopped alone (a pod's sidecar when the pod leaves sidecar mode) and started again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::supervise::handoff::{self, HandedOff};
use crate::supervise::{Board, Report, Slot, Spec, supervise};

/// One supervised process: its stop signal, its hand-off requests and its supervising task.
#[derive(Debug)]
struct Running {
    stop: watch::Sender<bool>,
    handoff: mpsc::Sender<handoff::Request>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
pub(super) struct Phase {
    running: Mutex<BTreeMap<Slot, Running>>,
}

impl Phase {
    pub(super) fn new() -> Phase {
        Phase::default()
    }

    /// Supervises `spec`, first waiting for `gate` (if any) to turn true; the result turns true
    /// when the process is ready. A process already in the slot is replaced: stop it first.
    pub(super) fn start(
        &self,
        spec: Spec,
        gate: Option<watch::Receiver<bool>>,
        board: &Arc<Board>,
        report: &Report,
    ) -> watch::Receiver<bool> {
        let (ready, ready_rx) = watch::channel(false);
        let stop = watch::Sender::new(false);
        let slot = spec.slot;
        let (board, report, stopped) = (board.clone(), report.clone(), stop.subscribe());
        let (handoff, handoffs) = mpsc::channel(1);
        let task = tokio::spawn(supervise(
            spec, gate, board, report, stopped, ready, handoffs,
        ));
        let old = self.lock().insert(
            slot,
            Running {
                stop,
                handoff,
                task,
            },
        );
        if let Some(old) = old {
            // Not waited for: whoever replaces a process stops it first.
            let _ = old.stop.send(true);
        }
        ready_rx
    }

    /// Whether a process runs (or waits to start) in `slot`.
    pub(super) fn has(&self, slot: Slot) -> bool {
        self.lock().contains_key(&slot)
    }

    /// Replaces the process in `slot` by hand-off, with `binary` instead of its own if given
    /// ([`crate::supervise::handoff`]); what happened, or why it did not.
    pub(super) async fn hand_off(
        &self,
        slot: Slot,
        binary: Option<std::path::PathBuf>,
    ) -> Result<HandedOff, String> {
        let Some(tx) = self.lock().get(&slot).map(|r| r.handoff.clone()) else {
            return Err("it does not run".into());
        };
        let (reply, answer) = oneshot::channel();
        tx.try_send(handoff::Request { binary, reply })
            .map_err(|_| "a hand-off of it is already under way".to_string())?;
        answer
            .await
            .unwrap_or_else(|_| Err("it stopped before the hand-off was done".into()))
    }

    /// Stops the process in `slot`, if there is one, and waits until it has exited.
    pub(super) async fn stop_one(&self, slot: Slot) {
        let Some(r) = self.lock().remove(&slot) else {
            return;
        };
        let _ = r.stop.send(true);
        let _ = r.task.await;
    }

    /// Stops every process of the phase together and waits until each has exited.
    pub(super) async fn stop(&self) {
        let all: Vec<Running> = std::mem::take(&mut *self.lock()).into_values().collect();
        for r in &all {
            let _ = r.stop.send(true);
        }
        for r in all {
            let _ = r.task.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Slot, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}
