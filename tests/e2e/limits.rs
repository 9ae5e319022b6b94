//! CPU and memory limits are real in `weft up`: a sidecar runs in a cgroup with its
//! `weft.dev/proxy-*` limits, an app with its Workload's `resources`, and a proxy pushed past
//! its memory limit by real traffic is OOM-killed by the kernel, reported as such in `weft get
//! pods` and the events, and back once restarted. Needs root (CI runs it with
//! `--include-ignored`).

use std::time::{Duration, Instant};

use weft_e2e::{Mesh, serial, shop, text};

/// Opens N connections to the catalog, each a POST whose body stops after B bytes, and holds
/// them for S seconds: every proxy on the way keeps a connection, buffers and a stream for
/// each.
const HOLD: &str = r#"
import socket, sys, time
n, body, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
head = b"POST /items HTTP/1.1\r\nHost: catalog:8080\r\nContent-Length: 100000000\r\n\r\n"
held = []
for i in range(n):
    try:
        s = socket.create_connection(("catalog", 8080), timeout=5)
        s.sendall(head + b"x" * body)
        held.append(s)
    except OSError as e:
        print("connection", i, "failed:", e, flush=True)
        break
print("holding", len(held), flush=True)
time.sleep(secs)
"#;

/// The value of a limit file of the cgroup `pid` runs in: `memory.max` (v2) or
/// `memory.limit_in_bytes` (v1), found through `/proc/PID/cgroup`.
fn memory_limit(pid: u64) -> u64 {
    let groups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("its cgroups");
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        let (dir, file) = match controllers {
            "" => (format!("/sys/fs/cgroup{path}"), "memory.max"),
            c if c.split(',').any(|c| c == "memory") => (
                format!("/sys/fs/cgroup/memory{path}"),
                "memory.limit_in_bytes",
            ),
            _ => continue,
        };
        let Ok(v) = std::fs::read_to_string(format!("{dir}/{file}")) else {
            continue;
        };
        assert!(path.contains("weft.limits/"), "pid {pid} is in {path}");
        return v.trim().parse().unwrap_or(u64::MAX);
    }
    panic!("pid {pid} is in no memory cgroup:\n{groups}");
}

fn pid(p: &serde_json::Value, container: &str) -> u64 {
    p[container]["pid"].as_u64().expect("a running process")
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links, capture rules and cgroups"]
fn a_proxy_over_its_memory_limit_is_oom_killed_and_reported() {
    let _serial = serial();
    let cfg = shop("limits", 96);
    let catalog = std::fs::read_to_string(cfg.path.join("catalog.yaml")).unwrap();
    let catalog = catalog.replacen(
        "labels: {app: catalog, version: v1}",
        "labels: {app: catalog, version: v1}\n  annotations: {weft.dev/proxy-memory-limit: 32Mi}",
        1,
    );
    cfg.write("catalog.yaml", &catalog);
    let cart = std::fs::read_to_string(cfg.path.join("cart.yaml")).unwrap();
    let cart = cart.replacen(
        "  serviceAccountName: cart",
        "  serviceAccountName: cart\n  resources: {limits: {memory: 96Mi, cpu: 500m}}",
        1,
    );
    assert_ne!(
        cart,
        std::fs::read_to_string(cfg.path.join("cart.yaml")).unwrap()
    );
    cfg.write("cart.yaml", &cart);
    cfg.write("hold.py", HOLD);
    let mesh = Mesh::up("limits", &cfg.path);

    // Each limit is in force in the kernel: the annotation's, the default's, the Workload's.
    let pods = mesh.pods();
    let catalog = Mesh::pod(&pods, "catalog-0");
    assert_eq!(memory_limit(pid(catalog, "proxy")), 32 << 20);
    let frontend = Mesh::pod(&pods, "frontend-0");
    assert_eq!(memory_limit(pid(frontend, "proxy")), 128 << 20);
    let cart = Mesh::pod(&pods, "cart-0");
    assert_eq!(memory_limit(pid(cart, "app")), 96 << 20);
    let proxy_pid = pid(catalog, "proxy");

    // 1 500 slow uploads: far more than 32Mi of connections in the catalog's proxy.
    let hold = cfg.path.join("hold.py");
    let hold = hold.to_str().unwrap();
    let load = mesh.exec("frontend-0", &["python3", hold, "1500", "65536", "5"]);
    eprintln!("load: {}", text(&load));

    let deadline = Instant::now() + Duration::from_secs(30);
    let killed = loop {
        let pods = mesh.pods();
        let p = Mesh::pod(&pods, "catalog-0").clone();
        let how = p["proxy"]["lastExit"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if how.starts_with("OOMKilled") {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the catalog's proxy was not OOM-killed: {p:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let how = killed["proxy"]["lastExit"].as_str().unwrap();
    assert!(how.contains("memory limit of 32Mi"), "{how}");
    assert!(how.contains("SIGKILL"), "{how}");
    assert!(
        killed["proxy"]["restarts"].as_u64() >= Some(1),
        "{killed:#}"
    );
    // Only the proxy over its limit: the frontend's had room.
    let pods = mesh.pods();
    assert_eq!(Mesh::pod(&pods, "frontend-0")["proxy"]["restarts"], 0);

    let events = mesh.weft(&["events", "-o", "json"]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&events.stdout).expect("events");
    let oom = (events.iter())
        .find(|e| e["reason"] == "OOMKilled" && e["object"] == "pod/shop/catalog-0")
        .unwrap_or_else(|| panic!("no OOMKilled event for catalog-0: {events:#?}"));
    let message = oom["message"].as_str().unwrap_or_default();
    assert!(message.contains("memory limit of 32Mi"), "{oom:#}");
    assert_eq!(oom["type"], "Warning", "{oom:#}");

    // Restarted, the proxy serves again, in the same limits.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pods = mesh.pods();
        let p = Mesh::pod(&pods, "catalog-0");
        if p["proxy"]["state"] == "ready" && p["proxy"]["pid"].as_u64() != Some(proxy_pid) {
            assert_eq!(memory_limit(pid(p, "proxy")), 32 << 20);
            break;
        }
        assert!(Instant::now() < deadline, "not back: {p:#}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let ok = mesh.exec(
        "frontend-0",
        &[
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://catalog:8080/items",
        ],
    );
    assert_eq!(text(&ok).trim(), "200");
}
