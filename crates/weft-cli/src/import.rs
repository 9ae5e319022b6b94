//! `weft import istio PATH...`: Istio configuration into weft's
//! ([`weft_core::import::istio`]). The converted YAML goes to stdout, or with `-o DIR` to one
//! file per input file; the summary of what was converted, and what was not and why, to
//! stderr.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use weft_core::import::istio::{self, Input, Options};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    from: Source,
}

#[derive(Debug, clap::Subcommand)]
enum Source {
    /// Convert Istio configuration (VirtualService, DestinationRule, Gateway,
    /// AuthorizationPolicy, PeerAuthentication, and Istio's labels and annotations on
    /// Namespaces and workloads) into weft's. Other documents pass through unchanged.
    #[command(
        after_help = "What could not be converted is marked `# weft import:` in the output and listed in the summary (stderr).\n\
Then: `weft analyze DIR` to check the result, `weft up DIR` to run it. docs/import-istio.md has the mapping."
    )]
    Istio(IstioArgs),
}

#[derive(Debug, clap::Args)]
struct IstioArgs {
    /// Files or directories (read recursively: *.yaml, *.yml, *.json).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Write the converted configuration into DIR, one file per input file (same names),
    /// instead of to stdout.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// Istio's root namespace: a PeerAuthentication there is mesh-wide, an
    /// AuthorizationPolicy there applies to every namespace.
    #[arg(long, default_value = "istio-system")]
    root_namespace: String,
    /// No summary on stderr.
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Source::Istio(args) = args.from;
    let mut inputs = Vec::new();
    let mut names = Vec::new();
    for path in &args.paths {
        let files = weft_core::load::config_files(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        if files.is_empty() {
            bail!(
                "{}: no configuration files (*.yaml, *.yml, *.json) found here",
                path.display()
            );
        }
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            names.push(output_name(path, &file));
            inputs.push(Input {
                file: file.display().to_string(),
                text,
            });
        }
    }
    let import = istio::convert(
        &inputs,
        &Options {
            root_namespace: args.root_namespace.clone(),
        },
    );
    for e in &import.errors {
        eprintln!("{e}");
    }
    if !import.errors.is_empty() {
        let n = import.errors.len();
        let files = if n == 1 { "file" } else { "files" };
        bail!("{n} input {files} could not be read; nothing written");
    }

    match &args.output {
        None => {
            let mut out = std::io::stdout().lock();
            let texts: Vec<String> = import
                .files
                .iter()
                .filter(|f| !f.text.trim().is_empty())
                .map(|f| format!("# weft import: from {}\n{}", f.file, f.text))
                .collect();
            write!(out, "{}", texts.join("---\n"))?;
        }
        Some(dir) => write_dir(dir, &inputs, &names, &import)?,
    }
    if !args.quiet {
        eprint!("{}", istio::table(&import.rows));
        if let Some(dir) = &args.output {
            eprintln!(
                "Written to {}. Check it with `weft analyze {0}`, run it with `weft up {0}`.",
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where an input file goes under the output directory: its path below the directory it was
/// found in, or its own name when it was named.
fn output_name(root: &Path, file: &Path) -> PathBuf {
    match file.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => file
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| file.to_path_buf()),
    }
}

fn write_dir(
    dir: &Path,
    inputs: &[Input],
    names: &[PathBuf],
    import: &istio::Import,
) -> anyhow::Result<()> {
    let originals: BTreeSet<PathBuf> = inputs
        .iter()
        .filter_map(|i| std::fs::canonicalize(&i.file).ok())
        .collect();
    let mut used = BTreeSet::new();
    let mut plan = Vec::new();
    for (f, name) in import.files.iter().zip(names) {
        let mut target = dir.join(name);
        let mut n = 2;
        while !used.insert(target.clone()) {
            let stem = name
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("config");
            target = dir.join(name).with_file_name(format!("{stem}-{n}.yaml"));
            n += 1;
        }
        if std::fs::canonicalize(&target).is_ok_and(|t| originals.contains(&t)) {
            bail!(
                "{} would overwrite the input it comes from; write to another directory",
                target.display()
            );
        }
        plan.push((target, &f.text));
    }
    for (target, text) in plan {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}
