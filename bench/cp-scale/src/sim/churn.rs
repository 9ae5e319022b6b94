//! Churn: simulated pods that join at a steady rate, live a short while and leave, as pods of
//! a rolling Deployment or a batch job do. Each opens its own discovery stream like any
//! simulated sidecar and announces its pod address (so its join and its leave are pod
//! registrations the control plane must put in force), counts as *joined* once served,
//! keeps ACKing what it is pushed for its life, then closes the stream: the control plane sees
//! the pod leave. Nothing waits on the control plane here beyond each pod's own answers.

use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::transport::Channel;

use super::{Stream, address, connect, node, subscriptions};
use crate::stats::percentile_ms;

/// How the churn runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pods joining per second (and, once the first ones lived their life, leaving).
    pub rate: f64,
    /// How long a pod stays after it was served.
    pub life: Duration,
    /// How long pods keep joining.
    pub duration: Duration,
    /// A pod not served within this long gives up (and counts as not served).
    pub join_timeout: Duration,
    pub services: usize,
    /// The first address index of churn pods (the steady fleet uses those below).
    pub first: usize,
}

/// What happened to the churn pods.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// HTTP/2 connections the churn pods' streams share.
    pub connections: usize,
    /// Pods started (one per tick of the rate).
    pub attempted: usize,
    /// Pods served within the join timeout.
    pub served: usize,
    /// Served pods whose stream the control plane closed or failed during their life.
    pub failed: usize,
    /// Pods not served within the join timeout (retrying a refused or failed stream as a
    /// sidecar does), or still joining when the run ended.
    pub not_served: usize,
    /// Streams opened again after a failure before the pod was served.
    pub retries: usize,
    /// Served pods that lived their life and closed their stream.
    pub left: usize,
    /// `served` over the churn's duration.
    pub served_per_second: f64,
    /// From opening a pod's stream until it was served.
    pub join_p50_ms: Option<f64>,
    pub join_p99_ms: Option<f64>,
    pub join_max_ms: Option<f64>,
    /// The first few errors, as the pods saw them.
    pub errors: Vec<String>,
}

/// One pod's fate.
#[derive(Debug, Default)]
struct Outcome {
    joined: Option<Duration>,
    /// Streams opened again after a failure before the pod was served.
    retries: u32,
    left: bool,
    error: Option<String>,
}

/// Runs the churn against `endpoint` for `opts.duration`, then lets the last pods live out
/// their life (or give up joining) and reports.
pub async fn run(endpoint: &str, opts: Options) -> anyhow::Result<Report> {
    // About 50 live streams per connection on average, well below the server's 200.
    let live = opts.rate * (opts.life + opts.join_timeout / 4).as_secs_f64();
    let connections = ((live / 50.0).ceil() as usize).clamp(1, 64);
    let channels = connect(endpoint, connections).await?;
    let period = Duration::from_secs_f64(1.0 / opts.rate.max(0.001));
    let mut ticks = tokio::time::interval(period);
    // Late ticks are made up at once, so the attempted rate holds when the simulator lags.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut pods = JoinSet::new();
    let mut attempted = 0;
    loop {
        ticks.tick().await;
        if started.elapsed() >= opts.duration {
            break;
        }
        let k = attempted;
        attempted += 1;
        let ch = channels[k % connections].clone();
        let index = opts.first + k % (65_534 - opts.first.min(60_000));
        let node = node(&format!("churn-{k}"), Some(address(index)));
        let names = subscriptions(index, opts.services);
        pods.spawn(pod(index, ch, node, names, opts.life, opts.join_timeout));
    }
    let mut report = Report {
        connections,
        attempted,
        ..Default::default()
    };
    let mut join_times = Vec::new();
    // Every pod ends by itself within its join timeout plus its life; the margin covers a
    // stalled stream, after which the rest count as not served.
    let deadline = Instant::now() + opts.join_timeout + opts.life + Duration::from_secs(10);
    let mut finished = 0;
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, pods.join_next()).await {
        finished += 1;
        let outcome = done.unwrap_or_else(|e| Outcome {
            error: Some(format!("pod task: {e}")),
            ..Default::default()
        });
        if let Some(t) = outcome.joined {
            report.served += 1;
            join_times.push(t);
        }
        report.left += usize::from(outcome.left);
        report.retries += outcome.retries as usize;
        if outcome.joined.is_none() {
            report.not_served += 1;
        } else if outcome.error.is_some() {
            report.failed += 1;
        }
        if let Some(e) = outcome.error.filter(|_| report.errors.len() < 5) {
            report.errors.push(e);
        }
    }
    pods.abort_all();
    report.not_served += attempted - finished;
    report.served_per_second =
        (report.served as f64 / opts.duration.as_secs_f64().max(1e-9) * 1e3).round() / 1e3;
    report.join_p50_ms = percentile_ms(&join_times, 50.0);
    report.join_p99_ms = percentile_ms(&join_times, 99.0);
    report.join_max_ms = percentile_ms(&join_times, 100.0);
    Ok(report)
}

const NOT_SERVED: &str = "not served within the join timeout";

/// One pod: join, live, leave.
async fn pod(
    index: usize,
    channel: Channel,
    node: weft_proto::discovery::Node,
    names: Vec<String>,
    life: Duration,
    join_timeout: Duration,
) -> Outcome {
    let began = Instant::now();
    let give_up = began + join_timeout;
    let mut retries = 0;
    let mut last_error = None;
    // A stream that fails before the pod is served is opened again, as a sidecar does.
    let mut stream = loop {
        let joining = async {
            let mut stream = Stream::open(channel.clone(), node.clone(), names.clone()).await?;
            while !stream.next().await?.served {}
            anyhow::Ok(stream)
        };
        match tokio::time::timeout_at(give_up, joining).await {
            Ok(Ok(s)) => break s,
            Ok(Err(e)) => last_error = Some(format!("{e:#}")),
            Err(_) => {
                return Outcome {
                    retries,
                    error: Some(last_error.unwrap_or_else(|| NOT_SERVED.into())),
                    ..Default::default()
                };
            }
        }
        if tokio::time::timeout_at(give_up, tokio::time::sleep(super::backoff(index, retries)))
            .await
            .is_err()
        {
            return Outcome {
                retries,
                error: last_error,
                ..Default::default()
            };
        }
        retries += 1;
    };
    let joined = Some(began.elapsed());
    let leave_at = Instant::now() + life;
    loop {
        match tokio::time::timeout_at(leave_at, stream.next()).await {
            Err(_) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Outcome {
                    joined,
                    retries,
                    left: false,
                    error: Some(format!("after joining: {e:#}")),
                };
            }
        }
    }
    drop(stream);
    Outcome {
        joined,
        retries,
        left: true,
        error: None,
    }
}
