/*
 * test_kv_lease.c: leases: grant (given and generated ids, the minimum
 * TTL, the maximum), attach through put, revoke deleting the keys in one
 * revision, keep-alive, time-to-live, the expiry queue driven by the
 * caller's time, checkpoints and promotion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "kv/kv.h"

static uint64_t g_index;

static struct kv_store *new_store(void)
{
    struct kv_store *s = NULL;
    assert_int_equal(kv_store_new(NULL, &s), MOOR_OK);
    g_index = 0;
    return s;
}

static int put_lease(struct kv_store *s, const char *k, int64_t lease)
{
    struct kv_put_req p = {0};
    p.key = moor_slice_str(k);
    p.value = moor_slice_str("v");
    p.lease = lease;
    struct kv_put_resp r;
    return kv_put(s, ++g_index, &p, &r);
}

static int64_t grant(struct kv_store *s, int64_t id, int64_t ttl, uint64_t now)
{
    int64_t got = 0;
    int64_t ttl_out = 0;
    assert_int_equal(kv_lease_grant(s, ++g_index, id, ttl, now, &got, &ttl_out),
                     MOOR_OK);
    return got;
}

static void test_kv_lease_grant_rules(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    int64_t id = 0;
    int64_t ttl = 0;
    /* Below the minimum: raised to it. */
    assert_int_equal(kv_lease_grant(s, ++g_index, 7, 1, 0, &id, &ttl), MOOR_OK);
    assert_int_equal(id, 7);
    assert_int_equal(ttl, 2);
    assert_int_equal(kv_lease_grant(s, ++g_index, 7, 10, 0, &id, &ttl),
                     MOOR_ELEASEEXISTS);
    assert_int_equal(
        kv_lease_grant(s, ++g_index, 8, KV_LEASE_TTL_MAX + 1, 0, &id, &ttl),
        MOOR_ELEASETTLTOOLARGE);
    assert_int_equal(kv_lease_grant(s, ++g_index, -1, 10, 0, &id, &ttl),
                     MOOR_EINVAL);
    /* A generated id is positive and the same on every member (it is a
     * function of the entry index). */
    struct kv_store *t = new_store();
    g_index = 4;
    int64_t a = grant(s, 0, 10, 0);
    g_index = 4;
    int64_t b = grant(t, 0, 10, 0);
    assert_true(a > 0);
    assert_int_equal(a, b);
    assert_int_equal(kv_lease_count(s), 2);
    int64_t ids[4];
    assert_int_equal(kv_lease_ids(s, ids, 4), 2);
    assert_true(ids[0] < ids[1]);
    kv_store_free(t);
    kv_store_free(s);
}

static void test_kv_lease_revoke_deletes_attached_keys_in_one_revision(
    void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    int64_t l = grant(s, 5, 10, 0);
    assert_int_equal(put_lease(s, "a", l), MOOR_OK);
    assert_int_equal(put_lease(s, "b", l), MOOR_OK);
    assert_int_equal(put_lease(s, "c", l), MOOR_OK);
    assert_int_equal(put_lease(s, "c", 0), MOOR_OK); /* c leaves the lease */
    assert_int_equal(put_lease(s, "d", 0), MOOR_OK);
    assert_int_equal(put_lease(s, "x", 99), MOOR_ELEASENOTFOUND);
    struct kv_lease_info info;
    kv_lease_time_to_live(s, l, 0, &info);
    assert_int_equal(info.n_keys, 2);
    assert_true(moor_slice_eq(kv_lease_key(s, l, 0), moor_slice_str("a")));
    assert_true(moor_slice_eq(kv_lease_key(s, l, 1), moor_slice_str("b")));
    int64_t before = kv_store_revision(s);
    int64_t rev = 0;
    assert_int_equal(kv_lease_revoke(s, ++g_index, l, &rev), MOOR_OK);
    assert_int_equal(rev, before + 1);
    assert_int_equal(kv_store_live_count(s), 2); /* c, d */
    assert_int_equal(kv_lease_revoke(s, ++g_index, l, &rev),
                     MOOR_ELEASENOTFOUND);
    /* Revoking a lease without keys does not bump the revision. */
    int64_t e = grant(s, 6, 10, 0);
    assert_int_equal(kv_lease_revoke(s, ++g_index, e, &rev), MOOR_OK);
    assert_int_equal(rev, before + 1);
    kv_store_free(s);
}

static void test_kv_lease_expiry_follows_the_callers_time(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    grant(s, 1, 10, 1000); /* deadline 11000 */
    grant(s, 2, 5, 1000);  /* deadline 6000 */
    int64_t ids[4];
    assert_int_equal(kv_lease_expired(s, 5999, ids, 4), 0);
    assert_int_equal(kv_lease_expired(s, 6000, ids, 4), 1);
    assert_int_equal(ids[0], 2);
    /* Returned once per deadline. */
    assert_int_equal(kv_lease_expired(s, 7000, ids, 4), 0);
    /* Keep-alive moves the deadline by the granted TTL. */
    int64_t ttl = 0;
    assert_false(kv_lease_keepalive(s, 1, 10000, &ttl));
    assert_int_equal(ttl, 10);
    assert_int_equal(kv_lease_expired(s, 19999, ids, 4), 0);
    struct kv_lease_info info;
    kv_lease_time_to_live(s, 1, 15500, &info);
    assert_int_equal(info.ttl_s, 5); /* 4.5 s left, rounded up */
    assert_int_equal(info.granted_ttl_s, 10);
    assert_int_equal(kv_lease_expired(s, 20000, ids, 4), 1);
    assert_int_equal(ids[0], 1);
    /* Unknown leases, as etcd: TTL 0 on keep-alive, -1 on time-to-live. */
    assert_false(kv_lease_keepalive(s, 77, 0, &ttl));
    assert_int_equal(ttl, 0);
    kv_lease_time_to_live(s, 77, 0, &info);
    assert_int_equal(info.ttl_s, -1);
    kv_store_free(s);
}

static void test_kv_lease_checkpoints_survive_a_leader_change(void **state)
{
    (void)state;
    /* The leader checkpoints the remaining TTL; a new leader promotes from
     * it instead of restarting the full TTL (etcd #9888). */
    struct kv_store *leader = new_store();
    struct kv_store *follower = new_store();
    for (int64_t id = 1; id <= 5; id++) {
        g_index = (uint64_t)id * 2 - 2;
        grant(leader, id, 100, 0);
        g_index = (uint64_t)id * 2 - 2;
        grant(follower, id, 100, 0);
    }
    struct kv_lease_checkpoint cps[2];
    int64_t cursor = 0;
    uint64_t idx = 100;
    size_t total = 0;
    for (int round = 0; round < 3; round++) {
        size_t n = kv_lease_checkpoints(leader, 60000, &cursor, cps, 2);
        total += n;
        assert_int_equal(kv_lease_checkpoint_apply(follower, ++idx, cps, n),
                         MOOR_OK);
    }
    assert_int_equal(total, 5);
    assert_int_equal(cursor, 0); /* wrapped around */
    /* The follower becomes leader at t=70 s with a 1 s election timeout:
     * 40 s were left at the checkpoint, so the deadline is 70+40+1. */
    kv_lease_promote(follower, 70000, 1000);
    int64_t ids[8];
    assert_int_equal(kv_lease_expired(follower, 110999, ids, 8), 0);
    assert_int_equal(kv_lease_expired(follower, 111000, ids, 8), 5);
    /* The checkpoint is replicated state: it is in the hash. */
    assert_int_not_equal(kv_hash(leader), kv_hash(follower));
    /* A keep-alive of a checkpointed lease asks for a reset checkpoint;
     * once applied, a promotion counts the full TTL again. */
    int64_t ttl = 0;
    assert_true(kv_lease_keepalive(follower, 3, 120000, &ttl));
    struct kv_lease_checkpoint reset = {3, 0};
    assert_int_equal(kv_lease_checkpoint_apply(follower, ++idx, &reset, 1),
                     MOOR_OK);
    assert_false(kv_lease_keepalive(follower, 3, 120000, &ttl));
    kv_lease_promote(follower, 200000, 0);
    assert_int_equal(kv_lease_expired(follower, 240000, ids, 8), 4);
    assert_int_equal(kv_lease_expired(follower, 299999, ids, 8), 0);
    assert_int_equal(kv_lease_expired(follower, 300000, ids, 8), 1);
    assert_int_equal(ids[0], 3);
    kv_store_free(leader);
    kv_store_free(follower);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_lease_grant_rules),
        cmocka_unit_test(
            test_kv_lease_revoke_deletes_attached_keys_in_one_revision),
        cmocka_unit_test(test_kv_lease_expiry_follows_the_callers_time),
        cmocka_unit_test(test_kv_lease_checkpoints_survive_a_leader_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
