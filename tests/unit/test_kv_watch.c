/*
 * test_kv_watch.c: watchers: live events with filters and prev_kv, ranges,
 * history replay in bounded chunks, cancellation at a compacted start,
 * revisions never split across batches, demotion of a slow watcher with no
 * event lost, the interval index touching only the matching watchers among
 * 10,000, and events that outlive the compaction of their records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kv/kv.h"

static uint64_t g_index;

static struct kv_store *new_store_opts(uint32_t pending_max,
                                       uint32_t catchup_revs)
{
    struct kv_options o;
    kv_options_default(&o);
    o.watch_pending_max = pending_max;
    o.watch_catchup_revs = catchup_revs;
    struct kv_store *s = NULL;
    assert_int_equal(kv_store_new(&o, &s), MOOR_OK);
    g_index = 0;
    return s;
}

static void put(struct kv_store *s, const char *k, const char *v)
{
    struct kv_put_req p = {0};
    p.key = moor_slice_str(k);
    p.value = moor_slice_str(v);
    struct kv_put_resp r;
    assert_int_equal(kv_put(s, ++g_index, &p, &r), MOOR_OK);
}

static void del(struct kv_store *s, const char *k)
{
    struct kv_delete_req d = {0};
    d.key = moor_slice_str(k);
    struct kv_delete_resp r;
    kv_delete_resp_init(&r);
    assert_int_equal(kv_delete(s, ++g_index, &d, &r), MOOR_OK);
    kv_delete_resp_close(&r);
}

/* What a watcher received, flattened. */
struct got
{
    int type[256];
    int64_t mod[256];
    char key[256][8];
    bool has_prev[256];
    size_t n;
    size_t batches;
    bool canceled;
    int64_t compact_rev;
};

/* Drains every ready watcher (all rounds); events of `w` go to g. */
static void drain(struct kv_store *s, struct kv_watcher *w, struct got *g,
                  size_t max_events)
{
    for (int nulls = 0; nulls < 2;) {
        struct kv_watcher *r = kv_watch_next_ready(s);
        if (r == NULL) {
            nulls++;
            continue;
        }
        nulls = 0;
        struct kv_watch_batch b;
        assert_int_equal(kv_watch_take(s, r, max_events, &b), MOOR_OK);
        if (r == w && g != NULL) {
            if (b.n > 0) {
                g->batches++;
            }
            for (size_t i = 0; i < b.n; i++) {
                struct kv_kv kv;
                kv_row_get(b.events[i].kv, &kv);
                g->type[g->n] = (int)b.events[i].type;
                g->mod[g->n] = kv.mod_revision;
                snprintf(g->key[g->n], 8, "%.*s", (int)kv.key.len,
                         (const char *)kv.key.ptr);
                g->has_prev[g->n] = b.events[i].prev != NULL;
                g->n++;
            }
            if (b.canceled) {
                g->canceled = true;
                g->compact_rev = b.compact_rev;
            }
        }
        kv_watch_batch_release(s, &b);
    }
}

static void test_kv_watch_live_events_filters_and_prev_kv(void **state)
{
    (void)state;
    struct kv_store *s = new_store_opts(4096, 1000);
    struct kv_watcher w, nodel;
    struct kv_watch_req q = {0};
    q.key = moor_slice_str("k");
    q.prev_kv = true;
    assert_int_equal(kv_watch_open(s, &w, &q), MOOR_OK);
    q.prev_kv = false;
    q.no_delete = true;
    assert_int_equal(kv_watch_open(s, &nodel, &q), MOOR_OK);
    assert_true(kv_watch_synced(&w));
    put(s, "k", "1");  /* rev 2 */
    put(s, "kk", "x"); /* not watched */
    put(s, "k", "2");  /* rev 4 */
    del(s, "k");       /* rev 5 */
    assert_false(kv_watch_idle(&w));
    struct got g = {0};
    drain(s, &w, &g, 100);
    assert_true(kv_watch_idle(&w));
    assert_int_equal(g.n, 3);
    assert_int_equal(g.type[0], KV_EVENT_PUT);
    assert_int_equal(g.mod[0], 2);
    assert_false(g.has_prev[0]);
    assert_true(g.has_prev[1]);
    assert_int_equal(g.type[2], KV_EVENT_DELETE);
    assert_int_equal(g.mod[2], 5);
    assert_true(g.has_prev[2]);
    struct got g2 = {0};
    put(s, "k", "3");
    del(s, "k");
    drain(s, &nodel, &g2, 100);
    assert_int_equal(g2.n, 1);
    assert_int_equal(g2.type[0], KV_EVENT_PUT);
    kv_watch_close(s, &w);
    kv_watch_close(s, &nodel);
    assert_int_equal(kv_watch_count(s), 0);
    kv_store_free(s);
}

static void test_kv_watch_ranges_prefixes_and_from_key(void **state)
{
    (void)state;
    struct kv_store *s = new_store_opts(4096, 1000);
    struct kv_watcher pre, from, all;
    struct kv_watch_req q = {0};
    q.key = moor_slice_str("/a/");
    q.range_end = moor_slice_str("/a0");
    assert_int_equal(kv_watch_open(s, &pre, &q), MOOR_OK);
    static const uint8_t zero = 0;
    q.key = moor_slice_str("/b");
    q.range_end = moor_slice_make(&zero, 1);
    assert_int_equal(kv_watch_open(s, &from, &q), MOOR_OK);
    q.key = moor_slice_make(NULL, 0); /* empty key: "\0", so with "\0": all */
    assert_int_equal(kv_watch_open(s, &all, &q), MOOR_OK);
    put(s, "/a/1", "v");
    put(s, "/a0", "v");
    put(s, "/b/1", "v");
    put(s, "/", "v");
    struct got gp = {0}, gf = {0}, ga = {0};
    drain(s, &pre, &gp, 100);
    put(s, "/z", "v");
    drain(s, &from, &gf, 100);
    drain(s, &all, &ga, 100);
    assert_int_equal(gp.n, 1);
    assert_string_equal(gp.key[0], "/a/1");
    assert_int_equal(gf.n, 1); /* /z only: /b/1 went to the earlier drain */
    assert_int_equal(ga.n, 0); /* drained by the earlier calls too */
    kv_watch_close(s, &pre);
    kv_watch_close(s, &from);
    kv_watch_close(s, &all);
    kv_store_free(s);
}

static void test_kv_watch_history_replay_in_chunks_then_live(void **state)
{
    (void)state;
    struct kv_store *s = new_store_opts(4096, 2);
    for (int i = 0; i < 10; i++) {
        put(s, i % 2 ? "a" : "b", "v"); /* revs 2..11 */
    }
    struct kv_watcher w;
    struct kv_watch_req q = {0};
    q.key = moor_slice_str("a");
    q.range_end = moor_slice_str("c");
    q.start_revision = 4;
    assert_int_equal(kv_watch_open(s, &w, &q), MOOR_OK);
    assert_false(kv_watch_synced(&w));
    assert_false(kv_watch_idle(&w));
    /* A watcher the server cannot serve now is deferred to the next
     * round, not lost. */
    struct kv_watcher *r = kv_watch_next_ready(s);
    assert_ptr_equal(r, &w);
    kv_watch_defer(s, r);
    assert_null(kv_watch_next_ready(s)); /* end of this round */
    /* One chunk per take: revisions 4-5 first. */
    r = kv_watch_next_ready(s);
    assert_ptr_equal(r, &w);
    struct kv_watch_batch b;
    assert_int_equal(kv_watch_take(s, r, 100, &b), MOOR_OK);
    assert_int_equal(b.n, 2);
    kv_watch_batch_release(s, &b);
    struct got g = {0};
    drain(s, &w, &g, 100);
    assert_true(kv_watch_synced(&w));
    assert_int_equal(g.n, 6); /* revs 6..11 */
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal(g.mod[i], 6 + (int64_t)i);
    }
    put(s, "a", "live");
    drain(s, &w, &g, 100);
    assert_int_equal(g.n, 7);
    assert_int_equal(g.mod[6], 12);
    kv_watch_close(s, &w);
    kv_store_free(s);
}

static void test_kv_watch_catch_up_scans_a_bounded_number_of_keys_per_take(
    void **state)
{
    (void)state;
    struct kv_options o;
    kv_options_default(&o);
    o.watch_catchup_keys = 10;
    struct kv_store *s = NULL;
    assert_int_equal(kv_store_new(&o, &s), MOOR_OK);
    g_index = 0;
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "p/%04d", i);
        put(s, k, "v"); /* revs 2..1001 */
    }
    struct kv_watcher w;
    struct kv_watch_req q = {0};
    q.key = moor_slice_str("p/");
    q.range_end = moor_slice_str("p0");
    q.start_revision = 2;
    assert_int_equal(kv_watch_open(s, &w, &q), MOOR_OK);
    /* The first take scans 10 keys of 1000: nothing to send yet. */
    struct kv_watcher *r = kv_watch_next_ready(s);
    assert_ptr_equal(r, &w);
    struct kv_watch_batch b;
    assert_int_equal(kv_watch_take(s, r, 100, &b), MOOR_OK);
    assert_int_equal(b.n, 0);
    assert_false(b.canceled);
    kv_watch_batch_release(s, &b);
    /* Writes and takes interleave; nothing is lost or repeated. */
    size_t takes = 1;
    size_t events = 0;
    int64_t last = 0;
    for (int nulls = 0; nulls < 2;) {
        r = kv_watch_next_ready(s);
        if (r == NULL) {
            nulls++;
            continue;
        }
        nulls = 0;
        takes++;
        if (takes % 50 == 0) {
            put(s, "p/late", "v");
        }
        assert_int_equal(kv_watch_take(s, r, 100, &b), MOOR_OK);
        for (size_t i = 0; i < b.n; i++) {
            struct kv_kv kv;
            kv_row_get(b.events[i].kv, &kv);
            assert_true(kv.mod_revision > last);
            last = kv.mod_revision;
        }
        events += b.n;
        kv_watch_batch_release(s, &b);
    }
    assert_true(takes >= 100);
    assert_int_equal(events, (size_t)(kv_store_revision(s) - 1));
    assert_true(kv_watch_synced(&w));
    kv_watch_close(s, &w);
    kv_store_free(s);
}

static void test_kv_watch_compacted_start_is_canceled(void **state)
{
    (void)state;
    struct kv_store *s = new_store_opts(4096, 1);
    for (int i = 0; i < 6; i++) {
        put(s, "a", "v"); /* revs 2..7 */
    }
    assert_int_equal(kv_compact(s, ++g_index, 5), MOOR_OK);
    struct kv_watcher w, ok;
    struct kv_watch_req q = {0};
    q.key = moor_slice_str("a");
    q.start_revision = 3;
    assert_int_equal(kv_watch_open(s, &w, &q), MOOR_OK);
    q.start_revision = 5; /* at the compact revision: still fine */
    assert_int_equal(kv_watch_open(s, &ok, &q), MOOR_OK);
    struct got g = {0}, gok = {0};
    drain(s, &w, &g, 100);
    assert_true(g.canceled);
    assert_int_equal(g.compact_rev, 5);
    assert_int_equal(g.n, 0);
    /* An unsynced watcher the compaction overtakes is canceled too. */
    struct kv_watcher late;
    q.start_revision = 6;
    assert_int_equal(kv_watch_open(s, &late, &q), MOOR_OK);
    assert_int_equal(kv_compact(s, ++g_index, 7), MOOR_OK);
    struct got gl = {0};
    drain(s, &late, &gl, 100);
    assert_true(gl.canceled);
    assert_int_equal(gl.compact_rev, 7);
    (void)gok;
    kv_watch_close(s, &w);
    kv_watch_close(s, &ok);
    kv_watch_close(s, &late);
    kv_store_free(s);
}

static void test_kv_watch_never_splits_a_revision(void **state)
{
    (void)state;
    struct kv_store *s = new_store_opts(4096, 1000);
    struct kv_watcher w;
    struct kv_watch_req q = {0};
    static const uint8_t zero = 0;
    q.key = moor_slice_make(&zero, 1);
    q.range_end = moor_slice_make(&zero, 1);
    assert_int_equal(kv_watch_open(s, &w, &q), MOOR_OK);
    /* One txn writes 10 keys: one revision, 10 events. */
    struct kv_op ops[10];
    char keys[10][16];
    for (int i = 0; i < 10; i++) {
        memset(&ops[i], 0, sizeof(ops[i]));
        snprintf(keys[i], sizeof(keys[i]), "t%d", i);
        ops[i].type = KV_OP_PUT;
        ops[i].u.put.key = moor_slice_str(keys[i]);
    }
    struct kv_txn_req t = {NULL, 0, ops, 10, NULL, 0};
    struct kv_txn_resp resp;
    kv_txn_resp_init(&resp);
    assert_int_equal(kv_txn(s, ++g_index, &t, &resp), MOOR_OK);
    kv_txn_resp_close(&resp);
    put(s, "after", "v");
    struct got g = {0};
    drain(s, &w, &g, 3);
    assert_int_equal(g.n, 11);
    assert_int_equal(g.batches, 2); /* 10 in one batch despite max 3 */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(g.mod[i], 2);
    }
    kv_watch_close(s, &w);
    kv_store_free(s);
}

static void test_kv_watch_slow_watcher_is_demoted_and_loses_nothing(
    void **state)
{
    (void)state;
    struct kv_store *s = new_store_opts(4, 3);
    struct kv_watcher w;
    struct kv_watch_req q = {0};
    q.key = moor_slice_str("k");
    q.prev_kv = true;
    assert_int_equal(kv_watch_open(s, &w, &q), MOOR_OK);
    for (int i = 0; i < 50; i++) {
        put(s, "k", "v");
        assert_true(w.n_pending <= 4); /* bounded while nobody reads */
    }
    assert_false(kv_watch_synced(&w));
    struct got g = {0};
    drain(s, &w, &g, 2);
    assert_int_equal(g.n, 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(g.mod[i], 2 + i);
        assert_int_equal(g.has_prev[i], i > 0);
    }
    assert_true(kv_watch_synced(&w));
    kv_watch_close(s, &w);
    kv_store_free(s);
}

static void test_kv_watch_index_touches_only_matching_watchers(void **state)
{
    (void)state;
    struct kv_store *s = new_store_opts(4096, 1000);
    enum { N = 10000 };
    struct kv_watcher *ws = calloc(N + 100, sizeof(*ws));
    assert_non_null(ws);
    char k[32], e[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof(k), "key%05d", i);
        struct kv_watch_req q = {0};
        q.key = moor_slice_str(k);
        assert_int_equal(kv_watch_open(s, &ws[i], &q), MOOR_OK);
    }
    /* 100 range watchers [key{i*100}, key{i*100+150}): overlapping. */
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof(k), "key%05d", i * 100);
        snprintf(e, sizeof(e), "key%05d", i * 100 + 150);
        struct kv_watch_req q = {0};
        q.key = moor_slice_str(k);
        q.range_end = moor_slice_str(e);
        assert_int_equal(kv_watch_open(s, &ws[N + i], &q), MOOR_OK);
    }
    assert_int_equal(kv_watch_count(s), N + 100);
    put(s, "key05120", "v");
    /* Matches: its single-key watcher, and the ranges starting at 5000 and
     * 5100 (5000+150 > 5120). */
    size_t ready = 0;
    bool seen_single = false;
    struct kv_watcher *r;
    while ((r = kv_watch_next_ready(s)) != NULL) {
        ready++;
        seen_single = seen_single || r == &ws[5120];
        assert_true(r == &ws[5120] || r == &ws[N + 50] || r == &ws[N + 51]);
        struct kv_watch_batch b;
        assert_int_equal(kv_watch_take(s, r, 10, &b), MOOR_OK);
        assert_int_equal(b.n, 1);
        kv_watch_batch_release(s, &b);
    }
    assert_int_equal(ready, 3);
    assert_true(seen_single);
    /* Closing half of them keeps the index exact. */
    for (int i = 0; i < 100; i += 2) {
        kv_watch_close(s, &ws[N + i]);
    }
    put(s, "key05120", "v");
    ready = 0;
    while ((r = kv_watch_next_ready(s)) != NULL) {
        ready++;
        struct kv_watch_batch b;
        assert_int_equal(kv_watch_take(s, r, 10, &b), MOOR_OK);
        kv_watch_batch_release(s, &b);
    }
    assert_int_equal(ready, 2); /* 5120 and range 51 */
    for (int i = 0; i < N + 100; i++) {
        kv_watch_close(s, &ws[i]);
    }
    free(ws);
    kv_store_free(s);
}

static void test_kv_watch_events_outlive_compaction_of_their_records(
    void **state)
{
    (void)state;
    struct kv_store *s = new_store_opts(4096, 1000);
    struct kv_watcher w;
    struct kv_watch_req q = {0};
    q.key = moor_slice_str("k");
    q.prev_kv = true;
    assert_int_equal(kv_watch_open(s, &w, &q), MOOR_OK);
    put(s, "k", "first");
    put(s, "k", "second");
    del(s, "k");
    put(s, "other", "v");
    assert_int_equal(kv_compact(s, ++g_index, kv_store_revision(s)), MOOR_OK);
    while (kv_compact_step(s, 100)) {
    }
    /* The queued events still hold their records (ASan would object). */
    struct kv_watcher *r = kv_watch_next_ready(s);
    assert_ptr_equal(r, &w);
    struct kv_watch_batch b;
    assert_int_equal(kv_watch_take(s, r, 100, &b), MOOR_OK);
    assert_int_equal(b.n, 3);
    struct kv_kv kv;
    kv_row_get(b.events[1].kv, &kv);
    assert_true(moor_slice_eq(kv.value, moor_slice_str("second")));
    kv_row_get(b.events[1].prev, &kv);
    assert_true(moor_slice_eq(kv.value, moor_slice_str("first")));
    kv_watch_batch_release(s, &b);
    kv_watch_close(s, &w);
    kv_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_watch_live_events_filters_and_prev_kv),
        cmocka_unit_test(test_kv_watch_ranges_prefixes_and_from_key),
        cmocka_unit_test(test_kv_watch_history_replay_in_chunks_then_live),
        cmocka_unit_test(
            test_kv_watch_catch_up_scans_a_bounded_number_of_keys_per_take),
        cmocka_unit_test(test_kv_watch_compacted_start_is_canceled),
        cmocka_unit_test(test_kv_watch_never_splits_a_revision),
        cmocka_unit_test(
            test_kv_watch_slow_watcher_is_demoted_and_loses_nothing),
        cmocka_unit_test(test_kv_watch_index_touches_only_matching_watchers),
        cmocka_unit_test(
            test_kv_watch_events_outlive_compaction_of_their_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
