/*
 * test_kv_model.c: the randomized model test. Seeded sequences of put,
 * delete, txn (nested too), lease grant/revoke, compact (with physical
 * compaction steps interleaved at random), range and watch run against the
 * store and against a deliberately simple reference model (a flat list of
 * every version ever written), compared after every step; at the end of
 * each sequence the watchers' delivered events are compared with the
 * model's history and the store is dumped, loaded into a fresh store and
 * compared again.
 *
 * A failure prints the seed; MOOR_KV_MODEL_SEED=<n> replays one seed and
 * MOOR_KV_MODEL_SEEDS=<n> runs more of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#define KV_MODEL_CMOCKA
#include "test_kv_model.h"

static void test_kv_model_random_sequences_match_the_reference(void **state)
{
    (void)state;
    size_t before = moor_alloc_count();
    const char *one = getenv("MOOR_KV_MODEL_SEED");
    if (one != NULL) {
        kv_model_run(strtoull(one, NULL, 10), NULL, 0, 150);
        return;
    }
    const char *many = getenv("MOOR_KV_MODEL_SEEDS");
    uint64_t seeds = many != NULL ? strtoull(many, NULL, 10) : 1000;
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        kv_model_run(seed, NULL, 0, 150);
    }
    /* Everything the store allocated was freed. */
    assert_int_equal(moor_alloc_count(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_model_random_sequences_match_the_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
