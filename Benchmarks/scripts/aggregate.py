#!/usr/bin/env python3
"""Aggregate scripts/bench samples (JSON lines) into medians, ratios and target verdicts.

Writes the machine-readable result (--json: meta, every raw sample, medians, targets) and the
human table (--markdown). Medians are over rounds. A target's ratio is the median over rounds
of that round's sluice / reference ratio (the issue's "medians of ratios in one run"): the two
loads of a ratio ran seconds apart in the same round, so a slow stretch of the shared machine
moves both; the ratio of the medians is kept beside it.
"""
import argparse
import json
import statistics
from collections import defaultdict

PROXIES = ["direct", "haproxy-tcp", "haproxy-http", "sluice"]
# A proxy's peak RSS is recorded after each load; the keep-alive run's (test "memory") is the
# one the targets name, the others' are in the "any load" column.
LOADS = ("newconn", "bulk_http", "bulk_tls")
MTLS_LOADS = ("mtls_keepalive", "mtls_newconn")
ALL_LOADS = ("keepalive",) + LOADS + ("h2c", "routes") + MTLS_LOADS
METRICS = ["rps", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "mib_per_s", "cpu_us_per_req", "errors", "non_2xx",
           "sidecar_cpu_us_per_req", "gateway_cpu_us_per_req", "rss_idle_kb", "rss_peak_kb", "ready_ms", "requests"]


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


def round_values(samples, proxy, threads, test, metric):
    """{round: value} for one (proxy, threads, test, metric)."""
    return {s["round"]: s[metric] for s in samples
            if s["proxy"] == proxy and s["threads"] == threads and s["test"] == test and s.get(metric) is not None}


def round_ratios(samples, a, b):
    """Per-round a / b, for the rounds that measured both: (median, [ratio per round])."""
    va, vb = round_values(samples, *a), round_values(samples, *b)
    ratios = [va[r] / vb[r] for r in sorted(va) if r in vb and vb[r]]
    return (statistics.median(ratios) if ratios else None), ratios


def targets(med, threads_list, samples):
    """Each target of the performance issue, per thread count, with the numbers behind it."""
    rows = []

    def add(name, threads, value, limit, ok, unit="", per_round=None, of_medians=None):
        row = {"target": name, "threads": threads, "value": value, "limit": limit,
               "unit": unit, "met": None if value is None or ok is None else bool(ok)}
        if per_round is not None:
            row["per_round"] = per_round
            row["ratio_of_medians"] = of_medians
        rows.append(row)

    def compare(name, t, test, metric, reference, higher_is_better, a_proxy="sluice", limit=1.0):
        r, per_round = round_ratios(samples, (a_proxy, t, test, metric), (reference, t, test, metric))
        of_medians = ratio(get(med, a_proxy, t, test, metric), get(med, reference, t, test, metric))
        ok = r is not None and (r >= limit if higher_is_better else r <= limit)
        add(name, t, r, limit, ok, "x", per_round, of_medians)

    for t in threads_list:
        s = lambda test, m: get(med, "sluice", t, test, m)  # noqa: E731
        compare("keep-alive req/s >= 1.0x HAProxy HTTP", t, "keepalive", "rps", "haproxy-http", True)
        compare("new-connection req/s >= 1.0x HAProxy HTTP", t, "newconn", "rps", "haproxy-http", True)
        compare("bulk HTTP MiB/s >= 1.0x HAProxy TCP", t, "bulk_http", "mib_per_s", "haproxy-tcp", True)
        compare("bulk TLS passthrough MiB/s >= 1.0x HAProxy TCP", t, "bulk_tls", "mib_per_s", "haproxy-tcp", True)
        compare("CPU/request (keep-alive) <= HAProxy HTTP", t, "keepalive", "cpu_us_per_req", "haproxy-http", False)
        compare("CPU/request (new connection) <= HAProxy HTTP", t, "newconn", "cpu_us_per_req", "haproxy-http", False)
        compare("keep-alive p99 <= HAProxy HTTP", t, "keepalive", "p99_ms", "haproxy-http", False)
        v = s("memory", "rss_idle_kb")
        add("idle RSS <= 16 MiB", t, v and v / 1024, 16, v is not None and v <= 16 * 1024, "MiB")
        v = s("memory", "rss_peak_kb")
        add("peak RSS <= 32 MiB", t, v and v / 1024, 32, v is not None and v <= 32 * 1024, "MiB")
    for t in threads_list:
        compare("mTLS hop keep-alive req/s >= 1.0x HAProxy pair", t, "mtls_keepalive", "rps", "haproxy-mtls", True)
        compare("mTLS hop new-connection req/s >= 1.0x HAProxy pair", t, "mtls_newconn", "rps", "haproxy-mtls", True)
        compare("CPU/request (mTLS hop keep-alive) <= HAProxy pair", t, "mtls_keepalive", "cpu_us_per_req", "haproxy-mtls",
                False)
        compare("CPU/request (mTLS hop new connection) <= HAProxy pair", t, "mtls_newconn", "cpu_us_per_req",
                "haproxy-mtls", False)
    for t in threads_list:
        compare("h2c keep-alive req/s >= 1.0x HAProxy HTTP/2", t, "h2c", "rps", "haproxy-http", True)
        compare("CPU/request (h2c keep-alive) <= HAProxy HTTP/2", t, "h2c", "cpu_us_per_req", "haproxy-http", False)
    compare("10,000 entries keep-alive req/s within 5% of 10 entries", 2, "keepalive", "rps", "sluice-10", True,
            a_proxy="sluice-10000", limit=0.95)
    v = get(med, "sluice-10000", 2, "startup", "ready_ms")
    add("ready (listening) < 1 s with 10,000 entries", 2, v, 1000, v is not None and v < 1000, "ms")
    v = get(med, "sluice-10", 2, "startup", "ready_ms")
    add("ready (listening) < 1 s with 10 entries", 2, v, 1000, v is not None and v < 1000, "ms")
    compare("502 path req/s >= allowed path", 2, "keepalive", "rps", "sluice-10", True, a_proxy="sluice-502")
    compare("50 VirtualService routes keep-alive req/s within 5% of none", 2, "keepalive", "rps", "sluice-plain",
            True, a_proxy="sluice-routes", limit=0.95)
    compare("CPU/request with 50 VirtualService routes within 5% of none", 2, "keepalive", "cpu_us_per_req",
            "sluice-plain", False, a_proxy="sluice-routes", limit=1.05)
    return rows


def h2c_table(med, threads_list):
    """The h2c keep-alive load (h2load): one row per proxy and thread count."""
    out = ["h2c keep-alive (h2load, prior knowledge, to nginx's h2c server; HAProxy HTTP is `proto h2` "
           "on the bind and the server line, HAProxy TCP relays the bytes):", "",
           "| proxy | thr | req/s | mean ms | MiB/s | CPU µs/req | errors | non-2xx | RSS peak MiB |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for t in threads_list:
        for p in PROXIES:
            if p == "direct" and t != threads_list[0]:
                continue
            tt = 0 if p == "direct" else t
            g = lambda m: get(med, p, tt, "h2c", m)  # noqa: E731
            peak = g("rss_peak_kb")
            out.append("| " + " | ".join([
                p, "-" if p == "direct" else str(t), fmt(g("rps")), fmt(g("mean_ms"), 2), fmt(g("mib_per_s"), 1),
                fmt(g("cpu_us_per_req"), 1), fmt(g("errors")), fmt(g("non_2xx")), fmt(peak and peak / 1024, 1),
            ]) + " |")
    out.append("")
    return out


def mtls_table(med, threads_list):
    """The mTLS hop (wrk -> sidecar -> mutual TLS -> gateway -> nginx): one row per pair and thread
    count; CPU is the sidecar's and the gateway's together."""
    out = ["mTLS hop (wrk -> sidecar -> ISTIO_MUTUAL -> egress gateway -> nginx; HAProxy: `ssl crt client.pem "
           "ca-file root.pem verify required` on the sidecar's server line, `bind ... ssl crt gw.pem ca-file "
           "root.pem verify required` at the gateway; CPU counts both processes, split as sidecar + gateway):", "",
           "| pair | thr | keep-alive req/s | p50 ms | p99 ms | new-conn req/s | new-conn p99 ms "
           "| CPU µs/req keep-alive | sidecar + gateway | CPU µs/req new-conn | sidecar + gateway "
           "| errors ka/nc | non-2xx ka/nc | sidecar RSS peak MiB |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for t in threads_list:
        for p, label in (("haproxy-mtls", "HAProxy + HAProxy"), ("sluice", "sluice sidecar + sluice gateway")):
            g = lambda test, m: get(med, p, t, test, m)  # noqa: E731
            peaks = [v for v in (g(test, "rss_peak_kb") for test in MTLS_LOADS) if v is not None]
            peak = max(peaks) if peaks else None
            # Each process's median over rounds (so the two need not add up to the pair's median).
            split = lambda test: f"{fmt(g(test, 'sidecar_cpu_us_per_req'), 1)} + {fmt(g(test, 'gateway_cpu_us_per_req'), 1)}"  # noqa: E731
            out.append("| " + " | ".join([
                label, str(t),
                fmt(g("mtls_keepalive", "rps")), fmt(g("mtls_keepalive", "p50_ms"), 2), fmt(g("mtls_keepalive", "p99_ms"), 2),
                fmt(g("mtls_newconn", "rps")), fmt(g("mtls_newconn", "p99_ms"), 2),
                fmt(g("mtls_keepalive", "cpu_us_per_req"), 1), split("mtls_keepalive"),
                fmt(g("mtls_newconn", "cpu_us_per_req"), 1), split("mtls_newconn"),
                f"{fmt(g('mtls_keepalive', 'errors'))}/{fmt(g('mtls_newconn', 'errors'))}",
                f"{fmt(g('mtls_keepalive', 'non_2xx'))}/{fmt(g('mtls_newconn', 'non_2xx'))}",
                fmt(peak and peak / 1024, 1),
            ]) + " |")
    out.append("")
    return out


def http1_tables(med, threads_list):
    """The wrk loads' table and the sluice extras (registry size, the 502 path)."""
    out = []
    out.append("| proxy | thr | keep-alive req/s | p50 ms | p99 ms | new-conn req/s | new-conn p99 ms "
               "| bulk HTTP MiB/s | bulk TLS MiB/s | CPU µs/req keep-alive | CPU µs/req new-conn "
               "| RSS idle MiB | RSS peak MiB | RSS peak, any load | ready ms |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for t in threads_list:
        for p in PROXIES:
            tt = 0 if p == "direct" else t
            if p == "direct" and t != threads_list[0]:
                continue
            g = lambda test, m: get(med, p, tt, test, m)  # noqa: E731
            idle, peak = g("memory", "rss_idle_kb"), g("memory", "rss_peak_kb")
            peaks = [v for v in (g(test, "rss_peak_kb") for test in ("memory",) + LOADS) if v is not None]
            out.append("| " + " | ".join([
                p, "-" if p == "direct" else str(t),
                fmt(g("keepalive", "rps")), fmt(g("keepalive", "p50_ms"), 2), fmt(g("keepalive", "p99_ms"), 2),
                fmt(g("newconn", "rps")), fmt(g("newconn", "p99_ms"), 2),
                fmt(g("bulk_http", "mib_per_s")), fmt(g("bulk_tls", "mib_per_s")),
                fmt(g("keepalive", "cpu_us_per_req"), 1), fmt(g("newconn", "cpu_us_per_req"), 1),
                fmt(idle and idle / 1024, 1), fmt(peak and peak / 1024, 1),
                fmt(max(peaks) / 1024 if peaks else None, 1), fmt(g("startup", "ready_ms")),
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
    return out


def markdown(meta, med, rows, threads_list):
    out = []
    loads = meta.get("loads", " ".join(ALL_LOADS)).split()
    partial = set(ALL_LOADS) - set(loads)
    http1 = any(test in loads for test in ("keepalive",) + LOADS)
    out.append(f"# Sluice benchmark ({meta.get('started', '?')})")
    out.append("")
    out.append(f"{meta.get('rounds')} round(s) x {meta.get('duration_s')} s per load, medians over rounds; "
               f"loads {' '.join(loads)}; "
               f"wrk -t1 -c{meta.get('connections')} (bulk: -c{meta.get('bulk_connections')}); "
               f"h2load -t1 -c{meta.get('h2c_connections')} -m{meta.get('h2c_streams')}; "
               f"{meta.get('cpus')} CPUs shared by client, proxy and origin; "
               f"load average at start {meta.get('load_average_at_start')}, at end {meta.get('load_average_at_end')}; "
               f"sluice {meta.get('sluice_commit')} ({meta.get('sluice_binary', '?')}), {meta.get('haproxy')}.")
    out.append("")
    if http1:
        out += http1_tables(med, threads_list)
    if "h2c" in loads:
        out += h2c_table(med, threads_list)
    if any(test in loads for test in MTLS_LOADS):
        out += mtls_table(med, threads_list)
    out.append("Targets (ratios are sluice / reference: the median over rounds of each round's ratio, "
               "each round's ratio, and the ratio of the medians in the table above):")
    out.append("")
    out.append("| target | threads | value | per round | of medians | limit | met |")
    out.append("|---|--:|--:|--:|--:|--:|:-:|")
    for r in rows:
        v = r["value"]
        if v is None and partial:
            continue  # a target of a load this run did not measure
        val = "n/a" if v is None else (f"{v:.3f}{r['unit']}" if r["unit"] == "x" else f"{v:,.1f} {r['unit']}")
        lim = f"{r['limit']}{r['unit']}" if r["unit"] == "x" else f"{r['limit']} {r['unit']}"
        per_round = " / ".join(f"{x:.2f}" for x in r.get("per_round", [])) or "-"
        om = r.get("ratio_of_medians")
        of_medians = "-" if om is None else f"{om:.2f}x"
        met = {True: "yes", False: "**no**", None: "n/a"}[r["met"]]
        out.append(f"| {r['target']} | {r['threads']} | {val} | {per_round} | {of_medians} | {lim} | {met} |")
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
    threads_list = sorted({s["threads"] for s in samples
                           if s["proxy"] in ("sluice", "haproxy-tcp", "haproxy-http", "haproxy-mtls")})
    rows = targets(med, threads_list, samples)
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "medians": med, "targets": rows, "samples": samples}, f, indent=1)
        f.write("\n")
    with open(a.markdown, "w") as f:
        f.write(markdown(meta, med, rows, threads_list))


if __name__ == "__main__":
    main()
