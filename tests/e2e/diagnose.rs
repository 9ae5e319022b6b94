//! `weft diagnose` on a real `weft up` mesh broken one way at a time: each fault is named in
//! the verdict with its fix, and a healthy call says OK. The shop runs with a few extra
//! workloads that carry the faults (a policy principal misspelt, an app listening on another
//! port than its Service targets, a route timeout shorter than the app's answer, a path no
//! route matches, a workload without a proxy under a policy, a Service with no pod), so one
//! mesh serves every case. Needs root (CI runs it with `--include-ignored`).

use weft_e2e::{Mesh, serial, shop, text};

/// An HTTP server answering 200 on every path after `delay` seconds, listening on `port`.
fn server(port: u16, delay: f64) -> String {
    format!(
        "[python3, -c, \"import http.server,time\\nclass H(http.server.BaseHTTPRequestHandler):\\n  def do_GET(s):\\n    time.sleep({delay}); s.send_response(200); s.end_headers(); s.wfile.write(b'ok')\\n  def log_message(s, *a): pass\\nhttp.server.ThreadingHTTPServer(('', {port}), H).serve_forever()\"]"
    )
}

fn extra() -> String {
    format!(
        r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: misport, namespace: shop, labels: {{app: misport}}}}
spec: {{command: {misport}, ports: [{{name: http, containerPort: 9090}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: misport, namespace: shop}}
spec: {{selector: {{app: misport}}, ports: [{{name: http, port: 8080, targetPort: 8080}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: slow, namespace: shop, labels: {{app: slow}}}}
spec: {{command: {slow}, ports: [{{name: http, containerPort: 8080}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: slow, namespace: shop}}
spec: {{selector: {{app: slow}}, ports: [{{name: http, port: 8080, targetPort: http}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: slow, namespace: shop}}
spec:
  parentRefs: [{{group: "", kind: Service, name: slow, port: 8080}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /api}}}}]
    backendRefs: [{{name: slow, port: 8080}}]
    timeouts: {{request: 300ms}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: legacy, namespace: shop, labels: {{app: legacy, weft.dev/dataplane-mode: none}}}}
spec: {{command: {legacy}, ports: [{{name: http, containerPort: 8080}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: legacy, namespace: shop}}
spec: {{selector: {{app: legacy}}, ports: [{{name: http, port: 8080, targetPort: http}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {{name: legacy, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: legacy}}}}
  rules: [{{from: [{{source: {{principals: ["spiffe://shop.local/ns/shop/sa/frontend"]}}}}]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ext, namespace: shop}}
spec: {{selector: {{app: slow}}, ports: [{{name: http, port: 8080, targetPort: http}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: ext, namespace: shop}}
spec:
  parentRefs: [{{group: "", kind: Service, name: ext, port: 8080}}]
  rules:
  - backendRefs: [{{name: ext, port: 8080}}]
    filters: [{{type: ExtensionRef, extensionRef: {{group: example.com, kind: Lua, name: script}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: idle, namespace: shop}}
spec: {{selector: {{app: idle}}, ports: [{{name: http, port: 8080}}]}}
"#,
        misport = server(9090, 0.0),
        slow = server(8080, 2.0),
        legacy = server(8080, 0.0),
    )
}

/// `weft diagnose SRC DST`: (exit success, output).
fn diagnose(mesh: &Mesh, src: &str, dst: &str) -> (bool, String) {
    let out = mesh.weft(&["diagnose", src, dst]);
    (out.status.success(), text(&out))
}

fn verdict(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("VERDICT: ") || l.starts_with("verdict: "))
        .unwrap_or_else(|| panic!("no verdict in:\n{out}"))
}

fn fix(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("fix: "))
        .unwrap_or_else(|| panic!("no fix in:\n{out}"))
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn diagnose_names_each_fault_and_its_fix() {
    let _serial = serial();
    let cfg = shop("diag", 91);
    let policies = std::fs::read_to_string(cfg.path.join("policies.yaml")).unwrap();
    // The cart's service account misspelt in the pricing policy (`sa/carts`).
    cfg.write(
        "policies.yaml",
        &policies.replace(
            "- spiffe://shop.local/ns/shop/sa/cart\n",
            "- spiffe://shop.local/ns/shop/sa/carts\n",
        ),
    );
    cfg.write("faults.yaml", &extra());
    let mesh = Mesh::up("diag", &cfg.path);

    // Healthy: the frontend reads the catalog.
    let (ok, out) = diagnose(&mesh, "frontend", "catalog:8080/items");
    assert!(ok, "{out}");
    assert!(
        verdict(&out).starts_with("verdict: OK: the request was answered 200"),
        "{out}"
    );
    assert!(out.contains("shop/catalog-0 inbound: 200"), "{out}");

    // A principal that matches no workload: the denial, the rule, and the typo named.
    let (ok, out) = diagnose(&mesh, "cart", "pricing:8080/price/loom");
    assert!(!ok, "{out}");
    assert!(verdict(&out).contains("denies the request (403)"), "{out}");
    assert!(verdict(&out).contains("shop/pricing rule 0"), "{out}");
    assert!(fix(&out).contains("\"spiffe://shop.local/ns/shop/sa/carts\" in shop/pricing matches no workload; did you mean spiffe://shop.local/ns/shop/sa/cart"), "{out}");
    assert!(out.contains("403"), "the probe saw the denial: {out}");

    // The app listens on 9090 while the Service targets 8080.
    let (ok, out) = diagnose(&mesh, "frontend", "misport:8080/");
    assert!(!ok, "{out}");
    assert!(
        verdict(&out).contains("nothing listens on :8080 in shop/misport-0"),
        "{out}"
    );
    assert!(verdict(&out).contains("it listens on :9090"), "{out}");
    assert!(fix(&out).contains(":9090"), "{out}");

    // A route timeout shorter than the app's answer.
    let (ok, out) = diagnose(&mesh, "frontend", "slow:8080/api/report");
    assert!(!ok, "{out}");
    assert!(
        verdict(&out).contains("did not answer within its timeout of 300ms"),
        "{out}"
    );
    assert!(fix(&out).contains("timeouts.request"), "{out}");

    // A path no rule matches.
    let (ok, out) = diagnose(&mesh, "frontend", "slow:8080/other");
    assert!(!ok, "{out}");
    assert!(
        verdict(&out).contains("no route of shop/slow matches GET /other"),
        "{out}"
    );
    assert!(
        out.contains("HTTPRoute/shop/slow rule 0: path prefix /api"),
        "{out}"
    );

    // A route the proxies cannot run: the frontend's proxy rejects the Service's config.
    let (ok, out) = diagnose(&mesh, "frontend-0", "ext:8080/");
    assert!(!ok, "{out}");
    assert!(out.contains("the routes cannot be compiled"), "{out}");
    let (_, out) = diagnose(&mesh, "frontend-0", "ext:8080/");
    assert!(
        verdict(&out).contains("the source's proxy rejected its"),
        "{out}"
    );
    assert!(verdict(&out).contains("ExtensionRef"), "{out}");

    // A workload without a proxy that a policy selects.
    let (ok, out) = diagnose(&mesh, "frontend", "legacy:8080/");
    assert!(!ok, "{out}");
    assert!(
        verdict(&out).contains(
            "legacy has no proxy: the AuthorizationPolicy that selects it cannot be enforced"
        ),
        "{out}"
    );

    // A source without a proxy calling a STRICT workload.
    let (ok, out) = diagnose(&mesh, "outsider", "catalog:8080/items");
    assert!(!ok, "{out}");
    assert!(
        verdict(&out)
            .contains("shop/outsider-0 has no proxy, and catalog takes only mTLS (STRICT)"),
        "{out}"
    );
    assert!(fix(&out).contains("PERMISSIVE"), "{out}");

    // A Service no pod backs; a name that is no Service.
    let (ok, out) = diagnose(&mesh, "frontend", "idle:8080/");
    assert!(!ok, "{out}");
    assert!(
        verdict(&out).contains("no ready endpoint for shop/idle"),
        "{out}"
    );
    let (ok, out) = diagnose(&mesh, "frontend", "catalgo:8080/");
    assert!(!ok, "{out}");
    assert!(fix(&out).contains("did you mean shop/catalog?"), "{out}");

    // A workload added to the running mesh whose app keeps exiting: no ready endpoint, and why.
    cfg.write(
        "crashy.yaml",
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: crashy, namespace: shop, labels: {app: crashy}}\n\
         spec: {command: [sh, -c, \"echo boom >&2; exit 3\"], ports: [{name: http, containerPort: 8080}]}\n---\n\
         apiVersion: v1\nkind: Service\nmetadata: {name: crashy, namespace: shop}\n\
         spec: {selector: {app: crashy}, ports: [{name: http, port: 8080, targetPort: http}]}\n",
    );
    let mut out = String::new();
    mesh.eventually(
        "the crash is diagnosed",
        std::time::Duration::from_secs(30),
        || {
            out = diagnose(&mesh, "frontend", "crashy:8080/").1;
            out.contains("VERDICT: no ready endpoint for shop/crashy")
                && out.contains("exited with status 3")
        },
    );
    assert!(
        out.contains("shop/crashy-0 not ready: app exited with status 3"),
        "{out}"
    );

    // A proxy that stops taking config: frozen, then a policy that selects its workload
    // changes. Its config is STALE, and diagnose from it says so first.
    let pods = mesh.all_pods();
    let catalog = Mesh::pod(&pods, "catalog-0");
    let pid = catalog["proxy"]["pid"]
        .as_u64()
        .expect("catalog-0's sidecar pid");
    weft_e2e::signal(pid, "STOP");
    // Thawed however the test ends, so `weft down` can stop it.
    struct Thaw(u64);
    impl Drop for Thaw {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &self.0.to_string()])
                .status();
        }
    }
    let thaw = Thaw(pid);
    let policies = std::fs::read_to_string(cfg.path.join("policies.yaml")).unwrap();
    cfg.write(
        "policies.yaml",
        &policies.replacen(
            "principals: [\"spiffe://shop.local/ns/shop/sa/frontend\"]",
            "principals: [\"spiffe://shop.local/ns/shop/sa/frontend\", \"spiffe://shop.local/ns/shop/sa/cart\"]",
            1,
        ),
    );
    let mut stale = String::new();
    mesh.eventually(
        "the frozen proxy is STALE",
        std::time::Duration::from_secs(20),
        || {
            stale = text(&mesh.weft(&[
                "diagnose",
                "catalog",
                "pricing:8080/price/loom",
                "--no-probe",
            ]));
            stale.contains("VERDICT: the source's proxy is STALE")
        },
    );
    let live = text(&mesh.weft(&["analyze", "--live"]));
    drop(thaw);
    assert!(live.contains("proxy catalog-0.shop is STALE"), "{live}");

    // `weft analyze --live` names the same faults in one pass, the config's and the running
    // mesh's, each with its fix.
    let out = mesh.weft(&["analyze", "--live"]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    for (code, part) in [
        (
            "WEFT0608",
            "\"spiffe://shop.local/ns/shop/sa/carts\" is no workload's identity",
        ),
        (
            "WEFT0906",
            "the app of shop/misport-0 is not listening on :8080 (Service shop/misport targets it); it listens on :9090",
        ),
        (
            "WEFT0905",
            "shop/legacy-0 has no proxy, so AuthorizationPolicy shop/legacy that selects it is not enforced",
        ),
        (
            "WEFT0904",
            "Service shop/idle has no ready endpoint: no pod matches its selector",
        ),
        (
            "WEFT0907",
            "from spiffe://shop.local/ns/shop/sa/cart to shop/pricing-v",
        ),
        (
            "WEFT0902",
            "proxy frontend-0.shop rejected its Service config: service shop/ext",
        ),
        ("WEFT0901", "shop/crashy-0 is"),
    ] {
        assert!(
            all.lines().any(|l| l.contains(code) && l.contains(part)),
            "no {code} with {part:?} in:\n{all}"
        );
    }

    // `weft check`: the machine passes; the mesh fails on the proxy that rejected its config,
    // then on a rejected config edit, each with the fix, while the last good config stays in
    // force.
    let out = mesh.weft(&["check"]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("FAIL every pod ready: not ready: shop/crashy-0"),
        "{all}"
    );
    assert!(all.contains("ok   state directory"), "{all}");
    assert!(
        all.contains("FAIL every proxy SYNCED: frontend-0.shop Service NACKED"),
        "{all}"
    );
    cfg.write("broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: shop}\nspec: {ports: [{port: 99999}]}\n");
    mesh.eventually(
        "the edit is rejected",
        std::time::Duration::from_secs(20),
        || {
            let out = mesh.weft(&["check"]);
            !out.status.success()
                && text(&out).contains("FAIL config accepted: the last change was rejected")
        },
    );
    // The diagnosis goes on from the documents that load, the broken directory its problem.
    let (ok, out) = diagnose(&mesh, "frontend", "catalog:8080/items");
    assert!(!ok && out.contains("does not load (1 error)"), "{out}");
    assert!(out.contains("broken.yaml"), "{out}");
    assert!(out.contains("fix what `weft analyze"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("FAIL Config ")), "{out}");
    assert!(out.lines().any(|l| l.contains(" Route ")), "{out}");
    mesh.down();
}
