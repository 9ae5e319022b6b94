//! `weft exec POD -- CMD...`: runs a command inside a pod of a `weft up` mesh, as its app
//! runs: in the pod's network namespace (so its traffic goes through the pod's sidecar) and
//! with the pod's names for Services.

use std::process::ExitCode;

use crate::up::Instance;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod (`cart-0` or `shop/cart-0`).
    pod: String,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
    #[command(flatten)]
    instance: Instance,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let pod = crate::running::pod(&plan, &args.pod, "")?;
    let e = weft_local::enter::exec_in_pod(
        &weft_local::net::netns_path(&pod.netns),
        Some(&dir.etc_dir(&pod.namespace)),
        None,
        &args.command,
    );
    eprintln!("weft exec: {e:#}");
    Ok(ExitCode::from(127))
}
