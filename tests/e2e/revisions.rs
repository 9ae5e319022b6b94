//! Revisions on a real `weft up` of the demo shop, under a steady load through its ingress:
//! a second control plane installed beside the first, tags moved, a rollout restart, a canary
//! upgrade of every pod and the uninstall of the old revision — with no failed request; a bad
//! canary (settings that break mTLS, or a proxy that crashes at start) rolled back by itself;
//! and every refusal naming what and how to fix. Needs root (CI runs it with
//! `--include-ignored`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use weft_e2e::{Mesh, http_get, serial, shop, text, weft_bin};

/// Requests through the ingress, one every 20 ms, until stopped: how many, and the failures.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU32>,
    task: JoinHandle<Vec<String>>,
}

impl Load {
    fn start(port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU32::new(0));
        let (s, n) = (stop.clone(), sent.clone());
        let task = std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !s.load(Ordering::Relaxed) {
                n.fetch_add(1, Ordering::Relaxed);
                match http_get(port, "/") {
                    Ok((200, _)) => {}
                    Ok((code, body)) => failures.push(format!("{code}: {body}")),
                    Err(e) => failures.push(e.to_string()),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            failures
        });
        Load { stop, sent, task }
    }

    /// Stops it; the number of requests and the failures.
    fn finish(self) -> (u32, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.task.join().expect("load thread");
        (self.sent.load(Ordering::Relaxed), failures)
    }
}

fn ok(mesh: &Mesh, args: &[&str]) -> String {
    let out = mesh.weft(args);
    let t = text(&out);
    assert!(out.status.success(), "weft {args:?} failed:\n{t}");
    t
}

fn refused(mesh: &Mesh, args: &[&str]) -> String {
    let out = mesh.weft(args);
    let t = text(&out);
    assert!(
        !out.status.success(),
        "weft {args:?} should have been refused:\n{t}"
    );
    t
}

/// The revision each pod runs on, from `weft status`.
fn revisions(mesh: &Mesh) -> Vec<(String, String, String)> {
    let status = text(&mesh.weft(&["status"]));
    let table = status.split("POD ").nth(1).expect("a POD REVISION table");
    let rows: Vec<(String, String, String)> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 4).then(|| (w[0].to_string(), w[1].to_string(), w[3].to_string()))
        })
        .collect();
    // The shop's six pods with a sidecar: a check over every row means something.
    assert_eq!(rows.len(), 6, "{status}");
    rows
}

#[test]
#[ignore = "needs root: network namespaces, nftables"]
fn install_beside_tags_rollout_upgrade_and_uninstall_fail_no_request() {
    let _serial = serial();
    let cfg = shop("e2e-revisions", 77);
    let mesh = Mesh::up("erev", &cfg.path);
    let first = weft_local_first_revision();
    let load = Load::start(mesh.ingress_port);

    // Beside: a second control plane, nothing moves.
    let out = ok(&mesh, &["install", "--revision", "canary"]);
    assert!(out.contains("revision canary installed"), "{out}");
    let list = ok(&mesh, &["revision", "list"]);
    assert!(list.contains(&first) && list.contains("canary"), "{list}");
    assert!(
        revisions(&mesh)
            .iter()
            .all(|(_, r, s)| *r == first && s == "CURRENT")
    );

    // Tags: set, refused move without --overwrite, list, remove.
    ok(&mesh, &["tag", "set", "prod", "--revision", &first]);
    let e = refused(&mesh, &["tag", "set", "prod", "--revision", "canary"]);
    assert!(e.contains("add --overwrite"), "{e}");
    ok(
        &mesh,
        &["tag", "set", "prod", "--revision", "canary", "--overwrite"],
    );
    let tags = ok(&mesh, &["tag", "list"]);
    assert!(
        tags.lines()
            .any(|l| l.starts_with("prod") && l.contains("canary")),
        "{tags}"
    );
    assert!(
        tags.lines()
            .any(|l| l.starts_with("default") && l.contains(&first)),
        "{tags}"
    );
    ok(&mesh, &["tag", "remove", "prod"]);

    // Moving the default tag moves nothing by itself; a rollout restart does.
    ok(
        &mesh,
        &[
            "tag",
            "set",
            "default",
            "--revision",
            "canary",
            "--overwrite",
        ],
    );
    let outdated = revisions(&mesh);
    assert!(
        outdated
            .iter()
            .all(|(_, r, s)| *r == first && s.starts_with("OUTDATED")),
        "{outdated:?}"
    );
    let out = ok(&mesh, &["rollout", "restart", "shop/frontend"]);
    assert!(out.contains("moved"), "{out}");
    let now = revisions(&mesh);
    for (pod, rev, _) in &now {
        let want = if pod.starts_with("shop/frontend") {
            "canary"
        } else {
            first.as_str()
        };
        assert_eq!(rev, want, "{pod}: {now:?}");
    }
    ok(
        &mesh,
        &["tag", "set", "default", "--revision", &first, "--overwrite"],
    );

    // The canary upgrade of every pod, then the old revision goes. The canary is this very
    // binary: a p99 gap is the shared machine's noise over 3 s windows, not the revision, so
    // the latency gate only counts gaps past 100 ms here (the rollback tests judge errors).
    let out = ok(
        &mesh,
        &[
            "upgrade",
            "--to",
            "canary",
            "--observe",
            "3s",
            "--steps",
            "50,100",
            "--p99-floor",
            "100ms",
        ],
    );
    assert!(out.contains("upgrade to canary done"), "{out}");
    assert!(
        revisions(&mesh)
            .iter()
            .all(|(_, r, s)| r == "canary" && s == "CURRENT")
    );
    let out = ok(&mesh, &["uninstall", "--revision", &first]);
    assert!(out.contains("uninstalled"), "{out}");
    // Every proxy, the gateway too, reconnected and in sync (`weft status` exits 0).
    mesh.eventually("the gateway reconnected", Duration::from_secs(10), || {
        mesh.weft(&["status"]).status.success()
    });

    let (sent, failures) = load.finish();
    eprintln!("steady load: {sent} requests, {} failed", failures.len());
    assert!(sent > 300, "a steady load ran: {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}",
        failures.len()
    );
}

#[test]
#[ignore = "needs root: network namespaces, nftables"]
fn a_bad_canary_rolls_back_by_itself_and_refusals_say_how_to_fix() {
    let _serial = serial();
    let cfg = shop("e2e-revisions-bad", 78);
    let mesh = Mesh::up("erevbad", &cfg.path);
    let first = weft_local_first_revision();

    // Settings that break mTLS between revisions: the error rate breaches, it rolls back.
    ok(
        &mesh,
        &["install", "--revision", "bad", "--set", "mtls.mode=DISABLE"],
    );
    let load = Load::start(mesh.ingress_port);
    let out = mesh.weft(&["upgrade", "--to", "bad", "--observe", "6s"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("BREACH: ") && t.contains("error rate"), "{t}");
    assert!(t.contains("rolled back in"), "{t}");
    assert!(
        revisions(&mesh)
            .iter()
            .all(|(_, r, s)| *r == first && s == "CURRENT")
    );
    let (sent, failures) = load.finish();
    eprintln!(
        "bad canary: {sent} requests through the ingress, {} failed; {}",
        failures.len(),
        t.lines()
            .find(|l| l.starts_with("rolled back"))
            .unwrap_or("")
    );
    // Once rolled back, nothing fails.
    let after = Load::start(mesh.ingress_port);
    std::thread::sleep(Duration::from_secs(3));
    let (sent, failures) = after.finish();
    assert!(
        failures.is_empty(),
        "{} of {sent} failed after the rollback: {failures:?}",
        failures.len()
    );

    // A canary whose proxy crashes at start: the step fails, the pods come back.
    let dir = std::env::temp_dir().join("weft-e2e-crashy");
    std::fs::create_dir_all(&dir).unwrap();
    let crashy = dir.join("weft");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = proxy ]; then echo crashed >&2; exit 3; fi\nexec {} \"$@\"\n",
        weft_bin().display()
    );
    std::fs::write(&crashy, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&crashy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let crashy = crashy.display().to_string();
    ok(
        &mesh,
        &["install", "--revision", "crashy", "--binary", &crashy],
    );
    let out = mesh.weft(&["upgrade", "--to", "crashy", "--observe", "2s"]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("its proxy exited (exited with status 3)"), "{t}");
    assert!(t.contains("rolled back in"), "{t}");
    assert!(revisions(&mesh).iter().all(|(_, r, _)| *r == first));

    // Refusals, each naming what and the fix.
    let e = refused(
        &mesh,
        &[
            "install",
            "--revision",
            "x",
            "--binary",
            "/nonexistent/weft",
        ],
    );
    assert!(
        e.contains("/nonexistent/weft") && e.contains("give a weft executable"),
        "{e}"
    );
    let e = refused(
        &mesh,
        &["install", "--revision", "y", "--binary", "/bin/true"],
    );
    assert!(e.contains("/bin/true is not weft"), "{e}");
    let e = refused(&mesh, &["install", "--revision", "bad"]);
    assert!(e.contains("already installed"), "{e}");
    let e = refused(&mesh, &["tag", "set", "prod", "--revision", "missing"]);
    assert!(
        e.contains("no revision missing") && e.contains("weft install --revision missing"),
        "{e}"
    );
    let e = refused(&mesh, &["uninstall", "--revision", &first]);
    assert!(e.contains("tag default points at it"), "{e}");
    assert!(e.contains("pod shop/cart-0 runs on it"), "{e}");
    ok(&mesh, &["tag", "set", "prod", "--revision", "bad"]);
    let e = refused(&mesh, &["uninstall", "--revision", "bad"]);
    assert!(
        e.contains("tag prod points at it (fix: weft tag set prod"),
        "{e}"
    );
    ok(&mesh, &["tag", "remove", "prod"]);
    ok(&mesh, &["uninstall", "--revision", "bad"]);
    let e = refused(&mesh, &["upgrade", "--to", "bad"]);
    assert!(e.contains("no revision bad is installed"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[ignore = "needs root: network namespaces, nftables"]
fn two_revision_labels_on_one_namespace_are_refused() {
    let _serial = serial();
    let cfg = shop("e2e-revisions-labels", 79);
    let mesh_yaml = std::fs::read_to_string(cfg.path.join("mesh.yaml")).unwrap();
    let two =
        "weft.dev/dataplane-mode: sidecar\n    weft.dev/rev: canary\n    istio.io/rev: stable";
    cfg.write(
        "mesh.yaml",
        &mesh_yaml.replace("weft.dev/dataplane-mode: sidecar", two),
    );
    let e = Mesh::try_up("erevlab", &cfg.path).expect_err("two revision labels");
    assert!(e.contains("WEFT0701"), "{e}");
    assert!(e.contains("mesh.yaml"), "{e}");
}

/// The name `weft up` gives its first revision: the version, as `v0-1-0`.
fn weft_local_first_revision() -> String {
    let out = std::process::Command::new(weft_bin())
        .arg("version")
        .output()
        .expect("weft version");
    let v = String::from_utf8_lossy(&out.stdout);
    let version = v.split_whitespace().nth(1).expect("weft VERSION");
    format!("v{}", version.replace('.', "-"))
}
