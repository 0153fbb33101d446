#!/usr/bin/python3
"""rpc_bench_grpcio.py: python3-grpcio's figures for `moor-bench rpc`'s
workloads, for scale (moor-bench rpc --grpcio <this file>). The server runs
in a child process, the client in this one, both on grpc.aio (C-core
underneath), 127.0.0.1, cleartext. Prints "name value unit" rows.
"""
import argparse
import asyncio
import multiprocessing
import struct
import time

import grpc


def serve(port_q):
    async def main():
        async def unary(req, ctx):
            return req

        async def stream(req, ctx):
            n, size = struct.unpack(">QQ", req)
            msg = b"s" * size
            for _ in range(n):
                yield msg

        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        }
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("bench.B", handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        port_q.put(port)
        await server.wait_for_termination()

    asyncio.run(main())


async def unary_run(port, conns, inflight, seconds, size):
    chans = [grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(conns)]
    calls = [c.unary_unary("/bench.B/Unary") for c in chans]
    req = b"x" * size
    for c in calls:
        await c(req)
    lat = []
    end = time.monotonic() + seconds

    async def worker(i):
        call = calls[i % conns]
        while time.monotonic() < end:
            t = time.monotonic()
            await call(req)
            lat.append(time.monotonic() - t)

    start = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(inflight)))
    el = time.monotonic() - start
    for c in chans:
        await c.close()
    lat.sort()
    return len(lat) / el, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * .99)] * 1e3


async def stream_run(port, n, size):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_stream("/bench.B/Stream")
        start = time.monotonic()
        got = 0
        async for _ in call(struct.pack(">QQ", n, size)):
            got += 1
        return got / (time.monotonic() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--bytes", type=int, default=16)
    ap.add_argument("--stream-msgs", type=int, default=1000000)
    a = ap.parse_args()
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=serve, args=(q,), daemon=True)
    p.start()
    port = q.get(timeout=30)
    for conns in (1, 16):
        rps, p50, p99 = asyncio.run(
            unary_run(port, conns, a.inflight, a.seconds, a.bytes))
        print(f"unary_{conns}conn {rps:.0f} calls/s", flush=True)
        print(f"unary_{conns}conn_p50 {p50:.3f} ms", flush=True)
        print(f"unary_{conns}conn_p99 {p99:.3f} ms", flush=True)
    # Python streams far slower: a smaller count keeps the run short.
    n = min(a.stream_msgs, 200000)
    print(f"stream {asyncio.run(stream_run(port, n, a.bytes)):.0f} msgs/s",
          flush=True)
    p.kill()


if __name__ == "__main__":
    main()
