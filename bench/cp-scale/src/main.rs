//! `weft-bench-cp`: the control-plane half of weft's benchmark harness (`bench/run` calls it).
//!
//! - `control`: a real `weft control` with a generated mesh and N simulated proxies; its
//!   memory, how fast they join (and the control plane's CPU per join), and the push latency
//!   of a config change, for each N given.
//! - `churn`: the same with N steady proxies, then pods joining and leaving at a steady rate
//!   while config changes are pushed: push latency under churn, joins served, CPU and memory.
//! - `proxy-memory`: a real `weft proxy` (explicit mode) in meshes of different sizes, calling
//!   three Services; its memory.
//!
//! Both print one JSON document on stdout. Nothing here asserts a timing.

mod churn;
mod control;
mod mesh;
mod proc;
mod proxy_mem;
mod sim;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "Control-plane scale and proxy-memory benchmarks for weft")]
struct Cli {
    /// The `weft` binary to run.
    #[arg(long, default_value = "weft")]
    weft: PathBuf,
    /// Scratch directory for generated configs and logs.
    #[arg(long, default_value = "/tmp/weft-bench-cp")]
    work: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N simulated proxies against a real control plane: memory and push latency.
    Control {
        /// Numbers of simulated proxies, one run each.
        #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
        proxies: Vec<usize>,
        #[arg(long, default_value_t = 1000)]
        services: usize,
        #[arg(long, default_value_t = 10_000)]
        endpoints: usize,
        /// Config changes measured per run.
        #[arg(long, default_value_t = 3)]
        changes: u64,
        /// Simulated proxies announce a pod address, as sidecars do (each join then rebuilds
        /// the control plane's snapshot).
        #[arg(long)]
        announce: bool,
    },
    /// N steady proxies, then pods joining and leaving at `--churn-rate` per second while a
    /// config change is pushed every `--change-every` seconds.
    Churn {
        /// Numbers of steady proxies, one run each.
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        proxies: Vec<usize>,
        #[arg(long, default_value_t = 1000)]
        services: usize,
        #[arg(long, default_value_t = 10_000)]
        endpoints: usize,
        /// Pods joining per second (each leaves after `--life`).
        #[arg(long, default_value_t = 100.0)]
        churn_rate: f64,
        /// Seconds of churn.
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
        /// Seconds a churn pod stays once served.
        #[arg(long, default_value_t = 3.0)]
        life: f64,
        /// Seconds between config changes.
        #[arg(long, default_value_t = 3.0)]
        change_every: f64,
        /// The steady proxies announce a pod address, as sidecars do (churn pods always do:
        /// their joins and leaves are pod registrations).
        #[arg(long)]
        announce: bool,
    },
    /// A real proxy in meshes of these sizes, calling three Services: its memory.
    ProxyMemory {
        #[arg(long, value_delimiter = ',', default_value = "10,10000")]
        services: Vec<usize>,
        /// Requests per called Service.
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One worker: the control plane under test gets the other core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    std::fs::create_dir_all(&cli.work)?;
    let out = rt.block_on(async {
        match cli.command {
            Command::Control {
                proxies,
                services,
                endpoints,
                changes,
                announce,
            } => {
                let opts = control::Options {
                    weft: cli.weft.clone(),
                    work: cli.work.clone(),
                    services,
                    endpoints,
                    changes,
                    announce,
                };
                control::clean(&opts.work);
                let mut runs = Vec::new();
                for n in proxies {
                    eprintln!("weft-bench-cp: control plane with {n} simulated proxies");
                    runs.push(control::run(&opts, n).await?);
                }
                control::clean(&opts.work);
                anyhow::Ok(serde_json::json!({ "controlPlane": runs }))
            }
            Command::Churn {
                proxies,
                services,
                endpoints,
                churn_rate,
                duration,
                life,
                change_every,
                announce,
            } => {
                let secs = |name: &str, s: f64| {
                    anyhow::ensure!(s.is_finite() && s > 0.0, "--{name} must be > 0");
                    Ok(Duration::from_secs_f64(s))
                };
                let opts = churn::Options {
                    base: control::Options {
                        weft: cli.weft.clone(),
                        work: cli.work.clone(),
                        services,
                        endpoints,
                        changes: 0,
                        announce,
                    },
                    rate: churn_rate,
                    duration: secs("duration", duration)?,
                    life: secs("life", life)?,
                    change_every: secs("change-every", change_every)?,
                };
                secs("churn-rate", churn_rate)?;
                control::clean(&opts.base.work);
                let mut runs = Vec::new();
                for n in proxies {
                    eprintln!(
                        "weft-bench-cp: churn at {churn_rate} pods/s for {duration} s beside {n} proxies"
                    );
                    runs.push(churn::run(&opts, n).await?);
                }
                control::clean(&opts.base.work);
                anyhow::Ok(serde_json::json!({ "churn": runs }))
            }
            Command::ProxyMemory { services, requests } => {
                let opts = proxy_mem::Options {
                    weft: cli.weft.clone(),
                    work: cli.work.clone(),
                    requests,
                };
                let mut runs = Vec::new();
                for s in services {
                    eprintln!("weft-bench-cp: proxy memory with {s} Services in the mesh");
                    runs.push(proxy_mem::run(&opts, s).await?);
                }
                anyhow::Ok(serde_json::json!({ "proxyMemory": runs }))
            }
        }
    })?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
