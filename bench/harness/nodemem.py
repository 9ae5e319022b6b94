"""Node proxy memory against the number of pods it serves: one `weft up` per size, every pod
ambient on one node (a `sleep` app, so nothing but enrolment costs memory), the node proxy's
VmRSS once every pod is served and again after a pause. Each size is its own mesh: the sizes
share nothing."""

import json
import os
import time

import mesh
import procstat

NAME = "wbnode"
# Inside 198.18.0.0/15, apart from the data-plane mesh (198.19.200.0/24) and tests.
POD_CIDR = "198.19.201.0/24"
SERVICE_CIDR = "198.19.202.0/25"


def config(pods):
    return "---\n".join([
        "apiVersion: weft.dev/v1alpha1\nkind: Mesh\nmetadata: {name: mesh}\n"
        "spec:\n  trustDomain: bench.local\n"
        f"  network: {{podCidr: {POD_CIDR}, serviceCidr: {SERVICE_CIDR}}}\n",
        "apiVersion: v1\nkind: Namespace\n"
        "metadata: {name: amb, labels: {weft.dev/dataplane-mode: ambient}}\n",
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\n"
        "metadata: {name: app, namespace: amb, labels: {app: app}}\n"
        f"spec: {{command: [sleep, infinity], replicas: {pods}}}\n",
    ])


def measure(weft, workdir, pods, free_port, log):
    dir = f"{workdir}/node-{pods}"
    os.makedirs(dir, exist_ok=True)
    with open(f"{dir}/mesh.yaml", "w") as f:
        f.write(config(pods))
    m = mesh.Mesh(weft, NAME, dir)
    log(f"node proxy memory: {pods} ambient pods")
    m.up(free_port(), free_port())
    try:
        m.wait_ready(timeout=300)
        served = sum(1 for p in m.pods.values() if p.get("servedBy"))
        pid = m.node_proxy_pid("node-1")
        time.sleep(2)
        ready_rss, _ = procstat.memory_kib(pid)
        time.sleep(5)
        rss, hwm = procstat.memory_kib(pid)
        return {"pods": pods, "served": served, "rssReadyKib": ready_rss, "rssKib": rss,
                "hwmKib": hwm}
    finally:
        log(m.down().stdout.strip())


def run(weft, workdir, sizes, free_port, log):
    out = [measure(weft, workdir, n, free_port, log) for n in sizes]
    base = out[0]
    for r in out[1:]:
        extra = r["pods"] - base["pods"]
        r["kibPerPod"] = round((r["rssKib"] - base["rssKib"]) / extra, 1) if extra else None
    return out


