/*
 * test_server_watch_enc.c: the watch fan-out encoder (server/watchsvc.c).
 * A WatchResponse assembled from events and headers encoded once per pass
 * must be byte for byte what protobuf-c packs for the same message, for
 * puts, deletes, prev_kv, several events per batch, watch id 0 (omitted,
 * as proto3 omits defaults) and large ids, across passes and when the
 * cache's arena starts over; and it must decode to the same events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "server/server_int.h"

static uint64_t g_index;

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

static void fill(Mvccpb__KeyValue *out, const struct kv_rec *rec, bool key_only)
{
    struct kv_kv row;
    kv_row_get(rec, &row);
    mvccpb__key_value__init(out);
    out->key.data = (uint8_t *)(uintptr_t)row.key.ptr;
    out->key.len = row.key.len;
    out->mod_revision = row.mod_revision;
    if (key_only) {
        return;
    }
    out->value.data = (uint8_t *)(uintptr_t)row.value.ptr;
    out->value.len = row.value.len;
    out->create_revision = row.create_revision;
    out->version = row.version;
    out->lease = row.lease;
}

/* b packed the plain way: the message built and handed to protobuf-c. */
static void pack_plain(const Etcdserverpb__ResponseHeader *h, int64_t id,
                       const struct kv_watch_batch *b, struct moor_buf *out)
{
    Mvccpb__Event evs[64];
    Mvccpb__Event *ptrs[64];
    Mvccpb__KeyValue kvs[128];
    assert_true(b->n <= 64);
    for (size_t i = 0; i < b->n; i++) {
        const struct kv_event *e = &b->events[i];
        mvccpb__event__init(&evs[i]);
        bool d = e->type == KV_EVENT_DELETE;
        evs[i].type = d ? MVCCPB__EVENT__EVENT_TYPE__DELETE
                        : MVCCPB__EVENT__EVENT_TYPE__PUT;
        fill(&kvs[2 * i], e->kv, d);
        evs[i].kv = &kvs[2 * i];
        if (e->prev != NULL) {
            fill(&kvs[2 * i + 1], e->prev, false);
            evs[i].prev_kv = &kvs[2 * i + 1];
        }
        ptrs[i] = &evs[i];
    }
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.header = (Etcdserverpb__ResponseHeader *)(uintptr_t)h;
    r.watch_id = id;
    r.events = ptrs;
    r.n_events = b->n;
    assert_int_equal(moor_pb_pack(&r.base, out), MOOR_OK);
}

static void open_watch(struct kv_store *s, struct kv_watcher *w,
                       const char *key, const char *end, bool prev)
{
    struct kv_watch_req q = {0};
    q.key = moor_slice_str(key);
    if (end != NULL) {
        q.range_end = moor_slice_str(end);
    }
    q.prev_kv = prev;
    assert_int_equal(kv_watch_open(s, w, &q), MOOR_OK);
}

/* Drains every ready watcher; each batch is encoded both ways and
 * compared. Returns the events seen. */
static size_t drain_compare(struct kv_store *s, struct srv_watch_enc *c,
                            struct kv_watcher *ws, size_t nw,
                            const int64_t *ids, size_t max_events)
{
    size_t events = 0;
    srv_watch_enc_pass(c);
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.cluster_id = 0x1234567890abcdefULL;
    h.member_id = 42;
    h.raft_term = 7;
    /* Rounds, as srv_watch_deliver: each visits every ready watcher once;
     * one with more than max_events left comes back in the next. */
    struct kv_watcher *r;
    for (size_t took = 1; took > 0;) {
        took = 0;
        while ((r = kv_watch_next_ready(s)) != NULL) {
            took++;
            size_t k = (size_t)(r - ws);
            assert_true(k < nw);
            struct kv_watch_batch b;
            assert_int_equal(kv_watch_take(s, r, max_events, &b), MOOR_OK);
            h.revision = b.revision;
            struct moor_buf fast, plain;
            moor_buf_init(&fast);
            moor_buf_init(&plain);
            assert_int_equal(srv_watch_encode_batch(c, &h, ids[k], &b, &fast),
                             MOOR_OK);
            pack_plain(&h, ids[k], &b, &plain);
            assert_int_equal(fast.len, plain.len);
            assert_memory_equal(fast.ptr, plain.ptr, plain.len);
            ProtobufCMessage *m = NULL;
            assert_int_equal(
                moor_pb_unpack(&etcdserverpb__watch_response__descriptor,
                               fast.ptr, fast.len, 1u << 20, &m),
                MOOR_OK);
            Etcdserverpb__WatchResponse *got = (Etcdserverpb__WatchResponse *)m;
            assert_int_equal(got->watch_id, ids[k]);
            assert_int_equal(got->n_events, b.n);
            assert_int_equal(got->header->revision, b.revision);
            protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
            events += b.n;
            moor_buf_close(&fast);
            moor_buf_close(&plain);
            kv_watch_batch_release(s, &b);
        }
    }
    return events;
}

static void test_watch_enc_matches_protobuf_c_bytes(void **state)
{
    (void)state;
    struct kv_options o;
    kv_options_default(&o);
    o.watch_pending_max = 100000; /* every watcher stays synced */
    struct kv_store *s = NULL;
    assert_int_equal(kv_store_new(&o, &s), MOOR_OK);
    g_index = 0;
    struct srv_watch_enc *c = srv_watch_enc_new();
    assert_non_null(c);

    /* Four watchers over the same keys: with and without prev_kv, ids
     * 0 (omitted on the wire), small, large, negative (progress's -1 is
     * never a watcher's, but the encoding must still agree). */
    struct kv_watcher ws[4];
    memset(ws, 0, sizeof(ws));
    const int64_t ids[4] = {0, 5, INT64_C(1) << 40, -1};
    open_watch(s, &ws[0], "a", "z", false);
    open_watch(s, &ws[1], "a", "z", true);
    open_watch(s, &ws[2], "b", NULL, true);
    open_watch(s, &ws[3], "a", "z", true);

    put(s, "a", "1");
    put(s, "b", "2");
    assert_int_equal(drain_compare(s, c, ws, 4, ids, 1000), 2 + 2 + 1 + 2);

    /* Overwrites (prev_kv present), a delete, a long value, several
     * events per batch, in a new pass. */
    char big[3000];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    put(s, "b", big);
    put(s, "a", "3");
    del(s, "b");
    put(s, "c", "");
    assert_int_equal(drain_compare(s, c, ws, 4, ids, 1000), 4 + 4 + 2 + 4);

    /* Enough distinct events in one pass to restart the cache's arena
     * (8 MiB) several times over: every response still matches. */
    char key[32];
    char val[20000];
    memset(val, 'x', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int i = 0; i < 1500; i++) {
        snprintf(key, sizeof(key), "k%05d", i);
        put(s, key, val);
    }
    assert_int_equal(drain_compare(s, c, ws, 4, ids, 7), 3 * 1500);

    for (int i = 0; i < 4; i++) {
        kv_watch_close(s, &ws[i]);
    }
    srv_watch_enc_free(c);
    kv_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_enc_matches_protobuf_c_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
