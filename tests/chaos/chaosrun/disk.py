"""Disk faults: a torn WAL tail, and a small tmpfs that the nemesis fills.

tear_wal(waldir, rnd) finds the newest segment of a stopped member's WAL,
walks its records by the layout of docs/file-formats.md (64-byte segment
header, then records of a 16-byte header: u32 payload length, u8 type,
u8 flags, u16 zero, u32 prev crc, u32 crc; the payload; zeros up to a
multiple of 16; the first all-zero header ends the log) and cuts the last
record at a random byte of it, one of two ways (drawn):
  truncate  the file ends there (a tail that was never written, in a file
            that was not preallocated);
  zero      from the 512-byte sector holding that byte (never before the
            record's start) to the record's end the bytes become zeros
            (sectors that never reached the preallocated file).
last_entry_index(waldir) reads the raft index of that record when it is
an entry, so the nemesis can wait until every other member holds it.
Both are torn writes by the WAL's rules, so moord must cut the record,
log "torn write at the tail of the log" and start; except a record zeroed
from its first byte (its header all zero, as happens with most records,
which are shorter than a sector): that reads as the log's clean end, so
moord cannot tell and logs nothing; it must still start.  Note what that means:
the record was synced (kill -9 loses no page cache), so the member loses
an entry or a vote it had acknowledged: only the other members' copies
keep the write, which is what the nemesis tests.

Tmpfs(path, bytes): mount() a tmpfs of that size (the data dir of one
member), fill() it with a file until ENOSPC, free() the file,
unmount() (lazily when busy).  A WAL segment is preallocated (64 MiB),
so a full disk shows only when moord prepares the spare segment (once the
segment is half full), rolls over, or writes a snapshot.  TMPFS_BYTES
holds what the member needs once the filler is gone: with --max-wals 1
and --max-snapshots 1 (nemesis.py), an old segment, the current one and
the spare (3 x 64 MiB), plus a snapshot and its temporary file holding
the bulk writer's BULK_BUDGET (the keyspace keeps every revision of it:
no compaction in these runs).
"""

import os
import re
import subprocess

SEGMENT_HEADER = 64
RECORD_HEADER = 16
SECTOR = 512
SEGMENT_RE = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")
TMPFS_BYTES = 384 << 20
FILL_CHUNK = 1 << 20


def newest_segment(waldir):
    segs = sorted(f for f in os.listdir(waldir) if SEGMENT_RE.match(f))
    return os.path.join(waldir, segs[-1]) if segs else None


def last_record(buf):
    """(offset, length incl. header, type) of the last record of a segment
    image, or None when it holds none."""
    off, last = SEGMENT_HEADER, None
    while off + RECORD_HEADER <= len(buf):
        n = int.from_bytes(buf[off:off + 4], "little")
        rtype = buf[off + 4]
        if n == 0 and rtype == 0:
            break
        end = off + RECORD_HEADER + n
        if end > len(buf):
            break
        last = (off, RECORD_HEADER + n, rtype)
        off = end + (-end) % 16
    return last


ENTRY = 2


def last_entry_index(waldir):
    """The raft index of the newest segment's last record when that record
    is an entry (payload: term u64, index u64, ...), else None."""
    path = newest_segment(waldir)
    if path is None:
        return None
    with open(path, "rb") as f:
        buf = f.read()
    rec = last_record(buf)
    if rec is None or rec[2] != ENTRY or rec[1] < RECORD_HEADER + 16:
        return None
    at = rec[0] + RECORD_HEADER + 8
    return int.from_bytes(buf[at:at + 8], "little")


def tear_wal(waldir, rnd):
    """Cut the newest segment's last record; returns (what it did, whether
    moord must log a torn tail)."""
    path = newest_segment(waldir)
    if path is None:
        return "no WAL segment in %s" % waldir, False
    with open(path, "rb") as f:
        buf = f.read()
    rec = last_record(buf)
    if rec is None:
        return "no record in %s" % os.path.basename(path), False
    off, size, rtype = rec
    at = off + rnd.randrange(1, size)
    how = rnd.choice(("truncate", "zero"))
    if how == "truncate":
        os.truncate(path, at)
    else:
        start = max(off, at - at % SECTOR)
        with open(path, "r+b") as f:
            f.seek(start)
            f.write(bytes(off + size - start))
        at = start
    visible = at > off
    return "cut %s record at %d (type %d, %d bytes) by %s at %d%s" % (
        os.path.basename(path), off, rtype, size, how, at,
        "" if visible else " (all of it: reads as the log's end)"), visible


WAL_FATAL = b"WAL write failed, stopping the member"


def wal_failure_exit(log_path, returncode):
    """None when a member that stopped on a full disk stopped through
    moord's WAL-failure exit (its log says so), else what is wrong."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, os.path.getsize(log_path) - (64 << 10)))
            tail = f.read()
    except OSError as e:
        return "exited with status %s, log unreadable: %s" % (returncode, e)
    if WAL_FATAL in tail:
        return None
    return "exited with status %s without the WAL-failure message " \
        "(see %s)" % (returncode, log_path)


class Tmpfs:
    def __init__(self, path, size):
        self.path, self.size = path, size
        self.mounted = False
        self.filler = os.path.join(path, "filler")

    def mount(self):
        os.makedirs(self.path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "size=%d,mode=0700" % self.size, "tmpfs",
                            self.path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise OSError("mount tmpfs on %s: %s" % (self.path,
                                                     r.stdout.strip()))
        self.mounted = True

    def fill(self):
        """Fill the file system; returns the bytes that were free."""
        st = os.statvfs(self.path)
        free = st.f_bavail * st.f_frsize
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o600)
        try:
            chunk = bytes(FILL_CHUNK)
            while True:
                try:
                    os.write(fd, chunk)
                except OSError:
                    if len(chunk) <= 4096:
                        break
                    chunk = chunk[:len(chunk) // 2]
        finally:
            os.close(fd)
        return free

    def free(self):
        try:
            os.unlink(self.filler)
        except FileNotFoundError:
            pass

    def unmount(self):
        if not self.mounted:
            return
        r = subprocess.run(["umount", self.path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", self.path],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        self.mounted = False
