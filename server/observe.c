/*
 * observe.c: what moord tells about itself — the /metrics exposition
 * (etcd's metric names where the meaning is the same, moor's per-stage
 * write latencies), the WAL's fdatasync timing and a few event log lines
 * (leader changes, slow applies, slow fdatasyncs).
 *
 * Per-stage latencies: a write's waiter (struct srv_waiter, on the member
 * that proposed it) gets a timestamp at each stage:
 *   proposed   srv_propose_request queued it;
 *   durable    this member's WAL reported its entry durable (on the
 *              leader: the leader's own fdatasync; on a follower that
 *              forwarded the write: its copy from the leader);
 *   committed  raft handed the entry out as committed;
 *   applied    kv executed it;
 * and when the waiter is freed right after the answer was handed to rpc,
 * the four differences go into moor_server_stage_duration_seconds
 * {stage=propose_to_durable|durable_to_commit|commit_to_apply|
 * apply_to_answer}. Entries learn their index only when raft hands them to
 * the WAL, so the persisted entries of this member's writes wait in a FIFO
 * (index, waiter id) until the WAL is durable up to them. A write whose
 * client went away before the answer is not counted. On a follower a
 * commit can arrive before its own copy is durable: the durable stamp is
 * then taken as the commit's (durable_to_commit 0).
 *
 * The WAL's fdatasync runs on the WAL writer thread: the WAL uses a copy
 * of the POSIX file table whose fdatasync is timed into atomic counters;
 * the loop thread folds them into the registry when /metrics is read.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "metrics.h"
#include "server_int.h"

/* etcd: prometheus.ExponentialBuckets(0.001, 2, 14), 1 ms .. 8.192 s. */
#define FSYNC_BUCKETS 14
/* moor's stages: 0.1 ms doubling, 18 buckets, up to 13.1072 s. */
#define STAGE_BUCKETS 18
/* etcd warns when an fdatasync takes longer ("slow fdatasync"). */
#define SLOW_FSYNC_NS 1000000000ull
/* etcd counts an apply over 100 ms as slow. */
#define SLOW_APPLY_NS 100000000ull

static const char *const stage_labels[SRV_STAGE_COUNT] = {
    "stage=\"propose_to_durable\"",
    "stage=\"durable_to_commit\"",
    "stage=\"commit_to_apply\"",
    "stage=\"apply_to_answer\"",
};

/* Go's codes.Code.String(), as go-grpc-prometheus labels grpc_code. */
static const char *const grpc_code_names[RPC_STATUS_COUNT] = {
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
};

/* This member's persisted writes waiting to be durable. */
struct pending_durable
{
    uint64_t index;
    uint64_t id;
};

struct srv_obs
{
    struct srv_metrics reg;
    double fsync_bounds[FSYNC_BUCKETS];
    double stage_bounds[STAGE_BUCKETS];

    /* The WAL's file table: POSIX calls, fdatasync timed. Written by the
     * writer thread, read by the loop thread. */
    struct wal_fs fs;
    const struct wal_fs *base;
    _Atomic uint64_t fsync_buckets[FSYNC_BUCKETS + 1];
    _Atomic uint64_t fsync_sum_ns;
    _Atomic uint64_t fsync_count;

    /* FIFO ring of persisted writes not yet durable. */
    struct pending_durable *fifo;
    size_t fifo_cap, fifo_head, fifo_len;

    uint64_t leader;
    uint64_t pending;
    double start_time_s;

    struct srv_metric *has_leader, *is_leader, *leader_changes;
    struct srv_metric *committed, *applied, *pending_g, *failed, *slow_apply;
    struct srv_metric *fsync;
    struct srv_metric *db_size, *db_in_use, *keys, *cur_rev, *compact_rev;
    struct srv_metric *watchers, *quota;
    struct srv_metric *puts, *deletes, *ranges, *txns;
    struct srv_metric *stage[SRV_STAGE_COUNT];
};

/* ------------------------------------------------------------------------
 * The WAL's file table (writer thread)
 * ---------------------------------------------------------------------- */
static struct srv_obs *fs_obs(void *arg)
{
    return arg;
}

static int fs_open(void *arg, const char *path, int flags, mode_t mode)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->open(b->arg, path, flags, mode);
}

static int fs_close(void *arg, int fd)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->close(b->arg, fd);
}

static ssize_t fs_pwrite(void *arg, int fd, const void *buf, size_t len,
                         uint64_t off)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->pwrite(b->arg, fd, buf, len, off);
}

static ssize_t fs_pread(void *arg, int fd, void *buf, size_t len, uint64_t off)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->pread(b->arg, fd, buf, len, off);
}

/* Counts one sync of `took` ns in the fsync histogram. */
static void fsync_observe(struct srv_obs *o, uint64_t took)
{
    double s = (double)took / 1e9;
    size_t i = 0;
    while (i < FSYNC_BUCKETS && o->fsync_bounds[i] < s) {
        i++;
    }
    atomic_fetch_add(&o->fsync_buckets[i], 1);
    atomic_fetch_add(&o->fsync_sum_ns, took);
    atomic_fetch_add(&o->fsync_count, 1);
    if (took > SLOW_FSYNC_NS) {
        MOOR_LOG_WARN("wal", "slow fdatasync",
                      "took=%.3fs expected-duration=1s", s);
    }
}

static int fs_fdatasync(void *arg, int fd)
{
    struct srv_obs *o = fs_obs(arg);
    uint64_t t0 = moor_clock_ns();
    int rv = o->base->fdatasync(o->base->arg, fd);
    fsync_observe(o, moor_clock_ns() - t0);
    return rv;
}

/* The WAL's write-and-sync (one pwritev2 with RWF_DSYNC): counted as one
 * sync, its time including the write's (a few microseconds of copying). */
static ssize_t fs_pwrite_dsync(void *arg, int fd, const void *buf, size_t len,
                               uint64_t off)
{
    struct srv_obs *o = fs_obs(arg);
    uint64_t t0 = moor_clock_ns();
    ssize_t n = o->base->pwrite_dsync(o->base->arg, fd, buf, len, off);
    fsync_observe(o, moor_clock_ns() - t0);
    return n;
}

static int fs_fsync(void *arg, int fd)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->fsync(b->arg, fd);
}

static int fs_preallocate(void *arg, int fd, uint64_t len)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->preallocate(b->arg, fd, len);
}

static int fs_ftruncate(void *arg, int fd, uint64_t len)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->ftruncate(b->arg, fd, len);
}

static int fs_fsize(void *arg, int fd, uint64_t *size)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->fsize(b->arg, fd, size);
}

static int fs_rename(void *arg, const char *from, const char *to)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->rename(b->arg, from, to);
}

static int fs_unlink(void *arg, const char *path)
{
    const struct wal_fs *b = fs_obs(arg)->base;
    return b->unlink(b->arg, path);
}

const struct wal_fs *srv_obs_wal_fs(struct srv_node *n)
{
    return &n->obs->fs;
}

/* ------------------------------------------------------------------------
 * Open and close
 * ---------------------------------------------------------------------- */
static int add(struct srv_obs *o, enum srv_metric_type type, const char *name,
               const char *help, struct srv_metric **out)
{
    return srv_metrics_add(&o->reg, type, name, help, NULL, NULL, 0, out);
}

static int register_all(struct srv_obs *o)
{
    int rv = MOOR_OK;
    const enum srv_metric_type C = SRV_METRIC_COUNTER, G = SRV_METRIC_GAUGE;
#define ADD(t, name, help, out)              \
    do {                                     \
        if (rv == MOOR_OK) {                 \
            rv = add(o, t, name, help, out); \
        }                                    \
    } while (0)
    ADD(G, "etcd_server_has_leader",
        "Whether or not a leader exists. 1 is existence, 0 is not.",
        &o->has_leader);
    ADD(G, "etcd_server_is_leader",
        "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        &o->is_leader);
    ADD(C, "etcd_server_leader_changes_seen_total",
        "The number of leader changes seen.", &o->leader_changes);
    ADD(G, "etcd_server_proposals_committed_total",
        "The total number of consensus proposals committed.", &o->committed);
    ADD(G, "etcd_server_proposals_applied_total",
        "The total number of consensus proposals applied.", &o->applied);
    ADD(G, "etcd_server_proposals_pending",
        "The current number of pending proposals to commit.", &o->pending_g);
    ADD(C, "etcd_server_proposals_failed_total",
        "The total number of failed proposals seen.", &o->failed);
    ADD(C, "etcd_server_slow_apply_total",
        "The total number of slow apply requests (likely overloaded from "
        "slow disk).",
        &o->slow_apply);
    ADD(G, "etcd_server_quota_backend_bytes",
        "Current backend storage quota size in bytes.", &o->quota);
    ADD(G, "etcd_mvcc_db_total_size_in_bytes",
        "Total size of the underlying database physically allocated in "
        "bytes (moor: bytes the member holds in memory).",
        &o->db_size);
    ADD(G, "etcd_mvcc_db_total_size_in_use_in_bytes",
        "Total size of the underlying database logically in use in bytes "
        "(moor: the same as the total).",
        &o->db_in_use);
    ADD(G, "etcd_debugging_mvcc_keys_total", "Total number of keys.", &o->keys);
    ADD(C, "etcd_mvcc_put_total",
        "Total number of Put requests applied (puts inside a Txn count in "
        "etcd_mvcc_txn_total).",
        &o->puts);
    ADD(C, "etcd_mvcc_delete_total",
        "Total number of DeleteRange requests applied.", &o->deletes);
    ADD(C, "etcd_mvcc_range_total", "Total number of Range requests served.",
        &o->ranges);
    ADD(C, "etcd_mvcc_txn_total", "Total number of Txn requests applied.",
        &o->txns);
    ADD(G, "etcd_debugging_mvcc_current_revision",
        "The current revision of store.", &o->cur_rev);
    ADD(G, "etcd_debugging_mvcc_compact_revision",
        "The revision of the last compaction in store.", &o->compact_rev);
    ADD(G, "etcd_debugging_mvcc_watcher_total", "Total number of watchers.",
        &o->watchers);
#undef ADD
    if (rv == MOOR_OK) {
        rv = srv_metrics_add(&o->reg, SRV_METRIC_HISTOGRAM,
                             "etcd_disk_wal_fsync_duration_seconds",
                             "The latency distributions of fsync called by "
                             "WAL.",
                             NULL, o->fsync_bounds, FSYNC_BUCKETS, &o->fsync);
    }
    for (int s = 0; rv == MOOR_OK && s < SRV_STAGE_COUNT; s++) {
        rv = srv_metrics_add(
            &o->reg, SRV_METRIC_HISTOGRAM, "moor_server_stage_duration_seconds",
            "Time a write spends in each stage on the member that proposed "
            "it: proposed -> durable in its WAL -> committed -> applied -> "
            "answer handed to gRPC.",
            stage_labels[s], o->stage_bounds, STAGE_BUCKETS, &o->stage[s]);
    }
    return rv;
}

int srv_obs_open(struct srv_node *n)
{
    struct srv_obs *o = moor_calloc(1, sizeof(*o));
    if (o == NULL) {
        return MOOR_ENOMEM;
    }
    srv_metrics_init(&o->reg);
    srv_metrics_buckets_exp(0.001, 2, FSYNC_BUCKETS, o->fsync_bounds);
    srv_metrics_buckets_exp(0.0001, 2, STAGE_BUCKETS, o->stage_bounds);
    o->base = wal_fs_posix();
    o->fs = (struct wal_fs){
        .arg = o,
        .open = fs_open,
        .close = fs_close,
        .pwrite = fs_pwrite,
        .pread = fs_pread,
        .fdatasync = fs_fdatasync,
        .pwrite_dsync = fs_pwrite_dsync,
        .fsync = fs_fsync,
        .preallocate = fs_preallocate,
        .ftruncate = fs_ftruncate,
        .fsize = fs_fsize,
        .rename = fs_rename,
        .unlink = fs_unlink,
    };
    o->start_time_s = (double)(moor_clock_realtime_ns() / 1000000u) / 1e3;
    n->obs = o;
    int rv = register_all(o);
    if (rv != MOOR_OK) {
        srv_obs_close(n);
        return rv;
    }
    return MOOR_OK;
}

void srv_obs_close(struct srv_node *n)
{
    struct srv_obs *o = n->obs;
    if (o == NULL) {
        return;
    }
    srv_metrics_close(&o->reg);
    moor_free(o->fifo);
    moor_free(o);
    n->obs = NULL;
}

/* ------------------------------------------------------------------------
 * Events
 * ---------------------------------------------------------------------- */
void srv_obs_soft_state(struct srv_node *n, const struct raft_ready *rd)
{
    unsigned long long term = (unsigned long long)raft_node_term(n->raft);
    MOOR_LOG_INFO("raft", "role changed", "role=%u leader=%llx term=%llu",
                  rd->role, (unsigned long long)rd->leader, term);
    struct srv_obs *o = n->obs;
    if (o == NULL || rd->leader == o->leader) {
        return;
    }
    if (rd->leader == 0) {
        MOOR_LOG_WARN("raft", "leader lost", "previous=%llx term=%llu",
                      (unsigned long long)o->leader, term);
    } else {
        srv_metric_inc(o->leader_changes, 1);
        MOOR_LOG_INFO("raft", "leader changed",
                      "leader=%llx previous=%llx term=%llu self=%s",
                      (unsigned long long)rd->leader,
                      (unsigned long long)o->leader, term,
                      rd->leader == n->member_id ? "true" : "false");
    }
    o->leader = rd->leader;
}

void srv_obs_proposed(struct srv_node *n, struct srv_waiter *w)
{
    w->stage_ns[SRV_STAGE_PROPOSED] = moor_clock_ns();
    if (n->obs != NULL) {
        n->obs->pending++;
    }
}

/* The id in an encoded InternalRequest's first field (see node.c). */
static uint64_t entry_id(const struct raft_entry *e)
{
    uint64_t id = 0;
    const struct moor_bytes *b = e->data;
    if (e->type == RAFT_ENTRY_NORMAL && b != NULL && b->len > 1 &&
        b->data[0] == 0x08) {
        moor_varint_get(b->data + 1, b->len - 1, &id);
    }
    return id;
}

static bool fifo_push(struct srv_obs *o, uint64_t index, uint64_t id)
{
    if (o->fifo_len == o->fifo_cap) {
        if (o->fifo_cap >= SRV_WAITERS_MAX) {
            return false; /* bounded: that write's stages go uncounted */
        }
        size_t cap = o->fifo_cap ? o->fifo_cap * 2 : 256;
        struct pending_durable *p = moor_malloc(cap * sizeof(*p));
        if (p == NULL) {
            return false;
        }
        for (size_t i = 0; i < o->fifo_len; i++) {
            p[i] = o->fifo[(o->fifo_head + i) % o->fifo_cap];
        }
        moor_free(o->fifo);
        o->fifo = p;
        o->fifo_cap = cap;
        o->fifo_head = 0;
    }
    o->fifo[(o->fifo_head + o->fifo_len) % o->fifo_cap] =
        (struct pending_durable){index, id};
    o->fifo_len++;
    return true;
}

void srv_obs_persisting(struct srv_node *n, const struct raft_ready *rd)
{
    struct srv_obs *o = n->obs;
    if (o == NULL || n->n_waiters == 0) {
        return;
    }
    for (size_t i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *e = &rd->entries[i];
        uint64_t id = entry_id(e);
        struct srv_waiter *w = id != 0 ? srv_waiter_find(n, id) : NULL;
        if (w != NULL && w->stage_ns[SRV_STAGE_PROPOSED] != 0 &&
            w->stage_ns[SRV_STAGE_DURABLE] == 0) {
            fifo_push(o, e->index, id);
        }
    }
}

void srv_obs_durable(struct srv_node *n, uint64_t index)
{
    struct srv_obs *o = n->obs;
    if (o == NULL || o->fifo_len == 0) {
        return;
    }
    uint64_t now = moor_clock_ns();
    while (o->fifo_len > 0 && o->fifo[o->fifo_head].index <= index) {
        struct srv_waiter *w = srv_waiter_find(n, o->fifo[o->fifo_head].id);
        if (w != NULL && w->stage_ns[SRV_STAGE_DURABLE] == 0) {
            w->stage_ns[SRV_STAGE_DURABLE] = now;
        }
        o->fifo_head = (o->fifo_head + 1) % o->fifo_cap;
        o->fifo_len--;
    }
}

uint64_t srv_obs_apply_begin(struct srv_node *n, const struct raft_entry *e)
{
    uint64_t now = moor_clock_ns();
    uint64_t id = n->n_waiters > 0 ? entry_id(e) : 0;
    struct srv_waiter *w = id != 0 ? srv_waiter_find(n, id) : NULL;
    if (w != NULL && w->stage_ns[SRV_STAGE_PROPOSED] != 0 &&
        w->stage_ns[SRV_STAGE_COMMITTED] == 0) {
        w->stage_ns[SRV_STAGE_COMMITTED] = now;
        if (n->obs != NULL && n->obs->pending > 0) {
            n->obs->pending--;
        }
    }
    return now;
}

void srv_obs_apply_end(struct srv_node *n, uint64_t begin_ns)
{
    uint64_t took = moor_clock_ns() - begin_ns;
    if (took > SLOW_APPLY_NS && n->obs != NULL) {
        srv_metric_inc(n->obs->slow_apply, 1);
        MOOR_LOG_WARN("node", "apply request took too long",
                      "took=%.3fs expected-duration=100ms", (double)took / 1e9);
    }
}

void srv_obs_applied(struct srv_waiter *w)
{
    if (w != NULL && w->stage_ns[SRV_STAGE_PROPOSED] != 0) {
        w->stage_ns[SRV_STAGE_APPLIED] = moor_clock_ns();
    }
}

void srv_obs_waiter_done(struct srv_node *n, const struct srv_waiter *w)
{
    struct srv_obs *o = n->obs;
    const uint64_t *t = w->stage_ns;
    if (o == NULL || t[SRV_STAGE_PROPOSED] == 0) {
        return; /* a read, or not a proposal */
    }
    if (t[SRV_STAGE_COMMITTED] == 0) {
        /* Never committed here: refused, timed out, or the member stops. */
        srv_metric_inc(o->failed, 1);
        if (o->pending > 0) {
            o->pending--;
        }
        return;
    }
    if (t[SRV_STAGE_APPLIED] == 0 || w->call == NULL) {
        return; /* not a kv write, or nobody was answered */
    }
    uint64_t now = moor_clock_ns();
    uint64_t durable = t[SRV_STAGE_DURABLE];
    if (durable == 0 || durable > t[SRV_STAGE_COMMITTED]) {
        durable = t[SRV_STAGE_COMMITTED];
    }
    uint64_t at[SRV_STAGE_COUNT + 1] = {t[SRV_STAGE_PROPOSED], durable,
                                        t[SRV_STAGE_COMMITTED],
                                        t[SRV_STAGE_APPLIED], now};
    for (int s = 0; s < SRV_STAGE_COUNT; s++) {
        uint64_t d = at[s + 1] >= at[s] ? at[s + 1] - at[s] : 0;
        srv_metric_observe(o->stage[s], (double)d / 1e9);
    }
}

void srv_obs_kv_request(struct srv_node *n, int request_case)
{
    struct srv_obs *o = n->obs;
    if (o == NULL) {
        return;
    }
    switch (request_case) {
    case MOORPB__INTERNAL_REQUEST__REQUEST_PUT:
        srv_metric_inc(o->puts, 1);
        break;
    case MOORPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE:
        srv_metric_inc(o->deletes, 1);
        break;
    case MOORPB__INTERNAL_REQUEST__REQUEST_TXN:
        srv_metric_inc(o->txns, 1);
        break;
    case MOORPB__INTERNAL_REQUEST__REQUEST_RANGE:
        srv_metric_inc(o->ranges, 1);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------
 * /metrics
 * ---------------------------------------------------------------------- */
static void fold_fsync(struct srv_obs *o)
{
    uint64_t b[FSYNC_BUCKETS + 1];
    for (size_t i = 0; i <= FSYNC_BUCKETS; i++) {
        b[i] = atomic_load(&o->fsync_buckets[i]);
    }
    /* The count last: buckets may run ahead of it by an fdatasync in
     * flight, never behind. */
    uint64_t count = 0;
    for (size_t i = 0; i <= FSYNC_BUCKETS; i++) {
        count += b[i];
    }
    srv_metric_histogram_load(
        o->fsync, b, (double)atomic_load(&o->fsync_sum_ns) / 1e9, count);
}

static const char *grpc_type(const char *method)
{
    if (strcmp(method, "Watch") == 0 || strcmp(method, "LeaseKeepAlive") == 0) {
        return "bidi_stream";
    }
    if (strcmp(method, "Snapshot") == 0) {
        return "server_stream";
    }
    return "unary";
}

/* go-grpc-prometheus' server counters, from rpc's per-method stats (rpc
 * counts a call as handled once, where it ends, with its final status);
 * every code of every method, as etcd pre-initialises them. */
static int render_grpc(struct srv_node *n, struct moor_buf *out)
{
    static const struct
    {
        const char *name, *type, *help;
    } fams[] = {
        {"grpc_server_started_total", "counter",
         "Total number of RPCs started on the server."},
        {"grpc_server_handled_total", "counter",
         "Total number of RPCs completed on the server, regardless of "
         "success or failure."},
        {"grpc_server_msg_received_total", "counter",
         "Total number of RPC stream messages received on the server."},
        {"grpc_server_msg_sent_total", "counter",
         "Total number of gRPC stream messages sent by the server."},
    };
    if (n->rpc == NULL) {
        return MOOR_OK;
    }
    int rv = MOOR_OK;
    for (size_t f = 0; rv == MOOR_OK && f < MOOR_ARRAY_LEN(fams); f++) {
        rv = srv_metrics_write_family(out, fams[f].name, fams[f].type,
                                      fams[f].help);
        const char *path;
        struct rpc_method_stats st;
        for (size_t i = 0;
             rv == MOOR_OK && rpc_server_method_stats(n->rpc, i, &path, &st);
             i++) {
            /* "/etcdserverpb.KV/Range" -> service, method */
            const char *slash = strrchr(path, '/');
            if (slash == NULL || slash == path) {
                continue;
            }
            const char *method = slash + 1;
            int svc_len = (int)(slash - path - 1);
            char labels[320];
            int k = snprintf(labels, sizeof(labels),
                             "grpc_method=\"%s\",grpc_service=\"%.*s\","
                             "grpc_type=\"%s\"",
                             method, svc_len, path + 1, grpc_type(method));
            if (k < 0 || (size_t)k >= sizeof(labels) - 40) {
                continue;
            }
            if (f == 1) {
                for (int c = 0; rv == MOOR_OK && c < RPC_STATUS_COUNT; c++) {
                    char with[400];
                    snprintf(with, sizeof(with), "grpc_code=\"%s\",%s",
                             grpc_code_names[c], labels);
                    rv = srv_metrics_write_sample(out, fams[f].name, with,
                                                  (double)st.handled[c]);
                }
                continue;
            }
            double v = f == 0   ? (double)st.started
                       : f == 2 ? (double)st.msgs_received
                                : (double)st.msgs_sent;
            rv = srv_metrics_write_sample(out, fams[f].name, labels, v);
        }
    }
    return rv;
}

/* The process_* family of Prometheus' Go client, from /proc. */
static int render_process(struct srv_obs *o, struct moor_buf *out)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long vsz = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &vsz, &rss) != 2) {
            vsz = rss = 0;
        }
        fclose(f);
    }
    size_t fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            fds += e->d_name[0] != '.';
        }
        closedir(d);
        fds--; /* the directory's own descriptor */
    }
    struct rlimit rl;
    double max_fds =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
            ? (double)rl.rlim_cur
            : -1;
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
    static const struct
    {
        const char *name, *type, *help;
    } fams[] = {
        {"process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds."},
        {"process_resident_memory_bytes", "gauge",
         "Resident memory size in bytes."},
        {"process_virtual_memory_bytes", "gauge",
         "Virtual memory size in bytes."},
        {"process_open_fds", "gauge", "Number of open file descriptors."},
        {"process_max_fds", "gauge",
         "Maximum number of open file descriptors."},
        {"process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds."},
    };
    double vals[] = {cpu,
                     (double)rss * (double)page,
                     (double)vsz * (double)page,
                     (double)fds,
                     max_fds,
                     o->start_time_s};
    int rv = MOOR_OK;
    for (size_t i = 0; rv == MOOR_OK && i < MOOR_ARRAY_LEN(fams); i++) {
        if (vals[i] < 0) {
            continue;
        }
        rv = srv_metrics_write_family(out, fams[i].name, fams[i].type,
                                      fams[i].help);
        if (rv == MOOR_OK) {
            rv = srv_metrics_write_sample(out, fams[i].name, NULL, vals[i]);
        }
    }
    return rv;
}

int srv_obs_render(struct srv_node *n, struct moor_buf *out)
{
    struct srv_obs *o = n->obs;
    if (o == NULL || n->raft == NULL || n->kv == NULL) {
        return MOOR_OK;
    }
    uint64_t leader = raft_node_leader(n->raft);
    srv_metric_set(o->has_leader, leader != 0);
    srv_metric_set(o->is_leader, leader != 0 && leader == n->member_id);
    srv_metric_set(o->committed, (double)raft_node_commit_index(n->raft));
    srv_metric_set(o->applied, (double)kv_store_applied_index(n->kv));
    srv_metric_set(o->pending_g, (double)o->pending);
    srv_metric_set(o->quota, n->cfg->quota_backend_bytes > 0
                                 ? (double)n->cfg->quota_backend_bytes
                                 : (double)SRV_DEFAULT_QUOTA_BYTES);
    srv_metric_set(o->db_size, (double)moor_alloc_bytes());
    srv_metric_set(o->db_in_use, (double)moor_alloc_bytes());
    srv_metric_set(o->keys, (double)kv_store_live_count(n->kv));
    srv_metric_set(o->cur_rev, (double)kv_store_revision(n->kv));
    srv_metric_set(o->compact_rev, (double)kv_store_compact_revision(n->kv));
    srv_metric_set(o->watchers, (double)kv_watch_count(n->kv));
    fold_fsync(o);
    int rv = srv_metrics_render(&o->reg, out);
    if (rv == MOOR_OK) {
        rv = render_grpc(n, out);
    }
    if (rv == MOOR_OK) {
        rv = srv_peer_render_metrics(n, out);
    }
    if (rv == MOOR_OK) {
        rv = render_process(o, out);
    }
    return rv;
}
