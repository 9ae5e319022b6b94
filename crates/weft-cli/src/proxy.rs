//! `weft proxy`: the sidecar proxy.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;

use crate::logging;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Discovery address of the control plane.
    #[arg(
        long,
        default_value = "http://127.0.0.1:15010",
        env = "WEFT_CONTROL_PLANE"
    )]
    control_plane: String,
    /// Proxy id, unique in the mesh (default: POD.NAMESPACE).
    #[arg(long, env = "WEFT_PROXY_ID")]
    id: Option<String>,
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    namespace: String,
    /// Workload the pod belongs to.
    #[arg(long, env = "WEFT_WORKLOAD")]
    workload: String,
    #[arg(long, env = "POD_NAME")]
    pod: String,
    /// The pod's address.
    #[arg(long, env = "POD_IP")]
    ip: IpAddr,
    #[arg(long, env = "WEFT_SERVICE_ACCOUNT", default_value = "default")]
    service_account: String,
    /// Pod labels, `key=value` (repeatable); default: the Workload's labels.
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    #[arg(long, default_value = "127.0.0.1:15001")]
    outbound: SocketAddr,
    #[arg(long, default_value = "0.0.0.0:15006")]
    inbound: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:15000")]
    admin: SocketAddr,
    #[arg(long, default_value = "0.0.0.0:15021")]
    readiness: SocketAddr,
    /// Prometheus metrics (`GET /metrics`).
    #[arg(long, default_value = "0.0.0.0:15020")]
    metrics: SocketAddr,
    /// Explicit mode (no capture): send all outbound connections to this destination.
    #[arg(long)]
    outbound_target: Option<SocketAddr>,
    /// Explicit mode (no capture): the app's address; peers reach this proxy's inbound listener.
    #[arg(long)]
    inbound_app: Option<SocketAddr>,
    #[arg(long, default_value = "info", env = "WEFT_LOG_LEVEL")]
    log_level: String,
    #[arg(long, value_enum, default_value_t = logging::Format::Json)]
    log_format: logging::Format,
    /// Mark the proxy's upstream connections with this socket mark (SO_MARK), so capture rules
    /// let them pass; `weft up` sets it. 0: no mark.
    #[arg(long, default_value_t = 0)]
    mark: u32,
    /// File holding the bootstrap token for the control plane's CA: with it the proxy gets a
    /// workload certificate (renewed at half-life) and is not ready before it has one.
    #[arg(long, value_name = "FILE", env = "WEFT_BOOTSTRAP_TOKEN_FILE")]
    bootstrap_token_file: Option<std::path::PathBuf>,
    /// Worker threads (default: the Mesh's proxy concurrency, 2).
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let set_level = logging::init(&args.log_level, args.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.concurrency.clamp(1, 64))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    weft_proxy::pool::set_socket_mark(args.mark);
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("{}.{}", args.pod, args.namespace));
    let cfg = weft_proxy::Config {
        identity: weft_proxy::Identity {
            id,
            namespace: args.namespace,
            workload: args.workload,
            pod: args.pod,
            ip: args.ip,
            service_account: args.service_account,
            labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
        },
        control_plane: args.control_plane,
        outbound: args.outbound,
        inbound: args.inbound,
        admin: args.admin,
        readiness: args.readiness,
        metrics: args.metrics,
        outbound_target: args.outbound_target,
        inbound_app: args.inbound_app,
        set_log_level: Some(set_level),
        log_level: args.log_level,
        bootstrap_token_file: args.bootstrap_token_file,
    };
    rt.block_on(async {
        let bound = weft_proxy::build(cfg).await?;
        eprintln!(
            "weft proxy: outbound on {}, inbound on {}, admin on {}, readiness on {}, metrics on {}",
            bound.outbound, bound.inbound, bound.admin, bound.readiness, bound.metrics
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested: draining");
        bound.drain(None).await;
        Ok(ExitCode::SUCCESS)
    })
}
