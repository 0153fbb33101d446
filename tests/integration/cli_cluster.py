#!/usr/bin/python3
"""cli_cluster.py: moorctl's cluster commands on a real 3-member etcd 3.4.

Starts three etcd members on loopback ports (one cluster, a temporary
directory, everything killed at the end) and checks what a single-member
cluster cannot show:

  - endpoint status / hashkv / health with --cluster fan out to all three
    (rows equal to etcdctl's after hiding durations and database sizes;
    the three hashes agree);
  - member list with three members, as etcdctl prints it;
  - move-leader really moves leadership: moorctl finds the leader among
    --endpoints, the transfer succeeds with etcdctl's line, and Status
    then names the new leader;
  - membership: member add --learner, the new member started with the
    lines it prints, member promote once in sync, member remove;
  - a dead member: endpoint health reports it (exit 1, "unhealthy
    cluster"), a get through a list that starts with the dead endpoint
    still succeeds, and endpoint status prints the live rows plus a
    "Failed to get the status" line.

Usage: cli_cluster.py --moorctl PATH [--server /usr/bin/etcd]
       [--etcdctl /usr/bin/etcdctl]
"""
import argparse
import json
import os
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


def run(argv, timeout=20):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ETCDCTL_", "MOORCTL_"))}
    env["ETCDCTL_API"] = "3"
    p = subprocess.run(argv, capture_output=True, env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def report(name, problems):
    if problems:
        FAILS.append(name)
        print("FAIL %s" % name)
        for p in problems:
            print("  " + p.replace("\n", "\n  "))
    else:
        print("ok   %s" % name)


def norm(s):
    s = re.sub(rb"took = [0-9.]+[a-z\xc2\xb5]+", b"took = <DUR>", s)
    s = re.sub(rb'"took":"[^"]*"', b'"took":"<DUR>"', s)
    s = re.sub(rb'"(dbSize|dbSizeInUse)":\d+', rb'"\1":<SIZE>', s)
    s = re.sub(rb"\d+(\.\d)? [kMG]?B\b", b"<SIZE>", s)
    # Raft indexes move between the two tools' calls: hide the numbers in
    # status rows (term and leader stay).
    s = re.sub(rb'"(raftIndex|raftAppliedIndex)":\d+', rb'"\1":<N>', s)
    s = re.sub(rb"(, (?:true|false), (?:true|false), \d+), \d+, \d+,",
               rb"\1, <N>, <N>,", s)
    return b"\n".join(l for l in s.split(b"\n")
                      if not l.startswith(b'{"level":'))


def membership_case(args, root, all_eps, procs):
    port, pport = free_port(), free_port()
    peer = "http://127.0.0.1:%d" % pport
    # Right after a leader change etcd refuses reconfiguration for a while
    # ("unhealthy cluster"): retry, bounded.
    deadline = time.monotonic() + 30
    while True:
        rc, o, e = run([args.moorctl, all_eps, "member", "add", "m4",
                        "--learner", "--peer-urls=" + peer])
        if rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    env = dict(re.findall(r'^(ETCD_\w+)="([^"]*)"$', o.decode(), re.M))
    # (etcdctl prints ids as %16x: a shorter id is padded with spaces)
    m = re.search(rb"Member +([0-9a-f]+) added to cluster", o)
    report("member add --learner prints the new member's start lines",
           [] if rc == 0 and m and env.get("ETCD_NAME") == "m4" and
           env.get("ETCD_INITIAL_CLUSTER_STATE") == "existing" and
           "m4=" + peer in env.get("ETCD_INITIAL_CLUSTER", "") else
           ["%d %r %r" % (rc, o, e)])
    if not m:
        return
    mid = m.group(1).decode()
    ep4 = "127.0.0.1:%d" % port
    procs["m4"] = subprocess.Popen(
        [args.etcd, "--name", "m4", "--data-dir", os.path.join(root, "m4"),
         "--listen-client-urls", "http://" + ep4,
         "--advertise-client-urls", "http://" + ep4,
         "--listen-peer-urls", peer,
         "--initial-advertise-peer-urls", env["ETCD_INITIAL_ADVERTISE_PEER_URLS"],
         "--initial-cluster", env["ETCD_INITIAL_CLUSTER"],
         "--initial-cluster-state", "existing",
         "--initial-cluster-token", "moorctl-cluster",
         "--heartbeat-interval", "50", "--election-timeout", "500"],
        stdout=open(os.path.join(root, "m4.log"), "w"),
        stderr=subprocess.STDOUT)
    # Promote once the learner is in sync (the server refuses until then).
    deadline = time.monotonic() + 30
    while True:
        rc, o, e = run([args.moorctl, all_eps, "member", "promote", mid])
        if rc == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    report("member promote of the learner once in sync",
           [] if rc == 0 and o == b"Member %16s promoted in cluster " % \
           mid.encode() + o.split(b"cluster ")[-1] else
           ["%d %r %r" % (rc, o, e)])
    rc, o, _ = run([args.moorctl, all_eps, "member", "list", "-w", "json"])
    ms = json.loads(o)["members"] if rc == 0 else []
    report("member list: four voters",
           [] if len(ms) == 4 and not any(x.get("isLearner") for x in ms)
           else [repr(o)])
    rc, o, _ = run([args.moorctl, "--endpoints=" + ep4, "get", "k",
                    "--consistency=s"])
    report("the new member serves the keyspace",
           [] if rc == 0 and o == b"k\nv\n" else [repr(o)])
    rc, o, e = run([args.moorctl, all_eps, "member", "remove", mid])
    report("member remove",
           [] if rc == 0 and o.startswith(b"Member %16s removed from cluster "
                                          % mid.encode()) else
           ["%d %r %r" % (rc, o, e)])
    rc, o, _ = run([args.moorctl, all_eps, "member", "list"])
    report("member list: three again",
           [] if rc == 0 and o.count(b"\n") == 3 and b"m4" not in o
           else [repr(o)])
    procs["m4"].kill()
    procs["m4"].wait(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moorctl", required=True)
    # The server under test: real etcd 3.4 now; moord (which takes etcd's
    # flags) when it lands, so the same file proves both.
    ap.add_argument("--server", "--etcd", dest="etcd",
                    default="/usr/bin/etcd")
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="moorctl-cluster-")
    names = ["m1", "m2", "m3"]
    cports = {n: free_port() for n in names}
    pports = {n: free_port() for n in names}
    cluster = ",".join("%s=http://127.0.0.1:%d" % (n, pports[n])
                       for n in names)
    procs = {}
    eps = ["127.0.0.1:%d" % cports[n] for n in names]
    try:
        for n in names:
            procs[n] = subprocess.Popen(
                [args.etcd, "--name", n, "--data-dir",
                 os.path.join(root, n),
                 "--listen-client-urls", "http://" + eps[names.index(n)],
                 "--advertise-client-urls", "http://" + eps[names.index(n)],
                 "--listen-peer-urls", "http://127.0.0.1:%d" % pports[n],
                 "--initial-advertise-peer-urls",
                 "http://127.0.0.1:%d" % pports[n],
                 "--initial-cluster", cluster,
                 "--initial-cluster-token", "moorctl-cluster",
                 "--heartbeat-interval", "50", "--election-timeout", "500"],
                stdout=open(os.path.join(root, n + ".log"), "w"),
                stderr=subprocess.STDOUT)
        all_eps = "--endpoints=" + ",".join(eps)
        deadline = time.monotonic() + 30
        while run([args.etcdctl, all_eps, "endpoint", "health"])[0] != 0:
            if time.monotonic() > deadline:
                raise SystemExit("the 3-member cluster did not come up")
            time.sleep(0.2)
        run([args.etcdctl, all_eps, "put", "k", "v"])
        e_argv = [args.etcdctl, "--endpoints=" + eps[0]]
        m_argv = [args.moorctl, "--endpoints=" + eps[0]]

        for name, a in [
                ("member list -w table", ["member", "list", "-w", "table"]),
                ("member list -w json", ["member", "list", "-w", "json"]),
                ("endpoint status --cluster", ["endpoint", "status",
                                               "--cluster"]),
                ("endpoint status --cluster -w json",
                 ["endpoint", "status", "--cluster", "-w", "json"]),
                ("endpoint health --cluster", ["endpoint", "health",
                                               "--cluster"]),
                ("endpoint hashkv --cluster", ["endpoint", "hashkv",
                                               "--cluster"])]:
            erc, eo, ee = run(e_argv + a)
            mrc, mo, me = run(m_argv + a)
            # Health rows come in completion order from etcdctl: sort.
            key = (lambda t: sorted(norm(t).split(b"\n"))) \
                if "health" in name else norm
            problems = []
            if key(eo) != key(mo) or key(ee) != key(me):
                problems.append("etcdctl:\n%s%s\nmoorctl:\n%s%s" % (
                    eo.decode(), ee.decode(), mo.decode(), me.decode()))
            if erc != 0 or mrc != 0:
                problems.append("exit %d / %d" % (erc, mrc))
            report(name, problems)
        rc, o, _ = run(m_argv + ["endpoint", "hashkv", "--cluster"])
        hashes = {l.split(b", ")[1] for l in o.strip().split(b"\n")}
        report("the three members' hashes agree",
               [] if rc == 0 and len(hashes) == 1 else [repr(o)])

        # move-leader: to a follower, from the endpoint list.
        rc, o, _ = run([args.moorctl, all_eps, "endpoint", "status", "-w",
                        "json"])
        st = json.loads(o)
        leader = st[0]["Status"]["leader"]
        follower = next(s["Status"]["header"]["member_id"] for s in st
                        if s["Status"]["header"]["member_id"] != leader)
        rc, o, e = run([args.moorctl, all_eps, "move-leader",
                        "%x" % follower])
        want = b"Leadership transferred from %x to %x\n" % (leader, follower)
        report("move-leader transfers to a follower",
               [] if rc == 0 and o == want else ["%d %r %r" % (rc, o, e)])
        deadline = time.monotonic() + 10
        now = None
        while time.monotonic() < deadline:
            rc, o, _ = run([args.moorctl, all_eps, "endpoint", "status",
                            "-w", "json"])
            now = json.loads(o)[0]["Status"]["leader"] if rc == 0 else None
            if now == follower:
                break
            time.sleep(0.1)
        report("Status names the new leader", [] if now == follower else
               ["leader %r, want %x" % (now, follower)])
        rc, o, _ = run([args.moorctl, all_eps, "endpoint", "status", "-w",
                        "json"])
        other = next(x["Endpoint"] for x in json.loads(o)
                     if x["Status"]["header"]["member_id"] != follower)
        rc, o, e = run([args.moorctl, "--endpoints=" + other, "move-leader",
                        "%x" % leader])
        report("move-leader without the leader among --endpoints",
               [] if rc == 2 and e == b"Error: no leader endpoint given at "
               b"[%s]\n" % other.encode() else ["%d %r" % (rc, e)])

        # Membership: a learner joins with the lines member add prints, is
        # promoted once in sync, and is removed again.
        membership_case(args, root, all_eps, procs)

        # A dead member.
        procs["m3"].kill()
        procs["m3"].wait(timeout=10)
        short = ["--dial-timeout=500ms", "--command-timeout=2s"]
        rc, o, e = run([args.moorctl, all_eps] + short +
                       ["endpoint", "health"])
        report("endpoint health with a dead member",
               [] if rc == 1 and b"%s is unhealthy" % eps[2].encode() in e
               and e.rstrip().endswith(b"Error: unhealthy cluster") else
               ["%d %r %r" % (rc, o, e)])
        rc, o, e = run([args.moorctl, all_eps] + short +
                       ["endpoint", "status"])
        report("endpoint status with a dead member",
               [] if rc == 1 and o.count(b"\n") == 2 and
               b"Failed to get the status of endpoint %s" % eps[2].encode()
               in e else ["%d %r %r" % (rc, o, e)])
        rc, o, e = run([args.moorctl, "--endpoints=%s,%s" % (eps[2], eps[0]),
                        "--dial-timeout=500ms", "get", "k"])
        report("get through a list that starts with the dead member",
               [] if rc == 0 and o == b"k\nv\n" else ["%d %r %r" % (rc, o, e)])
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
    if FAILS:
        print("%d failed: %s" % (len(FAILS), ", ".join(FAILS)))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
