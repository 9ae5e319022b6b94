//! Gateway API mesh semantics of the model: which Service ports a parentRef attaches a route
//! to, unresolved backends, and precedence across routes.

use super::*;
use crate::load::parse_str;

/// A Service `mixed` with an HTTP, a gRPC, a detected and a TCP port, plus `extra`.
fn build(extra: &str) -> Snapshot {
    let text = format!(
        "{}---\n{}---\n{extra}",
        crate::analyze::EXAMPLE_BASE,
        r#"apiVersion: v1
kind: Service
metadata: {name: mixed}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: grpc, port: 9090, targetPort: 8080}
  - {name: sniffed, port: 7000, targetPort: 8080}
  - {name: db, port: 5432, targetPort: 5432, appProtocol: tcp}
"#
    );
    let out = parse_str("t.yaml", &text);
    assert!(out.is_ok(), "{:#?}", out.errors);
    Snapshot::build(&out.config, &[])
}

fn route(parent: &str) -> String {
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r}}
spec:
  hostnames: [only.example]
  parentRefs: [{parent}]
  rules: [{{backendRefs: [{{name: web, port: 80}}]}}]
"#
    )
}

#[test]
fn parent_refs_attach_to_the_ports_they_select() {
    let cases: &[(&str, Option<&[u16]>)] = &[
        // No port: every port that carries HTTP; the TCP port is left alone.
        (
            r#"{group: "", kind: Service, name: mixed}"#,
            Some(&[80, 9090, 7000]),
        ),
        (
            r#"{group: "", kind: Service, name: mixed, port: 9090}"#,
            Some(&[9090]),
        ),
        (
            r#"{group: "", kind: Service, name: mixed, sectionName: sniffed}"#,
            Some(&[7000]),
        ),
        (
            r#"{group: "", kind: Service, name: mixed, port: 80, sectionName: http}"#,
            Some(&[80]),
        ),
        // Selects no port, or only the TCP one: not attached at all.
        (r#"{group: "", kind: Service, name: mixed, port: 81}"#, None),
        (
            r#"{group: "", kind: Service, name: mixed, sectionName: admin}"#,
            None,
        ),
        (
            r#"{group: "", kind: Service, name: mixed, port: 80, sectionName: grpc}"#,
            None,
        ),
        (
            r#"{group: "", kind: Service, name: mixed, port: 5432}"#,
            None,
        ),
    ];
    for (parent, want) in cases {
        let s = build(&route(parent));
        let mixed = &s.services["default/mixed"];
        let got = mixed.http.as_ref().map(|h| {
            assert_eq!(h.entries.len(), 1, "{parent}");
            // The mesh profile infers nothing from `hostnames` on a Service parent.
            assert!(h.entries[0].hostnames.is_empty(), "{parent}");
            h.entries[0].ports.clone()
        });
        assert_eq!(got.as_deref(), *want, "{parent}");
        assert!(mixed.tcp.is_empty());
    }
}

#[test]
fn unresolved_backends_stay_in_the_split() {
    let s = build(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split}
spec:
  parentRefs: [{group: "", kind: Service, name: web}]
  rules:
  - backendRefs:
    - {name: web, port: 80, weight: 2}
    - {name: ghost, port: 80, weight: 1}
    - {name: web, port: 8443, weight: 1}
    - {name: off, port: 80, weight: 0}
"#,
    );
    let rule = &s.services["default/web"].http.as_ref().unwrap().rules[0];
    let got: Vec<_> = rule
        .backends
        .iter()
        .map(|b| (b.service.as_str(), b.weight, b.unresolved.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("default/web", 2, None),
            (
                "default/ghost",
                1,
                Some("Service default/ghost does not exist")
            ),
            (
                "default/web",
                1,
                Some("Service default/web has no port 8443")
            ),
            ("default/off", 0, Some("Service default/off does not exist")),
        ]
    );
}

/// One route with one rule and one match, `created` as its creationTimestamp.
fn precedence_route(name: &str, created: Option<&str>, matcher: &str) -> String {
    let created = created.map_or(String::new(), |c| format!(", creationTimestamp: {c:?}"));
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}{created}}}
spec:
  parentRefs: [{{group: "", kind: Service, name: web}}]
  rules: [{{matches: [{matcher}], backendRefs: [{{name: web, port: 80}}]}}]
"#
    )
}

#[test]
fn precedence_across_routes_follows_gateway_api() {
    let old = Some("2020-01-01T00:00:00Z");
    let new = Some("2024-01-01T00:00:00Z");
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, Option<&'a str>, &'a str)],
        &'a [&'a str],
    );
    let cases: &[Case] = &[
        (
            "exact path beats any prefix, whatever the age",
            &[
                ("a", old, "{path: {value: /api/login}}"),
                ("b", new, "{path: {type: Exact, value: /api/login}}"),
            ],
            &["b", "a"],
        ),
        (
            "longest prefix first",
            &[
                ("a", old, "{path: {value: /api}}"),
                ("b", new, "{path: {value: /api/v2}}"),
            ],
            &["b", "a"],
        ),
        (
            "method beats headers",
            &[
                (
                    "a",
                    old,
                    "{path: {value: /api}, headers: [{name: x-a, value: '1'}]}",
                ),
                ("b", new, "{path: {value: /api}, method: GET}"),
            ],
            &["b", "a"],
        ),
        (
            "most headers, then most query parameters",
            &[
                ("a", old, "{queryParams: [{name: q, value: '1'}]}"),
                ("b", new, "{headers: [{name: x-a, value: '1'}]}"),
                (
                    "c",
                    new,
                    "{headers: [{name: x-a, value: '1'}, {name: x-b, value: '2'}]}",
                ),
                ("d", new, "{}"),
            ],
            &["c", "b", "a", "d"],
        ),
        (
            "equal matches: the oldest route first",
            &[
                ("a", new, "{path: {value: /api}}"),
                ("b", old, "{path: {value: /api}}"),
            ],
            &["b", "a"],
        ),
        (
            "equal matches and age: by name",
            &[
                ("b", old, "{path: {value: /api}}"),
                ("a", old, "{path: {value: /api}}"),
            ],
            &["a", "b"],
        ),
        (
            "a route without a timestamp counts as the newest",
            &[
                ("a", None, "{path: {value: /api}}"),
                ("b", new, "{path: {value: /api}}"),
            ],
            &["b", "a"],
        ),
    ];
    for (what, routes, want) in cases {
        let text: Vec<String> = routes
            .iter()
            .map(|(n, c, m)| precedence_route(n, *c, m))
            .collect();
        let s = build(&text.join("---\n"));
        let http = s.services["default/web"].http.as_ref().unwrap();
        let got: Vec<&str> = http
            .entries
            .iter()
            .map(|e| {
                let name = &http.rules[e.rule].name;
                let route = name.trim_end_matches(" rule 0");
                route.rsplit('/').next().unwrap()
            })
            .collect();
        assert_eq!(got, *want, "{what}");
    }
}
