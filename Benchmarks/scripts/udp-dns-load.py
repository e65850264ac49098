#!/usr/bin/env python3
"""Load generators for Benchmarks/scripts/udp-dns (standard library only, bounded in time;
the DNS load is dnsperf's).

  blast ADDR PORT SECONDS          datagrams of 64 bytes from one socket for SECONDS:
                                   prints "<sent>"
  sink ADDR PORT SECONDS           counts datagrams for SECONDS after the first one:
                                   prints "<received>"
  echo ADDR PORT SECONDS           UDP echo server for SECONDS (each datagram sent back)
  rtt ADDR PORT SECONDS            one datagram a new socket (so a new flow, whose first
                                   datagram waits for a verdict when UDP is captured) to an
                                   echo, one at a time, for SECONDS or 200,000 probes:
                                   prints "<answered> <p50_us> <p99_us>"
  tcp-echo ADDR PORT SECONDS       TCP echo server for SECONDS
  tcp-rtt ADDR PORT SECONDS        64-byte ping-pongs on one kept-alive TCP connection for
                                   SECONDS: prints "<round_trips_per_s> <p50_us> <p99_us>"
"""

import select
import socket
import sys
import time


def blast(addr, port, seconds):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"x" * 64
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(256):
            try:
                sock.sendto(payload, (addr, port))
                sent += 1
            except OSError:
                pass
    print(sent)


def sink(addr, port, seconds):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((addr, port))
    print("ready", flush=True)
    sock.settimeout(10)
    received = 0
    try:
        sock.recv(2048)
        received = 1
        sock.settimeout(0.5)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sock.recv(2048)
            received += 1
    except socket.timeout:
        pass
    print(received, flush=True)


def percentiles(latencies):
    latencies.sort()
    pick = lambda q: int(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e6) if latencies else 0
    return pick(0.5), pick(0.99)


def echo(addr, port, seconds):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, port))
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([sock], [], [], 0.2)
        if ready:
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)


def rtt(addr, port, seconds):
    latencies = []
    end = time.monotonic() + seconds
    for _ in range(200000):
        if time.monotonic() >= end:
            break
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1)
            started = time.perf_counter()
            try:
                sock.sendto(b"p" * 64, (addr, port))
                sock.recv(2048)
            except OSError:
                continue
            latencies.append(time.perf_counter() - started)
    print(len(latencies), *percentiles(latencies))


def tcp_echo(addr, port, seconds):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((addr, port))
    server.listen(16)
    print("ready", flush=True)
    conns = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([server] + conns, [], [], 0.2)
        for sock in ready:
            if sock is server:
                conn, _ = server.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns.append(conn)
                continue
            data = sock.recv(65536)
            if data:
                sock.sendall(data)
            else:
                conns.remove(sock)
                sock.close()


def tcp_rtt(addr, port, seconds):
    latencies = []
    with socket.create_connection((addr, port), timeout=2) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = b"k" * 64
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            conn.sendall(payload)
            got = 0
            while got < len(payload):
                chunk = conn.recv(len(payload) - got)
                if not chunk:
                    raise SystemExit("tcp-rtt: connection closed")
                got += len(chunk)
            latencies.append(time.perf_counter() - started)
    print(round(len(latencies) / seconds), *percentiles(latencies))


if __name__ == "__main__":
    # Each command: its function and how to read its arguments.
    COMMANDS = {
        "blast": (blast, (str, int, float)),
        "sink": (sink, (str, int, float)),
        "echo": (echo, (str, int, float)),
        "rtt": (rtt, (str, int, float)),
        "tcp-echo": (tcp_echo, (str, int, float)),
        "tcp-rtt": (tcp_rtt, (str, int, float)),
    }
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS or len(sys.argv) - 2 != len(COMMANDS[sys.argv[1]][1]):
        sys.exit(__doc__)
    function, types = COMMANDS[sys.argv[1]]
    function(*(kind(value) for kind, value in zip(types, sys.argv[2:])))
