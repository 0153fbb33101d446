"""The watch workload: watchers that record every response they receive.

A Watcher is one thread holding one Watch stream (one watch on it) to one
member, from start_revision 1 so it must deliver the whole history of its
range.  Every WatchResponse becomes a watch_response record, in arrival
order (docs/chaos.md §1).  When the stream breaks (its member killed, a
reset) the watcher resumes on the next member from the revision after the
last one it knows delivered, as a new watcher record naming the one it
resumes.  After the run, finish(R) asks for a progress notification until
one at or above R arrives: then every event up to R has been delivered, and
the checker holds the watcher to the whole write log up to R.

Bounds: at most RESUMES_MAX resumptions, 0.1-0.5 s apart (backing off
while streams keep failing before any response); finish() waits at
most its timeout; stop() ends the stream at once.
"""

import queue
import threading
import time

import grpc

from . import client, pb

WATCH = "/etcdserverpb.Watch/Watch"
RESUMES_MAX = 1000


def create_req(key, range_end, start_revision, prev_kv):
    body = (pb.f_bytes(1, key) + pb.f_bytes(2, range_end) +
            pb.f_varint(3, start_revision) + pb.f_varint(6, prev_kv))
    return pb.f_msg(1, body)


def progress_req():
    return pb.f_msg(3, b"")


def event(b):
    d = pb.decode(b)
    e = {"type": "DELETE" if pb.one(d, 1) == 1 else "PUT"}
    e.update(pb.kv(pb.one(d, 2, b"")))
    if 3 in d:
        e["prev_kv"] = pb.kv(d[3][-1])
    return e


def response(b):
    """WatchResponse -> the watch_response record's fields."""
    d = pb.decode(b)
    r = {"revision": pb.header(d)[0]}
    for name, num in (("created", 3), ("canceled", 4), ("fragment", 7)):
        if pb.one(d, num):
            r[name] = True
    if pb.one(d, 5):
        r["compact_revision"] = pb.i64(pb.one(d, 5))
    if 11 in d:
        r["events"] = [event(x) for x in d[11]]
    return r


class Watcher(threading.Thread):
    def __init__(self, name, key, range_end, prev_kv, addrs, first, hist):
        super().__init__(name="watch-" + name, daemon=True)
        self.base, self.key, self.range_end = name, key, range_end
        self.prev_kv = prev_kv
        self.addrs, self.cur = addrs, first
        self.hist = hist
        self.next_rev = 1          # first revision not known delivered
        self.target = None         # finish(): progress wanted at or above
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.reqs = None
        self.call = None
        self.channel = None
        self.streams = 0
        self.error = None

    # ------------------------------------------------ from other threads

    def finish(self, revision, timeout_s):
        """Ask for progress until a notification at or above revision
        arrives (True) or timeout_s passes (False)."""
        self.target = revision
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and self.is_alive():
            with self.lock:
                if self.reqs is not None:
                    self.reqs.put(progress_req())
            if self.done.wait(1.0):
                return True
        return self.done.is_set()

    def stop(self):
        self.stopping.set()
        with self.lock:
            if self.reqs is not None:
                self.reqs.put(None)
            if self.call is not None:
                self.call.cancel()

    # ------------------------------------------------------ the thread

    def run(self):
        prev = None
        failures = 0
        try:
            for i in range(RESUMES_MAX + 1):
                if self.stopping.is_set() or self.done.is_set():
                    break
                wid = self.base if i == 0 else "%s.%d" % (self.base, i)
                got = self.stream(wid, prev)
                prev = wid
                failures = 0 if got else min(failures + 1, 5)
                if not self.stopping.is_set() and not self.done.is_set():
                    self.cur = (self.cur + 1) % len(self.addrs)
                    self.stopping.wait(0.1 * max(failures, 1))
        except Exception as e:  # a harness bug: reported, fails the run
            self.error = "%s: %r" % (self.name, e)

    def stream(self, wid, resumes):
        rec = {"type": "watch", "watcher": wid, "client": self.base,
               "key": self.key, "range_end": self.range_end,
               "start_revision": self.next_rev, "prev_kv": self.prev_kv,
               "progress_notify": False, "invoke_ns": self.hist.clock()}
        if resumes:
            rec["resumes"] = resumes
        self.hist.write(rec)
        reqs = queue.Queue()
        reqs.put(create_req(self.key, self.range_end, self.next_rev,
                            self.prev_kv))

        def gen():
            while True:
                r = reqs.get()
                if r is None:
                    return
                yield r

        ch = grpc.insecure_channel(self.addrs[self.cur],
                                   options=client.OPTIONS)
        with self.lock:
            if self.stopping.is_set():
                ch.close()
                return 0
            self.reqs = reqs
            self.channel = ch
            self.call = ch.stream_stream(WATCH)(gen())
            call = self.call
        self.streams += 1
        got = 0
        try:
            for b in call:
                got += 1
                t = self.hist.clock()
                r = response(b)
                r.update(type="watch_response", watcher=wid, time_ns=t)
                self.hist.write(r)
                self.learn(r)
                if r.get("canceled"):
                    break
                if self.done.is_set():
                    break
        except grpc.RpcError:
            pass
        finally:
            with self.lock:
                self.reqs = None
                self.call = None
                reqs.put(None)
                call.cancel()
                ch.close()
        return got

    def learn(self, r):
        evs = r.get("events")
        if evs:
            if not r.get("fragment"):
                self.next_rev = max(self.next_rev,
                                    max(e["mod_revision"] for e in evs) + 1)
            return
        if r.get("created"):
            return
        if r.get("canceled"):
            return
        # A progress notification: every event up to its revision is in.
        self.next_rev = max(self.next_rev, r["revision"] + 1)
        if self.target is not None and r["revision"] >= self.target:
            self.done.set()
