//! Change notification for the files the control plane re-reads: the configuration directory,
//! the pods file and the bootstrap credentials. [`Changes::next`] returns when something may
//! have changed; the caller then compares what it sees with what it last read, as before.
//!
//! On Linux inotify tells at once: a directory tree is watched as every directory in it (editors
//! replace a file by renaming a new one over it, so the directory is what sees that), a single
//! file as its parent directory filtered by the file's name (and, for a symbolic link, the
//! target's directory too). A burst of events (write, then rename) is one change: [`Changes`]
//! waits until [`QUIET`] passes without another event, at most [`MAX_DELAY`] in all. A slow
//! [`SAFETY_POLL`] still runs for events a filesystem does not report (network mounts, a watched
//! directory removed and made again). When inotify cannot be set up, the reason is logged and
//! [`FALLBACK_POLL`] is used instead.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// After an event, how long it must stay quiet before the change is read.
pub const QUIET: Duration = Duration::from_millis(20);
/// The longest a change waits for quiet: a file rewritten without pause is still read.
pub const MAX_DELAY: Duration = Duration::from_millis(500);
/// How often the files are checked anyway, for changes inotify does not see.
pub const SAFETY_POLL: Duration = Duration::from_secs(5);
/// How often the files are checked when inotify cannot be used.
pub const FALLBACK_POLL: Duration = Duration::from_millis(250);

/// Why inotify cannot be used; the poll takes over.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start inotify: {0} (check fs.inotify.max_user_instances)")]
    Init(#[source] nix::Error),
    #[error("cannot watch {path}: {source} (check fs.inotify.max_user_watches)")]
    Watch {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot register inotify with the runtime: {0}")]
    Register(#[source] io::Error),
}

/// What is watched.
#[derive(Debug, Clone)]
enum Target {
    /// A directory and every directory below it.
    Tree(PathBuf),
    /// One file, seen through its parent directories; `names` are the file names that count.
    File {
        dirs: Vec<PathBuf>,
        names: HashSet<OsString>,
    },
}

impl Target {
    fn file(path: &Path) -> Target {
        let mut dirs = Vec::new();
        let mut names = HashSet::new();
        let canonical = std::fs::canonicalize(path).ok();
        for p in std::iter::once(path).chain(canonical.as_deref()) {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
            if let Some(name) = p.file_name() {
                names.insert(name.to_os_string());
            }
        }
        Target::File { dirs, names }
    }

    /// Whether an event on an entry named `name` (none: the watched directory itself) is a
    /// change worth reading.
    fn counts(&self, mask: AddWatchFlags, name: Option<&OsString>) -> bool {
        if mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
            return true;
        }
        match self {
            Target::Tree(_) => true,
            Target::File { names, .. } => name.is_none_or(|n| names.contains(n)),
        }
    }
}

/// The inotify descriptor, readable through tokio.
#[derive(Debug)]
struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Something that says when an event arrives; inotify, or a channel in tests.
trait Events {
    /// Returns at the next event that counts; never, once the source failed.
    async fn event(&mut self);
}

/// An inotify instance watching a [`Target`].
#[derive(Debug)]
struct Inotified {
    fd: AsyncFd<Fd>,
    target: Target,
    /// Set when reading failed; the watcher then falls back to polling.
    failed: Option<io::Error>,
}

const MASK: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF);

impl Inotified {
    fn new(target: Target) -> Result<Inotified, Error> {
        let inotify =
            Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).map_err(Error::Init)?;
        // Deprecated because tokio cannot check that the descriptor stays open and the same
        // for the `AsyncFd`'s life; `Fd` owns it (through `Inotify`) and never changes it, so
        // this holds, and no `unsafe` is needed for the unsafe `register` that replaces it.
        #[allow(deprecated)]
        let fd =
            AsyncFd::with_interest(Fd(inotify), Interest::READABLE).map_err(Error::Register)?;
        let me = Inotified {
            fd,
            target,
            failed: None,
        };
        me.add_watches()?;
        Ok(me)
    }

    /// Watches the target's directories; again after a change, so new subdirectories are
    /// watched too (watching a directory twice is harmless).
    fn add_watches(&self) -> Result<(), Error> {
        let inotify = &self.fd.get_ref().0;
        let add = |path: &Path| {
            inotify
                .add_watch(path, MASK)
                .map(drop)
                .map_err(|source| Error::Watch {
                    path: path.to_path_buf(),
                    source,
                })
        };
        match &self.target {
            Target::File { dirs, .. } => dirs.iter().try_for_each(|d| add(d)),
            Target::Tree(root) => {
                add(root)?;
                let mut stack = vec![root.clone()];
                while let Some(d) = stack.pop() {
                    let Ok(entries) = std::fs::read_dir(&d) else {
                        continue;
                    };
                    for e in entries.flatten() {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            let p = e.path();
                            // A directory removed since it was listed is no error.
                            if add(&p).is_ok() {
                                stack.push(p);
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }

    async fn read(&mut self) -> io::Result<bool> {
        let mut guard = self.fd.readable().await?;
        match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from)) {
            Ok(Ok(events)) => Ok(events
                .iter()
                .any(|e| self.target.counts(e.mask, e.name.as_ref()))),
            Ok(Err(e)) => Err(e),
            Err(_would_block) => Ok(false),
        }
    }
}

impl Events for Inotified {
    async fn event(&mut self) {
        if self.failed.is_none() {
            loop {
                match self.read().await {
                    Ok(true) => return,
                    Ok(false) => {}
                    Err(e) => {
                        self.failed = Some(e);
                        break;
                    }
                }
            }
        }
        std::future::pending().await
    }
}

/// After a first event, waits until `quiet` passes without another, but no longer than `max`
/// in all: a burst of events is one change.
async fn settle(events: &mut impl Events, quiet: Duration, max: Duration) {
    let deadline = tokio::time::sleep_until(Instant::now() + max);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = events.event() => {}
            () = tokio::time::sleep(quiet) => return,
            () = &mut deadline => return,
        }
    }
}

/// Tells when a watched directory or file may have changed.
#[derive(Debug)]
pub struct Changes {
    /// None: inotify is not in use, only the poll.
    inotify: Option<Inotified>,
    poll: Interval,
    what: &'static str,
}

impl Changes {
    /// Watches directory `dir` and every directory below it; `what` names it in logs.
    pub fn tree(dir: &Path, what: &'static str) -> Changes {
        Changes::new(Target::Tree(dir.to_path_buf()), what, SAFETY_POLL)
    }

    /// Watches file `path` (which may not exist yet); `what` names it in logs.
    pub fn file(path: &Path, what: &'static str) -> Changes {
        Changes::new(Target::file(path), what, SAFETY_POLL)
    }

    /// As [`Changes::file`], with the safety poll every `poll`.
    pub fn file_polled(path: &Path, what: &'static str, poll: Duration) -> Changes {
        Changes::new(Target::file(path), what, poll)
    }

    /// As [`Changes::tree`], with the safety poll every `poll`.
    pub fn tree_polled(dir: &Path, what: &'static str, poll: Duration) -> Changes {
        Changes::new(Target::Tree(dir.to_path_buf()), what, poll)
    }

    fn new(target: Target, what: &'static str, safety_poll: Duration) -> Changes {
        let (inotify, period) = match Inotified::new(target) {
            Ok(i) => (Some(i), safety_poll),
            Err(e) => {
                tracing::warn!(
                    "{what}: {e}; checking for changes every {} ms instead",
                    FALLBACK_POLL.as_millis()
                );
                (None, FALLBACK_POLL)
            }
        };
        Changes {
            inotify,
            poll: poll(period),
            what,
        }
    }

    /// Whether inotify is in use (false: only the poll).
    pub fn notified(&self) -> bool {
        self.inotify.is_some()
    }

    /// Returns when something may have changed: a settled burst of events, or the poll.
    pub async fn next(&mut self) {
        let Some(inotify) = &mut self.inotify else {
            self.poll.tick().await;
            return;
        };
        tokio::select! {
            () = inotify.event() => {
                settle(inotify, QUIET, MAX_DELAY).await;
            }
            _ = self.poll.tick() => {}
        }
        if let Some(e) = inotify.failed.take() {
            tracing::warn!(
                "{}: reading inotify failed: {e}; checking for changes every {} ms instead",
                self.what,
                FALLBACK_POLL.as_millis()
            );
            self.inotify = None;
            self.poll = poll(FALLBACK_POLL);
        } else if let Err(e) = inotify.add_watches() {
            // The directory may be gone for now; the poll sees it come back.
            tracing::debug!("{}: {e}", self.what);
        }
    }
}

fn poll(period: Duration) -> Interval {
    let mut poll = tokio::time::interval_at(Instant::now() + period, period);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    poll
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    /// Events sent by the test.
    struct Sent(mpsc::UnboundedReceiver<()>);

    impl Events for Sent {
        async fn event(&mut self) {
            if self.0.recv().await.is_none() {
                std::future::pending().await
            }
        }
    }

    /// Sends an event after each of `gaps`.
    fn send(gaps: Vec<u64>) -> Sent {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            for gap in gaps {
                tokio::time::sleep(Duration::from_millis(gap)).await;
                let _ = tx.send(());
            }
        });
        Sent(rx)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_one_change_read_once_it_is_quiet() {
        let start = Instant::now();
        // A write, then 10 ms later a rename, 15 ms later another write; then silence.
        let mut events = send(vec![0, 10, 15]);
        events.event().await;
        settle(&mut events, QUIET, MAX_DELAY).await;
        // The last event (at 25 ms) restarted the quiet period, and none came since.
        assert_eq!(start.elapsed(), Duration::from_millis(25) + QUIET);
        assert!(events.0.try_recv().is_err(), "every event was taken");
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_rewritten_without_pause_is_still_read() {
        let start = Instant::now();
        let mut events = send(vec![5; 1000]);
        events.event().await;
        settle(&mut events, QUIET, MAX_DELAY).await;
        assert_eq!(start.elapsed(), Duration::from_millis(5) + MAX_DELAY);
    }

    #[test]
    fn a_file_counts_only_events_on_its_name_or_its_directory() {
        let target = Target::file(Path::new("/run/weft/pods.json"));
        let name = |n: &str| Some(OsString::from(n));
        let modify = AddWatchFlags::IN_MODIFY;
        assert!(target.counts(AddWatchFlags::IN_MOVED_TO, name("pods.json").as_ref()));
        assert!(target.counts(modify, name("pods.json").as_ref()));
        assert!(!target.counts(modify, name(".pods.json.tmp").as_ref()));
        assert!(!target.counts(modify, name("credentials.json").as_ref()));
        assert!(target.counts(AddWatchFlags::IN_DELETE_SELF, None));
        assert!(target.counts(AddWatchFlags::IN_Q_OVERFLOW, None));
        let tree = Target::Tree(PathBuf::from("/etc/weft"));
        assert!(tree.counts(modify, name(".mesh.yaml.swp").as_ref()));
    }
}
