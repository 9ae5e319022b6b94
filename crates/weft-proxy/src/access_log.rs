//! One JSON line per request or TCP connection, on stdout (the default everywhere in weft).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    pub ts_ms: u64,
    /// `outbound`, `inbound` or `gateway`.
    pub direction: &'static str,
    /// `HTTP/1.1`, `HTTP/2.0`, `TCP`.
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub duration_ms: f64,
    /// Destination Service (`ns/name`) when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Route rule that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Address the request was sent to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Stage that failed (`weft-error`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downstream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// The peer's SPIFFE ID: the client's (inbound over mTLS), or the server's (outbound to a
    /// pod address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_identity: Option<String>,
    /// The AuthorizationPolicy that denied the request, or that allowed it when one had to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl Record {
    pub fn new(direction: &'static str) -> Self {
        Record {
            ts_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            direction,
            ..Default::default()
        }
    }

    /// A record for an HTTP request, from what the client sent.
    pub fn for_request(
        direction: &'static str,
        parts: &http::request::Parts,
        peer: std::net::SocketAddr,
    ) -> Self {
        Record {
            protocol: format!("{:?}", parts.version),
            method: Some(parts.method.to_string()),
            path: parts.uri.path_and_query().map(|p| p.to_string()),
            authority: crate::forward::authority(parts),
            downstream: Some(peer.to_string()),
            ..Record::new(direction)
        }
    }

    pub fn finish(&mut self, elapsed: Duration) {
        self.duration_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    }
}

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
