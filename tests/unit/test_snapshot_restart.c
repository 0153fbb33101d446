/* test_snapshot_restart.c: the restart rule that snapshot/ and wal/ give
 * together (the server's open sequence): choose the newest snapshot that
 * verifies; a damaged newest one is skipped only when the older one plus
 * the WAL still covers the state; otherwise opening fails. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "snapshot/snapshot.h"
#include "wal/wal.h"

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

struct member
{
    char root[256];
    struct wal_datadir dd;
};

static int setup(void **state)
{
    struct member *m = calloc(1, sizeof(*m));
    const char *tmp = getenv("TMPDIR");
    snprintf(m->root, sizeof(m->root), "%s/moor-restart-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(m->root) == NULL ||
        wal_datadir_open(&m->dd, m->root, NULL) != MOOR_OK) {
        return -1;
    }
    moor_log_set_sink(quiet_sink, NULL);
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    struct member *m = *state;
    wal_datadir_close(&m->dd);
    nftw(m->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(m);
    moor_log_set_sink(NULL, NULL);
    return 0;
}

static struct wal_options wal_opts(struct member *m, struct wal_snapshot s)
{
    struct wal_options o = {
        .dir = m->dd.wal_dir,
        .segment_bytes = 64 * 1024,
        .max_wals = 1,
        .meta = {.cluster_id = 5, .member_id = 6},
        .start = s,
    };
    return o;
}

static int empty_stream(void *arg, struct moor_slice *chunk)
{
    (void)arg;
    chunk->len = 0;
    return 0;
}

/* Appends entries [first, last] (term 1, 500 bytes each) one per batch. */
static void append(struct wal *w, uint64_t first, uint64_t last)
{
    struct moor_bytes *d = moor_bytes_new(500);
    memset(d->data, 1, 500);
    for (uint64_t i = first; i <= last; i++) {
        struct raft_entry e = {.term = 1, .index = i, .data = d};
        struct raft_hard_state hs = {.term = 1, .commit = i};
        struct wal_batch b = {
            .entries = &e, .entries_len = 1, .hard_state = &hs};
        assert_int_equal(wal_append(w, &b, NULL), MOOR_OK);
    }
    moor_bytes_unref(d);
}

/* Takes a snapshot at index: the file first, then marker and release. */
static void snapshot_at(struct member *m, struct wal *w, uint64_t index,
                        bool release)
{
    struct snap_meta sm = {.term = 1, .index = index, .applied_index = index};
    assert_int_equal(
        snap_save(m->dd.snap_dir, &sm, empty_stream, NULL, NULL, NULL),
        MOOR_OK);
    struct wal_snapshot s = {.term = 1, .index = index};
    struct wal_batch b = {.snapshot = &s, .release_index = release ? index : 0};
    assert_int_equal(wal_append(w, &b, NULL), MOOR_OK);
}

/* The server's restart: newest valid snapshot, then the WAL from it. */
static int restart(struct member *m, uint64_t *start, size_t *skipped,
                   size_t *entries)
{
    struct snap_meta sm;
    char path[SNAP_PATH_MAX];
    int rv = snap_open_newest(m->dd.snap_dir, &sm, path, skipped, NULL);
    if (rv != MOOR_OK) {
        return rv;
    }
    *start = sm.index;
    struct wal_snapshot s = {.term = sm.term, .index = sm.index};
    snap_meta_close(&sm);
    struct wal_options o = wal_opts(m, s);
    struct wal *w;
    struct wal_replay r;
    rv = wal_open(&o, &w, &r, NULL);
    if (rv != MOOR_OK) {
        return rv;
    }
    *entries = r.entries_len;
    wal_replay_close(&r);
    wal_close(w);
    return MOOR_OK;
}

static void corrupt_newest(struct member *m)
{
    struct snap_file *files;
    size_t n;
    assert_int_equal(snap_list(m->dd.snap_dir, &files, &n), MOOR_OK);
    char name[SNAP_NAME_BYTES];
    char path[SNAP_PATH_MAX];
    snap_name(name, files[0].term, files[0].index);
    snprintf(path, sizeof(path), "%s/%s", m->dd.snap_dir, name);
    moor_free(files);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 20, SEEK_SET);
    fputc(0x7f, fp);
    fclose(fp);
}

static void test_snapshot_bad_newest_is_skipped_when_the_wal_covers(
    void **state)
{
    struct member *m = *state;
    struct wal_options o = wal_opts(m, (struct wal_snapshot){0, 0});
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    wal_replay_close(&r);
    append(w, 1, 100);
    snapshot_at(m, w, 100, true);
    append(w, 101, 200);
    snapshot_at(m, w, 200, false); /* not released yet */
    append(w, 201, 220);
    wal_close(w);

    corrupt_newest(m);
    uint64_t start = 0;
    size_t skipped = 0;
    size_t entries = 0;
    assert_int_equal(restart(m, &start, &skipped, &entries), MOOR_OK);
    assert_true(start == 100 && skipped == 1);
    assert_int_equal(entries, 120); /* 101..220 from the WAL */
}

static void test_snapshot_bad_newest_fails_the_open_when_the_wal_does_not(
    void **state)
{
    struct member *m = *state;
    struct wal_options o = wal_opts(m, (struct wal_snapshot){0, 0});
    struct wal *w;
    struct wal_replay r;
    assert_int_equal(wal_open(&o, &w, &r, NULL), MOOR_OK);
    wal_replay_close(&r);
    append(w, 1, 100);
    snapshot_at(m, w, 100, true);
    append(w, 101, 400);          /* ~170 KiB: several 64 KiB segments */
    snapshot_at(m, w, 400, true); /* releases what 400 covers */
    append(w, 401, 420);
    wal_close(w);

    corrupt_newest(m);
    uint64_t start = 0;
    size_t skipped = 0;
    size_t entries = 0;
    /* Snapshot 100 verifies, but entries 101.. are gone with the released
     * segments: the member must not start. */
    assert_int_equal(restart(m, &start, &skipped, &entries), MOOR_ENOENT);
    assert_true(start == 100 && skipped == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_snapshot_bad_newest_is_skipped_when_the_wal_covers),
        T(test_snapshot_bad_newest_fails_the_open_when_the_wal_does_not),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
