"""Unit tests of the harness's parsing and summaries (no timing is asserted):
`python3 -m unittest discover -s bench/harness`."""

import json
import unittest

import load
import report

H2LOAD = """finished in 3.00s, 16383.33 req/s, 16.69MB/s
requests: 49160 total, 49310 started, 49150 done, 49140 succeeded, 10 failed, 2 errored, 0 timeout
status codes: 49140 2xx, 0 3xx, 8 4xx, 0 5xx
traffic: 16.69MB (17500000) total, 1.00MB (1000000) headers (space savings 90.00%), 15MB data
                     min         max         mean         sd        +/- sd
time for request:     1.12ms     23.99ms      950us      2.73ms    69.67%
"""


def oha_json(statuses, errors=None):
    return json.dumps({
        "summary": {"requestsPerSec": 999.3},
        "latencyPercentiles": {"p50": 0.000117, "p90": 0.0002, "p99": 0.0022, "p99.9": 0.0048},
        "statusCodeDistribution": statuses,
        "errorDistribution": errors or {},
    })


class Parsers(unittest.TestCase):
    def test_oha_counts_non_2xx_and_transport_errors(self):
        r = load.parse_oha(oha_json({"200": 990, "503": 4}, {"connection reset": 6}))
        self.assertEqual((r["requests"], r["ok"], r["errors"]), (1000, 990, 10))
        self.assertEqual(r["errorDetail"], {"status 503": 4, "connection reset": 6})
        self.assertEqual((r["p50"], r["p99.9"]), (0.117, 4.8))

    def test_h2load_failures_are_errors(self):
        r = load.parse_h2load(H2LOAD)
        self.assertEqual((r["requests"], r["ok"], r["errors"]), (49150, 49140, 20))
        self.assertEqual((r["rate"], r["min"], r["mean"], r["max"]), (16383.33, 1.12, 0.95, 23.99))

    def test_unreadable_h2load_output_is_an_error(self):
        with self.assertRaises(RuntimeError):
            load.parse_h2load("connect failed\n")


def run(rnd, scenario, p50, errors=0, procs=None):
    return {"round": rnd, "load": "http1-1000", "scenario": scenario,
            "result": {"p50": p50, "p90": p50, "p99": p50, "p99.9": p50, "rate": 1000.0,
                       "errors": errors, "requests": 1000},
            "procs": procs or {}}


class Summary(unittest.TestCase):
    def doc(self, runs):
        return {"machine": {}, "loads": [{"id": "http1-1000", "kind": "http1"}],
                "mesh": {"runs": runs, "idleRssKib": {"7": 100, "8": 200}, "restarts": {},
                         "scenarios": ["direct", "weft-sidecar"]}}

    def test_added_latency_is_per_round_then_median(self):
        side = lambda rnd, p50: run(rnd, "weft-sidecar", p50, procs={  # noqa: E731
            "client sidecar": {"pid": 7, "cpuCores": 0.1, "rssEndKib": 150, "rssPeakKib": 160},
            "server sidecar": {"pid": 8, "cpuCores": 0.2, "rssEndKib": 250, "rssPeakKib": 260}})
        doc = self.doc([run(1, "direct", 1.0), side(1, 1.5), run(2, "direct", 3.0), side(2, 3.1),
                        run(3, "direct", 2.0), side(3, 2.3)])
        report.summarize(doc)
        s = doc["summary"]["http1-1000"]["weft-sidecar"]
        self.assertAlmostEqual(s["added"]["p50"], 0.3)
        self.assertEqual(s["p50"], 2.3)
        self.assertEqual(s["procs"]["sum"]["rssIdleKib"], 300)
        self.assertAlmostEqual(s["procs"]["sum"]["cpuCores"], 0.3)
        self.assertEqual(s["procs"]["client sidecar"]["rssIdleKib"], 100)

    def test_errors_and_failed_runs_are_problems(self):
        failed = {"round": 1, "load": "http1-1000", "scenario": "direct", "failed": "boom"}
        doc = self.doc([failed, run(1, "weft-sidecar", 1.0, errors=3)])
        report.summarize(doc)
        self.assertEqual(doc["summary"]["http1-1000"]["direct"]["failedRuns"], 1)
        self.assertEqual(doc["summary"]["http1-1000"]["weft-sidecar"]["errors"], 3)
        self.assertEqual(len(report.problems(doc)), 2)


def churn_run(missing=0, failed=0, at_end=20):
    change = {"change": 1, "acked": 20 - missing, "missing": missing, "p50Ms": 3.0,
              "p99Ms": 9.0, "maxMs": 9.5, "applyMs": 4.0}
    return {"proxies": 20, "connections": 1, "services": 1000, "endpoints": 10000,
            "announce": True, "churnRate": 10.0, "durationSeconds": 2.0, "lifeSeconds": 1.0,
            "changeEverySeconds": 1.0, "connectMs": 50.0, "joinsPerSecond": 400.0,
            "joinCpuSeconds": 0.02, "cpuMsPerJoin": 1.0,
            "churn": {"connections": 1, "attempted": 20, "served": 20 - failed,
                      "failed": failed, "notServed": 0, "left": 20 - failed,
                      "servedPerSecond": 10.0, "joinP50Ms": 5.0, "joinP99Ms": 8.0,
                      "joinMaxMs": 8.0, "errors": ["refused"] if failed else []},
            "changes": [change], "changesAllAcked": 0 if missing else 1, "pushAllAckedP50Ms": 9.5, "pushAllAckedP99Ms": 9.5,
            "pushAllAckedMaxMs": 9.5, "pushP50Ms": 3.0, "pushP99Ms": 9.0,
            "controlIdle": {"rssKib": 1024, "hwmKib": 1024},
            "controlConnected": {"rssKib": 2048, "hwmKib": 2048},
            "controlChurnEnd": {"rssKib": 3072, "hwmKib": 4096},
            "controlChurnCpuSeconds": 0.5, "controlChurnWallSeconds": 2.0,
            "controlChurnCpuCores": 0.25,
            "proxiesAtEnd": at_end}


class Churn(unittest.TestCase):
    def test_a_clean_churn_run_is_no_problem_and_has_a_row(self):
        import tables
        doc = {"churn": [churn_run()]}
        self.assertEqual(report.problems(doc), [])
        row = tables.churn_table(doc["churn"]).splitlines()[2]
        self.assertIn("| 20/20 |", row)
        self.assertIn("| 4.0 |", row)  # the peak RSS, MiB

    def test_missing_acks_failed_joins_and_lingering_proxies_are_problems(self):
        doc = {"churn": [churn_run(missing=1, failed=2, at_end=21)]}
        problems = report.problems(doc)
        self.assertEqual(len(problems), 3, problems)


if __name__ == "__main__":
    unittest.main()
