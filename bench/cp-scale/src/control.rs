//! Control-plane scale: a real `weft control` serving a generated mesh (1000 Services, 10 000
//! endpoints by default) to N simulated proxies. Measures its memory, how long N proxies take
//! to connect and be served and the control plane's CPU per join, and the push latency of a
//! config change: from rewriting one Service's file to each subscribed proxy's ACK of the new
//! version. The pieces (start, join, change) are shared with the churn scenario.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::proc::{self, Memory, Proc};
use crate::stats::{median, ms, percentile_ms};
use crate::{mesh, sim};

#[derive(Debug, Clone)]
pub struct Options {
    pub weft: PathBuf,
    pub work: PathBuf,
    pub services: usize,
    pub endpoints: usize,
    pub changes: u64,
    pub announce: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub proxies: usize,
    pub connections: usize,
    pub services: usize,
    pub endpoints: usize,
    /// Proxies announce a pod address (each join rebuilds the control plane's snapshot).
    pub announce: bool,
    /// After loading the config and the pods file, before any proxy (hwm: the load's peak).
    pub control_idle: Memory,
    /// Once every proxy holds its subscriptions (hwm: peak since idle).
    pub control_connected: Memory,
    /// After the last change (hwm: peak since idle).
    pub control_end: Memory,
    /// How the proxies joined: `connectMs`, `joinsPerSecond`, `joinCpuSeconds`, `cpuMsPerJoin`,
    /// `retries`, `retryErrors`.
    #[serde(flatten)]
    pub joins: Joins,
    pub changes: Vec<Change>,
    /// Medians over the changes.
    pub push_p50_ms: Option<f64>,
    pub push_p99_ms: Option<f64>,
    pub push_max_ms: Option<f64>,
    /// Median time from the write until the control plane had the change in force.
    pub apply_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub change: u64,
    /// Proxies that ACKed the new version (all of them, unless some are missing).
    pub acked: usize,
    pub missing: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Write → the control plane's `appliedAtMs` (its poll, load, analysis and rebuild).
    pub apply_ms: Option<f64>,
}

/// A running `weft control` on loopback ports, killed when dropped.
#[derive(Debug)]
pub struct Plane {
    pub process: Proc,
    pub pid: u32,
    pub admin: SocketAddr,
    /// The plaintext discovery URL (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    /// The generated config directory (the changes rewrite Service [`sim::HOT`] in it).
    pub dir: PathBuf,
}

/// Generates the mesh (once per `work`), starts `weft control` on it and waits until it is
/// ready and has settled. `label` names its log file.
pub async fn start(opts: &Options, label: &str) -> anyhow::Result<Plane> {
    let dir = opts.work.join("config");
    let pods_file = opts.work.join("pods.json");
    if !dir.join("mesh.yaml").exists() {
        mesh::write_config(&dir, opts.services, false)?;
        mesh::write_pods(&pods_file, &mesh::pods(opts.services, opts.endpoints, &[]))?;
    }
    mesh::write_service(&dir, sim::HOT, 0, false)?;
    let (discovery, admin) = (proc::free_port()?, proc::free_port()?);
    let admin_addr: SocketAddr = ([127, 0, 0, 1], admin).into();
    let args: Vec<String> = [
        "control",
        "-c",
        &dir.display().to_string(),
        "--pods",
        &pods_file.display().to_string(),
        "--discovery",
        &format!("127.0.0.1:{discovery}"),
        "--admin",
        &admin_addr.to_string(),
        "--warmup",
        "0s",
    ]
    .map(String::from)
    .to_vec();
    let log = opts.work.join(format!("control-{label}.log"));
    let mut control = Proc::spawn("weft control", &opts.weft, &args, &log)?;
    tokio::task::block_in_place(|| {
        proc::wait_ok(&mut control, admin_addr, "/ready", Duration::from_secs(120))
    })
    .with_context(|| format!("see {}", log.display()))?;
    // The pods file is read before serving; give the first snapshot a moment to settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(Plane {
        pid: control.pid(),
        process: control,
        admin: admin_addr,
        endpoint: format!("http://127.0.0.1:{discovery}"),
        dir,
    })
}

/// How `n` proxies joined: from opening the first stream until every one was served.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Joins {
    /// From opening the first stream until every proxy was served (each got its first answer
    /// for every name of every type it subscribed to).
    pub connect_ms: f64,
    pub joins_per_second: f64,
    /// The control plane's CPU (utime + stime) over that time.
    pub join_cpu_seconds: f64,
    /// `join_cpu_seconds / n`, in ms: what one more join costs the control plane at this size.
    pub cpu_ms_per_join: f64,
    /// Streams that failed or were refused and were opened again (after a sidecar's
    /// backoff) before every proxy was served, and the first few of their errors.
    pub retries: usize,
    pub retry_errors: Vec<String>,
}

/// Starts `n` simulated proxies against `plane` and waits until all are served.
pub async fn join(plane: &Plane, opts: &Options, n: usize) -> anyhow::Result<(sim::Fleet, Joins)> {
    let cpu_before = proc::cpu_seconds(plane.pid)?;
    let started = Instant::now();
    let mut fleet = sim::start(&plane.endpoint, n, opts.services, opts.announce).await?;
    fleet.synced(Duration::from_secs(600)).await?;
    let took = started.elapsed();
    let cpu = proc::cpu_seconds(plane.pid)? - cpu_before;
    let joins = Joins {
        connect_ms: ms(took),
        joins_per_second: round3(n as f64 / took.as_secs_f64().max(1e-9)),
        join_cpu_seconds: round3(cpu),
        cpu_ms_per_join: round3(cpu * 1e3 / n.max(1) as f64),
        retries: fleet.retries,
        retry_errors: fleet.errors.clone(),
    };
    Ok((fleet, joins))
}

pub fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// Config change number `change`: rewrites Service [`sim::HOT`] and waits up to `timeout` for
/// every proxy of `fleet` to ACK its new version.
pub async fn change(
    plane: &Plane,
    fleet: &mut sim::Fleet,
    change: u64,
    timeout: Duration,
) -> anyhow::Result<(Change, Vec<Duration>)> {
    let written_ms = weft_now_ms();
    let acked = fleet
        .change(
            change,
            || mesh::write_service(&plane.dir, sim::HOT, change, false),
            timeout,
        )
        .await?;
    let apply_ms = applied_at(plane.admin).map(|at| at.saturating_sub(written_ms) as f64);
    let out = Change {
        change,
        acked: acked.len(),
        missing: fleet.proxies - acked.len(),
        p50_ms: percentile_ms(&acked, 50.0),
        p99_ms: percentile_ms(&acked, 99.0),
        max_ms: percentile_ms(&acked, 100.0),
        apply_ms,
    };
    Ok((out, acked))
}

pub async fn run(opts: &Options, proxies: usize) -> anyhow::Result<Run> {
    let mut plane = start(opts, &proxies.to_string()).await?;
    let pid = plane.pid;
    let control_idle = proc::memory(pid)?;
    proc::reset_peak(pid);

    let (mut fleet, joins) = join(&plane, opts, proxies).await?;
    let control_connected = proc::memory(pid)?;

    let mut changes = Vec::new();
    for n in 1..=opts.changes {
        // Let the previous change's pushes pass.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (c, _) = change(&plane, &mut fleet, n, Duration::from_secs(120)).await?;
        changes.push(c);
        plane.process.check_running()?;
    }
    let control_end = proc::memory(pid)?;
    let pick =
        |f: fn(&Change) -> Option<f64>| median(&changes.iter().filter_map(f).collect::<Vec<_>>());
    Ok(Run {
        proxies,
        connections: fleet.connections,
        services: opts.services,
        endpoints: opts.endpoints,
        announce: opts.announce,
        control_idle,
        control_connected,
        control_end,
        joins,
        push_p50_ms: pick(|c| c.p50_ms),
        push_p99_ms: pick(|c| c.p99_ms),
        push_max_ms: pick(|c| c.max_ms),
        apply_ms: pick(|c| c.apply_ms),
        changes,
    })
}

fn weft_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The control plane's `appliedAtMs` of the configuration in force.
fn applied_at(admin: SocketAddr) -> Option<u64> {
    let (_, body) = tokio::task::block_in_place(|| proc::http_get(admin, "/debug/config")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["appliedAtMs"].as_u64()
}

/// Removes the generated files of a run.
pub fn clean(work: &Path) {
    let _ = std::fs::remove_dir_all(work.join("config"));
    let _ = std::fs::remove_file(work.join("pods.json"));
}
