//! `weft right-size` over a real `weft up` under a known load: a client sends a steady stream
//! of requests to `busy` for ~30 s while `idle` gets none. Each recommendation clears the
//! analyzer's floors and sits within the formula's bounds of the samples it reports; busy's
//! proxy is seen working harder than idle's; `--apply --yes` writes the annotations, the
//! analyzer passes them, and the next run reads them back as the current settings. Needs root
//! (CI runs it with `--include-ignored`).

use serde_json::Value;
use weft_e2e::{ConfigDir, Mesh, network_yaml, serial, text};

const CLIENT: &str = r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: rs, labels: {app: client}}
spec:
  command: [sleep, "3600"]
"#;

/// Block style, with a comment the edit must keep.
const BUSY: &str = r#"# The server under load.
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: busy
  namespace: rs
  labels:
    app: busy
spec:
  command: [python3, -m, http.server, "8000", --bind, 0.0.0.0]
  ports: [{name: http, containerPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: busy, namespace: rs}
spec:
  selector: {app: busy}
  ports: [{name: http, port: 8000}]
"#;

/// Flow style.
const IDLE: &str = r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: idle, namespace: rs, labels: {app: idle}}
spec: {command: [python3, -m, http.server, "8000", --bind, 0.0.0.0], ports: [{name: http, containerPort: 8000}]}
---
apiVersion: v1
kind: Service
metadata: {name: idle, namespace: rs}
spec: {selector: {app: idle}, ports: [{name: http, port: 8000}]}
"#;

/// `100m` → 100, `2` → 2000.
fn cpu_m(v: &Value) -> f64 {
    let s = v.as_str().unwrap_or_else(|| panic!("a CPU quantity: {v}"));
    match s.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => s.parse::<f64>().unwrap() * 1000.0,
    }
}

/// `32Mi` → bytes.
fn bytes(v: &Value) -> f64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("a memory quantity: {v}"));
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if let Some(n) = s.strip_suffix(unit) {
            return n.parse::<f64>().unwrap() * size as f64;
        }
    }
    s.parse().unwrap()
}

fn right_size(mesh: &Mesh, extra: &[&str]) -> Value {
    let mut args = vec!["right-size", "-o", "json"];
    args.extend(extra);
    let out = mesh.weft(&args);
    assert!(out.status.success(), "weft right-size: {}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The recommendation of `w` against its own samples and the formula `f` the JSON states.
fn within_bounds(w: &Value, f: &Value) {
    let id = &w["workload"];
    let (o, rec) = (&w["observed"], &w["recommended"]);
    let grow = 1.0 + f["headroom"].as_f64().unwrap();
    let cpu_step = f["cpuStepM"].as_f64().unwrap();
    let mem_step = f["memoryStep"].as_f64().unwrap();
    let floors = &f["floors"];
    let n = |k: &str| {
        o[k].as_f64()
            .unwrap_or_else(|| panic!("{id}: observed.{k}: {o}"))
    };

    let req = cpu_m(&rec["requests"]["cpu"]);
    let floor = cpu_m(&floors["cpuRequest"]);
    assert!(
        req >= floor && req >= n("cpuP90M"),
        "{id}: CPU request {req}: {w:#}"
    );
    assert!(
        req <= floor.max(n("cpuP90M") * grow + cpu_step),
        "{id}: {w:#}"
    );

    let lim = cpu_m(&rec["limits"]["cpu"]);
    let floor = cpu_m(&floors["cpuLimit"]);
    let factor = f["cpuLimitFactor"].as_f64().unwrap();
    let measured = (n("cpuP99M") * factor).max(n("cpuMaxM"));
    assert!(
        lim >= floor && lim >= measured && lim >= req,
        "{id}: CPU limit {lim}: {w:#}"
    );
    if w["throttled"] == false {
        assert!(
            lim <= floor.max(measured + cpu_step).max(req),
            "{id}: {w:#}"
        );
    }

    let req = bytes(&rec["requests"]["memory"]);
    let floor = bytes(&floors["memoryRequest"]);
    assert!(
        req >= floor && req >= n("memoryP90"),
        "{id}: memory request {req}: {w:#}"
    );
    assert!(
        req <= floor.max(n("memoryP90") * grow + mem_step),
        "{id}: {w:#}"
    );

    let lim = bytes(&rec["limits"]["memory"]);
    let floor = bytes(&floors["memoryLimit"]);
    let peak = n("memoryMax") * f["memoryLimitFactor"].as_f64().unwrap();
    assert!(
        lim >= floor && lim >= peak && lim >= req,
        "{id}: memory limit {lim}: {w:#}"
    );
    assert!(lim <= floor.max(peak + mem_step).max(req), "{id}: {w:#}");
}

fn workload<'a>(report: &'a Value, id: &str) -> &'a Value {
    (report["workloads"].as_array().unwrap().iter())
        .find(|w| w["workload"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report:#}"))
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn right_size_recommends_within_bounds_and_applies_through_the_analyzer() {
    let _serial = serial();
    let cfg = ConfigDir::new("rightsize");
    cfg.write("mesh.yaml", &network_yaml(95, "rs.local"))
        .write("client.yaml", CLIENT)
        .write("busy.yaml", BUSY)
        .write("idle.yaml", IDLE);
    let mesh = Mesh::up("rsize", &cfg.path);

    // Before any load there may be a few samples already; a steady load for 30 s on busy.
    let load = mesh.exec(
        "client-0",
        &[
            "sh",
            "-c",
            "timeout 30 curl -s --rate 20/s 'http://busy:8000/?n=[1-100000]' > /dev/null; \
             curl -fsS -o /dev/null -w '%{http_code}' http://busy:8000/",
        ],
    );
    assert_eq!(
        text(&load).trim(),
        "200",
        "the load reached busy: {}",
        text(&load)
    );
    // Two more sampling intervals, so the last of the load is in the file.
    std::thread::sleep(std::time::Duration::from_secs(5));

    let report = right_size(&mesh, &[]);
    let formula = &report["formula"];
    for id in ["rs/busy", "rs/idle", "rs/client"] {
        let w = workload(&report, id);
        assert!(w["observed"]["samples"].as_u64() >= Some(10), "{w:#}");
        within_bounds(w, formula);
    }
    let p90 = |id| {
        workload(&report, id)["observed"]["cpuP90M"]
            .as_u64()
            .unwrap()
    };
    assert!(
        p90("rs/busy") > p90("rs/idle"),
        "busy's proxy works harder than idle's: {report:#}"
    );

    // --apply alone writes nothing.
    let before = std::fs::read_to_string(cfg.path.join("busy.yaml")).unwrap();
    let shown = mesh.weft(&["right-size", "--apply"]);
    assert!(shown.status.success(), "{}", text(&shown));
    assert!(
        text(&shown).contains("Re-run with --yes"),
        "{}",
        text(&shown)
    );
    assert_eq!(
        std::fs::read_to_string(cfg.path.join("busy.yaml")).unwrap(),
        before
    );

    // With --yes, the values of that run (its JSON on stdout, the diff on stderr).
    let out = mesh.weft(&["right-size", "--apply", "--yes", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let applied: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrote "),
        "{}",
        text(&out)
    );
    let busy_file = std::fs::read_to_string(cfg.path.join("busy.yaml")).unwrap();
    assert!(
        busy_file.starts_with("# The server under load.\n"),
        "{busy_file}"
    );
    let rec = &workload(&applied, "rs/busy")["recommended"];
    for (key, value) in [
        ("proxy-cpu-request", &rec["requests"]["cpu"]),
        ("proxy-cpu-limit", &rec["limits"]["cpu"]),
        ("proxy-memory-request", &rec["requests"]["memory"]),
        ("proxy-memory-limit", &rec["limits"]["memory"]),
    ] {
        let v = value.as_str().unwrap();
        let plain = format!("    weft.dev/{key}: {v}\n");
        let quoted = format!("    weft.dev/{key}: \"{v}\"\n");
        assert!(
            busy_file.contains(&plain) || busy_file.contains(&quoted),
            "{key} {v} in:\n{busy_file}"
        );
    }
    let idle_file = std::fs::read_to_string(cfg.path.join("idle.yaml")).unwrap();
    assert!(
        idle_file.contains("labels: {app: idle}, annotations: {weft.dev/proxy-cpu-request: "),
        "{idle_file}"
    );

    // The analyzer passes what was written.
    let analyzed = weft_e2e::weft(&["analyze", &cfg.path.display().to_string()]);
    let said = text(&analyzed);
    assert!(analyzed.status.success(), "{said}");
    assert!(!said.contains("WEFT030"), "{said}");
    let oversized = (applied["workloads"].as_array().unwrap().iter())
        .any(|w| cpu_m(&w["recommended"]["requests"]["cpu"]) >= 100.0);
    assert!(oversized || !said.contains("WEFT0310"), "{said}");

    // The next run reads them back as the current settings.
    let again = right_size(&mesh, &[]);
    for w in applied["workloads"].as_array().unwrap() {
        let id = w["workload"].as_str().unwrap();
        assert_eq!(workload(&again, id)["current"], w["recommended"], "{id}");
    }
    mesh.down();
}
