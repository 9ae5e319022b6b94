//! The usage sampler: every [`usage::INTERVAL`], what each running sidecar and app uses (from
//! its cgroup, else from `/proc`), appended to the instance's usage file for `weft
//! right-size`; a process its CPU limit throttles through most of an interval gets a warning
//! event saying so (at most once a minute).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_core::events::Type;
use weft_core::quantity::Cpu;

use crate::cgroup::{self, Group, Usage};
use crate::rundir::RunDir;
use crate::status::{PodStatus, now_ms};
use crate::supervise::{Board, Slot};
use crate::usage::{self, Sample};

/// The share of an interval's CPU periods throttled past which a warning is given.
const THROTTLED: f32 = 0.25;
/// The least time between two throttling warnings of one process.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// One process's counters at its last sample.
struct Last {
    pid: u32,
    at: Instant,
    usage: Usage,
    warned: Option<Instant>,
}

/// Samples until aborted.
pub(super) async fn run(board: Arc<Board>, dir: RunDir) {
    let writer = usage::Writer::new(&dir);
    let instance = dir.name();
    let mut last: HashMap<Slot, Last> = HashMap::new();
    let mut tick = tokio::time::interval(usage::INTERVAL);
    loop {
        tick.tick().await;
        let status = board.snapshot();
        let mut samples = Vec::new();
        for (i, pod) in status.pods.iter().enumerate() {
            if pod.removed {
                continue;
            }
            let waypoint = pod.mode == "waypoint";
            // (slot, its group's name, what it is sampled as, whether it runs, the process)
            let procs = [
                (Slot::Proxy(i), "proxy", "proxy", pod.sidecar, &pod.proxy),
                // A waypoint's program is its proxy.
                (
                    Slot::App(i),
                    "app",
                    if waypoint { "proxy" } else { "app" },
                    true,
                    &pod.app,
                ),
            ];
            for (slot, kind, container, runs, process) in procs {
                let Some(pid) = process.pid.filter(|_| runs) else {
                    last.remove(&slot);
                    continue;
                };
                let group = group(&instance, pod, kind);
                let Some(now) = read(group.as_ref(), pid) else {
                    continue;
                };
                let at = Instant::now();
                let prev = last.remove(&slot).filter(|l| l.pid == pid);
                let mut warned = prev.as_ref().and_then(|p| p.warned);
                if let Some(p) = prev {
                    let sample = sample(pod, container, &p, &now, at, group.is_some());
                    if sample.throttled >= THROTTLED
                        && warned.is_none_or(|w| w.elapsed() >= WARN_EVERY)
                    {
                        throttled(&board, slot, &sample);
                        warned = Some(at);
                    }
                    samples.push(sample);
                }
                last.insert(
                    slot,
                    Last {
                        pid,
                        at,
                        usage: now,
                        warned,
                    },
                );
            }
        }
        if let Err(e) = writer.append(&samples) {
            eprintln!("weft up: usage samples: {e}");
        }
    }
}

/// The group of a pod's process, when it runs in one.
fn group(instance: &str, pod: &PodStatus, container: &str) -> Option<Group> {
    let h = cgroup::hierarchy().as_ref().ok()?;
    Some(h.group(instance, &pod.namespace, &pod.name, container)).filter(Group::exists)
}

fn read(group: Option<&Group>, pid: u32) -> Option<Usage> {
    match group {
        Some(g) => g.usage(),
        None => Usage::of_process(pid),
    }
}

/// The interval from `prev` to `now`.
fn sample(
    pod: &PodStatus,
    container: &str,
    prev: &Last,
    now: &Usage,
    at: Instant,
    cgroup: bool,
) -> Sample {
    let elapsed_us = at.duration_since(prev.at).as_micros().max(1) as u64;
    let cpu_us = now.cpu_us.saturating_sub(prev.usage.cpu_us);
    let periods = now.periods.saturating_sub(prev.usage.periods);
    let throttled = now
        .throttled_periods
        .saturating_sub(prev.usage.throttled_periods);
    Sample {
        t: now_ms(),
        namespace: pod.namespace.clone(),
        workload: pod.workload.clone(),
        pod: pod.name.clone(),
        container: container.into(),
        cpu_m: (cpu_us * 1000 / elapsed_us) as u32,
        memory: now.working_set,
        throttled: if periods == 0 {
            0.0
        } else {
            throttled as f32 / periods as f32
        },
        source: if cgroup { "cgroup" } else { "proc" }.into(),
    }
}

fn throttled(board: &Board, slot: Slot, s: &Sample) {
    let what = format!(
        "its CPU limit throttled it in {:.0}% of the CPU periods of the last {}s (it used {}): \
         requests wait while it is throttled; raise the limit, from `weft right-size`",
        s.throttled * 100.0,
        usage::INTERVAL.as_secs(),
        Cpu(s.cpu_m.into()),
    );
    board.note(slot, Type::Warning, "CPUThrottled", &what);
}
