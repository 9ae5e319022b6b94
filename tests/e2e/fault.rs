//! Fault injection through `weft up`: a route rule that names a `Fault` delays or aborts its
//! requests at the caller's proxy, the other rules are untouched, and the access log carries
//! Envoy's flags (`DI`, `FI`). Needs root (CI runs it with `--include-ignored`).

use std::time::Duration;

use weft_e2e::{Mesh, serial, shop, text};

const FAULTS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog-faults, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: catalog, port: 8080}]
  rules:
  - matches: [{headers: [{name: x-fault, value: abort}]}]
    backendRefs: [{name: catalog, port: 8080}]
    filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: Fault, name: abort}}]
  - matches: [{headers: [{name: x-fault, value: delay}]}]
    backendRefs: [{name: catalog, port: 8080}]
    filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: Fault, name: delay}}]
  - backendRefs: [{name: catalog, port: 8080}]
---
apiVersion: weft.dev/v1alpha1
kind: Fault
metadata: {name: abort, namespace: shop}
spec: {abort: {httpStatus: 418}}
---
apiVersion: weft.dev/v1alpha1
kind: Fault
metadata: {name: delay, namespace: shop}
spec: {delay: {fixedDelay: 700ms}}
"#;

/// `curl` from frontend-0 to the catalog with header `x-fault: FAULT`: (status, seconds,
/// the `weft-error` header).
fn call(mesh: &Mesh, fault: &str) -> (u16, f64, String) {
    let header = format!("x-fault: {fault}");
    let out = mesh.exec(
        "frontend-0",
        &[
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "%{http_code} %{time_total}\n",
            "-H",
            &header,
            "http://catalog:8080/items",
        ],
    );
    let out = text(&out);
    let last = out.lines().last().unwrap_or_default().to_string();
    let mut words = last.split_whitespace();
    let status = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let secs = words.next().and_then(|w| w.parse().ok()).unwrap_or(0.0);
    let error = (out.lines())
        .find_map(|l| l.strip_prefix("weft-error: "))
        .unwrap_or_default()
        .trim()
        .to_string();
    (status, secs, error)
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn a_fault_delays_or_aborts_only_the_rule_that_names_it() {
    let _serial = serial();
    let cfg = shop("fault", 93);
    cfg.write("faults.yaml", FAULTS);
    let mesh = Mesh::up("fault", &cfg.path);

    let (status, secs, error) = call(&mesh, "abort");
    assert_eq!((status, error.as_str()), (418, "fault-abort"));
    assert!(secs < 0.5, "an abort answers at once: {secs}s");
    let (status, secs, _) = call(&mesh, "delay");
    assert_eq!(status, 200);
    assert!(secs >= 0.7, "the delay holds the request: {secs}s");
    let (status, secs, _) = call(&mesh, "none");
    assert_eq!(status, 200);
    assert!(secs < 0.7, "other rules are not delayed: {secs}s");

    // The caller's access log: FI for the abort, DI for the delay, with the rule.
    let mut log = String::new();
    mesh.eventually("both records in the log", Duration::from_secs(10), || {
        log = mesh.log("frontend-0", true);
        log.contains("\"status\":418") && log.contains("\"fault_delayed\":true")
    });
    let abort = log.lines().find(|l| l.contains("\"status\":418")).unwrap();
    assert!(abort.contains("\"error\":\"fault-abort\""), "{abort}");
    assert!(
        abort.contains("HTTPRoute/shop/catalog-faults rule 0"),
        "{abort}"
    );
    // The proxy's metrics name them with Envoy's flags.
    let metrics = text(&mesh.exec(
        "frontend-0",
        &["curl", "-sS", "http://127.0.0.1:15020/metrics"],
    ));
    assert!(metrics.contains("response_flags=\"FI\""), "{metrics}");
    assert!(metrics.contains("response_flags=\"DI\""), "{metrics}");
    mesh.down();
}
