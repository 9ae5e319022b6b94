//! `weft pod-exec` (internal): how `weft up` starts a process inside a pod. Its one line of
//! output, why the process could not start, goes to that process's log in the format the
//! process logs in (`--log-format`).

use std::path::PathBuf;
use std::process::ExitCode;

use weft_local::cgroup::CGROUP_ENV;

use crate::logging;

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
    /// How to write the error when the program cannot start: the format of the log it shares.
    #[arg(long, value_enum, default_value_t = logging::Format::Text)]
    log_format: logging::Format,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    argv: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let e = match join_cgroup() {
        Err(e) => e,
        Ok(()) => weft_local::enter::exec_in_pod(
            &args.netns,
            args.etc.as_deref(),
            args.cwd.as_deref(),
            &args.argv,
        ),
    };
    logging::report(args.log_format, "weft pod-exec", &format!("{e:#}"));
    // 127: like a shell, "command not found or could not start".
    Ok(ExitCode::from(127))
}

/// Joins the groups `weft up` made for the program (named by [`CGROUP_ENV`]) before becoming
/// it, so all it allocates counts against its limits.
fn join_cgroup() -> anyhow::Result<()> {
    let Some(files) = std::env::var_os(CGROUP_ENV) else {
        return Ok(());
    };
    let files: Vec<PathBuf> = std::env::split_paths(&files).collect();
    weft_local::cgroup::join(&files, std::process::id())
}
