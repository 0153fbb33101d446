/*
 * snap.c: the member's snapshots — every --snapshot-count applied entries
 * or --snapshot-bytes of their payload (bytes_due() below), and on demand
 * for Maintenance.Snapshot backups — and loading the newest one at start.
 *
 * A snapshot job (DESIGN.md §2): kv's dump produces the state at one
 * revision in bounded chunks on the loop thread (writes keep flowing
 * between chunks); compression, hashing and file I/O of each chunk run on
 * a libuv worker thread through snapshot/'s writer. One chunk is in flight
 * at a time: the loop produces chunk k+1 only after the worker has taken
 * chunk k, so memory stays at one chunk. Worker threads never touch kv.
 *
 * When a periodic snapshot is durable, raft drops its log below the
 * snapshot's index but for a tail bounded by entries and bytes (none on a
 * member alone; the pages freed go back to the system), a WAL snapshot
 * marker is written that lets the WAL release segments wholly below it,
 * and old snapshot files are pruned (--max-snapshots). A backup is written
 * to <snap>/backup/ instead and streamed to the client in 32 KiB messages;
 * its last 32 bytes are the SHA-256 of the rest, the check etcdctl's
 * `snapshot save` makes.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server_int.h"
#include "snapshot/snapshot.h"

#define DUMP_CHUNK_BYTES (1u << 20)
#define BACKUP_MSG_BYTES (32u * 1024u)

enum job_step { STEP_OPEN, STEP_APPEND, STEP_FINISH };

struct srv_snap_job
{
    struct srv_node *n;
    uv_work_t work;
    struct kv_dump dump;
    bool dump_open;
    bool dump_done;
    struct moor_buf chunk;
    struct snap_writer *writer;
    struct snap_meta meta;
    enum job_step step;
    int rv;
    char dir[4200];
    char path[SNAP_PATH_MAX];
    char errmsg[MOOR_ERRMSG_SIZE];
    /* A backup streams to call (NULL once its client left); a periodic
     * snapshot has backup false. */
    bool backup;
    struct rpc_call *call;
    struct snap_sender *sender;
    uint64_t remaining;
    /* srv_snap_install replaced the keyspace under this job's dump. */
    bool canceled;
    /* n->snap_applied_bytes up to meta.index, and the bytes dumped so
     * far (periodic snapshots). */
    uint64_t applied_bytes;
    uint64_t raw_bytes;
    /* Every running job, on n->snap_job's list (periodic and backups):
     * an install must close their dumps of the old keyspace. */
    struct srv_snap_job *next;
};

static void job_next(struct srv_snap_job *j);

/* Worker thread: open, append, or finish, on snapshot/ only. */
static void work_cb(uv_work_t *w)
{
    struct srv_snap_job *j = MOOR_CONTAINER_OF(w, struct srv_snap_job, work);
    switch (j->step) {
    case STEP_OPEN:
        j->rv = snap_writer_open(&j->writer, j->dir, &j->meta, j->errmsg);
        break;
    case STEP_APPEND:
        j->rv = snap_writer_append(j->writer, j->chunk.ptr, j->chunk.len);
        if (j->rv != MOOR_OK) {
            moor_errmsg_set(j->errmsg, "%s", snap_writer_errmsg(j->writer));
        }
        break;
    case STEP_FINISH:
        j->rv = snap_writer_finish(j->writer, j->path);
        if (j->rv != MOOR_OK) {
            moor_errmsg_set(j->errmsg, "%s", snap_writer_errmsg(j->writer));
        }
        break;
    }
}

static void job_free(struct srv_snap_job *j)
{
    if (j->dump_open) {
        kv_dump_close(&j->dump);
    }
    if (j->writer != NULL) {
        snap_writer_close(j->writer);
    }
    if (j->sender != NULL) {
        snap_sender_close(j->sender);
    }
    moor_buf_close(&j->chunk);
    if (j->meta.membership != NULL) {
        moor_bytes_unref(j->meta.membership);
    }
    struct srv_snap_job **pp = &j->n->snap_job;
    while (*pp != NULL && *pp != j) {
        pp = &(*pp)->next;
    }
    if (*pp == j) {
        *pp = j->next;
    }
    moor_free(j);
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct srv_snap_job *j = MOOR_CONTAINER_OF(w, struct srv_snap_job, work);
    if (status != 0 && j->rv == MOOR_OK) {
        j->rv = MOOR_ECANCELED;
    }
    job_next(j);
}

static void queue(struct srv_snap_job *j, enum job_step step)
{
    j->step = step;
    int rc = uv_queue_work(j->n->loop, &j->work, work_cb, after_work_cb);
    MOOR_ASSERT(rc == 0); /* only fails for a NULL work callback */
}

/* ------------------------------------------------------------------------
 * Backups: streaming the finished file to the client
 * ---------------------------------------------------------------------- */
/* Forgets the backup's call (its done_cb then finds nothing). */
static void backup_detach(struct srv_snap_job *j)
{
    if (j->call != NULL) {
        rpc_call_set_user(j->call, NULL);
        j->call = NULL;
    }
}

static void backup_pump(struct srv_snap_job *j)
{
    struct srv_node *n = j->n;
    uint8_t buf[BACKUP_MSG_BYTES];
    /* j->chunk holds the packed message the call's queue refused last
     * time (MOOR_EAGAIN): it goes first when writable_cb brings us back. */
    while (j->call != NULL) {
        if (j->chunk.len == 0) {
            size_t got = 0;
            int rv = snap_sender_read(j->sender, buf, sizeof(buf), &got);
            if (rv != MOOR_OK) {
                srv_call_fail(j->call, rv);
                backup_detach(j);
                break;
            }
            if (got == 0) {
                rpc_call_finish(j->call, RPC_OK, NULL);
                backup_detach(j);
                break;
            }
            j->remaining -= MOOR_MIN((uint64_t)got, j->remaining);
            Etcdserverpb__ResponseHeader h =
                ETCDSERVERPB__RESPONSE_HEADER__INIT;
            srv_header_fill(n, &h, (int64_t)j->meta.revision);
            Etcdserverpb__SnapshotResponse r =
                ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
            r.header = &h;
            r.remaining_bytes = j->remaining;
            r.blob.data = buf;
            r.blob.len = got;
            if (moor_pb_pack(&r.base, &j->chunk) != MOOR_OK) {
                srv_call_fail(j->call, MOOR_ENOMEM);
                backup_detach(j);
                break;
            }
        }
        int rv =
            rpc_call_send(j->call, moor_slice_make(j->chunk.ptr, j->chunk.len));
        if (rv == MOOR_EAGAIN) {
            return; /* writable_cb resumes */
        }
        moor_buf_reset(&j->chunk);
        if (rv != MOOR_OK) {
            rpc_call_cancel(j->call);
            backup_detach(j);
        }
    }
    if (j->call == NULL) {
        unlink(j->path);
        job_free(j);
    }
}

static void backup_writable_cb(struct rpc_call *call, void *arg)
{
    (void)arg;
    struct srv_snap_job *j = rpc_call_user(call);
    if (j != NULL && j->sender != NULL) {
        backup_pump(j);
    }
}

static void backup_done_cb(struct rpc_call *call, int status, void *arg)
{
    (void)status;
    (void)arg;
    struct srv_snap_job *j = rpc_call_user(call);
    if (j == NULL) {
        return;
    }
    rpc_call_set_user(call, NULL);
    j->call = NULL;
    /* The client left: a job still writing finishes and frees itself; one
     * streaming is freed now. */
    if (j->sender != NULL) {
        unlink(j->path);
        job_free(j);
    }
}

/* ------------------------------------------------------------------------
 * The job's steps, on the loop thread
 * ---------------------------------------------------------------------- */
/* With --snapshot-bytes, a snapshot is also due once the entries applied
 * since the last one hold bytes_due() payload bytes: max(--snapshot-bytes,
 * the last snapshot's raw size / STATE_DIV). The floor bounds the log
 * (memory) and the WAL a restart replays while the keyspace is small; the
 * share keeps the cost of snapshots proportional to the writes as the
 * keyspace grows (at most STATE_DIV bytes dumped per byte written), and a
 * restart replays at most a STATE_DIV-th of what it loads (replaying costs
 * ~4x more per byte than loading a snapshot). */
#define STATE_DIV 4u

/* Entries kept in the log below a new snapshot, for followers a little
 * behind (etcd keeps 5000): at most KEEP_ENTRIES entries and, with
 * --snapshot-bytes, at most bytes_due() / KEEP_DIV payload bytes, so that
 * the log's memory is bounded by bytes too (5000 Txns of 128 puts of 256 B
 * values are 190 MB): it holds at most 1.25 bytes_due() then. A follower
 * further behind gets the snapshot. */
#define KEEP_ENTRIES 5000u
#define KEEP_DIV 4u

/* An idle member (no entry applied for IDLE_MS) also snapshots once the
 * entries since the last snapshot hold a quarter of bytes_due(): after a
 * burst of writes (a bulk load) the log's memory and the WAL a restart
 * would replay go while nothing else runs, instead of staying until the
 * next burst. At most one such snapshot per burst, and it dumps at most 16
 * bytes per byte written (4 per byte of bytes_due()). */
#define IDLE_MS 500u
#define IDLE_DIV 4u

/* 0 with --snapshot-bytes 0 (by --snapshot-count only). */
static uint64_t bytes_due(const struct srv_node *n)
{
    if (n->cfg->snapshot_bytes == 0) {
        return 0;
    }
    return MOOR_MAX(n->cfg->snapshot_bytes, n->snap_raw_bytes / STATE_DIV);
}

/* The first index to keep when the log is compacted below a snapshot at
 * index: a tail of at most KEEP_ENTRIES entries and keep_bytes payload
 * bytes (0: by count only) ending at index; *bytes gets the tail's. */
static uint64_t keep_from(struct srv_node *n, uint64_t index,
                          uint64_t keep_bytes, uint64_t *bytes)
{
    uint64_t first = raft_node_first_index(n->raft);
    uint64_t from = index + 1;
    *bytes = 0;
    while (from > first && index + 1 - from < KEEP_ENTRIES) {
        const struct raft_entry *e = raft_node_entry(n->raft, from - 1);
        uint64_t len = e != NULL && e->data != NULL ? e->data->len : 0;
        if (keep_bytes != 0 && *bytes + len > keep_bytes) {
            break;
        }
        *bytes += len;
        from--;
    }
    return from;
}

static void periodic_done(struct srv_snap_job *j)
{
    struct srv_node *n = j->n;
    uint64_t index = j->meta.index;
    n->snap_raw_bytes = j->raw_bytes;
    uint64_t kept_bytes = 0;
    /* A member alone in its cluster has no follower to keep a tail for
     * (one added later starts empty: it needs the snapshot anyway). */
    bool alone = raft_node_conf(n->raft)->n <= 1;
    uint64_t compact_to =
        alone ? index
              : keep_from(n, index, bytes_due(n) / KEEP_DIV, &kept_bytes) - 1;
    if (compact_to > raft_node_snapshot(n->raft)->index &&
        compact_to <= raft_node_applied_index(n->raft)) {
        raft_node_compact(n->raft, compact_to, NULL);
        /* The entries' buffers sat between kv's records in the heap:
         * give their pages back, or RSS keeps them. */
        moor_alloc_trim();
    }
    struct wal_snapshot ws = {j->meta.term, index};
    struct wal_batch b;
    memset(&b, 0, sizeof(b));
    b.snapshot = &ws;
    b.release_index = index;
    uint64_t seq;
    int rv = wal_append(n->wal, &b, &seq);
    if (rv != MOOR_OK && rv != MOOR_EAGAIN) {
        MOOR_LOG_ERROR("snap", "cannot write the WAL snapshot marker", "err=%s",
                       moor_errname(rv));
    }
    n->snap_index = index;
    n->snap_bytes_at_snap = j->applied_bytes;
    size_t removed = 0;
    snap_prune(n->datadir.snap_dir, n->cfg->max_snapshots, &removed);
    struct stat st;
    uint64_t size = stat(j->path, &st) == 0 ? (uint64_t)st.st_size : 0;
    uint64_t took_ms =
        (moor_clock_realtime_ns() - j->meta.created_unix_ns) / 1000000u;
    MOOR_LOG_INFO("snap", "snapshot saved",
                  "file=%s index=%llu revision=%llu keys=%llu bytes=%llu "
                  "raw_bytes=%llu took_ms=%llu pruned=%zu log_first=%llu "
                  "kept_bytes=%llu",
                  j->path, (unsigned long long)index,
                  (unsigned long long)j->meta.revision,
                  (unsigned long long)j->meta.key_count,
                  (unsigned long long)size, (unsigned long long)j->raw_bytes,
                  (unsigned long long)took_ms, removed,
                  (unsigned long long)raft_node_first_index(n->raft),
                  (unsigned long long)kept_bytes);
}

static void job_next(struct srv_snap_job *j)
{
    struct srv_node *n = j->n;
    if (n->stopping && j->rv == MOOR_OK && j->step != STEP_FINISH) {
        j->rv = MOOR_ESHUTDOWN; /* the temporary file is removed */
        moor_errmsg_set(j->errmsg, "the member is stopping");
    }
    if (j->canceled && j->rv == MOOR_OK) {
        j->rv = MOOR_ECANCELED;
        moor_errmsg_set(j->errmsg,
                        "a snapshot from the leader replaced the keyspace");
    }
    if (j->rv != MOOR_OK) {
        MOOR_LOG_ERROR("snap", "snapshot failed", "err=%s detail=\"%s\"",
                       moor_errname(j->rv), j->errmsg);
        if (!j->backup) {
            /* Not again at once (a full disk would make every apply pass
             * dump the keyspace and fail): after a delay doubling from
             * one second to a minute. */
            uint64_t now = uv_now(n->loop);
            n->snap_backoff_ms =
                n->snap_backoff_ms == 0
                    ? 1000
                    : MOOR_MIN(2 * n->snap_backoff_ms, (uint64_t)60000);
            n->snap_retry_ms = now + n->snap_backoff_ms;
            MOOR_LOG_WARN("snap", "retrying the snapshot later", "in_ms=%llu",
                          (unsigned long long)n->snap_backoff_ms);
        }
        if (j->call != NULL) {
            srv_call_fail(j->call, j->rv);
            backup_detach(j);
        }
        job_free(j);
        return;
    }
    if (j->step == STEP_FINISH) {
        kv_dump_close(&j->dump);
        j->dump_open = false;
        snap_writer_close(j->writer);
        j->writer = NULL;
        if (j->backup && j->call == NULL) {
            unlink(j->path); /* the client of this backup left */
            job_free(j);
            return;
        }
        if (!j->backup) {
            n->snap_backoff_ms = 0;
            periodic_done(j);
            job_free(j);
            return;
        }
        uint64_t size = 0;
        int rv = snap_sender_open(&j->sender, j->path, &size, j->errmsg);
        if (rv != MOOR_OK) {
            j->rv = rv;
            job_next(j);
            return;
        }
        j->remaining = size;
        moor_buf_reset(&j->chunk); /* from now on: the message to send */
        backup_pump(j);
        return;
    }
    if (j->dump_done) {
        queue(j, STEP_FINISH);
        return;
    }
    /* Produce the next chunk here, on the loop thread, while no worker
     * holds the buffer. */
    moor_buf_reset(&j->chunk);
    bool done = false;
    int rv = kv_dump_next(&j->dump, &j->chunk, DUMP_CHUNK_BYTES, &done);
    if (rv != MOOR_OK) {
        j->rv = rv;
        moor_errmsg_set(j->errmsg, "kv dump: %s", moor_strerror(rv));
        job_next(j);
        return;
    }
    j->dump_done = done;
    j->raw_bytes += j->chunk.len;
    queue(j, STEP_APPEND);
}

/* Starts a snapshot of the current state (a backup for call, or a periodic
 * one when call is NULL). */
int srv_snap_start(struct srv_node *n, struct rpc_call *call)
{
    struct srv_snap_job *j = moor_calloc(1, sizeof(*j));
    if (j == NULL) {
        return MOOR_ENOMEM;
    }
    j->n = n;
    moor_buf_init(&j->chunk);
    int rv = kv_dump_open(n->kv, &j->dump);
    if (rv != MOOR_OK) {
        moor_free(j);
        return rv;
    }
    j->dump_open = true;
    uint64_t index = kv_store_applied_index(n->kv);
    j->meta.index = index;
    j->meta.term = raft_node_term_at(n->raft, index);
    j->meta.applied_index = index;
    j->meta.revision = (uint64_t)kv_store_revision(n->kv);
    j->meta.compact_revision = (uint64_t)kv_store_compact_revision(n->kv);
    j->meta.key_count = kv_store_live_count(n->kv);
    j->meta.lease_count = kv_lease_count(n->kv);
    j->meta.created_unix_ns = moor_clock_realtime_ns();
    j->applied_bytes = n->snap_applied_bytes;
    /* The member table at the same applied index (members.c). */
    rv = srv_members_encode(&n->members, n->alarms, n->n_alarms,
                            &j->meta.membership);
    if (rv != MOOR_OK) {
        job_free(j);
        return rv;
    }
    if (call != NULL) {
        snprintf(j->dir, sizeof(j->dir), "%s/backup", n->datadir.snap_dir);
        /* A backup dir from an earlier run may hold a half-written file. */
        if (mkdir(j->dir, 0700) != 0 && errno != EEXIST) {
            rv = moor_err_from_errno(errno);
            job_free(j);
            return rv;
        }
        snap_prune(j->dir, 1, NULL);
        j->backup = true;
        j->call = call;
        rpc_call_set_user(call, j);
    } else {
        snprintf(j->dir, sizeof(j->dir), "%s", n->datadir.snap_dir);
    }
    j->next = n->snap_job;
    n->snap_job = j;
    queue(j, STEP_OPEN);
    return MOOR_OK;
}

/* Adds the payload bytes of the entries applied since the last call to
 * n->snap_applied_bytes. Each entry is counted once, while raft still
 * holds it (the log is compacted only below a snapshot, at or below
 * applied); entries a snapshot from the leader replaced are not counted. */
static void count_applied(struct srv_node *n)
{
    uint64_t applied = kv_store_applied_index(n->kv);
    uint64_t first = raft_node_first_index(n->raft);
    uint64_t i = MOOR_MAX(n->snap_counted_index + 1, first);
    for (; i <= applied; i++) {
        const struct raft_entry *e = raft_node_entry(n->raft, i);
        if (e == NULL) {
            break;
        }
        if (e->data != NULL) {
            n->snap_applied_bytes += e->data->len;
        }
    }
    n->snap_counted_index = MOOR_MAX(n->snap_counted_index, applied);
}

/* Called after each apply pass and tick: a snapshot every --snapshot-count
 * entries or, with --snapshot-bytes, every max(--snapshot-bytes, last
 * snapshot / STATE_DIV) bytes of entry payload, whichever comes first, or a
 * quarter of that once idle (IDLE_MS). The byte rule
 * is moor's own: with Txns of many puts the entry count stays far below
 * --snapshot-count while the log (held in memory until a snapshot lets
 * raft drop it) and the WAL a restart replays grow without bound. */
void srv_snap_maybe(struct srv_node *n)
{
    if (n->stopping) {
        return;
    }
    count_applied(n);
    for (struct srv_snap_job *j = n->snap_job; j != NULL; j = j->next) {
        if (!j->backup) {
            return; /* one periodic snapshot at a time */
        }
    }
    uint64_t applied = kv_store_applied_index(n->kv);
    uint64_t now = uv_now(n->loop);
    if (applied != n->snap_seen_index) {
        n->snap_seen_index = applied;
        n->snap_seen_ms = now;
    }
    uint64_t bytes = n->snap_applied_bytes - n->snap_bytes_at_snap;
    uint64_t due_bytes = bytes_due(n);
    bool idle = now - n->snap_seen_ms >= IDLE_MS;
    bool due =
        applied - n->snap_index >= n->cfg->snapshot_count ||
        (due_bytes != 0 && applied > n->snap_index &&
         (bytes >= due_bytes || (idle && bytes >= due_bytes / IDLE_DIV)));
    if (!due || now < n->snap_retry_ms) {
        return;
    }
    int rv = srv_snap_start(n, NULL);
    if (rv != MOOR_OK) {
        MOOR_LOG_ERROR("snap", "cannot start a snapshot", "err=%s",
                       moor_errname(rv));
    }
}

/* ------------------------------------------------------------------------
 * Maintenance.Snapshot
 * ---------------------------------------------------------------------- */
static void on_snapshot(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    (void)msg;
    struct srv_node *n = arg;
    int rv = srv_snap_start(n, call);
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
    }
}

int srv_snap_register(struct srv_node *n, struct rpc_server *srv)
{
    struct rpc_method_ops ops;
    memset(&ops, 0, sizeof(ops));
    ops.message_cb = on_snapshot;
    ops.writable_cb = backup_writable_cb;
    ops.done_cb = backup_done_cb;
    return rpc_server_add_method(srv, "/etcdserverpb.Maintenance/Snapshot",
                                 &ops, n);
}

/* ------------------------------------------------------------------------
 * Start: the newest valid snapshot into kv
 * ---------------------------------------------------------------------- */
static int consume_cb(void *arg, const uint8_t *data, size_t len)
{
    return kv_load_feed(arg, data, len);
}

/* A new empty store with the member's options (returned owned). */
static int new_store(struct srv_node *n, struct kv_store **out)
{
    struct kv_options ko;
    kv_options_default(&ko);
    ko.max_txn_ops = n->cfg->max_txn_ops;
    /* As node.c: etcd's minimum lease TTL, ceil(1.5 * election timeout). */
    ko.lease_min_ttl_s = (int64_t)((3u * n->cfg->election_ms + 1999u) / 2000u);
    int rv = kv_store_new(&ko, out);
    if (rv != MOOR_OK) {
        moor_errmsg_set(n->errmsg, "creating the keyspace: out of memory");
    }
    return rv;
}

/* Loads the snapshot file at path into kv (empty). snap_load verifies the
 * whole file (SHA-256, the lz4 frame) before a byte reaches kv; kv's own
 * checks fail as it loads, leaving kv to be freed. Fills *meta
 * (snap_meta_close). */
static int load_file(struct srv_node *n, struct kv_store *kv, const char *path,
                     struct snap_meta *meta)
{
    struct kv_load l;
    int rv = kv_load_open(kv, &l);
    if (rv != MOOR_OK) {
        return rv;
    }
    rv = snap_load_once(path, meta, consume_cb, &l, n->errmsg);
    if (rv == MOOR_OK) {
        rv = kv_load_finish(&l);
    }
    if (rv != MOOR_OK && l.errmsg[0] != '\0') {
        moor_errmsg_set(n->errmsg, "%s: %s", path, l.errmsg);
    }
    kv_load_close(&l);
    return rv;
}

/* The newest snapshot that verifies, as snap_open_newest chooses it (a
 * damaged newer one is logged and skipped), but each file is read and
 * checked once, as it loads: checking every candidate first and then
 * loading the chosen one read, hashed and decoded it twice. */
int srv_snap_load(struct srv_node *n, struct srv_snap_pos *out)
{
    /* Temporaries a crash left behind (a snapshot or backup being written,
     * one being received), removed now, before anything writes there:
     * later, one may belong to a writer or receiver at work. */
    char backup[SNAP_PATH_MAX + 16];
    snprintf(backup, sizeof(backup), "%s/backup", n->datadir.snap_dir);
    snap_clean_temps(n->datadir.snap_dir, NULL);
    snap_clean_temps(backup, NULL);
    struct snap_file *files = NULL;
    size_t n_files = 0;
    int rv = snap_list(n->datadir.snap_dir, &files, &n_files);
    if (rv == MOOR_ENOENT || (rv == MOOR_OK && n_files == 0)) {
        moor_free(files);
        return MOOR_OK; /* no snapshot yet: start from an empty state */
    }
    if (rv != MOOR_OK) {
        moor_errmsg_set(n->errmsg, "cannot list %s: %s", n->datadir.snap_dir,
                        moor_strerror(rv));
        return rv;
    }
    char first_err[MOOR_ERRMSG_SIZE] = "";
    char path[SNAP_PATH_MAX] = "";
    struct snap_meta meta;
    memset(&meta, 0, sizeof(meta));
    size_t skipped = 0;
    for (size_t i = 0; i < n_files; i++) {
        char name[SNAP_NAME_BYTES + 1];
        snap_name(name, files[i].term, files[i].index);
        snprintf(path, sizeof(path), "%s/%s", n->datadir.snap_dir, name);
        memset(&meta, 0, sizeof(meta));
        rv = load_file(n, n->kv, path, &meta);
        if (rv == MOOR_OK &&
            (meta.term != files[i].term || meta.index != files[i].index)) {
            moor_errmsg_set(n->errmsg, "%s: header says term %llu index %llu",
                            path, (unsigned long long)meta.term,
                            (unsigned long long)meta.index);
            rv = MOOR_ECORRUPT;
        }
        if (rv != MOOR_ECORRUPT) {
            break; /* loaded, or an error that is not a bad file */
        }
        snap_meta_close(&meta);
        MOOR_LOG_ERROR("snapshot", "snapshot does not verify, skipped",
                       "file=%s error=\"%s\"", path, n->errmsg);
        if (first_err[0] == '\0') {
            memcpy(first_err, n->errmsg, sizeof(first_err));
        }
        skipped++;
        /* kv may hold part of that file: the next one starts afresh. */
        struct kv_store *kv = NULL;
        rv = new_store(n, &kv);
        if (rv != MOOR_OK) {
            break;
        }
        kv_store_free(n->kv);
        n->kv = kv;
        rv = MOOR_ECORRUPT;
    }
    moor_free(files);
    if (rv == MOOR_ECORRUPT) {
        moor_errmsg_set(n->errmsg, "no snapshot in %s verifies; newest: %s",
                        n->datadir.snap_dir, first_err);
    }
    if (rv == MOOR_OK) {
        rv = srv_members_restore(n, meta.membership);
    }
    if (rv != MOOR_OK) {
        snap_meta_close(&meta);
        return rv;
    }
    out->index = meta.index;
    out->term = meta.term;
    n->snap_index = meta.index;
    n->snap_counted_index = meta.index;
    n->snap_raw_bytes = meta.raw_bytes;
    MOOR_LOG_INFO("snap", "loaded snapshot",
                  "file=%s index=%llu revision=%llu keys=%llu skipped=%zu",
                  path, (unsigned long long)meta.index,
                  (unsigned long long)meta.revision,
                  (unsigned long long)meta.key_count, skipped);
    snap_meta_close(&meta);
    return MOOR_OK;
}

/* Loads the snapshot file at path into a new store (returned owned). */
static int install_load(struct srv_node *n, const char *path,
                        struct kv_store **out, struct snap_meta *meta)
{
    struct kv_store *kv = NULL;
    int rv = new_store(n, &kv);
    if (rv != MOOR_OK) {
        return rv;
    }
    rv = load_file(n, kv, path, meta);
    if (rv != MOOR_OK) {
        kv_store_free(kv);
        return rv;
    }
    *out = kv;
    return MOOR_OK;
}

void srv_snap_install(struct srv_node *n, const struct raft_snapshot *s)
{
    /* peer_snap.c verified and renamed this file before raft saw the
     * message. Loading runs on the loop thread, like etcd's apply of a
     * snapshot: nothing else may apply meanwhile. */
    char name[SNAP_NAME_BYTES + 1];
    snap_name(name, s->term, s->index);
    char path[SNAP_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", n->datadir.snap_dir, name);
    uint64_t t0 = moor_clock_ns();
    struct snap_meta meta;
    memset(&meta, 0, sizeof(meta));
    struct kv_store *kv = NULL;
    int rv = install_load(n, path, &kv, &meta);
    if (rv != MOOR_OK) {
        /* Raft already moved past its log to this snapshot: without the
         * state the member cannot go on. A restart loads the newest valid
         * snapshot and asks the leader again. */
        moor_fatal("snap", "cannot install the snapshot from the leader",
                   "file=%s err=%s detail=\"%s\"", path, moor_errname(rv),
                   n->errmsg);
    }
    /* Jobs reading the old keyspace stop (their dumps close now). */
    for (struct srv_snap_job *j = n->snap_job; j != NULL; j = j->next) {
        if (j->dump_open) {
            kv_dump_close(&j->dump);
            j->dump_open = false;
            j->canceled = !j->dump_done;
        }
    }
    struct kv_store *old = n->kv;
    n->kv = kv;
    srv_watch_rehome(n, old);
    kv_store_free(old);
    n->snap_index = s->index;
    n->snap_counted_index = s->index;
    n->snap_bytes_at_snap = n->snap_applied_bytes;
    n->snap_raw_bytes = meta.raw_bytes;
    /* The membership block (members.c). */
    if (meta.membership != NULL &&
        srv_members_restore(n, meta.membership) != MOOR_OK) {
        MOOR_LOG_ERROR("snap", "cannot restore the snapshot's membership",
                       "file=%s", path);
    }
    MOOR_LOG_INFO("snap", "installed the snapshot from the leader",
                  "file=%s index=%llu revision=%llu keys=%llu ms=%llu", path,
                  (unsigned long long)s->index,
                  (unsigned long long)meta.revision,
                  (unsigned long long)meta.key_count,
                  (unsigned long long)((moor_clock_ns() - t0) / 1000000u));
    snap_meta_close(&meta);
    snap_prune(n->datadir.snap_dir, n->cfg->max_snapshots, NULL);
}
