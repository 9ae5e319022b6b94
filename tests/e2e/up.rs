//! `weft up` end to end: the demo shop through its ingress and sidecars, a third-party server
//! as a workload, start-up order, restarts, faults and clean teardown. Every test runs a real
//! mesh (network namespaces, capture rules, processes), so each needs root; CI runs them with
//! `--include-ignored`.

use std::net::SocketAddr;
use std::time::Duration;

use weft_e2e::{ConfigDir, Mesh, host_network_state, http_get, http_get_at, serial, text, weft};

fn ip_of(pods: &[serde_json::Value], name: &str) -> String {
    Mesh::pod(pods, name)["ip"].as_str().unwrap().to_string()
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn demo_shop_answers_through_the_ingress_and_every_sidecar() {
    let _serial = serial();
    let before = host_network_state();
    let cfg = ConfigDir::new("shop").with_example("shop");
    let mesh_yaml = std::fs::read_to_string(cfg.path.join("mesh.yaml")).unwrap();
    cfg.write(
        "mesh.yaml",
        &mesh_yaml.replace(
            "trustDomain: shop.local",
            "trustDomain: shop.local\n  network: {podCidr: 198.19.1.0/25, serviceCidr: 198.19.1.128/25}",
        ),
    );
    let mesh = Mesh::up("e2eshop", &cfg.path);

    let (status, page) = http_get(mesh.ingress_port, "/").expect("ingress answers");
    assert_eq!(status, 200, "{page}");
    for part in [
        "frontend: frontend-",
        "served by catalog-0",
        "served by cart-0",
        "priced by pricing-v",
    ] {
        assert!(page.contains(part), "the page lacks {part:?}:\n{page}");
    }

    // The calls really went through the sidecars on both ends.
    mesh.eventually(
        "access logs of both sidecars",
        Duration::from_secs(5),
        || {
            let client = mesh.log("frontend-0", true) + &mesh.log("frontend-1", true);
            let server = mesh.log("catalog-0", true);
            client.contains(r#""direction":"outbound""#)
                && client.contains(r#""service":"shop/catalog""#)
                && server.contains(r#""direction":"inbound""#)
                && server.contains(r#""path":"/items""#)
        },
    );

    // Every app started only after its proxy was ready.
    let pods = mesh.pods();
    assert_eq!(pods.len(), 6, "{pods:?}");
    for p in &pods {
        let proxy_ready = p["proxy"]["readyAtMs"].as_u64().expect("proxy ready time");
        let app_started = p["app"]["startedAtMs"].as_u64().expect("app start time");
        assert!(
            app_started >= proxy_ready,
            "{} started its app at {app_started} before its proxy was ready at {proxy_ready}",
            p["name"]
        );
    }
    let table = text(&mesh.weft(&["get", "pods"]));
    assert!(
        table.contains("frontend-1") && table.contains("2/2"),
        "{table}"
    );

    // A second mesh of the same name is refused, and the first keeps running.
    let second = Mesh::try_up("e2eshop", &cfg.path).expect_err("second weft up refused");
    assert!(second.contains("already running"), "{second}");
    assert_eq!(http_get(mesh.ingress_port, "/").unwrap().0, 200);

    let app_pids: Vec<u64> = pods
        .iter()
        .filter_map(|p| p["app"]["pid"].as_u64())
        .collect();
    let down = mesh.down();
    assert!(down.contains("stopped and removed"), "{down}");
    for pid in app_pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still runs"
        );
    }
    assert_eq!(
        host_network_state(),
        before,
        "weft down left something behind"
    );
}

const FILES: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web, namespace: files, labels: {app: web}}
spec:
  command: [python3, -m, http.server, "8000", --bind, 0.0.0.0]
  workingDir: site
  ports: [{name: http, containerPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: files}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: files, labels: {app: client}}
spec:
  command: [sleep, "3600"]
"#;

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn a_python_server_is_a_workload_like_any_other() {
    let _serial = serial();
    let cfg = ConfigDir::new("files");
    cfg.write("mesh.yaml", &weft_e2e::network_yaml(2, "files.local"));
    cfg.write("files.yaml", FILES);
    std::fs::create_dir_all(cfg.path.join("site")).unwrap();
    cfg.write("site/hello.txt", "hello from python\n");
    let mesh = Mesh::up("e2efiles", &cfg.path);

    // From the client pod, by the Service's short name, captured by its sidecar.
    let out = mesh.weft(&[
        "exec",
        "client-0",
        "--",
        "curl",
        "-sS",
        "-m",
        "5",
        "http://web/hello.txt",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from python\n");

    mesh.eventually(
        "both sidecars logged the request",
        Duration::from_secs(5),
        || {
            let client = mesh.log("client-0", true);
            let server = mesh.log("web-0", true);
            client.contains(r#""direction":"outbound""#)
                && client.contains(r#""service":"files/web""#)
                && server.contains(r#""direction":"inbound""#)
                && server.contains(r#""path":"/hello.txt""#)
        },
    );
    // The server's sidecar counts it in its metrics.
    let pods = mesh.pods();
    let web: SocketAddr = format!("{}:15020", ip_of(&pods, "web-0")).parse().unwrap();
    let (status, metrics) = http_get_at(web, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("istio_requests_total{")
                && l.contains(r#"reporter="destination""#)
                && l.contains(r#"response_code="200""#)),
        "{metrics}"
    );
    // The app saw the request as the proxy delivered it.
    assert!(mesh.log("web-0", false).contains("GET /hello.txt"));
}

const FAULTS: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: ok, namespace: faults, labels: {app: ok}}
spec:
  command: [python3, -m, http.server, "8000", --bind, 0.0.0.0]
  ports: [{name: http, containerPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: ok, namespace: faults}
spec:
  selector: {app: ok}
  ports: [{name: http, port: 8000}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: faults, labels: {app: client}}
spec:
  command: [sleep, "3600"]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: crashy, namespace: faults, labels: {app: crashy}}
spec:
  command: [sh, -c, "echo boom >&2; exit 3"]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: ghost, namespace: faults, labels: {app: ghost}}
spec:
  command: [no-such-command-for-weft]
"#;

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn crashing_and_missing_programs_are_reported_and_the_rest_keeps_running() {
    let _serial = serial();
    let cfg = ConfigDir::new("faults");
    cfg.write("mesh.yaml", &weft_e2e::network_yaml(3, "faults.local"));
    cfg.write("faults.yaml", FAULTS);
    // Its broken pods are never ready: `weft up -d` fails, saying why for each.
    let (mesh, out) = Mesh::up_unready("e2efault", &cfg.path);
    let said = |pod: &str| {
        (out.lines())
            .find(|l| l.contains(&format!("pod faults/{pod}:")))
            .unwrap_or_else(|| panic!("no line for {pod}:\n{out}"))
            .to_string()
    };
    assert!(
        said("crashy-0").contains("app exited with status 3 (restarting"),
        "{out}"
    );
    assert!(
        said("ghost-0").contains("its command was not found"),
        "{out}"
    );
    assert!(!out.contains("pod faults/ok-0:"), "{out}");

    mesh.eventually("both broken pods restart", Duration::from_secs(10), || {
        let pods = mesh.pods();
        ["crashy-0", "ghost-0"]
            .iter()
            .all(|n| Mesh::pod(&pods, n)["app"]["restarts"].as_u64() >= Some(1))
    });
    let pods = mesh.pods();
    assert_eq!(
        Mesh::pod(&pods, "crashy-0")["app"]["lastExit"],
        "exited with status 3"
    );
    assert_eq!(
        Mesh::pod(&pods, "ghost-0")["app"]["lastExit"],
        "exited with status 127"
    );
    let log = mesh.up_log();
    assert!(
        log.contains("exited with status 3") && log.contains("boom"),
        "{log}"
    );
    assert!(log.contains("not found"), "{log}");
    let table = text(&mesh.weft(&["get", "pods"]));
    assert!(
        table.contains("CrashLoop(app: exited with status 3)"),
        "{table}"
    );

    // The healthy pod serves through its sidecar all along (over mTLS, from a mesh pod)...
    let serves = || {
        let out = mesh.weft(&[
            "exec",
            "client-0",
            "--",
            "curl",
            "-fsS",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "http://ok:8000/",
        ]);
        out.status.success()
    };
    assert!(serves(), "ok-0 serves");
    // ...and comes back when its app is killed.
    let pid = Mesh::pod(&pods, "ok-0")["app"]["pid"]
        .as_u64()
        .expect("ok-0 app pid");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    assert!(killed.unwrap().success());
    mesh.eventually("ok-0 restarted and ready", Duration::from_secs(10), || {
        let pods = mesh.pods();
        let app = &Mesh::pod(&pods, "ok-0")["app"];
        app["restarts"] == 1 && app["state"] == "ready"
    });
    mesh.eventually("ok-0 serves again", Duration::from_secs(10), serves);
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn a_config_error_stops_weft_up_before_anything_starts() {
    let _serial = serial();
    let before = host_network_state();
    let cfg = ConfigDir::new("bad");
    cfg.write("mesh.yaml", &weft_e2e::network_yaml(4, "bad.local"));
    cfg.write(
        "app.yaml",
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: app, namespace: bad}\nspec:\n  command: [sleep, \"60\"]\n  replcas: 2\n",
    );
    let out = weft(&["up", &cfg.path.display().to_string(), "--name", "e2ebad"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("app.yaml:6"), "names file and line: {said}");
    assert!(said.contains("did you mean `replicas`?"), "{said}");
    assert!(said.contains("nothing was started"), "{said}");
    assert_eq!(host_network_state(), before);
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn weft_down_cleans_up_after_a_crashed_weft_up() {
    let _serial = serial();
    let before = host_network_state();
    let cfg = ConfigDir::new("crash");
    cfg.write("mesh.yaml", &weft_e2e::network_yaml(5, "crash.local"));
    cfg.write("files.yaml", FILES);
    std::fs::create_dir_all(cfg.path.join("site")).unwrap();
    let mesh = Mesh::up("e2ecrash", &cfg.path);
    let pods = mesh.pods();
    let pids: Vec<u64> = pods
        .iter()
        .flat_map(|p| [p["app"]["pid"].as_u64(), p["proxy"]["pid"].as_u64()])
        .flatten()
        .collect();
    assert_eq!(pids.len(), 4, "{pods:?}");
    let lock = std::fs::read_to_string("/run/weft/e2ecrash/lock").unwrap();
    let owner = lock.trim().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &owner])
        .status();
    assert!(killed.unwrap().success());
    mesh.eventually("weft up is gone", Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{owner}")).exists()
    });
    // Its pods outlive it, until weft down finds and removes them.
    assert!(
        pids.iter()
            .all(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
    );
    let down = mesh.down();
    assert!(down.contains("left behind"), "{down}");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still runs"
        );
    }
    assert!(!std::path::Path::new("/run/weft/e2ecrash").exists());
    assert_eq!(host_network_state(), before, "leftovers after weft down");
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn ctrl_c_stops_each_app_before_its_proxy_and_removes_everything() {
    use std::io::{BufRead, BufReader};
    let _serial = serial();
    let before = host_network_state();
    let cfg = ConfigDir::new("sigint");
    cfg.write("mesh.yaml", &weft_e2e::network_yaml(6, "sigint.local"));
    cfg.write("files.yaml", FILES);
    std::fs::create_dir_all(cfg.path.join("site")).unwrap();
    let admin = format!("127.0.0.1:{}", weft_e2e::free_port());
    let mut up = std::process::Command::new(weft_e2e::weft_bin())
        .args([
            "up",
            &cfg.path.display().to_string(),
            "--name",
            "e2eint",
            "--admin",
            &admin,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("weft up starts");
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let up_now = line.contains(" is up");
        seen.push(line);
        if up_now {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("all pods ready")),
        "{seen:#?}"
    );
    let pid = up.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    seen.extend(lines.map_while(Result::ok));
    assert!(up.wait().unwrap().success(), "{seen:#?}");
    let at = |what: &str| {
        seen.iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no line with {what:?} in {seen:#?}"))
    };
    for pod in ["files/web-0", "files/client-0"] {
        assert!(
            at(&format!("pod {pod} app: stopped")) < at(&format!("pod {pod} proxy: stopped")),
            "the app of {pod} must stop before its proxy drains: {seen:#?}"
        );
    }
    // The control plane of the first revision (`control plane v0-1-0: stopped`).
    let control_stopped = seen
        .iter()
        .position(|l| l.contains("control plane v") && l.contains(": stopped"))
        .unwrap_or_else(|| panic!("the control plane did not stop: {seen:#?}"));
    assert!(at("proxy: stopped") < control_stopped, "{seen:#?}");
    assert!(
        seen.last()
            .unwrap()
            .contains("everything weft up created is removed"),
        "{seen:#?}"
    );
    assert!(!std::path::Path::new("/run/weft/e2eint").exists());
    assert_eq!(host_network_state(), before, "Ctrl-C left something behind");
}

#[test]
#[ignore = "needs root: it drops to an ordinary user to check what weft up says"]
fn as_an_ordinary_user_weft_up_says_what_it_needs() {
    let cfg = ConfigDir::new("nonroot");
    cfg.write("mesh.yaml", &weft_e2e::network_yaml(7, "nonroot.local"));
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(weft_e2e::weft_bin())
        .args(["up", &cfg.path.display().to_string(), "--name", "e2euser"])
        .output()
        .expect("setpriv runs");
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("needs root") && said.contains("CAP_NET_ADMIN"),
        "{said}"
    );
    assert!(!std::path::Path::new("/run/weft/e2euser").exists());
}

/// The address at `v` (a JSON string), parsed.
fn addr(v: &serde_json::Value) -> SocketAddr {
    v.as_str()
        .unwrap_or_else(|| panic!("not an address: {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn weft_up_reports_every_address_it_really_bound() {
    let _serial = serial();
    let cfg = weft_e2e::shop("tcbound", 60);
    let mesh = Mesh::up("tcbound", &cfg.path);
    let bound = mesh.bound();

    // The control plane: the admin asked for, and a plaintext port chosen by the kernel
    // (launched as 127.0.0.1:0), both answering.
    let control = &bound["control"];
    assert_eq!(addr(&control["admin"]).port(), mesh.admin_port, "{bound}");
    let plain = addr(&control["discovery"]);
    assert!(plain.ip().is_loopback() && plain.port() != 0, "{bound}");
    std::net::TcpStream::connect(plain).expect("plaintext discovery accepts");
    let secure = addr(&control["secureDiscovery"]);
    std::net::TcpStream::connect(secure).expect("mTLS discovery accepts");
    assert!(
        mesh.up_output.contains(&format!(
            "admin http://{}/debug/syncz",
            addr(&control["admin"])
        )),
        "{}",
        mesh.up_output
    );

    // Every pod, with its sidecar's addresses when it has one; those answer.
    let pods = mesh.pods();
    let reported = bound["pods"].as_array().expect("pods");
    assert_eq!(reported.len(), pods.len(), "{bound}");
    for pod in &pods {
        let name = pod["name"].as_str().unwrap();
        let r = reported
            .iter()
            .find(|p| p["name"] == name && p["namespace"] == pod["namespace"])
            .unwrap_or_else(|| panic!("pod {name} not in {bound}"));
        assert_eq!(r["ip"], pod["ip"], "{name}");
        if pod["sidecar"] == true {
            let proxy = &r["proxy"];
            let readiness = addr(&proxy["readiness"]);
            let (status, _) = http_get_at(readiness, "/healthz/ready").expect("readiness");
            assert_eq!(status, 200, "{name}: {readiness}");
            assert_eq!(
                readiness.ip().to_string(),
                pod["ip"],
                "{name}: at the pod's address"
            );
            assert_eq!(addr(&proxy["inbound"]).port(), 15006, "{name}");
            assert_eq!(addr(&proxy["outbound"]).port(), 15001, "{name}");
        } else {
            assert!(r["proxy"].is_null(), "{name} has no sidecar: {r}");
        }
    }
    assert!(
        pods.iter().any(|p| p["sidecar"] == false),
        "the shop's outsider has no sidecar"
    );

    // The ingress gateway: its listener on the chosen port, and an admin port the kernel chose.
    let gateway = &bound["gateways"][0]["proxy"];
    let listener = addr(&gateway["listeners"][0][1]);
    assert_eq!(listener.port(), mesh.ingress_port, "{bound}");
    let (status, _) = http_get_at(addr(&gateway["readiness"]), "/healthz/ready").expect("ready");
    assert_eq!(status, 200);
    let admin = addr(&gateway["admin"]);
    assert!(admin.ip().is_loopback() && admin.port() != 0, "{bound}");
    std::net::TcpStream::connect(admin).expect("gateway admin accepts");

    mesh.down();
    assert!(
        !std::path::Path::new("/run/weft/tcbound").exists(),
        "weft down removes the runtime directory and its bound.json"
    );
}
