//! Gateway API mesh semantics on a real `weft up` mesh: an HTTPRoute whose Service parentRef
//! names no port, with a backend that does not exist, is served (not rejected): the route
//! applies to the Service's HTTP port, the missing backend's share of requests gets 500 naming
//! it, and the Service's TCP port is left alone. Needs root (CI runs it with
//! `--include-ignored`).

use weft_e2e::{ConfigDir, Mesh, serial, text};

const N: u8 = 15;

/// One app with an HTTP port (8080) and a TCP echo port (9000). Its HTTP answers are
/// HTTP/1.0 without a length: every one must still arrive whole.
const SERVER: &str = r#"
import socket, socketserver, threading
from http.server import BaseHTTPRequestHandler, HTTPServer

class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(4096)
            if not data:
                return
            self.request.sendall(data)

# HTTP/1.0 with the body delimited by closing, as Python's http.server answers by default.
class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello from web\n")
    def log_message(self, *args):
        pass

socketserver.ThreadingTCPServer.allow_reuse_address = True
tcp = socketserver.ThreadingTCPServer(("0.0.0.0", 9000), Echo)
threading.Thread(target=tcp.serve_forever, daemon=True).start()
HTTPServer(("0.0.0.0", 8080), Hello).serve_forever()
"#;

const CLIENT: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], 9000), timeout=5)
s.sendall(b"\x00\x01 not http at all")
print(s.recv(64))
"#;

fn config(dir: &ConfigDir) -> String {
    format!(
        r#"apiVersion: weft.dev/v1alpha1
kind: Mesh
metadata: {{name: mesh}}
spec:
  trustDomain: gamma.local
  network: {{podCidr: 198.19.{N}.0/25, serviceCidr: 198.19.{N}.128/25}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: web, namespace: shop, labels: {{app: web}}}}
spec:
  command: [python3, "{server}"]
  ports: [{{name: http, containerPort: 8080}}, {{name: echo, containerPort: 9000}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  selector: {{app: web}}
  ports:
  - {{name: http, port: 8080, targetPort: 8080}}
  - {{name: echo, port: 9000, targetPort: 9000, appProtocol: tcp}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {{name: client, namespace: shop, labels: {{app: client}}}}
spec:
  command: [sleep, "3600"]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web-split, namespace: shop}}
spec:
  parentRefs: [{{group: "", kind: Service, name: web}}]
  rules:
  - backendRefs:
    - {{name: web, port: 8080, weight: 50}}
    - {{name: ghost, port: 8080, weight: 50}}
"#,
        server = dir.path.join("server.py").display()
    )
}

#[test]
#[ignore = "needs root: weft up creates network namespaces, links and capture rules"]
fn a_portless_parent_ref_with_a_missing_backend_is_served_as_gateway_api_says() {
    let _serial = serial();
    let cfg = ConfigDir::new("gamma");
    cfg.write("server.py", SERVER);
    cfg.write("client.py", CLIENT);
    cfg.write("mesh.yaml", &config(&cfg));

    // The analyzer warns, and does not block.
    let out = weft_e2e::weft(&["analyze", &cfg.path.display().to_string()]);
    let said = text(&out);
    assert!(out.status.success(), "analyze blocks the config:\n{said}");
    assert!(
        said.contains("WEFT0103") && said.contains("ghost"),
        "{said}"
    );

    let mesh = Mesh::up("e2egamma", &cfg.path);
    let (mut ok, mut missing) = (0, 0);
    for _ in 0..40 {
        let out = mesh.weft(&[
            "exec",
            "client-0",
            "--",
            "curl",
            "-sS",
            "-m",
            "5",
            "-i",
            "http://web:8080/",
        ]);
        let answer = String::from_utf8_lossy(&out.stdout).to_lowercase();
        let status = answer.split_whitespace().nth(1).unwrap_or_default();
        if status == "200" {
            assert!(answer.contains("hello from web"), "{answer}");
            ok += 1;
        } else if status == "500" {
            assert!(
                answer.contains("weft-error: no-backend") && answer.contains("shop/ghost:8080"),
                "{answer}"
            );
            missing += 1;
        } else {
            panic!(
                "neither the backend nor the missing one's 500: {}",
                text(&out)
            );
        }
    }
    assert!(
        ok > 0 && missing > 0,
        "both shares served: {ok} ok, {missing} 500"
    );

    // The TCP port of the same Service: the HTTP route does not apply, bytes pass as they are.
    let client = cfg.path.join("client.py").display().to_string();
    let out = mesh.weft(&["exec", "client-0", "--", "python3", &client, "web"]);
    let echoed = text(&out);
    assert!(echoed.contains(r"\x00\x01 not http at all"), "{echoed}");
}
