//! Revisions of a running `weft up` mesh: `weft install --revision NAME` starts a control
//! plane beside the others, `weft uninstall --revision NAME` removes one nothing uses, `weft
//! tag set|list|remove` moves the pointers pods follow, `weft revision list` shows them all.
//! Each asks `weft up` ([`crate::ask`]) and prints what it did, or why it refused.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use weft_local::operate::{self, Reply, Request};
use weft_local::plan::Plan;
use weft_local::revisions::{DEFAULT_TAG, Registry};
use weft_local::rundir::RunDir;

use crate::output::{self, Format};
use crate::up::Instance;

/// A control plane gets 20 s to be ready.
const INSTALL_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// Name of the new revision (a DNS label: `canary`, `v0-2-0`).
    #[arg(long, value_name = "NAME")]
    revision: String,
    /// The `weft` executable its control plane and proxies run (default: this one).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// A mesh setting of this revision over the configuration's Mesh (`mtls.mode=PERMISSIVE`,
    /// `proxy.concurrency=4`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    #[command(flatten)]
    instance: Instance,
}

#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    /// The revision to remove; refused while a tag points at it or a proxy runs on it.
    #[arg(long, value_name = "NAME")]
    revision: String,
    #[command(flatten)]
    instance: Instance,
}

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    #[command(subcommand)]
    command: TagCommand,
    #[command(flatten)]
    instance: Instance,
}

#[derive(Debug, clap::Subcommand)]
enum TagCommand {
    /// Point TAG at a revision (pods following it move when restarted).
    Set {
        tag: String,
        #[arg(long, value_name = "NAME")]
        revision: String,
        /// Move a tag that points elsewhere.
        #[arg(long)]
        overwrite: bool,
    },
    /// TAG, REVISION, NAMESPACES.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Remove TAG (refused while pods' labels name it).
    Remove { tag: String },
}

#[derive(Debug, clap::Args)]
pub struct RevisionArgs {
    #[command(subcommand)]
    command: RevisionCommand,
    #[command(flatten)]
    instance: Instance,
}

#[derive(Debug, clap::Subcommand)]
enum RevisionCommand {
    /// REVISION, VERSION, TAGS, PODS, CONTROL PLANE, SETTINGS.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

/// Sends `req` and prints the reply; refused → an error with the reason.
pub fn send(dir: &RunDir, req: &Request, within: Duration) -> anyhow::Result<Vec<String>> {
    let reply: Reply = crate::ask::ask(dir, operate::KIND, req, within)?;
    for line in &reply.lines {
        println!("{line}");
    }
    match reply.error {
        None => Ok(reply.lines),
        Some(e) => bail!("{e}"),
    }
}

pub fn install(args: InstallArgs) -> anyhow::Result<ExitCode> {
    let (dir, _) = args.instance.running()?;
    let binary = match args.binary {
        Some(b) => std::path::absolute(&b).with_context(|| b.display().to_string())?,
        None => std::env::current_exe().context("finding the weft executable")?,
    };
    let req = Request::Install {
        revision: args.revision,
        binary,
        sets: args.sets,
    };
    send(&dir, &req, INSTALL_WITHIN)?;
    Ok(ExitCode::SUCCESS)
}

pub fn uninstall(args: UninstallArgs) -> anyhow::Result<ExitCode> {
    let (dir, _) = args.instance.running()?;
    let req = Request::Uninstall {
        revision: args.revision,
    };
    send(&dir, &req, INSTALL_WITHIN)?;
    Ok(ExitCode::SUCCESS)
}

pub fn tag(args: TagArgs) -> anyhow::Result<ExitCode> {
    let (dir, plan) = args.instance.running()?;
    let req = match args.command {
        TagCommand::Set {
            tag,
            revision,
            overwrite,
        } => Request::TagSet {
            tag,
            revision,
            overwrite,
        },
        TagCommand::Remove { tag } => Request::TagRemove { tag },
        TagCommand::List { output } => {
            print_rows(output, &tag_rows(&registry(&dir)?, &plan))?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    send(&dir, &req, INSTALL_WITHIN)?;
    Ok(ExitCode::SUCCESS)
}

pub fn revision(args: RevisionArgs) -> anyhow::Result<ExitCode> {
    let (dir, _) = args.instance.running()?;
    match args.command {
        RevisionCommand::List { output } => print_rows(output, &revision_rows(&dir)?)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn registry(dir: &RunDir) -> anyhow::Result<Registry> {
    Registry::read(dir).with_context(|| {
        format!(
            "weft up {:?} has no revisions yet (starting, or from an older version)",
            dir.name()
        )
    })
}

/// The namespaces whose pods follow `tag` (by a label naming it, or none for `default`).
fn namespaces_following(plan: &Plan, tag: &str) -> Vec<String> {
    let ns: BTreeSet<String> = (plan.pods.iter())
        .filter(|p| p.rev.as_deref().unwrap_or(DEFAULT_TAG) == tag)
        .map(|p| p.namespace.clone())
        .collect();
    ns.into_iter().collect()
}

/// A table (its header first), or its rows as JSON or YAML objects.
pub fn print_rows(format: Format, rows: &[Vec<String>]) -> std::io::Result<()> {
    output::print(format, &crate::get::rows_json(rows), || {
        crate::get::table(rows)
    })
}

fn tag_rows(reg: &Registry, plan: &Plan) -> Vec<Vec<String>> {
    let mut rows = vec![vec!["TAG".into(), "REVISION".into(), "NAMESPACES".into()]];
    for (tag, rev) in &reg.tags {
        let rev = match reg.get(rev) {
            Some(_) => rev.clone(),
            None => format!("{rev} (not installed)"),
        };
        let ns = namespaces_following(plan, tag);
        let ns = if ns.is_empty() {
            "-".into()
        } else {
            ns.join(",")
        };
        rows.push(vec![tag.clone(), rev, ns]);
    }
    rows
}

fn revision_rows(dir: &RunDir) -> anyhow::Result<Vec<Vec<String>>> {
    let reg = registry(dir)?;
    let status = dir.status().context("no status yet")?;
    let mut rows = vec![
        [
            "REVISION",
            "VERSION",
            "TAGS",
            "PODS",
            "CONTROL PLANE",
            "SETTINGS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (i, r) in reg.installed() {
        let tags = reg.tags_of(&r.name);
        let pods = (status.pods.iter())
            .filter(|p| p.revision == r.name)
            .count();
        let state = status
            .revisions
            .get(i)
            .map_or("?".to_string(), |n| n.process.state.clone());
        rows.push(vec![
            r.name.clone(),
            format!("{} (protocol {})", r.version, r.protocol),
            if tags.is_empty() {
                "-".into()
            } else {
                tags.join(",")
            },
            pods.to_string(),
            state,
            if r.sets.is_empty() {
                "-".into()
            } else {
                r.sets.join(" ")
            },
        ]);
    }
    Ok(rows)
}

/// For `weft status`: each proxy of a running `weft up` with its revision and the one its
/// labels ask for now (OUTDATED until restarted onto it, or why its label names none).
pub fn proxies_table(dir: &RunDir) -> Option<String> {
    let status = dir.status()?;
    let plan = dir.plan()?;
    let mut rows = vec![
        ["POD", "REVISION", "WANTS", "STATE"]
            .map(String::from)
            .to_vec(),
    ];
    for (p, s) in plan.pods.iter().zip(&status.pods) {
        // Only pods with a proxy of their own: a sidecar, or a waypoint's.
        if s.revision.is_empty() || !(p.sidecar() || p.waypoint) {
            continue;
        }
        let (wants, state) = match (&s.revision_problem, s.wanted_revision == s.revision) {
            (Some(problem), _) => ("-".to_string(), format!("NO REVISION: {problem}")),
            (None, true) => (s.wanted_revision.clone(), "CURRENT".to_string()),
            (None, false) => (
                s.wanted_revision.clone(),
                format!(
                    "OUTDATED: weft rollout restart {}/{}",
                    p.namespace, p.workload
                ),
            ),
        };
        rows.push(vec![p.id(), s.revision.clone(), wants, state]);
    }
    Some(crate::get::table(&rows))
}
