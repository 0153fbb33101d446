"""Anomalies and the report every check writes into.

Anomaly kinds are fixed names (docs/chaos.md lists what each means); the
self-tests assert on them, so renaming one is an interface change.
"""

KINDS = (
    # linearizability search
    "nonlinearizable",
    # revision checks
    "revision-order", "revision-duplicate", "revision-mismatch",
    "revision-conflict", "txn-split-revision", "stale-read",
    "phantom-read", "aborted-read", "future-read",
    # watch checks
    "watch-order", "watch-duplicate", "watch-split-revision", "watch-gap",
    "watch-range", "watch-progress-ahead", "watch-prev-kv", "watch-kv",
    "watch-resume",
    # after the run
    "hashkv-mismatch",
)
LOST_WRITE = "lost-write"


class Report:
    """Anomalies found, by kind, plus lost acknowledged writes.

    `lost` holds the ids of acknowledged writes a final read showed
    missing; each counts once however many reads showed it.
    """

    def __init__(self):
        self.anomalies = []  # (kind, message)
        self.lost = {}       # op id -> message
        self.unknown = []    # keys the search gave up on (budget, time)
        self.keys = 0        # keys searched
        self.steps = 0       # search steps, all keys
        self.watchers = 0
        self.events = 0      # watch events delivered, all watchers
        self.hash_revisions = 0
        self.seconds = 0.0

    def add(self, kind, msg):
        assert kind in KINDS, kind
        self.anomalies.append((kind, msg))

    def lost_write(self, op, msg):
        self.lost.setdefault(op.id, msg)

    def kinds(self):
        s = {k for k, _ in self.anomalies}
        if self.lost:
            s.add(LOST_WRITE)
        return s

    def count(self, kind):
        if kind == LOST_WRITE:
            return len(self.lost)
        return sum(1 for k, _ in self.anomalies if k == kind)
