"""etcdwire.py: the few etcd v3 calls `make bench` makes itself.

A small client over python3-grpcio that writes and reads the protobuf bytes
by hand (no generated code, no etcd package): Put, Range, Txn of puts and
Maintenance.Status. It serves bench/compare.py for what is not a load
workload: loading N keys, reading a member's leader, and the probes that
time a restart or a failover ("the first call that succeeds after T0").
The load workloads themselves are moor-bench's (C, one binary for both
servers).

Wire facts used (etcd's rpc.proto field numbers):
  PutRequest      1 key, 2 value
  RangeRequest    1 key, 2 range_end, 3 limit, 7 serializable
  TxnRequest      2 success (RequestOp: 2 request_put)
  StatusResponse  1 header (ResponseHeader: 2 member_id, 3 revision),
                  4 leader
"""
import os
import threading
import time

import grpc

# Short reconnect backoffs: a probe that starts before the server listens
# must see it within milliseconds, not after grpc's default 1 s backoff.
# grpc also uses min_reconnect_backoff as the connect timeout: it stays
# long, because etcd accepts TCP connections well before its gRPC server
# answers them (it sends SETTINGS once it serves).
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 5),
    ("grpc.min_reconnect_backoff_ms", 10000),
    ("grpc.max_reconnect_backoff_ms", 20),
    ("grpc.max_receive_message_length", 64 << 20),
]


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def field_varint(field, v):
    return varint(field << 3) + varint(v)


def decode(buf):
    """Returns {field: [values]} of one protobuf message: ints for varints,
    bytes for length-delimited fields (fixed-width fields are skipped)."""
    out = {}
    i = 0
    n = len(buf)

    def read_varint():
        nonlocal i
        shift = 0
        v = 0
        while True:
            if i >= n or shift > 63:
                raise ValueError("bad varint")
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while i < n:
        key = read_varint()
        field, wt = key >> 3, key & 7
        if wt == 0:
            out.setdefault(field, []).append(read_varint())
        elif wt == 2:
            ln = read_varint()
            if i + ln > n:
                raise ValueError("truncated field")
            out.setdefault(field, []).append(bytes(buf[i:i + ln]))
            i += ln
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
    return out


def put_request(key, value):
    return field_bytes(1, key) + field_bytes(2, value)


def range_request(key, serializable=False, limit=0):
    b = field_bytes(1, key)
    if limit:
        b += field_varint(3, limit)
    if serializable:
        b += field_varint(7, 1)
    return b


def txn_of_puts(pairs):
    return b"".join(
        field_bytes(2, field_bytes(2, put_request(k, v))) for k, v in pairs)


class Client:
    """One channel to one endpoint ("host:port"), unary calls only."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.channel = grpc.insecure_channel(endpoint,
                                             options=CHANNEL_OPTIONS)

        def method(path):
            return self.channel.unary_unary(path, request_serializer=None,
                                            response_deserializer=None)

        self.put_call = method("/etcdserverpb.KV/Put")
        self.range_call = method("/etcdserverpb.KV/Range")
        self.txn_call = method("/etcdserverpb.KV/Txn")
        self.status_call = method("/etcdserverpb.Maintenance/Status")

    def close(self):
        self.channel.close()

    def put(self, key, value, timeout=5.0):
        return self.put_call(put_request(key, value), timeout=timeout)

    def get(self, key, serializable=False, timeout=5.0):
        return self.range_call(range_request(key, serializable),
                               timeout=timeout)

    def status(self, timeout=2.0):
        """Returns (member_id, leader_id, revision)."""
        m = decode(self.status_call(b"", timeout=timeout))
        hdr = decode(m.get(1, [b""])[0])
        return (hdr.get(2, [0])[0], m.get(4, [0])[0], hdr.get(3, [0])[0])


def key_of(prefix, i, size):
    """Key number i: prefix, then i zero-padded to exactly size bytes."""
    digits = size - len(prefix)
    if digits < 8:
        raise ValueError("key size %d too small for prefix %r" %
                         (size, prefix))
    return prefix + b"%0*d" % (digits, i)


def load(endpoint, first, count, key_size, value_size, threads=4,
         per_txn=128, prefix=b"/bench/load/"):
    """Puts keys first .. first+count-1 (key_of) with random value_size-
    byte values (incompressible, as real data mostly is: a snapshot's
    compression must not flatter it), per_txn puts per Txn, from `threads`
    channels. Raises RuntimeError on the first failed call."""
    batches = (count + per_txn - 1) // per_txn
    state = {"next": 0, "error": None}
    lock = threading.Lock()

    def worker():
        c = Client(endpoint)
        try:
            while True:
                with lock:
                    b = state["next"]
                    state["next"] += 1
                    if b >= batches or state["error"]:
                        return
                lo = first + b * per_txn
                hi = min(first + count, lo + per_txn)
                rnd = os.urandom(value_size * (hi - lo))
                req = txn_of_puts(
                    (key_of(prefix, i, key_size),
                     rnd[(i - lo) * value_size:(i - lo + 1) * value_size])
                    for i in range(lo, hi))
                try:
                    c.txn_call(req, timeout=60)
                except grpc.RpcError as e:
                    with lock:
                        state["error"] = e
                    return
        finally:
            c.close()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if state["error"] is not None:
        raise RuntimeError("load into %s failed: %s" %
                           (endpoint, state["error"]))


def first_success(endpoints, request, deadline, interval=0.002,
                  call_timeout=1.0, fresh=False):
    """Sends request(client) -> (method, bytes) to every endpoint every
    `interval` seconds as asynchronous calls, overlapping (a call stuck on
    a dead leader does not delay the next), until one succeeds. Returns
    the monotonic time the first success arrived, or None at the deadline.

    fresh=False shares one channel per endpoint (the endpoints are up: a
    failover). fresh=True opens a new channel for every call, for a server
    that is starting: a grpc channel whose first connections failed (or
    were accepted by a server not serving yet: etcd accepts TCP before its
    gRPC server runs) can stay unusable for seconds. At most 4,096 calls
    (256 with fresh) are in flight; each ends by call_timeout."""
    shared = None if fresh else [Client(e) for e in endpoints]
    cap = 256 if fresh else 4096
    done = threading.Event()
    lock = threading.Lock()
    state = {"t": None, "inflight": 0}

    def on_done(fut, client):
        t = time.monotonic()
        ok = not fut.cancelled() and fut.exception() is None
        with lock:
            state["inflight"] -= 1
            if ok and state["t"] is None:
                state["t"] = t
                done.set()
        if client is not None:
            client.close()

    try:
        while not done.is_set() and time.monotonic() < deadline:
            for k, e in enumerate(endpoints):
                with lock:
                    if state["inflight"] >= cap:
                        break
                    state["inflight"] += 1
                own = Client(e) if fresh else None
                method, req = request(own if fresh else shared[k])
                fut = method.future(req, timeout=call_timeout)
                fut.add_done_callback(lambda f, c=own: on_done(f, c))
            done.wait(interval)
        return state["t"]
    finally:
        for c in shared or []:
            c.close()
