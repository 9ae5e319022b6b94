//! Readiness that says why, on a real `weft up`: an app listening on another port than its
//! Workload declares keeps `weft up -d` from succeeding — it exits non-zero within its wait,
//! naming the pod, where its app listens and the fix — and `weft get pods` shows the reason;
//! fixing the configuration while the mesh runs replaces the pod, which is then ready. Needs
//! root (CI runs it with `--include-ignored`).

use std::time::{Duration, Instant};

use weft_e2e::{ConfigDir, Mesh, network_yaml, serial, text};

const WAIT: Duration = Duration::from_secs(60);

/// `web` listens on 9090 but declares 8080 (its Service targets that port by name); `ok`
/// listens where it says.
const APPS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: rd, labels: {weft.dev/dataplane-mode: sidecar}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: rd, labels: {app: web}}
spec:
  command: [python3, -m, http.server, "9090", --bind, 0.0.0.0]
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: rd}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: ok, namespace: rd, labels: {app: ok}}
spec:
  command: [python3, -m, http.server, "8000", --bind, 0.0.0.0]
  ports: [{containerPort: 8000}]
"#;

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn an_app_on_another_port_fails_weft_up_with_where_it_listens_until_fixed_live() {
    let _serial = serial();
    let cfg = ConfigDir::new("ready");
    cfg.write("mesh.yaml", &network_yaml(90, "ready.local"));
    cfg.write("apps.yaml", APPS);
    let t = Instant::now();
    let (mesh, out) = Mesh::up_unready("ready", &cfg.path);
    let took = t.elapsed();
    // Its wait is 30 s; it says so then, not later.
    assert!(
        took < Duration::from_secs(45),
        "weft up -d took {took:?}:\n{out}"
    );
    let line = (out.lines())
        .find(|l| l.contains("pod rd/web-0:"))
        .unwrap_or_else(|| panic!("no line for web-0:\n{out}"));
    assert!(
        line.contains("app not listening on :8080; it listens on :9090"),
        "{out}"
    );
    assert!(line.contains("fix: make the app listen on :8080"), "{out}");
    assert!(!out.contains("pod rd/ok-0:"), "ok-0 is ready:\n{out}");
    assert!(out.contains("1 not ready"), "{out}");

    let table = text(&mesh.weft(&["get", "pods"]));
    assert!(
        table.lines().next().is_some_and(|h| h.contains("REASON")),
        "{table}"
    );
    let row = (table.lines())
        .find(|l| l.contains("web-0"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("app not listening on :8080; it listens on :9090"),
        "{table}"
    );
    let pods = mesh.pods();
    let web = Mesh::pod(&pods, "web-0");
    assert_eq!(
        web["reason"], "app not listening on :8080; it listens on :9090",
        "{web}"
    );
    assert!(
        web["fix"].as_str().is_some_and(|f| f.contains("9090")),
        "{web}"
    );
    assert!(Mesh::pod(&pods, "ok-0").get("reason").is_none(), "{pods:?}");

    // Fixed while it runs: web-0 is replaced with its new port and serves.
    cfg.write(
        "apps.yaml",
        &APPS.replace("containerPort: 8080", "containerPort: 9090"),
    );
    mesh.eventually("web-0 is ready on its declared port", WAIT, || {
        let pods = mesh.pods();
        let web = Mesh::pod(&pods, "web-0");
        web["app"]["state"] == "ready" && web.get("reason").is_none()
    });
    mesh.eventually("ok-0 reaches web through its Service", WAIT, || {
        let out = mesh.exec(
            "ok-0",
            &["curl", "-fsS", "-m", "5", "-o", "/dev/null", "http://web/"],
        );
        out.status.success()
    });
    let log = mesh.up_log();
    assert!(
        log.contains("pod rd/web-0: ports changed: replacing it"),
        "{log}"
    );
}
