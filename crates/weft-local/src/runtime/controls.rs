//! The control planes of a running `weft up`, one per installed revision
//! ([`crate::revisions`]), in slots `Slot::Control(i)`. Every one reads the same
//! configuration directory, pods file and bootstrap credentials, and signs with the mesh's one
//! root (the first revision generates it; the others are given it), so proxies of different
//! revisions trust each other. Each binds ephemeral ports and reports them; the conventional
//! addresses — discovery on the bridge (15012) and admin on the host (15014) — lead to the
//! control plane of the `default` tag ([`super::forward`]): that is where the gateways and
//! node proxies, and tools, reach the mesh.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::phase::Phase;
use crate::addresses::{self, ControlAddresses};
use crate::launch::ControlLaunch;
use crate::plan::Plan;
use crate::readiness::Probe;
use crate::revisions::{DEFAULT_TAG, Registry, Revision};
use crate::rundir::RunDir;
use crate::status::{Named, Process};
use crate::supervise::{Board, Report, Slot, Spec};

/// How long a control plane gets to be ready.
const START_WAIT: Duration = Duration::from_secs(20);

/// What a proxy of a revision is started with.
#[derive(Debug, Clone)]
pub(super) struct Serving {
    pub revision: String,
    pub binary: PathBuf,
    /// Its control plane's mTLS discovery and CA.
    pub discovery: SocketAddr,
}

pub(super) struct Controls {
    registry: Mutex<Registry>,
    pub phase: Phase,
    bound: Mutex<BTreeMap<usize, ControlAddresses>>,
    config_dir: PathBuf,
    host: std::net::Ipv4Addr,
    dir: RunDir,
    board: Arc<Board>,
    report: Report,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Controls {
    pub(super) fn new(
        plan: &Plan,
        dir: RunDir,
        board: Arc<Board>,
        report: Report,
        first: Revision,
    ) -> Controls {
        Controls {
            registry: Mutex::new(Registry::first(first)),
            phase: Phase::new(),
            bound: Mutex::new(BTreeMap::new()),
            config_dir: plan.config_dir.clone(),
            host: plan.host_ip,
            dir,
            board,
            report,
        }
    }

    pub(super) fn registry(&self) -> Registry {
        lock(&self.registry).clone()
    }

    /// Changes the registry and writes it; what `f` returned.
    pub(super) fn change<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut reg = lock(&self.registry);
        let out = f(&mut reg);
        if let Err(e) = reg.write(&self.dir) {
            (self.report)(format!("revisions: cannot write the registry: {e}"));
        }
        out
    }

    /// Starts the control plane of revision `i` and waits until it is ready; its addresses.
    pub(super) async fn start(&self, i: usize) -> anyhow::Result<ControlAddresses> {
        let rev = lock(&self.registry).revisions[i].clone();
        self.board.update(|s| {
            if s.revisions.len() <= i {
                s.revisions.resize(i + 1, Named::default());
            }
            s.revisions[i] = Named {
                name: rev.name.clone(),
                process: Process {
                    state: "starting".into(),
                    ..Process::default()
                },
            };
        });
        let spec = self.spec(i, &rev);
        let log = spec.log.clone();
        let ready = self.phase.start(spec, None, &self.board, &self.report);
        // Ready, or given up on: not ready in time, or it exited (a crash at start is not
        // waited out).
        let deadline = tokio::time::Instant::now() + START_WAIT;
        let failed = loop {
            if *ready.borrow() {
                break None;
            }
            let p = self.board.snapshot().revisions[i].process.clone();
            if p.restarts > 0 || p.last_exit.is_some() {
                let exit = p.last_exit.unwrap_or_else(|| "exited".into());
                break Some(format!("exited at start ({exit})"));
            }
            if tokio::time::Instant::now() >= deadline {
                break Some(format!("is not ready after {}s", START_WAIT.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if let Some(why) = failed {
            self.phase.stop_one(Slot::Control(i)).await;
            let tail = last_lines(&log, 3);
            anyhow::bail!(
                "the control plane of revision {} {why}; see {}{tail}",
                rev.name,
                log.display()
            );
        }
        let cp: ControlAddresses = addresses::read(&self.addresses_file(&rev.name))?;
        lock(&self.bound).insert(i, cp.clone());
        Ok(cp)
    }

    /// Stops the control plane of revision `i`.
    pub(super) async fn stop(&self, i: usize) {
        self.phase.stop_one(Slot::Control(i)).await;
        lock(&self.bound).remove(&i);
        self.board
            .process(Slot::Control(i), |p| p.state = "uninstalled".into());
    }

    fn addresses_file(&self, revision: &str) -> PathBuf {
        self.dir.addresses(&format!("control-{revision}"))
    }

    /// Where revision `name` keeps its control plane's state (the first one's holds the
    /// mesh root too).
    pub(super) fn state_dir(&self, i: usize) -> PathBuf {
        match i {
            0 => self.dir.path.join("state"),
            _ => self.dir.path.join(format!("state-{i}")),
        }
    }

    fn spec(&self, i: usize, rev: &Revision) -> Spec {
        let root = Plan::ca_root(&self.dir.path);
        let key = root.with_file_name("root-key.pem");
        let shared = i > 0;
        let launch = ControlLaunch {
            config_dir: self.config_dir.clone(),
            discovery: SocketAddr::from(([127, 0, 0, 1], 0)),
            secure_discovery: SocketAddr::from((self.host, 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            warmup: weft_core::duration::Duration::ZERO,
            pods_file: Plan::pods_file(&self.dir.path),
            state_dir: self.state_dir(i),
            bootstrap: self.dir.path.join("bootstrap.json"),
            addresses_file: Some(self.addresses_file(&rev.name)),
            ca_cert: shared.then(|| root.clone()),
            ca_key: shared.then_some(key),
            revision: Some(rev.name.clone()),
            sets: rev.sets.clone(),
        };
        let argv = std::iter::once(rev.binary.display().to_string())
            .chain(launch.to_args())
            .collect();
        Spec {
            label: format!("control plane {}", rev.name),
            slot: Slot::Control(i),
            argv,
            env: vec![(
                crate::launch::EVENTS_ENV.into(),
                self.dir.events().display().to_string(),
            )],
            cwd: None,
            pod: None,
            weft: rev.binary.clone(),
            log: self.dir.log(&format!("control-{}", rev.name)),
            ready: Some(Probe::ControlAdmin(
                self.addresses_file(&rev.name),
                "/ready",
            )),
            addresses: Some(self.addresses_file(&rev.name)),
            grace: Duration::from_secs(5),
            limits: None,
        }
    }

    /// Revision `name`'s control plane and binary, if it is installed and running.
    pub(super) fn serving(&self, name: &str) -> Option<Serving> {
        let reg = lock(&self.registry);
        let i = reg.index(name)?;
        let cp = lock(&self.bound).get(&i)?.secure_discovery?;
        Some(Serving {
            revision: name.to_string(),
            binary: reg.revisions[i].binary.clone(),
            discovery: cp,
        })
    }

    /// The addresses of the `default` tag's control plane, where the conventional ones lead.
    pub(super) fn default_addresses(&self) -> Option<ControlAddresses> {
        let reg = lock(&self.registry);
        let i = reg.index(reg.tags.get(DEFAULT_TAG)?)?;
        lock(&self.bound).get(&i).cloned()
    }

    /// Every running control plane's admin address, by revision.
    pub(super) fn admins(&self) -> Vec<(String, SocketAddr)> {
        let reg = lock(&self.registry);
        (lock(&self.bound).iter())
            .map(|(i, cp)| (reg.revisions[*i].name.clone(), cp.admin))
            .collect()
    }

    /// Waits until every running control plane put in force the pods file written at
    /// `written_at_ms`; the revisions whose did not within `timeout`.
    pub(super) async fn wait_in_force(&self, written_at_ms: u64, timeout: Duration) -> Vec<String> {
        let mut late = Vec::new();
        for (name, admin) in self.admins() {
            if !crate::registration::wait_in_force(admin, written_at_ms, timeout).await {
                late.push(name);
            }
        }
        late
    }
}

/// The last `n` lines of a log, indented, after a newline; empty when there are none.
fn last_lines(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.iter().rev().map(|l| format!("\n  {l}")).collect()
}

/// What `BINARY version` says: `weft 0.1.0 (discovery protocol 2)` → ("0.1.0", 2). An older
/// weft that does not name its protocol speaks protocol 1.
pub fn identify(binary: &Path) -> Result<(String, u32), String> {
    let shown = binary.display();
    let meta = std::fs::metadata(binary).map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a file"));
    }
    let out = std::process::Command::new(binary)
        .arg("version")
        .output()
        .map_err(|e| format!("{shown}: cannot run it: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("").trim();
    let mut words = line.split_whitespace();
    match (out.status.success(), words.next(), words.next()) {
        (true, Some("weft"), Some(version)) => {
            let protocol = line
                .split("discovery protocol ")
                .nth(1)
                .and_then(|p| p.trim_end_matches(')').trim().parse().ok())
                .unwrap_or(1);
            Ok((version.to_string(), protocol))
        }
        _ => Err(format!(
            "{shown} is not weft: `{shown} version` said {:?}, not `weft VERSION`",
            line
        )),
    }
}
