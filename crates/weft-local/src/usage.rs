//! What each pod's processes use, over time: `weft up` samples every running proxy and app
//! every [`INTERVAL`] (from its cgroup when it has one, else from `/proc`) and appends one
//! [`Sample`] per process to `usage.jsonl` in the instance's runtime directory. `weft
//! right-size` reads them back. The file is rotated past [`MAX_BYTES`] (the previous one is
//! kept as `usage.jsonl.1`), so a long-running mesh keeps hours of history in bounded space.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rundir::RunDir;

/// Time between two samples of a process.
pub const INTERVAL: Duration = Duration::from_secs(2);
/// The size past which the file is rotated.
pub const MAX_BYTES: u64 = 32 << 20;

/// One process's use over one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the interval ended, in Unix milliseconds.
    pub t: u64,
    pub namespace: String,
    pub workload: String,
    pub pod: String,
    /// `proxy` (a sidecar, or a waypoint's proxy) or `app`.
    pub container: String,
    /// Average CPU over the interval, in millicores.
    pub cpu_m: u32,
    /// Working set at the end of the interval (resident memory less the page cache the
    /// kernel can drop), in bytes: what a memory limit is measured against.
    pub memory: u64,
    /// Share (0 to 1) of the interval's CPU periods in which the process was throttled by
    /// its CPU limit; 0 without one.
    #[serde(default)]
    pub throttled: f32,
    /// `cgroup` or `proc`: where the numbers were read.
    pub source: String,
}

/// The usage file of an instance.
pub fn file(dir: &RunDir) -> PathBuf {
    dir.path.join("usage.jsonl")
}

fn previous(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

/// Every sample taken at or after `since_ms`, oldest first. Lines that do not parse (a line
/// cut short by a crash) are skipped.
pub fn read(dir: &RunDir, since_ms: u64) -> std::io::Result<Vec<Sample>> {
    let path = file(dir);
    let mut out = Vec::new();
    for p in [previous(&path), path] {
        let f = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(f).lines() {
            if let Ok(s) = serde_json::from_str::<Sample>(&line?)
                && s.t >= since_ms
            {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Appends samples to an instance's usage file, rotating it past [`MAX_BYTES`].
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    max_bytes: u64,
}

impl Writer {
    pub fn new(dir: &RunDir) -> Writer {
        Writer {
            path: file(dir),
            max_bytes: MAX_BYTES,
        }
    }

    pub fn append(&self, samples: &[Sample]) -> std::io::Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if len >= self.max_bytes {
            std::fs::rename(&self.path, previous(&self.path))?;
        }
        let mut buf = Vec::new();
        for s in samples {
            serde_json::to_writer(&mut buf, s)?;
            buf.push(b'\n');
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(&buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64) -> Sample {
        Sample {
            t,
            namespace: "shop".into(),
            workload: "cart".into(),
            pod: "cart-0".into(),
            container: "proxy".into(),
            cpu_m: 3,
            memory: 5 << 20,
            throttled: 0.0,
            source: "cgroup".into(),
        }
    }

    /// An empty directory of this test's own.
    fn scratch() -> RunDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("weft-usage-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        RunDir { path }
    }

    #[test]
    fn samples_come_back_in_order_across_a_rotation() {
        let dir = scratch();
        let w = Writer {
            path: file(&dir),
            max_bytes: 300,
        };
        for t in 1..=10 {
            w.append(&[sample(t)]).unwrap();
        }
        assert!(previous(&file(&dir)).exists(), "rotated past 300 bytes");
        let all = read(&dir, 0).unwrap();
        let kept: Vec<u64> = all.iter().map(|s| s.t).collect();
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "{kept:?}");
        assert_eq!(kept.last(), Some(&10));
        let recent: Vec<u64> = read(&dir, 9).unwrap().iter().map(|s| s.t).collect();
        assert_eq!(recent, [9, 10]);
        let _ = std::fs::remove_dir_all(&dir.path);
    }

    #[test]
    fn a_line_cut_short_is_skipped() {
        let dir = scratch();
        Writer::new(&dir).append(&[sample(1)]).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(file(&dir))
            .unwrap();
        f.write_all(b"{\"t\": 2, \"namesp").unwrap();
        assert_eq!(read(&dir, 0).unwrap(), [sample(1)]);
        let _ = std::fs::remove_dir_all(&dir.path);
    }
}
