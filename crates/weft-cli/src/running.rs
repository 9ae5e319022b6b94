//! The mesh a command acts on: the running instance's plan, and a pod of it by name, with
//! errors that say what is running instead.

use weft_local::plan::{Plan, PodPlan};
use weft_local::rundir::RunDir;

use crate::up::Instance;

impl Instance {
    /// The run directory and plan of this running instance.
    pub fn running(&self) -> anyhow::Result<(RunDir, Plan)> {
        let dir = RunDir::new(&self.name);
        match dir.plan() {
            Some(plan) => Ok((dir, plan)),
            None => anyhow::bail!(
                "no mesh named {:?} is running; start one with `weft up DIR`",
                self.name
            ),
        }
    }
}

/// The workload pod `name` of `plan` (see [`crate::names`]); the error lists the pods, and
/// `others` (names that are not pods but the command accepts).
pub fn pod<'a>(plan: &'a Plan, name: &str, others: &str) -> anyhow::Result<&'a PodPlan> {
    let ids: Vec<(&str, &str)> = (plan.pods.iter())
        .map(|p| (p.namespace.as_str(), p.name.as_str()))
        .collect();
    crate::names::pick(&ids, name)
        .map(|i| &plan.pods[i])
        .map_err(|e| anyhow::anyhow!("{e}{others}"))
}
