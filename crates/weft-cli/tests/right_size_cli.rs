//! `weft right-size` on the real binary, over a mesh that is not running: a runtime directory
//! (`WEFT_RUN_DIR`) holding a plan and a usage file written here, as `weft up` writes them.
//! What it reads, recommends and writes, without root; tests/e2e/right_size.rs does the same
//! over a real `weft up` under load.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use weft_test_support::dir::TempDir;

const SHOP: &str = "apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {trustDomain: rs.local}
---
# The busy one.
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  namespace: rs
  labels: {app: api}
spec:
  command: [sleep, \"600\"]
  replicas: 2
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: idle, namespace: rs, labels: {app: idle}, annotations: {weft.dev/proxy-cpu-request: 100m}}
spec: {command: [sleep, \"600\"]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: bare, namespace: rs, labels: {app: bare, weft.dev/dataplane-mode: none}}
spec: {command: [sleep, \"600\"]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: rs}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
";

/// A stopped mesh `name` over `cfg`, with `samples` in its usage file.
fn mesh(root: &TempDir, name: &str, cfg: &Path, samples: &[Value]) {
    let plan = json!({
        "name": name, "configDir": cfg, "bridge": format!("{name}0"),
        "hostIp": "198.19.95.1", "prefix": 25, "podCidr": "198.19.95.0/25",
        "serviceCidr": "198.19.95.128/25", "admin": "127.0.0.1:1",
        "pods": [], "nodes": ["node-1"], "gateways": [], "hosts": {},
    });
    root.write(format!("{name}/plan.json"), &plan.to_string());
    let lines: Vec<String> = samples.iter().map(Value::to_string).collect();
    root.write(format!("{name}/usage.jsonl"), &(lines.join("\n") + "\n"));
}

/// Samples every 2 s for the last two minutes: api's two proxies busy, idle's idle, and an
/// app container (not a proxy) that must not count.
fn samples() -> Vec<Value> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut out = Vec::new();
    for i in 0..60u64 {
        let t = now - 120_000 + i * 2000;
        let s = |w: &str, pod: &str, c: &str, cpu: u64, mib: u64| {
            json!({"t": t, "namespace": "rs", "workload": w, "pod": pod, "container": c,
                   "cpu_m": cpu, "memory": mib << 20, "throttled": 0.0, "source": "cgroup"})
        };
        out.push(s("api", "api-0", "proxy", 40 + i % 10, 20 + i % 5));
        out.push(s("api", "api-1", "proxy", 40 + i % 10, 20));
        out.push(s("api", "api-0", "app", 900, 500));
        out.push(s("idle", "idle-0", "proxy", 1, 5));
        out.push(s("waypoint", "waypoint-0", "proxy", 30, 40));
        out.push(s("gone", "gone-0", "proxy", 30, 40));
    }
    out
}

fn weft(root: &TempDir, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .env("WEFT_RUN_DIR", root.path())
        .output()
        .expect("run weft");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn recommends_from_the_samples_and_applies_through_the_analyzer() {
    let root = TempDir::new("rs-cli");
    let cfg = root.join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("shop.yaml"), SHOP).unwrap();
    mesh(&root, "rsc", &cfg, &samples());

    let (code, out, err) = weft(&root, &["right-size", "--name", "rsc", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let ws = v["workloads"].as_array().unwrap();
    let ids: Vec<&str> = ws.iter().map(|w| w["workload"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["rs/api", "rs/idle", "rs/waypoint"],
        "bare has no proxy: {out}"
    );
    assert_eq!(v["notSized"], json!(["rs/gone"]));
    let waypoint = &ws[2];
    assert_eq!(waypoint["kind"], "Gateway");
    // 30m × 1.25 = 37.5 → 40m; 40Mi × 1.25 = 50Mi → 52Mi; 40Mi × 1.5 = 60Mi.
    assert_eq!(
        waypoint["recommended"],
        json!({"requests": {"cpu": "40m", "memory": "52Mi"}, "limits": {"cpu": "100m", "memory": "60Mi"}})
    );
    let api = &ws[0];
    assert_eq!(api["observed"]["samples"], 120);
    assert_eq!(api["observed"]["cpuP90M"], 48);
    assert_eq!(api["observed"]["memoryMax"], 24u64 << 20);
    // 48m × 1.25 = 60m; memory p90 23Mi × 1.25 = 28.75Mi → 32Mi; peak 24Mi × 1.5 = 36Mi.
    assert_eq!(
        api["recommended"]["requests"],
        json!({"cpu": "60m", "memory": "32Mi"})
    );
    assert_eq!(
        api["recommended"]["limits"],
        json!({"cpu": "100m", "memory": "36Mi"})
    );
    assert_eq!(api["lowConfidence"], false);
    let idle = &ws[1];
    assert_eq!(idle["current"]["requests"]["cpu"], "100m");
    assert_eq!(idle["recommended"]["requests"]["cpu"], "10m");
    // 90m saved on idle, 40m × 2 more on api, 20m more on the waypoint.
    assert_eq!(v["total"]["vsCurrent"]["cores"], -0.01);
    assert_eq!(v["total"]["pods"], 4);

    let (code, out, err) = weft(&root, &["right-size", "idle", "--name", "rsc"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("rs/idle   1     60 over 1m58s  100m → 10m"),
        "{out}"
    );
    assert!(!out.contains("rs/api"), "{out}");

    let (code, out, err) = weft(&root, &["right-size", "nope", "--name", "rsc"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("no workload \"nope\"; workloads: rs/api, rs/idle, rs/bare"),
        "{err}"
    );
    let (code, _, err) = weft(&root, &["right-size", "bare", "--name", "rsc"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no proxy samples of bare in the last 1h"),
        "{err}"
    );
    assert!(
        err.contains("has to run under representative load"),
        "{err}"
    );

    // The diff alone, then written.
    let (code, out, err) = weft(&root, &["right-size", "--name", "rsc", "--apply"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("+  annotations:\n+    weft.dev/proxy-cpu-request: 60m\n"),
        "{out}"
    );
    assert!(out.contains("Re-run with --yes"), "{out}");
    assert_eq!(
        std::fs::read_to_string(cfg.join("shop.yaml")).unwrap(),
        SHOP
    );
    let (code, out, err) = weft(&root, &["right-size", "--name", "rsc", "--apply", "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wrote "), "{out}");
    let text = std::fs::read_to_string(cfg.join("shop.yaml")).unwrap();
    assert!(text.contains("# The busy one.\n"), "{text}");
    assert!(
        text.contains(
            "annotations: {weft.dev/proxy-cpu-request: 10m, weft.dev/proxy-cpu-limit: 100m, "
        ),
        "{text}"
    );
    assert!(
        text.contains("metadata: {name: waypoint, namespace: rs, annotations: {weft.dev/proxy-cpu-request: 40m, "),
        "{text}"
    );
    let (code, out, err) = weft(&root, &["analyze", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // bare's warning (no sidecar) stays; nothing about proxy resources.
    assert!(!out.contains("WEFT03"), "{out}");
    assert!(out.contains("0 errors, 1 warning, 0 info"), "{out}");

    // Now the applied values are the current ones.
    let (code, out, _) = weft(&root, &["right-size", "--name", "rsc", "-o", "json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    for w in v["workloads"].as_array().unwrap() {
        assert_eq!(w["current"], w["recommended"], "{w:#}");
    }
    let (_, out, _) = weft(&root, &["right-size", "--name", "rsc", "--apply"]);
    assert!(out.contains("Nothing to write"), "{out}");
}

#[test]
fn a_mesh_without_samples_says_to_run_it_under_load() {
    let root = TempDir::new("rs-cli-empty");
    let cfg = root.join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("shop.yaml"), SHOP).unwrap();
    mesh(&root, "rse", &cfg, &[]);
    let (code, out, err) = weft(&root, &["right-size", "--name", "rse"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("no proxy samples of any workload in the last 1h"),
        "{err}"
    );
    let (code, _, err) = weft(&root, &["right-size", "--name", "nomesh"]);
    assert_eq!(code, 2);
    assert!(err.contains("no mesh named \"nomesh\" is running"), "{err}");
}
