"""Watch checks: etcd's six watch guarantees, against the write log.

Each watcher is checked on its own, from its start revision (a watch with
start_revision 0 starts after the revision its created response reports).
Fragments (fragment=true) are joined with the response that ends them
first, as etcd's client does.

  watch-order          event revisions never go down along the stream;
                       within a revision, events follow the txn's order
                       (when the log knows the request that wrote it)
  watch-duplicate      one (key, revision) delivered twice
  watch-split-revision one revision's events spread over two responses
  watch-range          an event outside the watched range or before the
                       start revision
  watch-gap            a write the log knows of, in range, at or after the
                       start and at or below the watcher's horizon (its
                       last event or progress revision), never delivered;
                       a revision delivered in part is a gap too
  watch-progress-ahead an event at or below a progress notification's
                       revision delivered after that notification
  watch-prev-kv        prev_kv (when asked for) is not the key's state
                       just before the event
  watch-kv             create_revision / version of an event do not follow
                       from its prev_kv
  watch-resume         a watch canceled as compacted although its start
                       revision is above the compact revision it reports
                       (etcd must resume from any revision in the window)

Delivered values also go through the read checks (phantom, aborted,
future), and every event is part of the write log the other watchers are
held to.
"""

from .history import in_range
from .revisions import TOMB, check_value


def _joined(w):
    """Responses with fragments joined: (first response, events) pairs."""
    out, pending, first = [], [], None
    for r in w.responses:
        if first is None:
            first = r
        pending.extend(r.events)
        if r.fragment:
            continue
        out.append((first, pending))
        pending, first = [], None
    if first is not None:
        out.append((first, pending))
    return out


def check_watcher(ctx, w):
    """Check one watcher; returns the number of events it delivered."""
    report, log = ctx.report, ctx.log
    start = w.start_revision if w.start_revision > 0 else None
    if start is None:
        for r in w.responses:
            if r.created and r.revision is not None:
                start = r.revision + 1
                break
    delivered = {}      # (key, rev) -> response index
    rev_keys = {}       # rev -> keys in delivery order
    rev_resp = {}       # rev -> response index
    last_rev = 0
    progress = 0        # highest progress revision seen so far
    horizon = 0
    n = 0
    name = w.describe()
    for i, (resp, events) in enumerate(_joined(w)):
        if (resp.canceled and resp.compact_revision and w.start_revision > 0
                and w.start_revision > resp.compact_revision):
            report.add("watch-resume", "%s: canceled as compacted at rev "
                       "%d (line %d)" % (name, resp.compact_revision,
                                         resp.line))
        if resp.progress and not events:
            progress = max(progress, resp.revision)
            horizon = max(horizon, resp.revision)
            continue
        for e in events:
            n += 1
            k, r = e.kv.key, e.kv.mod
            where = "%s: %s %s@%d (line %d)" % (name, e.type, k, r,
                                               resp.line)
            if not in_range(k, w.key, w.range_end) or (start and r < start):
                report.add("watch-range", where)
            if (k, r) in delivered:
                report.add("watch-duplicate", where + " delivered again")
                continue
            if r < last_rev:
                report.add("watch-order", where + " after rev %d" % last_rev)
            if rev_resp.get(r, i) != i:
                report.add("watch-split-revision",
                           where + ": rev %d split over two responses" % r)
            if r <= progress:
                report.add("watch-progress-ahead", where + ": a progress "
                           "notification at rev %d came first" % progress)
            delivered[(k, r)] = i
            rev_keys.setdefault(r, []).append(k)
            rev_resp.setdefault(r, i)
            last_rev = max(last_rev, r)
            horizon = max(horizon, r)
            if e.type == "PUT":
                check_value(ctx, k, e.kv.value, resp.time, where)
            if e.prev_kv is not None:
                check_value(ctx, k, e.prev_kv.value, resp.time,
                            "prev_kv in " + where)
            if w.prev_kv:
                _check_prev_kv(ctx, e, where)
    for r, keys in rev_keys.items():
        if len(keys) > 1:
            _check_txn_order(ctx, w, r, keys, name)
    if start is None:
        start = min((r for _, r in delivered), default=horizon + 1)
    for k in log.keys_in(w.key, w.range_end):
        for r in log.between(k, start, horizon):
            if (k, r) not in delivered:
                report.add("watch-gap", "%s: %s %s@%d never delivered "
                           "(horizon %d)" % (name, "DELETE" if log.at[k][r]
                                             is TOMB else "PUT", k, r,
                                             horizon))
    return n


def _check_txn_order(ctx, w, r, keys, name):
    """Events of one revision come in the order of the txn's requests."""
    op = ctx.log.owner.get((keys[0], r))
    if op is None or op.branch() is None:
        return
    # A delete that deleted nothing made no event; comparing only the keys
    # delivered leaves it out either way.
    order = [sub.key for sub in op.branch() if sub.f != "get" and
             in_range(sub.key, w.key, w.range_end)]
    got = set(keys)
    want = [k for k in order if k in got]
    if want != keys:
        ctx.report.add("watch-order", "%s: rev %d delivered as %s, but %s "
                       "wrote %s" % (name, r, keys, op.describe(), want))


def _check_prev_kv(ctx, e, where):
    k, r, pk = e.kv.key, e.kv.mod, e.prev_kv
    latest = ctx.log.latest(k, r - 1)
    report = ctx.report
    if pk is not None:
        if pk.mod is not None and (pk.mod >= r or latest is None or
                                   latest[0] != pk.mod):
            report.add("watch-prev-kv", "%s: prev_kv at rev %s, but the "
                       "key's last write before is %s" % (
                           where, pk.mod, latest and latest[0]))
            return
        if e.type == "PUT":
            if (pk.create is not None and e.kv.create is not None and
                    pk.create != e.kv.create) or (
                        pk.version is not None and e.kv.version is not None
                        and pk.version + 1 != e.kv.version):
                report.add("watch-kv", "%s: create/version %s/%s do not "
                           "follow prev_kv %s/%s" % (
                               where, e.kv.create, e.kv.version, pk.create,
                               pk.version))
        return
    if e.type == "DELETE":
        report.add("watch-prev-kv", where + ": a DELETE without prev_kv")
        return
    if e.kv.version is not None and e.kv.version != 1:
        report.add("watch-prev-kv", where + ": version %d but no prev_kv" %
                   e.kv.version)
        return
    if e.kv.create is not None and e.kv.version == 1 and e.kv.create != r:
        report.add("watch-kv", where + ": version 1 but create_revision %d"
                   % e.kv.create)
    if latest is not None and latest[1] is not TOMB:
        # An indeterminate delete nobody observed may sit in between.
        if not ctx.info_deletes.get(k):
            report.add("watch-prev-kv", "%s: no prev_kv, but the key was "
                       "written at rev %d" % (where, latest[0]))


def check(ctx):
    """Check every watcher; returns (watchers, events delivered)."""
    n = 0
    for w in ctx.h.watchers.values():
        n += check_watcher(ctx, w)
    return len(ctx.h.watchers), n
