use std::collections::BTreeMap;

use weft_core::Resource;

use super::*;

fn values() -> Vec<(&'static str, String)> {
    vec![
        ("weft.dev/proxy-cpu-request", "15m".into()),
        ("weft.dev/proxy-cpu-limit", "1".into()),
        ("weft.dev/proxy-memory-request", "16Mi".into()),
        ("weft.dev/proxy-memory-limit", "32Mi".into()),
    ]
}

/// The resources of `text`, as loaded.
fn load(text: &str) -> Vec<Resource> {
    let out = weft_core::load::parse_str("t.yaml", text);
    assert!(out.is_ok(), "{:?}\n{text}", out.errors);
    out.config
        .resources
        .into_iter()
        .map(|l| l.resource)
        .collect()
}

/// Edits `text` for `ns/name` and checks that the result loads to the same resources but
/// for that Workload's annotations, which gain `values()` over `before`.
fn edit(text: &str, ns: &str, name: &str) -> String {
    let out =
        set_annotations(text, "Workload", ns, name, &values()).unwrap_or_else(|e| panic!("{e}"));
    let (old, new) = (load(text), load(&out));
    assert_eq!(old.len(), new.len(), "{out}");
    for (o, n) in old.iter().zip(&new) {
        match (o, n) {
            (Resource::Workload(o), Resource::Workload(n))
                if o.metadata.name == name && o.metadata.namespace() == ns =>
            {
                let mut want: BTreeMap<String, String> = o.metadata.annotations.clone();
                for (k, v) in values() {
                    want.insert(k.into(), v);
                }
                assert_eq!(n.metadata.annotations, want, "{out}");
                let mut n = n.clone();
                n.metadata.annotations = o.metadata.annotations.clone();
                assert_eq!(&n, o, "{out}");
            }
            _ => assert_eq!(o, n, "{out}"),
        }
    }
    out
}

const BLOCK: &str = "# The cart service.
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: cart
  namespace: shop
  labels: {app: cart, version: v1}  # pods' labels
# what it runs
spec:
  command: [weft, demo, cart]
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop}
spec:
  selector: {app: cart}
  ports:
  - {name: http, port: 8080}
";

#[test]
fn a_block_metadata_without_annotations_gets_a_block_after_its_last_line() {
    let out = edit(BLOCK, "shop", "cart");
    assert_eq!(
        out,
        BLOCK.replace(
            "  labels: {app: cart, version: v1}  # pods' labels\n",
            "  labels: {app: cart, version: v1}  # pods' labels
  annotations:
    weft.dev/proxy-cpu-request: 15m
    weft.dev/proxy-cpu-limit: \"1\"
    weft.dev/proxy-memory-request: 16Mi
    weft.dev/proxy-memory-limit: 32Mi
"
        )
    );
}

#[test]
fn existing_block_annotations_are_replaced_in_place_and_the_rest_appended() {
    let text = "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
    name: api
    annotations:
        weft.dev/drain-duration: 10s
        \"weft.dev/proxy-cpu-limit\": 50m   # too low
        # keep this comment
    labels:
        app: api
spec: {command: [api]}
";
    let out = edit(text, "default", "api");
    assert_eq!(
        out,
        "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
    name: api
    annotations:
        weft.dev/drain-duration: 10s
        \"weft.dev/proxy-cpu-limit\": \"1\"   # too low
        # keep this comment
        weft.dev/proxy-cpu-request: 15m
        weft.dev/proxy-memory-request: 16Mi
        weft.dev/proxy-memory-limit: 32Mi
    labels:
        app: api
spec: {command: [api]}
"
    );
}

#[test]
fn flow_annotations_are_edited_on_their_line() {
    let text = "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  annotations: {weft.dev/proxy-memory-limit: 16Mi, note: \"a, b: c\"} # low
spec: {command: [api]}
";
    let out = edit(text, "default", "api");
    assert!(out.contains(
        "  annotations: {weft.dev/proxy-memory-limit: 32Mi, note: \"a, b: c\", weft.dev/proxy-cpu-request: 15m, weft.dev/proxy-cpu-limit: \"1\", weft.dev/proxy-memory-request: 16Mi} # low\n"
    ), "{out}");
    let empty = text.replace(
        "{weft.dev/proxy-memory-limit: 16Mi, note: \"a, b: c\"} # low",
        "{}",
    );
    let out = edit(&empty, "default", "api");
    assert!(
        out.contains("  annotations: {weft.dev/proxy-cpu-request: 15m, "),
        "{out}"
    );
}

#[test]
fn a_flow_metadata_is_edited_on_its_line() {
    let text = "apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: lab, labels: {app: web}}
spec: {command: [web]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop, labels: {app: web}, annotations: {a: b}}
spec: {command: [web]}
";
    let out = edit(text, "lab", "web");
    assert!(out.starts_with("apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: lab, labels: {app: web}, annotations: {weft.dev/proxy-cpu-request: 15m, weft.dev/proxy-cpu-limit: \"1\", weft.dev/proxy-memory-request: 16Mi, weft.dev/proxy-memory-limit: 32Mi}}
spec: {command: [web]}
---
"), "{out}");
    let out = edit(text, "shop", "web");
    assert!(
        out.contains("annotations: {a: b, weft.dev/proxy-cpu-request: 15m"),
        "{out}"
    );
    assert!(out.starts_with(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: web, namespace: lab, labels: {app: web}}\n"
    ));
}

#[test]
fn crlf_files_stay_crlf() {
    let text = BLOCK.replace('\n', "\r\n");
    let out = edit(&text, "shop", "cart");
    assert!(out.contains("\r\n  annotations:\r\n    weft.dev/proxy-cpu-request: 15m\r\n"));
    assert!(!out.replace("\r\n", "").contains('\n'), "{out:?}");
}

#[test]
fn forms_it_cannot_edit_safely_are_refused_with_the_reason() {
    let cases = [
        (
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: api,\n  labels: {app: api}}\nspec: {command: [api]}\n",
            "does not close on its line",
        ),
        (
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: api\n  annotations:\n    weft.dev/proxy-cpu-limit: |\n      50m\nspec: {command: [api]}\n",
            "not a one-line scalar",
        ),
        (
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: api\n  annotations: &a {x: y}\nspec: {command: [api]}\n",
            "is not a mapping weft can edit",
        ),
        (
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: other\nspec: {command: [api]}\n",
            "no Workload default/api found",
        ),
    ];
    for (text, why) in cases {
        let err = set_annotations(text, "Workload", "default", "api", &values()).unwrap_err();
        assert!(err.0.contains(why), "{err} for\n{text}");
    }
}

#[test]
fn a_kubernetes_deployment_is_left_to_the_user() {
    let text = "apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: api:1}]
";
    // The loader reads it as a Workload; its annotations live in the pod template.
    let loaded = load(text);
    assert!(matches!(loaded[..], [Resource::Workload(_)]), "{loaded:?}");
    let err = set_annotations(text, "Workload", "shop", "api", &values()).unwrap_err();
    assert!(err.0.contains("a Deployment here"), "{err}");
}

#[test]
fn scalars_that_would_read_as_numbers_are_quoted() {
    assert_eq!(scalar("250m"), "250m");
    assert_eq!(scalar("2"), "\"2\"");
    assert_eq!(scalar("1.5"), "\"1.5\"");
    assert_eq!(scalar("64Mi"), "64Mi");
    assert_eq!(scalar("true"), "\"true\"");
}

#[test]
fn a_waypoint_gateway_is_edited_like_a_workload() {
    let text = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: waypoint
  namespace: shop
spec:
  gatewayClassName: weft-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
";
    let out = set_annotations(text, "Gateway", "shop", "waypoint", &values()).unwrap();
    assert!(
        out.contains("  namespace: shop\n  annotations:\n    weft.dev/proxy-cpu-request: 15m\n"),
        "{out}"
    );
    let loaded = load(&out);
    let Resource::Gateway(g) = &loaded[0] else {
        panic!("{loaded:?}")
    };
    assert_eq!(
        g.metadata.annotations["weft.dev/proxy-memory-limit"],
        "32Mi"
    );
    // Not a Workload of that name.
    let err = set_annotations(text, "Workload", "shop", "waypoint", &values()).unwrap_err();
    assert!(err.0.contains("no Workload shop/waypoint"), "{err}");
}
