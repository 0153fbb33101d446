"""Run every check on a history and print the verdict.

Order matters: the write log is built first, because observing an
indeterminate write resolves its revision and branch, which the search
and the read checks then use.
"""

import time

from . import linear, revisions, watch
from .report import KINDS, LOST_WRITE, Report

# Which anomaly kinds each printed check line sums up.
CHECKS = (
    ("linearizability", ("nonlinearizable",)),
    ("revision order", ("revision-order", "revision-duplicate",
                        "revision-mismatch", "revision-conflict")),
    ("txn atomicity", ("txn-split-revision",)),
    ("reads", ("stale-read", "phantom-read", "aborted-read",
               "future-read")),
    ("watch", ("watch-order", "watch-duplicate", "watch-split-revision",
               "watch-gap", "watch-range", "watch-progress-ahead",
               "watch-prev-kv", "watch-kv", "watch-resume")),
    ("hashkv", ("hashkv-mismatch",)),
)
assert sorted(k for _, ks in CHECKS for k in ks) == sorted(KINDS)


def _state(state):
    """A model state (model.py) for humans."""
    if state is None:
        return "?"
    kv, floor = state
    if kv is None:
        return "absent (revision floor %d)" % floor
    value, mod, create, version = kv
    if isinstance(value, tuple):
        value = "<a value no one observed>"
    return "%r at mod %s, create %s, version %s" % (value, mod, create,
                                                    version)


def run(history, timeout_s=60.0, budget=2000000):
    """Check a parsed History; returns a Report.

    timeout_s bounds the linearizability search (wall clock, all keys);
    budget bounds the steps spent on one key.  A key past either bound is
    "unknown", never an anomaly.
    """
    report = Report()
    t0 = time.monotonic()
    ctx = revisions.Context(history, report)
    revisions.build_log(ctx)
    results = linear.check(history, budget=budget, timeout_s=timeout_s)
    report.unknown = [r.key for r in results if r.result == linear.UNKNOWN]
    for r in results:
        if r.result == linear.FAIL:
            report.add("nonlinearizable", "key %s: no linearization of %d "
                       "ops; the deepest partial one (%d ops) cannot reach "
                       "the return of %s; it ended with %s, leaving the "
                       "key %s" % (
                           r.key, r.ops, r.linearized,
                           r.stuck.describe() if r.stuck else "?",
                           "; ".join(op.describe() for op in r.tail) or
                           "nothing", _state(r.state)))
    report.keys = len(results)
    report.steps = sum(r.steps for r in results)
    revisions.check_real_time(ctx)
    revisions.check_reads(ctx)
    report.watchers, report.events = watch.check(ctx)
    report.hash_revisions = revisions.check_hashkv(history, report)
    report.seconds = time.monotonic() - t0
    return report


def verdicts(history, report):
    """The report as one JSON-able dict (checker.py --json): what the
    harness prints per nemesis.  Keys: operations, ok, fail, info,
    resolved, watchers, events, faults, linearizability (ok / fail /
    unknown), unknown_keys, anomalies (total), by_kind ({kind: count}),
    watch_violations, lost_writes, seconds."""
    ops = history.ops
    by_kind = {}
    for k, _ in report.anomalies:
        by_kind[k] = by_kind.get(k, 0) + 1
    lin = "ok"
    if by_kind.get("nonlinearizable"):
        lin = "fail"
    elif report.unknown:
        lin = "unknown"
    return {
        "operations": len(ops),
        "ok": sum(1 for op in ops if op.outcome == "ok"),
        "fail": sum(1 for op in ops if op.outcome == "fail"),
        "info": sum(1 for op in ops if op.outcome == "info"),
        "resolved": sum(1 for op in ops if op.resolved_revision is not None),
        "watchers": report.watchers,
        "events": report.events,
        "faults": len(history.faults),
        "linearizability": lin,
        "unknown_keys": list(report.unknown),
        "anomalies": len(report.anomalies),
        "by_kind": by_kind,
        "watch_violations": sum(n for k, n in by_kind.items()
                                if k.startswith("watch-")),
        "lost_writes": len(report.lost),
        "seconds": round(report.seconds, 3),
    }


def summary(history, report, out, details=5):
    """Print per-check results; the last line is the verdict line."""
    ops = history.ops
    n = {o: sum(1 for op in ops if op.outcome == o)
         for o in ("ok", "fail", "info")}
    resolved = sum(1 for op in ops if op.resolved_revision is not None)
    out.write("operations: %d (ok %d, fail %d, info %d, %d info resolved), "
              "watchers: %d, events: %d, faults: %d\n" % (
                  len(ops), n["ok"], n["fail"], n["info"], resolved,
                  report.watchers, report.events, len(history.faults)))
    for name, kinds in CHECKS:
        c = sum(report.count(k) for k in kinds)
        if name == "linearizability":
            verdict = "ok" if c == 0 else "FAIL"
            if report.unknown and c == 0:
                verdict = "unknown"
            extra = " (%d keys, %d search steps%s)" % (
                report.keys, report.steps,
                ", unknown: " + " ".join(report.unknown)
                if report.unknown else "")
        elif name == "hashkv":
            verdict = "ok" if c == 0 else "FAIL"
            extra = " (%d revisions compared)" % report.hash_revisions
        else:
            verdict = "ok" if c == 0 else "FAIL"
            extra = ""
        out.write("%-16s %s%s\n" % (name + ":", verdict, extra))
        for k in kinds:
            msgs = [m for kk, m in report.anomalies if kk == k]
            for m in msgs[:details]:
                out.write("  %s: %s\n" % (k, m))
            if len(msgs) > details:
                out.write("  %s: ... %d more\n" % (k, len(msgs) - details))
    lost = list(report.lost.values())
    out.write("%-16s %s\n" % ("lost writes:", "none" if not lost else
                              "%d" % len(lost)))
    for m in lost[:details]:
        out.write("  %s: %s\n" % (LOST_WRITE, m))
    if len(lost) > details:
        out.write("  %s: ... %d more\n" % (LOST_WRITE, len(lost) - details))
    out.write("checked in %.2f s\n" % report.seconds)
    out.write("anomalies: %d, lost writes: %d\n" % (len(report.anomalies),
                                                   len(report.lost)))
