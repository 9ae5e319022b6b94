//! The board: the live status of an instance, written to `status.json` on every change, the
//! pods file the control plane reads, written whenever what it lists changes, and Prometheus's
//! `targets.json` ([`crate::prometheus`]), whenever the proxies serving metrics change; and
//! the events of its processes ([`weft_core::events`]), in the mesh's events file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use weft_core::events::{Event, Log, Type};
use weft_core::model::{Pod, PodList};

use crate::prometheus::Scrape;
use crate::rundir::RunDir;
use crate::status::{Named, PodStatus, Process, Status, now_ms};
use crate::supervise::Slot;

/// The live status, written to `status.json` on every change, and the pods file whenever what
/// it lists changes: the ready pods (the control plane's endpoints), and the ambient pods that
/// are not ready yet, listed as such, so that their node proxy is given them.
#[derive(Debug)]
pub struct Board {
    status: Mutex<Status>,
    dir: RunDir,
    /// The pods as the control plane is to know them, in the order of `Status::pods`.
    pods: Mutex<Vec<Pod>>,
    /// What the pods file holds now.
    written: Mutex<Option<Vec<Pod>>>,
    /// The ready pods (indexes into `Status::pods`), for those who follow them.
    ready_now: watch::Sender<Vec<usize>>,
    /// When the pods file was last written, in Unix milliseconds.
    written_at_ms: AtomicU64,
    /// Keeps Prometheus's targets file current, once [`Board::scrape`] set it.
    scrape: Mutex<Option<Scrape>>,
}

impl Board {
    pub fn new(status: Status, dir: RunDir, pods: Vec<Pod>) -> Arc<Board> {
        let board = Arc::new(Board {
            status: Mutex::new(status),
            dir,
            pods: Mutex::new(pods),
            written: Mutex::new(None),
            ready_now: watch::Sender::new(Vec::new()),
            written_at_ms: AtomicU64::new(0),
            scrape: Mutex::new(None),
        });
        board.update(|_| {});
        board
    }

    pub fn update(&self, f: impl FnOnce(&mut Status)) {
        let mut s = lock(&self.status);
        f(&mut s);
        let now = now_ms();
        for p in &mut s.pods {
            let why = p.not_ready(now);
            (p.reason, p.fix) = match why {
                Some(w) => (Some(w.reason), w.fix),
                None => (None, None),
            };
        }
        if let Err(e) = self.dir.write_status(&visible(&s)) {
            eprintln!("weft up: {e:#}");
        }
        // A pod is an endpoint while its app (and its proxy, if it has one) is ready.
        let ready: Vec<usize> = (s.pods.iter().enumerate())
            .filter(|(_, p)| p.ready())
            .map(|(i, _)| i)
            .collect();
        self.ready_now.send_if_modified(|now| {
            let changed = *now != ready;
            if changed {
                now.clone_from(&ready);
            }
            changed
        });
        let list = listed(&s, &lock(&self.pods));
        let mut written = lock(&self.written);
        if written.as_ref() != Some(&list) {
            match self.dir.write_pods(&PodList { pods: list.clone() }) {
                Ok(()) => {
                    *written = Some(list);
                    self.written_at_ms.store(now_ms(), Ordering::Relaxed);
                }
                Err(e) => eprintln!("weft up: {e:#}"),
            }
        }
        if let Some(scrape) = lock(&self.scrape).as_mut()
            && let Err(e) = scrape.update(&s)
        {
            eprintln!("weft up: Prometheus targets: {e:#}");
        }
    }

    /// From now on, keeps Prometheus's targets file current with every change.
    pub fn scrape(&self, scrape: Scrape) {
        *lock(&self.scrape) = Some(scrape);
        self.update(|_| {});
    }

    /// Replaces pod `i` as the control plane is to know it (its labels or mode changed).
    pub fn set_pod(&self, i: usize, pod: Pod) {
        lock(&self.pods)[i] = pod;
        self.update(|_| {});
    }

    /// Adds a pod (its status and itself as the control plane is to know it, once ready); its
    /// index.
    pub fn add_pod(&self, status: PodStatus, pod: Pod) -> usize {
        let mut pods = lock(&self.pods);
        pods.push(pod);
        let i = pods.len() - 1;
        drop(pods);
        self.update(|s| {
            s.pods.push(status);
            debug_assert_eq!(s.pods.len(), i + 1, "the status lists every pod");
        });
        i
    }

    /// Follows a new plan from now on (pods were added or removed): Prometheus's targets.
    pub fn replan(&self, plan: &crate::plan::Plan) {
        if let Some(scrape) = lock(&self.scrape).as_mut() {
            scrape.replan(plan.clone());
        }
        self.update(|_| {});
    }

    /// Follows the set of ready pods (the endpoints), as indexes into `Status::pods`.
    pub fn ready(&self) -> watch::Receiver<Vec<usize>> {
        self.ready_now.subscribe()
    }

    pub fn process(&self, slot: Slot, f: impl FnOnce(&mut Process)) {
        self.update(|s| {
            let p = match slot {
                Slot::Control(i) => &mut s.revisions[i].process,
                Slot::Gateway(i) => &mut s.gateways[i].process,
                Slot::Node(i) => &mut s.nodes[i].process,
                Slot::Proxy(i) => &mut s.pods[i].proxy,
                Slot::App(i) => &mut s.pods[i].app,
                Slot::Prometheus => {
                    let named = s.prometheus.get_or_insert_with(|| Named {
                        name: "prometheus".into(),
                        process: Process::default(),
                    });
                    &mut named.process
                }
            };
            f(p)
        });
    }

    /// When the pods file was last written, in Unix milliseconds.
    pub fn pods_written_at_ms(&self) -> u64 {
        self.written_at_ms.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> Status {
        lock(&self.status).clone()
    }

    /// An event of now about the process in `slot`: its object is the pod it runs in (or as),
    /// and `what` follows the process's role (`app exited with status 1`).
    pub fn event(&self, slot: Slot, kind: Type, reason: &str, what: &str) -> Event {
        let s = lock(&self.status);
        let (object, who) = subject(&s, slot);
        Event::new(kind, reason, object, format!("{who} {what}"), SOURCE)
    }

    /// Appends `event` to the mesh's events file (`weft events` reads it).
    pub fn record(&self, event: Event) {
        if let Err(e) = Log::new(self.dir.events()).append(&event) {
            eprintln!("weft up: recording an event: {e}");
        }
    }

    /// Records [`Board::event`].
    pub fn note(&self, slot: Slot, kind: Type, reason: &str, what: &str) {
        self.record(self.event(slot, kind, reason, what));
    }
}

/// Who records the runtime's events.
pub const SOURCE: &str = "weft up";

/// The object of the process in `slot` (`pod/NAMESPACE/NAME`: a gateway, node proxy or control
/// plane is a pod of its own, as `weft get pods` lists it) and what it is in that pod.
fn subject(s: &Status, slot: Slot) -> (String, &'static str) {
    let system = |name: String| Event::pod(crate::runtime::NODE_NAMESPACE, &name);
    match slot {
        Slot::App(i) | Slot::Proxy(i) => {
            let p = &s.pods[i];
            let who = match (slot, p.mode.as_str()) {
                (Slot::Proxy(_), _) => "proxy",
                (_, "waypoint") => "waypoint proxy",
                _ => "app",
            };
            (Event::pod(&p.namespace, &p.name), who)
        }
        Slot::Gateway(i) => {
            let named = s.gateways.get(i).map_or("?/?", |g| g.name.as_str());
            let (ns, name) = named.split_once('/').unwrap_or(("?", named));
            (Event::pod(ns, &format!("gateway-{name}")), "gateway")
        }
        Slot::Node(i) => {
            let node = s.nodes.get(i).map_or("?", |n| n.name.as_str());
            (system(node.to_string()), "node proxy")
        }
        Slot::Control(i) => {
            let rev = s.revisions.get(i).map_or("?", |r| r.name.as_str());
            (system(format!("control-{rev}")), "control plane")
        }
        Slot::Prometheus => (system("prometheus".into()), "prometheus"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The status as written: without the pods removed while the mesh runs (the plan written
/// leaves them out too, so the two list the same pods in the same order).
fn visible(s: &Status) -> std::borrow::Cow<'_, Status> {
    if !s.pods.iter().any(|p| p.removed) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = s.clone();
    out.pods.retain(|p| !p.removed);
    std::borrow::Cow::Owned(out)
}

/// What the pods file lists: every ready pod, and every ambient pod that is not ready as such
/// (none that is removed).
fn listed(status: &Status, pods: &[Pod]) -> Vec<Pod> {
    (status.pods.iter().zip(pods))
        .filter(|(s, _)| !s.removed)
        .filter_map(|(s, pod)| match (s.ready(), s.mode.as_str()) {
            (true, _) => Some(pod.clone()),
            (false, "ambient") => Some(Pod {
                ready: false,
                ..pod.clone()
            }),
            (false, _) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::PodStatus;

    fn pod(name: &str) -> Pod {
        Pod {
            id: format!("{name}.shop"),
            namespace: "shop".into(),
            workload: name.into(),
            name: name.into(),
            ip: [198, 19, 70, 2].into(),
            service_account: "default".into(),
            labels: Default::default(),
            inbound: None,
            tunnel: None,
            node: "node-1".into(),
            ready: true,
        }
    }

    fn status(mode: &str, proxy: &str, app: &str) -> PodStatus {
        let process = |state: &str| Process {
            state: state.into(),
            ..Process::default()
        };
        PodStatus {
            mode: mode.into(),
            sidecar: mode == "sidecar",
            proxy: process(proxy),
            app: process(app),
            ..PodStatus::default()
        }
    }

    #[test]
    fn ready_pods_are_listed_and_ambient_pods_also_before_they_are() {
        let pods = ["a", "b", "c", "d", "e", "f"].map(pod);
        let s = Status {
            pods: vec![
                status("sidecar", "ready", "ready"),
                status("sidecar", "waiting", "waiting"),
                status("none", "none", "ready"),
                status("ambient", "ready", "ready"),
                // Its app waits for its node proxy, which waits for the control plane.
                status("ambient", "enrolling", "waiting"),
                status("none", "none", "restarting"),
            ],
            ..Status::default()
        };
        let listed: Vec<(String, bool)> = listed(&s, &pods)
            .into_iter()
            .map(|p| (p.name, p.ready))
            .collect();
        let want = [("a", true), ("c", true), ("d", true), ("e", false)];
        assert_eq!(listed, want.map(|(n, r)| (n.to_string(), r)));
    }
}
