//! What a group's process uses and what its limits did to it: cumulative CPU time, the working
//! set, CPU periods throttled, OOM kills. The same numbers from `/proc` for a process without
//! a group ([`Usage::of_process`]).

use std::path::Path;

use super::Group;

/// A process's use, as counters since its start (CPU, periods) and a level (memory).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used, in microseconds.
    pub cpu_us: u64,
    /// Resident memory less the file cache the kernel can drop, in bytes.
    pub working_set: u64,
    /// CFS periods in which it could run, and those in which its limit stopped it.
    pub periods: u64,
    pub throttled_periods: u64,
}

impl Group {
    /// The group's use now; `None` when its files cannot be read (it is gone).
    pub fn usage(&self) -> Option<Usage> {
        if self.v2 {
            let cpu = read(&self.cpu.join("cpu.stat"))?;
            let current: u64 = read(&self.memory.join("memory.current"))?
                .trim()
                .parse()
                .ok()?;
            let stat = read(&self.memory.join("memory.stat"))?;
            Some(Usage {
                cpu_us: field(&cpu, "usage_usec").unwrap_or(0),
                working_set: current.saturating_sub(field(&stat, "inactive_file").unwrap_or(0)),
                periods: field(&cpu, "nr_periods").unwrap_or(0),
                throttled_periods: field(&cpu, "nr_throttled").unwrap_or(0),
            })
        } else {
            let ns: u64 = read(&self.cpuacct.join("cpuacct.usage"))?
                .trim()
                .parse()
                .ok()?;
            let usage: u64 = read(&self.memory.join("memory.usage_in_bytes"))?
                .trim()
                .parse()
                .ok()?;
            let stat = read(&self.memory.join("memory.stat"))?;
            let cpu = read(&self.cpu.join("cpu.stat")).unwrap_or_default();
            Some(Usage {
                cpu_us: ns / 1000,
                working_set: usage.saturating_sub(field(&stat, "total_inactive_file").unwrap_or(0)),
                periods: field(&cpu, "nr_periods").unwrap_or(0),
                throttled_periods: field(&cpu, "nr_throttled").unwrap_or(0),
            })
        }
    }

    /// How many times the kernel's OOM killer killed a process of the group.
    pub fn oom_kills(&self) -> u64 {
        let file = match self.v2 {
            true => "memory.events",
            false => "memory.oom_control",
        };
        read(&self.memory.join(file))
            .and_then(|s| field(&s, "oom_kill"))
            .unwrap_or(0)
    }
}

impl Usage {
    /// A process's use from `/proc/PID`: its own CPU time (not its children's) and resident
    /// memory (anonymous and shared, less nothing: `/proc` has no working set).
    pub fn of_process(pid: u32) -> Option<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which may hold spaces: utime is the 14th field.
        let rest: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
        let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())?;
        Some(Usage {
            cpu_us: ticks * 1_000_000 / clock_ticks(),
            working_set: rss_kb * 1024,
            periods: 0,
            throttled_periods: 0,
        })
    }
}

/// Clock ticks a second, the unit of `/proc/PID/stat`'s CPU times: `USER_HZ`, 100 on every
/// Linux architecture weft runs on.
fn clock_ticks() -> u64 {
    100
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The number after `key` on its own line of a `key value` file.
pub(super) fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}
