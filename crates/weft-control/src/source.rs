//! The file source: a directory of YAML, watched ([`crate::watch`]: inotify, or a poll where
//! that is not available). A change is applied as soon as it settles when it loads and analyzes
//! without errors; otherwise it is rejected with the analyzer's messages and
//! the last good configuration stays in force. Warnings do not stop a change: they are logged
//! and kept with the configuration's status for `weft status`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use weft_core::Config;
use weft_core::analyze::{Finding, Severity};
use weft_core::events::Type;
use weft_core::resources::mesh_set::{MeshSet, apply_to_config};

use crate::state::State;
use crate::watch::Changes;

/// Loads and checks a directory, with the analyzer's findings on it, and applies the
/// revision's mesh settings. `Err` holds one message per problem, each with file:line.
pub fn load(dir: &Path, sets: &[MeshSet]) -> Result<(Config, Vec<Finding>), Vec<String>> {
    let (mut config, findings) = weft_core::analyze::load_analyzed(dir)?;
    apply_to_config(&mut config, sets).map_err(|e| vec![e])?;
    Ok((config, findings))
}

/// What the directory looks like now: names, sizes and modification times.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(p),
                Ok(m) => out.push((p, m.len(), m.modified().ok())),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Logs the analyzer's warnings on the configuration in force: it is served all the same, but
/// may not do what it says (`weft status` lists them too).
pub fn log_warnings(state: &State) {
    let status = state.config_status();
    for f in status
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
    {
        tracing::warn!("configuration in force: {f}");
    }
}

/// Watches `dir` until the task is dropped, applying good changes to `state`.
pub async fn watch(dir: PathBuf, state: Arc<State>, sets: Vec<MeshSet>) {
    let mut changes = Changes::tree(&dir, "configuration directory");
    let mut seen = fingerprint(&dir);
    loop {
        changes.next().await;
        let now = fingerprint(&dir);
        if now == seen {
            continue;
        }
        seen = now;
        let (d, sets) = (dir.clone(), sets.clone());
        let result = tokio::task::spawn_blocking(move || load(&d, &sets)).await;
        match result {
            Ok(Ok((config, findings))) => {
                tracing::info!(dir = %dir.display(), resources = config.resources.len(), "configuration applied");
                state.apply(config, findings);
                log_warnings(&state);
                applied_event(&state, &dir);
            }
            Ok(Err(problems)) => {
                for p in &problems {
                    tracing::error!("configuration rejected, last good one stays in force: {p}");
                }
                rejected_event(&state, &dir, &problems);
                state.reject(problems);
            }
            Err(e) => tracing::error!("configuration load failed: {e}"),
        }
    }
}

/// The object of the configuration read from `dir`: `config/DIRNAME`.
fn config_object(dir: &Path) -> String {
    let name = dir.file_name().unwrap_or(dir.as_os_str());
    format!("config/{}", name.to_string_lossy())
}

fn applied_event(state: &State, dir: &Path) {
    let status = state.config_status();
    let warnings = (status.findings.iter())
        .filter(|f| f.severity >= Severity::Warning)
        .count();
    let warned = match warnings {
        0 => String::new(),
        n => format!(", {n} warning(s): `weft status` lists them"),
    };
    let message = format!(
        "generation {} in force ({} resources{warned})",
        status.generation, status.resources
    );
    let kind = Type::Normal;
    state
        .events
        .record(kind, "ConfigApplied", config_object(dir), message, vec![]);
}

fn rejected_event(state: &State, dir: &Path, problems: &[String]) {
    // One line: the first problem, its fix after a semicolon (`details` has them all).
    let first: Vec<&str> = (problems.first().into_iter())
        .flat_map(|p| p.lines())
        .map(str::trim)
        .collect();
    let first = first.join("; ");
    let more = match problems.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let message = format!(
        "change rejected, generation {} stays in force: {first}{more}",
        state.config_status().generation
    );
    let (kind, object) = (Type::Warning, config_object(dir));
    state
        .events
        .record(kind, "ConfigRejected", object, message, problems.to_vec());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const LEGACY: &str = "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: legacy, namespace: shop, labels: {app: legacy, weft.dev/dataplane-mode: none}}\nspec: {command: [legacy]}\n---\napiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: legacy-callers, namespace: shop}\nspec:\n  selector: {matchLabels: {app: legacy}}\n  rules: [{}]\n";

    fn config(yaml: &str) -> Config {
        let out = weft_core::parse_str("shop.yaml", yaml);
        assert!(out.is_ok(), "{:?}", out.errors);
        out.config
    }

    #[test]
    fn warnings_on_the_config_in_force_are_kept_and_follow_changes() {
        let state = State::new(config(LEGACY), Duration::ZERO);
        let findings = state.config_status().findings;
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].code, "WEFT0605");
        assert!(
            findings[0]
                .message
                .contains("AuthorizationPolicy shop/legacy-callers selects it but is not enforced"),
            "{}",
            findings[0].message
        );
        let fixed = config(&LEGACY.replace(", weft.dev/dataplane-mode: none", ""));
        let findings = weft_core::analyze::analyze(&fixed).findings;
        state.apply(fixed, findings);
        assert_eq!(state.config_status().findings, []);
    }
}
