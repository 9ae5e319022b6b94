//! Traffic from clients weft did not write (curl, grpcio, websockets) to servers weft did not
//! write (Python's http.server, grpcio, websockets), through real `weft control` and
//! `weft proxy` processes, behaves as it does without the proxies. Needs curl and the Python
//! packages grpcio and websockets (.ci/run installs them); without them the test fails.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use weft_test_support::http::get_blocking;
use weft_test_support::wait::eventually_blocking;

const WEFT: &str = env!("CARGO_BIN_EXE_weft");

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and returns it with the first line (stdout or stderr) starting with `prefix`.
fn start(cmd: &mut Command, prefix: &'static str) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.starts_with(prefix) {
                    let _ = tx.send(line);
                }
            }
        });
    }
    let proc = Proc(child);
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no {prefix:?} line from {cmd:?}"));
    (proc, line)
}

fn addr_after(line: &str, word: &str) -> SocketAddr {
    let rest = line
        .split(word)
        .nth(1)
        .unwrap_or_else(|| panic!("{word} in {line}"));
    let token = rest.trim_start().split([',', ' ']).next().unwrap();
    token
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn wait_ready(addr: SocketAddr) {
    eventually_blocking(
        &format!("the proxy at {addr} to be ready"),
        Duration::from_secs(20),
        || match get_blocking(addr, "proxy", "/healthz/ready") {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(format!("{} {}", r.status, r.body)),
            Err(e) => Err(e.to_string()),
        },
    );
}

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/third_party")
}

fn python(script: &str, args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg(here().join(script)).args(args);
    c
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Mesh {
    _procs: Vec<Proc>,
    dir: PathBuf,
    admin: SocketAddr,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(self.dir.with_extension("state"));
    }
}

const CONFIG: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: http, namespace: t, labels: {app: http}}
spec: {command: [python3], ports: [{name: http, containerPort: 8080}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: grpc, namespace: t, labels: {app: grpc}}
spec: {command: [python3], ports: [{name: grpc, containerPort: 50051}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: ws, namespace: t, labels: {app: ws}}
spec: {command: [python3], ports: [{name: http, containerPort: 8765}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: t, labels: {app: client}}
spec: {command: [curl]}
---
apiVersion: v1
kind: Service
metadata: {name: http, namespace: t}
spec: {clusterIP: 198.18.130.1, selector: {app: http}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {name: grpc, namespace: t}
spec: {clusterIP: 198.18.130.2, selector: {app: grpc}, ports: [{name: grpc, port: 50051, targetPort: grpc, appProtocol: grpc}]}
---
apiVersion: v1
kind: Service
metadata: {name: ws, namespace: t}
spec: {clusterIP: 198.18.130.3, selector: {app: ws}, ports: [{name: http, port: 80, targetPort: http}]}
"#;

fn proxy_args(cp: SocketAddr, workload: &str, pod: &str) -> Command {
    let mut c = Command::new(WEFT);
    c.args([
        "proxy",
        "--control-plane",
        &format!("http://{cp}"),
        "--namespace",
        "t",
    ])
    .args([
        "--workload",
        workload,
        "--pod",
        pod,
        "--ip",
        "127.0.0.1",
        "--log-format",
        "text",
    ])
    .args(["--outbound", "127.0.0.1:0", "--inbound", "127.0.0.1:0"])
    .args(["--admin", "127.0.0.1:0", "--readiness", "127.0.0.1:0"])
    .args(["--metrics", "127.0.0.1:0"])
    .env_remove("RUST_LOG");
    c
}

/// Backends, their sidecars, and one client sidecar per Service; returns the client outbound
/// addresses and the direct backend addresses.
fn mesh() -> (Mesh, [(SocketAddr, SocketAddr); 3]) {
    let dir = std::env::temp_dir().join(format!("weft-third-party-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("mesh.yaml"), CONFIG).unwrap();
    let mut procs = Vec::new();
    let (cp, line) = start(
        Command::new(WEFT)
            .args(["control", "-c"])
            .arg(&dir)
            .arg("--state-dir")
            .arg(dir.with_extension("state"))
            .args([
                "--discovery",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--warmup",
                "0s",
            ]),
        "weft control:",
    );
    procs.push(cp);
    let discovery = addr_after(&line, "discovery on");
    let admin = addr_after(&line, "admin on");
    let mut pairs = Vec::new();
    for (kind, vip) in [
        ("http", "198.18.130.1:80"),
        ("grpc", "198.18.130.2:50051"),
        ("ws", "198.18.130.3:80"),
    ] {
        let (server, line) = start(&mut python("servers.py", &[kind]), "PORT");
        procs.push(server);
        let backend: SocketAddr = format!("127.0.0.1:{}", line.trim_start_matches("PORT "))
            .parse()
            .unwrap();
        let (sidecar, line) = start(
            proxy_args(discovery, kind, &format!("{kind}-0"))
                .args(["--inbound-app", &backend.to_string()]),
            "weft proxy:",
        );
        wait_ready(addr_after(&line, "readiness on"));
        procs.push(sidecar);
        let (client, line) = start(
            proxy_args(discovery, "client", &format!("client-{kind}"))
                .args(["--outbound-target", vip]),
            "weft proxy:",
        );
        wait_ready(addr_after(&line, "readiness on"));
        procs.push(client);
        pairs.push((addr_after(&line, "outbound on"), backend));
    }
    (
        Mesh {
            _procs: procs,
            dir,
            admin,
        },
        [pairs[0], pairs[1], pairs[2]],
    )
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn curl(args: &[&str]) -> Vec<u8> {
    run(Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args))
    .stdout
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[test]
fn third_party_clients_and_servers_see_no_difference() {
    let (m, [(http, http_direct), (grpc, _), (ws, _)]) = mesh();

    // curl, HTTP/1.1: the server sees exactly the request it sees without the mesh.
    let args = |a: SocketAddr| {
        vec![
            "-H".to_string(),
            "Host: http.t".into(),
            "-H".into(),
            "X-Trace: 42".into(),
            format!("http://{a}/hello?a=1&b=%20"),
        ]
    };
    let mut via_mesh = json(&curl(&strs(&args(http))));
    let direct = json(&curl(&strs(&args(http_direct))));
    // ... but for the trace context every proxy propagates (a new trace: curl sent none).
    let traceparent = via_mesh["headers"]
        .as_object_mut()
        .and_then(|h| h.remove("traceparent"));
    let traceparent = traceparent.as_ref().and_then(|t| t.as_str()).unwrap_or("");
    assert!(
        traceparent.starts_with("00-") && traceparent.len() == 55,
        "traceparent: {traceparent:?}"
    );
    assert_eq!(via_mesh, direct, "request as the backend saw it");
    assert_eq!(via_mesh["path"], "/hello?a=1&b=%20");

    // Response status and headers pass back.
    let head = String::from_utf8(curl(&[
        "-i",
        "-H",
        "Host: http.t",
        &format!("http://{http}/"),
    ]))
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-backend: python-http.server"),
        "{head}"
    );

    // HTTP/1.0 and HTTP/2 (prior knowledge) clients to an HTTP/1.1 server.
    let v10 = json(&curl(&[
        "-0",
        "-H",
        "Host: http.t",
        &format!("http://{http}/v10"),
    ]));
    assert_eq!(v10["path"], "/v10");
    let h2 = json(&curl(&[
        "--http2-prior-knowledge",
        "-H",
        "Host: http.t",
        &format!("http://{http}/h2"),
    ]));
    assert_eq!(h2["path"], "/h2");
    assert_eq!(h2["headers"]["host"], "http.t");

    // 8 MiB bodies, with Expect: 100-continue and with chunked upload, come back byte for byte.
    let file = m.dir.join("payload.bin");
    let payload: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&file, &payload).unwrap();
    let data = format!("@{}", file.display());
    let url = format!("http://{http}/upload");
    let expect = curl(&[
        "-H",
        "Host: http.t",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &data,
        &url,
    ]);
    assert!(
        expect == payload,
        "100-continue upload differs ({} bytes back)",
        expect.len()
    );
    let chunked = curl(&[
        "-H",
        "Host: http.t",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &url,
    ]);
    assert!(
        chunked == payload,
        "chunked upload differs ({} bytes back)",
        chunked.len()
    );

    // grpcio client and server: unary with trailers, bidirectional streaming, status codes.
    let out = run(&mut python("clients.py", &["grpc", &grpc.to_string()])).stdout;
    let g = json(&out);
    assert_eq!(g["reply"], "echo:hello");
    assert_eq!(g["trailer"], "from-python");
    assert_eq!(g["chat"], serde_json::json!(["chat:a", "chat:b", "chat:c"]));
    assert_eq!(g["unknown_method"], "UNIMPLEMENTED");

    // websockets client and server: text and binary frames through the upgrade.
    let w = json(&run(&mut python("clients.py", &["ws", &ws.to_string()])).stdout);
    assert_eq!(w["text"], "over the mesh");
    assert_eq!(
        w["binary"],
        serde_json::json!([0, 1, 98, 105, 110, 97, 114, 121])
    );

    // `weft status` lists every sidecar as SYNCED.
    let out = run(Command::new(WEFT).args(["status", "--admin", &m.admin.to_string()]));
    let text = String::from_utf8_lossy(&out.stdout);
    for pod in [
        "t/http-0",
        "t/grpc-0",
        "t/ws-0",
        "t/client-http",
        "t/client-grpc",
        "t/client-ws",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(pod) && l.contains("SYNCED")),
            "{pod} in:\n{text}"
        );
    }
    assert!(!text.contains("NACKED"), "{text}");
}
