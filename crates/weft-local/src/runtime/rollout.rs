//! `weft rollout restart`: pods restarted one at a time, each so that a steady load sees no
//! failed request: out of the endpoints first (every control plane has put that in force, and
//! the proxies had a moment to receive it), then its app gets SIGTERM and its proxy drains;
//! then a new proxy starts — on the revision the pod asks for now, or the one the request
//! names (an upgrade's step, pinned) — and the app once that proxy is ready; the pod is an
//! endpoint again once both are ready, and only then does the next one go.
//!
//! A pod that is not ready again within [`READY_WAIT`], or whose new proxy exits, stops the
//! rollout there: the reply says which pod, on which revision, and what its proxy did.

use std::time::{Duration, Instant};

use super::pods::Pods;
use crate::operate::Reply;
use crate::plan::PodPlan;
use crate::supervise::{Report, Slot};
use weft_core::events::Type;

/// How long a restarted pod gets to be ready.
const READY_WAIT: Duration = Duration::from_secs(30);
/// After every control plane took a pod out of the endpoints: time for the proxies to get it.
const PROPAGATE: Duration = Duration::from_secs(1);

/// Restarts `ids` (`ns/name`) one at a time, onto `revision` if given.
pub(super) async fn run(
    pods: &Pods,
    report: &Report,
    ids: Vec<String>,
    revision: Option<String>,
) -> Reply {
    let mut targets = Vec::new();
    for id in &ids {
        match pods.index(id) {
            Some(i) => targets.push(i),
            None => return Reply::refused(format!("no pod {id} in this mesh (weft get pods)")),
        }
    }
    if let Some(r) = &revision
        && pods.controls.serving(r).is_none()
    {
        return Reply::refused(format!("no revision {r} is installed and running"));
    }
    let mut lines = Vec::new();
    for (n, i) in targets.iter().enumerate() {
        match restart(pods, report, *i, revision.clone(), None).await {
            Ok(line) => lines.push(line),
            Err(e) => {
                let left: Vec<&str> = ids[n + 1..].iter().map(String::as_str).collect();
                let left = match left.is_empty() {
                    true => String::new(),
                    false => format!("; not restarted: {}", left.join(", ")),
                };
                return Reply {
                    lines,
                    error: Some(format!("{e}{left}")),
                };
            }
        }
    }
    Reply::done(lines)
}

/// Restarts pod `i`, as `to` if given (its spec changed: registered before anything stops, so
/// the control plane has it by the time the new processes start); one line saying what it did.
pub(super) async fn restart(
    pods: &Pods,
    report: &Report,
    i: usize,
    revision: Option<String>,
    to: Option<PodPlan>,
) -> Result<String, String> {
    let started = Instant::now();
    let old = pods.plan().pods[i].clone();
    let pod = to.clone().unwrap_or_else(|| old.clone());
    let id = pod.id();
    if revision.is_some() {
        pods.pin(i, revision);
    }
    let own_proxy = pod.sidecar() || pod.waypoint;
    let target = match own_proxy {
        true => Some(pods.wanted(i).map_err(|e| format!("pod {id}: {e}"))?),
        false => None,
    };
    let from = pods.board_snapshot().pods[i].revision.clone();
    report(format!("pod {id}: restarting{}", onto(&target)));

    // Out of the endpoints, everywhere, before anything stops.
    pods.board().update(|s| s.pods[i].terminating = true);
    if let Some(to) = to
        && let Err(e) = pods.register(i, to)
    {
        pods.board().update(|s| s.pods[i].terminating = false);
        return Err(format!("pod {id}: {e:#}"));
    }
    out_of_endpoints(pods, report, i, &id).await;
    pods.apps.stop_one(Slot::App(i)).await;
    if old.sidecar() {
        pods.stop_sidecar(i).await;
    }

    // Back, on the revision it asks for.
    pods.board().update(|s| {
        s.pods[i].revision.clear();
        s.pods[i].terminating = false;
    });
    let proxy = pod.sidecar().then(|| pods.start_sidecar(i));
    let restarts_before = pods.board_snapshot().pods[i].proxy.restarts;
    let gate = proxy.filter(|_| pod.hold_application);
    let mut ready = pods.start_app(i, gate);
    let deadline = Instant::now() + READY_WAIT;
    loop {
        if *ready.borrow() {
            break;
        }
        let s = pods.board_snapshot().pods[i].clone();
        let crashed = own_proxy && s.proxy.restarts > restarts_before
            || pod.waypoint && s.app.restarts > 0 && s.app.state == "restarting";
        if crashed || Instant::now() >= deadline {
            let what = match crashed {
                true => format!(
                    "its proxy exited ({})",
                    s.proxy
                        .last_exit
                        .as_deref()
                        .or(s.app.last_exit.as_deref())
                        .unwrap_or("?")
                ),
                false => format!(
                    "not ready after {}s: {}",
                    READY_WAIT.as_secs(),
                    s.not_ready(crate::status::now_ms()).map_or(
                        format!("proxy {}, app {}", s.proxy.state, s.app.state),
                        |w| { w.to_string() }
                    )
                ),
            };
            return Err(format!(
                "pod {id} on revision {}: {what}; see weft logs {id} --proxy",
                s.revision
            ));
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), ready.changed()).await;
    }
    // An endpoint again, everywhere, before the next one goes.
    let written = pods.board().pods_written_at_ms();
    pods.controls
        .wait_in_force(written, Duration::from_secs(5))
        .await;
    let now = pods.board_snapshot().pods[i].revision.clone();
    let moved = match (from.as_str(), now.as_str()) {
        (_, "") => String::new(),
        (f, n) if f == n || f.is_empty() => format!(" on revision {n}"),
        (f, n) => format!(" moved {f} → {n}"),
    };
    if !from.is_empty() && !now.is_empty() && from != now {
        let what = format!("moved from revision {from} to revision {now} (restarted)");
        let event = pods
            .board()
            .event(Slot::Proxy(i), Type::Normal, "RevisionMoved", &what);
        pods.board().record(event);
    }
    Ok(format!(
        "pod {id} restarted{moved}, ready in {:.1}s",
        started.elapsed().as_secs_f64()
    ))
}

fn onto(target: &Option<String>) -> String {
    target
        .as_ref()
        .map(|t| format!(" onto revision {t}"))
        .unwrap_or_default()
}

/// Waits until every control plane has put pod `i` (marked terminating) out of the
/// endpoints, and the proxies had a moment to receive that: then no new request reaches it.
pub(super) async fn out_of_endpoints(pods: &Pods, report: &Report, i: usize, id: &str) {
    debug_assert!(pods.board_snapshot().pods[i].terminating);
    let written = pods.board().pods_written_at_ms();
    let late = pods
        .controls
        .wait_in_force(written, Duration::from_secs(5))
        .await;
    if !late.is_empty() {
        report(format!(
            "pod {id}: control planes of {} did not confirm it left the endpoints within 5s",
            late.join(", ")
        ));
    }
    tokio::time::sleep(PROPAGATE).await;
}
