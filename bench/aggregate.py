#!/usr/bin/env python3
"""Aggregate scripts/bench samples (JSON lines) into medians, ratios and target verdicts.

Writes the machine-readable result (--json: meta, every raw sample, medians, targets) and the
human table (--markdown). Medians are over rounds; ratios are sluice / HAProxy of the medians.
"""
import argparse
import json
import statistics
from collections import defaultdict

PROXIES = ["direct", "haproxy-tcp", "haproxy-http", "sluice"]
METRICS = ["rps", "p50_ms", "p90_ms", "p99_ms", "mib_per_s", "cpu_us_per_req", "errors", "non_2xx",
           "rss_idle_kb", "rss_peak_kb", "ready_ms", "requests"]


def medians(samples):
    groups = defaultdict(list)
    for s in samples:
        for metric in METRICS:
            if s.get(metric) is not None:
                groups[(s["proxy"], s["threads"], s["test"], metric)].append(s[metric])
    out = {}
    for (proxy, threads, test, metric), values in groups.items():
        out.setdefault(proxy, {}).setdefault(str(threads), {}).setdefault(test, {})[metric] = statistics.median(values)
    return out


def get(med, proxy, threads, test, metric):
    return med.get(proxy, {}).get(str(threads), {}).get(test, {}).get(metric)


def fmt(v, digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def targets(med, threads_list):
    """Each target of the performance issue, per thread count, with the numbers behind it."""
    rows = []

    def add(name, threads, value, limit, ok, unit=""):
        rows.append({"target": name, "threads": threads, "value": value, "limit": limit,
                     "unit": unit, "met": None if value is None or ok is None else bool(ok)})

    for t in threads_list:
        s = lambda test, m: get(med, "sluice", t, test, m)  # noqa: E731
        hh = lambda test, m: get(med, "haproxy-http", t, test, m)  # noqa: E731
        ht = lambda test, m: get(med, "haproxy-tcp", t, test, m)  # noqa: E731
        r = ratio(s("keepalive", "rps"), hh("keepalive", "rps"))
        add("keep-alive req/s >= 1.0x HAProxy HTTP", t, r, 1.0, r is not None and r >= 1.0, "x")
        r = ratio(s("newconn", "rps"), hh("newconn", "rps"))
        add("new-connection req/s >= 1.0x HAProxy HTTP", t, r, 1.0, r is not None and r >= 1.0, "x")
        r = ratio(s("bulk_http", "mib_per_s"), ht("bulk_http", "mib_per_s"))
        add("bulk HTTP MiB/s >= 1.0x HAProxy TCP", t, r, 1.0, r is not None and r >= 1.0, "x")
        r = ratio(s("bulk_tls", "mib_per_s"), ht("bulk_tls", "mib_per_s"))
        add("bulk TLS passthrough MiB/s >= 1.0x HAProxy TCP", t, r, 1.0, r is not None and r >= 1.0, "x")
        r = ratio(s("keepalive", "cpu_us_per_req"), hh("keepalive", "cpu_us_per_req"))
        add("CPU/request (keep-alive) <= HAProxy HTTP", t, r, 1.0, r is not None and r <= 1.0, "x")
        r = ratio(s("newconn", "cpu_us_per_req"), hh("newconn", "cpu_us_per_req"))
        add("CPU/request (new connection) <= HAProxy HTTP", t, r, 1.0, r is not None and r <= 1.0, "x")
        r = ratio(s("keepalive", "p99_ms"), hh("keepalive", "p99_ms"))
        add("keep-alive p99 <= HAProxy HTTP", t, r, 1.0, r is not None and r <= 1.0, "x")
        v = s("memory", "rss_idle_kb")
        add("idle RSS <= 16 MiB", t, v and v / 1024, 16, v is not None and v <= 16 * 1024, "MiB")
        v = s("memory", "rss_peak_kb")
        add("peak RSS <= 32 MiB", t, v and v / 1024, 32, v is not None and v <= 32 * 1024, "MiB")
    ka10 = get(med, "sluice-10", 2, "keepalive", "rps")
    ka10k = get(med, "sluice-10000", 2, "keepalive", "rps")
    r = ratio(ka10k, ka10)
    add("10,000 entries keep-alive req/s within 5% of 10 entries", 2, r, 0.95, r is not None and r >= 0.95, "x")
    v = get(med, "sluice-10000", 2, "startup", "ready_ms")
    add("ready (listening) < 1 s with 10,000 entries", 2, v, 1000, v is not None and v < 1000, "ms")
    v = get(med, "sluice-10", 2, "startup", "ready_ms")
    add("ready (listening) < 1 s with 10 entries", 2, v, 1000, v is not None and v < 1000, "ms")
    r = ratio(get(med, "sluice-502", 2, "keepalive", "rps"), ka10)
    add("502 path req/s >= allowed path", 2, r, 1.0, r is not None and r >= 1.0, "x")
    return rows


def markdown(meta, med, rows, threads_list):
    out = []
    out.append(f"# Sluice benchmark ({meta.get('started', '?')})")
    out.append("")
    out.append(f"{meta.get('rounds')} round(s) x {meta.get('duration_s')} s per load, medians over rounds; "
               f"wrk -t1 -c{meta.get('connections')} (bulk: -c{meta.get('bulk_connections')}); "
               f"{meta.get('cpus')} CPUs shared by client, proxy and origin; "
               f"load average at start {meta.get('load_average_at_start')}, at end {meta.get('load_average_at_end')}; "
               f"sluice {meta.get('sluice_commit')}, {meta.get('haproxy')}.")
    out.append("")
    out.append("| proxy | thr | keep-alive req/s | p50 ms | p99 ms | new-conn req/s | new-conn p99 ms "
               "| bulk HTTP MiB/s | bulk TLS MiB/s | CPU µs/req keep-alive | CPU µs/req new-conn "
               "| RSS idle MiB | RSS peak MiB | ready ms |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for t in threads_list:
        for p in PROXIES:
            tt = 0 if p == "direct" else t
            if p == "direct" and t != threads_list[0]:
                continue
            g = lambda test, m: get(med, p, tt, test, m)  # noqa: E731
            idle, peak = g("memory", "rss_idle_kb"), g("memory", "rss_peak_kb")
            out.append("| " + " | ".join([
                p, "-" if p == "direct" else str(t),
                fmt(g("keepalive", "rps")), fmt(g("keepalive", "p50_ms"), 2), fmt(g("keepalive", "p99_ms"), 2),
                fmt(g("newconn", "rps")), fmt(g("newconn", "p99_ms"), 2),
                fmt(g("bulk_http", "mib_per_s")), fmt(g("bulk_tls", "mib_per_s")),
                fmt(g("keepalive", "cpu_us_per_req"), 1), fmt(g("newconn", "cpu_us_per_req"), 1),
                fmt(idle and idle / 1024, 1), fmt(peak and peak / 1024, 1), fmt(g("startup", "ready_ms")),
            ]) + " |")
    out.append("")
    out.append("Sluice extras (2 threads):")
    out.append("")
    out.append("| variant | keep-alive req/s | p99 ms | ready ms | RSS peak MiB |")
    out.append("|---|--:|--:|--:|--:|")
    for p, label in (("sluice-10", "10 ServiceEntries"), ("sluice-10000", "10,000 ServiceEntries"),
                     ("sluice-502", "502 path (unregistered Host), 10 entries")):
        g = lambda test, m: get(med, p, 2, test, m)  # noqa: E731
        peak = g("memory", "rss_peak_kb")
        out.append(f"| {label} | {fmt(g('keepalive', 'rps'))} | {fmt(g('keepalive', 'p99_ms'), 2)} "
                   f"| {fmt(g('startup', 'ready_ms'))} | {fmt(peak and peak / 1024, 1)} |")
    out.append("")
    out.append("Targets (ratios are sluice / HAProxy; `met` from the medians):")
    out.append("")
    out.append("| target | threads | value | limit | met |")
    out.append("|---|--:|--:|--:|:-:|")
    for r in rows:
        v = r["value"]
        val = "n/a" if v is None else (f"{v:.2f}{r['unit']}" if r["unit"] == "x" else f"{v:,.1f} {r['unit']}")
        lim = f"{r['limit']}{r['unit']}" if r["unit"] == "x" else f"{r['limit']} {r['unit']}"
        met = {True: "yes", False: "**no**", None: "n/a"}[r["met"]]
        out.append(f"| {r['target']} | {r['threads']} | {val} | {lim} | {met} |")
    errs = [f"{p}/{t}/{test}: {m['errors']:.0f} socket errors" for p, ts in med.items() for t, tests in ts.items()
            for test, m in tests.items() if m.get("errors")]
    if errs:
        out.append("")
        out.append("Socket errors (median per load; wrk counts server-closed connections as read errors): " + "; ".join(errs))
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--meta", default="{}")
    a = ap.parse_args()
    meta = json.loads(a.meta)
    for key in ("rounds", "duration_s", "quick", "connections", "bulk_connections", "cpus"):
        if key in meta:
            meta[key] = int(meta[key])
    samples = [json.loads(line) for line in open(a.samples) if line.strip()]
    med = medians(samples)
    threads_list = sorted({s["threads"] for s in samples if s["proxy"] in ("sluice", "haproxy-tcp", "haproxy-http")})
    rows = targets(med, threads_list)
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "medians": med, "targets": rows, "samples": samples}, f, indent=1)
        f.write("\n")
    with open(a.markdown, "w") as f:
        f.write(markdown(meta, med, rows, threads_list))


if __name__ == "__main__":
    main()
