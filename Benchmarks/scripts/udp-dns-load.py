#!/usr/bin/env python3
"""Load generators for Benchmarks/scripts/udp-dns (standard library only, bounded in time).

  dns SERVER NAME SECONDS WINDOW   A queries for NAME, WINDOW in flight, for SECONDS:
                                   prints "<answered> <qps> <p50_us> <p99_us>"
  blast ADDR PORT SECONDS          datagrams of 64 bytes from one socket for SECONDS:
                                   prints "<sent>"
  sink ADDR PORT SECONDS           counts datagrams for SECONDS after the first one:
                                   prints "<received>"
"""

import random
import select
import socket
import struct
import sys
import time


def query(name, qid):
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)


def dns(server, name, seconds, window):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sent_at = {}
    latencies = []
    answered = 0
    next_id = random.randrange(65536)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        while len(sent_at) < window:
            next_id = (next_id + 1) & 0xFFFF
            sock.sendto(query(name, next_id), (server, 53))
            sent_at[next_id] = time.perf_counter()
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            sent_at.clear()  # lost ones: start a fresh window (counted as not answered)
            continue
        while True:
            try:
                reply = sock.recv(4096)
            except BlockingIOError:
                break
            started = sent_at.pop(struct.unpack("!H", reply[:2])[0], None)
            if started is not None:
                latencies.append(time.perf_counter() - started)
                answered += 1
    latencies.sort()
    pick = lambda q: int(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e6) if latencies else 0
    print(answered, round(answered / seconds), pick(0.5), pick(0.99))


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


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "dns":
        dns(args[0], args[1], float(args[2]), int(args[3]))
    elif cmd == "blast":
        blast(args[0], int(args[1]), float(args[2]))
    elif cmd == "sink":
        sink(args[0], int(args[1]), float(args[2]))
    else:
        sys.exit(__doc__)
