"""run.sh's body: one history per nemesis, each checked.

For each nemesis of --nemesis: a fresh 3-member cluster on loopback
behind the fault proxy, register and set clients for --duration seconds
while the nemesis injects faults, then every fault healed, a leader
awaited, the final reads, every member's HashKV at one revision, and the
checker (checker.py) on the history.  One line per nemesis, then exactly
    histories: H, anomalies: A, lost writes: W
Exit status 1 when A or W is non-zero, 2 on a harness failure (no leader
at the start, a client crash, a history the checker cannot read), else 0.

A member that exits by itself (a crash, not a kill -9 of the nemesis)
counts as an anomaly ("crash"): it is a moord bug.  A member that never
answers HashKV after the heal counts as one too ("no-hashkv"), and so does
a healed cluster with a leader that serves no linearizable read for 30 s
("no-final-read": the history is still checked, but without final reads
no lost write can show).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import client, cluster, lease, nemesis, watcher, workload

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKER = os.path.join(HERE, "checker.py")

FINAL_RANGES = (("r/", "r0"), ("s/", "s0"))
# Watchers: (range, prev_kv), the k-th starting on member k % n.
WATCH_RANGES = (("r/", "r0", True), ("s/", "s0", False))


class HarnessError(Exception):
    pass


def final_reads(c, hist, deadline):
    """Linearizable reads of every range the workloads wrote, marked
    final, through any member, until each succeeds or the deadline passes.
    Returns the highest revision read, or None."""
    rev = None
    conns = [client.Conn(a, 2.0) for a in c.client_addrs[:c.n]]
    try:
        for key, end in FINAL_RANGES:
            i = 0
            while True:
                rec = {"type": "op", "id": hist.new_id(), "client": "final",
                       "op": "get", "key": key, "range_end": end,
                       "final": True}
                client.execute(conns[i % len(conns)], rec, hist.clock)
                hist.write(rec)
                if rec["outcome"] == "ok":
                    rev = max(rev or 0, rec["revision"])
                    break
                if time.monotonic() > deadline:
                    return None
                i += 1
                time.sleep(0.1)
    finally:
        for x in conns:
            x.close()
    return rev


def hashkvs(c, hist, rev, deadline):
    """HashKV of every member at rev; returns the members that never
    answered."""
    missing = []
    for i in range(c.n):
        while True:
            try:
                _, h, compact = c.conns[i].hashkv(rev, 2.0)
                hist.write({"type": "hashkv", "member": c.names[i],
                            "revision": rev, "hash": h,
                            "compact_revision": compact})
                break
            except (client.Definite, client.Indefinite) as e:
                if time.monotonic() > deadline:
                    missing.append("m%d (%s)" % (i, e))
                    break
                time.sleep(0.1)
    return missing


def _exits(c):
    e = c.exited()
    return "".join("; m%d exited with status %s" % (i, c.procs[i].returncode)
                   for i in e)


def run_one(a, name, workdir, seed):
    """One history under one nemesis; returns the result dict."""
    rnd = random.Random(seed)
    os.makedirs(workdir)
    path = os.path.join(workdir, "history.jsonl")
    hist = workload.History(path)
    kind = cluster.NetnsCluster if a.net == "netns" else \
        cluster.ProxyCluster
    c = kind(a.moord, a.members, workdir, seed,
             spare=1 if name == "member" else 0)
    nem = nemesis.Nemesis(name, c, hist, rnd)
    res = {"nemesis": name, "crashes": [], "no_hashkv": [], "faults": 0,
           "no_final_read": False, "watch_stuck": [], "problems": []}
    clients = []
    watchers = []
    stop = threading.Event()
    try:
        hist.write({"type": "meta", "version": 1, "nemesis": name,
                    "seed": seed, "members": a.members, "net": a.net,
                    "duration_s": a.duration, "workload": "register+set+watch"})
        nem.prepare(workdir)
        c.start()
        if c.wait_leader(30.0) is None:
            raise HarnessError("%s: no leader 30 s after start%s (logs in "
                               "%s)" % (name, _exits(c), workdir))
        deadline = time.monotonic() + a.duration
        keys = workload.Keys()
        kinds = ["register"] * a.register_clients + ["set"] * a.set_clients
        for cid, kind in enumerate(kinds):
            clients.append(workload.Client(
                cid, kind, c.client_addrs[:c.n], hist, keys, seed, a.op_timeout,
                a.max_ops, deadline, stop))
        for k in range(a.watchers):
            key, end, prev_kv = WATCH_RANGES[k % len(WATCH_RANGES)]
            watchers.append(watcher.Watcher("w%d" % k, key, end, prev_kv,
                                            c.client_addrs[:c.n], k % c.n,
                                            hist))
        nlease = a.lease_clients
        if name == "clock-jump":
            nlease = max(nlease, 2)
        leasers = [lease.LeaseClient(len(clients) + k, c.client_addrs[:c.n],
                                     seed, a.op_timeout, deadline, stop,
                                     hist.clock) for k in range(nlease)]
        clients += leasers
        if name == "disk-full":
            nem.disk_full = threading.Event()
            clients.append(workload.Bulk(len(clients), c.client_addrs[:c.n],
                                         nem.disk_full, deadline, stop))
        for t in clients + watchers:
            t.start()
        # The nemesis runs here, in the main thread (cluster.py).
        res["faults"] = nem.run(deadline)
        while time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for t in clients:
            t.join(a.op_timeout + 10.0)
            if t.is_alive() or t.error:
                raise HarnessError("%s: %s" % (name, t.error or
                                               t.name + " did not stop"))
        for i in c.exited():
            res["crashes"].append("m%d exited with status %s" %
                                  (i, c.procs[i].returncode))
            c.procs[i] = None
        c.heal()
        if c.wait_leader(30.0) is None:
            raise HarnessError("%s: no leader 30 s after the heal%s (logs "
                               "in %s)" % (name, _exits(c), workdir))
        rev = final_reads(c, hist, time.monotonic() + 30.0)
        if rev is None:
            # The cluster has a leader but cannot serve a linearizable
            # read: a liveness bug.  The history is still checked (without
            # final reads no lost write can show).
            res["no_final_read"] = True
            rev = hist.max_revision
        for w in watchers:
            if not w.finish(rev, 30.0):
                res["watch_stuck"].append(
                    "%s: no progress notification at or above revision %d "
                    "in 30 s after the heal" % (w.base, rev))
            w.stop()
        for w in watchers:
            w.join(10.0)
            if w.is_alive() or w.error:
                raise HarnessError("%s: %s" % (name, w.error or
                                               w.name + " did not stop"))
        res["no_hashkv"] = hashkvs(c, hist, rev, time.monotonic() + 30.0)
        for i in c.exited():
            res["crashes"].append("m%d exited with status %s after the heal"
                                  % (i, c.procs[i].returncode))
        res["crashes"] = c.crashes + res["crashes"]
        nem.check_logs()
        res["problems"] = nem.problems
        res["bulk"] = nem.notes()
        if leasers:
            nrec = lease.write(os.path.join(workdir, "leases.jsonl"),
                               leasers)
            found = lease.check([r for t in leasers for r in t.records])
            res["problems"] += ["%s: %s" % k for k in found]
            res["bulk"] += ["leases: %d requests by %d client(s), %d lease "
                           "anomalies" % (nrec, len(leasers), len(found))]
        res["bulk"] = res.get("bulk", []) + [
            t.summary() for t in clients if isinstance(t, workload.Bulk)]
    finally:
        stop.set()
        for w in watchers:
            w.stop()
        c.close()
        nem.cleanup()
        hist.close()
    res["ops_recorded"] = hist.ops
    vpath = os.path.join(workdir, "verdicts.json")
    out = subprocess.run(
        ["/usr/bin/python3", CHECKER, path, "--json", vpath,
         "--timeout", str(a.check_timeout)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    with open(os.path.join(workdir, "checker.txt"), "w") as f:
        f.write(out.stdout)
    if out.returncode not in (0, 1):
        raise HarnessError("%s: checker exit %d:\n%s" % (
            name, out.returncode, out.stdout[-2000:]))
    with open(vpath) as f:
        res["verdicts"] = json.load(f)
    res["checker_output"] = out.stdout
    return res


def print_result(r, out):
    v = r["verdicts"]
    extra = (len(r["crashes"]) + len(r["no_hashkv"]) +
             int(r["no_final_read"]) + len(r["watch_stuck"]) +
             len(r["problems"]))
    anomalies = v["anomalies"] + extra
    kinds = dict(v["by_kind"])
    if r["crashes"]:
        kinds["crash"] = len(r["crashes"])
    if r["no_hashkv"]:
        kinds["no-hashkv"] = len(r["no_hashkv"])
    if r["no_final_read"]:
        kinds["no-final-read"] = 1
    if r["watch_stuck"]:
        kinds["watch-stuck"] = len(r["watch_stuck"])
    if r["problems"]:
        kinds["nemesis"] = len(r["problems"])
    out.write(
        "%-17s ops %5d (ok %d, fail %d, info %d), watchers %d (events "
        "%d), faults %d, linearizability %s, anomalies %d, lost writes %d, "
        "watch violations %d%s\n" % (
            r["nemesis"], v["operations"], v["ok"], v["fail"], v["info"],
            v["watchers"], v["events"], r["faults"], v["linearizability"],
            anomalies, v["lost_writes"], v["watch_violations"],
            (" " + json.dumps(kinds, sort_keys=True)) if kinds else ""))
    notes = (r["crashes"] + ["no HashKV from " + x for x in r["no_hashkv"]] +
             r["watch_stuck"] + r["problems"] + r.get("bulk", []))
    if r["no_final_read"]:
        notes.append("no linearizable final read succeeded in 30 s after "
                     "the heal, with a leader")
    for m in notes[:30]:
        out.write("    %s\n" % m)
    if len(notes) > 30:
        out.write("    ... %d more\n" % (len(notes) - 30))
    if anomalies or v["lost_writes"]:
        for line in r["checker_output"].splitlines():
            out.write("    | %s\n" % line)
    out.flush()
    return anomalies, v["lost_writes"]


def _interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="run.sh", description="moor chaos: histories under faults, "
        "checked (docs/chaos.md)")
    ap.add_argument("--duration", type=float, default=30.0,
                    help="seconds of traffic per nemesis (30)")
    ap.add_argument("--nemesis", default="kill,pause,partition-leader",
                    help="comma-separated: %s" % ", ".join(nemesis.NAMES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1,
                    help="histories per nemesis (seeds seed, seed+1, ...)")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--net", choices=("proxy", "netns"), default="proxy",
                    help="proxy: members on 127.0.0.1 behind the fault "
                    "proxy (default); netns: each member in its own network "
                    "namespace, partitions with iptables (root, ip, "
                    "iptables; falls back to proxy when unavailable)"),
    ap.add_argument("--register-clients", type=int, default=6)
    ap.add_argument("--set-clients", type=int, default=2)
    ap.add_argument("--lease-clients", type=int, default=0,
                    help="lease workload clients (0; clock-jump runs get "
                    "at least 2)")
    ap.add_argument("--watchers", type=int, default=2,
                    help="watchers from revision 1, on r/ (prev_kv) and s/ "
                    "alternately (2)")
    ap.add_argument("--op-timeout", type=float, default=1.0,
                    help="client request timeout, seconds (1)")
    ap.add_argument("--max-ops", type=int, default=20000,
                    help="requests per client at most (20000)")
    ap.add_argument("--check-timeout", type=float, default=60.0)
    ap.add_argument("--moord", default=None,
                    help="moord binary (default: build-chaos/bin/moord)")
    ap.add_argument("--workdir", default=None,
                    help="where histories and logs go (default: a temp "
                    "dir, removed unless --keep)")
    ap.add_argument("--keep", action="store_true",
                    help="keep histories, member logs and data dirs (without "
                    "it, a history with findings keeps all but the data "
                    "dirs)")
    a = ap.parse_args(argv)
    names = [x for x in a.nemesis.split(",") if x]
    for n in names:
        if n not in nemesis.NAMES:
            ap.error("unknown nemesis %r (known: %s)" %
                     (n, ", ".join(nemesis.NAMES)))
    if a.moord is None:
        a.moord = os.path.join(HERE, "..", "..", "build-chaos", "bin",
                               "moord")
    if not os.access(a.moord, os.X_OK):
        ap.error("no moord at %s (--moord)" % a.moord)
    a.moord = os.path.abspath(a.moord)
    if a.members < 3 and any(n in ("partition-bridge",) for n in names):
        ap.error("partition-bridge needs at least 3 members")
    if a.net == "netns":
        why = cluster.netns_unavailable()
        if why is not None:
            print("chaos: netns mode unavailable (%s): falling back to the "
                  "loopback proxy" % why, flush=True)
            a.net = "proxy"
        else:
            gone = cluster.sweep()
            if gone:
                print("chaos: removed what a killed run left: %s" %
                      " ".join(gone), flush=True)
    if a.net == "netns":
        bad = [n for n in names if n in nemesis.NETNS_UNSUPPORTED]
        if bad:
            ap.error("%s: not in netns mode (no netem in this kernel); use "
                     "--net proxy" % ",".join(bad))
    if "clock-jump" in names and not os.path.exists(nemesis.FAKETIME_LIB):
        ap.error("clock-jump needs Debian's libfaketime (%s)" %
                 nemesis.FAKETIME_LIB)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    own_dir = a.workdir is None
    keep_data = a.keep
    root = a.workdir or tempfile.mkdtemp(prefix="moor-chaos-")
    os.makedirs(root, exist_ok=True)
    where = "on loopback behind the fault proxy" if a.net == "proxy" else \
        "in network namespaces (iptables partitions)"
    print("chaos: %d member(s) %s, "
          "%d register + %d set clients, %d watchers, nemeses %s, "
          "%g s each, seed %d, %d run(s), work dir %s" % (
              a.members, where, a.register_clients, a.set_clients, a.watchers,
              ",".join(names), a.duration, a.seed, a.runs, root),
          flush=True)
    histories = anomalies = lost = 0
    status = 0
    try:
        for r in range(a.runs):
            for name in names:
                seed = a.seed + r
                wd = os.path.join(root, "%s-%d" % (name, seed))
                try:
                    res = run_one(a, name, wd,
                                  seed * 1000 + nemesis.NAMES.index(name))
                except HarnessError as e:
                    print("harness failure: %s" % e, flush=True)
                    status = 2
                    a.keep = True
                    continue
                histories += 1
                an, lw = print_result(res, sys.stdout)
                anomalies += an
                lost += lw
                if an or lw:
                    if not keep_data:
                        # History, logs and verdicts replay a finding; the
                        # data dirs (64 MiB WAL segments each) only on
                        # --keep.
                        for i in range(a.members + 1):
                            shutil.rmtree(os.path.join(wd, "d%d" % i),
                                          ignore_errors=True)
                    a.keep = True
                    print("    history: %s" % os.path.join(
                        wd, "history.jsonl"), flush=True)
                    print("    same plan: tests/chaos/run.sh --duration %g "
                          "--members %d --net %s --nemesis %s --seed %d%s" % (
                              a.duration, a.members, a.net, name, seed,
                              " --lease-clients %d" % a.lease_clients
                              if a.lease_clients else ""), flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        status = 130
    finally:
        if own_dir and not a.keep:
            shutil.rmtree(root, ignore_errors=True)
        elif a.keep:
            print("kept: %s" % root, flush=True)
    print("histories: %d, anomalies: %d, lost writes: %d" % (
        histories, anomalies, lost), flush=True)
    if status:
        return status
    return 1 if anomalies or lost else 0


if __name__ == "__main__":
    sys.exit(main())
