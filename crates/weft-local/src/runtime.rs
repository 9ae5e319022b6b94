//! `weft up`: [`start`] sets up the network, starts the control plane, every pod (its proxy
//! first — its sidecar, or its enrolment on its node's proxy — then the app once the proxy is
//! ready) and the ingress gateways, and returns a [`Bound`] with every address they bound; they
//! keep running, following the configuration's dataplane modes, until [`Bound::stop`] stops
//! them in order (gateways, apps, proxies, node proxies, control plane) and removes everything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use self::bound::Teardown;
pub use self::bound::{Addresses, Bound, GatewayAddresses, NodeAddresses, PodAddresses, Readiness};
pub use self::controls::identify;
use self::spec::gateway_spec;
pub(crate) use self::spec::{NODE_ACCOUNT, host_port_offset};
pub use self::spec::{NODE_NAMESPACE, gateway_pod};
use crate::addresses::{self, ControlAddresses};
use crate::cleanup;
use crate::net;
use crate::plan::Plan;
use crate::registration;
use crate::revisions::Revision;
use crate::rundir::RunDir;
use crate::services;
use crate::status::{Named, PodStatus, Process, Status, now_ms};
use crate::supervise::{Board, Report};
use std::sync::Arc;

mod bound;
mod controls;
mod follow;
mod forward;
mod live;
mod network;
mod phase;
mod pods;
mod registry;
mod requests;
mod rollout;
mod sample;
mod spec;

/// Socket mark on the proxies' own connections; capture rules let it pass.
pub const PROXY_MARK: u32 = 0x7765_6674;
/// How long `weft up` waits for every pod before saying which are not ready.
const READY_WAIT: Duration = Duration::from_secs(30);

/// Sets up the network and starts the control plane, every pod and the ingress gateways;
/// returns once they are ready (or [`READY_WAIT`] has passed), with every address they bound.
/// On an error, whatever was started is stopped and removed again before it returns.
pub async fn start(plan: Plan, weft: PathBuf, report: Report) -> anyhow::Result<Bound> {
    require_root()?;
    let dir = RunDir::new(&plan.name);
    let lock = dir.lock()?;
    if dir.plan().is_some() {
        report("removing what an earlier `weft up` of this name left behind".into());
        cleanup::remove(&dir, &report).await;
        std::fs::create_dir_all(&dir.path)?;
    }
    check_conflicts(&plan)?;
    dir.write_plan(&plan)?;
    let (version, protocol) = controls::identify(&weft).map_err(anyhow::Error::msg)?;
    let first = Revision {
        name: plan.revision.clone(),
        binary: weft.clone(),
        version,
        protocol,
        sets: vec![],
        installed_at_ms: now_ms(),
        uninstalled: false,
    };
    let pods = plan.pods.iter().map(|p| p.pod()).collect();
    let board = Board::new(initial_status(&plan), dir.clone(), pods);
    let mut teardown = Teardown::new(plan, dir, board, report, lock, weft.clone(), first);
    let sampler = sample::run(teardown.board.clone(), teardown.dir.clone());
    teardown.sampling = Some(tokio::spawn(sampler));
    match launch(&mut teardown, &weft).await {
        Ok((addresses, readiness)) => {
            teardown.board.update(|s| s.phase = "running".into());
            Ok(Bound {
                addresses,
                readiness,
                teardown,
            })
        }
        Err(e) => {
            teardown.run().await;
            Err(e)
        }
    }
}

/// `weft up` programs namespaces, links and nftables: it needs root (CAP_NET_ADMIN and
/// CAP_SYS_ADMIN). Running as an ordinary user in a user namespace of its own is not built yet.
pub fn require_root() -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "weft up needs root: it creates network namespaces, a bridge and packet-redirect rules \
             (CAP_NET_ADMIN and CAP_SYS_ADMIN); running as an ordinary user in a user namespace is \
             not supported yet. Run it as root, e.g. `sudo -E weft up DIR`"
        );
    }
    Ok(())
}

/// Refuses to start where another instance, or anything else, already holds what we need.
fn check_conflicts(plan: &Plan) -> anyhow::Result<()> {
    if net::link_exists(&plan.bridge) {
        anyhow::bail!(
            "a network interface named {} already exists; another weft up with --name {} may be running, or run `weft down --name {}`",
            plan.bridge,
            plan.name,
            plan.name
        );
    }
    for other in RunDir::all() {
        if other.name() == plan.name {
            continue;
        }
        if let Some(p) = other.plan()
            && (p.pod_cidr == plan.pod_cidr || p.service_cidr == plan.service_cidr)
        {
            anyhow::bail!(
                "weft up {:?} already uses podCidr {} / serviceCidr {}; give this mesh other ranges in its Mesh spec.network",
                other.name(),
                p.pod_cidr,
                p.service_cidr
            );
        }
    }
    let mut ports: Vec<SocketAddr> = vec![plan.admin];
    ports.extend(plan.prometheus.as_ref().map(|p| p.listen));
    ports.extend(
        plan.gateways
            .iter()
            .flat_map(|g| g.listeners.iter().map(|l| l.1)),
    );
    for addr in ports {
        std::net::TcpListener::bind(addr).with_context(|| {
            format!(
                "{addr} is in use; choose another port (--ingress-port, --admin, --prometheus-port)"
            )
        })?;
    }
    Ok(())
}

fn initial_status(plan: &Plan) -> Status {
    let waiting = |state: &str| Process {
        state: state.into(),
        ..Process::default()
    };
    Status {
        pid: std::process::id(),
        started_at_ms: now_ms(),
        phase: "starting".into(),
        revisions: vec![],
        gateways: plan
            .gateways
            .iter()
            .map(|g| Named {
                name: format!("{}/{}", g.namespace, g.name),
                process: waiting("waiting"),
            })
            .collect(),
        // A node proxy starts when its node first has an ambient pod.
        nodes: (plan.nodes.iter())
            .map(|n| Named {
                name: n.clone(),
                process: waiting("none"),
            })
            .collect(),
        pods: plan.pods.iter().map(pod_status).collect(),
        prometheus: plan.prometheus.as_ref().map(|_| Named {
            name: "prometheus".into(),
            process: waiting("starting"),
        }),
        refused: vec![],
        limits: Some(match crate::cgroup::hierarchy() {
            Ok(h) => format!("enforced (cgroup {})", h.version()),
            Err(why) => format!("not enforced: {why}"),
        }),
    }
}

/// A pod's status before anything of it runs.
fn pod_status(p: &crate::plan::PodPlan) -> PodStatus {
    let waiting = |state: &str| Process {
        state: state.into(),
        ..Process::default()
    };
    PodStatus {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        workload: p.workload.clone(),
        ip: p.ip.to_string(),
        mode: p.mode_label().into(),
        sidecar: p.sidecar(),
        node: p.node.clone(),
        served_by: None,
        proxy: waiting(match p.mode {
            weft_core::annotations::DataplaneMode::Sidecar => "waiting",
            weft_core::annotations::DataplaneMode::Ambient => "enrolling",
            weft_core::annotations::DataplaneMode::None => "none",
        }),
        app: waiting("waiting"),
        services: None,
        ..PodStatus::default()
    }
}

/// Starts everything in order: network, Service translation, credentials, control plane,
/// pods (proxy first unless the pod does not hold its app), gateways; then waits for readiness,
/// and follows the configuration's dataplane modes from then on.
async fn launch(t: &mut Teardown, weft: &Path) -> anyhow::Result<(Addresses, Readiness)> {
    let Teardown {
        plan,
        dir,
        board,
        report,
        pods,
        gateways,
        prometheus,
        forwarding,
        translating,
        following,
        restarting,
        ..
    } = t;
    let (plan, dir, board, report) = (&*plan, &*dir, &*board, &*report);
    network::setup(plan, dir, report).await?;
    board.scrape(crate::prometheus::Scrape::new(plan.clone(), dir)?);
    // Started first: it sees every proxy come up.
    let scraping = (plan.prometheus.as_ref())
        .map(|p| prometheus.start(crate::prometheus::spec(p, dir), None, board, report));
    let (translation, task) = services::start(plan, board, report).await?;
    *translating = Some(task);
    pods.set_translation(translation);
    registry::write(plan, dir)?;
    let controls = pods.controls.clone();
    controls.change(|_| ());
    // The conventional addresses lead to the `default` tag's control plane; bound first, so
    // no control plane's ephemeral port can take them.
    let (c, d) = (controls.clone(), controls.clone());
    let discovery: forward::Target =
        Arc::new(move || c.default_addresses().and_then(|a| a.secure_discovery));
    let admin: forward::Target = Arc::new(move || d.default_addresses().map(|a| a.admin));
    let host = std::net::IpAddr::from(plan.host_ip);
    let local = std::net::IpAddr::from([127, 0, 0, 1]);
    forwarding.push(forward::bind(plan.discovery(), "mTLS discovery", host, discovery).await?);
    forwarding.push(forward::bind(plan.admin, "control-plane admin", local, admin).await?);
    let first = controls.start(0).await?;
    // Every pod asks for the first revision (its `default` tag) or names another.
    pods.refresh_wanted();
    // The first revision's own ports, but the admin everyone knows.
    let cp = ControlAddresses {
        admin: plan.admin,
        ..first
    };
    report(format!(
        "control plane ready (revision {}): discovery on {} (mTLS) and {} (this host), admin on http://{}/debug/syncz",
        plan.revision,
        plan.discovery(),
        cp.discovery,
        cp.admin
    ));
    report(plan.summary());
    let mut waits: Vec<_> = scraping.into_iter().collect();
    for (i, pod) in plan.pods.iter().enumerate() {
        // Its sidecar, or its enrolment on its node's proxy (started with its first pod).
        let proxy = pods.serve(i)?;
        // By default the app waits for its proxy; pods start side by side.
        let gate = proxy.filter(|_| pod.hold_application);
        waits.push(pods.start_app(i, gate));
    }
    for (i, g) in plan.gateways.iter().enumerate() {
        waits.push(gateways.start(gateway_spec(plan, g, i, weft, dir), None, board, report));
    }
    *following = Some(tokio::spawn(follow::run(
        pods.clone(),
        weft.to_path_buf(),
        report.clone(),
    )));
    *restarting = Some(tokio::spawn(requests::run(
        pods.clone(),
        dir.clone(),
        board.clone(),
        report.clone(),
    )));
    let everything = async {
        futures_all(waits).await;
        // Each was ready once; a process that keeps exiting is not ready for long.
        all_ready_now(board).await;
    };
    let readiness = match tokio::time::timeout(READY_WAIT, everything).await {
        Ok(()) => {
            // Up once the control plane has every ready pod as an endpoint.
            let written = board.pods_written_at_ms();
            let wait = Duration::from_secs(5);
            let ready = match registration::wait_in_force(cp.admin, written, wait).await {
                true => "all pods ready".to_string(),
                false => "all pods ready, not yet endpoints in the control plane".to_string(),
            };
            Readiness {
                summary: ready,
                not_ready: vec![],
            }
        }
        Err(_) => {
            let lines = not_ready(&board.snapshot());
            let summary = match lines.len() {
                0 => format!("all pods ready after {}s", READY_WAIT.as_secs()),
                n => format!("{n} not ready after {}s", READY_WAIT.as_secs()),
            };
            Readiness {
                summary,
                not_ready: lines,
            }
        }
    };
    let bound = Addresses::gather(plan, dir, cp);
    addresses::write(&dir.bound_file(), &bound)?;
    Ok((bound, readiness))
}

/// What is not ready after [`READY_WAIT`]: each pod, gateway and Prometheus with why (and the
/// fix when there is one), one line each.
fn not_ready(s: &Status) -> Vec<String> {
    let now = now_ms();
    let pods = (s.pods.iter()).filter_map(|p| {
        let why = p.not_ready(now)?;
        Some(format!("pod {}/{}: {why}", p.namespace, p.name))
    });
    let process = |what: String, p: &Process| {
        (p.state != "ready").then(|| {
            let why = p.reason.as_deref().unwrap_or(&p.state);
            match &p.fix {
                Some(fix) => format!("{what}: {why}; fix: {fix}"),
                None => format!("{what}: {why}"),
            }
        })
    };
    let gateways =
        (s.gateways.iter()).filter_map(|g| process(format!("gateway {}", g.name), &g.process));
    let prometheus = (s.prometheus.iter()).filter_map(|p| process("prometheus".into(), &p.process));
    pods.chain(gateways).chain(prometheus).collect()
}

/// Waits until the status has every pod, gateway and Prometheus ready at two looks in a row.
async fn all_ready_now(board: &Board) {
    let mut in_a_row = 0;
    while in_a_row < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        in_a_row = match not_ready(&board.snapshot()).is_empty() {
            true => in_a_row + 1,
            false => 0,
        };
    }
}

/// Waits until every receiver has seen `true`.
async fn futures_all(waits: Vec<watch::Receiver<bool>>) {
    for mut w in waits {
        let _ = w.wait_for(|r| *r).await;
    }
}
