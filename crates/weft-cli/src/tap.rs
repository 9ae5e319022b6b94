//! `weft tap TARGET`: the requests and connections a `weft up` mesh's proxies handle, live,
//! from their admin API's `GET /tap` ([`weft_proxy::tap`]); one readable line each, or JSON
//! lines with `-o json`. [`target`] reads the target and finds the proxies, [`stream`] reads
//! their taps, [`show`] prints. `weft top` ([`crate::top`]) builds on the same taps.

pub mod show;
pub mod stream;
pub mod target;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use weft_proxy::tap::{DEFAULT_MAX_RPS, Filter, Query, Status};

use crate::up::Instance;
use stream::Event;

/// One line a request (`table` reads the same), or JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    #[value(alias = "table")]
    Text,
    Json,
}

/// The target and filters `tap` and `top` share.
#[derive(Debug, clap::Args)]
pub struct Select {
    /// What to tap: pod/NAME, workload/NAME (deploy/NAME), svc/NAME (the pods serving it),
    /// gateway/NAME; also `KIND NAME` or KIND/NAMESPACE/NAME; a bare NAME is a pod.
    #[arg(required = true, num_args = 1..=2, value_name = "TARGET")]
    target: Vec<String>,
    /// Namespace of the target (by default, the one namespace that has it).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Only this HTTP method (any case).
    #[arg(long)]
    method: Option<String>,
    /// Only paths starting with this.
    #[arg(long)]
    path: Option<String>,
    /// Only this status: a code (503) or a class (5xx).
    #[arg(long)]
    status: Option<Status>,
    /// Only requests to this Service (`NAME` or `NS/NAME`).
    #[arg(long)]
    to: Option<String>,
    /// At most this many lines a second from each proxy; the rest are counted as dropped.
    #[arg(long, default_value_t = DEFAULT_MAX_RPS)]
    max_rps: u32,
    #[command(flatten)]
    pub instance: Instance,
}

impl Select {
    pub fn query(&self) -> Query {
        Query {
            filter: Filter {
                method: self.method.clone(),
                path: self.path.clone(),
                status: self.status,
                to: self.to.clone(),
            },
            max_rps: self.max_rps,
        }
    }

    /// The running mesh's pod names and the proxies the target leads to.
    pub fn proxies(&self) -> anyhow::Result<(show::Names, Vec<target::Tapped>)> {
        let (dir, plan) = self.instance.running()?;
        let t = target::parse(&self.target, self.namespace.as_deref())?;
        let proxies = target::resolve(&dir, &plan, &t)?;
        Ok((show::Names::of(&plan), proxies))
    }
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  weft tap workload/cart\n  weft tap svc/cart --status 5xx\n  \
weft tap pod/shop/frontend-0 --path /api -o json --duration 10s\n\n\
Times are UTC. A proxy sends at most --max-rps lines a second; it reports what it dropped."
)]
pub struct Args {
    #[command(flatten)]
    select: Select,
    /// Stop after this long (e.g. 10s); by default, on Ctrl-C.
    #[arg(long, value_parser = crate::control::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many lines.
    #[arg(long)]
    count: Option<u64>,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (names, proxies) = args.select.proxies()?;
    let query = args.select.query();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let tapping: Vec<&str> = proxies.iter().map(|p| p.name.as_str()).collect();
        eprintln!("tapping {}", tapping.join(", "));
        let mut taps = proxies.len();
        let mut events = stream::open(proxies, &query);
        let deadline = until(args.duration);
        tokio::pin!(deadline);
        let mut shown = 0;
        let mut out = std::io::stdout().lock();
        while args.count.is_none_or(|c| shown < c) {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = &mut deadline => break,
                _ = tokio::signal::ctrl_c() => break,
            };
            match event {
                None => break,
                Some(Event::Line { proxy, line }) => {
                    shown += 1;
                    let text = match args.output {
                        Output::Text => show::text(&line, &proxy, &names),
                        Output::Json => {
                            serde_json::to_string(&show::Json::new(&line, &proxy, &names))?
                        }
                    };
                    writeln!(out, "{text}")?;
                    out.flush()?;
                }
                Some(Event::Dropped { proxy, count }) => match args.output {
                    Output::Text => {
                        eprintln!("# {proxy}: {count} lines dropped so far (over --max-rps)")
                    }
                    Output::Json => {
                        let line = serde_json::json!({"proxy": proxy, "dropped": count});
                        writeln!(out, "{line}")?;
                        out.flush()?;
                    }
                },
                Some(Event::Failed { proxy, error }) => {
                    eprintln!("weft: tap of {proxy}: {error}");
                    taps -= 1;
                    if taps == 0 {
                        return Ok(ExitCode::from(1));
                    }
                }
            }
        }
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Resolves after `d`, or never.
pub async fn until(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
