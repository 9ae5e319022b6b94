//! A harness for end-to-end tests over `weft up`: each test gets a mesh of its own (instance
//! name, address ranges and host ports), started detached from a config directory, and torn
//! down with `weft down` when the test ends, pass or fail.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The `weft` binary built next to this test (`target/<profile>/weft`), or `$WEFT_BIN`.
pub fn weft_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WEFT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/up-HASH → target/<profile>/weft
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("weft");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p weft-cli`) or set WEFT_BIN",
        bin.display()
    );
    bin
}

/// A free port on 127.0.0.1 (closed again, so a process can bind it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `weft ARGS`, returning its output.
pub fn weft(args: &[&str]) -> Output {
    Command::new(weft_bin())
        .args(args)
        .output()
        .expect("running weft")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A temporary config directory: the files of `example` (if any) plus `extra` files.
#[derive(Debug)]
pub struct ConfigDir {
    pub path: PathBuf,
}

impl ConfigDir {
    pub fn new(name: &str) -> ConfigDir {
        let path = std::env::temp_dir().join(format!("weft-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a config dir");
        ConfigDir { path }
    }

    /// Copies the YAML files of `examples/NAME` in.
    pub fn with_example(self, name: &str) -> ConfigDir {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(name);
        for e in std::fs::read_dir(&src).expect("example dir").flatten() {
            std::fs::copy(e.path(), self.path.join(e.file_name())).expect("copying");
        }
        self
    }

    pub fn write(&self, file: &str, text: &str) -> &ConfigDir {
        std::fs::write(self.path.join(file), text).expect("writing config");
        self
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A pod in the shop namespace without a sidecar: traffic from it is plaintext, and it is the
/// attacker's vantage point in the attack tests.
pub const OUTSIDER: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata:
  name: outsider
  namespace: shop
  labels: {app: outsider, weft.dev/dataplane-mode: none}
spec:
  command: [sleep, "3600"]
"#;

/// The demo shop (`examples/shop`) with address ranges of its own (198.19.N.0/25 and
/// 198.19.N.128/25) and the [`OUTSIDER`] pod, in a config dir named `name`.
pub fn shop(name: &str, n: u8) -> ConfigDir {
    let cfg = ConfigDir::new(name).with_example("shop");
    let mesh_yaml = std::fs::read_to_string(cfg.path.join("mesh.yaml")).expect("shop mesh.yaml");
    cfg.write(
        "mesh.yaml",
        &mesh_yaml.replace(
            "trustDomain: shop.local",
            &format!(
                "trustDomain: shop.local\n  network: {{podCidr: 198.19.{n}.0/25, serviceCidr: 198.19.{n}.128/25}}"
            ),
        ),
    );
    cfg.write("outsider.yaml", OUTSIDER);
    cfg
}

/// A Mesh document giving an instance its own address ranges: pods in 198.19.N.0/25,
/// services in 198.19.N.128/25.
pub fn network_yaml(n: u8, trust_domain: &str) -> String {
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {{name: mesh}}\nspec:\n  trustDomain: {trust_domain}\n  network: {{podCidr: 198.19.{n}.0/25, serviceCidr: 198.19.{n}.128/25}}\n"
    )
}

/// A running `weft up`, stopped with `weft down` on drop.
#[derive(Debug)]
pub struct Mesh {
    pub name: String,
    pub ingress_port: u16,
    pub admin_port: u16,
    /// What `weft up -d` printed.
    pub up_output: String,
}

impl Mesh {
    /// `weft up -d DIR` under instance `name`; panics with the output if it fails.
    pub fn up(name: &str, dir: &Path) -> Mesh {
        let mesh = Mesh::try_up(name, dir);
        match mesh {
            Ok(m) => m,
            Err(out) => panic!("weft up failed:\n{out}"),
        }
    }

    pub fn try_up(name: &str, dir: &Path) -> Result<Mesh, String> {
        Mesh::try_up_with(name, dir, &[])
    }

    /// [`Mesh::up`] with more flags for `weft up` (e.g. `--prometheus`).
    pub fn up_with(name: &str, dir: &Path, extra: &[&str]) -> Mesh {
        Mesh::try_up_with(name, dir, extra).unwrap_or_else(|out| panic!("weft up failed:\n{out}"))
    }

    /// `weft up -d DIR` that is to fail because pods stay unready past its wait: the mesh
    /// keeps running (the returned Mesh stops it); what `weft up -d` printed. Panics if it
    /// succeeds, or fails with no mesh running.
    pub fn up_unready(name: &str, dir: &Path) -> (Mesh, String) {
        match Mesh::try_up(name, dir) {
            Ok(m) => panic!(
                "weft up -d succeeded with pods that cannot be ready:\n{}",
                m.up_output
            ),
            Err(out) => {
                let running =
                    std::path::Path::new(&format!("/run/weft/{name}/status.json")).exists();
                let mesh = Mesh {
                    name: name.to_string(),
                    ingress_port: 0,
                    admin_port: 0,
                    up_output: out.clone(),
                };
                assert!(running, "weft up -d failed and no mesh runs:\n{out}");
                (mesh, out)
            }
        }
    }

    /// [`Mesh::try_up`] with more flags for `weft up`.
    pub fn try_up_with(name: &str, dir: &Path, extra: &[&str]) -> Result<Mesh, String> {
        let (ingress_port, admin_port) = (free_port(), free_port());
        let admin = format!("127.0.0.1:{admin_port}");
        let ingress = ingress_port.to_string();
        let dir = dir.display().to_string();
        let mut args = vec![
            "up",
            &dir,
            "-d",
            "--name",
            name,
            "--ingress-port",
            &ingress,
            "--admin",
            &admin,
        ];
        args.extend(extra);
        let out = weft(&args);
        let up_output = text(&out);
        if !out.status.success() {
            return Err(up_output);
        }
        Ok(Mesh {
            name: name.to_string(),
            ingress_port,
            admin_port,
            up_output,
        })
    }

    /// The log of the detached `weft up` itself.
    pub fn up_log(&self) -> String {
        std::fs::read_to_string(format!("/run/weft/{}/up.log", self.name)).unwrap_or_default()
    }

    /// Every address the mesh bound, as `weft up` reported them once it was up
    /// (`/run/weft/NAME/bound.json`: control, pods, gateways).
    pub fn bound(&self) -> serde_json::Value {
        let path = format!("/run/weft/{}/bound.json", self.name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `weft ARGS --name NAME` (the instance flag goes before any `--`).
    pub fn weft(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = Vec::new();
        match args.iter().position(|a| *a == "--") {
            Some(i) => {
                all.extend(&args[..i]);
                all.extend(["--name", &self.name]);
                all.extend(&args[i..]);
            }
            None => {
                all.extend(args);
                all.extend(["--name", &self.name]);
            }
        }
        weft(&all)
    }

    /// The workloads' (and waypoints') pods of `weft get pods -o json`.
    pub fn pods(&self) -> Vec<serde_json::Value> {
        let mut pods = self.all_pods();
        pods.retain(|p| p["role"] == "workload" || p["role"] == "waypoint");
        pods
    }

    /// Every pod of `weft get pods -o json`: the workloads', and the mesh's own (gateways,
    /// node proxies, control planes), each with its `role`.
    pub fn all_pods(&self) -> Vec<serde_json::Value> {
        let out = self.weft(&["get", "pods", "-o", "json"]);
        assert!(out.status.success(), "weft get pods: {}", text(&out));
        serde_json::from_slice(&out.stdout).expect("pods JSON")
    }

    pub fn pod<'a>(pods: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
        pods.iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no pod {name} in {pods:?}"))
    }

    /// A pod's app log (`proxy`: its sidecar's).
    pub fn log(&self, pod: &str, proxy: bool) -> String {
        let mut args = vec!["logs", pod];
        if proxy {
            args.push("--proxy");
        }
        text(&self.weft(&args))
    }

    /// `weft exec POD -- ARGS`: runs a command inside a pod.
    pub fn exec(&self, pod: &str, args: &[&str]) -> Output {
        let mut all = vec!["exec", pod, "--"];
        all.extend(args);
        self.weft(&all)
    }

    /// The pods the sidecar of `pod` holds as endpoints of `service` (`NAMESPACE/NAME`), sorted;
    /// empty while it holds no such Service (it subscribes on its first request).
    pub fn endpoints(&self, pod: &str, service: &str) -> Vec<String> {
        let out = self.weft(&["proxy-config", "config", pod]);
        assert!(out.status.success(), "weft proxy-config: {}", text(&out));
        let dump: serde_json::Value = serde_json::from_slice(&out.stdout).expect("config JSON");
        let mut pods: Vec<String> = dump["services"][service]["endpoints"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|e| e["pod"].as_str().map(str::to_string))
            .collect();
        pods.sort();
        pods
    }

    /// Waits until `f` holds, up to `timeout`; panics with `what` otherwise.
    pub fn eventually(&self, what: &str, timeout: Duration, f: impl FnMut() -> bool) {
        weft_test_support::wait::eventually_blocking(what, timeout, f);
    }

    /// `weft down`; returns its output.
    pub fn down(mut self) -> String {
        let out = text(&weft(&["down", "--name", &self.name]));
        self.name.clear();
        out
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            weft(&["down", "--name", &self.name]);
        }
    }
}

/// Sends `signal` (`KILL`, `USR1`, …) to process `pid`; panics if it cannot.
pub fn signal(pid: u64, signal: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(sent.success(), "kill -{signal} {pid} failed");
}

/// Tests in one binary share the machine's network: they run one at a time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A plain HTTP/1.1 GET to 127.0.0.1:port; (status, body).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_get_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)), path)
}

/// A plain HTTP/1.1 GET with `Host: ADDR`; (status, body).
pub fn http_get_at(addr: std::net::SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    weft_test_support::http::get_blocking(addr, &addr.to_string(), path)
        .map(|r| (r.status, r.body))
        .map_err(std::io::Error::other)
}

/// What `weft down` must leave as it found: namespaces, links and the host's rule set.
pub fn host_network_state() -> String {
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("{cmd}: {e}"))
    };
    let links: Vec<String> = run("ip", &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect();
    format!(
        "netns:\n{}\nlinks: {}\nruleset:\n{}",
        run("ip", &["netns", "list"]),
        links.join(" "),
        run("nft", &["list", "ruleset"])
    )
}

/// The command lines of the `weft proxy` processes of instance `name` (they name its runtime
/// directory in their arguments): sidecars, node proxies (`--node`) and gateways (`--gateway`).
pub fn proxy_processes(name: &str) -> Vec<Vec<String>> {
    let dir = format!("/run/weft/{name}/");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // `weft pod-exec ... -- weft proxy ...` runs a sidecar: the proxy's own process counts.
        if args.first().is_some_and(|a| a.ends_with("weft"))
            && args.get(1).is_some_and(|a| a == "proxy")
            && args.iter().any(|a| a.contains(&dir))
        {
            out.push(args);
        }
    }
    out
}

/// A Python echo server on port 9000 (for `python3 echo.py` in a pod): every line back, on
/// every connection.
pub const ECHO: &str = r#"
import socket, threading
def serve(c):
    f = c.makefile("rwb")
    for line in f:
        f.write(line); f.flush()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000)); s.listen(16)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// In ambient namespace `ns` of a two-node mesh: the [`ECHO`] server (`echo.py`, port 9000,
/// Service `echo`) on node-1 and a `steady` client (`steady.py`) on node-2 that holds a
/// connection to it: YAML documents to append to a mesh.
pub fn echo_pair_yaml(ns: &str) -> String {
    format!(
        r#"---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: echo, namespace: {ns}, labels: {{app: echo}}}}
spec:
  command: [python3, echo.py]
  nodeName: node-1
  ports: [{{containerPort: 9000}}]
---
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: {ns}}}
spec: {{selector: {{app: echo}}, ports: [{{port: 9000}}]}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: steady, namespace: {ns}, labels: {{app: steady}}}}
spec: {{command: [python3, -u, steady.py], nodeName: node-2}}
"#
    )
}

/// Requests through an ingress at a steady rate until [`SteadyLoad::finish`]: how many, and
/// each failure (a status other than 200, an error, or a body `check` refuses).
#[derive(Debug)]
pub struct SteadyLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sent: std::sync::Arc<std::sync::atomic::AtomicU32>,
    task: std::thread::JoinHandle<Vec<String>>,
}

impl SteadyLoad {
    /// `GET path` on 127.0.0.1:`port` every `every`; `check` says what is wrong with a 200's
    /// body, if anything.
    pub fn start(
        port: u16,
        path: &'static str,
        every: Duration,
        check: fn(&str) -> Option<String>,
    ) -> SteadyLoad {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (s, n) = (stop.clone(), sent.clone());
        let task = std::thread::spawn(move || {
            let mut failures = Vec::new();
            let start = std::time::Instant::now();
            while !s.load(Ordering::Relaxed) {
                let k = n.fetch_add(1, Ordering::Relaxed);
                let at = start.elapsed().as_secs_f64();
                let wrong = match http_get(port, path) {
                    Ok((200, body)) => check(&body),
                    Ok((code, body)) => Some(format!("{code}: {body}")),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(w) = wrong {
                    failures.push(format!("request {k} at {at:.2}s: {w}"));
                }
                std::thread::sleep(every);
            }
            failures
        });
        SteadyLoad { stop, sent, task }
    }

    /// How many requests were sent so far.
    pub fn sent(&self) -> u32 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops it; the number of requests and the failures.
    pub fn finish(self) -> (u32, Vec<String>) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.task.join().expect("load thread");
        (self.sent.load(Ordering::Relaxed), failures)
    }
}
