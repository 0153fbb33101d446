"""A moord cluster the nemesis can hurt, in one of two network modes.

  proxy   (ProxyCluster) members on 127.0.0.1, ports picked by the
          kernel; members never dial each other directly but through the
          fault proxy (proxy.py), which cuts, stalls, delays, loses and
          duplicates peer frames per direction.  Works everywhere.
  netns   (NetnsCluster) each member in its own network namespace with
          one veth to a bridge the harness creates, on a private /24
          10.77.S.0 (S claimed per run); the harness (the clients) talks
          to the members across the bridge from the root namespace
          (10.77.S.254).  Partitions are iptables rules inside the
          members' namespaces.  Needs root, ip and iptables; created and
          torn down by the harness, also on Ctrl-C and on failure, and a
          later run removes what a SIGKILLed one left (sweep()).

Both know how to kill -9, restart, pause (SIGSTOP) and resume (SIGCONT)
each member, to ask who leads, and to cut one direction of peer traffic
(cut(src, dst, mode)); proxy mode can also delay and duplicate, netns mode
loses packets with iptables' statistic match (no netem in this kernel: no
delay, no duplication).  close() always ends every member and removes
every namespace, rule and bridge; the data dirs live under workdir, which
the caller removes.

Slots.  The cluster has n initial members (slots 0..n-1) and `spare`
more slots for members added at run time (the member nemesis's learner);
names, addresses and data dirs exist for every slot; a slot holds a
running process only while its member is started.

Members are started through setpriv --pdeathsig KILL so none outlives the
harness, even when the harness itself is killed with SIGKILL.  The death
signal follows the *thread* that started the member, so call start() and
restart() only from the main thread.  No preexec_fn: Python then spawns
without fork(), and grpc's fork handlers (which, run in a process with
live channels, left every channel refusing calls for good) never run.
"""

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from . import client
from .proxy import Proxy, Rule


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


class Unsupported(Exception):
    """A fault this network mode cannot make."""


class Cluster:
    """What both modes share: the member processes."""

    net = None

    def __init__(self, moord, n, workdir, seed, spare=0, extra_args=()):
        self.moord = moord
        self.n = n
        self.slots = n + spare
        self.dir = workdir
        self.names = ["m%d" % i for i in range(self.slots)]
        self.token = "moor-chaos-%d" % seed
        self.extra = list(extra_args)
        self.procs = [None] * self.slots
        self.paused = [False] * self.slots
        self.data_dirs = [os.path.join(workdir, "d%d" % i)
                          for i in range(self.slots)]
        # Per member: extra environment (VAR=VALUE strings, given to moord
        # only), extra flags, and how it joins: None = the initial cluster,
        # else the --initial-cluster value of a member added at run time
        # (with --initial-cluster-state existing).
        self.env = [[] for _ in range(self.slots)]
        self.member_args = [[] for _ in range(self.slots)]
        self.joining = [None] * self.slots
        self.ids = {}  # member id -> index, learned from Status
        self.crashes = []  # members found dead that no one killed
        self.client_addrs = []
        self.conns = []

    # ------------------------------------------------ per mode

    def prefix(self, i):
        """The command that runs member i's process (its namespace)."""
        return []

    def client_url(self, i):
        return "http://%s" % self.client_addrs[i]

    def peer_listen_url(self, i):
        raise NotImplementedError

    def peer_url(self, i):
        """The URL the other members know member i by."""
        raise NotImplementedError

    def setup(self):
        pass

    def teardown(self):
        pass

    def cut(self, src, dst, mode):
        """Peer messages src -> dst are lost from now (mode "stall":
        silently, as iptables DROP; "reset": the connection is refused or
        reset)."""
        raise NotImplementedError

    def shape(self, src, dst, delay_ms=0, loss=0.0, dup=0.0):
        """Peer messages src -> dst delayed, lost, duplicated; raises
        Unsupported for what the mode cannot do."""
        raise NotImplementedError

    def heal_net(self):
        raise NotImplementedError

    # ------------------------------------------------ common

    def initial_cluster(self, members=None):
        members = range(self.n) if members is None else members
        return ",".join("%s=%s" % (self.names[i], self.peer_url(i))
                        for i in members)

    def args(self, i):
        cu = self.client_url(i)
        join = self.joining[i]
        state = []
        if join is not None:
            state = ["--initial-cluster-state", "existing"]
        envs = ["env"] + self.env[i] if self.env[i] else []
        return (self.prefix(i) +
                ["setpriv", "--pdeathsig", "KILL", "--"] + envs +
                [self.moord, "--name", self.names[i],
                 "--data-dir", self.data_dirs[i],
                 "--listen-client-urls", cu, "--advertise-client-urls", cu,
                 "--listen-peer-urls", self.peer_listen_url(i),
                 "--initial-advertise-peer-urls", self.peer_url(i),
                 "--initial-cluster",
                 join if join is not None else self.initial_cluster(),
                 "--initial-cluster-token", self.token] + state +
                self.extra + self.member_args[i])

    def start(self):
        """Network, then every initial member (main thread only)."""
        self.setup()
        self.conns = [client.Conn(a, 1.0) for a in self.client_addrs]
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

    def kill(self, i, may_be_dead=False):
        """kill -9 member i and reap it.  A member found already dead is a
        crash unless may_be_dead (a removed member stops by itself)."""
        p = self.procs[i]
        if p is None:
            return
        if p.poll() is not None and not may_be_dead:
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

    def applied(self, i, timeout_s=0.5):
        """Member i's applied index, or None."""
        if self.procs[i] is None or self.paused[i]:
            return None
        try:
            return self.conns[i].status(timeout_s)[3]
        except (client.Definite, client.Indefinite):
            return None

    def leader(self):
        """Index of the member that says it leads at the highest term seen,
        or None."""
        best = None
        for i in range(self.slots):
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
        """Every fault off: network healed, paused members resumed, dead
        initial members restarted (main thread only)."""
        self.heal_net()
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
        self.teardown()


class ProxyCluster(Cluster):
    """Members on 127.0.0.1 behind the fault proxy."""

    net = "proxy"

    def __init__(self, moord, n, workdir, seed, spare=0, extra_args=()):
        super().__init__(moord, n, workdir, seed, spare, extra_args)
        ports = free_ports(3 * self.slots)
        s = self.slots
        self.client_ports = ports[:s]
        self.peer_ports = ports[s:2 * s]
        self.proxy_ports = ports[2 * s:]
        self.client_addrs = ["127.0.0.1:%d" % p for p in self.client_ports]
        self.proxy = Proxy(self.names, self.peer_ports, self.proxy_ports,
                           seed)

    def peer_listen_url(self, i):
        return "http://127.0.0.1:%d" % self.peer_ports[i]

    def peer_url(self, i):
        return "http://127.0.0.1:%d" % self.proxy_ports[i]

    def setup(self):
        self.proxy.start()

    def teardown(self):
        self.proxy.close()

    def cut(self, src, dst, mode):
        self.proxy.set_rule(src, dst, Rule(mode))

    def shape(self, src, dst, delay_ms=0, loss=0.0, dup=0.0):
        self.proxy.set_rule(src, dst, Rule(delay_ms=delay_ms, loss=loss,
                                           dup=dup))

    def heal_net(self):
        self.proxy.heal()


# ---------------------------------------------------------------- netns

SUBNET_LOCK = "/tmp/moor-chaos-netns-10.77.%d.lock"
TAG_RE = re.compile(r"^mc(\d+)-\d+$")


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise OSError("ip %s: %s" % (" ".join(args), r.stdout.strip()))
    return r


def netns_unavailable():
    """Why netns mode cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "iptables-restore", "setpriv"):
        if shutil.which(tool) is None:
            return "no %s" % tool
    probe = "mc%d-probe" % os.getpid()
    r = _ip("netns", "add", probe, check=False)
    if r.returncode != 0:
        return "ip netns add failed: %s" % r.stdout.strip()
    try:
        r = subprocess.run(["ip", "netns", "exec", probe, "iptables-restore"],
                           input="*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            return "iptables in a namespace failed: %s" % r.stdout.strip()
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep():
    """Remove namespaces and bridges that a run killed with SIGKILL left
    (named after a pid that no longer lives); returns their names."""
    gone = []
    r = _ip("netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = TAG_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            _ip("netns", "del", name, check=False)
            gone.append(name)
    r = _ip("-o", "link", "show", "type", "bridge", check=False)
    for line in r.stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        m = re.match(r"^mcb(\d+)$", name)
        if m and not _pid_alive(int(m.group(1))):
            _ip("link", "del", name, check=False)
            gone.append(name)
    return gone


class NetnsCluster(Cluster):
    """Each member in its own network namespace on a bridge."""

    net = "netns"
    CLIENT_PORT = 12379
    PEER_PORT = 12380

    def __init__(self, moord, n, workdir, seed, spare=0, extra_args=()):
        super().__init__(moord, n, workdir, seed, spare, extra_args)
        if self.slots > 200:
            raise ValueError("at most 200 members")
        pid = os.getpid()
        self.bridge = "mcb%d" % pid
        self.ns = ["mc%d-%d" % (pid, i) for i in range(self.slots)]
        self.veth = ["mc%dv%d" % (pid, i) for i in range(self.slots)]
        self.lock_fd = None
        self.subnet = None
        self.rules = [[] for _ in range(self.slots)]  # INPUT rules per dst
        self.created = []  # what setup() made, for teardown()

    def _claim_subnet(self):
        """10.77.S.0/24 with S free on this host and locked by us (flock on
        a file in /tmp: the kernel drops it when we die)."""
        used = _ip("-o", "-4", "addr", "show", check=False).stdout
        start = os.getpid() % 200
        for k in range(200):
            s = 20 + (start + k) % 200
            if (" 10.77.%d." % s) in used:
                continue
            fd = os.open(SUBNET_LOCK % s, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.lock_fd, self.subnet = fd, s
            return
        raise OSError("no free subnet 10.77.20-219.0/24")

    def addr(self, i):
        return "10.77.%d.%d" % (self.subnet, i + 1)

    def prefix(self, i):
        return ["ip", "netns", "exec", self.ns[i]]

    def peer_listen_url(self, i):
        return "http://%s:%d" % (self.addr(i), self.PEER_PORT)

    def peer_url(self, i):
        return self.peer_listen_url(i)

    def setup(self):
        """Bridge, namespaces, veths, addresses; undone by teardown() even
        when it fails half way."""
        self._claim_subnet()
        self.client_addrs = ["%s:%d" % (self.addr(i), self.CLIENT_PORT)
                             for i in range(self.slots)]
        _ip("link", "add", self.bridge, "type", "bridge")
        self.created.append(("link", self.bridge))
        _ip("addr", "add", "10.77.%d.254/24" % self.subnet, "dev",
            self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i in range(self.slots):
            _ip("netns", "add", self.ns[i])
            self.created.append(("netns", self.ns[i]))
            _ip("link", "add", self.veth[i], "type", "veth", "peer", "name",
                "eth0", "netns", self.ns[i])
            self.created.append(("link", self.veth[i]))
            _ip("link", "set", self.veth[i], "master", self.bridge, "up")
            _ip("-n", self.ns[i], "addr", "add", self.addr(i) + "/24", "dev",
                "eth0")
            _ip("-n", self.ns[i], "link", "set", "eth0", "up")
            _ip("-n", self.ns[i], "link", "set", "lo", "up")

    def teardown(self):
        for kind, name in reversed(self.created):
            if kind == "netns":
                _ip("netns", "del", name, check=False)
            else:
                _ip("link", "del", name, check=False)
        self.created = []
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def _apply(self, dst):
        """Replace dst's INPUT chain with its rules (one
        iptables-restore)."""
        text = "*filter\n:INPUT ACCEPT [0:0]\n%sCOMMIT\n" % "".join(
            r + "\n" for r in self.rules[dst])
        r = subprocess.run(["ip", "netns", "exec", self.ns[dst],
                            "iptables-restore", "-w"], input=text,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            raise OSError("iptables-restore in %s: %s" % (
                self.ns[dst], r.stdout.strip()))

    def _match(self, src):
        # Packets src sends to dst's peer port: for moord exactly the raft
        # messages src -> dst (it sends them only on connections it
        # dialed); the answers on dst's own connections to src still flow.
        return "-A INPUT -s %s/32 -p tcp --dport %d" % (self.addr(src),
                                                        self.PEER_PORT)

    def cut(self, src, dst, mode):
        target = "-j DROP" if mode == "stall" else \
            "-j REJECT --reject-with tcp-reset"
        self.rules[dst].append("%s %s" % (self._match(src), target))
        self._apply(dst)

    def shape(self, src, dst, delay_ms=0, loss=0.0, dup=0.0):
        if delay_ms or dup:
            raise Unsupported("netns mode cannot delay or duplicate "
                              "(no netem in this kernel): use --net proxy")
        if loss:
            self.rules[dst].append(
                "%s -m statistic --mode random --probability %.4f -j DROP" %
                (self._match(src), loss))
            self._apply(dst)

    def heal_net(self):
        for i in range(self.slots):
            if self.rules[i]:
                self.rules[i] = []
                self._apply(i)
