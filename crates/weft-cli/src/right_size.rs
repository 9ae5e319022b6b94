//! `weft right-size [WORKLOAD...]`: proxy requests and limits per workload from what its
//! proxies were measured using (the samples `weft up` takes every 2 s), with the reasoning,
//! and what they save against the current settings and Istio's defaults. The numbers come
//! from `weft_core::sizing`, which the analyzer's floors come from too; `--apply` writes
//! them as `weft.dev/` annotations into the config files ([`apply`]).

mod apply;
mod diff;
mod edit;
mod report;

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use weft_core::Resource;
use weft_core::analyze::Index;
use weft_core::annotations::ProxySettings;
use weft_core::meta::ObjectMeta;
use weft_core::resources::mesh::{ProxyResources, ResourceAmounts};
use weft_core::sizing::{self, Point, Price};
use weft_local::usage;

use crate::output::Format;
use crate::up::Instance;

pub use report::Sized;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  weft right-size                        every workload with samples, the last hour
  weft right-size shop/cart --since 30m
  weft right-size --price 0.031,0.0042 -o json
  weft right-size --apply                the diff of the config files; --yes writes it

Requests = p90 + 25 % headroom; CPU limit = max(p99 x 2, peak); memory limit = peak x 1.5;
each at least the floor the analyzer checks (docs/right-size.md).
Exit status: 0 done; 1 when --apply left a Workload to edit by hand; 2 on errors (no mesh, an
unknown workload, no samples yet).")]
pub struct Args {
    /// Workloads to size, as NAME or NAMESPACE/NAME. Default: every workload whose proxies
    /// were sampled.
    #[arg(value_name = "WORKLOAD")]
    workloads: Vec<String>,
    #[command(flatten)]
    instance: Instance,
    /// How far back to read samples (`30m`, `1h`, `6h`; the usage file keeps its last 32 to
    /// 64 MiB: hours of a small mesh).
    #[arg(long, default_value = "1h")]
    since: weft_core::duration::Duration,
    /// Dollars per core-hour and per GiB-hour of requests, `CORE_HOUR,GIB_HOUR`, for the
    /// money saved (a month is 730 h). The default: round figures near on-demand cloud prices
    /// for a general-purpose vCPU and GiB.
    #[arg(long, value_name = "CORE_HOUR,GIB_HOUR", default_value_t = Price::DEFAULT)]
    price: Price,
    /// Write the recommendations as `weft.dev/proxy-{cpu,memory}-{request,limit}` annotations
    /// into the Workloads' config files: shows the diff, writes with --yes.
    #[arg(long)]
    apply: bool,
    /// With --apply: write the files (then check them with the analyzer, and restore them if
    /// it finds an error).
    #[arg(long, requires = "apply")]
    yes: bool,
    /// Output format: a table with the reasoning, or the data with the samples' percentiles
    /// and the formula's constants.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let outcome = weft_core::load::load_paths(&[&plan.config_dir]);
    if !outcome.is_ok() {
        eprintln!(
            "warning: {} does not load ({} errors; `weft analyze {}`): current settings are \
read from what does",
            plan.config_dir.display(),
            outcome.errors.len(),
            plan.config_dir.display()
        );
    }
    let since = args.since;
    let since_ms = weft_local::status::now_ms().saturating_sub(since.as_std().as_millis() as u64);
    let samples = usage::read(&dir, since_ms)
        .with_context(|| format!("reading {}", usage::file(&dir).display()))?;
    let mut points: BTreeMap<(String, String), Vec<Point>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.container == "proxy") {
        (points
            .entry((s.namespace.clone(), s.workload.clone()))
            .or_default())
        .push(Point {
            t_ms: s.t,
            cpu_m: u64::from(s.cpu_m),
            memory: s.memory,
            throttled: s.throttled,
        });
    }
    let targets = targets(&outcome.config);
    let ids: Vec<(&str, &str)> = (targets.iter())
        .map(|t| (t.namespace.as_str(), t.name.as_str()))
        .collect();
    let chosen: Vec<usize> = if args.workloads.is_empty() {
        (0..ids.len())
            .filter(|i| points.contains_key(&owned(ids[*i])))
            .collect()
    } else {
        (args.workloads.iter())
            .map(|w| crate::names::pick_kind(&ids, w, "workload").map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?
    };
    if chosen.iter().all(|i| !points.contains_key(&owned(ids[*i]))) {
        let which = match &args.workloads[..] {
            [] => "any workload".to_string(),
            names => names.join(", "),
        };
        anyhow::bail!(
            "no proxy samples of {which} in the last {since} ({}): the mesh has to run under \
representative load for a while first (`weft up` samples every proxy every {}s); then run \
`weft right-size` again",
            usage::file(&dir).display(),
            usage::INTERVAL.as_secs()
        );
    }
    let sized: Vec<Sized> = (chosen.iter())
        .map(|i| {
            let mut t = targets[*i].clone();
            let pts = points.get(&owned(ids[*i])).map_or(&[][..], Vec::as_slice);
            t.recommendation = sizing::recommend(pts, &t.current);
            t
        })
        .collect();
    let not_sized: Vec<String> = (points.keys())
        .filter(|k| !ids.iter().any(|id| owned(*id) == **k))
        .map(|(ns, w)| format!("{ns}/{w}"))
        .collect();
    let report = report::Report {
        instance: &plan.name,
        since,
        price: args.price,
        workloads: &sized,
        not_sized: &not_sized,
    };
    crate::output::print(args.output, &report.json(), || report.table())?;
    if !args.apply {
        return Ok(ExitCode::SUCCESS);
    }
    if !outcome.is_ok() {
        anyhow::bail!(
            "not applying: the configuration in {} does not load; fix it first (`weft analyze {}`)",
            plan.config_dir.display(),
            plan.config_dir.display()
        );
    }
    // The diff goes where the report went when that is a table; after JSON or YAML it goes
    // to stderr so stdout stays one document.
    let to_stdout = args.output == Format::Table;
    apply::run(&plan.config_dir, &sized, args.yes, to_stdout)
}

/// What can be sized in `config`, not yet sized: each Workload with its proxy settings (the
/// Mesh's, its Namespace's and its own annotations), then each waypoint with its Gateway's
/// (as `weft up` runs it).
fn targets(config: &weft_core::Config) -> Vec<Sized> {
    let ix = Index::new(config);
    let resources = |s: ProxySettings| ProxyResources {
        requests: ResourceAmounts {
            cpu: s.cpu_request,
            memory: s.memory_request,
        },
        limits: ResourceAmounts {
            cpu: s.cpu_limit,
            memory: s.memory_limit,
        },
    };
    let target = |kind, l: &weft_core::Loaded, m: &ObjectMeta, replicas, current| Sized {
        kind,
        namespace: m.namespace().to_string(),
        name: m.name.clone(),
        file: l.origin.file.clone(),
        replicas,
        current,
        recommendation: None,
    };
    let mut out: Vec<Sized> = (ix.workloads())
        .map(|(l, w)| {
            let current = resources(ix.settings(w));
            target("Workload", l, &w.metadata, w.spec.replicas, current)
        })
        .collect();
    for l in &config.resources {
        if let Resource::Gateway(g) = &l.resource
            && g.is_waypoint()
        {
            let s = ProxySettings::resolve(&ix.mesh, &[&g.metadata.annotations], &[]);
            out.push(target("Gateway", l, &g.metadata, 1, resources(s)));
        }
    }
    out
}

fn owned((ns, name): (&str, &str)) -> (String, String) {
    (ns.to_string(), name.to_string())
}
