//! Removing an instance: its processes (by the PIDs it recorded, or found inside its pods'
//! namespaces), the namespaces, the bridge, its cgroups and the runtime directory. Runs at the end of every
//! `weft up`, from `weft down`, and at the next `weft up` after a crash.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::net;
use crate::plan::Plan;
use crate::rundir::RunDir;
use crate::status::{Process, start_ticks};
use crate::supervise::Report;

/// Stops the `weft up` of `name` (which cleans up after itself), or removes what a crashed
/// one left. Returns false if there was nothing to stop or remove.
pub async fn down(name: &str, report: &Report) -> anyhow::Result<bool> {
    let dir = RunDir::new(name);
    let mut stopped = false;
    if let Some(pid) = dir.owner() {
        report(format!("stopping weft up {name:?} (pid {pid})"));
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        // Apps get 10s and proxies their drain time; allow for both.
        for _ in 0..(60 * 10) {
            if dir.owner().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if dir.owner().is_some() {
            anyhow::bail!("weft up {name:?} (pid {pid}) did not stop within 60s");
        }
        stopped = true;
    }
    if dir.plan().is_none() {
        let existed = dir.path.exists();
        let _ = std::fs::remove_dir_all(&dir.path);
        return Ok(stopped || existed);
    }
    let _lock = dir.lock()?;
    report(format!("removing what weft up {name:?} left behind"));
    remove(&dir, report).await;
    let _ = std::fs::remove_dir_all(&dir.path);
    Ok(true)
}

/// Removes every process, namespace and link an instance recorded, then its files (but the
/// lock, which the caller holds).
pub async fn remove(dir: &RunDir, report: &Report) {
    let Some(plan) = dir.plan() else { return };
    let mut pids: Vec<i32> = Vec::new();
    if let Some(status) = dir.status() {
        let host = (status.revisions.iter().map(|r| &r.process))
            .chain(status.gateways.iter().map(|g| &g.process))
            .chain(status.nodes.iter().map(|n| &n.process))
            .chain(status.prometheus.iter().map(|p| &p.process));
        pids.extend(host.filter_map(same_process));
    }
    for pod in &plan.pods {
        pids.extend(net::netns_pids(&pod.netns));
    }
    stop_pids(&pids, report).await;
    remove_network(&plan, report);
    if let Ok(h) = crate::cgroup::hierarchy() {
        h.remove_instance(&dir.name());
    }
    for entry in std::fs::read_dir(&dir.path).into_iter().flatten().flatten() {
        if entry.file_name() != "lock" {
            let p = entry.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
    }
}

/// The PID of a recorded process, if that process still runs (same start time).
fn same_process(p: &Process) -> Option<i32> {
    let pid = p.pid?;
    (p.start_ticks.is_some() && start_ticks(pid) == p.start_ticks).then_some(pid as i32)
}

async fn stop_pids(pids: &[i32], report: &Report) {
    if pids.is_empty() {
        return;
    }
    report(format!("stopping {} leftover processes", pids.len()));
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    for _ in 0..30 {
        if pids.iter().all(|p| kill(Pid::from_raw(*p), None).is_err()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
}

/// Deletes the pods' namespaces (their veths and capture rules go with them) and the bridge.
pub fn remove_network(plan: &Plan, report: &Report) {
    for pod in &plan.pods {
        // The kernel removes a namespace's links when it frees the namespace, which may be a
        // while after its last process; deleting the host end now takes the pair at once.
        if let Err(e) = net::delete_link(&pod.veth) {
            report(format!("removing link {}: {e:#}", pod.veth));
        }
        if let Err(e) = net::delete_netns(&pod.netns) {
            report(format!("removing network namespace {}: {e:#}", pod.netns));
        }
    }
    if let Err(e) = net::delete_link(&plan.bridge) {
        report(format!("removing bridge {}: {e:#}", plan.bridge));
    }
}
