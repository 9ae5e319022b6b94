//! Restarts asked for while `weft up` runs (`weft restart NODE`, [`crate::restart`]): the
//! requests in the runtime directory are looked at as often as the configuration directory,
//! and each is done on its own: the node proxy is replaced by hand-off and the reply says
//! what happened.

use std::sync::Arc;
use std::time::Duration;

use super::pods::Pods;
use crate::restart::{self, Reply, Request};
use crate::rundir::RunDir;
use crate::supervise::{Board, Report, Slot};

/// How often the requests are looked at.
const POLL: Duration = Duration::from_millis(250);

/// Takes restart requests until aborted.
pub(super) async fn run(pods: Arc<Pods>, dir: RunDir, board: Arc<Board>, report: Report) {
    loop {
        tokio::time::sleep(POLL).await;
        for (id, req) in restart::take(&dir) {
            let (pods, dir, board, report) =
                (pods.clone(), dir.clone(), board.clone(), report.clone());
            tokio::spawn(async move {
                let reply = match req {
                    Ok(req) => hand_off(&pods, &board, &report, req).await,
                    Err(e) => Reply::failed("?", format!("unreadable request: {e}")),
                };
                if let Err(e) = restart::answer(&dir, &id, &reply) {
                    report(format!("restart request {id}: cannot reply: {e}"));
                }
            });
        }
    }
}

/// Replaces the proxy of `req.node` by hand-off.
async fn hand_off(pods: &Pods, board: &Board, report: &Report, req: Request) -> Reply {
    let node = req.node.clone();
    let i = match restart::check(&board.snapshot().nodes, &node) {
        Ok(i) => i,
        Err(e) => return Reply::failed(&node, e),
    };
    let binary = match &req.binary {
        Some(b) => format!(" with {}", b.display()),
        None => String::new(),
    };
    report(format!("node proxy {node}: restart asked{binary}"));
    let enrolled = pods.enrolled_on(&node);
    match pods.nodes.hand_off(Slot::Node(i), req.binary).await {
        Ok(done) => Reply {
            node,
            old_pid: Some(done.old_pid),
            new_pid: Some(done.new_pid),
            pods: enrolled,
            error: None,
        },
        Err(e) => Reply::failed(&node, e),
    }
}
