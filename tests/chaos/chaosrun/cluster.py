"""A moord cluster on loopback, members talking through the fault proxy.

Cluster(moord, n, workdir, seed) picks free ports on 127.0.0.1 (client,
real peer, proxy peer per member), starts the proxy and the members, and
knows how to kill -9, restart, pause (SIGSTOP) and resume (SIGCONT) each
one and to ask who leads.  close() always ends every member and the
proxy; the data dirs live under workdir, which the caller removes.

Members are started through setpriv --pdeathsig KILL so none outlives the
harness, even when the harness itself is killed with SIGKILL.  The death
signal follows the *thread* that started the member, so call start() and
restart() only from the main thread.  No preexec_fn: Python then spawns
without fork(), and grpc's fork handlers (which, run in a process with
live channels, left every channel refusing calls for good) never run.
"""

import os
import signal
import socket
import subprocess
import time

from . import client
from .proxy import Proxy


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Cluster:
    def __init__(self, moord, n, workdir, seed, extra_args=()):
        self.moord = moord
        self.n = n
        self.dir = workdir
        self.names = ["m%d" % i for i in range(n)]
        ports = free_ports(3 * n)
        self.client_ports = ports[:n]
        self.peer_ports = ports[n:2 * n]
        self.proxy_ports = ports[2 * n:]
        self.token = "moor-chaos-%d" % seed
        self.extra = list(extra_args)
        self.procs = [None] * n
        self.paused = [False] * n
        self.ids = {}  # member id -> index, learned from Status
        self.crashes = []  # members found dead that no one killed
        self.proxy = Proxy(self.names, self.peer_ports, self.proxy_ports,
                           seed)
        self.initial = ",".join(
            "%s=http://127.0.0.1:%d" % (self.names[i], self.proxy_ports[i])
            for i in range(n))
        self.conns = [client.Conn(p, 1.0) for p in self.client_ports]

    def args(self, i):
        cu = "http://127.0.0.1:%d" % self.client_ports[i]
        return ["setpriv", "--pdeathsig", "KILL", "--",
                self.moord, "--name", self.names[i],
                "--data-dir", os.path.join(self.dir, "d%d" % i),
                "--listen-client-urls", cu, "--advertise-client-urls", cu,
                "--listen-peer-urls",
                "http://127.0.0.1:%d" % self.peer_ports[i],
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:%d" % self.proxy_ports[i],
                "--initial-cluster", self.initial,
                "--initial-cluster-token", self.token] + self.extra

    def start(self):
        self.proxy.start()
        for i in range(self.n):
            self.restart(i)

    def restart(self, i):
        """Start member i (main thread only); its data dir is kept."""
        assert self.procs[i] is None
        log = open(os.path.join(self.dir, "m%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen(
            self.args(i), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.paused[i] = False

    def alive(self, i):
        return self.procs[i] is not None

    def exited(self):
        """Indexes of members that died without being killed by us."""
        return [i for i, p in enumerate(self.procs)
                if p is not None and p.poll() is not None]

    def kill(self, i):
        """kill -9 member i and reap it."""
        p = self.procs[i]
        if p is None:
            return
        if p.poll() is not None:
            # It died before we came to kill it: a crash, not our fault.
            self.crashes.append("m%d exited with status %s before a kill" %
                                (i, p.returncode))
        p.kill()
        p.wait()
        self.procs[i] = None
        self.paused[i] = False

    def pause(self, i):
        if self.procs[i] is not None and not self.paused[i]:
            self.procs[i].send_signal(signal.SIGSTOP)
            self.paused[i] = True

    def resume(self, i):
        if self.procs[i] is not None and self.paused[i]:
            self.procs[i].send_signal(signal.SIGCONT)
            self.paused[i] = False

    def status(self, i, timeout_s=0.5):
        """(member_id, leader_id, term) of member i, or None."""
        if self.procs[i] is None or self.paused[i]:
            return None
        try:
            mid, leader, term, _ = self.conns[i].status(timeout_s)
        except (client.Definite, client.Indefinite):
            return None
        self.ids[mid] = i
        return mid, leader, term

    def leader(self):
        """Index of the member that says it leads at the highest term seen,
        or None."""
        best = None
        for i in range(self.n):
            s = self.status(i)
            if s is None:
                continue
            mid, leader, term = s
            if leader and leader == mid and (best is None or term > best[1]):
                best = (i, term)
        return best[0] if best else None

    def wait_leader(self, timeout_s):
        """The leader's index, or None after timeout_s or as soon as a
        member exits by itself."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self.exited():
            lead = self.leader()
            if lead is not None:
                return lead
            time.sleep(0.1)
        return None

    def heal(self):
        """Every fault off: proxy rules cleared, paused members resumed,
        dead members restarted (main thread only)."""
        self.proxy.heal()
        for i in range(self.n):
            self.resume(i)
            if self.procs[i] is None:
                self.restart(i)

    def close(self):
        for p in self.procs:
            if p is not None and p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                except OSError:
                    pass
        for i, p in enumerate(self.procs):
            if p is not None:
                p.wait()
            self.procs[i] = None
        for c in self.conns:
            c.close()
        self.proxy.close()
