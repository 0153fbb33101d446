/* test_snapshot_restore.c: snap_restore (a backup into a fresh data dir for
 * a new cluster) and etcd's member and cluster ids. */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kv/kv.h"
#include "snapshot/snapshot.h"

static char root[256];

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof(root), "%s/moor-restore-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    return mkdtemp(root) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* Whether <root>/<rel> exists. */
static bool exists(const char *rel)
{
    char p[SNAP_PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    return access(p, F_OK) == 0;
}

/* A store with history: overwrites, deletes, leases with keys, a revoked
 * lease, a compaction. */
static struct kv_store *old_cluster_state(void)
{
    struct kv_store *s;
    assert_int_equal(kv_store_new(NULL, &s), MOOR_OK);
    uint64_t ix = 10;
    int64_t lease1, lease2, ttl;
    assert_int_equal(kv_lease_grant(s, ix++, 0, 600, 0, &lease1, &ttl),
                     MOOR_OK);
    assert_int_equal(kv_lease_grant(s, ix++, 77, 900, 0, &lease2, &ttl),
                     MOOR_OK);
    for (unsigned i = 0; i < 500; i++) {
        char key[32], val[32];
        snprintf(key, sizeof(key), "k/%04u", i % 300);
        snprintf(val, sizeof(val), "v%u", i);
        struct kv_put_req req = {
            .key = moor_slice_str(key),
            .value = moor_slice_str(val),
            .lease = i % 7 == 0 ? lease1 : (i % 11 == 0 ? lease2 : 0),
        };
        struct kv_put_resp resp;
        assert_int_equal(kv_put(s, ix++, &req, &resp), MOOR_OK);
    }
    struct kv_delete_req del = {.key = moor_slice_str("k/0100"),
                                .range_end = moor_slice_str("k/0120")};
    struct kv_delete_resp dresp;
    kv_delete_resp_init(&dresp);
    assert_int_equal(kv_delete(s, ix++, &del, &dresp), MOOR_OK);
    kv_delete_resp_close(&dresp);
    assert_int_equal(kv_compact(s, ix++, 200), MOOR_OK);
    while (kv_compact_step(s, 64)) {
    }
    int64_t rev;
    assert_int_equal(kv_lease_revoke(s, ix++, lease2, &rev), MOOR_OK);
    return s;
}

struct dump_arg
{
    struct kv_dump d;
    struct moor_buf b;
};

static int produce(void *arg, struct moor_slice *chunk)
{
    struct dump_arg *a = arg;
    moor_buf_reset(&a->b);
    bool done;
    int rv = kv_dump_next(&a->d, &a->b, 4096, &done);
    *chunk = moor_slice_make(a->b.ptr, a->b.len);
    return rv;
}

/* Saves s as the old cluster's backup at <root>/backup/; returns its path
 * in path. */
static void save_backup(struct kv_store *s, char *path)
{
    char dir[SNAP_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/backup", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    struct moor_bytes *old_members = moor_bytes_copy("old cluster", 11);
    struct snap_meta m = {
        .term = 7,
        .index = kv_store_applied_index(s),
        .applied_index = kv_store_applied_index(s),
        .revision = (uint64_t)kv_store_revision(s),
        .compact_revision = (uint64_t)kv_store_compact_revision(s),
        .key_count = kv_store_live_count(s),
        .lease_count = kv_lease_count(s),
        .membership = old_members,
    };
    struct dump_arg a;
    moor_buf_init(&a.b);
    assert_int_equal(kv_dump_open(s, &a.d), MOOR_OK);
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_save(dir, &m, produce, &a, path, msg), MOOR_OK);
    kv_dump_close(&a.d);
    moor_buf_close(&a.b);
    moor_bytes_unref(old_members);
}

static int load_cb(void *arg, const uint8_t *data, size_t len)
{
    return kv_load_feed(arg, data, len);
}

struct progress_seen
{
    unsigned calls[3];
    bool bad;
};

static void progress_cb(void *arg, enum snap_restore_phase phase, uint64_t done,
                        uint64_t total)
{
    struct progress_seen *p = arg;
    p->calls[phase]++;
    p->bad |= done > total;
}

static void test_member_and_cluster_ids_are_etcds(void **state)
{
    (void)state;
    /* etcd 3.4's defaults: `etcdctl snapshot restore` logs these. */
    const char *urls[] = {"http://localhost:2380"};
    uint64_t id = snap_member_id(urls, 1, "etcd-cluster");
    assert_true(id == 0x8e9e05c52164694dull);
    assert_true(snap_cluster_id(&id, 1) == 0xcdf818194e3a8c32ull);
    /* The URLs are sorted first: their order does not matter. */
    const char *ab[] = {"http://a:1", "http://b:2"};
    const char *ba[] = {"http://b:2", "http://a:1"};
    assert_true(snap_member_id(ab, 2, "t") == snap_member_id(ba, 2, "t"));
    assert_true(snap_member_id(ab, 2, "t") != snap_member_id(ab, 2, "u"));
}

static void test_restore_keeps_the_keyspace_and_starts_a_new_log(void **state)
{
    (void)state;
    struct kv_store *s = old_cluster_state();
    char backup[SNAP_PATH_MAX];
    save_backup(s, backup);

    char data[SNAP_PATH_MAX];
    snprintf(data, sizeof(data), "%s/new/m1.etcd", root); /* parent missing */
    struct moor_bytes *members = moor_bytes_copy("new members", 11);
    struct progress_seen seen = {{0}, false};
    struct snap_restore_opts o = {backup, data, members, progress_cb, &seen};
    struct snap_restore_result res;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_restore(&o, &res, msg), MOOR_OK);
    assert_true(seen.calls[SNAP_RESTORE_VERIFY] == 1 &&
                seen.calls[SNAP_RESTORE_LOAD] > 0 &&
                seen.calls[SNAP_RESTORE_WRITE] > 0 && !seen.bad);

    /* The layout moord expects: member/snap/1-1.snap, 0700, no WAL. */
    assert_true(
        exists("new/m1.etcd/member/snap/"
               "0000000000000001-0000000000000001.snap"));
    assert_false(exists("new/m1.etcd/member/wal"));
    struct stat st;
    assert_int_equal(stat(res.snap_dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    struct kv_store *r;
    assert_int_equal(kv_store_new(NULL, &r), MOOR_OK);
    struct kv_load l;
    assert_int_equal(kv_load_open(r, &l), MOOR_OK);
    struct snap_meta m;
    assert_int_equal(snap_load(res.path, &m, load_cb, &l, msg), MOOR_OK);
    assert_int_equal(kv_load_finish(&l), MOOR_OK);
    kv_load_close(&l);
    assert_true(m.term == 1 && m.index == 1 && m.applied_index == 1);
    assert_true(kv_store_applied_index(r) == 1);
    assert_true(m.revision == (uint64_t)kv_store_revision(s) &&
                res.revision == m.revision);
    assert_true(m.compact_revision == 200 && res.compact_revision == 200);
    assert_true(m.key_count == kv_store_live_count(s) && m.lease_count == 1 &&
                res.lease_count == 1);
    assert_non_null(m.membership);
    assert_memory_equal(m.membership->data, "new members", 11);
    /* Every key, version, revision and lease: the whole-state hash. */
    assert_int_equal(kv_hash(r), kv_hash(s));
    uint32_t h1, h2;
    int64_t c1, c2, r1, r2;
    assert_int_equal(kv_hash_kv(s, 0, &h1, &c1, &r1), MOOR_OK);
    assert_int_equal(kv_hash_kv(r, 0, &h2, &c2, &r2), MOOR_OK);
    assert_true(h1 == h2 && c1 == c2 && r1 == r2);
    /* A new cluster's entries apply from index 2. */
    struct kv_put_req req = {.key = moor_slice_str("after"),
                             .value = moor_slice_str("restore")};
    struct kv_put_resp resp;
    assert_int_equal(kv_put(r, 2, &req, &resp), MOOR_OK);
    assert_true(resp.revision == kv_store_revision(s) + 1);

    snap_meta_close(&m);
    kv_store_free(r);
    kv_store_free(s);
    moor_bytes_unref(members);
}

static void test_restore_refuses_a_data_dir_that_is_not_empty(void **state)
{
    (void)state;
    struct kv_store *s = old_cluster_state();
    char backup[SNAP_PATH_MAX];
    save_backup(s, backup);
    kv_store_free(s);
    struct moor_bytes *members = moor_bytes_copy("x", 1);
    char data[SNAP_PATH_MAX], file[SNAP_PATH_MAX];
    snprintf(data, sizeof(data), "%s/full", root);
    snprintf(file, sizeof(file), "%s/full/keep", root);
    assert_int_equal(mkdir(data, 0700), 0);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct snap_restore_opts o = {backup, data, members, NULL, NULL};
    struct snap_restore_result res;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_restore(&o, &res, msg), MOOR_EEXIST);
    assert_non_null(strstr(msg, "not empty"));
    assert_false(exists("full/member"));
    /* A regular file is no data dir either. */
    o.data_dir = file;
    assert_int_equal(snap_restore(&o, &res, msg), MOOR_EEXIST);
    /* An existing empty directory is fine (a mounted volume). */
    assert_int_equal(unlink(file), 0);
    o.data_dir = data;
    assert_int_equal(snap_restore(&o, &res, msg), MOOR_OK);
    assert_true(exists("full/member/snap"));
    moor_bytes_unref(members);
}

/* Copies backup to <root>/<name>, first keep bytes only, byte at flip (if
 * below keep) xor 0x40. */
static void damaged_copy(const char *backup, const char *name, size_t keep,
                         size_t flip, char *out)
{
    FILE *in = fopen(backup, "rb");
    assert_non_null(in);
    snprintf(out, SNAP_PATH_MAX, "%s/%s", root, name);
    FILE *f = fopen(out, "wb");
    assert_non_null(f);
    int c;
    for (size_t i = 0; i < keep && (c = fgetc(in)) != EOF; i++) {
        fputc(i == flip ? c ^ 0x40 : c, f);
    }
    fclose(in);
    fclose(f);
}

static void test_restore_refuses_a_corrupt_or_truncated_backup(void **state)
{
    (void)state;
    struct kv_store *s = old_cluster_state();
    char backup[SNAP_PATH_MAX];
    save_backup(s, backup);
    kv_store_free(s);
    struct stat st;
    assert_int_equal(stat(backup, &st), 0);
    size_t size = (size_t)st.st_size;
    struct moor_bytes *members = moor_bytes_copy("x", 1);
    char data[SNAP_PATH_MAX];
    snprintf(data, sizeof(data), "%s/data", root);
    struct
    {
        const char *name;
        size_t keep, flip;
        const char *says;
    } cases[] = {
        {"flipped.db", size, size / 2, "SHA-256 mismatch"},
        {"truncated.db", size - 100, SIZE_MAX, "bad trailer magic"},
        {"header.db", 60, SIZE_MAX, "too short"},
        {"empty.db", 0, SIZE_MAX, "too short"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[SNAP_PATH_MAX];
        damaged_copy(backup, cases[i].name, cases[i].keep, cases[i].flip, path);
        struct snap_restore_opts o = {path, data, members, NULL, NULL};
        struct snap_restore_result res;
        char msg[MOOR_ERRMSG_SIZE] = "";
        assert_int_equal(snap_restore(&o, &res, msg), MOOR_ECORRUPT);
        /* The message names the file and the problem. */
        assert_non_null(strstr(msg, cases[i].name));
        assert_non_null(strstr(msg, cases[i].says));
        assert_false(exists("data"));
    }
    char missing[SNAP_PATH_MAX];
    snprintf(missing, sizeof(missing), "%s/nope.db", root);
    struct snap_restore_opts o = {missing, data, members, NULL, NULL};
    struct snap_restore_result res;
    assert_int_equal(snap_restore(&o, &res, NULL), MOOR_ENOENT);
    assert_false(exists("data"));
    moor_bytes_unref(members);
}

static int bytes_produce(void *arg, struct moor_slice *chunk)
{
    struct moor_slice *left = arg;
    *chunk = *left;
    left->len = 0;
    return MOOR_OK;
}

static void test_restore_refuses_a_well_formed_file_with_a_bad_kv_stream(
    void **state)
{
    (void)state;
    /* The file's SHA-256 and lz4 frame are right, but what they carry is
     * not a kv dump: kv's own checks refuse it, nothing is created. */
    char dir[SNAP_PATH_MAX], path[SNAP_PATH_MAX], data[SNAP_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/odd", root);
    snprintf(data, sizeof(data), "%s/data", root);
    assert_int_equal(mkdir(dir, 0700), 0);
    struct snap_meta m = {.term = 1, .index = 5, .revision = 3};
    struct moor_slice junk = moor_slice_str("MOORKV\0\1 but not really a dump");
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_save(dir, &m, bytes_produce, &junk, path, msg),
                     MOOR_OK);
    struct moor_bytes *members = moor_bytes_copy("x", 1);
    struct snap_restore_opts o = {path, data, members, NULL, NULL};
    struct snap_restore_result res;
    assert_int_equal(snap_restore(&o, &res, msg), MOOR_ECORRUPT);
    assert_non_null(strstr(msg, "kv load"));
    assert_non_null(strstr(msg, path));
    assert_false(exists("data"));
    /* No membership: a usage error, nothing touched. */
    o.membership = NULL;
    assert_int_equal(snap_restore(&o, &res, msg), MOOR_EINVAL);
    moor_bytes_unref(members);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_and_cluster_ids_are_etcds),
        cmocka_unit_test_setup_teardown(
            test_restore_keeps_the_keyspace_and_starts_a_new_log, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_restore_refuses_a_data_dir_that_is_not_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_restore_refuses_a_corrupt_or_truncated_backup, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_restore_refuses_a_well_formed_file_with_a_bad_kv_stream, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
