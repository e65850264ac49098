#!/usr/bin/env python3
"""Writes the aioquic client Initial fixtures of QUICInitialTests (run by hand, no network).

aioquic's QuicConnection is driven without a socket: connect() then datagrams_to_send() gives
the datagrams a real client's first flight would send. Written here:
  aioquic-initial.bin       one datagram, SNI api.quic.test
  aioquic-nosni.bin         one datagram, no server_name extension
  aioquic-split-N.bin       a ClientHello too large for one datagram (long ALPN list), N = 1, 2, ...
"""
import sys
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection


def first_flight(server_name, alpn):
    config = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name=server_name)
    connection = QuicConnection(configuration=config)
    connection.connect(("192.0.2.1", 443), now=0.0)
    return [data for data, _ in connection.datagrams_to_send(now=0.0)]


def write(name, data):
    with open(name, "wb") as out:
        out.write(data)
    print(f"{name}: {len(data)} bytes")


[single] = first_flight("api.quic.test", ["h3"])
write("aioquic-initial.bin", single)
[nosni] = first_flight(None, ["h3"])
write("aioquic-nosni.bin", nosni)
# 40 ALPN ids of 30 bytes make a ClientHello of about 1.6 KB: two Initial datagrams.
split = first_flight("big.quic.test", ["h3"] + [f"x-sluice-split-fixture-{i:07d}" for i in range(40)])
if len(split) < 2:
    sys.exit("expected the ClientHello to span several datagrams")
for index, datagram in enumerate(split, start=1):
    write(f"aioquic-split-{index}.bin", datagram)
