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
#include <string.h>

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

/* Keys of every length from 0 to ~50 bytes, many sharing long prefixes
 * (longer than a leaf's inline prefix), some prefixes of others, with NUL
 * and 0xff bytes: the leaves' prefix search must order them exactly as
 * memcmp does, whatever prefix a leaf holds. */
#define MIXED 3000

static size_t mixed_key(struct moor_prng *p, uint8_t *out)
{
    static const char *const stems[] = {
        "",
        "a",
        "ab",
        "/registry/pods/default/",
        "/registry/pods/kube-system/a-rather-long-pod-name-",
        "zz"};
    static const uint8_t tail[] = {0x00, 'a', 'b', 0xff};
    const char *stem = stems[moor_prng_below(p, MOOR_ARRAY_LEN(stems))];
    size_t n = strlen(stem);
    memcpy(out, stem, n);
    size_t extra = (size_t)moor_prng_below(p, 5);
    for (size_t i = 0; i < extra; i++) {
        out[n++] = tail[moor_prng_below(p, sizeof(tail))];
    }
    return n;
}

static int slice_cmp_p(const void *a, const void *b)
{
    const struct kv_rec *x = *(struct kv_rec *const *)a;
    const struct kv_rec *y = *(struct kv_rec *const *)b;
    return moor_slice_cmp(kv__rec_key(x), kv__rec_key(y));
}

static void test_kv_btree_mixed_length_keys_search_like_memcmp(void **state)
{
    (void)state;
    struct kv_tree t;
    assert_int_equal(kv__tree_init(&t), MOOR_OK);
    static struct kv_rec *model[MIXED]; /* sorted */
    size_t n = 0;
    struct moor_prng prng;
    moor_prng_seed(&prng, 11);
    uint8_t k[64];
    for (int step = 0; step < 30000; step++) {
        size_t len = mixed_key(&prng, k);
        struct moor_slice key = moor_slice_make(k, len);
        /* lower bound in the model */
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (moor_slice_cmp(kv__rec_key(model[mid]), key) < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        bool present = lo < n && moor_slice_eq(kv__rec_key(model[lo]), key);
        struct kv_rec **slot = kv__tree_find(&t, key);
        assert_int_equal(slot != NULL, present);
        struct kv_pos pos;
        kv__tree_seek(&t, key, &pos);
        if (lo < n) {
            assert_non_null(pos.leaf);
            assert_true(pos.i < pos.leaf->n);
            assert_ptr_equal(pos.leaf->rec[pos.i], model[lo]);
        } else {
            assert_true(pos.leaf == NULL || pos.i >= pos.leaf->n);
        }
        if (!present && n < MIXED && moor_prng_below(&prng, 3) != 0) {
            struct kv_rec *r = kv__rec_new(key, moor_slice_make(NULL, 0));
            assert_non_null(r);
            r->version = 0;
            assert_int_equal(kv__tree_insert(&t, r), MOOR_OK);
            memmove(&model[lo + 1], &model[lo], (n - lo) * sizeof(model[0]));
            model[lo] = r;
            n++;
        } else if (present && moor_prng_below(&prng, 2) == 0) {
            kv__tree_remove(&t, key);
            moor_free(model[lo]);
            memmove(&model[lo], &model[lo + 1],
                    (n - lo - 1) * sizeof(model[0]));
            n--;
        }
        if (step % 250 == 0) {
            assert_true(kv__tree_check(&t));
            assert_int_equal(t.n_keys, n);
        }
    }
    assert_true(kv__tree_check(&t));
    /* A scan visits the model's keys in order. */
    struct kv_pos pos;
    kv__tree_seek(&t, moor_slice_make(NULL, 0), &pos);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(pos.leaf);
        assert_ptr_equal(pos.leaf->rec[pos.i], model[i]);
        kv__pos_next(&pos);
    }
    qsort(model, n, sizeof(model[0]), slice_cmp_p); /* already sorted */
    for (size_t i = 0; i < n; i++) {
        kv__tree_remove(&t, kv__rec_key(model[i]));
        moor_free(model[i]);
    }
    assert_true(kv__tree_check(&t));
    kv__tree_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_kv_btree_random_inserts_and_removals_keep_invariants),
        cmocka_unit_test(test_kv_btree_ascending_inserts_pack_leaves_full),
        cmocka_unit_test(test_kv_btree_failed_allocations_leave_a_valid_tree),
        cmocka_unit_test(test_kv_btree_mixed_length_keys_search_like_memcmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
