//! `weft right-size --apply`: the recommendations as `weft.dev/proxy-*` annotations in the
//! files that define the Workloads. Each file is edited textually ([`super::edit`]), then
//! loaded again to prove that only those annotations changed; the diff is printed, and only
//! with `--yes` written. After writing, the analyzer runs over the whole config: a new error,
//! or a resource finding on a right-sized Workload, restores every file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use weft_core::Resource;
use weft_core::analyze::{self, Severity};
use weft_core::annotations::{
    PROXY_CPU_LIMIT, PROXY_CPU_REQUEST, PROXY_MEMORY_LIMIT, PROXY_MEMORY_REQUEST,
};
use weft_core::sizing::Recommendation;

use super::{Sized, diff, edit};

/// One Workload's (or waypoint Gateway's) annotations to write.
#[derive(Debug, Clone)]
struct Change {
    kind: &'static str,
    namespace: String,
    name: String,
    values: Vec<(&'static str, String)>,
}

fn values(r: &Recommendation) -> Vec<(&'static str, String)> {
    vec![
        (PROXY_CPU_REQUEST, r.requests.cpu.to_string()),
        (PROXY_CPU_LIMIT, r.limits.cpu.to_string()),
        (PROXY_MEMORY_REQUEST, r.requests.memory.to_string()),
        (PROXY_MEMORY_LIMIT, r.limits.memory.to_string()),
    ]
}

pub fn run(
    config_dir: &Path,
    sized: &[Sized],
    yes: bool,
    to_stdout: bool,
) -> anyhow::Result<ExitCode> {
    let say = |text: &str| -> anyhow::Result<()> {
        if to_stdout {
            crate::output::write(text)?;
        } else {
            eprint!("{text}");
        }
        Ok(())
    };
    let mut by_file: BTreeMap<&str, Vec<Change>> = BTreeMap::new();
    for s in sized {
        if let Some(r) = &s.recommendation {
            by_file.entry(&s.file).or_default().push(Change {
                kind: s.kind,
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                values: values(r),
            });
        }
    }
    let mut refused = Vec::new();
    let mut edits = Vec::new();
    for (file, changes) in &by_file {
        let old = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
        let mut new = old.clone();
        let mut done = Vec::new();
        for c in changes {
            let edited = if file.ends_with(".json") {
                Err(edit::Refused("JSON files are not edited".into()))
            } else {
                edit::set_annotations(&new, c.kind, &c.namespace, &c.name, &c.values)
            };
            match edited {
                Ok(text) => {
                    new = text;
                    done.push(c.clone());
                }
                Err(why) => refused.push((file.to_string(), c.clone(), why.0)),
            }
        }
        if let Err(why) = verify(file, &old, &new, &done) {
            refused.extend(done.into_iter().map(|c| (file.to_string(), c, why.clone())));
            continue;
        }
        if new != old {
            edits.push((file.to_string(), old, new));
        }
    }

    let mut text = String::new();
    for (file, old, new) in &edits {
        text += &diff::unified(file, old, new);
    }
    for (file, c, why) in &refused {
        text += &format!(
            "not edited: {} {}/{} in {file}: {why}. Set these under its metadata.annotations \
by hand:\n",
            c.kind, c.namespace, c.name
        );
        for (k, v) in &c.values {
            text += &format!("    {k}: \"{v}\"\n");
        }
    }
    let status = if refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if edits.is_empty() {
        text += "Nothing to write: the files hold these values already.\n";
        say(&text)?;
        return Ok(status);
    }
    if !yes {
        text += &format!(
            "Nothing written. Re-run with --yes to write {} ({} file{}).\n",
            if edits.len() == 1 {
                "this change"
            } else {
                "these changes"
            },
            edits.len(),
            if edits.len() == 1 { "" } else { "s" }
        );
        say(&text)?;
        return Ok(status);
    }

    let before = findings(config_dir);
    for (file, _, new) in &edits {
        std::fs::write(file, new).with_context(|| format!("writing {file}"))?;
    }
    let touched: BTreeSet<String> = (by_file.values().flatten())
        .map(|c| format!("{}/{}/{}", c.kind, c.namespace, c.name))
        .collect();
    let after = findings(config_dir);
    let bad: Vec<&String> = (after.iter())
        .filter(|(key, _)| {
            let (code, resource, severity) = key;
            let new = !before.contains_key(key);
            let sizing_rule = code.starts_with("WEFT030") && touched.contains(resource);
            new && (*severity >= Severity::Error || sizing_rule)
        })
        .map(|(_, line)| line)
        .collect();
    if !bad.is_empty() {
        for (file, old, _) in &edits {
            std::fs::write(file, old).with_context(|| format!("restoring {file}"))?;
        }
        let list: Vec<String> = bad.iter().map(|l| format!("  {l}")).collect();
        anyhow::bail!(
            "{text}the edited config does not pass `weft analyze`, so every file was restored:\n{}",
            list.join("\n")
        );
    }
    for (file, ..) in &edits {
        text += &format!("wrote {file}\n");
    }
    text += "`weft analyze` finds nothing new. A running `weft up` restarts each changed \
workload's pods one at a time with the new values.\n";
    say(&text)?;
    Ok(status)
}

/// The analyzer's findings over `dir` (and its load errors, with an empty key), by (code,
/// resource, severity), each with its text.
fn findings(dir: &Path) -> BTreeMap<(String, String, Severity), String> {
    let outcome = weft_core::load::load_paths(&[dir]);
    let mut out = BTreeMap::new();
    for e in &outcome.errors {
        let line = e.to_string();
        out.insert(("load".into(), line.clone(), Severity::Error), line);
    }
    for f in analyze::analyze(&outcome.config).findings {
        let key = (f.code.to_string(), f.resource.clone(), f.severity);
        out.insert(key, f.to_string());
    }
    out
}

/// Checks that `new` loads to exactly what `old` does but for the annotations of `changes`.
fn verify(file: &str, old: &str, new: &str, changes: &[Change]) -> Result<(), String> {
    let (a, b) = (
        weft_core::load::parse_str(file, old),
        weft_core::load::parse_str(file, new),
    );
    if b.errors.len() > a.errors.len() {
        let first = b.errors.first().map(ToString::to_string);
        return Err(format!(
            "the edit would not load ({})",
            first.unwrap_or_default()
        ));
    }
    let (ra, rb) = (&a.config.resources, &b.config.resources);
    if ra.len() != rb.len() || a.config.skipped.len() != b.config.skipped.len() {
        return Err("the edit would change which documents the file holds".into());
    }
    for (x, y) in ra.iter().zip(rb) {
        let (x, y) = (&x.resource, &y.resource);
        let change = changes.iter().find(|c| {
            edit::meta(x, c.kind).is_some_and(|m| m.name == c.name && m.namespace() == c.namespace)
        });
        let mut want = x.clone();
        if let Some(c) = change {
            let annotations = match &mut want {
                Resource::Workload(w) => &mut w.metadata.annotations,
                Resource::Gateway(g) => &mut g.metadata.annotations,
                _ => unreachable!("edit::meta matches Workloads and Gateways only"),
            };
            for (k, v) in &c.values {
                annotations.insert(k.to_string(), v.clone());
            }
        }
        if &want != y {
            let names: Vec<String> = (changes.iter())
                .map(|c| format!("{}/{}", c.namespace, c.name))
                .collect();
            return Err(format!(
                "the edit would change more than the annotations of {}; edit it by hand",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
