"""Linearizability search: Wing & Gong's algorithm with Lowe's just-in-time
linearization and memoisation, one key at a time (P-compositionality).

References: J. M. Wing and C. Gong, "Testing and verifying concurrent
objects" (JPDC 1993); G. Lowe, "Testing for linearizability" (CCPE 2017),
the version with a cache of (linearized set, state) pairs that Porcupine
and Knossos also use.

The history of one key is a list of call and return entries ordered by
time.  Walking the list from the front, a call may be linearized when the
model accepts it in the current state; it is then lifted out (call and
return) and the walk restarts from the front.  Reaching a return whose
operation is not linearized means a wrong choice earlier: pop the last
linearization and try the next call after it.  A (linearized set, state)
pair already explored is never explored again, which is what keeps the
search tractable on the histories a real cluster produces (it is
exponential in the worst case: linearizability checking is NP-complete).

Indeterminate (info) operations have no return entry: they may take effect
at any time after their call, or never.  The search succeeds once every
operation that completed is linearized.

The search is bounded: `budget` steps per key and a wall-clock `deadline`;
past either it answers "unknown" instead of hanging.
"""

import time

from .history import keys_in
from .model import INITIAL, project, step

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"


class _Entry:
    __slots__ = ("call", "p", "match", "prev", "next", "bit")


def _build_list(projs):
    """A doubly linked list of call/return entries with a head sentinel.

    At equal timestamps calls sort before returns, so two operations that
    touch the same instant count as concurrent (no false real-time order).
    """
    items = []
    for i, p in enumerate(projs):
        c = _Entry()
        c.call, c.p, c.bit, c.match = True, p, 1 << i, None
        items.append((p.invoke, 0, i, c))
        if p.checked:
            r = _Entry()
            r.call, r.p, r.bit, r.match = False, p, 1 << i, None
            c.match = r
            items.append((p.complete, 1, i, r))
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    head = _Entry()
    head.call, head.p, head.prev, head.next = None, None, None, None
    prev = head
    for _, _, _, e in items:
        prev.next, e.prev, e.next = e, prev, None
        prev = e
    return head


def _lift(e):
    e.prev.next = e.next
    if e.next is not None:
        e.next.prev = e.prev
    r = e.match
    if r is not None:
        r.prev.next = r.next
        if r.next is not None:
            r.next.prev = r.prev


def _unlift(e):
    r = e.match
    if r is not None:
        r.prev.next = r
        if r.next is not None:
            r.next.prev = r
    e.prev.next = e
    if e.next is not None:
        e.next.prev = e


class KeyResult:
    """The verdict for one key: result is ok, fail or unknown.

    On fail, `stuck` is the operation whose return could not be reached
    in the deepest partial linearization found, `linearized` how many
    operations that partial linearization held, `tail` the last few of
    them (oldest first) and `state` the key's model state after them:
    where a human starts reading.
    """

    def __init__(self, key, result, ops, steps, stuck=None, linearized=0,
                 tail=(), state=None):
        self.key, self.result, self.ops, self.steps = key, result, ops, steps
        self.stuck, self.linearized = stuck, linearized
        self.tail, self.state = list(tail), state


def check_key(key, projs, budget, deadline):
    """Search one key's projected history.  Returns a KeyResult.

    One refinement of Lowe's algorithm, not changing the verdict: within
    one scan of the list (from the front to the first return entry), an
    indeterminate call of a class already tried in that scan is skipped.
    Both calls precede every remaining return entry, so neither can ever
    become unreachable, and they change every state alike: linearizing
    one now and the other later reaches exactly the states of the
    reverse.  (Trying the indeterminate calls last instead was measured:
    slower, since those that took effect are needed soon.)
    """
    n_checked = sum(1 for p in projs if p.checked)
    head = _build_list(projs)
    state, bits, remaining = INITIAL, 0, n_checked
    cache = set()
    stack = []
    tried = set()  # classes of unobserved indeterminate calls tried
    steps = 0
    best, stuck, tail, best_state = -1, None, [], None

    def try_call(e, first_alt):
        nonlocal state, bits, remaining, tried
        alts = step(state, e.p)
        nb = bits | e.bit
        for i in range(first_alt, len(alts)):
            s = alts[i]
            if (nb, s) in cache:
                continue
            cache.add((nb, s))
            stack.append((e, state, i, tried))
            state, bits, tried = s, nb, set()
            if e.p.checked:
                remaining -= 1
            _lift(e)
            return True
        if e.p.cls is not None:
            tried.add(e.p.cls)
        return False

    entry = head.next
    while remaining > 0:
        steps += 1
        if steps > budget or (steps & 1023 == 0 and
                              time.monotonic() > deadline):
            return KeyResult(key, UNKNOWN, len(projs), steps)
        if entry is not None and entry.call:
            cls = entry.p.cls
            if (cls is None or cls not in tried) and try_call(entry, 0):
                entry = head.next
            else:
                entry = entry.next
            continue
        # A return entry (or the end): its op is not linearized yet.
        if len(stack) > best:
            best, stuck = len(stack), entry.p if entry is not None else None
            tail = [f[0].p.op for f in stack[-4:]]
            best_state = state
        if not stack:
            return KeyResult(key, FAIL, len(projs), steps,
                             stuck.op if stuck else None, best, tail,
                             best_state)
        e, prev_state, alt, tried = stack.pop()
        _unlift(e)
        state, bits = prev_state, bits & ~e.bit
        if e.p.checked:
            remaining += 1
        entry = head.next if try_call(e, alt + 1) else e.next
    return KeyResult(key, OK, len(projs), steps)


def keys_of(history):
    """Every key the history names: written, compared, read, returned."""
    keys = set()
    for op in history.ops:
        for c in op.compares:
            keys.add(c.key)
        for sub in op.success + op.failure:
            if sub.range_end is None:
                keys.add(sub.key)
        for r in op.responses or ():
            for kv in r.kvs or ():
                keys.add(kv.key)
    return keys


def observed(history):
    """(key, value) pairs and revisions that reads, events, prev_kvs and
    write responses showed: the values some put is known to have written,
    and the revisions some write is known to own."""
    seen, owned = set(), set()

    def note(kv):
        if kv is not None and kv.value is not None:
            seen.add((kv.key, kv.value))
        if kv is not None and kv.mod is not None:
            owned.add(kv.mod)

    for op in history.ops:
        if op.outcome == "ok" and op.wrote():
            owned.add(op.revision)
        if op.resolved_revision is not None:
            owned.add(op.resolved_revision)
        for r in op.responses or ():
            for kv in r.kvs or ():
                note(kv)
            note(r.prev_kv)
    for w in history.watchers.values():
        for r in w.responses:
            for e in r.events:
                note(e.kv)
                note(e.prev_kv)
    return seen, frozenset(owned)


def partition(history):
    """Map key -> list of projections (P-compositionality).

    Serializable reads are left out: etcd lets them be stale.
    """
    seen, owned = observed(history)
    keys = sorted(keys_of(history))
    parts = {k: [] for k in keys}
    for op in history.ops:
        if op.serializable:
            continue
        touched = set(c.key for c in op.compares)
        for sub in op.success + op.failure:
            if sub.range_end is None:
                touched.add(sub.key)
            else:
                touched.update(keys_in(keys, sub.key, sub.range_end))
        for k in touched:
            p = project(op, k, seen, owned)
            if p is not None:
                parts[k].append(p)
    return parts


def check(history, budget=2000000, timeout_s=60.0):
    """Search every key; returns a list of KeyResult, sorted by key."""
    deadline = time.monotonic() + timeout_s
    out = []
    for k, projs in sorted(partition(history).items()):
        if not projs:
            continue
        out.append(check_key(k, projs, budget, deadline))
    return out
