//! One phase of `weft up`'s ordered shutdown (gateways, apps, proxies, control plane): the
//! supervised processes that get the stop signal together.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::supervise::{Board, Report, Spec, supervise};

#[derive(Debug)]
pub(super) struct Phase {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Phase {
    pub(super) fn new() -> Phase {
        Phase {
            stop: watch::Sender::new(false),
            tasks: JoinSet::new(),
        }
    }

    /// Supervises `spec`, first waiting for `gate` (if any) to turn true; the result turns true
    /// when the process is ready.
    pub(super) fn start(
        &mut self,
        spec: Spec,
        gate: Option<watch::Receiver<bool>>,
        board: &Arc<Board>,
        report: &Report,
    ) -> watch::Receiver<bool> {
        let (ready, ready_rx) = watch::channel(false);
        let (board, report, stop) = (board.clone(), report.clone(), self.stop.subscribe());
        let fut = supervise(spec, gate, board, report, stop, ready);
        self.tasks.spawn(fut);
        ready_rx
    }

    /// Stops every process of the phase and waits until each has exited.
    pub(super) async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
