//! Supervised processes: started with their output in a log file, restarted when they exit (at
//! once the first time, with backoff while they keep exiting), checked for readiness as long as
//! they run, stopped with SIGTERM (then SIGKILL after a grace period), and reported in the
//! instance's status. A process with a hand-off path can be replaced without a gap
//! ([`handoff`]): the new one starts first and the old one exits by itself.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use weft_core::events::Type;

pub use crate::board::Board;
use crate::readiness::{Probe, Tracker};
use crate::reason::NotReady;
use crate::rundir::tail;
use crate::status::{now_ms, start_ticks};

pub mod handoff;
pub mod limits;

pub use handoff::HandedOff;

/// The first wait between restarts of a process that keeps exiting; it doubles each time.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before exiting is restarted at once again.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Progress lines for the person who ran `weft up`.
pub type Report = Arc<dyn Fn(String) + Send + Sync>;

/// Which process of the instance a status entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// The control plane of revision `i` (its index in the registry).
    Control(usize),
    Gateway(usize),
    /// The node proxy of the plan's node `i`.
    Node(usize),
    Proxy(usize),
    App(usize),
    /// The Prometheus scraping the mesh (`weft up --prometheus`).
    Prometheus,
}

/// How to run one process.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Names it in reports: `control`, `pod shop/cart-0 app`.
    pub label: String,
    pub slot: Slot,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Run inside a pod: its network namespace file and `etc` directory.
    pub pod: Option<(PathBuf, PathBuf)>,
    /// The `weft` executable (for `weft pod-exec`).
    pub weft: PathBuf,
    pub log: PathBuf,
    /// How to tell it is ready; without a probe it is ready once started.
    pub ready: Option<Probe>,
    /// Where it reports the addresses it bound ([`crate::addresses`]): removed before each
    /// start, and the process counts as ready only once it is there again.
    pub addresses: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Its CPU and memory limits, when it has any: it runs in a cgroup of its own.
    pub limits: Option<limits::Limited>,
}

impl Spec {
    pub(crate) fn command(&self) -> anyhow::Result<Command> {
        let mut cmd = match &self.pod {
            Some((netns, etc)) => {
                let mut c = Command::new(&self.weft);
                c.arg("pod-exec").arg("--netns").arg(netns);
                c.arg("--etc").arg(etc);
                // Its error, if the process cannot start, is a line of the process's log.
                if crate::launch::logs_json(&self.argv) {
                    c.args(crate::launch::JSON_LOGS);
                }
                if let Some(dir) = &self.cwd {
                    c.arg("--cwd").arg(dir);
                }
                c.arg("--").args(&self.argv);
                c
            }
            None => {
                let mut c = Command::new(&self.argv[0]);
                c.args(&self.argv[1..]);
                if let Some(dir) = &self.cwd {
                    c.current_dir(dir);
                }
                c
            }
        };
        if let Some(dir) = self.log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if let Some(file) = &self.addresses {
            match std::fs::remove_file(file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e)?,
                _ => {}
            }
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        if let Some(limits::Limited { group: Ok(g), .. }) = &self.limits
            && g.exists()
        {
            cmd.env(
                crate::cgroup::CGROUP_ENV,
                std::env::join_paths(g.procs_files())?,
            );
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: Ctrl-C reaches `weft up`, which stops pods in order.
            .process_group(0)
            .kill_on_drop(false);
        Ok(cmd)
    }
}

/// Runs `spec` until `stop` turns true, restarting it when it exits. `ready` turns true each
/// time the process reports ready (or at start when it has no readiness check). Each request
/// on `handoffs` replaces the running process by hand-off ([`handoff`]).
pub async fn supervise(
    mut spec: Spec,
    gate: Option<watch::Receiver<bool>>,
    board: Arc<Board>,
    report: Report,
    mut stop: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
    mut handoffs: mpsc::Receiver<handoff::Request>,
) {
    if let Some(mut gate) = gate {
        tokio::select! {
            _ = gate.wait_for(|r| *r) => {}
            _ = stop.wait_for(|s| *s) => {
                return board.process(spec.slot, |p| p.state = "stopped".into());
            }
        }
    }
    let mut backoff = Backoff::default();
    // Processes that handed off and drain: waited for before this returns.
    let mut reapers = Vec::new();
    // Whether it was said that its limits are not enforced.
    let mut warned = false;
    loop {
        if *stop.borrow() {
            break;
        }
        let group = limits::prepare(&spec, &board, &report, &mut warned);
        let mut started = Instant::now();
        let spawned = spec.command().and_then(|mut c| Ok(c.spawn()?));
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let delay = backoff.next(Duration::ZERO);
                report(format!(
                    "{}: cannot start: {e:#}; {}",
                    spec.label,
                    restarting(delay)
                ));
                let what = format!("cannot start: {e:#}; {}", restarting(delay));
                board.note(spec.slot, Type::Warning, "FailedToStart", &what);
                board.process(spec.slot, |p| {
                    p.state = "restarting".into();
                    p.last_exit = Some(format!("cannot start: {e:#}"));
                    p.exited_at_ms = Some(now_ms());
                    p.next_start_at_ms = Some(now_ms() + delay.as_millis() as u64);
                    p.restarts += 1;
                });
                if wait_or_stop(&mut stop, delay).await {
                    break;
                }
                continue;
            }
        };
        let mut pid = child.id().unwrap_or(0);
        if let Some(g) = &group {
            // `weft pod-exec` joins by itself; a revision's older one may not.
            let _ = crate::cgroup::join(&g.procs_files(), pid);
        }
        board.process(spec.slot, |p| {
            p.state = "running".into();
            p.pid = Some(pid);
            p.start_ticks = start_ticks(pid);
            p.started_at_ms = Some(now_ms());
            p.ready_at_ms = None;
            p.next_start_at_ms = None;
            (p.reason, p.fix) = (None, None);
        });
        board.note(
            spec.slot,
            Type::Normal,
            "Started",
            &format!("started (pid {pid})"),
        );
        let mut readiness = watch_ready(&spec, pid, board.clone(), report.clone(), ready.clone());
        let exit = loop {
            let event = tokio::select! {
                exit = child.wait() => Event::Exited(exited(exit)),
                _ = stop.wait_for(|s| *s) => Event::Stop,
                Some(req) = handoffs.recv() => Event::HandOff(req),
            };
            let req = match event {
                Event::Exited(how) => break End::Exited(how),
                Event::Stop => {
                    readiness.abort();
                    break End::Stopped(terminate(&mut child, pid, spec.grace).await);
                }
                Event::HandOff(req) => req,
            };
            readiness.abort();
            let outcome = handoff::replace(&spec, child, pid, req.binary, &report, &stop);
            match outcome.await {
                handoff::Outcome::Replaced {
                    child: new,
                    pid: new_pid,
                    spec: next,
                    reaper,
                } => {
                    let _ = req.reply.send(Ok(HandedOff {
                        old_pid: pid,
                        new_pid,
                    }));
                    reapers.push(reaper);
                    (spec, child, pid, started) = (*next, new, new_pid, Instant::now());
                    board.process(spec.slot, |p| {
                        p.pid = Some(pid);
                        p.start_ticks = start_ticks(pid);
                        p.started_at_ms = Some(now_ms());
                        p.ready_at_ms = Some(now_ms());
                    });
                }
                handoff::Outcome::Kept { child: old, why } => {
                    let _ = req.reply.send(Err(why));
                    child = old;
                }
                handoff::Outcome::Gone { why } => {
                    let _ = req.reply.send(Err(why.clone()));
                    // Nothing runs in the slot: restarted as after a crash.
                    break End::Exited(why);
                }
            }
            readiness = watch_ready(&spec, pid, board.clone(), report.clone(), ready.clone());
        };
        readiness.abort();
        let how = match exit {
            End::Exited(how) => match limits::oom_killed(&spec, group.as_ref()) {
                Some(oom) => format!("{oom} ({how})"),
                None => how,
            },
            End::Stopped(how) => {
                report(format!("{}: stopped ({how})", spec.label));
                board.note(
                    spec.slot,
                    Type::Normal,
                    "Stopped",
                    &format!("stopped ({how})"),
                );
                board.process(spec.slot, |p| {
                    p.state = "stopped".into();
                    p.pid = None;
                    p.last_exit = Some(how);
                });
                break;
            }
        };
        let _ = ready.send(false);
        let ran = started.elapsed();
        if *stop.borrow() {
            board.process(spec.slot, |p| {
                p.state = "stopped".into();
                p.pid = None;
                p.last_exit = Some(how);
            });
            break;
        }
        let delay = backoff.next(ran);
        report(crash_report(&spec, &how, ran, delay));
        board.record(crash_event(&spec, &board, &how, ran, delay));
        if !delay.is_zero() {
            let what = format!(
                "restarts in {}s (back-off after {} exits in a row)",
                delay.as_secs(),
                backoff.exits
            );
            board.note(spec.slot, Type::Warning, "BackOff", &what);
        }
        board.process(spec.slot, |p| {
            p.state = "restarting".into();
            p.pid = None;
            p.restarts += 1;
            p.last_exit = Some(how);
            p.exited_at_ms = Some(now_ms());
            p.next_start_at_ms = Some(now_ms() + delay.as_millis() as u64);
            (p.reason, p.fix) = (None, None);
        });
        if wait_or_stop(&mut stop, delay).await {
            board.process(spec.slot, |p| p.state = "stopped".into());
            break;
        }
    }
    for r in reapers {
        let _ = r.await;
    }
    if let Some(limits::Limited { group: Ok(g), .. }) = &spec.limits {
        g.remove();
    }
}

/// How a run of the process ended: it exited (how), or was stopped (how).
enum End {
    Exited(String),
    Stopped(String),
}

/// What the supervisor waits for while its process runs.
enum Event {
    Exited(String),
    Stop,
    HandOff(handoff::Request),
}

fn exited(exit: std::io::Result<std::process::ExitStatus>) -> String {
    match exit {
        Ok(s) => describe(s),
        Err(e) => format!("lost: {e}"),
    }
}

/// How long to wait before starting a process again: not at all after its first exit (a
/// crashed sidecar costs no more than its restart), then 1s, 2s, 4s, … up to [`MAX_BACKOFF`]
/// while it keeps exiting within [`STABLE_AFTER`] of its start.
#[derive(Debug, Default)]
struct Backoff {
    /// Exits in a row, each after a short run.
    exits: u32,
}

impl Backoff {
    /// The wait after an exit that came `ran` after the start.
    fn next(&mut self, ran: Duration) -> Duration {
        if ran >= STABLE_AFTER {
            self.exits = 0;
        }
        self.exits += 1;
        match self.exits {
            1 => Duration::ZERO,
            n => MIN_BACKOFF
                .saturating_mul(2u32.saturating_pow(n - 2))
                .min(MAX_BACKOFF),
        }
    }
}

fn restarting(delay: Duration) -> String {
    if delay.is_zero() {
        "restarting now".into()
    } else {
        format!("restarting in {}s", delay.as_secs())
    }
}

/// What a person needs to see when a process exits: how, after how long, and its last words.
fn crash_report(spec: &Spec, how: &str, ran: Duration, delay: Duration) -> String {
    let mut msg = format!(
        "{}: {how} after {:.1}s; {}",
        spec.label,
        ran.as_secs_f64(),
        restarting(delay)
    );
    let lines = tail(&spec.log, 5);
    if !lines.is_empty() {
        msg.push_str(&format!("; last log lines ({}):", spec.log.display()));
        for l in lines {
            msg.push_str("\n    | ");
            msg.push_str(&l);
        }
    }
    msg
}

/// The event of a crash: how the process ended (its exit status or signal), after how long,
/// when it starts again, and its last log lines.
fn crash_event(
    spec: &Spec,
    board: &Board,
    how: &str,
    ran: Duration,
    delay: Duration,
) -> weft_core::events::Event {
    let lines = tail(&spec.log, 5);
    let last = (lines.last())
        .map(|l| format!("; last log line: {l}"))
        .unwrap_or_default();
    let what = format!(
        "{how} after {:.1}s; {}{last}",
        ran.as_secs_f64(),
        restarting(delay)
    );
    let reason = match limits::oom_kill(how) {
        true => limits::OOM_KILLED,
        false => "Crashed",
    };
    let mut event = board.event(spec.slot, Type::Warning, reason, &what);
    (event.exit_code, event.signal) = exit_of(how);
    event.details = lines;
    event
}

/// The exit status or signal in how a run ended ([`describe`]'s words).
fn exit_of(how: &str) -> (Option<i32>, Option<String>) {
    let after = |what: &str| {
        let at = how.find(what)? + what.len();
        let rest = &how[at..];
        Some(rest[..rest.find(')').unwrap_or(rest.len())].to_string())
    };
    if let Some(code) = after("exited with status ") {
        return (code.parse().ok(), None);
    }
    (None, after("killed by signal "))
}

/// Follows the process's readiness for as long as it runs (see [`crate::readiness`]): marks it
/// ready, or not, in the status (and so in the pods file) and on `ready`.
fn watch_ready(
    spec: &Spec,
    pid: u32,
    board: Arc<Board>,
    report: Report,
    ready: watch::Sender<bool>,
) -> tokio::task::JoinHandle<()> {
    let probe = spec.ready.clone();
    let addresses = spec.addresses.clone();
    let slot = spec.slot;
    let label = spec.label.clone();
    tokio::spawn(async move {
        let Some(probe) = probe else {
            board.process(slot, |p| {
                p.state = "ready".into();
                p.ready_at_ms = Some(now_ms());
            });
            report(format!("{label}: started (pid {pid})"));
            board.note(
                slot,
                Type::Normal,
                "Ready",
                "is ready (it has no readiness check)",
            );
            let _ = ready.send(true);
            return;
        };
        let mut tracker = Tracker::default();
        let mut was_ready = false;
        // The reason last shown, so the status changes only when it does.
        let mut shown: Option<NotReady> = None;
        loop {
            // Ready once it answers and has said where it listens.
            let checked = match probe.check().await {
                Ok(()) if addresses.as_deref().is_none_or(Path::exists) => Ok(()),
                Ok(()) => Err(NotReady::new("starting: it has not said where it listens")),
                Err(why) => Err(why),
            };
            let changed = tracker.observe(checked.is_ok());
            match changed {
                Some(true) => {
                    shown = None;
                    board.process(slot, |p| {
                        p.state = "ready".into();
                        // The first time in this run: when it could first take traffic.
                        p.ready_at_ms.get_or_insert_with(now_ms);
                        (p.reason, p.fix) = (None, None);
                    });
                    let again = if was_ready { " again" } else { "" };
                    report(format!("{label}: ready{again} (pid {pid})"));
                    board.note(slot, Type::Normal, "Ready", &format!("is ready{again}"));
                    was_ready = true;
                    let _ = ready.send(true);
                }
                Some(false) => {
                    let detail = checked
                        .as_ref()
                        .err()
                        .map_or(String::new(), |w| format!(": {w}"));
                    board.process(slot, |p| p.state = "running".into());
                    let why = format!(
                        "not ready: its readiness check failed {} times in a row{detail}; \
                         out of the endpoints until it passes again",
                        crate::readiness::FAILURES
                    );
                    report(format!("{label}: {why}"));
                    board.note(slot, Type::Warning, "Unhealthy", &why);
                    let _ = ready.send(false);
                }
                None => {}
            }
            // While not ready: why, each time that changes.
            if let Err(why) = checked
                && !tracker.is_ready()
                && shown.as_ref() != Some(&why)
            {
                board.process(slot, |p| {
                    (p.reason, p.fix) = (Some(why.reason.clone()), why.fix.clone());
                });
                shown = Some(why);
            }
            tokio::time::sleep(tracker.interval()).await;
        }
    })
}

/// Sleeps `d`; true if told to stop meanwhile.
async fn wait_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    let stopped = tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}

/// SIGTERM, then SIGKILL after `grace`; how it ended.
async fn terminate(child: &mut tokio::process::Child, pid: u32, grace: Duration) -> String {
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(s)) => describe(s),
        _ => {
            let _ = child.kill().await;
            format!(
                "killed after {}s without exiting on SIGTERM",
                grace.as_secs()
            )
        }
    }
}

fn describe(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!(
            "killed by signal {}",
            Signal::try_from(sig).map_or(sig.to_string(), |s| s.as_str().to_string())
        ),
        _ => "exited".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_status_or_signal_is_read_from_how_a_run_ended() {
        assert_eq!(exit_of("exited with status 3"), (Some(3), None));
        assert_eq!(
            exit_of("killed by signal SIGKILL"),
            (None, Some("SIGKILL".into()))
        );
        assert_eq!(exit_of("lost: no child"), (None, None));
        let oom = "OOMKilled: it went over its memory limit of 8Mi (killed by signal SIGKILL)";
        assert_eq!(exit_of(oom), (None, Some("SIGKILL".into())));
    }

    #[test]
    fn the_first_exit_restarts_at_once_then_backoff_grows() {
        let mut b = Backoff::default();
        let short = Duration::from_secs(1);
        let waits: Vec<u64> = (0..8).map(|_| b.next(short).as_secs()).collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16, 30, 30]);
        assert!(b.next(short) == MAX_BACKOFF);
        // A run that lasted starts over: at once again.
        assert_eq!(b.next(STABLE_AFTER), Duration::ZERO);
        assert_eq!(b.next(short), MIN_BACKOFF);
    }
}
