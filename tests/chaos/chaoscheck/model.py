"""The per-key model of etcd's keyspace that the linearizability search uses.

etcd's KV is a map of registers; each key's state is absent or
(value, mod_revision, create_revision, version).  Linearizability is local
per object (Herlihy & Wing, P-compositionality): a history is linearizable
iff each key's sub-history is, for operations on one key.  An operation
that touches several keys (a multi-key txn, a range read) is projected onto
each key it touches; each projection is a necessary condition, and the
revision checks (revisions.py) supply the cross-key part: that all of one
txn's writes share one revision, consistent with real time.

A state is (kv, floor).  kv is None (absent) or a tuple (value, mod,
create, version); any field but value may be None ("unknown"), e.g. after
an indeterminate put whose revision was never observed.  Unknown fields
match anything: the model errs towards accepting, never towards inventing
an anomaly.  floor is the highest revision known to have been applied to
the key; revisions only grow, so a write below it or a read whose header
revision is under it cannot be linearized here, even when an unobserved
write has made the exact mod_revision unknown.
"""

from .history import INF, in_range

# Result of a compare against a state whose field is unknown.
MAYBE = None

# The state before any write: absent, no revision applied.
INITIAL = (None, 0)


class Proj:
    """One operation projected onto one key.

    compares: the compares on this key.  other_compares: the txn also
    compares other keys (so a failed txn need not have failed here).
    success / failure: lists of (SubOp, SubResult or None) on this key.
    checked: True when the outcome is ok, so results must match.
    """

    __slots__ = ("op", "key", "invoke", "complete", "checked", "compares",
                 "other_compares", "succeeded", "success", "failure",
                 "revision", "header", "cls", "owned")

    def writes(self, branch):
        return any(s.f != "get" for s, _ in branch)


def _touches(sub, k):
    if sub.f == "get":
        return in_range(k, sub.key, sub.range_end)
    return sub.key == k


# The value a state holds after a put whose value nobody ever observed.
# No read can return it, so which unobserved put it was does not matter;
# folding them together lets the search's cache see equal states.
UNSEEN = ("<unseen>",)


def project(op, k, observed, owned=frozenset()):
    """Project op onto key k; None when the projection constrains nothing.

    observed: the set of (key, value) pairs some read, event or prev_kv
    returned; owned: the revisions known to belong to some write (see
    compare_holds).  An indeterminate (info) operation is kept only if it may
    write k: its reads returned nothing, and linearizing it as a no-op is
    the same as never linearizing it.  A failed (definite) operation had
    no effect.
    """
    if op.outcome == "fail":
        return None
    ok = op.outcome == "ok"
    p = Proj()
    p.op, p.key, p.owned = op, k, owned
    p.invoke = op.invoke
    p.complete = op.complete if ok else INF
    p.checked = ok
    p.compares = [c for c in op.compares if c.key == k]
    p.other_compares = any(c.key != k for c in op.compares)
    p.succeeded = op.succeeded
    p.revision = op.revision if ok else op.resolved_revision
    p.header = op.revision if ok else None
    branches = []
    for s in (True, False):
        b = op.branch(s)
        res = op.responses if ok and s == op.succeeded else None
        pairs = []
        for i, sub in enumerate(b):
            if _touches(sub, k):
                if sub.f == "put" and (k, sub.value) not in observed:
                    sub = sub._replace(value=UNSEEN)
                pairs.append((sub, res[i] if res is not None else None))
        branches.append(pairs)
    p.success, p.failure = branches
    p.cls = None
    if ok:
        ran = p.success if op.succeeded else p.failure
        if not p.compares and not ran:
            return None  # only the branch that did not run touches k
        return p
    if not p.writes(p.success) and not p.writes(p.failure):
        return None
    p.cls = _effect_class(p)
    return p


def _effect_class(p):
    """What an indeterminate projection can do to a state, as a value.

    Two indeterminate ops of one class change every state the same way
    (step() on an unchecked projection reads only this), so the search
    tries only one of them at each point (see linear.py).  Reads inside
    the branches are left out: an indeterminate op returned nothing.  A
    plain put and a txn that may put here are then one class.
    """
    def writes(branch):
        return tuple(s for s, _ in branch if s.f != "get")

    cands = []
    if p.succeeded is not False and writes(p.success):
        cands.append(("hold", writes(p.success)))
    if p.succeeded is not True and writes(p.failure):
        cands.append(("any" if p.other_compares else "not-hold",
                      writes(p.failure)))
    return (tuple(p.compares), p.revision, tuple(cands))


def _field(kv, target):
    if kv is None:
        return 0
    return {"mod": kv[1], "create": kv[2], "version": kv[3]}[target]


def compare_holds(state, c, owned=frozenset()):
    """etcd's applyCompare on one key: True, False or MAYBE (unknown).

    owned: revisions known to belong to writes the history saw.  A key
    whose mod_revision is unknown was last written by an indeterminate put
    nobody observed; its revision is not 0 and not one of those (each
    revision belongs to one request, and had the put owned a revision
    seen on this key, its value would have been observed).  So an
    equality compare of an unknown mod against 0 or an owned revision is
    decided; that keeps the search from branching on every pending cas.
    """
    kv = state[0]
    if c.target == "value":
        if kv is None:
            return False  # a VALUE compare on a missing key is false
        have = kv[0]
    else:
        have = _field(kv, c.target)
    if have is None:
        if c.target == "mod" and c.result in ("=", "!=") and (
                c.value == 0 or c.value in owned):
            return c.result == "!="
        return MAYBE
    want = c.value
    if c.result == "=":
        return have == want
    if c.result == "!=":
        return have != want
    if c.result == "<":
        return have < want
    return have > want


def _all_hold(state, compares, owned):
    r = True
    for c in compares:
        h = compare_holds(state, c, owned)
        if h is False:
            return False
        if h is MAYBE:
            r = MAYBE
    return r


def _kv_matches(have, kv):
    if have is None:
        return kv is None
    if kv is None:
        return False
    for h, got in zip(have, (kv.value, kv.mod, kv.create, kv.version)):
        if h is not None and got is not None and h != got:
            return False
    return True


def _run(state, p, branch):
    """Apply one branch's requests on this key; (ok, state)."""
    kv, floor = state
    rev = p.revision
    for sub, res in branch:
        if sub.f == "get":
            if p.checked and res is not None and res.kvs is not None:
                got = next((x for x in res.kvs if x.key == p.key), None)
                if not _kv_matches(kv, got):
                    return False, None
                if p.header is not None and floor > p.header:
                    return False, None
        elif sub.f == "put":
            if rev is not None and rev <= floor:
                return False, None
            if (p.checked and res is not None and res.prev_kv is not None
                    and not _kv_matches(kv, res.prev_kv)):
                return False, None
            if kv is None:
                kv = (sub.value, rev, rev, 1)
            else:
                v = kv[3] + 1 if kv[3] is not None else None
                kv = (sub.value, rev, kv[2], v)
            floor = max(floor, rev or 0)
        else:  # delete
            if p.checked and res is not None and res.deleted is not None:
                if res.deleted != (0 if kv is None else 1):
                    return False, None
            if kv is not None:
                # Deleting nothing creates no revision in etcd.
                if rev is not None and rev <= floor:
                    return False, None
                floor = max(floor, rev or 0)
            kv = None
    return True, (kv, floor)


def step(state, p):
    """Every state this projection may leave behind, linearized at state.

    An empty list means it cannot be linearized here.
    """
    cands = []
    hold = _all_hold(state, p.compares, p.owned)
    if p.succeeded is True:
        if hold is not False:
            cands.append(p.success)
    elif p.succeeded is False:
        if hold is not True or p.other_compares:
            cands.append(p.failure)
    else:
        if hold is not False:
            cands.append(p.success)
        if (hold is not True or p.other_compares) and p.writes(p.failure):
            cands.append(p.failure)
    if not p.checked:
        # Linearizing an indeterminate op as a no-op on this key is the
        # same as leaving it pending forever, which is always allowed.
        cands = [b for b in cands if p.writes(b)]
    out = []
    for b in cands:
        ok, s = _run(state, p, b)
        if ok and s not in out:
            out.append(s)
    return out
