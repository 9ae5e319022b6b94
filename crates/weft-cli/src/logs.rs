//! `weft logs POD [--proxy]`: a pod's app or proxy log (`control` or `control-REV`,
//! `gateway-NS-NAME` and a node's proxy, by the node's name, too).

use std::io::{Read, Seek, Write};
use std::process::ExitCode;
use std::time::Duration;

use std::path::PathBuf;

use weft_local::revisions::{DEFAULT_TAG, Registry};
use weft_local::rundir::RunDir;

use crate::up::Instance;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod (`cart-0` or `shop/cart-0`), `control` (the control plane of the revision the
    /// `default` tag points at) or `control-REV`, `gateway-NS-NAME`, or a node (`node-1`): its
    /// node proxy's log.
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
    let path = if let Some(path) = control_log(&dir, &args.pod)? {
        path
    } else if args.pod.starts_with("gateway-") {
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

/// The log of control plane `name`: `control` is the `default` tag's revision's, `control-REV`
/// revision REV's; None when `name` is neither.
fn control_log(dir: &RunDir, name: &str) -> anyhow::Result<Option<PathBuf>> {
    let Some(asked) = name.strip_prefix("control") else {
        return Ok(None);
    };
    let registry = Registry::read(dir).unwrap_or_default();
    let revision = match asked.strip_prefix('-') {
        None if asked.is_empty() => registry.tags.get(DEFAULT_TAG).cloned(),
        Some(rev) if registry.get(rev).is_some() => Some(rev.to_string()),
        _ => return Ok(None),
    };
    match revision {
        Some(rev) => Ok(Some(dir.log(&format!("control-{rev}")))),
        None => anyhow::bail!("the mesh names no revision for its control plane"),
    }
}

#[cfg(test)]
mod tests {
    use weft_local::revisions::Revision;

    use super::*;

    /// `control` is the log of the `default` tag's revision, `control-REV` that revision's;
    /// other names (a pod called `controller-0`, an unknown revision) are not control planes.
    #[test]
    fn control_names_the_log_of_a_revisions_control_plane() {
        let tmp = weft_test_support::dir::TempDir::new("logs-control");
        let dir = RunDir {
            path: tmp.path().to_path_buf(),
        };
        let revision = |name: &str| Revision {
            name: name.into(),
            binary: "/usr/bin/weft".into(),
            version: "0.1.0".into(),
            protocol: 2,
            sets: vec![],
            installed_at_ms: 0,
            uninstalled: false,
        };
        let mut registry = Registry::first(revision("v0-1-0"));
        registry.revisions.push(revision("canary"));
        registry.write(&dir).unwrap();
        let log = |name: &str| control_log(&dir, name).unwrap();
        assert_eq!(log("control"), Some(dir.log("control-v0-1-0")));
        assert_eq!(log("control-canary"), Some(dir.log("control-canary")));
        assert_eq!(log("control-gone"), None);
        assert_eq!(log("controller-0"), None);
        assert_eq!(log("cart-0"), None);
    }
}
