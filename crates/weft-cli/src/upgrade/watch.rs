//! Watching one step of an upgrade: every pod with a proxy of its own is scraped at the start
//! of the window and every [`LOOK`] after; the pods on the new revision (the canary) are
//! compared with the others (the baseline) over what happened since the start. A breach ends
//! the window at once (the rollback starts within one look of it); otherwise the verdict at
//! the window's end stands. When no pod is left on the old revision, the baseline is the one
//! the previous step saw.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use weft_local::canary::{self, Figures, Sample, Slo, Verdict};
use weft_local::plan::Plan;
use weft_local::rundir::RunDir;

/// How often a step's figures are looked at.
const LOOK: Duration = Duration::from_secs(2);

/// Which side each scraped pod is on, and where its metrics are.
fn targets(dir: &RunDir, plan: &Plan, to: &str) -> Vec<(String, bool, SocketAddr)> {
    let Some(status) = dir.status() else {
        return vec![];
    };
    (plan.pods.iter().zip(&status.pods))
        .filter(|(_, s)| !s.revision.is_empty() && s.ready())
        .map(|(p, s)| {
            let addr = SocketAddr::from((p.ip, plan.metrics_port));
            (p.id(), s.revision == to, addr)
        })
        .collect()
}

async fn scrape(addr: SocketAddr) -> Option<Sample> {
    let got = weft_local::http::get(addr, "/metrics", Duration::from_secs(2)).await;
    match got {
        Ok((200, body)) => canary::parse(&body).ok(),
        _ => None,
    }
}

/// Watches the step for `observe`; the verdict, printing the figures that decided it.
pub async fn step(
    dir: &RunDir,
    plan: &Plan,
    to: &str,
    slo: &Slo,
    observe: Duration,
    baseline: &mut Option<Figures>,
) -> anyhow::Result<Verdict> {
    let pods = targets(dir, plan, to);
    let mut start: BTreeMap<String, Sample> = BTreeMap::new();
    for (id, _, addr) in &pods {
        if let Some(s) = scrape(*addr).await {
            start.insert(id.clone(), s);
        }
    }
    let deadline = tokio::time::Instant::now() + observe;
    loop {
        let last = tokio::time::Instant::now() + LOOK >= deadline;
        tokio::time::sleep_until(if last { deadline } else { tokio::time::Instant::now() + LOOK })
            .await;
        let (mut new, mut old) = (Vec::new(), Vec::new());
        for (id, canary, addr) in &pods {
            let Some(now) = scrape(*addr).await else { continue };
            let since = match start.get(id) {
                Some(s) => now.delta(s),
                None => now,
            };
            match canary {
                true => new.push(since),
                false => old.push(since),
            }
        }
        let new = canary::sum(&new).figures();
        let old_now = canary::sum(&old).figures();
        let old = match (old_now.requests > 0.0, baseline.as_ref()) {
            (false, Some(b)) => b.clone(),
            _ => old_now.clone(),
        };
        let verdict = canary::judge(&new, &old, slo);
        let breach = matches!(verdict, Verdict::Breach(_));
        if breach || last {
            println!("  new revision {to}: {}", canary::describe(&new));
            println!("  old revision:    {}", canary::describe(&old));
            if old_now.requests > 0.0 {
                *baseline = Some(old_now);
            }
            return Ok(verdict);
        }
    }
}
