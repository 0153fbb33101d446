/*
 * snap.c: the member's snapshots — every --snapshot-count applied entries,
 * and on demand for Maintenance.Snapshot backups — and loading the newest
 * one at start.
 *
 * A snapshot job (DESIGN.md §2): kv's dump produces the state at one
 * revision in bounded chunks on the loop thread (writes keep flowing
 * between chunks); compression, hashing and file I/O of each chunk run on
 * a libuv worker thread through snapshot/'s writer. One chunk is in flight
 * at a time: the loop produces chunk k+1 only after the worker has taken
 * chunk k, so memory stays at one chunk. Worker threads never touch kv.
 *
 * When a periodic snapshot is durable, raft drops its log up to the
 * snapshot's index, a WAL snapshot marker is written that lets the WAL
 * release segments wholly below it, and old snapshot files are pruned
 * (--max-snapshots). A backup is written to <snap>/backup/ instead and
 * streamed to the client in 32 KiB messages; its last 32 bytes are the
 * SHA-256 of the rest, the check etcdctl's `snapshot save` makes.
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
static void periodic_done(struct srv_snap_job *j)
{
    struct srv_node *n = j->n;
    uint64_t index = j->meta.index;
    /* Keep the log's recent tail for followers that are a little behind
     * (etcd keeps 5000 entries); the snapshot covers the rest. */
    uint64_t keep = 5000;
    uint64_t compact_to = index > keep ? index - keep : 0;
    if (compact_to > raft_node_snapshot(n->raft)->index &&
        compact_to <= raft_node_applied_index(n->raft)) {
        raft_node_compact(n->raft, compact_to, NULL);
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
    size_t removed = 0;
    snap_prune(n->datadir.snap_dir, n->cfg->max_snapshots, &removed);
    struct stat st;
    uint64_t size = stat(j->path, &st) == 0 ? (uint64_t)st.st_size : 0;
    uint64_t took_ms =
        (moor_clock_realtime_ns() - j->meta.created_unix_ns) / 1000000u;
    MOOR_LOG_INFO("snap", "snapshot saved",
                  "file=%s index=%llu revision=%llu keys=%llu bytes=%llu "
                  "took_ms=%llu pruned=%zu",
                  j->path, (unsigned long long)index,
                  (unsigned long long)j->meta.revision,
                  (unsigned long long)j->meta.key_count,
                  (unsigned long long)size, (unsigned long long)took_ms,
                  removed);
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

/* Called after each apply pass: a snapshot every --snapshot-count entries. */
void srv_snap_maybe(struct srv_node *n)
{
    if (n->stopping) {
        return;
    }
    for (struct srv_snap_job *j = n->snap_job; j != NULL; j = j->next) {
        if (!j->backup) {
            return; /* one periodic snapshot at a time */
        }
    }
    uint64_t applied = kv_store_applied_index(n->kv);
    if (applied - n->snap_index < n->cfg->snapshot_count ||
        uv_now(n->loop) < n->snap_retry_ms) {
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

int srv_snap_load(struct srv_node *n, struct srv_snap_pos *out)
{
    struct snap_meta meta;
    memset(&meta, 0, sizeof(meta));
    char path[SNAP_PATH_MAX];
    size_t skipped = 0;
    int rv =
        snap_open_newest(n->datadir.snap_dir, &meta, path, &skipped, n->errmsg);
    if (rv == MOOR_ENOENT) {
        return MOOR_OK; /* no snapshot yet: start from an empty state */
    }
    if (rv != MOOR_OK) {
        return rv;
    }
    snap_meta_close(&meta);
    struct kv_load l;
    rv = kv_load_open(n->kv, &l);
    if (rv == MOOR_OK) {
        rv = snap_load(path, &meta, consume_cb, &l, n->errmsg);
        if (rv == MOOR_OK) {
            rv = kv_load_finish(&l);
        }
        if (rv != MOOR_OK && l.errmsg[0] != '\0') {
            moor_errmsg_set(n->errmsg, "%s: %s", path, l.errmsg);
        }
        kv_load_close(&l);
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
    struct kv_options ko;
    kv_options_default(&ko);
    ko.max_txn_ops = n->cfg->max_txn_ops;
    /* As node.c: etcd's minimum lease TTL, ceil(1.5 * election timeout). */
    ko.lease_min_ttl_s = (int64_t)((3u * n->cfg->election_ms + 1999u) / 2000u);
    struct kv_store *kv = NULL;
    int rv = kv_store_new(&ko, &kv);
    if (rv != MOOR_OK) {
        moor_errmsg_set(n->errmsg, "creating the keyspace: out of memory");
        return rv;
    }
    struct kv_load l;
    rv = kv_load_open(kv, &l);
    if (rv == MOOR_OK) {
        rv = snap_load(path, meta, consume_cb, &l, n->errmsg);
        if (rv == MOOR_OK) {
            rv = kv_load_finish(&l);
        }
        if (rv != MOOR_OK && l.errmsg[0] != '\0') {
            moor_errmsg_set(n->errmsg, "%s: %s", path, l.errmsg);
        }
        kv_load_close(&l);
    }
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
