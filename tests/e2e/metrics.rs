//! Proxy metrics over `weft up`: the Mesh's `metrics.port` is where every sidecar serves
//! `/metrics`, with the families of each module, and a workload annotated
//! `weft.dev/metrics: "false"` serves none. The request between the two sidecars goes through
//! capture and the mTLS tunnel, so the proxies' own connections carry the socket mark.

use std::net::SocketAddr;

use weft_e2e::{ConfigDir, Mesh, http_get_at, network_yaml, serial, text};

const WORKLOADS: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: tbm, labels: {app: web}}
spec:
  command: [python3, -m, http.server, "8000", --bind, 0.0.0.0]
  ports: [{name: http, containerPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: tbm}
spec:
  selector: {app: web}
  ports: [{name: http, port: 8000}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: client
  namespace: tbm
  labels: {app: client}
  annotations: {weft.dev/metrics: "false"}
spec:
  command: [sleep, "3600"]
"#;

fn metrics_of(mesh: &Mesh, pod: &str) -> (u16, String) {
    let pods = mesh.pods();
    let ip = Mesh::pod(&pods, pod)["ip"].as_str().unwrap().to_string();
    let addr: SocketAddr = format!("{ip}:15090").parse().unwrap();
    http_get_at(addr, "/metrics").expect("the metrics port answers")
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn the_meshs_metrics_port_serves_every_family_unless_turned_off() {
    let _serial = serial();
    let cfg = ConfigDir::new("tbmetrics");
    let mesh_yaml = network_yaml(56, "tbm.local").replace(
        "  network:",
        "  metrics: {enabled: true, port: 15090}\n  network:",
    );
    cfg.write("mesh.yaml", &mesh_yaml);
    cfg.write("workloads.yaml", WORKLOADS);
    let mesh = Mesh::up("tbmet", &cfg.path);

    let out = mesh.weft(&[
        "exec",
        "client-0",
        "--",
        "curl",
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://web:8000/",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");

    let (status, web) = metrics_of(&mesh, "web-0");
    assert_eq!(status, 200, "{web}");
    for line in [
        r#"weft_pool_connections_opened_total{transport="local"} 1"#,
        r#"weft_certs_renewals_total{result="ok"} 1"#,
        r#"weft_xds_updates_total{type="weft.dev/Proxy",result="applied"}"#,
        "weft_xds_connected 1",
        "weft_certs_expiry_seconds ",
    ] {
        assert!(web.contains(line), "{line} not in {web}");
    }
    assert!(
        web.lines().any(
            |l| l.starts_with(r#"istio_requests_total{reporter="destination""#)
                && l.contains(r#"destination_workload="web""#)
                && l.contains(r#"response_code="200""#)
        ),
        "{web}"
    );

    let (status, client) = metrics_of(&mesh, "client-0");
    assert_eq!(status, 404, "{client}");
    assert!(client.contains("weft.dev/metrics"), "{client}");
    mesh.down();
}
