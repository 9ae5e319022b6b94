//! `weft rollout restart [NS | NS/WORKLOAD | WORKLOAD]`: restarts the pods of a running `weft
//! up` one at a time, each onto the revision its labels ask for now, so that a steady load sees
//! no failed request (out of the endpoints first, the app held until its new proxy is ready,
//! the old proxy drained). Without a target, every pod.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use weft_local::operate::Request;
use weft_local::plan::Plan;

use crate::up::Instance;

/// Per pod: out of the endpoints, drain, start, ready (30 s at most).
pub const PER_POD: Duration = Duration::from_secs(50);

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    instance: Instance,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Restart pods one at a time onto the revision they ask for.
    Restart {
        /// A namespace, NS/WORKLOAD, or a workload name; none: every pod.
        target: Option<String>,
    },
}

/// The pods (`ns/name`) `target` means, in plan order.
pub fn select(plan: &Plan, target: Option<&str>) -> anyhow::Result<Vec<String>> {
    let Some(t) = target else {
        return Ok(plan.pods.iter().map(|p| p.id()).collect());
    };
    let by = |f: &dyn Fn(&weft_local::plan::PodPlan) -> bool| -> Vec<String> {
        plan.pods.iter().filter(|p| f(p)).map(|p| p.id()).collect()
    };
    let pods = match t.split_once('/') {
        Some((ns, wl)) => by(&|p| p.namespace == ns && p.workload == wl),
        None => {
            let in_ns = by(&|p| p.namespace == t);
            match in_ns.is_empty() {
                false => in_ns,
                true => by(&|p| p.workload == t),
            }
        }
    };
    if pods.is_empty() {
        let mut names: Vec<String> = plan
            .pods
            .iter()
            .flat_map(|p| {
                [
                    p.namespace.clone(),
                    format!("{}/{}", p.namespace, p.workload),
                ]
            })
            .collect();
        names.dedup();
        bail!(
            "{t:?} is no namespace or workload of this mesh; try one of: {}",
            names.join(", ")
        );
    }
    Ok(pods)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let Command::Restart { target } = args.command;
    let pods = select(&plan, target.as_deref())?;
    let within = PER_POD * pods.len() as u32;
    let req = Request::Rollout {
        pods,
        revision: None,
    };
    crate::revision::send(&dir, &req, within)?;
    Ok(ExitCode::SUCCESS)
}
