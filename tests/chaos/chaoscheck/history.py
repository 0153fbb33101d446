"""Reading a history: JSON lines -> Op, Watcher, HashKV and Fault objects.

The format is documented in docs/chaos.md; this module is its one reader.
Every operation is normalised to etcd's most general request, a Txn
(compares, a success branch, a failure branch), so the checks handle get,
put, delete, cas and txn with one code path.  A malformed record raises
HistoryError naming the line: a bad history is a harness bug, never an
anomaly of the cluster.
"""

import bisect
import json
from collections import namedtuple

FORMAT_VERSION = 1

# One key's state as a read, a watch event or a prev_kv reports it.  Any
# field except key may be None when the harness did not record it (the
# search then compares only what is known).
KV = namedtuple("KV", "key value mod create version")

# A compare of a Txn: target is one of mod, create, version, value; result
# one of "=", "!=", "<", ">".  etcd compares a missing key as the zero
# KeyValue (mod = create = version = 0) and a VALUE compare on it is false.
Compare = namedtuple("Compare", "key target result value")

# One request inside a branch: f is get, put or delete; range_end as etcd
# (None: the single key; "\0": every key >= key; else [key, range_end)).
SubOp = namedtuple("SubOp", "f key range_end value")

# The response to one SubOp: kvs for a get (complete: a key of the range
# that is absent was absent), deleted for a delete, prev_kv for a put.
SubResult = namedtuple("SubResult", "kvs deleted prev_kv")

OUTCOMES = ("ok", "fail", "info")
COMPARE_TARGETS = ("mod", "create", "version", "value")
COMPARE_RESULTS = ("=", "!=", "<", ">")
INF = float("inf")


class HistoryError(Exception):
    """A record that does not follow docs/chaos.md (line is 1-based)."""

    def __init__(self, line, msg):
        super().__init__("line %d: %s" % (line, msg))
        self.line = line


def in_range(k, key, range_end):
    """True when key k lies in etcd's range (key, range_end)."""
    if not range_end:
        return k == key
    if range_end == "\0":
        return k >= key
    return key <= k < range_end


def keys_in(sorted_keys, key, range_end):
    """The keys of a sorted list that lie in etcd's range (key, range_end)."""
    if not range_end:
        i = bisect.bisect_left(sorted_keys, key)
        return sorted_keys[i:i + 1] if sorted_keys[i:i + 1] == [key] else []
    lo = bisect.bisect_left(sorted_keys, key)
    if range_end == "\0":
        return sorted_keys[lo:]
    return sorted_keys[lo:bisect.bisect_left(sorted_keys, range_end)]


class Op:
    """One client request, normalised to a Txn.

    succeeded: True / False when the response said which branch ran, None
    when unknown (info outcome).  responses: one SubResult per request of
    the executed branch, or None when there was no response.  revision:
    the response header revision (None without a response).  complete is
    INF for an info operation: it may take effect at any later time.
    """

    __slots__ = ("id", "client", "f", "invoke", "complete", "outcome",
                 "error", "revision", "serializable", "final", "compares",
                 "success", "failure", "succeeded", "responses", "line",
                 "timeout_ns", "resolved_revision")

    def branch(self, succeeded=None):
        """The requests of the branch that ran (or of the one asked for)."""
        s = self.succeeded if succeeded is None else succeeded
        if s is None:
            return None
        return self.success if s else self.failure

    def is_read_only(self):
        return all(o.f == "get" for o in self.success + self.failure)

    def write_keys(self, succeeded=None):
        b = self.branch(succeeded)
        return [o.key for o in b if o.f in ("put", "delete")] if b else []

    def wrote(self):
        """True when the executed branch changed the store (a revision).

        A delete that deleted nothing does not create a revision in etcd.
        Unknown (None) when the branch or a delete count is unknown.
        """
        b = self.branch()
        if b is None:
            return None
        unknown = False
        for i, o in enumerate(b):
            if o.f == "put":
                return True
            if o.f == "delete":
                r = self.responses[i] if self.responses else None
                if r is None or r.deleted is None:
                    unknown = True
                elif r.deleted > 0:
                    return True
        return None if unknown else False

    def describe(self):
        parts = ["#%s" % self.id, "client %s" % self.client, self.f]
        keys = sorted({o.key for o in self.success + self.failure} |
                      {c.key for c in self.compares})
        parts.append(",".join(keys))
        parts.append(self.outcome)
        if self.revision is not None:
            parts.append("rev %d" % self.revision)
        parts.append("[%s, %s]" % (self.invoke,
                                   "inf" if self.complete == INF
                                   else self.complete))
        return " ".join(parts) + " (line %d)" % self.line


class Event:
    __slots__ = ("type", "kv", "prev_kv")

    def __init__(self, type_, kv, prev_kv):
        self.type = type_
        self.kv = kv
        self.prev_kv = prev_kv


class WatchResponse:
    __slots__ = ("time", "revision", "created", "canceled",
                 "compact_revision", "progress", "fragment", "events", "line")


class Watcher:
    """One watch request and every response it received, in order."""

    __slots__ = ("id", "client", "key", "range_end", "start_revision",
                 "prev_kv", "progress_notify", "invoke", "resumes",
                 "responses", "line")

    def describe(self):
        return "watcher %s [%s, %s) from rev %s (line %d)" % (
            self.id, self.key, self.range_end or "", self.start_revision,
            self.line)


HashKV = namedtuple("HashKV", "member revision hash compact_revision line")
Fault = namedtuple("Fault", "time nemesis action detail line")


class History:
    def __init__(self):
        self.meta = {}
        self.ops = []
        self.watchers = {}
        self.hashkvs = []
        self.faults = []


# --- field helpers -------------------------------------------------------

def _need(rec, name, line, types):
    if name not in rec:
        raise HistoryError(line, "missing field %r" % name)
    v = rec[name]
    # JSON true/false arrive as bool, which Python also counts as an int.
    if not isinstance(v, types) or (isinstance(v, bool) and types is not bool):
        raise HistoryError(line, "field %r has the wrong type" % name)
    return v


def _opt(rec, name, line, types, default=None):
    if name not in rec or rec[name] is None:
        return default
    return _need(rec, name, line, types)


def _int_or_none(rec, name, line):
    v = _opt(rec, name, line, int)
    if v is not None and v < 0:
        raise HistoryError(line, "field %r is negative" % name)
    return v


def _kv(d, line):
    if not isinstance(d, dict):
        raise HistoryError(line, "a key-value must be an object")
    return KV(_need(d, "key", line, str), _opt(d, "value", line, str),
              _int_or_none(d, "mod_revision", line),
              _int_or_none(d, "create_revision", line),
              _int_or_none(d, "version", line))


def _kvs(rec, line):
    v = rec.get("kvs")
    if v is None:
        return None
    if not isinstance(v, list):
        raise HistoryError(line, "kvs must be a list")
    return [_kv(d, line) for d in v]


def _subop(d, line):
    if not isinstance(d, dict):
        raise HistoryError(line, "a txn request must be an object")
    f = _need(d, "op", line, str)
    if f not in ("get", "put", "delete"):
        raise HistoryError(line, "txn request op %r is not get/put/delete" % f)
    key = _need(d, "key", line, str)
    if key == "":
        raise HistoryError(line, "empty key")
    range_end = _opt(d, "range_end", line, str) or None
    value = None
    if f == "put":
        value = _need(d, "value", line, str)
        if range_end:
            raise HistoryError(line, "a put has no range_end")
    if f == "delete" and range_end:
        # A range delete's deleted keys are not recorded, so its effect
        # on each key is unknown: the checks below would lose soundness.
        raise HistoryError(line, "range deletes are not supported")
    return SubOp(f, key, range_end, value)


def _subresult(f, d, line):
    if d is None:
        return SubResult(None, None, None)
    if not isinstance(d, dict):
        raise HistoryError(line, "a txn response must be an object")
    pk = d.get("prev_kv")
    return SubResult(_kvs(d, line) if f == "get" else None,
                     _int_or_none(d, "deleted", line),
                     _kv(pk, line) if pk else None)


def _compare(d, line):
    if not isinstance(d, dict):
        raise HistoryError(line, "a compare must be an object")
    target = _need(d, "target", line, str)
    if target not in COMPARE_TARGETS:
        raise HistoryError(line, "compare target %r" % target)
    result = _need(d, "result", line, str)
    if result not in COMPARE_RESULTS:
        raise HistoryError(line, "compare result %r" % result)
    value = _need(d, "value", line, str if target == "value" else int)
    return Compare(_need(d, "key", line, str), target, result, value)


# --- records -------------------------------------------------------------

def _op(rec, line):
    op = Op()
    op.line = line
    op.id = rec.get("id", line)
    op.client = rec.get("client")
    op.f = _need(rec, "op", line, str)
    op.outcome = _need(rec, "outcome", line, str)
    if op.outcome not in OUTCOMES:
        raise HistoryError(line, "outcome %r is not ok/fail/info" % op.outcome)
    op.invoke = _need(rec, "invoke_ns", line, int)
    c = _opt(rec, "complete_ns", line, int)
    if op.outcome != "info" and c is None:
        raise HistoryError(line, "an ok or fail operation needs complete_ns")
    if c is not None and c < op.invoke:
        raise HistoryError(line, "complete_ns before invoke_ns")
    op.timeout_ns = c
    op.complete = INF if op.outcome == "info" else c
    op.error = rec.get("error")
    op.revision = _int_or_none(rec, "revision", line)
    if op.outcome == "ok" and op.revision is None:
        raise HistoryError(line, "an ok operation needs the header revision")
    op.serializable = bool(rec.get("serializable", False))
    op.final = bool(rec.get("final", False))
    op.resolved_revision = None
    ok = op.outcome == "ok"
    f = op.f
    if f in ("get", "put", "delete"):
        sub = _subop(dict(rec, op=f), line)
        op.compares, op.success, op.failure = [], [sub], []
        op.succeeded = True
        if ok:
            op.responses = [_subresult(f, rec, line)]
            if f == "get" and op.responses[0].kvs is None:
                raise HistoryError(line, "an ok get needs kvs")
        else:
            op.responses = None
    elif f == "cas":
        key = _need(rec, "key", line, str)
        expect = _need(rec, "expect_mod_revision", line, int)
        op.compares = [Compare(key, "mod", "=", expect)]
        op.success = [SubOp("put", key, None, _need(rec, "value", line, str))]
        op.failure = [SubOp("get", key, None, None)]
        op.succeeded = _opt(rec, "succeeded", line, bool)
        if ok and op.succeeded is None:
            raise HistoryError(line, "an ok cas needs succeeded")
        if not ok:
            op.succeeded = None
            op.responses = None
        elif op.succeeded:
            op.responses = [SubResult(None, None, None)]
        else:
            # The failure branch reads the key; its kvs are optional.
            if rec.get("kvs") is None:
                op.failure = []
                op.responses = []
            else:
                op.responses = [SubResult(_kvs(rec, line), None, None)]
    elif f == "txn":
        op.compares = [_compare(d, line) for d in rec.get("compare", [])]
        op.success = [_subop(d, line) for d in rec.get("success", [])]
        op.failure = [_subop(d, line) for d in rec.get("failure", [])]
        op.succeeded = _opt(rec, "succeeded", line, bool)
        if not op.compares:
            op.succeeded = True  # etcd: no compares -> success branch
        if not ok:
            op.succeeded = None if op.compares else True
            op.responses = None
        else:
            if op.succeeded is None:
                raise HistoryError(line, "an ok txn needs succeeded")
            resp = rec.get("responses")
            b = op.branch()
            if not isinstance(resp, list) or len(resp) != len(b):
                raise HistoryError(line, "responses must match the branch")
            op.responses = [_subresult(o.f, d, line)
                            for o, d in zip(b, resp)]
            for o, r in zip(b, op.responses):
                if o.f == "get" and r.kvs is None:
                    raise HistoryError(line, "a txn get response needs kvs")
        for b in (op.success, op.failure):
            keys = [o.key for o in b if o.f != "get"]
            if len(keys) != len(set(keys)):
                # etcd refuses it (duplicate key given in txn request).
                raise HistoryError(line, "a txn branch writes one key twice")
    else:
        raise HistoryError(line, "unknown op %r" % f)
    if op.outcome != "ok":
        op.revision = None
    return op


def _watch_response(rec, line):
    r = WatchResponse()
    r.line = line
    r.time = _need(rec, "time_ns", line, int)
    r.revision = _int_or_none(rec, "revision", line)
    r.created = bool(rec.get("created", False))
    r.canceled = bool(rec.get("canceled", False))
    r.compact_revision = _int_or_none(rec, "compact_revision", line) or 0
    r.fragment = bool(rec.get("fragment", False))
    evs = rec.get("events") or []
    if not isinstance(evs, list):
        raise HistoryError(line, "events must be a list")
    r.events = []
    for e in evs:
        if not isinstance(e, dict):
            raise HistoryError(line, "an event must be an object")
        t = _need(e, "type", line, str)
        if t not in ("PUT", "DELETE"):
            raise HistoryError(line, "event type %r" % t)
        kv = _kv(e, line)
        if kv.mod is None:
            raise HistoryError(line, "an event needs mod_revision")
        if t == "PUT" and kv.value is None:
            raise HistoryError(line, "a PUT event needs value")
        pk = e.get("prev_kv")
        r.events.append(Event(t, kv, _kv(pk, line) if pk else None))
    p = rec.get("progress")
    r.progress = (not r.events and not r.created and not r.canceled
                  if p is None else bool(p))
    if r.progress and r.revision is None:
        raise HistoryError(line, "a progress notification needs revision")
    return r


def _watcher(rec, line):
    w = Watcher()
    w.line = line
    w.id = _need(rec, "watcher", line, (str, int))
    w.client = rec.get("client")
    w.key = _need(rec, "key", line, str)
    w.range_end = _opt(rec, "range_end", line, str) or None
    w.start_revision = _opt(rec, "start_revision", line, int, 0)
    w.prev_kv = bool(rec.get("prev_kv", False))
    w.progress_notify = bool(rec.get("progress_notify", False))
    w.invoke = _need(rec, "invoke_ns", line, int)
    w.resumes = rec.get("resumes")
    w.responses = []
    return w


def parse_records(records):
    """Build a History from (line, dict) pairs.  Raises HistoryError."""
    h = History()
    ids = set()
    for line, rec in records:
        if not isinstance(rec, dict):
            raise HistoryError(line, "a record must be a JSON object")
        t = rec.get("type")
        if t == "meta":
            v = rec.get("version", FORMAT_VERSION)
            if v != FORMAT_VERSION:
                raise HistoryError(line, "format version %r, expected %d" %
                                   (v, FORMAT_VERSION))
            h.meta.update(rec)
        elif t == "op":
            op = _op(rec, line)
            if op.id in ids:
                raise HistoryError(line, "duplicate op id %r" % op.id)
            ids.add(op.id)
            h.ops.append(op)
        elif t == "watch":
            w = _watcher(rec, line)
            if w.id in h.watchers:
                raise HistoryError(line, "duplicate watcher %r" % w.id)
            h.watchers[w.id] = w
        elif t == "watch_response":
            wid = _need(rec, "watcher", line, (str, int))
            if wid not in h.watchers:
                raise HistoryError(line, "response for unknown watcher %r" %
                                   wid)
            h.watchers[wid].responses.append(_watch_response(rec, line))
        elif t == "hashkv":
            h.hashkvs.append(HashKV(_need(rec, "member", line, (str, int)),
                                    _need(rec, "revision", line, int),
                                    _need(rec, "hash", line, int),
                                    _opt(rec, "compact_revision", line, int,
                                         0), line))
        elif t == "fault":
            h.faults.append(Fault(rec.get("time_ns"), rec.get("nemesis"),
                                  rec.get("action"), rec.get("detail"), line))
        else:
            raise HistoryError(line, "unknown record type %r" % t)
    return h


def load(path):
    """Read a JSON-lines history file.  Blank lines are skipped."""
    recs = []
    with open(path, "r", encoding="utf-8") as f:
        for n, text in enumerate(f, 1):
            text = text.strip()
            if not text:
                continue
            try:
                recs.append((n, json.loads(text)))
            except ValueError as e:
                raise HistoryError(n, "not JSON: %s" % e) from None
    return parse_records(recs)


def loads(text):
    """Parse a history held in a string (the self-tests use this)."""
    recs = []
    for n, t in enumerate(text.splitlines(), 1):
        t = t.strip()
        if t:
            try:
                recs.append((n, json.loads(t)))
            except ValueError as e:
                raise HistoryError(n, "not JSON: %s" % e) from None
    return parse_records(recs)
