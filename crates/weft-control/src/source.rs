//! The file source: a directory of YAML, watched. A change is applied within a second when it
//! loads and analyzes without errors; otherwise it is rejected with the analyzer's messages and
//! the last good configuration stays in force. The analyzer's warnings (what is served with a
//! known consequence) are logged and kept with the configuration in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use weft_core::analyze::Accepted;

use crate::state::State;

/// How often the directory is checked for changes.
pub const POLL: Duration = Duration::from_millis(250);

/// Loads and checks a directory. `Err` holds one message per problem, each with file:line.
pub fn load(dir: &Path) -> Result<Accepted, Vec<String>> {
    weft_core::analyze::load_accepted(dir)
}

/// Logs the warnings of an accepted configuration and returns them as status lines.
pub fn warnings(accepted: &Accepted) -> Vec<String> {
    accepted
        .warnings
        .iter()
        .map(|w| {
            let line = w.to_string();
            tracing::warn!("configuration served with a warning: {line}");
            line
        })
        .collect()
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

/// Watches `dir` until the task is dropped, applying good changes to `state`.
pub async fn watch(dir: PathBuf, state: Arc<State>) {
    let mut seen = fingerprint(&dir);
    let mut ticker = tokio::time::interval(POLL);
    loop {
        ticker.tick().await;
        let now = fingerprint(&dir);
        if now == seen {
            continue;
        }
        seen = now;
        let d = dir.clone();
        let result = tokio::task::spawn_blocking(move || load(&d)).await;
        match result {
            Ok(Ok(accepted)) => {
                tracing::info!(dir = %dir.display(), resources = accepted.config.resources.len(), warnings = accepted.warnings.len(), "configuration applied");
                let warnings = warnings(&accepted);
                state.apply(accepted.config, warnings);
            }
            Ok(Err(problems)) => {
                for p in &problems {
                    tracing::error!("configuration rejected, last good one stays in force: {p}");
                }
                state.reject(problems);
            }
            Err(e) => tracing::error!("configuration load failed: {e}"),
        }
    }
}
