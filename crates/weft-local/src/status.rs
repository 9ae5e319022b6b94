//! Live status of a running instance, written by `weft up` and read by `weft get`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub pid: u32,
    pub started_at_ms: u64,
    /// `starting`, `running` or `stopping`.
    pub phase: String,
    /// The control planes, one per revision, in install order (an uninstalled one stays,
    /// `uninstalled`, so indexes do not move).
    #[serde(default)]
    pub revisions: Vec<Named>,
    pub gateways: Vec<Named>,
    /// The node proxies, by node name (one starts when its node first has an ambient pod).
    #[serde(default)]
    pub nodes: Vec<Named>,
    pub pods: Vec<PodStatus>,
    /// The Prometheus `weft up --prometheus` runs, if it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Named>,
    /// Changes in the configuration directory that the running mesh refused to apply (it
    /// applies them at its next start), one line each naming the field and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// Whether the pods' CPU and memory limits are enforced (`enforced (cgroup v1)`), or why
    /// not (`not enforced: …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Named {
    pub name: String,
    pub process: Process,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub namespace: String,
    pub name: String,
    pub workload: String,
    pub ip: String,
    /// The pod's dataplane mode: `sidecar`, `ambient` or `none`.
    #[serde(default)]
    pub mode: String,
    /// Whether it has a sidecar (mode `sidecar`).
    pub sidecar: bool,
    /// The node the pod runs on.
    #[serde(default)]
    pub node: String,
    /// In ambient mode, the node proxy that serves the pod now (its node's), if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
    /// Its proxy: the sidecar process; in ambient mode, its node proxy serving it (`ready`
    /// while it does: no pid of its own); `none` without a proxy.
    pub proxy: Process,
    pub app: Process,
    /// The revision its proxy runs on (its sidecar's, or a waypoint's own); empty when the
    /// pod has no proxy of its own.
    #[serde(default)]
    pub revision: String,
    /// The revision its labels (or an upgrade's pin) ask for now; empty when they name none
    /// (`revision_problem` says why).
    #[serde(default)]
    pub wanted_revision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_problem: Option<String>,
    /// Being restarted: out of the endpoints, so no new request reaches it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminating: bool,
    /// Without a sidecar: how the pod reaches Service addresses, and which have no endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<String>,
    /// Why the pod is not ready, as of the last change of its status ([`PodStatus::not_ready`]);
    /// none while it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What fixes it, when that is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Gone from the configuration and stopped: kept in the running mesh's list (indexes do
    /// not move), never written out.
    #[serde(skip)]
    pub removed: bool,
}

/// One supervised process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// `waiting` (for its proxy), `starting`, `running` (started, not ready: before its first
    /// readiness pass or after failing it), `ready`, `restarting`, `stopped`, `enrolling` (an
    /// ambient pod its node proxy does not serve yet), `releasing` (one its node proxy is
    /// letting go), or `none` (no such process: a pod without a proxy).
    pub state: String,
    pub pid: Option<u32>,
    /// `/proc/PID/stat` start time, so a leftover is only killed if it is still the same process.
    pub start_ticks: Option<u64>,
    pub restarts: u32,
    /// How the last run ended, e.g. `exited with status 1`.
    pub last_exit: Option<String>,
    /// When the last run ended.
    #[serde(default)]
    pub exited_at_ms: Option<u64>,
    pub started_at_ms: Option<u64>,
    /// When the current run first passed its readiness check.
    pub ready_at_ms: Option<u64>,
    /// Why its readiness check fails, while it is not ready ([`crate::readiness`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What fixes that, when the check knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// While `restarting`: when it starts again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_start_at_ms: Option<u64>,
}

impl PodStatus {
    /// Whether the pod takes traffic: its app is ready, and its proxy (sidecar, or its node's
    /// serving it) if it has one.
    pub fn ready(&self) -> bool {
        let proxied = matches!(self.mode.as_str(), "sidecar" | "ambient");
        !self.removed
            && !self.terminating
            && self.app.state == "ready"
            && (!proxied || self.proxy.state == "ready")
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}
