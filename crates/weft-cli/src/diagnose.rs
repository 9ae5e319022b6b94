//! `weft diagnose SRC DST[:PORT][/PATH]`: one request explained end to end. The checks work
//! out, with the model the control plane serves and the matcher the proxies run, where the
//! request would go and what would stop it (source proxy, name, route, endpoints, mTLS,
//! policy); then a real request from SRC is watched at every proxy it passes. It ends with one
//! verdict line and, when something is wrong, the fix.

mod checks;
pub mod facts;
mod policy;
pub mod probe;

use std::process::ExitCode;

use serde::Serialize;

use crate::up::Instance;
use facts::{Destination, Facts};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  weft diagnose frontend pricing:8080/price/loom\n  \
weft diagnose shop/frontend-0 catalog/items --method POST -H 'x-canary: yes'\n\n\
SRC is a pod (`ns/name` or `name`) or a workload (its first ready pod). DST is a Service \
(`name`, `name.ns`, its FQDN or address) with an optional port and path."
)]
pub struct Args {
    /// The pod or workload the request starts from.
    source: String,
    /// Where it goes: SERVICE[:PORT][/PATH].
    destination: String,
    /// HTTP method of the request.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// A request header, `NAME: VALUE` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Only the checks: send no request.
    #[arg(long)]
    no_probe: bool,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(flatten)]
    instance: Instance,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    Info,
    Ok,
    Warn,
    Fail,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Mark::Info => "·",
            Mark::Ok => "ok",
            Mark::Warn => "WARN",
            Mark::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub title: String,
    pub mark: Mark,
    pub lines: Vec<String>,
}

/// Something that stops the request, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub cause: String,
    pub fix: String,
}

impl Problem {
    pub fn new(cause: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem {
            cause: cause.into(),
            fix: fix.into(),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub steps: Vec<Step>,
    pub problems: Vec<Problem>,
    pub verdict: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Report {
    pub fn step(&mut self, title: &str, mark: Mark, lines: Vec<String>) {
        self.steps.push(Step {
            title: title.into(),
            mark,
            lines,
        });
    }

    pub fn problem(&mut self, p: Problem) {
        self.problems.push(p);
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let facts = Facts::load(dir, plan)?;
    let headers = args
        .headers
        .iter()
        .map(|h| match h.split_once(':') {
            Some((k, v)) => Ok((k.trim().to_ascii_lowercase(), v.trim().to_string())),
            None => anyhow::bail!("header {h:?} is not `NAME: VALUE`"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dst = Destination::parse(&args.destination)?;
    let method = args.method.to_ascii_uppercase();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(diagnose(&facts, &args, &dst, &method, &headers))?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => print!("{}", render(&report)),
    }
    Ok(match report.problems.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

async fn diagnose(
    facts: &Facts,
    args: &Args,
    dst: &Destination,
    method: &str,
    headers: &[(String, String)],
) -> anyhow::Result<Report> {
    let mut r = Report::default();
    if let Some(why) = &facts.unloaded {
        let lines = vec![
            why.clone(),
            "the control plane keeps its last good config; what follows reads the documents \
             that load, which may differ from what the mesh runs"
                .into(),
        ];
        r.step("Config", Mark::Fail, lines);
        r.problem(Problem::new(
            why.clone(),
            format!(
                "fix what `weft analyze {}` reports; the mesh applies the directory once it loads",
                facts.plan.config_dir.display()
            ),
        ));
    }
    let (src, src_status) = facts.source(&args.source)?;
    let ask = checks::Request { method, headers };
    let Some((svc, port)) = checks::name(facts, src, dst, &mut r) else {
        return Ok(finish(
            source_first(facts, src, src_status, None, r).await,
            None,
        ));
    };
    let key = svc.key();
    let route = checks::route(facts, &svc, port, dst, &ask, &mut r);
    if let Some(route) = &route
        && checks::endpoints(facts, route, &mut r)
    {
        policy::policy(facts, src, src_status, route, dst, &ask, &mut r);
    }
    if args.no_probe {
        return Ok(finish(
            source_first(facts, src, src_status, Some(&key), r).await,
            None,
        ));
    }
    let through = route
        .as_ref()
        .map(|rt| {
            (rt.endpoints.iter())
                .filter_map(|e| facts.model_pod(e.address))
                .map(|p| (p.namespace.clone(), p.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let probe = probe::Probe {
        facts,
        instance: &args.instance.name,
        source: (src.namespace.clone(), src.name.clone()),
        source_ip: src.ip.into(),
        url: format!("http://{}:{port}{}", dst.host, dst.path),
        method,
        headers,
        path: dst.path.clone(),
        through,
    };
    let outcome = probe.run().await?;
    let timeout = route.as_ref().and_then(|rt| rt.rule.as_ref()?.timeout);
    verdicts::probe_step(facts, &outcome, timeout, &mut r);
    Ok(finish(
        source_first(facts, src, src_status, Some(&key), r).await,
        Some(&outcome),
    ))
}

/// The source's step, first: read last, as the probe may have made its proxy fetch (and
/// reject) the destination's config. A proxy that rejected its config is the first cause.
async fn source_first(
    facts: &Facts,
    src: &weft_local::plan::PodPlan,
    st: &weft_local::status::PodStatus,
    dst: Option<&str>,
    rest: Report,
) -> Report {
    let sync = crate::status::fetch(&facts.plan.admin.to_string(), "/debug/syncz")
        .await
        .ok();
    let mut r = Report::default();
    checks::source(facts, src, st, sync.as_ref(), dst, &mut r);
    r.steps.extend(rest.steps);
    r.problems.extend(rest.problems);
    r
}

mod verdicts;

/// The verdict: the first problem found, else what the probe saw.
fn finish(mut r: Report, outcome: Option<&probe::Outcome>) -> Report {
    match (r.problems.first(), outcome) {
        (Some(p), _) => {
            r.verdict = p.cause.clone();
            r.fix = Some(p.fix.clone());
        }
        (None, Some(o)) => {
            r.verdict = format!(
                "OK: the request was answered {} in {:.0} ms through {} proxies",
                o.status,
                o.seconds * 1000.0,
                o.hops.len()
            );
        }
        (None, None) => {
            r.verdict = "OK: nothing in the config stops this request (not sent: --no-probe)".into()
        }
    }
    r
}

fn render(r: &Report) -> String {
    let mut out = String::new();
    for s in &r.steps {
        let mut lines = s.lines.iter();
        let first = lines.next().map_or("", String::as_str);
        out += &format!("{:<4} {:<10} {first}\n", s.mark.symbol(), s.title);
        for l in lines {
            out += &format!("{:<4} {:<10} {l}\n", "", "");
        }
    }
    let verdict = if r.problems.is_empty() {
        "verdict"
    } else {
        "VERDICT"
    };
    out += &format!("\n{verdict}: {}\n", r.verdict);
    if let Some(fix) = &r.fix {
        out += &format!("fix: {fix}\n");
    }
    out
}
