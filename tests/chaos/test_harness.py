#!/usr/bin/python3
"""Self-tests of the harness's own parts that need no moord: the hand-made
protobuf encoding (pb.py) and the fault proxy (proxy.py) between a fake
dialer and a fake member on loopback.  ctest chaos_harness_selftest, a few
seconds.  Waits are bounded polls for an outcome, never timing checks.
"""

import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chaosrun import disk, lease, pb  # noqa: E402
from chaosrun.cluster import free_ports  # noqa: E402
from chaosrun.proxy import Proxy, Rule  # noqa: E402

WAIT_S = 10.0


def handshake(name):
    return pb.f_msg(1, pb.f_bytes(6, name))


def message(mtype, n):
    """A moorpb.Frame holding a Message of type mtype, index n."""
    return pb.f_msg(2, pb.f_varint(1, mtype) + pb.f_varint(6, n))


def frame(body):
    return len(body).to_bytes(4, "big") + body


class Member:
    """A fake member's peer port: records the frames it receives."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.frames = []
        self.conns = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c):
        buf = b""
        while True:
            try:
                d = c.recv(65536)
            except OSError:
                d = b""
            if not d:
                c.close()
                return
            buf += d
            while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(
                    buf[:4], "big"):
                n = int.from_bytes(buf[:4], "big")
                with self.lock:
                    self.frames.append(buf[4:4 + n])
                buf = buf[4 + n:]

    def indexes(self):
        with self.lock:
            out = []
            for f in self.frames:
                d = pb.decode(f)
                if 2 in d:
                    out.append(pb.one(pb.decode(d[2][-1]), 6))
            return out

    def close(self):
        self.sock.close()


def wait_for(cond):
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class PbTest(unittest.TestCase):
    def test_varint_round_trips_and_int64_is_twos_complement(self):
        for v in (0, 1, 127, 128, 300, 1 << 35, (1 << 63) + 5):
            d = pb.decode(pb.varint(1 << 3) + pb.varint(v))
            self.assertEqual(d[1], [v])
        d = pb.decode(pb.varint(1 << 3) + pb.varint(-2))
        self.assertEqual(pb.i64(d[1][0]), -2)

    def test_range_response_decodes_header_and_kvs(self):
        kv = (pb.f_bytes(1, "r/0") + pb.f_varint(2, 5) + pb.f_varint(3, 7) +
              pb.f_varint(4, 2) + pb.f_bytes(5, "1-9"))
        hdr = pb.f_varint(2, 42) + pb.f_varint(3, 9)
        rev, kvs = pb.range_resp(pb.f_msg(1, hdr) + pb.f_msg(2, kv))
        self.assertEqual(rev, 9)
        self.assertEqual(kvs, [{"key": "r/0", "value": "1-9",
                                "create_revision": 5, "mod_revision": 7,
                                "version": 2}])

    def test_compare_on_mod_revision_zero_is_sent(self):
        c = pb.decode(pb.compare({"key": "k", "target": "mod",
                                  "result": "=", "value": 0}))
        self.assertEqual(c[6], [0])  # the oneof member, present though 0
        self.assertEqual(c[2], [pb.CMP_TARGET["mod"]])

    def test_truncated_input_is_an_error(self):
        with self.assertRaises(pb.DecodeError):
            pb.decode(pb.f_bytes(1, "abc")[:-1])

    def test_handshake_name_and_message_type(self):
        self.assertEqual(pb.handshake_name(handshake("m1")), "m1")
        self.assertIsNone(pb.handshake_name(message(1, 3)))
        self.assertEqual(pb.frame_message_type(message(pb.MSG_PROP, 1)),
                         pb.MSG_PROP)


class ProxyTest(unittest.TestCase):
    def setUp(self):
        real, px = free_ports(2), free_ports(2)
        self.members = [Member(p) for p in real]
        self.proxy = Proxy(["m0", "m1"], real, px, seed=1)
        self.proxy.start()
        self.px = px
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.proxy.close()
        for m in self.members:
            m.close()

    def dial(self, src, dst):
        """A connection src -> dst through the proxy, handshake sent."""
        s = socket.create_connection(("127.0.0.1", self.px[dst]))
        self.socks.append(s)
        s.sendall(frame(handshake("m%d" % src)))
        return s

    def send(self, s, first, last, mtype=1):
        s.sendall(b"".join(frame(message(mtype, i))
                           for i in range(first, last)))

    def test_pass_relays_every_frame_in_order(self):
        s = self.dial(0, 1)
        self.send(s, 1, 201)
        self.assertTrue(wait_for(
            lambda: len(self.members[1].indexes()) == 200))
        self.assertEqual(self.members[1].indexes(), list(range(1, 201)))
        self.assertEqual(self.members[0].indexes(), [])

    def test_stall_holds_frames_until_heal(self):
        s = self.dial(0, 1)
        self.send(s, 1, 3)
        self.assertTrue(wait_for(
            lambda: self.members[1].indexes() == [1, 2]))
        self.proxy.set_rule(0, 1, Rule("stall"))
        # The rule is set on the proxy's loop; a frame sent after a marker
        # frame in the other direction proves it is in force.
        self.proxy.set_rule(1, 0, Rule("stall"))
        self.assertTrue(wait_for(lambda: (0, 1) in self.proxy.rules))
        self.send(s, 3, 6)
        self.assertFalse(wait_for_short(
            lambda: len(self.members[1].indexes()) > 2))
        self.proxy.heal()
        self.assertTrue(wait_for(
            lambda: self.members[1].indexes() == [1, 2, 3, 4, 5]))

    def test_reset_cuts_the_connection(self):
        s = self.dial(0, 1)
        self.send(s, 1, 2)
        self.assertTrue(wait_for(lambda: self.members[1].indexes() == [1]))
        self.proxy.set_rule(0, 1, Rule("reset"))
        s.settimeout(WAIT_S)
        try:
            got = s.recv(10)
        except (ConnectionResetError, OSError):
            got = b""
        self.assertEqual(got, b"")

    def test_loss_one_loses_all_and_dup_one_doubles_all_but_proposals(self):
        self.proxy.set_rule(0, 1, Rule(loss=1.0))
        self.assertTrue(wait_for(lambda: (0, 1) in self.proxy.rules))
        s = self.dial(0, 1)
        self.send(s, 1, 11)
        self.assertTrue(wait_for(lambda: self.proxy.lost == 10))
        self.proxy.set_rule(0, 1, Rule(dup=1.0))
        self.assertTrue(wait_for(
            lambda: self.proxy.rules.get((0, 1)) is not None and
            self.proxy.rules[(0, 1)].dup == 1.0))
        self.send(s, 11, 13)
        self.send(s, 13, 14, mtype=pb.MSG_PROP)
        self.assertTrue(wait_for(
            lambda: self.members[1].indexes() == [11, 11, 12, 12, 13]))

    def test_one_way_cut_leaves_the_other_direction(self):
        self.proxy.set_rule(0, 1, Rule("stall"))
        self.assertTrue(wait_for(lambda: (0, 1) in self.proxy.rules))
        a = self.dial(0, 1)
        b = self.dial(1, 0)
        self.send(a, 1, 2)
        self.send(b, 7, 8)
        self.assertTrue(wait_for(lambda: self.members[0].indexes() == [7]))
        self.assertEqual(self.members[1].conns, 0)


def wait_for_short(cond):
    """True if cond holds within 0.3 s: used only to show that something
    did NOT happen while a rule held (a pass would be caught by the
    assertion after the heal in any case)."""
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def segment(records):
    """A segment image: 64-byte header, records (type, payload) laid out as
    docs/file-formats.md says (crcs left zero: disk.py never reads them),
    then preallocated zeros."""
    buf = bytearray(b"moorwal\0" + bytes(56))
    for rtype, payload in records:
        hdr = len(payload).to_bytes(4, "little") + bytes([rtype]) + bytes(11)
        buf += hdr + payload
        buf += bytes((-len(buf)) % 16)
    return bytes(buf) + bytes(4096)


class TornWalTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="chaos-torn-")
        self.path = os.path.join(self.dir,
                                 "0000000000000001-0000000000000005.wal")
        self.image = segment([(1, bytes(range(16))), (2, b"e" * 700),
                              (3, b"h" * 24)])
        with open(self.path, "wb") as f:
            f.write(self.image)
        with open(os.path.join(
                self.dir, "0000000000000000-0000000000000001.wal"), "wb") as f:
            f.write(segment([(1, bytes(16))]))

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_last_record_is_found_by_walking_the_layout(self):
        # 64 + (16 + 16) = 96; 96 + (16 + 700) = 812 -> padded 816.
        self.assertEqual(disk.last_record(self.image), (816, 40, 3))
        self.assertIsNone(disk.last_record(segment([])))

    def test_tear_cuts_only_the_newest_segments_last_record(self):
        for seed in range(40):
            with open(self.path, "wb") as f:
                f.write(self.image)
            detail, visible = disk.tear_wal(self.dir, random.Random(seed))
            with open(self.path, "rb") as f:
                now = f.read()
            self.assertIn("0000000000000001-0000000000000005.wal", detail)
            # Everything before the last record is untouched ...
            self.assertEqual(now[:816], self.image[:816])
            # ... and the last record is damaged.
            self.assertNotEqual(now[816:856], self.image[816:856])
            if "truncate" in detail:
                self.assertTrue(816 < len(now) < 856)
                self.assertTrue(visible)
            else:
                self.assertEqual(len(now), len(self.image))
                self.assertEqual(now[816:856], bytes(40))  # one sector
                self.assertFalse(visible)

    def test_a_zeroed_tail_past_a_sector_boundary_stays_visible(self):
        for seed in range(40):
            with open(self.path, "wb") as f:
                f.write(self.image)
            # The 700-byte entry spans the sector boundary at 512.
            img = segment([(1, bytes(16)), (2, b"e" * 700)])
            with open(self.path, "wb") as f:
                f.write(img)
            detail, visible = disk.tear_wal(self.dir, random.Random(seed))
            with open(self.path, "rb") as f:
                now = f.read()
            if "zero at 512" in detail:
                self.assertTrue(visible)
                self.assertEqual(now[96:512], img[96:512])
                self.assertEqual(now[512:812], bytes(300))
                return
        self.fail("no seed zeroed from the sector boundary")


def lease_hist(*recs):
    out = []
    for op, t0, t1, extra in recs:
        r = {"op": op, "lease": 7, "key": "l/0/1", "invoke_ns": t0 * S,
             "complete_ns": t1 * S, "outcome": "ok"}
        r.update(extra)
        out.append(r)
    return out


S = 10**9


class LeaseCheckTest(unittest.TestCase):
    def test_a_valid_history_passes(self):
        h = lease_hist(("grant", 0, 0.1, {"ttl": 3}),
                       ("put", 0.2, 0.3, {}),
                       ("keepalive", 2, 2.1, {"ttl": 3}),
                       ("get", 4.5, 4.6, {"found": True}),
                       ("get", 5.2, 5.3, {"found": False}),   # expired
                       ("revoke", 6, 6.1, {}),
                       ("get", 6.2, 6.3, {"found": False}))
        self.assertEqual(lease.check(h), [])

    def test_a_key_gone_within_its_ttl_is_early_expiry(self):
        h = lease_hist(("grant", 0, 0.1, {"ttl": 3}),
                       ("put", 0.2, 0.3, {}),
                       ("keepalive", 2, 2.1, {"ttl": 3}),
                       ("get", 4.5, 4.6, {"found": False}))
        self.assertEqual([k for k, _ in lease.check(h)],
                         ["lease-early-expiry"])

    def test_a_revoke_in_flight_excuses_a_missing_key(self):
        h = lease_hist(("grant", 0, 0.1, {"ttl": 3}),
                       ("put", 0.2, 0.3, {}),
                       ("revoke", 1, 1.1, {"outcome": "info"}),
                       ("get", 1.5, 1.6, {"found": False}))
        self.assertEqual(lease.check(h), [])

    def test_a_key_read_after_its_revoke_was_acknowledged_is_flagged(self):
        h = lease_hist(("grant", 0, 0.1, {"ttl": 3}),
                       ("put", 0.2, 0.3, {}),
                       ("revoke", 1, 1.1, {}),
                       ("get", 1.2, 1.3, {"found": True}))
        self.assertEqual([k for k, _ in lease.check(h)],
                         ["lease-revoked-read"])


if __name__ == "__main__":
    unittest.main()
