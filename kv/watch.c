/*
 * watch.c: watchers, the interval index that finds the ones a write
 * matches, and history catch-up.
 *
 * Index: single-key watchers sit in a hash table on the key (O(1) per
 * write). Range watchers sit in an array sorted by start key with a segment
 * tree holding, per node, the watcher with the largest end in its span; a
 * write to key k descends only into nodes whose max end is above k among
 * the watchers whose start is <= k, so a write costs O(log W) plus O(log W)
 * per matching watcher. Opens and closes mark the array dirty; it is
 * re-sorted (O(W log W)) at the next write, once for any number of opens.
 *
 * Delivery: a synced watcher queues events (referencing the records) as
 * writes apply; when its queue passes watch_pending_max it is demoted to
 * unsynced, its queue dropped, and it later replays the same revisions from
 * history, so a slow reader bounds its own memory and never stalls writes.
 */
#include <stdlib.h>

#include "kv_int.h"

enum {
    W_SYNCED = 1u << 0,
    W_NOPUT = 1u << 1,
    W_NODELETE = 1u << 2,
    W_PREVKV = 1u << 3,
    W_CANCELED = 1u << 4, /* start compacted: deliver a cancel */
    W_DEMOTED = 1u << 5,  /* still in the index, but must catch up */
    W_INDEXED = 1u << 6,
    W_DEFERRED = 1u << 7, /* ready_pos is in the deferred list */
    W_SINGLE = 1u << 8,
    W_CANCEL_SENT = 1u << 9,
};

int kv__watch_init(struct kv_watch_index *wi)
{
    memset(wi, 0, sizeof(*wi));
    wi->n_buckets = 64;
    wi->buckets = moor_calloc(wi->n_buckets, sizeof(wi->buckets[0]));
    return wi->buckets != NULL ? MOOR_OK : MOOR_ENOMEM;
}

void kv__watch_close(struct kv_watch_index *wi)
{
    moor_free(wi->buckets);
    moor_free(wi->ranges);
    moor_free(wi->seg);
    moor_free(wi->ready);
    moor_free(wi->deferred);
    memset(wi, 0, sizeof(*wi));
}

static struct moor_slice w_key(const struct kv_watcher *w)
{
    return moor_slice_make(w->key, w->key_len);
}

static size_t bucket_of(const struct kv_watch_index *wi, struct moor_slice k)
{
    return moor_crc32c(0, k.ptr, k.len) & (wi->n_buckets - 1);
}

/* End comparison: end_len 0 is +infinity. */
static int end_cmp(const struct kv_watcher *a, const struct kv_watcher *b)
{
    if (a->end_len == 0 || b->end_len == 0) {
        return (a->end_len == 0 ? 1 : 0) - (b->end_len == 0 ? 1 : 0);
    }
    return moor_slice_cmp(moor_slice_make(a->end, a->end_len),
                          moor_slice_make(b->end, b->end_len));
}

static bool end_above(const struct kv_watcher *w, struct moor_slice k)
{
    return w->end_len == 0 ||
           moor_slice_cmp(k, moor_slice_make(w->end, w->end_len)) < 0;
}

/* ---- ready lists ------------------------------------------------------ */

static int list_push(struct kv_watcher ***v, size_t *n, size_t *cap,
                     struct kv_watcher *w)
{
    if (*n == *cap) {
        return MOOR_ENOMEM;
    }
    (*v)[(*n)++] = w;
    w->ready_pos = (uint32_t)*n;
    return MOOR_OK;
}

static void ready_remove(struct kv_watch_index *wi, struct kv_watcher *w)
{
    if (w->ready_pos == 0) {
        return;
    }
    bool def = (w->flags & W_DEFERRED) != 0;
    struct kv_watcher **v = def ? wi->deferred : wi->ready;
    size_t *n = def ? &wi->n_deferred : &wi->n_ready;
    size_t i = w->ready_pos - 1;
    v[i] = v[*n - 1];
    v[i]->ready_pos = (uint32_t)(i + 1);
    (*n)--;
    w->ready_pos = 0;
    w->flags &= ~(uint32_t)W_DEFERRED;
}

/* Marks w ready (this round, or the next one when deferred). Cannot fail:
 * both lists have room for every watcher. */
static void ready_add(struct kv_watch_index *wi, struct kv_watcher *w,
                      bool deferred)
{
    if (w->ready_pos != 0) {
        return;
    }
    int rv = deferred ? list_push(&wi->deferred, &wi->n_deferred,
                                  &wi->cap_deferred, w)
                      : list_push(&wi->ready, &wi->n_ready, &wi->cap_ready, w);
    MOOR_ASSERT(rv == MOOR_OK);
    if (deferred) {
        w->flags |= W_DEFERRED;
    }
}

static int reserve(struct kv_watcher ***v, size_t *cap, size_t need)
{
    if (need <= *cap) {
        return MOOR_OK;
    }
    size_t ncap = MOOR_MAX(need, *cap * 2);
    struct kv_watcher **p = moor_realloc(*v, ncap * sizeof(*p));
    if (p == NULL) {
        return MOOR_ENOMEM;
    }
    *v = p;
    *cap = ncap;
    return MOOR_OK;
}

/* ---- the index -------------------------------------------------------- */

static int index_add(struct kv_watch_index *wi, struct kv_watcher *w)
{
    if (w->flags & W_SINGLE) {
        if (wi->n_single >= wi->n_buckets) {
            size_t nb = wi->n_buckets * 2;
            struct kv_watcher **b = moor_calloc(nb, sizeof(*b));
            if (b == NULL) {
                return MOOR_ENOMEM;
            }
            for (size_t i = 0; i < wi->n_buckets; i++) {
                struct kv_watcher *x = wi->buckets[i];
                while (x != NULL) {
                    struct kv_watcher *next = x->hash_next;
                    size_t h = moor_crc32c(0, x->key, x->key_len) & (nb - 1);
                    x->hash_next = b[h];
                    b[h] = x;
                    x = next;
                }
            }
            moor_free(wi->buckets);
            wi->buckets = b;
            wi->n_buckets = nb;
        }
        size_t h = bucket_of(wi, w_key(w));
        w->hash_next = wi->buckets[h];
        wi->buckets[h] = w;
        wi->n_single++;
    } else {
        if (wi->n_ranges == wi->cap_ranges) {
            size_t ncap = wi->cap_ranges == 0 ? 16 : wi->cap_ranges * 2;
            struct kv_watcher **p = moor_realloc(wi->ranges, ncap * sizeof(*p));
            if (p == NULL) {
                return MOOR_ENOMEM;
            }
            wi->ranges = p;
            wi->cap_ranges = ncap;
        }
        wi->ranges[wi->n_ranges++] = w;
        w->index_pos = (uint32_t)wi->n_ranges;
        wi->dirty = true;
    }
    w->flags |= W_INDEXED;
    return MOOR_OK;
}

static void index_remove(struct kv_watch_index *wi, struct kv_watcher *w)
{
    if (!(w->flags & W_INDEXED)) {
        return;
    }
    w->flags &= ~(uint32_t)W_INDEXED;
    if (w->flags & W_SINGLE) {
        struct kv_watcher **pp = &wi->buckets[bucket_of(wi, w_key(w))];
        while (*pp != w) {
            pp = &(*pp)->hash_next;
        }
        *pp = w->hash_next;
        w->hash_next = NULL;
        wi->n_single--;
        return;
    }
    size_t i = w->index_pos - 1;
    wi->ranges[i] = wi->ranges[wi->n_ranges - 1];
    wi->ranges[i]->index_pos = (uint32_t)(i + 1);
    wi->n_ranges--;
    w->index_pos = 0;
    wi->dirty = true;
}

static int range_cmp(const void *pa, const void *pb)
{
    const struct kv_watcher *a = *(const struct kv_watcher *const *)pa;
    const struct kv_watcher *b = *(const struct kv_watcher *const *)pb;
    return moor_slice_cmp(w_key(a), w_key(b));
}

static struct kv_watcher *seg_build(struct kv_watch_index *wi, size_t node,
                                    size_t lo, size_t hi)
{
    struct kv_watcher *best = NULL;
    if (hi - lo == 1) {
        best = wi->ranges[lo];
    } else {
        size_t mid = lo + (hi - lo) / 2;
        struct kv_watcher *a = seg_build(wi, 2 * node, lo, mid);
        struct kv_watcher *b = seg_build(wi, 2 * node + 1, mid, hi);
        best = end_cmp(a, b) >= 0 ? a : b;
    }
    wi->seg[node] = best;
    return best;
}

static int index_rebuild(struct kv_watch_index *wi)
{
    if (!wi->dirty) {
        return MOOR_OK;
    }
    size_t need = 4 * (wi->n_ranges + 1);
    if (need > wi->seg_cap) {
        struct kv_watcher **p = moor_realloc(wi->seg, need * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        wi->seg = p;
        wi->seg_cap = need;
    }
    qsort(wi->ranges, wi->n_ranges, sizeof(wi->ranges[0]), range_cmp);
    for (size_t i = 0; i < wi->n_ranges; i++) {
        wi->ranges[i]->index_pos = (uint32_t)(i + 1);
    }
    if (wi->n_ranges > 0) {
        seg_build(wi, 1, 0, wi->n_ranges);
    }
    wi->dirty = false;
    return MOOR_OK;
}

/* ---- events ----------------------------------------------------------- */

static void scan_reset(struct kv_watcher *w);

static void event_release(struct kv_event *e)
{
    kv__rec_unref((struct kv_rec *)(uintptr_t)e->kv);
    if (e->prev != NULL) {
        kv__rec_unref((struct kv_rec *)(uintptr_t)e->prev);
    }
}

static void pending_drop(struct kv_watcher *w)
{
    for (size_t i = 0; i < w->n_pending; i++) {
        event_release(&w->pending[i]);
    }
    w->n_pending = 0;
}

static bool event_wanted(const struct kv_watcher *w, const struct kv_rec *r)
{
    bool put = kv__rec_live(r);
    return !((put && (w->flags & W_NOPUT)) ||
             (!put && (w->flags & W_NODELETE)));
}

static void demote(struct kv_store *s, struct kv_watcher *w, int64_t from)
{
    if (w->scanning) {
        /* The final catch-up scan had started: it starts over. */
        from = w->next_rev;
        scan_reset(w);
    } else if (w->n_pending > 0) {
        from = w->pending[0].kv->mod;
    }
    pending_drop(w);
    moor_free(w->pending);
    w->pending = NULL;
    w->cap_pending = 0;
    w->next_rev = from;
    w->flags |= W_DEMOTED;
    ready_add(&s->watch, w, false);
}

static void enqueue(struct kv_store *s, struct kv_watcher *w, struct kv_rec *r)
{
    if (!(w->flags & W_SYNCED) || (w->flags & W_DEMOTED) ||
        r->mod < w->next_rev || !event_wanted(w, r)) {
        return;
    }
    if (w->n_pending >= s->opt.watch_pending_max) {
        demote(s, w, r->mod);
        return;
    }
    if (w->n_pending == w->cap_pending) {
        size_t ncap = w->cap_pending == 0 ? 8 : w->cap_pending * 2;
        struct kv_event *p = moor_realloc(w->pending, ncap * sizeof(*p));
        if (p == NULL) {
            demote(s, w, r->mod);
            return;
        }
        w->pending = p;
        w->cap_pending = ncap;
    }
    struct kv_event *e = &w->pending[w->n_pending++];
    e->type = kv__rec_live(r) ? KV_EVENT_PUT : KV_EVENT_DELETE;
    e->kv = r;
    r->refs++;
    e->prev = NULL;
    if ((w->flags & W_PREVKV) && r->older != NULL && kv__rec_live(r->older)) {
        e->prev = r->older;
        r->older->refs++;
    }
    ready_add(&s->watch, w, false);
}

static void seg_query(struct kv_store *s, size_t node, size_t lo, size_t hi,
                      size_t limit, struct moor_slice k, struct kv_rec *r)
{
    struct kv_watch_index *wi = &s->watch;
    if (lo >= limit || !end_above(wi->seg[node], k)) {
        return;
    }
    if (hi - lo == 1) {
        enqueue(s, wi->ranges[lo], r);
        return;
    }
    size_t mid = lo + (hi - lo) / 2;
    seg_query(s, 2 * node, lo, mid, limit, k, r);
    seg_query(s, 2 * node + 1, mid, hi, limit, k, r);
}

void kv__watch_notify(struct kv_store *s, struct kv_rec *r)
{
    struct kv_watch_index *wi = &s->watch;
    if (wi->n_single + wi->n_ranges == 0) {
        return;
    }
    struct moor_slice k = kv__rec_key(r);
    if (wi->n_single > 0) {
        for (struct kv_watcher *w = wi->buckets[bucket_of(wi, k)]; w != NULL;
             w = w->hash_next) {
            if (moor_slice_eq(w_key(w), k)) {
                enqueue(s, w, r);
            }
        }
    }
    if (wi->n_ranges == 0) {
        return;
    }
    if (index_rebuild(wi) != MOOR_OK) {
        /* No memory to re-sort: match by scanning, still exact. */
        for (size_t i = 0; i < wi->n_ranges; i++) {
            struct kv_watcher *w = wi->ranges[i];
            if (moor_slice_cmp(w_key(w), k) <= 0 && end_above(w, k)) {
                enqueue(s, w, r);
            }
        }
        return;
    }
    /* Watchers with start <= k form a prefix of the sorted array. */
    size_t lo = 0;
    size_t hi = wi->n_ranges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (moor_slice_cmp(w_key(wi->ranges[mid]), k) <= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo > 0) {
        seg_query(s, 1, 0, wi->n_ranges, lo, k, r);
    }
}

/* ---- the API ---------------------------------------------------------- */

int kv_watch_open(struct kv_store *s, struct kv_watcher *w,
                  const struct kv_watch_req *req)
{
    static const uint8_t zero = 0;
    memset(w, 0, sizeof(*w));
    struct kv_watch_index *wi = &s->watch;
    if (reserve(&wi->ready, &wi->cap_ready, wi->n_total + 1) != MOOR_OK ||
        reserve(&wi->deferred, &wi->cap_deferred, wi->n_total + 1) != MOOR_OK) {
        return MOOR_ENOMEM;
    }
    struct moor_slice key =
        req->key.len > 0 ? req->key : moor_slice_make(&zero, 1);
    w->key = moor_malloc(key.len);
    if (w->key == NULL) {
        return MOOR_ENOMEM;
    }
    memcpy(w->key, key.ptr, key.len);
    w->key_len = key.len;
    if (req->range_end.len == 0) {
        w->flags |= W_SINGLE;
    } else if (req->range_end.len == 1 && req->range_end.ptr[0] == 0) {
        w->end = NULL;
        w->end_len = 0; /* +infinity */
    } else {
        w->end = moor_malloc(req->range_end.len);
        if (w->end == NULL) {
            moor_free(w->key);
            w->key = NULL;
            return MOOR_ENOMEM;
        }
        memcpy(w->end, req->range_end.ptr, req->range_end.len);
        w->end_len = req->range_end.len;
    }
    w->flags |= (req->no_put ? W_NOPUT : 0u) |
                (req->no_delete ? W_NODELETE : 0u) |
                (req->prev_kv ? W_PREVKV : 0u);
    int64_t start = req->start_revision;
    if (start <= 0 || start > s->rev) {
        w->next_rev = start <= 0 ? s->rev + 1 : start;
        int rv = index_add(&s->watch, w);
        if (rv != MOOR_OK) {
            moor_free(w->key);
            moor_free(w->end);
            memset(w, 0, sizeof(*w));
            return rv;
        }
        w->flags |= W_SYNCED;
    } else {
        w->next_rev = start;
        if (start < s->compact_rev) {
            w->flags |= W_CANCELED;
            w->compact_rev = s->compact_rev;
        }
        ready_add(&s->watch, w, false);
    }
    s->watch.n_total++;
    return MOOR_OK;
}

void kv_watch_close(struct kv_store *s, struct kv_watcher *w)
{
    if (w->key == NULL) {
        return;
    }
    index_remove(&s->watch, w);
    ready_remove(&s->watch, w);
    pending_drop(w);
    scan_reset(w);
    moor_free(w->pending);
    moor_free(w->key);
    moor_free(w->end);
    memset(w, 0, sizeof(*w));
    s->watch.n_total--;
}

size_t kv_watch_count(const struct kv_store *s)
{
    return s->watch.n_total;
}

bool kv_watch_synced(const struct kv_watcher *w)
{
    return (w->flags & W_SYNCED) && !(w->flags & W_DEMOTED) && !w->scanning;
}

bool kv_watch_idle(const struct kv_watcher *w)
{
    return kv_watch_synced(w) && w->n_pending == 0 && !(w->flags & W_CANCELED);
}

struct kv_watcher *kv_watch_next_ready(struct kv_store *s)
{
    struct kv_watch_index *wi = &s->watch;
    if (wi->n_ready == 0) {
        /* End of this round: what was put back becomes the next round. */
        for (size_t i = 0; i < wi->n_deferred; i++) {
            struct kv_watcher *w = wi->deferred[i];
            w->ready_pos = 0;
            w->flags &= ~(uint32_t)W_DEFERRED;
            ready_add(wi, w, false);
        }
        wi->n_deferred = 0;
        return NULL;
    }
    struct kv_watcher *w = wi->ready[0];
    ready_remove(wi, w);
    return w;
}

void kv_watch_defer(struct kv_store *s, struct kv_watcher *w)
{
    ready_add(&s->watch, w, true);
}

void kv_watch_batch_release(struct kv_store *s, struct kv_watch_batch *b)
{
    (void)s;
    for (size_t i = 0; i < b->n; i++) {
        event_release(&b->events[i]);
    }
    moor_free(b->events);
    memset(b, 0, sizeof(*b));
}

/* Events per revision stay whole: extends n to the end of its revision. */
static size_t cut_at_revision(const struct kv_event *ev, size_t n_all,
                              size_t max)
{
    if (max == 0) {
        max = 1;
    }
    if (n_all <= max) {
        return n_all;
    }
    size_t n = max;
    while (n < n_all && ev[n].kv->mod == ev[n - 1].kv->mod) {
        n++;
    }
    return n;
}

static int event_cmp(const void *pa, const void *pb)
{
    const struct kv_event *a = pa;
    const struct kv_event *b = pb;
    if (a->kv->mod != b->kv->mod) {
        return a->kv->mod < b->kv->mod ? -1 : 1;
    }
    return a->kv->sub < b->kv->sub ? -1 : (a->kv->sub > b->kv->sub ? 1 : 0);
}

/* Appends an event for r, taking references. */
static int push_event(struct kv_watcher *w, const struct kv_rec *r)
{
    if (w->scan_n == w->scan_cap) {
        size_t ncap = w->scan_cap == 0 ? 16 : w->scan_cap * 2;
        struct kv_event *p = moor_realloc(w->scan_ev, ncap * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        w->scan_ev = p;
        w->scan_cap = ncap;
    }
    struct kv_event *e = &w->scan_ev[w->scan_n++];
    e->type = kv__rec_live(r) ? KV_EVENT_PUT : KV_EVENT_DELETE;
    e->kv = r;
    ((struct kv_rec *)(uintptr_t)r)->refs++;
    e->prev = NULL;
    if ((w->flags & W_PREVKV) && r->older != NULL && kv__rec_live(r->older)) {
        e->prev = r->older;
        r->older->refs++;
    }
    return MOOR_OK;
}

static void scan_drop(struct kv_watcher *w, size_t from)
{
    for (size_t i = from; i < w->scan_n; i++) {
        event_release(&w->scan_ev[i]);
    }
    w->scan_n = from;
}

static void scan_reset(struct kv_watcher *w)
{
    scan_drop(w, 0);
    moor_free(w->scan_ev);
    moor_free(w->scan_key);
    w->scan_ev = NULL;
    w->scan_cap = 0;
    w->scan_key = NULL;
    w->scan_key_len = 0;
    w->scanning = false;
}

static int scan_resume_at(struct kv_watcher *w, struct moor_slice key)
{
    uint8_t *p = moor_realloc(w->scan_key, key.len + 1);
    if (p == NULL) {
        return MOOR_ENOMEM;
    }
    memcpy(p, key.ptr, key.len);
    p[key.len] = 0; /* the smallest key after `key` */
    w->scan_key = p;
    w->scan_key_len = key.len + 1;
    return MOOR_OK;
}

/* Scans up to keys_max keys of w's range for the events of [next_rev,
 * scan_to]. Sets *finished when the range is exhausted. */
static int scan_step(struct kv_store *s, struct kv_watcher *w,
                     uint32_t keys_max, bool *finished)
{
    struct kv_pos pos;
    kv__tree_seek(&s->tree,
                  w->scan_key != NULL
                      ? moor_slice_make(w->scan_key, w->scan_key_len)
                      : w_key(w),
                  &pos);
    const struct kv_rec *head = NULL;
    for (uint32_t done = 0; done < keys_max; done++) {
        head = kv__pos_rec(&pos);
        if (head == NULL) {
            break;
        }
        struct moor_slice k = kv__rec_key(head);
        if ((w->flags & W_SINGLE) ? !moor_slice_eq(k, w_key(w))
                                  : !end_above(w, k)) {
            head = NULL;
            break;
        }
        size_t before = w->scan_n;
        int rv = MOOR_OK;
        for (const struct kv_rec *r = head;
             r != NULL && r->mod >= w->next_rev && rv == MOOR_OK;
             r = r->older) {
            if (r->mod <= w->scan_to && event_wanted(w, r)) {
                rv = push_event(w, r);
            }
        }
        if (rv == MOOR_OK) {
            rv = scan_resume_at(w, k);
        }
        if (rv != MOOR_OK) {
            scan_drop(w, before); /* this key is scanned again next time */
            return rv;
        }
        if (w->flags & W_SINGLE) {
            head = NULL;
            break;
        }
        kv__pos_next(&pos);
    }
    *finished = head == NULL;
    return MOOR_OK;
}

static int take_pending(struct kv_store *s, struct kv_watcher *w, size_t max,
                        struct kv_watch_batch *b);

/* The last chunk's scan is done: its events go in front of the ones queued
 * meanwhile (all newer), and the watcher is synced. */
static int finish_final_scan(struct kv_store *s, struct kv_watcher *w,
                             size_t max, struct kv_watch_batch *b)
{
    size_t n = w->scan_n + w->n_pending;
    struct kv_event *all = moor_malloc(MOOR_MAX(n, 1) * sizeof(*all));
    if (all == NULL) {
        demote(s, w, w->next_rev);
        return MOOR_ENOMEM;
    }
    if (w->scan_n > 0) {
        memcpy(all, w->scan_ev, w->scan_n * sizeof(*all));
    }
    if (w->n_pending > 0) {
        memcpy(all + w->scan_n, w->pending, w->n_pending * sizeof(*all));
    }
    w->next_rev = w->scan_to + 1;
    w->scan_n = 0; /* the references moved to `all` */
    scan_reset(w);
    moor_free(w->pending);
    w->pending = all;
    w->n_pending = n;
    w->cap_pending = MOOR_MAX(n, 1);
    return take_pending(s, w, max, b);
}

/* One catch-up step: scans at most watch_catchup_keys keys; once the range
 * is scanned, delivers the events of [next_rev, scan_to] in revision
 * order (up to max, keeping revisions whole). */
static int catch_up(struct kv_store *s, struct kv_watcher *w, size_t max,
                    struct kv_watch_batch *b)
{
    if (!w->scanning) {
        int64_t span = (int64_t)MOOR_MAX(s->opt.watch_catchup_revs, 1u);
        w->scan_to =
            w->next_rev > s->rev - span + 1 ? s->rev : w->next_rev + span - 1;
        if (w->scan_to == s->rev) {
            /* The last chunk: join the index now, so the writes applied
             * while the scan spans several takes queue behind it (else a
             * busy range could keep a watcher from ever catching up). */
            int rv = index_add(&s->watch, w);
            if (rv != MOOR_OK) {
                return rv;
            }
            w->flags |= W_SYNCED;
        }
        w->scanning = true;
    }
    bool finished = false;
    int rv =
        scan_step(s, w, MOOR_MAX(s->opt.watch_catchup_keys, 1u), &finished);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (!finished) {
        ready_add(&s->watch, w, true);
        return MOOR_OK;
    }
    struct kv_event *ev = w->scan_ev;
    size_t n = w->scan_n;
    if (n > 1) {
        qsort(ev, n, sizeof(ev[0]), event_cmp);
    }
    if (w->flags & W_SYNCED) {
        return finish_final_scan(s, w, max, b);
    }
    size_t take = cut_at_revision(ev, n, max);
    int64_t next = take < n ? ev[take].kv->mod : w->scan_to + 1;
    /* The batch takes the first events (and their references); the rest
     * are found again by the next scan. */
    w->scan_n = take;
    for (size_t i = take; i < n; i++) {
        event_release(&ev[i]);
    }
    b->events = ev;
    b->n = take;
    w->scan_ev = NULL;
    w->scan_cap = 0;
    w->scan_n = 0;
    scan_reset(w);
    w->next_rev = next;
    if (!(w->flags & W_SYNCED)) {
        ready_add(&s->watch, w, true);
    }
    return MOOR_OK;
}

/* Takes queued events of a synced watcher into b. */
static int take_pending(struct kv_store *s, struct kv_watcher *w, size_t max,
                        struct kv_watch_batch *b)
{
    size_t take = cut_at_revision(w->pending, w->n_pending, max);
    if (take == 0) {
        return MOOR_OK;
    }
    if (take == w->n_pending) {
        /* All of it (the usual case): hand the array over, no copy. */
        b->events = w->pending;
        b->n = take;
        w->pending = NULL;
        w->n_pending = 0;
        w->cap_pending = 0;
        return MOOR_OK;
    }
    b->events = moor_malloc(take * sizeof(b->events[0]));
    if (b->events == NULL) {
        ready_add(&s->watch, w, true);
        return MOOR_ENOMEM;
    }
    memcpy(b->events, w->pending, take * sizeof(b->events[0]));
    b->n = take;
    w->n_pending -= take;
    memmove(w->pending, w->pending + take,
            w->n_pending * sizeof(w->pending[0]));
    if (w->n_pending > 0) {
        ready_add(&s->watch, w, true);
    }
    return MOOR_OK;
}

int kv_watch_take(struct kv_store *s, struct kv_watcher *w, size_t max_events,
                  struct kv_watch_batch *b)
{
    memset(b, 0, sizeof(*b));
    b->revision = s->rev;
    if (w->flags & W_CANCELED) {
        if (!(w->flags & W_CANCEL_SENT)) {
            w->flags |= W_CANCEL_SENT;
            w->compact_rev = s->compact_rev;
            b->canceled = true;
            b->compact_rev = s->compact_rev;
        }
        return MOOR_OK;
    }
    if (w->flags & W_DEMOTED) {
        index_remove(&s->watch, w);
        w->flags &= ~(uint32_t)(W_DEMOTED | W_SYNCED);
    }
    if (!(w->flags & W_SYNCED) || w->scanning) {
        if (w->next_rev < s->compact_rev) {
            scan_reset(w);
            index_remove(&s->watch, w);
            pending_drop(w);
            w->flags &= ~(uint32_t)W_SYNCED;
            w->flags |= W_CANCELED | W_CANCEL_SENT;
            w->compact_rev = s->compact_rev;
            b->canceled = true;
            b->compact_rev = s->compact_rev;
            return MOOR_OK;
        }
        int rv = catch_up(s, w, max_events, b);
        if (rv != MOOR_OK) {
            ready_add(&s->watch, w, true);
        }
        return rv;
    }
    return take_pending(s, w, max_events, b);
}

int64_t kv_watch_resume_rev(const struct kv_store *s,
                            const struct kv_watcher *w)
{
    if ((w->flags & W_SYNCED) && !(w->flags & W_DEMOTED) && !w->scanning) {
        /* Synced: every event up to the store's revision was queued, and
         * what left the queue was taken. */
        return w->n_pending > 0 ? w->pending[0].kv->mod : s->rev + 1;
    }
    return w->next_rev;
}
