"""The lease workload and its checks (run.sh --lease-clients N).

Each lease client is one thread with one request outstanding.  A cycle:
LeaseGrant (TTL_S), a Put of a fresh key l/<client>/<n> bound to the
lease, then one plan drawn from the seed:
  keep     KEEP_ROUNDS rounds of one LeaseKeepAlive and one linearizable
           Range of the key, ROUND_S apart;
  revoke   two such rounds, LeaseRevoke, then two Ranges of the key;
  expire   one Range, then the lease is left to expire.
Every request becomes one record {"op": grant|put|keepalive|revoke|get,
"lease", "key", "invoke_ns", "complete_ns", "outcome" ok|fail|info,
"ttl" (grant, keepalive), "found" (get)} in the run's leases.jsonl: the
lease records stay out of history.jsonl, whose checker knows nothing of
leases and would call every expired key a lost write (docs/chaos.md §5:
keep leases off checked keys).

check(records) -> anomalies, two rules, on the harness's one monotonic
clock (the members' CLOCK_MONOTONIC too: clock-jump moves only their
wall clocks):
  lease-revoked-read   a Range invoked after a LeaseRevoke was
                       acknowledged still returned the lease's key;
  lease-early-expiry   a Range that completed before the lease could
                       have expired did not find its key: a lease answered
                       with TTL T to a grant or keep-alive invoked at t
                       lives at least until t + T (the leader handled it
                       after t; a new leader only extends leases), the key
                       was put (acknowledged) before the Range began, and
                       no revoke of the lease had been sent before the
                       Range completed.
What is not checked: that an expired lease's key goes away in time (a
liveness bound under faults is a timing assertion).
"""

import json
import random
import threading
import time

import grpc

from . import client, pb

LEASE = "/etcdserverpb.Lease/"
TTL_S = 3
ROUND_S = 0.5
KEEP_ROUNDS = 8
PLANS = ("keep", "revoke", "expire")


def grant_req(ttl):
    return pb.f_varint(1, ttl)


def keepalive_req(lid):
    return pb.f_varint(1, lid)


def revoke_req(lid):
    return pb.f_varint(1, lid)


def put_req(key, value, lid):
    return pb.f_bytes(1, key) + pb.f_bytes(2, value) + pb.f_varint(3, lid)


class LeaseClient(threading.Thread):
    def __init__(self, cid, addrs, seed, timeout_s, deadline, stop, clock):
        super().__init__(name="lease-%d" % cid, daemon=True)
        self.cid = cid
        self.addrs = addrs
        self.conns = [client.Conn(a, timeout_s) for a in addrs]
        self.cur = cid % len(addrs)
        self.rnd = random.Random(seed * 104729 + cid)
        self.timeout_s, self.deadline, self.stop = timeout_s, deadline, stop
        self.clock = clock
        self.records = []
        self.error = None
        self.n = 0

    def _call(self, rec, fn):
        """Run fn() -> response fields; record the outcome."""
        rec["invoke_ns"] = self.clock()
        try:
            rec.update(fn())
            rec["outcome"] = "ok"
        except client.Definite as e:
            rec["outcome"], rec["error"] = "fail", str(e)[:200]
        except client.Indefinite as e:
            rec["outcome"], rec["error"] = "info", str(e)[:200]
            self.cur = (self.cur + 1) % len(self.conns)
        rec["complete_ns"] = self.clock()
        self.records.append(rec)
        return rec["outcome"] == "ok"

    def _unary(self, method, req):
        return self.conns[self.cur].call(method, req)

    def _keepalive(self, lid):
        """One LeaseKeepAlive on its own stream; returns the TTL."""
        conn = self.conns[self.cur]
        call = conn.channel.stream_stream(LEASE + "LeaseKeepAlive")
        try:
            it = call(iter([keepalive_req(lid)]), timeout=self.timeout_s)
            for b in it:
                return {"ttl": pb.i64(pb.one(pb.decode(b), 3))}
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            msg = "%s: %s" % (code.name if code else "error",
                              e.details() if hasattr(e, "details") else e)
            if code in client.DEFINITE:
                raise client.Definite(msg) from None
            raise client.Indefinite(msg) from None
        raise client.Indefinite("keep-alive stream ended without an answer")

    def _get(self, key, lid):
        def fn():
            rev, kvs = pb.range_resp(self._unary(
                client.KV + "Range", pb.range_req(key)))
            return {"revision": rev, "found": bool(kvs)}
        self._call({"op": "get", "key": key, "lease": lid}, fn)

    def _sleep(self, s):
        return not self.stop.wait(s) and time.monotonic() < self.deadline

    def cycle(self):
        self.n += 1
        key = "l/%d/%d" % (self.cid, self.n)
        rec = {"op": "grant", "key": key, "lease": 0}

        def grant():
            d = pb.decode(self._unary(LEASE + "LeaseGrant", grant_req(TTL_S)))
            return {"lease": pb.one(d, 2), "ttl": pb.i64(pb.one(d, 3))}
        if not self._call(rec, grant) or not rec["lease"]:
            self._sleep(0.2)
            return
        lid = rec["lease"]
        if not self._call({"op": "put", "key": key, "lease": lid},
                          lambda: {"revision": pb.header(pb.decode(
                              self._unary(client.KV + "Put", put_req(
                                  key, "%d-%d" % (self.cid, self.n),
                                  lid))))[0]}):
            return
        plan = self.rnd.choice(PLANS)
        rounds = {"keep": KEEP_ROUNDS, "revoke": 2, "expire": 0}[plan]
        for _ in range(rounds):
            if not self._sleep(ROUND_S):
                return
            self._call({"op": "keepalive", "key": key, "lease": lid},
                       lambda: self._keepalive(lid))
            self._get(key, lid)
        if plan == "revoke":
            self._call({"op": "revoke", "key": key, "lease": lid},
                       lambda: {"revision": pb.header(pb.decode(self._unary(
                           LEASE + "LeaseRevoke", revoke_req(lid))))[0]})
            self._get(key, lid)
            self._get(key, lid)
        if plan == "expire":
            self._get(key, lid)

    def run(self):
        try:
            for _ in range(100000):
                if self.stop.is_set() or time.monotonic() > self.deadline:
                    break
                self.cycle()
        except Exception as e:  # a harness bug: reported, fails the run
            self.error = "%s: %r" % (self.name, e)
        finally:
            for c in self.conns:
                c.close()


def write(path, clients):
    n = 0
    with open(path, "w") as f:
        for c in clients:
            for r in c.records:
                r["client"] = c.cid
                f.write(json.dumps(r, sort_keys=True) + "\n")
                n += 1
    return n


def check(records):
    """Anomalies [(kind, text)] of lease records (any order)."""
    by_lease = {}
    for r in records:
        if r.get("lease"):
            by_lease.setdefault(r["lease"], []).append(r)
    out = []
    for lid, rs in sorted(by_lease.items()):
        rs.sort(key=lambda r: r["invoke_ns"])
        alive_until = 0
        put_done = None
        revoke_sent = None
        revoked_at = None
        for r in rs:
            if r["outcome"] == "ok" and r["op"] in ("grant", "keepalive") \
                    and r.get("ttl", 0) > 0:
                alive_until = max(alive_until,
                                  r["invoke_ns"] + r["ttl"] * 10**9)
            if r["op"] == "put" and r["outcome"] == "ok" and \
                    put_done is None:
                put_done = r["complete_ns"]
            if r["op"] == "revoke":
                if revoke_sent is None:
                    revoke_sent = r["invoke_ns"]
                if r["outcome"] == "ok" and revoked_at is None:
                    revoked_at = r["complete_ns"]
        for r in rs:
            if r["op"] != "get" or r["outcome"] != "ok":
                continue
            if revoked_at is not None and r["invoke_ns"] > revoked_at and \
                    r["found"]:
                out.append(("lease-revoked-read",
                            "lease %x key %s: a get invoked %.3f s after its "
                            "revoke was acknowledged still found the key" % (
                                lid, r["key"],
                                (r["invoke_ns"] - revoked_at) / 1e9)))
            if (not r["found"] and put_done is not None and
                    r["invoke_ns"] > put_done and
                    r["complete_ns"] < alive_until and
                    (revoke_sent is None or
                     revoke_sent > r["complete_ns"])):
                out.append(("lease-early-expiry",
                            "lease %x key %s: gone at a get that completed "
                            "%.3f s before the lease could expire" % (
                                lid, r["key"],
                                (alive_until - r["complete_ns"]) / 1e9)))
    return out
