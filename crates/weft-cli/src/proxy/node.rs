//! `weft proxy --node NAME --enrolled FILE [--handoff PATH]`: the node proxy of ambient mode.
//! It drains and exits on SIGTERM, or once a new node proxy took its listeners over.

use std::process::ExitCode;

use super::{Args, control_plane, runtime, settings, shutdown_requested};
use crate::logging;

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let set_level = logging::init(&args.log_level, args.log_format);
    let control_plane = control_plane(&args)?;
    let (Some(node), Some(enrolled)) = (args.node.clone(), args.enrolled.clone()) else {
        anyhow::bail!("--node and --enrolled go together");
    };
    let rt = runtime(&args)?;
    let addresses_file = args.addresses_file.clone();
    let handoff_drain = args.handoff_drain;
    let cfg = weft_proxy::node::Config {
        node: node.clone(),
        ip: args.ip,
        pods_file: enrolled,
        engine: settings(&args, control_plane, set_level),
        handoff: args.handoff.clone().map(weft_proxy::handoff::Config::new),
    };
    rt.block_on(async {
        let bound = weft_proxy::node::build(cfg).await?;
        logging::banner(format_args!(
            "weft proxy: node {node}, admin on {}, readiness on {}, metrics on {}",
            bound.admin, bound.readiness, bound.metrics
        ));
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
        let handed_off = tokio::select! {
            r = shutdown_requested() => { r?; false }
            () = bound.handed_off() => true,
        };
        if !handed_off {
            bound.drain(None).await;
            return Ok(ExitCode::SUCCESS);
        }
        // Nothing new comes here: established connections finish on this process, however
        // long they live (up to --handoff-drain), unless it is told to stop.
        let deadline = handoff_drain.as_std();
        tracing::info!(
            deadline = %handoff_drain,
            "a new node proxy took the listeners over: established connections finish here"
        );
        tokio::select! {
            () = bound.drain(Some(deadline)) => {}
            r = shutdown_requested() => {
                r?;
                tracing::info!("stopping: the connections still open here are closed");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
