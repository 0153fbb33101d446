/*
 * wal/wal.h: moor's write-ahead log, the member's durable Raft log.
 *
 * What it is: a directory of segment files (<dir>/<seq>-<first index>.wal,
 * 64 MiB each, preallocated) holding records: Raft entries, the hard state,
 * snapshot markers and metadata (cluster id, member id). Records are
 * chained by crc32c, so a record cannot be moved, dropped or reordered
 * silently. The byte layout is documented in wal/format.c and
 * docs/file-formats.md.
 *
 * What it is not: it does not know Raft's rules beyond "an entry at an index
 * at or below the last one replaces that suffix", it does not hold the log
 * in memory after open (raft/ does), and it never includes libuv.
 *
 * Threads. A struct wal is used from one thread, the "loop thread"
 * (wal_open, wal_append, wal_collect, wal_close). wal_open starts one
 * writer thread that the WAL owns: it takes the batches appended so far,
 * writes them and makes them durable in one pwritev2(RWF_DSYNC) call (or a
 * write and one fdatasync()), and then calls the notify callback ON THE
 * WRITER THREAD. In its idle time it prepares the next segment (zeros
 * written over it, so its syncs need no journal commit). While one batch syncs,
 * the next one accumulates (group commit), so an append never waits behind more
 * than one sync. The notify callback must only wake the loop thread (server/
 * calls uv_async_send); the loop thread then calls wal_collect() to learn how
 * far the log is durable. The callback must not call into the WAL.
 *
 * Ownership. wal_append() borrows the batch: it copies every byte it needs
 * before returning, so the caller may drop its entries at once. Replay
 * results are owned by the caller (wal_replay_close).
 *
 * Failures. A failed write or fdatasync() poisons the WAL: the failing
 * batch and every later one is reported failed through wal_collect(), and
 * wal_append() returns MOOR_EPOISONED. fdatasync() is never retried (the
 * kernel may already have dropped the dirty pages). Out of space
 * (ENOSPC/EDQUOT) is reported as MOOR_ENOSPC so the server can raise the
 * NOSPACE alarm; every other I/O failure as MOOR_EIO. Either way the member
 * must stop writing: server/ logs it and stops the member (moor_fatal for
 * MOOR_EIO); a restart replays what is durable. Space running low shows
 * earlier, without failing anything: wal_durable.nospace is set when the
 * next segment cannot be preallocated while the current one still has
 * room.
 *
 * Use from the node loop, per raft ready: wal_append() the hard state,
 * entries (and a snapshot marker); send the "send now" messages; when the
 * notify callback wakes the loop, wal_collect() and tell raft the log is
 * stable up to durable.last_index/last_term, release the "after persist"
 * messages. After saving a snapshot file, append its marker with
 * release_index set to let old segments go.
 */
#ifndef MOOR_WAL_H
#define MOOR_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"
#include "raft/raft.h"

/* Segment size when wal_options.segment_bytes is 0 (as etcd's 64 MB). */
#define WAL_SEGMENT_BYTES_DEFAULT (64u * 1024 * 1024)
/* Smallest segment accepted (tests use small segments to exercise
 * rollover). */
#define WAL_SEGMENT_BYTES_MIN (16u * 1024)
/* Largest entry payload (data bytes of one raft_entry) the WAL accepts; the
 * effective bound is smaller for small segments (wal_entry_bytes_max). */
#define WAL_ENTRY_BYTES_MAX (16u * 1024 * 1024)
/* Bytes appended but not yet taken by the writer thread, when
 * wal_options.pending_bytes_max is 0. */
#define WAL_PENDING_BYTES_DEFAULT (64u * 1024 * 1024)
/* Segments kept when wal_options.max_wals is 0 (etcd's --max-wals). */
#define WAL_MAX_WALS_DEFAULT 5

/* ------------------------------------------------------------------------
 * The file operations the WAL uses, behind a small table so tests can inject
 * ENOSPC, EIO and short writes. Every function returns >= 0 on success and
 * -errno on failure (never sets errno for the caller to read). arg is the
 * table's own arg. wal_fs_posix() is the real one; a test copies it and
 * replaces a few members.
 * ---------------------------------------------------------------------- */
struct wal_fs
{
    void *arg;
    /* open(2); returns the fd. */
    int (*open)(void *arg, const char *path, int flags, mode_t mode);
    int (*close)(void *arg, int fd);
    /* pwrite(2)/pread(2); return the bytes moved (may be short). */
    ssize_t (*pwrite)(void *arg, int fd, const void *buf, size_t len,
                      uint64_t off);
    ssize_t (*pread)(void *arg, int fd, void *buf, size_t len, uint64_t off);
    int (*fdatasync)(void *arg, int fd);
    /* pwrite(2) whose bytes are durable when it returns, as after
     * fdatasync(2): one pwritev2(2) with RWF_DSYNC, which saves a system
     * call and a wake-up per batch. Returns the bytes written and synced
     * (may be short). A failure is a failed write or a failed sync, and
     * is treated like a failed fdatasync: fatal, never retried. The
     * posix table falls back to pwrite + fdatasync by itself where the
     * kernel or file system refuses the flag. NULL: the WAL calls pwrite
     * and then fdatasync. */
    ssize_t (*pwrite_dsync)(void *arg, int fd, const void *buf, size_t len,
                            uint64_t off);
    int (*fsync)(void *arg, int fd);
    /* Makes the file at least len bytes, reading as zeros, with its blocks
     * allocated (fallocate(2) mode 0, or writing zeros where the file
     * system does not support it). */
    int (*preallocate)(void *arg, int fd, uint64_t len);
    int (*ftruncate)(void *arg, int fd, uint64_t len);
    /* The file's size in bytes. */
    int (*fsize)(void *arg, int fd, uint64_t *size);
    int (*rename)(void *arg, const char *from, const char *to);
    int (*unlink)(void *arg, const char *path);
};

/* Returns borrowed, valid forever: the table of real POSIX calls. */
const struct wal_fs *wal_fs_posix(void);

/* ------------------------------------------------------------------------
 * The data directory: creation (0700) and the lock.
 * ---------------------------------------------------------------------- */

/* An open, locked data directory: <data-dir>/member/{wal,snap} exist and
 * <data-dir>/member/lock is flock()ed by this process. */
struct wal_datadir
{
    int lock_fd;
    char member_dir[4096]; /* <data-dir>/member */
    char wal_dir[4096];    /* <data-dir>/member/wal */
    char snap_dir[4096];   /* <data-dir>/member/snap */
};

/* Creates data_dir, member/, member/wal/ and member/snap/ where missing
 * (mode 0700, each creation fsync()ed into its parent) and takes an
 * exclusive flock() on member/lock, held until wal_datadir_close(). Borrows
 * data_dir. Errors: MOOR_ELOCKED when another open file description holds
 * the lock (another moord, or a second open in this process), MOOR_ETOOBIG
 * for a path too long, MOOR_EIO/MOOR_ENOSPC/... from the syscalls. errmsg
 * (MOOR_ERRMSG_SIZE bytes, may be NULL) gets the path and errno. */
int wal_datadir_open(struct wal_datadir *d, const char *data_dir, char *errmsg);

/* Releases the lock. Safe on a zeroed or already-closed struct. */
void wal_datadir_close(struct wal_datadir *d);

struct wal_meta;

/* <data-dir>/member/meta, 32 bytes (docs/file-formats.md): magic
 * "moormeta", format version (le32), crc32c of the other 28 bytes (le32),
 * cluster id, member id (le64 each). Written once when a member is
 * created: temp file, fsync, rename, directory fsync. */
#define WAL_DATADIR_VERSION 1u

/* Writes the meta file atomically (replacing one that exists). Borrows m.
 * MOOR_ENOSPC, MOOR_EIO; errmsg (may be NULL) gets the path and errno. */
int wal_datadir_meta_save(const struct wal_datadir *d, const struct wal_meta *m,
                          char *errmsg);

/* Reads the meta file into *m. MOOR_ENOENT when there is none (a new
 * member), MOOR_ECORRUPT when it is damaged or of an unknown version
 * (errmsg names the file), MOOR_EIO. */
int wal_datadir_meta_load(const struct wal_datadir *d, struct wal_meta *m,
                          char *errmsg);

/* ------------------------------------------------------------------------
 * Opening and replay
 * ---------------------------------------------------------------------- */

/* The snapshot a replay starts from, and the marker record the WAL keeps
 * for each snapshot taken or installed. index 0 means "no snapshot". */
struct wal_snapshot
{
    uint64_t term;
    uint64_t index;
};

/* Who this log belongs to; written into every segment. */
struct wal_meta
{
    uint64_t cluster_id;
    uint64_t member_id;
};

/* Called on the writer thread after each durable batch, after a failure,
 * and when wal_durable.nospace changes. Must only wake the loop thread;
 * see the threading rule above. */
typedef void (*wal_notify_cb)(void *arg);

struct wal_options
{
    const char *dir;          /* the WAL directory (wal_datadir.wal_dir) */
    const struct wal_fs *fs;  /* NULL: wal_fs_posix() */
    uint64_t segment_bytes;   /* 0: WAL_SEGMENT_BYTES_DEFAULT */
    size_t pending_bytes_max; /* 0: WAL_PENDING_BYTES_DEFAULT */
    unsigned max_wals;        /* 0: WAL_MAX_WALS_DEFAULT */
    /* Used only when the directory holds no segment yet: the metadata
     * written into the new log, and the snapshot it starts after (the new
     * log's first index is start.index + 1). */
    struct wal_meta meta;
    /* Replay returns the entries after start.index. The caller passes the
     * snapshot it loaded ({0, 0} for none). */
    struct wal_snapshot start;
    wal_notify_cb notify_cb; /* may be NULL (tests, tools) */
    void *notify_arg;
};

/* What the log holds after start. */
struct wal_replay
{
    bool created;                      /* the directory had no log: a new one */
    struct wal_meta meta;              /* from the newest metadata record */
    struct raft_hard_state hard_state; /* newest; zeros when none */
    struct wal_snapshot snapshot;      /* newest marker; {0,0} when none */
    struct raft_entry *entries;        /* indexes start.index+1 .. */
    size_t entries_len;
    uint64_t torn_offset; /* a torn tail was truncated here (0: none) */
};

/* Frees the replay's entries (dropping each entry's data reference) and
 * zeroes it. Safe on a zeroed struct. */
void wal_replay_close(struct wal_replay *r);

struct wal;

/* Opens the WAL in opts->dir, creating a new log when the directory holds
 * no segment, replays it into *replay and starts the writer thread.
 *
 * Replay reads, in order, every segment from the one that holds the first
 * entry after opts->start (older ones hold nothing the snapshot does not
 * cover, and are not read: etcd also opens its WAL at the snapshot's
 * segment) and verifies the header of each and the crc chain across all
 * their records. Entries at an index at or below an
 * earlier one replace that suffix. A bad record at the tail of the last
 * segment whose damage is explained by a write that never completed (the
 * file ends inside it, or one of its 512-byte sectors reads as zeros) and
 * that no later synced batch follows is a torn write: it and everything
 * after it is cut off, logged at WARN, and replay->torn_offset says where.
 * Anything else is corruption: MOOR_ECORRUPT with errmsg naming the file,
 * the byte offset and what is wrong; nothing is modified.
 *
 * The only changes open makes on disk: cutting a torn tail, preallocating
 * the newest segment back to full size, removing *.wal.tmp files a crash
 * left behind, creating the first segment of a new log (preallocated and
 * overwritten with zeros: one segment's worth of writes, 64 MiB by
 * default, once per new member), and appending a
 * snapshot marker for opts->start when the log holds none that new (the
 * process died between saving a snapshot and logging its marker).
 *
 * Returns owned in *out (close with wal_close) and in *replay (close with
 * wal_replay_close); on failure neither needs closing. Borrows opts (dir
 * is copied). errmsg (MOOR_ERRMSG_SIZE bytes, may be NULL) gets context.
 * Errors: MOOR_EINVAL (bad options); MOOR_ECORRUPT (damage as above, a
 * gap in the log, or opts->start's term disagreeing with the log's entry
 * or marker at that index); MOOR_ENOENT (opts->dir does not exist, or the
 * log does not reach back to opts->start: entries opts->start.index+1 ..
 * are missing, e.g. the caller skipped a newer snapshot the log relies
 * on); MOOR_ENOMEM, MOOR_ENOSPC, MOOR_EIO. Memory: open reads one segment
 * at a time into one buffer (up to the segment size) and copies every
 * entry after opts->start into the replay. */
int wal_open(const struct wal_options *opts, struct wal **out,
             struct wal_replay *replay, char *errmsg);

/* Writes everything appended so far, makes it durable, stops the writer
 * thread (the notify callback may run during this call, on the writer
 * thread) and frees the WAL. Loop thread only. */
void wal_close(struct wal *w);

/* ------------------------------------------------------------------------
 * Appending
 * ---------------------------------------------------------------------- */

/* One unit handed to the writer. Written in this order: snapshot marker,
 * entries, hard state. Every part is optional. */
struct wal_batch
{
    /* A snapshot was saved (or installed) at this point; NULL: none. */
    const struct wal_snapshot *snapshot;
    /* Consecutive indexes. The first may be at or below the last index in
     * the log (the suffix from there is replaced) but not beyond last + 1,
     * unless snapshot is set and entries start at snapshot->index + 1. */
    const struct raft_entry *entries;
    size_t entries_len;
    /* NULL: unchanged. */
    const struct raft_hard_state *hard_state;
    /* After this batch is durable, remove the oldest segments whose entries
     * are all at or below release_index (a snapshot's index, whose marker
     * is durable), keeping at least max_wals segments. 0: none. Done on
     * the writer thread after this batch is reported, before the next
     * batch is written. */
    uint64_t release_index;
};

/* Queues a batch for the writer thread. Loop thread only. Borrows batch
 * (copies everything). Returns the batch's sequence number through *seq
 * (1, 2, 3 ... per WAL; may be NULL): the batch is durable once
 * wal_collect() reports a durable seq at or above it.
 * Errors, with nothing queued: MOOR_EINVAL (an index gap, zero index, or
 * non-consecutive entries), MOOR_ETOOBIG (an entry above
 * wal_entry_bytes_max), MOOR_EAGAIN (pending bytes would exceed
 * pending_bytes_max: collect, then retry), MOOR_EPOISONED (an earlier
 * write failed), MOOR_ENOMEM. */
int wal_append(struct wal *w, const struct wal_batch *batch, uint64_t *seq);

/* How far the log is durable. */
struct wal_durable
{
    uint64_t seq;        /* batches 1..seq are durable */
    uint64_t last_index; /* last entry index in the log after batch seq */
    uint64_t last_term;  /* its term (0 when the log is empty) */
    int err; /* MOOR_OK, or the failure that poisoned the WAL (MOOR_ENOSPC,
                MOOR_EIO): batches after seq will never be durable */
    /* The next segment could not be preallocated for lack of space (it is
     * prepared once the current one is half full). Appends still succeed
     * until the current segment is full; then they fail with MOOR_ENOSPC.
     * The server raises the NOSPACE alarm on it. Clears itself once a
     * later attempt (after each batch) succeeds. */
    bool nospace;
};

/* Copies the current durable position into *out. Loop thread only; cheap
 * (one mutex). Returns out->err. */
int wal_collect(struct wal *w, struct wal_durable *out);

/* The largest entry data the WAL accepts with its segment size. */
size_t wal_entry_bytes_max(const struct wal *w);

/* The error message of a poisoned WAL (operation, file, offset, errno) as
 * of the last wal_collect() that reported the failure; "" before that.
 * Returns borrowed, valid until wal_close (the text is stable once set).
 * Loop thread only. */
const char *wal_errmsg(struct wal *w);

#endif /* MOOR_WAL_H */
