//! Churn: the control plane under a steady coming and going of pods. N simulated proxies join
//! first (measured as in the `control` scenario); then, for a while, extra pods join at a
//! steady rate and leave after a short life ([`sim::churn`]) while config changes are pushed
//! every few seconds. Measures the push latency of those changes to the N steady proxies
//! under churn, how many churn pods were served and how fast, and the control plane's CPU and
//! memory over the churn.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::control::{self, Change, Joins, round3};
use crate::proc::{self, Memory};
use crate::sim;
use crate::stats::percentile_ms;

#[derive(Debug, Clone)]
pub struct Options {
    pub base: control::Options,
    /// Pods joining (and leaving) per second.
    pub rate: f64,
    /// How long pods keep joining.
    pub duration: Duration,
    /// How long a churn pod stays once served.
    pub life: Duration,
    /// Time between config changes.
    pub change_every: Duration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// Steady proxies, connected throughout; the push latency is theirs.
    pub proxies: usize,
    pub connections: usize,
    pub services: usize,
    pub endpoints: usize,
    /// The steady proxies announce a pod address, as sidecars do (churn pods always do).
    pub announce: bool,
    pub churn_rate: f64,
    pub duration_seconds: f64,
    pub life_seconds: f64,
    pub change_every_seconds: f64,
    /// How the steady proxies joined, before the churn.
    #[serde(flatten)]
    pub joins: Joins,
    pub churn: sim::churn::Report,
    /// Steady proxies' streams that failed during the churn and were opened again, and the
    /// first few of their errors.
    pub steady_retries: usize,
    pub steady_retry_errors: Vec<String>,
    /// One per change pushed during the churn, over the steady proxies.
    pub changes: Vec<Change>,
    /// Changes that every steady proxy ACKed within [`CHANGE_TIMEOUT`].
    pub changes_all_acked: usize,
    /// Per change that every steady proxy ACKed, the time until the last one did (the change's
    /// max); these are the p50, p99 and max of that over those changes.
    pub push_all_acked_p50_ms: Option<f64>,
    pub push_all_acked_p99_ms: Option<f64>,
    pub push_all_acked_max_ms: Option<f64>,
    /// Every steady proxy's ACK time of every change, pooled.
    pub push_p50_ms: Option<f64>,
    pub push_p99_ms: Option<f64>,
    /// Before any proxy.
    pub control_idle: Memory,
    /// Once the steady proxies were served (hwm: peak while they joined).
    pub control_connected: Memory,
    /// When the churn stopped (hwm: peak during the churn).
    pub control_churn_end: Memory,
    /// The control plane's CPU (utime + stime) from the churn's start until it stopped or the
    /// last change was ACKed, whichever came later (`control_churn_wall_seconds`), and that
    /// CPU over that wall time.
    pub control_churn_cpu_seconds: f64,
    pub control_churn_wall_seconds: f64,
    pub control_churn_cpu_cores: f64,
    /// Proxies the control plane listed once the last churn pod left (should be `proxies`).
    pub proxies_at_end: Option<usize>,
}

/// How long a change may take to reach every steady proxy; those that have not ACKed it by then
/// count as missing.
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(opts: &Options, proxies: usize) -> anyhow::Result<Run> {
    let base = &opts.base;
    let mut plane = control::start(base, &format!("churn-{proxies}")).await?;
    let pid = plane.pid;
    let control_idle = proc::memory(pid)?;
    proc::reset_peak(pid);
    let (mut fleet, joins) = control::join(&plane, base, proxies).await?;
    let control_connected = proc::memory(pid)?;
    proc::reset_peak(pid);

    let churn_opts = sim::churn::Options {
        rate: opts.rate,
        life: opts.life,
        duration: opts.duration,
        join_timeout: Duration::from_secs(30),
        services: base.services,
        first: proxies,
    };
    let cpu_before = proc::cpu_seconds(pid)?;
    let started = Instant::now();
    let endpoint = plane.endpoint.clone();
    let churn = tokio::spawn(async move { sim::churn::run(&endpoint, churn_opts).await });

    // The first change once the churn pods have started leaving (or halfway through a short
    // run), then one every `change_every` while the churn lasts.
    let mut at = opts.life.min(opts.duration / 2);
    let mut changes = Vec::new();
    let mut all = Vec::new();
    let mut n = 0;
    while at < opts.duration {
        tokio::time::sleep_until(started + at).await;
        n += 1;
        let (c, acked) = control::change(&plane, &mut fleet, n, CHANGE_TIMEOUT).await?;
        changes.push(c);
        all.extend(acked);
        plane.process.check_running()?;
        at += opts.change_every;
    }
    tokio::time::sleep_until(started + opts.duration).await;
    let cpu = proc::cpu_seconds(pid)? - cpu_before;
    let wall = started.elapsed().as_secs_f64();
    let control_churn_end = proc::memory(pid)?;
    let churn = churn.await??;
    fleet.drain();
    let steady_retries = fleet.retries - joins.retries;
    let steady_retry_errors = fleet.errors[joins.retry_errors.len()..].to_vec();
    plane.process.check_running()?;
    let proxies_at_end = settled_proxies(plane.admin, proxies).await;

    let all_acked: Vec<Duration> = changes
        .iter()
        .filter(|c| c.missing == 0)
        .filter_map(|c| c.max_ms)
        .map(|m| Duration::from_secs_f64(m / 1e3))
        .collect();
    Ok(Run {
        proxies,
        connections: fleet.connections,
        services: base.services,
        endpoints: base.endpoints,
        announce: base.announce,
        churn_rate: opts.rate,
        duration_seconds: opts.duration.as_secs_f64(),
        life_seconds: opts.life.as_secs_f64(),
        change_every_seconds: opts.change_every.as_secs_f64(),
        joins,
        churn,
        steady_retries,
        steady_retry_errors,
        changes_all_acked: all_acked.len(),
        push_all_acked_p50_ms: percentile_ms(&all_acked, 50.0),
        push_all_acked_p99_ms: percentile_ms(&all_acked, 99.0),
        push_all_acked_max_ms: percentile_ms(&all_acked, 100.0),
        push_p50_ms: percentile_ms(&all, 50.0),
        push_p99_ms: percentile_ms(&all, 99.0),
        changes,
        control_idle,
        control_connected,
        control_churn_end,
        control_churn_cpu_seconds: round3(cpu),
        control_churn_wall_seconds: round3(wall),
        control_churn_cpu_cores: round3(cpu / wall.max(1e-9)),
        proxies_at_end,
    })
}

/// The number of proxies the control plane lists once it has seen the churn pods leave: read
/// until it is `expected`, for up to 10 s (the last value otherwise; None if unreadable).
async fn settled_proxies(admin: std::net::SocketAddr, expected: usize) -> Option<usize> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = None;
    loop {
        let body = tokio::task::block_in_place(|| proc::http_get(admin, "/debug/syncz")).ok();
        let count = body
            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|v| v.as_array().map(Vec::len));
        if count.is_some() {
            last = count;
        }
        if last == Some(expected) || Instant::now() >= deadline {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
