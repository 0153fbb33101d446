"""Global checks that need no search: etcd's revisions make them cheap.

etcd gives every modifying request one new revision (a txn's writes share
it), strictly increasing, and reports it in the response header; reads
return each key's mod_revision; watch events carry it.  With unique values
per put, every observation of (key, mod_revision, value) names the write
that produced it.  From all of that this module builds the write log
(key -> revision -> value or tombstone) and checks, in O(n log n):

  revision-order     header revisions follow real time: if a completed
                     before b began, rev(a) <= rev(b), and < when b writes
                     (so a read's revision is >= every write acknowledged
                     before it began); a read never shows a mod_revision
                     above its own revision
  revision-duplicate two different requests own one revision
  revision-conflict  one (key, revision) seen with two different values
  revision-mismatch  a write seen at a revision other than its header's
  txn-split-revision one txn's writes seen at more than one revision
  phantom-read       a value no request ever wrote
  aborted-read       a value only a definitely failed request wrote
  future-read        a value whose write began after the read completed
  stale-read         a read at revision R misses a write to the key at a
                     revision <= R that the log knows of
  lost-write         a final read (after the run) misses an acknowledged
                     write: counted apart, as W

Indeterminate writes whose value is observed are resolved: their revision
and branch become known, and they join the log.  One left unobserved is
unknown; only an unobserved indeterminate delete can explain a key that a
read shows absent, and then the read is given the benefit of the doubt.
"""

import bisect

from .history import INF, keys_in

TOMB = object()  # a deletion in the write log


class WriteLog:
    """key -> {revision: value or TOMB}, with the request that wrote each."""

    def __init__(self):
        self.at = {}       # key -> {rev: value | TOMB}
        self.owner = {}    # (key, rev) -> op or None (seen, writer unknown)
        self.src = {}      # (key, rev) -> description of first source
        self.meta = {}     # (key, rev) -> (create, version, source) seen
        self._revs = {}    # key -> sorted revisions (built by freeze)
        self._keys = []    # sorted keys (built by freeze)

    def add(self, key, rev, value, owner, src, report, kv=None):
        """Record that key had value (or TOMB) at rev.

        kv, when the source showed one, also carries create_revision and
        version: two sources must agree on those too.
        """
        if kv is not None and (kv.create is not None or
                               kv.version is not None):
            m = self.meta.get((key, rev))
            if m is None:
                self.meta[(key, rev)] = (kv.create, kv.version, src)
            elif any(a is not None and b is not None and a != b
                     for a, b in zip(m[:2], (kv.create, kv.version))):
                report.add("revision-conflict",
                           "key %s rev %d: %s says create %s version %s, "
                           "%s says %s %s" % (key, rev, m[2], m[0], m[1],
                                              src, kv.create, kv.version))
        d = self.at.setdefault(key, {})
        if rev in d:
            old = d[rev]
            if old is not value and old != value:
                report.add("revision-conflict",
                           "key %s rev %d: %s says %s, %s says %s" % (
                               key, rev, self.src[(key, rev)], _v(old), src,
                               _v(value)))
            if self.owner.get((key, rev)) is None and owner is not None:
                self.owner[(key, rev)] = owner
            return
        d[rev] = value
        self.owner[(key, rev)] = owner
        self.src[(key, rev)] = src

    def freeze(self):
        self._revs = {k: sorted(d) for k, d in self.at.items()}
        self._keys = sorted(self._revs)

    def latest(self, key, rev):
        """The newest (rev, value) for key at or below rev, or None."""
        revs = self._revs.get(key)
        if not revs:
            return None
        i = bisect.bisect_right(revs, rev)
        if i == 0:
            return None
        r = revs[i - 1]
        return r, self.at[key][r]

    def between(self, key, lo, hi):
        """Revisions of key in [lo, hi], ascending."""
        revs = self._revs.get(key, ())
        return revs[bisect.bisect_left(revs, lo):bisect.bisect_right(revs,
                                                                      hi)]

    def keys_in(self, key, range_end):
        return keys_in(self._keys, key, range_end)


def _v(value):
    return "<deleted>" if value is TOMB else repr(value)


class Context:
    """What the checks share: writers by value, the log, unknown deletes."""

    def __init__(self, history, report):
        self.h = history
        self.report = report
        self.writers = {}      # (key, value) -> [op]
        self.log = WriteLog()
        self.info_deletes = {}  # key -> [op] indeterminate, never resolved
        for op in history.ops:
            for s in (True, False):
                for sub in op.branch(s) or ():
                    if sub.f == "put":
                        self.writers.setdefault((sub.key, sub.value),
                                                []).append(op)

    def writer(self, key, value):
        """The one request that put value on key; None if none or many."""
        w = self.writers.get((key, value))
        return w[0] if w and len(w) == 1 else None


def _observations(h):
    """Every (key, rev, value|TOMB, source, kv) the run saw; kv is the
    KeyValue shown (None for a DELETE event, which carries no version)."""
    for op in h.ops:
        if op.outcome != "ok":
            continue
        b = op.branch()
        for sub, res in zip(b, op.responses):
            for kv in (res.kvs or ()) if sub.f == "get" else ():
                if kv.mod is not None and kv.value is not None:
                    yield kv.key, kv.mod, kv.value, "read #%s" % op.id, kv
            if res.prev_kv is not None and res.prev_kv.mod is not None:
                yield (res.prev_kv.key, res.prev_kv.mod, res.prev_kv.value,
                       "prev_kv of #%s" % op.id, res.prev_kv)
    for w in h.watchers.values():
        for r in w.responses:
            for e in r.events:
                src = "watcher %s (line %d)" % (w.id, r.line)
                if e.type == "PUT":
                    yield e.kv.key, e.kv.mod, e.kv.value, src, e.kv
                else:
                    yield e.kv.key, e.kv.mod, TOMB, src, None
                if e.prev_kv is not None and e.prev_kv.mod is not None:
                    yield (e.prev_kv.key, e.prev_kv.mod, e.prev_kv.value,
                           "prev_kv in " + src, e.prev_kv)


def build_log(ctx):
    """Fill ctx.log; resolve observed indeterminate writes; revision-*."""
    h, report, log = ctx.h, ctx.report, ctx.log
    seen_at = {}  # writer op -> {key: set of revisions}
    seen_put = {}  # writer op -> {(key, value) observed}
    # Acknowledged writes first: they own their header revision.
    owners = {}
    for op in h.ops:
        if op.outcome != "ok" or op.wrote() is not True:
            continue
        if op.revision in owners:
            report.add("revision-duplicate",
                       "rev %d owned by %s and %s" % (
                           op.revision, owners[op.revision].describe(),
                           op.describe()))
        else:
            owners[op.revision] = op
        for sub, res in zip(op.branch(), op.responses):
            if sub.f == "put":
                log.add(sub.key, op.revision, sub.value, op,
                        "#%s" % op.id, report)
            elif sub.f == "delete" and res.deleted:
                log.add(sub.key, op.revision, TOMB, op, "#%s" % op.id,
                        report)
    for key, rev, value, src, kv in _observations(h):
        owner = None
        if value is not TOMB:
            owner = ctx.writer(key, value)
            if owner is not None:
                seen_at.setdefault(owner, {}).setdefault(key, set()).add(rev)
                seen_put.setdefault(owner, set()).add((key, value))
        elif (key, rev) in log.owner:
            owner = log.owner[(key, rev)]
        log.add(key, rev, value, owner, src, report, kv)
    for op, per_key in seen_at.items():
        revs = set()
        for s in per_key.values():
            revs |= s
        if op.outcome == "ok" and op.wrote():
            revs.add(op.revision)
        if len(revs) > 1:
            kind = ("txn-split-revision" if len(op.write_keys(True)) +
                    len(op.write_keys(False)) > 1 else "revision-mismatch")
            report.add(kind, "%s seen at revisions %s" % (
                op.describe(), ", ".join(
                    "%s@%s" % (k, sorted(v)) for k, v in
                    sorted(per_key.items()))))
        rev = min(revs)
        if op.outcome == "fail":
            continue  # reported as aborted-read by the read checks
        if op.outcome == "info":
            # Observed, so it took effect, at rev, in the branch holding
            # the value seen.
            op.resolved_revision = rev
            op.succeeded = any(s.f == "put" and (s.key, s.value) in
                               seen_put[op] for s in op.success)
            for sub in op.branch():
                if sub.f == "put":
                    log.add(sub.key, rev, sub.value, op, "#%s" % op.id,
                            report)
            if rev in owners and owners[rev] is not op:
                report.add("revision-duplicate", "rev %d owned by %s and %s"
                           % (rev, owners[rev].describe(), op.describe()))
            owners.setdefault(rev, op)
    for op in h.ops:
        if op.outcome == "info" and op.resolved_revision is None:
            for s in (True, False):
                for sub in op.branch(s) or ():
                    if sub.f == "delete":
                        ctx.info_deletes.setdefault(sub.key, []).append(op)
    log.freeze()


def check_real_time(ctx):
    """revision-order across requests: one sweep in invoke order."""
    items = []
    for op in ctx.h.ops:
        if op.serializable:
            continue
        if op.outcome == "ok":
            items.append((op, op.invoke, op.complete, op.revision,
                          op.wrote() is True))
        elif op.outcome == "info" and op.resolved_revision is not None:
            items.append((op, op.invoke, INF, op.resolved_revision, True))
    by_complete = sorted(items, key=lambda t: t[2])
    by_invoke = sorted(items, key=lambda t: t[1])
    i, best = 0, None
    for b in by_invoke:
        while i < len(by_complete) and by_complete[i][2] < b[1]:
            if best is None or by_complete[i][3] > best[3]:
                best = by_complete[i]
            i += 1
        if best is None:
            continue
        if b[3] < best[3] or (b[4] and b[3] == best[3]):
            ctx.report.add("revision-order",
                           "%s has revision %d, but %s completed before it "
                           "began with revision %d" % (
                               b[0].describe(), b[3], best[0].describe(),
                               best[3]))


def _read_revisions(op):
    """(SubOp, SubResult, read revision, keys read at R) for each get of
    an ok request.

    A get in a txn that writes sees the txn's own earlier writes (at the
    txn's revision R) and otherwise the store before it (R - 1).  When it
    is unknown whether the txn wrote (a delete count not recorded), the
    read revision is None: the stale-read check skips it.
    """
    wrote = op.wrote()
    written = set()
    for sub, res in zip(op.branch(), op.responses):
        if sub.f == "get":
            if wrote is False:
                yield sub, res, op.revision, ()
            elif wrote is True:
                yield sub, res, op.revision - 1, written.copy()
            else:
                yield sub, res, None, ()
        else:
            written.add(sub.key)


def check_reads(ctx):
    """phantom / aborted / future reads, stale reads and lost writes."""
    h, report, log = ctx.h, ctx.report, ctx.log
    for op in h.ops:
        if op.outcome != "ok":
            continue
        for res in op.responses:
            if res.prev_kv is not None:
                check_value(ctx, res.prev_kv.key, res.prev_kv.value,
                            op.complete, "prev_kv of " + op.describe())
        for sub, res, rrev, own in _read_revisions(op):
            for kv in res.kvs:
                check_value(ctx, kv.key, kv.value, op.complete,
                            "read " + op.describe())
                if kv.mod is not None and kv.mod > op.revision:
                    report.add("revision-order",
                               "%s returned %s at mod_revision %d, above "
                               "its header revision" % (op.describe(),
                                                        kv.key, kv.mod))
            if op.serializable or rrev is None:
                continue
            got = {kv.key: kv for kv in res.kvs}
            keys = set(got) | set(log.keys_in(sub.key, sub.range_end))
            for k in sorted(keys):
                _check_key_read(ctx, op, k, got.get(k),
                                op.revision if k in own else rrev)


def _check_key_read(ctx, op, k, kv, rrev):
    latest = ctx.log.latest(k, rrev)
    if latest is None:
        return
    lrev, lval = latest
    if kv is not None:
        if kv.mod is None:
            if lval is TOMB or kv.value == lval:
                return
            ctx.report.add("stale-read", "%s: %s = %r, but %r was "
                           "written at rev %d <= %d" % (
                               op.describe(), k, kv.value, lval, lrev,
                               rrev))
            return
        if lrev <= kv.mod:
            return
        what = "%s@%d" % (kv.value, kv.mod)
    else:
        if lval is TOMB:
            return
        if any(d.invoke < op.complete for d in ctx.info_deletes.get(k, ())):
            return  # an unobserved indeterminate delete may explain it
        what = "absent"
    writer = ctx.log.owner.get((k, lrev))
    msg = "%s: %s read as %s, but %s was written at rev %d <= %d" % (
        op.describe(), k, what, _v(lval), lrev, rrev)
    if op.final and writer is not None and writer.outcome == "ok":
        ctx.report.lost_write(writer, "%s is missing from final read: %s" %
                              (writer.describe(), msg))
    else:
        ctx.report.add("stale-read", msg)


def check_value(ctx, key, value, when, who):
    """A value read or delivered at time `when` must have been written."""
    if value is None:
        return
    ws = ctx.writers.get((key, value))
    if not ws:
        ctx.report.add("phantom-read", "%s: %s = %r, a value never written"
                       % (who, key, value))
        return
    if all(w.outcome == "fail" for w in ws):
        ctx.report.add("aborted-read", "%s: %s = %r, written only by %s, "
                       "which failed" % (who, key, value, ws[0].describe()))
        return
    if all(w.invoke > when for w in ws):
        ctx.report.add("future-read", "%s: %s = %r, written by %s, which "
                       "began after" % (who, key, value, ws[0].describe()))


def check_hashkv(h, report):
    """Every member's HashKV at one revision must agree.

    etcd hashes the keys between the compact revision and the revision
    asked for, so only answers with the same compact revision compare.
    """
    by_rev = {}
    for x in h.hashkvs:
        by_rev.setdefault((x.revision, x.compact_revision), []).append(x)
    for (rev, comp), xs in sorted(by_rev.items()):
        if len({x.hash for x in xs}) > 1:
            report.add("hashkv-mismatch", "rev %d (compacted %d): %s" % (
                rev, comp, ", ".join("%s=%d" % (x.member, x.hash)
                                     for x in xs)))
    return len(by_rev)
