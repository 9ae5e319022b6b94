//! `weft control`: the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::logging;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of configuration (YAML/JSON), watched; changes apply within a second.
    #[arg(long, short = 'c', value_name = "DIR")]
    config: PathBuf,
    /// Pods listed by the local runtime, JSON `{"pods": [...]}`, watched; they are endpoints
    /// whether or not a proxy announced them (e.g. workloads without a sidecar).
    #[arg(long, value_name = "FILE")]
    pods: Option<PathBuf>,
    /// Discovery (gRPC) address proxies connect to.
    #[arg(long, default_value = "127.0.0.1:15010")]
    discovery: SocketAddr,
    /// Admin and debug HTTP API.
    #[arg(long, default_value = "127.0.0.1:15014")]
    admin: SocketAddr,
    /// After a start, how long to let proxies reconnect before answering (e.g. 1s, 500ms).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    warmup: std::time::Duration,
    /// Log level (trace, debug, info, warn, error).
    #[arg(long, default_value = "info")]
    log_level: String,
    #[arg(long, value_enum, default_value_t = logging::Format::Text)]
    log_format: logging::Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let _ = logging::init(&args.log_level, args.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let bound = weft_control::build(weft_control::Config {
            config_dir: args.config,
            pods_file: args.pods,
            discovery_addr: args.discovery,
            admin_addr: args.admin,
            warmup: args.warmup,
        })
        .await?;
        eprintln!(
            "weft control: discovery on {}, admin on http://{}/debug/syncz",
            bound.discovery, bound.admin
        );
        bound.wait().await;
        Ok(ExitCode::SUCCESS)
    })
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<weft_core::duration::Duration>()
        .map(|d| d.as_std())
        .map_err(|e| e.to_string())
}
