/* test_snapshot_kv.c: the glue server/ will use, end to end: a kv store's
 * dump, chunk by chunk, into a snapshot file; the file loaded back through
 * the consumer callback into an empty store; both stores hash the same.
 * snapshot/ itself does not link kv/ (the dump runs on the loop thread,
 * the file work on worker threads); this test links both. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "kv/kv.h"
#include "snapshot/snapshot.h"

static int rm_cb(const char *path, const struct stat *st, int flag,
                 struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int feed(void *arg, const uint8_t *data, size_t len)
{
    return kv_load_feed(arg, data, len);
}

static void test_snapshot_carries_a_kv_dump_into_an_equal_store(void **state)
{
    (void)state;
    char dir[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/moor-snapkv-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));

    struct kv_store *s;
    assert_int_equal(kv_store_new(NULL, &s), MOOR_OK);
    uint8_t value[600];
    for (size_t i = 0; i < sizeof(value); i++) {
        value[i] = (uint8_t)(i * 7);
    }
    for (uint64_t i = 1; i <= 3000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key/%05u", (unsigned)(i % 1700));
        struct kv_put_req req = {
            .key = moor_slice_str(key),
            .value = moor_slice_make(value, (size_t)(i * 37 % sizeof(value))),
        };
        struct kv_put_resp resp;
        assert_int_equal(kv_put(s, i, &req, &resp), MOOR_OK);
    }

    /* Dump in bounded chunks straight into the snapshot writer. */
    struct snap_meta m = {
        .term = 3,
        .index = kv_store_applied_index(s),
        .applied_index = kv_store_applied_index(s),
        .revision = (uint64_t)kv_store_revision(s),
        .compact_revision = (uint64_t)kv_store_compact_revision(s),
        .key_count = kv_store_key_count(s),
    };
    struct snap_writer *sw;
    char msg[MOOR_ERRMSG_SIZE];
    assert_int_equal(snap_writer_open(&sw, dir, &m, msg), MOOR_OK);
    struct kv_dump d;
    assert_int_equal(kv_dump_open(s, &d), MOOR_OK);
    struct moor_buf chunk;
    moor_buf_init(&chunk);
    bool done = false;
    size_t chunks = 0;
    while (!done) {
        moor_buf_reset(&chunk);
        assert_int_equal(kv_dump_next(&d, &chunk, 16 * 1024, &done), MOOR_OK);
        assert_int_equal(snap_writer_append(sw, chunk.ptr, chunk.len), MOOR_OK);
        chunks++;
    }
    kv_dump_close(&d);
    moor_buf_close(&chunk);
    char path[SNAP_PATH_MAX];
    assert_int_equal(snap_writer_finish(sw, path), MOOR_OK);
    snap_writer_close(sw);
    assert_true(chunks > 10);

    /* Load it into an empty store through the consumer callback. */
    struct kv_store *s2;
    assert_int_equal(kv_store_new(NULL, &s2), MOOR_OK);
    struct kv_load l;
    assert_int_equal(kv_load_open(s2, &l), MOOR_OK);
    struct snap_meta got;
    assert_int_equal(snap_load(path, &got, feed, &l, msg), MOOR_OK);
    assert_int_equal(kv_load_finish(&l), MOOR_OK);
    kv_load_close(&l);
    assert_true(got.index == 3000 && got.term == 3);
    assert_true(got.revision == (uint64_t)kv_store_revision(s2));
    assert_true(got.key_count == kv_store_key_count(s2));
    assert_true(kv_store_applied_index(s2) == 3000);
    assert_int_equal(kv_hash(s2), kv_hash(s));
    snap_meta_close(&got);

    kv_store_free(s);
    kv_store_free(s2);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_carries_a_kv_dump_into_an_equal_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
