//! `weft upgrade --to REV`: a canary upgrade of a running `weft up` mesh. The pods that follow
//! a tag move to revision REV in steps (a share of the replicas, or a namespace at a time),
//! each by a rollout restart with no failed request; after each step the pods on REV are
//! watched against those still on the old revision ([`weft_local::canary`]), and a breach of
//! the SLO (error rate +0.5 points, p99 +50 %, by default) — or a pod that does not come up on
//! REV — rolls every moved pod back at once. When every step passed, the tags those pods
//! follow point at REV and the pods follow their labels again. Every step, the figures that
//! decided it and the final state are printed; `--dry-run` prints the plan only.
//!
//! Pods whose label names a revision directly (pinned) are left where they are, and said so.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use weft_local::canary::{self, Slo, Verdict};
use weft_local::operate::Request;
use weft_local::plan::{Plan, PodPlan};
use weft_local::revisions::{DEFAULT_TAG, Registry};
use weft_local::rundir::RunDir;
use weft_local::status::Status;

use crate::revision::{registry, send};
use crate::rollout::PER_POD;
use crate::up::Instance;

mod watch;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision to move to (installed with `weft install --revision`).
    #[arg(long, value_name = "REV")]
    to: String,
    /// Cumulative shares of the pods to have moved after each step, in percent.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "25,50,100",
        conflicts_with = "by_namespace"
    )]
    steps: Vec<u32>,
    /// One namespace per step instead of shares of the pods.
    #[arg(long)]
    by_namespace: bool,
    /// How long each step is watched before the next.
    #[arg(long, default_value = "30s", value_parser = crate::control::parse_duration)]
    observe: Duration,
    /// Most the error rate on REV may exceed the old revision's, in percentage points.
    #[arg(long, default_value = "0.5", value_parser = points)]
    max_error_increase: f64,
    /// Most REV's p99 latency may exceed the old revision's, in percent.
    #[arg(long, default_value = "50%", value_parser = percent)]
    max_p99_increase: f64,
    /// Latency differences smaller than this never breach (noise on a small p99).
    #[arg(long, default_value = "10ms", value_parser = crate::control::parse_duration)]
    p99_floor: Duration,
    /// Fewer requests on REV in a step than this cannot be judged (the step passes on
    /// readiness alone, and says so).
    #[arg(long, default_value_t = 20)]
    min_requests: u32,
    /// Print the plan: what would move in which step, and what would stay.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    instance: Instance,
}

fn points(s: &str) -> Result<f64, String> {
    canary::parse_percent_points(s).map_err(|e| e.to_string())
}

fn percent(s: &str) -> Result<f64, String> {
    canary::parse_percent(s).map_err(|e| e.to_string())
}

/// What moves, in which steps, and what stays.
#[derive(Debug, Default)]
pub struct Moves {
    /// Pod ids per step.
    pub steps: Vec<Vec<String>>,
    /// Pods left where they are, with why.
    pub staying: Vec<String>,
    /// Tags the moving pods follow: they point at REV once every step passed.
    pub tags: Vec<String>,
}

/// Pods that follow a tag and do not run REV yet, ordered one replica of each workload first
/// (so every workload has a pod on REV early), in `steps`.
pub fn plan_moves(
    plan: &Plan,
    status: &Status,
    reg: &Registry,
    to: &str,
    steps: &[u32],
    by_namespace: bool,
) -> Moves {
    let mut m = Moves::default();
    let mut moving: Vec<(usize, &PodPlan)> = Vec::new();
    for (i, p) in plan.pods.iter().enumerate() {
        let s = &status.pods[i];
        let label = p.rev.as_deref().unwrap_or(DEFAULT_TAG);
        if s.revision.is_empty() {
            if p.captured() && !p.sidecar() {
                m.staying.push(format!(
                    "{}: ambient, served by its node proxy (which follows the default tag)",
                    p.id()
                ));
            }
            continue;
        }
        if reg.get(label).is_some() && !reg.tags.contains_key(label) {
            m.staying.push(format!(
                "{}: pinned to revision {label} by its weft.dev/rev label",
                p.id()
            ));
            continue;
        }
        if s.revision == to {
            continue;
        }
        if !m.tags.iter().any(|t| t == label) {
            m.tags.push(label.to_string());
        }
        moving.push((i, p));
    }
    let replica = |p: &PodPlan| {
        p.name
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
    };
    moving.sort_by_key(|(i, p)| (replica(p).unwrap_or(0), *i));
    if by_namespace {
        let mut namespaces: Vec<&str> = moving.iter().map(|(_, p)| p.namespace.as_str()).collect();
        namespaces.sort();
        namespaces.dedup();
        for ns in namespaces {
            let step = (moving.iter().filter(|(_, p)| p.namespace == ns))
                .map(|(_, p)| p.id())
                .collect();
            m.steps.push(step);
        }
        return m;
    }
    let n = moving.len();
    let mut done = 0;
    for pct in steps {
        let upto = ((n * (*pct).min(100) as usize).div_ceil(100))
            .max(done + 1)
            .min(n);
        if upto > done {
            m.steps
                .push(moving[done..upto].iter().map(|(_, p)| p.id()).collect());
            done = upto;
        }
    }
    if done < n {
        m.steps
            .push(moving[done..].iter().map(|(_, p)| p.id()).collect());
    }
    m
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let reg = registry(&dir)?;
    let Some(rev) = reg.get(&args.to) else {
        let names: Vec<&str> = reg.installed().map(|(_, r)| r.name.as_str()).collect();
        bail!(
            "no revision {} is installed (installed: {}); install it first: weft install \
             --revision {} --binary PATH",
            args.to,
            names.join(", "),
            args.to
        );
    };
    let status = dir.status().context("weft up has no status yet")?;
    let moves = plan_moves(
        &plan,
        &status,
        &reg,
        &args.to,
        &args.steps,
        args.by_namespace,
    );
    let slo = Slo {
        max_error_rate_increase: args.max_error_increase,
        max_p99_increase: args.max_p99_increase,
        p99_floor: args.p99_floor.as_secs_f64(),
        min_requests: args.min_requests as f64,
    };
    println!(
        "upgrade to revision {} (weft {}): {} pods in {} steps, each watched {}s; rollback when \
         the error rate exceeds the old revision's by {:.1} points or p99 by {:.0} % (and {} ms)",
        args.to,
        rev.version,
        moves.steps.iter().map(Vec::len).sum::<usize>(),
        moves.steps.len(),
        args.observe.as_secs(),
        slo.max_error_rate_increase * 100.0,
        slo.max_p99_increase * 100.0,
        args.p99_floor.as_millis()
    );
    for (n, step) in moves.steps.iter().enumerate() {
        println!("  step {}: {}", n + 1, step.join(", "));
    }
    for s in &moves.staying {
        println!("  stays: {s}");
    }
    if !moves.tags.is_empty() {
        println!("  then: tags {} → {}", moves.tags.join(", "), args.to);
    }
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    if moves.steps.is_empty() {
        println!(
            "nothing to move: every pod that follows a tag runs {} already",
            args.to
        );
        return move_tags(&dir, &moves, &args.to, &[]);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut moved: Vec<(String, String)> = Vec::new();
    // Each workload's figures before anything moves: what a workload that moves whole is
    // compared with.
    println!(
        "baseline: watching every workload for {}s before anything moves",
        args.observe.as_secs()
    );
    let mut baselines = watch::Baselines::new();
    rt.block_on(watch::window(
        &dir,
        &plan,
        &args.to,
        &slo,
        args.observe,
        &mut baselines,
    ));
    for (w, f) in &baselines {
        println!("  {w}: {}", canary::describe(f));
    }
    for (n, step) in moves.steps.iter().enumerate() {
        println!(
            "step {}/{}: moving {}",
            n + 1,
            moves.steps.len(),
            step.join(", ")
        );
        let before = dir.status().context("status")?;
        let req = Request::Rollout {
            pods: step.clone(),
            revision: Some(args.to.clone()),
        };
        let from = |id: &str| {
            let i = plan.pods.iter().position(|p| p.id() == id)?;
            Some(before.pods[i].revision.clone())
        };
        moved.extend(step.iter().filter_map(|id| Some((id.clone(), from(id)?))));
        if let Err(e) = send(&dir, &req, PER_POD * step.len() as u32) {
            println!("step {} failed: {e:#}", n + 1);
            return roll_back(&dir, &moved, Instant::now());
        }
        let verdict = rt.block_on(watch::window(
            &dir,
            &plan,
            &args.to,
            &slo,
            args.observe,
            &mut baselines,
        ));
        match verdict {
            Verdict::Breach(why) => {
                let breach = Instant::now();
                println!("step {}: BREACH: {why}", n + 1);
                return roll_back(&dir, &moved, breach);
            }
            Verdict::NotEnoughTraffic(why) => {
                println!("step {}: passed on readiness alone: {why}", n + 1)
            }
            Verdict::Pass => println!("step {}: passed", n + 1),
        }
    }
    let ids: Vec<String> = moved.iter().map(|(id, _)| id.clone()).collect();
    move_tags(&dir, &moves, &args.to, &ids)
}

/// Every step passed: the tags the moved pods follow point at `to`, and their pins go.
fn move_tags(dir: &RunDir, moves: &Moves, to: &str, ids: &[String]) -> anyhow::Result<ExitCode> {
    for tag in &moves.tags {
        let req = Request::TagSet {
            tag: tag.clone(),
            revision: to.to_string(),
            overwrite: true,
        };
        send(dir, &req, Duration::from_secs(30))?;
    }
    if !ids.is_empty() {
        let req = Request::Unpin { pods: ids.to_vec() };
        send(dir, &req, Duration::from_secs(30))?;
    }
    println!(
        "upgrade to {to} done: {} pods moved; the old revision can go once nothing uses it \
         (weft revision list; weft uninstall --revision NAME)",
        ids.len()
    );
    final_state(dir);
    Ok(ExitCode::SUCCESS)
}

/// The state the upgrade left: each installed revision with its tags and the pods on it.
fn final_state(dir: &RunDir) {
    let (Some(reg), Some(status)) = (Registry::read(dir), dir.status()) else {
        return;
    };
    for (_, r) in reg.installed() {
        let tags = reg.tags_of(&r.name);
        let pods = status.pods.iter().filter(|p| p.revision == r.name).count();
        let tags = match tags.is_empty() {
            true => String::new(),
            false => format!(" (tags {})", tags.join(", ")),
        };
        println!("  revision {}{tags}: {pods} pods", r.name);
    }
}

/// Puts every moved pod back on the revision it ran before, one at a time, and reports how
/// long it took from the breach.
fn roll_back(
    dir: &RunDir,
    moved: &[(String, String)],
    breach: Instant,
) -> anyhow::Result<ExitCode> {
    println!("rolling back {} pods", moved.len());
    let mut revisions: Vec<&str> = moved.iter().map(|(_, r)| r.as_str()).collect();
    revisions.sort();
    revisions.dedup();
    let mut failed = None;
    for rev in revisions {
        let pods: Vec<String> = (moved.iter())
            .filter(|(_, r)| r == rev)
            .map(|(id, _)| id.clone())
            .collect();
        let req = Request::Rollout {
            pods: pods.clone(),
            revision: Some(rev.to_string()),
        };
        if let Err(e) = send(dir, &req, PER_POD * pods.len() as u32) {
            failed = Some(e);
        }
        let req = Request::Unpin { pods };
        let _ = send(dir, &req, Duration::from_secs(30));
    }
    let took = breach.elapsed().as_secs_f64();
    match failed {
        None => println!("rolled back in {took:.1}s: every moved pod runs its old revision again"),
        Some(e) => println!("rollback incomplete after {took:.1}s: {e:#}"),
    }
    final_state(dir);
    Ok(ExitCode::from(1))
}

#[cfg(test)]
mod tests;
