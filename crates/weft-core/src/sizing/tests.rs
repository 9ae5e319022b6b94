use proptest::prelude::*;

use super::*;
use crate::analyze::{self, Severity};
use crate::annotations::{
    PROXY_CPU_LIMIT, PROXY_CPU_REQUEST, PROXY_MEMORY_LIMIT, PROXY_MEMORY_REQUEST,
};
use crate::resources::mesh::ProxyDefaults;

const MI: u64 = 1 << 20;

fn defaults() -> ProxyResources {
    ProxyDefaults::default().resources
}

/// `n` samples 2 s apart, CPU and memory from `f(i)`.
fn series(n: u64, f: impl Fn(u64) -> (u64, u64)) -> Vec<Point> {
    (0..n)
        .map(|i| {
            let (cpu_m, memory) = f(i);
            Point {
                t_ms: 1_000_000 + i * 2000,
                cpu_m,
                memory,
                throttled: 0.0,
            }
        })
        .collect()
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<u64> = (1..=100).collect();
    assert_eq!(percentile(&v, 50), 50);
    assert_eq!(percentile(&v, 90), 90);
    assert_eq!(percentile(&v, 99), 99);
    assert_eq!(percentile(&[7], 99), 7);
    assert_eq!(percentile(&[1, 2, 3], 90), 3);
    assert_eq!(percentile(&[1, 2, 3], 50), 2);
}

#[test]
fn values_round_up_to_their_steps() {
    assert_eq!(cpu_up(0.0), Cpu(0));
    assert_eq!(cpu_up(0.2), Cpu(5));
    assert_eq!(cpu_up(10.0), Cpu(10));
    assert_eq!(cpu_up(10.1), Cpu(15));
    assert_eq!(memory_up(1.0), Memory(4 * MI));
    assert_eq!(memory_up((8 * MI) as f64), Memory(8 * MI));
    assert_eq!(memory_up((8 * MI + 1) as f64), Memory(12 * MI));
}

#[test]
fn an_idle_proxy_gets_the_floors() {
    let points = series(60, |_| (1, 5 * MI));
    let r = recommend(&points, &defaults()).unwrap();
    assert_eq!(r.requests.cpu, PROXY_CPU_REQUEST_FLOOR);
    assert_eq!(r.requests.memory, PROXY_MEMORY_REQUEST_FLOOR);
    assert_eq!(r.limits.cpu, PROXY_CPU_FLOOR);
    assert_eq!(r.limits.memory, PROXY_MEMORY_FLOOR);
    assert!(!r.low_confidence, "{r:#?}");
    assert_eq!(r.observed.span_ms, 118_000);
    assert!(r.reasoning[0].contains("raised to the floor 10m"), "{r:#?}");
}

#[test]
fn a_busy_proxy_is_sized_from_its_percentiles() {
    // CPU 1..=100m and memory 41..=140Mi, one value each.
    let points = series(100, |i| (i + 1, (41 + i) * MI));
    let r = recommend(&points, &defaults()).unwrap();
    let o = &r.observed;
    assert_eq!((o.cpu_p90_m, o.cpu_p99_m, o.cpu_max_m), (90, 99, 100));
    assert_eq!((o.memory_p90, o.memory_max), (130 * MI, 140 * MI));
    // 90 × 1.25 = 112.5 → 115m; 99 × 2 = 198 → 200m.
    assert_eq!(r.requests.cpu, Cpu(115));
    assert_eq!(r.limits.cpu, Cpu(200));
    // 130Mi × 1.25 = 162.5Mi → 164Mi; 140Mi × 1.5 = 210Mi → 212Mi.
    assert_eq!(r.requests.memory, Memory(164 * MI));
    assert_eq!(r.limits.memory, Memory(212 * MI));
    assert_eq!(r.reasoning[0], "CPU request 115m = p90 90m + 25% headroom");
    assert_eq!(
        r.reasoning[2],
        "memory request 164Mi = p90 working set 130.0Mi + 25% headroom"
    );
    assert!(r.reasoning.iter().any(|l| l.contains("WEFT0310")), "{r:#?}");
}

#[test]
fn a_peak_above_twice_the_p99_sets_the_cpu_limit() {
    let points = series(200, |i| (if i == 7 { 900 } else { 20 }, 10 * MI));
    let r = recommend(&points, &defaults()).unwrap();
    assert_eq!(r.observed.cpu_p99_m, 20);
    assert_eq!(r.limits.cpu, Cpu(900));
}

#[test]
fn throttling_keeps_the_current_cpu_limit() {
    let mut points = series(60, |_| (30, 10 * MI));
    points[3].throttled = 0.2;
    let mut current = defaults();
    current.limits.cpu = Cpu(400);
    let r = recommend(&points, &current).unwrap();
    assert!(r.throttled);
    assert_eq!(r.limits.cpu, Cpu(400), "{r:#?}");
    assert!(r.reasoning[1].contains("throttled in 1 samples"), "{r:#?}");
    // Unthrottled, the same use gets the floor.
    points[3].throttled = 0.001;
    let r = recommend(&points, &current).unwrap();
    assert!(!r.throttled);
    assert_eq!(r.limits.cpu, PROXY_CPU_FLOOR);
}

#[test]
fn few_samples_or_a_short_span_is_low_confidence() {
    let r = recommend(&series(29, |_| (5, 8 * MI)), &defaults()).unwrap();
    assert!(r.low_confidence);
    assert!(
        r.reasoning
            .last()
            .unwrap()
            .starts_with("low confidence: 29 samples over 56s"),
        "{r:#?}"
    );
    // Many samples, but from 10 pods over 20 s.
    let mut points = Vec::new();
    for _ in 0..10 {
        points.extend(series(10, |_| (5, 8 * MI)));
    }
    assert!(recommend(&points, &defaults()).unwrap().low_confidence);
    assert!(recommend(&[], &defaults()).is_none());
}

#[test]
fn the_article_arithmetic_holds() {
    // 1000 pods at Istio's requests, then at the article's tuned 50m/64Mi.
    let istio = Footprint::of(&ISTIO_DEFAULTS.requests, 1000);
    assert_eq!(istio.cores, 100.0);
    assert_eq!(istio.gib, 125.0);
    let tuned = ResourceAmounts {
        cpu: Cpu(50),
        memory: Memory(64 * MI),
    };
    let saved = istio - Footprint::of(&tuned, 1000);
    assert_eq!((saved.cores, saved.gib), (50.0, 62.5));
    let price = Price {
        core_hour: 0.04,
        gib_hour: 0.005,
    };
    let dollars = price.monthly(saved);
    assert!((dollars - (50.0 * 0.04 + 62.5 * 0.005) * 730.0).abs() < 1e-9);
}

#[test]
fn prices_are_read_as_core_hour_comma_gib_hour() {
    let p: Price = "0.031,0.0042".parse().unwrap();
    assert_eq!((p.core_hour, p.gib_hour), (0.031, 0.0042));
    let p: Price = "$0.05, $0.01".parse().unwrap();
    assert_eq!((p.core_hour, p.gib_hour), (0.05, 0.01));
    for bad in ["0.04", "a,b", "-1,0.1", "0.1,", "inf,1"] {
        assert!(bad.parse::<Price>().is_err(), "{bad}");
    }
    assert_eq!(
        Price::DEFAULT.to_string().parse::<Price>(),
        Ok(Price::DEFAULT)
    );
}

/// The analyzer's explanations quote the floors they check.
#[test]
fn rule_texts_name_the_floors() {
    let text = |code| analyze::rule(code).unwrap().explain;
    assert!(text("WEFT0301").contains(&format!("under {PROXY_MEMORY_FLOOR}")));
    assert!(text("WEFT0302").contains(&format!("under {PROXY_CPU_FLOOR}")));
    assert!(text("WEFT0310").contains(&format!("{OVERSIZED_CPU} CPU and {OVERSIZED_MEMORY}")));
    // And so do the annotations' docs (docs/config.md).
    let doc = |k| crate::annotations::key(k).unwrap().doc;
    assert!(doc(PROXY_CPU_LIMIT).contains(&format!("at least {PROXY_CPU_FLOOR}")));
    assert!(doc(PROXY_MEMORY_LIMIT).contains(&format!("at least {PROXY_MEMORY_FLOOR}")));
}

/// A Workload annotated with `r`, analyzed: its resource findings.
fn findings_for(r: &Recommendation) -> Vec<String> {
    let yaml = format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: api\n  labels: {{app: api}}\n  annotations:\n    {PROXY_CPU_REQUEST}: \"{}\"\n    {PROXY_CPU_LIMIT}: \"{}\"\n    {PROXY_MEMORY_REQUEST}: \"{}\"\n    {PROXY_MEMORY_LIMIT}: \"{}\"\nspec: {{command: [api]}}\n",
        r.requests.cpu, r.limits.cpu, r.requests.memory, r.limits.memory
    );
    let out = crate::load::parse_str("api.yaml", &yaml);
    assert!(out.is_ok(), "{:?}", out.errors);
    let a = analyze::analyze(&out.config);
    (a.findings.iter())
        .filter(|f| f.code.starts_with("WEFT03") && f.severity > Severity::Info)
        .map(|f| f.to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever was observed, the recommendation clears every floor, keeps limits at or
    /// above requests, sits on the rounding steps, covers the p90 for requests, and
    /// `weft analyze` finds nothing to warn about in it.
    #[test]
    fn recommendations_clear_the_analyzer(
        raw in prop::collection::vec((0u64..5000, 0u64..(2u64 << 30), 0f32..0.5), 1..80),
        current_cpu in 0u64..4000,
    ) {
        let points: Vec<Point> = raw.iter().enumerate().map(|(i, (c, m, th))| Point {
            t_ms: i as u64 * 2000, cpu_m: *c, memory: *m, throttled: *th,
        }).collect();
        let mut current = defaults();
        current.limits.cpu = Cpu(current_cpu);
        let r = recommend(&points, &current).unwrap();
        prop_assert!(r.limits.cpu >= PROXY_CPU_FLOOR);
        prop_assert!(r.limits.memory >= PROXY_MEMORY_FLOOR);
        prop_assert!(r.requests.cpu >= PROXY_CPU_REQUEST_FLOOR);
        prop_assert!(r.requests.memory >= PROXY_MEMORY_REQUEST_FLOOR);
        prop_assert!(r.limits.cpu >= r.requests.cpu);
        prop_assert!(r.limits.memory >= r.requests.memory);
        prop_assert!(r.requests.cpu.0 >= r.observed.cpu_p90_m);
        prop_assert!(r.requests.memory.0 >= r.observed.memory_p90);
        prop_assert!(r.limits.memory.0 >= r.observed.memory_max);
        prop_assert_eq!(r.requests.memory.0 % MEMORY_STEP, 0);
        prop_assert_eq!(r.requests.cpu.0 % CPU_STEP, 0);
        if !r.throttled {
            prop_assert_eq!(r.limits.cpu.0 % CPU_STEP, 0);
        }
        let found = findings_for(&r);
        prop_assert!(found.is_empty(), "{:?} for {:?}", found, r);
    }
}
