//! A real Prometheus over `weft up --prometheus`: it scrapes every proxy `weft up` lists in
//! `prometheus/targets.json` (each `up == 1`, with the target's labels on its series), answers
//! every query of the Grafana dashboard (`dashboards/weft-mesh.json`), and stops on `weft down`.
//! With the shop under steady traffic through its ingress, the dashboard's own queries — run as
//! Grafana would, `$__rate_interval` as `1m` — see every call of the shop and each service's
//! latency.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_e2e::{ConfigDir, Mesh, free_port, http_get, http_get_at, serial, shop};
use weft_test_support::exposition::parse_text_0_0_4;
use weft_test_support::wait::eventually_blocking;

/// The shop's calls, as (source workload, destination service): the ingress gateway calls
/// frontend, which calls catalog and cart, which both call pricing (`weft demo`).
const CALLS: [(&str, &str); 5] = [
    ("ingress", "frontend"),
    ("frontend", "catalog"),
    ("frontend", "cart"),
    ("catalog", "pricing"),
    ("cart", "pricing"),
];
const SERVICES: [&str; 4] = ["frontend", "catalog", "cart", "pricing"];
/// The proxies of the shop that serve metrics: its sidecars and its ingress gateway (the
/// outsider has no proxy).
const PROXIES: [(&str, &str); 7] = [
    ("cart-0", "sidecar"),
    ("catalog-0", "sidecar"),
    ("frontend-0", "sidecar"),
    ("frontend-1", "sidecar"),
    ("gateway-ingress", "gateway"),
    ("pricing-v1-0", "sidecar"),
    ("pricing-v2-0", "sidecar"),
];
/// How long the first scrape of every target, and queries over fresh samples, may take: the
/// scrape interval is 5s.
const SCRAPED: Duration = Duration::from_secs(30);

/// One series of a query's answer.
#[derive(Debug)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// The query API of the Prometheus `weft up --prometheus` runs.
struct Prometheus {
    port: u16,
}

impl Prometheus {
    /// `GET /api/v1/query?query=EXPR`: the series of an instant vector, or what went wrong.
    fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let path = format!("/api/v1/query?query={}", encode(expr));
        let (status, body) = http_get(self.port, &path).map_err(|e| format!("{expr}: {e}"))?;
        let answer: Value =
            serde_json::from_str(&body).map_err(|e| format!("{expr}: {e}: {body}"))?;
        if status != 200 || answer["status"] != "success" {
            return Err(format!("{expr}: {status} {body}"));
        }
        let result = answer["data"]["result"].as_array().cloned();
        let samples = (result.unwrap_or_default().iter())
            .map(|r| Sample {
                labels: serde_json::from_value(r["metric"].clone()).unwrap_or_default(),
                value: r["value"][1]
                    .as_str()
                    .and_then(parse_value)
                    .unwrap_or(f64::NAN),
            })
            .collect();
        Ok(samples)
    }
}

/// A sample value as Prometheus writes it: a number, `NaN`, `+Inf` or `-Inf`.
fn parse_value(s: &str) -> Option<f64> {
    s.parse().ok()
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The Grafana dashboard, whose queries the test runs.
struct Dashboard {
    panels: Vec<Value>,
}

impl Dashboard {
    fn load() -> Dashboard {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dashboards/weft-mesh.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let dash: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let panels = dash["panels"].as_array().cloned().unwrap_or_default();
        Dashboard { panels }
    }

    /// Every (panel title, refId, expression) of the dashboard.
    fn queries(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for p in &self.panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                out.push((text(&p["title"]), text(&t["refId"]), text(&t["expr"])));
            }
        }
        out
    }

    /// The expression of query `ref_id` of the panel titled `title`, as Grafana sends it for
    /// mesh `mesh`: `$__rate_interval` becomes `1m` (four 5s scrapes and more).
    fn query(&self, title: &str, ref_id: &str, mesh: &str) -> String {
        let found = (self.queries().into_iter())
            .find(|(t, r, _)| t == title && r == ref_id)
            .map(|(_, _, e)| e);
        let expr = found.unwrap_or_else(|| panic!("no query {ref_id} in panel {title:?}"));
        concrete(&expr, mesh)
    }
}

/// A dashboard expression with Grafana's variables replaced.
fn concrete(expr: &str, mesh: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("${mesh}", mesh)
        .replace("$mesh", mesh)
}

/// Whether a `destination_service` value names shop's Service `name`: its name, `shop/NAME`
/// or its host name (`NAME.shop.svc.cluster.local`).
fn is_service(value: &str, name: &str) -> bool {
    value == name || value == format!("shop/{name}") || value.starts_with(&format!("{name}.shop"))
}

/// The shop under `name`, with Prometheus on a free port; its config dir must outlive it.
fn up(name: &str) -> (Mesh, Prometheus, ConfigDir) {
    let cfg = shop(name, 81);
    let port = free_port();
    let port_flag = port.to_string();
    let flags = ["--prometheus", "--prometheus-port", &port_flag];
    let mesh = Mesh::up_with(name, &cfg.path, &flags);
    (mesh, Prometheus { port }, cfg)
}

/// `targets.json`: each target's address and labels.
fn targets(mesh: &Mesh) -> Vec<(String, BTreeMap<String, String>)> {
    let path = format!("/run/weft/{}/prometheus/targets.json", mesh.name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    (entries.iter())
        .map(|e| {
            let addrs = e["targets"].as_array().expect("targets");
            assert_eq!(addrs.len(), 1, "one address per target: {e}");
            let labels = serde_json::from_value(e["labels"].clone()).expect("labels");
            (addrs[0].as_str().expect("an address").to_string(), labels)
        })
        .collect()
}

#[test]
#[ignore = "needs root (weft up creates network namespaces, links and capture rules) and Debian's prometheus package"]
fn prometheus_scrapes_every_proxy_weft_up_lists_and_stops_with_the_mesh() {
    let _serial = serial();
    let (mesh, prometheus, _cfg) = up("tbprom");
    let url = format!("Prometheus http://127.0.0.1:{}/", prometheus.port);
    assert!(mesh.up_output.contains(&url), "{}", mesh.up_output);
    let ready = http_get(prometheus.port, "/-/ready").expect("Prometheus answers");
    assert_eq!(ready.0, 200, "{}", ready.1);

    // Every proxy serving metrics, and nothing else (the outsider has no proxy).
    let listed = targets(&mesh);
    let proxies: Vec<(&str, &str)> = (listed.iter())
        .map(|(_, l)| (l["pod"].as_str(), l["role"].as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(proxies, PROXIES, "{listed:?}");
    for (addr, labels) in &listed {
        assert!(addr.starts_with("198.19.81."), "{addr}");
        assert_eq!(labels["mesh"], mesh.name);
        assert_eq!(labels["namespace"], "shop");
        // A strict text 0.0.4 parser (not only Prometheus) reads each page whole.
        let at = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
        let (status, page) = http_get_at(at, "/metrics").expect("the metrics page answers");
        assert_eq!(status, 200, "{addr}: {page}");
        let families = parse_text_0_0_4(&page).unwrap_or_else(|e| panic!("{addr}: {e}"));
        let declared = page.matches("# TYPE ").count();
        assert_eq!(families.lines().count(), declared, "{addr}: {families}");
        assert!(
            families.contains("istio_requests counter"),
            "{addr}: {families}"
        );
    }

    // Each is up, and its labels in targets.json are on its series.
    let by_addr: BTreeMap<&str, &BTreeMap<String, String>> =
        listed.iter().map(|(a, l)| (a.as_str(), l)).collect();
    eventually_blocking("every target up in Prometheus", SCRAPED, || {
        let up = prometheus.query(r#"up{job="weft"}"#)?;
        let seen: BTreeMap<&str, &Sample> = up.iter().map(|s| (s.label("instance"), s)).collect();
        if seen.keys().copied().collect::<Vec<_>>() != by_addr.keys().copied().collect::<Vec<_>>() {
            return Err(format!(
                "up{{job=\"weft\"}}: {up:?}; targets.json: {listed:?}"
            ));
        }
        for (addr, labels) in &by_addr {
            let s = seen[addr];
            let carried = labels.iter().all(|(k, v)| s.label(k) == v);
            if s.value != 1.0 || !carried {
                return Err(format!("{addr}: {s:?}, want up 1 with {labels:?}"));
            }
        }
        Ok(())
    });

    // Prometheus accepts every query of the dashboard.
    let dashboard = Dashboard::load();
    let queries = dashboard.queries();
    assert!(queries.len() >= 8, "{queries:?}");
    for (title, ref_id, expr) in queries {
        let expr = concrete(&expr, &mesh.name);
        if let Err(e) = prometheus.query(&expr) {
            panic!("panel {title:?} query {ref_id}: {e}");
        }
    }

    let out = mesh.down();
    assert!(
        http_get(prometheus.port, "/-/ready").is_err(),
        "Prometheus still answers after weft down: {out}"
    );
}

#[test]
#[ignore = "needs root (weft up creates network namespaces, links and capture rules) and Debian's prometheus package"]
fn the_dashboards_queries_see_every_call_of_the_shop() {
    let _serial = serial();
    let (mesh, prometheus, _cfg) = up("tbprom");
    let dashboard = Dashboard::load();

    // Steady traffic through the ingress for 15s.
    let until = Instant::now() + Duration::from_secs(15);
    let (mut sent, mut ok) = (0, 0);
    while Instant::now() < until {
        sent += 1;
        if matches!(http_get(mesh.ingress_port, "/"), Ok((200, _))) {
            ok += 1;
        }
        // A steady rate, about 20 pages a second, not a flood.
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ok * 10 >= sent * 9, "{ok} of {sent} pages served");

    let series = format!(r#"count(istio_requests_total{{mesh="{}"}})"#, mesh.name);
    eventually_blocking(
        "the request metrics in Prometheus",
        SCRAPED,
        || match prometheus.query(&series)?.first() {
            Some(_) => Ok(()),
            None => Err(format!(
                "no istio_requests_total series of mesh {:?}: do the proxies export the \
                 Istio-named request metrics? (they export: {:?})",
                mesh.name,
                prometheus
                    .query(r#"count by (__name__) ({__name__=~"(weft|istio)_request.*"})"#)
                    .map(|s| s.iter().map(|s| s.label("__name__").to_string()).collect())
                    .unwrap_or_else(|e| vec![e])
            )),
        },
    );

    let calls = "every call of the shop on the dashboard";
    eventually_blocking(calls, SCRAPED, || seen(&dashboard, &prometheus, &mesh.name));
}

/// What a query's value must be.
type Holds = fn(f64) -> bool;

/// Whether the dashboard's queries see every call of the shop (mesh `mesh`), each service's
/// rate, success rate and p99, and the overview; what they see otherwise.
fn seen(dashboard: &Dashboard, prometheus: &Prometheus, mesh: &str) -> Result<(), String> {
    let query = |title: &str, ref_id: &str| {
        let expr = dashboard.query(title, ref_id, mesh);
        prometheus.query(&expr).map(|s| (expr, s))
    };
    // The table: a rate for every (source workload → destination service) pair.
    let (expr, pairs) = query("Requests by source → destination", "A")?;
    for (from, to) in CALLS {
        let rate = (pairs.iter())
            .find(|s| {
                s.label("source_workload") == from && is_service(s.label("destination_service"), to)
            })
            .map(|s| s.value);
        if !rate.is_some_and(|r| r > 0.0) {
            return Err(format!("{from} → {to}: {rate:?}; {expr} = {pairs:?}"));
        }
    }
    // Each service: a rate, (nearly) no 5xx, and a finite p99.
    let per_service: [(&str, &str, Holds); 3] = [
        ("Request rate by service", "A", |v| v > 0.0),
        ("Success rate by service (non-5xx)", "A", |v| v >= 0.9),
        ("Latency by service", "P99", |v| v.is_finite() && v > 0.0),
    ];
    for (title, ref_id, holds) in per_service {
        let (expr, samples) = query(title, ref_id)?;
        for service in SERVICES {
            let value = (samples.iter())
                .find(|s| is_service(s.label("destination_service"), service))
                .map(|s| s.value);
            if !value.is_some_and(holds) {
                return Err(format!(
                    "{title} {ref_id}, {service}: {value:?}; {expr} = {samples:?}"
                ));
            }
        }
    }
    // The overview.
    let overview: [(&str, Holds); 3] = [
        ("Total request rate", |v| v > 0.0),
        ("Success rate", |v| v >= 0.9),
        ("P99 latency", |v| v.is_finite() && v > 0.0),
    ];
    for (title, holds) in overview {
        let (expr, samples) = query(title, "A")?;
        if !(samples.len() == 1 && holds(samples[0].value)) {
            return Err(format!("{title}: {expr} = {samples:?}"));
        }
    }
    Ok(())
}
