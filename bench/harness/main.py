"""weft's benchmark harness (run through bench/run, which installs the tools and builds weft).

One `weft up` mesh holds every scenario, so they share the machine's state; each round runs
every load against every scenario in turn (a, b, c, a, b, c ...), and the report takes medians
over rounds. See bench/README.md.
"""

import argparse
import datetime
import json
import os
import socket
import subprocess
import sys
import time

import load
import mesh
import nodemem
import procstat
import report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MESH_NAME = "wbench"

# (id, kind, rate, title). kind: http1 (oha), h2 (h2load), tcp (iperf3).
LOADS = [
    ("http1-1000", "http1", 1000, "HTTP/1.1, 1000 req/s fixed rate"),
    ("http1-4000", "http1", 4000, "HTTP/1.1, 4000 req/s fixed rate"),
    ("http1-max", "http1", None, "HTTP/1.1, unbounded (maximum throughput)"),
    ("h2-max", "h2", None, "HTTP/2 (h2load), unbounded"),
    ("tcp", "tcp", None, "Bulk TCP (iperf3)"),
]


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true",
                   help="a few seconds per scenario, one round, N=100 only (CI)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=30, help="seconds per measured run")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=PATH",
                   help="also run the program PATH as a proxy between client and nginx")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    p.add_argument("--weft", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "weft"))
    p.add_argument("--cp", help="the weft-bench-cp binary (default: next to --weft)")
    p.add_argument("--profile", default="release", help="the cargo profile --weft was built with")
    p.add_argument("--sections", default="mesh,control-plane,proxy-memory,node-memory",
                   help="comma-separated subset of mesh, control-plane, proxy-memory, "
                        "node-memory")
    a = p.parse_args(argv)
    if a.smoke:
        a.rounds, a.duration = 1, 3
    a.cp = a.cp or os.path.join(os.path.dirname(a.weft), "weft-bench-cp")
    a.peers = {}
    for spec in a.peer:
        name, sep, path = spec.partition("=")
        if not sep or not name.isalnum() or not os.access(path, os.X_OK):
            p.error(f"--peer {spec}: expected NAME=PATH, NAME alphanumeric, PATH executable")
        a.peers[name.lower()] = os.path.abspath(path)
    a.sections = set(a.sections.split(","))
    return a


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def scenarios(m, peers):
    """Each scenario: its client pod, targets per load kind, and the processes it measures
    per load kind (label -> pid)."""
    nginx, haproxy = m.ip("nginx-0"), m.ip("haproxy-0")
    out = [
        {"name": "direct", "client": "client-0",
         "http1": f"http://{nginx}:8080{mesh.BODY_PATH}",
         "h2": f"http://{nginx}:8081{mesh.BODY_PATH}",
         "tcp": m.ip("iperf-0"),
         "procs": {}},
        {"name": "haproxy", "client": "client-0",
         "http1": f"http://{haproxy}:8080{mesh.BODY_PATH}",
         "h2": f"http://{haproxy}:8081{mesh.BODY_PATH}",
         "tcp": None,
         "procs": {"http1": {"haproxy": m.app_pid("haproxy-0")},
                   "h2": {"haproxy": m.app_pid("haproxy-0")}}},
        {"name": "weft-sidecar", "client": "client-mesh-0",
         "http1": f"http://nginx-mesh{mesh.BODY_PATH}",
         "h2": f"http://nginx-mesh:81{mesh.BODY_PATH}",
         "tcp": "iperf-mesh",
         "procs": {
             kind: {"client sidecar": m.proxy_pid("client-mesh-0"),
                    "server sidecar": m.proxy_pid(server)}
             for kind, server in (("http1", "nginx-mesh-0"), ("h2", "nginx-mesh-0"),
                                  ("tcp", "iperf-mesh-0"))}},
    ]
    node1, node2 = m.node_proxy_pid("node-1"), m.node_proxy_pid("node-2")
    nodes = {"client node proxy": node1, "server node proxy": node2}
    out += [
        {"name": "weft-ambient", "client": "client-amb-0",
         "http1": f"http://nginx-amb{mesh.BODY_PATH}",
         "h2": f"http://nginx-amb:81{mesh.BODY_PATH}",
         "tcp": "iperf-amb",
         "procs": {kind: dict(nodes) for kind in ("http1", "h2", "tcp")}},
        {"name": "weft-ambient-waypoint", "client": "client-amb-0",
         "http1": f"http://nginx-wp{mesh.BODY_PATH}",
         "h2": f"http://nginx-wp:81{mesh.BODY_PATH}",
         "tcp": None,
         "procs": {kind: dict(nodes, waypoint=m.app_pid("waypoint-0"))
                   for kind in ("http1", "h2")}},
    ]
    for name in peers:
        pod, pid = f"peer-{name}-0", m.app_pid(f"peer-{name}-0")
        out.append({"name": f"peer:{name}", "client": "client-0",
                    "http1": f"http://{m.ip(pod)}:8080{mesh.BODY_PATH}",
                    "h2": f"http://{m.ip(pod)}:8081{mesh.BODY_PATH}",
                    "tcp": None,
                    "procs": {"http1": {name: pid}, "h2": {name: pid}}})
    return out


def one_run(m, sc, kind, rate, duration, warmup):
    target = sc[kind]
    run = lambda argv: m.exec_args(sc["client"], argv)  # noqa: E731
    watch = procstat.Watch(sc["procs"].get(kind, {}))
    if kind == "http1":
        load.oha(run, target, warmup, rate)  # warm-up, not recorded
        watch.start()
        result = load.oha(run, target, duration, rate)
    elif kind == "h2":
        watch.start()
        result = load.h2load(run, target, duration)
    else:
        watch.start()
        result = tcp_with_retry(run, target, duration)
    procs, wall = watch.stop(result.get("requests"))
    if kind == "tcp":
        mib = result["bytes"] / (1 << 20)
        for p in procs.values():
            p["cpuUsPerMiB"] = round(p["cpuSeconds"] * 1e6 / mib, 2) if mib else None
    return {"result": result, "procs": procs, "wallSeconds": round(wall, 3)}


def tcp_with_retry(run, target, duration):
    # iperf3's server takes one test at a time and needs a moment after the last one.
    for attempt in range(3):
        try:
            return load.iperf3(run, target, duration)
        except RuntimeError as e:
            if "busy" not in str(e) or attempt == 2:
                raise
            time.sleep(2)


def run_mesh(a, workdir):
    mesh.write(workdir, a.peers)
    m = mesh.Mesh(a.weft, MESH_NAME, workdir)
    log(f"weft up {workdir} --name {MESH_NAME}")
    try:
        m.up(free_port(), free_port())
    except mesh.AlreadyRunning as e:
        sys.exit(f"bench/run: {e}")
    runs, idle = [], {}
    try:
        m.wait_ready()
        time.sleep(2)
        scs = scenarios(m, a.peers)
        for sc in scs:
            for procs in sc["procs"].values():
                for pid in procs.values():
                    idle[str(pid)] = procstat.memory_kib(pid)[0]
        transport = m.sidecar_transport("client-mesh-0")
        log(f"sidecar pair: {transport}")
        warmup = 1 if a.smoke else 3
        for rnd in range(1, a.rounds + 1):
            for load_id, kind, rate, _ in LOADS:
                for sc in scs:
                    if not sc.get(kind):
                        continue
                    log(f"round {rnd}/{a.rounds} {load_id} {sc['name']}")
                    entry = {"round": rnd, "load": load_id, "scenario": sc["name"]}
                    try:
                        entry.update(one_run(m, sc, kind, rate, a.duration, warmup))
                    except Exception as e:  # recorded and shown, never hidden
                        entry["failed"] = str(e)[-1500:]
                        log(f"  FAILED: {entry['failed']}")
                    runs.append(entry)
        restarts = {n: {"app": (p.get("app") or {}).get("restarts"),
                        "proxy": (p.get("proxy") or {}).get("restarts")}
                    for n, p in m.get_pods().items()}
    finally:
        log(m.down().stdout.strip())
    return {"runs": runs, "idleRssKib": idle, "restarts": restarts,
            "sidecarTransport": transport, "scenarios": [s["name"] for s in scs]}


def cp_workdir():
    # Per harness run, so two runs on one machine never share (or remove) each other's files.
    return f"/tmp/weft-bench-cp-{os.getpid()}"


def run_cp(a, args):
    out = subprocess.run([a.cp, "--weft", a.weft, "--work", cp_workdir(), *args],
                         text=True, stdout=subprocess.PIPE, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"weft-bench-cp {' '.join(args)} exited with {out.returncode}")
    return json.loads(out.stdout)


def main(argv):
    a = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench/run needs root: weft up creates network namespaces")
    for tool in (a.weft, a.cp):
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is missing: run bench/run, which builds it")
    started = datetime.datetime.now(datetime.timezone.utc)
    doc = report.header(a, argv, started, ROOT)
    workdir = f"/tmp/weft-bench-{os.getpid()}"
    os.makedirs(workdir, exist_ok=True)
    problems = []
    try:
        if "mesh" in a.sections:
            doc["mesh"] = run_mesh(a, workdir)
            doc["loads"] = [{"id": i, "kind": k, "rate": r, "title": t} for i, k, r, t in LOADS]
        if "control-plane" in a.sections:
            ns = "100" if a.smoke else "100,1000,10000"
            log(f"control plane: {ns} simulated proxies")
            changes = "1" if a.smoke else "3"
            doc.update(run_cp(a, ["control", "--proxies", ns, "--changes", changes]))
            if not a.smoke:
                # Sidecars announce their pod, and each join rebuilds the control plane's
                # snapshot (~0.3 s at this size in a release build): that cost at N = 100.
                announced = run_cp(a, ["control", "--proxies", "100", "--changes", "1",
                                       "--announce"])
                doc["controlPlane"] += announced["controlPlane"]
            # Pods joining and leaving while changes are pushed (issue: a control plane for
            # 10 000 proxies). Churn pods announce their pod; the steady proxies do not, which
            # keeps the set-up short. The smoke run (a debug build) only checks that it runs.
            churn = (["--proxies", "10", "--services", "100", "--endpoints", "1000",
                      "--churn-rate", "2", "--duration", "2", "--life", "1",
                      "--change-every", "1"] if a.smoke else
                     ["--proxies", "1000", "--churn-rate", "100", "--duration", "30"])
            log(f"control plane under churn: {' '.join(churn)}")
            doc.update(run_cp(a, ["churn", *churn]))
        if "node-memory" in a.sections:
            sizes = [1, 10] if a.smoke else [1, 10, 100]
            doc["nodeMemory"] = nodemem.run(a.weft, workdir, sizes, free_port, log)
        if "proxy-memory" in a.sections:
            log("proxy memory: 10 and 10000 Services in the mesh")
            doc.update(run_cp(a, ["proxy-memory", "--services", "10,10000"]))
    finally:
        subprocess.run(["rm", "-rf", workdir, cp_workdir()])
    doc["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    report.summarize(doc)
    problems = report.problems(doc)
    paths = report.write(doc, a, started, ROOT)
    for p in paths:
        log(f"wrote {p}")
    if problems:
        log("PROBLEMS (see the report):\n  " + "\n  ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
