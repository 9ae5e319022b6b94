"""Markdown tables of a result document, one per section."""


def fmt(v, digits=3):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def mib(kib):
    return "—" if kib is None else f"{kib / 1024:.1f}"


def signed(v):
    return "—" if v is None else f"{v:+.3f}"


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(out) + "\n"


def errors_cell(s):
    e = s["errors"]
    cell = f"**{e}**" if e else "0"
    if s["failedRuns"]:
        cell += f" (**{s['failedRuns']} run(s) failed**)"
    return cell


def latency_table(rows, extra):
    head = ["scenario", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "added p50", "added p99",
            "added p99.9", "achieved req/s", "errors"]
    out = []
    for sc, s in rows.items():
        add = s.get("added", {})
        out.append([sc, fmt(s.get("p50")), fmt(s.get("p90")), fmt(s.get("p99")),
                    fmt(s.get("p99.9")), signed(add.get("p50")), signed(add.get("p99")),
                    signed(add.get("p99.9")), fmt(s.get("rate"), 1), errors_cell(s)])
    return table(head, out + extra)


def h2_table(rows, extra):
    head = ["scenario", "req/s", "mean ms", "added mean", "max ms", "errors"]
    return table(head, [[sc, fmt(s.get("rate"), 1), fmt(s.get("mean")),
                         signed(s.get("added", {}).get("mean")), fmt(s.get("max")),
                         errors_cell(s)] for sc, s in rows.items()] + extra)


def tcp_table(rows, extra):
    head = ["scenario", "Gbit/s", "retransmits", "errors"]
    return table(head, [[sc, fmt(s.get("gbitPerSecond")), fmt(s.get("retransmits")),
                         errors_cell(s)] for sc, s in rows.items()] + extra)


def proc_table(rows, per):
    head = ["scenario", "process", "CPU cores", per, "RSS idle MiB", "RSS end MiB",
            "RSS peak MiB"]
    key = "cpuUsPerMiB" if per.endswith("MiB") else "cpuUsPerRequest"
    out = []
    for sc, s in rows.items():
        for label, p in s["procs"].items():
            out.append([sc, label, fmt(p["cpuCores"]), fmt(p.get(key), 1),
                        mib(p["rssIdleKib"]), mib(p["rssEndKib"]), mib(p["rssPeakKib"])])
    return table(head, out) if out else ""


def mesh_sections(doc):
    out = []
    for ld in doc["loads"]:
        rows = doc["summary"].get(ld["id"], {})
        out.append(f"### {ld['title']}\n")
        if ld["kind"] == "http1":
            out.append(latency_table(rows, not_built(doc, 10)))
        elif ld["kind"] == "h2":
            out.append(h2_table(rows, not_built(doc, 6)))
        else:
            out.append(tcp_table(rows, not_built(doc, 4)))
        per = "CPU µs/MiB" if ld["kind"] == "tcp" else "CPU µs/req"
        procs = proc_table(rows, per)
        if procs:
            out.append(procs)
    return "\n".join(out)


def not_built(doc, width):
    return [[name, "not built yet"] + [""] * (width - 2) for name in doc.get("notBuiltYet", [])]


def acks_cell(changes):
    acked = sum(c["acked"] for c in changes)
    missing = sum(c["missing"] for c in changes)
    return f"{acked}/{acked + missing}" + (" **(missing)**" if missing else "")


def cp_table(runs):
    head = ["proxies", "HTTP/2 conns", "announce pod", "connect+serve ms", "joins/s",
            "CP CPU ms/join", "apply ms", "push p50 ms", "push p99 ms", "push max ms",
            "ACKs of the changes", "CP RSS idle MiB", "CP RSS connected MiB", "CP RSS end MiB",
            "CP peak MiB"]
    rows = []
    for r in runs:
        rows.append([r["proxies"], r["connections"], "yes" if r["announce"] else "no",
                     fmt(r["connectMs"], 1), fmt(r.get("joinsPerSecond"), 1),
                     fmt(r.get("cpuMsPerJoin"), 2), fmt(r["applyMs"], 0), fmt(r["pushP50Ms"], 1),
                     fmt(r["pushP99Ms"], 1), fmt(r["pushMaxMs"], 1),
                     acks_cell(r["changes"]), mib(r["controlIdle"]["rssKib"]), mib(r["controlConnected"]["rssKib"]),
                     mib(r["controlEnd"]["rssKib"]), mib(r["controlEnd"]["hwmKib"])])
    return table(head, rows)


def churn_table(runs):
    head = ["proxies", "steady announce pod", "Services / endpoints", "churn pods/s", "s",
            "life s", "joins served/attempted",
            "churn join p50 ms", "churn join p99 ms", "changes all ACKed", "all ACKed p50 ms",
            "all ACKed p99 ms", "all ACKed max ms", "push p99 ms", "ACKs of the changes",
            "CP CPU cores", "CP RSS end MiB", "CP peak MiB", "proxies at end"]
    rows = []
    for r in runs:
        c = r["churn"]
        joins = f"{c['served']}/{c['attempted']}"
        if c["failed"] or c["notServed"]:
            joins += f" (**{c['failed']} failed, {c['notServed']} not served**)"
        end = r.get("proxiesAtEnd")
        rows.append([r["proxies"], "yes" if r["announce"] else "no",
                     f"{r['services']} / {r['endpoints']}", fmt(r["churnRate"], 1),
                     fmt(r["durationSeconds"], 1), fmt(r["lifeSeconds"], 1), joins,
                     fmt(c["joinP50Ms"], 1), fmt(c["joinP99Ms"], 1),
                     f"{r['changesAllAcked']}/{len(r['changes'])}",
                     fmt(r["pushAllAckedP50Ms"], 1), fmt(r["pushAllAckedP99Ms"], 1),
                     fmt(r["pushAllAckedMaxMs"], 1), fmt(r["pushP99Ms"], 1),
                     acks_cell(r["changes"]), fmt(r["controlChurnCpuCores"], 2),
                     mib(r["controlChurnEnd"]["rssKib"]), mib(r["controlChurnEnd"]["hwmKib"]),
                     end if end == r["proxies"] else f"**{end}**"])
    return table(head, rows)


def proxy_mem_table(runs):
    head = ["Services in mesh", "called", "requests", "errors", "proxy RSS idle MiB",
            "proxy RSS after calls MiB", "proxy peak MiB", "Services held", "CP RSS MiB"]
    return table(head, [[r["servicesInMesh"], r["servicesCalled"], r["requests"],
                         f"**{r['errors']}**" if r["errors"] else 0,
                         mib(r["proxyIdle"]["rssKib"]), mib(r["proxyAfterCalls"]["rssKib"]),
                         mib(r["proxyAfterCalls"]["hwmKib"]), r["servicesHeld"],
                         mib(r["control"]["rssKib"])] for r in runs])


def node_mem_table(runs):
    head = ["ambient pods on the node", "served", "node proxy RSS when served MiB",
            "RSS 5 s later MiB", "peak MiB", "KiB per pod over the first"]
    return table(head, [[r["pods"], r["served"], mib(r["rssReadyKib"]), mib(r["rssKib"]),
                         mib(r["hwmKib"]), fmt(r.get("kibPerPod"), 1)] for r in runs])


def markdown(doc):
    o = doc["options"]
    out = [f"# weft benchmark, {doc['date'][:19]}Z\n",
           f"`{doc['command']}` — {o['rounds']} round(s) of {o['durationSeconds']} s per run, "
           f"medians over rounds; weft built with the `{o['weftProfile']}` profile; commit "
           f"{(doc['git']['commit'] or '?')[:12]}"
           f"{' (dirty)' if doc['git']['dirty'] else ''}; {doc['machine']['cores']} cores "
           f"({doc['machine']['cpu']}), load average at start "
           f"{', '.join(f'{x:.2f}' for x in doc['machine']['loadAverageAtStart'])}.\n",
           "Latencies from oha with `--latency-correction` (coordinated omission corrected) "
           "at 16 connections; *added* = scenario minus `direct` in the same round and load, "
           "median over rounds. CPU = utime+stime delta over the run's wall time.\n",
           "Tools: " + ", ".join(f"{k} `{v}`" for k, v in doc["tools"].items()) + "\n"]
    if "mesh" in doc:
        out.append("## Data plane\n")
        out.append(f"Sidecar pair transport: {doc['mesh']['sidecarTransport']}. Scenarios "
                   "interleaved within each round; pod restarts during the run: "
                   f"{sum(1 for v in doc['mesh']['restarts'].values() if any(v.values()))}.\n")
        out.append(mesh_sections(doc))
    if doc.get("controlPlane"):
        out.append("## Control plane: N simulated proxies, 1000 Services, 10 000 endpoints\n")
        out.append("Connect+serve = opening the first stream → every proxy got its first answer for "
                   "every name it subscribed to (its own Proxy resource and 3 Services); CPU "
                   "ms/join = the control plane's utime+stime over that time / N. "
                   "Push = rewriting one Service's file → that proxy ACKed the new version "
                   "(every proxy subscribes to it); apply = write → the control plane put it "
                   "in force (`appliedAtMs`: its change detection, load and analysis; the snapshot "
                   "rebuild and the pushes follow). Medians over the changes. *announce pod*: "
                   "the simulated proxies carry a pod address as sidecars do, so each join "
                   "rebuilds the snapshot.\n")
        out.append(cp_table(doc["controlPlane"]))
    if doc.get("churn"):
        out.append("## Control plane under churn: pods joining and leaving while changes are "
                   "pushed\n")
        out.append("N steady proxies join first; then, for the given seconds, churn pods (which "
                   "announce a pod address, as sidecars do) join at the given rate, each leaving once it has been served and lived its life, "
                   "while one Service changes every few seconds. *All ACKed* = per change, the "
                   "write → the last steady proxy's ACK; p50/p99/max over the changes. "
                   "*Push p99* pools every steady proxy's ACK of every change. CPU cores = the "
                   "control plane's utime+stime over the churn's wall time; peak = VmHWM during "
                   "the churn.\n")
        out.append(churn_table(doc["churn"]))
    if doc.get("nodeMemory"):
        out.append("## Node proxy memory against the pods it serves (one node, every pod "
                   "ambient, idle)\n")
        out.append(node_mem_table(doc["nodeMemory"]))
    if doc.get("proxyMemory"):
        out.append("## Proxy memory against mesh size (explicit-mode proxy calling 3 Services)\n")
        out.append(proxy_mem_table(doc["proxyMemory"]))
    return "\n".join(out)


def results_page(doc, json_path, md):
    return (
        "# Latest benchmark results\n\n"
        "Produced by the command below on a 2-core machine on which the load generator, both "
        "proxies and nginx share the cores: absolute numbers drift between machines and runs; "
        "compare ratios and the *added* columns.\n\n"
        f"```sh\n{doc['command']}\n```\n\n"
        f"Full data: `{json_path}`.\n\n" + md.split("\n", 1)[1]
    )
