use super::*;
use crate::plan::Options;
use crate::status::{Named, PodStatus, Process};

const MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {metrics: {port: 15090}, network: {nodes: 2}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop}
spec: {command: [web], replicas: 2}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: quiet, namespace: shop, annotations: {weft.dev/metrics: "false"}}
spec: {command: [quiet]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: amb, namespace: shop, labels: {weft.dev/dataplane-mode: ambient}}
spec: {command: [amb]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: bare, namespace: shop, labels: {weft.dev/dataplane-mode: none}}
spec: {command: [bare]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: shop}
spec:
  gatewayClassName: weft
  listeners: [{name: http, port: 8080, protocol: HTTP}]
"#;

fn plan() -> Plan {
    let out = weft_core::parse_str("/cfg/mesh.yaml", MESH);
    assert!(out.is_ok(), "{:?}", out.errors);
    let opts = Options {
        name: "t1".into(),
        weft: "/usr/bin/weft".into(),
        ingress_port: None,
        admin: "127.0.0.1:15014".parse().unwrap(),
    };
    Plan::new(&out.config, Path::new("/cfg"), &opts).unwrap()
}

fn process(state: &str) -> Process {
    Process {
        state: state.into(),
        ..Process::default()
    }
}

fn named(name: &str, state: &str) -> Named {
    Named {
        name: name.into(),
        process: process(state),
    }
}

/// Every pod of the plan, its proxy and app in `state`.
fn status(plan: &Plan, state: &str) -> Status {
    Status {
        gateways: vec![named("shop/ingress", state)],
        nodes: vec![named("node-1", state), named("node-2", "none")],
        pods: (plan.pods.iter())
            .map(|p| PodStatus {
                name: p.name.clone(),
                mode: p.mode_label().into(),
                proxy: process(if p.sidecar() { state } else { "none" }),
                app: process(state),
                ..PodStatus::default()
            })
            .collect(),
        ..Status::default()
    }
}

/// (address, role, pod) of each target.
fn listed(targets: &[Target]) -> Vec<(String, String, String)> {
    (targets.iter())
        .map(|t| {
            assert_eq!(t.targets.len(), 1);
            (
                t.targets[0].clone(),
                t.labels["role"].clone(),
                t.labels["pod"].clone(),
            )
        })
        .collect()
}

#[test]
fn every_proxy_serving_metrics_is_a_target_and_no_other() {
    let plan = plan();
    let ip = |name: &str| plan.pods.iter().find(|p| p.name == name).unwrap().ip;
    let host = plan.host_ip;
    let up = targets(&plan, &status(&plan, "ready"));
    let want = [
        // Gateway 0 and node proxy 0 on the host, at the Mesh's metrics port plus their offset;
        // node-2 runs no node proxy (no ambient pod there).
        (format!("{host}:15090"), "gateway", "gateway-ingress"),
        (format!("{host}:15590"), "node", "node-1"),
        // The ambient pod is on its node proxy's page, `bare` has no proxy and `quiet` turned
        // its metrics off.
        (format!("{}:15090", ip("web-0")), "sidecar", "web-0"),
        (format!("{}:15090", ip("web-1")), "sidecar", "web-1"),
        (format!("{}:15090", ip("wp-0")), "waypoint", "wp-0"),
    ];
    let want: Vec<_> = (want.iter())
        .map(|(a, r, p)| (a.clone(), r.to_string(), p.to_string()))
        .collect();
    assert_eq!(listed(&up), want);
    let web = &up[2].labels;
    let labels: Vec<(&str, &str)> = web.iter().map(|(k, v)| (&**k, &**v)).collect();
    assert_eq!(
        labels,
        [
            ("mesh", "t1"),
            ("namespace", "shop"),
            ("pod", "web-0"),
            ("role", "sidecar"),
            ("workload", "web")
        ]
    );
    assert_eq!(up[1].labels["namespace"], "weft-system");
    assert_eq!(up[1].labels["workload"], "weft-node");
    assert_eq!(up[0].labels["workload"], "ingress");

    // Nothing is ready yet: nothing to scrape.
    assert_eq!(targets(&plan, &status(&plan, "starting")), vec![]);
}

#[test]
fn the_targets_file_is_rewritten_only_when_the_set_changes() {
    let plan = plan();
    let run = RunDir {
        path: std::env::temp_dir().join(format!("weft-prometheus-test-{}", std::process::id())),
    };
    let mut scrape = Scrape::new(plan.clone(), &run).unwrap();
    let config = std::fs::read_to_string(config_file(&run)).unwrap();
    let file = targets_file(&run);
    assert!(config.contains(&format!("files: [\"{}\"]", file.display())));

    let mut s = status(&plan, "starting");
    scrape.update(&s).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "[]");
    let web = plan.pods.iter().position(|p| p.name == "web-0").unwrap();
    s.pods[web].proxy.state = "ready".into();
    scrape.update(&s).unwrap();
    let read: Vec<Target> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(read, targets(&plan, &s));
    assert_eq!(read.len(), 1);
    // Another change that moves no target leaves the file alone.
    std::fs::remove_file(&file).unwrap();
    s.pods[web].app.restarts += 1;
    scrape.update(&s).unwrap();
    assert!(!file.exists());
    let _ = std::fs::remove_dir_all(&run.path);
}

#[test]
fn the_config_scrapes_the_targets_file_every_five_seconds() {
    let plan = plan();
    let run = RunDir {
        path: "/run/weft/t1".into(),
    };
    let config = config(&plan, &run);
    for line in [
        "  scrape_interval: 5s",
        "  - job_name: weft",
        "      - files: [\"/run/weft/t1/prometheus/targets.json\"]",
        "        refresh_interval: 5s",
    ] {
        assert!(config.lines().any(|l| l == line), "{line:?} in\n{config}");
    }
}

#[test]
fn prometheus_keeps_its_storage_in_the_run_directory_and_listens_on_loopback() {
    let run = RunDir {
        path: "/run/weft/t1".into(),
    };
    let p = PrometheusPlan {
        binary: "/usr/bin/prometheus".into(),
        listen: "127.0.0.1:9091".parse().unwrap(),
    };
    let spec = spec(&p, &run);
    assert_eq!(spec.slot, Slot::Prometheus);
    assert_eq!(
        spec.argv,
        [
            "/usr/bin/prometheus",
            "--config.file=/run/weft/t1/prometheus/prometheus.yml",
            "--storage.tsdb.path=/run/weft/t1/prometheus/data",
            "--storage.tsdb.retention.time=1d",
            "--web.listen-address=127.0.0.1:9091",
        ]
    );
    assert!(matches!(spec.ready, Some(Probe::Http(a, "/-/ready")) if a == p.listen));
    assert_eq!(url(&p), "http://127.0.0.1:9091/");
}

#[test]
fn a_missing_prometheus_names_the_package_to_install() {
    let err = find_in("/nonexistent:/also/nonexistent".as_ref()).unwrap_err();
    assert!(
        err.to_string().contains("apt-get install prometheus"),
        "{err}"
    );
}
