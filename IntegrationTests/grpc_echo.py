#!/usr/bin/env python3
"""A tiny gRPC server and client for the HTTP/2 e2e cases (85-http2.sh), with grpcio's
generic handlers and raw-bytes (identity) serializers: no .proto, no protoc.

server --port P: on 0.0.0.0:P, plaintext (h2c), methods of service e2e.Echo:
  Unary        returns the request bytes, with trailing metadata x-e2e-trailer: kept
  Sum          client stream: returns sha256 hex of every byte received
  Blob         request is a decimal N: server stream of N bytes in 64 KiB messages
  Chat         bidi: echoes each message
  Fail         aborts with NOT_FOUND "no such thing"

client calls: unary WORD, sum BYTES, blob BYTES, chat A,B,C, many N (N concurrent unary
calls on one channel), cancel BYTES (cancels a Blob after its first message), fail.

client TARGET CALL [ARG]: prints one line the case file compares, exit 0 on any gRPC status.
"""
import hashlib
import os
import sys
from concurrent import futures

os.environ.setdefault("GRPC_DNS_RESOLVER", "native")  # the namespace's hosts file
import grpc  # noqa: E402

IDENTITY = dict(request_deserializer=None, response_serializer=None)


def unary(request, context):
    context.set_trailing_metadata((("x-e2e-trailer", "kept"),))
    return request


def sum_stream(requests, context):
    digest = hashlib.sha256()
    for chunk in requests:
        digest.update(chunk)
    return digest.hexdigest().encode()


def blob(request, context):
    remaining = int(request.decode())
    block = bytes(range(256)) * 256  # 64 KiB, deterministic
    while remaining > 0:
        n = min(remaining, len(block))
        yield block[:n]
        remaining -= n


def chat(requests, context):
    for message in requests:
        yield message


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


def serve(port):
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, **IDENTITY),
        "Sum": grpc.stream_unary_rpc_method_handler(sum_stream, **IDENTITY),
        "Blob": grpc.unary_stream_rpc_method_handler(blob, **IDENTITY),
        "Chat": grpc.stream_stream_rpc_method_handler(chat, **IDENTITY),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, **IDENTITY),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("e2e.Echo", handlers),))
    server.add_insecure_port(f"0.0.0.0:{port}")
    server.start()
    print(f"grpc_echo listening on {port}", flush=True)
    server.wait_for_termination()


def describe(error):
    return f"status={error.code().name} message={error.details()}"


def client(target, call, arg):
    with grpc.insecure_channel(target) as channel:
        try:
            if call == "unary":
                method = channel.unary_unary("/e2e.Echo/Unary")
                reply, info = method.with_call(arg.encode(), timeout=10)
                trailers = dict(info.trailing_metadata() or ())
                print(f"status=OK reply={reply.decode()} trailer={trailers.get('x-e2e-trailer', '-')}")
            elif call == "sum":
                size = int(arg)
                data = os.urandom(size)
                chunks = (data[i : i + 65536] for i in range(0, size, 65536))
                reply = channel.stream_unary("/e2e.Echo/Sum")(chunks, timeout=30)
                same = reply.decode() == hashlib.sha256(data).hexdigest()
                print(f"status=OK sha256={'match' if same else 'differs'}")
            elif call == "blob":
                digest = hashlib.sha256()
                count = 0
                for message in channel.unary_stream("/e2e.Echo/Blob")(arg.encode(), timeout=30):
                    digest.update(message)
                    count += len(message)
                block = bytes(range(256)) * 256
                expected = hashlib.sha256((block * (int(arg) // len(block) + 1))[: int(arg)]).hexdigest()
                print(f"status=OK bytes={count} sha256={'match' if digest.hexdigest() == expected else 'differs'}")
            elif call == "chat":
                words = arg.split(",")
                replies = channel.stream_stream("/e2e.Echo/Chat")((w.encode() for w in words), timeout=10)
                print("status=OK replies=" + ",".join(r.decode() for r in replies))
            elif call == "many":
                method = channel.unary_unary("/e2e.Echo/Unary")
                calls = [method.future(str(i).encode(), timeout=20) for i in range(int(arg))]
                ok = sum(1 for i, call_ in enumerate(calls) if call_.result() == str(i).encode())
                print(f"status=OK calls={ok}")
            elif call == "cancel":
                stream = channel.unary_stream("/e2e.Echo/Blob")(arg.encode(), timeout=30)
                next(stream)
                stream.cancel()
                try:
                    for _ in stream:
                        pass
                    print("status=OK")
                except grpc.RpcError as error:
                    print(f"status={error.code().name}")
            elif call == "fail":
                channel.unary_unary("/e2e.Echo/Fail")(b"", timeout=10)
                print("status=OK")
            else:
                raise SystemExit(f"unknown call {call}")
        except grpc.RpcError as error:
            print(describe(error))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "server" and sys.argv[2] == "--port":
        serve(int(sys.argv[3]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "client":
        client(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
    else:
        raise SystemExit(__doc__)
