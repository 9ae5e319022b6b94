use super::super::{Analysis, EXAMPLE_BASE, Finding, Severity, analyze, analyze_with, rule};
use super::{MeshRevisions, NEEDS_MESH, example_mesh};
use crate::load::parse_str;

fn run(extra: &str, mesh: Option<&MeshRevisions>) -> Analysis {
    let text = format!("{EXAMPLE_BASE}---\n{extra}");
    let out = parse_str("example.yaml", &text);
    assert!(out.is_ok(), "does not load: {:#?}\n{text}", out.errors);
    match mesh {
        Some(mesh) => analyze_with(&out.config, mesh),
        None => analyze(&out.config),
    }
}

/// The 07xx findings, as (code, resource).
fn revision_findings(a: &Analysis) -> Vec<(&'static str, &str)> {
    a.findings
        .iter()
        .filter(|f| f.code.starts_with("WEFT07"))
        .map(|f| (f.code, f.resource.as_str()))
        .collect()
}

fn one<'a>(a: &'a Analysis, code: &str) -> &'a Finding {
    let mut found = a.findings.iter().filter(|f| f.code == code);
    let f = found
        .next()
        .unwrap_or_else(|| panic!("no {code}: {:#?}", a.findings));
    assert!(found.next().is_none(), "several {code}: {:#?}", a.findings);
    f
}

fn namespace(labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {{{labels}}}\n---\n"
    )
}

fn workload(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n  labels: {{app: web{labels}}}\nspec: {{command: [{name}]}}\n---\n"
    )
}

#[test]
fn two_labels_that_disagree_are_an_error_and_agreeing_ones_are_not() {
    let a = run(
        &namespace("weft.dev/rev: canary, istio.io/rev: stable"),
        None,
    );
    let f = one(&a, "WEFT0701");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.resource, "Namespace/default");
    assert!(
        f.message
            .contains("weft.dev/rev=\"canary\" and istio.io/rev=\"stable\""),
        "{}",
        f.message
    );
    assert!(f.message.contains("remove istio.io/rev"), "{}", f.message);
    // EXAMPLE_BASE is 13 lines, then `---`; the labels are on the 5th line of the snippet.
    assert_eq!(f.location.line, 14 + 5);

    let a = run(
        &namespace("weft.dev/rev: stable, istio.io/rev: stable"),
        None,
    );
    assert_eq!(revision_findings(&a), []);
    // Not Istio's injection either: istio.io/rev is weft's alias now.
    assert!(!a.findings.iter().any(|f| f.code == "WEFT0203"));
}

#[test]
fn invalid_names_are_reported_once_under_either_key() {
    for (labels, said) in [
        (
            ", weft.dev/rev: \"1.25\"",
            "weft.dev/rev=\"1.25\" contains '.'",
        ),
        (
            ", istio.io/rev: Canary",
            "istio.io/rev=\"Canary\" contains 'C'",
        ),
        (
            ", weft.dev/rev: v1-24-",
            "must start and end with a letter or digit",
        ),
        (", weft.dev/rev: 1-25", "must start with a letter"),
        (", weft.dev/rev: \"stable,canary\"", "lists several names"),
    ] {
        let a = run(&workload("api", labels), None);
        let f = one(&a, "WEFT0702");
        assert!(f.message.contains(said), "{labels}: {}", f.message);
        assert_eq!(f.resource, "Workload/default/api");
        // Not WEFT0402 too: revision values are this rule's.
        assert_eq!(
            revision_findings(&a),
            [("WEFT0702", "Workload/default/api")]
        );
        assert_eq!(a.findings.len(), 1, "{labels}: {:#?}", a.findings);
    }
}

#[test]
fn workload_pinned_apart_from_its_namespace_is_a_note() {
    let ns = namespace("weft.dev/rev: stable");
    let cases = [
        // Its own label, different: pinned apart, whichever key either uses.
        (
            format!("{ns}{}", workload("api", ", weft.dev/rev: canary")),
            true,
        ),
        (
            format!("{ns}{}", workload("api", ", istio.io/rev: canary")),
            true,
        ),
        // The same value, under either key: it follows the namespace anyway.
        (
            format!("{ns}{}", workload("api", ", istio.io/rev: stable")),
            false,
        ),
        // No label of its own: it follows the namespace.
        (format!("{ns}{}", workload("api", "")), false),
        // A namespace with no label says nothing to differ from.
        (workload("api", ", weft.dev/rev: canary"), false),
        // An invalid value is WEFT0702's, not a pin.
        (
            format!("{ns}{}", workload("api", ", weft.dev/rev: Canary")),
            false,
        ),
    ];
    for (text, pinned) in cases {
        let a = run(&text, None);
        let got = a.findings.iter().find(|f| f.code == "WEFT0703");
        assert_eq!(got.is_some(), pinned, "{text}\n{:#?}", a.findings);
        if let Some(f) = got {
            assert_eq!(f.severity, Severity::Info);
            assert_eq!(f.resource, "Workload/default/api");
            assert!(f.message.contains("\"canary\""), "{}", f.message);
            assert!(f.message.contains("default at \"stable\""), "{}", f.message);
        }
    }
}

#[test]
fn kubernetes_workloads_are_located_at_their_pod_template_label() {
    let text = format!(
        "{}{}",
        namespace("weft.dev/rev: stable"),
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {team: a}}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata:
      labels:
        app: api
        weft.dev/rev: canary
    spec:
      containers: [{name: api, image: api:1}]
"#
    );
    let a = run(&text, None);
    let f = one(&a, "WEFT0703");
    assert_eq!(f.resource, "Workload/default/api");
    // 13 lines of base, `---`, 6 of namespace and `---`, then the label on the 10th line.
    assert_eq!(f.location.line, 14 + 6 + 10, "{f}");
}

#[test]
fn rules_that_need_the_running_mesh_are_silent_without_it() {
    for code in NEEDS_MESH {
        let bad = rule(code).unwrap().bad;
        let without = run(bad, None);
        assert!(
            !without.findings.iter().any(|f| f.code == *code),
            "{code}: {:#?}",
            without.findings
        );
        let with = run(bad, Some(&example_mesh()));
        assert!(with.findings.iter().any(|f| f.code == *code), "{code}");
    }
    // The default tag of example_mesh() is fine, so the base example stays clean.
    assert_eq!(run("", Some(&example_mesh())).findings, []);
}

#[test]
fn a_label_that_names_nothing_lists_what_exists() {
    let a = run(
        &workload("api", ", istio.io/rev: canary"),
        Some(&example_mesh()),
    );
    let f = one(&a, "WEFT0704");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(
        f.message,
        "istio.io/rev=\"canary\" names neither a revision nor a tag of the running mesh \
(revisions: v1-24 (going away), v1-25; tags: default -> v1-25, legacy -> v1-23, stable -> v1-25)"
    );
    assert!(
        f.fix
            .starts_with("create the tag with `weft tag set canary --revision v1-25`"),
        "{}",
        f.fix
    );
    // Revisions and tags both count, whichever the label names.
    for name in ["v1-25", "v1-24", "stable", "default"] {
        let a = run(
            &workload("api", &format!(", weft.dev/rev: {name}")),
            Some(&example_mesh()),
        );
        assert!(!a.findings.iter().any(|f| f.code == "WEFT0704"), "{name}");
    }
}

#[test]
fn workload_label_wins_over_its_namespace_against_the_running_mesh() {
    // The namespace names nothing and is reported; the workload's own label is fine.
    let text = format!(
        "{}{}",
        namespace("weft.dev/rev: ghost"),
        workload("api", ", weft.dev/rev: stable")
    );
    let a = run(&text, Some(&example_mesh()));
    let got = revision_findings(&a);
    assert!(got.contains(&("WEFT0704", "Namespace/default")), "{got:?}");
    assert!(
        !got.contains(&("WEFT0704", "Workload/default/api")),
        "{got:?}"
    );
    // An unlabelled workload in it inherits the namespace's label: reported once, there.
    assert_eq!(got.iter().filter(|(c, _)| *c == "WEFT0704").count(), 1);
}

#[test]
fn tags_pointing_at_removed_revisions() {
    let mesh = example_mesh();
    // Named by a label: reported where it is named.
    let a = run(&namespace("weft.dev/rev: legacy"), Some(&mesh));
    assert_eq!(revision_findings(&a), [("WEFT0705", "Namespace/default")]);
    let f = one(&a, "WEFT0705");
    assert!(
        f.message
            .contains("tag \"legacy\" points at revision \"v1-23\""),
        "{}",
        f.message
    );
    assert!(
        f.fix
            .contains("weft tag set legacy --revision R --overwrite"),
        "{}",
        f.fix
    );
    assert!(f.fix.contains("weft tag remove legacy"), "{}", f.fix);

    // The default tag serves every workload without a label, here and in its namespace.
    let mut broken = mesh.clone();
    broken.tags.insert("default".into(), "v1-22".into());
    let a = run(&workload("api", ", weft.dev/rev: stable"), Some(&broken));
    assert_eq!(
        revision_findings(&a),
        [("WEFT0705", "Workload/default/web")]
    );
    let f = one(&a, "WEFT0705");
    assert!(
        f.message
            .starts_with("no weft.dev/rev label, so the default tag serves it"),
        "{}",
        f.message
    );
    // A namespace label covers its workloads.
    let a = run(&namespace("weft.dev/rev: stable"), Some(&broken));
    assert_eq!(revision_findings(&a), []);
    // A mesh with no default tag says nothing about unlabelled workloads.
    broken.tags.remove("default");
    assert_eq!(revision_findings(&run("", Some(&broken))), []);
}

#[test]
fn pins_to_a_revision_that_is_going_away() {
    let mesh = example_mesh();
    let a = run(&workload("api", ", weft.dev/rev: v1-24"), Some(&mesh));
    let f = one(&a, "WEFT0706");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.fix,
        "relabel it with weft.dev/rev: a tag that follows upgrades (default, stable) or the new \
revision (v1-25)"
    );
    // A tag pointing at a revision that is going away moves with the tag: not pinned.
    let mut moving = mesh.clone();
    moving.tags.insert("old".into(), "v1-24".into());
    let a = run(&workload("api", ", weft.dev/rev: old"), Some(&moving));
    assert_eq!(revision_findings(&a), []);
    // A namespace pinned to it is reported on the namespace; its own-labelled workload is
    // pinned apart (a note) but not to the old revision.
    let text = format!(
        "{}{}",
        namespace("istio.io/rev: v1-24"),
        workload("api", ", weft.dev/rev: stable")
    );
    let a = run(&text, Some(&mesh));
    assert_eq!(
        revision_findings(&a),
        [
            ("WEFT0706", "Namespace/default"),
            ("WEFT0703", "Workload/default/api")
        ]
    );
}

#[test]
fn mesh_revisions_read_from_json() {
    let mesh: MeshRevisions = serde_json::from_str(
        r#"{"revisions": ["v1-24", "v1-25"], "tags": {"default": "v1-25", "stable": "v1-25", "legacy": "v1-23"}, "goingAway": ["v1-24"]}"#,
    )
    .unwrap();
    assert_eq!(mesh, example_mesh());
    let bare: MeshRevisions = serde_json::from_str(r#"{"revisions": ["a"]}"#).unwrap();
    assert!(bare.tags.is_empty() && bare.going_away.is_empty());
}

#[test]
fn explain_describes_the_running_mesh_of_the_examples() {
    let text = super::super::explain(rule("WEFT0706").unwrap());
    assert!(
        text.contains("The running mesh has revisions: v1-24 (going away), v1-25; tags:"),
        "{text}"
    );
    let text = super::super::explain(rule("WEFT0701").unwrap());
    assert!(!text.contains("running mesh has"), "{text}");
}
