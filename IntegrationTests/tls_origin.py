#!/usr/bin/env python3
"""An HTTPS-only origin for 36-tls-origination.sh, run inside sl-ext.

  --listen ADDR:PORT:CERT:KEY[:CLIENT_CA]   one TLS listener; with CLIENT_CA it requires a
                                            client certificate issued by that CA (MUTUAL)

Every request is answered 200 with the body
    tls-origin local=<addr> host=<Host> sni=<SNI> client=<client certificate CN or ->
and appended to --log as one JSON line: proof that the request arrived over TLS (this
process speaks nothing else), with which SNI and which client certificate.
"""

import argparse
import http.server
import json
import socket
import socketserver
import ssl
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tls-origin"

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def client_cn(self):
        cert = self.connection.getpeercert()
        if not cert:
            return "-"
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return "?"

    def answer(self, with_body):
        record = {
            "local": self.connection.getsockname()[0],
            "peer": self.client_address[0],
            "host": self.headers.get("Host", ""),
            "path": self.path,
            "sni": getattr(self.connection, "sni", None) or "-",
            "client": self.client_cn(),
            "tls": self.connection.version(),
        }
        with self.server.log_lock:
            with open(self.server.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
        body = ("tls-origin local=%s host=%s sni=%s client=%s\n" % (
            record["local"], record["host"], record["sni"], record["client"])).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):  # pylint: disable=invalid-name
        self.answer(True)

    def do_HEAD(self):  # pylint: disable=invalid-name
        self.answer(False)


class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, context, log_path, log_lock):
        self.context = context
        self.log_path = log_path
        self.log_lock = log_lock
        super().__init__(address, Handler)

    def get_request(self):
        sock, peer = self.socket.accept()
        sock.settimeout(10)
        try:
            return self.context.wrap_socket(sock, server_side=True), peer
        except (ssl.SSLError, OSError):
            sock.close()
            raise


def make_context(cert, key, client_ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)

    def remember_sni(sock, name, _context):
        sock.sni = name

    context.sni_callback = remember_sni
    return context


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", action="append", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    lock = threading.Lock()
    servers = []
    for spec in args.listen:
        parts = spec.split(":")
        address, port, cert, key = parts[0], int(parts[1]), parts[2], parts[3]
        client_ca = parts[4] if len(parts) > 4 else None
        server = TLSServer((address, port), make_context(cert, key, client_ca), args.log, lock)
        servers.append(server)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("listening", flush=True)
    servers[0].serve_forever()


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    main()
