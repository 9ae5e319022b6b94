//! The launch contract between the local runtime and the `weft` binary it starts: typed
//! [`ProxyLaunch`] (sidecar or gateway), [`NodeLaunch`] (node proxy), [`WaypointLaunch`] and
//! [`ControlLaunch`]
//! values whose `to_args()` give the argv after the binary. The CLI's unit tests parse these back with its own parser, so a
//! renamed flag on either side fails a test instead of a mesh.
//!
//! Every one of them logs JSON lines ([`JSON_LOGS`]): one flat object per line, for `weft logs`,
//! log shippers and tests to read.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use weft_core::duration::Duration;

/// The flag and value every process `weft up` starts is given: its log is JSON lines.
pub const JSON_LOGS: [&str; 2] = ["--log-format", "json"];

/// Whether `args` asks for JSON logs ([`JSON_LOGS`]): the launcher of a pod's process writes
/// its own error in the same format, into the same log.
pub fn logs_json(args: &[String]) -> bool {
    args.windows(2).any(|w| w == JSON_LOGS)
}

/// `weft proxy ...` as the local runtime starts it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyLaunch {
    /// `https://HOST:PORT` of the control plane's mTLS discovery.
    pub control_plane: String,
    /// The mesh root to pin.
    pub ca_root: PathBuf,
    pub trust_domain: String,
    pub namespace: String,
    pub workload: String,
    pub pod: String,
    pub ip: IpAddr,
    pub service_account: String,
    pub labels: Vec<(String, String)>,
    /// Socket mark on the proxy's own connections (capture lets them pass).
    pub mark: Option<u32>,
    pub log_level: Option<String>,
    pub concurrency: Option<u32>,
    pub bootstrap_token_file: PathBuf,
    /// Serve an ingress Gateway instead of a workload's traffic.
    pub gateway: Option<GatewayLaunch>,
    pub admin: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    pub readiness: Option<SocketAddr>,
    /// Where to report what it bound ([`crate::addresses::ProxyAddresses`]).
    pub addresses_file: Option<PathBuf>,
    /// The control-plane revision the proxy belongs to.
    pub revision: Option<String>,
}

/// The gateway role of a [`ProxyLaunch`].
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayLaunch {
    /// The Gateway's namespace and name.
    pub namespace: String,
    pub name: String,
    /// Gateway listener port → host address to bind.
    pub listen: Vec<(u16, SocketAddr)>,
}

impl ProxyLaunch {
    /// The argv after the binary, starting with `proxy`.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = Args(vec!["proxy".into()]);
        a.flag("--control-plane", &self.control_plane);
        a.flag("--ca-root", self.ca_root.display());
        a.flag("--trust-domain", &self.trust_domain);
        a.flag("--namespace", &self.namespace);
        a.flag("--workload", &self.workload);
        a.flag("--pod", &self.pod);
        a.flag("--ip", self.ip);
        a.flag("--service-account", &self.service_account);
        for (k, v) in &self.labels {
            a.flag("--label", format!("{k}={v}"));
        }
        a.opt("--mark", self.mark);
        a.opt("--log-level", self.log_level.as_ref());
        a.flag(JSON_LOGS[0], JSON_LOGS[1]);
        a.opt("--concurrency", self.concurrency);
        a.flag(
            "--bootstrap-token-file",
            self.bootstrap_token_file.display(),
        );
        if let Some(g) = &self.gateway {
            a.flag("--gateway", format!("{}/{}", g.namespace, g.name));
            for (port, addr) in &g.listen {
                a.flag("--listen", format!("{port}={addr}"));
            }
        }
        a.opt("--admin", self.admin);
        a.opt("--metrics", self.metrics);
        a.opt("--readiness", self.readiness);
        a.opt(
            "--addresses-file",
            self.addresses_file.as_ref().map(|p| p.display()),
        );
        a.opt("--revision", self.revision.as_ref());
        a.0
    }
}

/// `weft proxy --node ...` as the local runtime starts it: the node proxy of one node, serving
/// the ambient pods listed in its enrolment file.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLaunch {
    /// `https://HOST:PORT` of the control plane's mTLS discovery.
    pub control_plane: String,
    /// The mesh root to pin.
    pub ca_root: PathBuf,
    pub trust_domain: String,
    /// The node's name, as its credential registers it.
    pub node: String,
    /// The node's address: where the node proxy connects to the control plane from.
    pub ip: IpAddr,
    /// The enrolled pods (`{"pods": [...]}`), written by the runtime.
    pub enrolled: PathBuf,
    /// Socket mark on the node proxy's connections inside the pods (capture lets them pass).
    pub mark: u32,
    pub log_level: Option<String>,
    /// The node's credential.
    pub bootstrap_token_file: PathBuf,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
    pub readiness: SocketAddr,
    /// Where to report what it bound ([`crate::addresses::ProxyAddresses`]).
    pub addresses_file: Option<PathBuf>,
    /// The hand-off path (a Unix socket): take the listeners of the node proxy there, if one
    /// answers, and listen there for the next one.
    pub handoff: Option<PathBuf>,
    /// The control-plane revision the node proxy belongs to.
    pub revision: Option<String>,
}

impl NodeLaunch {
    /// The argv after the binary, starting with `proxy`.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = Args(vec!["proxy".into()]);
        a.flag("--node", &self.node);
        a.flag("--enrolled", self.enrolled.display());
        a.flag("--ip", self.ip);
        a.flag("--control-plane", &self.control_plane);
        a.flag("--ca-root", self.ca_root.display());
        a.flag("--trust-domain", &self.trust_domain);
        a.flag("--mark", self.mark);
        a.opt("--log-level", self.log_level.as_ref());
        a.flag(JSON_LOGS[0], JSON_LOGS[1]);
        a.flag(
            "--bootstrap-token-file",
            self.bootstrap_token_file.display(),
        );
        a.flag("--admin", self.admin);
        a.flag("--metrics", self.metrics);
        a.flag("--readiness", self.readiness);
        a.opt(
            "--addresses-file",
            self.addresses_file.as_ref().map(|p| p.display()),
        );
        a.opt("--handoff", self.handoff.as_ref().map(|p| p.display()));
        a.opt("--revision", self.revision.as_ref());
        a.0
    }
}

/// `weft proxy --waypoint ...` as the local runtime starts it, inside the waypoint's pod.
#[derive(Debug, Clone, PartialEq)]
pub struct WaypointLaunch {
    /// `https://HOST:PORT` of the control plane's mTLS discovery.
    pub control_plane: String,
    /// The mesh root to pin.
    pub ca_root: PathBuf,
    pub trust_domain: String,
    /// The waypoint Gateway's namespace and name.
    pub namespace: String,
    pub name: String,
    /// The pod it runs in, and its address.
    pub pod: String,
    pub ip: IpAddr,
    pub log_level: Option<String>,
    pub bootstrap_token_file: PathBuf,
    pub tunnel: SocketAddr,
    pub admin: SocketAddr,
    pub metrics: SocketAddr,
    pub readiness: SocketAddr,
    /// The control-plane revision the waypoint belongs to.
    pub revision: Option<String>,
}

impl WaypointLaunch {
    /// The argv after the binary, starting with `proxy`.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = Args(vec!["proxy".into()]);
        a.flag("--waypoint", format!("{}/{}", self.namespace, self.name));
        a.flag("--namespace", &self.namespace);
        a.flag("--pod", &self.pod);
        a.flag("--ip", self.ip);
        a.flag("--control-plane", &self.control_plane);
        a.flag("--ca-root", self.ca_root.display());
        a.flag("--trust-domain", &self.trust_domain);
        a.opt("--log-level", self.log_level.as_ref());
        a.flag(JSON_LOGS[0], JSON_LOGS[1]);
        a.flag(
            "--bootstrap-token-file",
            self.bootstrap_token_file.display(),
        );
        a.flag("--tunnel", self.tunnel);
        a.flag("--admin", self.admin);
        a.flag("--metrics", self.metrics);
        a.flag("--readiness", self.readiness);
        a.opt("--revision", self.revision.as_ref());
        a.0
    }
}

/// The environment variable through which `weft up` tells its control planes where the
/// mesh's events go (`weft control --events-file`): an environment variable, not a flag, so a
/// revision running an older binary ignores it rather than refusing to start.
pub const EVENTS_ENV: &str = "WEFT_EVENTS_FILE";

/// `weft control ...` as the local runtime starts it.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlLaunch {
    pub config_dir: PathBuf,
    /// Plaintext discovery, for tools on the host.
    pub discovery: SocketAddr,
    /// mTLS discovery and CA, for the proxies.
    pub secure_discovery: SocketAddr,
    pub admin: SocketAddr,
    pub warmup: Duration,
    /// The runtime's list of pods, served as endpoints.
    pub pods_file: PathBuf,
    /// Where the CA keeps its root.
    pub state_dir: PathBuf,
    /// The proxies' bootstrap credentials.
    pub bootstrap: PathBuf,
    /// Where to report what it bound ([`crate::addresses::ControlAddresses`]).
    pub addresses_file: Option<PathBuf>,
    /// Sign with this CA (the mesh's root, shared by every revision) instead of one of its own.
    pub ca_cert: Option<PathBuf>,
    pub ca_key: Option<PathBuf>,
    /// That revision's mesh settings (`key=value`).
    pub sets: Vec<String>,
    /// The revision the control plane serves (proxies of another are refused).
    pub revision: Option<String>,
}

impl ControlLaunch {
    /// The argv after the binary, starting with `control`.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = Args(vec!["control".into()]);
        a.flag(JSON_LOGS[0], JSON_LOGS[1]);
        a.flag("--config", self.config_dir.display());
        a.flag("--discovery", self.discovery);
        a.flag("--secure-discovery", self.secure_discovery);
        a.flag("--admin", self.admin);
        a.flag("--warmup", self.warmup);
        a.flag("--pods", self.pods_file.display());
        a.flag("--state-dir", self.state_dir.display());
        a.flag("--bootstrap", self.bootstrap.display());
        a.opt(
            "--addresses-file",
            self.addresses_file.as_ref().map(|p| p.display()),
        );
        a.opt("--ca-cert", self.ca_cert.as_ref().map(|p| p.display()));
        a.opt("--ca-key", self.ca_key.as_ref().map(|p| p.display()));
        a.opt("--revision", self.revision.as_ref());
        for s in &self.sets {
            a.flag("--set", s);
        }
        a.0
    }
}

/// An argv under construction.
struct Args(Vec<String>);

impl Args {
    fn flag(&mut self, name: &str, value: impl std::fmt::Display) {
        self.0.push(name.to_string());
        self.0.push(value.to_string());
    }

    fn opt(&mut self, name: &str, value: Option<impl std::fmt::Display>) {
        if let Some(v) = value {
            self.flag(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_flags_are_left_out_and_labels_repeat() {
        let launch = ProxyLaunch {
            control_plane: "https://198.18.0.1:15012".into(),
            ca_root: "/run/weft/m/state/ca/root-cert.pem".into(),
            trust_domain: "cluster.local".into(),
            namespace: "shop".into(),
            workload: "cart".into(),
            pod: "cart-0".into(),
            ip: [198, 18, 0, 2].into(),
            service_account: "cart".into(),
            labels: vec![("app".into(), "cart".into()), ("v".into(), "1".into())],
            mark: None,
            log_level: None,
            concurrency: None,
            bootstrap_token_file: "/t".into(),
            gateway: None,
            admin: None,
            metrics: None,
            readiness: None,
            addresses_file: None,
            revision: None,
        };
        let args = launch.to_args();
        assert_eq!(args[0], "proxy");
        let labels: Vec<&str> = args
            .windows(2)
            .filter(|w| w[0] == "--label")
            .map(|w| w[1].as_str())
            .collect();
        assert_eq!(labels, ["app=cart", "v=1"]);
        for absent in [
            "--mark",
            "--gateway",
            "--admin",
            "--log-level",
            "--addresses-file",
            "--revision",
        ] {
            assert!(!args.iter().any(|a| a == absent), "{absent} in {args:?}");
        }
        let canary = ProxyLaunch {
            revision: Some("canary".into()),
            ..launch
        }
        .to_args();
        assert!(canary.ends_with(&["--revision".into(), "canary".into()]));
    }
}
