/*
 * test_kv_dump.c: dump and load: a dump shows the state at the revision it
 * was opened at while writes continue between chunks, it round-trips into
 * an empty store (keys, history, leases, meta), every corrupted byte and
 * every truncation is refused, and a store that is not empty is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "kv/kv.h"

static uint64_t g_index;

static void put(struct kv_store *s, const char *k, const char *v, int64_t lease)
{
    struct kv_put_req p = {0};
    p.key = moor_slice_str(k);
    p.value = moor_slice_str(v);
    p.lease = lease;
    struct kv_put_resp r;
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_OK);
}

static struct kv_store *populated(void)
{
    struct kv_store *s = NULL;
    assert_int_equal(kv_store_new(NULL, &s), MOOR_OK);
    g_index = 0;
    int64_t id = 0, ttl = 0;
    assert_int_equal(kv_lease_grant(s, ++g_index, 42, 30, 0, &id, &ttl),
                     MOOR_OK);
    char k[32], v[32];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof(k), "key%03d", i % 120);
        snprintf(v, sizeof(v), "value%d", i);
        put(s, k, v, i % 7 == 0 ? 42 : 0);
    }
    struct kv_delete_req d = {0};
    d.key = moor_slice_str("key050");
    d.range_end = moor_slice_str("key060");
    struct kv_delete_resp dr;
    kv_delete_resp_init(&dr);
    assert_int_equal(kv_delete(s, ++g_index, &d, &dr), MOOR_OK);
    kv_delete_resp_close(&dr);
    assert_int_equal(kv_compact(s, ++g_index, 200), MOOR_OK);
    (void)kv_compact_step(s, 30); /* partly compacted on purpose */
    return s;
}

static void dump_all(struct kv_store *s, struct moor_buf *out, size_t chunk,
                     bool write_between)
{
    struct kv_dump d;
    assert_int_equal(kv_dump_open(s, &d), MOOR_OK);
    bool done = false;
    int i = 0;
    while (!done) {
        assert_int_equal(kv_dump_next(&d, out, chunk, &done), MOOR_OK);
        if (write_between) {
            char k[32];
            snprintf(k, sizeof(k), "key%03d", (i++ * 37) % 130);
            put(s, k, "later", 0);
            /* Compaction is paused while the dump is open. */
            assert_true(kv_compact_step(s, 1000) ||
                        kv_store_compact_revision(s) == 200);
        }
    }
    kv_dump_close(&d);
}

static int load_all(struct kv_store *t, const uint8_t *p, size_t n,
                    size_t piece)
{
    struct kv_load l;
    assert_int_equal(kv_load_open(t, &l), MOOR_OK);
    int rv = MOOR_OK;
    for (size_t off = 0; off < n && rv == MOOR_OK; off += piece) {
        rv = kv_load_feed(&l, p + off, piece < n - off ? piece : n - off);
    }
    if (rv == MOOR_OK) {
        rv = kv_load_finish(&l);
    }
    kv_load_close(&l);
    return rv;
}

static void test_kv_dump_shows_the_open_revision_while_writes_continue(
    void **state)
{
    (void)state;
    struct kv_store *a = populated();
    struct kv_store *b = populated();
    struct moor_buf quiet, busy;
    moor_buf_init(&quiet);
    moor_buf_init(&busy);
    dump_all(a, &quiet, 100, false);
    dump_all(b, &busy, 100, true);
    assert_int_equal(quiet.len, busy.len);
    assert_memory_equal(quiet.ptr, busy.ptr, quiet.len);
    assert_true(kv_store_revision(b) > kv_store_revision(a));
    moor_buf_close(&quiet);
    moor_buf_close(&busy);
    kv_store_free(a);
    kv_store_free(b);
}

static void test_kv_dump_round_trips_keys_history_leases_and_meta(void **state)
{
    (void)state;
    struct kv_store *a = populated();
    struct moor_buf out;
    moor_buf_init(&out);
    dump_all(a, &out, 1 << 20, false);
    struct kv_store *t = NULL;
    assert_int_equal(kv_store_new(NULL, &t), MOOR_OK);
    assert_int_equal(load_all(t, out.ptr, out.len, 7), MOOR_OK);
    assert_int_equal(kv_store_revision(t), kv_store_revision(a));
    assert_int_equal(kv_store_compact_revision(t), 200);
    assert_int_equal(kv_store_applied_index(t), kv_store_applied_index(a));
    assert_int_equal(kv_hash(t), kv_hash(a));
    struct kv_lease_info ia, it;
    kv_lease_time_to_live(a, 42, 0, &ia);
    kv_lease_time_to_live(t, 42, 0, &it);
    assert_int_equal(ia.n_keys, it.n_keys);
    assert_true(it.n_keys > 0);
    /* History above the compact revision is there. */
    struct kv_range_req q = {0};
    q.key = moor_slice_str("key010");
    q.revision = 205;
    struct kv_range_resp ra, rt;
    kv_range_resp_init(&ra);
    kv_range_resp_init(&rt);
    assert_int_equal(kv_range(a, &q, &ra), MOOR_OK);
    assert_int_equal(kv_range(t, &q, &rt), MOOR_OK);
    assert_int_equal(ra.n, rt.n);
    kv_range_resp_close(&ra);
    kv_range_resp_close(&rt);
    /* Loading needs an empty store. */
    struct kv_load l;
    assert_int_equal(kv_load_open(t, &l), MOOR_EINVAL);
    moor_buf_close(&out);
    kv_store_free(a);
    kv_store_free(t);
}

static void test_kv_dump_every_corrupted_byte_and_truncation_is_refused(
    void **state)
{
    (void)state;
    struct kv_store *a = NULL;
    assert_int_equal(kv_store_new(NULL, &a), MOOR_OK);
    g_index = 0;
    int64_t id = 0, ttl = 0;
    assert_int_equal(kv_lease_grant(a, ++g_index, 9, 10, 0, &id, &ttl),
                     MOOR_OK);
    put(a, "a", "1", 9);
    put(a, "b", "2", 0);
    put(a, "a", "3", 0);
    struct moor_buf out;
    moor_buf_init(&out);
    dump_all(a, &out, 1 << 20, false);
    for (size_t i = 0; i < out.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            out.ptr[i] ^= (uint8_t)(1u << bit);
            struct kv_store *t = NULL;
            assert_int_equal(kv_store_new(NULL, &t), MOOR_OK);
            int rv = load_all(t, out.ptr, out.len, 5);
            if (rv != MOOR_ECORRUPT) {
                fail_msg("flip of bit %d at byte %zu: %s", bit, i,
                         moor_errname(rv));
            }
            kv_store_free(t);
            out.ptr[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t n = 0; n < out.len; n++) {
        struct kv_store *t = NULL;
        assert_int_equal(kv_store_new(NULL, &t), MOOR_OK);
        assert_int_equal(load_all(t, out.ptr, n, 3), MOOR_ECORRUPT);
        kv_store_free(t);
    }
    moor_buf_close(&out);
    kv_store_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_kv_dump_shows_the_open_revision_while_writes_continue),
        cmocka_unit_test(test_kv_dump_round_trips_keys_history_leases_and_meta),
        cmocka_unit_test(
            test_kv_dump_every_corrupted_byte_and_truncation_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
