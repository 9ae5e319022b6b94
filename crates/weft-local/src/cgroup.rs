//! CPU and memory limits that are real: each limited process of a pod (its sidecar, and its
//! app when the Workload sets `resources`) runs in a cgroup of its own, under
//! `weft.<instance>/` of each controller's hierarchy, with its requests and limits written the
//! way the kubelet writes them, so a limit set too low shows what it shows on a cluster: CPU
//! throttling, an OOM kill.
//!
//! Both hierarchies work: cgroup v2 (one tree, `cpu` and `memory` enabled down to the group)
//! and v1 (a mount per controller: `cpu`, `cpuacct`, `memory`). A machine with neither, or one
//! where groups cannot be made (not root, a read-only mount), runs the processes unlimited and
//! says why ([`Hierarchy::detect`], [`Group::create`]).
//!
//! | setting        | v2                        | v1                                   |
//! |----------------|---------------------------|--------------------------------------|
//! | CPU request    | `cpu.weight`              | `cpu.shares` (1024 a core)           |
//! | CPU limit      | `cpu.max` (100 ms period) | `cpu.cfs_quota_us`/`cpu.cfs_period_us` |
//! | memory request | `memory.low`              | `memory.soft_limit_in_bytes`         |
//! | memory limit   | `memory.max`, no swap     | `memory.limit_in_bytes`, no swap     |

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use weft_core::annotations::ProxySettings;
use weft_core::resources::workload::AppResources;

mod read;

pub use read::Usage;

/// The environment variable through which `weft up` tells `weft pod-exec` the `cgroup.procs`
/// files to join (a path list): a variable, not a flag, so a revision's older binary ignores
/// it (the supervisor moves the process then). The program does not see it.
pub const CGROUP_ENV: &str = "WEFT_CGROUP";

/// The CFS period CPU limits are quotas of (the kubelet's).
const PERIOD_US: u64 = 100_000;

/// A process's requests and limits; none of them is required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request_m: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit_m: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
}

impl Limits {
    /// A proxy's: every one of them is set (the Mesh's defaults fill what annotations leave).
    pub fn proxy(s: &ProxySettings) -> Limits {
        Limits {
            cpu_request_m: Some(s.cpu_request.0),
            cpu_limit_m: Some(s.cpu_limit.0),
            memory_request: Some(s.memory_request.0),
            memory_limit: Some(s.memory_limit.0),
        }
    }

    /// A program's, from its Workload's `resources`: as on Kubernetes, a limit without a
    /// request is its request too.
    pub fn app(r: &AppResources) -> Limits {
        let cpu_limit_m = r.limits.cpu.map(|c| c.0);
        let memory_limit = r.limits.memory.map(|m| m.0);
        Limits {
            cpu_request_m: r.requests.cpu.map(|c| c.0).or(cpu_limit_m),
            cpu_limit_m,
            memory_request: r.requests.memory.map(|m| m.0).or(memory_limit),
            memory_limit,
        }
    }

    /// Whether it limits anything.
    pub fn any(&self) -> bool {
        *self != Limits::default()
    }
}

/// Where the controllers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v2, mounted at `root`, with `cpu` and `memory` available.
    V2 { root: PathBuf },
    /// cgroup v1: each controller's mount (`cpuacct` may share `cpu`'s).
    V1 {
        cpu: PathBuf,
        cpuacct: Option<PathBuf>,
        memory: PathBuf,
    },
}

/// The hierarchy of this machine, looked up once; `Err` says why limits cannot be enforced.
pub fn hierarchy() -> &'static Result<Hierarchy, String> {
    static FOUND: OnceLock<Result<Hierarchy, String>> = OnceLock::new();
    FOUND.get_or_init(Hierarchy::detect)
}

impl Hierarchy {
    /// Finds the controllers from `/proc/self/mountinfo`: v2 when its tree offers both `cpu`
    /// and `memory`, else v1 when both are mounted, else why neither works.
    pub fn detect() -> Result<Hierarchy, String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        Hierarchy::from_mountinfo(&info, |root| {
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default()
        })
    }

    fn from_mountinfo(
        info: &str,
        controllers: impl Fn(&Path) -> String,
    ) -> Result<Hierarchy, String> {
        let (mut v2, mut cpu, mut cpuacct, mut memory) = (None, None, None, None);
        for line in info.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(point) = left.split(' ').nth(4) else {
                continue;
            };
            let point = PathBuf::from(point.replace("\\040", " "));
            let mut fields = right.split(' ');
            let (fstype, options) = (fields.next(), fields.nth(1).unwrap_or(""));
            match fstype {
                Some("cgroup2") => v2 = v2.or(Some(point)),
                Some("cgroup") => {
                    for o in options.split(',') {
                        let slot = match o {
                            "cpu" => &mut cpu,
                            "cpuacct" => &mut cpuacct,
                            "memory" => &mut memory,
                            _ => continue,
                        };
                        slot.get_or_insert(point.clone());
                    }
                }
                _ => {}
            }
        }
        let mut v2_why = None;
        if let Some(root) = v2 {
            let offered = controllers(&root);
            let has = |c: &str| offered.split_whitespace().any(|o| o == c);
            if has("cpu") && has("memory") {
                return Ok(Hierarchy::V2 { root });
            }
            v2_why = Some(format!(
                "cgroup v2 at {} offers [{}], not cpu and memory",
                root.display(),
                offered.trim()
            ));
        }
        match (cpu, memory) {
            (Some(cpu), Some(memory)) => Ok(Hierarchy::V1 {
                cpu,
                cpuacct,
                memory,
            }),
            (cpu, memory) => {
                let missing: Vec<&str> = [("cpu", cpu.is_none()), ("memory", memory.is_none())]
                    .into_iter()
                    .filter(|(_, m)| *m)
                    .map(|(c, _)| c)
                    .collect();
                let v1 = format!(
                    "the cgroup v1 {} controller is not mounted",
                    missing.join(" and ")
                );
                Err(match v2_why {
                    Some(v2) => format!("{v2}, and {v1}"),
                    None => format!("no cgroup v2 is mounted, and {v1}"),
                })
            }
        }
    }

    /// `v2` or `v1`, for messages.
    pub fn version(&self) -> &'static str {
        match self {
            Hierarchy::V2 { .. } => "v2",
            Hierarchy::V1 { .. } => "v1",
        }
    }

    /// The instance's own directory in each controller's hierarchy.
    fn instance_dirs(&self, instance: &str) -> Vec<PathBuf> {
        let name = format!("weft.{instance}");
        let mut dirs: Vec<PathBuf> = match self {
            Hierarchy::V2 { root } => vec![root.join(&name)],
            Hierarchy::V1 {
                cpu,
                cpuacct,
                memory,
            } => [Some(cpu), cpuacct.as_ref(), Some(memory)]
                .into_iter()
                .flatten()
                .map(|m| m.join(&name))
                .collect(),
        };
        dirs.dedup();
        dirs
    }

    /// The group of process `container` (`proxy` or `app`) of pod `namespace/pod`.
    pub fn group(&self, instance: &str, namespace: &str, pod: &str, container: &str) -> Group {
        let leaf = format!("{namespace}.{pod}.{container}");
        let at = |mount: &Path| mount.join(format!("weft.{instance}")).join(&leaf);
        match self {
            Hierarchy::V2 { root } => Group {
                v2: true,
                cpu: at(root),
                cpuacct: at(root),
                memory: at(root),
                parents: vec![root.clone(), root.join(format!("weft.{instance}"))],
            },
            Hierarchy::V1 {
                cpu,
                cpuacct,
                memory,
            } => Group {
                v2: false,
                cpu: at(cpu),
                cpuacct: at(cpuacct.as_ref().unwrap_or(cpu)),
                memory: at(memory),
                parents: self.instance_dirs(instance),
            },
        }
    }

    /// Removes the instance's groups (their processes have exited): at `weft down`, and
    /// before a new start of the same instance. Errors are left: a group still in use stays.
    pub fn remove_instance(&self, instance: &str) {
        for dir in self.instance_dirs(instance) {
            for leaf in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if leaf.path().is_dir() {
                    let _ = std::fs::remove_dir(leaf.path());
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// One process's group: its directory in each controller's hierarchy (the same one in v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    v2: bool,
    cpu: PathBuf,
    cpuacct: PathBuf,
    memory: PathBuf,
    /// The directories made before it: in v2 the root and the instance's, whose
    /// `cgroup.subtree_control` must enable `cpu` and `memory`; in v1 the instance's.
    parents: Vec<PathBuf>,
}

impl Group {
    /// The group's directories, each once.
    fn dirs(&self) -> Vec<&Path> {
        let mut d = vec![
            self.cpu.as_path(),
            self.cpuacct.as_path(),
            self.memory.as_path(),
        ];
        d.sort();
        d.dedup();
        d
    }

    /// Makes the group afresh with `limits` (a group left by an earlier run is replaced: its
    /// process has exited). The error names the file that could not be written.
    pub fn create(&self, limits: &Limits) -> Result<(), String> {
        for parent in &self.parents {
            mkdir(parent)?;
            if self.v2 {
                write(&parent.join("cgroup.subtree_control"), "+cpu +memory")?;
            }
        }
        for dir in self.dirs() {
            let _ = std::fs::remove_dir(dir);
            mkdir(dir)?;
        }
        for (path, value) in self.settings(limits) {
            if optional(&path) && !path.exists() {
                continue;
            }
            write(&path, &value)?;
        }
        Ok(())
    }

    /// The files to write and their values.
    fn settings(&self, l: &Limits) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let (cpu, mem) = (&self.cpu, &self.memory);
        // The kubelet's: 1024 shares a core, at least 2; weight 1–10000 from those shares.
        let shares = l.cpu_request_m.map(|m| (m * 1024 / 1000).max(2));
        let quota = l.cpu_limit_m.map(|m| (m * PERIOD_US / 1000).max(1000));
        if self.v2 {
            if let Some(s) = shares {
                let weight = 1 + (s.min(262_144) - 2) * 9999 / 262_142;
                out.push((cpu.join("cpu.weight"), weight.to_string()));
            }
            let max = quota.map_or("max".to_string(), |q| q.to_string());
            out.push((cpu.join("cpu.max"), format!("{max} {PERIOD_US}")));
            if let Some(r) = l.memory_request {
                out.push((mem.join("memory.low"), r.to_string()));
            }
            if let Some(m) = l.memory_limit {
                out.push((mem.join("memory.max"), m.to_string()));
                out.push((mem.join("memory.swap.max"), "0".into()));
            }
        } else {
            if let Some(s) = shares {
                out.push((cpu.join("cpu.shares"), s.to_string()));
            }
            if let Some(q) = quota {
                out.push((cpu.join("cpu.cfs_period_us"), PERIOD_US.to_string()));
                out.push((cpu.join("cpu.cfs_quota_us"), q.to_string()));
            }
            if let Some(r) = l.memory_request {
                out.push((mem.join("memory.soft_limit_in_bytes"), r.to_string()));
            }
            if let Some(m) = l.memory_limit {
                out.push((mem.join("memory.limit_in_bytes"), m.to_string()));
                // No swap to hide in: past its limit a process is killed, as on a node.
                out.push((mem.join("memory.swappiness"), "0".into()));
                out.push((mem.join("memory.memsw.limit_in_bytes"), m.to_string()));
            }
        }
        out
    }

    /// The `cgroup.procs` files a process is written into to join the group ([`join`]).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Removes the group once its process has exited.
    pub fn remove(&self) {
        for dir in self.dirs() {
            let _ = std::fs::remove_dir(dir);
        }
    }

    /// Whether the group exists (its process runs, or ran, limited).
    pub fn exists(&self) -> bool {
        self.memory.is_dir()
    }
}

/// Files that only some kernels have (swap accounting off, no swap): skipped when absent.
fn optional(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    matches!(
        name,
        "memory.swap.max" | "memory.memsw.limit_in_bytes" | "memory.swappiness" | "memory.low"
    )
}

fn mkdir(dir: &Path) -> Result<(), String> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(format!("cannot create cgroup {}: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value)
        .map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
}

/// Moves process `pid` into each of its groups (`weft pod-exec --cgroup` moves itself before
/// it becomes the pod's program, so all the program allocates is counted).
pub fn join(procs: &[PathBuf], pid: u32) -> anyhow::Result<()> {
    for file in procs {
        std::fs::write(file, pid.to_string())
            .map_err(|e| anyhow::anyhow!("joining cgroup {}: {e}", file.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
