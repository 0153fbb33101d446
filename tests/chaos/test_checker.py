#!/usr/bin/python3
"""Self-tests of the chaos history checker (ctest chaos_checker_selftest).

The checker must accept every history a correct etcd can produce and
reject every history with a known flaw, naming the flaw.  Valid histories
come from chaoscheck.gen (an in-process etcd model with concurrent
clients, timeouts and watchers) and from real etcd 3.4 on loopback
(etcd_reference.py, skipped without /usr/bin/etcd); the tests then
mutate them one flaw at a time and assert the anomaly kind.  The search
is also held to a brute-force search on small random histories.
Everything is seeded: a failure names the seed, and `gen.generate(seed)`
rebuilds the history.

Run: /usr/bin/python3 tests/chaos/test_checker.py [-v]
"""

import copy
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from chaoscheck import check, gen, history, linear  # noqa: E402
from chaoscheck.history import KV  # noqa: E402

# CHAOS_SELFTEST_SEEDS=N plants each flaw into N histories (default 3)
# and checks max(30, N) valid ones: the long sweep (N=100: ~6 minutes).
PLANT = int(os.environ.get("CHAOS_SELFTEST_SEEDS", "3"))
SEEDS = range(1, 1 + max(30, PLANT))


def parse(recs):
    return history.loads("\n".join(json.dumps(r) for r in recs))


def run(recs, **kw):
    h = parse(recs)
    return h, check.run(h, **kw)


def ops(recs):
    return [r for r in recs if r.get("type") == "op"]


def writes_by_rev(recs):
    """revision -> the acknowledged record that wrote at it."""
    out = {}
    for r in ops(recs):
        if r["outcome"] != "ok":
            continue
        f = r["op"]
        if (f == "put" or (f == "delete" and r.get("deleted")) or
                (f == "cas" and r["succeeded"]) or
                (f == "txn" and r["succeeded"] and any(
                    s["op"] == "put" for s in r.get("success", [])))):
            out[r["revision"]] = r
    return out


def single_gets(recs):
    return [r for r in ops(recs) if r["op"] == "get" and r["outcome"] == "ok"
            and "range_end" not in r and not r.get("final") and
            not r.get("serializable")]


def watch_responses(recs, wid):
    return [r for r in recs if r.get("type") == "watch_response" and
            r["watcher"] == wid]


# --- mutations: each takes a deep copy of a valid history's records and
# plants one flaw, returning False when this history offers no place.

def stale_read(recs):
    """A read returns a value overwritten before the read began."""
    by_rev = writes_by_rev(recs)
    gets = single_gets(recs)
    for r2 in gets:
        if not r2["kvs"]:
            continue
        kv2 = r2["kvs"][0]
        w = by_rev.get(kv2["mod_revision"])
        if w is None or w["complete_ns"] >= r2["invoke_ns"]:
            continue
        for r1 in gets:
            if (r1["kvs"] and r1["key"] == r2["key"] and
                    r1["kvs"][0]["mod_revision"] < kv2["mod_revision"] and
                    r1["complete_ns"] < w["invoke_ns"]):
                r2["kvs"] = copy.deepcopy(r1["kvs"])
                return True
    return False


def lost_set_element(recs):
    """The final read of the set misses an acknowledged element."""
    final = [r for r in ops(recs) if r.get("final") and "range_end" in r
             and r["key"] == gen.SET_PREFIX]
    acked = {(r["key"], r["value"]) for r in ops(recs)
             if r["op"] == "put" and r["outcome"] == "ok"}
    for f in final:
        for i, kv in enumerate(f["kvs"]):
            if (kv["key"], kv["value"]) in acked:
                del f["kvs"][i]
                return True
    return False


def lost_register_write(recs):
    """A final read shows the value before the last acknowledged write."""
    by_rev = writes_by_rev(recs)
    gets = single_gets(recs)
    for f in ops(recs):
        if not f.get("final") or "range_end" in f or not f["kvs"]:
            continue
        kv = f["kvs"][0]
        if kv["mod_revision"] not in by_rev:
            continue
        for g in reversed(gets):
            if (g["key"] == f["key"] and g["kvs"] and
                    g["kvs"][0]["mod_revision"] < kv["mod_revision"]):
                f["kvs"] = copy.deepcopy(g["kvs"])
                return True
    return False


def read_revision_backwards(recs):
    """A read's header revision is below a write acknowledged before it."""
    by_rev = writes_by_rev(recs)
    for r in single_gets(recs):
        for rev, w in sorted(by_rev.items(), reverse=True):
            if w["complete_ns"] < r["invoke_ns"] and rev > 2:
                r["revision"] = rev - 1
                return True
    return False


def write_revisions_swapped(recs):
    """Two writes in real-time order get their revisions the other way."""
    ws = sorted(writes_by_rev(recs).values(), key=lambda r: r["invoke_ns"])
    for a in ws:
        for b in ws:
            if (a["op"] == b["op"] == "put" and a["key"] != b["key"] and
                    a["complete_ns"] < b["invoke_ns"] and
                    a["revision"] < b["revision"]):
                a["revision"], b["revision"] = b["revision"], a["revision"]
                return True
    return False


def revision_reused(recs):
    """Two acknowledged writes claim one revision."""
    ws = [w for w in writes_by_rev(recs).values() if w["op"] == "put"]
    if len(ws) < 2:
        return False
    ws[1]["revision"] = ws[0]["revision"]
    return True


def phantom_read(recs):
    for r in single_gets(recs):
        if r["kvs"]:
            r["kvs"][0]["value"] = "never-written"
            return True
    return False


def phantom_prev_kv(recs):
    for r in watch_responses(recs, "w1"):
        for e in r.get("events") or ():
            if e.get("prev_kv"):
                e["prev_kv"]["value"] = "never-written"
                return True
    return False


def aborted_read(recs):
    failed = [r for r in ops(recs) if r["outcome"] == "fail" and
              r["op"] == "put"]
    for f in failed:
        for r in single_gets(recs):
            if r["key"] == f["key"] and r["kvs"]:
                r["kvs"][0]["value"] = f["value"]
                return True
    return False


def future_read(recs):
    for w in writes_by_rev(recs).values():
        if w["op"] != "put":
            continue
        for r in single_gets(recs):
            if r["key"] == w["key"] and r["complete_ns"] < w["invoke_ns"]:
                r["kvs"] = [{"key": w["key"], "value": w["value"],
                             "mod_revision": w["revision"],
                             "create_revision": w["revision"],
                             "version": 1}]
                return True
    return False


def txn_split_revision(recs):
    """One txn's two writes observed at two revisions (by a watcher)."""
    for t in writes_by_rev(recs).values():
        if t["op"] != "txn" or [o["op"] for o in t["success"]] != ["put",
                                                                    "put"]:
            continue
        second = t["success"][1]
        for resp in [r for r in recs if r.get("type") == "watch_response"]:
            for e in resp.get("events", ()):
                if (e["key"], e.get("value")) == (second["key"],
                                                  second["value"]):
                    e["mod_revision"] = t["revision"] + 1
                    return True
    return False


def duplicate_watch_event(recs):
    resps = [r for r in watch_responses(recs, "w0") if r.get("events")]
    if len(resps) < 3:
        return False
    resps[2]["events"].append(copy.deepcopy(resps[1]["events"][0]))
    return True


def missing_watch_event(recs):
    """Drop one event (not the stream's last; w0 ends with a progress)."""
    resps = [r for r in watch_responses(recs, "w0") if r.get("events")]
    if len(resps) < 3:
        return False
    r = resps[1]
    del r["events"][0]
    if not r["events"]:
        recs.remove(r)
    return True


def split_watch_revision(recs):
    """A revision's two events arrive in two responses."""
    for r in watch_responses(recs, "w0"):
        evs = r.get("events") or []
        for i in range(1, len(evs)):
            if evs[i]["mod_revision"] == evs[i - 1]["mod_revision"]:
                second = dict(r, events=evs[i:])
                r["events"] = evs[:i]
                recs.insert(recs.index(r) + 1, second)
                return True
    return False


def txn_events_reordered(recs):
    """Two events of one txn's revision swapped inside their response."""
    for r in watch_responses(recs, "w0"):
        evs = r.get("events") or []
        for i in range(1, len(evs)):
            if evs[i]["mod_revision"] == evs[i - 1]["mod_revision"]:
                evs[i - 1], evs[i] = evs[i], evs[i - 1]
                return True
    return False


def event_version_wrong(recs):
    """One watcher reports another version than the others for a write."""
    seen = {}
    for r in recs:
        if r.get("type") == "watch_response" and r["watcher"] != "w0":
            for e in r.get("events") or ():
                seen[(e["key"], e["mod_revision"])] = e
    for r in watch_responses(recs, "w0"):
        for e in r.get("events") or ():
            if e["type"] == "PUT" and (e["key"], e["mod_revision"]) in seen:
                e["version"] += 5
                return True
    return False


def progress_ahead(recs):
    """A progress notification reports a revision before its events."""
    resps = [r for r in watch_responses(recs, "w0") if r.get("events")]
    if len(resps) < 3:
        return False
    r = resps[2]
    recs.insert(recs.index(r), {"type": "watch_response", "watcher": "w0",
                                "time_ns": r["time_ns"], "progress": True,
                                "revision": r["events"][0]["mod_revision"]})
    return True


def prev_kv_missing(recs):
    for r in watch_responses(recs, "w1"):
        for e in r.get("events") or ():
            if e["type"] == "PUT" and e.get("version", 0) > 1:
                del e["prev_kv"]
                return True
    return False


def prev_kv_stale(recs):
    """prev_kv names an older version than the one just before."""
    evs = [e for r in watch_responses(recs, "w1")
           for e in r.get("events") or () if e["type"] == "PUT"]
    for a, b in zip(evs, evs[1:]):
        if "prev_kv" in b and b.get("version", 0) > 2 and \
                b["prev_kv"]["mod_revision"] != a["mod_revision"] and \
                "prev_kv" in a:
            b["prev_kv"] = copy.deepcopy(a["prev_kv"])
            return True
    for a, b in zip(evs, evs[1:]):
        if "prev_kv" in a and "prev_kv" in b and \
                a["prev_kv"]["mod_revision"] < b["prev_kv"]["mod_revision"]:
            b["prev_kv"] = copy.deepcopy(a["prev_kv"])
            return True
    return False


def serializable_made_linearizable(recs):
    """A stale serializable read (allowed) relabelled linearizable."""
    ws = writes_by_rev(recs).values()
    for r in ops(recs):
        if r.get("serializable") and r["outcome"] == "ok" and any(
                w["complete_ns"] < r["invoke_ns"] and
                w["revision"] > r["revision"] for w in ws):
            del r["serializable"]
            return True
    return False


def resume_refused(recs):
    """The resumed watcher is canceled as compacted inside the window."""
    for r in recs:
        if r.get("type") == "watch" and r.get("resumes"):
            recs.insert(recs.index(r) + 1, {
                "type": "watch_response", "watcher": r["watcher"],
                "time_ns": r["invoke_ns"] + 1, "canceled": True,
                "compact_revision": r["start_revision"] - 1,
                "revision": r["start_revision"]})
            return True
    return False


def hashkv_differs(recs):
    hs = [r for r in recs if r.get("type") == "hashkv"]
    hs[1]["hash"] ^= 1
    return True


MUTATIONS = [
    (stale_read, {"stale-read", "nonlinearizable"}),
    (lost_set_element, {"lost-write"}),
    (lost_register_write, {"lost-write"}),
    (read_revision_backwards, {"revision-order"}),
    (write_revisions_swapped, {"revision-order"}),
    (revision_reused, {"revision-duplicate"}),
    (phantom_read, {"phantom-read", "nonlinearizable"}),
    (phantom_prev_kv, {"phantom-read"}),
    (aborted_read, {"aborted-read"}),
    (future_read, {"future-read"}),
    (txn_split_revision, {"txn-split-revision"}),
    (duplicate_watch_event, {"watch-duplicate"}),
    (missing_watch_event, {"watch-gap"}),
    (split_watch_revision, {"watch-split-revision"}),
    (txn_events_reordered, {"watch-order"}),
    (event_version_wrong, {"revision-conflict"}),
    (progress_ahead, {"watch-progress-ahead"}),
    (prev_kv_missing, {"watch-prev-kv"}),
    (prev_kv_stale, {"watch-prev-kv"}),
    (serializable_made_linearizable, {"revision-order"}),
    (resume_refused, {"watch-resume"}),
    (hashkv_differs, {"hashkv-mismatch"}),
]


class ValidHistories(unittest.TestCase):
    def test_generated_histories_from_many_seeds_have_no_anomaly(self):
        for seed in SEEDS:
            h, r = run(gen.generate(seed))
            self.assertEqual(r.anomalies, [], "seed %d" % seed)
            self.assertEqual(r.lost, {}, "seed %d" % seed)
            self.assertEqual(r.unknown, [], "seed %d" % seed)
            self.assertGreater(r.events, 50, "seed %d" % seed)

    def test_busy_histories_with_many_timeouts_have_no_anomaly(self):
        for seed in (7, 8):
            h, r = run(gen.generate(seed, clients=10, ops_per_client=100,
                                    p_info=0.15))
            self.assertEqual(r.anomalies, [], "seed %d" % seed)
            self.assertEqual(r.lost, {}, "seed %d" % seed)
            self.assertEqual(r.unknown, [], "seed %d" % seed)
            info = [op for op in h.ops if op.outcome == "info"]
            self.assertGreater(len(info), 50)
            self.assertTrue(any(op.resolved_revision for op in info))

    def test_generator_is_deterministic_by_seed(self):
        self.assertEqual(gen.generate(5), gen.generate(5))
        self.assertNotEqual(gen.generate(5), gen.generate(6))


class MutatedHistories(unittest.TestCase):
    """Each planted flaw is rejected, with its anomaly named."""

    def _mutate(self, fn, want):
        hits = 0
        for seed in SEEDS:
            recs = gen.generate(seed)
            if not fn(recs):
                continue
            hits += 1
            h, r = run(recs)
            self.assertTrue(want <= r.kinds(), "%s, seed %d: want %s, got "
                            "%s" % (fn.__name__, seed, sorted(want),
                                    sorted(r.kinds())))
            if hits == PLANT:
                break
        self.assertGreater(hits, 0, "%s found no place to mutate" %
                           fn.__name__)


def _make(fn, want):
    def t(self):
        self._mutate(fn, want)
    t.__name__ = "test_%s_is_rejected" % fn.__name__
    return t


for _fn, _want in MUTATIONS:
    setattr(MutatedHistories, "test_%s_is_rejected" % _fn.__name__,
            _make(_fn, _want))


def strip_revisions(h):
    """Forget every revision, mod/create revision and version in place, so
    only the search (which then compares values) can judge the history."""
    def s(kv):
        return kv and KV(kv.key, kv.value, None, None, None)
    for op in h.ops:
        op.revision = None
        for i, r in enumerate(op.responses or ()):
            op.responses[i] = r._replace(
                kvs=[s(kv) for kv in r.kvs] if r.kvs is not None else None,
                prev_kv=s(r.prev_kv))
    h.watchers = {}
    return h


def _op(id_, f, key, t0, t1, outcome="ok", **kw):
    rec = {"type": "op", "id": id_, "client": id_, "op": f, "key": key,
           "invoke_ns": t0, "complete_ns": t1, "outcome": outcome}
    rec.update(kw)
    if outcome == "ok" and "revision" not in rec:
        rec["revision"] = 1
    if outcome == "info" and t1 is None:
        del rec["complete_ns"]
    return rec


def _get(id_, key, t0, t1, value=None, **kw):
    kvs = [] if value is None else [{"key": key, "value": value}]
    return _op(id_, "get", key, t0, t1, kvs=kvs, **kw)


def _search(recs, budget=100000):
    h = strip_revisions(parse(recs))
    return {r.key: r.result for r in linear.check(h, budget=budget)}


class Search(unittest.TestCase):
    """The Wing & Gong / Lowe search alone, on values only."""

    def test_read_after_acknowledged_put_must_see_it(self):
        recs = [_op(1, "put", "a", 0, 10, value="1"),
                _get(2, "a", 20, 30)]
        self.assertEqual(_search(recs), {"a": "fail"})
        recs[1] = _get(2, "a", 20, 30, "1")
        self.assertEqual(_search(recs), {"a": "ok"})

    def test_new_then_old_value_during_one_put_is_rejected(self):
        base = [_op(1, "put", "a", 0, 100, value="1"),
                _get(2, "a", 10, 20, "1")]
        self.assertEqual(_search(base + [_get(3, "a", 30, 40, "1")]),
                         {"a": "ok"})
        self.assertEqual(_search(base + [_get(3, "a", 30, 40)]),
                         {"a": "fail"})

    def test_concurrent_reads_may_see_either_side_of_a_put(self):
        recs = [_op(1, "put", "a", 0, 100, value="1"),
                _get(2, "a", 10, 20), _get(3, "a", 10, 20, "1")]
        self.assertEqual(_search(recs), {"a": "ok"})

    def test_timed_out_put_may_take_effect_late_but_not_revert(self):
        recs = [_op(1, "put", "a", 0, 5, "info"),
                _get(2, "a", 10, 20)]
        recs[0]["value"] = "1"
        self.assertEqual(_search(recs), {"a": "ok"})
        recs.append(_get(3, "a", 50, 60, "1"))
        self.assertEqual(_search(recs), {"a": "ok"})
        recs.append(_get(4, "a", 70, 80))
        self.assertEqual(_search(recs), {"a": "fail"})

    def test_failed_put_never_takes_effect(self):
        recs = [_op(1, "put", "a", 0, 5, "fail", value="1"),
                _get(2, "a", 10, 20, "1")]
        self.assertEqual(_search(recs), {"a": "fail"})

    def test_two_creates_of_one_key_cannot_both_succeed(self):
        recs = [_op(1, "cas", "a", 0, 50, expect_mod_revision=0, value="x",
                    succeeded=True, revision=2),
                _op(2, "cas", "a", 0, 50, expect_mod_revision=0, value="y",
                    succeeded=True, revision=3)]
        h = parse(recs)
        self.assertEqual([r.result for r in linear.check(h)], ["fail"])
        recs[1]["succeeded"] = False
        recs[1]["revision"] = 2
        h = parse(recs)
        self.assertEqual([r.result for r in linear.check(h)], ["ok"])

    def test_generated_histories_pass_without_revisions(self):
        for seed in range(1, 6):
            h = strip_revisions(parse(gen.generate(seed)))
            res = linear.check(h)
            self.assertTrue(all(r.result == "ok" for r in res), seed)

    def test_stale_read_is_caught_by_the_search_alone(self):
        for seed in SEEDS:
            recs = gen.generate(seed)
            if stale_read(recs):
                h = strip_revisions(parse(recs))
                res = {r.result for r in linear.check(h)}
                self.assertIn("fail", res, seed)
                return
        self.fail("no stale read planted")

    def test_search_out_of_budget_answers_unknown_not_an_anomaly(self):
        recs = gen.generate(3, clients=10, ops_per_client=40, p_info=0.2)
        h, r = run(recs, budget=50)
        self.assertTrue(r.unknown)
        self.assertNotIn("nonlinearizable", r.kinds())


ETCD = "/usr/bin/etcd"


@unittest.skipUnless(os.access(ETCD, os.X_OK), "no %s" % ETCD)
class RealEtcd(unittest.TestCase):
    """A history recorded from a real etcd 3.4 cluster on loopback passes;
    the same history with a planted flaw does not."""

    @classmethod
    def setUpClass(cls):
        import etcd_reference
        fd, cls.path = tempfile.mkstemp(suffix=".jsonl")
        os.close(fd)
        etcd_reference.record(cls.path, members=3, clients=5, ops=60,
                              seed=11, etcd=ETCD)
        with open(cls.path) as f:
            cls.recs = [json.loads(line) for line in f]

    @classmethod
    def tearDownClass(cls):
        os.unlink(cls.path)

    def test_real_etcd_history_has_no_anomaly(self):
        h, r = run(self.recs)
        self.assertEqual(r.anomalies, [])
        self.assertEqual(r.lost, {})
        self.assertEqual(r.unknown, [])
        self.assertGreater(len(h.ops), 250)
        self.assertGreater(r.events, 50)
        self.assertEqual(len(h.hashkvs), 3)
        self.assertTrue(any(w.resumes for w in h.watchers.values()))
        self.assertTrue(any(resp.canceled and resp.compact_revision
                            for w in h.watchers.values()
                            for resp in w.responses))

    def test_real_etcd_history_with_planted_flaws_is_rejected(self):
        for fn, want in ((stale_read, {"stale-read"}),
                         (lost_set_element, {"lost-write"}),
                         (missing_watch_event, {"watch-gap"}),
                         (duplicate_watch_event, {"watch-duplicate"}),
                         (txn_events_reordered, {"watch-order"}),
                         (event_version_wrong, {"revision-conflict"}),
                         (progress_ahead, {"watch-progress-ahead"}),
                         (resume_refused, {"watch-resume"}),
                         (hashkv_differs, {"hashkv-mismatch"})):
            recs = copy.deepcopy(self.recs)
            self.assertTrue(fn(recs), fn.__name__)
            h, r = run(recs)
            self.assertTrue(want <= r.kinds(), "%s: got %s" % (
                fn.__name__, sorted(r.kinds())))


@unittest.skipUnless(os.access(ETCD, os.X_OK), "no %s" % ETCD)
class RealEtcdTimeouts(unittest.TestCase):
    """Real etcd with a 3 ms client timeout: most requests become
    indeterminate while etcd still applies many of them after the client
    gave up; the checker must resolve those it sees and stay quiet."""

    def test_real_etcd_history_full_of_timeouts_has_no_anomaly(self):
        import etcd_reference
        fd, path = tempfile.mkstemp(suffix=".jsonl")
        os.close(fd)
        try:
            etcd_reference.record(path, members=3, clients=5, ops=60,
                                  seed=12, etcd=ETCD, timeout_s=0.003)
            with open(path) as f:
                recs = [json.loads(line) for line in f]
        finally:
            os.unlink(path)
        h, r = run(recs)
        self.assertEqual(r.anomalies, [])
        self.assertEqual(r.lost, {})
        self.assertEqual(r.unknown, [])
        # Most writes time out at 3 ms (10 ms let a quiet machine answer
        # all but 6 of them in CI) and some are seen later; the bounds
        # leave room for faster disks.
        info = [op for op in h.ops if op.outcome == "info"]
        self.assertGreater(len(info), 20)
        self.assertGreater(sum(1 for op in info if op.resolved_revision), 3)
        self.assertTrue(missing_watch_event(recs))
        self.assertIn("watch-gap", run(recs)[1].kinds())


def _random_small_history(rnd):
    """A few ops on key "a" with random intervals, outcomes and results
    (values only): some linearizable, some not."""
    recs, values = [], []
    for i in range(rnd.randint(3, 7)):
        t0 = rnd.randint(0, 40)
        rec = {"type": "op", "id": i, "client": i, "invoke_ns": t0,
               "complete_ns": t0 + rnd.randint(1, 25), "key": "a",
               "revision": 1,
               "outcome": rnd.choice(["ok"] * 6 + ["info"] * 3 + ["fail"])}
        f = rnd.choice(["put", "put", "get", "get", "delete", "cas"])
        rec["op"] = f
        if f in ("put", "cas"):
            rec["value"] = "v%d" % i
            values.append(rec["value"])
        if f == "get":
            pick = rnd.choice(values + [None]) if values else None
            rec["kvs"] = [] if pick is None else [{"key": "a",
                                                   "value": pick}]
        elif f == "delete":
            rec["deleted"] = rnd.randint(0, 1)
        elif f == "cas":
            rec["expect_mod_revision"] = 0
            rec["succeeded"] = rnd.random() < 0.5
        if rec["outcome"] == "info" and rnd.random() < 0.5:
            del rec["complete_ns"]
        recs.append(rec)
    return recs


def _brute_force(projs):
    """Linearizable? by trying every order the real-time order allows,
    every subset of the indeterminate ops, no cache, no pruning."""
    from chaoscheck.model import INITIAL, step

    def go(state, left):
        if not any(p.checked for p in left):
            return True
        first_return = min(p.complete for p in left if p.checked)
        for p in left:
            if p.invoke > first_return:
                continue  # some op still pending returned before p began
            rest = [q for q in left if q is not p]
            for s in step(state, p):
                if go(s, rest):
                    return True
        return False

    return go(INITIAL, list(projs))


class SearchAgainstBruteForce(unittest.TestCase):
    def test_search_agrees_with_brute_force_on_small_histories(self):
        import random
        rnd = random.Random(20261123)
        verdicts = {True: 0, False: 0}
        for trial in range(400):
            recs = _random_small_history(rnd)
            h = strip_revisions(parse(recs))
            projs = linear.partition(h).get("a", [])
            want = _brute_force(projs)
            got = linear.check_key("a", projs, 10 ** 6, float("inf"))
            self.assertEqual(got.result, "ok" if want else "fail",
                             "trial %d: %s" % (trial, json.dumps(recs)))
            verdicts[want] += 1
        # Both verdicts must be well represented, or this proves nothing.
        self.assertGreater(min(verdicts.values()), 80, verdicts)


class Format(unittest.TestCase):
    def test_ok_op_without_revision_is_a_history_error_naming_the_line(self):
        recs = [{"type": "meta", "version": 1},
                {"type": "op", "id": 1, "op": "put", "key": "a",
                 "value": "v", "invoke_ns": 0, "complete_ns": 5,
                 "outcome": "ok"}]
        with self.assertRaises(history.HistoryError) as cm:
            parse(recs)
        self.assertEqual(cm.exception.line, 2)

    def test_unknown_record_type_and_bad_outcome_are_rejected(self):
        for rec in ({"type": "nope"},
                    {"type": "op", "op": "get", "key": "a", "invoke_ns": 0,
                     "complete_ns": 1, "outcome": "maybe"},
                    {"type": "op", "op": "get", "key": "a", "invoke_ns": 5,
                     "complete_ns": 1, "outcome": "fail"},
                    {"type": "watch_response", "watcher": "x",
                     "time_ns": 1}):
            with self.assertRaises(history.HistoryError):
                parse([rec])

    def test_examples_in_docs_chaos_md_parse_and_pass(self):
        path = os.path.join(HERE, "..", "..", "docs", "chaos.md")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        blocks = re.findall(r"```json\n(.*?)```", text, re.S)
        self.assertTrue(blocks)
        h = history.loads("".join(blocks))
        self.assertEqual(len(h.ops), 5)
        self.assertEqual(len(h.watchers), 1)
        r = check.run(h)
        self.assertEqual((r.anomalies, r.lost), ([], {}))

    def test_summary_ends_with_the_verdict_line(self):
        h, r = run(gen.generate(1))
        out = io.StringIO()
        check.summary(h, r, out)
        self.assertEqual(out.getvalue().splitlines()[-1],
                         "anomalies: 0, lost writes: 0")


class Cli(unittest.TestCase):
    def _cli(self, recs=None, text=None, extra=()):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl",
                                         delete=False) as f:
            f.write(text if text is not None else
                    "\n".join(json.dumps(r) for r in recs) + "\n")
        try:
            p = subprocess.run([sys.executable,
                                os.path.join(HERE, "checker.py"), f.name] +
                               list(extra),
                               capture_output=True, text=True, timeout=60)
        finally:
            os.unlink(f.name)
        return p

    def test_valid_history_exits_zero(self):
        p = self._cli(gen.generate(2))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.splitlines()[-1],
                         "anomalies: 0, lost writes: 0")

    def test_lost_write_exits_nonzero_and_is_counted(self):
        recs = gen.generate(2)
        self.assertTrue(lost_set_element(recs))
        p = self._cli(recs)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stdout.splitlines()[-1],
                         r"^anomalies: \d+, lost writes: 1$")

    def test_anomaly_exits_nonzero(self):
        recs = gen.generate(2)
        self.assertTrue(duplicate_watch_event(recs))
        p = self._cli(recs)
        self.assertEqual(p.returncode, 1)
        m = re.match(r"^anomalies: (\d+), lost writes: 0$",
                     p.stdout.splitlines()[-1])
        self.assertTrue(m and int(m.group(1)) > 0, p.stdout)

    def test_json_verdicts_count_what_the_text_counts(self):
        recs = gen.generate(4)
        self.assertTrue(missing_watch_event(recs))
        self.assertTrue(lost_set_element(recs))
        fd, path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        try:
            p = self._cli(recs, extra=["--json", path])
            with open(path) as f:
                v = json.load(f)
        finally:
            os.unlink(path)
        self.assertEqual(p.returncode, 1)
        m = re.match(r"^anomalies: (\d+), lost writes: (\d+)$",
                     p.stdout.splitlines()[-1])
        self.assertEqual((v["anomalies"], v["lost_writes"]),
                         (int(m.group(1)), int(m.group(2))))
        self.assertEqual(v["lost_writes"], 1)
        self.assertGreaterEqual(v["watch_violations"], 1)
        self.assertGreaterEqual(v["by_kind"]["watch-gap"], 1)
        self.assertEqual(v["operations"], v["ok"] + v["fail"] + v["info"])

    def test_empty_history_exits_two(self):
        p = self._cli(text='{"type": "meta", "version": 1}\n')
        self.assertEqual(p.returncode, 2)
        self.assertIn("no operations", p.stderr)

    def test_unreadable_history_exits_two_naming_the_line(self):
        p = self._cli(text='{"type": "meta"}\nnot json\n')
        self.assertEqual(p.returncode, 2)
        self.assertIn("line 2", p.stderr)


if __name__ == "__main__":
    unittest.main()
