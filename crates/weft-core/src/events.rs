//! Events: what happened to a mesh's objects and when — a process crashed (how, and its last
//! words), restarted after a back-off, became ready or not; a configuration change was applied
//! or rejected (with the problems); a proxy connected, refused a push, or moved to another
//! revision. `weft up`'s supervisor and every control plane it runs append them to one file per
//! mesh, one JSON object a line ([`Log`]), and `weft events` reads it back.
//!
//! Objects are named as every CLI verb names them: `pod/NAMESPACE/NAME` for anything that runs
//! (a workload's pod, the ingress gateway `pod/shop/gateway-ingress`, a node proxy
//! `pod/weft-system/node-1`, a control plane `pod/weft-system/control-REV`), `config/DIR` for
//! the configuration.
//!
//! Writers open the file in append mode and write each line whole, so two processes can share
//! it. Past [`MAX_BYTES`] the file moves to `FILE.1` (replacing an older one) and a new one
//! starts: the history is bounded.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Past this size the events file moves aside and a new one starts.
pub const MAX_BYTES: u64 = 4 << 20;

/// Whether something went as expected (`Normal`) or needs a look (`Warning`), as Kubernetes
/// events say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Type {
    Normal,
    Warning,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    #[serde(rename = "type")]
    pub kind: Type,
    /// One CamelCase word: `Crashed`, `BackOff`, `Ready`, `ConfigRejected`, …
    pub reason: String,
    /// What it happened to: `pod/shop/cart-0`, `config/shop`.
    pub object: String,
    pub message: String,
    /// Who saw it: `weft up`, `control plane v0-1-0`.
    pub source: String,
    /// A process's exit status, when it exited by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that ended a process (`SIGKILL`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// More lines: a crashed process's last log lines, a rejected change's problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Event {
    /// An event of now, without exit status or details.
    pub fn new(kind: Type, reason: &str, object: String, message: String, source: &str) -> Event {
        Event {
            time_ms: now_ms(),
            kind,
            reason: reason.into(),
            object,
            message,
            source: source.into(),
            exit_code: None,
            signal: None,
            details: vec![],
        }
    }

    /// The pod object `pod/NAMESPACE/NAME`.
    pub fn pod(namespace: &str, name: &str) -> String {
        format!("pod/{namespace}/{name}")
    }

    /// The JSON line of this event, with its newline.
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The events file of a mesh, appended to by its writers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    pub path: PathBuf,
}

impl Log {
    pub fn new(path: impl Into<PathBuf>) -> Log {
        Log { path: path.into() }
    }

    /// Where the file moves once it is full.
    pub fn older(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(".1");
        PathBuf::from(name)
    }

    /// Appends `event` as one line (a single write, so lines of several writers never mix).
    pub fn append(&self, event: &Event) -> std::io::Result<()> {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() > MAX_BYTES) {
            std::fs::rename(&self.path, self.older())?;
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(event.line().as_bytes())
    }

    /// Every event recorded, oldest first (the moved-aside file's, then the current one's);
    /// lines that do not parse are skipped.
    pub fn read(&self) -> Vec<Event> {
        let mut out: Vec<Event> = [self.older(), self.path.clone()]
            .iter()
            .flat_map(|p| parse(&read_text(p)))
            .collect();
        // Two writers: order by time (stable, so one writer's order stays).
        out.sort_by_key(|e| e.time_ms);
        out
    }
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The events of JSON lines; lines that do not parse (a line cut short) are skipped.
pub fn parse(text: &str) -> Vec<Event> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_json_line_that_reads_back() {
        let mut e = Event::new(
            Type::Warning,
            "Crashed",
            Event::pod("shop", "cart-0"),
            "app exited with status 3".into(),
            "weft up",
        );
        e.exit_code = Some(3);
        e.details = vec!["boom".into()];
        let line = e.line();
        assert!(
            line.ends_with('\n') && !line.trim_end().contains('\n'),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "Warning");
        assert_eq!(v["object"], "pod/shop/cart-0");
        assert_eq!(v["exitCode"], 3);
        assert!(v.get("signal").is_none(), "{v}");
        let text = format!("{line}{{\"cut short\n{line}");
        assert_eq!(parse(&text), vec![e.clone(), e]);
    }

    #[test]
    fn a_full_log_moves_aside_and_both_are_read() {
        let dir = std::env::temp_dir().join(format!("weft-events-{}", std::process::id()));
        let log = Log::new(dir.join("events.jsonl"));
        let e = |reason: &str, t: u64| Event {
            time_ms: t,
            ..Event::new(Type::Normal, reason, "config/shop".into(), "m".into(), "t")
        };
        log.append(&e("Second", 2)).unwrap();
        std::fs::write(log.older(), e("First", 1).line()).unwrap();
        let reasons: Vec<String> = log.read().into_iter().map(|e| e.reason).collect();
        assert_eq!(reasons, ["First", "Second"]);
        // Past the limit, the next append starts a new file.
        let big = "x".repeat(MAX_BYTES as usize + 1);
        std::fs::write(&log.path, big).unwrap();
        log.append(&e("Third", 3)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&log.path).unwrap(),
            e("Third", 3).line()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
