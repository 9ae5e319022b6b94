//! `weft proxy --waypoint NS/NAME`: a waypoint of ambient mode, on one tunnel listener.

use std::collections::BTreeMap;
use std::process::ExitCode;

use weft_core::annotations::GATEWAY_NAME;

use super::{Args, control_plane, gateway_name, runtime, settings, shutdown_requested};
use crate::logging;

pub(super) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let set_level = logging::init(&args.log_level, args.log_format);
    let control_plane = control_plane(&args)?;
    let waypoint = args.waypoint.as_deref().unwrap_or_default();
    let (namespace, name) = gateway_name(waypoint, args.namespace.as_deref())?;
    let rt = runtime(&args)?;
    let engine = settings(&args, control_plane, set_level);
    let pod = args.pod.clone().unwrap_or_else(|| name.clone());
    // Its pods carry the Gateway's name: they are the endpoints of the waypoint's Service.
    let mut labels: BTreeMap<String, String> = args.labels.iter().cloned().collect();
    labels.insert(GATEWAY_NAME.into(), name.clone());
    let cfg = weft_proxy::waypoint::Config {
        identity: weft_proxy::Identity {
            id: args
                .id
                .clone()
                .unwrap_or_else(|| format!("{pod}.{namespace}")),
            namespace: namespace.clone(),
            workload: args.workload.clone().unwrap_or_else(|| name.clone()),
            pod,
            ip: args.ip,
            service_account: args.service_account.clone().unwrap_or_else(|| name.clone()),
            labels,
        },
        engine,
        waypoint: format!("{namespace}/{name}"),
        tunnel: args.tunnel,
    };
    let addresses_file = args.addresses_file.clone();
    rt.block_on(async {
        let bound = weft_proxy::waypoint::build(cfg).await?;
        logging::banner(format_args!(
            "weft proxy: waypoint {namespace}/{name}, tunnel on {}, admin on {}, readiness on {}, metrics on {}",
            bound.tunnel, bound.admin, bound.readiness, bound.metrics
        ));
        if let Some(path) = &addresses_file {
            let reported = weft_local::addresses::ProxyAddresses {
                outbound: None,
                inbound: None,
                admin: bound.admin,
                readiness: bound.readiness,
                metrics: bound.metrics,
                listeners: vec![(weft_core::model::TUNNEL_PORT, bound.tunnel)],
            };
            weft_local::addresses::write(path, &reported)?;
        }
        shutdown_requested().await?;
        bound.drain(None).await;
        Ok(ExitCode::SUCCESS)
    })
}
