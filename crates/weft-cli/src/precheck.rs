//! `weft precheck`: what an install, upgrade or uninstall would do to a running `weft up` mesh
//! and what stands in its way, before it is done — the pods that would move and those that
//! stay, tags that point at missing revisions, workloads pinned to a revision that is going
//! away, and version skew between a new binary and the proxies it would serve — each with the
//! fix. The configuration's revision labels are checked by the analyzer against the mesh's
//! revisions and tags (WEFT0701–WEFT0706). Exit status 1 when anything would fail.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use weft_core::analyze::{self, MeshRevisions, Severity};
use weft_local::revisions::Registry;

use crate::up::Instance;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check an upgrade to this installed revision: what moves, what stays.
    #[arg(long, value_name = "REV")]
    to: Option<String>,
    /// Check a binary before installing it: can its control plane serve this mesh's proxies?
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Check the uninstall of this revision: what still uses it.
    #[arg(long, value_name = "REV")]
    uninstall: Option<String>,
    #[command(flatten)]
    instance: Instance,
}

/// The analyzer's view of the mesh's revisions; `going_away` are about to be uninstalled.
pub fn mesh_revisions(reg: &Registry, going_away: &[String]) -> MeshRevisions {
    MeshRevisions {
        revisions: reg.installed().map(|(_, r)| r.name.clone()).collect(),
        tags: reg.tags.clone().into_iter().collect(),
        going_away: going_away.to_vec(),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let reg = crate::revision::registry(&dir)?;
    let status = dir.status().context("weft up has no status yet")?;
    let mut problems = 0;
    let mut say = |severity: &str, line: String| {
        if severity == "ERROR" {
            problems += 1;
        }
        println!("{severity}: {line}");
    };

    // What the move would do, and which revisions it empties.
    let mut going_away: Vec<String> = args.uninstall.iter().cloned().collect();
    if let Some(to) = &args.to {
        match reg.get(to) {
            None => say(
                "ERROR",
                format!(
                    "no revision {to} is installed; fix: weft install --revision {to} --binary PATH"
                ),
            ),
            Some(_) => {
                let moves = crate::upgrade::plan_moves(&plan, &status, &reg, to, &[100], false);
                let moving: Vec<String> = moves.steps.concat();
                say(
                    "INFO",
                    format!(
                        "{} pods would move to {to}: {}",
                        moving.len(),
                        moving.join(", ")
                    ),
                );
                for s in &moves.staying {
                    say("INFO", format!("stays: {s}"));
                }
                // A revision no pod runs on once they moved is one to uninstall next.
                for (_, r) in reg.installed().filter(|(_, r)| r.name != *to) {
                    let left = (plan.pods.iter().zip(&status.pods))
                        .filter(|(p, s)| s.revision == r.name && !moving.contains(&p.id()))
                        .count();
                    let ran = status.pods.iter().any(|s| s.revision == r.name);
                    if ran && left == 0 {
                        going_away.push(r.name.clone());
                    }
                }
            }
        }
    }

    // Version skew: a new binary against the proxies it would serve.
    if let Some(binary) = &args.binary {
        match weft_local::runtime::identify(binary) {
            Err(e) => say("ERROR", format!("{e}; fix: give a weft executable")),
            Ok((version, protocol)) => {
                say(
                    "INFO",
                    format!(
                        "{} is weft {version}, discovery protocol {protocol}",
                        binary.display()
                    ),
                );
                for (_, r) in reg.installed() {
                    let served = (protocol.saturating_sub(1)..=protocol).contains(&r.protocol);
                    if !served {
                        say(
                            "WARNING",
                            format!(
                                "proxies of revision {} speak protocol {} (weft {}): a control plane \
                                 of weft {version} serves protocols {} to {protocol}, so they must \
                                 move to it before it serves them; fix: upgrade through a version \
                                 in between",
                                r.name,
                                r.protocol,
                                r.version,
                                protocol.saturating_sub(1)
                            ),
                        );
                    }
                }
                if let Some(first) = reg.revisions.first()
                    && !(protocol.saturating_sub(1)..=protocol).contains(&first.protocol)
                {
                    say(
                        "ERROR",
                        format!(
                            "the gateways and node proxies run weft {} (protocol {}): the default \
                             tag cannot point at a revision of this binary; fix: install a version \
                             in between first",
                            first.version, first.protocol
                        ),
                    );
                }
            }
        }
    }

    // Users of a revision to be uninstalled.
    if let Some(rev) = &args.uninstall {
        let users: Vec<String> = (plan.pods.iter().zip(&status.pods))
            .filter(|(_, s)| s.revision == *rev)
            .map(|(p, _)| format!("pod {}", p.id()))
            .collect();
        for b in reg.uninstall_blockers(rev, &users) {
            say("ERROR", format!("revision {rev}: {b}"));
        }
    }

    // The configuration's labels against the mesh.
    let outcome = weft_core::load::load_paths(&[&plan.config_dir]);
    going_away.sort();
    going_away.dedup();
    let analysis = analyze::analyze_with(&outcome.config, &mesh_revisions(&reg, &going_away));
    for f in analysis
        .findings
        .iter()
        .filter(|f| f.code.starts_with("WEFT07"))
    {
        let severity = match f.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARNING",
            _ => "INFO",
        };
        say(severity, f.to_string());
    }
    if problems == 0 {
        println!("precheck passed");
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
