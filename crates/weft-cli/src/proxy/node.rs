//! `weft proxy --node NAME --enrolled FILE`: the node proxy of ambient mode.

use std::process::ExitCode;

use anyhow::Context;

use super::{Args, control_plane, shutdown_requested};
use crate::logging;

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let control_plane = control_plane(&args)?;
    let (Some(node), Some(enrolled)) = (args.node.clone(), args.enrolled.clone()) else {
        anyhow::bail!("--node and --enrolled go together");
    };
    let set_level = logging::init(&args.log_level, args.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.concurrency.clamp(1, 64))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let addresses_file = args.addresses_file.clone();
    let cfg = weft_proxy::node::Config {
        node: node.clone(),
        ip: args.ip,
        pods_file: enrolled,
        engine: weft_proxy::Settings {
            control_plane,
            admin: args.admin,
            readiness: args.readiness,
            metrics: args.metrics,
            set_log_level: Some(set_level),
            log_level: args.log_level,
            bootstrap_token_file: args.bootstrap_token_file,
            credentials: None,
            mark: args.mark,
        },
    };
    rt.block_on(async {
        let bound = weft_proxy::node::build(cfg).await?;
        eprintln!(
            "weft proxy: node {node}, admin on {}, readiness on {}, metrics on {}",
            bound.admin, bound.readiness, bound.metrics
        );
        if let Some(path) = &addresses_file {
            let reported = weft_local::addresses::ProxyAddresses {
                outbound: None,
                inbound: None,
                admin: bound.admin,
                readiness: bound.readiness,
                metrics: bound.metrics,
                listeners: vec![],
            };
            weft_local::addresses::write(path, &reported)?;
        }
        shutdown_requested().await?;
        bound.drain(None).await;
        Ok(ExitCode::SUCCESS)
    })
}
