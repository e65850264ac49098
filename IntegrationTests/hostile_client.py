#!/usr/bin/env python3
"""Hostile clients for IntegrationTests/cases/50-hostile.sh and scripts/soak.

  raw ADDR PORT --send TEXT       sends TEXT (Python escapes: \\r \\n \\x00 ...) as is,
                                  then prints one line per response, "CODE BODYLEN"
                                  (--show-body: "CODE BODYLEN BODY"), and how it ended:
                                  "eof", "timeout" or "reset"
        --pad-header N            adds a header "X-Pad: " + N bytes before the blank line
        --extra-headers N         adds N headers "X-Extra-i: i"
  slowloris ADDR PORT             sends a request head one byte every --interval s and
                                  never finishes it; prints "CODE after S s" or how it ended
  conn-limit ADDR PORT --count N  opens N idle connections, waits --wait s, prints
                                  "open=A closed=B" (closed: the peer closed or reset it)
  tls ADDR PORT --sni NAME        TLS handshake (the suite's CA) with the ClientHello
        --split bytes|records|none  sent 1 byte per TCP segment, or cut into several TLS
                                  records; then GET / with Host NAME; prints the status line
  hello ADDR PORT --kind K        sends a hostile first flight (sslv2, record16 (a whole
                                  0x16 record that is no ClientHello), short16 (a 0x16
                                  record header that never completes), nosni (a real
                                  ClientHello without SNI)); exit 0 only if the peer
                                  closes without sending a byte
  soak ...                        the load mix of scripts/soak (see cmd_soak)

Every wait is bounded; exit 0 means the expectation held. Standard library only.
"""

import argparse
import asyncio
import codecs
import hashlib
import json
import os
import random
import resource
import select
import socket
import ssl
import statistics
import sys
import time

sys.dont_write_bytecode = True
from client import Reader, read_response, client_hello, connect  # noqa: E402
from origin import pattern_sha256  # noqa: E402


def unescape(text):
    return codecs.escape_decode(text.encode("latin-1"))[0]


# --- raw ---------------------------------------------------------------------

def cmd_raw(args):
    data = unescape(args.send)
    if args.pad_header or args.extra_headers:
        head, sep, rest = data.partition(b"\r\n\r\n")
        extra = b""
        for i in range(args.extra_headers):
            extra += f"X-Extra-{i}: {i}\r\n".encode()
        if args.pad_header:
            extra += b"X-Pad: " + b"a" * args.pad_header + b"\r\n"
        data = head + b"\r\n" + extra.rstrip(b"\r\n") + sep + rest
    sock = connect(args.addr, args.port, args.timeout)
    reader = Reader(sock)
    ended = "eof"
    try:
        sock.sendall(data)
        for _ in range(args.responses):
            status, _, body = read_response(reader, "HEAD" if args.head else "GET")
            code = status.split(" ", 2)[1] if " " in status else status
            line = f"{code} {len(body)}"
            if args.show_body:
                line += " " + body.decode("latin-1").strip().replace("\n", " | ")
            print(line, flush=True)
        else:
            ended = "done"
    except socket.timeout:
        ended = "timeout"
    except (ConnectionResetError, BrokenPipeError):
        ended = "reset"
    except EOFError:
        ended = "eof"
    except (OSError, ValueError) as err:
        ended = f"error {err}"
    sock.close()
    print(ended)
    return 0


# --- slowloris ---------------------------------------------------------------

def cmd_slowloris(args):
    head = b"GET / HTTP/1.1\r\nHost: aliyun.com\r\nUser-Agent: slowloris\r\nX-Slow: " + b"a" * 10000
    sock = connect(args.addr, args.port, args.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.monotonic()
    reader = Reader(sock)
    try:
        for byte in head:
            sock.sendall(bytes([byte]))
            readable, _, _ = select.select([sock], [], [], args.interval)
            if readable:
                status, _, _ = read_response(reader, "GET")
                print(f"{status.split(' ', 2)[1]} after {time.monotonic() - started:.1f} s")
                return 0
            if time.monotonic() - started > args.timeout:
                print(f"no answer after {args.timeout} s")
                return 1
        print("the whole head went out without an answer")
        return 1
    except (EOFError, OSError, ValueError) as err:
        print(f"closed without a response after {time.monotonic() - started:.1f} s ({err.__class__.__name__})")
        return 1
    finally:
        sock.close()


# --- conn-limit --------------------------------------------------------------

def peer_closed(sock):
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def cmd_conn_limit(args):
    socks = []
    failed = 0
    for _ in range(args.count):
        try:
            socks.append(connect(args.addr, args.port, args.timeout))
        except OSError:
            failed += 1
    time.sleep(args.wait)
    closed = sum(1 for s in socks if peer_closed(s)) + failed
    print(f"open={args.count - closed} closed={closed}")
    for sock in socks:
        sock.close()
    return 0


# --- TLS ---------------------------------------------------------------------

def split_records(flight, size):
    """Re-cut the handshake records of `flight` into records of at most `size` bytes."""
    out = b""
    while flight:
        ctype, version, length = flight[0], flight[1:3], int.from_bytes(flight[3:5], "big")
        payload, flight = flight[5:5 + length], flight[5 + length:]
        for i in range(0, len(payload), size):
            piece = payload[i:i + size]
            out += bytes([ctype]) + version + len(piece).to_bytes(2, "big") + piece
    return out


def cmd_tls(args):
    context = ssl.create_default_context(cafile=args.cafile)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=args.sni)
    sock = connect(args.addr, args.port, args.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    first = True
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                data = outgoing.read()
                if first and args.split == "bytes":
                    for i in range(len(data)):
                        sock.sendall(data[i:i + 1])
                        time.sleep(0.002)
                elif first and args.split == "records":
                    data = split_records(data, 64)
                    sock.sendall(data)
                elif data:
                    sock.sendall(data)
                first = False
                chunk = sock.recv(65536)
                if not chunk:
                    print("closed during the handshake")
                    return 1
                incoming.write(chunk)
        sock.sendall(outgoing.read())
        tls.write(f"GET / HTTP/1.1\r\nHost: {args.sni}\r\nConnection: close\r\n\r\n".encode())
        sock.sendall(outgoing.read())
        got = b""
        while b"\r\n" not in got:
            try:
                got += tls.read(65536)
            except ssl.SSLWantReadError:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                incoming.write(chunk)
        print(got.split(b"\r\n", 1)[0].decode("latin-1") or "no response")
        return 0 if got.startswith(b"HTTP/1.1 ") else 1
    except (OSError, ssl.SSLError) as err:
        print(f"failed: {err.__class__.__name__}: {err}")
        return 1
    finally:
        sock.close()


def no_sni_hello():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


HELLOS = {
    # SSLv2-compatible CLIENT-HELLO: 2-byte header with the high bit set, msg type 1.
    "sslv2": b"\x80\x2e\x01\x00\x02\x00\x15\x00\x00\x00\x10" + bytes(range(0x15)) + os.urandom(16),
    "record16": b"\x16\x03\x01\x00\x10" + b"\x63" * 16,
    "short16": b"\x16\x03\x01\x40\x00" + b"\x01\x00\x3f",
}


def cmd_hello(args):
    data = no_sni_hello() if args.kind == "nosni" else HELLOS[args.kind]
    sock = connect(args.addr, args.port, args.timeout)
    try:
        sock.sendall(data)
        got = sock.recv(65536)
    except socket.timeout:
        print(f"still open after {args.timeout}s and nothing received")
        return 1
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    finally:
        sock.close()
    if got:
        print(f"peer sent {len(got)} bytes: {got[:80]!r}")
        return 1
    print("closed without a byte")
    return 0


# --- soak --------------------------------------------------------------------
#
# One asyncio process keeps up to --concurrency connections busy for --seconds with a
# mix of workers; each worker is one client doing one kind of thing and reporting one
# outcome. Allowed transfers check their body's sha256 against the origin's pattern.
# The summary (JSON on stdout's last line) holds outcome counts by kind and an RSS series.

ALIYUN, UNREG, TCP_ECHO = "192.0.2.30", "192.0.2.31", "192.0.2.33"
SIZES = (1024, 65536, 1 << 20)
DIGESTS = {}
IO_TIMEOUT = 20


async def read_http_response(reader, method="GET"):
    status = (await reader.readline()).decode("latin-1")
    if not status:
        raise EOFError("closed before a response")
    headers = {}
    while True:
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    code = status.split(" ", 2)[1]
    body = b""
    if method != "HEAD" and "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return code, body


def check_body(size, code, body):
    if code != "200":
        return f"status {code}"
    if hashlib.sha256(body).hexdigest() != DIGESTS[size]:
        return f"sha256 mismatch ({len(body)} of {size} bytes)"
    return "ok"


async def w_keepalive(ctx):
    reader, writer = await asyncio.open_connection(ALIYUN, 80)
    try:
        for _ in range(random.randint(3, 15)):
            size = random.choice(SIZES)
            writer.write(f"GET /bytes/{size} HTTP/1.1\r\nHost: aliyun.com\r\n\r\n".encode())
            code, body = await read_http_response(reader)
            result = check_body(size, code, body)
            ctx.transfer(result)
            if result != "ok":
                return result
            await asyncio.sleep(random.random() * 0.2)
        return "ok"
    finally:
        writer.close()


async def w_newconn(ctx):
    size = random.choice(SIZES)
    reader, writer = await asyncio.open_connection(ALIYUN, 80)
    try:
        writer.write(f"GET /bytes/{size} HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n".encode())
        code, body = await read_http_response(reader)
        result = check_body(size, code, body)
        ctx.transfer(result)
        return result
    finally:
        writer.close()


async def w_tls(ctx):
    size = random.choice(SIZES[:2])
    reader, writer = await asyncio.open_connection(ALIYUN, 443, ssl=ctx.tls, server_hostname="aliyun.com")
    try:
        writer.write(f"GET /bytes/{size} HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n".encode())
        code, body = await read_http_response(reader)
        result = check_body(size, code, body)
        ctx.transfer(result)
        return result
    finally:
        writer.close()


async def w_slow(ctx):
    size = 1 << 20
    reader, writer = await asyncio.open_connection(ALIYUN, 80)
    try:
        writer.write(f"GET /bytes/{size} HTTP/1.1\r\nHost: aliyun.com\r\nConnection: close\r\n\r\n".encode())
        status = await reader.readline()
        while (await reader.readline()).strip():
            pass
        body = b""
        while len(body) < size:  # ~640 KiB/s: the sidecar must hold back, not buffer or drop
            piece = await reader.read(min(16384, size - len(body)))
            if not piece:
                break
            body += piece
            await asyncio.sleep(0.025)
        result = check_body(size, status.decode().split(" ", 2)[1], body)
        ctx.transfer(result)
        return result
    finally:
        writer.close()


async def expect_closed_without_byte(addr, port, data):
    reader, writer = await asyncio.open_connection(addr, port)
    try:
        writer.write(data)
        got = await reader.read(1)
        return "closed" if not got else "answered"
    except ConnectionResetError:
        return "closed"
    finally:
        writer.close()


async def w_denied_http(ctx):
    reader, writer = await asyncio.open_connection(UNREG, 80)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: unregistered.test\r\nConnection: close\r\n\r\n")
        code, _ = await read_http_response(reader)
        return "502" if code == "502" else f"status {code}"
    finally:
        writer.close()


async def w_denied_tls(ctx):
    return await expect_closed_without_byte(UNREG, 443, ctx.unreg_hello)


async def w_denied_tcp(ctx):
    return await expect_closed_without_byte(UNREG, 7000, b"hello from the soak\n")


async def w_garbage(ctx):
    reader, writer = await asyncio.open_connection(ALIYUN, 80)
    try:
        writer.write(b"\x00\xff" + os.urandom(random.randint(10, 4000)) + b"\r\n\r\n")
        await reader.read()  # whatever it answers (400), it must close
        return "closed"
    except ConnectionResetError:
        return "closed"
    finally:
        writer.close()


async def w_half_open(ctx):
    # Connects, says nothing, holds the connection, then vanishes.
    reader, writer = await asyncio.open_connection(ALIYUN, 80)
    try:
        try:
            got = await asyncio.wait_for(reader.read(1), timeout=random.uniform(5, 18))
            return "closed by sidecar" if not got else "answered"
        except asyncio.TimeoutError:
            return "held"
    except ConnectionResetError:
        return "closed by sidecar"
    finally:
        writer.close()


async def w_half_closed(ctx):
    # A whole request, then the client shuts its sending side down at once.
    reader, writer = await asyncio.open_connection(ALIYUN, 80)
    try:
        writer.write(b"GET /bytes/1024 HTTP/1.1\r\nHost: aliyun.com\r\n\r\n")
        writer.write_eof()
        data = await reader.read()
        return "answered" if data.startswith(b"HTTP/1.1 200") else "closed"
    except ConnectionResetError:
        return "closed"
    finally:
        writer.close()


async def w_slowloris(ctx):
    reader, writer = await asyncio.open_connection(ALIYUN, 80)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: aliyun.com\r\n")
        for _ in range(40):
            writer.write(b"X")
            await writer.drain()
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=0.25)
            except asyncio.TimeoutError:
                continue
            code = line.decode("latin-1").split(" ", 2)[1] if line.count(b" ") >= 1 else "closed"
            return "408" if code == "408" else f"status {code}"
        return "never cut off"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    finally:
        writer.close()


async def w_tcp_echo(ctx):
    payload = os.urandom(random.randint(100, 65536))
    reader, writer = await asyncio.open_connection(TCP_ECHO, 7000)
    try:
        writer.write(payload)
        got = await reader.readexactly(len(payload))
        result = "ok" if got == payload else "echo differs"
        ctx.transfer(result)
        return result
    finally:
        writer.close()


# kind: (worker, weight, allowed: must always come out "ok")
KINDS = {
    "allowed_keepalive": (w_keepalive, 10, True),
    "allowed_newconn": (w_newconn, 20, True),
    "allowed_tls": (w_tls, 6, True),
    "allowed_tcp": (w_tcp_echo, 6, True),
    "slow_reader": (w_slow, 4, True),
    "denied_http": (w_denied_http, 10, False),
    "denied_tls": (w_denied_tls, 6, False),
    "denied_tcp": (w_denied_tcp, 6, False),
    "garbage": (w_garbage, 5, False),
    "half_open": (w_half_open, 25, False),
    "half_closed": (w_half_closed, 4, False),
    "slowloris": (w_slowloris, 8, False),
}
# What a denied or broken client must see; anything else is counted as unexpected.
EXPECTED = {
    "denied_http": {"502"},
    "denied_tls": {"closed"},
    "denied_tcp": {"closed"},
    "garbage": {"closed"},
    "half_open": {"held", "closed by sidecar"},
    "half_closed": {"answered", "closed"},
    "slowloris": {"408", "closed"},
}


class Soak:
    def __init__(self, args):
        self.args = args
        self.outcomes = {}  # kind -> {outcome: count}
        self.transfers = {"ok": 0, "bad": 0}
        self.rss = []
        self.tls = ssl.create_default_context(cafile=args.cafile)
        self.unreg_hello = client_hello("unregistered.test")
        self.peak = 0
        self.active = 0

    def transfer(self, result):
        self.transfers["ok" if result == "ok" else "bad"] += 1

    def record(self, kind, outcome):
        per = self.outcomes.setdefault(kind, {})
        per[outcome] = per.get(outcome, 0) + 1

    async def run_one(self, kind, sem):
        worker = KINDS[kind][0]
        try:
            outcome = await asyncio.wait_for(worker(self), timeout=IO_TIMEOUT)
        except asyncio.TimeoutError:
            outcome = "timeout"
        except asyncio.IncompleteReadError as err:
            outcome = f"truncated ({len(err.partial)} bytes)"
        except Exception as err:  # pylint: disable=broad-except  # every failure is an outcome to count
            outcome = err.__class__.__name__
        finally:
            self.active -= 1
            sem.release()
        self.record(kind, outcome)

    async def sample_rss(self, stop):
        started = time.monotonic()
        while not stop.is_set():
            try:
                with open(f"/proc/{self.args.rss_pid}/status", encoding="ascii") as status:
                    kb = next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
                self.rss.append((round(time.monotonic() - started), kb, self.active))
            except (OSError, StopIteration):
                self.rss.append((round(time.monotonic() - started), -1, self.active))
            try:
                await asyncio.wait_for(stop.wait(), timeout=1)
            except asyncio.TimeoutError:
                pass

    async def main(self):
        kinds = list(KINDS)
        weights = [KINDS[k][1] for k in kinds]
        sem = asyncio.Semaphore(self.args.concurrency)
        stop = asyncio.Event()
        sampler = asyncio.create_task(self.sample_rss(stop))
        tasks = set()
        deadline = time.monotonic() + self.args.seconds
        started = 0
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(sem.acquire(), timeout=max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            kind = random.choices(kinds, weights)[0]
            self.active += 1
            self.peak = max(self.peak, self.active)
            task = asyncio.create_task(self.run_one(kind, sem))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            started += 1
            # Paced starts: a burst of thousands of SYNs at once would overflow the test
            # origin's accept queue (Python, backlog 256) and measure the origin, not us.
            await asyncio.sleep(1 / self.args.rate)
        if tasks:  # every worker is bounded by IO_TIMEOUT, so this ends
            await asyncio.wait(set(tasks), timeout=IO_TIMEOUT + 5)
        stop.set()
        await sampler
        return started


def cmd_soak(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for size in SIZES:
        DIGESTS[size] = pattern_sha256(size)
    soak = Soak(args)
    started = asyncio.run(soak.main())
    summary = {
        "started": started,
        "peak_concurrency": soak.peak,
        "transfers": soak.transfers,
        "outcomes": soak.outcomes,
        "rss": soak.rss,
        "allowed_kinds": [k for k, v in KINDS.items() if v[2]],
        "expected": {k: sorted(v) for k, v in EXPECTED.items()},
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def target(name, timeout):
        p = sub.add_parser(name)
        p.add_argument("addr")
        p.add_argument("port", type=int)
        p.add_argument("--timeout", type=float, default=timeout, help="seconds any single wait may take")
        return p

    raw = target("raw", 5)
    raw.add_argument("--send", required=True)
    raw.add_argument("--responses", type=int, default=1)
    raw.add_argument("--pad-header", type=int, default=0)
    raw.add_argument("--extra-headers", type=int, default=0)
    raw.add_argument("--show-body", action="store_true")
    raw.add_argument("--head", action="store_true", help="the requests are HEAD (responses have no body)")
    slow = target("slowloris", 10)
    slow.add_argument("--interval", type=float, default=0.2)
    limit = target("conn-limit", 5)
    limit.add_argument("--count", type=int, default=40)
    limit.add_argument("--wait", type=float, default=0.5)
    tls = target("tls", 10)
    tls.add_argument("--sni", required=True)
    tls.add_argument("--cafile", required=True)
    tls.add_argument("--split", choices=("none", "bytes", "records"), default="none")
    hello = target("hello", 3)
    hello.add_argument("--kind", choices=("sslv2", "record16", "short16", "nosni"), required=True)
    soak = sub.add_parser("soak")
    soak.add_argument("--seconds", type=float, default=60)
    soak.add_argument("--concurrency", type=int, default=1000)
    soak.add_argument("--cafile", required=True)
    soak.add_argument("--rss-pid", type=int, required=True)
    soak.add_argument("--rate", type=float, default=300, help="new clients started per second, at most")

    args = parser.parse_args()
    handlers = {"raw": cmd_raw, "slowloris": cmd_slowloris, "conn-limit": cmd_conn_limit,
                "tls": cmd_tls, "hello": cmd_hello, "soak": cmd_soak}
    try:
        return handlers[args.command](args)
    except OSError as err:
        print(f"{args.command}: cannot talk to {getattr(args, 'addr', '?')}: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
