#!/usr/bin/python3
"""rpc_interop_server.py: python3-grpcio as the server for moor's rpc/
client (test_rpc_interop.c). Listens on 127.0.0.1 (port chosen by the
system), prints "PORT <n>" on stdout, serves until killed:

  /interop.Echo/Unary   echoes the request
  /interop.Echo/Stream  request "N SIZE": N messages of SIZE bytes, each
                        starting with its 4-byte big-endian sequence number
  /interop.Echo/Bidi    echoes each message
  /interop.Echo/Fail    request "CODE MESSAGE": aborts with them
  /interop.Echo/Meta    answers the value of metadata "token"
  /interop.Echo/Hang    sleeps until the call is cancelled
"""
import struct
import sys
import threading
from concurrent import futures

import grpc


def unary(req, ctx):
    return req


def stream(req, ctx):
    n, size = (int(x) for x in req.decode().split())
    pad = b"s" * max(0, size - 4)
    for i in range(n):
        yield struct.pack(">I", i) + pad


def bidi(it, ctx):
    for m in it:
        yield m


def fail(req, ctx):
    code, msg = req.decode("utf-8").split(" ", 1)
    status = next(s for s in grpc.StatusCode if s.value[0] == int(code))
    ctx.abort(status, msg)


def meta(req, ctx):
    for k, v in ctx.invocation_metadata():
        if k == "token":
            return v.encode()
    return b""


def hang(req, ctx):
    done = threading.Event()
    ctx.add_callback(done.set)
    done.wait(30)
    return b""


handlers = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Stream": grpc.unary_stream_rpc_method_handler(stream),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
    "Meta": grpc.unary_unary_rpc_method_handler(meta),
    "Hang": grpc.unary_unary_rpc_method_handler(hang),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers(
    (grpc.method_handlers_generic_handler("interop.Echo", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"PORT {port}", flush=True)
server.wait_for_termination()
