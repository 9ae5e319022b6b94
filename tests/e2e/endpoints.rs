//! Endpoints that reflect reality, over `weft up`: a replica whose app crash-loops behind a live
//! sidecar, or stops accepting, leaves the endpoints of its Service and comes back when ready;
//! a killed sidecar is restarted at once while retries carry its traffic to the other replica.
//! Every test runs a real mesh, so each needs root; CI runs them with `--include-ignored`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use weft_e2e::{ConfigDir, Mesh, serial, signal, text, weft_bin};

/// Answers every GET with its pod name; SIGUSR1 closes its listener, SIGUSR2 opens it again;
/// exits with status 1 at start while a file `crash-POD` exists in its directory.
const APP: &str = r#"
import http.server, os, signal, sys, threading

POD = os.environ["POD_NAME"]
if os.path.exists("crash-" + POD):
    sys.exit("crash-" + POD + " exists: crashing")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = POD.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = None


def listen(*_):
    global server
    if server is None:
        server = http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print("listening", flush=True)


def close(*_):
    global server
    if server is not None:
        server.shutdown()
        server.server_close()
        server = None
        print("closed", flush=True)


signal.signal(signal.SIGUSR1, close)
signal.signal(signal.SIGUSR2, listen)
listen()
while True:
    signal.pause()
"#;

/// Two replicas of `web` behind a Service that clients retry (twice, the default conditions),
/// and a client pod.
const MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: ep, labels: {app: web}}
spec:
  command: [python3, app.py]
  replicas: 2
  ports: [{name: http, containerPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ep}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: weft.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: web, namespace: ep}
spec:
  targetRefs: [{kind: Service, name: web}]
  retries: {attempts: 2}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: ep, labels: {app: client}}
spec:
  command: [sleep, "3600"]
"#;

const BOTH: [&str; 2] = ["web-0", "web-1"];
const WAIT: Duration = Duration::from_secs(20);

/// A mesh of [`MESH`] on network `n`, with both replicas in the client's endpoints.
fn start(name: &str, n: u8) -> (ConfigDir, Mesh) {
    let cfg = ConfigDir::new(name);
    cfg.write("mesh.yaml", &weft_e2e::network_yaml(n, "ep.local"));
    cfg.write("ep.yaml", MESH);
    cfg.write("app.py", APP);
    let mesh = Mesh::up(name, &cfg.path);
    // The client's sidecar subscribes to ep/web on its first request.
    let first = requests(&mesh, 1);
    assert_eq!(first[0].1, "200", "{first:?}");
    mesh.eventually("the client holds both replicas", WAIT, || {
        mesh.endpoints("client-0", "ep/web") == BOTH
    });
    (cfg, mesh)
}

/// The shell loop of `n` requests from the client pod, printing one line per request: what
/// answered (the pod's name, or the proxy's error) and the status code last.
fn request_loop(n: usize) -> String {
    format!(
        "for i in $(seq 1 {n}); do echo $(curl -s -m 5 -w ' %{{http_code}}' http://web/ | tr '\\n' ' '); done"
    )
}

/// `n` requests from client-0 through its sidecar, one after the other: (who answered, status).
fn requests(mesh: &Mesh, n: usize) -> Vec<(String, String)> {
    let out = mesh.exec("client-0", &["sh", "-c", &request_loop(n)]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (who, code) = l.rsplit_once(' ').unwrap_or(("", l));
            (who.to_string(), code.to_string())
        })
        .collect();
    assert_eq!(lines.len(), n, "{lines:?}");
    lines
}

/// A process of a pod from `weft get pods`: `app` or `proxy`.
fn process(mesh: &Mesh, pod: &str, which: &str) -> serde_json::Value {
    Mesh::pod(&mesh.pods(), pod)[which].clone()
}

fn pid(mesh: &Mesh, pod: &str, which: &str) -> u64 {
    process(mesh, pod, which)["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no pid for the {which} of {pod}"))
}

fn all_from_web_0(answers: &[(String, String)]) -> bool {
    answers
        .iter()
        .all(|(who, code)| who == "web-0" && code == "200")
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn a_crash_looping_replica_behind_a_live_sidecar_is_no_endpoint() {
    let _serial = serial();
    let (cfg, mesh) = start("epcrash", 40);

    // From now on web-1's app exits at every start; its sidecar keeps running.
    cfg.write("crash-web-1", "");
    signal(pid(&mesh, "web-1", "app"), "KILL");
    mesh.eventually("web-1's app crash-loops", WAIT, || {
        let app = process(&mesh, "web-1", "app");
        app["restarts"].as_u64() >= Some(2) && app["lastExit"] == "exited with status 1"
    });
    assert_eq!(process(&mesh, "web-1", "proxy")["state"], "ready");
    mesh.eventually("web-1 leaves the client's endpoints", WAIT, || {
        mesh.endpoints("client-0", "ep/web") == ["web-0"]
    });
    let answers = requests(&mesh, 30);
    assert!(all_from_web_0(&answers), "{answers:?}");
    assert_eq!(mesh.endpoints("client-0", "ep/web"), ["web-0"]);

    // Fixed: it comes back.
    std::fs::remove_file(cfg.path.join("crash-web-1")).unwrap();
    mesh.eventually(
        "web-1 is an endpoint again",
        Duration::from_secs(60),
        || mesh.endpoints("client-0", "ep/web") == BOTH,
    );
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn an_app_that_stops_accepting_leaves_the_endpoints_and_returns_when_ready() {
    let _serial = serial();
    let (_cfg, mesh) = start("epclose", 41);
    let app = pid(&mesh, "web-1", "app");

    signal(app, "USR1");
    mesh.eventually("web-1 leaves the client's endpoints", WAIT, || {
        mesh.endpoints("client-0", "ep/web") == ["web-0"]
    });
    let status = process(&mesh, "web-1", "app");
    assert_eq!(status["state"], "running", "not ready: {status}");
    assert_eq!(status["restarts"], 0, "still the same process: {status}");
    let answers = requests(&mesh, 20);
    assert!(all_from_web_0(&answers), "{answers:?}");

    signal(app, "USR2");
    mesh.eventually("web-1 is an endpoint again", WAIT, || {
        mesh.endpoints("client-0", "ep/web") == BOTH
    });
    assert_eq!(process(&mesh, "web-1", "app")["state"], "ready");
    mesh.eventually("web-1 answers again", WAIT, || {
        requests(&mesh, 10).iter().any(|(who, _)| who == "web-1")
    });
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn a_killed_sidecar_fails_no_request_and_restarts_at_once() {
    let _serial = serial();
    let (_cfg, mesh) = start("epkill", 42);
    let proxy = pid(&mesh, "web-1", "proxy");

    // A steady stream of requests from the client; web-1's sidecar dies in the middle of it.
    let total = 300;
    let mut stream = Command::new(weft_bin())
        .args(["exec", "client-0", "--name", "epkill", "--"])
        .args(["sh", "-c", &request_loop(total)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("weft exec starts");
    let mut answers: Vec<(String, String)> = Vec::new();
    for line in BufReader::new(stream.stdout.take().unwrap()).lines() {
        let line = line.expect("the stream's output");
        let (who, code) = line.rsplit_once(' ').unwrap_or(("", &line));
        answers.push((who.to_string(), code.to_string()));
        if answers.len() == 30 {
            signal(proxy, "KILL");
        }
    }
    assert!(stream.wait().unwrap().success());
    assert_eq!(answers.len(), total);
    let failed: Vec<&(String, String)> = answers.iter().filter(|(_, c)| c != "200").collect();
    assert!(
        answers[..30].iter().any(|(who, _)| who == "web-1"),
        "web-1 served before its sidecar died: {answers:?}"
    );
    assert!(
        failed.is_empty(),
        "{} of {total} requests failed: {failed:?}",
        failed.len()
    );

    mesh.eventually("web-1's sidecar is back", WAIT, || {
        let p = process(&mesh, "web-1", "proxy");
        p["state"] == "ready" && p["pid"].as_u64().is_some_and(|p| p != proxy)
    });
    let p = process(&mesh, "web-1", "proxy");
    assert_eq!(p["restarts"], 1, "{p}");
    assert_eq!(p["lastExit"], "killed by signal SIGKILL", "{p}");
    let (exited, started) = (p["exitedAtMs"].as_u64(), p["startedAtMs"].as_u64());
    let gap = started.unwrap() - exited.unwrap();
    assert!(
        gap < 1000,
        "restarted {gap} ms after it died: at once, not after a backoff"
    );
    mesh.eventually("web-1 is an endpoint again", WAIT, || {
        mesh.endpoints("client-0", "ep/web") == BOTH
    });
}
