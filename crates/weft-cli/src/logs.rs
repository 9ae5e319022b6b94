//! `weft logs POD [--proxy] [--tail N] [-f]`: the log of a pod's app or proxy, or of one of the
//! mesh's own pods ([`crate::names`]): a gateway (`shop/gateway-ingress`), a node proxy
//! (`node-1`), a control plane (`control` for the `default` tag's revision, `control-REV`).
//! `--tail` prints only the last lines, and `-f` follows from there, as `tail -f` does. A log
//! with nothing in it says whose it is and what runs there; a pod without a proxy says so.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use weft_local::plan::{Plan, PodPlan};
use weft_local::revisions::{DEFAULT_TAG, Registry};
use weft_local::rundir::RunDir;

use crate::names::Found;
use crate::up::Instance;

/// How many lines `-f` starts with when `--tail` is not given.
const FOLLOW_TAIL: usize = 10;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  weft logs shop/cart-0 --tail 20\n  \
weft logs cart-0 --proxy -f\n  weft logs shop/gateway-ingress\n  weft logs control")]
pub struct Args {
    /// Pod (`shop/cart-0`, or `cart-0` when no other namespace has one), a gateway
    /// (`shop/gateway-ingress`), a node (`node-1`: its node proxy's log), `control` (the
    /// control plane of the revision the `default` tag points at) or `control-REV`.
    pod: String,
    /// The pod's proxy log instead of its app's.
    #[arg(long)]
    proxy: bool,
    /// Keep printing as the log grows (from the last 10 lines, or --tail's).
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    #[command(flatten)]
    instance: Instance,
}

/// The log a name leads to, and what to say when it is empty.
struct Source {
    path: PathBuf,
    empty: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let source = source(&dir, &plan, &args.pod, args.proxy)?;
    let mut file = match std::fs::File::open(&source.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !args.follow => {
            eprintln!("{}", source.empty);
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("{}; waiting for it (-f)", source.empty);
            wait_for(&source.path)?
        }
        Err(e) => return Err(e.into()),
    };
    let len = file.metadata()?.len();
    if len == 0 && !args.follow {
        eprintln!("{}", source.empty);
        return Ok(ExitCode::SUCCESS);
    }
    let lines = args.tail.or(args.follow.then_some(FOLLOW_TAIL));
    let start = match lines {
        Some(n) => tail_offset(&mut file, len, n, CHUNK)?,
        None => 0,
    };
    file.seek(SeekFrom::Start(start))?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut file, &mut out)?;
    out.flush()?;
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
    }
}

/// Opens `path` once it exists.
fn wait_for(path: &Path) -> anyhow::Result<std::fs::File> {
    loop {
        match std::fs::File::open(path) {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The log of `name` (`proxy`: the proxy's rather than the app's).
fn source(dir: &RunDir, plan: &Plan, name: &str, proxy: bool) -> anyhow::Result<Source> {
    let nothing = |who: String| format!("{who} has written nothing yet");
    if let Some(path) = control_log(dir, name)? {
        let empty = nothing(format!("the control plane ({name})"));
        return Ok(Source { path, empty });
    }
    // `gateway-NS-NAME`, the name of a gateway's log file, as before.
    if let Some(g) = (plan.gateways.iter()).find(|g| name == gateway_log(&g.namespace, &g.name)) {
        let path = dir.log(&gateway_log(&g.namespace, &g.name));
        let empty = nothing(format!("gateway {}/{}", g.namespace, g.name));
        return Ok(Source { path, empty });
    }
    let revisions: Vec<String> = dir
        .status()
        .map(|s| s.revisions.into_iter().map(|r| r.name).collect())
        .unwrap_or_default();
    let all = crate::names::entries(plan, &revisions);
    let entry = crate::names::resolve(&all, name)
        .map_err(|e| anyhow::anyhow!("{e}; or `control`, `control-REV`"))?;
    let id = entry.id();
    Ok(match entry.found {
        Found::Pod(p) => return pod_source(dir, p, proxy),
        Found::Gateway(g) => Source {
            path: dir.log(&gateway_log(&g.namespace, &g.name)),
            empty: nothing(format!("gateway {id}")),
        },
        Found::Node(node) => Source {
            path: dir.log(&format!("nodes/{node}")),
            empty: nothing(format!("the node proxy of {node} ({id})"))
                + "; it starts with the node's first ambient pod",
        },
        Found::Control(rev) => Source {
            path: dir.log(&format!("control-{rev}")),
            empty: nothing(format!("the control plane of revision {rev}")),
        },
    })
}

fn gateway_log(namespace: &str, name: &str) -> String {
    format!("gateway-{namespace}-{name}")
}

/// A workload pod's app log, or its proxy's; an error when it has no proxy of its own.
fn pod_source(dir: &RunDir, p: &PodPlan, proxy: bool) -> anyhow::Result<Source> {
    let id = p.id();
    let state = |proxy: bool| {
        let s = dir.status()?;
        let pod = s
            .pods
            .into_iter()
            .find(|s| s.namespace == p.namespace && s.name == p.name)?;
        Some(match proxy {
            true => pod.proxy.state,
            false => pod.app.state,
        })
    };
    let now = |proxy| state(proxy).map_or_else(String::new, |s| format!(" (now {s})"));
    if proxy && !p.sidecar() && !p.waypoint {
        anyhow::bail!(match p.ambient() {
            true => format!(
                "pod {id} is in ambient mode: it has no proxy of its own; node {}'s proxy serves \
                 it: `weft logs {}`",
                p.node, p.node
            ),
            false => format!(
                "pod {id} has no proxy (dataplane mode none): nothing but its app runs there; \
                 `weft logs {id}` shows the app's log"
            ),
        });
    }
    if proxy || p.waypoint {
        let suffix = if p.waypoint { "" } else { ".proxy" };
        return Ok(Source {
            path: dir.log(&format!("{}/{}{suffix}", p.namespace, p.name)),
            empty: format!(
                "the proxy of {id} has written nothing yet{}",
                now(!p.waypoint)
            ),
        });
    }
    let app = state(false);
    let waits = match (app.as_deref(), p.sidecar(), p.ambient()) {
        (Some("waiting"), true, _) => {
            format!("; it starts once its proxy is ready (`weft logs {id} --proxy`)")
        }
        (Some("waiting"), _, true) => format!("; it starts once node {}'s proxy serves it", p.node),
        _ => String::new(),
    };
    Ok(Source {
        path: dir.log(&format!("{}/{}", p.namespace, p.name)),
        empty: format!(
            "the app of {id} has written nothing yet{}; its command is `{}`{waits}",
            app.map_or_else(String::new, |s| format!(" (now {s})")),
            p.command.join(" ")
        ),
    })
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

/// How much is read at a time, from the end, to find where the last lines start.
const CHUNK: u64 = 64 * 1024;

/// Where the last `n` lines of a file of `len` bytes start. A final newline ends the last
/// line; it does not start an empty one.
fn tail_offset<R: Read + Seek>(r: &mut R, len: u64, n: usize, chunk: u64) -> std::io::Result<u64> {
    if n == 0 {
        return Ok(len);
    }
    // The newline that ends the file is not a line start.
    let mut end = len;
    let mut skip_last = true;
    // Newlines seen from the end: the n-th one (not counting the last byte) ends the line
    // before the last n.
    let mut seen = 0;
    let mut buf = vec![0; chunk as usize];
    while end > 0 {
        let from = end.saturating_sub(chunk);
        let part = &mut buf[..(end - from) as usize];
        r.seek(SeekFrom::Start(from))?;
        r.read_exact(part)?;
        for (i, b) in part.iter().enumerate().rev() {
            if *b != b'\n' {
                skip_last = false;
                continue;
            }
            if std::mem::take(&mut skip_last) {
                continue;
            }
            seen += 1;
            if seen == n {
                return Ok(from + i as u64 + 1);
            }
        }
        end = from;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use weft_local::revisions::Revision;

    use super::*;

    fn tail(text: &str, n: usize, chunk: u64) -> String {
        let mut c = Cursor::new(text.as_bytes());
        let at = tail_offset(&mut c, text.len() as u64, n, chunk).unwrap();
        text[at as usize..].to_string()
    }

    /// `--tail N` prints exactly the last N lines, whether or not the log ends with a newline,
    /// however the reads split it.
    #[test]
    fn tail_starts_at_the_last_n_lines() {
        for chunk in [1, 2, 3, 5, 64 * 1024] {
            assert_eq!(tail("a\nb\nc\n", 2, chunk), "b\nc\n", "chunk {chunk}");
            assert_eq!(tail("a\nb\nc", 2, chunk), "b\nc", "chunk {chunk}");
            assert_eq!(tail("a\nb\nc\n", 3, chunk), "a\nb\nc\n");
            assert_eq!(tail("a\nb\nc\n", 10, chunk), "a\nb\nc\n");
            assert_eq!(tail("a\n\n\nb\n", 2, chunk), "\nb\n");
            assert_eq!(tail("a\nb\n", 0, chunk), "");
            assert_eq!(tail("", 3, chunk), "");
            assert_eq!(tail("\n", 1, chunk), "\n");
        }
    }

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
