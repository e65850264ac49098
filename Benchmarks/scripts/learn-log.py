#!/usr/bin/env python3
"""Writes a synthetic sidecar access log for `Benchmarks/scripts/learn`: LINES JSON lines in the exact field
set and order `AccessLogRecord.jsonLine()` writes, a mix of HTTP requests (by Host), TLS
connections (by SNI) and opaque TCP connections (by address), over HOSTS distinct host names
and a few hundred addresses, with some noise a real log has (the sidecar's own text lines,
other tools' JSON, a truncated line). Deterministic for a given seed.

    Benchmarks/scripts/learn-log.py LINES [HOSTS] > access.log
"""
import random
import sys


def main():
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    host_count = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    rng = random.Random(23)
    hosts = []
    for i in range(host_count):
        # A third under a few shared CDN-like suffixes, so --fold has something to fold.
        if i % 3 == 0:
            hosts.append(f"edge-{i}.cdn{i % 7}.example.com")
        else:
            hosts.append(f"api-{i}.service{i % 50}.example.net")
    addresses = [f"192.0.2.{i}" for i in range(1, 200)] + [f"2001:db8::{i:x}" for i in range(1, 100)]
    start = 1_796_000_000_000  # 2026-12-01T…Z
    template = (
        '{{"start_time":"{time}","method":{method},"path":{path},"protocol":{protocol},'
        '"response_code":{code},"response_flags":"-","bytes_received":0,"bytes_sent":{sent},'
        '"duration":3,"upstream_service_time":{ust},"x_forwarded_for":null,"user_agent":{ua},'
        '"request_id":{rid},"authority":{authority},"upstream_host":"{upstream}",'
        '"upstream_cluster":"PassthroughCluster","upstream_local_address":"10.0.0.5:41234",'
        '"downstream_local_address":"{dst}","downstream_remote_address":"10.0.0.7:53512",'
        '"requested_server_name":{sni},"route_name":"allow_any",'
        '"upstream_transport_failure_reason":null,"trace_id":null,"istio_policy_status":null}}\n'
    )
    out = sys.stdout
    buffer = []
    for n in range(lines):
        ms = start + n * 7
        seconds, milli = divmod(ms, 1000)
        # RFC 3339 by hand (time.strftime is slow for a million lines).
        days, rest = divmod(seconds, 86400)
        time = civil(days) + "T%02d:%02d:%02d.%03dZ" % (rest // 3600, rest // 60 % 60, rest % 60, milli)
        roll = n % 100
        if roll == 99 and n % 1000 == 999:
            buffer.append("[2026-12-01 04:00:00.000][info] sluice: config reloaded\n")
            continue
        if roll == 98 and n % 1000 == 998:
            buffer.append('{"level":"info","msg":"another tool logs JSON too","ts":1796000000}\n')
            continue
        if roll == 97 and n % 10000 == 9997:
            buffer.append('{"start_time":"2026-12-01T04:00:00.000Z","method":"GET","path":"/","proto\n')
            continue
        host = hosts[rng.randrange(host_count)]
        if roll < 60:
            ip = addresses[rng.randrange(199)]
            buffer.append(template.format(
                time=time, method='"GET"', path='"/v1/items?page=2"', protocol='"HTTP/1.1"', code=200,
                sent=512, ust='"2"', ua='"curl/7.88.1"', rid='"f65db206-d2a0-4d75-bde9-c60d457e33e4"',
                authority=f'"{host}"', upstream=f"{ip}:80", dst=f"{ip}:80", sni="null"))
        elif roll < 90:
            ip = addresses[rng.randrange(199)]
            buffer.append(template.format(
                time=time, method="null", path="null", protocol="null", code=0, sent=4096, ust="null",
                ua="null", rid="null", authority="null", upstream=f"{ip}:443", dst=f"{ip}:443",
                sni=f'"{host}"'))
        else:
            ip = addresses[rng.randrange(len(addresses))]
            port = 5432 if roll < 95 else 6379
            dst = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
            buffer.append(template.format(
                time=time, method="null", path="null", protocol="null", code=0, sent=100, ust="null",
                ua="null", rid="null", authority="null", upstream=dst, dst=dst, sni="null"))
        if len(buffer) >= 10_000:
            out.write("".join(buffer))
            buffer.clear()
    out.write("".join(buffer))


def civil(days):
    """YYYY-MM-DD for days since 1970-01-01 (Howard Hinnant's civil_from_days)."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return "%04d-%02d-%02d" % (y, m, d)


if __name__ == "__main__":
    main()
