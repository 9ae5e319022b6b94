//! `weft control`: the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_local::ports;

use crate::logging;

/// The environment variable that names the events file (`--events-file`).
pub const EVENTS_ENV: &str = weft_local::launch::EVENTS_ENV;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of configuration (YAML/JSON), watched (inotify); changes apply as soon as
    /// their writes settle.
    #[arg(long, short = 'c', value_name = "DIR")]
    config: PathBuf,
    /// Pods listed by the local runtime, JSON `{"pods": [...]}`, watched; they are endpoints
    /// whether or not a proxy announced them (e.g. workloads without a sidecar).
    #[arg(long, value_name = "FILE")]
    pods: Option<PathBuf>,
    /// Plaintext discovery and CA (gRPC), for tools and tests on this host: loopback only.
    #[arg(long, default_value_t = ports::localhost(ports::DISCOVERY))]
    discovery: SocketAddr,
    /// mTLS discovery and CA for proxies (port 15012 by convention): a proxy gets its first
    /// certificate with its bootstrap token, then discovery admits it by that certificate.
    #[arg(long, value_name = "ADDR")]
    secure_discovery: Option<SocketAddr>,
    /// Admin and debug HTTP API.
    #[arg(long, default_value_t = ports::localhost(ports::CONTROL_ADMIN))]
    admin: SocketAddr,
    /// After a start, how long to let proxies reconnect before answering (e.g. 1s, 500ms).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    warmup: std::time::Duration,
    /// How long a push may wait for a proxy that does not read its discovery stream before it
    /// is disconnected (it reconnects and gets the current state).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    send_timeout: std::time::Duration,
    /// Where the control plane keeps its state: the CA root (ca/root-cert.pem, ca/root-key.pem)
    /// and more roots to trust (ca/bundle/*.pem).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/weft")]
    state_dir: PathBuf,
    /// Sign with this CA certificate (PEM) instead of the generated root: a root, or an
    /// intermediate (with the intermediates above it) whose roots --ca-bundle gives.
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// The private key of --ca-cert (PKCS#8 PEM).
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// The root certificates an intermediate --ca-cert leads to (PEM).
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    ca_bundle: Option<PathBuf>,
    /// Use once: generate a new root that signs from now on; the old root moves to
    /// ca/bundle/ and stays trusted until it expires or you remove its file.
    #[arg(long, conflicts_with = "ca_cert")]
    rotate_root: bool,
    /// Bootstrap credentials of proxies (JSON: token SHA-256, namespace, service account, pod),
    /// re-read when it changes. Without it the CA refuses every certificate request.
    #[arg(long, value_name = "FILE")]
    bootstrap: Option<PathBuf>,
    /// Default and maximum lifetime of a workload certificate (proxies renew at half).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    cert_ttl: std::time::Duration,
    /// Once everything is bound, write the real addresses here (JSON: discovery,
    /// secureDiscovery, admin), for whoever started this process (`weft up` does).
    #[arg(long, value_name = "FILE")]
    addresses_file: Option<PathBuf>,
    /// A mesh setting of this control plane's revision, over the Mesh of the configuration
    /// (`mtls.mode=PERMISSIVE`, `proxy.concurrency=4`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<weft_core::resources::mesh_set::MeshSet>,
    /// The revision this control plane serves, when several run side by side during an
    /// upgrade: a proxy started with another `--revision` is refused and told where to go.
    /// Without it, proxies of every revision are served.
    #[arg(long, value_name = "NAME")]
    revision: Option<String>,
    /// Append events (configuration applied or rejected, proxies connected, gone, refusing a
    /// push or refused) to this file as JSON lines; `weft up` sets it to the mesh's, which
    /// `weft events` reads. Given in the environment, so an older binary ignores it.
    #[arg(long, value_name = "FILE", env = EVENTS_ENV)]
    events_file: Option<PathBuf>,
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
            secure_discovery_addr: args.secure_discovery,
            admin_addr: args.admin,
            warmup: args.warmup,
            send_timeout: args.send_timeout,
            ca: weft_control::ca::Config {
                state_dir: args.state_dir,
                ca_cert: args.ca_cert,
                ca_key: args.ca_key,
                ca_bundle: args.ca_bundle,
                rotate_root: args.rotate_root,
                bootstrap: args.bootstrap,
                cert_ttl: args.cert_ttl,
            },
            mesh_sets: args.sets,
            revision: args.revision.clone(),
            events_file: args.events_file,
        })
        .await?;
        logging::banner(format_args!(
            "weft control{}: discovery on {}{}, admin on http://{}/debug/syncz",
            args.revision
                .as_ref()
                .map_or_else(String::new, |r| format!(" (revision {r})")),
            bound.discovery,
            bound
                .secure_discovery
                .map_or_else(String::new, |a| format!(", mTLS discovery on {a}")),
            bound.admin
        ));
        if let Some(path) = &args.addresses_file {
            let reported = weft_local::addresses::ControlAddresses {
                discovery: bound.discovery,
                secure_discovery: bound.secure_discovery,
                admin: bound.admin,
            };
            weft_local::addresses::write(path, &reported)?;
        }
        bound.wait().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn parse_duration(
    s: &str,
) -> Result<std::time::Duration, weft_core::duration::ParseDurationError> {
    s.parse::<weft_core::duration::Duration>()
        .map(|d| d.as_std())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use weft_local::launch::ControlLaunch;
    use weft_local::ports;

    use crate::{Cli, Command};

    /// The launch contract, control side: what `weft up` passes to `weft control` parses with
    /// this binary's own parser into the same values. A flag renamed on either side fails here.
    #[test]
    fn control_launch_parses_into_the_same_values() {
        let launch = ControlLaunch {
            config_dir: "/srv/shop".into(),
            discovery: "127.0.0.1:0".parse().unwrap(),
            secure_discovery: ([198, 18, 0, 1], ports::SECURE_DISCOVERY).into(),
            admin: "127.0.0.1:25014".parse().unwrap(),
            warmup: weft_core::duration::Duration::from_millis(1500),
            pods_file: "/run/weft/shop/pods.json".into(),
            state_dir: "/run/weft/shop/state".into(),
            bootstrap: "/run/weft/shop/bootstrap.json".into(),
            addresses_file: Some("/run/weft/shop/addresses/control.json".into()),
            ca_cert: Some("/run/weft/shop/state/ca/root-cert.pem".into()),
            ca_key: Some("/run/weft/shop/state/ca/root-key.pem".into()),
            sets: vec!["mtls.mode=PERMISSIVE".into(), "proxy.concurrency=4".into()],
            revision: Some("canary".into()),
        };
        let argv = std::iter::once("weft".to_string()).chain(launch.to_args());
        let args = match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Command::Control(args),
            }) => args,
            Ok(other) => panic!("{:?} parsed as {other:?}", launch.to_args()),
            Err(e) => panic!("{:?} does not parse: {e}", launch.to_args()),
        };
        assert_eq!(args.config, launch.config_dir);
        assert_eq!(args.discovery, launch.discovery);
        assert_eq!(args.secure_discovery, Some(launch.secure_discovery));
        assert_eq!(args.admin, launch.admin);
        assert_eq!(args.warmup, launch.warmup.as_std());
        assert_eq!(args.pods, Some(launch.pods_file.clone()));
        assert_eq!(args.state_dir, launch.state_dir);
        assert_eq!(args.bootstrap, Some(launch.bootstrap.clone()));
        assert_eq!(args.addresses_file, launch.addresses_file);
        assert_eq!(args.ca_cert, launch.ca_cert);
        assert_eq!(args.ca_key, launch.ca_key);
        let sets: Vec<String> = args.sets.iter().map(|s| s.to_string()).collect();
        assert_eq!(sets, launch.sets);
        assert_eq!(args.revision, launch.revision);
        // Its log is JSON lines, like every process `weft up` starts.
        assert_eq!(args.log_format, crate::logging::Format::Json);
        let without = ControlLaunch {
            revision: None,
            ..launch.clone()
        };
        assert!(!without.to_args().iter().any(|a| a == "--revision"));
    }
}
