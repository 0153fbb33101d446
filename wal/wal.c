/*
 * wal.c: opening a log (replay, torn-tail truncation), the writer thread
 * with group commit, segment rollover and release.
 *
 * Who touches what. Fields under "loop" are the loop thread's, fields under
 * "writer" the writer thread's (wal_open sets them up before the thread
 * starts, wal_close reads them after it ended), fields under "shared" need
 * mu. Batches move as bytes: wal_append encodes records into `pending`
 * (under mu, a memcpy); the writer swaps `pending` with its own `writing`
 * buffer, so while it writes and syncs one batch the loop fills the next.
 * The loop leaves each record's flags, prev crc and crc zero; the writer
 * seals them as it places records into segments, because only it knows the
 * chain across a rollover (a new segment starts with its own opening
 * records).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "wal_int.h"

/* Batch buffers above this size are freed after use rather than kept. */
#define WAL_KEEP_BUF_BYTES (4u * 1024 * 1024)

/* What the writer knows of each segment, oldest first. */
struct wal_seg
{
    uint64_t seq;
    uint64_t first_index;
    uint64_t max_index; /* highest entry index written into it (0: none) */
};

struct wal
{
    /* Immutable after wal_open. */
    char dir[4096];
    struct wal_fs fs;
    uint64_t segment_bytes;
    size_t pending_bytes_max;
    unsigned max_wals;
    size_t entry_bytes_max;
    wal_notify_cb notify_cb;
    void *notify_arg;

    /* loop */
    uint64_t next_seq;   /* last seq handed out */
    uint64_t last_index; /* the log's last index after all appends */
    uint64_t snap_index; /* newest snapshot marker appended or replayed */
    char loop_errmsg[MOOR_ERRMSG_SIZE];

    /* shared */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct moor_buf pending;
    uint64_t pending_seq; /* newest batch appended */
    uint64_t taken_seq;   /* newest batch the writer took */
    uint64_t pending_release;
    bool stop;
    struct wal_durable durable;
    char errmsg[MOOR_ERRMSG_SIZE];

    /* writer */
    pthread_t thread;
    bool thread_started;
    struct moor_buf writing;
    int fd; /* the newest segment, open for writing */
    uint64_t seg_seq;
    uint64_t seg_off; /* where the next record goes */
    uint64_t seg_cap; /* the newest segment's size */
    uint32_t chain;   /* crc of the last record placed */
    uint64_t w_last_index;
    uint64_t w_last_term;
    struct wal_meta meta;
    bool have_snap;
    struct wal_snapshot snap;
    bool have_hs;
    struct raft_hard_state hs;
    struct wal_seg *segs;
    size_t segs_len;
    size_t segs_cap;
    int spare_fd; /* the next segment, preallocated, or -1 */
    /* Bytes of the spare overwritten with zeros so far (spare_fill), and
     * whether all of it is written and fsync()ed. */
    uint64_t spare_zeroed;
    bool spare_done;
    /* Filling the spare failed: no other spare until the next segment. */
    bool spare_failed;
    bool nospace; /* the last attempt to prepare it hit ENOSPC */
    char werrmsg[MOOR_ERRMSG_SIZE];
};

/* The next segment is prepared under this name (in the WAL directory). */
#define WAL_SPARE_NAME "spare.wal.tmp"

/* Zero-filling a segment file (see spare_fill): the bytes of one write,
 * and the writes done after one notify while no batch waits. */
#define WAL_ZERO_CHUNK_BYTES (64u * 1024)
#define WAL_ZERO_CHUNKS_PER_TURN 4u

/* ------------------------------------------------------------------------
 * Segment bookkeeping and creation (writer side; also used by wal_open)
 * ---------------------------------------------------------------------- */

static int segs_push(struct wal *w, uint64_t seq, uint64_t first_index)
{
    if (w->segs_len == w->segs_cap) {
        size_t cap = w->segs_cap == 0 ? 16 : w->segs_cap * 2;
        struct wal_seg *n = moor_realloc(w->segs, cap * sizeof(*n));
        if (n == NULL) {
            return MOOR_ENOMEM;
        }
        w->segs = n;
        w->segs_cap = cap;
    }
    w->segs[w->segs_len++] =
        (struct wal_seg){.seq = seq, .first_index = first_index};
    return MOOR_OK;
}

static void seg_path(const struct wal *w, char *out, size_t cap, uint64_t seq,
                     uint64_t first_index, const char *suffix)
{
    char name[WAL__NAME_BYTES];
    wal__seg_name(name, seq, first_index);
    snprintf(out, cap, "%s/%s%s", w->dir, name, suffix);
}

/* Updates the writer's view of the log with a record it placed or
 * replayed. */
static void track_record(struct wal *w, uint8_t type, const uint8_t *payload)
{
    switch (type) {
    case WAL__REC_META:
        w->meta.cluster_id = moor_get_le64(payload);
        w->meta.member_id = moor_get_le64(payload + 8);
        break;
    case WAL__REC_SNAPSHOT:
        w->have_snap = true;
        w->snap.term = moor_get_le64(payload);
        w->snap.index = moor_get_le64(payload + 8);
        break;
    case WAL__REC_HARD_STATE:
        w->have_hs = true;
        w->hs.term = moor_get_le64(payload);
        w->hs.vote = moor_get_le64(payload + 8);
        w->hs.commit = moor_get_le64(payload + 16);
        break;
    case WAL__REC_ENTRY: {
        w->w_last_term = moor_get_le64(payload);
        w->w_last_index = moor_get_le64(payload + 8);
        struct wal_seg *s = &w->segs[w->segs_len - 1];
        s->max_index = MOOR_MAX(s->max_index, w->w_last_index);
        break;
    }
    default:
        break;
    }
}

/* Sets the poison message (writer) from an -errno result and returns the
 * moor error. */
static int io_fail(struct wal *w, int neg_errno, const char *what,
                   const char *path, uint64_t off)
{
    int e = -neg_errno;
    moor_errmsg_set(w->werrmsg, "%s %s at offset %" PRIu64 ": %s", what, path,
                    off, strerror(e));
    MOOR_LOG_ERROR("wal", "write failed",
                   "op=%s file=%s offset=%" PRIu64 " errno=%d (%s)", what, path,
                   off, e, strerror(e));
    int rv = moor_err_from_errno(e);
    return rv == MOOR_ENOSPC ? MOOR_ENOSPC : MOOR_EIO;
}

/* Encodes a new segment's header and its opening records (metadata,
 * snapshot marker, hard state; sealed, the first one "sync start") into
 * head (WAL__SEG_HDR_BYTES + WAL__SEG_OPENING_BYTES); returns the chain crc
 * after them and their length through *len. */
static uint32_t seg_head_encode(const struct wal *w, uint64_t seq,
                                uint64_t first, uint8_t *head, size_t *len)
{
    struct wal__seg_hdr h = {
        .seq = seq, .first_index = first, .start_crc = w->chain};
    wal__seg_hdr_encode(head, &h);
    /* A buffer over head: its capacity holds every opening record, so the
     * appends below never reallocate. */
    struct moor_buf ob = {head, WAL__SEG_HDR_BYTES,
                          WAL__SEG_HDR_BYTES + WAL__SEG_OPENING_BYTES};
    size_t at = ob.len;
    wal__meta_encode(wal__rec_append(&ob, WAL__REC_META, WAL__META_BYTES),
                     &w->meta);
    if (w->have_snap) {
        wal__snapshot_encode(
            wal__rec_append(&ob, WAL__REC_SNAPSHOT, WAL__SNAPSHOT_BYTES),
            &w->snap);
    }
    if (w->have_hs) {
        wal__hard_state_encode(
            wal__rec_append(&ob, WAL__REC_HARD_STATE, WAL__HARD_STATE_BYTES),
            &w->hs);
    }
    MOOR_ASSERT(ob.ptr == head);
    uint32_t chain = w->chain;
    uint8_t flags = WAL__REC_FLAG_SYNC_START;
    while (at < ob.len) {
        uint32_t rlen = moor_get_le32(head + at);
        chain = wal__rec_seal(head + at, flags, chain);
        flags = 0;
        at += (size_t)wal__rec_size(rlen);
    }
    *len = ob.len;
    return chain;
}

/* Overwrites [off, off + len) of fd with zeros, through the fs table. */
static int zero_fill(struct wal *w, int fd, uint64_t off, uint64_t len)
{
    static const uint8_t zeros[WAL_ZERO_CHUNK_BYTES];
    while (len > 0) {
        size_t n = (size_t)MOOR_MIN(len, (uint64_t)sizeof(zeros));
        int rv = wal__pwrite_all(&w->fs, fd, zeros, n, off);
        if (rv < 0) {
            return rv;
        }
        off += n;
        len -= n;
    }
    return 0;
}

/* Creates segment seq (first index w->w_last_index + 1) with its opening
 * records, durably: temp name, preallocate, write, fsync, rename, fsync
 * the directory. On success it becomes the segment being written.
 *
 * Why zeros: fallocate() leaves "unwritten" extents, and the first write
 * into each of their blocks makes the next fdatasync commit the file
 * system's journal as well (ext4: about 1.5x the sync's time). A segment
 * whose blocks were already written with zeros syncs only its data. So the
 * spare is zero-filled in the writer's idle time (spare_fill), and with
 * zero_all (a new log's first segment, made at open where no batch waits)
 * the new file is zero-filled here; a rollover that finds no spare only
 * preallocates, rather than stall a batch for a whole segment of writes.
 * Preallocating first still reserves the space, so ENOSPC shows there. */
static int seg_create(struct wal *w, uint64_t seq, bool zero_all)
{
    uint64_t first = w->w_last_index + 1;
    char tmp[4200];
    char path[4200];
    seg_path(w, tmp, sizeof(tmp), seq, first, ".tmp");
    seg_path(w, path, sizeof(path), seq, first, "");

    uint8_t head[WAL__SEG_HDR_BYTES + WAL__SEG_OPENING_BYTES];
    size_t head_len;
    uint32_t chain = seg_head_encode(w, seq, first, head, &head_len);

    const struct wal_fs *fs = &w->fs;
    int fd;
    int rv;
    if (w->spare_fd >= 0) {
        /* Prepared ahead of time (spare_prepare, spare_fill): created,
         * preallocated, and zero-filled and synced as far as idle time
         * allowed; the fsync below makes whatever it holds durable. */
        fd = w->spare_fd;
        w->spare_fd = -1;
        snprintf(tmp, sizeof(tmp), "%s/%s", w->dir, WAL_SPARE_NAME);
    } else {
        fd = fs->open(fs->arg, tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) {
            return io_fail(w, fd, "create", tmp, 0);
        }
        rv = fs->preallocate(fs->arg, fd, w->segment_bytes);
        if (rv < 0) {
            rv = io_fail(w, rv, "preallocate", tmp, 0);
            goto err;
        }
        rv = zero_all ? zero_fill(w, fd, 0, w->segment_bytes) : 0;
        if (rv < 0) {
            rv = io_fail(w, rv, "zero-fill", tmp, 0);
            goto err;
        }
    }
    rv = wal__pwrite_all(fs, fd, head, head_len, 0);
    if (rv < 0) {
        rv = io_fail(w, rv, "write", tmp, 0);
        goto err;
    }
    rv = fs->fsync(fs->arg, fd);
    if (rv < 0) {
        rv = io_fail(w, rv, "fsync", tmp, 0);
        goto err;
    }
    rv = fs->rename(fs->arg, tmp, path);
    if (rv < 0) {
        rv = io_fail(w, rv, "rename", tmp, 0);
        goto err;
    }
    rv = wal__fsync_dir(fs, w->dir);
    if (rv < 0) {
        /* The file exists under its final name; close it, and stop. */
        fs->close(fs->arg, fd);
        return io_fail(w, rv, "fsync directory", w->dir, 0);
    }
    rv = segs_push(w, seq, first);
    if (rv != MOOR_OK) {
        fs->close(fs->arg, fd);
        moor_errmsg_set(w->werrmsg, "out of memory after creating %s", path);
        return MOOR_ENOMEM;
    }
    if (w->fd >= 0) {
        fs->close(fs->arg, w->fd);
    }
    w->fd = fd;
    w->spare_failed = false;
    w->seg_seq = seq;
    w->seg_off = head_len;
    w->seg_cap = w->segment_bytes;
    w->chain = chain;
    MOOR_LOG_INFO("wal", "segment created", "file=%s", path);
    return MOOR_OK;
err:
    fs->close(fs->arg, fd);
    fs->unlink(fs->arg, tmp);
    return rv;
}

/* ------------------------------------------------------------------------
 * The writer thread
 * ---------------------------------------------------------------------- */

static int write_chunk(struct wal *w, const uint8_t *p, size_t len,
                       uint64_t off)
{
    if (len == 0) {
        return MOOR_OK;
    }
    int rv = wal__pwrite_all(&w->fs, w->fd, p, len, off);
    if (rv < 0) {
        char name[WAL__NAME_BYTES];
        wal__seg_name(name, w->seg_seq, w->segs[w->segs_len - 1].first_index);
        return io_fail(w, rv, "write", name, off);
    }
    return MOOR_OK;
}

static int sync_segment(struct wal *w)
{
    int rv = w->fs.fdatasync(w->fs.arg, w->fd);
    if (rv < 0) {
        char name[WAL__NAME_BYTES];
        wal__seg_name(name, w->seg_seq, w->segs[w->segs_len - 1].first_index);
        return io_fail(w, rv, "fdatasync", name, w->seg_off);
    }
    return MOOR_OK;
}

/* Writes len bytes at off and makes them durable: one pwrite_dsync call
 * where the table has one (a short one is continued, each piece durable
 * before the next is written), else pwrite and fdatasync. A failure of
 * either kind is final, like a failed fdatasync: the caller poisons the
 * WAL and nothing is retried. Nothing to write: nothing is synced. */
static int write_sync(struct wal *w, const uint8_t *p, size_t len, uint64_t off)
{
    if (len == 0) {
        return MOOR_OK;
    }
    if (w->fs.pwrite_dsync == NULL) {
        int rv = write_chunk(w, p, len, off);
        return rv == MOOR_OK ? sync_segment(w) : rv;
    }
    while (len > 0) {
        ssize_t n = w->fs.pwrite_dsync(w->fs.arg, w->fd, p, len, off);
        if (n <= 0) {
            char name[WAL__NAME_BYTES];
            wal__seg_name(name, w->seg_seq,
                          w->segs[w->segs_len - 1].first_index);
            return io_fail(w, n == 0 ? -EIO : (int)n, "write+fdatasync", name,
                           off);
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return MOOR_OK;
}

/* Places the records of w->writing into segments, rolling over where one
 * does not fit, and makes them durable. */
static int write_batch(struct wal *w)
{
    uint8_t *buf = w->writing.ptr;
    size_t len = w->writing.len;
    size_t pos = 0;
    size_t chunk = 0; /* first record not yet written */
    uint64_t chunk_off = w->seg_off;
    uint8_t flags = WAL__REC_FLAG_SYNC_START;
    int rv;
    while (pos < len) {
        uint8_t *rec = buf + pos;
        uint32_t plen = moor_get_le32(rec);
        uint64_t size = wal__rec_size(plen);
        if (w->seg_off + size > w->seg_cap) {
            /* Sync this segment's part before the next segment exists, so
             * only the newest segment can ever end in a torn write. */
            rv = write_sync(w, buf + chunk, pos - chunk, chunk_off);
            if (rv == MOOR_OK) {
                rv = seg_create(w, w->seg_seq + 1, false);
            }
            if (rv != MOOR_OK) {
                return rv;
            }
            MOOR_ASSERT(w->seg_off + size <= w->seg_cap);
            chunk = pos;
            chunk_off = w->seg_off;
            flags = WAL__REC_FLAG_SYNC_START;
        }
        w->chain = wal__rec_seal(rec, flags, w->chain);
        flags = 0;
        track_record(w, rec[4], rec + WAL__REC_HDR_BYTES);
        w->seg_off += size;
        pos += (size_t)size;
    }
    return write_sync(w, buf + chunk, pos - chunk, chunk_off);
}

/* Removes the oldest segments whose entries are all at or below index,
 * keeping at least max_wals. Failures are logged, not fatal: a segment
 * left behind costs space, never data. */
static void release_segments(struct wal *w, uint64_t index)
{
    size_t drop = 0;
    while (w->segs_len - drop > w->max_wals && drop + 1 < w->segs_len &&
           w->segs[drop].max_index <= index &&
           w->segs[drop + 1].first_index <= index + 1) {
        drop++;
    }
    if (drop == 0) {
        return;
    }
    for (size_t i = 0; i < drop; i++) {
        char path[4200];
        seg_path(w, path, sizeof(path), w->segs[i].seq, w->segs[i].first_index,
                 "");
        int rv = w->fs.unlink(w->fs.arg, path);
        if (rv < 0) {
            MOOR_LOG_WARN("wal", "cannot remove released segment",
                          "file=%s errno=%d", path, -rv);
        } else {
            MOOR_LOG_INFO("wal", "segment released", "file=%s index=%" PRIu64,
                          path, index);
        }
    }
    int rv = wal__fsync_dir(&w->fs, w->dir);
    if (rv < 0) {
        MOOR_LOG_WARN("wal", "fsync of directory after release failed",
                      "dir=%s errno=%d", w->dir, -rv);
    }
    memmove(w->segs, w->segs + drop, (w->segs_len - drop) * sizeof(*w->segs));
    w->segs_len -= drop;
}

/* Prepares the next segment once the current one is half full: create
 * the spare file and preallocate it (spare_fill then zero-fills it). Done
 * after a batch's notify, so it delays at most the next batch, once per
 * segment; and running out of space shows here (w->nospace) while the
 * current segment still has room, instead of at the rollover. Other
 * failures are left for the rollover to meet and report. */
static void spare_prepare(struct wal *w)
{
    if (w->spare_fd >= 0 || w->spare_failed || w->seg_off < w->seg_cap / 2) {
        return;
    }
    const struct wal_fs *fs = &w->fs;
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", w->dir, WAL_SPARE_NAME);
    int fd = fs->open(fs->arg, path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int rv = fd < 0 ? fd : fs->preallocate(fs->arg, fd, w->segment_bytes);
    if (rv == 0) {
        w->spare_fd = fd;
        w->spare_zeroed = 0;
        w->spare_done = false;
        w->nospace = false;
        return;
    }
    if (fd >= 0) {
        fs->close(fs->arg, fd);
        fs->unlink(fs->arg, path);
    }
    if (moor_err_from_errno(-rv) == MOOR_ENOSPC && !w->nospace) {
        MOOR_LOG_WARN("wal", "no space for the next segment", "dir=%s errno=%d",
                      w->dir, -rv);
    }
    w->nospace = moor_err_from_errno(-rv) == MOOR_ENOSPC;
}

/* True when no batch is waiting for the writer (nor a stop). */
static bool writer_idle(struct wal *w)
{
    pthread_mutex_lock(&w->mu);
    bool idle = w->pending_seq == w->taken_seq && !w->stop;
    pthread_mutex_unlock(&w->mu);
    return idle;
}

/* Zero-fills the spare a little at a time (see seg_create for why): up to
 * WAL_ZERO_CHUNKS_PER_TURN writes of WAL_ZERO_CHUNK_BYTES per call, and
 * only while no batch waits, so a batch is delayed by one chunk's write
 * at most; once all of it is written, one fsync. The spare's blocks are
 * reserved already (spare_prepare), so a failure here is rare: the spare
 * is dropped (a failed fsync is never retried, not even by the rollover's
 * fsync of the same file), no other is prepared for this segment, and the
 * rollover makes its segment the plain way, meeting and reporting
 * whatever is wrong. */
static void spare_fill(struct wal *w)
{
    if (w->spare_fd < 0 || w->spare_done) {
        return;
    }
    int rv = 0;
    const char *what = "zero-fill";
    for (unsigned i = 0; i < WAL_ZERO_CHUNKS_PER_TURN && rv == 0 &&
                         w->spare_zeroed < w->segment_bytes && writer_idle(w);
         i++) {
        uint64_t n = MOOR_MIN((uint64_t)WAL_ZERO_CHUNK_BYTES,
                              w->segment_bytes - w->spare_zeroed);
        rv = zero_fill(w, w->spare_fd, w->spare_zeroed, n);
        w->spare_zeroed += n;
    }
    if (rv == 0 && w->spare_zeroed == w->segment_bytes && writer_idle(w)) {
        what = "fsync";
        rv = w->fs.fsync(w->fs.arg, w->spare_fd);
        w->spare_done = rv == 0;
    }
    if (rv < 0) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", w->dir, WAL_SPARE_NAME);
        MOOR_LOG_WARN("wal", "cannot zero-fill the next segment",
                      "file=%s op=%s errno=%d", path, what, -rv);
        w->fs.close(w->fs.arg, w->spare_fd);
        w->fs.unlink(w->fs.arg, path);
        w->spare_fd = -1;
        w->spare_failed = true;
    }
}

static void *writer_main(void *arg)
{
    struct wal *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->pending_seq == w->taken_seq && !w->stop) {
            pthread_cond_wait(&w->cond, &w->mu);
        }
        if (w->pending_seq == w->taken_seq) {
            break; /* stop, and nothing left */
        }
        w->taken_seq = w->pending_seq;
        if (w->durable.err != MOOR_OK) {
            /* Poisoned: nothing more is written. */
            moor_buf_reset(&w->pending);
            w->pending_release = 0;
            continue;
        }
        struct moor_buf t = w->pending;
        w->pending = w->writing;
        w->writing = t;
        uint64_t seq = w->pending_seq;
        uint64_t release = w->pending_release;
        w->pending_release = 0;
        pthread_mutex_unlock(&w->mu);

        int rv = write_batch(w);
        moor_buf_reset(&w->writing);
        if (w->writing.cap > WAL_KEEP_BUF_BYTES) {
            /* A burst grew the buffer: give the memory back. */
            moor_buf_close(&w->writing);
        }

        pthread_mutex_lock(&w->mu);
        if (rv != MOOR_OK) {
            w->durable.err = rv;
            memcpy(w->errmsg, w->werrmsg, sizeof(w->errmsg));
        } else {
            w->durable.seq = seq;
            w->durable.last_index = w->w_last_index;
            w->durable.last_term = w->w_last_term;
        }
        pthread_mutex_unlock(&w->mu);
        if (w->notify_cb != NULL) {
            w->notify_cb(w->notify_arg);
        }
        /* Housekeeping after the report, so it never delays one. */
        if (rv == MOOR_OK && release != 0) {
            release_segments(w, release);
        }
        if (rv == MOOR_OK) {
            bool nospace = w->nospace;
            spare_prepare(w);
            spare_fill(w);
            if (w->nospace != nospace) {
                pthread_mutex_lock(&w->mu);
                w->durable.nospace = w->nospace;
                pthread_mutex_unlock(&w->mu);
                if (w->notify_cb != NULL) {
                    w->notify_cb(w->notify_arg);
                }
            }
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Opening
 * ---------------------------------------------------------------------- */

static int seg_cmp(const void *a, const void *b)
{
    const struct wal_seg *x = a;
    const struct wal_seg *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Lists the segments of w->dir into w->segs, sorted by seq, and removes
 * temp files a crash left behind. */
static int list_segments(struct wal *w, char *errmsg)
{
    DIR *d = opendir(w->dir);
    if (d == NULL) {
        int e = errno;
        moor_errmsg_set(errmsg, "opendir %s: %s", w->dir, strerror(e));
        return moor_err_from_errno(e);
    }
    int rv = MOOR_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        uint64_t first;
        size_t n = strlen(de->d_name);
        if (wal__seg_name_parse(de->d_name, &seq, &first)) {
            rv = segs_push(w, seq, first);
            if (rv != MOOR_OK) {
                break;
            }
        } else if (n > 8 && strcmp(de->d_name + n - 8, ".wal.tmp") == 0) {
            char path[4400];
            snprintf(path, sizeof(path), "%s/%s", w->dir, de->d_name);
            MOOR_LOG_WARN("wal", "removing unfinished segment", "file=%s",
                          path);
            w->fs.unlink(w->fs.arg, path);
        }
    }
    closedir(d);
    if (rv != MOOR_OK) {
        moor_errmsg_set(errmsg, "out of memory listing %s", w->dir);
        return rv;
    }
    if (w->segs_len > 1) {
        qsort(w->segs, w->segs_len, sizeof(*w->segs), seg_cmp);
    }
    for (size_t i = 1; i < w->segs_len; i++) {
        if (w->segs[i].seq != w->segs[i - 1].seq + 1) {
            moor_errmsg_set(errmsg,
                            "%s: segment %" PRIu64 " is missing (found %" PRIu64
                            " then %" PRIu64 ") (wal.c:%d)",
                            w->dir, w->segs[i - 1].seq + 1, w->segs[i - 1].seq,
                            w->segs[i].seq, __LINE__);
            return MOOR_ECORRUPT;
        }
    }
    return MOOR_OK;
}

struct open_ctx
{
    struct wal *w;
    struct wal__replayer rp;
    size_t first; /* the first segment read (older ones are below start) */
};

static int open_rec_cb(void *arg, const struct wal__rec *rec)
{
    struct open_ctx *c = arg;
    int rv = wal__replayer_apply(&c->rp, rec);
    if (rv != MOOR_OK) {
        return rv;
    }
    track_record(c->w, rec->type, rec->payload.ptr);
    return MOOR_OK;
}

/* Opens segment file path (read-write when it is the newest) and reads
 * all of it into buf. Returns the fd through *fd_out. */
static int read_segment(struct wal *w, const char *path, bool last,
                        struct moor_buf *buf, int *fd_out, char *errmsg)
{
    const struct wal_fs *fs = &w->fs;
    int fd = fs->open(fs->arg, path, last ? O_RDWR : O_RDONLY, 0);
    if (fd < 0) {
        moor_errmsg_set(errmsg, "open %s: %s", path, strerror(-fd));
        return moor_err_from_errno(-fd);
    }
    uint64_t size;
    size_t got = 0;
    int rv = fs->fsize(fs->arg, fd, &size);
    if (rv < 0) {
        moor_errmsg_set(errmsg, "stat %s: %s", path, strerror(-rv));
        rv = moor_err_from_errno(-rv);
    } else if (size > (uint64_t)1 << 30) {
        moor_errmsg_set(errmsg, "%s: segment of %" PRIu64 " bytes is too big",
                        path, size);
        rv = MOOR_ECORRUPT;
    } else {
        moor_buf_reset(buf);
        rv = moor_buf_reserve(buf, (size_t)size);
        if (rv != MOOR_OK) {
            moor_errmsg_set(errmsg, "out of memory reading %s", path);
        } else {
            rv = wal__pread_all(fs, fd, buf->ptr, (size_t)size, 0, &got);
            if (rv < 0) {
                moor_errmsg_set(errmsg, "read %s: %s", path, strerror(-rv));
                rv = moor_err_from_errno(-rv);
            }
        }
    }
    if (rv != MOOR_OK) {
        fs->close(fs->arg, fd);
        return rv;
    }
    buf->len = got;
    *fd_out = fd;
    return MOOR_OK;
}

/* Reads and replays segment i. Keeps the newest segment open in w->fd.
 * On a torn tail sets *torn to its offset. */
static int replay_segment(struct wal *w, struct open_ctx *c, size_t i,
                          struct moor_buf *buf, uint64_t *torn, char *errmsg)
{
    bool last = i + 1 == w->segs_len;
    char path[4200];
    seg_path(w, path, sizeof(path), w->segs[i].seq, w->segs[i].first_index, "");
    const struct wal_fs *fs = &w->fs;
    int fd = -1;
    int rv = read_segment(w, path, last, buf, &fd, errmsg);
    if (rv != MOOR_OK) {
        return rv;
    }

    struct wal__seg_hdr h;
    const char *why = NULL;
    rv = wal__seg_hdr_decode(buf->ptr, buf->len, &h, &why);
    if (rv == MOOR_OK &&
        (h.seq != w->segs[i].seq || h.first_index != w->segs[i].first_index)) {
        why = "segment header does not match the file name";
        rv = MOOR_ECORRUPT;
    }
    if (rv == MOOR_OK && i > c->first && h.start_crc != w->chain) {
        why = "segment does not continue the crc chain of the one before";
        rv = MOOR_ECORRUPT;
    }
    if (rv != MOOR_OK) {
        moor_errmsg_set(errmsg, "%s: offset 0: %s (wal.c:%d)", path, why,
                        __LINE__);
        goto err;
    }
    /* track_record needs the current segment last in w->segs' view: use a
     * temporary length. */
    size_t segs_len = w->segs_len;
    w->segs_len = i + 1;
    struct wal__scan sc;
    rv = wal__seg_scan(buf->ptr, buf->len, h.start_crc, last, open_rec_cb, c,
                       &sc);
    w->segs_len = segs_len;
    if (rv != MOOR_OK) {
        moor_errmsg_set(errmsg, "%s: offset %" PRIu64 ": %s (wal.c:%d)", path,
                        sc.bad_offset, c->rp.why, __LINE__);
        goto err;
    }
    if (sc.end == WAL__SCAN_CORRUPT) {
        moor_errmsg_set(errmsg, "%s: offset %" PRIu64 ": %s (wal.c:%d)", path,
                        sc.bad_offset, sc.why, __LINE__);
        rv = MOOR_ECORRUPT;
        goto err;
    }
    w->chain = sc.end_crc;
    if (!last) {
        fs->close(fs->arg, fd);
        return MOOR_OK;
    }
    if (sc.end == WAL__SCAN_TORN) {
        *torn = sc.bad_offset;
        MOOR_LOG_WARN("wal", "torn write at the tail of the log",
                      "file=%s offset=%" PRIu64 " reason=\"%s\"", path,
                      sc.bad_offset, sc.why);
    }
    w->fd = fd;
    w->seg_seq = h.seq;
    w->seg_off = sc.end_offset;
    w->seg_cap = MOOR_MAX((uint64_t)buf->len, w->segment_bytes);
    return MOOR_OK;
err:
    fs->close(fs->arg, fd);
    return rv;
}

/* Cuts the newest segment at off (a torn tail) and makes sure it is
 * preallocated to its capacity; the part past off reads as zeros. */
static int prepare_tail(struct wal *w, uint64_t torn, char *errmsg)
{
    const struct wal_fs *fs = &w->fs;
    int rv = 0;
    const char *what = "ftruncate";
    if (torn != 0) {
        rv = fs->ftruncate(fs->arg, w->fd, w->seg_off);
    }
    if (rv == 0) {
        what = "preallocate";
        rv = fs->preallocate(fs->arg, w->fd, w->seg_cap);
    }
    if (rv == 0) {
        what = "fsync";
        rv = fs->fsync(fs->arg, w->fd);
    }
    if (rv < 0) {
        moor_errmsg_set(errmsg, "%s of segment %" PRIu64 " in %s: %s", what,
                        w->seg_seq, w->dir, strerror(-rv));
        return moor_err_from_errno(-rv);
    }
    return MOOR_OK;
}

static int open_existing(struct wal *w, const struct wal_options *opts,
                         struct wal_replay *replay, char *errmsg)
{
    struct open_ctx c = {.w = w};
    wal__replayer_init(&c.rp, opts->start, replay);
    struct moor_buf buf;
    moor_buf_init(&buf);
    uint64_t torn = 0;
    int rv = MOOR_OK;
    /* Segments whose entries are all at or below the caller's snapshot are
     * not read (as etcd opens its WAL at the segment holding the snapshot's
     * index): the snapshot covers their entries, and the next segment opens
     * with the metadata, the newest marker and the hard state written
     * before it. They stay listed, for release. At 1,000,000 keys reading
     * the kept 64 MiB segments cost a restart ~0.1 s. */
    size_t first = 0;
    while (first + 1 < w->segs_len &&
           w->segs[first + 1].first_index <= opts->start.index + 1) {
        first++;
    }
    c.first = first;
    for (size_t i = first; i < w->segs_len && rv == MOOR_OK; i++) {
        rv = replay_segment(w, &c, i, &buf, &torn, errmsg);
    }
    if (first > 0) {
        MOOR_LOG_INFO("wal", "segments below the snapshot not read",
                      "segments=%zu snapshot=%" PRIu64, first,
                      opts->start.index);
    }
    moor_buf_close(&buf);
    if (rv == MOOR_OK) {
        rv = wal__replayer_finish(&c.rp);
        if (rv != MOOR_OK) {
            moor_errmsg_set(errmsg, "%s: %s (wal.c:%d)", w->dir, c.rp.why,
                            __LINE__);
        }
    }
    if (rv == MOOR_OK) {
        rv = prepare_tail(w, torn, errmsg);
    }
    if (rv != MOOR_OK) {
        return rv;
    }
    replay->torn_offset = torn;
    w->w_last_index = c.rp.last_index;
    w->w_last_term = c.rp.last_term;
    return MOOR_OK;
}

/* The caller starts from a snapshot newer than any marker in the log (it
 * crashed after saving a snapshot, before the marker reached the WAL):
 * record the marker now, durably, so later entries after the snapshot's
 * index follow a marker and a later open from an older snapshot is told
 * the log does not cover it. Runs before the writer thread starts. */
static int mark_start(struct wal *w, struct wal_snapshot start,
                      struct wal_replay *replay, char *errmsg)
{
    uint8_t *pl =
        wal__rec_append(&w->writing, WAL__REC_SNAPSHOT, WAL__SNAPSHOT_BYTES);
    if (pl == NULL) {
        return MOOR_ENOMEM;
    }
    wal__snapshot_encode(pl, &start);
    int rv = write_batch(w);
    moor_buf_reset(&w->writing);
    if (rv != MOOR_OK) {
        memcpy(errmsg, w->werrmsg, MOOR_ERRMSG_SIZE);
        return rv;
    }
    replay->snapshot = start;
    MOOR_LOG_INFO("wal", "snapshot marker recorded at open",
                  "term=%" PRIu64 " index=%" PRIu64, start.term, start.index);
    return MOOR_OK;
}

/* A new log: segment 0 opens with the metadata and, when the log starts
 * after a snapshot, its marker. */
static int create_new(struct wal *w, const struct wal_options *opts,
                      struct wal_replay *replay, char *errmsg)
{
    replay->created = true;
    replay->meta = opts->meta;
    w->meta = opts->meta;
    w->w_last_index = opts->start.index;
    w->w_last_term = opts->start.term;
    if (opts->start.index != 0) {
        w->have_snap = true;
        w->snap = opts->start;
        replay->snapshot = opts->start;
    }
    int rv = seg_create(w, 0, true);
    if (rv != MOOR_OK) {
        memcpy(errmsg, w->werrmsg, MOOR_ERRMSG_SIZE);
    }
    return rv;
}

int wal_open(const struct wal_options *opts, struct wal **out,
             struct wal_replay *replay, char *errmsg)
{
    char scratch[MOOR_ERRMSG_SIZE];
    if (errmsg == NULL) {
        errmsg = scratch;
    }
    errmsg[0] = '\0';
    memset(replay, 0, sizeof(*replay));
    uint64_t seg_bytes = opts->segment_bytes == 0 ? WAL_SEGMENT_BYTES_DEFAULT
                                                  : opts->segment_bytes;
    if (opts->dir == NULL ||
        strlen(opts->dir) >= sizeof(((struct wal *)0)->dir) ||
        seg_bytes < WAL_SEGMENT_BYTES_MIN || seg_bytes > ((uint64_t)1 << 30) ||
        seg_bytes % WAL__SECTOR_BYTES != 0) {
        moor_errmsg_set(errmsg, "bad wal options (dir, segment_bytes)");
        return MOOR_EINVAL;
    }
    struct wal *w = moor_calloc(1, sizeof(*w));
    if (w == NULL) {
        return MOOR_ENOMEM;
    }
    snprintf(w->dir, sizeof(w->dir), "%s", opts->dir);
    w->fs = opts->fs != NULL ? *opts->fs : *wal_fs_posix();
    w->segment_bytes = seg_bytes;
    w->pending_bytes_max = opts->pending_bytes_max == 0
                               ? WAL_PENDING_BYTES_DEFAULT
                               : opts->pending_bytes_max;
    w->max_wals = opts->max_wals == 0 ? WAL_MAX_WALS_DEFAULT : opts->max_wals;
    uint64_t room = seg_bytes - WAL__SEG_HDR_BYTES - WAL__SEG_OPENING_BYTES -
                    WAL__REC_HDR_BYTES - WAL__ENTRY_HDR_BYTES - WAL__REC_ALIGN;
    w->entry_bytes_max = (size_t)MOOR_MIN(room, (uint64_t)WAL_ENTRY_BYTES_MAX);
    w->notify_cb = opts->notify_cb;
    w->notify_arg = opts->notify_arg;
    w->fd = -1;
    w->spare_fd = -1;
    moor_buf_init(&w->pending);
    moor_buf_init(&w->writing);

    int rv = list_segments(w, errmsg);
    if (rv != MOOR_OK) {
        goto err;
    }
    rv = w->segs_len == 0 ? create_new(w, opts, replay, errmsg)
                          : open_existing(w, opts, replay, errmsg);
    if (rv == MOOR_OK && opts->start.index > replay->snapshot.index) {
        rv = mark_start(w, opts->start, replay, errmsg);
    }
    if (rv != MOOR_OK) {
        goto err;
    }
    w->last_index = w->w_last_index;
    w->snap_index = MOOR_MAX(replay->snapshot.index, opts->start.index);
    w->durable.last_index = w->w_last_index;
    w->durable.last_term = w->w_last_term;

    /* Logged before the writer starts: it owns segs from then on. */
    MOOR_LOG_INFO("wal", "opened",
                  "dir=%s segments=%zu entries=%zu last_index=%" PRIu64
                  " snapshot=%" PRIu64 " torn_offset=%" PRIu64,
                  w->dir, w->segs_len, replay->entries_len, w->w_last_index,
                  replay->snapshot.index, replay->torn_offset);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mu);
        moor_errmsg_set(errmsg, "cannot start the wal writer thread");
        rv = MOOR_ENOMEM;
        goto err;
    }
    w->thread_started = true;
    *out = w;
    return MOOR_OK;
err:
    wal_replay_close(replay);
    if (w->fd >= 0) {
        w->fs.close(w->fs.arg, w->fd);
    }
    moor_free(w->segs);
    moor_free(w);
    return rv;
}

void wal_close(struct wal *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    if (w->fd >= 0) {
        w->fs.close(w->fs.arg, w->fd);
    }
    if (w->spare_fd >= 0) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", w->dir, WAL_SPARE_NAME);
        w->fs.close(w->fs.arg, w->spare_fd);
        w->fs.unlink(w->fs.arg, path);
    }
    moor_buf_close(&w->pending);
    moor_buf_close(&w->writing);
    moor_free(w->segs);
    moor_free(w);
}

/* ------------------------------------------------------------------------
 * Appending (loop thread)
 * ---------------------------------------------------------------------- */

static int batch_check(const struct wal *w, const struct wal_batch *b,
                       size_t *bytes)
{
    size_t n = 0;
    uint64_t snap = w->snap_index;
    if (b->snapshot != NULL) {
        n += (size_t)wal__rec_size(WAL__SNAPSHOT_BYTES);
        snap = MOOR_MAX(snap, b->snapshot->index);
    }
    if (b->hard_state != NULL) {
        n += (size_t)wal__rec_size(WAL__HARD_STATE_BYTES);
    }
    if (b->entries_len > 0) {
        uint64_t first = b->entries[0].index;
        if (first == 0 || (first > w->last_index + 1 && first != snap + 1)) {
            return MOOR_EINVAL;
        }
    }
    for (size_t i = 0; i < b->entries_len; i++) {
        const struct raft_entry *e = &b->entries[i];
        if (e->index != b->entries[0].index + i) {
            return MOOR_EINVAL;
        }
        size_t dlen = e->data != NULL ? e->data->len : 0;
        if (dlen > w->entry_bytes_max) {
            return MOOR_ETOOBIG;
        }
        n += (size_t)wal__rec_size(WAL__ENTRY_HDR_BYTES + dlen);
    }
    *bytes = n;
    return MOOR_OK;
}

/* Encodes b's records into w->pending, which has room (mu held). */
static void batch_encode(struct wal *w, const struct wal_batch *b)
{
    struct moor_buf *p = &w->pending;
    if (b->snapshot != NULL) {
        wal__snapshot_encode(
            wal__rec_append(p, WAL__REC_SNAPSHOT, WAL__SNAPSHOT_BYTES),
            b->snapshot);
    }
    for (size_t i = 0; i < b->entries_len; i++) {
        const struct raft_entry *e = &b->entries[i];
        size_t dlen = e->data != NULL ? e->data->len : 0;
        uint8_t *pl =
            wal__rec_append(p, WAL__REC_ENTRY, WAL__ENTRY_HDR_BYTES + dlen);
        wal__entry_hdr_encode(pl, e);
        if (dlen > 0) {
            memcpy(pl + WAL__ENTRY_HDR_BYTES, e->data->data, dlen);
        }
    }
    if (b->hard_state != NULL) {
        wal__hard_state_encode(
            wal__rec_append(p, WAL__REC_HARD_STATE, WAL__HARD_STATE_BYTES),
            b->hard_state);
    }
}

int wal_append(struct wal *w, const struct wal_batch *batch, uint64_t *seq)
{
    size_t bytes = 0;
    int rv = batch_check(w, batch, &bytes);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (bytes > w->pending_bytes_max) {
        return MOOR_ETOOBIG;
    }
    pthread_mutex_lock(&w->mu);
    if (w->durable.err != MOOR_OK) {
        pthread_mutex_unlock(&w->mu);
        return MOOR_EPOISONED;
    }
    if (w->pending.len + bytes > w->pending_bytes_max) {
        pthread_mutex_unlock(&w->mu);
        return MOOR_EAGAIN;
    }
    /* Reserve first so encoding cannot fail half-way. */
    if (moor_buf_reserve(&w->pending, bytes) != MOOR_OK) {
        pthread_mutex_unlock(&w->mu);
        return MOOR_ENOMEM;
    }
    batch_encode(w, batch);
    w->pending_seq = ++w->next_seq;
    w->pending_release = MOOR_MAX(w->pending_release, batch->release_index);
    pthread_mutex_unlock(&w->mu);
    /* Signalled after the unlock: a writer woken while mu is still held
     * would wake only to block on mu and be woken a second time (glibc's
     * condition variables do not hand the mutex over), which costs about
     * as much as the wake itself on an append that waits for its sync. */
    pthread_cond_signal(&w->cond);

    if (batch->snapshot != NULL) {
        w->snap_index = MOOR_MAX(w->snap_index, batch->snapshot->index);
    }
    if (batch->entries_len > 0) {
        w->last_index = batch->entries[batch->entries_len - 1].index;
    }
    if (seq != NULL) {
        *seq = w->next_seq;
    }
    return MOOR_OK;
}

int wal_collect(struct wal *w, struct wal_durable *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->durable;
    if (w->durable.err != MOOR_OK) {
        memcpy(w->loop_errmsg, w->errmsg, sizeof(w->loop_errmsg));
    }
    pthread_mutex_unlock(&w->mu);
    return out->err;
}

size_t wal_entry_bytes_max(const struct wal *w)
{
    return w->entry_bytes_max;
}

const char *wal_errmsg(struct wal *w)
{
    return w->loop_errmsg;
}
