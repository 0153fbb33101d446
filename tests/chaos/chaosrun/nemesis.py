"""Nemeses: faults injected on a schedule drawn from the seed.

A run alternates a quiet interval (QUIET_S) and a fault held for HOLD_S,
until its deadline; every fault is undone before the next one starts and
logged in the history as fault records (start / stop, with the target).
Targets are drawn from the seed; "the leader" is whoever leads when the
fault starts, so the schedule is reproducible, the timing is not.

  kill              kill -9 the leader or a random member; restart it
  kill-all          kill -9 every member at once (only the disks keep
                    acknowledged writes); restart them all
  pause             SIGSTOP the leader or a random member; SIGCONT
  partition-leader  cut the leader from everyone, both directions
  partition-halves  split the members into two random sides
  partition-oneway  cut one to n random directions (src -> dst) one way
  delay             every direction delayed by 20-200 ms per frame
  loss              every direction loses 5-30 % of frames and
                    duplicates 0-20 %
  mix               each fault one of the above, drawn from the seed

Partitions are silent (stall, as iptables DROP) or loud (reset) at random.
Call from the main thread only: kill restarts members (cluster.py).
"""

import time

from .proxy import Rule

QUIET_S = (1.0, 2.5)
HOLD_S = (1.0, 3.0)

SIMPLE = ("kill", "kill-all", "pause", "partition-leader", "partition-halves",
          "partition-oneway", "delay", "loss")
NAMES = SIMPLE + ("mix",)


class Nemesis:
    def __init__(self, name, cluster, hist, rnd):
        assert name in NAMES, name
        self.name, self.c, self.hist, self.rnd = name, cluster, hist, rnd
        self.faults = 0

    def log(self, action, detail):
        self.hist.write({"type": "fault", "time_ns": self.hist.clock(),
                         "nemesis": self.name, "action": action,
                         "detail": detail})

    def target(self):
        """The leader (half the time, when there is one) or a random
        member."""
        if self.rnd.random() < 0.5:
            lead = self.c.leader()
            if lead is not None:
                return lead, "leader"
        return self.rnd.randrange(self.c.n), "random"

    def cut(self, src, dst, mode):
        self.c.proxy.set_rule(src, dst, Rule(mode))

    def start(self, kind):
        """Inject one fault of kind; returns (undo, detail)."""
        c, rnd = self.c, self.rnd
        n = c.n
        if kind == "kill":
            i, why = self.target()
            c.kill(i)
            return (lambda: c.restart(i)), "kill -9 m%d (%s)" % (i, why)
        if kind == "kill-all":
            for i in range(n):
                c.kill(i)

            def restart_all():
                for i in range(n):
                    c.restart(i)
            return restart_all, "kill -9 every member"
        if kind == "pause":
            i, why = self.target()
            c.pause(i)
            return (lambda: c.resume(i)), "SIGSTOP m%d (%s)" % (i, why)
        mode = rnd.choice(("stall", "reset"))
        if kind == "partition-leader":
            lead = c.leader()
            i = lead if lead is not None else rnd.randrange(n)
            for j in range(n):
                if j != i:
                    self.cut(i, j, mode)
                    self.cut(j, i, mode)
            return c.proxy.heal, "isolate m%d (%s, %s)" % (
                i, "leader" if lead is not None else "no leader", mode)
        if kind == "partition-halves":
            order = list(range(n))
            rnd.shuffle(order)
            k = rnd.randrange(1, n // 2 + 1)
            a, b = order[:k], order[k:]
            for i in a:
                for j in b:
                    self.cut(i, j, mode)
                    self.cut(j, i, mode)
            return c.proxy.heal, "halves %s | %s (%s)" % (
                " ".join("m%d" % i for i in sorted(a)),
                " ".join("m%d" % i for i in sorted(b)), mode)
        if kind == "partition-oneway":
            pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
            rnd.shuffle(pairs)
            pairs = pairs[:rnd.randrange(1, n + 1)]
            for i, j in pairs:
                self.cut(i, j, mode)
            return c.proxy.heal, "one-way %s (%s)" % (
                " ".join("m%d->m%d" % p for p in pairs), mode)
        if kind == "delay":
            ms = rnd.randrange(20, 201)
            for i in range(n):
                for j in range(n):
                    if i != j:
                        c.proxy.set_rule(i, j, Rule(delay_ms=ms))
            return c.proxy.heal, "delay %d ms every direction" % ms
        if kind == "loss":
            loss = round(rnd.uniform(0.05, 0.3), 2)
            dup = round(rnd.uniform(0.0, 0.2), 2)
            for i in range(n):
                for j in range(n):
                    if i != j:
                        c.proxy.set_rule(i, j, Rule(loss=loss, dup=dup))
            return c.proxy.heal, "loss %.2f dup %.2f every direction" % (
                loss, dup)
        raise ValueError(kind)

    def run(self, deadline):
        """Faults until deadline (monotonic seconds); returns how many."""
        while True:
            quiet = self.rnd.uniform(*QUIET_S)
            hold = self.rnd.uniform(*HOLD_S)
            if time.monotonic() + quiet + hold > deadline:
                break
            time.sleep(quiet)
            kind = self.name
            if kind == "mix":
                kind = self.rnd.choice(SIMPLE)
            undo, detail = self.start(kind)
            self.faults += 1
            self.log("start", "%s: %s" % (kind, detail))
            time.sleep(hold)
            undo()
            self.log("stop", "%s: %s" % (kind, detail))
        return self.faults
