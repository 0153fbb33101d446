"""The fault proxy: every peer connection between moord members passes
through it, so the nemesis can cut, stall, slow, lose and duplicate
member-to-member traffic per direction on plain loopback.

Layout.  Member j is known to the others by a proxy address (its URL in
--initial-cluster and its --initial-advertise-peer-urls); it really listens
on its --listen-peer-urls.  The proxy listens on every member's proxy
address and relays each accepted connection to that member's real port.
moord sends raft messages i -> j only on the connection i dialed to j
(server/peer.c), so one connection is one direction; the proxy learns i
from the first frame, the peer handshake (its sender name), before it
dials j.

Frames (server/peer.c): a 4-byte big-endian length N, then N bytes.  The
proxy relays whole frames in the dialer's direction, so it can lose or
duplicate one message without corrupting the stream; the other direction
(the acceptor's handshake) is relayed as bytes.

Duplication spares forwarded proposals (MSG_PROP): a proposal sent twice
is a client request made twice, which applies its write twice (etcd does
the same); no TCP transport duplicates a message, so that would be a false
alarm.  Raft's own messages (appends, votes, heartbeats and their answers)
may be duplicated: raft must tolerate it.

Rules, per direction (src, dst), changed at any time from any thread:
  pass     relay (after delay_ms, losing each frame with probability
           loss and sending it twice with probability dup)
  stall    a silent partition, as iptables DROP: the connection stays
           open and nothing moves in either direction; new connections
           are accepted and held; TCP backpressure reaches the sender
  reset    a loud partition: existing connections are reset (RST), new
           ones reset after their handshake
Bounds: a handshake frame over 1 MiB or any frame over 64 MiB (moord's
own limit) closes the connection; at most 16 MiB wait in a delay queue
(reading stops above it).  Only 127.0.0.1 is ever bound or dialed.

Threading: the proxy runs its own asyncio loop in one thread; set_rule,
heal and close may be called from any thread.
"""

import asyncio
import random
import socket
import struct
import threading
import time

from . import pb

HANDSHAKE_MAX = 1 << 20
FRAME_MAX = 64 << 20
DELAY_QUEUE_MAX = 16 << 20
POLL_S = 0.01


class Rule:
    __slots__ = ("mode", "delay_ms", "loss", "dup")

    def __init__(self, mode="pass", delay_ms=0, loss=0.0, dup=0.0):
        assert mode in ("pass", "stall", "reset"), mode
        self.mode, self.delay_ms, self.loss, self.dup = (mode, delay_ms,
                                                          loss, dup)

    def __repr__(self):
        s = self.mode
        if self.delay_ms:
            s += " delay=%dms" % self.delay_ms
        if self.loss:
            s += " loss=%.2f" % self.loss
        if self.dup:
            s += " dup=%.2f" % self.dup
        return s


PASS = Rule()


def _reset(writer):
    """Close with RST (SO_LINGER 0), as a refused or reset peer."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class Proxy:
    def __init__(self, names, real_ports, proxy_ports, seed):
        """names[j] listens on real_ports[j]; the proxy listens for it on
        proxy_ports[j].  Call start() before members dial."""
        self.names = list(names)
        self.index = {n: i for i, n in enumerate(names)}
        self.real_ports = list(real_ports)
        self.proxy_ports = list(proxy_ports)
        self.rnd = random.Random(seed)
        self.rules = {}          # (src, dst) -> Rule; absent = PASS
        self.conns = {}          # (src, dst) -> [[dialer w, member w]]
        self.frames = 0          # frames relayed
        self.lost = 0            # frames lost on purpose
        self.duplicated = 0
        self.loop = asyncio.new_event_loop()
        self.servers = []
        self.thread = None
        self._ready = threading.Event()
        self._error = None

    # ---------------------------------------------------------- control

    def start(self):
        self.thread = threading.Thread(target=self._run, name="proxy",
                                       daemon=True)
        self.thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("fault proxy did not start")
        if self._error:
            raise RuntimeError("fault proxy: %s" % self._error)

    def set_rule(self, src, dst, rule):
        """Direction src -> dst (member indexes) follows rule from now."""
        self.loop.call_soon_threadsafe(self._set_rule, src, dst, rule)

    def heal(self):
        """Every direction back to pass."""
        self.loop.call_soon_threadsafe(self._heal)

    def close(self):
        if self.thread is None:
            return
        self.loop.call_soon_threadsafe(self._stop)
        self.thread.join(10.0)
        self.thread = None

    # ---------------------------------------------------- loop thread

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            for j, port in enumerate(self.proxy_ports):
                srv = self.loop.run_until_complete(asyncio.start_server(
                    lambda r, w, j=j: self._serve(r, w, j), "127.0.0.1",
                    port, reuse_address=True))
                self.servers.append(srv)
        except OSError as e:
            self._error = str(e)
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        for task in asyncio.all_tasks(self.loop):
            task.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def _stop(self):
        for s in self.servers:
            s.close()
        for entries in list(self.conns.values()):
            for a, b in list(entries):
                a.transport.abort()
                if b is not None:
                    b.transport.abort()
        self.loop.stop()

    def _set_rule(self, src, dst, rule):
        if rule.mode == "pass" and not rule.delay_ms and not rule.loss \
                and not rule.dup:
            self.rules.pop((src, dst), None)
        else:
            self.rules[(src, dst)] = rule
        if rule.mode == "reset":
            for a, b in list(self.conns.get((src, dst), ())):
                _reset(a)
                if b is not None:
                    _reset(b)

    def _heal(self):
        self.rules.clear()

    def _rule(self, src, dst):
        return self.rules.get((src, dst), PASS)

    async def _hold(self, src, dst):
        """Wait while src -> dst is stalled; returns the rule then."""
        while True:
            r = self._rule(src, dst)
            if r.mode != "stall":
                return r
            await asyncio.sleep(POLL_S)

    async def _serve(self, reader, writer, dst):
        """One dialed connection to member dst: learn the dialer from its
        handshake, hold it while stalled, then relay until either side
        ends or a reset rule cuts it."""
        key = None
        entry = [writer, None]  # [dialer side, member side]
        try:
            head = await reader.readexactly(4)
            n = int.from_bytes(head, "big")
            if n == 0 or n > HANDSHAKE_MAX:
                return
            body = await reader.readexactly(n)
            src = self.index.get(pb.handshake_name(body))
            if src is None or src == dst:
                return
            key = (src, dst)
            self.conns.setdefault(key, []).append(entry)
            r = await self._hold(src, dst)
            if r.mode == "reset":
                _reset(writer)
                return
            try:
                up_r, up_w = await asyncio.open_connection(
                    "127.0.0.1", self.real_ports[dst])
            except OSError:
                _reset(writer)  # refused: the member is down
                return
            entry[1] = up_w
            up_w.write(head + body)
            back = asyncio.ensure_future(self._back(up_r, writer, src, dst))
            try:
                await self._forward(reader, up_w, src, dst)
            finally:
                back.cancel()
        except (asyncio.IncompleteReadError, ConnectionError, OSError,
                pb.DecodeError):
            pass
        finally:
            if key is not None and entry in self.conns.get(key, ()):
                self.conns[key].remove(entry)
            writer.transport.abort()
            if entry[1] is not None:
                entry[1].transport.abort()

    async def _back(self, up_r, writer, src, dst):
        """Acceptor -> dialer bytes (moord sends only its handshake)."""
        try:
            while True:
                data = await up_r.read(65536)
                if not data:
                    break
                r = await self._hold(src, dst)
                if r.mode == "reset":
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        writer.transport.abort()

    async def _forward(self, reader, up_w, src, dst):
        """Dialer -> acceptor, frame by frame, under the current rule."""
        queue = asyncio.Queue()
        queued = [0]
        sender = asyncio.ensure_future(self._send(queue, up_w, queued))
        try:
            while not sender.done():
                head = await reader.readexactly(4)
                n = int.from_bytes(head, "big")
                if n == 0 or n > FRAME_MAX:
                    return
                body = await reader.readexactly(n)
                r = await self._hold(src, dst)
                if r.mode == "reset":
                    _reset(up_w)
                    return
                self.frames += 1
                if r.loss and self.rnd.random() < r.loss:
                    self.lost += 1
                    continue
                copies = 1
                if r.dup and self.rnd.random() < r.dup and \
                        pb.frame_message_type(body) != pb.MSG_PROP:
                    copies = 2
                    self.duplicated += 1
                due = time.monotonic() + r.delay_ms / 1000.0
                for _ in range(copies):
                    queue.put_nowait((due, head + body))
                    queued[0] += 4 + n
                while queued[0] > DELAY_QUEUE_MAX and not sender.done():
                    await asyncio.sleep(POLL_S)
        finally:
            sender.cancel()

    async def _send(self, queue, up_w, queued):
        try:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                up_w.write(data)
                queued[0] -= len(data)
                await up_w.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
