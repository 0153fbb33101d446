/*
 * test_kv_store.c: etcd's semantics, case by case: revisions, versions,
 * prev_kv, ignore_*, the range forms, limit/more/count, sorting, historic
 * reads and their errors, txn compares and checks (duplicate keys as
 * etcd's checkIntervals rules them), compaction, hashes, the applied index
 * and allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "kv/kv.h"
#include "kv/kv_int.h"

static uint64_t g_index;

static struct kv_store *new_store(void)
{
    struct kv_store *s = NULL;
    assert_int_equal(kv_store_new(NULL, &s), MOOR_OK);
    g_index = 0;
    return s;
}

static struct moor_slice S(const char *s)
{
    return moor_slice_str(s);
}

static int
put_l(struct kv_store *s, const char *k, const char *v, int64_t lease)
{
    struct kv_put_req p = {0};
    p.key = S(k);
    p.value = S(v);
    p.lease = lease;
    struct kv_put_resp r;
    return kv_put(s, ++g_index, &p, &r);
}

static void put(struct kv_store *s, const char *k, const char *v)
{
    assert_int_equal(put_l(s, k, v, 0), MOOR_OK);
}

static int64_t del(struct kv_store *s, const char *k, const char *end)
{
    struct kv_delete_req d = {0};
    d.key = S(k);
    d.range_end = end != NULL
                      ? moor_slice_make(end, end[0] == 0 ? 1 : strlen(end))
                      : moor_slice_make(NULL, 0);
    struct kv_delete_resp r;
    kv_delete_resp_init(&r);
    assert_int_equal(kv_delete(s, ++g_index, &d, &r), MOOR_OK);
    int64_t n = r.deleted;
    kv_delete_resp_close(&r);
    return n;
}

/* Single-key read at rev; returns false if absent. */
static bool get(struct kv_store *s, const char *k, int64_t rev,
                struct kv_kv *out)
{
    struct kv_range_req q = {0};
    q.key = S(k);
    q.revision = rev;
    struct kv_range_resp r;
    kv_range_resp_init(&r);
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    bool found = r.n == 1;
    if (found) {
        kv_row_get(r.rows[0], out);
    }
    kv_range_resp_close(&r);
    return found;
}

static void test_kv_store_revisions_versions_and_tombstones(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    assert_int_equal(kv_store_revision(s), 1);
    put(s, "a", "1");
    put(s, "a", "2");
    struct kv_kv kv;
    assert_true(get(s, "a", 0, &kv));
    assert_int_equal(kv.create_revision, 2);
    assert_int_equal(kv.mod_revision, 3);
    assert_int_equal(kv.version, 2);
    assert_true(moor_slice_eq(kv.value, S("2")));
    /* Deleting nothing does not bump the revision. */
    assert_int_equal(del(s, "zz", NULL), 0);
    assert_int_equal(kv_store_revision(s), 3);
    assert_int_equal(del(s, "a", NULL), 1);
    assert_int_equal(kv_store_revision(s), 4);
    assert_false(get(s, "a", 0, &kv));
    /* A new generation: version and create revision restart. */
    put(s, "a", "3");
    assert_true(get(s, "a", 0, &kv));
    assert_int_equal(kv.version, 1);
    assert_int_equal(kv.create_revision, 5);
    /* History stays readable. */
    assert_true(get(s, "a", 2, &kv));
    assert_true(moor_slice_eq(kv.value, S("1")));
    assert_false(get(s, "a", 4, &kv));
    kv_store_free(s);
}

static void test_kv_store_put_prev_kv_and_ignore_flags(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    struct kv_put_req p = {0};
    struct kv_put_resp r;
    p.key = S("k");
    p.ignore_value = true;
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_EKEYNOTFOUND);
    assert_int_equal(kv_store_revision(s), 1);
    p.ignore_value = false;
    p.value = S("v1");
    p.prev_kv = true;
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_OK);
    assert_null(r.prev_kv);
    p.value = S("v2");
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_OK);
    assert_non_null(r.prev_kv);
    struct kv_kv kv;
    kv_row_get(r.prev_kv, &kv);
    assert_true(moor_slice_eq(kv.value, S("v1")));
    /* ignore_value keeps the value, with a new version. */
    p.value = S("");
    p.ignore_value = true;
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_OK);
    assert_true(get(s, "k", 0, &kv));
    assert_true(moor_slice_eq(kv.value, S("v2")));
    assert_int_equal(kv.version, 3);
    p.value = S("x");
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_EVALUEPROVIDED);
    p.ignore_value = false;
    p.ignore_lease = true;
    p.lease = 5;
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_ELEASEPROVIDED);
    p.ignore_lease = false;
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_ELEASENOTFOUND);
    p.key = S("");
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_EEMPTYKEY);
    assert_int_equal(kv_store_revision(s), 4);
    kv_store_free(s);
}

static void test_kv_store_range_forms_limit_more_and_count(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    put(s, "a", "1");
    put(s, "ab", "2");
    put(s, "abc", "3");
    put(s, "b", "4");
    put(s, "c", "5");
    struct kv_range_resp r;
    kv_range_resp_init(&r);
    struct kv_range_req q = {0};
    static const uint8_t zero = 0;
    /* Prefix "a": [a, b). */
    q.key = S("a");
    q.range_end = S("b");
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.count, 3);
    assert_false(r.more);
    /* limit: count is the total, more is set. */
    q.limit = 2;
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.count, 3);
    assert_true(r.more);
    /* From key: everything >= "ab". */
    q.limit = 0;
    q.key = S("ab");
    q.range_end = moor_slice_make(&zero, 1);
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    assert_int_equal(r.n, 4);
    /* All keys: key "\0", end "\0"; count_only. */
    q.key = moor_slice_make(&zero, 1);
    q.count_only = true;
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.count, 5);
    /* An empty interval. */
    q.count_only = false;
    q.key = S("c");
    q.range_end = S("a");
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    assert_int_equal(r.count, 0);
    /* Descending by key with a limit takes the last keys. */
    q.key = S("a");
    q.range_end = moor_slice_make(&zero, 1);
    q.sort_order = KV_SORT_DESCEND;
    q.limit = 2;
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    struct kv_kv kv;
    kv_row_get(r.rows[0], &kv);
    assert_true(moor_slice_eq(kv.key, S("c")));
    kv_row_get(r.rows[1], &kv);
    assert_true(moor_slice_eq(kv.key, S("b")));
    assert_true(r.more);
    /* Sort by value descending; NONE with a non-key target is ASCEND. */
    q.sort_target = KV_SORT_MOD;
    q.sort_order = KV_SORT_NONE;
    q.limit = 1;
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    kv_row_get(r.rows[0], &kv);
    assert_true(moor_slice_eq(kv.key, S("a")));
    /* Empty key is refused; bad enum too. */
    q.key = S("");
    assert_int_equal(kv_range(s, &q, &r), MOOR_EEMPTYKEY);
    q.key = S("a");
    q.sort_target = (enum kv_sort_target)9;
    assert_int_equal(kv_range(s, &q, &r), MOOR_EINVAL);
    kv_range_resp_close(&r);
    kv_store_free(s);
}

static void test_kv_store_count_at_head_matches_a_scan(void **state)
{
    (void)state;
    /* count at the current revision comes from subtree counts; a historic
     * count at the same state scans: both must agree on every range. */
    struct kv_store *s = new_store();
    char k[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof(k), "k%05d", (i * 7919) % 3000);
        put(s, k, "v");
    }
    for (int i = 0; i < 3000; i += 3) {
        snprintf(k, sizeof(k), "k%05d", i);
        assert_int_equal(del(s, k, NULL), 1);
    }
    put(s, "zz", "v"); /* so that head != the historic revision below */
    int64_t hist = kv_store_revision(s) - 1;
    struct kv_range_resp r;
    kv_range_resp_init(&r);
    for (int a = 0; a < 3000; a += 97) {
        for (int b = a; b < 3100; b += 211) {
            char ka[32], kb[32];
            snprintf(ka, sizeof(ka), "k%05d", a);
            snprintf(kb, sizeof(kb), "k%05d", b);
            struct kv_range_req q = {0};
            q.key = S(ka);
            q.range_end = S(kb);
            q.count_only = true;
            assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
            int64_t head = r.count;
            q.revision = hist;
            assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
            assert_int_equal(r.count, head);
            int64_t expect = 0;
            for (int i = a; i < b && i < 3000; i++) {
                expect += i % 3 != 0 ? 1 : 0;
            }
            assert_int_equal(head, expect);
        }
    }
    kv_range_resp_close(&r);
    kv_store_free(s);
}

static void test_kv_store_large_range_copies_nothing(void **state)
{
    (void)state;
    /* A Range of 20,000 keys of 1 KiB allocates its row array only: one
     * pointer per row (plus array growth), never the keys or values. */
    struct kv_store *s = new_store();
    static char big[1024];
    memset(big, 'x', sizeof(big) - 1);
    char k[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof(k), "r%05d", i);
        put(s, k, big);
    }
    struct kv_range_req q = {0};
    static const uint8_t zero = 0;
    q.key = S("r");
    q.range_end = moor_slice_make(&zero, 1);
    struct kv_range_resp r;
    kv_range_resp_init(&r);
    size_t before = moor_alloc_bytes();
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    size_t used = moor_alloc_bytes() - before;
    assert_int_equal(r.n, 20000);
    assert_true(used <= 2 * 20000 * sizeof(void *));
    kv_range_resp_close(&r);
    kv_store_free(s);
}

static void test_kv_store_compaction_steps_return_memory(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    static char big[512];
    memset(big, 'y', sizeof(big) - 1);
    char k[32];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 2000; i++) {
            snprintf(k, sizeof(k), "c%04d", i);
            put(s, k, big);
        }
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "c%04d", i);
        assert_int_equal(del(s, k, NULL), 1);
    }
    size_t before = moor_alloc_bytes();
    assert_int_equal(kv_compact(s, ++g_index, kv_store_revision(s) - 1),
                     MOOR_OK);
    size_t steps = 0;
    while (kv_compact_step(s, 100)) {
        steps++;
        assert_true(kv__tree_check(&s->tree));
    }
    /* Compacting just below the last deletion frees 4 of the 5 versions
     * of each live key and every record of 999 of the deleted keys:
     * about 10,000 records of ~600 bytes. */
    size_t after = moor_alloc_bytes();
    assert_true(steps >= 19); /* 2,000 keys, 100 per step */
    assert_true(before - after >= 8000 * 512);
    assert_int_equal(kv_store_live_count(s), 1000);
    kv_store_free(s);
}

static void test_kv_store_historic_reads_and_compaction_errors(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    put(s, "a", "1");                       /* rev 2 */
    put(s, "a", "2");                       /* rev 3 */
    put(s, "b", "1");                       /* rev 4 */
    assert_int_equal(del(s, "b", NULL), 1); /* rev 5 */
    struct kv_range_req q = {0};
    q.key = S("a");
    q.revision = 6;
    struct kv_range_resp r;
    kv_range_resp_init(&r);
    assert_int_equal(kv_range(s, &q, &r), MOOR_EFUTUREREV);
    assert_int_equal(kv_compact(s, ++g_index, 6), MOOR_EFUTUREREV);
    assert_int_equal(kv_compact(s, ++g_index, 3), MOOR_OK);
    assert_int_equal(kv_compact(s, ++g_index, 3), MOOR_ECOMPACTED);
    q.revision = 2;
    assert_int_equal(kv_range(s, &q, &r), MOOR_ECOMPACTED);
    q.revision = 3;
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    assert_int_equal(r.n, 1);
    /* Physical compaction in bounded steps; reads unaffected. */
    int steps = 0;
    while (kv_compact_step(s, 1)) {
        steps++;
    }
    assert_true(steps >= 1);
    assert_int_equal(kv_range(s, &q, &r), MOOR_OK);
    assert_int_equal(r.n, 1);
    struct kv_kv kv;
    kv_row_get(r.rows[0], &kv);
    assert_true(moor_slice_eq(kv.value, S("2")));
    /* The deletion of b at 5 is above the compact revision: kept. */
    assert_int_equal(kv_store_key_count(s), 2);
    assert_int_equal(kv_compact(s, ++g_index, 5), MOOR_OK);
    while (kv_compact_step(s, 100)) {
    }
    /* A deletion exactly at the compact revision stays until later. */
    assert_int_equal(kv_store_key_count(s), 2);
    put(s, "c", "1");
    assert_int_equal(kv_compact(s, ++g_index, 6), MOOR_OK);
    while (kv_compact_step(s, 100)) {
    }
    assert_int_equal(kv_store_key_count(s), 2); /* a, c */
    kv_range_resp_close(&r);
    kv_store_free(s);
}

/* ---- txn ---------------------------------------------------------------- */

static struct kv_op op_put(const char *k, const char *v)
{
    struct kv_op o;
    memset(&o, 0, sizeof(o));
    o.type = KV_OP_PUT;
    o.u.put.key = S(k);
    o.u.put.value = S(v);
    return o;
}

static struct kv_op op_del(const char *k, const char *end)
{
    struct kv_op o;
    memset(&o, 0, sizeof(o));
    o.type = KV_OP_DELETE;
    o.u.del.key = S(k);
    if (end != NULL) {
        o.u.del.range_end = S(end);
    }
    return o;
}

static struct kv_op op_range(const char *k)
{
    struct kv_op o;
    memset(&o, 0, sizeof(o));
    o.type = KV_OP_RANGE;
    o.u.range.key = S(k);
    return o;
}

static int run_txn(struct kv_store *s, const struct kv_compare *c, size_t nc,
                   const struct kv_op *ok, size_t nok, const struct kv_op *ko,
                   size_t nko, struct kv_txn_resp *resp)
{
    struct kv_txn_req t = {c, nc, ok, nok, ko, nko};
    return kv_txn(s, ++g_index, &t, resp);
}

static void test_kv_store_txn_compares_on_missing_keys_and_ranges(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    struct kv_txn_resp resp;
    kv_txn_resp_init(&resp);
    /* kube's create: MOD(key) == 0 means "does not exist". */
    struct kv_compare c = {KV_CMP_EQUAL, KV_CMP_MOD, S("k"), {0}, 0, {0}};
    struct kv_op ops[2] = {op_put("k", "v"), op_range("k")};
    assert_int_equal(run_txn(s, &c, 1, ops, 1, &ops[1], 1, &resp), MOOR_OK);
    assert_true(resp.succeeded);
    assert_int_equal(resp.revision, 2);
    assert_int_equal(run_txn(s, &c, 1, ops, 1, &ops[1], 1, &resp), MOOR_OK);
    assert_false(resp.succeeded);
    assert_int_equal(resp.responses[0].u.range.n, 1);
    /* A read-only branch does not bump the revision. */
    assert_int_equal(resp.revision, 2);
    assert_int_equal(kv_store_revision(s), 2);
    /* VALUE on a missing key is false whatever the result asked. */
    struct kv_compare cv = {
        KV_CMP_NOT_EQUAL, KV_CMP_VALUE, S("nope"), {0}, 0, S("x")};
    assert_int_equal(run_txn(s, &cv, 1, NULL, 0, NULL, 0, &resp), MOOR_OK);
    assert_false(resp.succeeded);
    /* Range compare: must hold for every key. */
    put(s, "k2", "v");
    put(s, "k2", "v");
    struct kv_compare cr = {KV_CMP_EQUAL, KV_CMP_VERSION, S("k"), S("l"), 1,
                            {0}};
    assert_int_equal(run_txn(s, &cr, 1, NULL, 0, NULL, 0, &resp), MOOR_OK);
    assert_false(resp.succeeded);
    cr.result = KV_CMP_GREATER;
    cr.number = 0;
    assert_int_equal(run_txn(s, &cr, 1, NULL, 0, NULL, 0, &resp), MOOR_OK);
    assert_true(resp.succeeded);
    kv_txn_resp_close(&resp);
    kv_store_free(s);
}

static void test_kv_store_txn_writes_share_one_revision_and_reads_see_them(
    void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    put(s, "x", "0");
    struct kv_txn_resp resp;
    kv_txn_resp_init(&resp);
    struct kv_op ops[4] = {op_put("a", "1"), op_put("b", "2"), op_range("a"),
                           op_del("x", NULL)};
    assert_int_equal(run_txn(s, NULL, 0, ops, 4, NULL, 0, &resp), MOOR_OK);
    assert_true(resp.succeeded);
    assert_int_equal(resp.revision, 3);
    assert_int_equal(kv_store_revision(s), 3);
    assert_int_equal(resp.responses[2].u.range.n, 1);
    assert_int_equal(resp.responses[3].u.del.deleted, 1);
    struct kv_kv kv;
    assert_true(get(s, "b", 0, &kv));
    assert_int_equal(kv.mod_revision, 3);
    assert_int_equal(s->tree.root != NULL, 1);
    kv_txn_resp_close(&resp);
    kv_store_free(s);
}

static void test_kv_store_txn_duplicate_keys_follow_etcd(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    struct kv_txn_resp resp;
    kv_txn_resp_init(&resp);
    /* Two puts of one key. */
    struct kv_op pp[2] = {op_put("a", "1"), op_put("a", "2")};
    assert_int_equal(run_txn(s, NULL, 0, pp, 2, NULL, 0, &resp), MOOR_EDUPKEY);
    /* A put inside a delete range of the same branch. */
    struct kv_op pd[2] = {op_del("a", "c"), op_put("b", "1")};
    assert_int_equal(run_txn(s, NULL, 0, pd, 2, NULL, 0, &resp), MOOR_EDUPKEY);
    /* The same put in the failure branch is another branch: fine. */
    assert_int_equal(run_txn(s, NULL, 0, &pp[0], 1, &pp[1], 1, &resp), MOOR_OK);
    /* Two deletes may overlap. */
    struct kv_op dd[2] = {op_del("a", "c"), op_del("b", NULL)};
    assert_int_equal(run_txn(s, NULL, 0, dd, 2, NULL, 0, &resp), MOOR_OK);
    /* Nested: then and else of one nested txn may put the same key... */
    struct kv_op inner_then = op_put("n", "1");
    struct kv_op inner_else = op_put("n", "2");
    struct kv_op nested;
    memset(&nested, 0, sizeof(nested));
    nested.type = KV_OP_TXN;
    nested.u.txn.success = &inner_then;
    nested.u.txn.n_success = 1;
    nested.u.txn.failure = &inner_else;
    nested.u.txn.n_failure = 1;
    assert_int_equal(run_txn(s, NULL, 0, &nested, 1, NULL, 0, &resp), MOOR_OK);
    /* ... but not a key the outer level puts too. */
    struct kv_op outer[2] = {nested, op_put("n", "3")};
    assert_int_equal(run_txn(s, NULL, 0, outer, 2, NULL, 0, &resp),
                     MOOR_EDUPKEY);
    /* Nor one the outer level deletes. */
    struct kv_op outer2[2] = {nested, op_del("m", "o")};
    assert_int_equal(run_txn(s, NULL, 0, outer2, 2, NULL, 0, &resp),
                     MOOR_EDUPKEY);
    kv_txn_resp_close(&resp);
    kv_store_free(s);
}

static void test_kv_store_txn_checks_refuse_before_applying(void **state)
{
    (void)state;
    struct kv_options o;
    kv_options_default(&o);
    o.max_txn_ops = 2;
    struct kv_store *s = NULL;
    assert_int_equal(kv_store_new(&o, &s), MOOR_OK);
    g_index = 0;
    struct kv_txn_resp resp;
    kv_txn_resp_init(&resp);
    struct kv_op three[3] = {op_put("a", "1"), op_put("b", "1"),
                             op_put("c", "1")};
    assert_int_equal(run_txn(s, NULL, 0, three, 3, NULL, 0, &resp),
                     MOOR_ETOOMANYOPS);
    /* A nested txn gets what its parent left: 2 - 1 = 1 here. */
    struct kv_op nested;
    memset(&nested, 0, sizeof(nested));
    nested.type = KV_OP_TXN;
    nested.u.txn.success = three;
    nested.u.txn.n_success = 2;
    assert_int_equal(run_txn(s, NULL, 0, &nested, 1, NULL, 0, &resp),
                     MOOR_ETOOMANYOPS);
    nested.u.txn.n_success = 1;
    assert_int_equal(run_txn(s, NULL, 0, &nested, 1, NULL, 0, &resp), MOOR_OK);
    struct kv_op empty;
    memset(&empty, 0, sizeof(empty));
    assert_int_equal(run_txn(s, NULL, 0, &empty, 1, NULL, 0, &resp),
                     MOOR_EKEYNOTFOUND);
    /* An error on the taken path: nothing of the txn applies. */
    int64_t rev = kv_store_revision(s);
    struct kv_op bad[2] = {op_put("x", "1"), op_put("y", "")};
    bad[1].u.put.ignore_value = true; /* y does not exist */
    assert_int_equal(run_txn(s, NULL, 0, bad, 2, NULL, 0, &resp),
                     MOOR_EKEYNOTFOUND);
    assert_int_equal(kv_store_revision(s), rev);
    /* A bad op in the branch not taken still fails the static checks. */
    struct kv_op vp = op_put("a", "v");
    vp.u.put.ignore_value = true;
    assert_int_equal(run_txn(s, NULL, 0, NULL, 0, &vp, 1, &resp),
                     MOOR_EVALUEPROVIDED);
    /* A range at a future revision on the taken path. */
    struct kv_op fr = op_range("a");
    fr.u.range.revision = 10;
    assert_int_equal(run_txn(s, NULL, 0, &fr, 1, NULL, 0, &resp),
                     MOOR_EFUTUREREV);
    /* A read-only evaluation (index 0) refuses writes. */
    struct kv_txn_req t = {NULL, 0, &three[0], 1, NULL, 0};
    assert_int_equal(kv_txn(s, 0, &t, &resp), MOOR_EINVAL);
    t.success = &fr;
    fr.u.range.revision = 0;
    assert_int_equal(kv_txn(s, 0, &t, &resp), MOOR_OK);
    kv_txn_resp_close(&resp);
    kv_store_free(s);
}

static void test_kv_store_txn_nested_compares_see_the_state_before(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    struct kv_txn_resp resp;
    kv_txn_resp_init(&resp);
    /* The outer txn puts k; the nested compare "k does not exist" was
     * evaluated before the txn, so it still holds (as etcd). */
    struct kv_compare c = {KV_CMP_EQUAL, KV_CMP_VERSION, S("k"), {0}, 0, {0}};
    struct kv_op inner = op_put("flag", "then");
    struct kv_op inner_else = op_put("flag2", "else");
    struct kv_op ops[2];
    ops[0] = op_put("k", "v");
    memset(&ops[1], 0, sizeof(ops[1]));
    ops[1].type = KV_OP_TXN;
    ops[1].u.txn.compare = &c;
    ops[1].u.txn.n_compare = 1;
    ops[1].u.txn.success = &inner;
    ops[1].u.txn.n_success = 1;
    ops[1].u.txn.failure = &inner_else;
    ops[1].u.txn.n_failure = 1;
    assert_int_equal(run_txn(s, NULL, 0, ops, 2, NULL, 0, &resp), MOOR_OK);
    assert_true(resp.responses[1].u.txn->succeeded);
    struct kv_kv kv;
    assert_true(get(s, "flag", 0, &kv));
    assert_int_equal(kv.mod_revision, 2);
    kv_txn_resp_close(&resp);
    kv_store_free(s);
}

/* ---- applied index, hashes, memory ------------------------------------- */

static void test_kv_store_stale_index_is_refused(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    put(s, "a", "1");
    assert_int_equal(kv_store_applied_index(s), 1);
    struct kv_put_req p = {0};
    p.key = S("a");
    struct kv_put_resp r;
    assert_int_equal(kv_put(s, 1, &p, &r), MOOR_EINVAL);
    assert_int_equal(kv_store_revision(s), 2);
    /* A request that fails still consumes its entry. */
    p.ignore_lease = true;
    p.lease = 3;
    assert_int_equal(kv_put(s, 2, &p, &r), MOOR_ELEASEPROVIDED);
    assert_int_equal(kv_store_applied_index(s), 2);
    assert_int_equal(kv_store_note_applied(s, 2), MOOR_EINVAL);
    assert_int_equal(kv_store_note_applied(s, 3), MOOR_OK);
    kv_store_free(s);
}

static void test_kv_store_hash_kv_ignores_compaction_progress(void **state)
{
    (void)state;
    struct kv_store *a = new_store();
    struct kv_store *b = new_store();
    struct kv_store *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        g_index = 0;
        char k[32];
        for (int j = 0; j < 200; j++) {
            snprintf(k, sizeof(k), "k%d", j % 37);
            put(both[i], k, j % 2 ? "odd" : "even");
            if (j % 11 == 0) {
                del(both[i], k, NULL);
            }
        }
        assert_int_equal(kv_compact(both[i], ++g_index, 150), MOOR_OK);
    }
    uint32_t ha, hb;
    int64_t ca, cb, ra, rb;
    /* a: no physical compaction yet; b: all of it. */
    while (kv_compact_step(b, 7)) {
    }
    assert_int_equal(kv_hash_kv(a, 0, &ha, &ca, &ra), MOOR_OK);
    assert_int_equal(kv_hash_kv(b, 0, &hb, &cb, &rb), MOOR_OK);
    assert_int_equal(ha, hb);
    assert_int_equal(ca, 150);
    assert_int_equal(kv_hash_kv(a, 170, &ha, &ca, &ra), MOOR_OK);
    assert_int_equal(kv_hash_kv(b, 170, &hb, &cb, &rb), MOOR_OK);
    assert_int_equal(ha, hb);
    assert_int_equal(ra, 170);
    assert_int_equal(kv_hash(a), kv_hash(b));
    assert_int_equal(kv_hash_kv(a, 100, &ha, &ca, &ra), MOOR_ECOMPACTED);
    assert_int_equal(kv_hash_kv(a, 10000, &ha, &ca, &ra), MOOR_EFUTUREREV);
    /* A different write changes it. */
    put(a, "k1", "other");
    assert_int_not_equal(kv_hash(a), kv_hash(b));
    kv_store_free(a);
    kv_store_free(b);
}

static void test_kv_store_failed_allocations_change_nothing(void **state)
{
    (void)state;
    struct kv_store *s = new_store();
    char k[32];
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof(k), "key%04d", i);
        put(s, k, "v");
    }
    uint32_t h0 = kv_hash(s);
    /* Fail each of the first allocations of a put of a new key that splits
     * nodes: either it succeeds or nothing changed. */
    for (long n = 0; n < 8; n++) {
        snprintf(k, sizeof(k), "new%04ld", n);
        struct kv_put_req p = {0};
        p.key = S(k);
        p.value = S("x");
        struct kv_put_resp r;
        moor_alloc_fail_after(n);
        int rv = kv_put(s, ++g_index, &p, &r);
        moor_alloc_fail_after(-1);
        assert_true(kv__tree_check(&s->tree));
        if (rv == MOOR_ENOMEM) {
            assert_int_equal(kv_hash(s), h0);
        } else {
            assert_int_equal(rv, MOOR_OK);
            h0 = kv_hash(s);
        }
    }
    kv_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_store_revisions_versions_and_tombstones),
        cmocka_unit_test(test_kv_store_put_prev_kv_and_ignore_flags),
        cmocka_unit_test(test_kv_store_range_forms_limit_more_and_count),
        cmocka_unit_test(test_kv_store_count_at_head_matches_a_scan),
        cmocka_unit_test(test_kv_store_large_range_copies_nothing),
        cmocka_unit_test(test_kv_store_compaction_steps_return_memory),
        cmocka_unit_test(test_kv_store_historic_reads_and_compaction_errors),
        cmocka_unit_test(test_kv_store_txn_compares_on_missing_keys_and_ranges),
        cmocka_unit_test(
            test_kv_store_txn_writes_share_one_revision_and_reads_see_them),
        cmocka_unit_test(test_kv_store_txn_duplicate_keys_follow_etcd),
        cmocka_unit_test(test_kv_store_txn_checks_refuse_before_applying),
        cmocka_unit_test(
            test_kv_store_txn_nested_compares_see_the_state_before),
        cmocka_unit_test(test_kv_store_stale_index_is_refused),
        cmocka_unit_test(test_kv_store_hash_kv_ignores_compaction_progress),
        cmocka_unit_test(test_kv_store_failed_allocations_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
