"""cluster.py: local clusters of moord or real etcd for `make bench`.

Starts members through scripts/run-cluster.sh --detach (the one cluster
starter; `make run` uses it too) on a free loopback port range, and keeps
what the benchmark needs: each member's pid (for RSS, kill -9, restart),
its client endpoint, and the leader. Every cluster started is listed in
STARTED so that cleanup() can kill every member on any exit, including
Ctrl-C (compare.py calls it from a finally and from its signal handlers).

Ports: 12000-32000 (below Linux's ephemeral range 32768-60999, so an
outgoing connection cannot take them; clear of make run's 2379/22379/32379
and their peer ports), member i at BASE + 10*(i-1) (client) and one above
(peer), every port checked free by binding it first.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import time

import etcdwire

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_CLUSTER = os.path.join(os.path.dirname(HERE), "scripts", "run-cluster.sh")
STARTED = []


def _port_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_base(members, rng=random):
    """A base P such that P + 10*k and P + 10*k + 1 (k < members) are all
    free on 127.0.0.1 now."""
    for _ in range(200):
        base = rng.randrange(1200, 3200 - members) * 10
        if base <= 22389 and base + 10 * members >= 22370:
            continue  # make run's second member (22379, 22380)
        ports = [base + 10 * k + d for k in range(members) for d in (0, 1)]
        if all(_port_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range found")


def pid_alive(pid):
    """True while pid runs (a zombie nobody reaped yet counts as dead)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_dead(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.005)
    return not pid_alive(pid)


def rss_kib(pid, field="VmRSS"):
    """A kB field of /proc/PID/status (VmRSS, VmHWM, RssAnon ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for pid %d" % (field, pid))


def cpu_seconds(pid):
    """User plus system CPU time pid has used, in seconds (0 if gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # Fields 14 and 15 of stat (utime, stime); [0] here is field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cluster:
    """N members of one server binary on loopback, data under `data`."""

    def __init__(self, system, binary, members, data, flags):
        self.system = system  # "etcd" or "moor"
        self.binary = binary
        self.members = members
        self.data = data
        self.flags = list(flags)
        self.base = None
        self.pids = {}  # member index (1-based) -> pid

    def endpoint(self, i):
        return "127.0.0.1:%d" % (self.base + 10 * (i - 1))

    def endpoints(self, only=None):
        ids = only if only is not None else range(1, self.members + 1)
        return [self.endpoint(i) for i in ids]

    def _run(self, extra):
        argv = ["bash", RUN_CLUSTER, "--binary", self.binary, "--data",
                self.data, "--members", str(self.members), "--port-base",
                str(self.base), "--token", "bench-" + self.system,
                "--detach"] + extra + ["--"] + self.flags
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0].startswith("m"):
                self.pids[int(parts[0][1:])] = int(parts[1])
        if p.returncode != 0:
            raise RuntimeError("%s: run-cluster failed: %s" %
                               (self.system, p.stdout.strip()))

    def start(self):
        """Starts every member on a fresh data dir and waits for /health."""
        shutil.rmtree(self.data, ignore_errors=True)
        os.makedirs(self.data)
        STARTED.append(self)
        for attempt in range(3):
            self.base = free_port_base(self.members)
            try:
                self._run([])
                return
            except RuntimeError:
                # A port taken between the check and the bind: retry once
                # or twice on another range.
                self.kill_all()
                if attempt == 2:
                    raise
                shutil.rmtree(self.data, ignore_errors=True)
                os.makedirs(self.data)

    def start_member(self, i, wait=True):
        """(Re)starts member i on its existing data dir. wait=False returns
        right after the exec (the caller times the start itself)."""
        self._run(["--member", str(i)] + ([] if wait else ["--no-wait"]))

    def kill(self, i, sig=signal.SIGKILL, timeout=30):
        """Sends sig to member i and waits until it is gone."""
        pid = self.pids.get(i)
        if pid is None:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        if not wait_dead(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            wait_dead(pid, 5)
        del self.pids[i]

    def kill_all(self, sig=signal.SIGKILL):
        for i in list(self.pids):
            self.kill(i, sig, timeout=10)

    def stop(self):
        """Stops every member (SIGTERM, then SIGKILL after 10 s) and
        removes the data dir."""
        self.kill_all(signal.SIGTERM)
        shutil.rmtree(self.data, ignore_errors=True)
        if self in STARTED:
            STARTED.remove(self)

    def cpu_seconds(self):
        """CPU seconds used so far by every running member together."""
        return sum(cpu_seconds(pid) for pid in self.pids.values())

    def rss_kib(self, i, field="VmRSS"):
        return rss_kib(self.pids[i], field)

    def leader(self, timeout=10.0):
        """The index of the member every live member names as leader
        (polls until they agree or the timeout passes)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            ids = {}
            leaders = set()
            for i in self.pids:
                c = etcdwire.Client(self.endpoint(i))
                try:
                    member, lead, _ = c.status(timeout=1.0)
                    ids[member] = i
                    leaders.add(lead)
                except Exception as e:  # noqa: BLE001 (any failure: retry)
                    last = e
                    leaders.add(None)
                finally:
                    c.close()
            if len(leaders) == 1:
                lead = leaders.pop()
                if lead in ids:
                    return ids[lead]
            time.sleep(0.02)
        raise RuntimeError("%s: no agreed leader (%s)" % (self.system, last))


def cleanup():
    """Kills every member of every cluster still started, removes their
    data. Safe to call twice."""
    for c in list(STARTED):
        for pid in c.pids.values():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in c.pids.values():
            wait_dead(pid, 5)
        c.pids.clear()
        shutil.rmtree(c.data, ignore_errors=True)
        STARTED.remove(c)
