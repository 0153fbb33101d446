/*
 * test_kv_model.h: the reference model of kv/ and the random-sequence
 * machinery shared by test_kv_model.c (choices from a seeded PRNG) and
 * tests/fuzz/fuzz_kv_ops.c (choices from the fuzzer's bytes).
 *
 * The model is deliberately simple: a flat list of every version ever
 * written (key, value, mod/sub revision, create, version, lease, deletion
 * flag). A read at revision R takes, per key, the newest entry at or below
 * R. Everything is O(history) per question, which is fine for sequences of
 * a few hundred steps and leaves little room for the model itself to be
 * wrong. Include once per executable (static functions).
 */
#ifndef MOOR_TEST_KV_MODEL_H
#define MOOR_TEST_KV_MODEL_H

#include <stdio.h>
#include <stdlib.h>

#include "kv/kv.h"
#include "kv/kv_int.h"

#define KEY_MAX 4
#define VAL_MAX 6

/* memcpy that accepts (NULL, 0). */
static void mcopy(void *dst, const void *src, size_t n)
{
    if (n > 0) {
        memcpy(dst, src, n);
    }
}

/* ---- the model ---------------------------------------------------------- */

struct mver
{
    uint8_t key[KEY_MAX];
    size_t klen;
    uint8_t val[VAL_MAX];
    size_t vlen;
    int64_t mod, create, version, lease;
    uint32_t sub;
    bool tomb;
};

struct model
{
    struct mver *v;
    size_t n, cap;
    int64_t rev, compact;
    uint32_t sub; /* next sub revision of the write in progress */
    int64_t leases[64];
    size_t n_leases;
};

static uint64_t g_seed;

/* A failed check names the seed (or fuzz input) and the line, then stops:
 * fail_msg under cmocka, abort() in the fuzz target. */
#ifdef KV_MODEL_CMOCKA
#define KV_MODEL_FAIL(...) fail_msg(__VA_ARGS__)
#else
#define KV_MODEL_FAIL(...)            \
    do {                              \
        fprintf(stderr, __VA_ARGS__); \
        fprintf(stderr, "\n");        \
        abort();                      \
    } while (0)
#endif

#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond)) {                                                  \
            KV_MODEL_FAIL("seed %llu: %s (line %d)",                    \
                          (unsigned long long)g_seed, #cond, __LINE__); \
        }                                                               \
    } while (0)

static struct moor_slice mkey(const struct mver *e)
{
    return moor_slice_make(e->key, e->klen);
}

static bool ver_newer(const struct mver *a, const struct mver *b)
{
    return a->mod > b->mod || (a->mod == b->mod && a->sub > b->sub);
}

/* Newest version of key at or below rev, NULL if none or a deletion. */
static const struct mver *model_get(const struct model *m,
                                    struct moor_slice key, int64_t rev)
{
    const struct mver *best = NULL;
    for (size_t i = 0; i < m->n; i++) {
        const struct mver *e = &m->v[i];
        if (e->mod <= rev && moor_slice_eq(mkey(e), key) &&
            (best == NULL || ver_newer(e, best))) {
            best = e;
        }
    }
    return best != NULL && !best->tomb ? best : NULL;
}

static struct mver *model_append(struct model *m)
{
    if (m->n == m->cap) {
        m->cap = m->cap == 0 ? 64 : m->cap * 2;
        m->v = realloc(m->v, m->cap * sizeof(m->v[0]));
        CHECK(m->v != NULL);
    }
    struct mver *e = &m->v[m->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

static bool in_range(struct moor_slice k, struct moor_slice key,
                     struct moor_slice end)
{
    if (end.len == 0) {
        return moor_slice_eq(k, key);
    }
    if (moor_slice_cmp(k, key) < 0) {
        return false;
    }
    if (end.len == 1 && end.ptr[0] == 0) {
        return true;
    }
    return moor_slice_cmp(k, end) < 0;
}

static int slice_qcmp(const void *a, const void *b)
{
    return moor_slice_cmp(*(const struct moor_slice *)a,
                          *(const struct moor_slice *)b);
}

/* Distinct keys in [key, end), sorted. Returns the count (into keys). */
static size_t model_keys(const struct model *m, struct moor_slice key,
                         struct moor_slice end, struct moor_slice *keys)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct moor_slice k = mkey(&m->v[i]);
        if (!in_range(k, key, end)) {
            continue;
        }
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++) {
            seen = moor_slice_eq(keys[j], k);
        }
        if (!seen) {
            keys[n++] = k;
        }
    }
    qsort(keys, n, sizeof(keys[0]), slice_qcmp);
    return n;
}

static const struct kv_range_req *g_sort_req;

static int64_t sort_val(const struct mver *e, enum kv_sort_target t)
{
    switch (t) {
    case KV_SORT_VERSION:
        return e->version;
    case KV_SORT_CREATE:
        return e->create;
    case KV_SORT_MOD:
        return e->mod;
    default:
        return 0;
    }
}

static int model_sort_cmp(const void *pa, const void *pb)
{
    const struct mver *a = *(const struct mver *const *)pa;
    const struct mver *b = *(const struct mver *const *)pb;
    int c;
    if (g_sort_req->sort_target == KV_SORT_VALUE) {
        c = moor_slice_cmp(moor_slice_make(a->val, a->vlen),
                           moor_slice_make(b->val, b->vlen));
    } else {
        int64_t x = sort_val(a, g_sort_req->sort_target);
        int64_t y = sort_val(b, g_sort_req->sort_target);
        c = x < y ? -1 : (x > y ? 1 : 0);
    }
    if (g_sort_req->sort_order == KV_SORT_DESCEND) {
        c = -c;
    }
    return c != 0 ? c : moor_slice_cmp(mkey(a), mkey(b));
}

struct mrange
{
    const struct mver *rows[256];
    size_t n;
    int64_t count;
    bool more;
};

static bool passes(const struct kv_range_req *q, const struct mver *e)
{
    return !(
        (q->min_mod_revision > 0 && e->mod < q->min_mod_revision) ||
        (q->max_mod_revision > 0 && e->mod > q->max_mod_revision) ||
        (q->min_create_revision > 0 && e->create < q->min_create_revision) ||
        (q->max_create_revision > 0 && e->create > q->max_create_revision));
}

static int model_range(const struct model *m, const struct kv_range_req *q,
                       int64_t cur, struct mrange *out)
{
    out->n = 0;
    out->count = 0;
    out->more = false;
    if (q->key.len == 0) {
        return MOOR_EEMPTYKEY;
    }
    int64_t rev = q->revision <= 0 ? cur : q->revision;
    if (rev > cur) {
        return MOOR_EFUTUREREV;
    }
    if (rev < m->compact) {
        return MOOR_ECOMPACTED;
    }
    struct moor_slice keys[256];
    size_t nk = model_keys(m, q->key, q->range_end, keys);
    for (size_t i = 0; i < nk; i++) {
        const struct mver *e = model_get(m, keys[i], rev);
        if (e == NULL) {
            continue;
        }
        out->count++;
        if (passes(q, e)) {
            out->rows[out->n++] = e;
        }
    }
    if (q->count_only) {
        out->n = 0;
        return MOOR_OK;
    }
    if (q->sort_target != KV_SORT_KEY) {
        g_sort_req = q;
        qsort(out->rows, out->n, sizeof(out->rows[0]), model_sort_cmp);
    } else if (q->sort_order == KV_SORT_DESCEND) {
        for (size_t i = 0; i < out->n / 2; i++) {
            const struct mver *t = out->rows[i];
            out->rows[i] = out->rows[out->n - 1 - i];
            out->rows[out->n - 1 - i] = t;
        }
    }
    if (q->limit > 0 && out->n > (size_t)q->limit) {
        out->n = (size_t)q->limit;
        out->more = true;
    }
    return MOOR_OK;
}

static bool model_lease_exists(const struct model *m, int64_t id)
{
    for (size_t i = 0; i < m->n_leases; i++) {
        if (m->leases[i] == id) {
            return true;
        }
    }
    return false;
}

static int model_check_put(const struct model *m, const struct kv_put_req *q)
{
    if (q->key.len == 0) {
        return MOOR_EEMPTYKEY;
    }
    if (q->ignore_value && q->value.len != 0) {
        return MOOR_EVALUEPROVIDED;
    }
    if (q->ignore_lease && q->lease != 0) {
        return MOOR_ELEASEPROVIDED;
    }
    if ((q->ignore_value || q->ignore_lease) &&
        model_get(m, q->key, INT64_MAX) == NULL) {
        return MOOR_EKEYNOTFOUND;
    }
    if (q->lease != 0 && !model_lease_exists(m, q->lease)) {
        return MOOR_ELEASENOTFOUND;
    }
    return MOOR_OK;
}

/* Applies a checked put in the write in progress. Returns whether the key
 * existed, its previous version copied into *pv (model_append may move the
 * array). */
static bool model_put(struct model *m, const struct kv_put_req *q,
                      struct mver *pv)
{
    const struct mver *prev = model_get(m, q->key, INT64_MAX);
    if (prev != NULL) {
        *pv = *prev;
    }
    struct mver *e = model_append(m);
    mcopy(e->key, q->key.ptr, q->key.len);
    e->klen = q->key.len;
    if (q->ignore_value) {
        mcopy(e->val, pv->val, pv->vlen);
        e->vlen = pv->vlen;
    } else {
        mcopy(e->val, q->value.ptr, q->value.len);
        e->vlen = q->value.len;
    }
    e->mod = m->rev + 1;
    e->sub = m->sub++;
    e->create = prev != NULL ? pv->create : e->mod;
    e->version = prev != NULL ? pv->version + 1 : 1;
    e->lease = q->ignore_lease ? pv->lease : q->lease;
    return prev != NULL;
}

/* ---- comparing ---------------------------------------------------------- */

static void check_row(const struct kv_rec *r, const struct mver *e,
                      bool keys_only)
{
    struct kv_kv kv;
    kv_row_get(r, &kv);
    CHECK(moor_slice_eq(kv.key, mkey(e)));
    if (!keys_only) {
        CHECK(moor_slice_eq(kv.value, moor_slice_make(e->val, e->vlen)));
    }
    CHECK(kv.mod_revision == e->mod);
    CHECK(kv.create_revision == e->create);
    CHECK(kv.version == e->version);
    CHECK(kv.lease == e->lease);
}

static void check_range_resp(const struct kv_range_resp *r,
                             const struct mrange *mr, bool keys_only)
{
    CHECK(r->count == mr->count);
    CHECK(r->more == mr->more);
    CHECK(r->n == mr->n);
    for (size_t i = 0; i < r->n && i < mr->n; i++) {
        check_row(r->rows[i], mr->rows[i], keys_only);
    }
}

/* ---- random requests ---------------------------------------------------- */

struct gen
{
    struct moor_prng prng;
    const uint8_t *fuzz; /* fuzz input, or NULL: use prng */
    size_t fuzz_len;
    uint8_t bytes[4096]; /* backing store for generated keys and values */
    size_t used;
};

static struct moor_slice gen_bytes(struct gen *g, const uint8_t *p, size_t n)
{
    CHECK(g->used + n <= sizeof(g->bytes));
    mcopy(g->bytes + g->used, p, n);
    struct moor_slice s = moor_slice_make(g->bytes + g->used, n);
    g->used += n;
    return s;
}

/* A choice in [0, n): from the PRNG, or, in the fuzz target, from the
 * fuzzer's bytes (0 once they run out). */
static uint64_t rnd(struct gen *g, uint64_t n)
{
    if (g->fuzz == NULL) {
        return moor_prng_below(&g->prng, n);
    }
    uint64_t v = 0;
    for (uint64_t span = n - 1; span > 0; span >>= 8) {
        v = v << 8 | (g->fuzz_len > 0 ? *g->fuzz : 0);
        if (g->fuzz_len > 0) {
            g->fuzz++;
            g->fuzz_len--;
        }
    }
    return v % n;
}

/* Keys from a small alphabet so that operations collide. first: the first
 * byte's set ("ab" for txn puts, "cd" for txn deletes, "" anything). */
static struct moor_slice gen_key(struct gen *g, const char *first)
{
    static const uint8_t alpha[] = {'a', 'b', 'c', 'd', 0xff};
    uint8_t k[KEY_MAX];
    size_t len = 1 + rnd(g, 3);
    for (size_t i = 0; i < len; i++) {
        k[i] = alpha[rnd(g, sizeof(alpha))];
        if (i > 0 && rnd(g, 10) == 0) {
            k[i] = 0;
        }
    }
    if (first[0] != 0) {
        k[0] = (uint8_t)first[rnd(g, strlen(first))];
    }
    return gen_bytes(g, k, len);
}

static void gen_end(struct gen *g, struct moor_slice key,
                    struct moor_slice *end)
{
    uint64_t c = rnd(g, 6);
    if (c < 2) {
        *end = moor_slice_make(NULL, 0);
    } else if (c == 2) {
        static const uint8_t zero = 0;
        *end = moor_slice_make(&zero, 1);
    } else if (c == 3) {
        /* prefix end: key + 1 on the last byte that is not 0xff */
        uint8_t e[KEY_MAX];
        size_t n = key.len;
        mcopy(e, key.ptr, n);
        while (n > 0 && e[n - 1] == 0xff) {
            n--;
        }
        if (n == 0) {
            static const uint8_t zero = 0;
            *end = moor_slice_make(&zero, 1);
            return;
        }
        e[n - 1]++;
        *end = gen_bytes(g, e, n);
    } else {
        *end = gen_key(g, ""); /* may lie before key: an empty range */
    }
}

static void gen_range(struct gen *g, const struct model *m,
                      struct kv_range_req *q)
{
    memset(q, 0, sizeof(*q));
    q->key = gen_key(g, "");
    if (rnd(g, 4) == 0) {
        static const uint8_t zero = 0;
        q->key = moor_slice_make(&zero, 1);
    }
    gen_end(g, q->key, &q->range_end);
    if (rnd(g, 3) == 0) {
        q->limit = (int64_t)rnd(g, 4);
    }
    if (rnd(g, 3) == 0) {
        /* Mostly valid historic revisions, sometimes out of bounds. */
        int64_t lo = m->compact > 1 ? m->compact - 1 : 0;
        q->revision = lo + (int64_t)rnd(g, (uint64_t)(m->rev - lo + 2));
    }
    if (rnd(g, 3) == 0) {
        q->sort_order = (enum kv_sort_order)rnd(g, 3);
        q->sort_target = (enum kv_sort_target)rnd(g, 5);
    }
    q->keys_only = rnd(g, 5) == 0;
    q->count_only = rnd(g, 6) == 0;
    if (rnd(g, 5) == 0) {
        q->min_mod_revision = (int64_t)rnd(g, (uint64_t)m->rev + 1);
        q->max_mod_revision = (int64_t)rnd(g, (uint64_t)m->rev + 1);
        q->min_create_revision = (int64_t)rnd(g, (uint64_t)m->rev + 1);
        q->max_create_revision = (int64_t)rnd(g, (uint64_t)m->rev + 1);
    }
}

static int64_t gen_lease(struct gen *g, const struct model *m)
{
    uint64_t c = rnd(g, 8);
    if (c < 5 || m->n_leases == 0) {
        return c == 7 ? 999 : 0; /* 999 never exists */
    }
    return m->leases[rnd(g, m->n_leases)];
}

static void gen_put(struct gen *g, const struct model *m, const char *first,
                    struct kv_put_req *q)
{
    memset(q, 0, sizeof(*q));
    q->key = gen_key(g, first);
    uint8_t v[VAL_MAX];
    size_t vlen = rnd(g, VAL_MAX + 1);
    for (size_t i = 0; i < vlen; i++) {
        v[i] = (uint8_t)('0' + rnd(g, 3));
    }
    q->value = gen_bytes(g, v, vlen);
    q->lease = gen_lease(g, m);
    q->prev_kv = rnd(g, 2) == 0;
    if (rnd(g, 10) == 0) {
        q->ignore_value = true;
        if (rnd(g, 3) != 0) {
            q->value = moor_slice_make(NULL, 0);
        }
    }
    if (rnd(g, 10) == 0) {
        q->ignore_lease = true;
        if (rnd(g, 3) != 0) {
            q->lease = 0;
        }
    }
}

/* ---- the sequence ------------------------------------------------------- */

struct mwatch
{
    struct kv_watcher w;
    uint8_t key[KEY_MAX + 1], end[KEY_MAX + 1];
    struct kv_watch_req req;
    int64_t start; /* effective start revision */
    bool canceled;
    int64_t last_rev;   /* revision of the last delivered event */
    size_t n_delivered; /* events compared so far */
    size_t checked;
};

#define WATCH_MAX 6

struct seq
{
    struct gen g;
    struct model m;
    struct kv_store *s;
    uint64_t index;
    struct mwatch w[WATCH_MAX];
    size_t n_w;
};

/* Expected events for watcher mw, in order; returns count, fills up to max
 * pointers. */
static size_t expected_events(const struct model *m, const struct mwatch *mw,
                              const struct mver **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n && n < max; i++) {
        const struct mver *e = &m->v[i];
        if (e->mod < mw->start || e->mod > m->rev) {
            continue;
        }
        struct moor_slice wkey =
            mw->req.key.len > 0 ? mw->req.key : moor_slice_make("\0", 1);
        if (!in_range(mkey(e), wkey, mw->req.range_end)) {
            continue;
        }
        if ((e->tomb && mw->req.no_delete) || (!e->tomb && mw->req.no_put)) {
            continue;
        }
        out[n++] = e;
    }
    /* m->v is appended in (mod, sub) order already. */
    return n;
}

static void drain_watches(struct seq *q, size_t max_events)
{
    /* Several rounds: a round visits each ready watcher once. */
    for (int round = 0; round < 10000; round++) {
        struct kv_watcher *w = kv_watch_next_ready(q->s);
        if (w == NULL) {
            w = kv_watch_next_ready(q->s);
            if (w == NULL) {
                return;
            }
        }
        struct mwatch *mw = NULL;
        for (size_t i = 0; i < q->n_w; i++) {
            if (&q->w[i].w == w) {
                mw = &q->w[i];
            }
        }
        CHECK(mw != NULL);
        struct kv_watch_batch b;
        CHECK(kv_watch_take(q->s, w, max_events, &b) == MOOR_OK);
        if (b.canceled) {
            CHECK(!mw->canceled);
            CHECK(mw->start < q->m.compact);
            CHECK(b.compact_rev == q->m.compact);
            mw->canceled = true;
        }
        const struct mver *exp[512];
        size_t ne = expected_events(&q->m, mw, exp, 512);
        for (size_t i = 0; i < b.n; i++) {
            struct kv_kv kv;
            kv_row_get(b.events[i].kv, &kv);
            /* Never split a revision across batches. */
            if (i == 0) {
                CHECK(kv.mod_revision > mw->last_rev);
            }
            mw->last_rev = kv.mod_revision;
            CHECK(mw->n_delivered < ne);
            if (mw->n_delivered >= ne) {
                break;
            }
            const struct mver *e = exp[mw->n_delivered++];
            if (getenv("KVDBG") &&
                (b.events[i].type !=
                     (e->tomb ? KV_EVENT_DELETE : KV_EVENT_PUT) ||
                 kv.mod_revision != e->mod)) {
                fprintf(stderr,
                        "watch %zu start %lld synced %d: got type %d mod %lld "
                        "key %.*s; want tomb %d mod %lld sub %u key %.*s; "
                        "delivered %zu compact %lld\n",
                        (size_t)(mw - q->w), (long long)mw->start,
                        kv_watch_synced(w), b.events[i].type,
                        (long long)kv.mod_revision, (int)kv.key.len, kv.key.ptr,
                        e->tomb, (long long)e->mod, e->sub, (int)e->klen,
                        e->key, mw->n_delivered, (long long)q->m.compact);
            }
            CHECK(b.events[i].type ==
                  (e->tomb ? KV_EVENT_DELETE : KV_EVENT_PUT));
            CHECK(moor_slice_eq(kv.key, mkey(e)));
            CHECK(kv.mod_revision == e->mod);
            if (!e->tomb) {
                check_row(b.events[i].kv, e, false);
            }
            const struct mver *pe =
                mw->req.prev_kv ? model_get(&q->m, mkey(e), e->mod - 1) : NULL;
            if (b.events[i].prev != NULL) {
                CHECK(pe != NULL);
                check_row(b.events[i].prev, pe, false);
            } else {
                /* A previous version below the compact revision may be
                 * gone, as in etcd. */
                CHECK(pe == NULL || e->mod <= q->m.compact);
            }
        }
        kv_watch_batch_release(q->s, &b);
    }
    KV_MODEL_FAIL("seed %llu: watch drain does not converge",
                  (unsigned long long)g_seed);
}

static void check_watches_complete(struct seq *q)
{
    drain_watches(q, 1 + rnd(&q->g, 5));
    for (size_t i = 0; i < q->n_w; i++) {
        struct mwatch *mw = &q->w[i];
        if (mw->canceled) {
            continue;
        }
        const struct mver *exp[512];
        size_t ne = expected_events(&q->m, mw, exp, 512);
        CHECK(kv_watch_synced(&mw->w));
        CHECK(mw->n_delivered == ne);
    }
}

static void open_watch(struct seq *q)
{
    if (q->n_w == WATCH_MAX) {
        return;
    }
    struct mwatch *mw = &q->w[q->n_w];
    memset(mw, 0, sizeof(*mw));
    struct moor_slice k = gen_key(&q->g, "");
    mcopy(mw->key, k.ptr, k.len);
    mw->req.key = moor_slice_make(mw->key, k.len);
    if (rnd(&q->g, 8) == 0) {
        mw->req.key = moor_slice_make(NULL, 0);
    }
    struct moor_slice end;
    gen_end(&q->g, mw->req.key.len > 0 ? mw->req.key : moor_slice_make("\0", 1),
            &end);
    mcopy(mw->end, end.ptr, end.len);
    mw->req.range_end = moor_slice_make(mw->end, end.len);
    int64_t lo = q->m.compact > 1 ? q->m.compact - 1 : 0;
    mw->req.start_revision =
        rnd(&q->g, 3) == 0
            ? 0
            : lo + (int64_t)rnd(&q->g, (uint64_t)(q->m.rev - lo + 2));
    mw->req.no_put = rnd(&q->g, 6) == 0;
    mw->req.no_delete = rnd(&q->g, 6) == 0;
    mw->req.prev_kv = rnd(&q->g, 2) == 0;
    mw->start =
        mw->req.start_revision <= 0 ? q->m.rev + 1 : mw->req.start_revision;
    CHECK(kv_watch_open(q->s, &mw->w, &mw->req) == MOOR_OK);
    q->n_w++;
}

static void check_state(struct seq *q)
{
    struct kv_range_req r;
    memset(&r, 0, sizeof(r));
    static const uint8_t zero = 0;
    r.key = moor_slice_make(&zero, 1);
    r.range_end = moor_slice_make(&zero, 1);
    struct kv_range_resp resp;
    kv_range_resp_init(&resp);
    struct mrange mr;
    CHECK(kv_range(q->s, &r, &resp) == MOOR_OK);
    CHECK(model_range(&q->m, &r, q->m.rev, &mr) == MOOR_OK);
    check_range_resp(&resp, &mr, false);
    kv_range_resp_close(&resp);
    CHECK(kv_store_revision(q->s) == q->m.rev);
    CHECK(kv_store_compact_revision(q->s) == q->m.compact);
    CHECK(kv__tree_check(&q->s->tree));
    /* A random read too, historic or not. */
    gen_range(&q->g, &q->m, &r);
    kv_range_resp_init(&resp);
    int rv = kv_range(q->s, &r, &resp);
    int mrv = model_range(&q->m, &r, q->m.rev, &mr);
    CHECK(rv == mrv);
    if (rv == MOOR_OK) {
        check_range_resp(&resp, &mr, r.keys_only);
    }
    kv_range_resp_close(&resp);
}

/* ---- txn ---------------------------------------------------------------- */

struct gtxn
{
    struct kv_compare cmp[3];
    struct kv_op ops[2][4];
    struct kv_txn_req req;
};

static struct gtxn g_txns[16];
static size_t g_ntxn;

static void gen_txn(struct gen *g, const struct model *m, struct kv_txn_req *t,
                    int depth)
{
    struct gtxn *gt = &g_txns[g_ntxn++];
    memset(gt, 0, sizeof(*gt));
    size_t nc = rnd(g, 3);
    for (size_t i = 0; i < nc; i++) {
        struct kv_compare *c = &gt->cmp[i];
        c->result = (enum kv_cmp_result)rnd(g, 4);
        c->target = (enum kv_cmp_target)rnd(g, 5);
        c->key = gen_key(g, "");
        if (rnd(g, 4) == 0) {
            gen_end(g, c->key, &c->range_end);
        }
        c->number = (int64_t)rnd(g, (uint64_t)m->rev + 2);
        if (c->target == KV_CMP_LEASE && m->n_leases > 0 && rnd(g, 2)) {
            c->number = m->leases[rnd(g, m->n_leases)];
        }
        uint8_t v[2] = {(uint8_t)('0' + rnd(g, 3)), (uint8_t)('0' + rnd(g, 3))};
        c->value = gen_bytes(g, v, rnd(g, 3));
    }
    /* Puts use keys starting with a/b, each key once per txn tree; deletes
     * use c/d: dup-free by construction. */
    for (int br = 0; br < 2; br++) {
        size_t n = rnd(g, 4);
        for (size_t i = 0; i < n; i++) {
            struct kv_op *op = &gt->ops[br][i];
            uint64_t c = rnd(g, depth == 0 ? 4 : 3);
            if (c == 0) {
                op->type = KV_OP_RANGE;
                gen_range(g, m, &op->u.range);
            } else if (c == 1) {
                op->type = KV_OP_PUT;
                gen_put(g, m, "ab", &op->u.put);
            } else if (c == 2) {
                op->type = KV_OP_DELETE;
                op->u.del.key = gen_key(g, "cd");
                op->u.del.prev_kv = rnd(g, 2) == 0;
                if (rnd(g, 2) == 0) {
                    uint8_t e = (uint8_t)('c' + rnd(g, 2) + 1);
                    op->u.del.range_end = gen_bytes(g, &e, 1);
                }
            } else {
                op->type = KV_OP_TXN;
                gen_txn(g, m, &op->u.txn, depth + 1);
            }
        }
        if (br == 0) {
            gt->req.success = gt->ops[0];
            gt->req.n_success = n;
        } else {
            gt->req.failure = gt->ops[1];
            gt->req.n_failure = n;
        }
    }
    gt->req.compare = gt->cmp;
    gt->req.n_compare = nc;
    *t = gt->req;
}

/* Whether the generated tree puts one key twice (only if two random keys
 * collided); the model then expects MOOR_EDUPKEY. Conservative: any
 * repeated put key anywhere in the tree, across branches too, is flagged
 * and such txns are skipped. */
static bool collect_puts(const struct kv_txn_req *t, struct moor_slice *keys,
                         size_t *n)
{
    for (int br = 0; br < 2; br++) {
        const struct kv_op *ops = br == 0 ? t->success : t->failure;
        size_t no = br == 0 ? t->n_success : t->n_failure;
        for (size_t i = 0; i < no; i++) {
            if (ops[i].type == KV_OP_PUT) {
                for (size_t j = 0; j < *n; j++) {
                    if (moor_slice_eq(keys[j], ops[i].u.put.key)) {
                        return true;
                    }
                }
                keys[(*n)++] = ops[i].u.put.key;
            } else if (ops[i].type == KV_OP_TXN &&
                       collect_puts(&ops[i].u.txn, keys, n)) {
                return true;
            }
        }
    }
    return false;
}

static bool model_compare(const struct model *m, const struct kv_compare *c)
{
    struct moor_slice keys[256];
    size_t nk = model_keys(m, c->key, c->range_end, keys);
    size_t live = 0;
    for (size_t i = 0; i < nk; i++) {
        const struct mver *e = model_get(m, keys[i], m->rev);
        if (e == NULL) {
            continue;
        }
        live++;
        int res;
        if (c->target == KV_CMP_VALUE) {
            res = moor_slice_cmp(moor_slice_make(e->val, e->vlen), c->value);
        } else {
            int64_t x = c->target == KV_CMP_VERSION  ? e->version
                        : c->target == KV_CMP_CREATE ? e->create
                        : c->target == KV_CMP_MOD    ? e->mod
                                                     : e->lease;
            res = x < c->number ? -1 : (x > c->number ? 1 : 0);
        }
        bool ok = c->result == KV_CMP_EQUAL     ? res == 0
                  : c->result == KV_CMP_GREATER ? res > 0
                  : c->result == KV_CMP_LESS    ? res < 0
                                                : res != 0;
        if (!ok) {
            return false;
        }
    }
    if (live == 0) {
        if (c->target == KV_CMP_VALUE) {
            return false;
        }
        int res = 0 < c->number ? -1 : (0 > c->number ? 1 : 0);
        return c->result == KV_CMP_EQUAL     ? res == 0
               : c->result == KV_CMP_GREATER ? res > 0
               : c->result == KV_CMP_LESS    ? res < 0
                                             : res != 0;
    }
    return true;
}

/* etcd's static checks, over both branches, in order. */
static int model_txn_static(const struct kv_txn_req *t)
{
    for (size_t i = 0; i < t->n_compare; i++) {
        if (t->compare[i].key.len == 0) {
            return MOOR_EEMPTYKEY;
        }
    }
    for (int br = 0; br < 2; br++) {
        const struct kv_op *ops = br == 0 ? t->success : t->failure;
        size_t n = br == 0 ? t->n_success : t->n_failure;
        for (size_t i = 0; i < n; i++) {
            int rv = MOOR_OK;
            if (ops[i].type == KV_OP_PUT) {
                const struct kv_put_req *p = &ops[i].u.put;
                if (p->ignore_value && p->value.len != 0) {
                    rv = MOOR_EVALUEPROVIDED;
                } else if (p->ignore_lease && p->lease != 0) {
                    rv = MOOR_ELEASEPROVIDED;
                }
            } else if (ops[i].type == KV_OP_TXN) {
                rv = model_txn_static(&ops[i].u.txn);
            }
            if (rv != MOOR_OK) {
                return rv;
            }
        }
    }
    return MOOR_OK;
}

static int model_txn_eval(const struct model *m, const struct kv_txn_req *t,
                          bool *path, size_t *np)
{
    bool ok = true;
    for (size_t i = 0; i < t->n_compare && ok; i++) {
        ok = model_compare(m, &t->compare[i]);
    }
    path[(*np)++] = ok;
    const struct kv_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++) {
        int rv = MOOR_OK;
        if (ops[i].type == KV_OP_RANGE) {
            int64_t r = ops[i].u.range.revision;
            if (r > m->rev) {
                rv = MOOR_EFUTUREREV;
            } else if (r > 0 && r < m->compact) {
                rv = MOOR_ECOMPACTED;
            }
        } else if (ops[i].type == KV_OP_PUT) {
            rv = model_check_put(m, &ops[i].u.put);
        } else if (ops[i].type == KV_OP_TXN) {
            rv = model_txn_eval(m, &ops[i].u.txn, path, np);
        }
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return MOOR_OK;
}

static void model_del_fill(struct model *m, size_t nk,
                           uint8_t (*copies)[KEY_MAX], const size_t *lens);

/* Applies the path and checks the store's responses against it. */
static void model_txn_apply(struct model *m, const struct kv_txn_req *t,
                            const bool *path, size_t *pi,
                            const struct kv_txn_resp *resp)
{
    bool ok = path[(*pi)++];
    CHECK(resp->succeeded == ok);
    const struct kv_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    CHECK(resp->n == n);
    for (size_t i = 0; i < n; i++) {
        const struct kv_op_resp *o = &resp->responses[i];
        CHECK(o->type == ops[i].type);
        if (ops[i].type == KV_OP_RANGE) {
            struct mrange mr;
            int64_t cur = m->sub > 0 ? m->rev + 1 : m->rev;
            CHECK(model_range(m, &ops[i].u.range, cur, &mr) == MOOR_OK);
            check_range_resp(&o->u.range, &mr, ops[i].u.range.keys_only);
        } else if (ops[i].type == KV_OP_PUT) {
            struct mver pv;
            bool had = model_put(m, &ops[i].u.put, &pv);
            if (ops[i].u.put.prev_kv && had) {
                CHECK(o->u.put.prev_kv != NULL);
                check_row(o->u.put.prev_kv, &pv, false);
            } else {
                CHECK(o->u.put.prev_kv == NULL);
            }
        } else if (ops[i].type == KV_OP_DELETE) {
            /* Deletes: compute the keys first, then append. */
            struct moor_slice keys[256];
            uint8_t copies[256][KEY_MAX];
            size_t lens[256];
            size_t nk =
                model_keys(m, ops[i].u.del.key, ops[i].u.del.range_end, keys);
            size_t live = 0;
            for (size_t j = 0; j < nk; j++) {
                if (model_get(m, keys[j], INT64_MAX) != NULL) {
                    mcopy(copies[live], keys[j].ptr, keys[j].len);
                    lens[live] = keys[j].len;
                    live++;
                }
            }
            CHECK(o->u.del.deleted == (int64_t)live);
            if (ops[i].u.del.prev_kv) {
                CHECK(o->u.del.n == live);
            }
            model_del_fill(m, live, copies, lens);
        } else {
            model_txn_apply(m, &ops[i].u.txn, path, pi, o->u.txn);
        }
    }
}

static void model_del_fill(struct model *m, size_t nk,
                           uint8_t (*copies)[KEY_MAX], const size_t *lens)
{
    for (size_t j = 0; j < nk; j++) {
        struct mver *e = model_append(m);
        mcopy(e->key, copies[j], lens[j]);
        e->klen = lens[j];
        e->tomb = true;
        e->mod = m->rev + 1;
        e->sub = m->sub++;
    }
}

/* Deletes [key, end) in the model as one write; returns the count. */
static int64_t model_delete_range(struct model *m, struct moor_slice key,
                                  struct moor_slice end)
{
    struct moor_slice keys[256];
    uint8_t copies[256][KEY_MAX];
    size_t lens[256];
    size_t nk = model_keys(m, key, end, keys);
    size_t live = 0;
    for (size_t j = 0; j < nk; j++) {
        if (model_get(m, keys[j], INT64_MAX) != NULL) {
            mcopy(copies[live], keys[j].ptr, keys[j].len);
            lens[live] = keys[j].len;
            live++;
        }
    }
    model_del_fill(m, live, copies, lens);
    return (int64_t)live;
}

/* ---- steps -------------------------------------------------------------- */

static void end_write(struct model *m)
{
    if (m->sub > 0) {
        m->rev++;
    }
    m->sub = 0;
}

static void step(struct seq *q)
{
    struct gen *g = &q->g;
    struct model *m = &q->m;
    g->used = 0;
    g_ntxn = 0;
    uint64_t c = rnd(g, 100);
    int rv;
    if (c < 30) {
        struct kv_put_req p;
        gen_put(g, m, "", &p);
        struct kv_put_resp resp;
        rv = kv_put(q->s, ++q->index, &p, &resp);
        int mrv = model_check_put(m, &p);
        CHECK(rv == mrv);
        if (mrv == MOOR_OK) {
            struct mver pv;
            bool had = model_put(m, &p, &pv);
            end_write(m);
            CHECK(resp.revision == m->rev);
            if (p.prev_kv && had) {
                CHECK(resp.prev_kv != NULL);
                check_row(resp.prev_kv, &pv, false);
            } else {
                CHECK(resp.prev_kv == NULL);
            }
        }
    } else if (c < 42) {
        struct kv_delete_req d;
        memset(&d, 0, sizeof(d));
        d.key = gen_key(g, "");
        gen_end(g, d.key, &d.range_end);
        d.prev_kv = rnd(g, 2) == 0;
        struct kv_delete_resp resp;
        kv_delete_resp_init(&resp);
        rv = kv_delete(q->s, ++q->index, &d, &resp);
        CHECK(rv == MOOR_OK);
        int64_t deleted = model_delete_range(m, d.key, d.range_end);
        end_write(m);
        CHECK(resp.deleted == deleted);
        CHECK(resp.revision == m->rev);
        CHECK(resp.n == (d.prev_kv ? (size_t)deleted : 0));
        kv_delete_resp_close(&resp);
    } else if (c < 62) {
        struct kv_txn_req t;
        gen_txn(g, m, &t, 0);
        struct moor_slice pk[64];
        size_t npk = 0;
        bool dup = collect_puts(&t, pk, &npk);
        bool path[16];
        size_t np = 0;
        int mrv = model_txn_static(&t);
        if (mrv == MOOR_OK) {
            mrv = model_txn_eval(m, &t, path, &np);
        }
        struct kv_txn_resp resp;
        kv_txn_resp_init(&resp);
        rv = kv_txn(q->s, ++q->index, &t, &resp);
        /* A repeated put key (two random keys collided) may be refused
         * as a duplicate, or be fine when it sits in exclusive branches;
         * either way the rest must agree with the model. */
        if (!(dup && rv == MOOR_EDUPKEY)) {
            CHECK(rv == mrv);
        }
        if (rv == MOOR_OK) {
            size_t pi = 0;
            model_txn_apply(m, &t, path, &pi, &resp);
            end_write(m);
            CHECK(resp.revision == m->rev);
        }
        kv_txn_resp_close(&resp);
    } else if (c < 66) {
        int64_t id = rnd(g, 2) == 0 ? 0 : (int64_t)(1 + rnd(g, 4));
        int64_t got = 0;
        int64_t ttl = 0;
        rv = kv_lease_grant(q->s, ++q->index, id, 10, 0, &got, &ttl);
        if (id != 0 && model_lease_exists(m, id)) {
            CHECK(rv == MOOR_ELEASEEXISTS);
        } else {
            CHECK(rv == MOOR_OK);
            CHECK(got > 0 && !model_lease_exists(m, got));
            CHECK(id == 0 || got == id);
            if (m->n_leases < MOOR_ARRAY_LEN(m->leases)) {
                m->leases[m->n_leases++] = got;
            }
        }
    } else if (c < 69) {
        int64_t id = m->n_leases > 0 && rnd(g, 4) != 0
                         ? m->leases[rnd(g, m->n_leases)]
                         : 12345;
        int64_t rev = 0;
        rv = kv_lease_revoke(q->s, ++q->index, id, &rev);
        if (!model_lease_exists(m, id)) {
            CHECK(rv == MOOR_ELEASENOTFOUND);
        } else {
            CHECK(rv == MOOR_OK);
            /* Delete the keys whose live version carries the lease. */
            struct moor_slice keys[256];
            uint8_t copies[256][KEY_MAX];
            size_t lens[256];
            static const uint8_t zero = 0;
            size_t nk = model_keys(m, moor_slice_make(&zero, 1),
                                   moor_slice_make(&zero, 1), keys);
            size_t nd = 0;
            for (size_t j = 0; j < nk; j++) {
                const struct mver *e = model_get(m, keys[j], INT64_MAX);
                if (e != NULL && e->lease == id) {
                    mcopy(copies[nd], keys[j].ptr, keys[j].len);
                    lens[nd] = keys[j].len;
                    nd++;
                }
            }
            model_del_fill(m, nd, copies, lens);
            end_write(m);
            CHECK(rev == m->rev);
            for (size_t j = 0; j < m->n_leases; j++) {
                if (m->leases[j] == id) {
                    m->leases[j] = m->leases[--m->n_leases];
                    break;
                }
            }
        }
    } else if (c < 74) {
        int64_t lo = m->compact > 1 ? m->compact - 1 : 0;
        int64_t r = lo + (int64_t)rnd(g, (uint64_t)(m->rev - lo + 2));
        rv = kv_compact(q->s, ++q->index, r);
        if (r <= m->compact) {
            CHECK(rv == MOOR_ECOMPACTED);
        } else if (r > m->rev) {
            CHECK(rv == MOOR_EFUTUREREV);
        } else {
            CHECK(rv == MOOR_OK);
            m->compact = r;
        }
    } else if (c < 84) {
        (void)kv_compact_step(q->s, (uint32_t)(1 + rnd(g, 4)));
    } else if (c < 88) {
        open_watch(q);
    } else if (c < 94) {
        drain_watches(q, 1 + rnd(g, 4));
    } else {
        /* A stale index is refused and changes nothing. */
        struct kv_put_req p;
        gen_put(g, m, "", &p);
        struct kv_put_resp resp;
        CHECK(kv_put(q->s, q->index, &p, &resp) == MOOR_EINVAL);
    }
    CHECK(kv_store_applied_index(q->s) == q->index);
    check_state(q);
}

static void compare_stores(struct kv_store *a, struct kv_store *b)
{
    CHECK(kv_store_revision(a) == kv_store_revision(b));
    uint32_t ha = 0, hb = 0;
    int64_t ca = 0, cb = 0, ra = 0, rb = 0;
    CHECK(kv_hash_kv(a, 0, &ha, &ca, &ra) == MOOR_OK);
    CHECK(kv_hash_kv(b, 0, &hb, &cb, &rb) == MOOR_OK);
    CHECK(ha == hb && ca == cb && ra == rb);
    CHECK(kv_hash(a) == kv_hash(b));
    /* Every readable revision gives the same rows. */
    static const uint8_t zero = 0;
    for (int64_t rev = MOOR_MAX(kv_store_compact_revision(a), 1);
         rev <= kv_store_revision(a); rev++) {
        struct kv_range_req r;
        memset(&r, 0, sizeof(r));
        r.key = moor_slice_make(&zero, 1);
        r.range_end = moor_slice_make(&zero, 1);
        r.revision = rev;
        struct kv_range_resp x, y;
        kv_range_resp_init(&x);
        kv_range_resp_init(&y);
        CHECK(kv_range(a, &r, &x) == MOOR_OK);
        CHECK(kv_range(b, &r, &y) == MOOR_OK);
        CHECK(x.n == y.n && x.count == y.count);
        for (size_t i = 0; i < x.n && i < y.n; i++) {
            struct kv_kv p, s;
            kv_row_get(x.rows[i], &p);
            kv_row_get(y.rows[i], &s);
            CHECK(moor_slice_eq(p.key, s.key) &&
                  moor_slice_eq(p.value, s.value));
            CHECK(p.mod_revision == s.mod_revision &&
                  p.create_revision == s.create_revision &&
                  p.version == s.version && p.lease == s.lease);
        }
        kv_range_resp_close(&x);
        kv_range_resp_close(&y);
    }
}

static void dump_and_reload(struct seq *q)
{
    struct kv_dump d;
    CHECK(kv_dump_open(q->s, &d) == MOOR_OK);
    struct moor_buf out;
    moor_buf_init(&out);
    bool done = false;
    size_t chunk = 1 + rnd(&q->g, 200);
    while (!done) {
        CHECK(kv_dump_next(&d, &out, chunk, &done) == MOOR_OK);
        /* Writes may continue between chunks; the dump shows rev d.rev. */
    }
    kv_dump_close(&d);
    struct kv_store *t = NULL;
    CHECK(kv_store_new(NULL, &t) == MOOR_OK);
    struct kv_load l;
    CHECK(kv_load_open(t, &l) == MOOR_OK);
    size_t off = 0;
    while (off < out.len) {
        size_t piece = 1 + rnd(&q->g, 64);
        size_t n = MOOR_MIN(out.len - off, piece);
        int rv = kv_load_feed(&l, out.ptr + off, n);
        if (rv != MOOR_OK) {
            fprintf(stderr, "load: %s (len %zu off %zu n %zu)\n", l.errmsg,
                    out.len, off, n);
        }
        CHECK(rv == MOOR_OK);
        off += n;
    }
    CHECK(kv_load_finish(&l) == MOOR_OK);
    kv_load_close(&l);
    CHECK(kv_store_applied_index(t) == q->index);
    CHECK(kv_lease_count(t) == kv_lease_count(q->s));
    CHECK(kv__tree_check(&t->tree));
    compare_stores(q->s, t);
    /* Finish the physical compaction of the original: nothing visible
     * changes, the hashes stay equal. */
    while (kv_compact_step(q->s, 3)) {
    }
    compare_stores(q->s, t);
    /* ... and leaves exactly the versions the dump kept: same keys, same
     * history chains (the loaded store holds only kept versions). */
    CHECK(kv_store_key_count(q->s) == kv_store_key_count(t));
    struct kv_pos pa, pb;
    kv__tree_seek(&q->s->tree, moor_slice_make(NULL, 0), &pa);
    kv__tree_seek(&t->tree, moor_slice_make(NULL, 0), &pb);
    const struct kv_rec *ha, *hb;
    while ((ha = kv__pos_rec(&pa)) != NULL && (hb = kv__pos_rec(&pb)) != NULL) {
        CHECK(moor_slice_eq(kv__rec_key(ha), kv__rec_key(hb)));
        while (ha != NULL && hb != NULL) {
            CHECK(ha->mod == hb->mod && ha->sub == hb->sub &&
                  ha->version == hb->version);
            ha = ha->older;
            hb = hb->older;
        }
        CHECK(ha == NULL && hb == NULL);
        kv__pos_next(&pa);
        kv__pos_next(&pb);
    }
    kv_store_free(t);
    moor_buf_close(&out);
}

/* Runs one sequence of `steps` steps (stops early when the fuzz input is
 * exhausted), then drains and checks the watchers and checks a dump and
 * reload. */
static void kv_model_run(uint64_t seed, const uint8_t *fuzz, size_t fuzz_len,
                         size_t steps)
{
    g_seed = seed;
    struct seq *q = calloc(1, sizeof(*q));
    CHECK(q != NULL);
    moor_prng_seed(&q->g.prng, seed);
    q->g.fuzz = fuzz;
    q->g.fuzz_len = fuzz_len;
    q->m.rev = 1;
    struct kv_options o;
    kv_options_default(&o);
    o.watch_pending_max = (uint32_t)(1 + rnd(&q->g, 8));
    o.watch_catchup_revs = (uint32_t)(1 + rnd(&q->g, 6));
    o.watch_catchup_keys = (uint32_t)(1 + rnd(&q->g, 4));
    CHECK(kv_store_new(&o, &q->s) == MOOR_OK);
    for (size_t i = 0; i < steps && (fuzz == NULL || q->g.fuzz_len > 0); i++) {
        step(q);
    }
    check_watches_complete(q);
    dump_and_reload(q);
    for (size_t i = 0; i < q->n_w; i++) {
        kv_watch_close(q->s, &q->w[i].w);
    }
    kv_store_free(q->s);
    free(q->m.v);
    free(q);
}

#endif /* MOOR_TEST_KV_MODEL_H */
