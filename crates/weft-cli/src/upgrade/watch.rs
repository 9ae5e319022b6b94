//! Watching an upgrade: every pod with a proxy of its own is scraped at the start of a window
//! and every [`LOOK`] after. Each workload with pods on the new revision (the canary) is judged
//! against the same workload on the old one — its replicas still there in the same window, or,
//! when none is left, what the workload did on the old revision in an earlier window (the first
//! window, before anything moves, records that for every workload). Comparing a workload with
//! itself keeps a slow workload's latency from being blamed on the revision. A breach ends the
//! window at once, so the rollback starts within one look of it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use weft_local::canary::{self, Figures, Sample, Slo, Verdict};
use weft_local::plan::Plan;
use weft_local::rundir::RunDir;

/// How often a window's figures are looked at.
const LOOK: Duration = Duration::from_secs(2);

/// Each workload's figures on the old revision, from the last window that had them.
pub type Baselines = BTreeMap<String, Figures>;

struct Target {
    pod: String,
    workload: String,
    canary: bool,
    metrics: SocketAddr,
}

fn targets(dir: &RunDir, plan: &Plan, to: &str) -> Vec<Target> {
    let Some(status) = dir.status() else {
        return vec![];
    };
    (plan.pods.iter().zip(&status.pods))
        .filter(|(_, s)| !s.revision.is_empty() && s.ready())
        .map(|(p, s)| Target {
            pod: p.id(),
            workload: format!("{}/{}", p.namespace, p.workload),
            canary: s.revision == to,
            metrics: SocketAddr::from((p.ip, plan.metrics_port)),
        })
        .collect()
}

async fn scrape(addr: SocketAddr) -> Option<Sample> {
    match weft_local::http::get(addr, "/metrics", Duration::from_secs(2)).await {
        Ok((200, body)) => canary::parse(&body).ok(),
        _ => None,
    }
}

/// Per workload: (canary, old) samples since the window's start.
type Sides = BTreeMap<String, (Vec<Sample>, Vec<Sample>)>;

async fn since(targets: &[Target], start: &BTreeMap<String, Sample>) -> Sides {
    let mut sides = Sides::new();
    for t in targets {
        let Some(now) = scrape(t.metrics).await else {
            continue;
        };
        let d = match start.get(&t.pod) {
            Some(s) => now.delta(s),
            None => now,
        };
        let side = sides.entry(t.workload.clone()).or_default();
        match t.canary {
            true => side.0.push(d),
            false => side.1.push(d),
        }
    }
    sides
}

/// Judges every workload with canary pods; the verdict and one line per workload.
fn verdict(sides: &Sides, baselines: &Baselines, slo: &Slo) -> (Verdict, Vec<String>) {
    let (mut breaches, mut thin, mut lines, mut judged) = (vec![], vec![], vec![], 0);
    for (w, (new, old)) in sides {
        if new.is_empty() {
            continue;
        }
        let new = canary::sum(new).figures();
        let old_now = canary::sum(old).figures();
        let (old, when) = match (old_now.requests > 0.0, baselines.get(w)) {
            (false, Some(b)) => (*b, "before it moved"),
            _ => (old_now, "now"),
        };
        lines.push(format!(
            "  {w}: new {} | old ({when}) {}",
            canary::describe(&new),
            canary::describe(&old)
        ));
        match canary::judge(&new, &old, slo) {
            Verdict::Breach(why) => breaches.push(format!("{w}: {why}")),
            Verdict::NotEnoughTraffic(why) => thin.push(format!("{w}: {why}")),
            Verdict::Pass => judged += 1,
        }
    }
    let v = match (breaches.is_empty(), judged) {
        (false, _) => Verdict::Breach(breaches.join("; ")),
        (true, 0) if !thin.is_empty() => Verdict::NotEnoughTraffic(thin.join("; ")),
        (true, 0) => Verdict::NotEnoughTraffic("no pod on the new revision served requests".into()),
        _ => Verdict::Pass,
    };
    (v, lines)
}

/// Records each workload's old-revision figures of this window.
fn remember(sides: &Sides, baselines: &mut Baselines) {
    for (w, (_, old)) in sides {
        let f = canary::sum(old).figures();
        if f.requests > 0.0 {
            baselines.insert(w.clone(), f);
        }
    }
}

/// Watches one window of `observe`; the verdict (a breach ends it early), printing the figures.
pub async fn window(
    dir: &RunDir,
    plan: &Plan,
    to: &str,
    slo: &Slo,
    observe: Duration,
    baselines: &mut Baselines,
) -> Verdict {
    let targets = targets(dir, plan, to);
    let mut start = BTreeMap::new();
    for t in &targets {
        if let Some(s) = scrape(t.metrics).await {
            start.insert(t.pod.clone(), s);
        }
    }
    let deadline = tokio::time::Instant::now() + observe;
    loop {
        let last = tokio::time::Instant::now() + LOOK >= deadline;
        let next = if last {
            deadline
        } else {
            tokio::time::Instant::now() + LOOK
        };
        tokio::time::sleep_until(next).await;
        let sides = since(&targets, &start).await;
        let (v, lines) = verdict(&sides, baselines, slo);
        if matches!(v, Verdict::Breach(_)) || last {
            for l in lines {
                println!("{l}");
            }
            remember(&sides, baselines);
            return v;
        }
    }
}
