//! Following the configuration directory while `weft up` runs, as the control plane does: when
//! its files change (and then stay as they are for one more look), the configuration is loaded
//! and checked again; an invalid one changes nothing and says why. A valid one is planned, and
//! the pods whose dataplane mode or labels changed are switched ([`crate::switch`]), each on its
//! own and without stopping its app; other pods are not touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;

use super::pods::{Pods, RELEASE_WAIT};
use crate::plan::{self, Options, Plan};
use crate::supervise::Report;
use crate::switch::{self, Step, Switch};

/// How often the configuration directory is looked at.
const POLL: Duration = Duration::from_millis(250);
/// How long a switch waits for a proxy to serve the pod before it reports and goes on.
const SERVE_WAIT: Duration = Duration::from_secs(30);

/// The files of a directory tree as (size, modification time), to notice a change.
type Fingerprint = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut out = Fingerprint::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                todo.push(e.path());
            } else {
                out.insert(e.path(), (meta.len(), meta.modified().ok()));
            }
        }
    }
    out
}

/// Follows `opts`' configuration directory until aborted.
pub(super) async fn run(pods: Arc<Pods>, weft: PathBuf, report: Report) {
    let plan = pods.plan();
    let dir = plan.config_dir.clone();
    let opts = Options {
        name: plan.name.clone(),
        weft,
        // Gateways are not followed: their ports do not matter here.
        ingress_port: None,
        admin: plan.admin,
    };
    let mut seen = fingerprint(&dir);
    loop {
        tokio::time::sleep(POLL).await;
        let now = fingerprint(&dir);
        if now == seen {
            continue;
        }
        // Read once it stays as it is for a moment: an editor writes in several steps.
        tokio::time::sleep(POLL).await;
        let settled = fingerprint(&dir);
        if settled != now {
            continue;
        }
        seen = settled;
        match replan(&dir, &opts) {
            Ok(wanted) => apply(&pods, &wanted, &report).await,
            Err(e) => report(format!(
                "configuration change in {} not applied to the pods: {e:#}",
                dir.display()
            )),
        }
    }
}

fn replan(dir: &Path, opts: &Options) -> anyhow::Result<Plan> {
    let config = plan::load(dir)?;
    Plan::new(&config, dir, opts)
}

/// Switches the pods `wanted` changes, side by side, and reports what it does not apply.
async fn apply(pods: &Arc<Pods>, wanted: &Plan, report: &Report) {
    let running = pods.plan();
    let d = switch::diff(&running, wanted);
    for line in &d.ignored {
        report(format!(
            "configuration change not applied while running (restart weft up for it): {line}"
        ));
    }
    // A new revision label alone: the pod asks for another revision (`weft status`), and
    // moves when it restarts.
    for i in d.revisions {
        let pod = wanted.pods[i].clone();
        let (id, rev) = (pod.id(), pod.rev.clone());
        match pods.register(i, pod) {
            Ok(()) => report(format!(
                "pod {id}: its revision label is now {}; it moves when restarted (weft rollout restart)",
                rev.as_deref().unwrap_or("(none: the default tag)")
            )),
            Err(e) => report(format!("pod {id}: {e:#}")),
        }
    }
    let mut tasks = JoinSet::new();
    for s in d.switches {
        let (pods, report) = (pods.clone(), report.clone());
        let pod = wanted.pods[s.pod].clone();
        tasks.spawn(async move {
            let what = switch::describe(&s, &pod);
            report(format!("switching pod {what}"));
            match run_steps(&pods, &s, pod, &report).await {
                Ok(()) => report(format!("switched pod {what}")),
                Err(e) => report(format!("switching pod {what}: {e:#}")),
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// The steps of one switch, in order.
async fn run_steps(
    pods: &Pods,
    s: &Switch,
    pod: crate::plan::PodPlan,
    report: &Report,
) -> anyhow::Result<()> {
    let i = s.pod;
    let id = pod.id();
    let mut pod = Some(pod);
    for step in switch::steps(s) {
        match step {
            Step::Register => {
                if let Some(p) = pod.take() {
                    pods.register(i, p)?;
                }
            }
            Step::StopSidecar => pods.stop_sidecar(i).await,
            Step::StartSidecar => {
                let mut ready = pods.start_sidecar(i);
                let up = tokio::time::timeout(SERVE_WAIT, ready.wait_for(|r| *r)).await;
                if up.is_err() {
                    report(format!(
                        "pod {id}: its sidecar is not ready after {}s",
                        SERVE_WAIT.as_secs()
                    ));
                }
            }
            Step::Enrol => {
                pods.enrol(i)?;
            }
            Step::WaitServed => {
                if !pods.wait_served(i, SERVE_WAIT).await {
                    report(format!(
                        "pod {id}: its node proxy does not serve it after {}s",
                        SERVE_WAIT.as_secs()
                    ));
                }
            }
            Step::Unenrol => pods.unenrol(i)?,
            Step::WaitReleased => {
                if !pods.wait_released(i, RELEASE_WAIT).await {
                    report(format!(
                        "pod {id}: its node proxy still listens in it after {}s",
                        RELEASE_WAIT.as_secs()
                    ));
                }
            }
            Step::InstallCapture => pods.capture(i, true).await?,
            Step::RemoveCapture => pods.capture(i, false).await?,
            Step::TranslateServices => pods.translate(i, true).await?,
            Step::UntranslateServices => pods.translate(i, false).await?,
        }
    }
    Ok(())
}
