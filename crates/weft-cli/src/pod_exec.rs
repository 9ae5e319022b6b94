//! `weft pod-exec` (internal): how `weft up` starts a process inside a pod.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pod's network namespace file (/run/netns/NAME).
    #[arg(long)]
    netns: PathBuf,
    /// Directory whose hosts and resolv.conf are mounted over /etc's inside the pod.
    #[arg(long)]
    etc: Option<PathBuf>,
    /// Working directory.
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    argv: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let e = weft_local::enter::exec_in_pod(
        &args.netns,
        args.etc.as_deref(),
        args.cwd.as_deref(),
        &args.argv,
    );
    eprintln!("weft pod-exec: {e:#}");
    // 127: like a shell, "command not found or could not start".
    Ok(ExitCode::from(127))
}
