//! `weft stat [workloads|services|pods]`: per row, how many pods have a proxy, and what their
//! servers did over `--window`: success rate, requests a second, latency percentiles, open
//! TCP connections. Read from two scrapes of every proxy's metrics page (a sidecar's at
//! POD_IP:METRICS_PORT, a node proxy's at the address it reported), the server-side
//! (`reporter="destination"`) series only, as Istio and Linkerd count them ([`parse`]);
//! [`compute`] makes the rows. No Prometheus needed.

mod compute;
mod parse;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use weft_local::addresses::ProxyAddresses;
use weft_local::plan::Plan;
use weft_local::rundir::RunDir;

use crate::output::{self, Format};
use crate::up::Instance;
use compute::{Kind, Pod, Proxy};
use parse::Page;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  weft stat\n  weft stat services --window 10s -o json\n\n\
MESHED: pods whose proxy answered / pods. SUCCESS: requests answered without a 5xx. \
RPS and latency: what the servers saw between two scrapes --window apart."
)]
pub struct Args {
    /// What the rows are.
    #[arg(value_enum, default_value_t = Kind::Workloads)]
    kind: Kind,
    /// Only this namespace.
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Time between the two scrapes.
    #[arg(long, default_value = "5s", value_parser = crate::control::parse_duration)]
    window: Duration,
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(flatten)]
    instance: Instance,
}

/// Where one proxy's metrics are, and the pod it alone serves (a sidecar's).
#[derive(Debug, Clone)]
struct Source {
    addr: SocketAddr,
    pod: Option<(String, String)>,
    /// The ambient pods it serves (a node proxy's).
    serves: Vec<String>,
}

fn sources(dir: &RunDir, plan: &Plan) -> Vec<Source> {
    let mut out: Vec<Source> = (plan.pods.iter())
        .filter(|p| p.sidecar() || p.waypoint)
        .map(|p| Source {
            addr: SocketAddr::from((p.ip, plan.metrics_port)),
            pod: Some((p.id(), format!("{}/{}", p.namespace, p.workload))),
            serves: vec![p.id()],
        })
        .collect();
    for node in &plan.nodes {
        let path = dir.addresses(&format!("node-{node}"));
        if let Ok(bound) = weft_local::addresses::read::<ProxyAddresses>(&path) {
            let serves = (plan.pods.iter())
                .filter(|p| p.ambient() && &p.node == node)
                .map(|p| p.id())
                .collect();
            out.push(Source {
                addr: bound.metrics,
                pod: None,
                serves,
            });
        }
    }
    out
}

/// Every source's page; None where the proxy did not answer (a 404 answer — metrics off —
/// is an empty page: the proxy is there).
async fn scrape(sources: &[Source]) -> Vec<Option<Page>> {
    let tasks: Vec<_> = (sources.iter())
        .map(|s| tokio::spawn(page_of(s.addr)))
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.ok().flatten());
    }
    out
}

async fn page_of(addr: SocketAddr) -> Option<Page> {
    match weft_local::http::get(addr, "/metrics", Duration::from_secs(3)).await {
        Ok((200, body)) => Some(parse::page(&body)),
        Ok(_) => Some(Page::default()),
        Err(_) => None,
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let sources = sources(&dir, &plan);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (first, second) = rt.block_on(async {
        let first = scrape(&sources).await;
        tokio::time::sleep(args.window).await;
        (first, scrape(&sources).await)
    });
    let answered: Vec<&String> = (sources.iter().zip(&second))
        .filter(|(_, page)| page.is_some())
        .flat_map(|(s, _)| &s.serves)
        .collect();
    let pods: Vec<Pod> = (plan.pods.iter())
        .filter(|p| !p.waypoint)
        .filter(|p| args.namespace.as_deref().is_none_or(|n| n == p.namespace))
        .map(|p| Pod {
            id: p.id(),
            workload: format!("{}/{}", p.namespace, p.workload),
            services: services_of(&plan, p),
            meshed: answered.contains(&&p.id()),
        })
        .collect();
    let proxies: Vec<Proxy> = (sources.into_iter().zip(first.into_iter().zip(second)))
        .map(|(s, (a, b))| Proxy {
            service: (s.pod.as_ref())
                .and_then(|(id, _)| plan.pods.iter().find(|p| &p.id() == id))
                .map(|p| services_of(&plan, p))
                .filter(|s| s.len() == 1)
                .and_then(|mut s| s.pop()),
            pod: s.pod,
            first: a.unwrap_or_default(),
            second: b.unwrap_or_default(),
        })
        .collect();
    let rows = compute::rows(args.kind, &pods, &proxies, args.window.as_secs_f64());
    let value = serde_json::to_value(&rows)?;
    output::print(args.output, &value, || compute::table(args.kind, &rows))?;
    Ok(ExitCode::SUCCESS)
}

/// `ns/name` of every Service `pod` serves.
fn services_of(plan: &Plan, pod: &weft_local::plan::PodPlan) -> Vec<String> {
    let index = plan.pods.iter().position(|p| p.id() == pod.id());
    (plan.services.iter())
        .filter(|s| {
            (s.ports.iter()).any(|port| port.backends.iter().any(|(i, _)| Some(*i) == index))
        })
        .map(|s| format!("{}/{}", s.namespace, s.name))
        .collect()
}
