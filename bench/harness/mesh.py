"""The benchmark mesh: one `weft up` holding every scenario's pods, so they share the machine.

Pods (namespace `bench`):
  client-0      dataplane none   the load generator for `direct`, `haproxy` and peers
  client-mesh-0 sidecar          the load generator for `weft-sidecar`
  nginx-0       none             the backend for `direct`, `haproxy` and peers
  nginx-mesh-0  sidecar          the backend for `weft-sidecar` (Service nginx-mesh)
  haproxy-0     none             HAProxy in front of nginx-0
  iperf-0, iperf-mesh-0          iperf3 servers (none / sidecar) for the bulk TCP run
  peer-NAME-0   none             one pod per --peer, in front of nginx-0
  client-amb-0  ambient, node-1  the load generator for `weft-ambient` and `weft-ambient-waypoint`
  nginx-amb-0   ambient, node-2  the backend for `weft-ambient` (Service nginx-amb, L4)
  nginx-wp-0    ambient, node-2  the backend for `weft-ambient-waypoint` (Service nginx-wp, whose
                                 traffic passes the waypoint, HTTP routing on there)
  waypoint-0    waypoint         the waypoint Gateway's pod
  iperf-amb-0   ambient, node-2  iperf3 server for the ambient bulk TCP run
"""

import json
import os
import subprocess
import time

NAMESPACE = "bench"
# Inside 198.18.0.0/15 and apart from the ranges tests and CI use (198.19.1-5.x, 198.18.0.0/16).
POD_CIDR = "198.19.200.0/25"
SERVICE_CIDR = "198.19.200.128/25"
BODY_BYTES = 1024
BODY_PATH = "/1k.txt"

NGINX_CONF = """# Written by weft's bench/run: the backend of every scenario.
user root;
worker_processes 1;
pid {dir}/{name}.pid;
error_log {dir}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    default_type text/plain;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
    client_body_temp_path {dir}/{name}-tmp/body;
    proxy_temp_path {dir}/{name}-tmp/proxy;
    fastcgi_temp_path {dir}/{name}-tmp/fastcgi;
    uwsgi_temp_path {dir}/{name}-tmp/uwsgi;
    scgi_temp_path {dir}/{name}-tmp/scgi;
    server {{
        listen 8080 reuseport;
        root {dir}/www;
    }}
    server {{
        listen 8081 http2;
        root {dir}/www;
    }}
}}
"""

HAPROXY_CFG = """# Written by weft's bench/run: one well-tuned generic hop, keep-alive to the backend.
global
    nbthread 2
    maxconn 4000
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend http1
    bind :8080
    default_backend nginx
frontend http2
    bind :8081 proto h2
    default_backend nginx-h2
backend nginx
    server nginx-0 nginx-0:8080
backend nginx-h2
    server nginx-0 nginx-0:8081 proto h2
"""


def workload(name, command, sidecar, ports=(), env=None, ambient_on=None):
    """A Workload with a sidecar, without a proxy, or (`ambient_on` a node) ambient on a node."""
    mode = "" if sidecar else ", weft.dev/dataplane-mode: none"
    if ambient_on:
        mode = ", weft.dev/dataplane-mode: ambient"
    doc = (
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\n"
        f"metadata: {{name: {name}, namespace: {NAMESPACE}, labels: {{app: {name}{mode}}}}}\n"
        f"spec:\n  command: {json.dumps(command)}\n"
    )
    if ambient_on:
        doc += f"  nodeName: {ambient_on}\n"
    if ports:
        doc += "  ports: [" + ", ".join(
            f"{{name: p{p}, containerPort: {p}}}" for p in ports) + "]\n"
    if env:
        doc += "  env: [" + ", ".join(
            f"{{name: {k}, value: {json.dumps(v)}}}" for k, v in env.items()) + "]\n"
    return doc


def route(name, port, service="nginx-mesh"):
    return (
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        f"metadata: {{name: {name}, namespace: {NAMESPACE}}}\n"
        f"spec:\n  parentRefs: [{{group: \"\", kind: Service, name: {service}, port: {port}}}]\n"
        "  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n"
        f"    backendRefs: [{{name: {service}, port: {port}}}]\n"
    )


def service(name, labels="", tcp=False):
    ports = ("  ports: [{name: tcp-iperf, port: 5201, targetPort: 5201, appProtocol: tcp}]\n"
             if tcp else
             "  ports:\n  - {name: http, port: 80, targetPort: 8080}\n"
             "  - {name: http2, port: 81, targetPort: 8081, appProtocol: http2}\n")
    meta = f"{{name: {name}, namespace: {NAMESPACE}" + (f", labels: {{{labels}}}}}" if labels else "}")
    return ("apiVersion: v1\nkind: Service\n"
            f"metadata: {meta}\nspec:\n  selector: {{app: {name}}}\n" + ports)


def ambient(dir):
    """The ambient scenarios: a client on node-1, backends on node-2 (each call crosses both
    node proxies); nginx-wp's Service uses the waypoint, which runs its HTTP routes."""
    nginx = lambda name: workload(  # noqa: E731
        name, ["nginx", "-c", f"{dir}/{name}.conf", "-g", "daemon off;"],
        sidecar=False, ports=[8080, 8081], ambient_on="node-2")
    return [
        workload("client-amb", ["sleep", "infinity"], sidecar=False, ambient_on="node-1"),
        nginx("nginx-amb"),
        nginx("nginx-wp"),
        workload("iperf-amb", ["iperf3", "-s", "-p", "5201"], sidecar=False,
                 ambient_on="node-2"),
        service("nginx-amb"),
        service("nginx-wp", labels="weft.dev/use-waypoint: waypoint"),
        service("iperf-amb", tcp=True),
        route("nginx-wp", 80, "nginx-wp"),
        route("nginx-wp-h2", 81, "nginx-wp"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
        f"metadata: {{name: waypoint, namespace: {NAMESPACE}}}\n"
        "spec:\n  gatewayClassName: weft-waypoint\n"
        "  listeners: [{name: mesh, port: 15008, protocol: HBONE}]\n",
    ]


def config(dir, peers):
    """The mesh's YAML (as one string) for config directory `dir`."""
    docs = [
        "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: mesh}\n"
        f"spec:\n  trustDomain: bench.local\n"
        f"  network: {{podCidr: {POD_CIDR}, serviceCidr: {SERVICE_CIDR}, nodes: 2}}\n"
        # Limits as wide as the machine: the peers run unlimited, and a benchmark measures
        # the proxy, not its cgroup (docs/resources.md).
        "  proxy: {resources: {limits: {cpu: '2', memory: 1Gi}}}\n",
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n",
        workload("client", ["sleep", "infinity"], sidecar=False),
        workload("client-mesh", ["sleep", "infinity"], sidecar=True),
        workload("nginx", ["nginx", "-c", f"{dir}/nginx.conf", "-g", "daemon off;"],
                 sidecar=False, ports=[8080, 8081]),
        workload("nginx-mesh", ["nginx", "-c", f"{dir}/nginx-mesh.conf", "-g", "daemon off;"],
                 sidecar=True, ports=[8080, 8081]),
        workload("haproxy", ["haproxy", "-f", f"{dir}/haproxy.cfg", "-db"],
                 sidecar=False, ports=[8080, 8081]),
        # No ports: a readiness probe would take the iperf3 server's one test slot.
        workload("iperf", ["iperf3", "-s", "-p", "5201"], sidecar=False),
        workload("iperf-mesh", ["iperf3", "-s", "-p", "5201"], sidecar=True),
        "apiVersion: v1\nkind: Service\n"
        f"metadata: {{name: nginx-mesh, namespace: {NAMESPACE}}}\n"
        "spec:\n  selector: {app: nginx-mesh}\n  ports:\n"
        "  - {name: http, port: 80, targetPort: 8080}\n"
        "  - {name: http2, port: 81, targetPort: 8081, appProtocol: http2}\n",
        # HTTP routing on: every request is matched against a route rule. One route per port:
        # a route attached to port 80 leaves port 81 with no rule (weft answers 404 no-route).
        route("nginx-mesh", 80),
        route("nginx-mesh-h2", 81),
        "apiVersion: v1\nkind: Service\n"
        f"metadata: {{name: iperf-mesh, namespace: {NAMESPACE}}}\n"
        "spec:\n  selector: {app: iperf-mesh}\n"
        "  ports: [{name: tcp-iperf, port: 5201, targetPort: 5201, appProtocol: tcp}]\n",
    ] + ambient(dir)
    for name, path in peers.items():
        docs.append(workload(
            f"peer-{name}", [path], sidecar=False, ports=[8080],
            env={"BENCH_LISTEN": "0.0.0.0:8080", "BENCH_BACKEND": "nginx-0:8080",
                 "BENCH_LISTEN_H2": "0.0.0.0:8081", "BENCH_BACKEND_H2": "nginx-0:8081"}))
    return "---\n".join(docs)


def write(dir, peers):
    """Writes the config directory: the mesh, nginx's and HAProxy's configs and the body."""
    os.makedirs(f"{dir}/www", exist_ok=True)
    for name in ("nginx", "nginx-mesh", "nginx-amb", "nginx-wp"):
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(f"{dir}/{name}-tmp/{sub}", exist_ok=True)
        with open(f"{dir}/{name}.conf", "w") as f:
            f.write(NGINX_CONF.format(dir=dir, name=name))
    with open(f"{dir}/haproxy.cfg", "w") as f:
        f.write(HAPROXY_CFG)
    with open(f"{dir}/www{BODY_PATH}", "w") as f:
        f.write(("weft bench " * 100)[:BODY_BYTES - 1] + "\n")
    with open(f"{dir}/mesh.yaml", "w") as f:
        f.write(config(dir, peers))


class AlreadyRunning(RuntimeError):
    """A mesh of the benchmark's name runs already: another benchmark; it is left alone."""


class Mesh:
    """A running `weft up -d` of the benchmark mesh."""

    def __init__(self, weft, name, dir):
        self.weft, self.name, self.dir = weft, name, dir
        self.pods = {}

    def cmd(self, *args, check=True, capture=True, timeout=120):
        # The instance flag goes before any `--`.
        args = list(args)
        i = args.index("--") if "--" in args else len(args)
        full = [self.weft, *args[:i], "--name", self.name, *args[i:]]
        return subprocess.run(full, check=check, text=True, timeout=timeout,
                              capture_output=capture)

    def up(self, ingress_port, admin_port):
        """`weft up -d`. Never preceded by `weft down`: a mesh of this name that runs is another
        benchmark's (weft up refuses to start beside it and it is left alone), and one left by
        a crash is cleaned up by weft up itself."""
        out = subprocess.run(
            [self.weft, "up", self.dir, "-d", "--name", self.name,
             "--ingress-port", str(ingress_port), "--admin", f"127.0.0.1:{admin_port}"],
            text=True, capture_output=True, timeout=300)
        if out.returncode != 0:
            said = out.stdout + out.stderr
            if "already running" in said:
                raise AlreadyRunning(
                    f"mesh {self.name!r} is already running, another benchmark's: wait for it "
                    f"to finish (two on the same cores would spoil both)\n{said}")
            raise RuntimeError(f"weft up failed:\n{said}")

    def get_pods(self):
        """The workloads' (and waypoints') pods; `weft get pods` lists the mesh's own processes
        (gateway, node proxies, control planes) too, which are not the benchmark's."""
        out = self.cmd("get", "pods", "-o", "json")
        return {p["name"]: p for p in json.loads(out.stdout)
                if p.get("role", "workload") in ("workload", "waypoint")}

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while True:
            pods = self.get_pods()
            waiting = [n for n, p in pods.items() if not ready(p)]
            if not waiting and pods:
                self.pods = pods
                return
            if time.time() > deadline:
                raise RuntimeError(f"pods not ready after {timeout}s: {waiting}\n"
                                   + json.dumps({n: pods[n] for n in waiting}, indent=1))
            time.sleep(0.5)

    def ip(self, pod):
        return self.pods[pod]["ip"]

    def app_pid(self, pod):
        return self.pods[pod]["app"]["pid"]

    def proxy_pid(self, pod):
        return self.pods[pod]["proxy"]["pid"]

    def node_proxy_pid(self, node):
        """The pid of node `node`'s proxy, from the runtime's status file."""
        with open(f"/run/weft/{self.name}/status.json") as f:
            status = json.load(f)
        return next(n["process"]["pid"] for n in status["nodes"] if n["name"] == node)

    def exec_args(self, pod, argv):
        """The command line that runs `argv` inside `pod` (captured by its sidecar, if any)."""
        return [self.weft, "exec", "--name", self.name, pod, "--", *argv]

    def sidecar_transport(self, pod):
        """How `pod`'s sidecar talks to its peers, from its start-up log: the mTLS tunnel, or
        plaintext when the build gives it no workload certificate."""
        text = self.cmd("logs", pod, "--proxy", check=False).stdout
        if "no workload certificate source" in text or '"tunnel":"None"' in text:
            return "plaintext (no workload certificate: no mTLS in this build)"
        return "mTLS tunnel (HBONE, port 15008)"

    def down(self):
        return subprocess.run([self.weft, "down", "--name", self.name],
                              text=True, capture_output=True, timeout=120)


def ready(pod):
    app = pod.get("app") or {}
    proxy = pod.get("proxy")
    if app.get("state") != "ready":
        return False
    return not pod.get("sidecar") or (proxy or {}).get("state") == "ready"
