"""The load generators, run inside the client pod: oha (HTTP/1.1, fixed rate with
coordinated-omission correction, or unbounded), h2load (HTTP/2) and iperf3 (bulk TCP)."""

import json
import re
import subprocess

CONNECTIONS = 16
H2_STREAMS = 10  # concurrent streams per HTTP/2 connection


def _run(argv, timeout):
    out = subprocess.run(argv, text=True, capture_output=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {out.returncode}:\n"
                           f"{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return out.stdout


def oha_argv(url, duration, rate):
    argv = ["oha", "-c", str(CONNECTIONS), "-z", f"{duration}s", "-w",
            "--no-tui", "--output-format", "json"]
    if rate:
        argv += ["-q", str(rate), "--latency-correction"]
    return argv + [url]


def oha(exec_args, url, duration, rate):
    """One oha run; latencies in ms, errors = transport errors + non-2xx answers."""
    return parse_oha(_run(exec_args(oha_argv(url, duration, rate)), timeout=duration + 120))


def parse_oha(text):
    d = json.loads(text)
    statuses = {int(k): v for k, v in (d.get("statusCodeDistribution") or {}).items()}
    transport = d.get("errorDistribution") or {}
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    bad = {str(k): v for k, v in statuses.items() if not 200 <= k < 300}
    errors = sum(bad.values()) + sum(transport.values())
    p = d.get("latencyPercentiles") or {}

    def ms(key):
        v = p.get(key)
        return None if v is None else round(v * 1e3, 4)

    return {
        "requests": ok + errors,
        "ok": ok,
        "errors": errors,
        "errorDetail": {**{f"status {k}": v for k, v in bad.items()}, **transport},
        "rate": round(d["summary"].get("requestsPerSec") or 0, 1),
        "p50": ms("p50"), "p90": ms("p90"), "p99": ms("p99"), "p99.9": ms("p99.9"),
    }


def h2load_argv(url, duration):
    return ["h2load", "-c", str(CONNECTIONS), "-m", str(H2_STREAMS), "-t", "1",
            "-D", str(duration), "--warm-up-time=1", url]


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return round(float(m.group(1)) * _UNIT[m.group(2)], 4) if m else None


def h2load(exec_args, url, duration):
    """One unbounded h2load run (h2load reports min/max/mean/sd per request, not percentiles)."""
    return parse_h2load(_run(exec_args(h2load_argv(url, duration)), timeout=duration + 120))


def parse_h2load(text):
    m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", text)
    r = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    t = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if not (m and r and s and t):
        raise RuntimeError(f"cannot read h2load's output:\n{text[-2000:]}")
    total, done, ok, failed, errored, timeout = map(int, r.groups())
    non2xx = sum(map(int, s.groups()[1:]))
    # `failed` counts every request that did not succeed (non-2xx, stream errors, timeouts).
    errors = (done - ok) + (total - done)
    return {
        "requests": done,
        "ok": ok,
        "errors": errors,
        "errorDetail": {k: v for k, v in {
            "failed": failed, "errored": errored, "timeout": timeout,
            "not done": total - done, "non-2xx": non2xx}.items() if v},
        "rate": float(m.group(1)),
        "min": _ms(t.group(1)), "max": _ms(t.group(2)), "mean": _ms(t.group(3)),
        "sd": _ms(t.group(4)),
    }


def iperf3(exec_args, host, duration):
    """One iperf3 run (client → server), the first second omitted."""
    argv = ["iperf3", "-c", host, "-p", "5201", "-t", str(duration), "-O", "1", "-J"]
    out = subprocess.run(exec_args(argv), text=True, capture_output=True,
                         timeout=duration + 60)
    try:
        d = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"iperf3 exited with {out.returncode}: {out.stderr[-2000:]}")
    if d.get("error"):
        raise RuntimeError(f"iperf3: {d['error']}")
    end = d["end"]
    received = end["sum_received"]
    return {
        "gbitPerSecond": round(received["bits_per_second"] / 1e9, 3),
        "bytes": received["bytes"],
        "retransmits": end["sum_sent"].get("retransmits"),
        "errors": 0,
    }
