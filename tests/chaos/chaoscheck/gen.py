"""A small in-process model of one correct etcd, writing valid histories.

This is the self-tests' source of truth: random concurrent clients issue
get / put / delete / cas / multi-key txn / range reads / set appends over a
few keys, each request taking effect at one random instant strictly
inside its [invoke, complete] interval; some time out (info) and take
effect later or never; some fail definitely and take no effect.  Watchers
receive whole revisions in order, with prev_kv, progress notifications and
a resumption.  Every choice comes from random.Random(seed): the same seed
writes the same history.

The store follows etcd's MVCC rules: the revision starts at 1 and goes up
by one per modifying request (a txn's writes share it, each key's
create_revision, mod_revision and version as etcd keeps them), a delete of
a missing key and a failed compare do not create a revision.
"""

import heapq
import random
import zlib

from .history import in_range

REG_KEYS = ["r/0", "r/1", "r/2"]
REG_PREFIX, REG_END = "r/", "r0"
SET_PREFIX, SET_END = "s/", "s0"


def kv_json(key, st):
    value, mod, create, version = st
    return {"key": key, "value": value, "mod_revision": mod,
            "create_revision": create, "version": version}


class Store:
    def __init__(self):
        self.kv = {}
        self.rev = 1
        self.events = {}  # revision -> [event dicts, in txn order]
        self.khist = {}   # key -> [(revision, state or None)]

    def stale_get(self, key, back):
        """A serializable get on a member `back` revisions behind."""
        rev = max(1, self.rev - back)
        st = None
        for r, s in self.khist.get(key, ()):
            if r > rev:
                break
            st = s
        return True, [{"kvs": [kv_json(key, st)] if st else []}], rev

    def _cmp(self, c):
        st = self.kv.get(c["key"])
        if c["target"] == "value":
            if st is None:
                return False
            have = st[0]
        else:
            have = 0 if st is None else {"mod": st[1], "create": st[2],
                                         "version": st[3]}[c["target"]]
        r, v = c["result"], c["value"]
        return {"=": have == v, "!=": have != v, "<": have < v,
                ">": have > v}[r]

    def _range(self, key, range_end):
        return [kv_json(k, self.kv[k]) for k in sorted(self.kv)
                if in_range(k, key, range_end)]

    def txn(self, compares, success, failure):
        """Execute like etcd; returns (succeeded, responses, header rev)."""
        ok = all(self._cmp(c) for c in compares)
        branch = success if ok else failure
        will_write = any(o["op"] == "put" or
                         (o["op"] == "delete" and o["key"] in self.kv)
                         for o in branch)
        rev = self.rev + 1 if will_write else self.rev
        resps, evs = [], []
        for o in branch:
            k = o["key"]
            if o["op"] == "get":
                resps.append({"kvs": self._range(k, o.get("range_end"))})
            elif o["op"] == "put":
                prev = self.kv.get(k)
                st = ((o["value"], rev, rev, 1) if prev is None else
                      (o["value"], rev, prev[2], prev[3] + 1))
                self.kv[k] = st
                e = {"type": "PUT", "key": k, "value": o["value"],
                     "mod_revision": rev, "create_revision": st[2],
                     "version": st[3]}
                if prev is not None:
                    e["prev_kv"] = kv_json(k, prev)
                evs.append(e)
                self.khist.setdefault(k, []).append((rev, st))
                resps.append({"prev_kv": kv_json(k, prev)}
                             if o.get("_prev_kv") and prev else {})
            else:
                prev = self.kv.pop(k, None)
                resps.append({"deleted": 0 if prev is None else 1})
                if prev is not None:
                    self.khist.setdefault(k, []).append((rev, None))
                    evs.append({"type": "DELETE", "key": k,
                                "mod_revision": rev,
                                "prev_kv": kv_json(k, prev)})
        if will_write:
            self.rev = rev
            self.events[rev] = evs
        return ok, resps, rev

    def hash(self):
        h = 0
        for k in sorted(self.kv):
            h = zlib.crc32(repr((k, self.kv[k])).encode(), h)
        return h


class Gen:
    """Simulated clients and watchers over one Store, in virtual time."""

    def __init__(self, seed, clients=5, ops_per_client=60, p_info=0.06,
                 p_fail=0.03, watchers=True):
        self.rnd = random.Random(seed)
        self.seed = seed
        self.store = Store()
        self.n_clients = clients
        self.ops_per_client = ops_per_client
        self.p_info, self.p_fail = p_info, p_fail
        self.with_watchers = watchers
        self.heap = []
        self.seq = 0
        self.ops = []          # op records, by invoke
        self.watch_lines = []  # watch and watch_response records, in order
        self.next_id = 0
        self.values = 0
        self.seen = {}         # (client, key) -> last mod_revision seen
        self.seen_value = {}   # (client, key) -> last value seen
        self.busy = 0          # client events scheduled and not yet run
        self.n_watchers = 0

    # -- scheduling ------------------------------------------------------
    def at(self, t, fn, *args):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, fn, args))

    def value(self, client):
        self.values += 1
        return "c%d-%d" % (client, self.values)

    # -- requests --------------------------------------------------------
    def request(self, client):
        rnd = self.rnd
        k = rnd.choice(REG_KEYS)
        k2 = rnd.choice([j for j in REG_KEYS if j != k])
        x = rnd.random()
        seen = self.seen.get((client, k), 0)
        v = self.value(client)
        if x < 0.25:
            return {"op": "get", "key": k}
        if x < 0.28:
            # May be stale: served by a member that is behind.
            return {"op": "get", "key": k, "serializable": True}
        if x < 0.42:
            return {"op": "put", "key": k, "value": v,
                    "_prev_kv": rnd.random() < 0.5}
        if x < 0.47:
            return {"op": "delete", "key": k}
        if x < 0.65:
            return {"op": "cas", "key": k, "expect_mod_revision": seen,
                    "value": v}
        if x < 0.74:
            return {"op": "txn",
                    "compare": [{"key": k, "target": "mod", "result": "=",
                                 "value": seen}],
                    "success": [{"op": "put", "key": k, "value": v},
                                {"op": "put", "key": k2,
                                 "value": self.value(client)}],
                    "failure": [{"op": "get", "key": k},
                                {"op": "get", "key": k2}]}
        if x < 0.78:
            return {"op": "txn",
                    "compare": [{"key": k, "target": "version",
                                 "result": ">", "value": 0}],
                    "success": [{"op": "delete", "key": k},
                                {"op": "put", "key": k2, "value": v}],
                    "failure": [{"op": "put", "key": k,
                                 "value": self.value(client)}]}
        if x < 0.82:
            # Reads before and after its own write, in one revision.
            return {"op": "txn",
                    "compare": [{"key": k, "target": "value", "result": "=",
                                 "value": self.seen_value.get((client, k),
                                                              "-")}],
                    "success": [{"op": "get", "key": k},
                                {"op": "put", "key": k, "value": v},
                                {"op": "get", "key": k}],
                    "failure": [{"op": "get", "key": k}]}
        if x < 0.87:
            return {"op": "txn", "success": [{"op": "get", "key": k},
                                             {"op": "get", "key": k2}]}
        if x < 0.91:
            return {"op": "get", "key": REG_PREFIX, "range_end": REG_END}
        return {"op": "put", "key": "%s%d-%d" % (SET_PREFIX, client,
                                                 self.values), "value": v}

    def _execute(self, req):
        f = req["op"]
        if req.get("serializable"):
            return self.store.stale_get(req["key"], self.rnd.randint(0, 3))
        if f in ("get", "put", "delete"):
            sub = {k: v for k, v in req.items() if k != "op"}
            sub["op"] = f
            _, resps, rev = self.store.txn([], [sub], [])
            return True, resps, rev
        if f == "cas":
            c = [{"key": req["key"], "target": "mod", "result": "=",
                  "value": req["expect_mod_revision"]}]
            return self.store.txn(c, [{"op": "put", "key": req["key"],
                                       "value": req["value"]}],
                                  [{"op": "get", "key": req["key"]}])
        return self.store.txn(req.get("compare", []), req.get("success", []),
                              req.get("failure", []))

    def _note_seen(self, client, resps):
        for r in resps:
            for kv in r.get("kvs", ()):
                self.seen[(client, kv["key"])] = kv["mod_revision"]
                self.seen_value[(client, kv["key"])] = kv["value"]

    def client_at(self, t, fn, *args):
        self.busy += 1
        self.at(t, fn, *args)

    def start_op(self, client, n, t):
        self.busy -= 1
        if n >= self.ops_per_client:
            return
        rnd = self.rnd
        rec = dict(self.request(client))
        rec.update(type="op", id=self.next_id, client=client, invoke_ns=t)
        self.next_id += 1
        self.ops.append(rec)
        x = rnd.random()
        if x < self.p_fail:
            rec.update(outcome="fail", error="injected definite failure",
                       complete_ns=t + rnd.randint(1, 3000))
            self.client_at(rec["complete_ns"], self.start_op, client, n + 1,
                           rec["complete_ns"])
        elif x < self.p_fail + self.p_info:
            timeout = t + 6000
            rec.update(outcome="info", error="timeout", complete_ns=timeout)
            if rnd.random() < 0.6:  # takes effect, maybe after the timeout
                self.client_at(t + rnd.randint(1, 12000), self.lin_op, rec,
                               None)
            self.client_at(timeout, self.start_op, client, n + 1, timeout)
        else:
            lin = t + rnd.randint(1, 3000)
            done = lin + rnd.randint(1, 3000)
            rec["complete_ns"] = done
            self.client_at(lin, self.lin_op, rec, (client, n, done))

    def lin_op(self, rec, cont):
        self.busy -= 1
        succeeded, resps, rev = self._execute(rec)
        if cont is None:
            return  # an indeterminate op: its response is never seen
        client, n, done = cont
        rec.update(outcome="ok", revision=rev)
        f = rec["op"]
        if f in ("get", "put", "delete"):
            rec.update(resps[0])
        elif f == "cas":
            rec["succeeded"] = succeeded
            if not succeeded:
                rec["kvs"] = resps[0]["kvs"]
        else:
            rec["succeeded"] = succeeded
            rec["responses"] = resps
        self._note_seen(client, resps)
        if f in ("put", "cas") and succeeded:
            self.seen[(client, rec["key"])] = rev
        self.client_at(done, self.start_op, client, n + 1, done)

    # -- watchers --------------------------------------------------------
    def watch(self, t, wid, key, range_end, start, prev_kv, resumes=None,
              cancel_at=None):
        self.n_watchers += 1
        rec = {"type": "watch", "watcher": wid, "client": 100 +
               self.n_watchers, "key": key, "range_end": range_end,
               "start_revision": start, "prev_kv": prev_kv,
               "progress_notify": True, "invoke_ns": t}
        if resumes is not None:
            rec["resumes"] = resumes
        self.watch_lines.append(rec)
        w = {"id": wid, "key": key, "range_end": range_end,
             "prev_kv": prev_kv, "cursor": start if start > 0 else
             self.store.rev + 1, "cancel_at": cancel_at, "alive": True}
        self.watch_lines.append({"type": "watch_response", "watcher": wid,
                                 "time_ns": t + 1, "created": True,
                                 "revision": self.store.rev})
        self.at(t + 2, self.deliver, w)
        return w

    def _events_for(self, w, rev):
        out = []
        for e in self.store.events.get(rev, ()):
            if in_range(e["key"], w["key"], w["range_end"]):
                e = dict(e)
                if not w["prev_kv"]:
                    e.pop("prev_kv", None)
                out.append(e)
        return out

    def deliver(self, w, final=False):
        if not w["alive"]:
            return
        rnd, t = self.rnd, self.now
        max_revs = rnd.randint(1, 4)
        evs = []
        while w["cursor"] <= self.store.rev and max_revs > 0:
            e = self._events_for(w, w["cursor"])
            w["cursor"] += 1
            if e:
                evs.extend(e)
                max_revs -= 1
        if evs:
            self.watch_lines.append({"type": "watch_response",
                                     "watcher": w["id"], "time_ns": t,
                                     "revision": self.store.rev,
                                     "events": evs})
        elif w["cursor"] > self.store.rev and (final or rnd.random() < 0.2):
            self.watch_lines.append({"type": "watch_response",
                                     "watcher": w["id"], "time_ns": t,
                                     "revision": self.store.rev,
                                     "progress": True})
        if not final and w["cancel_at"] is not None and t >= w["cancel_at"]:
            w["alive"] = False
            self.watch_lines.append({"type": "watch_response",
                                     "watcher": w["id"], "time_ns": t + 1,
                                     "canceled": True,
                                     "revision": self.store.rev})
            nid = w["id"] + "r"
            self.at(t + 5, self.watch_resumed, nid, w)
            return
        if not final and self.busy > 0:
            self.at(t + rnd.randint(500, 4000), self.deliver, w)

    def watch_resumed(self, nid, old):
        w = self.watch(self.now, nid, old["key"], old["range_end"],
                       old["cursor"], old["prev_kv"], resumes=old["id"])
        self.live.append(w)

    # -- the run -----------------------------------------------------------
    def run(self):
        """Simulate; returns the history as a list of record dicts."""
        self.now = 0
        self.live = []
        for c in range(self.n_clients):
            t0 = self.rnd.randint(0, 1000)
            self.client_at(t0, self.start_op, c, 0, t0)
        if self.with_watchers:
            self.at(1, self._start_watchers)
        while self.heap:
            t, _, fn, args = heapq.heappop(self.heap)
            self.now = t
            fn(*args)
        return self._finish()

    def _start_watchers(self):
        self.live.append(self.watch(self.now, "w0", REG_PREFIX, REG_END, 0,
                                    True))
        self.live.append(self.watch(self.now, "w1", "r/0", None, 1, True))
        self.live.append(self.watch(self.now, "w2", REG_PREFIX, REG_END, 1,
                                    False, cancel_at=40000))

    def _finish(self):
        t = self.now + 10000
        final = []
        for k in REG_KEYS + [(SET_PREFIX, SET_END)]:
            key, end = (k, None) if isinstance(k, str) else k
            sub = {"op": "get", "key": key}
            if end:
                sub["range_end"] = end
            _, resps, rev = self.store.txn([], [sub], [])
            rec = {"type": "op", "id": self.next_id, "client": 999,
                   "op": "get", "key": key, "invoke_ns": t,
                   "complete_ns": t + 10, "outcome": "ok", "revision": rev,
                   "kvs": resps[0]["kvs"], "final": True}
            if end:
                rec["range_end"] = end
            self.next_id += 1
            final.append(rec)
            t += 20
        self.now = t
        for w in self.live:
            if w["alive"]:
                while w["cursor"] <= self.store.rev:
                    self.deliver(w, final=True)
                self.deliver(w, final=True)  # the closing progress notify
        hashes = [{"type": "hashkv", "member": m, "revision": self.store.rev,
                   "hash": self.store.hash(), "compact_revision": 0}
                  for m in ("m1", "m2", "m3")]
        for rec in self.ops:
            rec.pop("_prev_kv", None)
        meta = {"type": "meta", "version": 1, "workload": "model",
                "seed": self.seed}
        return [meta] + self.ops + final + self.watch_lines + hashes


def generate(seed, **kw):
    """The history for one seed, as a list of record dicts."""
    return Gen(seed, **kw).run()


def main(argv=None):
    """Write one model history as JSON lines to stdout (for looking at,
    and for timing the checker): python3 -m chaoscheck.gen --seed N."""
    import argparse
    import json
    import sys
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--clients", type=int, default=5)
    ap.add_argument("--ops", type=int, default=60, help="per client")
    ap.add_argument("--p-info", type=float, default=0.06)
    ap.add_argument("--p-fail", type=float, default=0.03)
    a = ap.parse_args(argv)
    for r in generate(a.seed, clients=a.clients, ops_per_client=a.ops,
                      p_info=a.p_info, p_fail=a.p_fail):
        sys.stdout.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
