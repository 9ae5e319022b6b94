//! `weft restart NODE [--binary PATH]`: restarts (or, with another binary, upgrades) a node
//! proxy of a running `weft up` without resetting a connection. The new process starts first
//! and takes the old one's listeners over its hand-off path; the old one drains its
//! established connections and exits by itself. Asked through the instance's runtime
//! directory ([`weft_local::restart`]); waits for the reply and prints what happened.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use weft_local::restart::{self, Request};

use crate::up::Instance;

/// How long a hand-off may take: a new node proxy gives up after 60 s, `weft up` after 90 s.
const DONE_WITHIN: Duration = Duration::from_secs(120);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node whose proxy to restart (`node-1`; `weft get pods` shows each pod's node).
    node: String,
    /// Run this `weft` executable instead of the running one's (an upgrade); it stays the
    /// node proxy's executable for later restarts.
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    #[command(flatten)]
    instance: Instance,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    if !plan.nodes.contains(&args.node) {
        bail!("no node {:?}; nodes: {}", args.node, plan.nodes.join(", "));
    }
    let binary = args
        .binary
        .map(|b| std::path::absolute(&b).with_context(|| format!("{}", b.display())))
        .transpose()?;
    let req = Request {
        node: args.node.clone(),
        binary,
    };
    let reply: restart::Reply = crate::ask::ask(&dir, restart::KIND, &req, DONE_WITHIN)?;
    match reply.error {
        None => {
            println!("{}", reply.describe());
            Ok(ExitCode::SUCCESS)
        }
        Some(_) => bail!("{}", reply.describe()),
    }
}
