//! The CLI as a new user meets it over a real `weft up`: `weft get` reads kinds as kubectl
//! users type them and lists the gateway among the pods; a closed pipe ends a verb quietly;
//! `weft logs --tail` prints the last lines, an empty log and a pod without a proxy say so; a
//! crashing workload shows up in `weft events` with its exit status; a broken change of
//! configuration shows up in `weft status` (with its problem, exit status 1) and in
//! `weft events`. Needs root (CI runs it with `--include-ignored`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use weft_e2e::{Mesh, serial, shop, text, weft_bin};

const T: Duration = Duration::from_secs(30);

/// A workload that writes a line to each stream and exits 3, a quiet one, and one without a
/// proxy that writes five lines and stays.
const WORKLOADS: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: quiet, namespace: shop, labels: {app: quiet}}
spec:
  command: [sleep, "3600"]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: talky, namespace: shop, labels: {app: talky, weft.dev/dataplane-mode: none}}
spec:
  command: [sh, -c, "for i in 1 2 3 4 5; do echo line $i; done; exec sleep 3600"]
"#;

/// A Workload whose app exits at once, added to the running mesh (`weft up -d` would wait for
/// it and fail).
const CRASHY: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: crashy, namespace: shop, labels: {app: crashy}}
spec:
  command: [sh, -c, "echo starting; echo boom >&2; exit 3"]
"#;

/// A Workload whose replicas is not a number: the control plane rejects the change.
const BROKEN: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: broken, namespace: shop, labels: {app: broken}}
spec:
  replicas: many
  command: [sleep, "3600"]
"#;

fn ok(mesh: &Mesh, args: &[&str]) -> String {
    let out = mesh.weft(args);
    assert!(out.status.success(), "weft {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn events(mesh: &Mesh, args: &[&str]) -> Vec<Value> {
    let all = [&["events", "-o", "json"][..], args].concat();
    serde_json::from_str(&ok(mesh, &all)).expect("events JSON")
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn get_logs_and_events_explain_what_runs_and_what_crashed() {
    let _serial = serial();
    let cfg = shop("clicons", 88);
    cfg.write("workloads.yaml", WORKLOADS);
    let mesh = Mesh::up("clicons", &cfg.path);
    cfg.write("crashy.yaml", CRASHY);
    mesh.eventually(
        "the crashing workload runs",
        std::time::Duration::from_secs(20),
        || text(&mesh.weft(&["get", "pods"])).contains("crashy-0"),
    );

    // Kinds as kubectl users type them; the gateway is a pod with its role.
    let pods = ok(&mesh, &["get", "po"]);
    let gateway = (pods.lines())
        .find(|l| l.starts_with("shop ") && l.contains(" gateway-ingress "))
        .unwrap_or_else(|| panic!("no gateway pod in:\n{pods}"));
    assert!(
        gateway.contains(" gateway ") && gateway.contains("itself (gateway)"),
        "{gateway}"
    );
    assert!(pods.contains("control-"), "{pods}");
    for kind in ["pods", "pod"] {
        assert_eq!(
            ok(&mesh, &["get", kind]).lines().count(),
            pods.lines().count()
        );
    }
    for (kind, row) in [
        ("svc", "catalog"),
        ("service", "catalog"),
        ("deploy", "talky"),
        ("workload", "talky"),
    ] {
        let table = ok(&mesh, &["get", kind]);
        let names: Vec<&str> = (table.lines())
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert!(names.contains(&row), "get {kind}:\n{table}");
    }
    let one: Value = serde_json::from_str(&ok(&mesh, &["get", "pod/shop/cart-0", "-o", "json"]))
        .expect("one pod as JSON");
    assert_eq!(one["name"], "cart-0", "{one}");
    let roles: Vec<Value> = mesh.all_pods().iter().map(|p| p["role"].clone()).collect();
    assert!(roles.contains(&"gateway".into()), "{roles:?}");

    // A closed pipe ends the verb quietly, as the shell runs it and when the reader is gone
    // before the first write.
    let weft = weft_bin().display().to_string();
    let piped = Command::new("bash")
        .args([
            "-c",
            &format!("set -o pipefail; {weft} get pods -o json --name clicons | head -c 10"),
        ])
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success(), "exit {:?}: {stderr}", piped.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(piped.stdout.len(), 10);
    for verb in [
        &["get", "pods", "-o", "json"][..],
        &["events"],
        &["logs", "talky-0"],
    ] {
        let mut child = Command::new(&weft)
            .args(verb)
            .args(["--name", "clicons"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weft");
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{verb:?} exited {status:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{verb:?}: {stderr}");
    }

    // --tail prints exactly the last lines; a pod without a proxy, and an empty log, say so.
    mesh.eventually("talky wrote its five lines", T, || {
        mesh.log("talky-0", false).contains("line 5")
    });
    let tail = mesh.weft(&["logs", "talky-0", "--tail", "2"]);
    assert!(tail.status.success(), "{}", text(&tail));
    assert_eq!(String::from_utf8_lossy(&tail.stdout), "line 4\nline 5\n");
    let proxy = mesh.weft(&["logs", "shop/talky-0", "--proxy"]);
    assert!(!proxy.status.success());
    assert!(
        text(&proxy).contains("has no proxy (dataplane mode none)"),
        "{}",
        text(&proxy)
    );
    let quiet = mesh.weft(&["logs", "quiet-0"]);
    assert!(quiet.status.success(), "{}", text(&quiet));
    assert!(quiet.stdout.is_empty());
    let said = String::from_utf8_lossy(&quiet.stderr);
    assert!(
        said.contains("the app of shop/quiet-0 has written nothing yet")
            && said.contains("its command is `sleep 3600`"),
        "{said}"
    );

    // The crash, with its exit status, its reason and its last words, as a Warning.
    mesh.eventually("crashy-0 crashed twice", T, || {
        let e = events(&mesh, &["--for", "crashy-0"]);
        e.iter().filter(|e| e["reason"] == "Crashed").count() >= 2
    });
    let e = events(&mesh, &["--for", "shop/crashy-0"]);
    let crash = e.iter().find(|e| e["reason"] == "Crashed").unwrap();
    assert_eq!(crash["type"], "Warning", "{crash}");
    assert_eq!(crash["exitCode"], 3, "{crash}");
    assert_eq!(crash["object"], "pod/shop/crashy-0", "{crash}");
    assert!(
        crash["message"]
            .as_str()
            .unwrap()
            .starts_with("app exited with status 3 after "),
        "{crash}"
    );
    assert!(
        crash["details"]
            .as_array()
            .unwrap()
            .contains(&"boom".into()),
        "{crash}"
    );
    assert!(e.iter().any(|e| e["reason"] == "BackOff"), "{e:?}");
    assert!(
        e.iter().all(|e| e["object"] == "pod/shop/crashy-0"),
        "{e:?}"
    );
    let table = ok(&mesh, &["events", "--for", "crashy-0"]);
    assert!(table.starts_with("LAST SEEN  TYPE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("Warning  Crashed") && l.contains("exited with status 3")),
        "{table}"
    );
    let aliased = ok(&mesh, &["get", "events", "crashy-0"]);
    assert!(aliased.contains("Crashed"), "{aliased}");
    // The control plane's events are there too.
    let all = events(&mesh, &[]);
    assert!(
        all.iter()
            .any(|e| e["reason"] == "ProxyConnected" && e["object"] == "pod/shop/cart-0"),
        "{all:?}"
    );
    mesh.down();
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn a_rejected_change_shows_in_status_with_its_problem_and_in_events() {
    let _serial = serial();
    let cfg = shop("clirej", 88);
    let mesh = Mesh::up("clirej", &cfg.path);
    mesh.eventually("every proxy in sync", T, || {
        mesh.weft(&["status"]).status.success()
    });
    // A fresh mesh: every pod with a proxy runs the revision it asks for (the outsider has
    // no proxy: it is not listed).
    let fresh = text(&mesh.weft(&["status"]));
    let pods: Vec<&str> = (fresh.lines())
        .skip_while(|l| !l.starts_with("POD "))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(pods.len(), 6, "{fresh}");
    assert!(!pods.iter().any(|l| l.contains("outsider")), "{fresh}");
    assert!(pods.iter().all(|l| l.ends_with("CURRENT")), "{fresh}");

    cfg.write("broken.yaml", BROKEN);
    mesh.eventually("the change is rejected", T, || {
        text(&mesh.weft(&["status"])).contains("REJECTED")
    });
    let status = mesh.weft(&["status"]);
    let shown = text(&status);
    assert_eq!(status.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("broken.yaml:") && shown.contains("spec.replicas"),
        "the problem, where it is: {shown}"
    );
    assert!(shown.contains("NOT IN SYNC (exit status 1)"), "{shown}");
    let json = mesh.weft(&["status", "-o", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&json.stdout).expect("status JSON");
    assert_eq!(v["inSync"], false, "{v}");
    assert!(
        v["config"]["rejected"]["problems"][0]
            .as_str()
            .unwrap()
            .contains("spec.replicas")
    );

    let e = events(&mesh, &["--warnings"]);
    let rejected = (e.iter())
        .find(|e| e["reason"] == "ConfigRejected")
        .unwrap_or_else(|| panic!("no ConfigRejected in {e:?}"));
    assert_eq!(rejected["type"], "Warning");
    assert!(
        rejected["object"].as_str().unwrap().starts_with("config/"),
        "{rejected}"
    );
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("spec.replicas"),
        "{rejected}"
    );

    // Fixed: applied, in sync again.
    std::fs::remove_file(cfg.path.join("broken.yaml")).unwrap();
    mesh.eventually("in sync again", T, || {
        mesh.weft(&["status"]).status.success()
    });
    let e = events(&mesh, &["--since", "1m"]);
    assert!(e.iter().any(|e| e["reason"] == "ConfigApplied"), "{e:?}");
    mesh.down();
}
