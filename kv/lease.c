/*
 * lease.c: the lessor. Leases sit in an array sorted by id (binary search;
 * grants and revokes are rare next to puts), each with its attached keys
 * as a sorted array of owned copies, plus a min-heap on the local expiry
 * deadline that the leader polls with the caller's time.
 */
#include "kv_int.h"

#define NO_DEADLINE UINT64_MAX

int kv__leases_init(struct kv_leases *ls)
{
    memset(ls, 0, sizeof(*ls));
    return MOOR_OK;
}

static void lease_free(struct kv_lease *l)
{
    for (uint32_t i = 0; i < l->n_keys; i++) {
        moor_free(l->keys[i]);
    }
    moor_free(l->keys);
    moor_free(l);
}

void kv__leases_close(struct kv_leases *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        lease_free(ls->v[i]);
    }
    moor_free(ls->v);
    moor_free(ls->heap);
    memset(ls, 0, sizeof(*ls));
}

/* First index with id >= id. */
static size_t lease_lower(const struct kv_leases *ls, int64_t id)
{
    size_t lo = 0;
    size_t hi = ls->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ls->v[mid]->id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

struct kv_lease *kv__lease_find(const struct kv_leases *ls, int64_t id)
{
    size_t i = lease_lower(ls, id);
    return i < ls->n && ls->v[i]->id == id ? ls->v[i] : NULL;
}

/* ---- expiry heap ------------------------------------------------------ */

static void heap_set(struct kv_leases *ls, size_t i, struct kv_lease *l)
{
    ls->heap[i] = l;
    l->heap_pos = (uint32_t)(i + 1);
}

static void heap_up(struct kv_leases *ls, size_t i)
{
    struct kv_lease *l = ls->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (ls->heap[p]->deadline_ms <= l->deadline_ms) {
            break;
        }
        heap_set(ls, i, ls->heap[p]);
        i = p;
    }
    heap_set(ls, i, l);
}

static void heap_down(struct kv_leases *ls, size_t i)
{
    struct kv_lease *l = ls->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= ls->heap_n) {
            break;
        }
        if (c + 1 < ls->heap_n &&
            ls->heap[c + 1]->deadline_ms < ls->heap[c]->deadline_ms) {
            c++;
        }
        if (ls->heap[c]->deadline_ms >= l->deadline_ms) {
            break;
        }
        heap_set(ls, i, ls->heap[c]);
        i = c;
    }
    heap_set(ls, i, l);
}

static void heap_remove(struct kv_leases *ls, struct kv_lease *l)
{
    if (l->heap_pos == 0) {
        return;
    }
    size_t i = l->heap_pos - 1;
    l->heap_pos = 0;
    ls->heap_n--;
    if (i == ls->heap_n) {
        return;
    }
    heap_set(ls, i, ls->heap[ls->heap_n]);
    heap_up(ls, i);
    heap_down(ls, ls->heap[i]->heap_pos - 1);
}

/* Sets l's deadline and its place in the heap. The heap has room for every
 * lease (reserved at insert), so this cannot fail. */
static void lease_set_deadline(struct kv_leases *ls, struct kv_lease *l,
                               uint64_t deadline_ms)
{
    heap_remove(ls, l);
    l->deadline_ms = deadline_ms;
    if (deadline_ms == NO_DEADLINE) {
        return;
    }
    MOOR_ASSERT(ls->heap_n < ls->heap_cap);
    heap_set(ls, ls->heap_n++, l);
    heap_up(ls, ls->heap_n - 1);
}

static uint64_t ms_after(uint64_t now_ms, int64_t s)
{
    uint64_t add = (uint64_t)s * 1000u;
    return now_ms > NO_DEADLINE - 1 - add ? NO_DEADLINE - 1 : now_ms + add;
}

int kv__lease_insert(struct kv_store *s, int64_t id, int64_t ttl_s,
                     int64_t remaining_s, uint64_t deadline_ms)
{
    struct kv_leases *ls = &s->leases;
    if (ls->n == ls->cap) {
        size_t ncap = ls->cap == 0 ? 16 : ls->cap * 2;
        struct kv_lease **v = moor_realloc(ls->v, ncap * sizeof(*v));
        if (v == NULL) {
            return MOOR_ENOMEM;
        }
        ls->v = v;
        struct kv_lease **h = moor_realloc(ls->heap, ncap * sizeof(*h));
        if (h == NULL) {
            return MOOR_ENOMEM; /* v grew; harmless */
        }
        ls->heap = h;
        ls->cap = ncap;
        ls->heap_cap = ncap;
    }
    struct kv_lease *l = moor_calloc(1, sizeof(*l));
    if (l == NULL) {
        return MOOR_ENOMEM;
    }
    l->id = id;
    l->ttl_s = ttl_s;
    l->remaining_s = remaining_s;
    l->deadline_ms = NO_DEADLINE;
    size_t i = lease_lower(ls, id);
    memmove(&ls->v[i + 1], &ls->v[i], (ls->n - i) * sizeof(ls->v[0]));
    ls->v[i] = l;
    ls->n++;
    lease_set_deadline(ls, l, deadline_ms);
    return MOOR_OK;
}

/* ---- attached keys ---------------------------------------------------- */

static size_t key_lower(const struct kv_lease *l, struct moor_slice key)
{
    size_t lo = 0;
    size_t hi = l->n_keys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        struct moor_slice k =
            moor_slice_make(l->keys[mid]->key, l->keys[mid]->len);
        if (moor_slice_cmp(k, key) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

int kv__lease_attach(struct kv_store *s, int64_t id, struct moor_slice key)
{
    struct kv_lease *l = kv__lease_find(&s->leases, id);
    if (l == NULL) {
        return MOOR_ELEASENOTFOUND;
    }
    size_t i = key_lower(l, key);
    if (i < l->n_keys &&
        moor_slice_eq(moor_slice_make(l->keys[i]->key, l->keys[i]->len), key)) {
        return MOOR_OK;
    }
    if (l->n_keys == l->cap_keys) {
        uint32_t ncap = l->cap_keys == 0 ? 4 : l->cap_keys * 2;
        struct kv_sep **k = moor_realloc(l->keys, ncap * sizeof(*k));
        if (k == NULL) {
            return MOOR_ENOMEM;
        }
        l->keys = k;
        l->cap_keys = ncap;
    }
    struct kv_sep *copy = moor_malloc(sizeof(*copy) + key.len);
    if (copy == NULL) {
        return MOOR_ENOMEM;
    }
    copy->len = (uint32_t)key.len;
    memcpy(copy->key, key.ptr, key.len);
    memmove(&l->keys[i + 1], &l->keys[i], (l->n_keys - i) * sizeof(l->keys[0]));
    l->keys[i] = copy;
    l->n_keys++;
    return MOOR_OK;
}

void kv__lease_detach(struct kv_store *s, int64_t id, struct moor_slice key)
{
    struct kv_lease *l = kv__lease_find(&s->leases, id);
    if (l == NULL) {
        return;
    }
    size_t i = key_lower(l, key);
    if (i >= l->n_keys ||
        !moor_slice_eq(moor_slice_make(l->keys[i]->key, l->keys[i]->len),
                       key)) {
        return;
    }
    moor_free(l->keys[i]);
    memmove(&l->keys[i], &l->keys[i + 1],
            (l->n_keys - i - 1) * sizeof(l->keys[0]));
    l->n_keys--;
}

/* ---- the API ---------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int kv_lease_grant(struct kv_store *s, uint64_t index, int64_t id,
                   int64_t ttl_s, uint64_t now_ms, int64_t *id_out,
                   int64_t *ttl_out)
{
    int rv = kv__check_index(s, index);
    if (rv != MOOR_OK) {
        return rv;
    }
    if (id < 0) {
        return MOOR_EINVAL;
    }
    if (ttl_s > KV_LEASE_TTL_MAX) {
        return MOOR_ELEASETTLTOOLARGE;
    }
    if (ttl_s < s->opt.lease_min_ttl_s) {
        ttl_s = s->opt.lease_min_ttl_s;
    }
    if (id == 0) {
        /* Deterministic on every member: derived from the entry index. */
        id = (int64_t)(mix64(index) & (uint64_t)INT64_MAX);
        while (id == 0 || kv__lease_find(&s->leases, id) != NULL) {
            id = id == INT64_MAX ? 1 : id + 1;
        }
    } else if (kv__lease_find(&s->leases, id) != NULL) {
        return MOOR_ELEASEEXISTS;
    }
    rv = kv__lease_insert(s, id, ttl_s, 0, ms_after(now_ms, ttl_s));
    if (rv != MOOR_OK) {
        return rv;
    }
    *id_out = id;
    *ttl_out = ttl_s;
    return MOOR_OK;
}

int kv_lease_revoke(struct kv_store *s, uint64_t index, int64_t id,
                    int64_t *revision_out)
{
    *revision_out = s->rev;
    int rv = kv__check_index(s, index);
    if (rv != MOOR_OK) {
        return rv;
    }
    struct kv_leases *ls = &s->leases;
    size_t li = lease_lower(ls, id);
    if (li >= ls->n || ls->v[li]->id != id) {
        return MOOR_ELEASENOTFOUND;
    }
    struct kv_lease *l = ls->v[li];
    /* Take the key list: deleting a key detaches it from the lease. */
    struct kv_sep **keys = l->keys;
    uint32_t n = l->n_keys;
    l->keys = NULL;
    l->n_keys = 0;
    l->cap_keys = 0;
    struct kv__wtx w = {s->rev + 1, 0};
    for (uint32_t i = 0; i < n && rv == MOOR_OK; i++) {
        struct moor_slice k = moor_slice_make(keys[i]->key, keys[i]->len);
        struct kv_rec **slot = kv__tree_find(&s->tree, k);
        if (slot != NULL && kv__rec_live(*slot) && (*slot)->lease == id) {
            rv = kv__delete_key(s, &w, slot);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        moor_free(keys[i]);
    }
    moor_free(keys);
    if (w.sub > 0) {
        s->rev = w.rev;
    }
    heap_remove(ls, l);
    memmove(&ls->v[li], &ls->v[li + 1], (ls->n - li - 1) * sizeof(ls->v[0]));
    ls->n--;
    lease_free(l);
    *revision_out = s->rev;
    return rv;
}

bool kv_lease_keepalive(struct kv_store *s, int64_t id, uint64_t now_ms,
                        int64_t *ttl_out)
{
    struct kv_lease *l = kv__lease_find(&s->leases, id);
    if (l == NULL) {
        *ttl_out = 0;
        return false;
    }
    lease_set_deadline(&s->leases, l, ms_after(now_ms, l->ttl_s));
    *ttl_out = l->ttl_s;
    /* A checkpointed remaining TTL is now too small: a new leader would
     * expire the lease early unless it is reset (etcd does the same). */
    return l->remaining_s > 0;
}

static int64_t remaining_now(const struct kv_lease *l, uint64_t now_ms)
{
    if (l->deadline_ms == NO_DEADLINE) {
        return l->remaining_s > 0 ? l->remaining_s : l->ttl_s;
    }
    if (l->deadline_ms <= now_ms) {
        return 0;
    }
    return (int64_t)((l->deadline_ms - now_ms + 999) / 1000);
}

void kv_lease_time_to_live(struct kv_store *s, int64_t id, uint64_t now_ms,
                           struct kv_lease_info *info)
{
    struct kv_lease *l = kv__lease_find(&s->leases, id);
    info->id = id;
    if (l == NULL) {
        info->ttl_s = -1;
        info->granted_ttl_s = 0;
        info->n_keys = 0;
        return;
    }
    info->ttl_s = remaining_now(l, now_ms);
    info->granted_ttl_s = l->ttl_s;
    info->n_keys = l->n_keys;
}

struct moor_slice kv_lease_key(struct kv_store *s, int64_t id, size_t i)
{
    struct kv_lease *l = kv__lease_find(&s->leases, id);
    MOOR_ASSERT(l != NULL && i < l->n_keys);
    return moor_slice_make(l->keys[i]->key, l->keys[i]->len);
}

size_t kv_lease_count(const struct kv_store *s)
{
    return s->leases.n;
}

size_t kv_lease_ids(const struct kv_store *s, int64_t *ids, size_t max)
{
    size_t n = MOOR_MIN(max, s->leases.n);
    for (size_t i = 0; i < n; i++) {
        ids[i] = s->leases.v[i]->id;
    }
    return n;
}

size_t kv_lease_expired(struct kv_store *s, uint64_t now_ms, int64_t *ids,
                        size_t max)
{
    struct kv_leases *ls = &s->leases;
    size_t n = 0;
    while (n < max && ls->heap_n > 0 && ls->heap[0]->deadline_ms <= now_ms) {
        struct kv_lease *l = ls->heap[0];
        ids[n++] = l->id;
        lease_set_deadline(ls, l, NO_DEADLINE);
    }
    return n;
}

void kv_lease_promote(struct kv_store *s, uint64_t now_ms, uint64_t extend_ms)
{
    struct kv_leases *ls = &s->leases;
    for (size_t i = 0; i < ls->n; i++) {
        struct kv_lease *l = ls->v[i];
        int64_t rem = l->remaining_s > 0 ? l->remaining_s : l->ttl_s;
        uint64_t d = ms_after(now_ms, rem);
        d = d > NO_DEADLINE - 1 - extend_ms ? NO_DEADLINE - 1 : d + extend_ms;
        lease_set_deadline(ls, l, d);
    }
}

size_t kv_lease_checkpoints(struct kv_store *s, uint64_t now_ms,
                            int64_t *cursor, struct kv_lease_checkpoint *cps,
                            size_t max)
{
    struct kv_leases *ls = &s->leases;
    size_t i = *cursor > 0 ? lease_lower(ls, *cursor + 1) : 0;
    size_t n = 0;
    for (; i < ls->n && n < max; i++) {
        cps[n].id = ls->v[i]->id;
        cps[n].remaining_ttl_s = remaining_now(ls->v[i], now_ms);
        n++;
    }
    *cursor = i < ls->n ? cps[n - 1].id : 0;
    return n;
}

int kv_lease_checkpoint_apply(struct kv_store *s, uint64_t index,
                              const struct kv_lease_checkpoint *cps, size_t n)
{
    int rv = kv__check_index(s, index);
    if (rv != MOOR_OK) {
        return rv;
    }
    for (size_t i = 0; i < n; i++) {
        struct kv_lease *l = kv__lease_find(&s->leases, cps[i].id);
        if (l != NULL && cps[i].remaining_ttl_s >= 0) {
            l->remaining_s = cps[i].remaining_ttl_s; /* 0: the full TTL */
        }
    }
    return MOOR_OK;
}

uint32_t kv__leases_hash(struct kv_store *s, uint32_t crc)
{
    uint8_t b[24];
    for (size_t i = 0; i < s->leases.n; i++) {
        const struct kv_lease *l = s->leases.v[i];
        moor_put_le64(b, (uint64_t)l->id);
        moor_put_le64(b + 8, (uint64_t)l->ttl_s);
        moor_put_le64(b + 16, (uint64_t)l->remaining_s);
        crc = moor_crc32c(crc, b, sizeof(b));
    }
    return crc;
}
