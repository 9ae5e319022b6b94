//! Replacing a supervised process by hand-off (a node proxy, on `weft restart NODE`): the new
//! process starts while the old one serves, with the same arguments or another binary (an
//! upgrade), and takes the old one's listeners over its hand-off path. The old one then stops
//! accepting, drains its established connections and exits by itself: it is reaped, never
//! stopped early, and its exit is not a crash.
//!
//! The new process counts as ready once it has written its addresses file (a node proxy does
//! that only after the hand-off is done) and passes its readiness check. If it fails before
//! (it cannot start, exits, or is not ready within [`READY_WITHIN`]), the old process stays
//! the slot's process and keeps serving; the failure is reported, and not retried: the
//! person who asked decides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::{Report, Spec, describe, terminate};
use crate::rundir::tail;

/// How long the new process gets to take over: a node proxy gives up after 60 s by itself.
const READY_WITHIN: Duration = Duration::from_secs(90);
/// How often the new process's readiness is looked at.
const POLL: Duration = Duration::from_millis(100);

/// Asks a supervisor to replace its process by hand-off.
#[derive(Debug)]
pub struct Request {
    /// Another executable for the new process (an upgrade); the slot's own by default.
    pub binary: Option<PathBuf>,
    pub reply: oneshot::Sender<Result<HandedOff, String>>,
}

/// A hand-off that happened: the old process drains, the new one serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandedOff {
    pub old_pid: u32,
    pub new_pid: u32,
}

/// How a hand-off ended for the slot.
pub(super) enum Outcome {
    /// The new process serves; `reaper` waits for the old one to exit (or stops it when the
    /// slot stops).
    Replaced {
        child: Child,
        pid: u32,
        spec: Box<Spec>,
        reaper: JoinHandle<()>,
    },
    /// The new process failed before it took over; the old one serves on.
    Kept { child: Child, why: String },
    /// Both are gone: the new one failed and the old one exited meanwhile.
    Gone { why: String },
}

/// Starts the new process next to `old` and waits until it has taken over or failed.
pub(super) async fn replace(
    spec: &Spec,
    mut old: Child,
    old_pid: u32,
    binary: Option<PathBuf>,
    report: &Report,
    stop: &watch::Receiver<bool>,
) -> Outcome {
    let mut next = spec.clone();
    if let Some(b) = &binary {
        next.argv[0] = b.display().to_string();
    }
    let label = &spec.label;
    report(format!(
        "{label}: restarting by hand-off: starting {} while pid {old_pid} serves",
        next.argv[0]
    ));
    // Starting removes the addresses file; the old process's is put back if it stays.
    let saved = spec
        .addresses
        .as_deref()
        .and_then(|f| std::fs::read(f).ok());
    let restore = || {
        if let (Some(f), Some(bytes)) = (&spec.addresses, &saved)
            && !f.exists()
        {
            let _ = std::fs::write(f, bytes);
        }
    };
    let mut new = match next.command().and_then(|mut c| Ok(c.spawn()?)) {
        Ok(c) => c,
        Err(e) => {
            restore();
            let why = format!("cannot start {}: {e:#}", next.argv[0]);
            report(format!(
                "{label}: hand-off failed: {why}; pid {old_pid} keeps serving"
            ));
            return Outcome::Kept { child: old, why };
        }
    };
    let new_pid = new.id().unwrap_or(0);
    let mut stopping = stop.clone();
    let mut old_exit: Option<String> = None;
    let deadline = tokio::time::Instant::now() + READY_WITHIN;
    let why = loop {
        let step = tokio::select! {
            exit = new.wait() => Step::NewExited(exited(exit)),
            exit = old.wait(), if old_exit.is_none() => Step::OldExited(exited(exit)),
            _ = stopping.wait_for(|s| *s) => Step::Stop,
            () = tokio::time::sleep_until(deadline) => Step::Late,
            () = tokio::time::sleep(POLL) => Step::Look,
        };
        match step {
            Step::NewExited(how) => {
                break format!(
                    "the new process (pid {new_pid}) {how} before it took over{}",
                    last_words(&spec.log)
                );
            }
            Step::OldExited(how) => old_exit = Some(how),
            Step::Stop => {
                terminate(&mut new, new_pid, spec.grace).await;
                break "weft up is stopping".into();
            }
            Step::Late => {
                let how = terminate(&mut new, new_pid, spec.grace).await;
                break format!(
                    "the new process (pid {new_pid}) did not take over within {}s ({how}){}",
                    READY_WITHIN.as_secs(),
                    last_words(&spec.log)
                );
            }
            Step::Look if took_over(&next).await => break String::new(),
            Step::Look => {}
        }
    };
    if why.is_empty() {
        report(format!(
            "{label}: handed off from pid {old_pid} to pid {new_pid}; pid {old_pid} drains its connections and exits by itself"
        ));
        let reaper = match old_exit {
            Some(how) => {
                report(format!(
                    "{label}: previous process (pid {old_pid}) drained and {how}"
                ));
                tokio::spawn(async {})
            }
            None => reap(old, old_pid, spec, report.clone(), stop.clone()),
        };
        return Outcome::Replaced {
            child: new,
            pid: new_pid,
            spec: Box::new(next),
            reaper,
        };
    }
    match old_exit {
        None => {
            restore();
            report(format!(
                "{label}: hand-off failed: {why}; pid {old_pid} keeps serving"
            ));
            Outcome::Kept { child: old, why }
        }
        Some(how) => Outcome::Gone {
            why: format!("{why}; the previous process (pid {old_pid}) {how} meanwhile"),
        },
    }
}

/// What a hand-off waits for.
enum Step {
    NewExited(String),
    OldExited(String),
    Stop,
    Late,
    Look,
}

/// Whether the new process has taken over: it reported its addresses and passes its check.
async fn took_over(spec: &Spec) -> bool {
    if !spec.addresses.as_deref().is_none_or(Path::exists) {
        return false;
    }
    match &spec.ready {
        Some(probe) => probe.passes().await,
        None => true,
    }
}

/// Waits for the old process to exit after its drain; stops it if the slot stops first.
fn reap(
    mut old: Child,
    pid: u32,
    spec: &Spec,
    report: Report,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let (label, grace) = (spec.label.clone(), spec.grace);
    tokio::spawn(async move {
        let exit = tokio::select! {
            exit = old.wait() => Some(exited(exit)),
            _ = stop.wait_for(|s| *s) => None,
        };
        let how = match exit {
            Some(how) => how,
            None => terminate(&mut old, pid, grace).await,
        };
        report(format!(
            "{label}: previous process (pid {pid}) drained and {how}"
        ));
    })
}

fn exited(exit: std::io::Result<std::process::ExitStatus>) -> String {
    match exit {
        Ok(s) => describe(s),
        Err(e) => format!("was lost: {e}"),
    }
}

/// The last lines of the log, where the new process said why it failed.
fn last_words(log: &Path) -> String {
    let lines = tail(log, 3);
    match lines.is_empty() {
        true => String::new(),
        false => format!(
            "; last log lines ({}): {}",
            log.display(),
            lines.join(" | ")
        ),
    }
}

#[cfg(test)]
mod tests;
