#!/usr/bin/env python3
"""The HTTP/3 ends of the e2e (82-quic.sh), with aioquic (PyPI; scripts/setup installs it).

  server ADDR:PORT --cert F --key F   an HTTP/3 server on UDP ADDR:PORT: every request is
                                      answered 200 "h3 <authority><path>"; prints "ready",
                                      stops by itself after --lifetime seconds
  get URL --ca F                      one HTTP/3 GET; prints "<status> <body>", or "timeout"
                                      when no handshake or answer came within --timeout
      --connect ADDR                  send to ADDR instead of what the URL's name resolves to
                                      (the SNI stays the URL's name)
      --big-client-hello              offer 40 extra ALPN ids: a ClientHello of about 1.6 KB,
                                      which needs two Initial datagrams

Every wait is bounded; nothing is sent but to the addresses given.
"""

import argparse
import asyncio
import socket
import sys
from urllib.parse import urlparse

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent


class ServerProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._http = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if self._http is None:
            self._http = H3Connection(self._quic)
        for http_event in self._http.handle_event(event):
            if isinstance(http_event, HeadersReceived):
                headers = dict(http_event.headers)
                body = b"h3 " + headers.get(b":authority", b"") + headers.get(b":path", b"")
                self._http.send_headers(
                    http_event.stream_id,
                    [(b":status", b"200"), (b"content-length", str(len(body)).encode())],
                )
                self._http.send_data(http_event.stream_id, body, end_stream=True)
                self.transmit()


class ClientProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._http = H3Connection(self._quic)
        self._done = asyncio.get_running_loop().create_future()
        self._status = None
        self._body = b""

    async def get(self, authority, path):
        stream_id = self._quic.get_next_available_stream_id()
        self._http.send_headers(
            stream_id,
            [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority.encode()), (b":path", path.encode())],
            end_stream=True,
        )
        self.transmit()
        return await self._done

    def quic_event_received(self, event: QuicEvent) -> None:
        for http_event in self._http.handle_event(event):
            if isinstance(http_event, HeadersReceived):
                self._status = dict(http_event.headers).get(b":status", b"?").decode()
            elif isinstance(http_event, DataReceived):
                self._body += http_event.data
            if getattr(http_event, "stream_ended", False) and not self._done.done():
                self._done.set_result(f"{self._status} {self._body.decode(errors='replace')}")


async def run_server(args):
    host, port = args.listen.rsplit(":", 1)
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.load_cert_chain(args.cert, args.key)
    await serve(host, int(port), configuration=config, create_protocol=ServerProtocol)
    print("ready", flush=True)
    await asyncio.sleep(args.lifetime)


async def run_get(args):
    url = urlparse(args.url)
    port = url.port or 443
    address = args.connect or socket.getaddrinfo(url.hostname, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    alpn = list(H3_ALPN)
    if args.big_client_hello:
        alpn += [f"x-sluice-e2e-big-client-hello-{i:02d}" for i in range(40)]
    config = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name=url.hostname)
    config.load_verify_locations(args.ca)
    # A dropped Initial is retransmitted; the idle timeout bounds the handshake too.
    config.idle_timeout = args.timeout
    try:
        async with connect(address, port, configuration=config, create_protocol=ClientProtocol) as client:
            print(await asyncio.wait_for(client.get(url.netloc, url.path or "/"), args.timeout), flush=True)
    except (asyncio.TimeoutError, ConnectionError):
        print("timeout", flush=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("server")
    server.add_argument("listen")
    server.add_argument("--cert", required=True)
    server.add_argument("--key", required=True)
    server.add_argument("--lifetime", type=float, default=240)
    get = sub.add_parser("get")
    get.add_argument("url")
    get.add_argument("--ca", required=True)
    get.add_argument("--connect")
    get.add_argument("--big-client-hello", action="store_true")
    get.add_argument("--timeout", type=float, default=3)
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run_server(args) if args.command == "server" else run_get(args), args.lifetime + 5 if args.command == "server" else args.timeout + 2))
    except asyncio.TimeoutError:
        if args.command == "get":
            print("timeout", flush=True)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
