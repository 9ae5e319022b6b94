//! Pods without a sidecar on a real `weft up` mesh: they reach Services by name (translated in
//! their own namespace, spread over the ready endpoints), a Service with no ready endpoint and a
//! STRICT backend that refuses their plaintext both fail at once instead of hanging, and the
//! policy that selects a proxyless workload is named as unenforced by `weft analyze` on the
//! files and by `weft status` on the running mesh. Needs root (CI runs it with
//! `--include-ignored`).

use std::time::{Duration, Instant};

use weft_e2e::{ConfigDir, Mesh, serial, text, weft};

const PLAIN: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: echo
  namespace: plain
  labels: {app: echo}
  annotations: {weft.dev/mtls-mode: PERMISSIVE}
spec:
  command: [weft, demo, pricing]
  replicas: 2
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: plain}
spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: old
  namespace: plain
  labels: {app: old, weft.dev/dataplane-mode: none}
spec:
  command: [weft, demo, pricing]
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: old, namespace: plain}
spec: {selector: {app: old}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: old-callers, namespace: plain}
spec:
  selector: {matchLabels: {app: old}}
  rules: [{from: [{source: {namespaces: [plain]}}]}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: vault, namespace: plain, labels: {app: vault}}
spec:
  command: [weft, demo, pricing]
  ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: vault, namespace: plain}
spec: {selector: {app: vault}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: plain}
spec: {selector: {app: nobody}, ports: [{name: http, port: 80}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: client
  namespace: plain
  labels: {app: client, weft.dev/dataplane-mode: none}
spec:
  command: [sleep, "3600"]
"#;

/// `curl` from client-0 with a 5 s cap, so a hang fails as exit status 28; (status, output,
/// how long it took).
fn curl(mesh: &Mesh, url: &str) -> (i32, String, Duration) {
    let start = Instant::now();
    let out = mesh.weft(&["exec", "client-0", "--", "curl", "-sS", "-m", "5", url]);
    (out.status.code().unwrap_or(-1), text(&out), start.elapsed())
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and nftables rules"]
fn pods_without_a_sidecar_reach_services_and_fail_fast_where_nothing_serves() {
    let _serial = serial();
    let cfg = ConfigDir::new("proxyless");
    cfg.write("mesh.yaml", &weft_e2e::network_yaml(30, "nos.local"));
    cfg.write("plain.yaml", PLAIN);

    // The files: the policy on the proxyless backend is named as not enforced; warnings only.
    let analyzed = weft(&["analyze", &cfg.path.display().to_string()]);
    let said = text(&analyzed);
    assert!(analyzed.status.success(), "{said}");
    assert!(
        said.contains("warning WEFT0605")
            && said
                .contains("AuthorizationPolicy plain/old-callers selects it but is not enforced")
            && said.contains("[Workload/plain/old]"),
        "{said}"
    );

    let mesh = Mesh::up("nosprox", &cfg.path);

    // Once every endpoint is ready, the client's translation table has them (the Service
    // without pods keeps none).
    mesh.eventually(
        "client-0 translates the three Services that have ready endpoints",
        Duration::from_secs(30),
        || {
            let pods = mesh.pods();
            Mesh::pod(&pods, "client-0")["services"]
                .as_str()
                .is_some_and(|s| s.contains("(3 of 4 ports have ready endpoints)"))
        },
    );
    let pods = mesh.pods();
    let note = Mesh::pod(&pods, "client-0")["services"].as_str().unwrap();
    assert!(
        note.contains("connections reset at once: plain/nobody:80"),
        "{note}"
    );

    // By name, to a PERMISSIVE sidecar backend: answered, by both replicas over 20 calls.
    let (code, out, took) = curl(&mesh, "http://echo/price/yarn");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(r#""item":"yarn""#), "{out}");
    eprintln!("client-0 -> echo by name: {took:?}");
    let loop_out = mesh.weft(&[
        "exec",
        "client-0",
        "--",
        "sh",
        "-c",
        "for i in $(seq 20); do curl -sS -m 5 http://echo.plain/price/yarn; echo; done",
    ]);
    let answers = text(&loop_out);
    assert!(loop_out.status.success(), "{answers}");
    for pod in ["echo-0", "echo-1"] {
        assert!(
            answers.contains(&format!(r#""pod":"{pod}""#)),
            "no answer from {pod} in 20 calls:\n{answers}"
        );
    }

    // To a proxyless backend: answered too.
    let (code, out, took) = curl(&mesh, "http://old/price/yarn");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(r#""pod":"old-0""#), "{out}");
    eprintln!("client-0 -> old by name: {took:?}");

    // No ready endpoint: the connection is refused (curl's 7), not left to time out (28).
    let (code, out, took) = curl(&mesh, "http://nobody/");
    assert_eq!(code, 7, "{out}");
    eprintln!("client-0 -> nobody: {took:?}");
    // A port the Service does not have is refused the same way.
    let (code, out, _) = curl(&mesh, "http://echo:81/");
    assert_eq!(code, 7, "{out}");

    // A STRICT sidecar backend closes the plaintext connection: an error, not a timeout.
    let (code, out, took) = curl(&mesh, "http://vault/price/yarn");
    assert!(code != 0 && code != 28, "status {code}: {out}");
    eprintln!("client-0 -> vault (STRICT): status {code} in {took:?}");
    mesh.eventually(
        "vault's proxy logged the refusal",
        Duration::from_secs(5),
        || mesh.log("vault-0", true).contains("refused plaintext"),
    );

    // The running mesh names the unenforced policy too.
    let admin = format!("127.0.0.1:{}", mesh.admin_port);
    let status = weft(&["status", "--admin", &admin]);
    let shown = text(&status);
    assert!(
        shown.contains("WARNING WEFT0605 Workload/plain/old")
            && shown
                .contains("AuthorizationPolicy plain/old-callers selects it but is not enforced"),
        "{shown}"
    );
    assert!(
        shown.contains("WEFT0605 Workload/plain/client")
            && shown.contains("mTLS STRICT (the Mesh default) covers it but plaintext is accepted"),
        "{shown}"
    );
}
