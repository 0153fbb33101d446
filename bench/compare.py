#!/usr/bin/python3
"""compare.py: moor beside real etcd 3.4 on this machine (`make bench`).

Run by bench/compare.sh (which builds first); by hand:

    /usr/bin/python3 bench/compare.py --build build-release [--quick]

Starts 1-member and 3-member clusters of real etcd (/usr/bin/etcd) and of
moord through scripts/run-cluster.sh, with the same flags, data dirs on
the same disk (BUILD/bench-data), and runs the same workloads against
each in alternation (etcd, moor, then moor, etcd on the next run ...) so
that the drift of a shared machine hits both. Every figure is the median
of several runs. Phases, in order:

  one   1 member, both servers up: sequential put latency (1 client),
        put throughput at 1, 8, 32, 128, 512 clients, linearizable and
        serializable range throughput (128 clients), watch fan-out
        (events/s to 10 streams x 1,000 watchers) and watch latency
        (put to event, 10 x 100 watchers, 200 puts/s);
  three 3 members: sequential put latency, put throughput sweep, ranges;
        then failover: kill -9 of the leader, time until a put through
        another member succeeds (an in-process poller, a put every 2 ms
        to each survivor), the member restarted between trials;
  data  fresh 1-member clusters per size (100,000 and 1,000,000 keys of
        32-byte keys and 256-byte values, loaded by Txns of 128 puts):
        VmRSS before and after loading (bytes per key), restart time
        (SIGTERM, then exec to the first linearizable get that succeeds),
        snapshot save (etcdctl vs moorctl, each against its own server)
        and restore (etcdctl snapshot restore vs moorctl snapshot restore,
        when moorctl has it);
  inproc moor-bench's in-process benchmarks (raft, wal, kv, rpc), kept as
        text.

Load workloads are moor-bench's (one C client for both servers, directed
at the leader); the loader and probes are bench/etcdwire.py's. Output in
--out: results.json (every sample, per figure), raw/*.json (every
moor-bench run's JSON line), logs/, then bench/charts.py writes table.md
and the SVG charts and prints the table.

Every process started is killed on any exit (Ctrl-C included) and the
data dirs are removed.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
import etcdwire  # noqa: E402

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Flags both servers get (etcd's defaults, stated; the quota raised so
# that the runs' history never fills it).
SERVER_FLAGS = ["--heartbeat-interval", "100", "--election-timeout", "1000",
                "--snapshot-count", "100000",
                "--quota-backend-bytes", str(4 << 30)]
CLIENTS = [1, 8, 32, 128, 512]
SNAPSHOT_TIMEOUT_S = 60
KEY_SIZE = 32
VAL_SIZE = 256

# Figure table: id -> (title, unit, better, goal). goal is the moor/etcd
# ratio the issue asks for: <= goal when lower is better, >= when higher.
FIGURES = {}


def figure(fid, title, unit, better, goal=None):
    FIGURES.setdefault(fid, {"id": fid, "title": title, "unit": unit,
                             "better": better, "goal": goal,
                             "etcd": [], "moor": [], "notes": []})
    return FIGURES[fid]


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.moord = os.path.join(self.build, "bin", "moord")
        self.moorctl = os.path.join(self.build, "bin", "moorctl")
        self.bench = os.path.join(self.build, "bin", "moor-bench")
        self.out = os.path.abspath(args.out)
        self.data = os.path.join(self.build, "bench-data")
        self.quick = args.quick
        self.runs = args.runs or (1 if self.quick else 3)
        self.duration = 1 if self.quick else 2
        self.series = {}  # chart data
        self.raw_n = 0
        os.makedirs(os.path.join(self.out, "raw"), exist_ok=True)
        os.makedirs(os.path.join(self.out, "logs"), exist_ok=True)

    # ---- helpers
    def log(self, msg):
        line = "[%s] %s" % (time.strftime("%H:%M:%S"), msg)
        print(line, flush=True)
        with open(os.path.join(self.out, "logs", "compare.log"), "a") as f:
            f.write(line + "\n")

    def order(self, r):
        return ["etcd", "moor"] if r % 2 == 0 else ["moor", "etcd"]

    def new_cluster(self, system, members, tag):
        binary = ETCD if system == "etcd" else self.moord
        c = cluster.Cluster(system, binary, members,
                            os.path.join(self.data, "%s-%s" % (tag, system)),
                            SERVER_FLAGS)
        c.start()
        return c

    def keep_logs(self, c, tag):
        for i in range(1, c.members + 1):
            src = os.path.join(c.data, "m%d.log" % i)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(
                    self.out, "logs", "%s-%s-m%d.log" % (tag, c.system, i)))

    def moor_bench(self, name, c, endpoint_ids, args):
        """Runs one moor-bench workload; returns its JSON object or None
        (the failure is logged and kept as raw output)."""
        eps = ",".join(c.endpoints(endpoint_ids))
        argv = [self.bench] + args + ["--endpoints", eps, "--json"]
        self.raw_n += 1
        path = os.path.join(self.out, "raw", "%03d-%s-%s.json" %
                            (self.raw_n, name, c.system))
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               timeout=300)
        except subprocess.TimeoutExpired:
            self.log("  %s %s: timed out" % (c.system, name))
            return None
        with open(path, "w") as f:
            f.write(p.stdout)
        try:
            j = json.loads(p.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            j = None
        if p.returncode != 0 or j is None:
            self.log("  %s %s: exit %d: %s" % (c.system, name, p.returncode,
                                               p.stderr.strip()[-300:]))
            return None
        if j.get("errors_total"):
            self.log("  %s %s: %d errors %s" % (c.system, name,
                                                j["errors_total"],
                                                j.get("errors")))
        j["argv"] = " ".join(["moor-bench"] + args)
        return j

    def both(self, pair, name, args, on_result, ids=None):
        """Runs the workload self.runs times on both clusters of pair
        ({system: (cluster, [endpoint ids])}), alternating the order."""
        for r in range(self.runs):
            for system in self.order(r):
                c, lead = pair[system]
                cpu0 = c.cpu_seconds()
                j = self.moor_bench(name, c, ids or [lead], args)
                if j is not None:
                    # CPU the servers spent (all members): on a shared
                    # machine requests per server CPU-second is steadier
                    # than requests per second.
                    j["server_cpu_s"] = c.cpu_seconds() - cpu0
                    on_result(system, j)

    def load_args(self, clients, extra=()):
        conns = max(1, min(clients, 64))
        return ["--clients", str(clients), "--conns", str(conns),
                "--duration", str(self.duration), "--total", "0"] + list(extra)

    # ---- phases
    def latency_throughput(self, pair, members):
        tag = "%dm" % members
        put = ["put", "--key-size", str(KEY_SIZE), "--val-size",
               str(VAL_SIZE), "--key-space-size", "100000"]

        # Sequential put latency: one client, one connection.
        f50 = figure("put_seq_p50_" + tag,
                     "sequential put latency p50, %d member%s" %
                     (members, "s" if members > 1 else ""), "ms", "lower",
                     0.5)
        f99 = figure("put_seq_p99_" + tag,
                     "sequential put latency p99, %d member%s" %
                     (members, "s" if members > 1 else ""), "ms", "lower")
        cdf = self.series.setdefault("cdf_put_seq_" + tag,
                                     {"etcd": [], "moor": []})

        def on_seq(system, j):
            f50[system].append(j["latency_ms"]["p50"])
            f99[system].append(j["latency_ms"]["p99"])
            cdf[system].append(j["latency_ms"])

        self.log("%s: sequential put latency" % tag)
        self.both(pair, "put-seq-" + tag, put + self.load_args(1), on_seq)

        # Put throughput against clients.
        sweep = self.series.setdefault("tput_" + tag, {})
        for n in CLIENTS:
            fid = "put_tput_%s_%d" % (tag, n)
            f = figure(fid, "put throughput, %d member%s, %d clients" %
                       (members, "s" if members > 1 else "", n), "req/s",
                       "higher", 5.0 if n == 128 else None)
            cdfn = self.series.setdefault("cdf_put_%s_%d" % (tag, n),
                                          {"etcd": [], "moor": []})

            fcpu = None
            if n == 128:
                fcpu = figure("put_cpu_%s_%d" % (tag, n),
                              "puts per server CPU-second, %d member%s, "
                              "%d clients" % (members, "s" if members > 1
                                              else "", n),
                              "req/CPU-s", "higher")

            def on_put(system, j, f=f, cdfn=cdfn, fcpu=fcpu):
                f[system].append(j["throughput"])
                cdfn[system].append(j["latency_ms"])
                if fcpu is not None and j["server_cpu_s"] > 0:
                    fcpu[system].append(j["requests"] / j["server_cpu_s"])

            self.log("%s: put throughput, %d clients" % (tag, n))
            self.both(pair, "put-%s-c%d" % (tag, n),
                      put + self.load_args(n), on_put)
            sweep[str(n)] = {s: f[s] for s in ("etcd", "moor")}

        # Ranges over one key that exists (put by the workloads above).
        for cons, word in (("l", "linearizable"), ("s", "serializable")):
            f = figure("range_%s_%s" % (cons, tag),
                       "%s range throughput, %d member%s, 128 clients" %
                       (word, members, "s" if members > 1 else ""),
                       "req/s", "higher", 5.0 if cons == "l" else None)
            key = etcdwire.key_of(b"/bench/range/", 0, KEY_SIZE)
            for c, lead in pair.values():
                cl = etcdwire.Client(c.endpoint(lead))
                cl.put(key, b"v" * VAL_SIZE)
                cl.close()
            key = key.decode()
            self.log("%s: %s range" % (tag, word))
            fcpu = figure("range_cpu_%s_%s" % (cons, tag),
                          "%s ranges per server CPU-second, %d member%s" %
                          (word, members, "s" if members > 1 else ""),
                          "req/CPU-s", "higher")

            def on_range(system, j, f=f, fcpu=fcpu):
                f[system].append(j["throughput"])
                if j["server_cpu_s"] > 0:
                    fcpu[system].append(j["requests"] / j["server_cpu_s"])

            self.both(pair, "range-%s-%s" % (cons, tag),
                      ["range", key, "--consistency", cons] +
                      self.load_args(128), on_range)

    def watches(self, pair):
        f = figure("watch_fanout", "watch fan-out, 10,000 watchers, 1 member",
                   "events/s", "higher")
        total = 50 if self.quick else 200
        self.log("1m: watch fan-out")
        self.both(pair, "watch-1m",
                  ["watch", "--streams", "10", "--watchers", "1000",
                   "--total", str(total), "--clients", "8", "--conns", "1",
                   "--key-size", str(KEY_SIZE)],
                  lambda s, j: f[s].append(j["events_per_s"]))
        f50 = figure("watch_lat_p50", "watch latency p50 (put to event), "
                     "1,000 watchers, 1 member", "ms", "lower")
        f99 = figure("watch_lat_p99", "watch latency p99 (put to event), "
                     "1,000 watchers, 1 member", "ms", "lower")
        cdf = self.series.setdefault("cdf_watch_lat_1m",
                                     {"etcd": [], "moor": []})

        def on_wl(system, j):
            f50[system].append(j["latency_ms"]["p50"])
            f99[system].append(j["latency_ms"]["p99"])
            cdf[system].append(j["latency_ms"])

        self.log("1m: watch latency")
        self.both(pair, "watch-latency-1m",
                  ["watch-latency", "--streams", "10", "--watchers", "100",
                   "--rate", "200", "--total", str(self.duration * 200)],
                  on_wl)

    def failover(self, pair):
        trials = 3 if self.quick else 10
        f = figure("failover_median", "failover after kill -9 of the leader, "
                   "3 members (median of %d)" % trials, "s", "lower", 0.25)
        fmax = figure("failover_max", "failover after kill -9 of the leader, "
                      "3 members (max of %d)" % trials, "s", "lower")
        samples = {"etcd": [], "moor": []}
        for t in range(trials):
            for system in self.order(t):
                c, _ = pair[system]
                lead = c.leader(timeout=30)
                others = [i for i in c.pids if i != lead]
                deadline = time.monotonic() + 30
                t0 = time.monotonic()
                c.kill(lead)
                t1 = etcdwire.first_success(
                    c.endpoints(others),
                    lambda cl: (cl.put_call, etcdwire.put_request(
                        b"/bench/failover", b"x")), deadline)
                if t1 is None:
                    self.log("  %s failover trial %d: no put succeeded in "
                             "30 s" % (system, t))
                else:
                    samples[system].append(t1 - t0)
                    self.log("  %s failover trial %d: %.3f s" %
                             (system, t, t1 - t0))
                c.start_member(lead)
                c.leader(timeout=30)
        for s in samples:
            if samples[s]:
                f[s].append(statistics.median(samples[s]))
                fmax[s].append(max(samples[s]))
        FIGURES["failover_median"]["trials"] = samples

    def data_phase(self, n):
        tag = "%dk" % (n // 1000)
        words = "{:,}".format(n)
        self.log("data %s: fresh 1-member clusters" % tag)
        cs = {}
        try:
            for system in ("etcd", "moor"):
                cs[system] = self.new_cluster(system, 1, "data" + tag)
            time.sleep(0.5)
            rss0 = {s: cs[s].rss_kib(1) for s in cs}
            fmem = figure("mem_per_key_" + tag,
                          "memory per key (VmRSS growth / keys), %s keys"
                          % words, "B/key", "lower", 0.25)
            frss = figure("rss_" + tag, "VmRSS after loading %s keys"
                          % words, "MiB", "lower")
            fload = figure("load_" + tag, "load %s keys (Txns of 128 puts, "
                           "4 clients)" % words, "s", "lower")
            for system in self.order(n // 100000):
                t = time.monotonic()
                etcdwire.load(cs[system].endpoint(1), 0, n, KEY_SIZE,
                              VAL_SIZE)
                fload[system].append(time.monotonic() - t)
                time.sleep(1.0)
                rss = cs[system].rss_kib(1)
                fmem[system].append((rss - rss0[system]) * 1024.0 / n)
                frss[system].append(rss / 1024.0)
                self.log("  %s: loaded in %.1f s, VmRSS %d -> %d KiB" %
                         (system, fload[system][-1], rss0[system], rss))
            fmem["rss_before_kib"] = rss0

            fres = figure("restart_" + tag, "restart to serving, %s keys "
                          "(exec to first linearizable get)" % words, "s",
                          "lower", 0.15)
            for r in range(self.runs):
                for system in self.order(r):
                    c = cs[system]
                    c.kill(1, signal.SIGTERM, timeout=60)
                    t0 = time.monotonic()
                    c.start_member(1, wait=False)
                    t1 = etcdwire.first_success(
                        [c.endpoint(1)],
                        lambda cl: (cl.range_call,
                                    etcdwire.range_request(b"/bench")),
                        t0 + 120, interval=0.005, fresh=True)
                    if t1 is None:
                        self.log("  %s restart: not serving in 120 s" %
                                 system)
                        continue
                    fres[system].append(t1 - t0)
                    self.log("  %s restart: %.3f s" % (system, t1 - t0))
            self.snapshots(cs, tag, words)
        finally:
            for c in cs.values():
                self.keep_logs(c, "data" + tag)
                c.stop()

    def snapshots(self, cs, tag, words):
        fsave = figure("snap_save_" + tag, "snapshot save, %s keys" % words,
                       "s", "lower")
        frest = figure("snap_restore_" + tag, "snapshot restore, %s keys" %
                       words, "s", "lower")
        have_restore = subprocess.run(
            [self.moorctl, "snapshot", "restore", "--help"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        if not have_restore:
            frest["notes"].append("moorctl snapshot restore: not built")
        tmp = os.path.join(self.data, "snap-" + tag)
        os.makedirs(tmp, exist_ok=True)
        env = dict(os.environ, ETCDCTL_API="3")
        hung = set()
        try:
            for r in range(self.runs):
                for system in self.order(r):
                    tool = ETCDCTL if system == "etcd" else self.moorctl
                    path = os.path.join(tmp, "%s.db" % system)
                    for p in (path, path + ".part"):
                        if os.path.exists(p):
                            os.remove(p)
                    if system in hung:
                        continue
                    t = time.monotonic()
                    try:
                        p = subprocess.run([tool, "--endpoints",
                                            cs[system].endpoint(1),
                                            "snapshot", "save", path],
                                           env=env,
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, text=True,
                                           timeout=SNAPSHOT_TIMEOUT_S)
                    except subprocess.TimeoutExpired:
                        # One hang is a finding, not a figure: say so and
                        # do not wait for it again.
                        hung.add(system)
                        fsave["notes"].append(
                            "%s snapshot save did not finish in %d s" %
                            (system, SNAPSHOT_TIMEOUT_S))
                        self.log("  " + fsave["notes"][-1])
                        continue
                    dt = time.monotonic() - t
                    if p.returncode != 0:
                        self.log("  %s snapshot save failed: %s" %
                                 (system, p.stderr.strip()[-300:]))
                        continue
                    fsave[system].append(dt)
                    self.log("  %s snapshot save: %.2f s, %d bytes" %
                             (system, dt, os.path.getsize(path)))
                    if system == "moor" and not have_restore:
                        continue
                    ddir = os.path.join(tmp, "restored-" + system)
                    shutil.rmtree(ddir, ignore_errors=True)
                    t = time.monotonic()
                    try:
                        p = subprocess.run([tool, "snapshot", "restore",
                                            path, "--data-dir", ddir],
                                           env=env,
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, text=True,
                                           timeout=SNAPSHOT_TIMEOUT_S)
                    except subprocess.TimeoutExpired:
                        frest["notes"].append(
                            "%s snapshot restore did not finish in %d s" %
                            (system, SNAPSHOT_TIMEOUT_S))
                        self.log("  " + frest["notes"][-1])
                        continue
                    dt = time.monotonic() - t
                    if p.returncode != 0:
                        self.log("  %s snapshot restore failed: %s" %
                                 (system, p.stderr.strip()[-300:]))
                        continue
                    frest[system].append(dt)
                    self.log("  %s snapshot restore: %.2f s" % (system, dt))
                    shutil.rmtree(ddir, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def inproc(self):
        d = os.path.join(self.out, "inproc")
        os.makedirs(d, exist_ok=True)
        if self.quick:
            runs = {"raft": ["--entries", "200000"],
                    "wal": ["--seconds", "1", "--batches", "1,16"],
                    "kv": ["--keys", "100000", "--watchers", "1000",
                           "--gets", "100000", "--runs", "1"],
                    "rpc": ["--seconds", "1"]}
        else:
            runs = {"raft": [], "wal": ["--seconds", "2"],
                    "kv": ["--runs", "1"], "rpc": ["--seconds", "2"]}
        for name, args in runs.items():
            if name == "wal":
                args = args + ["--dir", self.data]
            self.log("in-process: moor-bench %s %s" % (name, " ".join(args)))
            with open(os.path.join(d, name + ".txt"), "w") as f:
                subprocess.run([self.bench, name] + args, stdout=f,
                               stderr=subprocess.STDOUT, timeout=300)

    # ---- the run
    def pair(self, members, tag):
        pair = {}
        for system in ("etcd", "moor"):
            c = self.new_cluster(system, members, tag)
            pair[system] = (c, c.leader(timeout=30))
        return pair

    def run(self):
        phases = self.args.phases.split(",")
        t_start = time.monotonic()
        meta = machine()
        meta.update({"quick": self.quick, "runs": self.runs,
                     "duration_s": self.duration,
                     "server_flags": SERVER_FLAGS,
                     "started": datetime.datetime.utcnow().isoformat() + "Z"})
        self.log("moor vs etcd: %s" % json.dumps(meta))
        if "one" in phases:
            pair = self.pair(1, "one")
            try:
                self.latency_throughput(pair, 1)
                self.watches(pair)
            finally:
                for c, _ in pair.values():
                    self.keep_logs(c, "one")
                    c.stop()
        if "three" in phases or "failover" in phases:
            pair = self.pair(3, "three")
            try:
                if "three" in phases:
                    self.latency_throughput(pair, 3)
                if "failover" in phases:
                    self.failover(pair)
            finally:
                for c, _ in pair.values():
                    self.keep_logs(c, "three")
                    c.stop()
        if "data" in phases:
            sizes = [100000] if self.quick else [100000, 1000000]
            for n in sizes:
                self.data_phase(n)
        if "inproc" in phases:
            self.inproc()
        meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
        result = {"meta": meta, "figures": list(FIGURES.values()),
                  "series": self.series}
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(result, f, indent=1)
        self.log("done in %.0f s; results in %s" % (meta["elapsed_s"],
                                                    self.out))


def sh(argv):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine():
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    df = sh(["df", "-h", "--output=source,fstype,size", REPO]).splitlines()
    return {
        "commit": sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]),
        "dirty": bool(sh(["git", "-C", REPO, "status", "--porcelain",
                          "--untracked-files=no"])),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 1048576, 1),
        "disk": " ".join(df[-1].split()) if df else "",
        "kernel": platform.release(),
        "etcd": sh([ETCD, "--version"]).splitlines()[0:1],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True,
                    help="build dir with bin/moord, moorctl, moor-bench")
    ap.add_argument("--out", required=True, help="results dir")
    ap.add_argument("--quick", action="store_true",
                    help="one run each, 1 s workloads, 100,000 keys only, "
                    "3 failover trials (under 3 minutes)")
    ap.add_argument("--runs", type=int, default=0,
                    help="runs per figure (default 3, quick 1)")
    ap.add_argument("--phases", default="one,three,failover,data,inproc",
                    help="comma list of one, three, failover, data, inproc")
    args = ap.parse_args()

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    b = Bench(args)
    try:
        b.run()
    except KeyboardInterrupt as e:
        print("compare: interrupted (%s); stopping every member" % e,
              file=sys.stderr)
        return 130
    finally:
        cluster.cleanup()
        shutil.rmtree(b.data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
