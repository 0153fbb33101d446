#!/usr/bin/python3
"""test_compare.py MOORD: the pieces of `make bench` that can be checked in
seconds (ctest bench_compare_selftest).

1. charts.py on a made-up results.json: medians, ratio moor/etcd, goal
   verdicts both ways (lower and higher is better), a figure with no
   samples, notes; the SVG files parse as XML; --doc rewrites only the
   block between its markers.
2. cluster.py through scripts/run-cluster.sh --detach against one moord:
   pid recorded and alive, the leader found, VmRSS read, a put and a
   linearizable get through etcdwire.py; a stop and a timed restart
   (first_success with fresh channels) see the same key; cleanup() leaves
   no member running and no data dir.
"""
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import xml.dom.minidom

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import charts  # noqa: E402
import cluster  # noqa: E402
import etcdwire  # noqa: E402


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)
    print("ok: " + what)


def fig(fid, better, goal, etcd, moor, notes=()):
    return {"id": fid, "title": fid, "unit": "u", "better": better,
            "goal": goal, "etcd": etcd, "moor": moor, "notes": list(notes)}


def test_charts(work):
    res = {
        "meta": {"commit": "abc", "nproc": 2, "runs": 3, "duration_s": 2,
                 "started": "2026-01-01T00:00:00Z", "elapsed_s": 1},
        "figures": [
            fig("lat", "lower", 0.5, [1.0, 3.0, 2.0], [0.9, 1.1, 1.0]),
            fig("tput", "higher", 5.0, [100, 100, 100], [600, 400, 550]),
            fig("miss", "higher", 5.0, [10], [10]),
            fig("none", "lower", 0.15, [1.0], [], ["moor tool hung"]),
        ],
        "series": {
            "tput_1m": {"1": {"etcd": [10], "moor": [20]},
                        "128": {"etcd": [100], "moor": [550]}},
            "cdf_put_seq_1m": {"etcd": [{"min": 0.2, "p50": 0.5, "p90": 0.7,
                                         "p99": 2, "p999": 3, "max": 4}],
                               "moor": [{"min": 0.1, "p50": 0.3, "p90": 0.4,
                                         "p99": 1, "p999": 2, "max": 3}]},
        },
    }
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump(res, f)
    rows = {r.split("|")[1].strip(): [c.strip() for c in r.split("|")[1:-1]]
            for r in charts.table(res).splitlines()[2:]}
    check(rows["lat (n=3)"][2:5] == ["2.00", "1.00", "0.50x"],
          "medians and ratio of a lower-is-better figure")
    check(rows["lat (n=3)"][6] == "met", "0.50x meets <= 0.5x")
    check(rows["tput (n=3)"][4:7] == ["5.50x", ">= 5x", "met"],
          "5.50x meets >= 5x")
    check(rows["miss"][6] == "**short**", "1.00x is short of >= 5x")
    check(rows["none"][3] == "n/a" and rows["none"][4] == "" and
          "moor tool hung" in rows["none"][6],
          "a figure without moor samples: n/a, no ratio, the note")
    made = charts.write_charts(res, work)
    check(sorted(made) == ["cdf_put_seq_1m.svg", "throughput.svg"],
          "throughput and CDF charts written")
    for name in made:
        xml.dom.minidom.parse(os.path.join(work, name))
    check(True, "SVG parses as XML")
    doc = os.path.join(work, "doc.md")
    with open(doc, "w") as f:
        f.write("head\n<!-- bench:begin -->\nold\n<!-- bench:end -->\ntail\n")
    charts.update_doc(doc, res, work, charts.table(res), made)
    text = open(doc).read()
    check(text.startswith("head\n") and text.endswith("\ntail\n") and
          "old" not in text and "| lat (n=3) |" in text and
          "throughput.svg" in text, "--doc rewrites only its block")


def test_cluster(moord, work):
    c = cluster.Cluster("moor", moord, 1, os.path.join(work, "m"), [])
    try:
        c.start()
        pid = c.pids.get(1)
        check(pid is not None and cluster.pid_alive(pid),
              "run-cluster --detach records a live pid")
        check(open(os.path.join(c.data, "m1.pid")).read().strip() ==
              str(pid), "the pid file names it")
        check(c.leader() == 1, "the leader is member 1")
        check(c.rss_kib(1) > 0, "VmRSS is read")
        cl = etcdwire.Client(c.endpoint(1))
        cl.put(b"/t/k", b"v1")
        got = etcdwire.decode(cl.get(b"/t/k"))
        cl.close()
        kv = etcdwire.decode(got[2][0])
        check(kv[1] == [b"/t/k"] and kv[5] == [b"v1"],
              "put then linearizable get through etcdwire")
        c.kill(1, signal.SIGTERM)
        check(not cluster.pid_alive(pid), "the member is gone after kill")
        t0 = time.monotonic()
        c.start_member(1, wait=False)
        t1 = etcdwire.first_success(
            [c.endpoint(1)],
            lambda x: (x.range_call, etcdwire.range_request(b"/t/k")),
            t0 + 30, interval=0.005, fresh=True)
        check(t1 is not None and t1 > t0, "a restarted member is timed "
              "to its first linearizable get")
        check(c.leader() == 1, "and leads again")
        pid2 = c.pids[1]
    finally:
        cluster.cleanup()
    check(not cluster.pid_alive(pid2) and not os.path.exists(c.data),
          "cleanup kills the member and removes its data")


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: test_compare.py MOORD")
    work = tempfile.mkdtemp(prefix="moor-bench-selftest-")
    try:
        test_charts(work)
        test_cluster(os.path.abspath(sys.argv[1]), work)
    finally:
        cluster.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
