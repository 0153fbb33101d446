/*
 * dump.c: the state as a byte stream, and loading it back.
 *
 * The stream (all integers little-endian):
 *
 *   OFFSET  SIZE  MEANING
 *   header (32 bytes)
 *   0       8     magic "MOORKV\0\1" (format version 1)
 *   8       8     revision R the dump shows
 *   16      8     compact revision
 *   24      8     applied Raft index
 *   then records, each starting with a type byte:
 *   'L' lease (25 bytes): 8 id, 8 granted TTL s, 8 checkpointed remaining s
 *   'K' key: 4 key length K (> 0), 4 number of versions N (> 0), K key
 *           bytes, then N versions, newest first, each:
 *           8 mod revision, 4 sub revision, 8 create revision,
 *           8 version (0: a deletion), 8 lease, 4 value length V, V bytes
 *   'E' end (21 bytes): 8 number of 'K' records, 8 number of 'L' records,
 *           4 crc32c of every byte of the stream before this field
 *
 * Leases come first (keys refer to them), then keys in ascending order.
 * A key's versions are those a finished compaction at the compact revision
 * keeps, with mod revision <= R: the stream is the same whatever the
 * physical compaction progress, and a key with none is left out.
 */
#include "kv_int.h"

#define DUMP_MAGIC "MOORKV\0\1"
#define HDR_SIZE 32
#define VER_FIXED 40
#define LEASE_SIZE 25
#define END_SIZE 21

static void put64(uint8_t *p, int64_t v)
{
    moor_put_le64(p, (uint64_t)v);
}

static int64_t get64(const uint8_t *p)
{
    return (int64_t)moor_get_le64(p);
}

/* Appends and updates the running crc. */
static int emit(struct kv_dump *d, struct moor_buf *out, const void *p,
                size_t n)
{
    int rv = moor_buf_append(out, p, n);
    if (rv == MOOR_OK) {
        d->crc = moor_crc32c(d->crc, p, n);
    }
    return rv;
}

int kv_dump_open(struct kv_store *s, struct kv_dump *d)
{
    memset(d, 0, sizeof(*d));
    d->store = s;
    d->rev = s->rev;
    d->compact_rev = s->compact_rev;
    d->n_leases = s->leases.n;
    if (d->n_leases > 0) {
        d->leases = moor_malloc(d->n_leases * 3 * sizeof(int64_t));
        if (d->leases == NULL) {
            return MOOR_ENOMEM;
        }
        for (size_t i = 0; i < d->n_leases; i++) {
            const struct kv_lease *l = s->leases.v[i];
            d->leases[3 * i] = l->id;
            d->leases[3 * i + 1] = l->ttl_s;
            d->leases[3 * i + 2] = l->remaining_s;
        }
    }
    d->applied_index = s->applied_index;
    s->dumps_open++;
    return MOOR_OK;
}

void kv_dump_close(struct kv_dump *d)
{
    if (d->store == NULL) {
        return;
    }
    d->store->dumps_open--;
    moor_free(d->leases);
    moor_free(d->cursor);
    memset(d, 0, sizeof(*d));
}

/* Whether r (mod <= rev) is kept by a compaction at c; *stop when nothing
 * older can be. */
static bool kept(const struct kv_rec *r, int64_t c, bool *stop)
{
    if (r->mod > c) {
        return true;
    }
    *stop = true;
    return kv__rec_live(r) || r->mod == c;
}

static int emit_key(struct kv_dump *d, struct moor_buf *out,
                    const struct kv_rec *head, bool *emitted)
{
    uint32_t nver = 0;
    bool stop = false;
    for (const struct kv_rec *r = head; r != NULL && !stop; r = r->older) {
        if (r->mod <= d->rev && kept(r, d->compact_rev, &stop)) {
            nver++;
        }
    }
    *emitted = nver > 0;
    if (nver == 0) {
        return MOOR_OK;
    }
    uint8_t b[VER_FIXED];
    b[0] = 'K';
    moor_put_le32(b + 1, head->klen);
    moor_put_le32(b + 5, nver);
    int rv = emit(d, out, b, 9);
    if (rv == MOOR_OK) {
        rv = emit(d, out, head->data, head->klen);
    }
    stop = false;
    for (const struct kv_rec *r = head; r != NULL && !stop && rv == MOOR_OK;
         r = r->older) {
        if (r->mod > d->rev || !kept(r, d->compact_rev, &stop)) {
            continue;
        }
        put64(b, r->mod);
        moor_put_le32(b + 8, r->sub);
        put64(b + 12, r->create);
        put64(b + 20, r->version);
        put64(b + 28, r->lease);
        moor_put_le32(b + 36, r->vlen);
        rv = emit(d, out, b, VER_FIXED);
        if (rv == MOOR_OK) {
            rv = emit(d, out, r->data + r->klen, r->vlen);
        }
    }
    return rv;
}

static int set_cursor(struct kv_dump *d, struct moor_slice key)
{
    uint8_t *p = moor_realloc(d->cursor, key.len + 1);
    if (p == NULL) {
        return MOOR_ENOMEM;
    }
    memcpy(p, key.ptr, key.len);
    p[key.len] = 0; /* the smallest key after `key` */
    d->cursor = p;
    d->cursor_len = key.len + 1;
    return MOOR_OK;
}

int kv_dump_next(struct kv_dump *d, struct moor_buf *out, size_t max_bytes,
                 bool *done)
{
    size_t start = out->len;
    int rv = MOOR_OK;
    *done = d->done;
    if (d->done) {
        return MOOR_OK;
    }
    if (!d->started) {
        uint8_t h[HDR_SIZE];
        memcpy(h, DUMP_MAGIC, 8);
        put64(h + 8, d->rev);
        put64(h + 16, d->compact_rev);
        put64(h + 24, (int64_t)d->applied_index);
        rv = emit(d, out, h, HDR_SIZE);
        if (rv != MOOR_OK) {
            return rv;
        }
        d->started = true;
    }
    while (d->next_lease < d->n_leases && out->len - start < max_bytes) {
        uint8_t b[LEASE_SIZE];
        b[0] = 'L';
        put64(b + 1, d->leases[3 * d->next_lease]);
        put64(b + 9, d->leases[3 * d->next_lease + 1]);
        put64(b + 17, d->leases[3 * d->next_lease + 2]);
        rv = emit(d, out, b, LEASE_SIZE);
        if (rv != MOOR_OK) {
            return rv;
        }
        d->next_lease++;
    }
    if (!d->keys_done && out->len - start < max_bytes) {
        struct kv_pos pos;
        kv__tree_seek(&d->store->tree,
                      moor_slice_make(d->cursor, d->cursor_len), &pos);
        const struct kv_rec *head = NULL;
        while (out->len - start < max_bytes &&
               (head = kv__pos_rec(&pos)) != NULL) {
            bool emitted = false;
            rv = emit_key(d, out, head, &emitted);
            if (rv == MOOR_OK) {
                rv = set_cursor(d, kv__rec_key(head));
            }
            if (rv != MOOR_OK) {
                return rv;
            }
            d->n_keys += emitted ? 1 : 0;
            kv__pos_next(&pos);
        }
        d->keys_done = head == NULL;
    }
    if (d->keys_done && out->len - start < max_bytes) {
        uint8_t b[END_SIZE];
        b[0] = 'E';
        put64(b + 1, (int64_t)d->n_keys);
        put64(b + 9, (int64_t)d->n_leases);
        rv = emit(d, out, b, 17);
        if (rv != MOOR_OK) {
            return rv;
        }
        moor_put_le32(b, d->crc);
        rv = moor_buf_append(out, b, 4);
        if (rv != MOOR_OK) {
            return rv;
        }
        d->done = true;
    }
    *done = d->done;
    return MOOR_OK;
}

/* ---- load ------------------------------------------------------------- */

int kv_load_open(struct kv_store *s, struct kv_load *l)
{
    memset(l, 0, sizeof(*l));
    if (s->rev != 1 || s->tree.n_keys != 0 || s->leases.n != 0 ||
        s->applied_index != 0 || s->compact_rev != 0) {
        return MOOR_EINVAL;
    }
    l->store = s;
    moor_buf_init(&l->pending);
    return MOOR_OK;
}

void kv_load_close(struct kv_load *l)
{
    moor_buf_close(&l->pending);
    memset(l, 0, sizeof(*l));
}

static int corrupt(struct kv_load *l, const char *what)
{
    moor_errmsg_set(l->errmsg, "kv load: %s at stream offset %llu", what,
                    (unsigned long long)l->offset);
    return MOOR_ECORRUPT;
}

/* Bytes of the 'K' record at p[0..n), or 0 while it is incomplete. */
static size_t key_record_len(const uint8_t *p, size_t n, uint32_t klen,
                             uint32_t nver)
{
    size_t off = 9 + (size_t)klen;
    for (uint32_t i = 0; i < nver; i++) {
        if (n < off + VER_FIXED) {
            return 0;
        }
        off += VER_FIXED + moor_get_le32(p + off + 36);
        if (off > n) {
            return 0;
        }
    }
    return off;
}

/* Loads one 'K' record from p[0..n). Returns bytes used, 0 if incomplete,
 * or sets *err. */
static size_t load_key(struct kv_load *l, const uint8_t *p, size_t n, int *err)
{
    struct kv_store *s = l->store;
    if (n < 9) {
        return 0;
    }
    uint32_t klen = moor_get_le32(p + 1);
    uint32_t nver = moor_get_le32(p + 5);
    if (klen == 0 || nver == 0) {
        *err = corrupt(l, "empty key or no versions");
        return 0;
    }
    if (key_record_len(p, n, klen, nver) == 0) {
        return 0; /* incomplete: nothing allocated yet */
    }
    struct moor_slice key = moor_slice_make(p + 9, klen);
    if (l->last != NULL && moor_slice_cmp(kv__rec_key(l->last), key) >= 0) {
        *err = corrupt(l, "keys out of order");
        return 0;
    }
    struct kv_rec *head = NULL;
    struct kv_rec *tail = NULL;
    size_t off = 9 + (size_t)klen;
    for (uint32_t i = 0; i < nver; i++) {
        const uint8_t *v = p + off;
        uint32_t vlen = moor_get_le32(v + 36);
        struct kv_rec *r =
            kv__rec_new(key, moor_slice_make(v + VER_FIXED, vlen));
        if (r == NULL) {
            *err = MOOR_ENOMEM;
            goto fail;
        }
        r->mod = get64(v);
        r->sub = moor_get_le32(v + 8);
        r->create = get64(v + 12);
        r->version = get64(v + 20);
        r->lease = get64(v + 28);
        off += VER_FIXED + vlen;
        if (head == NULL) {
            head = r;
        } else {
            tail->older = r;
        }
        bool bad =
            r->mod < 1 || r->mod > l->rev || r->version < 0 ||
            (r->version == 0 && (vlen != 0 || r->lease != 0)) ||
            (tail != NULL && (r->mod > tail->mod ||
                              (r->mod == tail->mod && r->sub >= tail->sub)));
        tail = r;
        if (bad) {
            *err = corrupt(l, "bad version");
            goto fail;
        }
    }
    if (kv__rec_live(head) && head->lease != 0) {
        if (kv__lease_find(&s->leases, head->lease) == NULL) {
            *err = corrupt(l, "key attached to an unknown lease");
            goto fail;
        }
        *err = kv__lease_attach(s, head->lease, key);
        if (*err != MOOR_OK) {
            goto fail;
        }
    }
    *err = kv__tree_insert(&s->tree, head);
    if (*err != MOOR_OK) {
        goto fail;
    }
    l->last = head;
    l->n_keys++;
    return off;
fail:
    while (head != NULL) {
        struct kv_rec *older = head->older;
        moor_free(head);
        head = older;
    }
    return 0;
}

static size_t load_header(struct kv_load *l, const uint8_t *q, size_t n,
                          int *err)
{
    if (n < HDR_SIZE) {
        return 0;
    }
    if (memcmp(q, DUMP_MAGIC, 8) != 0) {
        *err = corrupt(l, "bad magic");
        return 0;
    }
    l->rev = get64(q + 8);
    l->compact_rev = get64(q + 16);
    l->applied_index = (uint64_t)get64(q + 24);
    if (l->rev < 1 || l->compact_rev < 0 || l->compact_rev > l->rev) {
        *err = corrupt(l, "bad header");
        return 0;
    }
    l->header_seen = true;
    return HDR_SIZE;
}

static size_t load_lease(struct kv_load *l, const uint8_t *q, size_t n,
                         int *err)
{
    if (n < LEASE_SIZE) {
        return 0;
    }
    int64_t id = get64(q + 1);
    int64_t ttl = get64(q + 9);
    int64_t rem = get64(q + 17);
    if (id <= 0 || ttl <= 0 || rem < 0 || l->n_keys > 0 ||
        kv__lease_find(&l->store->leases, id) != NULL) {
        *err = corrupt(l, "bad lease");
        return 0;
    }
    *err = kv__lease_insert(l->store, id, ttl, rem, UINT64_MAX);
    if (*err != MOOR_OK) {
        return 0;
    }
    l->n_leases++;
    return LEASE_SIZE;
}

static size_t load_end(struct kv_load *l, const uint8_t *q, size_t n, int *err)
{
    if (n < END_SIZE) {
        return 0;
    }
    if ((uint64_t)get64(q + 1) != l->n_keys ||
        (uint64_t)get64(q + 9) != l->n_leases) {
        *err = corrupt(l, "record counts differ from the end record");
        return 0;
    }
    if (moor_get_le32(q + 17) != moor_crc32c(l->crc, q, 17)) {
        *err = corrupt(l, "crc mismatch");
        return 0;
    }
    struct kv_store *s = l->store;
    s->rev = l->rev;
    s->compact_rev = l->compact_rev;
    s->applied_index = l->applied_index;
    l->done = true;
    return END_SIZE;
}

/* Parses the complete records at the front of pending. */
static int load_parse(struct kv_load *l)
{
    const uint8_t *p = l->pending.ptr;
    size_t n = l->pending.len;
    size_t used = 0;
    int rv = MOOR_OK;
    while (used < n && !l->done) {
        const uint8_t *q = p + used;
        size_t avail = n - used;
        size_t len;
        if (!l->header_seen) {
            len = load_header(l, q, avail, &rv);
        } else if (q[0] == 'L') {
            len = load_lease(l, q, avail, &rv);
        } else if (q[0] == 'K') {
            len = load_key(l, q, avail, &rv);
        } else if (q[0] == 'E') {
            len = load_end(l, q, avail, &rv);
        } else {
            rv = corrupt(l, "unknown record type");
            len = 0;
        }
        if (rv != MOOR_OK || len == 0) {
            break; /* an error, or an incomplete record: wait for more */
        }
        l->crc = moor_crc32c(l->crc, q, len);
        l->offset += len;
        used += len;
    }
    moor_buf_consume(&l->pending, used);
    if (rv == MOOR_OK && l->done && l->pending.len > 0) {
        rv = corrupt(l, "bytes after the end record");
    }
    return rv;
}

int kv_load_feed(struct kv_load *l, const void *data, size_t len)
{
    if (l->failed) {
        return MOOR_ECORRUPT;
    }
    int rv = moor_buf_append(&l->pending, data, len);
    if (rv == MOOR_OK) {
        rv = load_parse(l);
    }
    if (rv != MOOR_OK) {
        l->failed = true;
    }
    return rv;
}

int kv_load_finish(struct kv_load *l)
{
    if (l->failed) {
        return MOOR_ECORRUPT;
    }
    if (!l->done) {
        l->failed = true;
        return corrupt(l, "stream ends before its end record");
    }
    return MOOR_OK;
}
