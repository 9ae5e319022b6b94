//! Control-plane scale: a real `weft control` serving a generated mesh (1000 Services, 10 000
//! endpoints by default) to N simulated proxies. Measures its memory, how long N proxies take
//! to connect and hold their subscriptions, and the push latency of a config change: from
//! rewriting one Service's file to each subscribed proxy's ACK of the new version.

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
    /// From opening the first stream until every proxy held its subscriptions.
    pub connect_ms: f64,
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

pub async fn run(opts: &Options, proxies: usize) -> anyhow::Result<Run> {
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
    let log = opts.work.join(format!("control-{proxies}.log"));
    let mut control = Proc::spawn("weft control", &opts.weft, &args, &log)?;
    let pid = control.pid();
    tokio::task::block_in_place(|| {
        proc::wait_ok(&mut control, admin_addr, "/ready", Duration::from_secs(120))
    })
    .with_context(|| format!("see {}", log.display()))?;
    // The pods file is read before serving; give the first snapshot a moment to settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let control_idle = proc::memory(pid)?;
    proc::reset_peak(pid);

    let started = Instant::now();
    let endpoint = format!("http://127.0.0.1:{discovery}");
    let mut fleet = sim::start(&endpoint, proxies, opts.services, opts.announce).await?;
    fleet.synced(Duration::from_secs(600)).await?;
    let connect_ms = ms(started.elapsed());
    let control_connected = proc::memory(pid)?;

    let mut changes = Vec::new();
    for change in 1..=opts.changes {
        // Let the previous change's pushes pass.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let written_ms = weft_now_ms();
        let acked = fleet
            .change(
                change,
                || mesh::write_service(&dir, sim::HOT, change, false),
                Duration::from_secs(120),
            )
            .await?;
        let apply_ms = applied_at(admin_addr).map(|at| at.saturating_sub(written_ms) as f64);
        changes.push(Change {
            change,
            acked: acked.len(),
            missing: proxies - acked.len(),
            p50_ms: percentile_ms(&acked, 50.0),
            p99_ms: percentile_ms(&acked, 99.0),
            max_ms: percentile_ms(&acked, 100.0),
            apply_ms,
        });
        control.check_running()?;
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
        connect_ms,
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
