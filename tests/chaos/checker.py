#!/usr/bin/python3
"""checker.py: check one chaos history for etcd's guarantees.

usage: checker.py HISTORY.jsonl [--timeout S] [--budget N] [--details N]
                                [--fail-unknown] [--json FILE]

Prints one line per check and, last, exactly
    anomalies: A, lost writes: W
Exit status: 0 when A and W are 0; 1 when either is not (or, with
--fail-unknown, when the linearizability search ran out of budget on some
key); 2 when the history cannot be read (a harness bug, named by line) or
holds no operation and no watcher.
--json FILE also writes the verdicts as one JSON object (check.verdicts).

The format and every check: docs/chaos.md.  Run with /usr/bin/python3.
"""

import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chaoscheck import check, history  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Check a moor chaos history (docs/chaos.md).")
    ap.add_argument("history", help="JSON-lines history file")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds for the linearizability search (60)")
    ap.add_argument("--budget", type=int, default=2000000,
                    help="search steps per key (2000000)")
    ap.add_argument("--details", type=int, default=5,
                    help="messages printed per anomaly kind (5)")
    ap.add_argument("--fail-unknown", action="store_true",
                    help="exit 1 when the search gave up on a key")
    ap.add_argument("--json", metavar="FILE",
                    help="also write the verdicts as one JSON object")
    a = ap.parse_args(argv)
    try:
        h = history.load(a.history)
    except (OSError, history.HistoryError) as e:
        sys.stderr.write("checker: %s: %s\n" % (a.history, e))
        return 2
    if not h.ops and not h.watchers:
        # Nothing to check is a harness failure, not a clean run.
        sys.stderr.write("checker: %s: no operations and no watchers\n" %
                         a.history)
        return 2
    r = check.run(h, timeout_s=a.timeout, budget=a.budget)
    check.summary(h, r, sys.stdout, details=a.details)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(check.verdicts(h, r), f, sort_keys=True)
            f.write("\n")
    if r.anomalies or r.lost:
        return 1
    if a.fail_unknown and r.unknown:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
