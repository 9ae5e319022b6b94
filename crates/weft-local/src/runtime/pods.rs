//! The pods as they run now: the plan in force (a pod's mode and labels change while `weft up`
//! runs) and what serves each pod's traffic: its sidecar process, or its node's proxy (started
//! when the node first has an ambient pod), or nothing. Each operation here is one step of
//! serving a pod or of switching it to another mode ([`crate::switch`]); none touches the app.
//!
//! An ambient pod's "proxy" is its node proxy serving it: enrolled in the node's file, it is
//! served once the node proxy has opened the pod's tunnel listener (15008) inside the pod,
//! which the node proxy does only once the control plane gave it the pod's configuration.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weft_core::events::{Event, Type};

use super::controls::{Controls, Serving};
use super::network::capture;
use super::phase::Phase;
use super::registry;
use super::spec::{app_spec, enrolment_file, handoff_path, node_spec, proxy_spec};
use crate::enrolment;
use crate::net;
use crate::plan::{Plan, PodPlan};
use crate::ports;
use crate::readiness::Tracker;
use crate::rundir::RunDir;
use crate::services::Translation;
use crate::status::now_ms;
use crate::supervise::{Board, Report, Slot};

/// How long a node proxy gets to let go of a pod dropped from its file.
pub(super) const RELEASE_WAIT: Duration = Duration::from_secs(10);

/// An ambient pod on its node's enrolment file.
#[derive(Debug)]
struct Enrolment {
    /// Follows whether the node proxy serves it.
    watcher: JoinHandle<()>,
    served: watch::Receiver<bool>,
}

pub(super) struct Pods {
    plan: Mutex<Plan>,
    dir: RunDir,
    board: Arc<Board>,
    report: Report,
    weft: PathBuf,
    /// The control planes, one per revision.
    pub controls: Arc<Controls>,
    /// Pods an upgrade put on a revision their labels do not ask for (yet).
    pins: Mutex<BTreeMap<usize, String>>,
    /// The apps, in slots `Slot::App(pod)`.
    pub apps: Phase,
    /// The sidecars, in slots `Slot::Proxy(pod)`.
    pub sidecars: Phase,
    /// The node proxies, in slots `Slot::Node(node)`.
    pub nodes: Phase,
    enrolled: Mutex<BTreeMap<usize, Enrolment>>,
    translation: OnceLock<Arc<Translation>>,
    /// Held by whatever starts, stops or restarts pods (a configuration change, a rollout):
    /// one at a time.
    pub operations: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Pods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pods")
            .field("sidecars", &self.sidecars)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pods {
    pub(super) fn new(
        plan: Plan,
        dir: RunDir,
        board: Arc<Board>,
        report: Report,
        weft: PathBuf,
        controls: Arc<Controls>,
    ) -> Pods {
        Pods {
            controls,
            pins: Mutex::new(BTreeMap::new()),
            apps: Phase::new(),
            plan: Mutex::new(plan),
            dir,
            board,
            report,
            weft,
            sidecars: Phase::new(),
            nodes: Phase::new(),
            enrolled: Mutex::new(BTreeMap::new()),
            translation: OnceLock::new(),
            operations: tokio::sync::Mutex::new(()),
        }
    }

    /// The Service translation of the pods in mode `none`, once it runs.
    pub(super) fn set_translation(&self, t: Arc<Translation>) {
        let _ = self.translation.set(t);
    }

    /// The plan in force.
    pub(super) fn plan(&self) -> Plan {
        lock(&self.plan).clone()
    }

    fn pod(&self, i: usize) -> PodPlan {
        lock(&self.plan).pods[i].clone()
    }

    /// Starts what serves pod `i`'s traffic in its mode: its sidecar, or its enrolment on its
    /// node's proxy. What turns true when that is ready; None without a proxy.
    pub(super) fn serve(&self, i: usize) -> anyhow::Result<Option<watch::Receiver<bool>>> {
        let pod = self.pod(i);
        Ok(match pod.mode {
            weft_core::annotations::DataplaneMode::Sidecar => Some(self.start_sidecar(i)),
            weft_core::annotations::DataplaneMode::Ambient => Some(self.enrol(i)?),
            weft_core::annotations::DataplaneMode::None => None,
        })
    }

    /// Starts pod `i`'s sidecar, on the revision it runs on (the one it asks for when it
    /// has none yet).
    pub(super) fn start_sidecar(&self, i: usize) -> watch::Receiver<bool> {
        let plan = self.plan();
        let rev = self.serving(i);
        let spec = proxy_spec(&plan, &plan.pods[i], i, &rev, &self.dir);
        self.sidecars.start(spec, None, &self.board, &self.report)
    }

    /// Starts pod `i`'s app, once `gate` (its proxy's readiness) turns true if given.
    pub(super) fn start_app(
        &self,
        i: usize,
        gate: Option<watch::Receiver<bool>>,
    ) -> watch::Receiver<bool> {
        let plan = self.plan();
        let pod = &plan.pods[i];
        // A waypoint's pod runs the waypoint: on its revision like a sidecar.
        let rev = self.serving(i);
        let spec = app_spec(&plan, pod, i, &self.weft, &rev, &self.dir);
        self.apps.start(spec, gate, &self.board, &self.report)
    }

    /// The revision pod `i`'s labels (or its pin) ask for now.
    pub(super) fn wanted(&self, i: usize) -> Result<String, String> {
        if let Some(pin) = lock(&self.pins).get(&i) {
            return Ok(pin.clone());
        }
        self.controls.registry().resolve(self.pod(i).rev.as_deref())
    }

    /// What pod `i`'s own proxy runs on: the revision it runs on now, else the one it asks
    /// for, else (its label names none) the `default` tag's; recorded in its status.
    fn serving(&self, i: usize) -> Serving {
        let running = self.board.snapshot().pods[i].revision.clone();
        let wanted = self.wanted(i).ok();
        let pick = [Some(running).filter(|r| !r.is_empty()), wanted]
            .into_iter()
            .flatten()
            .find_map(|r| self.controls.serving(&r))
            .or_else(|| {
                self.controls
                    .serving(&self.controls.registry().resolve(None).ok()?)
            })
            .expect("the default tag's control plane runs while pods start");
        self.board
            .update(|s| s.pods[i].revision = pick.revision.clone());
        pick
    }

    /// Pins pod `i` to `revision` (None: its labels decide again).
    pub(super) fn pin(&self, i: usize, revision: Option<String>) {
        match revision {
            Some(r) => lock(&self.pins).insert(i, r),
            None => lock(&self.pins).remove(&i),
        };
    }

    /// Records in the status which revision each pod asks for now (after a tag, label or
    /// pin changed).
    pub(super) fn refresh_wanted(&self) {
        let n = lock(&self.plan).pods.len();
        let wanted: Vec<_> = (0..n).map(|i| self.wanted(i)).collect();
        self.board.update(|s| {
            for (p, w) in s.pods.iter_mut().zip(wanted) {
                (p.wanted_revision, p.revision_problem) = match w {
                    Ok(r) => (r, None),
                    Err(e) => (String::new(), Some(e)),
                };
            }
        });
    }

    /// The pods (`pod ns/name (label)`) whose label names `value` (a tag or a revision; no
    /// label names the `default` tag).
    pub(super) fn labelled(&self, value: &str) -> Vec<String> {
        let plan = lock(&self.plan);
        (plan.pods.iter())
            .filter(|p| !p.removed)
            .filter(|p| p.rev.as_deref().unwrap_or(crate::revisions::DEFAULT_TAG) == value)
            .map(|p| format!("pod {} (label)", p.id()))
            .collect()
    }

    /// The pods (`pod ns/name`) whose proxy runs on revision `name`.
    pub(super) fn running_on(&self, name: &str) -> Vec<String> {
        let plan = lock(&self.plan);
        let status = self.board.snapshot();
        (plan.pods.iter().zip(&status.pods))
            .filter(|(p, s)| !p.removed && s.revision == name)
            .map(|(p, _)| format!("pod {}", p.id()))
            .collect()
    }

    pub(super) fn dir(&self) -> &RunDir {
        &self.dir
    }

    pub(super) fn board(&self) -> &Board {
        &self.board
    }

    pub(super) fn board_snapshot(&self) -> crate::status::Status {
        self.board.snapshot()
    }

    /// The index of pod `ns/name`.
    pub(super) fn index(&self, id: &str) -> Option<usize> {
        (lock(&self.plan).pods.iter()).position(|p| !p.removed && p.id() == id)
    }

    /// Stops pod `i`'s sidecar (it drains) and waits until it has exited.
    pub(super) async fn stop_sidecar(&self, i: usize) {
        self.sidecars.stop_one(Slot::Proxy(i)).await;
        self.board.process(Slot::Proxy(i), |p| {
            p.state = "none".into();
            p.pid = None;
        });
    }

    /// Puts pod `i` on its node's enrolment file, starting the node's proxy if it does not run
    /// yet; the result turns true once the node proxy serves it.
    pub(super) fn enrol(&self, i: usize) -> anyhow::Result<watch::Receiver<bool>> {
        let pod = self.pod(i);
        let (tx, rx) = watch::channel(false);
        let watcher = tokio::spawn(follow_served(
            pod.clone(),
            i,
            self.board.clone(),
            self.report.clone(),
            tx,
        ));
        let old = lock(&self.enrolled).insert(
            i,
            Enrolment {
                watcher,
                served: rx.clone(),
            },
        );
        if let Some(old) = old {
            old.watcher.abort();
        }
        self.write_enrolment(&pod.node)?;
        self.ensure_node(&pod.node);
        Ok(rx)
    }

    /// Takes pod `i` off its node's enrolment file: the node proxy releases it.
    pub(super) fn unenrol(&self, i: usize) -> anyhow::Result<()> {
        let pod = self.pod(i);
        if let Some(e) = lock(&self.enrolled).remove(&i) {
            e.watcher.abort();
        }
        self.board.update(|s| {
            s.pods[i].proxy.state = "releasing".into();
            s.pods[i].served_by = None;
        });
        self.write_enrolment(&pod.node)
    }

    /// Waits until pod `i`'s node proxy serves it, up to `timeout`; whether it does.
    pub(super) async fn wait_served(&self, i: usize, timeout: Duration) -> bool {
        let Some(mut served) = lock(&self.enrolled).get(&i).map(|e| e.served.clone()) else {
            return false;
        };
        tokio::time::timeout(timeout, served.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until no proxy listens on pod `i`'s tunnel port inside the pod (its node proxy
    /// released it), up to `timeout`; whether it was released.
    pub(super) async fn wait_released(&self, i: usize, timeout: Duration) -> bool {
        let pod = self.pod(i);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if !tunnel_listening(&pod).await {
                self.board
                    .process(Slot::Proxy(i), |p| p.state = "none".into());
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Rewrites the enrolment file of `node` with its enrolled pods.
    fn write_enrolment(&self, node: &str) -> anyhow::Result<()> {
        // Read and written under the plan's lock, so the last file written has every pod
        // enrolled before it.
        let plan = lock(&self.plan);
        let enrolled: Vec<usize> = lock(&self.enrolled).keys().copied().collect();
        let pods: Vec<enrolment::Enrolled> = enrolled
            .iter()
            .map(|i| &plan.pods[*i])
            .filter(|p| p.node == node)
            .map(enrolment::Enrolled::of)
            .collect();
        enrolment::write(&enrolment_file(&self.dir, node), &pods)
    }

    /// Starts the proxy of `node` unless it runs.
    fn ensure_node(&self, node: &str) {
        let plan = self.plan();
        let Some(n) = plan.nodes.iter().position(|x| x == node) else {
            return (self.report)(format!("no node {node:?} in this mesh: nothing serves it"));
        };
        if self.nodes.has(Slot::Node(n)) {
            return;
        }
        // Where its processes hand over to each other (the proxy binds the socket there).
        if let Some(dir) = handoff_path(&self.dir, node).parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            (self.report)(format!("node proxy {node}: {}: {e}", dir.display()));
        }
        let spec = node_spec(&plan, n, &self.weft, &self.dir);
        self.nodes.start(spec, None, &self.board, &self.report);
    }

    /// Installs (`on`) or removes pod `i`'s capture rules.
    pub(super) async fn capture(&self, i: usize, on: bool) -> anyhow::Result<()> {
        let plan = self.plan();
        let pod = plan.pods[i].clone();
        let rules = capture(&plan, &pod);
        tokio::task::spawn_blocking(move || match on {
            true => net::install_capture(&pod.netns, &rules),
            false => net::remove_capture(&pod.netns),
        })
        .await?
        .with_context(|| format!("pod {}: capture", self.pod(i).id()))
    }

    /// Gives pod `i` its Service address translation (`on`, it has no proxy now) or takes it
    /// away.
    pub(super) async fn translate(&self, i: usize, on: bool) -> anyhow::Result<()> {
        let t = self
            .translation
            .get()
            .context("the Service translation does not run")?
            .clone();
        tokio::task::spawn_blocking(move || match on {
            true => t.translate(i),
            false => t.untranslate(i),
        })
        .await?
    }

    /// Puts `pod` in force as pod `i`: in the plan, the status, the pods file and its
    /// registration (the control plane's bootstrap file).
    pub(super) fn register(&self, i: usize, pod: PodPlan) -> anyhow::Result<()> {
        // Under the plan's lock: pods switching side by side write the files one at a time,
        // each with every change so far.
        let mut plan = lock(&self.plan);
        plan.pods[i] = pod.clone();
        let wanted = match lock(&self.pins).get(&i) {
            Some(pin) => Ok(pin.clone()),
            None => self.controls.registry().resolve(pod.rev.as_deref()),
        };
        self.board.update(|s| {
            let st = &mut s.pods[i];
            st.mode = pod.mode_label().into();
            st.sidecar = pod.sidecar();
            st.node = pod.node.clone();
            (st.wanted_revision, st.revision_problem) = match wanted {
                Ok(r) => (r, None),
                Err(e) => (String::new(), Some(e)),
            };
        });
        self.board.set_pod(i, pod.pod());
        registry::write(&plan, &self.dir)?;
        self.dir.write_plan(&plan)
    }

    /// Adds `pod` to the pods in force (the plan, the status, the pods file once it is ready,
    /// its registration); its index. Its network and processes are the caller's to start.
    pub(super) fn add(&self, pod: PodPlan) -> anyhow::Result<usize> {
        let mut plan = lock(&self.plan);
        plan.pods.push(pod.clone());
        let i = self.board.add_pod(super::pod_status(&pod), pod.pod());
        anyhow::ensure!(
            i + 1 == plan.pods.len(),
            "pod {}: the status and the plan list different pods",
            pod.id()
        );
        let wanted = self.controls.registry().resolve(pod.rev.as_deref());
        self.board.update(|s| {
            (s.pods[i].wanted_revision, s.pods[i].revision_problem) = match wanted {
                Ok(r) => (r, None),
                Err(e) => (String::new(), Some(e)),
            };
        });
        registry::write(&plan, &self.dir)?;
        self.dir.write_plan(&plan)?;
        Ok(i)
    }

    /// Marks pod `i` removed (its processes stopped and its network gone): out of the status,
    /// the plan and the registration written out; its index stays taken.
    pub(super) fn mark_removed(&self, i: usize) -> anyhow::Result<()> {
        let mut plan = lock(&self.plan);
        plan.pods[i].removed = true;
        lock(&self.pins).remove(&i);
        self.board.update(|s| {
            s.pods[i].removed = true;
            s.pods[i].terminating = false;
        });
        registry::write(&plan, &self.dir)?;
        let p = &plan.pods[i];
        let token = crate::credentials::token_file(&self.dir.path, &p.namespace, &p.name);
        let _ = std::fs::remove_file(token);
        self.dir.write_plan(&plan)
    }

    /// The Services and hosts files of the pods in force, from `config`: in the plan, the
    /// files pods read, the Service translation and the Prometheus targets.
    pub(super) async fn refresh(&self, config: &weft_core::Config) -> anyhow::Result<()> {
        let plan = {
            let mut plan = lock(&self.plan);
            plan.refresh(config);
            self.dir.write_plan(&plan)?;
            plan.clone()
        };
        super::network::write_hosts(&plan, &self.dir)?;
        self.board.replan(&plan);
        if let Some(t) = self.translation.get().cloned() {
            tokio::task::spawn_blocking(move || t.set_plan(plan)).await?;
        }
        Ok(())
    }

    /// The ids of the pods enrolled on `node` now.
    pub(super) fn enrolled_on(&self, node: &str) -> Vec<String> {
        let plan = lock(&self.plan);
        let enrolled = lock(&self.enrolled);
        (enrolled.keys().map(|i| &plan.pods[*i]))
            .filter(|p| p.node == node)
            .map(|p| p.id())
            .collect()
    }

    /// Stops following the ambient pods (at shutdown, before the node proxies stop).
    pub(super) fn forget_enrolments(&self) {
        for (_, e) in std::mem::take(&mut *lock(&self.enrolled)) {
            e.watcher.abort();
        }
    }
}

/// Whether a proxy listens on `pod`'s tunnel port inside the pod.
async fn tunnel_listening(pod: &PodPlan) -> bool {
    let (netns, addr) = (pod.netns.clone(), SocketAddrV4::new(pod.ip, ports::TUNNEL));
    tokio::task::spawn_blocking(move || net::listening(&netns, addr))
        .await
        .is_ok_and(|r| r.unwrap_or(false))
}

/// Follows whether pod `i`'s node proxy serves it (its tunnel listener is open inside the
/// pod), as the pod's proxy readiness: in the status and on `ready`.
async fn follow_served(
    pod: PodPlan,
    i: usize,
    board: Arc<Board>,
    report: Report,
    ready: watch::Sender<bool>,
) {
    board.update(|s| {
        let p = &mut s.pods[i].proxy;
        p.state = "enrolling".into();
        p.pid = None;
        p.started_at_ms = Some(now_ms());
        p.ready_at_ms = None;
        s.pods[i].served_by = None;
    });
    let label = format!("pod {}", pod.id());
    let mut tracker = Tracker::default();
    loop {
        match tracker.observe(tunnel_listening(&pod).await) {
            Some(true) => {
                board.update(|s| {
                    let p = &mut s.pods[i].proxy;
                    p.state = "ready".into();
                    p.ready_at_ms.get_or_insert_with(now_ms);
                    s.pods[i].served_by = Some(pod.node.clone());
                });
                report(format!("{label}: served by node proxy {}", pod.node));
                enrolment_event(&board, &pod, Type::Normal, "Enrolled", "served by");
                let _ = ready.send(true);
            }
            Some(false) => {
                board.update(|s| {
                    s.pods[i].proxy.state = "enrolling".into();
                    s.pods[i].served_by = None;
                });
                report(format!(
                    "{label}: node proxy {} no longer serves it; out of the endpoints until it does again",
                    pod.node
                ));
                enrolment_event(
                    &board,
                    &pod,
                    Type::Warning,
                    "NotServed",
                    "no longer served by",
                );
                let _ = ready.send(false);
            }
            None => {}
        }
        tokio::time::sleep(tracker.interval()).await;
    }
}

/// An ambient pod's event: whether its node's proxy serves it.
fn enrolment_event(board: &Board, pod: &PodPlan, kind: Type, reason: &str, how: &str) {
    let what = format!("ambient pod {how} node proxy {}", pod.node);
    let object = Event::pod(&pod.namespace, &pod.name);
    board.record(Event::new(kind, reason, object, what, crate::board::SOURCE));
}
