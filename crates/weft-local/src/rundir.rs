//! The runtime directory of one `weft up` instance, `/run/weft/<name>/`: its lock, the plan it
//! runs (so `weft down` and the next `weft up` know what to remove), live status, the addresses
//! its processes bound, hosts files and logs. `/run` is a tmpfs, so nothing here outlives a reboot, and neither do namespaces.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

use crate::plan::Plan;
use crate::status::Status;

/// Where instances keep their runtime directories (`WEFT_RUN_DIR` overrides it).
pub fn root() -> PathBuf {
    std::env::var_os("WEFT_RUN_DIR").map_or_else(|| PathBuf::from("/run/weft"), PathBuf::from)
}

#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

/// Held while an instance runs; dropping it releases the lock.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] Flock<File>);

impl RunDir {
    pub fn new(name: &str) -> RunDir {
        RunDir {
            path: root().join(name),
        }
    }

    /// Every instance with a runtime directory.
    pub fn all() -> Vec<RunDir> {
        let mut out: Vec<RunDir> = std::fs::read_dir(root())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| RunDir { path: e.path() })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Takes the instance lock, or says which process holds it.
    pub fn lock(&self) -> anyhow::Result<Lock> {
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("creating {}", self.path.display()))?;
        let path = self.path.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                lock.set_len(0)?;
                writeln!(lock, "{}", std::process::id())?;
                Ok(Lock(lock))
            }
            Err((_, _)) => {
                let pid = self.owner().map_or("?".to_string(), |p| p.to_string());
                anyhow::bail!(
                    "weft up {:?} is already running (pid {pid}); stop it with `weft down --name {}` or start this one with another --name",
                    self.name(),
                    self.name()
                )
            }
        }
    }

    /// The pid of the `weft up` holding the lock, if one does.
    pub fn owner(&self) -> Option<i32> {
        let file = File::open(self.path.join("lock")).ok()?;
        match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(_) => None,
            Err((_, _)) => std::fs::read_to_string(self.path.join("lock"))
                .ok()?
                .trim()
                .parse()
                .ok(),
        }
    }

    /// Writes the plan in force, without the pods removed while it runs.
    pub fn write_plan(&self, plan: &Plan) -> anyhow::Result<()> {
        write_atomic(
            &self.path.join("plan.json"),
            &serde_json::to_vec_pretty(&plan.visible())?,
        )
    }

    pub fn plan(&self) -> Option<Plan> {
        let bytes = std::fs::read(self.path.join("plan.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write_status(&self, status: &Status) -> anyhow::Result<()> {
        write_atomic(
            &self.path.join("status.json"),
            &serde_json::to_vec_pretty(status)?,
        )
    }

    pub fn write_pods(&self, pods: &weft_core::model::PodList) -> anyhow::Result<()> {
        write_atomic(
            &Plan::pods_file(&self.path),
            &serde_json::to_vec_pretty(pods)?,
        )
    }

    pub fn status(&self) -> Option<Status> {
        let bytes = std::fs::read(self.path.join("status.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Files the pods of `namespace` see in `/etc` (hosts, resolv.conf).
    pub fn etc_dir(&self, namespace: &str) -> PathBuf {
        self.path.join("etc").join(namespace)
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.path.join("logs").join(format!("{name}.log"))
    }

    /// The mesh's events, JSON lines written by `weft up` and its control planes
    /// ([`weft_core::events`]).
    pub fn events(&self) -> PathBuf {
        self.path.join("events.jsonl")
    }

    /// Where the process `who` reports the addresses it bound ([`crate::addresses`]).
    pub fn addresses(&self, who: &str) -> PathBuf {
        self.path.join("addresses").join(format!("{who}.json"))
    }

    /// Every real address of the running instance, as `weft up` gathered them once it was up.
    pub fn bound_file(&self) -> PathBuf {
        self.path.join("bound.json")
    }
}

/// Writes `path` whole: a temporary file beside it, then a rename, so no reader sees half.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The last `n` lines of a log file, for reports of a crashed process.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}
