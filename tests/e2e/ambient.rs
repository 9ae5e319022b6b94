//! Ambient mode on a real `weft up` mesh: the shop served with no sidecar at all, pods on two
//! nodes talking over mTLS each with its own identity, and pods switched between modes while
//! they serve, without restarting their apps. Needs root (CI runs it with `--include-ignored`).

use std::time::Duration;

use weft_e2e::{
    ConfigDir, ECHO, Mesh, echo_pair_yaml, host_network_state, http_get, http_get_at,
    proxy_processes, serial, text, weft,
};
use weft_test_support::exposition::parse_text_0_0_4;

const T: Duration = Duration::from_secs(30);

/// The proxies of instance `name` by role: (node proxies, gateways, waypoints, sidecars).
fn proxies_by_role(name: &str) -> (usize, usize, usize, usize) {
    let all = proxy_processes(name);
    let has = |args: &Vec<String>, flag: &str| args.iter().any(|a| a == flag);
    let nodes = all.iter().filter(|a| has(a, "--node")).count();
    let gateways = all.iter().filter(|a| has(a, "--gateway")).count();
    let waypoints = all.iter().filter(|a| has(a, "--waypoint")).count();
    (
        nodes,
        gateways,
        waypoints,
        all.len() - nodes - gateways - waypoints,
    )
}

/// A node proxy's log lines that are access-log records of `direction` with `peer_identity`.
fn records(log: &str, direction: &str, peer: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!(r#""direction":"{direction}""#)))
        .filter(|l| l.contains(&format!(r#""peer_identity":"{peer}""#)))
        .count()
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn the_ambient_shop_is_served_through_the_ingress_with_no_sidecar() {
    let _serial = serial();
    let before = host_network_state();
    let cfg = ConfigDir::new("shopamb").with_example("shop-ambient");
    let mesh_yaml = std::fs::read_to_string(cfg.path.join("mesh.yaml")).unwrap();
    cfg.write(
        "mesh.yaml",
        &mesh_yaml.replace(
            "    nodes: 2",
            "    nodes: 2\n    podCidr: 198.19.71.0/25\n    serviceCidr: 198.19.71.128/25",
        ),
    );
    let mesh = Mesh::up("e2eamb", &cfg.path);
    assert!(
        mesh.up_output.contains(
            "7 pods: 0 with a sidecar, 6 ambient (node-1: 3, node-2: 3), none without a proxy, 1 waypoint"
        ),
        "{}",
        mesh.up_output
    );

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

    // Every pod ambient, on a node, served by that node's proxy before its app started.
    let pods = mesh.pods();
    assert_eq!(pods.len(), 7, "{pods:?}");
    let waypoint = Mesh::pod(&pods, "waypoint-0");
    assert_eq!(waypoint["mode"], "waypoint", "{waypoint}");
    for p in pods.iter().filter(|p| p["mode"] != "waypoint") {
        let name = &p["name"];
        assert_eq!(p["mode"], "ambient", "{name}: {p}");
        assert!(
            p["node"] == "node-1" || p["node"] == "node-2",
            "{name}: {p}"
        );
        assert_eq!(p["servedBy"], p["node"], "{name}: {p}");
        assert!(
            p["proxy"]["pid"].is_null(),
            "{name} has no proxy process: {p}"
        );
        let served = p["proxy"]["readyAtMs"].as_u64().expect("served time");
        let started = p["app"]["startedAtMs"].as_u64().expect("app start time");
        assert!(
            started >= served,
            "{name} started its app at {started} before its node proxy served it at {served}"
        );
    }
    let table = text(&mesh.weft(&["get", "pods"]));
    assert!(
        table.contains("MODE") && table.contains("ambient") && table.contains("node proxy node-2"),
        "{table}"
    );
    assert!(table.contains("2/2"), "{table}");
    let admin = format!("127.0.0.1:{}", mesh.admin_port);
    let status = text(&weft(&["status", "--admin", &admin]));
    for node in ["node node-1", "node node-2"] {
        assert!(status.contains(node), "{status}");
    }

    // No sidecar runs: two node proxies, the gateway and pricing's waypoint are the only proxies.
    assert_eq!(proxies_by_role("e2eamb"), (2, 1, 1, 0));
    let logs = std::fs::read_dir("/run/weft/e2eamb/logs/shop").unwrap();
    let proxy_logs: Vec<String> = logs
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".proxy.log"))
        .collect();
    assert!(proxy_logs.is_empty(), "{proxy_logs:?}");
    // The node proxies really carried the calls: each logged its pods' certificates.
    let node1 = text(&mesh.weft(&["logs", "node-1"]));
    assert!(node1.contains("workload certificate installed"), "{node1}");
    // Every proxy's metrics page (node proxies, gateway, waypoint: those targets.json lists
    // for Prometheus) reads whole with a strict text 0.0.4 parser.
    let targets = format!("/run/weft/{}/prometheus/targets.json", mesh.name);
    let targets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&targets).expect("targets.json")).unwrap();
    let mut roles = Vec::new();
    for t in targets.as_array().expect("a list") {
        let addr = t["targets"][0].as_str().expect("an address");
        let (status, page) = http_get_at(addr.parse().unwrap(), "/metrics").expect(addr);
        assert_eq!(status, 200, "{addr}: {page}");
        let families = parse_text_0_0_4(&page).unwrap_or_else(|e| panic!("{addr}: {e}"));
        assert_eq!(families.lines().count(), page.matches("# TYPE ").count());
        roles.push(t["labels"]["role"].as_str().unwrap_or_default().to_string());
    }
    roles.sort();
    roles.dedup();
    assert_eq!(roles, ["gateway", "node", "waypoint"], "{targets}");

    let down = mesh.down();
    assert!(down.contains("stopped and removed"), "{down}");
    assert_eq!(proxies_by_role("e2eamb"), (0, 0, 0, 0));
    assert_eq!(
        host_network_state(),
        before,
        "weft down left something behind"
    );
}

const TWO_NODES: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec:
  trustDomain: nodes.local
  network: {podCidr: 198.19.72.0/25, serviceCidr: 198.19.72.128/25, nodes: 2}
---
apiVersion: v1
kind: Namespace
metadata: {name: id, labels: {weft.dev/dataplane-mode: ambient}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: server, namespace: id, labels: {app: server}}
spec:
  command: [python3, -m, http.server, "8000", --bind, 0.0.0.0]
  workingDir: site
  serviceAccountName: server
  nodeName: node-1
  ports: [{name: http, containerPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: id}
spec: {selector: {app: server}, ports: [{name: http, port: 80, targetPort: http}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: id, labels: {app: client}}
spec: {command: [sleep, "3600"], serviceAccountName: client, nodeName: node-2}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: stranger, namespace: id, labels: {app: stranger}}
spec: {command: [sleep, "3600"], serviceAccountName: stranger, nodeName: node-2}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: server, namespace: id}
spec:
  selector: {matchLabels: {app: server}}
  rules: [{from: [{source: {principals: ["spiffe://nodes.local/ns/id/sa/client"]}}]}]
"#;

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn pods_on_two_nodes_talk_over_mtls_each_with_its_own_identity() {
    let _serial = serial();
    let cfg = ConfigDir::new("twonodes");
    cfg.write("mesh.yaml", TWO_NODES);
    std::fs::create_dir_all(cfg.path.join("site")).unwrap();
    cfg.write("site/hello.txt", "hello across nodes\n");
    let mesh = Mesh::up("e2enodes", &cfg.path);

    let pods = mesh.pods();
    assert_eq!(Mesh::pod(&pods, "server-0")["node"], "node-1");
    assert_eq!(Mesh::pod(&pods, "client-0")["node"], "node-2");
    let get = |pod: &str, url: &str| mesh.exec(pod, &["curl", "-sS", "-m", "5", url]);
    let out = get("client-0", "http://server/hello.txt");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello across nodes\n");
    // To the server's own address, the client's end names whom it reached.
    let server_ip = Mesh::pod(&pods, "server-0")["ip"]
        .as_str()
        .unwrap()
        .to_string();
    let direct = format!("http://{server_ip}:8000/hello.txt");
    assert!(get("client-0", &direct).status.success());

    // Each end saw the other's own identity: node-2 (the client's) the server's certificate,
    // node-1 (the server's) the client's; neither is the node's own.
    let server_id = "spiffe://nodes.local/ns/id/sa/server";
    let client_id = "spiffe://nodes.local/ns/id/sa/client";
    mesh.eventually("both node proxies logged the connections", T, || {
        let node1 = text(&mesh.weft(&["logs", "node-1"]));
        let node2 = text(&mesh.weft(&["logs", "node-2"]));
        records(&node2, "outbound", server_id) >= 1 && records(&node1, "inbound", client_id) >= 2
    });
    let node1 = text(&mesh.weft(&["logs", "node-1"]));
    let node_id = "spiffe://nodes.local/ns/weft-system/sa/weft-node";
    assert_eq!(records(&node1, "inbound", node_id), 0, "{node1}");
    // The node proxy holds each pod's own certificate besides its own.
    for id in [server_id, node_id] {
        assert!(
            node1
                .lines()
                .any(|l| l.contains("workload certificate installed") && l.contains(id)),
            "{id}: {node1}"
        );
    }
    // `weft proxy-config` reads them back from the node proxy: the server served by node-1
    // with its own identity, certificate and policy; its certificate as for a sidecar; and the
    // Service the client's node proxy holds.
    let table = text(&mesh.weft(&["proxy-config", "workloads", "node-1"]));
    let row = table.lines().find(|l| l.starts_with("id/server-0"));
    let row = row.unwrap_or_else(|| panic!("no server-0 in {table}"));
    for part in ["served", server_id, "left", "id/server"] {
        assert!(row.contains(part), "{part}: {table}");
    }
    let secret = text(&mesh.weft(&["proxy-config", "secret", "server-0"]));
    assert!(
        secret.contains(&format!("SPIFFE ID:  {server_id}")),
        "{secret}"
    );
    let services = text(&mesh.weft(&["proxy-config", "services", "client-0"]));
    assert!(services.contains("id/server"), "{services}");

    // The stranger, on the client's node, is itself: the server's policy turns it away.
    let out = get("stranger-0", "http://server/hello.txt");
    assert!(!out.status.success(), "{}", text(&out));
    let stranger_id = "spiffe://nodes.local/ns/id/sa/stranger";
    mesh.eventually("node-1 denied the stranger by its identity", T, || {
        let node1 = text(&mesh.weft(&["logs", "node-1"]));
        node1.lines().any(|l| {
            l.contains(r#""error":"denied""#)
                && l.contains(&format!(r#""peer_identity":"{stranger_id}""#))
        })
    });
    // And the client still gets in.
    assert!(get("client-0", "http://server/hello.txt").status.success());
}

const SWITCH_MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec:
  trustDomain: switch.local
  network: {podCidr: 198.19.73.0/25, serviceCidr: 198.19.73.128/25, nodes: 2}
---
apiVersion: v1
kind: Namespace
metadata: {name: sw, labels: {weft.dev/dataplane-mode: ambient}}
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: sw}
spec: {selector: {app: server}, ports: [{name: http, port: 80, targetPort: 8000}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: sw, labels: {app: client}}
spec:
  command: [sh, -c, "while true; do curl -s -o /dev/null -m 2 -w '%{http_code}\\n' http://server/hello.txt; sleep 0.2; done"]
  nodeName: node-2
"#;

/// Keeps one connection to echo (once a first round trip works: echo may not be ready yet)
/// and says each round trip; a broken connection is the end.
const STEADY: &str = r#"
import socket, sys, time
def connect():
    while True:
        try:
            f = socket.create_connection(("echo", 9000), timeout=5).makefile("rwb")
            f.write(b"hello\n"); f.flush()
            if f.readline() == b"hello\n":
                return f
        except OSError:
            pass
        time.sleep(0.2)
f = connect()
n = 0
while True:
    n += 1
    try:
        f.write(b"ping %d\n" % n); f.flush()
        if f.readline() != b"ping %d\n" % n:
            raise Exception("wrong answer")
    except Exception as e:
        print("broken after %d: %s" % (n, e)); sys.exit(1)
    print("ok %d" % n)
    time.sleep(0.1)
"#;

/// The server Workload, in `mode` (None: the namespace's, ambient).
fn server(mode: Option<&str>) -> String {
    let label = mode.map_or(String::new(), |m| format!(", weft.dev/dataplane-mode: {m}"));
    format!(
        r#"apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: server, namespace: sw, labels: {{app: server{label}}}}}
spec:
  command: [python3, -m, http.server, "8000", --bind, 0.0.0.0]
  workingDir: site
  nodeName: node-1
  ports: [{{containerPort: 8000}}]
"#
    )
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn pods_switch_modes_live_and_keep_serving_without_touching_the_others() {
    let _serial = serial();
    let cfg = ConfigDir::new("switch");
    cfg.write(
        "mesh.yaml",
        &(SWITCH_MESH.to_string() + &echo_pair_yaml("sw")),
    );
    cfg.write("server.yaml", &server(None));
    cfg.write("echo.py", ECHO);
    cfg.write("steady.py", STEADY);
    std::fs::create_dir_all(cfg.path.join("site")).unwrap();
    cfg.write("site/hello.txt", "hello\n");
    let mesh = Mesh::up("e2eswit", &cfg.path);

    let pods = mesh.pods();
    let pid = |pods: &[serde_json::Value], name: &str| Mesh::pod(pods, name)["app"]["pid"].clone();
    let (server_pid, steady_pid, echo_pid) = (
        pid(&pods, "server-0"),
        pid(&pods, "steady-0"),
        pid(&pods, "echo-0"),
    );
    assert_eq!(Mesh::pod(&pods, "server-0")["mode"], "ambient");
    let client_log = || mesh.log("client-0", false);
    let steady_rounds = || {
        mesh.log("steady-0", false)
            .lines()
            .filter(|l| l.starts_with("ok "))
            .count()
    };
    mesh.eventually("the client's requests succeed", T, || {
        client_log().lines().any(|l| l == "200")
    });
    mesh.eventually("steady's connection carries round trips", T, || {
        steady_rounds() > 3
    });

    // (mode to switch to, what the server's status says once it is done)
    let switches: [(Option<&str>, &str, &str); 4] = [
        (Some("none"), "none", "none"),
        (None, "ambient", "ready"),
        (Some("sidecar"), "sidecar", "ready"),
        (None, "ambient", "ready"),
    ];
    for (label, mode, proxy) in switches {
        cfg.write("server.yaml", &server(label));
        mesh.eventually(&format!("server-0 switched to {mode}"), T, || {
            let pods = mesh.pods();
            let s = Mesh::pod(&pods, "server-0");
            s["mode"] == mode && s["proxy"]["state"] == proxy
        });
        // Requests succeed again after the switch.
        let seen = client_log().lines().count();
        mesh.eventually(&format!("requests succeed again in mode {mode}"), T, || {
            client_log()
                .lines()
                .skip(seen)
                .filter(|l| *l == "200")
                .count()
                >= 3
        });
        let pods = mesh.pods();
        let s = Mesh::pod(&pods, "server-0");
        assert_eq!(s["app"]["pid"], server_pid, "the app kept running: {s}");
        assert_eq!(s["app"]["restarts"], 0, "{s}");
        let served = s["servedBy"].as_str();
        match mode {
            "ambient" => assert_eq!(served, Some("node-1"), "{s}"),
            _ => assert_eq!(served, None, "{s}"),
        }
        let sidecars = proxy_processes("e2eswit")
            .iter()
            .filter(|a| !a.iter().any(|x| x == "--node"))
            .count();
        assert_eq!(sidecars, usize::from(mode == "sidecar"), "in mode {mode}");
        // The other pods were not touched: the same apps, the same connection, still going.
        let rounds = steady_rounds();
        mesh.eventually("steady keeps going", T, || steady_rounds() > rounds + 3);
        assert_eq!(pid(&pods, "steady-0"), steady_pid);
        assert_eq!(pid(&pods, "echo-0"), echo_pid);
        assert_eq!(
            Mesh::pod(&pods, "steady-0")["app"]["restarts"],
            0,
            "{}",
            mesh.log("steady-0", false)
        );
        assert_eq!(Mesh::pod(&pods, "echo-0")["servedBy"], "node-1");
    }
    let steady = mesh.log("steady-0", false);
    assert!(!steady.contains("broken"), "{steady}");
    let up = mesh.up_log();
    for line in [
        "switched pod sw/server-0: ambient → none",
        "switched pod sw/server-0: none → ambient",
        "switched pod sw/server-0: ambient → sidecar",
        "switched pod sw/server-0: sidecar → ambient",
    ] {
        assert!(up.contains(line), "{line:?} not in:\n{up}");
    }

    // An invalid change changes nothing and says why.
    cfg.write(
        "server.yaml",
        &server(Some("sidecar")).replace("nodeName", "nodeNmae"),
    );
    mesh.eventually("the invalid change is reported", T, || {
        mesh.up_log().contains("not applied to the pods")
    });
    let pods = mesh.pods();
    assert_eq!(Mesh::pod(&pods, "server-0")["mode"], "ambient");
}
