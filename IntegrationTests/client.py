#!/usr/bin/env python3
"""Raw clients for the e2e cases curl cannot express.

  keepalive ADDR PORT HOST...   one TCP connection, one GET / per Host, in order;
                                prints each status line ("closed" if none came)
  garbage ADDR PORT             sends random bytes in small pieces for a while,
                                then reports how the connection ended
  banner ADDR PORT              reads a server-first banner within --timeout,
                                then checks that the connection echoes
  echo ADDR PORT                sends --size random bytes, half-closes, and
                                checks the echo comes back whole, then EOF
                                (--keep-open: no half-close, just the bytes)
  expect-closed ADDR PORT       sends --send (or a TLS ClientHello for --tls-sni)
                                and succeeds only if the peer closes without a byte;
                                exit 3 if the peer answered, 4 if it kept the
                                connection open and silent (check_exit tells them apart)
  pattern-sha256 N              sha256 of the origin's /bytes/N

Every network wait has a timeout; exit 0 means the expectation held.
Only the standard library is used.
"""

import argparse
import os
import socket
import ssl
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree from importing origin
from origin import pattern_sha256  # noqa: E402  one definition of the pattern, shared with the origin

CONNECT_TIMEOUT_S = 5


def connect(addr, port, timeout):
    sock = socket.create_connection((addr, port), timeout=CONNECT_TIMEOUT_S)
    sock.settimeout(timeout)
    return sock


class Reader:
    """Buffered reads from a socket; every read is bounded by the socket timeout."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def line(self, limit=65536):
        while b"\n" not in self.buf:
            if len(self.buf) > limit:
                raise ValueError("line too long")
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def exactly(self, count):
        while len(self.buf) < count:
            self._fill()
        data, self.buf = self.buf[:count], self.buf[count:]
        return data

    def until_eof(self):
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        data, self.buf = self.buf, b""
        return data


def status_code(status_line):
    parts = status_line.split(" ", 2)
    return parts[1] if len(parts) > 1 else ""


def read_response(reader, method):
    """Read one HTTP/1.x response; return (status_line, headers, body)."""
    status = reader.line().decode("latin-1")
    while status_code(status).startswith("1"):
        # 1xx interim response (100 Continue): skip its header block
        while reader.line():
            pass
        status = reader.line().decode("latin-1")
    headers = {}
    while True:
        line = reader.line().decode("latin-1")
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    code = status_code(status)
    if method == "HEAD" or code in ("204", "304"):
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size = int(reader.line().split(b";", 1)[0], 16)
            if size == 0:
                while reader.line():
                    pass
                break
            body += reader.exactly(size)
            reader.line()
    elif "content-length" in headers:
        body = reader.exactly(int(headers["content-length"]))
    else:
        body = reader.until_eof()
    return status, headers, body


def cmd_keepalive(args):
    sock = connect(args.addr, args.port, args.timeout)
    reader = Reader(sock)
    ok = True
    for host in args.hosts:
        request = (f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-e2e-client\r\n"
                   f"Accept: */*\r\n\r\n").encode()
        try:
            sock.sendall(request)
            status, _, _ = read_response(reader, "GET")
            print(status)
        except (EOFError, OSError, ValueError) as err:
            print(f"closed ({err.__class__.__name__}: {err})")
            ok = False
            break
    sock.close()
    return 0 if ok else 1


def cmd_garbage(args):
    sock = connect(args.addr, args.port, args.timeout)
    sent = 0
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            piece = os.urandom(64)
            sock.sendall(piece)
            sent += len(piece)
            time.sleep(0.05)
        received = Reader(sock).until_eof()
        print(f"sent {sent} garbage bytes; peer answered {len(received)} bytes, then closed")
    except socket.timeout:
        print(f"sent {sent} garbage bytes; connection still open after {args.timeout}s")
    except OSError as err:
        print(f"sent {sent} garbage bytes; connection ended: {err}")
    sock.close()
    return 0


def cmd_banner(args):
    started = time.monotonic()
    sock = connect(args.addr, args.port, args.timeout)
    reader = Reader(sock)
    try:
        banner = reader.line(limit=4096)
    except socket.timeout:
        print(f"no banner within {args.timeout}s")
        return 1
    except (EOFError, OSError) as err:
        print(f"no banner: {err}")
        return 1
    elapsed = time.monotonic() - started
    print(f"banner {banner.decode('latin-1')!r} after {elapsed:.2f}s")
    if not banner.startswith(b"SSH-"):
        return 1
    try:
        sock.sendall(b"ping\n")
        echoed = reader.line()
    except (EOFError, OSError) as err:
        print(f"no echo after the banner: {err}")
        return 1
    print(f"echo {echoed.decode('latin-1')!r}")
    return 0 if echoed == b"ping" else 1


def cmd_echo(args):
    payload = os.urandom(args.size)
    sock = connect(args.addr, args.port, args.timeout)
    received = bytearray()
    outcome = []  # "eof" or the error that ended reading

    # Read while writing: an echo fills both directions' buffers, a sequential
    # client would deadlock against it.
    def read_all():
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    outcome.append("eof")
                    return
                received.extend(data)
        except OSError as err:
            outcome.append(err)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    try:
        sock.sendall(payload)
        if args.keep_open:
            deadline = time.monotonic() + args.timeout
            while len(received) < len(payload) and not outcome and time.monotonic() < deadline:
                time.sleep(0.01)
            got = bytes(received)
            sock.close()
            if got != payload:
                print(f"sent {len(payload)} bytes; got {len(got)} back within {args.timeout}s"
                      f"{'; connection ended: ' + str(outcome[0]) if outcome else ''}")
                return 1
            print(f"echoed {len(got)} bytes intact")
            return 0
        sock.shutdown(socket.SHUT_WR)  # half-close: the echo must still arrive in full
    except OSError as err:
        print(f"send failed: {err}")
        return 1
    reader.join(args.timeout + 1)
    got = bytes(received)
    ended = outcome[0] if outcome else f"no EOF within {args.timeout}s"
    sock.close()
    if ended != "eof" or got != payload:
        same = "" if got == payload[:len(got)] else " (and they differ from what was sent)"
        print(f"sent {len(payload)} bytes and half-closed; got {len(got)} bytes back{same}; ended by: {ended}")
        return 1
    print(f"echoed {len(got)} bytes intact after half-close")
    return 0


def client_hello(sni):
    """The bytes of a real TLS ClientHello for `sni`, produced by the ssl module."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    context = ssl.create_default_context()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


EXIT_ANSWERED = 3  # expect-closed: the peer sent bytes
EXIT_STILL_OPEN = 4  # expect-closed: no close and no byte within the timeout


def cmd_expect_closed(args):
    data = client_hello(args.tls_sni) if args.tls_sni else args.send.encode()
    sock = connect(args.addr, args.port, args.timeout)
    try:
        sock.sendall(data)
        got = sock.recv(65536)
    except socket.timeout:
        print(f"still open after {args.timeout}s and nothing received")
        return EXIT_STILL_OPEN
    except (ConnectionResetError, BrokenPipeError):
        got = b""  # a reset is a close without a byte too
    except OSError as err:
        print(f"connection error: {err}")
        return 1
    finally:
        sock.close()
    if got:
        print(f"peer sent {len(got)} bytes: {got[:80]!r}")
        return EXIT_ANSWERED
    print("closed without a byte")
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

    target("keepalive", 5).add_argument("hosts", nargs="+")
    target("garbage", 5).add_argument("--seconds", type=float, default=1.5)
    target("banner", 2)
    echo = target("echo", 10)
    echo.add_argument("--size", type=int, default=1 << 20)
    echo.add_argument("--keep-open", action="store_true",
                      help="read the echo back before closing, instead of half-closing first")
    closed = target("expect-closed", 3)
    closed.add_argument("--send", default="hello from the app\n")
    closed.add_argument("--tls-sni", help="send a TLS ClientHello with this server name instead")
    sub.add_parser("pattern-sha256").add_argument("size", type=int)

    args = parser.parse_args()
    if args.command == "pattern-sha256":
        print(pattern_sha256(args.size))
        return 0
    handlers = {
        "keepalive": cmd_keepalive,
        "garbage": cmd_garbage,
        "banner": cmd_banner,
        "echo": cmd_echo,
        "expect-closed": cmd_expect_closed,
    }
    try:
        return handlers[args.command](args)
    except OSError as err:
        print(f"{args.command}: cannot talk to {args.addr}:{args.port}: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
