/* test_wal_writer.c: the writer thread: group commit (proved with a gated
 * fdatasync), failures injected through the fs table (ENOSPC on write and
 * on segment creation, EIO from fdatasync, short writes), rollover with
 * opening records, release with max_wals, batch validation, and the data
 * directory's lock and modes. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "wal/wal_int.h"

#define SEG_BYTES (64u * 1024)

static void quiet_sink(enum moor_log_level level, const char *line, size_t len,
                       void *arg)
{
    (void)level;
    (void)line;
    (void)len;
    (void)arg;
}

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fault-injecting file system over the real one. */
struct fault_fs
{
    struct wal_fs fs;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int pwrite_errno;       /* fail pwrites with this once armed */
    long pwrite_fail_after; /* pwrites to let through first; <0: never */
    size_t pwrite_max;      /* cap each pwrite (short writes); 0: none */
    uint64_t pwrite_bytes;  /* bytes written through pwrite */
    int fdatasync_errno;    /* fail the next fdatasync with this, once */
    int fdatasync_calls;
    int preallocate_errno; /* fail preallocate with this */
    bool gate_armed;       /* the next fdatasync blocks until released */
    bool gate_entered;
    bool gate_open;
};

static struct fault_fs *ffs_of(void *arg)
{
    return arg;
}

static ssize_t ffs_pwrite(void *arg, int fd, const void *buf, size_t len,
                          uint64_t off)
{
    struct fault_fs *f = ffs_of(arg);
    pthread_mutex_lock(&f->mu);
    int fail = 0;
    if (f->pwrite_fail_after == 0) {
        fail = f->pwrite_errno;
    } else if (f->pwrite_fail_after > 0) {
        f->pwrite_fail_after--;
    }
    if (f->pwrite_max != 0 && len > f->pwrite_max) {
        len = f->pwrite_max;
    }
    pthread_mutex_unlock(&f->mu);
    if (fail != 0) {
        return -fail;
    }
    ssize_t n = wal_fs_posix()->pwrite(NULL, fd, buf, len, off);
    pthread_mutex_lock(&f->mu);
    f->pwrite_bytes += n > 0 ? (uint64_t)n : 0;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static int ffs_fdatasync(void *arg, int fd)
{
    struct fault_fs *f = ffs_of(arg);
    pthread_mutex_lock(&f->mu);
    f->fdatasync_calls++;
    if (f->gate_armed) {
        f->gate_armed = false;
        f->gate_entered = true;
        pthread_cond_broadcast(&f->cond);
        while (!f->gate_open) {
            pthread_cond_wait(&f->cond, &f->mu);
        }
    }
    int fail = f->fdatasync_errno;
    f->fdatasync_errno = 0;
    pthread_mutex_unlock(&f->mu);
    if (fail != 0) {
        return -fail;
    }
    return wal_fs_posix()->fdatasync(NULL, fd);
}

/* The WAL's write-and-sync call, made of the two above so each of their
 * faults (and the fdatasync gate and count) applies to it too. */
static ssize_t ffs_pwrite_dsync(void *arg, int fd, const void *buf, size_t len,
                                uint64_t off)
{
    ssize_t n = ffs_pwrite(arg, fd, buf, len, off);
    if (n <= 0) {
        return n;
    }
    int rv = ffs_fdatasync(arg, fd);
    return rv < 0 ? rv : n;
}

static int ffs_preallocate(void *arg, int fd, uint64_t len)
{
    struct fault_fs *f = ffs_of(arg);
    pthread_mutex_lock(&f->mu);
    int fail = f->preallocate_errno;
    pthread_mutex_unlock(&f->mu);
    if (fail != 0) {
        return -fail;
    }
    return wal_fs_posix()->preallocate(NULL, fd, len);
}

struct fixture
{
    char dir[256];
    struct fault_fs ffs;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/moor-walw-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    f->ffs.fs = *wal_fs_posix();
    f->ffs.fs.arg = &f->ffs;
    f->ffs.fs.pwrite = ffs_pwrite;
    f->ffs.fs.fdatasync = ffs_fdatasync;
    f->ffs.fs.pwrite_dsync = ffs_pwrite_dsync;
    f->ffs.fs.preallocate = ffs_preallocate;
    f->ffs.pwrite_fail_after = -1;
    pthread_mutex_init(&f->ffs.mu, NULL);
    pthread_cond_init(&f->ffs.cond, NULL);
    moor_log_set_sink(quiet_sink, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    pthread_mutex_destroy(&f->ffs.mu);
    pthread_cond_destroy(&f->ffs.cond);
    free(f);
    moor_log_set_sink(NULL, NULL);
    return 0;
}

static pthread_mutex_t notify_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t notify_cond = PTHREAD_COND_INITIALIZER;
static int notify_calls;

static void on_notify(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&notify_mu);
    notify_calls++;
    pthread_cond_broadcast(&notify_cond);
    pthread_mutex_unlock(&notify_mu);
}

/* Waits until batch seq is durable or the WAL failed; returns the error. */
static int wait_durable(struct wal *w, uint64_t seq)
{
    struct wal_durable d;
    pthread_mutex_lock(&notify_mu);
    while (wal_collect(w, &d) == MOOR_OK && d.seq < seq) {
        pthread_cond_wait(&notify_cond, &notify_mu);
    }
    pthread_mutex_unlock(&notify_mu);
    return d.err;
}

static struct wal_options opts_for(struct fixture *f, bool faulty)
{
    struct wal_options o = {
        .dir = f->dir,
        .segment_bytes = SEG_BYTES,
        .meta = {.cluster_id = 7, .member_id = 9},
        .notify_cb = on_notify,
        .fs = faulty ? &f->ffs.fs : NULL,
    };
    return o;
}

static struct wal *open_wal(struct fixture *f, bool faulty,
                            struct wal_replay *r)
{
    struct wal_options o = opts_for(f, faulty);
    struct wal *w = NULL;
    char msg[MOOR_ERRMSG_SIZE];
    int rv = wal_open(&o, &w, r, msg);
    if (rv != MOOR_OK) {
        fail_msg("wal_open: %s: %s", moor_errname(rv), msg);
    }
    return w;
}

static int append_one(struct wal *w, uint64_t index, uint64_t term, size_t len,
                      uint64_t *seq)
{
    struct raft_entry e = {.index = index, .term = term};
    e.data = moor_bytes_new(len);
    memset(e.data->data, (int)(index & 0xff), len);
    struct raft_hard_state hs = {.term = term, .commit = index};
    struct wal_batch b = {.entries = &e, .entries_len = 1, .hard_state = &hs};
    int rv = wal_append(w, &b, seq);
    moor_bytes_unref(e.data);
    return rv;
}

static void test_wal_group_commit_syncs_batches_queued_during_a_sync_once(
    void **state)
{
    struct fixture *f = *state;
    struct wal_replay r;
    struct wal *w = open_wal(f, true, &r);
    wal_replay_close(&r);
    pthread_mutex_lock(&f->ffs.mu);
    int calls0 = f->ffs.fdatasync_calls;
    f->ffs.gate_armed = true;
    pthread_mutex_unlock(&f->ffs.mu);

    uint64_t seq;
    assert_int_equal(append_one(w, 1, 1, 64, &seq), MOOR_OK);
    /* Wait until batch 1 is inside its fdatasync, then queue 49 more. */
    pthread_mutex_lock(&f->ffs.mu);
    while (!f->ffs.gate_entered) {
        pthread_cond_wait(&f->ffs.cond, &f->ffs.mu);
    }
    pthread_mutex_unlock(&f->ffs.mu);
    for (uint64_t i = 2; i <= 50; i++) {
        assert_int_equal(append_one(w, i, 1, 64, &seq), MOOR_OK);
    }
    assert_true(seq == 50);
    struct wal_durable d;
    wal_collect(w, &d);
    assert_true(d.seq == 0); /* nothing is durable while batch 1 syncs */
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.gate_open = true;
    pthread_cond_broadcast(&f->ffs.cond);
    pthread_mutex_unlock(&f->ffs.mu);

    assert_int_equal(wait_durable(w, 50), MOOR_OK);
    wal_collect(w, &d);
    assert_true(d.last_index == 50 && d.last_term == 1);
    /* Batch 1 had its sync; batches 2..50 shared exactly one more. */
    pthread_mutex_lock(&f->ffs.mu);
    assert_int_equal(f->ffs.fdatasync_calls - calls0, 2);
    pthread_mutex_unlock(&f->ffs.mu);
    wal_close(w);

    w = open_wal(f, false, &r);
    assert_int_equal(r.entries_len, 50);
    assert_true(r.hard_state.commit == 50);
    wal_replay_close(&r);
    wal_close(w);
}

static void test_wal_write_enospc_poisons_with_its_own_error(void **state)
{
    struct fixture *f = *state;
    struct wal_replay r;
    struct wal *w = open_wal(f, true, &r);
    wal_replay_close(&r);
    uint64_t seq;
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(append_one(w, i, 1, 100, &seq), MOOR_OK);
        assert_int_equal(wait_durable(w, seq), MOOR_OK);
    }
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.pwrite_errno = ENOSPC;
    f->ffs.pwrite_fail_after = 0;
    pthread_mutex_unlock(&f->ffs.mu);
    assert_int_equal(append_one(w, 6, 1, 100, &seq), MOOR_OK);
    assert_int_equal(wait_durable(w, seq), MOOR_ENOSPC);
    struct wal_durable d;
    assert_int_equal(wal_collect(w, &d), MOOR_ENOSPC);
    assert_true(d.seq == 5 && d.last_index == 5);
    assert_non_null(strstr(wal_errmsg(w), "No space left"));
    assert_int_equal(append_one(w, 7, 1, 100, &seq), MOOR_EPOISONED);
    wal_close(w);

    w = open_wal(f, false, &r);
    assert_int_equal(r.entries_len, 5);
    wal_replay_close(&r);
    wal_close(w);
}

/* A sync that fails poisons the WAL, with a message naming fdatasync, and
 * is tried once only. */
static void fdatasync_failure_case(struct fixture *f)
{
    struct wal_replay r;
    struct wal *w = open_wal(f, true, &r);
    wal_replay_close(&r);
    uint64_t seq;
    assert_int_equal(append_one(w, 1, 1, 10, &seq), MOOR_OK);
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.fdatasync_errno = EIO;
    int calls0 = f->ffs.fdatasync_calls;
    pthread_mutex_unlock(&f->ffs.mu);
    assert_int_equal(append_one(w, 2, 1, 10, &seq), MOOR_OK);
    assert_int_equal(wait_durable(w, seq), MOOR_EIO);
    assert_non_null(strstr(wal_errmsg(w), "fdatasync"));
    assert_int_equal(append_one(w, 3, 1, 10, &seq), MOOR_EPOISONED);
    struct wal_durable d;
    wal_collect(w, &d);
    assert_true(d.seq == 1);
    wal_close(w); /* close does not sync a poisoned log again */
    pthread_mutex_lock(&f->ffs.mu);
    assert_int_equal(f->ffs.fdatasync_calls - calls0, 1);
    pthread_mutex_unlock(&f->ffs.mu);
}

static void test_wal_fdatasync_failure_poisons_and_is_never_retried(
    void **state)
{
    fdatasync_failure_case(*state);
}

/* The same where the table has no write-and-sync call: pwrite, then
 * fdatasync. */
static void test_wal_without_pwrite_dsync_syncs_with_fdatasync(void **state)
{
    struct fixture *f = *state;
    f->ffs.fs.pwrite_dsync = NULL;
    fdatasync_failure_case(f);
    /* And a healthy log works the same way: one fdatasync per batch. */
    char sub[300];
    snprintf(sub, sizeof(sub), "%s/healthy", f->dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    struct wal_options o = opts_for(f, true);
    o.dir = sub;
    struct wal_replay r;
    struct wal *w;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    wal_replay_close(&r);
    pthread_mutex_lock(&f->ffs.mu);
    int calls0 = f->ffs.fdatasync_calls;
    pthread_mutex_unlock(&f->ffs.mu);
    uint64_t seq = 0;
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(append_one(w, i, 1, 100, &seq), MOOR_OK);
        assert_int_equal(wait_durable(w, seq), MOOR_OK);
    }
    wal_close(w);
    pthread_mutex_lock(&f->ffs.mu);
    assert_int_equal(f->ffs.fdatasync_calls - calls0, 5);
    pthread_mutex_unlock(&f->ffs.mu);
    o.fs = NULL;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_int_equal(r.entries_len, 5);
    wal_replay_close(&r);
    wal_close(w);
}

static int count_segments(const char *dir);

/* A new log's first segment is overwritten with zeros at open, and the
 * spare in the writer's idle time before the rollover uses it: at least
 * two segments' worth of writes beyond the records. Everything replays. */
static void test_wal_segments_are_zero_filled_before_use(void **state)
{
    struct fixture *f = *state;
    struct wal_replay r;
    struct wal *w = open_wal(f, true, &r);
    wal_replay_close(&r);
    pthread_mutex_lock(&f->ffs.mu);
    assert_true(f->ffs.pwrite_bytes >= SEG_BYTES);
    pthread_mutex_unlock(&f->ffs.mu);
    /* Batches of 96 bytes (an entry and a hard state record): about 680
     * fill a segment. One batch at a time, so the writer is idle between
     * them. */
    uint64_t seq = 0;
    uint64_t n = 1000;
    for (uint64_t i = 1; i <= n; i++) {
        assert_int_equal(append_one(w, i, 1, 10, &seq), MOOR_OK);
        assert_int_equal(wait_durable(w, seq), MOOR_OK);
    }
    wal_close(w);
    pthread_mutex_lock(&f->ffs.mu);
    assert_true(f->ffs.pwrite_bytes >= 2 * SEG_BYTES + n * 96);
    pthread_mutex_unlock(&f->ffs.mu);
    assert_int_equal(count_segments(f->dir), 2);
    w = open_wal(f, false, &r);
    assert_int_equal(r.entries_len, n);
    wal_replay_close(&r);
    wal_close(w);
}

static void test_wal_short_writes_are_completed(void **state)
{
    struct fixture *f = *state;
    f->ffs.pwrite_max = 7;
    struct wal_replay r;
    struct wal *w = open_wal(f, true, &r);
    wal_replay_close(&r);
    uint64_t seq = 0;
    for (uint64_t i = 1; i <= 20; i++) {
        assert_int_equal(append_one(w, i, 3, 333, &seq), MOOR_OK);
    }
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    wal_close(w);
    w = open_wal(f, false, &r);
    assert_int_equal(r.entries_len, 20);
    for (size_t i = 0; i < 20; i++) {
        assert_int_equal(r.entries[i].data->len, 333);
        assert_int_equal(r.entries[i].data->data[332], (uint8_t)(i + 1));
    }
    wal_replay_close(&r);
    wal_close(w);
}

static void test_wal_segment_creation_enospc_is_reported(void **state)
{
    struct fixture *f = *state;
    struct wal_replay r;
    struct wal *w = open_wal(f, true, &r);
    wal_replay_close(&r);
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.preallocate_errno = ENOSPC;
    pthread_mutex_unlock(&f->ffs.mu);
    /* 64 KiB segments fill after ~60 KiB of 1000-byte entries. */
    uint64_t seq = 0;
    int err = MOOR_OK;
    for (uint64_t i = 1; i <= 100 && err == MOOR_OK; i++) {
        assert_int_equal(append_one(w, i, 1, 1000, &seq), MOOR_OK);
        err = wait_durable(w, seq);
    }
    assert_int_equal(err, MOOR_ENOSPC);
    assert_non_null(strstr(wal_errmsg(w), "preallocate"));
    struct wal_durable d;
    wal_collect(w, &d);
    wal_close(w);
    /* What was reported durable replays; no temp file is left behind. */
    w = open_wal(f, false, &r);
    assert_true(r.entries_len >= d.last_index);
    wal_replay_close(&r);
    wal_close(w);
}

static void test_wal_reports_nospace_early_and_recovers(void **state)
{
    struct fixture *f = *state;
    struct wal_replay r;
    struct wal *w = open_wal(f, true, &r);
    wal_replay_close(&r);
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.preallocate_errno = ENOSPC;
    pthread_mutex_unlock(&f->ffs.mu);
    /* Batch k's durable report carries the spare attempt made after batch
     * k - 1, so one batch at a time is deterministic. */
    uint64_t seq = 0;
    uint64_t i = 1;
    struct wal_durable d = {0};
    for (; i <= 60 && !d.nospace; i++) {
        assert_int_equal(append_one(w, i, 1, 1000, &seq), MOOR_OK);
        assert_int_equal(wait_durable(w, seq), MOOR_OK);
        wal_collect(w, &d);
    }
    /* Flagged once the segment was half full, while appends still work. */
    assert_true(d.nospace);
    assert_true(i > 20 && i < 60);
    assert_int_equal(d.err, MOOR_OK);
    /* Space comes back: the next attempt succeeds and clears the flag. */
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.preallocate_errno = 0;
    pthread_mutex_unlock(&f->ffs.mu);
    for (int k = 0; k < 2; k++, i++) {
        assert_int_equal(append_one(w, i, 1, 1000, &seq), MOOR_OK);
        assert_int_equal(wait_durable(w, seq), MOOR_OK);
    }
    wal_collect(w, &d);
    assert_false(d.nospace);
    /* Roll over into the prepared segment, and on through a few more. */
    for (; i <= 300; i++) {
        assert_int_equal(append_one(w, i, 1, 1000, &seq), MOOR_OK);
    }
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    wal_close(w);
    /* Close removes a prepared spare; only segments remain. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c -v '\\.wal$'", f->dir);
    FILE *p = popen(cmd, "r");
    int others = -1;
    assert_int_equal(fscanf(p, "%d", &others), 1);
    pclose(p);
    assert_int_equal(others, 0);
    w = open_wal(f, false, &r);
    assert_int_equal(r.entries_len, 300);
    for (size_t k = 0; k < 300; k++) {
        assert_true(r.entries[k].index == k + 1);
    }
    wal_replay_close(&r);
    wal_close(w);
}

static int count_segments(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c '\\.wal$'", dir);
    FILE *p = popen(cmd, "r");
    int n = 0;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static void test_wal_rollover_and_release_keep_max_wals_and_state(void **state)
{
    struct fixture *f = *state;
    struct wal_options o = opts_for(f, false);
    o.max_wals = 2;
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    wal_replay_close(&r);
    uint64_t seq = 0;
    for (uint64_t i = 1; i <= 600; i++) {
        assert_int_equal(append_one(w, i, 2, 900, &seq), MOOR_OK);
        if (i % 50 == 0) {
            assert_int_equal(wait_durable(w, seq), MOOR_OK);
        }
    }
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    int before = count_segments(f->dir);
    assert_true(before >= 8);
    /* A snapshot at 550 lets everything wholly below it go, but two
     * segments stay. */
    struct wal_snapshot snap = {.term = 2, .index = 550};
    struct raft_hard_state hs = {.term = 5, .vote = 3, .commit = 590};
    struct wal_batch b = {
        .snapshot = &snap, .hard_state = &hs, .release_index = 550};
    assert_int_equal(wal_append(w, &b, &seq), MOOR_OK);
    /* Release runs after that batch's report; the next report implies it
     * is done. */
    struct wal_batch empty = {0};
    assert_int_equal(wal_append(w, &empty, &seq), MOOR_OK);
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    int after = count_segments(f->dir);
    assert_true(after >= 2 && after < before);
    /* A new segment after release opens with meta, marker and hard state:
     * fill one more segment and release everything older. */
    for (uint64_t i = 601; i <= 700; i++) {
        assert_int_equal(append_one(w, i, 2, 900, &seq), MOOR_OK);
    }
    struct raft_hard_state hs2 = {.term = 6, .vote = 4, .commit = 700};
    struct wal_batch b2 = {.hard_state = &hs2};
    assert_int_equal(wal_append(w, &b2, &seq), MOOR_OK);
    struct wal_snapshot snap2 = {.term = 2, .index = 690};
    struct wal_batch b3 = {.snapshot = &snap2, .release_index = 690};
    assert_int_equal(wal_append(w, &b3, &seq), MOOR_OK);
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    wal_close(w);
    assert_int_equal(count_segments(f->dir), 2);

    o.start = snap2;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_true(r.meta.cluster_id == 7 && r.meta.member_id == 9);
    assert_true(r.snapshot.index == 690 && r.snapshot.term == 2);
    assert_true(r.hard_state.term == 6 && r.hard_state.vote == 4 &&
                r.hard_state.commit == 700);
    assert_int_equal(r.entries_len, 10);
    assert_true(r.entries[0].index == 691 && r.entries[9].index == 700);
    wal_replay_close(&r);
    wal_close(w);
}

static void test_wal_append_refuses_bad_batches_and_queues_nothing(void **state)
{
    struct fixture *f = *state;
    struct wal_replay r;
    struct wal *w = open_wal(f, false, &r);
    wal_replay_close(&r);
    uint64_t seq = 0;
    assert_int_equal(append_one(w, 1, 1, 8, &seq), MOOR_OK);
    assert_true(seq == 1);
    struct raft_entry es[2] = {{.index = 2, .term = 1},
                               {.index = 4, .term = 1}};
    struct wal_batch b = {.entries = es, .entries_len = 2};
    assert_int_equal(wal_append(w, &b, &seq), MOOR_EINVAL); /* 2, 4 */
    es[0].index = 0;
    b.entries_len = 1;
    assert_int_equal(wal_append(w, &b, &seq), MOOR_EINVAL); /* index 0 */
    es[0].index = 3;
    assert_int_equal(wal_append(w, &b, &seq), MOOR_EINVAL); /* gap */
    es[0].index = 2;
    es[0].data = moor_bytes_new(wal_entry_bytes_max(w) + 1);
    assert_int_equal(wal_append(w, &b, &seq), MOOR_ETOOBIG);
    moor_bytes_unref(es[0].data);
    es[0].data = NULL;
    assert_true(seq == 1);
    /* An installed snapshot may jump the log forward. */
    struct wal_snapshot snap = {.term = 4, .index = 100};
    es[0].index = 101;
    es[0].term = 4;
    b.snapshot = &snap;
    assert_int_equal(wal_append(w, &b, &seq), MOOR_OK);
    /* An empty batch still gets a seq that becomes durable. */
    struct wal_batch empty = {0};
    assert_int_equal(wal_append(w, &empty, &seq), MOOR_OK);
    assert_true(seq == 3);
    assert_int_equal(wait_durable(w, 3), MOOR_OK);
    wal_close(w);

    struct wal_options o = opts_for(f, false);
    o.start = snap;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    assert_int_equal(r.entries_len, 1);
    assert_true(r.entries[0].index == 101 && r.entries[0].term == 4);
    wal_replay_close(&r);
    wal_close(w);
    /* From before the installed snapshot the log has a hole. */
    o.start = (struct wal_snapshot){0, 0};
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(wal_open(&o, &w, &r, msg), MOOR_ENOENT);
}

static void test_wal_pending_bound_returns_eagain(void **state)
{
    struct fixture *f = *state;
    struct wal_options o = opts_for(f, true);
    o.pending_bytes_max = 4096;
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    wal_replay_close(&r);
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.gate_armed = true;
    pthread_mutex_unlock(&f->ffs.mu);
    uint64_t seq;
    assert_int_equal(append_one(w, 1, 1, 100, &seq), MOOR_OK);
    pthread_mutex_lock(&f->ffs.mu);
    while (!f->ffs.gate_entered) {
        pthread_cond_wait(&f->ffs.cond, &f->ffs.mu);
    }
    pthread_mutex_unlock(&f->ffs.mu);
    /* While batch 1 syncs, at most 4096 bytes may queue. */
    uint64_t i = 2;
    int rv;
    while ((rv = append_one(w, i, 1, 1000, &seq)) == MOOR_OK) {
        i++;
    }
    assert_int_equal(rv, MOOR_EAGAIN);
    assert_true(i > 2 && i < 8);
    assert_int_equal(append_one(w, i, 1, 5000, &seq), MOOR_ETOOBIG);
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.gate_open = true;
    pthread_cond_broadcast(&f->ffs.cond);
    pthread_mutex_unlock(&f->ffs.mu);
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    assert_int_equal(append_one(w, i, 1, 1000, &seq), MOOR_OK);
    wal_close(w);
}

static void test_wal_gives_back_memory_after_a_burst(void **state)
{
    struct fixture *f = *state;
    struct wal_replay r;
    struct wal *w = open_wal(f, true, &r);
    wal_replay_close(&r);
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.gate_armed = true; /* hold the writer inside the batch */
    pthread_mutex_unlock(&f->ffs.mu);
    size_t before = moor_alloc_bytes();
    enum { N = 120 };
    struct raft_entry es[N];
    struct moor_bytes *data = moor_bytes_new(50000);
    memset(data->data, 7, data->len);
    for (size_t i = 0; i < N; i++) {
        es[i] = (struct raft_entry){.index = i + 1, .term = 1, .data = data};
    }
    struct wal_batch b = {.entries = es, .entries_len = N};
    uint64_t seq;
    assert_int_equal(wal_append(w, &b, &seq), MOOR_OK);
    pthread_mutex_lock(&f->ffs.mu);
    while (!f->ffs.gate_entered) {
        pthread_cond_wait(&f->ffs.cond, &f->ffs.mu);
    }
    pthread_mutex_unlock(&f->ffs.mu);
    /* The writer holds the 6 MB batch while it writes it. */
    assert_true(moor_alloc_bytes() - before > 5u * 1024 * 1024);
    moor_bytes_unref(data);
    pthread_mutex_lock(&f->ffs.mu);
    f->ffs.gate_open = true;
    pthread_cond_broadcast(&f->ffs.cond);
    pthread_mutex_unlock(&f->ffs.mu);
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    /* The 6 MB batch buffer is gone once written (segment bookkeeping and
     * small buffers stay). */
    assert_true(moor_alloc_bytes() < before + 64 * 1024);
    wal_close(w);

    /* The batch spanned ~95 segments (64 KiB each); it replays whole. */
    w = open_wal(f, false, &r);
    assert_int_equal(r.entries_len, N);
    for (size_t i = 0; i < N; i++) {
        assert_true(r.entries[i].index == i + 1);
        assert_int_equal(r.entries[i].data->len, 50000);
        assert_int_equal(r.entries[i].data->data[49999], 7);
    }
    wal_replay_close(&r);
    wal_close(w);
}

/* A file system without fallocate: preallocation falls back to writing
 * zeros, and the log works the same. */
static int nofalloc_preallocate(void *arg, int fd, uint64_t len)
{
    (void)arg;
    return wal__fill_zeros(wal_fs_posix(), fd, len);
}

static void test_wal_works_where_fallocate_is_unsupported(void **state)
{
    struct fixture *f = *state;
    f->ffs.fs.preallocate = nofalloc_preallocate;
    struct wal_replay r;
    struct wal *w = open_wal(f, true, &r);
    wal_replay_close(&r);
    uint64_t seq = 0;
    for (uint64_t i = 1; i <= 200; i++) {
        assert_int_equal(append_one(w, i, 1, 700, &seq), MOOR_OK);
    }
    assert_int_equal(wait_durable(w, seq), MOOR_OK);
    wal_close(w);
    /* Every segment is full size and replays. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "find %s -name '*.wal' -size -%uc | wc -l",
             f->dir, SEG_BYTES);
    FILE *p = popen(cmd, "r");
    int small = -1;
    assert_int_equal(fscanf(p, "%d", &small), 1);
    pclose(p);
    assert_int_equal(small, 0);
    w = open_wal(f, true, &r);
    assert_int_equal(r.entries_len, 200);
    wal_replay_close(&r);
    wal_close(w);
}

static void test_wal_datadir_is_private_and_locked(void **state)
{
    struct fixture *f = *state;
    char data[512];
    snprintf(data, sizeof(data), "%s/data", f->dir);
    struct wal_datadir a;
    struct wal_datadir b;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(wal_datadir_open(&a, data, msg), MOOR_OK);
    struct stat st;
    assert_int_equal(stat(data, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(a.wal_dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(a.snap_dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(wal_datadir_open(&b, data, msg), MOOR_ELOCKED);
    assert_non_null(strstr(msg, "in use"));
    assert_non_null(strstr(msg, "member/lock"));
    wal_datadir_close(&a);
    assert_int_equal(wal_datadir_open(&b, data, msg), MOOR_OK);

    /* The meta file: absent, saved, loaded, damage refused. */
    struct wal_meta m;
    assert_int_equal(wal_datadir_meta_load(&b, &m, msg), MOOR_ENOENT);
    struct wal_meta want = {.cluster_id = 0xabcdef, .member_id = 42};
    assert_int_equal(wal_datadir_meta_save(&b, &want, msg), MOOR_OK);
    assert_int_equal(wal_datadir_meta_load(&b, &m, msg), MOOR_OK);
    assert_true(m.cluster_id == 0xabcdef && m.member_id == 42);
    char path[4200];
    snprintf(path, sizeof(path), "%s/meta", b.member_dir);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 20, SEEK_SET);
    fputc(0x55, fp);
    fclose(fp);
    assert_int_equal(wal_datadir_meta_load(&b, &m, msg), MOOR_ECORRUPT);
    assert_non_null(strstr(msg, "member/meta"));
    wal_datadir_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_wal_group_commit_syncs_batches_queued_during_a_sync_once),
        T(test_wal_write_enospc_poisons_with_its_own_error),
        T(test_wal_fdatasync_failure_poisons_and_is_never_retried),
        T(test_wal_without_pwrite_dsync_syncs_with_fdatasync),
        T(test_wal_segments_are_zero_filled_before_use),
        T(test_wal_short_writes_are_completed),
        T(test_wal_segment_creation_enospc_is_reported),
        T(test_wal_reports_nospace_early_and_recovers),
        T(test_wal_rollover_and_release_keep_max_wals_and_state),
        T(test_wal_append_refuses_bad_batches_and_queues_nothing),
        T(test_wal_pending_bound_returns_eagain),
        T(test_wal_gives_back_memory_after_a_burst),
        T(test_wal_works_where_fallocate_is_unsupported),
        T(test_wal_datadir_is_private_and_locked),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
