//! `weft import istio` end to end: a Bookinfo-style Istio configuration — reviews v1/v2/v3
//! behind a VirtualService with a header match to v2, a 90/10 split of v1 and v3 with retries
//! and a timeout; ratings with an abort fault; DestinationRule subsets; an ALLOW and a DENY
//! AuthorizationPolicy; a mesh-wide PERMISSIVE PeerAuthentication — is refused as it is by
//! `weft analyze` and `weft up` (naming the converter), imported, and run with `weft up`.
//! A table of requests from pods then gets the versions and statuses Istio's semantics say.
//! Needs root (CI runs it with `--include-ignored`).

use std::time::{Duration, Instant};

use weft_e2e::{ConfigDir, Mesh, serial, text, weft};

const N: u8 = 92;

/// Answers `APP VERSION`; `/flaky` fails with 503 every other time, `/slow` takes 30s.
const APP: &str = r#"
import os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = (os.environ["APP"] + " " + os.environ["VERSION"] + "\n").encode()
count, lock = 0, threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        global count
        status = 200
        if self.path.startswith("/flaky"):
            with lock:
                count += 1
                status = 503 if count % 2 else 200
        elif self.path.startswith("/slow"):
            time.sleep(30)
        self.send_response(status)
        self.send_header("content-length", str(len(NAME)))
        self.end_headers()
        self.wfile.write(NAME)
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("0.0.0.0", 9080), Handler).serve_forever()
"#;

/// The apps, as weft Workloads carrying the Istio labels and annotations their Deployments
/// had.
fn apps(app: &str) -> String {
    let version = |app_name: &str, v: &str, sa: &str| {
        format!(
            r#"---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: {app_name}-{v}
  namespace: bookinfo
  labels: {{app: {app_name}, version: {v}}}
  annotations:
    sidecar.istio.io/proxyCPU: 50m
    proxy.istio.io/config: '{{"holdApplicationUntilProxyStarts": true}}'
spec:
  command: [python3, "{app}"]
  env: [{{name: APP, value: {app_name}}}, {{name: VERSION, value: {v}}}]
  serviceAccountName: {sa}
  ports: [{{name: http, containerPort: 9080}}]
"#
        )
    };
    let client = |name: &str, extra: &str| {
        format!(
            "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n  namespace: bookinfo\n  labels: {{app: {name}{extra}}}\nspec: {{command: [sleep, \"3600\"], serviceAccountName: {name}}}\n"
        )
    };
    let mut out = format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {{name: mesh}}\nspec:\n  network: {{podCidr: 198.19.{N}.0/25, serviceCidr: 198.19.{N}.128/25}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: bookinfo, labels: {{istio-injection: enabled}}}}\n"
    );
    for v in ["v1", "v2", "v3"] {
        out += &version("reviews", v, "reviews");
    }
    out += &version("ratings", "v1", "ratings");
    for svc in ["reviews", "ratings"] {
        out += &format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {svc}, namespace: bookinfo}}\nspec:\n  selector: {{app: {svc}}}\n  ports: [{{name: http, port: 9080}}]\n"
        );
    }
    out += &client("productpage", "");
    out += &client("outsider", "");
    // Outside the mesh: its requests are plaintext.
    out += &client("legacy", ", sidecar.istio.io/inject: \"false\"");
    out
}

/// The traffic rules and policies, as Istio users write them.
const ISTIO: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 90
    - destination: {host: reviews, subset: v3}
      weight: 10
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "gateway-error,connect-failure,refused-stream"}
    timeout: 5s
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: bookinfo}
spec:
  hosts: [ratings.bookinfo.svc.cluster.local]
  http:
  - match:
    - headers:
        x-fault: {exact: abort}
    fault:
      abort: {httpStatus: 503, percentage: {value: 100}}
    route:
    - destination: {host: ratings, subset: v1}
  - route:
    - destination: {host: ratings, subset: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: bookinfo}
spec:
  host: ratings
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-viewer, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: ratings}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [cluster.local/ns/bookinfo/sa/productpage, cluster.local/ns/bookinfo/sa/reviews]}
    to:
    - operation: {methods: [GET]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-admin, namespace: bookinfo}
spec:
  selector: {matchLabels: {app: reviews}}
  action: DENY
  rules:
  - to:
    - operation: {paths: ["/admin*"]}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: PERMISSIVE}
"#;

/// `curl` from `pod`: (status, body, seconds).
fn curl(mesh: &Mesh, pod: &str, url: &str, header: Option<&str>) -> (u16, String, f64) {
    let mut args = vec![
        "curl",
        "-sS",
        "-m",
        "20",
        "-w",
        "\n%{http_code} %{time_total}",
    ];
    if let Some(h) = header {
        args.extend(["-H", h]);
    }
    args.push(url);
    let out = mesh.exec(pod, &args);
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, last) = all.rsplit_once('\n').unwrap_or(("", &all));
    let mut words = last.split_whitespace();
    let status = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let secs = words.next().and_then(|w| w.parse().ok()).unwrap_or(0.0);
    (status, body.trim().to_string(), secs)
}

/// How many of `n` requests from productpage to the reviews went to each version.
fn split(mesh: &Mesh, n: usize) -> [usize; 3] {
    let script = format!("for i in $(seq 1 {n}); do curl -s -m 10 http://reviews:9080/; done");
    let out = mesh.exec("productpage-0", &["sh", "-c", &script]);
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    let count = |v: &str| {
        body.lines()
            .filter(|l| *l == format!("reviews {v}"))
            .count()
    };
    let counts = [count("v1"), count("v2"), count("v3")];
    assert_eq!(counts.iter().sum::<usize>(), n, "{body}");
    counts
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn an_imported_bookinfo_routes_and_authorizes_as_istio_did() {
    let _serial = serial();
    let src = ConfigDir::new("imist-src");
    src.write("app.py", APP);
    src.write(
        "apps.yaml",
        &apps(&src.path.join("app.py").display().to_string()),
    );
    src.write("istio.yaml", ISTIO);
    let src_dir = src.path.display().to_string();

    // As it is, the Istio configuration is refused, naming the converter.
    let out = weft(&["analyze", &src_dir]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert_eq!(said.matches("WEFT0801").count(), 7, "{said}");
    assert!(said.contains("weft import istio"), "{said}");
    let refused = Mesh::try_up("imist", &src.path).expect_err("weft up refuses Istio kinds");
    assert!(refused.contains("WEFT0801"), "{refused}");

    // Imported, it analyzes clean.
    let dst = ConfigDir::new("imist-out");
    let dst_dir = dst.path.display().to_string();
    let out = weft(&["import", "istio", &src_dir, "-o", &dst_dir]);
    let summary = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{}", text(&out));
    for row in [
        "VirtualService bookinfo/reviews",
        "DestinationRule bookinfo/reviews",
        "AuthorizationPolicy bookinfo/reviews-admin",
        "PeerAuthentication istio-system/default",
    ] {
        assert!(summary.contains(row), "{row}: {summary}");
    }
    let out = weft(&["analyze", &dst_dir]);
    assert!(out.status.success(), "{}", text(&out));

    let mesh = Mesh::up("imist", &dst.path);
    mesh.eventually("reviews answers", Duration::from_secs(30), || {
        curl(&mesh, "productpage-0", "http://reviews:9080/", None).0 == 200
    });

    // Requests → the version or status Istio's semantics say.
    let table: &[(&str, &str, Option<&str>, u16, &str)] = &[
        (
            "productpage-0",
            "http://reviews:9080/",
            Some("end-user: jason"),
            200,
            "reviews v2",
        ),
        ("productpage-0", "http://reviews:9080/admin", None, 403, ""),
        (
            "productpage-0",
            "http://reviews:9080/admin",
            Some("end-user: jason"),
            403,
            "",
        ),
        (
            "productpage-0",
            "http://ratings:9080/",
            None,
            200,
            "ratings v1",
        ),
        (
            "productpage-0",
            "http://ratings.bookinfo.svc.cluster.local:9080/",
            None,
            200,
            "ratings v1",
        ),
        (
            "productpage-0",
            "http://ratings:9080/",
            Some("x-fault: abort"),
            503,
            "",
        ),
        ("outsider-0", "http://ratings:9080/", None, 403, ""),
    ];
    for (pod, url, header, status, body) in table {
        for _ in 0..5 {
            let (got, text, _) = curl(&mesh, pod, url, *header);
            assert_eq!(got, *status, "{pod} {url} {header:?}: {text}");
            assert!(text.contains(body), "{pod} {url} {header:?}: {text}");
        }
    }

    // The 90/10 split of v1 and v3, and never v2 without the header.
    let [v1, v2, v3] = split(&mesh, 200);
    eprintln!("200 requests without the header: v1 {v1}, v2 {v2}, v3 {v3}");
    assert_eq!(v2, 0, "v2 only for jason: {v1} {v2} {v3}");
    assert!((5..=40).contains(&v3), "about 10% to v3: {v1} v1, {v3} v3");

    // Retries: every other answer of each pod is a 503, and none reaches the caller.
    for _ in 0..20 {
        let (status, text, _) = curl(&mesh, "productpage-0", "http://reviews:9080/flaky", None);
        assert_eq!(status, 200, "{text}");
    }
    // The route's 5s timeout, over per-try timeouts of 2s.
    let start = Instant::now();
    let (status, text, _) = curl(&mesh, "productpage-0", "http://reviews:9080/slow", None);
    let took = start.elapsed();
    assert_eq!(status, 504, "{text}");
    assert!(took < Duration::from_secs(9), "timed out after {took:?}");

    // PERMISSIVE: a plaintext client outside the mesh reaches a pod directly.
    let pods = mesh.pods();
    let ip = Mesh::pod(&pods, "reviews-v1-0")["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, text, _) = curl(&mesh, "legacy-0", &format!("http://{ip}:9080/"), None);
    assert_eq!((status, text.as_str()), (200, "reviews v1"));

    mesh.down();
}
