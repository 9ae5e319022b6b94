//! `weft proxy-config secret|config|workloads|services`: what a proxy of a `weft up` mesh
//! holds, read from its admin API. A sidecar's (and a waypoint's) admin listens on
//! 127.0.0.1:15000 inside its pod; a node proxy's on the host's loopback, at the address it
//! reported in the run directory. An ambient pod is read from its node proxy: its state,
//! config and certificate from `GET /pods`, the Services from the node's `/config_dump`.

mod node;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use weft_local::plan::{Plan, PodPlan};
use weft_local::rundir::RunDir;
use weft_proxy::certs::CertInfo;

use crate::up::Instance;

#[derive(Debug, clap::Subcommand)]
enum What {
    /// A pod's workload certificate: SPIFFE ID, serial, validity, chain and trust bundle (an
    /// ambient pod's as its node proxy holds it).
    Secret {
        /// Pod (`cart-0` or `shop/cart-0`).
        pod: String,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The configuration a proxy holds (`/config_dump`), as JSON: a pod's sidecar, a node's
    /// proxy, or for an ambient pod its node proxy's with the pod's entry under `"pod"`.
    Config {
        /// Pod (`cart-0` or `shop/cart-0`) or node (`node-1`).
        target: String,
    },
    /// The ambient pods a node proxy serves: state, identity, certificate expiry, policies
    /// and waypoints.
    Workloads {
        /// Node (`node-1`).
        node: String,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The Services a proxy holds (those its pods asked for): address, ports, endpoints and
    /// waypoint.
    Services {
        /// Pod (`cart-0` or `shop/cart-0`) or node (`node-1`).
        target: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "A pod in ambient mode is read from its node's proxy; \
`weft proxy-config workloads node-1` lists the pods it serves.")]
pub struct Args {
    #[command(subcommand)]
    what: What,
    #[command(flatten)]
    instance: Instance,
}

/// The proxy a name leads to.
enum Target<'a> {
    /// A pod with a proxy of its own (sidecar or waypoint), admin inside the pod.
    InPod(&'a PodPlan),
    /// An ambient pod, served by its node's proxy.
    Ambient(&'a PodPlan),
    /// A node's proxy.
    Node(String),
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    match args.what {
        What::Secret { pod, output } => secret(&dir, &plan, &pod, output),
        What::Config { target } => {
            let dump = config_dump(&dir, &plan, &target)?;
            println!("{}", serde_json::to_string_pretty(&dump)?);
            Ok(ExitCode::SUCCESS)
        }
        What::Workloads { node, output } => {
            let pods = match find(&plan, &node)? {
                Target::Node(node) => node::pods(&dir, &node)?,
                Target::InPod(p) | Target::Ambient(p) => anyhow::bail!(
                    "{node:?} is a pod, not a node; its node is {}: `weft proxy-config workloads {}`",
                    p.node,
                    p.node
                ),
            };
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&pods)?),
                Output::Text => print!("{}", table::workloads(&pods, now())),
            }
            Ok(ExitCode::SUCCESS)
        }
        What::Services { target } => {
            let dump = config_dump(&dir, &plan, &target)?;
            print!("{}", table::services(&dump));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Pod `name`, or else node `name`; the error lists both.
fn find<'a>(plan: &'a Plan, name: &str) -> anyhow::Result<Target<'a>> {
    if let Some(pod) = plan.pod(name) {
        return match (pod.sidecar() || pod.waypoint, pod.ambient()) {
            (true, _) => Ok(Target::InPod(pod)),
            (false, true) => Ok(Target::Ambient(pod)),
            (false, false) => anyhow::bail!("pod {} has no proxy (dataplane mode none)", pod.id()),
        };
    }
    if plan.nodes.iter().any(|n| n == name) {
        return Ok(Target::Node(name.to_string()));
    }
    let pods: Vec<String> = plan.pods.iter().map(|p| p.id()).collect();
    anyhow::bail!(
        "no pod or node {name:?}; pods: {}; nodes: {}",
        pods.join(", "),
        plan.nodes.join(", ")
    )
}

fn secret(dir: &RunDir, plan: &Plan, name: &str, output: Output) -> anyhow::Result<ExitCode> {
    let info: CertInfo = match find(plan, name)? {
        Target::InPod(pod) => {
            let body = in_pod(pod, "/certs")?;
            serde_json::from_str(&body).context("unexpected answer from the proxy")?
        }
        Target::Ambient(pod) => {
            let entry = node::pod(dir, pod)?;
            match entry.certificate {
                Some(c) => c,
                None => anyhow::bail!(
                    "node {}'s proxy holds no certificate for {} ({}): {}",
                    pod.node,
                    pod.id(),
                    entry.state,
                    entry.no_certificate.unwrap_or_default()
                ),
            }
        }
        Target::Node(n) => anyhow::bail!(
            "{n} is a node: its proxy holds one certificate per pod; name a pod \
             (`weft proxy-config workloads {n}` lists them)"
        ),
    };
    match output {
        Output::Text => print!("{}", weft_proxy::certs::describe(&info)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&info)?),
    }
    Ok(ExitCode::SUCCESS)
}

/// The `/config_dump` of the proxy `name` leads to; an ambient pod's entry of `/pods` under
/// `"pod"` of its node's.
fn config_dump(dir: &RunDir, plan: &Plan, name: &str) -> anyhow::Result<Value> {
    let parse = |body: String| -> anyhow::Result<Value> {
        serde_json::from_str(&body).context("unexpected answer from the proxy")
    };
    match find(plan, name)? {
        Target::InPod(pod) => parse(in_pod(pod, "/config_dump")?),
        Target::Node(n) => parse(node::get(dir, &n, "/config_dump")?),
        Target::Ambient(pod) => {
            let entry = node::pod(dir, pod)?;
            let mut dump = parse(node::get(dir, &pod.node, "/config_dump")?)?;
            dump["pod"] = serde_json::to_value(entry)?;
            Ok(dump)
        }
    }
}

/// `GET path` on the admin API inside `pod` (its sidecar's or waypoint's).
fn in_pod(pod: &PodPlan, path: &str) -> anyhow::Result<String> {
    let admin = weft_local::ports::localhost(weft_local::ports::PROXY_ADMIN);
    let (status, body) =
        weft_local::http::get_in_pod(&pod.netns, admin, path, Duration::from_secs(5)).map_err(
            |e| anyhow::anyhow!("asking the proxy of {} at {admin}{path}: {e}", pod.id()),
        )?;
    if status != 200 {
        anyhow::bail!(
            "the proxy of {} answered {status}: {}",
            pod.id(),
            body.trim()
        );
    }
    Ok(body)
}

/// Unix seconds now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
