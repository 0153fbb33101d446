/* gen.c: the workloads' plain pieces: key generation, the rate limiter,
 * prefix range ends, and the k8s workload's key layout and pagination. */
#include <stdio.h>

#include "bench.h"

static unsigned digits(uint64_t v)
{
    unsigned n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

int bench_keygen_init(struct bench_keygen *g, const char *prefix,
                      size_t key_size, uint64_t space, bool sequential,
                      uint64_t seed)
{
    size_t plen = strlen(prefix);
    if (space == 0 || plen >= sizeof(g->prefix) || key_size > BENCH_KEY_MAX ||
        key_size < plen || key_size - plen < digits(space - 1)) {
        return MOOR_EINVAL;
    }
    memset(g, 0, sizeof(*g));
    memcpy(g->prefix, prefix, plen);
    g->prefix_len = plen;
    g->key_size = key_size;
    g->space = space;
    g->sequential = sequential;
    moor_prng_seed(&g->prng, seed);
    return MOOR_OK;
}

uint64_t bench_keygen_next(struct bench_keygen *g)
{
    if (g->sequential) {
        uint64_t i = g->next;
        g->next = g->next + 1 == g->space ? 0 : g->next + 1;
        return i;
    }
    return moor_prng_below(&g->prng, g->space);
}

void bench_keygen_format(const struct bench_keygen *g, uint64_t index,
                         uint8_t *out)
{
    memcpy(out, g->prefix, g->prefix_len);
    /* Right to left: the index's digits, then '0' up to the prefix. */
    size_t i = g->key_size;
    while (i > g->prefix_len) {
        out[--i] = (uint8_t)('0' + index % 10);
        index /= 10;
    }
}

void bench_rate_init(struct bench_rate *r, double rate, uint64_t now_ns)
{
    r->rate = rate > 0 ? rate : 0;
    r->burst = MOOR_MAX(1.0, r->rate / 100.0);
    r->tokens = r->burst;
    r->last_ns = now_ns;
}

uint64_t bench_rate_take(struct bench_rate *r, uint64_t now_ns)
{
    if (r->rate <= 0) {
        return 0;
    }
    if (now_ns > r->last_ns) {
        r->tokens += (double)(now_ns - r->last_ns) * r->rate / 1e9;
        r->tokens = MOOR_MIN(r->tokens, r->burst);
        r->last_ns = now_ns;
    }
    if (r->tokens >= 1.0) {
        r->tokens -= 1.0;
        return 0;
    }
    double wait = (1.0 - r->tokens) * 1e9 / r->rate;
    return MOOR_MAX((uint64_t)wait, (uint64_t)1);
}

size_t bench_prefix_end(const uint8_t *prefix, size_t prefix_len, uint8_t *out)
{
    for (size_t i = prefix_len; i > 0; i--) {
        if (prefix[i - 1] < 0xff) {
            memcpy(out, prefix, i);
            out[i - 1]++;
            return i;
        }
    }
    out[0] = 0;
    return 1;
}

size_t bench_k8s_key(char *out, const char *root, uint64_t index,
                     uint32_t namespaces)
{
    int n = snprintf(out, BENCH_K8S_KEY_MAX + 1, "%s/%s/ns-%04u/obj-%08llu",
                     root, bench_k8s_is_event(index) ? "events" : "pods",
                     namespaces > 0 ? (unsigned)(index % namespaces) : 0u,
                     (unsigned long long)index);
    if (n < 0 || (size_t)n > BENCH_K8S_KEY_MAX) {
        out[0] = 0;
        return 0;
    }
    return (size_t)n;
}

bool bench_k8s_is_event(uint64_t index)
{
    return index % 4 == 3;
}

int bench_k8s_list_start(struct bench_k8s_list *l, const char *prefix)
{
    size_t len = strlen(prefix);
    if (len == 0 || len > BENCH_K8S_KEY_MAX) {
        return MOOR_EINVAL;
    }
    memset(l, 0, sizeof(*l));
    memcpy(l->key, prefix, len);
    l->key_len = len;
    l->end_len = bench_prefix_end(l->key, len, l->end);
    return MOOR_OK;
}

int bench_k8s_list_page(struct bench_k8s_list *l, const uint8_t *last_key,
                        size_t last_len, size_t n, bool more, int64_t revision)
{
    if (revision <= 0) {
        return MOOR_EPROTO;
    }
    /* Later pages read at the first page's revision (their header carries
     * the store's current revision, which may have moved on). */
    if (l->revision == 0) {
        l->revision = revision;
    }
    l->pages++;
    l->items += n;
    if (!more) {
        l->done = true;
        return MOOR_OK;
    }
    /* The next page starts at the smallest key after the last one: the
     * last key with a NUL byte appended. */
    if (n == 0 || last_len == 0 || last_len >= sizeof(l->key)) {
        return MOOR_EPROTO;
    }
    struct moor_slice cur = moor_slice_make(l->key, l->key_len);
    if (moor_slice_cmp(moor_slice_make(last_key, last_len), cur) < 0) {
        return MOOR_EPROTO;
    }
    memcpy(l->key, last_key, last_len);
    l->key[last_len] = 0;
    l->key_len = last_len + 1;
    return MOOR_OK;
}

/* One protobuf field at p[0..len): its number, wire type, and for varints
 * the value, for length-delimited fields the bytes. Returns the bytes
 * used, 0 when malformed. */
static size_t pb_field(const uint8_t *p, size_t len, uint32_t *field,
                       uint64_t *v, const uint8_t **data, size_t *dlen)
{
    uint64_t tag;
    size_t n = moor_varint_get(p, len, &tag);
    if (n == 0 || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX) {
        return 0;
    }
    *field = (uint32_t)(tag >> 3);
    *data = NULL;
    *dlen = 0;
    size_t m;
    switch (tag & 7) {
    case 0:
        m = moor_varint_get(p + n, len - n, v);
        return m == 0 ? 0 : n + m;
    case 1:
        return len - n >= 8 ? n + 8 : 0;
    case 5:
        return len - n >= 4 ? n + 4 : 0;
    case 2:
        m = moor_varint_get(p + n, len - n, v);
        if (m == 0 || *v > len - n - m) {
            return 0;
        }
        *data = p + n + m;
        *dlen = (size_t)*v;
        return n + m + (size_t)*v;
    default:
        return 0;
    }
}

/* Calls fn for each length-delimited field number want in msg; MOOR_EPROTO
 * for malformed bytes. */
static int pb_each(const uint8_t *msg, size_t len, uint32_t want,
                   void (*fn)(const uint8_t *d, size_t n, void *arg), void *arg)
{
    size_t off = 0;
    while (off < len) {
        uint32_t field;
        uint64_t v;
        const uint8_t *d;
        size_t dn;
        size_t used = pb_field(msg + off, len - off, &field, &v, &d, &dn);
        if (used == 0) {
            return MOOR_EPROTO;
        }
        if (field == want && d != NULL) {
            fn(d, dn, arg);
        }
        off += used;
    }
    return MOOR_OK;
}

struct key_visit
{
    bench_watch_key_fn fn;
    void *arg;
    int rv;
};

static void visit_key(const uint8_t *d, size_t n, void *arg)
{
    struct key_visit *kv = arg;
    kv->fn(d, n, kv->arg);
}

static void visit_kv(const uint8_t *d, size_t n, void *arg)
{
    struct key_visit *kv = arg;
    if (pb_each(d, n, 1, visit_key, kv) != MOOR_OK) { /* KeyValue.key */
        kv->rv = MOOR_EPROTO;
    }
}

static void visit_event(const uint8_t *d, size_t n, void *arg)
{
    struct key_visit *kv = arg;
    if (pb_each(d, n, 2, visit_kv, kv) != MOOR_OK) { /* Event.kv */
        kv->rv = MOOR_EPROTO;
    }
}

int bench_watch_scan(const uint8_t *msg, size_t len,
                     struct bench_watch_scan *out, bench_watch_key_fn key_fn,
                     void *arg)
{
    memset(out, 0, sizeof(*out));
    struct key_visit kv = {key_fn, arg, MOOR_OK};
    size_t off = 0;
    while (off < len) {
        uint32_t field;
        uint64_t v = 0;
        const uint8_t *d;
        size_t dn;
        size_t used = pb_field(msg + off, len - off, &field, &v, &d, &dn);
        if (used == 0) {
            return MOOR_EPROTO;
        }
        if (field == 3 && d == NULL) {
            out->created = v != 0;
        } else if (field == 4 && d == NULL) {
            out->canceled = v != 0;
        } else if (field == 11 && d != NULL) {
            out->events++;
            if (key_fn != NULL) {
                visit_event(d, dn, &kv);
            }
        }
        off += used;
    }
    return kv.rv;
}
