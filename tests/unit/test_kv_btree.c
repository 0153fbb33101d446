/*
 * test_kv_btree.c: the B+tree under kv/ (white box): random inserts and
 * removals against a sorted array, with every structural invariant checked
 * (order, separators, live counts per subtree, leaf links); ranks; seeks
 * and scans in both directions; ascending inserts packing leaves full; and
 * failed allocations leaving a valid tree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kv/kv_int.h"

#define N 6000

static struct kv_rec *mkrec(uint32_t i, bool live)
{
    char k[32];
    snprintf(k, sizeof(k), "%08u", i);
    struct kv_rec *r = kv__rec_new(moor_slice_str(k), moor_slice_make(NULL, 0));
    assert_non_null(r);
    r->version = live ? 1 : 0;
    return r;
}

static struct moor_slice key_of(uint32_t i, char *buf)
{
    snprintf(buf, 16, "%08u", i);
    return moor_slice_str(buf);
}

static void test_kv_btree_random_inserts_and_removals_keep_invariants(
    void **state)
{
    (void)state;
    struct kv_tree t;
    assert_int_equal(kv__tree_init(&t), MOOR_OK);
    /* present[i]: 0 absent, 1 dead, 2 live */
    static uint8_t present[N];
    static struct kv_rec *recs[N];
    memset(present, 0, sizeof(present));
    struct moor_prng prng;
    moor_prng_seed(&prng, 7);
    char buf[16];
    for (int step = 0; step < 40000; step++) {
        uint32_t i = (uint32_t)moor_prng_below(&prng, N);
        uint64_t c = moor_prng_below(&prng, 10);
        if (present[i] == 0 && c < 6) {
            bool live = c < 4;
            recs[i] = mkrec(i, live);
            assert_int_equal(kv__tree_insert(&t, recs[i]), MOOR_OK);
            present[i] = live ? 2 : 1;
        } else if (present[i] == 2 && c < 8) {
            recs[i]->version = 0;
            kv__tree_adjust_live(&t, key_of(i, buf), -1);
            present[i] = 1;
        } else if (present[i] == 1) {
            kv__tree_remove(&t, key_of(i, buf));
            moor_free(recs[i]);
            present[i] = 0;
        }
        if (step % 500 == 0) {
            assert_true(kv__tree_check(&t));
            /* Rank of a random key = live keys below it. */
            uint32_t j = (uint32_t)moor_prng_below(&prng, N);
            uint64_t expect = 0;
            for (uint32_t x = 0; x < j; x++) {
                expect += present[x] == 2 ? 1 : 0;
            }
            assert_int_equal(kv__tree_rank(&t, key_of(j, buf)), expect);
            /* find agrees with presence. */
            assert_int_equal(kv__tree_find(&t, key_of(j, buf)) != NULL,
                             present[j] != 0);
        }
    }
    assert_true(kv__tree_check(&t));
    /* Scans both ways visit exactly the present keys, in order. */
    struct kv_pos pos;
    kv__tree_seek(&t, moor_slice_make(NULL, 0), &pos);
    uint32_t expect_i = 0;
    struct kv_rec *r;
    while ((r = kv__pos_rec(&pos)) != NULL) {
        while (present[expect_i] == 0) {
            expect_i++;
        }
        assert_ptr_equal(r, recs[expect_i]);
        expect_i++;
        kv__pos_next(&pos);
    }
    kv__tree_seek_before(&t, moor_slice_make(NULL, 0), true, &pos);
    int32_t back = N - 1;
    while ((r = kv__pos_rec(&pos)) != NULL) {
        while (present[back] == 0) {
            back--;
        }
        assert_ptr_equal(r, recs[back]);
        back--;
        kv__pos_prev(&pos);
    }
    /* Seek before a key lands on the largest key below it. */
    kv__tree_seek_before(&t, key_of(N / 2, buf), false, &pos);
    int32_t below = N / 2 - 1;
    while (below >= 0 && present[below] == 0) {
        below--;
    }
    if (below >= 0) {
        assert_ptr_equal(kv__pos_rec(&pos), recs[below]);
    }
    /* Remove everything: one empty leaf remains. */
    for (uint32_t i = 0; i < N; i++) {
        if (present[i] == 2) {
            recs[i]->version = 0;
            kv__tree_adjust_live(&t, key_of(i, buf), -1);
        }
        if (present[i] != 0) {
            kv__tree_remove(&t, key_of(i, buf));
            moor_free(recs[i]);
        }
    }
    assert_true(kv__tree_check(&t));
    assert_int_equal(t.height, 0);
    assert_int_equal(t.n_keys, 0);
    kv__tree_close(&t);
}

static void test_kv_btree_ascending_inserts_pack_leaves_full(void **state)
{
    (void)state;
    struct kv_tree t;
    assert_int_equal(kv__tree_init(&t), MOOR_OK);
    for (uint32_t i = 0; i < 100000; i++) {
        assert_int_equal(kv__tree_insert(&t, mkrec(i, true)), MOOR_OK);
    }
    assert_true(kv__tree_check(&t));
    size_t leaves = 0;
    struct kv_pos pos;
    kv__tree_seek(&t, moor_slice_make(NULL, 0), &pos);
    for (struct kv_leaf *l = pos.leaf; l != NULL; l = l->next) {
        leaves++;
    }
    /* 100000 / 59 per leaf (the split keeps all but one on the left). */
    assert_true(leaves <= 100000 / (KV_LEAF_CAP - 1) + 2);
    char buf[16];
    assert_int_equal(kv__tree_rank(&t, key_of(77777, buf)), 77777);
    for (struct kv_leaf *l = pos.leaf; l != NULL; l = l->next) {
        for (uint32_t i = 0; i < l->n; i++) {
            moor_free(l->rec[i]);
        }
    }
    kv__tree_close(&t);
}

static void test_kv_btree_failed_allocations_leave_a_valid_tree(void **state)
{
    (void)state;
    struct kv_tree t;
    assert_int_equal(kv__tree_init(&t), MOOR_OK);
    struct moor_prng prng;
    moor_prng_seed(&prng, 3);
    static struct kv_rec *recs[N];
    static bool in[N];
    memset(in, 0, sizeof(in));
    for (int k = 0; k < 20000; k++) {
        uint32_t i = (uint32_t)moor_prng_below(&prng, N);
        if (in[i]) {
            continue;
        }
        recs[i] = mkrec(i, true);
        moor_alloc_fail_after((long)moor_prng_below(&prng, 3));
        int rv = kv__tree_insert(&t, recs[i]);
        moor_alloc_fail_after(-1);
        if (rv == MOOR_OK) {
            in[i] = true;
        } else {
            assert_int_equal(rv, MOOR_ENOMEM);
            char buf[16];
            assert_null(kv__tree_find(&t, key_of(i, buf)));
            moor_free(recs[i]);
        }
        if (k % 1000 == 0) {
            assert_true(kv__tree_check(&t));
        }
    }
    assert_true(kv__tree_check(&t));
    for (uint32_t i = 0; i < N; i++) {
        if (in[i]) {
            moor_free(recs[i]);
        }
    }
    kv__tree_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_kv_btree_random_inserts_and_removals_keep_invariants),
        cmocka_unit_test(test_kv_btree_ascending_inserts_pack_leaves_full),
        cmocka_unit_test(test_kv_btree_failed_allocations_leave_a_valid_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
