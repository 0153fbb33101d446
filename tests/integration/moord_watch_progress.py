#!/usr/bin/python3
"""moord_watch_progress.py MOORD: watch progress notifications.

One real moord with --experimental-watch-progress-notify-interval=200ms.
One Watch stream holds watch A (progress_notify) and watch B (without).
After a put that A sees, A must receive periodic progress notifications:
an empty WatchResponse with A's id, not created/canceled, whose header
revision is the current revision; B must never receive one. Waits are
bounded (no timing is asserted): the test ends after A's second
notification, or fails after 20 s.
"""
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import grpc


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    if wire == 0:
        return varint(num << 3) + varint(payload)
    return varint((num << 3) | 2) + varint(len(payload)) + payload


def parse(buf):
    """Top-level fields of a protobuf message: {num: [values]}."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(buf, i)
        elif wire == 2:
            ln, i = read_varint(buf, i)
            v, i = buf[i:i + ln], i + ln
        else:
            raise ValueError("unexpected wire type %d" % wire)
        out.setdefault(num, []).append(v)
    return out


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    moord = sys.argv[1]
    work = tempfile.mkdtemp()
    cport, pport = free_port(), free_port()
    log = open(os.path.join(work, "log"), "w")
    proc = subprocess.Popen([
        moord, "--name", "m1", "--data-dir", os.path.join(work, "data"),
        "--experimental-watch-progress-notify-interval=200ms",
        "--listen-client-urls", "http://127.0.0.1:%d" % cport,
        "--advertise-client-urls", "http://127.0.0.1:%d" % cport,
        "--listen-peer-urls", "http://127.0.0.1:%d" % pport,
        "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pport,
        "--initial-cluster", "m1=http://127.0.0.1:%d" % pport,
    ], stdout=log, stderr=log)
    try:
        run(cport)
        proc.terminate()
        if proc.wait(timeout=20) != 0:
            raise AssertionError("moord exited %d" % proc.returncode)
        print("1 passed, 0 failed")
    except BaseException:
        proc.kill()
        proc.wait()
        print(open(os.path.join(work, "log")).read()[-3000:])
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(cport):
    for _ in range(100):
        try:
            if b'"health":"true"' in urllib.request.urlopen(
                    "http://127.0.0.1:%d/health" % cport, timeout=1).read():
                break
        except OSError:
            pass
        time.sleep(0.05)
    ch = grpc.insecure_channel("127.0.0.1:%d" % cport)
    put = ch.unary_unary("/etcdserverpb.KV/Put")
    watch = ch.stream_stream("/etcdserverpb.Watch/Watch")

    reqs = queue.Queue()

    def requests():
        while True:
            r = reqs.get()
            if r is None:
                return
            yield r

    # WatchRequest.create_request (1) {key 1, range_end 2, progress_notify 4}
    reqs.put(field(1, 2, field(1, 2, b"a") + field(2, 2, b"b") + field(4, 0, 1)))
    reqs.put(field(1, 2, field(1, 2, b"x")))
    stream = watch(requests(), timeout=20)
    created = []
    for raw in stream:
        m = parse(raw)
        if m.get(3, [0])[0]:
            created.append(m.get(2, [0])[0])
        if len(created) == 2:
            break
    a, b = created
    put(field(1, 2, b"a1") + field(2, 2, b"v"), timeout=5)
    current = None
    progress_a = 0
    for raw in stream:
        m = parse(raw)
        wid = m.get(2, [0])[0]
        rev = parse(m[1][0]).get(3, [0])[0] if 1 in m else 0
        events = m.get(11, [])
        if events:
            if wid != a:
                raise AssertionError("event for watch %d" % wid)
            current = rev
            continue
        if m.get(3, [0])[0] or m.get(4, [0])[0] or m.get(5, [0])[0]:
            raise AssertionError("unexpected control response %r" % m)
        if wid == b:
            raise AssertionError("progress for watch B (no progress_notify)")
        if wid != a:
            raise AssertionError("progress for unknown watch %d" % wid)
        if current is None:
            continue  # a period ended before the put's event came
        if rev != current:
            raise AssertionError("progress revision %d, want %d" % (rev, current))
        progress_a += 1
        if progress_a == 2:
            break
    if progress_a != 2:
        raise AssertionError("stream ended after %d progress notifications" % progress_a)
    reqs.put(None)
    stream.cancel()
    ch.close()


if __name__ == "__main__":
    main()
