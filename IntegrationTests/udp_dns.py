#!/usr/bin/env python3
"""The UDP and DNS ends of the e2e (80-udp-dns.sh), standard library only.

  dns-server ADDR NAME=IP[/TTL]...
                               a DNS server on ADDR:53, UDP and TCP: A queries for the
                               NAMEs get their IP (TTL 60 s unless /TTL), other names
                               NXDOMAIN; stops by itself after --lifetime seconds.
                               --slow NAME=SECONDS: UDP answers for NAME wait that long
                               (printed "held NAME" when one arrives); --spoof NAME: each UDP
                               answer for NAME is preceded by two forged ones (another id and
                               address 203.0.113.66; the query's id with another question,
                               NXDOMAIN), as an off-path attacker would send
  udp-echo ADDR:PORT...        ([v6]:PORT too) echoes every datagram back, prefixed "echo "; same lifetime
  query SERVER NAME            one A query (--tcp: over TCP); prints "NOERROR ip..." or
                               the rcode name, or "timeout" after --timeout
  send ADDR PORT               one datagram (IPv4 or IPv6) from a fresh socket (a new flow); prints the
                               reply or "timeout" after --timeout
  flood ADDR:PORT...           datagrams round-robin to the targets, one socket (one flow)
                               each, until --count are sent or --seconds pass; replies are
                               not read; prints "sent N errors E"

Every wait is bounded; servers exit after --lifetime seconds whatever happens.
"""

import argparse
import os
import random
import select
import socket
import struct
import sys
import time

RCODES = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def read_name(data, offset):
    labels, jumps, end = [], 0, None
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | data[offset + 1]
            jumps += 1
            if jumps > 20:
                raise ValueError("pointer loop")
            continue
        if length == 0:
            return ".".join(labels), (end if end is not None else offset + 1)
        labels.append(data[offset + 1:offset + 1 + length].decode().lower())
        offset += 1 + length


def answer(query, names):
    qid, flags, qd = struct.unpack("!HHH", query[:6])
    name, end = read_name(query, 12)
    qtype = struct.unpack("!H", query[end:end + 2])[0]
    question = query[12:end + 4]
    ip, ttl = names.get(name, (None, 60))
    rflags = 0x8180 | (flags & 0x0100)
    if ip is None:
        return struct.pack("!HHHHHH", qid, rflags | 3, 1, 0, 0, 0) + question
    if qtype != 1:
        return struct.pack("!HHHHHH", qid, rflags, 1, 0, 0, 0) + question
    record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_aton(ip)
    return struct.pack("!HHHHHH", qid, rflags, 1, 1, 0, 0) + question + record


def spoofed(reply):
    """The answer with another id and its address replaced by 203.0.113.66."""
    qid = struct.unpack("!H", reply[:2])[0]
    forged = struct.pack("!H", qid ^ 0x5A5A) + reply[2:]
    if len(forged) >= 4 and struct.unpack("!H", forged[6:8])[0] > 0:
        forged = forged[:-4] + socket.inet_aton("203.0.113.66")
    return forged


def cmd_dns_server(args):
    names = {}
    for item in args.names:
        name, value = item.split("=", 1)
        ip, _, ttl = value.partition("/")
        names[name] = (ip, int(ttl or 60))
    slow = {name: float(seconds) for name, seconds in (item.split("=", 1) for item in args.slow)}
    spoof = set(args.spoof)
    delayed = []  # (due, reply, peer): the slow names' answers
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((args.addr, 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((args.addr, 53))
    tcp.listen(16)
    print("ready", flush=True)
    deadline = time.monotonic() + args.lifetime
    while time.monotonic() < deadline:
        now = time.monotonic()
        for item in [item for item in delayed if item[0] <= now]:
            delayed.remove(item)
            try:
                udp.sendto(item[1], item[2])
            except OSError:
                pass
        wait = min([0.5] + [max(0.0, item[0] - now) for item in delayed])
        ready, _, _ = select.select([udp, tcp], [], [], wait)
        for sock in ready:
            try:
                if sock is udp:
                    data, peer = udp.recvfrom(4096)
                    reply = answer(data, names)
                    name, _ = read_name(data, 12)
                    if name in spoof:
                        # A guessed id, then the query's id with another question (NXDOMAIN
                        # for evil.test): a forwarder must drop both.
                        udp.sendto(spoofed(reply), peer)
                        _, end = read_name(data, 12)
                        udp.sendto(answer(data[:12] + encode_name("evil.test") + data[end:end + 4], names), peer)
                    if name in slow:
                        print(f"held {name}", flush=True)
                        delayed.append((time.monotonic() + slow[name], reply, peer))
                    else:
                        udp.sendto(reply, peer)
                else:
                    conn, _ = tcp.accept()
                    with conn:
                        conn.settimeout(2)
                        length = struct.unpack("!H", recv_exact(conn, 2))[0]
                        reply = answer(recv_exact(conn, length), names)
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
            except (OSError, ValueError, IndexError, struct.error):
                pass


def recv_exact(conn, count):
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def udp_sockets(targets, connect=False):
    """A UDP socket for each target ("ADDR:PORT" or "[v6]:PORT"), bound to it, or connected
    to it and non-blocking."""
    socks = []
    for target in targets:
        host, port = target.rsplit(":", 1)
        host = host.strip("[]")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        if connect:
            sock.setblocking(False)
            sock.connect((host, int(port)))
        else:
            sock.bind((host, int(port)))
        socks.append(sock)
    return socks


def cmd_udp_echo(args):
    socks = udp_sockets(args.targets)
    print("ready", flush=True)
    deadline = time.monotonic() + args.lifetime
    while time.monotonic() < deadline:
        ready, _, _ = select.select(socks, [], [], 0.5)
        for sock in ready:
            data, peer = sock.recvfrom(4096)
            sock.sendto(b"echo " + data, peer)


def cmd_query(args):
    if args.uid is not None:
        # The socket's owner is who creates it: drop root first (the iptables owner match).
        os.setgroups([])
        os.setresgid(args.uid, args.uid, args.uid)
        os.setresuid(args.uid, args.uid, args.uid)
    qid = random.randrange(65536)
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(args.name) + struct.pack("!HH", 28 if args.type == "AAAA" else 1, 1)
    try:
        if args.tcp:
            with socket.create_connection((args.server, 53), timeout=args.timeout) as conn:
                conn.sendall(struct.pack("!H", len(query)) + query)
                reply = recv_exact(conn, struct.unpack("!H", recv_exact(conn, 2))[0])
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(args.timeout)
                if args.source_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(("", args.source_port))
                sock.sendto(query, (args.server, 53))
                reply = sock.recv(4096)
    except (socket.timeout, OSError):
        print("timeout")
        return 1
    rid, flags, _, an = struct.unpack("!HHHH", reply[:8])
    rcode = RCODES.get(flags & 0xF, f"RCODE{flags & 0xF}")
    _, offset = read_name(reply, 12)
    offset += 4
    ips = []
    for _ in range(an):
        _, offset = read_name(reply, offset)
        rtype, _, _, length = struct.unpack("!HHIH", reply[offset:offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            ips.append(socket.inet_ntoa(reply[offset:offset + 4]))
        elif rtype == 28 and length == 16:
            ips.append(socket.inet_ntop(socket.AF_INET6, reply[offset:offset + 16]))
        offset += length
    print(" ".join([rcode] + ips) if rid == qid else "wrong id")
    return 0


def cmd_send(args):
    with socket.socket(socket.AF_INET6 if ":" in args.addr else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(args.timeout)
        try:
            sock.sendto(args.data.encode(), (args.addr, args.port))
            print(sock.recv(4096).decode(errors="replace"))
        except (socket.timeout, OSError):
            print("timeout")
            return 1
    return 0


def cmd_flood(args):
    socks = udp_sockets(args.targets, connect=True)
    payload = b"f" * args.size
    sent = errors = 0
    deadline = time.monotonic() + args.seconds
    # Both bounds hold: the count, and the clock (read every 256 datagrams).
    while sent + errors < args.count:
        if (sent + errors) % 256 == 0 and time.monotonic() >= deadline:
            break
        sock = socks[(sent + errors) % len(socks)]
        try:
            sock.send(payload)
            sent += 1
        except OSError:  # a full socket buffer or queue (EAGAIN, ENOBUFS, EPERM): counted, not retried
            errors += 1
    for sock in socks:
        sock.close()
    print(f"sent {sent} errors {errors}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("dns-server")
    p.add_argument("addr")
    p.add_argument("names", nargs="*")
    p.add_argument("--lifetime", type=float, default=300)
    p.add_argument("--slow", action="append", default=[], metavar="NAME=SECONDS")
    p.add_argument("--spoof", action="append", default=[], metavar="NAME")
    p = sub.add_parser("udp-echo")
    p.add_argument("targets", nargs="+")
    p.add_argument("--lifetime", type=float, default=300)
    p = sub.add_parser("query")
    p.add_argument("server")
    p.add_argument("name")
    p.add_argument("--tcp", action="store_true")
    p.add_argument("--type", choices=["A", "AAAA"], default="A")
    p.add_argument("--timeout", type=float, default=2)
    p.add_argument("--source-port", type=int, default=0, help="UDP: send from this local port")
    p.add_argument("--uid", type=int, help="send as this uid and gid (run as root)")
    p = sub.add_parser("send")
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--data", default="ping")
    p.add_argument("--timeout", type=float, default=1)
    p = sub.add_parser("flood")
    p.add_argument("targets", nargs="+")
    p.add_argument("--count", type=int, default=200000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    handler = {"dns-server": cmd_dns_server, "udp-echo": cmd_udp_echo, "query": cmd_query, "send": cmd_send,
               "flood": cmd_flood}[args.cmd]
    sys.exit(handler(args) or 0)


if __name__ == "__main__":
    main()
