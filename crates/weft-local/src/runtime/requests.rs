//! What commands ask while `weft up` runs ([`crate::requests`]): node-proxy restarts (`weft
//! restart`, each on its own) and the revision operations (`weft install`, `uninstall`, `tag`,
//! `rollout restart`, and `upgrade` through them), one at a time in the order they came and
//! never while a configuration change is being applied ([`super::live`]). The
//! requests are looked at as often as the configuration directory.

use std::sync::Arc;
use std::time::Duration;

use weft_core::resources::mesh::MeshSpec;
use weft_core::resources::mesh_set::{self, MeshSet};

use super::controls::identify;
use super::pods::Pods;
use super::rollout;
use crate::operate::{self, Reply, Request};
use crate::requests;
use crate::restart;
use crate::revisions::{DEFAULT_TAG, Revision};
use crate::rundir::RunDir;
use crate::status::now_ms;
use crate::supervise::{Board, Report, Slot};

/// How often the requests are looked at.
const POLL: Duration = Duration::from_millis(250);

/// Takes requests until aborted.
pub(super) async fn run(pods: Arc<Pods>, dir: RunDir, board: Arc<Board>, report: Report) {
    loop {
        tokio::time::sleep(POLL).await;
        for (id, req) in requests::take::<restart::Request>(&dir, restart::KIND) {
            let (pods, dir, board, report) =
                (pods.clone(), dir.clone(), board.clone(), report.clone());
            tokio::spawn(async move {
                let reply = match req {
                    Ok(req) => hand_off(&pods, &board, &report, req).await,
                    Err(e) => restart::Reply::failed("?", format!("unreadable request: {e}")),
                };
                if let Err(e) = requests::answer(&dir, &id, &reply) {
                    report(format!("restart request {id}: cannot reply: {e}"));
                }
            });
        }
        for (id, req) in requests::take::<Request>(&dir, operate::KIND) {
            let (pods, dir, report) = (pods.clone(), dir.clone(), report.clone());
            tokio::spawn(async move {
                // One at a time, and not while a configuration change starts or stops pods.
                let _turn = pods.operations.lock().await;
                let reply = match req {
                    Ok(req) => operate(&pods, &report, req).await,
                    Err(e) => Reply::refused(format!("unreadable request: {e}")),
                };
                if let Err(e) = requests::answer(&dir, &id, &reply) {
                    report(format!("request {id}: cannot reply: {e}"));
                }
            });
        }
    }
}

/// Replaces the proxy of `req.node` by hand-off.
async fn hand_off(
    pods: &Pods,
    board: &Board,
    report: &Report,
    req: restart::Request,
) -> restart::Reply {
    let node = req.node.clone();
    let i = match restart::check(&board.snapshot().nodes, &node) {
        Ok(i) => i,
        Err(e) => return restart::Reply::failed(&node, e),
    };
    let binary = match &req.binary {
        Some(b) => format!(" with {}", b.display()),
        None => String::new(),
    };
    report(format!("node proxy {node}: restart asked{binary}"));
    let enrolled = pods.enrolled_on(&node);
    match pods.nodes.hand_off(Slot::Node(i), req.binary).await {
        Ok(done) => restart::Reply {
            node,
            old_pid: Some(done.old_pid),
            new_pid: Some(done.new_pid),
            pods: enrolled,
            error: None,
        },
        Err(e) => restart::Reply::failed(&node, e),
    }
}

async fn operate(pods: &Pods, report: &Report, req: Request) -> Reply {
    let reply = match req {
        Request::Install {
            revision,
            binary,
            sets,
        } => install(pods, report, revision, binary, sets).await,
        Request::Uninstall { revision } => uninstall(pods, report, &revision).await,
        Request::TagSet {
            tag,
            revision,
            overwrite,
        } => tag_set(pods, &tag, &revision, overwrite),
        Request::TagRemove { tag } => {
            let users = pods.labelled(&tag);
            pods.controls.change(|r| r.remove_tag(&tag, &users)).into()
        }
        Request::Rollout {
            pods: ids,
            revision,
        } => rollout::run(pods, report, ids, revision).await,
        Request::Unpin { pods: ids } => {
            for id in &ids {
                if let Some(i) = pods.index(id) {
                    pods.pin(i, None);
                }
            }
            Reply::done(vec![format!(
                "{} pods follow their labels again",
                ids.len()
            )])
        }
    };
    pods.refresh_wanted();
    for line in reply.lines.iter().chain(&reply.error) {
        report(line.clone());
    }
    reply
}

async fn install(
    pods: &Pods,
    report: &Report,
    name: String,
    binary: std::path::PathBuf,
    sets: Vec<String>,
) -> Reply {
    let controls = &pods.controls;
    if let Err(e) = controls.registry().check_install(&name) {
        return Reply::refused(e);
    }
    let (version, protocol) = match identify(&binary) {
        Ok(v) => v,
        Err(e) => return Reply::refused(format!("revision {name}: {e}; give a weft executable")),
    };
    let parsed: Result<Vec<MeshSet>, String> = sets.iter().map(|s| s.parse()).collect();
    if let Err(e) = parsed.and_then(|s| mesh_set::apply(&MeshSpec::default(), &s)) {
        return Reply::refused(format!("revision {name}: {e}"));
    }
    report(format!(
        "installing revision {name}: weft {version} from {}",
        binary.display()
    ));
    let rev = Revision {
        name: name.clone(),
        binary: binary.clone(),
        version: version.clone(),
        protocol,
        sets: sets.clone(),
        installed_at_ms: now_ms(),
        uninstalled: false,
    };
    let i = controls.change(|r| {
        r.revisions.push(rev);
        r.revisions.len() - 1
    });
    match controls.start(i).await {
        Ok(cp) => {
            let settings = match sets.is_empty() {
                true => "the configuration's mesh settings".to_string(),
                false => format!("settings {}", sets.join(", ")),
            };
            Reply::done(vec![
                format!(
                    "revision {name} installed: weft {version} (discovery protocol {protocol}) \
                     from {}, with {settings}; its control plane is ready (mTLS discovery {}, \
                     admin http://{})",
                    binary.display(),
                    cp.secure_discovery.map_or("-".into(), |a| a.to_string()),
                    cp.admin
                ),
                format!(
                    "no pod moved: weft upgrade --to {name} moves them with a canary, or label a \
                     namespace weft.dev/rev: {name} (or weft tag set TAG --revision {name}) and \
                     weft rollout restart"
                ),
            ])
        }
        Err(e) => {
            controls.change(|r| r.revisions[i].uninstalled = true);
            controls.stop(i).await;
            let _ = std::fs::remove_dir_all(controls.state_dir(i));
            Reply::refused(format!("revision {name} not installed: {e:#}"))
        }
    }
}

async fn uninstall(pods: &Pods, report: &Report, name: &str) -> Reply {
    let controls = &pods.controls;
    let reg = controls.registry();
    let Some(i) = reg.index(name) else {
        let names: Vec<&str> = reg.installed().map(|(_, r)| r.name.as_str()).collect();
        return Reply::refused(format!(
            "no revision {name}; installed: {}",
            names.join(", ")
        ));
    };
    let mut users = pods.labelled(name);
    users.extend(pods.running_on(name));
    let blockers = reg.uninstall_blockers(name, &users);
    if !blockers.is_empty() {
        return Reply::refused(format!(
            "revision {name} is in use, not uninstalled:\n  {}",
            blockers.join("\n  ")
        ));
    }
    report(format!("uninstalling revision {name}"));
    controls.change(|r| r.revisions[i].uninstalled = true);
    controls.stop(i).await;
    // The first revision's state holds the mesh's root, which the others sign with.
    if i > 0 {
        let _ = std::fs::remove_dir_all(controls.state_dir(i));
    }
    Reply::done(vec![format!(
        "revision {name} uninstalled: its control plane stopped and its state removed"
    )])
}

fn tag_set(pods: &Pods, tag: &str, revision: &str, overwrite: bool) -> Reply {
    let controls = &pods.controls;
    let reg = controls.registry();
    // The gateways and node proxies reach the default tag's control plane: it must serve them.
    if tag == DEFAULT_TAG
        && let (Some(first), Some(to)) = (reg.revisions.first(), reg.get(revision))
        && !(to.protocol.saturating_sub(1)..=to.protocol).contains(&first.protocol)
    {
        return Reply::refused(format!(
            "revision {revision} (weft {}, discovery protocol {}) cannot serve this mesh's \
             gateways and node proxies (weft {}, protocol {}): a control plane serves its own \
             protocol and the one before; install a revision in between first",
            to.version, to.protocol, first.version, first.protocol
        ));
    }
    let done = controls.change(|r| r.set_tag(tag, revision, overwrite));
    let mut reply: Reply = done.into();
    if reply.error.is_none() {
        pods.refresh_wanted();
        let s = pods.board_snapshot();
        let waiting = (s.pods.iter())
            .filter(|p| !p.revision.is_empty() && p.revision != p.wanted_revision)
            .count();
        if waiting > 0 {
            reply.lines.push(format!(
                "{waiting} pods run on another revision than they now ask for (weft status); \
                 weft rollout restart moves them"
            ));
        }
    }
    reply
}
