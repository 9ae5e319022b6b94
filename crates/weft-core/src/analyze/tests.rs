use super::*;
use crate::load::parse_str;

fn run(extra: &str) -> Analysis {
    run_with(extra, None)
}

fn run_with(extra: &str, mesh: Option<&MeshRevisions>) -> Analysis {
    let text = format!("{EXAMPLE_BASE}---\n{extra}");
    let out = parse_str("example.yaml", &text);
    assert!(
        out.is_ok(),
        "example does not load: {:#?}\n{text}",
        out.errors
    );
    match mesh {
        Some(mesh) => analyze_with(&out.config, mesh),
        None => analyze(&out.config),
    }
}

fn codes(a: &Analysis) -> Vec<&'static str> {
    a.findings.iter().map(|f| f.code).collect()
}

#[test]
fn base_example_is_clean() {
    let out = parse_str("base.yaml", EXAMPLE_BASE);
    let a = analyze(&out.config);
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
}

/// Every rule's bad example triggers it and its good example does not, with no errors left.
#[test]
fn every_rule_fires_on_bad_and_not_on_good() {
    let mut failures = Vec::new();
    let example_mesh = revisions::example_mesh();
    for rule in rules() {
        // The rules that compare labels with the running mesh run against an example one.
        let mesh = revisions::NEEDS_MESH
            .contains(&rule.code)
            .then_some(&example_mesh);
        let run = |text| run_with(text, mesh);
        let bad = run(rule.bad);
        if !codes(&bad).contains(&rule.code) {
            failures.push(format!(
                "{}: bad example not flagged; got {:?}",
                rule.code,
                codes(&bad)
            ));
        }
        let good = run(rule.good);
        if codes(&good).contains(&rule.code) {
            failures.push(format!(
                "{}: good example flagged: {:#?}",
                rule.code, good.findings
            ));
        }
        if let Some(e) = good.findings.iter().find(|f| f.severity == Severity::Error) {
            failures.push(format!("{}: good example has an error: {e}", rule.code));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn codes_are_unique_well_formed_and_many() {
    let all: Vec<_> = rules().map(|r| r.code).collect();
    assert!(all.len() >= 25, "only {} rules", all.len());
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "duplicate codes");
    assert_eq!(sorted, all, "rules are not in code order");
    for c in all {
        assert!(
            c.len() == 8 && c.starts_with("WEFT") && c[4..].chars().all(|d| d.is_ascii_digit())
        );
    }
}

#[test]
fn findings_point_at_the_field() {
    let a = run(rules().find(|r| r.code == "WEFT0103").unwrap().bad);
    let f = a.findings.iter().find(|f| f.code == "WEFT0103").unwrap();
    // EXAMPLE_BASE is 13 lines, then `---`; the backendRef is on the 6th line of the snippet.
    assert_eq!(f.location.line, 14 + 6);
    assert_eq!(f.resource, "HTTPRoute/default/web");
    assert!(f.message.contains("default/web-v2"), "{}", f.message);
}

#[test]
fn annotation_suppresses_one_code() {
    let a = run(r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/hold-application: "false", weft.dev/analyze-ignore: WEFT0304}
spec: {command: [api]}
"#);
    assert!(!codes(&a).contains(&"WEFT0304"));
    assert_eq!(a.suppressed, 1);
}

#[test]
fn unknown_annotation_names_the_closest_key() {
    let a = run(rules().find(|r| r.code == "WEFT0401").unwrap().bad);
    let f = a.findings.iter().find(|f| f.code == "WEFT0401").unwrap();
    assert_eq!(f.fix, "did you mean weft.dev/hold-application?");
}

#[test]
fn namespace_settings_reach_workloads() {
    let a = run(r#"apiVersion: v1
kind: Namespace
metadata:
  name: default
  annotations: {weft.dev/proxy-memory-request: 200Mi}
"#);
    // The namespace asks for 200Mi with the default 128Mi limit: web's effective limit < request
    // is only reported where the workload itself set a value, so only the oversize shows here.
    assert_eq!(codes(&a), ["WEFT0310"]);
}

#[test]
fn explain_shows_both_examples() {
    let text = explain(rule("weft0304").unwrap());
    assert!(text.starts_with("WEFT0304 (warning): hold-application switched off"));
    assert!(text.contains("Bad:\n    apiVersion"));
    assert!(text.contains("Good:\n"));
}

#[test]
fn demo_shop_is_clean() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/shop");
    let out = crate::load::load_paths(&[dir]);
    assert!(out.is_ok(), "{:#?}", out.errors);
    let a = analyze(&out.config);
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
}

/// A Service with an HTTP port and a TCP port, for the mesh-routing cases below.
const MIXED: &str = r#"apiVersion: v1
kind: Service
metadata: {name: mixed}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: tcp-db, port: 5432, targetPort: 8080}
---
"#;

fn mixed_route(parent: &str, backends: &str) -> String {
    format!(
        r#"{MIXED}apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r}}
spec:
  parentRefs: [{parent}]
  rules: [{{backendRefs: [{backends}]}}]
"#
    )
}

/// Served as Gateway API says, with a warning, or (only for what cannot be served) an error.
#[test]
fn mesh_route_findings_have_the_severity_of_their_consequence() {
    let svc = r#"{group: "", kind: Service, name: mixed"#;
    let ok = "{name: web, port: 80}";
    let cases: &[(String, &[(&str, Severity)])] = &[
        // Portless parentRef on a mixed Service: attaches to port 80, leaves 5432 alone.
        (mixed_route(&format!("{svc}}}"), ok), &[]),
        (
            mixed_route(&format!("{svc}, port: 5432}}"), ok),
            &[("WEFT0509", Severity::Warning)],
        ),
        (
            mixed_route(&format!("{svc}, sectionName: tcp-db}}"), ok),
            &[("WEFT0509", Severity::Warning)],
        ),
        (
            mixed_route(&format!("{svc}, port: 81}}"), ok),
            &[("WEFT0102", Severity::Warning)],
        ),
        (
            mixed_route(&format!("{svc}, port: 80, sectionName: tcp-db}}"), ok),
            &[("WEFT0102", Severity::Warning)],
        ),
        (
            mixed_route(r#"{group: "", kind: Service, name: nope}"#, ok),
            &[("WEFT0101", Severity::Warning)],
        ),
        (
            mixed_route(
                &format!("{svc}}}"),
                "{name: web, port: 80}, {name: ghost, port: 80}",
            ),
            &[("WEFT0103", Severity::Warning)],
        ),
        (
            mixed_route(&format!("{svc}}}"), "{name: web, port: 8080}"),
            &[("WEFT0111", Severity::Warning)],
        ),
        (
            mixed_route(
                &format!("{svc}}}"),
                "{group: example.com, kind: Bucket, name: b}",
            ),
            &[("WEFT0103", Severity::Warning)],
        ),
        // Gateway API itself refuses a Service backend without a port.
        (
            mixed_route(&format!("{svc}}}"), "{name: web}"),
            &[("WEFT0104", Severity::Error)],
        ),
    ];
    for (text, want) in cases {
        let a = run(text);
        let got: Vec<(&str, Severity)> = a.findings.iter().map(|f| (f.code, f.severity)).collect();
        assert_eq!(got, *want, "{text}");
    }
}

/// A Service whose only port is TCP gives a portless HTTP route nothing to attach to.
#[test]
fn portless_route_on_a_tcp_only_service_is_reported() {
    let a = run(r#"apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  selector: {app: web}
  ports: [{port: 5432, targetPort: 8080, appProtocol: tcp}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: db}
spec:
  parentRefs: [{group: "", kind: Service, name: db}]
  rules: [{backendRefs: [{name: db, port: 5432}]}]
"#);
    assert_eq!(codes(&a), ["WEFT0509"]);
    assert_eq!(a.count(Severity::Error), 0);
}

#[test]
fn severities_parse_and_unknown_ones_are_named() {
    assert_eq!("warning".parse::<Severity>(), Ok(Severity::Warning));
    let err = "fatal".parse::<Severity>().unwrap_err();
    assert_eq!(err, SeverityError("fatal".into()));
    assert_eq!(
        err.to_string(),
        "\"fatal\" is not a severity (info, warning, error)"
    );
}

#[test]
fn http_policy_on_ambient_workloads_needs_a_waypoint() {
    let with = |ns_labels: &str, action: &str| {
        format!(
            r#"apiVersion: v1
kind: Namespace
metadata: {{name: shop, labels: {{weft.dev/dataplane-mode: ambient{ns_labels}}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: waypoint, namespace: shop}}
spec:
  gatewayClassName: weft-waypoint
  listeners: [{{name: mesh, port: 15008, protocol: HBONE}}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: api, namespace: shop, labels: {{app: api}}}}
spec: {{command: [api]}}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {{name: api, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  action: {action}
  rules: [{{to: [{{operation: {{ports: [8080]}}}}]}}, {{to: [{{operation: {{paths: [/admin]}}}}]}}]
"#
        )
    };
    let found = |a: &Analysis| {
        a.findings
            .iter()
            .find(|f| f.code == "WEFT0606")
            .map(|f| (f.fix.clone(), f.message.clone()))
    };
    // With a waypoint in use, a selecting policy still stays at the node proxy: attach it.
    let (fix, _) =
        found(&run(&with(", weft.dev/use-waypoint: waypoint", "ALLOW"))).expect("flagged");
    assert!(fix.contains("targetRefs: [{kind: Gateway"), "{fix}");
    // No waypoint, or `none`: the HTTP rule (the second) fails closed, and says how.
    let (fix, message) = found(&run(&with("", "ALLOW"))).expect("flagged");
    assert!(fix.contains("gatewayClassName: weft-waypoint"), "{fix}");
    assert!(message.contains("ALLOW rule is never met"), "{message}");
    let (_, message) =
        found(&run(&with(", weft.dev/use-waypoint: none", "DENY"))).expect("flagged");
    assert!(
        message.contains("DENY rule denies every connection"),
        "{message}"
    );
}

#[test]
fn a_workload_access_log_format_is_checked() {
    let bad = run(r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/access-log-format: "%REQ(:METHOD)% %RESP_CODE%"}
spec: {command: [api]}
"#);
    let f = bad.findings.iter().find(|f| f.code == "WEFT0402").unwrap();
    assert!(
        f.message.contains("did you mean `%RESPONSE_CODE%`"),
        "{}",
        f.message
    );
    let good = run(r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: api
  labels: {app: web}
  annotations: {weft.dev/access-log-format: "%REQ(:METHOD)% %RESPONSE_CODE%"}
spec: {command: [api]}
"#);
    assert!(!codes(&good).contains(&"WEFT0402"));
}

#[test]
fn istio_documents_are_errors_that_name_the_converter_unless_ignored() {
    let a = run(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny, namespace: shop}\nspec: {action: DENY}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: web, annotations: {weft.dev/analyze-ignore: WEFT0801}}\nspec: {host: web}\n",
    );
    assert_eq!(codes(&a), ["WEFT0801"], "{:#?}", a.findings);
    let f = &a.findings[0];
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.resource, "AuthorizationPolicy/shop/deny");
    assert_eq!(f.location.line, 15, "{f}");
    assert!(f.fix.contains("weft import istio"), "{f}");
    assert_eq!(a.suppressed, 1);
}
