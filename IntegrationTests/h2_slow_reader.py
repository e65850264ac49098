#!/usr/bin/env python3
"""An HTTP/2 client that asks for a large download and then stops reading (86-http2-gateway.sh).

    h2_slow_reader.py HOST PORT AUTHORITY PATH SECONDS

Sends the connection preface, an empty SETTINGS frame and one GET (HEADERS with END_STREAM,
HPACK literals without indexing), then holds the connection open for SECONDS without reading
a byte and without any WINDOW_UPDATE, with a small receive buffer: a proxy that kept reading
from the origin would have to hold the response in its own memory. Prints "held" at the end.
"""
import socket
import struct
import sys
import time


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    # Literal header field without indexing, new name (RFC 7541 6.2.2), no Huffman.
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def main():
    host, port, authority, path, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(5)
    sock.connect((host, port))
    block = b"".join(literal(n.encode(), v.encode()) for n, v in
                     [(":method", "GET"), (":scheme", "http"), (":authority", authority), (":path", path)])
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 0x5, 1, block))
    time.sleep(seconds)
    sock.close()
    print("held")


if __name__ == "__main__":
    main()
