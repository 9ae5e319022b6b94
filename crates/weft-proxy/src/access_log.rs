//! One JSON line per request or TCP connection, on stdout (the default everywhere in weft).
//! Every record also goes to the metrics and to the taps ([`crate::tap`]), whether or not the
//! log is on: this is the one place records are emitted.
//!
//! Lines wait in a [`Buffer`] owned by the proxy and go out together (every [`FLUSH_EVERY`]
//! from the proxy's [`Buffer::run`] task, at once when [`FLUSH_AT`] bytes are waiting, and when
//! the proxy has drained): one write for many requests instead of one each, on the hot path.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use weft_core::model::ProxyConfig;

use crate::record::Record;

/// How often the waiting lines are written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Lines are written at once when this many bytes wait.
pub const FLUSH_AT: usize = 32 * 1024;

/// Where the lines go: stdout, or anything else (tests).
pub type Sink = Box<dyn Write + Send>;

/// The lines waiting to be written, and where they go. One per proxy.
pub struct Buffer {
    lines: Mutex<Vec<u8>>,
    out: Mutex<Sink>,
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

    /// A buffer writing to `out`.
    pub fn to(out: Sink) -> Arc<Buffer> {
        Arc::new(Buffer {
            lines: Mutex::new(Vec::new()),
            out: Mutex::new(out),
        })
    }

    fn push(&self, r: &Record) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if serde_json::to_writer(&mut *lines, r).is_ok() {
            lines.push(b'\n');
        }
        let full = lines.len() >= FLUSH_AT;
        drop(lines);
        if full {
            self.flush();
        }
    }

    /// Writes the waiting lines (also called when the proxy has drained).
    pub fn flush(&self) {
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner));
        if !lines.is_empty() {
            let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = out.write_all(&lines);
            let _ = out.flush();
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until the task is dropped (a task of the proxy's).
    pub async fn run(self: Arc<Self>) {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            self.flush();
        }
    }
}

/// Counts every record in the metrics, and writes it when the log is enabled.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub enabled: bool,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub buffer: Arc<Buffer>,
    /// The workload served (the metrics' own side), once the control plane sent it.
    pub me: Option<Arc<ProxyConfig>>,
    pub tap: Arc<crate::tap::Hub>,
}

impl AccessLog {
    pub fn write(&self, r: &Record) {
        self.metrics.observe(r, self.me.as_deref());
        self.tap.publish(r);
        if self.enabled {
            self.buffer.push(r);
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

    #[tokio::test(start_paused = true)]
    async fn lines_wait_for_the_flusher_and_disabled_logs_write_nothing() {
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
        assert!(sink.0.lock().unwrap().is_empty(), "waits for a flush");
        let flusher = tokio::spawn(buffer.clone().run());
        while sink.0.lock().unwrap().is_empty() {
            tokio::time::sleep(FLUSH_EVERY).await;
        }
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(r#""direction":"outbound""#), "{text}");
        log.enabled = false;
        log.write(&Record::new("inbound"));
        buffer.flush();
        assert_eq!(sink.0.lock().unwrap().split(|b| *b == b'\n').count(), 2);
        flusher.abort();
    }
}
