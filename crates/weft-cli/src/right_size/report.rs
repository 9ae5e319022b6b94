//! What `weft right-size` prints: per workload the current and recommended values, the
//! reasoning and the saving; then the totals. As a table, or as JSON/YAML data that carries
//! the formula's constants too, so a tool can check a recommendation against its samples.

use serde_json::{Value, json};
use weft_core::duration::Duration;
use weft_core::quantity::{Cpu, Memory};
use weft_core::resources::mesh::ProxyResources;
use weft_core::sizing::{self, Footprint, ISTIO_DEFAULTS, Price, Recommendation};

/// One workload (or waypoint), sized.
#[derive(Debug, Clone)]
pub struct Sized {
    /// `Workload`, or `Gateway` for a waypoint.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// The config file that defines it.
    pub file: String,
    pub replicas: u32,
    /// Its proxies' settings now (Mesh defaults, Namespace and Workload annotations).
    pub current: ProxyResources,
    /// None: no sample of its proxies.
    pub recommendation: Option<Recommendation>,
}

impl Sized {
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The id, marked when it is a waypoint.
    fn label(&self) -> String {
        match self.kind {
            "Gateway" => format!("{} (waypoint)", self.id()),
            _ => self.id(),
        }
    }

    /// Requests freed across its pods (negative: needed) against the current settings and
    /// against Istio's defaults.
    pub fn saving(&self) -> Option<(Footprint, Footprint)> {
        let r = self.recommendation.as_ref()?;
        let new = Footprint::of(&r.requests, self.replicas);
        Some((
            Footprint::of(&self.current.requests, self.replicas) - new,
            Footprint::of(&ISTIO_DEFAULTS.requests, self.replicas) - new,
        ))
    }
}

/// Everything one run prints.
#[derive(Debug)]
pub struct Report<'a> {
    pub instance: &'a str,
    pub since: Duration,
    pub price: Price,
    pub workloads: &'a [Sized],
    /// Workloads sampled that are neither Workloads nor waypoints of the config.
    pub not_sized: &'a [String],
}

impl Report<'_> {
    fn totals(&self) -> (u32, Footprint, Footprint) {
        let sized = self
            .workloads
            .iter()
            .filter_map(|w| Some((w.replicas, w.saving()?)));
        sized.fold(Default::default(), |(p, a, b), (r, (x, y))| {
            (p + r, a + x, b + y)
        })
    }

    fn money(&self, f: Footprint) -> Value {
        json!({
            "cores": round(f.cores, 3),
            "gib": round(f.gib, 3),
            "monthly": round(self.price.monthly(f), 2),
        })
    }

    pub fn json(&self) -> Value {
        let workloads: Vec<Value> = (self.workloads.iter())
            .map(|w| {
                let r = w.recommendation.as_ref();
                json!({
                    "workload": w.id(),
                    "kind": w.kind,
                    "namespace": w.namespace,
                    "name": w.name,
                    "file": w.file,
                    "replicas": w.replicas,
                    "current": w.current,
                    "recommended": r.map(|r| json!({"requests": r.requests, "limits": r.limits})),
                    "observed": r.map(|r| &r.observed),
                    "lowConfidence": r.map(|r| r.low_confidence),
                    "throttled": r.map(|r| r.throttled),
                    "reasoning": r.map_or(&[][..], |r| &r.reasoning[..]),
                    "saving": w.saving().map(|(c, i)| json!({
                        "vsCurrent": self.money(c),
                        "vsIstio": self.money(i),
                    })),
                })
            })
            .collect();
        let (pods, current, istio) = self.totals();
        json!({
            "instance": self.instance,
            "since": self.since,
            "price": self.price,
            "hoursPerMonth": sizing::HOURS_PER_MONTH,
            "formula": formula(),
            "workloads": workloads,
            "notSized": self.not_sized,
            "total": {
                "pods": pods,
                "vsCurrent": self.money(current),
                "vsIstio": self.money(istio),
            },
        })
    }

    pub fn table(&self) -> String {
        let mut rows = vec![crate::get::header(&[
            "WORKLOAD",
            "PODS",
            "SAMPLES",
            "CPU REQUEST",
            "CPU LIMIT",
            "MEMORY REQUEST",
            "MEMORY LIMIT",
        ])];
        let arrow = |a: String, b: String| {
            if a == b {
                format!("{a} (kept)")
            } else {
                format!("{a} → {b}")
            }
        };
        for w in self.workloads {
            let c = &w.current;
            let Some(r) = &w.recommendation else {
                rows.push(vec![w.label(), w.replicas.to_string(), "none".into()]);
                rows.last_mut().unwrap().resize(7, "-".into());
                continue;
            };
            let o = &r.observed;
            let mut samples = format!("{} over {}", o.samples, span(o.span_ms));
            if r.low_confidence {
                samples += " (low)";
            }
            rows.push(vec![
                w.label(),
                w.replicas.to_string(),
                samples,
                arrow(cpu(c.requests.cpu), cpu(r.requests.cpu)),
                arrow(cpu(c.limits.cpu), cpu(r.limits.cpu)),
                arrow(mem(c.requests.memory), mem(r.requests.memory)),
                arrow(mem(c.limits.memory), mem(r.limits.memory)),
            ]);
        }
        let mut out = crate::get::table(&rows);
        for w in self.workloads {
            out += &format!("\n{} ({}):\n", w.label(), w.file);
            let Some(r) = &w.recommendation else {
                out += &format!(
                    "  no proxy samples in the last {}: does it run with a sidecar, under load?\n",
                    self.since
                );
                continue;
            };
            for line in &r.reasoning {
                out += &format!("  {line}\n");
            }
            if let Some((current, istio)) = w.saving() {
                out += &format!(
                    "  {} against the current settings; {} against Istio's defaults\n",
                    self.saving(current),
                    self.saving(istio)
                );
            }
        }
        let (pods, current, istio) = self.totals();
        let i = &ISTIO_DEFAULTS.requests;
        out += &format!(
            "\nTotal over {pods} {}: {} against the current settings; {} against Istio's \
defaults ({}/{} requests per proxy).\n",
            if pods == 1 { "pod" } else { "pods" },
            self.saving(current),
            self.saving(istio),
            cpu(i.cpu),
            mem(i.memory)
        );
        out += &format!(
            "At ${} per core-hour and ${} per GiB-hour (--price), {} h a month; savings count \
requests, which are reserved whether used or not.\n",
            self.price.core_hour,
            self.price.gib_hour,
            sizing::HOURS_PER_MONTH
        );
        if !self.not_sized.is_empty() {
            out += &format!(
                "Not sized (neither a Workload nor a waypoint of the config): {}.\n",
                self.not_sized.join(", ")
            );
        }
        out
    }

    /// `saves 0.010 cores and 0.008 GiB ($0.32/month)`, or what more is needed.
    fn saving(&self, f: Footprint) -> String {
        let dollars = self.price.monthly(f);
        let (cores, gib) = (
            format!("{:.3}", f.cores.abs()),
            format!("{:.3}", f.gib.abs()),
        );
        let money = if dollars < 0.0 {
            format!("${:.2}/month more", -dollars)
        } else {
            format!("${dollars:.2}/month")
        };
        let what = match (f.cores < 0.0, f.gib < 0.0) {
            (false, false) => format!("saves {cores} cores and {gib} GiB"),
            (true, true) => format!("needs {cores} more cores and {gib} more GiB"),
            (true, false) => format!("needs {cores} more cores, saves {gib} GiB"),
            (false, true) => format!("saves {cores} cores, needs {gib} more GiB"),
        };
        format!("{what} ({money})")
    }
}

/// The constants of the formula (docs/right-size.md).
fn formula() -> Value {
    json!({
        "requestPercentile": sizing::REQUEST_PERCENTILE,
        "limitPercentile": sizing::LIMIT_PERCENTILE,
        "headroom": sizing::HEADROOM,
        "cpuLimitFactor": sizing::CPU_LIMIT_FACTOR,
        "memoryLimitFactor": sizing::MEMORY_LIMIT_FACTOR,
        "cpuStepM": sizing::CPU_STEP,
        "memoryStep": sizing::MEMORY_STEP,
        "floors": {
            "cpuRequest": sizing::PROXY_CPU_REQUEST_FLOOR,
            "cpuLimit": sizing::PROXY_CPU_FLOOR,
            "memoryRequest": sizing::PROXY_MEMORY_REQUEST_FLOOR,
            "memoryLimit": sizing::PROXY_MEMORY_FLOOR,
        },
        "minSamples": sizing::MIN_SAMPLES,
        "minSpanMs": sizing::MIN_SPAN_MS,
        "istioDefaults": ISTIO_DEFAULTS,
    })
}

fn cpu(c: Cpu) -> String {
    c.to_string()
}

fn mem(m: Memory) -> String {
    m.to_string()
}

/// `38s`, `4m`, `1h5m`.
fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 if s.is_multiple_of(60) => format!("{}m", s / 60),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, s % 3600 / 60),
    }
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

#[cfg(test)]
mod tests;
