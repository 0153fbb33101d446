"""Workload clients and the history they write.

Each client is one thread issuing one request at a time over its own gRPC
channels, recording every request (docs/chaos.md §1).  A client starts on
member (client % n) and moves to the next member after an indeterminate
outcome, so the load follows the cluster around a fault.  Every put
writes a value unique in the history: "<client>-<counter>".

register  get (linearizable), put, compare-and-swap (Txn on mod_revision
          against the last mod_revision this client saw) and a two-key txn
          (compare the first key's mod_revision, put both) over a few keys;
          every KEY_OPS operations per key the whole workload moves to a
          fresh set of keys (r/<generation>/<k>), so per-key histories stay
          short for the search.
set       puts of unique keys s/<value>: after the run one final read of
          the prefix must hold every acknowledged element.

Bounds: each client stops after max_ops requests, at its deadline, or when
stop is set; each request has the client's timeout.
"""

import json
import random
import threading
import time

from . import client

KEY_OPS = 200      # operations per register key before moving on
REG_KEYS = 3


class History:
    """Thread-safe JSON-lines writer; one clock for every client."""

    def __init__(self, path):
        self.f = open(path, "w", encoding="utf-8")
        self.lock = threading.Lock()
        self.next_id = 0
        self.ops = 0
        self.max_revision = 0  # highest header revision of any answer

    @staticmethod
    def clock():
        return time.monotonic_ns()

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return self.next_id

    def write(self, rec):
        line = json.dumps(rec, sort_keys=True)
        with self.lock:
            if rec.get("type") == "op":
                self.ops += 1
                if rec.get("outcome") == "ok":
                    self.max_revision = max(self.max_revision,
                                            rec["revision"])
            self.f.write(line + "\n")

    def close(self):
        with self.lock:
            self.f.close()


class Keys:
    """The register workload's current key set, shared by its clients."""

    def __init__(self, nkeys=REG_KEYS, key_ops=KEY_OPS):
        self.nkeys, self.key_ops = nkeys, key_ops
        self.lock = threading.Lock()
        self.count = 0

    def pick(self):
        """The current key set; counts one operation."""
        with self.lock:
            gen = self.count // (self.key_ops * self.nkeys)
            self.count += 1
        return ["r/%d/%d" % (gen, k) for k in range(self.nkeys)]


class Client(threading.Thread):
    def __init__(self, cid, kind, addrs, hist, keys, seed, timeout_s,
                 max_ops, deadline, stop):
        super().__init__(name="client-%d" % cid, daemon=True)
        self.cid, self.kind = cid, kind
        self.conns = [client.Conn(a, timeout_s) for a in addrs]
        self.cur = cid % len(addrs)
        self.hist, self.keys = hist, keys
        self.rnd = random.Random(seed * 7919 + cid)
        self.max_ops, self.deadline, self.stop = max_ops, deadline, stop
        self.n = 0
        self.seen = {}
        self.error = None

    def value(self):
        self.n += 1
        return "%d-%d" % (self.cid, self.n)

    def run(self):
        backoff = 0
        try:
            for _ in range(self.max_ops):
                if self.stop.is_set() or time.monotonic() > self.deadline:
                    break
                rec = self.register_op() if self.kind == "register" \
                    else self.set_op()
                rec.update(type="op", id=self.hist.new_id(), client=self.cid)
                client.execute(self.conns[self.cur], rec, self.hist.clock)
                self.hist.write(rec)
                if rec["outcome"] == "ok":
                    self.learn(rec)
                    backoff = 0
                elif rec["outcome"] == "info":
                    self.cur = (self.cur + 1) % len(self.conns)
                    # A down member refuses at once: back off (bounded) so
                    # a dead cluster does not fill the history with
                    # indeterminate requests, each costly for the search.
                    backoff = min(backoff + 1, 10)
                    if backoff > 1:
                        self.stop.wait(0.05 * backoff)
        except Exception as e:  # a harness bug: reported, fails the run
            self.error = "%s: %r" % (self.name, e)
        finally:
            for c in self.conns:
                c.close()

    def learn(self, rec):
        for kv in rec.get("kvs", ()):
            self.seen[kv["key"]] = kv["mod_revision"]
        for r in rec.get("responses", ()):
            for kv in r.get("kvs", ()):
                self.seen[kv["key"]] = kv["mod_revision"]
        if rec["op"] in ("put", "cas", "txn") and rec.get("succeeded", True):
            writes = [rec] if rec["op"] != "txn" else rec["success"]
            for w in writes:
                if "value" in w:
                    self.seen[w["key"]] = rec["revision"]

    def register_op(self):
        keys = self.keys.pick()
        k = self.rnd.choice(keys)
        x = self.rnd.random()
        if x < 0.4:
            return {"op": "get", "key": k}
        if x < 0.6:
            return {"op": "put", "key": k, "value": self.value()}
        if x < 0.9:
            return {"op": "cas", "key": k, "value": self.value(),
                    "expect_mod_revision": self.seen.get(k, 0)}
        k2 = self.rnd.choice([j for j in keys if j != k])
        v = self.value()
        return {"op": "txn",
                "compare": [{"key": k, "target": "mod", "result": "=",
                             "value": self.seen.get(k, 0)}],
                "success": [{"op": "put", "key": k, "value": v},
                            {"op": "put", "key": k2, "value": v + "b"}],
                "failure": [{"op": "get", "key": k},
                            {"op": "get", "key": k2}]}

    def set_op(self):
        v = self.value()
        return {"op": "put", "key": "s/" + v, "value": v}


class Bulk(threading.Thread):
    """disk-full's bulk writer: while `full` is set, puts of BULK_BYTES
    values to b/<k> (4 keys), BULK_BUDGET of them at most, so the WAL of the member on the full disk
    reaches the point where it needs space (the spare segment, a
    rollover).  Not recorded in the history (no checker needs 1 MiB
    values); summary() says how many it wrote.  Bounded by the deadline
    and stop; one request at a time, each with BULK_TIMEOUT_S."""

    BULK_BYTES = 1 << 20
    BULK_BUDGET = 80   # puts per run at most (disk.py's TMPFS_BYTES)
    BULK_TIMEOUT_S = 5.0

    def __init__(self, cid, addrs, full, deadline, stop):
        super().__init__(name="bulk-%d" % cid, daemon=True)
        self.conns = [client.Conn(a, self.BULK_TIMEOUT_S) for a in addrs]
        self.cur = cid % len(addrs)
        self.full, self.deadline, self.stop = full, deadline, stop
        self.ok = self.failed = 0
        self.errors = {}
        self.error = None

    def summary(self):
        top = sorted(self.errors.items(), key=lambda x: -x[1])[:3]
        return "bulk writer: %d x %d KiB put ok, %d refused or failed%s" % (
            self.ok, self.BULK_BYTES >> 10, self.failed,
            (" (" + "; ".join("%d: %s" % (n, e) for e, n in top) + ")")
            if top else "")

    def run(self):
        value = b"x" * self.BULK_BYTES
        n = 0
        try:
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                if not self.full.wait(0.1):
                    continue
                if n >= self.BULK_BUDGET:
                    break
                n += 1
                try:
                    self.conns[self.cur].call(
                        client.KV + "Put",
                        client.pb.put_req("b/%d" % (n % 4), value))
                    self.ok += 1
                except (client.Definite, client.Indefinite) as e:
                    self.failed += 1
                    msg = str(e)[:80]
                    self.errors[msg] = self.errors.get(msg, 0) + 1
                    self.cur = (self.cur + 1) % len(self.conns)
                    self.stop.wait(0.1)
        except Exception as e:  # a harness bug: reported, fails the run
            self.error = "%s: %r" % (self.name, e)
        finally:
            for c in self.conns:
                c.close()
