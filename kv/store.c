/*
 * store.c: records, the store's lifecycle, Range, Put, DeleteRange,
 * compaction and hashes. Txn is in txn.c; both apply writes through the
 * kv__wtx helpers here so that one main revision covers a whole request.
 */
#include <stdlib.h>

#include "kv_int.h"

void kv_options_default(struct kv_options *o)
{
    o->lease_min_ttl_s = 2;
    o->max_txn_ops = 128;
    o->watch_pending_max = 4096;
    o->watch_catchup_revs = 1000;
    o->watch_catchup_keys = 10000;
}

struct kv_rec *kv__rec_new(struct moor_slice key, struct moor_slice value)
{
    if (key.len > UINT32_MAX || value.len > UINT32_MAX - key.len) {
        return NULL;
    }
    struct kv_rec *r = moor_malloc(sizeof(*r) + key.len + value.len);
    if (r == NULL) {
        return NULL;
    }
    memset(r, 0, sizeof(*r));
    r->refs = 1;
    r->klen = (uint32_t)key.len;
    r->vlen = (uint32_t)value.len;
    if (key.len > 0) {
        memcpy(r->data, key.ptr, key.len);
    }
    if (value.len > 0) {
        memcpy(r->data + key.len, value.ptr, value.len);
    }
    return r;
}

void kv__rec_unref(struct kv_rec *r)
{
    MOOR_ASSERT(r->refs > 0);
    if (--r->refs == 0) {
        moor_free(r);
    }
}

/* Drops the chain's reference on r and everything older. */
static void chain_unref(struct kv_rec *r)
{
    while (r != NULL) {
        struct kv_rec *older = r->older;
        r->older = NULL;
        kv__rec_unref(r);
        r = older;
    }
}

void kv_row_get(const struct kv_rec *rec, struct kv_kv *out)
{
    out->key = kv__rec_key(rec);
    out->value = kv__rec_value(rec);
    out->create_revision = rec->create;
    out->mod_revision = rec->mod;
    out->version = rec->version;
    out->lease = rec->lease;
}

int kv_store_new(const struct kv_options *o, struct kv_store **out)
{
    struct kv_store *s = moor_calloc(1, sizeof(*s));
    if (s == NULL) {
        return MOOR_ENOMEM;
    }
    if (o != NULL) {
        s->opt = *o;
    } else {
        kv_options_default(&s->opt);
    }
    int rv = kv__tree_init(&s->tree);
    if (rv != MOOR_OK) {
        goto err;
    }
    rv = kv__leases_init(&s->leases);
    if (rv != MOOR_OK) {
        goto err_tree;
    }
    rv = kv__watch_init(&s->watch);
    if (rv != MOOR_OK) {
        goto err_leases;
    }
    s->rev = 1;
    *out = s;
    return MOOR_OK;
err_leases:
    kv__leases_close(&s->leases);
err_tree:
    kv__tree_close(&s->tree);
err:
    moor_free(s);
    return rv;
}

void kv_store_free(struct kv_store *s)
{
    if (s == NULL) {
        return;
    }
    struct kv_pos pos;
    kv__tree_seek(&s->tree, moor_slice_make(NULL, 0), &pos);
    struct kv_rec *r;
    while ((r = kv__pos_rec(&pos)) != NULL) {
        kv__pos_next(&pos);
        chain_unref(r);
    }
    kv__tree_close(&s->tree);
    kv__leases_close(&s->leases);
    kv__watch_close(&s->watch);
    moor_free(s->compact_cursor);
    moor_free(s);
}

int64_t kv_store_revision(const struct kv_store *s)
{
    return s->rev;
}

int64_t kv_store_compact_revision(const struct kv_store *s)
{
    return s->compact_rev;
}

uint64_t kv_store_applied_index(const struct kv_store *s)
{
    return s->applied_index;
}

int kv__check_index(struct kv_store *s, uint64_t index)
{
    if (index <= s->applied_index) {
        return MOOR_EINVAL;
    }
    s->applied_index = index;
    return MOOR_OK;
}

int kv_store_note_applied(struct kv_store *s, uint64_t index)
{
    return kv__check_index(s, index);
}

void kv_store_reset_applied_index(struct kv_store *s, uint64_t index)
{
    s->applied_index = index;
}

uint64_t kv_store_key_count(const struct kv_store *s)
{
    return s->tree.n_keys;
}

uint64_t kv_store_live_count(const struct kv_store *s)
{
    return s->tree.n_live;
}

const struct kv_rec *kv__visible(const struct kv_rec *head, int64_t rev)
{
    for (const struct kv_rec *r = head; r != NULL; r = r->older) {
        if (r->mod <= rev) {
            return kv__rec_live(r) ? r : NULL;
        }
    }
    return NULL;
}

int kv__rows_push(const struct kv_rec ***rows, size_t *n, size_t *cap,
                  const struct kv_rec *r)
{
    if (*n == *cap) {
        size_t ncap = *cap == 0 ? 16 : *cap * 2;
        const struct kv_rec **p = moor_realloc(*rows, ncap * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        *rows = p;
        *cap = ncap;
    }
    (*rows)[(*n)++] = r;
    return MOOR_OK;
}

/* ------------------------------------------------------------------------
 * Range
 * ---------------------------------------------------------------------- */

void kv_range_resp_init(struct kv_range_resp *r)
{
    memset(r, 0, sizeof(*r));
}

void kv_range_resp_close(struct kv_range_resp *r)
{
    moor_free(r->rows);
    memset(r, 0, sizeof(*r));
}

static bool is_from_key(struct moor_slice end)
{
    return end.len == 1 && end.ptr[0] == 0;
}

static bool passes_filters(const struct kv_range_req *q, const struct kv_rec *r)
{
    if (q->min_mod_revision > 0 && r->mod < q->min_mod_revision) {
        return false;
    }
    if (q->max_mod_revision > 0 && r->mod > q->max_mod_revision) {
        return false;
    }
    if (q->min_create_revision > 0 && r->create < q->min_create_revision) {
        return false;
    }
    if (q->max_create_revision > 0 && r->create > q->max_create_revision) {
        return false;
    }
    return true;
}

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : (a > b ? 1 : 0);
}

static int sort_cmp(const void *pa, const void *pb, void *arg)
{
    const struct kv_rec *a = *(const struct kv_rec *const *)pa;
    const struct kv_rec *b = *(const struct kv_rec *const *)pb;
    const struct kv_range_req *q = arg;
    int c = 0;
    switch (q->sort_target) {
    case KV_SORT_KEY:
        c = 0;
        break;
    case KV_SORT_VERSION:
        c = cmp_i64(a->version, b->version);
        break;
    case KV_SORT_CREATE:
        c = cmp_i64(a->create, b->create);
        break;
    case KV_SORT_MOD:
        c = cmp_i64(a->mod, b->mod);
        break;
    case KV_SORT_VALUE:
        c = moor_slice_cmp(kv__rec_value(a), kv__rec_value(b));
        break;
    }
    if (q->sort_order == KV_SORT_DESCEND) {
        c = -c;
    }
    if (c == 0) {
        c = moor_slice_cmp(kv__rec_key(a), kv__rec_key(b));
    }
    return c;
}

int kv__range_at(struct kv_store *s, const struct kv_range_req *q, int64_t cur,
                 struct kv_range_resp *resp);

/* The single-key form. */
static int range_one(struct kv_store *s, const struct kv_range_req *q,
                     int64_t rev, struct kv_range_resp *resp)
{
    struct kv_rec **slot = kv__tree_find(&s->tree, q->key);
    const struct kv_rec *r = slot != NULL ? kv__visible(*slot, rev) : NULL;
    if (r == NULL) {
        return MOOR_OK;
    }
    resp->count = 1;
    if (!q->count_only && passes_filters(q, r)) {
        return kv__rows_push(&resp->rows, &resp->n, &resp->cap, r);
    }
    return MOOR_OK;
}

/* Walks [key, end) (backwards for a descending key sort) collecting up to
 * `want` filtered rows; counts every visible key unless `counted` (the
 * count came from the subtree counts), in which case it stops at `want`. */
static int range_scan(struct kv_store *s, const struct kv_range_req *q,
                      int64_t rev, uint64_t want, bool counted,
                      struct kv_range_resp *resp)
{
    bool to_inf = is_from_key(q->range_end);
    bool reverse =
        q->sort_target == KV_SORT_KEY && q->sort_order == KV_SORT_DESCEND;
    bool filtered = q->min_mod_revision > 0 || q->max_mod_revision > 0 ||
                    q->min_create_revision > 0 || q->max_create_revision > 0;
    int64_t count = 0;
    struct kv_pos pos;
    if (reverse) {
        kv__tree_seek_before(&s->tree, q->range_end, to_inf, &pos);
    } else {
        kv__tree_seek(&s->tree, q->key, &pos);
    }
    const struct kv_rec *head;
    while ((head = kv__pos_rec(&pos)) != NULL) {
        struct moor_slice k = kv__rec_key(head);
        if (reverse ? moor_slice_cmp(k, q->key) < 0
                    : (!to_inf && moor_slice_cmp(k, q->range_end) >= 0)) {
            break;
        }
        if (reverse) {
            kv__pos_prev(&pos);
        } else {
            kv__pos_next(&pos);
        }
        const struct kv_rec *r = kv__visible(head, rev);
        if (r == NULL) {
            continue;
        }
        count++;
        if (q->count_only) {
            continue;
        }
        if (resp->n < want && (!filtered || passes_filters(q, r))) {
            int rv = kv__rows_push(&resp->rows, &resp->n, &resp->cap, r);
            if (rv != MOOR_OK) {
                return rv;
            }
        } else if (resp->n >= want && counted) {
            break;
        }
    }
    if (!counted) {
        resp->count = count;
    }
    return MOOR_OK;
}

int kv__range_at(struct kv_store *s, const struct kv_range_req *q, int64_t cur,
                 struct kv_range_resp *resp)
{
    resp->n = 0;
    resp->count = 0;
    resp->more = false;
    resp->revision = cur;
    resp->keys_only = q->keys_only;
    if (q->key.len == 0) {
        return MOOR_EEMPTYKEY;
    }
    if ((unsigned)q->sort_order > KV_SORT_DESCEND ||
        (unsigned)q->sort_target > KV_SORT_VALUE) {
        return MOOR_EINVAL;
    }
    int64_t rev = q->revision <= 0 ? cur : q->revision;
    if (rev > cur) {
        return MOOR_EFUTUREREV;
    }
    if (rev < s->compact_rev) {
        return MOOR_ECOMPACTED;
    }
    if (q->range_end.len == 0) {
        return range_one(s, q, rev, resp);
    }
    bool to_inf = is_from_key(q->range_end);
    if (!to_inf && moor_slice_cmp(q->key, q->range_end) >= 0) {
        return MOOR_OK;
    }
    /* At the current revision the count comes from subtree counts. */
    bool counted = rev == cur;
    if (counted) {
        uint64_t hi =
            to_inf ? s->tree.n_live : kv__tree_rank(&s->tree, q->range_end);
        resp->count = (int64_t)(hi - kv__tree_rank(&s->tree, q->key));
        if (q->count_only) {
            return MOOR_OK;
        }
    }
    uint64_t limit = q->limit > 0 ? (uint64_t)q->limit : 0;
    bool by_key = q->sort_target == KV_SORT_KEY;
    /* Rows beyond limit + 1 are needed only to sort by another target. */
    uint64_t want = (!by_key || limit == 0) ? UINT64_MAX : limit + 1;
    int rv = range_scan(s, q, rev, want, counted, resp);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (!by_key && resp->n > 1) {
        qsort_r(resp->rows, resp->n, sizeof(resp->rows[0]), sort_cmp,
                (void *)(uintptr_t)q);
    }
    if (limit > 0 && resp->n > limit) {
        resp->n = (size_t)limit;
        resp->more = true;
    }
    return MOOR_OK;
}

int kv_range(struct kv_store *s, const struct kv_range_req *req,
             struct kv_range_resp *resp)
{
    return kv__range_at(s, req, s->rev, resp);
}

/* ------------------------------------------------------------------------
 * Writes
 * ---------------------------------------------------------------------- */

int kv__put_key(struct kv_store *s, struct kv__wtx *w,
                const struct kv_put_req *q, const struct kv_rec **prev_out);

int kv__put_key(struct kv_store *s, struct kv__wtx *w,
                const struct kv_put_req *q, const struct kv_rec **prev_out)
{
    struct kv_rec **slot = kv__tree_find(&s->tree, q->key);
    struct kv_rec *head = slot != NULL ? *slot : NULL;
    struct kv_rec *prev = head != NULL && kv__rec_live(head) ? head : NULL;
    MOOR_ASSERT(head == NULL || head->mod < w->rev);
    if ((q->ignore_value || q->ignore_lease) && prev == NULL) {
        return MOOR_EKEYNOTFOUND;
    }
    struct moor_slice value = q->ignore_value ? kv__rec_value(prev) : q->value;
    int64_t lease = q->ignore_lease ? prev->lease : q->lease;
    int64_t old_lease = prev != NULL ? prev->lease : 0;
    struct kv_rec *r = kv__rec_new(q->key, value);
    if (r == NULL) {
        return MOOR_ENOMEM;
    }
    r->mod = w->rev;
    r->sub = w->sub;
    r->create = prev != NULL ? prev->create : w->rev;
    r->version = prev != NULL ? prev->version + 1 : 1;
    r->lease = lease;
    int rv;
    if (lease != old_lease && lease != 0) {
        rv = kv__lease_attach(s, lease, q->key);
        if (rv != MOOR_OK) {
            moor_free(r);
            return rv;
        }
    }
    if (slot != NULL) {
        r->older = head;
        *slot = r;
        if (prev == NULL) {
            kv__tree_adjust_live(&s->tree, q->key, 1);
        }
    } else {
        rv = kv__tree_insert(&s->tree, r);
        if (rv != MOOR_OK) {
            if (lease != old_lease && lease != 0) {
                kv__lease_detach(s, lease, q->key);
            }
            moor_free(r);
            return rv;
        }
    }
    if (lease != old_lease && old_lease != 0) {
        kv__lease_detach(s, old_lease, q->key);
    }
    w->sub++;
    if (prev_out != NULL) {
        *prev_out = prev;
    }
    kv__watch_notify(s, r);
    return MOOR_OK;
}

int kv__delete_key(struct kv_store *s, struct kv__wtx *w, struct kv_rec **slot)
{
    struct kv_rec *head = *slot;
    MOOR_ASSERT(kv__rec_live(head) && head->mod < w->rev);
    struct kv_rec *t = kv__rec_new(kv__rec_key(head), moor_slice_make(NULL, 0));
    if (t == NULL) {
        return MOOR_ENOMEM;
    }
    t->mod = w->rev;
    t->sub = w->sub++;
    t->older = head;
    *slot = t;
    kv__tree_adjust_live(&s->tree, kv__rec_key(t), -1);
    if (head->lease != 0) {
        kv__lease_detach(s, head->lease, kv__rec_key(t));
    }
    kv__watch_notify(s, t);
    return MOOR_OK;
}

int kv__delete_range(struct kv_store *s, struct kv__wtx *w,
                     const struct kv_delete_req *q,
                     struct kv_delete_resp *resp);

int kv__delete_range(struct kv_store *s, struct kv__wtx *w,
                     const struct kv_delete_req *q, struct kv_delete_resp *resp)
{
    int rv;
    resp->deleted = 0;
    resp->n = 0;
    if (q->range_end.len == 0) {
        struct kv_rec **slot = kv__tree_find(&s->tree, q->key);
        if (slot == NULL || !kv__rec_live(*slot)) {
            return MOOR_OK;
        }
        const struct kv_rec *prev = *slot;
        if (q->prev_kv) {
            rv = kv__rows_push(&resp->prev_kvs, &resp->n, &resp->cap, prev);
            if (rv != MOOR_OK) {
                return rv;
            }
        }
        rv = kv__delete_key(s, w, slot);
        if (rv != MOOR_OK) {
            return rv;
        }
        resp->deleted = 1;
        return MOOR_OK;
    }
    bool to_inf = is_from_key(q->range_end);
    if (!to_inf && moor_slice_cmp(q->key, q->range_end) >= 0) {
        return MOOR_OK;
    }
    struct kv_pos pos;
    kv__tree_seek(&s->tree, q->key, &pos);
    struct kv_rec *head;
    while ((head = kv__pos_rec(&pos)) != NULL) {
        if (!to_inf && moor_slice_cmp(kv__rec_key(head), q->range_end) >= 0) {
            break;
        }
        /* Replacing the slot's pointer leaves the tree's shape alone, so
         * the position stays valid. */
        if (kv__rec_live(head)) {
            if (q->prev_kv) {
                rv = kv__rows_push(&resp->prev_kvs, &resp->n, &resp->cap, head);
                if (rv != MOOR_OK) {
                    return rv;
                }
            }
            rv = kv__delete_key(s, w, &pos.leaf->rec[pos.i]);
            if (rv != MOOR_OK) {
                return rv;
            }
            resp->deleted++;
        }
        kv__pos_next(&pos);
    }
    return MOOR_OK;
}

void kv_delete_resp_init(struct kv_delete_resp *r)
{
    memset(r, 0, sizeof(*r));
}

void kv_delete_resp_close(struct kv_delete_resp *r)
{
    moor_free(r->prev_kvs);
    memset(r, 0, sizeof(*r));
}

int kv__check_put(struct kv_store *s, const struct kv_put_req *q);

/* The static checks etcd makes on a put before anything applies. */
int kv__check_put(struct kv_store *s, const struct kv_put_req *q)
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
    if (q->ignore_value || q->ignore_lease) {
        struct kv_rec **slot = kv__tree_find(&s->tree, q->key);
        if (slot == NULL || !kv__rec_live(*slot)) {
            return MOOR_EKEYNOTFOUND;
        }
    }
    if (q->lease != 0 && kv__lease_find(&s->leases, q->lease) == NULL) {
        return MOOR_ELEASENOTFOUND;
    }
    return MOOR_OK;
}

int kv_put(struct kv_store *s, uint64_t index, const struct kv_put_req *req,
           struct kv_put_resp *resp)
{
    resp->revision = s->rev;
    resp->prev_kv = NULL;
    int rv = kv__check_index(s, index);
    if (rv != MOOR_OK) {
        return rv;
    }
    rv = kv__check_put(s, req);
    if (rv != MOOR_OK) {
        return rv;
    }
    struct kv__wtx w = {s->rev + 1, 0};
    const struct kv_rec *prev = NULL;
    rv = kv__put_key(s, &w, req, &prev);
    if (rv != MOOR_OK) {
        return rv;
    }
    s->rev = w.rev;
    resp->revision = s->rev;
    resp->prev_kv = req->prev_kv ? prev : NULL;
    return MOOR_OK;
}

int kv_delete(struct kv_store *s, uint64_t index,
              const struct kv_delete_req *req, struct kv_delete_resp *resp)
{
    resp->revision = s->rev;
    int rv = kv__check_index(s, index);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (req->key.len == 0) {
        return MOOR_EEMPTYKEY;
    }
    struct kv__wtx w = {s->rev + 1, 0};
    rv = kv__delete_range(s, &w, req, resp);
    if (w.sub > 0) {
        s->rev = w.rev;
    }
    resp->revision = s->rev;
    return rv;
}

/* ------------------------------------------------------------------------
 * Compaction
 * ---------------------------------------------------------------------- */

int kv_compact(struct kv_store *s, uint64_t index, int64_t rev)
{
    int rv = kv__check_index(s, index);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (rev <= s->compact_rev) {
        return MOOR_ECOMPACTED;
    }
    if (rev > s->rev) {
        return MOOR_EFUTUREREV;
    }
    s->compact_rev = rev;
    /* (Re)start the physical pass from the first key: keys already done at
     * an older target need the new one too. */
    s->compacting = true;
    s->compact_cursor_len = 0;
    return MOOR_OK;
}

/* Drops the history of one key below the compact revision. Returns true
 * when the key left the tree. */
static bool compact_key(struct kv_store *s, struct kv_rec **slot, int64_t c)
{
    struct kv_rec *prev = NULL;
    struct kv_rec *r = *slot;
    while (r != NULL && r->mod > c) {
        prev = r;
        r = r->older;
    }
    if (r == NULL) {
        return false;
    }
    chain_unref(r->older);
    r->older = NULL;
    /* A deletion exactly at c stays until a later compaction: a watcher
     * resuming at c must still see it. */
    if (kv__rec_live(r) || r->mod == c) {
        return false;
    }
    if (prev != NULL) {
        prev->older = NULL;
        kv__rec_unref(r);
        return false;
    }
    kv__tree_remove(&s->tree, kv__rec_key(r));
    kv__rec_unref(r);
    return true;
}

static int cursor_set(struct kv_store *s, struct moor_slice key)
{
    size_t need = key.len + 1;
    if (need > s->compact_cursor_cap) {
        uint8_t *p = moor_realloc(s->compact_cursor, need);
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        s->compact_cursor = p;
        s->compact_cursor_cap = need;
    }
    memcpy(s->compact_cursor, key.ptr, key.len);
    s->compact_cursor[key.len] = 0; /* the smallest key after `key` */
    s->compact_cursor_len = need;
    return MOOR_OK;
}

bool kv_compact_step(struct kv_store *s, uint32_t keys_max)
{
    if (!s->compacting) {
        return false;
    }
    if (s->dumps_open > 0) {
        return true;
    }
    struct kv_pos pos;
    kv__tree_seek(&s->tree,
                  moor_slice_make(s->compact_cursor, s->compact_cursor_len),
                  &pos);
    for (uint32_t done = 0; done < keys_max; done++) {
        struct kv_rec *head = kv__pos_rec(&pos);
        if (head == NULL) {
            s->compacting = false;
            s->compact_cursor_len = 0;
            return false;
        }
        if (cursor_set(s, kv__rec_key(head)) != MOOR_OK) {
            return true; /* no progress this time; nothing is lost */
        }
        if (compact_key(s, &pos.leaf->rec[pos.i], s->compact_rev)) {
            kv__tree_seek(
                &s->tree,
                moor_slice_make(s->compact_cursor, s->compact_cursor_len),
                &pos);
        } else {
            kv__pos_next(&pos);
        }
    }
    if (kv__pos_rec(&pos) == NULL) {
        s->compacting = false;
        s->compact_cursor_len = 0;
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------
 * Hashes
 * ---------------------------------------------------------------------- */

static uint32_t hash_rec(uint32_t crc, const struct kv_rec *r)
{
    uint8_t b[4 + 8 * 5];
    moor_put_le32(b, r->klen);
    moor_put_le64(b + 4, (uint64_t)r->mod);
    moor_put_le64(b + 12, (uint64_t)r->sub);
    moor_put_le64(b + 20, (uint64_t)r->create);
    moor_put_le64(b + 28, (uint64_t)r->version);
    moor_put_le64(b + 36, (uint64_t)r->lease);
    crc = moor_crc32c(crc, b, sizeof(b));
    crc = moor_crc32c(crc, r->data, r->klen);
    moor_put_le32(b, r->vlen);
    crc = moor_crc32c(crc, b, 4);
    return moor_crc32c(crc, r->data + r->klen, r->vlen);
}

int kv_hash_kv(struct kv_store *s, int64_t rev, uint32_t *hash,
               int64_t *compact_rev, int64_t *hash_rev)
{
    if (rev <= 0) {
        rev = s->rev;
    }
    if (rev > s->rev) {
        return MOOR_EFUTUREREV;
    }
    if (rev < s->compact_rev) {
        return MOOR_ECOMPACTED;
    }
    int64_t c = s->compact_rev;
    uint32_t crc = 0;
    struct kv_pos pos;
    kv__tree_seek(&s->tree, moor_slice_make(NULL, 0), &pos);
    const struct kv_rec *head;
    while ((head = kv__pos_rec(&pos)) != NULL) {
        kv__pos_next(&pos);
        for (const struct kv_rec *r = head; r != NULL; r = r->older) {
            if (r->mod > rev) {
                continue;
            }
            if (r->mod <= c) {
                /* The newest version at or below c survives unless it is a
                 * deletion below c; everything older is (or will be)
                 * compacted. */
                if (kv__rec_live(r) || r->mod == c) {
                    crc = hash_rec(crc, r);
                }
                break;
            }
            crc = hash_rec(crc, r);
        }
    }
    *hash = crc;
    *compact_rev = c;
    *hash_rev = rev;
    return MOOR_OK;
}

uint32_t kv_hash(struct kv_store *s)
{
    uint32_t h = 0;
    int64_t c = 0;
    int64_t r = 0;
    (void)kv_hash_kv(s, 0, &h, &c, &r);
    uint8_t b[24];
    moor_put_le64(b, (uint64_t)c);
    h = moor_crc32c(h, b, 8);
    return kv__leases_hash(s, h);
}
