"""CPU and memory of processes from /proc: utime+stime over wall time, VmRSS and VmHWM."""

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of every thread of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces; fields resume after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kib(pid):
    """(VmRSS, VmHWM) in KiB."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def reset_peak(pid):
    """Resets VmHWM to the current RSS, so the next peak is the coming run's."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


class Watch:
    """CPU and memory of some processes over one run: `start()`, the run, `stop()`."""

    def __init__(self, pids):
        self.pids = dict(pids)  # label -> pid

    def start(self):
        for pid in self.pids.values():
            reset_peak(pid)
        self.cpu0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self.t0 = time.monotonic()

    def stop(self, requests=None):
        wall = time.monotonic() - self.t0
        out = {}
        for label, pid in self.pids.items():
            cpu = cpu_seconds(pid) - self.cpu0[label]
            rss, hwm = memory_kib(pid)
            out[label] = {
                "pid": pid,
                "cpuSeconds": round(cpu, 3),
                "cpuCores": round(cpu / wall, 4) if wall > 0 else None,
                "cpuUsPerRequest": round(cpu * 1e6 / requests, 2) if requests else None,
                "rssEndKib": rss,
                "rssPeakKib": hwm,
            }
        return out, wall
