//! `weft proxy-config secret|config POD`: what a pod's proxy holds, read from its admin API
//! (127.0.0.1:15000 inside the pod) of a `weft up` mesh: the workload certificate (SPIFFE ID,
//! serial, validity, chain, trust bundle) or the configuration it was sent.

use std::process::ExitCode;
use std::time::Duration;

use crate::up::Instance;

#[derive(Debug, clap::Subcommand)]
enum What {
    /// The workload certificate: SPIFFE ID, serial, validity, chain and trust bundle.
    Secret {
        pod: String,
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The proxy's configuration as it holds it (`/config_dump`), as JSON.
    Config { pod: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
    #[command(flatten)]
    instance: Instance,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (_, plan) = args.instance.running()?;
    let (name, path) = match &args.what {
        What::Secret { pod, .. } => (pod, "/certs"),
        What::Config { pod } => (pod, "/config_dump"),
    };
    let pod = crate::running::pod(&plan, name, "")?;
    if pod.ambient() {
        anyhow::bail!(
            "pod {} is in ambient mode: the node proxy of {} serves it (`weft logs {}` shows its \
             log); proxy-config of a node proxy is not built yet",
            pod.id(),
            pod.node,
            pod.node
        );
    }
    if !pod.sidecar() {
        anyhow::bail!("pod {} has no sidecar (dataplane mode none)", pod.id());
    }
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
    match args.what {
        What::Secret {
            output: Output::Text,
            ..
        } => {
            let info: weft_proxy::certs::CertInfo = serde_json::from_str(&body)
                .map_err(|e| anyhow::anyhow!("unexpected answer from the proxy: {e}"))?;
            print!("{}", weft_proxy::certs::describe(&info));
        }
        _ => println!("{body}"),
    }
    Ok(ExitCode::SUCCESS)
}
