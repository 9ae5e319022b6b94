//! `weft proxy`: the sidecar proxy, with `--gateway` an ingress gateway, with `--node` a node
//! proxy and with `--waypoint` a waypoint (ambient mode).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Context, bail};
use rustls_pki_types::pem::PemObject;
use weft_local::ports;

use crate::logging;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The control plane: `https://HOST:15012` (mTLS discovery and CA; needs --ca-root and
    /// --bootstrap-token-file) or `http://127.0.0.1:15010` (plaintext, loopback only).
    #[arg(
        long,
        default_value_t = format!("http://{}", ports::localhost(ports::DISCOVERY)),
        env = "WEFT_CONTROL_PLANE"
    )]
    control_plane: String,
    /// PEM file of the mesh root(s) to pin when talking to an `https://` control plane.
    #[arg(long, value_name = "FILE", env = "WEFT_CA_ROOT")]
    ca_root: Option<std::path::PathBuf>,
    /// Trust domain of this proxy's SPIFFE ID, asked of the CA before discovery can say it.
    #[arg(long, default_value = "cluster.local", env = "WEFT_TRUST_DOMAIN")]
    trust_domain: String,
    /// Proxy id, unique in the mesh (default: POD.NAMESPACE).
    #[arg(long, env = "WEFT_PROXY_ID")]
    id: Option<String>,
    /// The pod's namespace [default: default; gateway role: the Gateway's].
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// Workload the pod belongs to [gateway role: default the Gateway's name].
    #[arg(long, env = "WEFT_WORKLOAD", required_unless_present_any = ["gateway", "node", "waypoint"])]
    workload: Option<String>,
    /// The pod's name [gateway role: default the Gateway's name].
    #[arg(long, env = "POD_NAME", required_unless_present_any = ["gateway", "node", "waypoint"])]
    pod: Option<String>,
    /// The pod's address.
    #[arg(long, env = "POD_IP")]
    ip: IpAddr,
    /// [default: default; waypoint role: the Gateway's name]
    #[arg(long, env = "WEFT_SERVICE_ACCOUNT")]
    service_account: Option<String>,
    /// Pod labels, `key=value` (repeatable); default: the Workload's labels.
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    #[arg(long, default_value_t = ports::localhost(ports::OUTBOUND), conflicts_with = "gateway")]
    outbound: SocketAddr,
    #[arg(long, default_value_t = ports::any(ports::INBOUND), conflicts_with = "gateway")]
    inbound: SocketAddr,
    #[arg(long, default_value_t = ports::localhost(ports::PROXY_ADMIN))]
    admin: SocketAddr,
    #[arg(long, default_value_t = ports::any(ports::READINESS))]
    readiness: SocketAddr,
    /// Prometheus metrics (`GET /metrics`).
    #[arg(long, default_value_t = ports::any(ports::METRICS))]
    metrics: SocketAddr,
    /// The mTLS tunnel listener (HTTP/2 CONNECT over TLS from peer proxies).
    #[arg(long, default_value_t = ports::any(ports::TUNNEL))]
    tunnel: SocketAddr,
    /// Explicit mode (no capture): send all outbound connections to this destination.
    #[arg(long, conflicts_with = "gateway")]
    outbound_target: Option<SocketAddr>,
    /// Explicit mode (no capture): the app's address; peers reach this proxy's inbound listener.
    #[arg(long, conflicts_with = "gateway")]
    inbound_app: Option<SocketAddr>,
    /// Node role (ambient mode): serve the ambient pods of node NAME that the runtime lists in
    /// --enrolled; --ip is the node's address, --bootstrap-token-file its credential.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "gateway",
        requires = "enrolled"
    )]
    node: Option<String>,
    /// Node role: the enrolled pods, `{"pods": [{"id", "namespace", "name", "ip", "netns"}]}`,
    /// re-read when it changes.
    #[arg(long, value_name = "FILE", requires = "node")]
    enrolled: Option<std::path::PathBuf>,
    /// Node role: restart or upgrade without resetting connections. At start, take the pods'
    /// listening sockets from the node proxy listening on this Unix socket; it stops accepting
    /// once this one serves every pod, and exits when its connections have ended (or at its
    /// drain deadline). Then listen here for the next one. Nobody answering: open new
    /// listeners.
    #[arg(long, value_name = "PATH", requires = "node")]
    handoff: Option<std::path::PathBuf>,
    /// Node role: after handing its listeners over, how long this process lets its established
    /// connections finish before it closes what is left (a SIGTERM ends them at once).
    #[arg(long, value_name = "DURATION", default_value = "1h", requires = "node")]
    handoff_drain: weft_core::duration::Duration,
    /// Waypoint role: serve this waypoint Gateway (gatewayClassName weft-waypoint), `NS/NAME`
    /// or `NAME` in --namespace, on the --tunnel listener. Runs as service account NAME.
    #[arg(long, value_name = "NS/NAME", conflicts_with_all = ["gateway", "node"])]
    waypoint: Option<String>,
    /// Gateway role: serve this ingress Gateway (gatewayClassName weft), `NS/NAME` or `NAME` in
    /// --namespace, instead of a workload's traffic. No inbound or outbound listener.
    #[arg(long, value_name = "NS/NAME", requires = "listen")]
    gateway: Option<String>,
    /// Gateway role: bind the Gateway's listener PORT on host address ADDR, e.g.
    /// `8080=127.0.0.1:18080` (repeatable).
    #[arg(long = "listen", value_name = "PORT=ADDR", value_parser = parse_listen, requires = "gateway")]
    listen: Vec<(u16, SocketAddr)>,
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
    /// Once everything is bound, write the real addresses here (JSON: outbound, inbound,
    /// admin, readiness, metrics, listeners), for whoever started this process (`weft up` does).
    #[arg(long, value_name = "FILE")]
    addresses_file: Option<std::path::PathBuf>,
    /// The control-plane revision this proxy belongs to: a control plane started with another
    /// `--revision` refuses it (and says so); without it, any control plane serves it.
    #[arg(long, value_name = "NAME", env = "WEFT_REVISION")]
    revision: Option<String>,
}

/// The control plane with the roots to pin, read from `--ca-root`.
fn control_plane(args: &Args) -> anyhow::Result<weft_proxy::control::ControlPlane> {
    let mut cp = weft_proxy::control::ControlPlane::from(args.control_plane.clone());
    if !cp.secure() {
        return Ok(cp);
    }
    let Some(path) = &args.ca_root else {
        bail!(
            "--control-plane {} is TLS: give the mesh root to pin with --ca-root FILE",
            args.control_plane
        );
    };
    if args.bootstrap_token_file.is_none() {
        bail!(
            "--control-plane {} admits proxies by workload certificate: give \
             --bootstrap-token-file FILE",
            args.control_plane
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--ca-root {}: cannot read", path.display()))?;
    cp.roots = rustls_pki_types::CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--ca-root {}: bad PEM: {e}", path.display()))?;
    if cp.roots.is_empty() {
        bail!("--ca-root {}: no CERTIFICATE in it", path.display());
    }
    cp.trust_domain = Some(args.trust_domain.clone());
    Ok(cp)
}

/// The proxy's runtime: `--concurrency` worker threads.
fn runtime(args: &Args) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.concurrency.clamp(1, 64))
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// What every role's engine is configured with, from the flags they share.
fn settings(
    args: &Args,
    control_plane: weft_proxy::control::ControlPlane,
    set_level: weft_proxy::SetLogLevel,
) -> weft_proxy::Settings {
    weft_proxy::Settings {
        control_plane,
        admin: args.admin,
        readiness: args.readiness,
        metrics: args.metrics,
        set_log_level: Some(set_level),
        log_level: args.log_level.clone(),
        bootstrap_token_file: args.bootstrap_token_file.clone(),
        credentials: None,
        mark: args.mark,
        revision: args.revision.clone(),
    }
}

/// A `--label` or `--listen` value that does not parse; clap prints it after the flag.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error("{0:?} is not key=value")]
    NotKeyValue(String),
    #[error("{0:?} is not PORT=ADDR (e.g. 8080=127.0.0.1:18080)")]
    NotListen(String),
    #[error("{port:?} is not a listener port: {source}")]
    Port {
        port: String,
        source: std::num::ParseIntError,
    },
    #[error("{addr:?} is not a socket address (IP:PORT): {source}")]
    Addr {
        addr: String,
        source: std::net::AddrParseError,
    },
}

fn parse_label(s: &str) -> Result<(String, String), ArgError> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| ArgError::NotKeyValue(s.to_string()))
}

fn parse_listen(s: &str) -> Result<(u16, SocketAddr), ArgError> {
    let (port, addr) = s
        .split_once('=')
        .ok_or_else(|| ArgError::NotListen(s.to_string()))?;
    let port = port.parse().map_err(|source| ArgError::Port {
        port: port.to_string(),
        source,
    })?;
    let addr = addr.parse().map_err(|source| ArgError::Addr {
        addr: addr.to_string(),
        source,
    })?;
    Ok((port, addr))
}

/// `NS/NAME`, or `NAME` in `namespace`, as (namespace, name).
pub(super) fn gateway_name(
    gateway: &str,
    namespace: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let (ns, name) = match gateway.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => (namespace.unwrap_or("default"), gateway),
    };
    if ns.is_empty() || name.is_empty() || name.contains('/') {
        bail!("--gateway {gateway:?}: expected NS/NAME or NAME");
    }
    if let Some(given) = namespace
        && given != ns
    {
        bail!(
            "--gateway {gateway:?} is in namespace {ns:?} but --namespace is {given:?}; \
             a gateway proxy runs in its Gateway's namespace"
        );
    }
    Ok((ns.to_string(), name.to_string()))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.gateway.is_some() {
        return run_gateway(args);
    }
    if args.node.is_some() {
        return node::run(args);
    }
    if args.waypoint.is_some() {
        return waypoint::run(args);
    }
    let set_level = logging::init(&args.log_level, args.log_format);
    let control_plane = control_plane(&args)?;
    let rt = runtime(&args)?;
    let engine = settings(&args, control_plane, set_level);
    let namespace = args.namespace.unwrap_or_else(|| "default".into());
    let (Some(workload), Some(pod)) = (args.workload, args.pod) else {
        bail!("--workload and --pod are required");
    };
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("{pod}.{namespace}"));
    let addresses_file = args.addresses_file.clone();
    let cfg = weft_proxy::Config {
        identity: weft_proxy::Identity {
            id,
            namespace,
            workload,
            pod,
            ip: args.ip,
            service_account: args.service_account.unwrap_or_else(|| "default".into()),
            labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
        },
        outbound: args.outbound,
        inbound: args.inbound,
        outbound_target: args.outbound_target,
        inbound_app: args.inbound_app,
        tunnel: args.tunnel,
        engine,
    };
    rt.block_on(async {
        let bound = weft_proxy::build(cfg).await?;
        logging::banner(format_args!(
            "weft proxy: outbound on {}, inbound on {}, admin on {}, readiness on {}, metrics on {}",
            bound.outbound, bound.inbound, bound.admin, bound.readiness, bound.metrics
        ));
        if let Some(path) = &addresses_file {
            let reported = weft_local::addresses::ProxyAddresses {
                outbound: Some(bound.outbound),
                inbound: Some(bound.inbound),
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

fn run_gateway(args: Args) -> anyhow::Result<ExitCode> {
    let set_level = logging::init(&args.log_level, args.log_format);
    let control_plane = control_plane(&args)?;
    let gateway = args.gateway.as_deref().unwrap_or_default();
    let (namespace, name) = gateway_name(gateway, args.namespace.as_deref())?;
    let mut listeners = BTreeMap::new();
    for (port, addr) in &args.listen {
        if listeners.insert(*port, *addr).is_some() {
            bail!("--listen names listener port {port} twice");
        }
    }
    let rt = runtime(&args)?;
    let engine = settings(&args, control_plane, set_level);
    let workload = args.workload.unwrap_or_else(|| name.clone());
    let pod = args.pod.unwrap_or_else(|| name.clone());
    let id = args.id.unwrap_or_else(|| format!("{pod}.{namespace}"));
    let addresses_file = args.addresses_file.clone();
    let cfg = weft_proxy::gateway::Config {
        identity: weft_proxy::Identity {
            id,
            namespace: namespace.clone(),
            workload,
            pod,
            ip: args.ip,
            service_account: args.service_account.unwrap_or_else(|| "default".into()),
            labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
        },
        gateway: format!("{namespace}/{name}"),
        listeners,
        engine,
    };
    rt.block_on(async {
        let bound = weft_proxy::gateway::build(cfg).await?;
        let listeners: Vec<String> = bound
            .listeners
            .iter()
            .map(|(port, addr)| format!("{port} on {addr}"))
            .collect();
        logging::banner(format_args!(
            "weft proxy: gateway {namespace}/{name}, listeners {}, admin on {}, readiness on {}, metrics on {}",
            listeners.join(", "),
            bound.admin,
            bound.readiness,
            bound.metrics
        ));
        if let Some(path) = &addresses_file {
            let reported = weft_local::addresses::ProxyAddresses {
                outbound: None,
                inbound: None,
                admin: bound.admin,
                readiness: bound.readiness,
                metrics: bound.metrics,
                listeners: bound.listeners.iter().map(|(p, a)| (*p, *a)).collect(),
            };
            weft_local::addresses::write(path, &reported)?;
        }
        shutdown_requested().await?;
        bound.drain(None).await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_requested() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested: draining");
    Ok(())
}

mod node;
mod waypoint;

#[cfg(test)]
mod launch_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_flags_parse_port_and_address() {
        assert_eq!(
            parse_listen("8080=127.0.0.1:18080").unwrap(),
            (8080, "127.0.0.1:18080".parse().unwrap())
        );
        let why = |s: &str| parse_listen(s).unwrap_err().to_string();
        assert_eq!(
            why("8080"),
            "\"8080\" is not PORT=ADDR (e.g. 8080=127.0.0.1:18080)"
        );
        assert_eq!(
            why("http=127.0.0.1:1"),
            "\"http\" is not a listener port: invalid digit found in string"
        );
        assert_eq!(
            why("8080=localhost"),
            "\"localhost\" is not a socket address (IP:PORT): invalid socket address syntax"
        );
        let err = parse_listen("http=127.0.0.1:1").unwrap_err();
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    }

    #[test]
    fn label_flags_split_at_the_first_equals() {
        assert_eq!(
            parse_label("app=web=1").unwrap(),
            ("app".into(), "web=1".into())
        );
        assert_eq!(
            parse_label("app").unwrap_err().to_string(),
            "\"app\" is not key=value"
        );
    }

    /// clap shows a value parser's error text after the flag, unchanged.
    #[test]
    fn clap_reports_the_parser_error() {
        use clap::Parser;
        let err = crate::Cli::try_parse_from(["weft", "proxy", "--listen", "8080"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("\"8080\" is not PORT=ADDR (e.g. 8080=127.0.0.1:18080)"),
            "{err}"
        );
    }

    #[test]
    fn the_node_role_needs_its_enrolment_file_and_no_workload() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let all = [&["weft", "proxy", "--ip", "198.18.0.1"][..], args].concat();
            crate::Cli::try_parse_from(all).map_err(|e| e.to_string())
        };
        assert!(parse(&["--node", "node-a", "--enrolled", "/run/weft/enrolled.json"]).is_ok());
        let handoff = ["--handoff", "/run/weft/node-a.handoff"];
        let with = [&["--node", "node-a", "--enrolled", "f"][..], &handoff].concat();
        assert!(parse(&with).is_ok());
        let err = parse(&[&["--workload", "w", "--pod", "p"][..], &handoff].concat());
        assert!(err.unwrap_err().contains("--node"));
        let err = parse(&["--node", "node-a"]).unwrap_err();
        assert!(err.contains("--enrolled"), "{err}");
        let err = parse(&[
            "--node",
            "node-a",
            "--enrolled",
            "f",
            "--gateway",
            "ingress",
        ]);
        assert!(err.unwrap_err().contains("cannot be used with"));
        // Without a role, a sidecar still needs its workload and pod.
        assert!(parse(&[]).unwrap_err().contains("--workload"));
    }

    #[test]
    fn gateway_names_take_their_namespace() {
        let ok = |g, ns| gateway_name(g, ns).unwrap();
        assert_eq!(ok("shop/ingress", None), ("shop".into(), "ingress".into()));
        assert_eq!(
            ok("ingress", Some("shop")),
            ("shop".into(), "ingress".into())
        );
        assert_eq!(ok("ingress", None), ("default".into(), "ingress".into()));
        assert_eq!(
            ok("shop/ingress", Some("shop")),
            ("shop".into(), "ingress".into())
        );
        let err = gateway_name("shop/ingress", Some("web")).unwrap_err();
        assert!(err.to_string().contains("Gateway's namespace"), "{err}");
        assert!(gateway_name("shop/", None).is_err());
        assert!(gateway_name("a/b/c", None).is_err());
    }
}
