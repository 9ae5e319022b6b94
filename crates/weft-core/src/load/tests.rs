use super::*;

fn one_error(text: &str) -> ConfigError {
    let out = parse_str("mesh.yaml", text);
    assert_eq!(out.errors.len(), 1, "{:#?}", out.errors);
    out.errors.into_iter().next().unwrap()
}

#[test]
fn reads_every_kind_from_one_stream() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/shop");
    let out = load_paths(&[dir]);
    assert!(out.is_ok(), "{:#?}", out.errors);
    assert!(!out.config.resources.is_empty());
}

#[test]
fn unknown_field_names_place_and_suggests() {
    let e = one_error(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: web\nspec:\n  command: [web]\n  replcas: 2\n",
    );
    assert_eq!(e.location.to_string(), "mesh.yaml:7:3");
    assert_eq!(e.path.as_deref(), Some("spec.replcas"));
    assert_eq!(e.hint.as_deref(), Some("did you mean `replicas`?"));
    assert_eq!(e.resource.as_deref(), Some("Workload/web"));
}

#[test]
fn case_slips_suggest_the_exact_field() {
    let e = one_error(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n  - port: 80\n    targetport: 8080\n",
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean `targetPort`?"));
}

#[test]
fn type_error_points_at_the_value() {
    let e = one_error(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n  - port: http\n",
    );
    assert_eq!(e.location.to_string(), "mesh.yaml:6:11");
    assert_eq!(e.path.as_deref(), Some("spec.ports[0].port"));
    assert!(e.message.contains("expected u16"), "{}", e.message);
    assert!(e.hint.unwrap().contains("port"));
    let e = one_error(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports:\n  - port: \"80\"\n",
    );
    assert_eq!(e.hint.as_deref(), Some("write it without quotes: 80"));
}

#[test]
fn missing_field_names_the_field_and_parent() {
    let e = one_error("apiVersion: v1\nkind: Service\nmetadata:\n  namespace: shop\n");
    assert_eq!(e.path.as_deref(), Some("metadata"));
    assert!(e.message.contains("`name`"), "{}", e.message);
    assert_eq!(e.location.line, 4);
}

#[test]
fn bad_enum_value_suggests_the_valid_one() {
    let e = one_error(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules:\n  - matches:\n    - path: {type: Prefix, value: /}\n",
    );
    assert_eq!(
        e.path.as_deref(),
        Some("spec.rules[0].matches[0].path.type")
    );
    let hint = e.hint.unwrap();
    assert!(hint.starts_with("did you mean `PathPrefix`?"), "{hint}");
}

#[test]
fn duplicates_name_both_places() {
    let out = parse_str(
        "a.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
    );
    assert_eq!(out.errors.len(), 1);
    let e = &out.errors[0];
    assert_eq!(e.location.line, 5);
    assert_eq!(e.related[0].line, 1);
    assert!(e.to_string().contains("defined twice"));
    assert_eq!(out.config.resources.len(), 1);
}

#[test]
fn wrong_api_version_and_kind_typos() {
    let e = one_error("apiVersion: weft.dev/v1\nkind: Mesh\nmetadata: {name: m}\n");
    assert_eq!(
        e.hint.as_deref(),
        Some("use `apiVersion: weft.dev/v1alpha1`")
    );
    let e = one_error("apiVersion: weft.dev/v1alpha1\nkind: Workoad\nmetadata: {name: m}\n");
    assert_eq!(e.hint.as_deref(), Some("did you mean `Workload`?"));
}

#[test]
fn foreign_kinds_are_skipped_and_kube_workloads_read() {
    let out = parse_str(
        "k.yaml",
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {weft.dev/hold-application: "true"}
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: shop/web:1
        ports: [{containerPort: 8080, name: http}]
        resources: {limits: {cpu: 1, memory: 256Mi, ephemeral-storage: 1Gi}, requests: {cpu: 50m}}
"#,
    );
    assert!(out.is_ok(), "{:#?}", out.errors);
    assert_eq!(out.config.skipped.len(), 1);
    let Resource::Workload(w) = &out.config.resources[0].resource else {
        panic!("not a workload")
    };
    assert_eq!(w.spec.replicas, 3);
    assert_eq!(w.metadata.label("app"), Some("web"));
    assert_eq!(w.spec.ports[0].container_port, 8080);
    assert_eq!(w.spec.service_account_name, "web");
    let r = w
        .spec
        .resources
        .as_ref()
        .expect("the container's resources");
    assert_eq!(r.limits.cpu, Some(crate::quantity::Cpu(1000)));
    assert_eq!(r.limits.memory, Some(crate::quantity::Memory(256 << 20)));
    assert_eq!(r.requests.cpu, Some(crate::quantity::Cpu(50)));
    assert_eq!(r.requests.memory, None);
}

#[test]
fn json_documents_load_too() {
    let out = parse_str(
        "n.json",
        r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}"#,
    );
    assert!(out.is_ok(), "{:#?}", out.errors);
    assert_eq!(out.config.resources[0].resource.id(), "Namespace/shop");
}

#[test]
fn invalid_names_are_rejected_with_a_suggestion() {
    let e = one_error("apiVersion: v1\nkind: Namespace\nmetadata: {name: My_Shop}\n");
    assert_eq!(e.path.as_deref(), Some("metadata.name"));
    assert!(e.message.contains("\"my-shop\""), "{}", e.message);
}

#[test]
fn syntax_errors_keep_earlier_documents() {
    let out = parse_str(
        "s.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkey: [unclosed\n",
    );
    assert_eq!(out.config.resources.len(), 1);
    assert_eq!(out.errors.len(), 1);
    assert!(out.errors[0].message.contains("YAML syntax error"));
}

#[test]
fn syntax_errors_at_the_end_of_the_last_line_point_at_it() {
    let e = one_error("apiVersion: v1\nkind: Namespace\nmetadata: {name: [a");
    assert_eq!(e.location.to_string(), "mesh.yaml:3:20");
}

#[test]
fn directories_are_read_recursively_in_order() {
    let dir = std::env::temp_dir().join(format!("weft-load-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(
        dir.join("a.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("sub/b.yml"),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not config").unwrap();
    let out = load_paths(&[&dir]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.is_ok(), "{:#?}", out.errors);
    let ids: Vec<_> = out
        .config
        .resources
        .iter()
        .map(|r| r.resource.id())
        .collect();
    assert_eq!(ids, ["Namespace/a", "Namespace/b"]);
}

#[test]
fn a_bad_access_log_operator_is_a_config_error_naming_the_nearest() {
    let e = one_error(
        "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: mesh}\nspec:\n  accessLog:\n    format: {code: \"%RESPONSE_CODEX%\"}\n",
    );
    assert_eq!(e.path.as_deref(), Some("spec.accessLog"));
    let text = e.to_string();
    assert!(text.contains("field `code`"), "{text}");
    assert!(text.contains("did you mean `%RESPONSE_CODE%`"), "{text}");
}

#[test]
fn istio_documents_are_read_as_foreign_not_skipped_nor_mistaken_for_weft_kinds() {
    // Istio's Gateway and AuthorizationPolicy share weft's kind names.
    let out = parse_str(
        "istio.yaml",
        "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: shop}\nspec: {servers: []}\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny\n  annotations: {weft.dev/analyze-ignore: WEFT0801}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    assert!(out.is_ok(), "{:#?}", out.errors);
    assert_eq!(out.config.skipped.len(), 1, "only the ConfigMap is skipped");
    let f = &out.config.foreign;
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].id(), "Gateway/shop/gw");
    assert_eq!(f[0].group(), "networking.istio.io");
    assert_eq!(f[0].origin.line, 1);
    assert_eq!(f[1].id(), "AuthorizationPolicy/default/deny");
    assert_eq!(f[1].annotations["weft.dev/analyze-ignore"], "WEFT0801");
}

#[test]
fn a_local_rate_limit_that_cannot_work_names_its_field() {
    let policy = |limit: &str| {
        format!(
            "apiVersion: weft.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {{name: web}}\nspec:\n  targetRefs: [{{kind: Service, name: web}}]\n  localRateLimit:\n{limit}"
        )
    };
    let cases = [
        (
            "    requests: 0\n    per: 1s\n",
            "mesh.yaml:7:15",
            "spec.localRateLimit.requests",
            "requests is 0",
        ),
        (
            "    requests: 5\n    per: 0s\n",
            "mesh.yaml:8:10",
            "spec.localRateLimit.per",
            "per is 0",
        ),
        (
            "    requests: 5\n    per: 1m\n    burst: 3\n",
            "mesh.yaml:9:12",
            "spec.localRateLimit.burst",
            "burst 3 is below requests 5",
        ),
    ];
    for (limit, at, path, message) in cases {
        let e = one_error(&policy(limit));
        assert_eq!(e.location.to_string(), at, "{limit}");
        assert_eq!(e.path.as_deref(), Some(path), "{limit}");
        assert!(e.message.contains(message), "{}", e.message);
        assert!(e.hint.is_some(), "{limit}");
        assert_eq!(e.resource.as_deref(), Some("TrafficPolicy/web"));
    }
    let ok = parse_str(
        "mesh.yaml",
        &policy("    requests: 5\n    per: 1m\n    burst: 10\n"),
    );
    assert!(ok.errors.is_empty(), "{:#?}", ok.errors);
}

#[test]
fn an_unknown_retry_condition_names_its_field() {
    let policy = |retry_on: &str| {
        format!(
            "apiVersion: weft.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {{name: web}}\nspec:\n  targetRefs: [{{kind: Service, name: web}}]\n  retries:\n    retryOn: {retry_on}\n"
        )
    };
    for (retry_on, path, message) in [
        (
            "[unavailable, unavailabel]",
            "spec.retries.retryOn[1]",
            "\"unavailabel\"",
        ),
        (
            "[retriable-4xx]",
            "spec.retries.retryOn[0]",
            "\"retriable-4xx\"",
        ),
        ("[\"700\"]", "spec.retries.retryOn[0]", "\"700\""),
    ] {
        let e = one_error(&policy(retry_on));
        assert_eq!(e.path.as_deref(), Some(path), "{retry_on}");
        assert!(e.message.contains(message), "{}", e.message);
        assert!(
            e.hint.as_deref().is_some_and(|h| h.contains("unavailable")),
            "{:?}",
            e.hint
        );
        assert_eq!(e.location.line, 7, "{retry_on}");
    }
    let ok = parse_str(
        "mesh.yaml",
        &policy(
            "[connect-failure, reset, 5xx, gateway-error, \"429\", unavailable, cancelled, deadline-exceeded, resource-exhausted, internal]",
        ),
    );
    assert!(ok.errors.is_empty(), "{:#?}", ok.errors);
}
