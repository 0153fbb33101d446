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
  partition-bridge  two sides that cannot talk, and one member (the
                    bridge) that talks to both (A <-> B <-> C, A -/- C)
  partition-oneway  cut one to n random directions (src -> dst) one way
  delay             every direction delayed by 20-200 ms per frame
  loss              every direction loses 5-30 % of frames and
                    duplicates 0-20 %
  torn-wal          kill -9 the leader, cut (once every other member has
                    applied it) its newest
                    WAL segment's last record at a random byte (the file
                    truncated there, or the record's sectors from there
                    zeroed), restart it: it must log the torn tail, cut
                    it and catch up (disk.py)
  disk-full         one member's data dir lives on a small tmpfs; fill it
                    while a bulk client writes 1 MiB values; the member
                    must raise NOSPACE or stop through its WAL-failure
                    exit, never corrupt; free it, restart (disk.py)
  clock-jump        every member runs under libfaketime; jump the wall
                    clock of the leader or a random member forward or
                    back (CLOCK_MONOTONIC untouched: DONT_FAKE_MONOTONIC)
  member            membership changes under traffic through etcd's
                    Cluster API: remove a follower and add it back with a
                    fresh data dir (--initial-cluster-state existing), or
                    add a learner in a spare slot, promote it once it has
                    caught up, and remove it when the fault ends
  mix               each fault one of the kill .. loss above, drawn from
                    the seed

Partitions are silent (stall, as iptables DROP) or loud (reset) at random.
Call from the main thread only: kill restarts members (cluster.py).
"""

import os
import shutil
import time

from . import client, disk

QUIET_S = (1.0, 2.5)
HOLD_S = (1.0, 3.0)

SIMPLE = ("kill", "kill-all", "pause", "partition-leader", "partition-halves",
          "partition-bridge", "partition-oneway", "delay", "loss")
NAMES = SIMPLE + ("torn-wal", "disk-full", "clock-jump", "member", "mix")
# What netns mode cannot do (no netem in this kernel).
NETNS_UNSUPPORTED = ("delay",)

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
CLOCK_JUMPS_S = (-86400, -3600, -300, -60, 60, 300, 3600, 86400)
DISK_FULL_HOLD_S = (4.0, 8.0)
MEMBER_CALL_S = 15.0   # a membership call retried this long at most
PROMOTE_S = 20.0       # a learner must catch up before etcd promotes it
TORN_WAIT_S = 5.0      # torn-wal: how long the others may take to apply


class Nemesis:
    def __init__(self, name, cluster, hist, rnd):
        assert name in NAMES, name
        self.name, self.c, self.hist, self.rnd = name, cluster, hist, rnd
        self.faults = 0
        self.problems = []   # what the nemesis saw go wrong (anomalies)
        self.stopped = 0     # disk-full: WAL-failure exits on the full disk
        self.disarmed = 0    # disk-full: NOSPACE alarms disarmed
        self.torn = {}       # member -> torn tails it cut
        self.tmpfs = None    # disk-full: (member, disk.Tmpfs)
        self.disk_full = None  # threading.Event: set while the disk is full
        self.kinds = [k for k in SIMPLE
                      if not (cluster.net == "netns" and
                              k in NETNS_UNSUPPORTED)]

    def prepare(self, workdir):
        """Before the cluster starts: the tmpfs of disk-full, libfaketime
        of clock-jump."""
        c = self.c
        if self.name == "disk-full":
            t = self.rnd.randrange(c.n)
            fs = disk.Tmpfs(os.path.join(workdir, "tmpfs-m%d" % t),
                            disk.TMPFS_BYTES)
            fs.mount()
            self.tmpfs = (t, fs)
            c.data_dirs[t] = os.path.join(fs.path, "data")
            # Snapshots often, so they too meet the full disk.
            c.member_args[t] = ["--snapshot-count", "500", "--max-wals", "1",
                                "--max-snapshots", "1"]
        if self.name == "clock-jump":
            for i in range(c.slots):
                path = os.path.join(workdir, "faketime-m%d" % i)
                with open(path, "w") as f:
                    f.write("+0\n")
                c.env[i] = ["LD_PRELOAD=" + FAKETIME_LIB,
                            "FAKETIME_TIMESTAMP_FILE=" + path,
                            "FAKETIME_CACHE_DURATION=1",
                            "DONT_FAKE_MONOTONIC=1"]

    def cleanup(self):
        """After the cluster closed (its members dead): unmount."""
        if self.tmpfs is not None:
            self.tmpfs[1].unmount()

    def _clock(self, i, offset_s):
        path = os.path.join(self.c.dir, "faketime-m%d" % i)
        with open(path + ".tmp", "w") as f:
            f.write("%+ds\n" % offset_s)
        os.replace(path + ".tmp", path)

    def torn_wal(self):
        """kill -9 the leader; once every other member holds its last
        entry, cut that record; restart it when the fault ends.

        Why the leader, and why wait: the record was synced and, on a
        follower, acknowledged; a leader that counted the ack never sends
        that entry again (Raft, etcd's too, treats a rejection below a
        follower's match index as stale), so a follower that lost it
        stays behind until the leader changes; and an entry that only a
        bare majority held is lost for good when one of them loses it.
        Both break the fsync contract Raft is built on, not moord.  A
        killed leader is replaced, and the new leader probes it from
        scratch; an entry every other member holds survives its loss.
        So every cut here must be survived: the member starts, logs the
        torn tail (when visible), catches up, and no write is lost."""
        c, rnd = self.c, self.rnd
        i = c.leader()
        if i is None:
            return (lambda: None), "no leader, nothing torn"
        c.kill(i)
        waldir = os.path.join(c.data_dirs[i], "member", "wal")
        index = disk.last_entry_index(waldir)
        if index is not None:
            deadline = time.monotonic() + TORN_WAIT_S
            while True:
                held = [c.applied(j) for j in range(c.n) if j != i]
                if all(a is not None and a >= index for a in held):
                    break
                if time.monotonic() > deadline:
                    return (lambda: c.restart(i)), \
                        "m%d (leader) killed; entry %d not on every other " \
                        "member after %g s: not torn" % (i, index,
                                                          TORN_WAIT_S)
                time.sleep(0.05)
        detail, visible = disk.tear_wal(waldir, rnd)
        if visible:
            self.torn[i] = self.torn.get(i, 0) + 1
        return (lambda: c.restart(i)), "m%d (leader): %s" % (i, detail)

    # ------------------------------------------------- membership

    def _cluster(self, what, fn, done=None, timeout_s=MEMBER_CALL_S):
        """fn(conn) through any running member (the leader first) until it
        answers or timeout_s passes; after an indeterminate error, done()
        (when given) says whether the change took effect anyway.  Returns
        fn's result, or None (a problem noted)."""
        c = self.c
        deadline = time.monotonic() + timeout_s
        err = None
        while time.monotonic() < deadline:
            lead = c.leader()
            order = ([lead] if lead is not None else []) + [
                i for i in range(c.slots) if i != lead and c.alive(i)]
            for i in order:
                try:
                    return fn(c.conns[i])
                except client.Definite as e:
                    err = e
                except client.Indefinite as e:
                    err = e
                    if done is not None:
                        r = done()
                        if r is not None:
                            return r
            time.sleep(0.2)
        self.problems.append("member: %s failed for %d s: %s" % (
            what, timeout_s, err))
        return None

    def _members(self):
        for i in range(self.c.slots):
            if self.c.alive(i):
                try:
                    return self.c.conns[i].member_list(1.0)
                except (client.Definite, client.Indefinite):
                    continue
        return None

    def _by_url(self, url):
        ms = self._members() or []
        for m in ms:
            if url in m["peer_urls"]:
                return m
        return None

    def _add(self, i, learner):
        """MemberAdd slot i (fresh data dir) and start it; True when it
        was added."""
        c = self.c
        url = c.peer_url(i)
        shutil.rmtree(c.data_dirs[i], ignore_errors=True)

        def found():
            m = self._by_url(url)
            return (m, self._members()) if m is not None else None
        r = self._cluster("add m%d%s" % (i, " as a learner" if learner
                                         else ""),
                          lambda conn: conn.member_add([url], learner, 2.0),
                          found)
        if r is None:
            return None
        new, members = r
        c.joining[i] = ",".join(
            "%s=%s" % (m["name"] or c.names[i], u)
            for m in members for u in m["peer_urls"][:1])
        c.restart(i)
        return new["id"]

    def _remove(self, i, mid):
        c = self.c

        def gone():
            ms = self._members()
            if ms is not None and all(m["id"] != mid for m in ms):
                return True
            return None
        ok = self._cluster("remove m%d (%x)" % (i, mid),
                           lambda conn: conn.member_remove(mid, 2.0) or True,
                           gone)
        if ok:
            c.kill(i, may_be_dead=True)
            shutil.rmtree(c.data_dirs[i], ignore_errors=True)
        return ok

    def member_change(self):
        """Remove a follower and add it back with a fresh data dir, or add
        a learner in the spare slot, promote it, and remove it at undo."""
        c, rnd = self.c, self.rnd
        lead = c.leader()
        if rnd.random() < 0.5 or c.slots == c.n:
            fs = [i for i in range(c.n) if i != lead and c.alive(i)]
            if lead is None or not fs:
                return (lambda: None), "replace: no leader or follower"
            f = rnd.choice(fs)
            st = c.status(f)
            if st is None:
                return (lambda: None), "replace: m%d does not answer" % f
            if not self._remove(f, st[0]):
                return (lambda: None), "replace m%d: remove failed" % f

            def readd():
                self._add(f, False)
            return readd, "remove m%d (follower %x), add it back" % (f, st[0])
        s = c.n
        mid = self._add(s, True)
        if mid is None:
            return (lambda: None), "learner m%d: add failed" % s
        self._cluster("promote m%d (%x)" % (s, mid),
                      lambda conn: conn.member_promote(mid, 2.0) or True,
                      timeout_s=PROMOTE_S)

        def undo():
            self._remove(s, mid)
        return undo, "learner m%d (%x) added, promoted; removed at the " \
            "end" % (s, mid)

    def disarm(self, timeout_s=5.0):
        """disk-full: disarm every NOSPACE alarm (what an operator does
        after freeing space), through any member, for up to timeout_s."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for conn in self.c.conns[:self.c.n]:
                try:
                    for mid, alarm in conn.alarms(1.0):
                        if alarm == 1:  # NOSPACE
                            conn.disarm(mid, alarm, 1.0)
                            self.disarmed += 1
                    return
                except (client.Definite, client.Indefinite):
                    continue
            time.sleep(0.1)

    def notes(self):
        """What the run should say about the nemesis (not anomalies)."""
        out = []
        if self.tmpfs is not None:
            t = self.tmpfs[0]
            with open(os.path.join(self.c.dir, "m%d.log" % t), "rb") as f:
                log = f.read()
            out.append("m%d on the small disk: %d stop(s) through the "
                       "WAL-failure exit, %d NOSPACE alarm(s) logged, %d "
                       "disarmed, %d failed snapshot(s) logged" % (
                           t, self.stopped,
                           sum(1 for ln in log.splitlines()
                               if b"alarm raised" in ln and
                               b"NOSPACE" in ln),
                           self.disarmed,
                           log.count(b"snapshot failed")))
        if self.torn:
            out.append("torn tails cut (visible to moord): %s" % ", ".join(
                "m%d %d" % x for x in sorted(self.torn.items())))
        return out

    def check_logs(self):
        """After the run: every torn tail the nemesis cut was logged by its
        member (moord's WARN "torn write at the tail of the log")."""
        for i, cut in sorted(self.torn.items()):
            path = os.path.join(self.c.dir, "m%d.log" % i)
            with open(path, "rb") as f:
                seen = f.read().count(b"torn write at the tail of the log")
            if seen < cut:
                self.problems.append(
                    "m%d: %d torn WAL tail(s) cut, %d logged as torn by "
                    "moord (%s)" % (i, cut, seen, path))

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
        self.c.cut(src, dst, mode)

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
        if kind == "torn-wal":
            return self.torn_wal()
        if kind == "member":
            return self.member_change()
        if kind == "clock-jump":
            i, why = self.target()
            off = rnd.choice(CLOCK_JUMPS_S)
            self._clock(i, off)
            return (lambda: self._clock(i, 0)), \
                "m%d (%s) wall clock %+d s" % (i, why, off)
        if kind == "disk-full":
            t, fs = self.tmpfs
            free = fs.fill()
            self.disk_full.set()

            def undo():
                self.disk_full.clear()
                fs.free()
                p = c.procs[t]
                if p is not None and p.poll() is not None:
                    why = disk.wal_failure_exit(
                        os.path.join(c.dir, "m%d.log" % t), p.returncode)
                    if why is not None:
                        self.problems.append("m%d on a full disk: %s" %
                                             (t, why))
                    else:
                        self.stopped += 1
                c.kill(t, may_be_dead=True)
                c.restart(t)
                self.disarm()
            return undo, "m%d's tmpfs filled (%d bytes were free)" % (t, free)
        mode = rnd.choice(("stall", "reset"))
        if kind == "partition-leader":
            lead = c.leader()
            i = lead if lead is not None else rnd.randrange(n)
            for j in range(n):
                if j != i:
                    self.cut(i, j, mode)
                    self.cut(j, i, mode)
            return c.heal_net, "isolate m%d (%s, %s)" % (
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
            return c.heal_net, "halves %s | %s (%s)" % (
                " ".join("m%d" % i for i in sorted(a)),
                " ".join("m%d" % i for i in sorted(b)), mode)
        if kind == "partition-bridge":
            order = list(range(n))
            rnd.shuffle(order)
            b, rest = order[0], order[1:]
            k = rnd.randrange(1, len(rest))
            a, z = rest[:k], rest[k:]
            for i in a:
                for j in z:
                    self.cut(i, j, mode)
                    self.cut(j, i, mode)
            return c.heal_net, "bridge m%d between %s | %s (%s)" % (
                b, " ".join("m%d" % i for i in sorted(a)),
                " ".join("m%d" % i for i in sorted(z)), mode)
        if kind == "partition-oneway":
            pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
            rnd.shuffle(pairs)
            pairs = pairs[:rnd.randrange(1, n + 1)]
            for i, j in pairs:
                self.cut(i, j, mode)
            return c.heal_net, "one-way %s (%s)" % (
                " ".join("m%d->m%d" % p for p in pairs), mode)
        if kind == "delay":
            ms = rnd.randrange(20, 201)
            for i in range(n):
                for j in range(n):
                    if i != j:
                        c.shape(i, j, delay_ms=ms)
            return c.heal_net, "delay %d ms every direction" % ms
        if kind == "loss":
            loss = round(rnd.uniform(0.05, 0.3), 2)
            dup = round(rnd.uniform(0.0, 0.2), 2)
            if c.net == "netns":
                dup = 0.0  # iptables can lose, not duplicate
            for i in range(n):
                for j in range(n):
                    if i != j:
                        c.shape(i, j, loss=loss, dup=dup)
            return c.heal_net, "loss %.2f dup %.2f every direction" % (
                loss, dup)
        raise ValueError(kind)

    def run(self, deadline):
        """Faults until deadline (monotonic seconds); returns how many."""
        while True:
            quiet = self.rnd.uniform(*QUIET_S)
            hold = self.rnd.uniform(*(DISK_FULL_HOLD_S
                                      if self.name == "disk-full"
                                      else HOLD_S))
            if time.monotonic() + quiet + hold > deadline:
                break
            time.sleep(quiet)
            kind = self.name
            if kind == "mix":
                kind = self.rnd.choice(self.kinds)
            undo, detail = self.start(kind)
            self.faults += 1
            self.log("start", "%s: %s" % (kind, detail))
            time.sleep(hold)
            undo()
            self.log("stop", "%s: %s" % (kind, detail))
        return self.faults
