//! Pods that come, go or are replaced while `weft up` runs, as a configuration change asks
//! ([`crate::change`], applied by [`super::follow`]):
//!
//! - **added** (more replicas, a new Workload): registered (a credential, a place in the
//!   status and the plan), given a network namespace, an address and capture, then started
//!   like the pods `weft up` starts (its proxy first, its app once the proxy is ready); it is an
//!   endpoint once ready. New pods start side by side.
//! - **replaced** (its spec changed): one at a time, like `weft rollout restart`
//!   ([`super::rollout`]) — out of the endpoints, stopped, started with the new spec, an
//!   endpoint again — the next only once the last is ready; one that is not ready stops the
//!   replacement of its Workload there, reported with why.
//! - **removed** (fewer replicas, a Workload gone): highest ordinal first, each stopped like a
//!   normal stop — out of the endpoints everywhere, its app SIGTERMed, its proxy drained —
//!   then its network namespace and link removed and the pod marked removed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use weft_core::Config;
use weft_core::annotations::DataplaneMode;

use super::bound::Addresses;
use super::network;
use super::pods::{Pods, RELEASE_WAIT};
use super::rollout;
use crate::addresses;
use crate::change::Restart;
use crate::plan::PodPlan;
use crate::status::now_ms;
use crate::supervise::{Report, Slot};

/// How long an added pod gets to be ready before it is reported as not ready (it keeps
/// starting).
const READY_WAIT: Duration = Duration::from_secs(30);

/// Starts the pods of `added` side by side and waits until each is ready (or reported not).
pub(super) async fn add(pods: &Arc<Pods>, config: &Config, added: Vec<PodPlan>, report: &Report) {
    if added.is_empty() {
        return;
    }
    let mut new = Vec::new();
    for pod in added {
        let id = pod.id();
        let set_up = async {
            let i = pods.add(pod.clone())?;
            if let Err(e) = network::add_pod(&pods.plan(), &pod).await {
                pods.board().process(Slot::App(i), |p| {
                    p.state = "stopped".into();
                    p.last_exit = Some(format!("not started: {e:#}"));
                });
                return Err(e);
            }
            anyhow::Ok(i)
        };
        match set_up.await {
            Ok(i) => new.push(i),
            Err(e) => report(format!("pod {id}: not added: {e:#}")),
        }
    }
    // Its name in the hosts files and its Services (translated in the pod if it has no
    // proxy) before anything of it starts.
    if let Err(e) = pods.refresh(config).await {
        report(format!("pods added: Services and names of the pods: {e:#}"));
    }
    let mut tasks = JoinSet::new();
    for i in new {
        let (pods, report) = (pods.clone(), report.clone());
        tasks.spawn(async move { start(&pods, i, &report).await });
    }
    while tasks.join_next().await.is_some() {}
}

/// Starts added pod `i` (its network is set up); reports when it is ready, or why not.
async fn start(pods: &Pods, i: usize, report: &Report) {
    let started = Instant::now();
    let pod = pods.plan().pods[i].clone();
    let id = pod.id();
    report(format!(
        "pod {id}: new, starting at {} ({} mode, on {})",
        pod.ip,
        pod.mode_label(),
        pod.node
    ));
    let proxy = match pods.serve(i) {
        Ok(proxy) => proxy,
        Err(e) => {
            report(format!("pod {id}: cannot start: {e:#}"));
            pods.board().process(Slot::App(i), |p| {
                p.state = "stopped".into();
                p.last_exit = Some(format!("not started: {e:#}"));
            });
            return;
        }
    };
    let gate = proxy.filter(|_| pod.hold_application);
    let mut ready = pods.start_app(i, gate);
    match tokio::time::timeout(READY_WAIT, ready.wait_for(|r| *r)).await {
        Ok(Ok(_)) => report(format!(
            "pod {id}: added, ready in {:.1}s",
            started.elapsed().as_secs_f64()
        )),
        _ => {
            let why = pods.board_snapshot().pods[i].not_ready(now_ms());
            report(format!(
                "pod {id}: added, not ready after {}s: {}",
                READY_WAIT.as_secs(),
                why.map_or("?".to_string(), |w| w.to_string())
            ));
        }
    }
}

/// Replaces the pods of `restarts` one at a time, in order; a pod that is not ready again
/// stops the replacement of the rest of its Workload.
pub(super) async fn replace(pods: &Pods, restarts: Vec<Restart>, report: &Report) {
    let mut stopped: BTreeSet<String> = BTreeSet::new();
    for r in restarts {
        let (id, workload) = (r.to.id(), format!("{}/{}", r.to.namespace, r.to.workload));
        if stopped.contains(&workload) {
            report(format!(
                "pod {id}: not replaced: the rolling restart of Workload {workload} stopped at \
                 an earlier pod"
            ));
            continue;
        }
        report(format!(
            "pod {id}: {} changed: replacing it",
            r.changed.join(", ")
        ));
        match rollout::restart(pods, report, r.pod, None, Some(r.to)).await {
            Ok(line) => report(line),
            Err(e) => {
                report(format!(
                    "rolling restart of Workload {workload} stopped: {e}"
                ));
                stopped.insert(workload);
            }
        }
    }
}

/// Stops and removes the pods of `removed`, one at a time, in order.
pub(super) async fn remove(pods: &Pods, removed: Vec<usize>, report: &Report) {
    for i in removed {
        let pod = pods.plan().pods[i].clone();
        let id = pod.id();
        report(format!(
            "pod {id}: gone from the configuration: draining and stopping it"
        ));
        pods.board().update(|s| s.pods[i].terminating = true);
        rollout::out_of_endpoints(pods, report, i, &id).await;
        pods.apps.stop_one(Slot::App(i)).await;
        match pod.mode {
            DataplaneMode::Sidecar => pods.stop_sidecar(i).await,
            DataplaneMode::Ambient => {
                if let Err(e) = pods.unenrol(i) {
                    report(format!("pod {id}: {e:#}"));
                } else if !pods.wait_released(i, RELEASE_WAIT).await {
                    report(format!(
                        "pod {id}: its node proxy still listens in it after {}s",
                        RELEASE_WAIT.as_secs()
                    ));
                }
            }
            DataplaneMode::None => {}
        }
        if let Err(e) = network::remove_pod(&pod).await {
            report(format!("pod {id}: {e:#}"));
        }
        match pods.mark_removed(i) {
            Ok(()) => report(format!("pod {id}: removed")),
            Err(e) => report(format!("pod {id}: removed, but {e:#}")),
        }
    }
}

/// Rewrites `bound.json` with the pods in force (the control plane's addresses stay).
pub(super) fn write_bound(pods: &Pods) {
    let dir = pods.dir();
    let file = dir.bound_file();
    let Ok(old) = addresses::read::<Addresses>(&file) else {
        return;
    };
    let now = Addresses::gather(&pods.plan().visible(), dir, old.control.clone());
    if now != old {
        let _ = addresses::write(&file, &now);
    }
}
