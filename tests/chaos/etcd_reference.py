#!/usr/bin/python3
"""etcd_reference.py: record a history from real etcd, to hold the checker
to the reference implementation.

The checker's own model (chaoscheck/gen.py) could share a misreading of
etcd with the checker; a history recorded from Debian's etcd 3.4 cannot.
This starts a small etcd cluster on loopback (temporary data dirs, ports
picked by the kernel), runs concurrent clients and watchers against it
through etcd's JSON gateway (standard library only: no grpc stubs), writes
the history in the format of docs/chaos.md, and tears everything down,
also on errors.  The watchers: one on the register range from now, one on
a single key from revision 1, one that the client breaks every 8 event
responses and resumes from the last revision + 1, and, after a compaction
of half the history, one from revision 1 that etcd must cancel.  No
faults: it is not the chaos harness, which needs moord and lives beside
this file once it exists.

usage: etcd_reference.py OUT.jsonl [--members 3] [--clients 6]
                         [--ops 80] [--seed 1] [--etcd /usr/bin/etcd]
                         [--timeout 2.0]

Every loop is bounded by a count and by time.  Only 127.0.0.1 is used.
"""

import argparse
import base64
import ctypes
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REG_KEYS = ["r/0", "r/1", "r/2"]


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode()


def _int(d, name):
    return int(d.get(name, 0))


def kv_of(d):
    return {"key": unb64(d["key"]), "value": unb64(d.get("value", "")),
            "mod_revision": _int(d, "mod_revision"),
            "create_revision": _int(d, "create_revision"),
            "version": _int(d, "version")}


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _die_with_parent():
    """In the child: SIGKILL when this recorder dies, even by SIGKILL
    (prctl PR_SET_PDEATHSIG), so no etcd outlives an interrupted run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class Cluster:
    """etcd members on loopback; close() always stops what it started."""

    def __init__(self, etcd, members):
        self.dir = tempfile.mkdtemp(prefix="moor-etcd-ref-")
        self.procs = []
        ports = free_ports(2 * members)
        self.client_ports = ports[:members]
        peer = ["http://127.0.0.1:%d" % p for p in ports[members:]]
        initial = ",".join("m%d=%s" % (i, u) for i, u in enumerate(peer))
        try:
            for i in range(members):
                cu = "http://127.0.0.1:%d" % self.client_ports[i]
                log = open(os.path.join(self.dir, "m%d.log" % i), "wb")
                self.procs.append(subprocess.Popen([
                    etcd, "--name", "m%d" % i,
                    "--data-dir", os.path.join(self.dir, "m%d" % i),
                    "--listen-client-urls", cu, "--advertise-client-urls", cu,
                    "--listen-peer-urls", peer[i],
                    "--initial-advertise-peer-urls", peer[i],
                    "--initial-cluster", initial,
                    "--initial-cluster-state", "new",
                    "--initial-cluster-token", "moor-chaos-ref",
                    "--experimental-watch-progress-notify-interval", "100ms",
                    "--logger", "zap", "--log-outputs", "stderr",
                    "--log-level", "error"],
                    stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent))
                log.close()
            self._wait_healthy(30.0)
        except BaseException:
            self.close()
            raise

    def _wait_healthy(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        for port in self.client_ports:
            while True:
                c = http.client.HTTPConnection("127.0.0.1", port,
                                               timeout=1.0)
                try:
                    c.request("GET", "/health")
                    body = c.getresponse().read()
                    if json.loads(body).get("health") == "true":
                        break
                except (OSError, ValueError, http.client.HTTPException):
                    pass
                finally:
                    c.close()
                if time.monotonic() > deadline:
                    raise RuntimeError("etcd did not become healthy; logs "
                                       "in " + self.dir)
                if any(p.poll() is not None for p in self.procs):
                    raise RuntimeError("etcd exited; logs in " + self.dir)
                time.sleep(0.1)

    def close(self):
        # SIGKILL: the data is thrown away, and etcd's graceful stop (a
        # leader transfer) takes seconds.
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Api:
    """One keep-alive connection to one member's JSON gateway."""

    def __init__(self, port, timeout_s=2.0):
        self.port = port
        self.timeout_s = timeout_s
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, path, body):
        """POST; returns the decoded JSON.  Raises Definite or Indefinite."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout_s)
            self.conn.request("POST", path, json.dumps(body),
                              {"Content-Type": "application/json"})
            r = self.conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise Indefinite(str(e) or type(e).__name__) from None
        if r.status == 200:
            return json.loads(data)
        # grpc-gateway maps InvalidArgument/FailedPrecondition/OutOfRange
        # to 400, NotFound to 404: definite; anything else may have run.
        if r.status in (400, 404):
            raise Definite(data.decode(errors="replace"))
        raise Indefinite("HTTP %d %s" % (r.status, data[:200]))


class Definite(Exception):
    pass


class Indefinite(Exception):
    pass


def _txn_json(rec):
    def cmp(c):
        field = {"mod": "mod_revision", "create": "create_revision",
                 "version": "version", "value": "value"}[c["target"]]
        v = b64(c["value"]) if c["target"] == "value" else str(c["value"])
        return {"key": b64(c["key"]), "target": c["target"].upper(),
                "result": {"=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS",
                           ">": "GREATER"}[c["result"]], field: v}

    def req(o):
        if o["op"] == "get":
            r = {"key": b64(o["key"])}
            if o.get("range_end"):
                r["range_end"] = b64(o["range_end"])
            return {"request_range": r}
        if o["op"] == "put":
            return {"request_put": {"key": b64(o["key"]),
                                    "value": b64(o["value"])}}
        return {"request_delete_range": {"key": b64(o["key"])}}

    return {"compare": [cmp(c) for c in rec.get("compare", [])],
            "success": [req(o) for o in rec.get("success", [])],
            "failure": [req(o) for o in rec.get("failure", [])]}


def _txn_result(rec, resp):
    ok = bool(resp.get("succeeded", False))
    branch = rec.get("success" if ok else "failure", [])
    out = []
    for o, r in zip(branch, resp.get("responses", [])):
        if o["op"] == "get":
            rr = r.get("response_range", {})
            out.append({"kvs": [kv_of(k) for k in rr.get("kvs", [])]})
        elif o["op"] == "delete":
            out.append({"deleted": _int(r.get("response_delete_range", {}),
                                        "deleted")})
        else:
            out.append({})
    return ok, out


def execute(api, rec):
    """Send rec's request; fill in its outcome and response fields."""
    f = rec["op"]
    if f == "get":
        body = {"key": b64(rec["key"])}
        if rec.get("range_end"):
            body["range_end"] = b64(rec["range_end"])
        r = api.call("/v3/kv/range", body)
        rec["kvs"] = [kv_of(k) for k in r.get("kvs", [])]
    elif f == "put":
        r = api.call("/v3/kv/put", {"key": b64(rec["key"]),
                                    "value": b64(rec["value"])})
    elif f == "delete":
        r = api.call("/v3/kv/deleterange", {"key": b64(rec["key"])})
        rec["deleted"] = _int(r, "deleted")
    elif f == "cas":
        t = {"compare": [{"key": rec["key"], "target": "mod", "result": "=",
                          "value": rec["expect_mod_revision"]}],
             "success": [{"op": "put", "key": rec["key"],
                          "value": rec["value"]}],
             "failure": [{"op": "get", "key": rec["key"]}]}
        r = api.call("/v3/kv/txn", _txn_json(t))
        ok, res = _txn_result(t, r)
        rec["succeeded"] = ok
        if not ok:
            rec["kvs"] = res[0]["kvs"]
    else:
        r = api.call("/v3/kv/txn", _txn_json(rec))
        rec["succeeded"], rec["responses"] = _txn_result(rec, r)
    rec["revision"] = _int(r["header"], "revision")


class Recorder:
    def __init__(self, ports, clients, ops, seed, timeout_s=2.0,
                 etcdctl=None):
        self.ports, self.n_clients, self.n_ops = ports, clients, ops
        self.etcdctl = etcdctl
        self.timeout_s = timeout_s
        self.seed = seed
        self.lock = threading.Lock()
        self.records = []
        self.next_id = 0
        self.stop_watch = threading.Event()

    def emit(self, rec):
        with self.lock:
            self.records.append(rec)

    def new_id(self):
        with self.lock:
            self.next_id += 1
            return self.next_id

    def client(self, c):
        rnd = random.Random(self.seed * 1000 + c)
        api = Api(self.ports[c % len(self.ports)], self.timeout_s)
        try:
            self._client_loop(c, rnd, api)
        finally:
            api.close()

    def _client_loop(self, c, rnd, api):
        seen = {}
        deadline = time.monotonic() + 60.0
        for n in range(self.n_ops):
            if time.monotonic() > deadline:
                break
            k = rnd.choice(REG_KEYS)
            k2 = rnd.choice([j for j in REG_KEYS if j != k])
            v = "c%d-%d" % (c, n)
            x = rnd.random()
            if x < 0.3:
                rec = {"op": "get", "key": k}
            elif x < 0.5:
                rec = {"op": "put", "key": k, "value": v}
            elif x < 0.55:
                rec = {"op": "delete", "key": k}
            elif x < 0.75:
                rec = {"op": "cas", "key": k, "value": v,
                       "expect_mod_revision": seen.get(k, 0)}
            elif x < 0.85:
                rec = {"op": "txn",
                       "compare": [{"key": k, "target": "mod", "result": "=",
                                    "value": seen.get(k, 0)}],
                       "success": [{"op": "put", "key": k, "value": v},
                                   {"op": "put", "key": k2,
                                    "value": v + "b"}],
                       "failure": [{"op": "get", "key": k},
                                   {"op": "get", "key": k2}]}
            elif x < 0.92:
                rec = {"op": "get", "key": "r/", "range_end": "r0"}
            else:
                rec = {"op": "put", "key": "s/%s" % v, "value": v}
            rec.update(type="op", id=self.new_id(), client=c,
                       invoke_ns=time.monotonic_ns())
            try:
                execute(api, rec)
                rec["outcome"] = "ok"
            except Definite as e:
                rec.update(outcome="fail", error=str(e)[:200])
            except Indefinite as e:
                rec.update(outcome="info", error=str(e)[:200])
            rec["complete_ns"] = time.monotonic_ns()
            if rec["outcome"] == "ok":
                for kv in rec.get("kvs", ()):
                    seen[kv["key"]] = kv["mod_revision"]
                for r in rec.get("responses", ()):
                    for kv in r.get("kvs", ()):
                        seen[kv["key"]] = kv["mod_revision"]
            self.emit(rec)

    def watcher(self, wid, port, key, range_end, start, resumes=None,
                max_event_responses=None):
        """Stream one watch until stop_watch, a cancel or
        max_event_responses responses with events; record every response.
        Returns the last event revision received (0 if none), None when
        etcd canceled the watch."""
        # Progress notifications come every 100 ms, so a read that waits
        # 10 s means the stream is dead.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10.0)
        try:
            return self._watch_stream(conn, wid, key, range_end, start,
                                      resumes, max_event_responses)
        finally:
            conn.close()

    def watcher_chain(self, base, port, key, range_end, start, every):
        """A watch whose stream the client breaks after `every` responses
        with events, resuming each time from the last revision + 1 as a
        new watcher that names the one it resumes."""
        prev = None
        for i in range(1000):
            if self.stop_watch.is_set():
                return
            wid = base if i == 0 else "%s.%d" % (base, i)
            last = self.watcher(wid, port, key, range_end, start, prev,
                                every)
            if last is None:
                return  # canceled (compacted): nothing to resume
            start, prev = (last + 1 if last else start), wid

    def _watch_stream(self, conn, wid, key, range_end, start, resumes,
                      max_event_responses):
        req = {"key": b64(key), "start_revision": str(start),
               "prev_kv": True, "progress_notify": True}
        if range_end:
            req["range_end"] = b64(range_end)
        rec = {"type": "watch", "watcher": wid, "client": wid, "key": key,
               "range_end": range_end, "start_revision": start,
               "prev_kv": True, "progress_notify": True,
               "invoke_ns": time.monotonic_ns()}
        if resumes:
            rec["resumes"] = resumes
        self.emit(rec)
        conn.request("POST", "/v3/watch",
                     json.dumps({"create_request": req}))
        resp = conn.getresponse()
        deadline = time.monotonic() + 120.0
        last, with_events = 0, 0
        while not self.stop_watch.is_set() and time.monotonic() < deadline:
            line = resp.readline()
            if not line:
                break
            t = time.monotonic_ns()
            res = json.loads(line).get("result", {})
            evs = []
            for e in res.get("events", []):
                ev = kv_of(e["kv"])
                ev["type"] = e.get("type", "PUT")
                if ev["type"] == "DELETE":
                    del ev["value"]
                if e.get("prev_kv"):
                    ev["prev_kv"] = kv_of(e["prev_kv"])
                evs.append(ev)
            rec = {"type": "watch_response", "watcher": wid, "time_ns": t,
                   "revision": _int(res.get("header", {}), "revision"),
                   "created": bool(res.get("created", False)),
                   "canceled": bool(res.get("canceled", False)),
                   "compact_revision": _int(res, "compact_revision"),
                   "events": evs}
            with self.lock:
                self.records.append(rec)
                self.watch_rev[wid] = max(self.watch_rev.get(wid, 0),
                                          rec["revision"] if not evs else
                                          evs[-1]["mod_revision"])
            if evs:
                last = evs[-1]["mod_revision"]
                with_events += 1
                if max_event_responses and \
                        with_events >= max_event_responses:
                    break
            if rec["canceled"]:
                return None
        return last

    def hashkv(self, rev):
        """HashKV of every member at rev, through etcdctl (gRPC): etcd
        3.4's gateway binds /v3/maintenance/hash to Hash, not HashKV.
        Without etcdctl no hashkv records are written."""
        if not self.etcdctl:
            return
        for i, port in enumerate(self.ports):
            p = subprocess.run(
                [self.etcdctl, "--endpoints=127.0.0.1:%d" % port,
                 "endpoint", "hashkv", "--rev=%d" % rev, "-w", "json"],
                env=dict(os.environ, ETCDCTL_API="3"), capture_output=True,
                text=True, timeout=30, check=True)
            r = json.loads(p.stdout)[0]["HashKV"]
            self.emit({"type": "hashkv", "member": "m%d" % i,
                       "revision": rev, "hash": int(r.get("hash", 0)),
                       "compact_revision": int(r.get("compact_revision",
                                                     0))})

    def run(self):
        self.watch_rev = {}
        ws = [threading.Thread(target=self.watcher, args=(
                  "w0", self.ports[0], "r/", "r0", 0)),
              threading.Thread(target=self.watcher, args=(
                  "w1", self.ports[-1], "r/0", None, 1)),
              threading.Thread(target=self.watcher_chain, args=(
                  "w2", self.ports[1 % len(self.ports)], "r/", "r0", 1, 8))]
        for t in ws:
            t.start()
        # Let the watches be created before the first write.
        deadline = time.monotonic() + 10.0
        while len(self.watch_rev) < len(ws) and time.monotonic() < deadline:
            time.sleep(0.01)
        cs = [threading.Thread(target=self.client, args=(c,))
              for c in range(self.n_clients)]
        for t in cs:
            t.start()
        for t in cs:
            t.join()
        api = Api(self.ports[0])
        final_rev = 0
        for key, end in [(k, None) for k in REG_KEYS] + [("s/", "s0")]:
            rec = {"type": "op", "id": self.new_id(), "client": "final",
                   "op": "get", "key": key, "final": True,
                   "invoke_ns": time.monotonic_ns()}
            if end:
                rec["range_end"] = end
            execute(api, rec)
            rec.update(outcome="ok", complete_ns=time.monotonic_ns())
            final_rev = max(final_rev, rec["revision"])
            self.emit(rec)
        # Compact half the history away, then watch from below it: etcd
        # must cancel that watch with compact_revision set (no anomaly).
        compact_rev = max(2, final_rev // 2)
        api.call("/v3/kv/compaction", {"revision": str(compact_rev)})
        api.close()
        self.watcher("w3", self.ports[0], "r/", "r0", 1)
        self.hashkv(final_rev)
        # Progress notifications every 100 ms: wait until the two long
        # watchers have reported the final revision, then stop them all.
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            with self.lock:
                if all(self.watch_rev.get(w, 0) >= final_rev
                       for w in ("w0", "w1")):
                    break
            time.sleep(0.05)
        self.stop_watch.set()
        for t in ws:
            t.join()
        meta = {"type": "meta", "version": 1, "workload": "etcd-reference",
                "seed": self.seed, "members": len(self.ports)}
        return [meta] + self.records


def record(out, members=3, clients=6, ops=80, seed=1, etcd="/usr/bin/etcd",
           timeout_s=2.0):
    """Start a cluster, record a history into file out, stop the cluster.

    timeout_s is the clients' request timeout.  A tiny one (10 ms) makes
    many requests indeterminate while etcd still applies most of them:
    real timed-out writes that take effect after the client gave up.

    The ports are picked free and then handed to etcd, so another process
    may take one in between: one retry with fresh ports covers that.
    """
    try:
        cluster = Cluster(etcd, members)
    except RuntimeError:
        cluster = Cluster(etcd, members)
    try:
        etcdctl = os.path.join(os.path.dirname(etcd), "etcdctl")
        recs = Recorder(cluster.client_ports, clients, ops, seed, timeout_s,
                        etcdctl if os.access(etcdctl, os.X_OK) else
                        None).run()
    finally:
        cluster.close()
    with open(out, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    return len(recs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--ops", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--timeout", type=float, default=2.0,
                    help="client request timeout in seconds (2)")
    a = ap.parse_args()
    n = record(a.out, a.members, a.clients, a.ops, a.seed, a.etcd,
               a.timeout)
    print("%s: %d records" % (a.out, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
