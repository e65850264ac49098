#!/usr/bin/env python3
"""Turn one h2load report (stdin) into one JSON sample line (stdout) for scripts/bench.

The same fields as parse_wrk.py, so aggregate.py treats both alike: requests (h2load's
"succeeded": streams answered 2xx/3xx/4xx/5xx without a stream or connection error), seconds
and rps (from "finished in Ts"), mib_per_s (exact bytes from the "traffic:" line), mean_ms
(h2load's mean "time for request"; it reports no percentiles), errors (failed + errored +
timeout), non_2xx, and cpu_us_per_req when the proxy's CPU ticks over the load were given.
"""
import argparse
import json
import re
import sys

UNITS_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--round", type=int, required=True)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--cpu-ticks", default="")
    ap.add_argument("--clk-tck", type=int, default=100)
    a = ap.parse_args()
    text = sys.stdin.read()
    s = {"round": a.round, "proxy": a.proxy, "threads": a.threads, "test": a.test}
    finished = re.search(r"^finished in ([\d.]+)(us|ms|s),", text, re.M)
    counts = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout", text, re.M)
    if finished and counts:
        s["seconds"] = float(finished.group(1)) * UNITS_TIME[finished.group(2)] / 1e3
        s["requests"] = int(counts.group(4))
        s["rps"] = s["requests"] / s["seconds"] if s["seconds"] else 0.0
        s["errors"] = int(counts.group(5)) + int(counts.group(6)) + int(counts.group(7))
        traffic = re.search(r"^traffic: \S+ \((\d+)\) total", text, re.M)
        s["mib_per_s"] = int(traffic.group(1)) / 1024**2 / s["seconds"] if traffic and s["seconds"] else 0.0
    else:
        s["requests"], s["rps"], s["mib_per_s"], s["errors"] = 0, 0.0, 0.0, 0
        s["h2load_output"] = text[-500:]
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    s["non_2xx"] = sum(int(g) for g in codes.groups()[1:]) if codes else 0
    m = re.search(r"^time for request:\s+(\S+?)(us|ms|s)\s+(\S+?)(us|ms|s)\s+([\d.]+)(us|ms|s)", text, re.M)
    if m:
        s["mean_ms"] = float(m.group(5)) * UNITS_TIME[m.group(6)]
    if a.cpu_ticks != "" and s["requests"]:
        s["cpu_s"] = int(a.cpu_ticks) / a.clk_tck
        s["cpu_us_per_req"] = s["cpu_s"] / s["requests"] * 1e6
    print(json.dumps(s))


if __name__ == "__main__":
    main()
