//! Istio labels and annotations on Namespaces and workloads.

use serde_json::json;

use super::run;

#[test]
fn istio_labels_and_annotations_become_weft_ones_or_nothing() {
    let c = run(r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {istio-injection: enabled, team: a}
---
apiVersion: v1
kind: Namespace
metadata:
  name: legacy
  labels: {istio-injection: disabled}
---
apiVersion: v1
kind: Namespace
metadata:
  name: canary
  labels: {istio.io/rev: 1-24-0, istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  template:
    metadata:
      labels: {app: api, sidecar.istio.io/inject: "true"}
      annotations:
        sidecar.istio.io/proxyCPU: 50m
        sidecar.istio.io/proxyCPULimit: 500m
        sidecar.istio.io/proxyMemory: 64Mi
        sidecar.istio.io/proxyMemoryLimit: 256Mi
        sidecar.istio.io/logLevel: warning
        traffic.sidecar.istio.io/excludeOutboundPorts: "3306"
        prometheus.io/scrape: "true"
        proxy.istio.io/config: |
          holdApplicationUntilProxyStarts: true
          terminationDrainDuration: 30s
          concurrency: 4
          proxyStatsMatcher: {inclusionPrefixes: [cluster]}
    spec: {containers: [{name: api, image: api}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: batch
  namespace: shop
  labels: {app: batch}
  annotations:
    sidecar.istio.io/inject: "false"
    proxy.istio.io/config: '{"holdApplicationUntilProxyStarts": false}'
spec: {command: [sleep, "60"]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: untouched}
data: {a: "1"}
"#);
    assert_eq!(
        c.doc("Namespace", "shop")["metadata"]["labels"],
        json!({"team": "a"})
    );
    assert_eq!(
        c.doc("Namespace", "legacy")["metadata"]["labels"],
        json!({"weft.dev/dataplane-mode": "none"})
    );
    assert_eq!(
        c.doc("Namespace", "canary")["metadata"]["labels"],
        json!({"weft.dev/rev": "1-24-0", "weft.dev/dataplane-mode": "ambient", "weft.dev/use-waypoint": "waypoint"})
    );
    let api = &c.doc("Deployment", "api")["spec"]["template"]["metadata"];
    assert_eq!(api["labels"], json!({"app": "api"}));
    assert_eq!(
        api["annotations"],
        json!({
            "traffic.sidecar.istio.io/excludeOutboundPorts": "3306",
            "prometheus.io/scrape": "true",
            "weft.dev/proxy-cpu-request": "50m",
            "weft.dev/proxy-cpu-limit": "500m",
            "weft.dev/proxy-memory-request": "64Mi",
            "weft.dev/proxy-memory-limit": "256Mi",
            "weft.dev/log-level": "warn",
            "weft.dev/drain-duration": "30s",
            "weft.dev/concurrency": "4",
        })
    );
    let batch = c.doc("Workload", "batch");
    assert_eq!(
        batch["metadata"]["labels"],
        json!({"app": "batch", "weft.dev/dataplane-mode": "none"})
    );
    assert_eq!(
        batch["metadata"]["annotations"],
        json!({"weft.dev/hold-application": "false"})
    );
    // What converted is said in the output; what did not, in the summary too.
    for want in [
        "# weft import: istio-injection: nothing to write: weft gives every workload a sidecar by default",
        "# weft import: proxy.istio.io/config: holdApplicationUntilProxyStarts: true: nothing to write",
        "# weft import: istio.io/rev → weft.dev/rev: 1-24-0 (the revision must exist",
        "# weft import: sidecar.istio.io/proxyCPU → weft.dev/proxy-cpu-request: 50m",
    ] {
        assert!(c.text.contains(want), "{want}: {}", c.text);
    }
    let n = c.notes();
    for want in [
        "proxy.istio.io/config: proxyStatsMatcher: not converted",
        "traffic.sidecar.istio.io/excludeOutboundPorts: not converted (weft captures all",
    ] {
        assert!(n.contains(want), "{want}: {n}");
    }
    assert!(!n.contains("nothing to write"), "{n}");
    // Documents without anything of Istio pass through as written.
    assert!(
        c.text
            .contains("kind: ConfigMap\nmetadata: {name: untouched}\ndata: {a: \"1\"}\n"),
        "{}",
        c.text
    );
    assert!(!c.import.rows.iter().any(|r| r.source.contains("untouched")));
}

#[test]
fn kinds_without_an_equivalent_are_named_with_the_reason() {
    let c = run(r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec: {hosts: [api.example.com], resolution: DNS}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec: {egress: [{hosts: ["./*"]}]}
---
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: lua, namespace: shop}
spec: {}
"#);
    for (source, why) in [
        ("ServiceEntry shop/ext", "no registry of external services"),
        ("Sidecar shop/default", "on demand"),
        ("EnvoyFilter shop/lua", "not Envoy"),
    ] {
        let row = c.row(source);
        assert!(row.converted.is_empty(), "{row:?}");
        assert!(row.notes[0].contains(why), "{row:?}");
    }
    assert!(
        c.text.contains(
            "# weft import: networking.istio.io/v1 ServiceEntry shop/ext (in.yaml:2) -> nothing"
        ),
        "{}",
        c.text
    );
    let table = super::super::table(&c.import.rows);
    assert!(table.contains("ServiceEntry shop/ext"), "{table}");
    assert!(table.contains("not converted"), "{table}");
}
