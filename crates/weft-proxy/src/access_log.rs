//! One JSON line per request or TCP connection, on stdout (the default everywhere in weft).

use std::io::Write;
use std::time::Duration;

use crate::record::Record;

/// Counts every record in the metrics, and writes it when the log is enabled.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pub enabled: bool,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl AccessLog {
    pub fn write(&self, r: &Record) {
        self.metrics.observe(r);
        if !self.enabled {
            return;
        }
        let mut buf = BUFFER.lock().unwrap_or_else(|p| p.into_inner());
        if serde_json::to_writer(&mut *buf, r).is_ok() {
            buf.push(b'\n');
        }
        let full = buf.len() >= FLUSH_AT;
        drop(buf);
        if full {
            flush();
        } else {
            FLUSHER.call_once(|| {
                std::thread::spawn(|| {
                    loop {
                        std::thread::sleep(FLUSH_EVERY);
                        flush();
                    }
                });
            });
        }
    }
}

/// Lines wait here and go to stdout together (every [`FLUSH_EVERY`], or once [`FLUSH_AT`]
/// bytes are waiting): one write for many requests instead of one each, on the hot path.
static BUFFER: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
static FLUSHER: std::sync::Once = std::sync::Once::new();
const FLUSH_EVERY: Duration = Duration::from_millis(100);
const FLUSH_AT: usize = 32 * 1024;

/// Writes the waiting lines to stdout (also called when the proxy has drained).
pub fn flush() {
    let lines = std::mem::take(&mut *BUFFER.lock().unwrap_or_else(|p| p.into_inner()));
    if !lines.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&lines);
        let _ = out.flush();
    }
}
