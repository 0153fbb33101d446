#!/usr/bin/python3
"""rpc_interop_client.py PORT [CA_FILE]: python3-grpcio (an independent gRPC
implementation, gRPC C-core) as the client of moor's rpc/ server, which
test_rpc_interop.c runs in-process with the methods below. With CA_FILE
the channel is TLS, verifying the server (certificate for 127.0.0.1)
against that CA. Exits 0 when every check passes; prints the first failure
otherwise.

  /interop.Echo/Unary   echoes the request
  /interop.Echo/Stream  request "N SIZE": N messages of SIZE bytes
  /interop.Echo/Bidi    echoes each message, OK at half-close
  /interop.Echo/Fail    request "CODE MESSAGE": finishes with them
  /interop.Echo/Meta    answers the value of metadata "token"
  /interop.Echo/Hang    never answers
"""
import sys

import grpc

port = int(sys.argv[1])
target = f"127.0.0.1:{port}"
opts = [("grpc.max_receive_message_length", 8 << 20),
        ("grpc.enable_retries", 0)]


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)


if len(sys.argv) > 2:
    with open(sys.argv[2], "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    channel = grpc.secure_channel(target, creds, options=opts)
else:
    channel = grpc.insecure_channel(target, options=opts)

with channel as ch:
    unary = ch.unary_unary("/interop.Echo/Unary")
    for size in (0, 1, 1000, 100000, 4 << 20):
        req = bytes((i * 7) & 0xFF for i in range(size))
        check(unary(req, timeout=10) == req, f"unary echo of {size} bytes")

    meta = ch.unary_unary("/interop.Echo/Meta")
    check(meta(b"", timeout=10, metadata=[("token", "t0k3n")]) == b"t0k3n",
          "metadata reaches the handler")

    stream = ch.unary_stream("/interop.Echo/Stream")
    got = list(stream(b"10000 64", timeout=30))
    check(len(got) == 10000 and all(len(m) == 64 for m in got),
          f"server stream of 10000 (got {len(got)})")

    bidi = ch.stream_stream("/interop.Echo/Bidi")
    msgs = [b"m%d" % i for i in range(1000)]
    check(list(bidi(iter(msgs), timeout=30)) == msgs, "bidi echo of 1000")

    fail = ch.unary_unary("/interop.Echo/Fail")
    try:
        fail(b"9 etcdserver: 100% failed \xc3\xbc".decode("utf-8").encode(),
             timeout=10)
        check(False, "Fail must raise")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.FAILED_PRECONDITION,
              f"status code crosses ({e.code()})")
        check(e.details() == "etcdserver: 100% failed \u00fc",
              f"percent-encoded message crosses ({e.details()!r})")

    try:
        ch.unary_unary("/interop.Echo/Nope")(b"", timeout=10)
        check(False, "unknown method must raise")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED,
              f"unknown method is UNIMPLEMENTED ({e.code()})")

    try:
        ch.unary_unary("/interop.Echo/Hang")(b"", timeout=0.2)
        check(False, "Hang must time out")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.DEADLINE_EXCEEDED,
              f"deadline ({e.code()})")

    try:
        unary(b"x" * 1000, timeout=10, compression=grpc.Compression.Gzip)
        check(False, "a compressed request must be refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED,
              f"compressed request refused ({e.code()}: {e.details()})")

    try:
        unary(b"y" * (5 << 20), timeout=10)
        check(False, "an oversize request must be refused")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED,
              f"oversize request ({e.code()})")

    # Cancellation from the client side mid-stream.
    it = stream(b"1000000 16", timeout=30)
    next(it)
    it.cancel()
    check(unary(b"after", timeout=10) == b"after",
          "the connection survives a cancelled stream")

print("interop client: all checks passed", flush=True)
