//! Following the configuration directory while `weft up` runs, as the control plane does: when
//! its files change (and then stay as they are for one more look), the configuration is loaded
//! and checked again; an invalid one changes nothing and says why. A valid one is planned
//! against the pods that run ([`Plan::next`]: they keep their addresses) and what it changes
//! ([`crate::change`]) is applied, one change at a time ([`Pods::operations`]): new pods start
//! and removed ones stop ([`super::live`]), pods whose dataplane mode or labels changed are
//! switched ([`crate::switch`]) each on its own and without stopping its app, and pods whose
//! spec changed are replaced one at a time. What the running mesh cannot apply is refused,
//! named in its log and in the status (`weft get pods` shows it), never silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinSet;

use weft_core::Config;

use super::live;
use super::pods::{Pods, RELEASE_WAIT};
use crate::change::{self, Change};
use crate::plan::{Options, Plan};
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
    let mut refused: Vec<String> = Vec::new();
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
        // Planned and applied against the pods as they run: one change at a time.
        let _turn = pods.operations.lock().await;
        let loaded = weft_core::analyze::load_checked(&dir).map_err(|problems| {
            anyhow::anyhow!(
                "the configuration in {} has errors:\n{}",
                dir.display(),
                problems.join("\n")
            )
        });
        let planned = loaded.and_then(|config| {
            let wanted = Plan::next(&config, &dir, &opts, &pods.plan())?;
            Ok((config, wanted))
        });
        let (config, wanted) = match planned {
            Ok(p) => p,
            Err(e) => {
                let why = format!("{e:#}");
                report(format!(
                    "configuration change not applied to the pods: {why}"
                ));
                refuse(&pods, &mut refused, vec![why], &|_| {});
                continue;
            }
        };
        let change = change::diff(&pods.plan(), &wanted);
        let said = |line: &String| {
            report(format!(
                "configuration change refused while the mesh runs: {line}"
            ));
        };
        refuse(&pods, &mut refused, change.refused.clone(), &said);
        apply(&pods, &config, change, &report).await;
    }
}

/// Puts `now` in the status as what the running mesh does not apply (`weft get pods` shows
/// it), saying each line that is new.
fn refuse(pods: &Pods, shown: &mut Vec<String>, now: Vec<String>, say: &dyn Fn(&String)) {
    if now == *shown {
        return;
    }
    now.iter().filter(|l| !shown.contains(l)).for_each(say);
    *shown = now;
    pods.board().update(|s| s.refused.clone_from(shown));
}

/// Applies `change`: revision labels, new pods, switches, replacements, removals; then the
/// Services and names that follow the pods.
async fn apply(pods: &Arc<Pods>, config: &Config, change: Change, report: &Report) {
    let Change {
        added,
        removed,
        restarts,
        switches,
        revisions,
        refused: _,
    } = change;
    // A new revision label alone: the pod asks for another revision (`weft status`), and
    // moves when it restarts.
    for (i, pod) in revisions {
        let (id, rev) = (pod.id(), pod.rev.clone());
        let moved = pods.plan().pods[i].rev != rev;
        match pods.register(i, pod) {
            Ok(()) if moved => report(format!(
                "pod {id}: its revision label is now {}; it moves when restarted (weft rollout restart)",
                rev.as_deref().unwrap_or("(none: the default tag)")
            )),
            Ok(()) => {}
            Err(e) => report(format!("pod {id}: {e:#}")),
        }
    }
    // Services and names first: new pods find theirs when they start.
    let refresh = |what: &'static str| async move {
        if let Err(e) = pods.refresh(config).await {
            report(format!("{what}: Services and names of the pods: {e:#}"));
        }
    };
    refresh("configuration change").await;
    live::add(pods, config, added, report).await;
    let mut tasks = JoinSet::new();
    for (s, pod) in switches {
        let (pods, report) = (pods.clone(), report.clone());
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
    live::replace(pods, restarts, report).await;
    if !removed.is_empty() {
        live::remove(pods, removed, report).await;
        refresh("pods removed").await;
    }
    live::write_bound(pods);
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
