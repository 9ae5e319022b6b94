use weft_core::quantity::{Cpu, Memory};
use weft_core::resources::mesh::ProxyDefaults;
use weft_core::sizing::{self, Point};
use weft_test_support::dir::TempDir;

use super::*;

const CART: &str = "# cart
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: cart
  namespace: shop
  labels: {app: cart}
spec:
  command: [sleep, \"60\"]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {command: [sleep, \"60\"], replicas: 2}
";

/// `cart` and `web` of [`CART`] in `dir`, sized from an idle minute.
fn sized(dir: &TempDir) -> Vec<Sized> {
    let file = dir.write("cart.yaml", CART).display().to_string();
    let points: Vec<Point> = (0..40)
        .map(|i| Point {
            t_ms: i * 2000,
            cpu_m: 2,
            memory: 6 << 20,
            throttled: 0.0,
        })
        .collect();
    let current = ProxyDefaults::default().resources;
    ["cart", "web"]
        .iter()
        .map(|name| Sized {
            kind: "Workload",
            namespace: "shop".into(),
            name: name.to_string(),
            file: file.clone(),
            replicas: 1,
            recommendation: sizing::recommend(&points, &current),
            current: current.clone(),
        })
        .collect()
}

fn annotations(dir: &TempDir, name: &str) -> std::collections::BTreeMap<String, String> {
    let out = weft_core::load::load_paths(&[dir.path()]);
    (out.config.resources.into_iter())
        .find_map(|l| match l.resource {
            Resource::Workload(w) if w.metadata.name == name => Some(w.metadata.annotations),
            _ => None,
        })
        .unwrap()
}

#[test]
fn without_yes_nothing_is_written_and_with_yes_both_workloads_are() {
    let dir = TempDir::new("rs-apply");
    let s = sized(&dir);
    let code = run(dir.path(), &s, false, false).unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(
        std::fs::read_to_string(dir.join("cart.yaml")).unwrap(),
        CART
    );

    run(dir.path(), &s, true, false).unwrap();
    let text = std::fs::read_to_string(dir.join("cart.yaml")).unwrap();
    assert!(text.starts_with("# cart\n"), "{text}");
    for name in ["cart", "web"] {
        let a = annotations(&dir, name);
        assert_eq!(a[PROXY_CPU_REQUEST], "10m", "{text}");
        assert_eq!(a[PROXY_CPU_LIMIT], "100m");
        assert_eq!(a[PROXY_MEMORY_REQUEST], "16Mi");
        assert_eq!(a[PROXY_MEMORY_LIMIT], "32Mi");
    }
    let outcome = weft_core::load::load_paths(&[dir.path()]);
    let found = analyze::analyze(&outcome.config).findings;
    assert!(found.is_empty(), "{found:#?}");
    // A second run has nothing to write.
    let before = std::fs::read_to_string(dir.join("cart.yaml")).unwrap();
    run(dir.path(), &s, true, false).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("cart.yaml")).unwrap(),
        before
    );
}

#[test]
fn values_the_analyzer_refuses_restore_the_files() {
    let dir = TempDir::new("rs-restore");
    let mut s = sized(&dir);
    // Below the floor the analyzer checks (recommend() never does this).
    let r = s[0].recommendation.as_mut().unwrap();
    r.limits.memory = Memory(8 << 20);
    r.limits.cpu = Cpu(20);
    let err = run(dir.path(), &s, true, false).unwrap_err().to_string();
    assert!(err.contains("every file was restored"), "{err}");
    assert!(err.contains("WEFT0301"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("cart.yaml")).unwrap(),
        CART
    );
}

#[test]
fn a_document_it_cannot_edit_is_named_with_the_values_to_set() {
    let dir = TempDir::new("rs-refuse");
    let s = sized(&dir);
    let odd = CART.replace(
        "metadata: {name: web, namespace: shop, labels: {app: web}}",
        "metadata: {name: web, namespace: shop,\n  labels: {app: web}}",
    );
    std::fs::write(dir.join("cart.yaml"), &odd).unwrap();
    let code = run(dir.path(), &s, true, false).unwrap();
    assert_eq!(code, ExitCode::FAILURE);
    let text = std::fs::read_to_string(dir.join("cart.yaml")).unwrap();
    // cart was written, web left as it was.
    assert_eq!(annotations(&dir, "cart")[PROXY_MEMORY_LIMIT], "32Mi");
    assert!(annotations(&dir, "web").is_empty());
    assert!(text.contains("metadata: {name: web, namespace: shop,\n  labels: {app: web}}"));
}

#[test]
fn an_edit_that_changes_more_than_annotations_is_caught() {
    let change = Change {
        kind: "Workload",
        namespace: "shop".into(),
        name: "cart".into(),
        values: vec![(PROXY_CPU_LIMIT, "100m".into())],
    };
    let new = CART.replace(
        "  labels: {app: cart}\n",
        "  labels: {app: cart}\n  annotations: {weft.dev/proxy-cpu-limit: 100m}\n",
    );
    assert_eq!(
        verify("f", CART, &new, std::slice::from_ref(&change)),
        Ok(())
    );
    let wrong = new.replace("replicas: 2", "replicas: 3");
    let err = verify("f", CART, &wrong, std::slice::from_ref(&change)).unwrap_err();
    assert!(err.contains("more than the annotations"), "{err}");
    let broken = new.replace(
        "kind: Workload\nmetadata:\n",
        "kind: Workload\nmetadata:\n  - x\n",
    );
    assert!(verify("f", CART, &broken, &[change]).is_err());
}
