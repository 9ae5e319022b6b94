//! `weft pod-exec`: how every process of a pod starts. It joins the pod's network namespace,
//! takes a private mount namespace in which the pod's own files stand in for `/etc/hosts` (so
//! Service names resolve) and `/etc/resolv.conf` (no DNS server to wait for: pods have no
//! route out), and replaces itself with the program, like `ip netns exec`.

use std::os::unix::process::CommandExt;
use std::path::Path;

use anyhow::Context;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};

/// Files of a pod's `etc` directory mounted over the host's `/etc/<name>`.
pub const POD_FILES: [&str; 2] = ["hosts", "resolv.conf"];

/// Enters the pod and runs `argv`; returns only on failure.
pub fn exec_in_pod(
    netns: &Path,
    etc: Option<&Path>,
    cwd: Option<&Path>,
    argv: &[String],
) -> anyhow::Error {
    match enter(netns, etc) {
        Err(e) => e,
        Ok(()) => {
            let Some((program, args)) = argv.split_first() else {
                return anyhow::anyhow!("no command to run");
            };
            let mut cmd = std::process::Command::new(program);
            cmd.args(args).env_remove(crate::cgroup::CGROUP_ENV);
            if let Some(dir) = cwd {
                cmd.current_dir(dir);
            }
            let e = cmd.exec();
            let what = if e.kind() == std::io::ErrorKind::NotFound {
                format!("command {program:?} not found (looked in PATH and the working directory)")
            } else {
                format!("starting {program:?}")
            };
            anyhow::Error::new(e).context(what)
        }
    }
}

fn enter(netns: &Path, etc: Option<&Path>) -> anyhow::Result<()> {
    let ns = std::fs::File::open(netns)
        .with_context(|| format!("opening network namespace {}", netns.display()))?;
    setns(&ns, CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("joining network namespace {}", netns.display()))?;
    let Some(etc) = etc else { return Ok(()) };
    unshare(CloneFlags::CLONE_NEWNS).context("creating a mount namespace")?;
    // Keep the host's later mounts visible but our bind mounts private to the pod.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .context("making / a slave mount")?;
    for name in POD_FILES {
        let (from, to) = (etc.join(name), Path::new("/etc").join(name));
        if !from.exists() || !to.exists() {
            continue;
        }
        mount(
            Some(&from),
            &to,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind-mounting {} on {}", from.display(), to.display()))?;
    }
    Ok(())
}
