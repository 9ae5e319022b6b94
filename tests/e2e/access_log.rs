//! Access-log formats through `weft up`: the Mesh switches every proxy to Istio's default text
//! line, and one workload's annotation gives its proxy a JSON format of its own; each proxy's
//! lines carry the request's headers, codes and identities in the format it was given. Needs
//! root (CI runs it with `--include-ignored`).

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use weft_e2e::{Mesh, serial, shop};

const T: Duration = Duration::from_secs(30);

const CART_FORMAT: &str = r#"{"code": "%RESPONSE_CODE%", "request": "%REQ(:METHOD)% %REQ(:PATH)%", "source": "%SOURCE_PRINCIPAL%", "flags": "%RESPONSE_FLAGS%", "id": "%REQ(X-REQUEST-ID)%", "direction": "%DIRECTION%"}"#;

/// `curl -A AGENT -H x-request-id:ID http://127.0.0.1:PORT/`: the status.
fn get_with(port: u16, agent: &str, id: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-A",
            agent,
        ])
        .args(["-H", &format!("x-request-id: {id}")])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("running curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn the_mesh_and_a_workload_choose_their_access_log_format() {
    let _serial = serial();
    let cfg = shop("alogfmt", 86);
    let mesh_yaml = std::fs::read_to_string(cfg.path.join("mesh.yaml")).unwrap();
    cfg.write(
        "mesh.yaml",
        &mesh_yaml.replacen(
            "  trustDomain: shop.local",
            "  trustDomain: shop.local\n  accessLog: {encoding: TEXT}",
            1,
        ),
    );
    let cart = std::fs::read_to_string(cfg.path.join("cart.yaml")).unwrap();
    let annotation = format!(
        "  namespace: shop\n  annotations:\n    weft.dev/access-log-format: '{CART_FORMAT}'"
    );
    cfg.write(
        "cart.yaml",
        &cart.replacen("  namespace: shop", &annotation, 1),
    );
    let mesh = Mesh::up("alogfmt", &cfg.path);
    mesh.eventually("the shop answers", T, || {
        get_with(mesh.ingress_port, "warmup/1", "warmup") == "200"
    });
    assert_eq!(get_with(mesh.ingress_port, "e2e-agent/7", "req-42"), "200");

    // The frontend's sidecar: Istio's default line, with the page's request and the agent.
    let mut line = String::new();
    mesh.eventually("the frontend logs the page as text", T, || {
        let logs = mesh.log("frontend-0", true) + &mesh.log("frontend-1", true);
        line = (logs.lines())
            .find(|l| l.contains("\"e2e-agent/7\"") && l.contains("\"GET / HTTP/1.1\""))
            .unwrap_or_default()
            .to_string();
        !line.is_empty()
    });
    assert!(line.starts_with("[20") && line.contains("Z] "), "{line}");
    assert!(line.contains("\" 200 - via_upstream "), "{line}");
    assert!(line.contains("\"req-42\""), "{line}");
    assert!(!line.starts_with('{'), "{line}");

    // The cart's sidecar: its own JSON fields, in its order, numbers kept and the caller's
    // proven identity.
    let mut record = Value::Null;
    mesh.eventually("the cart logs the page's call in its format", T, || {
        let log = mesh.log("cart-0", true);
        record = (log.lines())
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["id"] == "req-42" && v["direction"] == "inbound")
            .unwrap_or(Value::Null);
        !record.is_null()
    });
    let keys: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["code", "request", "source", "flags", "id", "direction"],
        "{record}"
    );
    assert_eq!(record["code"], 200, "{record}");
    assert_eq!(record["request"], "GET /cart", "{record}");
    assert_eq!(
        record["source"], "spiffe://shop.local/ns/shop/sa/frontend",
        "{record}"
    );
    assert_eq!(record["flags"], "-", "{record}");
    mesh.down();
}
