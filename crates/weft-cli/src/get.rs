//! `weft get pods|services|workloads`: what a `weft up` mesh runs, from its status file.

use std::process::ExitCode;

use weft_core::model::{Pod, Snapshot};
use weft_local::plan::Plan;
use weft_local::rundir::RunDir;
use weft_local::status::{PodStatus, Process, Status, now_ms};

use crate::up::Instance;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum What {
    Pods,
    Services,
    Workloads,
}

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    what: What,
    #[command(flatten)]
    instance: Instance,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    output: Output,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = RunDir::new(&args.instance.name);
    let (Some(plan), Some(status)) = (dir.plan(), dir.status()) else {
        anyhow::bail!(
            "no mesh named {:?} is running; start one with `weft up DIR`",
            args.instance.name
        );
    };
    let rows = match args.what {
        What::Pods => pods(&status),
        What::Services => services(&plan)?,
        What::Workloads => workloads(&plan, &status),
    };
    match args.output {
        Output::Json => {
            let v = match args.what {
                What::Pods => serde_json::to_value(&status.pods)?,
                _ => serde_json::to_value(&rows)?,
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Output::Table => print!("{}", table(&rows)),
    }
    // What the running mesh did not apply is said wherever its pods are listed.
    for line in &status.refused {
        eprintln!("configuration change refused while the mesh runs: {line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn pods(status: &Status) -> Vec<Vec<String>> {
    let mut rows = vec![header(&[
        "NAMESPACE",
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "IP",
        "MODE",
        "NODE",
        "PROXY",
        "AGE",
        "REASON",
    ])];
    let now = now_ms();
    for p in &status.pods {
        // An ambient pod's proxy is its node's, serving it: it counts, it has no process.
        let procs: Vec<&Process> = match p.mode.as_str() {
            "sidecar" | "ambient" => vec![&p.proxy, &p.app],
            _ => vec![&p.app],
        };
        let ready = procs.iter().filter(|p| p.state == "ready").count();
        let restarts: u32 = procs.iter().map(|p| p.restarts).sum();
        rows.push(vec![
            p.namespace.clone(),
            p.name.clone(),
            format!("{ready}/{}", procs.len()),
            pod_state(p),
            restarts.to_string(),
            p.ip.clone(),
            p.mode.clone(),
            p.node.clone(),
            proxy(p),
            age(p.proxy.started_at_ms.or(p.app.started_at_ms)),
            // Why it is not ready; empty when it is.
            p.not_ready(now).map(|r| r.reason).unwrap_or_default(),
        ]);
    }
    rows
}

/// What serves the pod's traffic: its sidecar, its node's proxy, or nothing.
fn proxy(p: &PodStatus) -> String {
    match (p.mode.as_str(), &p.served_by) {
        ("sidecar", _) => "sidecar".into(),
        ("ambient", Some(node)) => format!("node proxy {node}"),
        ("ambient", None) => format!("none yet ({})", p.proxy.state),
        ("waypoint", _) => "itself (waypoint)".into(),
        _ => "-".into(),
    }
}

/// One word for a pod, with the reason when it is not running.
fn pod_state(p: &PodStatus) -> String {
    let crash = |who: &str, proc: &Process| {
        format!(
            "CrashLoop({who}: {})",
            proc.last_exit.as_deref().unwrap_or("exited")
        )
    };
    match (p.proxy.state.as_str(), p.app.state.as_str()) {
        ("restarting", _) => crash("proxy", &p.proxy),
        (_, "restarting") => crash("app", &p.app),
        ("enrolling", "waiting") => "WaitingForNodeProxy".into(),
        (_, "waiting") => "WaitingForProxy".into(),
        (_, "stopped") => "Stopped".into(),
        _ => "Running".into(),
    }
}

fn age(since_ms: Option<u64>) -> String {
    let Some(t) = since_ms else { return "-".into() };
    let s = now_ms().saturating_sub(t) / 1000;
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

fn services(plan: &Plan) -> anyhow::Result<Vec<Vec<String>>> {
    let config = weft_local::plan::load(&plan.config_dir)?;
    let pods: Vec<Pod> = plan.pods.iter().map(|p| p.pod()).collect();
    let snap = Snapshot::build(&config, &pods);
    let mut rows = vec![header(&[
        "NAMESPACE",
        "NAME",
        "VIP",
        "PORTS",
        "ENDPOINTS",
        "NAMES",
    ])];
    for s in snap.services.values() {
        let ports: Vec<String> = s.ports.iter().map(|p| p.port.to_string()).collect();
        let eps: Vec<String> = s.endpoints.iter().map(|e| e.pod.clone()).collect();
        rows.push(vec![
            s.namespace.clone(),
            s.name.clone(),
            s.vip.map_or("-".into(), |v| v.to_string()),
            ports.join(","),
            if eps.is_empty() {
                "<none>".into()
            } else {
                eps.join(",")
            },
            s.hostnames.join(","),
        ]);
    }
    Ok(rows)
}

fn workloads(plan: &Plan, status: &Status) -> Vec<Vec<String>> {
    let mut rows = vec![header(&["NAMESPACE", "NAME", "READY", "MODE", "COMMAND"])];
    let mut seen = Vec::new();
    for p in &plan.pods {
        let key = (p.namespace.clone(), p.workload.clone());
        if seen.contains(&key) {
            continue;
        }
        let of: Vec<&PodStatus> = status
            .pods
            .iter()
            .filter(|s| s.namespace == p.namespace && s.workload == p.workload)
            .collect();
        let ready = of.iter().filter(|s| s.app.state == "ready").count();
        rows.push(vec![
            p.namespace.clone(),
            p.workload.clone(),
            format!("{ready}/{}", of.len()),
            weft_local::plan::mode_name(p.mode).into(),
            p.command.join(" "),
        ]);
        seen.push(key);
    }
    rows
}

pub(crate) fn header(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns, two spaces apart.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
