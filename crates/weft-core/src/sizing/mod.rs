//! Proxy sizing: the one place that says how much CPU and memory a weft proxy needs. The
//! analyzer's resource rules (WEFT0301, WEFT0302, WEFT0310) read their thresholds here, and
//! `weft right-size` turns observed use into requests and limits with [`recommend`], so what
//! it recommends is never what the analyzer flags.
//!
//! From the samples of one workload's proxies (every pod pooled; `weft up` takes one per pod
//! every 2 s) a recommendation is:
//!
//! | value | formula |
//! |---|---|
//! | CPU request | p90 of CPU × (1 + [`HEADROOM`]), at least [`PROXY_CPU_REQUEST_FLOOR`] |
//! | CPU limit | the largest of p99 × [`CPU_LIMIT_FACTOR`], the peak, [`PROXY_CPU_FLOOR`] and the request; never below the current limit when throttling was seen |
//! | memory request | p90 of the working set × (1 + [`HEADROOM`]), at least [`PROXY_MEMORY_REQUEST_FLOOR`] |
//! | memory limit | the largest of the peak × [`MEMORY_LIMIT_FACTOR`], [`PROXY_MEMORY_FLOOR`] and the request |
//!
//! Percentiles are nearest-rank. CPU is rounded up to [`CPU_STEP`], memory to [`MEMORY_STEP`].
//! Fewer than [`MIN_SAMPLES`] samples, or a span under [`MIN_SPAN_MS`], is *low confidence*:
//! the numbers are still the formula's, but they say little about a busy hour.

mod cost;
#[cfg(test)]
mod tests;

pub use cost::{Footprint, HOURS_PER_MONTH, ParsePriceError, Price};

use serde::Serialize;

use crate::quantity::{Cpu, Memory};
use crate::resources::mesh::{ProxyResources, ResourceAmounts};

/// The smallest CPU limit a weft proxy runs under without being throttled in bursts.
pub const PROXY_CPU_FLOOR: Cpu = Cpu(100);
/// The smallest memory limit a weft proxy runs under without being OOM-killed under load.
pub const PROXY_MEMORY_FLOOR: Memory = Memory(32 << 20);
/// The smallest CPU request recommended: an idle proxy still answers health checks and
/// renews certificates.
pub const PROXY_CPU_REQUEST_FLOOR: Cpu = Cpu(10);
/// The smallest memory request recommended: an idle proxy's working set, with room for a
/// first burst of connections.
pub const PROXY_MEMORY_REQUEST_FLOOR: Memory = Memory(16 << 20);

/// Requests at or above these are another mesh's defaults, far above what a weft proxy uses
/// (WEFT0310, informational). A recommendation reaches them only when a proxy was measured
/// using that much.
pub const OVERSIZED_CPU: Cpu = Cpu(100);
pub const OVERSIZED_MEMORY: Memory = Memory(128 << 20);

/// Istio's sidecar defaults (`global.proxy.resources`): what a mesh moved from Istio
/// reserves per pod.
pub const ISTIO_DEFAULTS: ProxyResources = ProxyResources {
    requests: ResourceAmounts {
        cpu: Cpu(100),
        memory: Memory(128 << 20),
    },
    limits: ResourceAmounts {
        cpu: Cpu(2000),
        memory: Memory(1 << 30),
    },
};

/// The percentile requests are sized from.
pub const REQUEST_PERCENTILE: u32 = 90;
/// The percentile the CPU limit is sized from.
pub const LIMIT_PERCENTILE: u32 = 99;
/// Room above the request percentile: requests are p90 × 1.25.
pub const HEADROOM: f64 = 0.25;
/// The CPU limit is p99 × 2: a proxy's CPU comes in bursts, and a throttled proxy adds
/// latency to every request it carries.
pub const CPU_LIMIT_FACTOR: f64 = 2.0;
/// The memory limit is the peak × 1.5: past it the proxy is killed, so it sits well above
/// anything seen.
pub const MEMORY_LIMIT_FACTOR: f64 = 1.5;
/// CPU is rounded up to a multiple of 5m.
pub const CPU_STEP: u64 = 5;
/// Memory is rounded up to a multiple of 4Mi.
pub const MEMORY_STEP: u64 = 4 << 20;
/// Below this many samples a recommendation is low confidence.
pub const MIN_SAMPLES: usize = 30;
/// Below this span (first to last sample) a recommendation is low confidence.
pub const MIN_SPAN_MS: u64 = 60_000;
/// A sample counts as throttled when its proxy was throttled in at least this share of the
/// interval's CPU periods.
pub const THROTTLED_SHARE: f32 = 0.01;

/// One sample of one proxy: an interval's average CPU and its final working set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// When the interval ended, in Unix milliseconds.
    pub t_ms: u64,
    pub cpu_m: u64,
    pub memory: u64,
    /// Share (0 to 1) of the interval's CPU periods that were throttled.
    pub throttled: f32,
}

/// What the samples show, as the recommendation used them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    pub samples: usize,
    /// From the first sample to the last, in milliseconds.
    pub span_ms: u64,
    pub cpu_p50_m: u64,
    pub cpu_p90_m: u64,
    pub cpu_p99_m: u64,
    pub cpu_max_m: u64,
    /// Working set, in bytes.
    pub memory_p50: u64,
    pub memory_p90: u64,
    pub memory_max: u64,
    /// Samples in which the proxy was throttled (see [`THROTTLED_SHARE`]).
    pub throttled_samples: usize,
    /// The largest share of CPU periods throttled in one sample.
    pub throttled_max: f32,
}

/// Requests and limits for one workload's proxies, with why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub requests: ResourceAmounts,
    pub limits: ResourceAmounts,
    pub observed: Observed,
    /// Too few samples or too short a span to trust for a busy hour.
    pub low_confidence: bool,
    /// The proxy was throttled by its CPU limit: the limit was not lowered.
    pub throttled: bool,
    /// One line per value: the formula with the numbers put in.
    pub reasoning: Vec<String>,
}

/// The recommendation for the proxies `points` were taken from, whose settings are now
/// `current`; None without a sample.
pub fn recommend(points: &[Point], current: &ProxyResources) -> Option<Recommendation> {
    let observed = observe(points)?;
    let o = &observed;
    let grow = 1.0 + HEADROOM;
    let pct = (HEADROOM * 100.0).round();
    let mut reasoning = Vec::new();

    let raw = cpu_up(o.cpu_p90_m as f64 * grow);
    let cpu_request = raw.max(PROXY_CPU_REQUEST_FLOOR);
    reasoning.push(format!(
        "CPU request {cpu_request} = p{REQUEST_PERCENTILE} {} + {pct}% headroom{}",
        Cpu(o.cpu_p90_m),
        floored(raw < PROXY_CPU_REQUEST_FLOOR, PROXY_CPU_REQUEST_FLOOR)
    ));

    let throttled = o.throttled_samples > 0;
    let measured = cpu_up(o.cpu_p99_m as f64 * CPU_LIMIT_FACTOR).max(cpu_up(o.cpu_max_m as f64));
    let mut cpu_limit = measured.max(PROXY_CPU_FLOOR).max(cpu_request);
    let mut line = format!(
        "CPU limit {cpu_limit} = max(p{LIMIT_PERCENTILE} {} × {CPU_LIMIT_FACTOR}, peak {}){}",
        Cpu(o.cpu_p99_m),
        Cpu(o.cpu_max_m),
        floored(measured < PROXY_CPU_FLOOR, PROXY_CPU_FLOOR)
    );
    if throttled && current.limits.cpu > cpu_limit {
        cpu_limit = current.limits.cpu;
        line = format!(
            "CPU limit {cpu_limit}: kept, as the proxy was throttled in {} samples (up to {:.0}% \
of periods) — raise it if latency suffers",
            o.throttled_samples,
            o.throttled_max * 100.0
        );
    } else if throttled {
        line += &format!(
            "; throttled in {} samples (up to {:.0}% of periods), so not lowered",
            o.throttled_samples,
            o.throttled_max * 100.0
        );
    }
    reasoning.push(line);

    let raw = memory_up(o.memory_p90 as f64 * grow);
    let memory_request = raw.max(PROXY_MEMORY_REQUEST_FLOOR);
    reasoning.push(format!(
        "memory request {memory_request} = p{REQUEST_PERCENTILE} working set {} + {pct}% headroom{}",
        mib(o.memory_p90),
        floored(raw < PROXY_MEMORY_REQUEST_FLOOR, PROXY_MEMORY_REQUEST_FLOOR)
    ));
    let raw = memory_up(o.memory_max as f64 * MEMORY_LIMIT_FACTOR);
    let memory_limit = raw.max(PROXY_MEMORY_FLOOR).max(memory_request);
    reasoning.push(format!(
        "memory limit {memory_limit} = peak {} × {MEMORY_LIMIT_FACTOR}{}",
        mib(o.memory_max),
        floored(raw < PROXY_MEMORY_FLOOR, PROXY_MEMORY_FLOOR)
    ));

    let low_confidence = o.samples < MIN_SAMPLES || o.span_ms < MIN_SPAN_MS;
    if low_confidence {
        reasoning.push(format!(
            "low confidence: {} samples over {}s (want at least {MIN_SAMPLES} over {}s of \
representative load)",
            o.samples,
            o.span_ms / 1000,
            MIN_SPAN_MS / 1000
        ));
    }
    if cpu_request >= OVERSIZED_CPU || memory_request >= OVERSIZED_MEMORY {
        reasoning.push(
            "requests this large are what the proxy was measured using; `weft analyze` notes \
them (WEFT0310, info)"
                .into(),
        );
    }
    Some(Recommendation {
        requests: ResourceAmounts {
            cpu: cpu_request,
            memory: memory_request,
        },
        limits: ResourceAmounts {
            cpu: cpu_limit,
            memory: memory_limit,
        },
        observed,
        low_confidence,
        throttled,
        reasoning,
    })
}

fn observe(points: &[Point]) -> Option<Observed> {
    let first = points.iter().map(|p| p.t_ms).min()?;
    let last = points.iter().map(|p| p.t_ms).max()?;
    let mut cpu: Vec<u64> = points.iter().map(|p| p.cpu_m).collect();
    let mut memory: Vec<u64> = points.iter().map(|p| p.memory).collect();
    cpu.sort_unstable();
    memory.sort_unstable();
    let throttled = points.iter().filter(|p| p.throttled >= THROTTLED_SHARE);
    Some(Observed {
        samples: points.len(),
        span_ms: last - first,
        cpu_p50_m: percentile(&cpu, 50),
        cpu_p90_m: percentile(&cpu, REQUEST_PERCENTILE),
        cpu_p99_m: percentile(&cpu, LIMIT_PERCENTILE),
        cpu_max_m: cpu[cpu.len() - 1],
        memory_p50: percentile(&memory, 50),
        memory_p90: percentile(&memory, REQUEST_PERCENTILE),
        memory_max: memory[memory.len() - 1],
        throttled_samples: throttled.clone().count(),
        throttled_max: points.iter().map(|p| p.throttled).fold(0.0, f32::max),
    })
}

/// The nearest-rank `p`th percentile of `sorted` (not empty): the smallest value with at
/// least p % of the values at or below it.
pub fn percentile(sorted: &[u64], p: u32) -> u64 {
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// `m` millicores rounded up to [`CPU_STEP`].
pub fn cpu_up(m: f64) -> Cpu {
    let m = m.max(0.0).ceil() as u64;
    Cpu(m.div_ceil(CPU_STEP) * CPU_STEP)
}

/// `bytes` rounded up to [`MEMORY_STEP`].
pub fn memory_up(bytes: f64) -> Memory {
    let b = bytes.max(0.0).ceil() as u64;
    Memory(b.div_ceil(MEMORY_STEP) * MEMORY_STEP)
}

fn floored<T: std::fmt::Display>(hit: bool, floor: T) -> String {
    if hit {
        format!(" (raised to the floor {floor})")
    } else {
        String::new()
    }
}

/// Bytes as MiB with one decimal, for reasoning lines.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}Mi", bytes as f64 / (1u64 << 20) as f64)
}
