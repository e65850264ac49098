#!/usr/bin/env python3
"""Turn one wrk report (stdin) into one JSON sample line (stdout) for scripts/bench.

Fields: requests, seconds, rps, mib_per_s (from wrk's "N requests in Ts, X read" line, which is
exact, not the rounded Transfer/sec), p50_ms/p90_ms/p99_ms (from --latency), errors (socket
errors), non_2xx, and cpu_us_per_req when the proxy's CPU ticks over the load were given.
"""
import argparse
import json
import re
import sys

UNITS_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
UNITS_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS_TIME[m.group(2)] if m else None


def sample_args():
    """The arguments both parsers take, and the sample's identifying fields."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--round", type=int, required=True)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--cpu-ticks", default="")
    ap.add_argument("--clk-tck", type=int, default=100)
    # The mTLS hop: the gateway's share of --cpu-ticks (which counts both processes).
    ap.add_argument("--gateway-cpu-ticks", default="")
    a = ap.parse_args()
    return a, {"round": a.round, "proxy": a.proxy, "threads": a.threads, "test": a.test}


def emit(a, s):
    """Adds the proxy's CPU per request, when its ticks were given, and prints the sample."""
    if a.cpu_ticks != "" and s["requests"]:
        s["cpu_s"] = int(a.cpu_ticks) / a.clk_tck
        s["cpu_us_per_req"] = s["cpu_s"] / s["requests"] * 1e6
        if a.gateway_cpu_ticks != "":
            s["gateway_cpu_us_per_req"] = int(a.gateway_cpu_ticks) / a.clk_tck / s["requests"] * 1e6
            s["sidecar_cpu_us_per_req"] = s["cpu_us_per_req"] - s["gateway_cpu_us_per_req"]
    print(json.dumps(s))


def main():
    a, s = sample_args()
    text = sys.stdin.read()
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read", text)
    if m:
        s["requests"] = int(m.group(1))
        s["seconds"] = ms(m.group(2) + m.group(3)) / 1e3
        s["rps"] = s["requests"] / s["seconds"] if s["seconds"] else 0.0
        s["mib_per_s"] = float(m.group(4)) * UNITS_BYTES[m.group(5)] / 1024**2 / s["seconds"]
    else:
        s["requests"], s["rps"], s["mib_per_s"] = 0, 0.0, 0.0
        s["wrk_output"] = text[-500:]
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", text, re.M)
        if m:
            s[f"p{pct}_ms"] = ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    s["errors"] = sum(int(g) for g in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    s["non_2xx"] = int(m.group(1)) if m else 0
    emit(a, s)


if __name__ == "__main__":
    main()
