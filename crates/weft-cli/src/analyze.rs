//! `weft analyze PATH...`: load configuration, run the analyzer, print findings. With
//! `--live`, the running mesh's config and its runtime faults ([`live`]).

mod live;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::json;
use weft_core::analyze::{self, Severity};
use weft_core::load;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when nothing at or above --fail-on was found, 1 otherwise, 2 on usage errors.\n\
Suppress a finding for one resource with the annotation `weft.dev/analyze-ignore: WEFT0304,WEFT0306`."
)]
pub struct Args {
    /// Files or directories (read recursively: *.yaml, *.yml, *.json).
    #[arg(required_unless_present_any = ["explain", "list_rules", "live"])]
    paths: Vec<PathBuf>,
    /// Analyze the running `weft up` mesh (`--name`): its config files and what only the
    /// running mesh shows (pods not ready, crash loops, proxies that rejected their config,
    /// overdue certificates, Services without endpoints, workloads a policy or STRICT cannot
    /// cover, apps not listening on their ports, recent denials).
    #[arg(long)]
    live: bool,
    /// The running mesh `--live` reads.
    #[arg(long = "name", env = "WEFT_INSTANCE", default_value = "weft")]
    instance: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Lowest severity that makes the exit status non-zero.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,
    /// Print the long explanation of a code, with a bad and a good example.
    #[arg(long, value_name = "CODE", conflicts_with_all = ["paths", "list_rules"])]
    explain: Option<String>,
    /// List every rule with its code, severity and title.
    #[arg(long, conflicts_with = "paths")]
    list_rules: bool,
    /// Also check revision labels against the revisions and tags of this running `weft up`
    /// mesh (WEFT0704–WEFT0706).
    #[arg(long, value_name = "NAME")]
    mesh: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Info,
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
            FailOn::Info => Severity::Info,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    if let Some(code) = &args.explain {
        let Some(rule) = analyze::rule(code) else {
            if let Some((code, title)) = live::CHECKS
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(code))
            {
                writeln!(
                    stdout,
                    "{code}: {title}\n\nA check of the running mesh, made by `weft analyze --live`; docs/diagnose.md."
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            bail!("no rule {code:?}; `weft analyze --list-rules` lists them");
        };
        writeln!(stdout, "{}", analyze::explain(rule))?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.list_rules {
        for r in analyze::rules() {
            writeln!(stdout, "{}  {:<7}  {}", r.code, r.severity, r.title)?;
        }
        for (code, title) in live::CHECKS {
            writeln!(stdout, "{code}  {:<7}  {title} (--live)", "live")?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    let mut live_findings = Vec::new();
    let mut paths = args.paths.clone();
    if args.live {
        let dir = weft_local::rundir::RunDir::new(&args.instance);
        let plan = dir.plan().with_context(|| {
            format!(
                "no mesh named {:?} is running; start one with `weft up DIR`",
                args.instance
            )
        })?;
        if paths.is_empty() {
            paths.push(plan.config_dir.clone());
        }
        let admin = plan.admin.to_string();
        let control = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(async {
                live::Control {
                    syncz: crate::status::fetch(&admin, "/debug/syncz").await.ok(),
                    ca: crate::status::fetch(&admin, "/debug/ca").await.ok(),
                }
            });
        let facts = crate::diagnose::facts::Facts::load(dir, plan)?;
        live_findings = live::check(&facts, &control);
    }
    let outcome = load::load_paths(&paths);
    let analysis = match &args.mesh {
        None => analyze::analyze(&outcome.config),
        Some(name) => {
            let dir = weft_local::rundir::RunDir::new(name);
            let reg = crate::revision::registry(&dir)?;
            analyze::analyze_with(&outcome.config, &crate::precheck::mesh_revisions(&reg, &[]))
        }
    };
    let live_count = |s: Severity| live_findings.iter().filter(|f| f.severity == s).count();
    let errors =
        outcome.errors.len() + analysis.count(Severity::Error) + live_count(Severity::Error);
    let summary = json!({
        "errors": errors,
        "warnings": analysis.count(Severity::Warning) + live_count(Severity::Warning),
        "info": analysis.count(Severity::Info) + live_count(Severity::Info),
        "suppressed": analysis.suppressed,
        "resources": outcome.config.resources.len(),
        "files": outcome.files.len(),
        "skipped": outcome.config.skipped.len(),
    });

    match args.output {
        Output::Text => {
            for e in &outcome.errors {
                writeln!(stdout, "{e}")?;
            }
            for f in &analysis.findings {
                writeln!(stdout, "{f}")?;
            }
            for f in &live_findings {
                writeln!(stdout, "{f}")?;
            }
            let s = &summary;
            let mut line = format!(
                "{} {}, {} {}, {} info",
                s["errors"],
                plural(s["errors"].as_u64(), "error"),
                s["warnings"],
                plural(s["warnings"].as_u64(), "warning"),
                s["info"]
            );
            if analysis.suppressed > 0 {
                line += &format!(" ({} suppressed)", analysis.suppressed);
            }
            line += &format!(
                " in {} {} from {} {}",
                s["resources"],
                plural(s["resources"].as_u64(), "resource"),
                s["files"],
                plural(s["files"].as_u64(), "file"),
            );
            if !outcome.config.skipped.is_empty() {
                line += &format!("; {} documents of other kinds skipped", s["skipped"]);
            }
            writeln!(stdout, "{line}")?;
        }
        Output::Json | Output::Yaml => {
            let doc = json!({
                "configErrors": outcome.errors,
                "findings": analysis.findings,
                "live": live_findings,
                "summary": summary,
            });
            let text = match args.output {
                Output::Json => serde_json::to_string_pretty(&doc).context("encoding JSON")?,
                _ => crate::yaml_out::to_yaml(&doc),
            };
            writeln!(stdout, "{text}")?;
        }
    }

    let threshold = args.fail_on.severity();
    let failing = !outcome.errors.is_empty()
        || analysis.findings.iter().any(|f| f.severity >= threshold)
        || live_findings.iter().any(|f| f.severity >= threshold);
    Ok(if failing {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn plural(n: Option<u64>, word: &str) -> String {
    if n == Some(1) {
        word.to_string()
    } else {
        format!("{word}s")
    }
}
