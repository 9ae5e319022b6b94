"""The result: a JSON document with every run, medians over rounds, and Markdown tables."""

import json
import os
import platform
import shlex
import statistics
import subprocess

PROC_KEYS = ("cpuCores", "cpuUsPerRequest", "cpuUsPerMiB", "rssEndKib", "rssPeakKib")


def _first_line(argv):
    try:
        out = subprocess.run(argv, text=True, capture_output=True, timeout=10)
        return (out.stdout.strip() or out.stderr.strip()).splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def header(a, argv, started, root):
    git = lambda *x: _first_line(["git", "-C", root, *x])  # noqa: E731
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    return {
        "date": started.isoformat(),
        "command": os.environ.get("BENCH_COMMAND")
        or " ".join(["python3 bench/harness/main.py", *map(shlex.quote, argv)]),
        "options": {"smoke": a.smoke, "rounds": a.rounds, "durationSeconds": a.duration,
                    "peers": a.peers, "weftProfile": a.profile},
        "git": {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref",
                                                                   "HEAD"),
                "dirty": bool(subprocess.run(["git", "-C", root, "status", "--porcelain"],
                                             capture_output=True, text=True).stdout.strip())},
        "machine": {"cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                    "loadAverageAtStart": os.getloadavg()},
        "tools": {"oha": _first_line(["oha", "--version"]),
                  "h2load": _first_line(["h2load", "--version"]),
                  "iperf3": _first_line(["iperf3", "--version"]),
                  "nginx": _first_line(["nginx", "-v"]),
                  "haproxy": _first_line(["haproxy", "-v"])},
    }


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def summarize(doc):
    m = doc.get("mesh")
    if not m:
        return
    doc["machine"]["loadAverageAtEnd"] = os.getloadavg()
    summary = {}
    ok = [r for r in m["runs"] if "failed" not in r]
    direct = {(r["round"], r["load"]): r["result"] for r in ok if r["scenario"] == "direct"}
    for ld in doc["loads"]:
        for sc in m["scenarios"]:
            runs = [r for r in m["runs"] if r["load"] == ld["id"] and r["scenario"] == sc]
            if not runs:
                continue
            good = [r for r in runs if "failed" not in r]
            results = [r["result"] for r in good]
            s = {"rounds": len(good), "failedRuns": len(runs) - len(good),
                 "errors": sum(r.get("errors", 0) for r in results),
                 "requests": sum(r.get("requests") or 0 for r in results)}
            for key in ("rate", "p50", "p90", "p99", "p99.9", "mean", "max",
                        "gbitPerSecond", "retransmits"):
                if any(key in r for r in results):
                    s[key] = median([r.get(key) for r in results])
            if ld["kind"] == "http1" and sc != "direct":
                s["added"] = {}
                for key in ("p50", "p90", "p99", "p99.9"):
                    deltas = [r["result"][key] - direct[(r["round"], r["load"])][key]
                              for r in good if (r["round"], r["load"]) in direct]
                    s["added"][key] = median(deltas)
            if ld["kind"] == "h2" and sc != "direct":
                deltas = [r["result"]["mean"] - direct[(r["round"], r["load"])]["mean"]
                          for r in good if (r["round"], r["load"]) in direct]
                s["added"] = {"mean": median(deltas)}
            s["procs"] = summarize_procs(good, m["idleRssKib"])
            summary.setdefault(ld["id"], {})[sc] = s
    doc["summary"] = summary


def summarize_procs(runs, idle_by_pid):
    """Medians per process over rounds; RSS idle is the one read once the mesh was up."""
    labels = list(runs[0]["procs"]) if runs else []
    idle = {lb: idle_by_pid.get(str(runs[0]["procs"][lb]["pid"])) for lb in labels}
    out = {}
    for label in labels:
        out[label] = {k: median([r["procs"][label].get(k) for r in runs]) for k in PROC_KEYS}
        out[label]["rssIdleKib"] = idle[label]
    if len(labels) > 1:
        total = {k: median([sum(r["procs"][lb].get(k) or 0 for lb in labels) for r in runs])
                 for k in PROC_KEYS}
        total["rssIdleKib"] = sum(v or 0 for v in idle.values())
        out["sum"] = total
    return out


def problems(doc):
    out = []
    m = doc.get("mesh") or {}
    for r in m.get("runs", []):
        if "failed" in r:
            out.append(f"round {r['round']} {r['load']} {r['scenario']}: run failed")
        elif r["result"].get("errors"):
            out.append(f"round {r['round']} {r['load']} {r['scenario']}: "
                       f"{r['result']['errors']} errors {r['result'].get('errorDetail')}")
    for pod, n in (m.get("restarts") or {}).items():
        if any(n.values()):
            out.append(f"pod {pod} restarted during the run: {n}")
    for c in doc.get("controlPlane", []):
        if any(ch["missing"] for ch in c["changes"]):
            out.append(f"control plane, {c['proxies']} proxies: some never ACKed a change")
    for c in doc.get("churn", []):
        where = f"churn beside {c['proxies']} proxies"
        if any(ch["missing"] for ch in c["changes"]):
            out.append(f"{where}: some steady proxies did not ACK a change within 10 s")
        if not c["changes"]:
            out.append(f"{where}: no change was pushed during the churn")
        ch = c["churn"]
        if ch["failed"] or ch["notServed"]:
            out.append(f"{where}: {ch['failed']} churn pods failed, {ch['notServed']} not served"
                       f" {ch['errors'][:1]}")
        if c.get("proxiesAtEnd") != c["proxies"]:
            out.append(f"{where}: the control plane lists {c.get('proxiesAtEnd')} proxies after "
                       "the churn")
    for n in doc.get("nodeMemory", []):
        if n["served"] != n["pods"]:
            out.append(f"node memory, {n['pods']} pods: only {n['served']} served")
    for p in doc.get("proxyMemory", []):
        if p["errors"]:
            out.append(f"proxy memory, {p['servicesInMesh']} Services: {p['errors']} errors")
    return out


def write(doc, a, started, root):
    os.makedirs(a.out, exist_ok=True)
    stem = started.strftime("%Y-%m-%dT%H%M%SZ") + ("-smoke" if a.smoke else "")
    paths = [os.path.join(a.out, stem + ".json"), os.path.join(a.out, stem + ".md")]
    with open(paths[0], "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    import tables
    md = tables.markdown(doc)
    with open(paths[1], "w") as f:
        f.write(md)
    if not a.smoke:
        results = os.path.join(root, "bench", "RESULTS.md")
        with open(results, "w") as f:
            f.write(tables.results_page(doc, os.path.relpath(paths[0], root), md))
        paths.append(results)
    return paths
