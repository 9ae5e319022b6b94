//! One line per request or TCP connection, on stdout (JSON by default everywhere in weft), in
//! the workload's format ([`render`]). Every record also goes to the metrics and to the taps
//! ([`crate::tap`]), whether or not the log is on: this is the one place records are emitted.
//!
//! Logging never blocks a request: lines are appended to a [`Buffer`] and written by its own
//! thread (every [`FLUSH_EVERY`], at once when [`FLUSH_AT`] bytes wait, and when the proxy has
//! drained), one write for many requests. When the output does not keep up and
//! [`MAX_WAITING`] bytes wait, new lines are dropped and counted, not queued without bound.

mod render;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

use weft_core::access_log::LogFormat;
use weft_core::model::ProxyConfig;

use crate::record::Record;

/// How often the waiting lines are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Lines are written at once when this many bytes wait.
pub const FLUSH_AT: usize = 32 * 1024;
/// Past this many waiting bytes, lines are dropped (and counted) until the writer catches up.
pub const MAX_WAITING: usize = 4 * 1024 * 1024;

/// Where the lines go: stdout, or anything else (tests).
pub type Sink = Box<dyn Write + Send>;

/// The lines waiting to be written, and where they go. One per proxy process.
pub struct Buffer {
    lines: Mutex<Vec<u8>>,
    wake: Condvar,
    out: Mutex<Sink>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer").finish_non_exhaustive()
    }
}

impl Buffer {
    /// A buffer writing to stdout.
    pub fn stdout() -> Arc<Buffer> {
        Buffer::to(Box::new(std::io::stdout()))
    }

    /// A buffer writing to `out`, with its writer thread (which ends with the buffer).
    pub fn to(out: Sink) -> Arc<Buffer> {
        let buffer = Arc::new(Buffer {
            lines: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            out: Mutex::new(out),
            dropped: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&buffer);
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer(weak));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "access log: no writer thread; lines are written when the proxy drains");
        }
        buffer
    }

    fn push(&self, line: &[u8]) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() >= MAX_WAITING {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        lines.extend_from_slice(line);
        if lines.len() >= FLUSH_AT {
            self.wake.notify_one();
        }
    }

    /// Writes the waiting lines (the writer thread's work; also called when the proxy has
    /// drained).
    pub fn flush(&self) {
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner));
        if !lines.is_empty() {
            let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = out.write_all(&lines);
            let _ = out.flush();
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "access log: lines dropped because the output did not keep up"
            );
        }
    }
}

/// Waits for lines (a full batch, or [`FLUSH_EVERY`]) and writes them, until the buffer is gone.
fn writer(buffer: Weak<Buffer>) {
    while let Some(b) = buffer.upgrade() {
        let lines = b.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let waited = b
            .wake
            .wait_timeout_while(lines, FLUSH_EVERY, |l| l.len() < FLUSH_AT);
        drop(waited);
        b.flush();
    }
}

/// Counts every record in the metrics, and writes it when the log is enabled.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub enabled: bool,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub buffer: Arc<Buffer>,
    /// The workload served (the metrics' own side, and the log's format), once the control
    /// plane sent it.
    pub me: Option<Arc<ProxyConfig>>,
    pub tap: Arc<crate::tap::Hub>,
}

impl AccessLog {
    pub fn write(&self, r: &Record) {
        self.metrics.observe(r, self.me.as_deref());
        self.tap.publish(r);
        if self.enabled {
            let standard = LogFormat::default();
            let format = self
                .me
                .as_ref()
                .map_or(&standard, |c| &c.settings.access_log_format);
            let mut line = Vec::with_capacity(512);
            render::line(format, r, self.me.as_deref(), &mut line);
            self.buffer.push(&line);
        }
    }

    /// Counts a TCP connection opened (its record is written when it closes).
    pub fn opened(&self, r: &Record) {
        self.metrics.opened(r, self.me.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_wait_for_the_writer_and_disabled_logs_write_nothing() {
        let sink = Shared::default();
        let buffer = Buffer::to(Box::new(sink.clone()));
        let mut log = AccessLog {
            enabled: true,
            metrics: Arc::default(),
            buffer: buffer.clone(),
            me: None,
            tap: Arc::default(),
        };
        log.write(&Record::new("outbound"));
        while sink.0.lock().unwrap().is_empty() {
            std::thread::sleep(FLUSH_EVERY / 4);
        }
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(r#""direction":"outbound""#), "{text}");
        log.enabled = false;
        log.write(&Record::new("inbound"));
        buffer.flush();
        assert_eq!(sink.0.lock().unwrap().split(|b| *b == b'\n').count(), 2);
    }
}
