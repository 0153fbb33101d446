#!/usr/bin/python3
"""cli_snapshot_bench.py: moorctl beside etcdctl on the same real etcd.

1. One command's cost: --invocations runs of `get` of one key with each
   tool (alternating), medians and p90 of wall time, and peak RSS.
2. snapshot save:
Starts one real etcd 3.4 on loopback ports in a temporary directory, loads
--keys keys (128 puts per Txn, sent as raw protobuf over python3-grpcio,
--value-bytes each), then saves a snapshot with each tool --rounds times,
alternating which goes first, and prints the median times. It also times
etcdctl snapshot restore of each tool's file.

3. With --moord: the same keys loaded into one moord; `moorctl snapshot
   save` from it (bounded by --moord-save-timeout; a failure is reported,
   not fatal), and `moorctl snapshot restore` of a moor snapshot of that
   state --rounds times (the saved backup, or else moord's newest periodic
   snapshot file from its data dir: moord runs with --snapshot-count 1000
   and gets puts of one pad key until a snapshot holds the last of them),
   beside `etcdctl snapshot restore` above.

Not a ctest (minutes of load for a million keys); run by hand:

    /usr/bin/python3 tests/integration/cli_snapshot_bench.py \\
        --moorctl build-cli/bin/moorctl --keys 1000000

Output: a header naming the workload, then "name value unit" rows; --json
prints one JSON object instead.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import grpc


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def txn_of_puts(keys, value):
    ops = b"".join(ld(2, ld(2, ld(1, k) + ld(2, value))) for k in keys)
    return ops


def load(url, n, value_bytes, threads):
    value = (b"v" * value_bytes)
    per_txn = 128
    batches = (n + per_txn - 1) // per_txn
    next_batch = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        ch = grpc.insecure_channel(url)
        txn = ch.unary_unary("/etcdserverpb.KV/Txn",
                             request_serializer=None,
                             response_deserializer=None)
        while True:
            with lock:
                b = next_batch[0]
                next_batch[0] += 1
            if b >= batches or errors:
                break
            keys = [b"/registry/bench/key-%08d" % i
                    for i in range(b * per_txn, min(n, (b + 1) * per_txn))]
            try:
                txn(txn_of_puts(keys, value), timeout=60)
            except grpc.RpcError as e:
                errors.append(e)
        ch.close()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise SystemExit("load failed: %s" % errors[0])


def timed(argv, env=None):
    """Runs argv under /usr/bin/time; returns (wall seconds, peak RSS in
    KiB of argv's process). (A child forked from this Python process would
    report Python's own peak: ru_maxrss survives exec.)"""
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "maxrss_kib=%M"] + argv,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env=env, timeout=3600)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit("%s failed: %s" % (argv, p.stderr.decode()))
    rss = int(p.stderr.decode().rsplit("maxrss_kib=", 1)[1].split()[0])
    return dt, rss


def moord_part(args, env):
    """Loads the same keys into one moord; times moorctl snapshot save from
    it and moorctl snapshot restore of a moor snapshot of that state."""
    root = tempfile.mkdtemp(prefix="moorctl-snapbench-moord-")
    cport, pport = free_port(), free_port()
    url = "127.0.0.1:%d" % cport
    peer = "http://127.0.0.1:%d" % pport
    data = os.path.join(root, "d")
    log = open(os.path.join(root, "moord.log"), "w")
    moord = subprocess.Popen(
        [args.moord, "--name", "b", "--data-dir", data,
         "--listen-client-urls", "http://" + url,
         "--advertise-client-urls", "http://" + url,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", "b=" + peer, "--snapshot-count", "1000",
         "--quota-backend-bytes", str(8 << 30)],
        stdout=log, stderr=subprocess.STDOUT)
    out = {"moord_save_ok": 0}
    try:
        deadline = time.monotonic() + 20
        while subprocess.run([args.moorctl, "--endpoints=" + url, "put",
                              "ready", "1"], capture_output=True).returncode:
            if time.monotonic() > deadline:
                raise SystemExit("moord did not start")
            time.sleep(0.2)
        t0 = time.monotonic()
        load(url, args.keys, args.value_bytes, args.threads)
        out["moord_load_s"] = time.monotonic() - t0
        backup = os.path.join(root, "m.db")
        t0 = time.monotonic()
        try:
            p = subprocess.run([args.moorctl, "--endpoints=" + url,
                                "snapshot", "save", backup],
                               capture_output=True,
                               timeout=args.moord_save_timeout)
            if p.returncode == 0:
                out["moord_save_ok"] = 1
                out["moorctl_save_from_moord_s"] = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            pass
        if not out["moord_save_ok"]:
            # The newest periodic snapshot, once one holds the whole state:
            # puts of one pad key until a snapshot's revision is the last.
            snap = os.path.join(data, "member", "snap")
            for i in range(3000):
                p = subprocess.run([args.moorctl, "--endpoints=" + url, "put",
                                    "bench-pad", str(i), "-w", "json"],
                                   capture_output=True, check=True)
                rev = json.loads(p.stdout)["header"]["revision"]
                files = sorted(f for f in os.listdir(snap)
                               if f.endswith(".snap"))
                if not files:
                    continue
                newest = os.path.join(snap, files[-1])
                st = json.loads(subprocess.run(
                    [args.moorctl, "snapshot", "status", newest, "-w",
                     "json"], capture_output=True).stdout or b"{}")
                if st.get("revision") == rev:
                    shutil.copy(newest, backup)
                    break
            else:
                raise SystemExit("moord wrote no snapshot of the whole state")
        st = json.loads(subprocess.run(
            [args.moorctl, "snapshot", "status", backup, "-w", "json"],
            capture_output=True, check=True).stdout)
        out["moor_backup_keys"] = st["totalKey"]
        out["moor_backup_bytes"] = st["totalSize"]
        times, rss = [], []
        for r in range(args.rounds):
            d = os.path.join(root, "restore-%d" % r)
            dt, kib = timed([args.moorctl, "snapshot", "restore", backup,
                             "--data-dir", d])
            times.append(dt)
            rss.append(kib)
            shutil.rmtree(d, ignore_errors=True)
        out["moorctl_restore_s"] = statistics.median(times)
        out["moorctl_restore_peak_rss_mib"] = statistics.median(rss) / 1024
    finally:
        moord.kill()
        moord.wait()
        shutil.rmtree(root, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moorctl", required=True)
    ap.add_argument("--etcd", default="/usr/bin/etcd")
    ap.add_argument("--etcdctl", default="/usr/bin/etcdctl")
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--invocations", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--moord", help="also time moorctl save/restore on moord")
    ap.add_argument("--moord-save-timeout", type=float, default=300)
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="moorctl-snapbench-")
    cport, pport = free_port(), free_port()
    url = "127.0.0.1:%d" % cport
    peer = "http://127.0.0.1:%d" % pport
    log = open(os.path.join(root, "etcd.log"), "w")
    etcd = subprocess.Popen(
        [args.etcd, "--name", "b", "--data-dir", os.path.join(root, "d"),
         "--listen-client-urls", "http://" + url,
         "--advertise-client-urls", "http://" + url,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", "b=" + peer,
         "--quota-backend-bytes", str(8 << 30)],
        stdout=log, stderr=subprocess.STDOUT)
    env = dict(os.environ, ETCDCTL_API="3")
    res = {"moorctl_save_s": [], "etcdctl_save_s": [],
           "moorctl_save_rss_kib": [], "etcdctl_save_rss_kib": [],
           "restore_moorctl_file_s": [], "restore_etcdctl_file_s": []}
    try:
        deadline = time.monotonic() + 20
        while subprocess.run([args.etcdctl, "--endpoints=" + url, "put",
                              "ready", "1"], capture_output=True,
                             env=env).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("etcd did not start")
            time.sleep(0.2)
        inv = {"moorctl": [], "etcdctl": []}
        inv_rss = {"moorctl": [], "etcdctl": []}
        for i in range(args.invocations):
            for tool in (["moorctl", "etcdctl"] if i % 2 == 0 else
                         ["etcdctl", "moorctl"]):
                binary = args.moorctl if tool == "moorctl" else args.etcdctl
                t1 = time.monotonic()
                p = subprocess.run([binary, "--endpoints=" + url, "get",
                                    "ready"], capture_output=True, env=env)
                inv[tool].append(time.monotonic() - t1)
                if p.returncode != 0:
                    raise SystemExit("%s get failed" % tool)
        for tool in inv_rss:
            binary = args.moorctl if tool == "moorctl" else args.etcdctl
            inv_rss[tool].append(timed([binary, "--endpoints=" + url, "get",
                                        "ready"], env)[1])
        t0 = time.monotonic()
        load(url, args.keys, args.value_bytes, args.threads)
        load_s = time.monotonic() - t0
        m_file = os.path.join(root, "m.db")
        e_file = os.path.join(root, "e.db")
        for r in range(args.rounds):
            order = [("moorctl", m_file), ("etcdctl", e_file)]
            if r % 2:
                order.reverse()
            for tool, f in order:
                if os.path.exists(f):
                    os.unlink(f)
                binary = args.moorctl if tool == "moorctl" else args.etcdctl
                dt, rss = timed([binary, "--endpoints=" + url, "snapshot",
                                 "save", f], env)
                res[tool + "_save_s"].append(dt)
                res[tool + "_save_rss_kib"].append(rss)
            for tool, f in [("moorctl", m_file), ("etcdctl", e_file)]:
                d = os.path.join(root, "restore-" + tool)
                shutil.rmtree(d, ignore_errors=True)
                res["restore_%s_file_s" % tool].append(timed(
                    [args.etcdctl, "snapshot", "restore", f, "--data-dir", d],
                    env)[0])
        size = os.path.getsize(m_file)
    finally:
        etcd.kill()
        etcd.wait()
        shutil.rmtree(root, ignore_errors=True)

    moor = moord_part(args, env) if args.moord else {}
    med = {k: statistics.median(v) for k, v in res.items()}
    for tool in inv:
        xs = sorted(inv[tool])
        med[tool + "_get_ms"] = statistics.median(xs) * 1000
        med[tool + "_get_p90_ms"] = xs[int(len(xs) * 0.9) - 1] * 1000
        med[tool + "_get_rss_kib"] = inv_rss[tool][0]
    out = {"keys": args.keys, "value_bytes": args.value_bytes,
           "rounds": args.rounds, "snapshot_bytes": size, "load_s": load_s}
    out.update(med)
    out.update(moor)
    if args.json:
        print(json.dumps(out))
        return 0
    print("moorctl vs etcdctl on etcd 3.4: %d get invocations each; "
          "snapshot save of %d keys of %d-byte values, %d rounds (medians)"
          % (args.invocations, args.keys, args.value_bytes, args.rounds))
    rows = [("moorctl_get_invocation", "%.2f" % med["moorctl_get_ms"], "ms"),
            ("etcdctl_get_invocation", "%.2f" % med["etcdctl_get_ms"], "ms"),
            ("moorctl_get_invocation_p90", "%.2f" %
             med["moorctl_get_p90_ms"], "ms"),
            ("etcdctl_get_invocation_p90", "%.2f" %
             med["etcdctl_get_p90_ms"], "ms"),
            ("moorctl_get_peak_rss", "%.1f" %
             (med["moorctl_get_rss_kib"] / 1024), "MiB"),
            ("etcdctl_get_peak_rss", "%.1f" %
             (med["etcdctl_get_rss_kib"] / 1024), "MiB"),("snapshot_size", "%.1f" % (size / 1e6), "MB"),
            ("load", "%.1f" % load_s, "s"),
            ("moorctl_snapshot_save", "%.3f" % med["moorctl_save_s"], "s"),
            ("etcdctl_snapshot_save", "%.3f" % med["etcdctl_save_s"], "s"),
            ("moorctl_save_rate", "%.1f" % (size / 1e6 /
                                            med["moorctl_save_s"]), "MB/s"),
            ("etcdctl_save_rate", "%.1f" % (size / 1e6 /
                                            med["etcdctl_save_s"]), "MB/s"),
            ("moorctl_save_peak_rss", "%.1f" %
             (med["moorctl_save_rss_kib"] / 1024), "MiB"),
            ("etcdctl_save_peak_rss", "%.1f" %
             (med["etcdctl_save_rss_kib"] / 1024), "MiB"),
            ("etcdctl_restore_of_moorctl_file", "%.3f" %
             med["restore_moorctl_file_s"], "s"),
            ("etcdctl_restore_of_etcdctl_file", "%.3f" %
             med["restore_etcdctl_file_s"], "s")]
    for k, v in sorted(moor.items()):
        rows.append((k, "%.3f" % v if isinstance(v, float) else str(v),
                     "s" if k.endswith("_s") else ""))
    for name, value, unit in rows:
        print("%-34s %12s %s" % (name, value, unit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
