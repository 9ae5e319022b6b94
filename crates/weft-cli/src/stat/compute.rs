//! Two scrapes of every proxy → one row per workload, Service or pod: what its servers did
//! between the scrapes. Pure: the scraping is [`super`]'s.

use std::collections::BTreeMap;

use serde::Serialize;
use weft_local::canary::Sample;

use super::parse::{Page, Who};

/// What the rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    #[value(
        alias = "workload",
        alias = "deploy",
        alias = "deployment",
        alias = "deployments"
    )]
    Workloads,
    #[value(alias = "service", alias = "svc")]
    Services,
    #[value(alias = "pod", alias = "po")]
    Pods,
}

/// A pod of the mesh, as the rows count it.
#[derive(Debug, Clone)]
pub struct Pod {
    /// `ns/name`.
    pub id: String,
    /// `ns/name` of its workload.
    pub workload: String,
    /// `ns/name` of each Service it serves.
    pub services: Vec<String>,
    /// Its proxy answered the scrape.
    pub meshed: bool,
}

/// One proxy's two scrapes.
#[derive(Debug, Clone, Default)]
pub struct Proxy {
    /// The pod a sidecar serves (`ns/name`, workload `ns/name`): series that name no
    /// workload are its.
    pub pod: Option<(String, String)>,
    /// The one Service that pod serves, if one: series that name no Service are its.
    pub service: Option<String>,
    pub first: Page,
    pub second: Page,
}

/// One row of `weft stat`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub namespace: String,
    pub name: String,
    pub meshed: usize,
    pub pods: usize,
    /// Share of requests answered without a 5xx; None without requests.
    pub success: Option<f64>,
    pub rps: f64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Open TCP connections; None when the proxies do not count them.
    pub tcp_conn: Option<f64>,
}

/// The row key a series counts for, if any. A sidecar serves its own pod only, so its
/// server-side series are its workload's whatever the labels say; a name without a namespace
/// is in the pod's.
fn key(kind: Kind, who: &Who, proxy: &Proxy) -> Option<String> {
    let qualify = |name: &String| match (&proxy.pod, name.contains('/')) {
        (Some((pod, _)), false) => {
            let ns = pod.split_once('/').map_or("", |(ns, _)| ns);
            format!("{ns}/{name}")
        }
        _ => name.clone(),
    };
    match kind {
        Kind::Workloads => (proxy.pod.as_ref().map(|(_, w)| w.clone()))
            .or_else(|| who.workload.as_ref().map(qualify)),
        Kind::Services => (who.service.as_ref().map(qualify)).or_else(|| proxy.service.clone()),
        Kind::Pods => proxy.pod.as_ref().map(|(id, _)| id.clone()),
    }
}

/// Per row: requests, failed, buckets (le → cumulative), opened − closed.
#[derive(Debug, Default, Clone)]
struct Totals {
    requests: f64,
    failed: f64,
    buckets: BTreeMap<u64, (f64, f64)>,
    open: f64,
}

fn totals(kind: Kind, page: &Page, proxy: &Proxy) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    for (who, failed, n) in &page.requests {
        if let Some(k) = key(kind, who, proxy) {
            let t = out.entry(k).or_default();
            t.requests += n;
            if *failed {
                t.failed += n;
            }
        }
    }
    for (who, _, le, n) in &page.buckets {
        if let Some(k) = key(kind, who, proxy) {
            let b = out.entry(k).or_default().buckets.entry(le.to_bits());
            b.or_insert((*le, 0.0)).1 += n;
        }
    }
    for (who, opened, closed) in &page.tcp {
        if let Some(k) = key(kind, who, proxy) {
            out.entry(k).or_default().open += opened - closed;
        }
    }
    out
}

/// What happened between `a` and `b`: `b` alone when a counter went down (a restart).
fn delta(a: &Totals, b: &Totals) -> Totals {
    let restarted = b.requests < a.requests
        || b.failed < a.failed
        || (b.buckets.iter()).any(|(k, (_, n))| a.buckets.get(k).is_some_and(|(_, m)| n < m));
    if restarted {
        return b.clone();
    }
    let buckets = (b.buckets.iter())
        .map(|(k, (le, n))| (*k, (*le, n - a.buckets.get(k).map_or(0.0, |x| x.1))))
        .collect();
    Totals {
        requests: b.requests - a.requests,
        failed: b.failed - a.failed,
        buckets,
        open: b.open,
    }
}

/// The rows of `kind` over a window of `seconds`: every row the pods make, in name order.
pub fn rows(kind: Kind, pods: &[Pod], proxies: &[Proxy], seconds: f64) -> Vec<Row> {
    let mut members: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in pods {
        let keys = match kind {
            Kind::Workloads => vec![p.workload.clone()],
            Kind::Services => p.services.clone(),
            Kind::Pods => vec![p.id.clone()],
        };
        for k in keys {
            members.entry(k).or_default().push(p);
        }
    }
    let mut sums: BTreeMap<String, Totals> = BTreeMap::new();
    for proxy in proxies {
        let before = totals(kind, &proxy.first, proxy);
        for (k, after) in totals(kind, &proxy.second, proxy) {
            let d = delta(before.get(&k).unwrap_or(&Totals::default()), &after);
            let s = sums.entry(k).or_default();
            s.requests += d.requests;
            s.failed += d.failed;
            s.open += d.open;
            for (bits, (le, n)) in d.buckets {
                s.buckets.entry(bits).or_insert((le, 0.0)).1 += n;
            }
        }
    }
    let counted = proxies.iter().any(|p| p.second.counts_connections);
    (members.into_iter())
        .map(|(k, pods)| {
            let t = sums.remove(&k).unwrap_or_default();
            let sample = Sample {
                requests: t.requests,
                errors: t.failed,
                buckets: t.buckets.values().copied().collect(),
            };
            let ms = |q| sample.quantile(q).map(|s| round(s * 1000.0));
            let (namespace, name) = k.split_once('/').unwrap_or(("", &k));
            Row {
                namespace: namespace.to_string(),
                name: name.to_string(),
                meshed: pods.iter().filter(|p| p.meshed).count(),
                pods: pods.len(),
                success: (t.requests > 0.0).then(|| 1.0 - t.failed / t.requests),
                rps: round(t.requests / seconds.max(f64::EPSILON)),
                latency_p50_ms: ms(0.5),
                latency_p95_ms: ms(0.95),
                latency_p99_ms: ms(0.99),
                tcp_conn: counted.then_some(t.open.max(0.0)),
            }
        })
        .collect()
}

/// To three decimals.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The table of `rows`.
pub fn table(kind: Kind, rows: &[Row]) -> String {
    let first = match kind {
        Kind::Workloads => "WORKLOAD",
        Kind::Services => "SERVICE",
        Kind::Pods => "POD",
    };
    let head = [
        "NAMESPACE",
        first,
        "MESHED",
        "SUCCESS",
        "RPS",
        "LATENCY_P50",
        "LATENCY_P95",
        "LATENCY_P99",
        "TCP_CONN",
    ];
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
    let ms = |v| opt(v, &crate::tap::show::latency);
    let cells: Vec<[String; 9]> = (rows.iter())
        .map(|r| {
            [
                r.namespace.clone(),
                r.name.clone(),
                format!("{}/{}", r.meshed, r.pods),
                opt(r.success, &|s| format!("{:.2}%", s * 100.0)),
                format!("{:.1}rps", r.rps),
                ms(r.latency_p50_ms),
                ms(r.latency_p95_ms),
                ms(r.latency_p99_ms),
                opt(r.tcp_conn, &|c| format!("{c}")),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let head = head.map(str::to_string);
    for row in std::iter::once(&head).chain(&cells) {
        let line: Vec<String> = (row.iter().enumerate())
            .map(|(i, c)| format!("{c:<w$}", w = width[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
