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
    /// Discovery (gRPC) address proxies connect to.
    #[arg(long, default_value = "127.0.0.1:15010")]
    discovery: SocketAddr,
    /// Admin and debug HTTP API.
    #[arg(long, default_value = "127.0.0.1:15014")]
    admin: SocketAddr,
    /// Log level (trace, debug, info, warn, error).
    #[arg(long, default_value = "info")]
    log_level: String,
    #[arg(long, value_enum, default_value_t = logging::Format::Text)]
    log_format: logging::Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    logging::init(&args.log_level, args.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let bound = weft_control::build(weft_control::Config {
            config_dir: args.config,
            discovery_addr: args.discovery,
            admin_addr: args.admin,
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
