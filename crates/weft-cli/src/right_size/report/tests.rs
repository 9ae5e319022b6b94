use weft_core::resources::mesh::ProxyDefaults;
use weft_core::sizing::Point;

use super::*;

fn points(cpu_m: u64, mib: u64, n: u64) -> Vec<Point> {
    (0..n)
        .map(|i| Point {
            t_ms: i * 2000,
            cpu_m,
            memory: mib << 20,
            throttled: 0.0,
        })
        .collect()
}

fn workloads() -> Vec<Sized> {
    let current = ProxyDefaults::default().resources;
    let one = |name: &str, replicas, pts: &[Point]| Sized {
        kind: "Workload",
        namespace: "shop".into(),
        name: name.into(),
        file: format!("cfg/{name}.yaml"),
        replicas,
        current: current.clone(),
        recommendation: sizing::recommend(pts, &current),
    };
    vec![
        one("idle", 2, &points(1, 6, 10)),
        one("busy", 1, &points(200, 60, 100)),
        one("quiet", 1, &[]),
    ]
}

fn report(w: &[Sized]) -> Report<'_> {
    Report {
        instance: "demo",
        since: Duration::from_secs(3600),
        price: Price::DEFAULT,
        workloads: w,
        not_sized: &[],
    }
}

#[test]
fn savings_count_requests_per_pod_times_replicas() {
    let w = workloads();
    // idle: 20m/24Mi → 10m/16Mi on 2 pods.
    let (current, istio) = w[0].saving().unwrap();
    assert!((current.cores - 0.020).abs() < 1e-9, "{current:?}");
    assert!((current.gib - 16.0 / 1024.0).abs() < 1e-9, "{current:?}");
    assert!((istio.cores - 0.180).abs() < 1e-9, "{istio:?}");
    assert!((istio.gib - 224.0 / 1024.0).abs() < 1e-9, "{istio:?}");
    // busy: 200m × 1.25 = 250m, more than the 20m it has now.
    let (current, _) = w[1].saving().unwrap();
    assert!((current.cores + 0.230).abs() < 1e-9, "{current:?}");
    assert!(w[2].saving().is_none());
}

#[test]
fn json_carries_the_values_the_samples_and_the_formula() {
    let w = workloads();
    let v = report(&w).json();
    let busy = &v["workloads"][1];
    assert_eq!(busy["workload"], "shop/busy");
    assert_eq!(busy["current"]["requests"]["cpu"], "20m");
    assert_eq!(busy["recommended"]["requests"]["cpu"], "250m");
    assert_eq!(busy["recommended"]["limits"]["memory"], "92Mi");
    assert_eq!(busy["observed"]["cpuP90M"], 200);
    assert_eq!(busy["lowConfidence"], false);
    assert_eq!(v["workloads"][0]["lowConfidence"], true);
    assert_eq!(v["workloads"][2]["recommended"], Value::Null);
    assert_eq!(v["formula"]["floors"]["memoryLimit"], "32Mi");
    assert_eq!(v["formula"]["istioDefaults"]["limits"]["memory"], "1Gi");
    assert_eq!(v["total"]["pods"], 3);
    let total = v["total"]["vsIstio"]["cores"].as_f64().unwrap();
    assert!((total - (0.18 - 0.15)).abs() < 1e-9, "{v:#}");
}

#[test]
fn the_table_shows_current_and_recommended_with_the_reasoning_and_totals() {
    let w = workloads();
    let t = report(&w).table();
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("WORKLOAD    PODS  SAMPLES"), "{t}");
    assert!(
        lines[1].starts_with("shop/idle   2     10 over 18s (low)  20m → 10m"),
        "{t}"
    );
    assert!(t.contains("shop/quiet  1     none"), "{t}");
    assert!(
        t.contains("\nshop/busy (cfg/busy.yaml):\n  CPU request 250m = p90 200m + 25% headroom\n"),
        "{t}"
    );
    assert!(
        t.contains("  needs 0.230 more cores and 0.051 more GiB ($6.90/month more) against the current settings; needs 0.150 more cores, saves 0.051 GiB ($4.19/month more) against Istio's defaults\n"),
        "{t}"
    );
    assert!(t.contains("no proxy samples in the last 1h"), "{t}");
    assert!(t.contains("\nTotal over 3 pods: "), "{t}");
    assert!(
        t.contains("Istio's defaults (100m/128Mi requests per proxy)"),
        "{t}"
    );
    assert!(
        t.contains("At $0.04 per core-hour and $0.005 per GiB-hour"),
        "{t}"
    );
}

#[test]
fn spans_read_as_people_write_them() {
    assert_eq!(span(38_000), "38s");
    assert_eq!(span(240_000), "4m");
    assert_eq!(span(250_000), "4m10s");
    assert_eq!(span(3_900_000), "1h5m");
}
