#!/usr/bin/env python3
"""Turn one h2load report (stdin) into one JSON sample line (stdout) for scripts/bench.

The same fields as parse_wrk.py, so aggregate.py treats both alike: requests (responses
received, the sum of h2load's "status codes" line, as wrk counts them), seconds and rps (from
"finished in Ts"), mib_per_s (exact bytes from the "traffic:" line), mean_ms (h2load's mean
"time for request"; it reports no percentiles), errors (streams "errored" or timed out: no
response), non_2xx, and cpu_us_per_req when the proxy's CPU ticks over the load were given.
"""
import re
import sys

from parse_wrk import emit, sample_args  # the same arguments and CPU-per-request field

UNITS_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def main():
    a, s = sample_args()
    text = sys.stdin.read()
    finished = re.search(r"^finished in ([\d.]+)(us|ms|s),", text, re.M)
    counts = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout", text, re.M)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    s["non_2xx"] = sum(int(g) for g in codes.groups()[1:]) if codes else 0
    if finished and counts and codes:
        s["seconds"] = float(finished.group(1)) * UNITS_TIME[finished.group(2)] / 1e3
        s["requests"] = sum(int(g) for g in codes.groups())
        s["rps"] = s["requests"] / s["seconds"] if s["seconds"] else 0.0
        s["errors"] = int(counts.group(6)) + int(counts.group(7))
        traffic = re.search(r"^traffic: \S+ \((\d+)\) total", text, re.M)
        s["mib_per_s"] = int(traffic.group(1)) / 1024**2 / s["seconds"] if traffic and s["seconds"] else 0.0
    else:
        s["requests"], s["rps"], s["mib_per_s"], s["errors"] = 0, 0.0, 0.0, 0
        s["h2load_output"] = text[-500:]
    m = re.search(r"^time for request:\s+(\S+?)(us|ms|s)\s+(\S+?)(us|ms|s)\s+([\d.]+)(us|ms|s)", text, re.M)
    if m:
        s["mean_ms"] = float(m.group(5)) * UNITS_TIME[m.group(6)]
    emit(a, s)


if __name__ == "__main__":
    main()
