#!/usr/bin/python3
"""cli_backup_restore.py: backup and restore end to end, on moord.

  1. A 3-member moord cluster on free loopback ports is loaded with --keys
     keys (moorctl txn batches), a third of them attached to one of three
     leases, a tenth overwritten (versions 2 and 3), a range deleted, and
     compacted part way, so revisions, versions and the compact revision
     all matter.
  2. `moorctl snapshot save` from one member; the full listing (get -w
     json: every key, value, create/mod revision, version, lease), HashKV
     at the current revision and the lease list are recorded; the cluster
     is stopped.
  3. `moorctl snapshot restore` into three fresh data dirs with a NEW
     --initial-cluster on other ports and a new token; a corrupt and a
     truncated copy of the backup are refused by restore and by status,
     with the problem named, and leave no data dir.
  4. A new cluster starts on the restored dirs: every member's listing
     equals the old one, HashKV at the backup's revision equals the old
     one on every member (same compact revision), the leases are there
     with their TTLs and keys, member list shows the new members with the
     ids restore printed, and the cluster takes writes at the next revision.

Usage: cli_backup_restore.py --moorctl PATH --moord PATH [--keys N]
Every process it starts is killed at the end; each step is bounded.
"""
import argparse
import base64
import json
import os
import pty
import select
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

FAILS = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def report(name, problems):
    if problems:
        FAILS.append(name)
        print("FAIL %s" % name)
        for p in problems:
            print("  " + str(p)[:2000].replace("\n", "\n  "))
    else:
        print("ok   %s" % name)
    sys.stdout.flush()


class Cluster:
    def __init__(self, moord, root, tag, token, datadirs=None):
        self.moord, self.root, self.tag, self.token = moord, root, tag, token
        self.names = ["%s%d" % (tag, i) for i in range(3)]
        self.cports = [free_port() for _ in range(3)]
        self.pports = [free_port() for _ in range(3)]
        self.peers = ["http://127.0.0.1:%d" % p for p in self.pports]
        self.initial = ",".join("%s=%s" % (n, u)
                                for n, u in zip(self.names, self.peers))
        self.dirs = datadirs or [os.path.join(root, n) for n in self.names]
        self.procs = []

    def eps(self):
        return ["127.0.0.1:%d" % p for p in self.cports]

    def start(self):
        for i in range(3):
            log = open(os.path.join(self.root, self.names[i] + ".log"), "a")
            self.procs.append(subprocess.Popen(
                [self.moord, "--name", self.names[i],
                 "--data-dir", self.dirs[i],
                 "--listen-client-urls", "http://" + self.eps()[i],
                 "--advertise-client-urls", "http://" + self.eps()[i],
                 "--listen-peer-urls", self.peers[i],
                 "--initial-advertise-peer-urls", self.peers[i],
                 "--initial-cluster", self.initial,
                 "--initial-cluster-token", self.token],
                stdout=log, stderr=subprocess.STDOUT))

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        self.procs = []

    def logs(self):
        out = []
        for n in self.names:
            with open(os.path.join(self.root, n + ".log")) as f:
                out.append("--- %s\n%s" % (n, "".join(f.readlines()[-10:])))
        return "\n".join(out)


class Ctl:
    def __init__(self, moorctl, eps):
        self.argv = [moorctl, "--endpoints=" + ",".join(eps),
                     "--dial-timeout=2s", "--command-timeout=30s"]

    def run(self, args, stdin=None, timeout=120):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ETCDCTL_", "MOORCTL_"))}
        p = subprocess.run(self.argv + args, input=stdin, capture_output=True,
                           env=env, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ok(self, args, stdin=None):
        rc, o, e = self.run(args, stdin)
        if rc != 0:
            raise SystemExit("moorctl %s failed (%d): %r" % (args, rc, e))
        return o


def wait_ready(ctl, what):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ctl.run(["put", "ready-probe", "1"], timeout=10)[0] == 0:
            ctl.ok(["del", "ready-probe"])
            return
        time.sleep(0.2)
    raise SystemExit("%s did not take a write in 30 s" % what)


def load(ctl, keys):
    """Keys key/0000000.. in txns of 100 puts; every third key on one of
    three leases; the first tenth overwritten twice; a range deleted; a
    compaction part way."""
    leases = []
    for ttl in (3000, 4000, 5000):
        leases.append(ctl.ok(["lease", "grant", str(ttl)]).split()[1].decode())
    batch = 100

    def puts(lo, hi, gen):
        for start in range(lo, hi, batch):
            lines = []
            for i in range(start, min(start + batch, hi)):
                lease = (" --lease=" + leases[i // 3 % 3]) if i % 3 == 0 \
                    else ""
                lines.append("put key/%07d v%d-%s%s" % (i, gen, "x" * (i % 40),
                                                         lease))
            ctl.ok(["txn"], stdin=("\n" + "\n".join(lines) + "\n\n\n")
                   .encode())

    puts(0, keys, 1)
    mid = json.loads(ctl.ok(["get", "nokey", "-w", "json"]))["header"][
        "revision"]
    puts(0, keys // 10, 2)
    for i in range(0, keys // 10, max(1, keys // 100)):
        ctl.ok(["put", "key/%07d" % i, "single-%d" % i])
    ctl.ok(["del", "key/%07d" % (keys // 2), "key/%07d" % (keys // 2 + 50)])
    ctl.ok(["compaction", str(mid)])
    return leases


def listing(ctl):
    j = json.loads(ctl.ok(["get", "", "--prefix", "-w", "json"]))
    return j["header"]["revision"], j.get("kvs", [])


def hashkv(ctl_one, rev):
    j = json.loads(ctl_one.ok(["endpoint", "hashkv", "--rev=%d" % rev, "-w",
                               "json"]))
    return [(e["HashKV"]["hash"], e["HashKV"].get("compact_revision", 0))
            for e in j]


def lease_state(ctl, ids):
    out = {}
    for lid in ids:
        j = json.loads(ctl.ok(["lease", "timetolive", lid, "--keys", "-w",
                               "json"]))
        out[lid] = (j["granted-ttl"], sorted(j.get("keys") or []))
    return out


def damaged_cases(moorctl, root, backup):
    size = os.path.getsize(backup)
    data = open(backup, "rb").read()
    cases = {"flipped.db": data[:size // 2] + bytes([data[size // 2] ^ 1]) +
             data[size // 2 + 1:],
             "truncated.db": data[:size - 1000]}
    for name, content in cases.items():
        path = os.path.join(root, name)
        with open(path, "wb") as f:
            f.write(content)
        target = os.path.join(root, "never-" + name)
        ctl = Ctl(moorctl, ["127.0.0.1:1"])
        rc, o, e = ctl.run(["snapshot", "restore", path, "--data-dir",
                            target])
        report("restore refuses %s, naming it and the problem" % name,
               [] if rc == 1 and path.encode() in e and
               (b"SHA-256 mismatch" in e or b"trailer" in e) and
               not os.path.exists(target) else ["rc %d err %r" % (rc, e)])
        rc, o, e = ctl.run(["snapshot", "status", path])
        report("status refuses %s, naming it and the problem" % name,
               [] if rc == 1 and path.encode() in e and
               b"invalid snapshot" in e else ["rc %d err %r" % (rc, e)])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moorctl", required=True)
    ap.add_argument("--moord", required=True)
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="moor-backup-restore-")
    old = Cluster(args.moord, root, "old", "old-token")
    new = None
    try:
        old.start()
        octl = Ctl(args.moorctl, old.eps())
        wait_ready(octl, "the old cluster")
        t0 = time.monotonic()
        leases = load(octl, args.keys)
        print("loaded %d keys in %.1f s" % (args.keys, time.monotonic() - t0))
        backup = os.path.join(root, "backup.db")
        one = Ctl(args.moorctl, old.eps()[:1])
        t0 = time.monotonic()
        one.ok(["snapshot", "save", backup])
        print("snapshot save: %.2f s, %d bytes" % (time.monotonic() - t0,
                                                   os.path.getsize(backup)))
        rev, kvs = listing(octl)
        want_hash = hashkv(Ctl(args.moorctl, old.eps()), rev)
        want_leases = lease_state(octl, leases)
        status = json.loads(one.ok(["snapshot", "status", backup, "-w",
                                    "json"]))
        report("backup: revision and live keys as the cluster's",
               [] if status["revision"] == rev and
               status["totalKey"] == len(kvs) else [status, rev, len(kvs)])
        report("old members agree (HashKV)",
               [] if len(set(want_hash)) == 1 else [want_hash])
        old.stop()

        damaged_cases(args.moorctl, root, backup)

        new = Cluster(args.moord, root, "new", "new-token")
        printed = {}
        quiet = []
        t0 = time.monotonic()
        for i in range(3):
            rc, o, e = Ctl(args.moorctl, ["127.0.0.1:1"]).run(
                ["snapshot", "restore", backup, "--name", new.names[i],
                 "--data-dir", new.dirs[i], "--initial-cluster", new.initial,
                 "--initial-cluster-token", new.token,
                 "--initial-advertise-peer-urls", new.peers[i]])
            m = re.search(rb"member (\S+) ([0-9a-f]{16}) of cluster "
                          rb"([0-9a-f]{16})", e)
            if rc != 0 or m is None:
                report("restore into %s" % new.dirs[i], [e])
                return 1
            quiet.append(b"verifying" not in e and b"\r" not in e)
            printed[m.group(1).decode()] = (m.group(2).decode(),
                                            m.group(3).decode())
        print("snapshot restore x3: %.2f s" % (time.monotonic() - t0))
        rc, o, e = Ctl(args.moorctl, ["127.0.0.1:1"]).run(
            ["snapshot", "restore", backup, "--name", new.names[0],
             "--data-dir", new.dirs[0], "--initial-cluster", new.initial,
             "--initial-cluster-token", new.token,
             "--initial-advertise-peer-urls", new.peers[0]])
        report("restore refuses a data dir that is not empty",
               [] if rc == 1 and b"not empty" in e else [rc, e])
        report("restore is quiet when stderr is not a terminal",
               [] if quiet == [True] * 3 else [quiet])
        master, slave = pty.openpty()
        tp = subprocess.run([args.moorctl, "snapshot", "restore", backup,
                             "--data-dir", os.path.join(root, "tty")],
                            stdout=subprocess.PIPE, stderr=slave, timeout=120)
        os.close(slave)
        shown = b""
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        os.close(master)
        report("restore shows progress on a terminal",
               [] if tp.returncode == 0 and b"\rverifying" in
               shown.replace(b"\x1b[K", b"") else [shown])

        new.start()
        nctl = Ctl(args.moorctl, new.eps())
        deadline = time.monotonic() + 30
        while Ctl(args.moorctl, new.eps()).run(
                ["get", "x", "--consistency=l"], timeout=10)[0] != 0:
            if time.monotonic() > deadline:
                report("the restored cluster serves reads", [new.logs()])
                return 1
            time.sleep(0.2)
        for i, ep in enumerate(new.eps()):
            c = Ctl(args.moorctl, [ep])
            r, got = listing(c)
            problems = []
            if r != rev:
                problems.append("revision %d, want %d" % (r, rev))
            if got != kvs:
                diff = [(a, b) for a, b in zip(got, kvs) if a != b][:3]
                problems.append("%d kvs vs %d; first differences %r" %
                                (len(got), len(kvs), diff))
            report("member %d: every key, value, revision, version and lease "
                   "as before (%d keys)" % (i, len(kvs)), problems)
        got_hash = hashkv(nctl, rev)
        report("HashKV at the backup's revision equals the old cluster's on "
               "every member", [] if got_hash == want_hash[:1] * 3 else
               [got_hash, want_hash])
        got_leases = lease_state(nctl, leases)
        report("leases: same ids, granted TTLs and keys",
               [] if got_leases == want_leases else
               [str(got_leases)[:300], str(want_leases)[:300]])
        ml = json.loads(nctl.ok(["member", "list", "-w", "json"]))
        ids = {m["name"]: "%016x" % m["ID"] for m in ml["members"]}
        cid = "%016x" % ml["header"]["cluster_id"]
        report("member list: the new members with the ids restore printed",
               [] if ids == {n: v[0] for n, v in printed.items()} and
               all(v[1] == cid for v in printed.values()) else
               [ids, cid, printed])
        r = json.loads(nctl.ok(["put", "after", "restore", "-w", "json"]))
        v = nctl.ok(["get", "after", "--print-value-only"])
        report("the restored cluster takes writes at the next revision",
               [] if r["header"]["revision"] == rev + 1 and
               v == b"restore\n" else [r, v])
    finally:
        old.stop()
        if new is not None:
            new.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if FAILS:
        print("%d failed: %s" % (len(FAILS), ", ".join(FAILS)))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
