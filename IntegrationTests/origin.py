#!/usr/bin/env python3
"""Origins that stand in for external services in the e2e suite.

One process, run inside the sl-ext namespace, serving on every address of that
namespace (IPv4 and IPv6, one dual-stack socket per port):

  :80    HTTP/1.1 with keep-alive
  :443   the same HTTP over TLS (certificate made by the suite's own CA)
  :7000  TCP echo
  :7001  server-first: sends a banner on accept, then echoes

HTTP behaviour:
  Host aliyun.com / *.aliyun.test, GET or HEAD /  -> 301 to https://www.aliyun.com/,
        which is what the real site answers and what Istio's walkthrough shows
  GET /bytes/N       -> N deterministic bytes (see pattern_chunks), streamed
  POST /sha256       -> sha256 hex of the body (Content-Length or chunked)
  GET /truncate/N    -> declares Content-Length N, sends the first N/2 bytes of
                        the pattern, then closes (an upstream dying mid-body)
  any /smuggled...   -> like "anything else", and also logs {"request": path,
                        "host": host} to --conn-log: proof a request reached us
  GET /delay/MS      -> 200 "delayed=MS\\n" after MS milliseconds (at most 30 s): a slow
                        answer, for requests that must still be in flight a while
  GET|POST /reset-once/KEY -> the first request for KEY (a POST's body read first) is
                        answered by closing the connection without a byte (an upstream
                        reset before the response); later ones get 200 "reset-once=KEY
                        seen=N\\n", N the requests for KEY so far: retries, counted
  GET /slow-once/KEY -> the first request for KEY is answered after 3 s, later ones at once,
                        with 200 "slow-once=KEY seen=N\\n": a try that outlives a perTryTimeout
  GET /fail-at/IP    -> 503 "failing=IP\\n" when reached on IP, else as "anything else": one
                        failing endpoint among several (outlier detection)
  anything else      -> 200 "origin=<local ip> host=<host>\\n"
Every response carries X-Origin-Local, the address the client reached.

Every accepted connection is appended to --conn-log as one JSON line,
{"listener":80,"local":"192.0.2.30","peer":"192.0.2.10"}, flushed at once, so
the suite can assert which addresses were dialled and which were never dialled.

Only the standard library is used, so the suite runs wherever python3 does.
"""

import argparse
import hashlib
import json
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

HTTP_PORT = 80
HTTPS_PORT = 443
ECHO_PORT = 7000
BANNER_PORT = 7001
BANNER = b"SSH-2.0-origin\r\n"

# Byte i of /bytes/N is i % 251. A prime period means a proxy that drops,
# repeats or reorders any aligned block changes the digest.
PATTERN_PERIOD = 251
PATTERN_BLOCK = bytes(range(PATTERN_PERIOD)) * 261  # 65511 bytes, whole periods

# Names that answer like the real aliyun.com (a 301 on "/").
ALIYUN_NAMES = ("aliyun.com",)
ALIYUN_SUFFIXES = (".aliyun.test",)

# The connection log, for the /smuggled branch (set by main).
REQUEST_LOG = None

IDLE_TIMEOUT_S = 60  # so a forgotten connection cannot hold a thread forever
READ_PIECE = 1 << 16
DELAY_MAX_MS = 30_000  # /delay/MS never holds a thread longer than this
SLOW_ONCE_S = 3  # how long /slow-once/KEY holds its first request

# /reset-once/KEY: requests seen per KEY (bounded: a test uses a handful of keys).
RESET_ONCE = {}
RESET_ONCE_LOCK = threading.Lock()
RESET_ONCE_MAX_KEYS = 1000


def reset_once_count(key):
    """Count a request for `key`; the new count (0 when the table is full)."""
    with RESET_ONCE_LOCK:
        if key not in RESET_ONCE and len(RESET_ONCE) >= RESET_ONCE_MAX_KEYS:
            return 0
        RESET_ONCE[key] = RESET_ONCE.get(key, 0) + 1
        return RESET_ONCE[key]


def pattern_chunks(total):
    """Yield the first `total` bytes of the pattern in blocks, never all at once."""
    remaining = total
    while remaining > 0:
        piece = PATTERN_BLOCK if remaining >= len(PATTERN_BLOCK) else PATTERN_BLOCK[:remaining]
        remaining -= len(piece)
        yield piece


def pattern_sha256(total):
    """The sha256 hex digest of /bytes/<total>; client.py uses it to check downloads."""
    digest = hashlib.sha256()
    for piece in pattern_chunks(total):
        digest.update(piece)
    return digest.hexdigest()


def plain_ip(address):
    """An IPv4 client of a dual-stack socket shows up as ::ffff:a.b.c.d; log the IPv4 form."""
    return address[7:] if address.startswith("::ffff:") else address


class ConnectionLog:
    """Appends one JSON line per accepted connection; safe to call from any thread."""

    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")  # pylint: disable=consider-using-with
        self._lock = threading.Lock()

    def accepted(self, listener, sock, peer):
        record = {"listener": listener, "local": plain_ip(sock.getsockname()[0]), "peer": plain_ip(peer[0])}
        with self._lock:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._file.flush()

    def request(self, path, host):
        record = {"request": path, "host": host}
        with self._lock:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._file.flush()


class OriginHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 origin; one instance serves one (keep-alive) connection."""

    protocol_version = "HTTP/1.1"
    server_version = "sluice-e2e-origin"
    timeout = IDLE_TIMEOUT_S

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # the connection log is the record the suite reads; keep stderr for errors

    # -- request parts -------------------------------------------------------

    def host(self):
        """Host header without port, lower case ("[2001:db8::30]:80" -> "2001:db8::30")."""
        value = (self.headers.get("Host") or "").strip().lower()
        if value.startswith("["):
            return value[1:].split("]", 1)[0]
        if value.count(":") == 1:
            return value.split(":", 1)[0]
        return value

    def local_ip(self):
        return plain_ip(self.connection.getsockname()[0])

    def is_aliyun(self):
        host = self.host()
        return host in ALIYUN_NAMES or host.endswith(ALIYUN_SUFFIXES)

    def read_body(self):
        """Yield the request body in pieces, whether Content-Length or chunked."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            yield from self._read_chunked()
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            piece = self.rfile.read(min(remaining, READ_PIECE))
            if not piece:
                raise ConnectionError("body ended early")
            remaining -= len(piece)
            yield piece

    def _read_chunked(self):
        while True:
            size_line = self.rfile.readline(1024)
            if not size_line:
                raise ConnectionError("chunked body ended early")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # trailer section: header lines until an empty line
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                return
            remaining = size
            while remaining > 0:
                piece = self.rfile.read(min(remaining, READ_PIECE))
                if not piece:
                    raise ConnectionError("chunk ended early")
                remaining -= len(piece)
                yield piece
            self.rfile.readline(8)  # the CRLF after each chunk

    # -- responses -----------------------------------------------------------

    def send_simple(self, code, body, extra_headers=(), with_body=True):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if code != 301 else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Origin-Local", self.local_ip())
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def reset_once(self, path, with_body):
        """The /reset-once/KEY answer: True when it handled the request."""
        if not path.startswith("/reset-once/"):
            return False
        seen = reset_once_count(path[len("/reset-once/"):])
        if seen == 1:
            self.close_connection = True  # no byte of a response: an upstream reset
            return True
        self.send_simple(200, f"reset-once={path[len('/reset-once/'):]} seen={seen}\n".encode(), with_body=with_body)
        return True

    def slow_once(self, path, with_body):
        """The /slow-once/KEY answer: True when it handled the request."""
        if not path.startswith("/slow-once/"):
            return False
        key = path[len("/slow-once/"):]
        seen = reset_once_count("slow-once/" + key)
        if seen == 1:
            time.sleep(SLOW_ONCE_S)
        self.send_simple(200, f"slow-once={key} seen={seen}\n".encode(), with_body=with_body)
        return True

    def answer(self, with_body):
        path = self.path.split("?", 1)[0]
        if self.reset_once(path, with_body) or self.slow_once(path, with_body):
            return
        if path.startswith("/fail-at/") and path[len("/fail-at/"):] == self.local_ip():
            self.send_simple(503, f"failing={self.local_ip()}\n".encode(), with_body=with_body)
            return
        if path == "/" and self.is_aliyun():
            body = (b"<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n"
                    b"<body>\r\n<center><h1>301 Moved Permanently</h1></center>\r\n</body>\r\n</html>\r\n")
            self.send_simple(301, body, [("Location", "https://www.aliyun.com/")], with_body)
        elif path.startswith("/bytes/") and path[len("/bytes/"):].isdigit():
            total = int(path[len("/bytes/"):])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(total))
            self.send_header("X-Origin-Local", self.local_ip())
            self.end_headers()
            if with_body:
                for piece in pattern_chunks(total):
                    self.wfile.write(piece)
        elif path.startswith("/delay/") and path[len("/delay/"):].isdigit():
            delay_ms = min(int(path[len("/delay/"):]), DELAY_MAX_MS)
            time.sleep(delay_ms / 1000)
            self.send_simple(200, f"delayed={delay_ms}\n".encode(), with_body=with_body)
        elif path.startswith("/truncate/") and path[len("/truncate/"):].isdigit():
            total = int(path[len("/truncate/"):])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(total))
            self.send_header("X-Origin-Local", self.local_ip())
            self.end_headers()
            if with_body:
                for piece in pattern_chunks(total // 2):
                    self.wfile.write(piece)
            self.close_connection = True  # and the connection closes short of N bytes
        else:
            if path.startswith("/smuggled") and REQUEST_LOG is not None:
                REQUEST_LOG.request(self.path, self.host())
            body = f"origin={self.local_ip()} host={self.host()}\n".encode()
            self.send_simple(200, body, with_body=with_body)

    def do_GET(self):  # pylint: disable=invalid-name
        self.answer(with_body=True)

    def do_HEAD(self):  # pylint: disable=invalid-name
        self.answer(with_body=False)

    def do_POST(self):  # pylint: disable=invalid-name
        digest = hashlib.sha256()
        for piece in self.read_body():
            digest.update(piece)
        if self.reset_once(self.path.split("?", 1)[0], with_body=True):
            return
        if self.path.split("?", 1)[0] == "/sha256":
            self.send_simple(200, (digest.hexdigest() + "\n").encode())
        else:
            self.send_simple(404, b"POST only to /sha256\n")


class _Server:
    """The few attributes BaseHTTPRequestHandler expects from its server."""

    server_name = "origin"
    server_port = HTTP_PORT


def serve_http(sock, peer, tls_context):
    if tls_context is not None:
        sock.settimeout(10)  # a client that never sends its ClientHello must not pin the thread
        sock = tls_context.wrap_socket(sock, server_side=True)
    try:
        OriginHandler(sock, peer, _Server())
    finally:
        sock.close()  # the TLS socket replaced the plain one, which run_connection closes


def serve_echo(sock, banner):
    sock.settimeout(IDLE_TIMEOUT_S)
    if banner:
        sock.sendall(banner)
    while True:
        data = sock.recv(READ_PIECE)
        if not data:
            break
        sock.sendall(data)
    # Half-close back, so a client that half-closed first still reads everything.
    sock.shutdown(socket.SHUT_WR)


def listen(port):
    """One dual-stack socket on every address of the namespace."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    sock.listen(256)
    return sock


def accept_loop(listener, port, conn_log, serve):
    while True:
        sock, peer = listener.accept()
        conn_log.accepted(port, sock, peer)  # before anything else, so even instant closes count
        threading.Thread(target=run_connection, args=(sock, serve), daemon=True).start()


def run_connection(sock, serve):
    try:
        serve(sock)
    except (OSError, ssl.SSLError, ValueError, ConnectionError):
        pass  # peers that hang up or send junk are part of the tests, not origin errors
    finally:
        try:
            sock.close()
        except OSError:
            pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--conn-log", required=False, help="file to append one JSON line per accepted connection")
    parser.add_argument("--cert", help="PEM certificate chain for :443")
    parser.add_argument("--key", help="PEM private key for :443")
    parser.add_argument("--print-sha256", type=int, metavar="N", help="print the sha256 of /bytes/N and exit")
    args = parser.parse_args()

    if args.print_sha256 is not None:
        print(pattern_sha256(args.print_sha256))
        return 0
    if not (args.conn_log and args.cert and args.key):
        parser.error("--conn-log, --cert and --key are required to serve")

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    conn_log = ConnectionLog(args.conn_log)
    global REQUEST_LOG  # pylint: disable=global-statement
    REQUEST_LOG = conn_log

    services = {
        HTTP_PORT: lambda s, p: serve_http(s, p, None),
        HTTPS_PORT: lambda s, p: serve_http(s, p, tls),
        ECHO_PORT: lambda s, p: serve_echo(s, None),
        BANNER_PORT: lambda s, p: serve_echo(s, BANNER),
    }
    # Bind everything first: a port that cannot be bound fails the start, not a test later.
    listeners = {port: listen(port) for port in services}
    for port, serve in services.items():
        def serve_conn(sock, serve=serve):
            serve(sock, sock.getpeername())
        threading.Thread(target=accept_loop, args=(listeners[port], port, conn_log, serve_conn),
                         daemon=True).start()

    print("origin ready: " + " ".join(f":{port}" for port in services), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
