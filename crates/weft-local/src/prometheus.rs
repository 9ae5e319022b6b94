//! Prometheus for a `weft up` mesh. Every mesh gets, in `/run/weft/NAME/prometheus/`:
//!
//! - `targets.json`: Prometheus file-based service discovery, one entry per proxy that serves
//!   `/metrics` now — sidecars whose proxy is ready, waypoint pods, ingress gateways and node
//!   proxies (ambient pods are counted on their node proxy's page) — labelled `mesh`,
//!   `namespace`, `pod`, `workload` and `role`. A pod with `weft.dev/metrics: "false"` is not a
//!   target. [`Scrape`] rewrites it atomically from the status board whenever that set changes.
//! - `prometheus.yml`: a ready configuration scraping those targets ([`config`]).
//!
//! With `--prometheus`, `weft up` also runs a real Prometheus on that configuration ([`spec`]),
//! its storage in the same directory, supervised like the mesh's own processes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::{Plan, PrometheusPlan};
use crate::readiness::Probe;
use crate::rundir::{RunDir, write_atomic};
use crate::runtime::{NODE_ACCOUNT, NODE_NAMESPACE, gateway_pod, host_port_offset};
use crate::status::Status;
use crate::supervise::{Slot, Spec};

/// Where `--prometheus` serves its UI and query API by default (on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 9090;
/// The Debian (and Ubuntu) package with the Prometheus server.
const PACKAGE: &str = "prometheus";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "--prometheus runs the Prometheus server, and no `prometheus` executable is on PATH; \
         install it (Debian, Ubuntu: `apt-get install {PACKAGE}`) or leave out --prometheus \
         and point a Prometheus of your own at {0}"
    )]
    Missing(String),
}

/// The `prometheus` executable on `PATH` (Debian's package installs `/usr/bin/prometheus`).
pub fn find_binary() -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    find_in(&path)
}

/// The `prometheus` executable in the directories of `path` (a `PATH` value).
fn find_in(path: &std::ffi::OsStr) -> Result<PathBuf, Error> {
    std::env::split_paths(path)
        .map(|d| d.join("prometheus"))
        .find(|p| is_executable(p))
        .ok_or_else(|| Error::Missing("/run/weft/NAME/prometheus/prometheus.yml".into()))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The directory of the mesh's Prometheus files.
pub fn dir(run: &RunDir) -> PathBuf {
    run.path.join("prometheus")
}

pub fn targets_file(run: &RunDir) -> PathBuf {
    dir(run).join("targets.json")
}

pub fn config_file(run: &RunDir) -> PathBuf {
    dir(run).join("prometheus.yml")
}

/// One entry of a file-based service discovery file: addresses to scrape and their labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl Target {
    fn new(addr: SocketAddr, mesh: &str, namespace: &str, pod: &str, workload: &str) -> Self {
        Target {
            targets: vec![addr.to_string()],
            labels: [
                ("mesh", mesh),
                ("namespace", namespace),
                ("pod", pod),
                ("workload", workload),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }

    fn role(mut self, role: &str) -> Self {
        self.labels.insert("role".into(), role.into());
        self
    }
}

/// Every proxy of the mesh that serves metrics now: ready gateways, ready node proxies, pods
/// whose sidecar is ready and ready waypoint pods, unless their metrics are off.
pub fn targets(plan: &Plan, status: &Status) -> Vec<Target> {
    let mesh = plan.name.as_str();
    let on_host = |i: usize, node: bool| {
        let port = plan.metrics_port.saturating_add(host_port_offset(i, node));
        SocketAddr::from((plan.host_ip, port))
    };
    let ready = |state: &str| state == "ready";
    let gateways = (plan.gateways.iter().zip(&status.gateways).enumerate())
        .filter(|(_, (_, s))| ready(&s.process.state))
        .map(|(i, (g, _))| {
            Target::new(
                on_host(i, false),
                mesh,
                &g.namespace,
                &gateway_pod(g),
                &g.name,
            )
            .role("gateway")
        });
    let nodes = (plan.nodes.iter().zip(&status.nodes).enumerate())
        .filter(|(_, (_, s))| ready(&s.process.state))
        .map(|(i, (n, _))| {
            // The workload its credential registers, as the control plane knows it.
            Target::new(on_host(i, true), mesh, NODE_NAMESPACE, n, NODE_ACCOUNT).role("node")
        });
    let pods = (plan.pods.iter().zip(&status.pods))
        .filter(|(p, s)| p.metrics && !s.removed)
        .filter_map(|(p, s)| {
            let role = match s.mode.as_str() {
                "sidecar" if ready(&s.proxy.state) => "sidecar",
                "waypoint" if ready(&s.app.state) => "waypoint",
                _ => return None,
            };
            let addr = SocketAddr::from((p.ip, plan.metrics_port));
            Some(Target::new(addr, mesh, &p.namespace, &p.name, &p.workload).role(role))
        });
    gateways.chain(nodes).chain(pods).collect()
}

/// Keeps `targets.json` current: the board hands it every status change, and it rewrites the
/// file (temporary file, then rename: Prometheus never reads half of one) when the set of
/// targets changed.
#[derive(Debug)]
pub struct Scrape {
    plan: Plan,
    file: PathBuf,
    written: Option<Vec<Target>>,
}

impl Scrape {
    /// Writes `prometheus.yml`; `targets.json` follows with the first status.
    pub fn new(plan: Plan, run: &RunDir) -> anyhow::Result<Scrape> {
        std::fs::create_dir_all(dir(run))?;
        write_atomic(&config_file(run), config(&plan, run).as_bytes())?;
        Ok(Scrape {
            plan,
            file: targets_file(run),
            written: None,
        })
    }

    /// Follows `plan` from now on (pods were added or removed while the mesh runs).
    pub fn replan(&mut self, plan: Plan) {
        self.plan = plan;
    }

    pub fn update(&mut self, status: &Status) -> anyhow::Result<()> {
        let now = targets(&self.plan, status);
        if self.written.as_ref() == Some(&now) {
            return Ok(());
        }
        write_atomic(&self.file, &serde_json::to_vec_pretty(&now)?)?;
        self.written = Some(now);
        Ok(())
    }
}

/// How often Prometheus scrapes (and re-reads `targets.json`): a local mesh has a handful of
/// targets on one machine, so scraping often costs little, and a change shows within seconds.
const INTERVAL: &str = "5s";

/// `prometheus.yml` for the mesh: one job, `weft`, over `targets.json`.
pub fn config(plan: &Plan, run: &RunDir) -> String {
    let targets = serde_json::to_string(&targets_file(run).display().to_string())
        .unwrap_or_else(|_| "\"targets.json\"".into());
    let name = &plan.name;
    format!(
        r#"# Written by `weft up` for mesh "{name}": scrapes every proxy of the mesh that serves
# /metrics. `weft up --prometheus` runs Prometheus on it; a Prometheus of your own can use it
# as it is (prometheus --config.file=THIS_FILE).
global:
  # A local mesh: a handful of targets on one machine, so scraping often costs little, and a
  # rate over [1m] already has a dozen samples a few seconds after traffic starts.
  scrape_interval: {INTERVAL}
  evaluation_interval: {INTERVAL}
scrape_configs:
  - job_name: weft
    metrics_path: /metrics
    # `weft up` rewrites targets.json whenever a proxy starts or stops serving metrics:
    # sidecars, waypoints, ingress gateways and node proxies.
    file_sd_configs:
      - files: [{targets}]
        refresh_interval: {INTERVAL}
    # The labels of each target in targets.json (mesh, namespace, pod, workload, role) are
    # target labels: Prometheus puts them on every series scraped from it, no relabelling needed.
"#
    )
}

/// The supervised Prometheus: `p.binary` on `prometheus.yml`, its storage in the run
/// directory, listening on `p.listen`; ready once `GET /-/ready` answers 200.
pub fn spec(p: &PrometheusPlan, run: &RunDir) -> Spec {
    let flag = |name: &str, value: &dyn std::fmt::Display| format!("--{name}={value}");
    let argv = vec![
        p.binary.display().to_string(),
        flag("config.file", &config_file(run).display()),
        flag("storage.tsdb.path", &dir(run).join("data").display()),
        // The run directory is a tmpfs: keep a day at most.
        flag("storage.tsdb.retention.time", &"1d"),
        flag("web.listen-address", &p.listen),
    ];
    Spec {
        label: "prometheus".into(),
        slot: Slot::Prometheus,
        argv,
        env: vec![],
        cwd: Some(dir(run)),
        pod: None,
        weft: p.binary.clone(),
        log: run.log("prometheus"),
        ready: Some(Probe::Http(p.listen, "/-/ready")),
        addresses: None,
        grace: Duration::from_secs(10),
        limits: None,
    }
}

/// `http://ADDR/`, where a person opens Prometheus.
pub fn url(p: &PrometheusPlan) -> String {
    format!("http://{}/", p.listen)
}

#[cfg(test)]
mod tests;
