use super::*;
use weft_local::revisions::Revision;
use weft_local::status::PodStatus;

fn plan_of(pods: &[(&str, &str, Option<&str>)]) -> (Plan, Status) {
    let yaml = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: a, namespace: shop}
spec: {replicas: 1, command: [sleep, "1000"]}
"#;
    let out = weft_core::load::parse_str("t.yaml", yaml);
    let opts = weft_local::plan::Options {
        name: "t".into(),
        weft: "/usr/bin/weft".into(),
        ingress_port: None,
        admin: "127.0.0.1:15014".parse().unwrap(),
    };
    let mut plan = Plan::new(&out.config, std::path::Path::new("/cfg"), &opts).unwrap();
    let template = plan.pods[0].clone();
    plan.pods = pods
        .iter()
        .map(|(ns, name, rev)| PodPlan {
            namespace: ns.to_string(),
            name: name.to_string(),
            workload: name.rsplit_once('-').unwrap().0.to_string(),
            rev: rev.map(String::from),
            ..template.clone()
        })
        .collect();
    let status = Status {
        pods: pods
            .iter()
            .map(|_| PodStatus {
                revision: "old".into(),
                ..PodStatus::default()
            })
            .collect(),
        ..Status::default()
    };
    (plan, status)
}

fn registry() -> Registry {
    let rev = |name: &str| Revision {
        name: name.into(),
        binary: "/usr/bin/weft".into(),
        version: "0.1.0".into(),
        protocol: 2,
        sets: vec![],
        installed_at_ms: 0,
        uninstalled: false,
    };
    let mut r = Registry::first(rev("old"));
    r.revisions.push(rev("new"));
    r.set_tag("prod", "old", false).unwrap();
    r
}

#[test]
fn one_replica_of_each_workload_moves_first_and_pinned_pods_stay() {
    let (plan, status) = plan_of(&[
        ("shop", "web-0", None),
        ("shop", "web-1", None),
        ("shop", "api-0", Some("prod")),
        ("shop", "api-1", Some("prod")),
        ("shop", "db-0", Some("old")),
    ]);
    let m = plan_moves(&plan, &status, &registry(), "new", &[25, 50, 100], false);
    assert_eq!(
        m.steps,
        vec![
            vec!["shop/web-0".to_string()],
            vec!["shop/api-0".to_string()],
            vec!["shop/web-1".to_string(), "shop/api-1".to_string()],
        ]
    );
    assert_eq!(m.tags, vec!["default".to_string(), "prod".to_string()]);
    assert_eq!(m.staying.len(), 1);
    assert!(
        m.staying[0].starts_with("shop/db-0: pinned to revision old"),
        "{:?}",
        m.staying
    );
}

#[test]
fn by_namespace_each_namespace_is_a_step() {
    let (plan, status) = plan_of(&[
        ("a", "web-0", None),
        ("b", "api-0", None),
        ("a", "web-1", None),
    ]);
    let m = plan_moves(&plan, &status, &registry(), "new", &[], true);
    assert_eq!(
        m.steps,
        vec![
            vec!["a/web-0".to_string(), "a/web-1".to_string()],
            vec!["b/api-0".to_string()]
        ]
    );
}

#[test]
fn pods_already_on_the_target_do_not_move() {
    let (plan, mut status) = plan_of(&[("shop", "web-0", None), ("shop", "web-1", None)]);
    status.pods[0].revision = "new".into();
    let m = plan_moves(&plan, &status, &registry(), "new", &[100], false);
    assert_eq!(m.steps, vec![vec!["shop/web-1".to_string()]]);
}
