//! `weft restart NODE` on a real `weft up` mesh: a node proxy restarted by hand-off while a
//! client keeps making HTTP requests through both node proxies and another holds one long
//! connection open. No request fails, the long connection keeps exchanging data and closes
//! cleanly, the old process exits by itself once it is drained, and the new one serves. A
//! binary that cannot start fails clearly and leaves the old process serving. Needs root (CI
//! runs it with `--include-ignored`).

use std::time::Duration;

use weft_e2e::{ConfigDir, ECHO, Mesh, echo_pair_yaml, serial, signal, text, weft_bin};

const T: Duration = Duration::from_secs(30);

const MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec:
  trustDomain: restart.local
  network:
    nodes: 2
    podCidr: 198.19.76.0/25
    serviceCidr: 198.19.76.128/25
---
apiVersion: v1
kind: Namespace
metadata: {name: rs, labels: {weft.dev/dataplane-mode: ambient}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: server, namespace: rs, labels: {app: server}}
spec:
  command: [python3, -m, http.server, "8000", --bind, 0.0.0.0]
  workingDir: site
  nodeName: node-1
  ports: [{containerPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: server, namespace: rs}
spec: {selector: {app: server}, ports: [{name: http, port: 80, targetPort: 8000}]}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: client, namespace: rs, labels: {app: client}}
spec:
  command: [sh, -c, "while true; do curl -s -o /dev/null -m 5 -w '%{http_code}\\n' http://server/hello.txt; sleep 0.1; done"]
  nodeName: node-2
"#;

/// Session after session, one connection to echo each: round trips every 100 ms ("sK ok N")
/// until the file `close-K` appears, then a clean close ("sK closed"). A broken connection is
/// the end.
const STEADY: &str = r#"
import os, socket, sys, time
def connect():
    while True:
        try:
            s = socket.create_connection(("echo", 9000), timeout=5)
            f = s.makefile("rwb")
            f.write(b"hello\n"); f.flush()
            if f.readline() == b"hello\n":
                return s, f
            s.close()
        except OSError:
            pass
        time.sleep(0.2)
k = 0
while True:
    k += 1
    s, f = connect()
    n = 0
    while not os.path.exists("close-%d" % k):
        n += 1
        try:
            f.write(b"ping %d\n" % n); f.flush()
            if f.readline() != b"ping %d\n" % n:
                raise Exception("wrong answer")
        except Exception as e:
            print("s%d broken after %d: %s" % (k, n, e)); sys.exit(1)
        print("s%d ok %d" % (k, n))
        time.sleep(0.1)
    f.close(); s.close()
    print("s%d closed after %d" % (k, n))
"#;

/// The pid of `node`'s proxy and its state, from the instance's status.
fn node_proxy(name: &str, node: &str) -> (Option<u64>, String) {
    let path = format!("/run/weft/{name}/status.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let status: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let n = status["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["name"] == node))
        .unwrap_or_else(|| panic!("no node {node} in {status}"));
    let p = &n["process"];
    (p["pid"].as_u64(), p["state"].as_str().unwrap_or("").into())
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| !r.starts_with(" Z")))
}

struct Shop<'a> {
    mesh: &'a Mesh,
    cfg: &'a ConfigDir,
}

impl Shop<'_> {
    /// The client's answers from its first success on: every one must be 200.
    fn answers(&self) -> Vec<String> {
        let log = self.mesh.log("client-0", false);
        let lines: Vec<String> = log.lines().map(str::to_string).collect();
        let first = lines.iter().position(|l| l == "200").unwrap_or(lines.len());
        lines[first..].to_vec()
    }

    fn assert_no_failed_request(&self) {
        let answers = self.answers();
        let failed: Vec<&String> = answers.iter().filter(|l| *l != "200").collect();
        assert!(
            failed.is_empty(),
            "{} of {} requests failed: {failed:?}\nup.log:\n{}",
            failed.len(),
            answers.len(),
            self.mesh.up_log()
        );
    }

    /// More successful requests than now.
    fn more_requests(&self, n: usize) {
        let seen = self.answers().len();
        self.mesh.eventually(&format!("{n} more requests"), T, || {
            self.answers().len() >= seen + n
        });
        self.assert_no_failed_request();
    }

    /// Waits until `f` holds; shows up.log and `node`'s proxy log otherwise.
    fn wait(&self, what: &str, node: &str, mut f: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + T;
        while !f() {
            if std::time::Instant::now() > deadline {
                let log = text(&self.mesh.weft(&["logs", node]));
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "{what}: not within {T:?}\nup.log:\n{}\n{node} (last lines, newest first):\n{}",
                    self.mesh.up_log(),
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn steady(&self) -> String {
        self.mesh.log("steady-0", false)
    }

    fn rounds(&self, session: u32) -> usize {
        let prefix = format!("s{session} ok ");
        self.steady()
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }

    /// More round trips on the long connection of `session` than now.
    fn more_rounds(&self, session: u32, n: usize) {
        let seen = self.rounds(session);
        self.mesh.eventually(
            &format!("session {session}: {n} more round trips"),
            T,
            || self.rounds(session) >= seen + n,
        );
        let log = self.steady();
        assert!(!log.contains("broken"), "{log}");
    }

    /// Closes the long connection of `session`; waits until steady says it closed cleanly.
    fn close(&self, session: u32) {
        self.cfg.write(&format!("close-{session}"), "");
        self.mesh
            .eventually(&format!("session {session} closes"), T, || {
                self.steady().contains(&format!("s{session} closed after"))
            });
        let log = self.steady();
        assert!(!log.contains("broken"), "{log}");
    }

    /// `weft restart NODE`, which must succeed; the old pid, and the new one.
    fn restart(&self, node: &str) -> (u64, u64) {
        let (old, state) = node_proxy(&self.mesh.name, node);
        let old = old.expect("the node proxy runs");
        assert_eq!(state, "ready");
        let out = self.mesh.weft(&["restart", node]);
        let said = text(&out);
        assert!(out.status.success(), "weft restart {node}: {said}");
        assert!(
            said.contains(&format!(
                "node proxy {node} restarted by hand-off: pid {old} → pid"
            )),
            "{said}"
        );
        assert!(said.contains("handed over"), "{said}");
        let (new, state) = node_proxy(&self.mesh.name, node);
        let new = new.expect("a new node proxy");
        assert_ne!(new, old);
        assert!(said.contains(&format!("→ pid {new};")), "{said}");
        assert_eq!(state, "ready", "the status shows the new process ready");
        assert!(alive(new));
        (old, new)
    }
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn a_node_proxy_restarts_by_hand_off_without_a_failed_request_or_a_reset() {
    let _serial = serial();
    let cfg = ConfigDir::new("restart");
    cfg.write("mesh.yaml", &(MESH.to_string() + &echo_pair_yaml("rs")));
    cfg.write("echo.py", ECHO);
    cfg.write("steady.py", STEADY);
    std::fs::create_dir_all(cfg.path.join("site")).unwrap();
    cfg.write("site/hello.txt", "hello\n");
    let mesh = Mesh::up("e2erest", &cfg.path);
    let shop = Shop {
        mesh: &mesh,
        cfg: &cfg,
    };
    shop.more_requests(3);
    shop.more_rounds(1, 3);

    // The server's node: the long connection lives in its old process's tunnel listener.
    let (old1, new1) = shop.restart("node-1");
    shop.more_rounds(1, 5);
    shop.more_requests(5);
    shop.close(1);
    mesh.eventually("node-1's old proxy exits once drained", T, || !alive(old1));
    // The new process serves new connections: a new session and more requests.
    shop.more_rounds(2, 3);
    shop.more_requests(5);

    // The client's node: the long connection lives in its old process's outbound side.
    let (old2, new2) = shop.restart("node-2");
    shop.more_rounds(2, 5);
    shop.more_requests(5);
    shop.close(2);
    mesh.eventually("node-2's old proxy exits once drained", T, || !alive(old2));
    shop.more_rounds(3, 3);
    shop.more_requests(5);

    // A binary that cannot start: a clear failure, and the running process serves on.
    let out = mesh.weft(&["restart", "node-1", "--binary", "/nonexistent"]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("node proxy node-1 not restarted: cannot start /nonexistent"),
        "{said}"
    );
    assert_eq!(
        node_proxy("e2erest", "node-1"),
        (Some(new1), "ready".into())
    );
    assert!(alive(new1) && alive(new2));
    assert!(
        !mesh.up_log().contains("restarting now"),
        "no restart counted a crash so far:\n{}",
        mesh.up_log()
    );
    shop.more_rounds(3, 3);
    shop.more_requests(5);

    // An upgrade: another executable takes over, and stays the node proxy's.
    let next = cfg.path.join("weft-next");
    std::fs::copy(weft_bin(), &next).unwrap();
    let out = mesh.weft(&["restart", "node-2", "--binary", &next.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let (upgraded, _) = node_proxy("e2erest", "node-2");
    let exe = std::fs::read_link(format!("/proc/{}/exe", upgraded.unwrap())).unwrap();
    assert_eq!(exe, next);
    shop.more_rounds(3, 3);
    shop.more_requests(5);

    // A crash is restarted as before: the new process finds nobody on the hand-off path.
    signal(new1, "KILL");
    mesh.eventually(
        "node-1's proxy is restarted after its crash",
        T,
        || matches!(node_proxy("e2erest", "node-1"), (Some(p), s) if p != new1 && s == "ready"),
    );
    let served = shop.answers().len();
    shop.wait("requests succeed again after the crash", "node-1", || {
        let answers = shop.answers();
        answers.len() > served + 5 && answers[answers.len() - 5..].iter().all(|a| a == "200")
    });

    // A node that does not exist, and the restarts in up.log.
    let out = mesh.weft(&["restart", "node-9"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no node \"node-9\""), "{}", text(&out));
    let log = mesh.up_log();
    for line in [
        format!("node proxy node-1: handed off from pid {old1} to pid {new1}"),
        format!(
            "node proxy node-1: previous process (pid {old1}) drained and exited with status 0"
        ),
        format!("node proxy node-2: handed off from pid {old2} to pid {new2}"),
        "node proxy node-1: hand-off failed: cannot start /nonexistent".to_string(),
    ] {
        assert!(log.contains(&line), "up.log lacks {line:?}:\n{log}");
    }
    assert!(
        log.contains("node proxy node-1: killed by signal SIGKILL"),
        "{log}"
    );
    let down = mesh.down();
    assert!(down.contains("stopped and removed"), "{down}");
}
