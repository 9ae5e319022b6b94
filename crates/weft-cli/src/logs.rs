//! `weft logs POD [--proxy]`: a pod's app or proxy log (`control`, `gateway-NS-NAME` and a
//! node's proxy, by the node's name, too).

use std::io::{Read, Seek, Write};
use std::process::ExitCode;
use std::time::Duration;

use crate::up::Instance;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod (`cart-0` or `shop/cart-0`), `control`, `gateway-NS-NAME`, or a node (`node-1`):
    /// its node proxy's log.
    pod: String,
    /// The pod's proxy log instead of its app's.
    #[arg(long)]
    proxy: bool,
    /// Keep printing as the log grows.
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    instance: Instance,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let is_pod = plan.pod(&args.pod).is_some();
    let path = if args.pod == "control" || args.pod.starts_with("gateway-") {
        dir.log(&args.pod)
    } else if !is_pod && plan.nodes.contains(&args.pod) {
        dir.log(&format!("nodes/{}", args.pod))
    } else {
        let p = crate::running::pod(&plan, &args.pod, ", a node, or `control`")?;
        if args.proxy && p.ambient() {
            anyhow::bail!(
                "pod {} is in ambient mode: its proxy is node {}'s; `weft logs {}` shows that log",
                p.id(),
                p.node,
                p.node
            );
        }
        let suffix = if args.proxy { ".proxy" } else { "" };
        dir.log(&format!("{}/{}{suffix}", p.namespace, p.name))
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("({} has not written anything yet)", args.pod);
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut file, &mut out)?;
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Until interrupted: print what the log gains.
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)?;
        out.write_all(&buf)?;
        out.flush()?;
        let pos = file.stream_position()?;
        file.seek(std::io::SeekFrom::Start(pos))?;
    }
}
