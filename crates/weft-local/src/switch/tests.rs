//! The switch tables: which pods a configuration change switches, and the steps of each switch.

use std::path::Path;

use weft_core::annotations::DataplaneMode::{self, Ambient, None as NoProxy, Sidecar};

use super::Step::*;
use super::*;
use crate::plan::{Options, Plan};

fn opts() -> Options {
    Options {
        name: "sw".into(),
        weft: "/usr/bin/weft".into(),
        ingress_port: None,
        admin: "127.0.0.1:15014".parse().unwrap(),
    }
}

fn config(yaml: &str) -> weft_core::Config {
    let out = weft_core::parse_str("/cfg/mesh.yaml", yaml);
    assert!(out.is_ok(), "{:?}", out.errors);
    out.config
}

/// A mesh of three workloads: `api` (labelled `api_mode`), `web` (no label: the namespace's
/// mode) and `db` (mode none), in a namespace of mode `ns_mode`.
fn mesh(ns_mode: &str, api_mode: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: shop, labels: {{weft.dev/dataplane-mode: {ns_mode}}}}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: api, namespace: shop, labels: {{app: api, weft.dev/dataplane-mode: {api_mode}}}}}
spec: {{command: [api], ports: [{{containerPort: 8080}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: web, namespace: shop, labels: {{app: web}}}}
spec: {{command: [web], replicas: 2}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: db, namespace: shop, labels: {{app: db, weft.dev/dataplane-mode: none}}}}
spec: {{command: [db]}}
"#
    )
}

fn switches(from: &str, to: &str) -> Vec<(String, DataplaneMode, DataplaneMode, bool)> {
    let dir = Path::new("/cfg");
    let old = Plan::new(&config(from), dir, &opts()).unwrap();
    let new = Plan::next(&config(to), dir, &opts(), &old).unwrap();
    let c = crate::change::diff(&old, &new);
    assert!(c.refused.is_empty() && c.restarts.is_empty(), "{c:?}");
    c.switches
        .iter()
        .map(|(s, _)| (old.pods[s.pod].id(), s.from, s.to, s.labels))
        .collect()
}

#[test]
fn a_workload_label_switches_its_pods_and_a_namespace_label_every_pod_that_follows_it() {
    let (a, b) = (mesh("sidecar", "ambient"), mesh("sidecar", "none"));
    assert_eq!(
        switches(&a, &b),
        [("shop/api-0".to_string(), Ambient, NoProxy, true)]
    );
    // The namespace's label moves web (which has none of its own), not api nor db.
    let c = mesh("ambient", "none");
    assert_eq!(
        switches(&b, &c),
        [
            ("shop/web-0".to_string(), Sidecar, Ambient, false),
            ("shop/web-1".to_string(), Sidecar, Ambient, false),
        ]
    );
    assert!(switches(&c, &c).is_empty(), "nothing changed");
}

#[test]
fn a_label_that_leaves_the_mode_as_it_was_registers_the_pod_again() {
    let a = mesh("sidecar", "sidecar");
    let b = a.replace("labels: {app: web}", "labels: {app: web, tier: front}");
    assert_eq!(
        switches(&a, &b),
        [
            ("shop/web-0".to_string(), Sidecar, Sidecar, true),
            ("shop/web-1".to_string(), Sidecar, Sidecar, true),
        ]
    );
}

#[test]
fn each_switch_keeps_the_app_served_at_every_step() {
    let step = |from, to, labels| {
        steps(&Switch {
            pod: 0,
            from,
            to,
            labels,
        })
    };
    let table = [
        (
            Sidecar,
            Ambient,
            vec![Register, StopSidecar, Enrol, WaitServed],
        ),
        (
            Ambient,
            Sidecar,
            vec![Register, Unenrol, WaitReleased, StartSidecar],
        ),
        (
            Ambient,
            NoProxy,
            vec![
                Register,
                TranslateServices,
                RemoveCapture,
                Unenrol,
                WaitReleased,
            ],
        ),
        (
            NoProxy,
            Ambient,
            vec![
                Register,
                Enrol,
                WaitServed,
                InstallCapture,
                UntranslateServices,
            ],
        ),
        (
            Sidecar,
            NoProxy,
            vec![Register, TranslateServices, RemoveCapture, StopSidecar],
        ),
        (
            NoProxy,
            Sidecar,
            vec![Register, StartSidecar, InstallCapture, UntranslateServices],
        ),
    ];
    for (from, to, want) in table {
        assert_eq!(step(from, to, false), want, "{from:?} → {to:?}");
        // Never two proxies in one pod: one is gone before the other starts.
        let stop = want
            .iter()
            .position(|s| matches!(s, StopSidecar | WaitReleased));
        let start = want.iter().position(|s| matches!(s, StartSidecar | Enrol));
        if let (Some(stop), Some(start)) = (stop, start) {
            assert!(stop < start, "{from:?} → {to:?}: {want:?}");
        }
    }
    assert_eq!(
        step(Sidecar, Sidecar, true),
        [Register, StopSidecar, StartSidecar]
    );
    assert_eq!(step(Ambient, Ambient, true), [Register]);
    assert_eq!(step(NoProxy, NoProxy, true), [Register]);
}
