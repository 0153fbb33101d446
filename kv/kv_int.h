/*
 * kv/kv_int.h: kv/'s internal declarations, shared by its files only.
 *
 * Memory layout per key (docs/kv.md): the B+tree leaf holds one pointer per
 * key, to the key's newest version record; each record is ONE allocation
 * holding its header, the key and the value inline, and points to the next
 * older record of the same key (the history, newest first). A record's
 * memory is freed only by compaction (or kv_store_free), and only when no
 * watch event still references it.
 */
#ifndef MOOR_KV_INT_H
#define MOOR_KV_INT_H

#include "kv/kv.h"

/* One version of one key. A tombstone (deletion) has version == 0, no
 * value, create == 0 and mod = the deletion revision.
 * Invariant: along ->older, (mod, sub) strictly decreases. */
struct kv_rec
{
    struct kv_rec *older;
    int64_t mod;
    int64_t create;
    int64_t version;
    int64_t lease;
    uint32_t sub;
    uint32_t refs; /* 1 for the history chain (until compaction unlinks it)
                      + 1 per queued watch event */
    uint32_t klen;
    uint32_t vlen;
    uint8_t data[]; /* klen key bytes, then vlen value bytes */
};

static inline struct moor_slice kv__rec_key(const struct kv_rec *r)
{
    return moor_slice_make(r->data, r->klen);
}
static inline struct moor_slice kv__rec_value(const struct kv_rec *r)
{
    return moor_slice_make(r->data + r->klen, r->vlen);
}
static inline bool kv__rec_live(const struct kv_rec *r)
{
    return r->version != 0;
}
void kv__rec_unref(struct kv_rec *r);
struct kv_rec *kv__rec_new(struct moor_slice key, struct moor_slice value);

/* ------------------------------------------------------------------------
 * B+tree over keys (btree.c). Leaves hold record pointers (the newest
 * version of each key) and are doubly linked; inner nodes hold copied
 * separator keys and, per child, the number of live keys below it, so the
 * live count of any key range costs O(log n).
 * ---------------------------------------------------------------------- */
#define KV_LEAF_CAP 60
#define KV_INNER_CAP 32

#define KV_LEAF_CP_MAX 32

/* A leaf's search mostly touches the leaf alone, as an inner node's does:
 * every key starts with cp[0..cp_len), and pfx[i] holds the 4 bytes of
 * rec[i]'s key after it, big-endian and zero-padded, so a binary search
 * reads a record's key only where two prefixes tie (one cache miss instead
 * of one per step). cp may be shorter than the keys' longest common prefix;
 * it is recomputed when a leaf is split, shared or merged, or takes a key
 * that does not start with it. */
struct kv_leaf
{
    uint32_t n;
    uint32_t live;
    struct kv_leaf *prev, *next;
    struct kv_rec *rec[KV_LEAF_CAP];
    uint32_t pfx[KV_LEAF_CAP];
    uint32_t cp_len;
    uint8_t cp[KV_LEAF_CP_MAX];
};

struct kv_sep
{
    uint32_t len;
    uint8_t key[];
};

#define KV_INNER_CP_MAX 32

/* Searching an inner node mostly touches the node alone: its separators'
 * common prefix (up to KV_INNER_CP_MAX bytes) is copied inline, and pfx[i]
 * holds the 8 bytes of sep[i] after it, big-endian and zero-padded, an
 * order-preserving summary; only a tie on pfx dereferences the separator.
 * Invariant: cp_len and pfx[] are recomputed (inner_refresh) whenever the
 * separators change. */
struct kv_inner
{
    uint32_t n;      /* children */
    uint32_t cp_len; /* bytes of cp[] every separator starts with */
    struct kv_sep *sep[KV_INNER_CAP]; /* sep[i] <= every key of child[i]; i
                                         >= 1; sep[0] unused */
    void *child[KV_INNER_CAP];
    uint64_t live[KV_INNER_CAP];
    uint64_t pfx[KV_INNER_CAP];
    uint8_t cp[KV_INNER_CP_MAX];
};

struct kv_tree
{
    void *root;      /* a kv_leaf when height == 0 */
    uint32_t height; /* inner levels above the leaves */
    uint64_t n_keys;
    uint64_t n_live;
};

struct kv_pos
{
    struct kv_leaf *leaf;
    uint32_t i;
};

int kv__tree_init(struct kv_tree *t);
void kv__tree_close(struct kv_tree *t); /* frees nodes, not records */
/* Position of the first key >= key (leaf NULL or i == n at the end). */
void kv__tree_seek(const struct kv_tree *t, struct moor_slice key,
                   struct kv_pos *pos);
/* Position of the last key < key (key.ptr NULL: the last key); leaf NULL
 * if none. */
void kv__tree_seek_before(const struct kv_tree *t, struct moor_slice key,
                          bool to_end, struct kv_pos *pos);
static inline struct kv_rec *kv__pos_rec(const struct kv_pos *p)
{
    if (p->leaf == NULL || p->i >= p->leaf->n) {
        return NULL;
    }
    return p->leaf->rec[p->i];
}
void kv__pos_next(struct kv_pos *p);
void kv__pos_prev(struct kv_pos *p);
/* The slot holding key's newest record, or NULL. */
struct kv_rec **kv__tree_find(const struct kv_tree *t, struct moor_slice key);
/* Inserts rec (its key must be absent). MOOR_ENOMEM leaves t unchanged. */
int kv__tree_insert(struct kv_tree *t, struct kv_rec *rec);
/* Removes key (present, and its newest record not live). */
void kv__tree_remove(struct kv_tree *t, struct moor_slice key);
/* Adds delta to the live count along key's path (key present). */
void kv__tree_adjust_live(struct kv_tree *t, struct moor_slice key, int delta);
/* Live keys < key. */
uint64_t kv__tree_rank(const struct kv_tree *t, struct moor_slice key);
/* Checks every structural invariant (tests). Returns false on violation. */
bool kv__tree_check(const struct kv_tree *t);

/* ------------------------------------------------------------------------
 * Leases (lease.c)
 * ---------------------------------------------------------------------- */
struct kv_lease
{
    int64_t id;
    int64_t ttl_s;        /* granted */
    int64_t remaining_s;  /* last checkpoint; 0: none */
    uint64_t deadline_ms; /* local; UINT64_MAX: none */
    uint32_t heap_pos;    /* 1-based in the expiry heap; 0: not queued */
    uint32_t n_keys, cap_keys;
    struct kv_sep **keys; /* sorted owned copies */
};

struct kv_leases
{
    struct kv_lease **v; /* sorted by id */
    size_t n, cap;
    struct kv_lease **heap; /* min-heap on deadline */
    size_t heap_n, heap_cap;
    int64_t cp_gen;
};

int kv__leases_init(struct kv_leases *ls);
void kv__leases_close(struct kv_leases *ls);
struct kv_lease *kv__lease_find(const struct kv_leases *ls, int64_t id);
/* Attach/detach key to/from lease id (0 or unknown: no-op). */
int kv__lease_attach(struct kv_store *s, int64_t id, struct moor_slice key);
void kv__lease_detach(struct kv_store *s, int64_t id, struct moor_slice key);
/* Chains the lease table (id order) into crc. */
uint32_t kv__leases_hash(struct kv_store *s, uint32_t crc);
int kv__lease_insert(struct kv_store *s, int64_t id, int64_t ttl_s,
                     int64_t remaining_s, uint64_t deadline_ms);

/* ------------------------------------------------------------------------
 * Watches (watch.c)
 * ---------------------------------------------------------------------- */
struct kv_watch_index
{
    /* Single-key watchers: a hash table on the key. */
    struct kv_watcher **buckets;
    size_t n_buckets;
    size_t n_single;
    /* Range watchers: sorted by start key; seg[] is a segment tree whose
     * node holds the watcher with the largest end in its span (rebuilt
     * lazily: `dirty` after opens and closes, at the next write). */
    struct kv_watcher **ranges;
    size_t n_ranges, cap_ranges;
    bool dirty;
    struct kv_watcher **seg; /* per segment node: watcher with max end */
    size_t seg_cap;
    /* Ready lists: this round's watchers with something to deliver, and
     * the ones put back for the next round. Both have room for every
     * watcher (reserved at open), so adding never fails. */
    struct kv_watcher **ready;
    size_t n_ready, cap_ready;
    struct kv_watcher **deferred;
    size_t n_deferred, cap_deferred;
    size_t n_total;
};

int kv__watch_init(struct kv_watch_index *wi);
void kv__watch_close(struct kv_watch_index *wi);
/* Called for each changed key as a write applies (rec is the new record,
 * rec->older its previous version). Never fails: a watcher that cannot
 * queue is demoted to unsynced. */
void kv__watch_notify(struct kv_store *s, struct kv_rec *rec);

/* ------------------------------------------------------------------------
 * The store
 * ---------------------------------------------------------------------- */
struct kv_store
{
    struct kv_options opt;
    struct kv_tree tree;
    int64_t rev;         /* current main revision */
    int64_t compact_rev; /* logical */
    uint64_t applied_index;
    /* Incremental compaction: physical work done up to compact_done for
     * keys < cursor. */
    int64_t compact_target;
    bool compacting;
    uint8_t *compact_cursor;
    size_t compact_cursor_len, compact_cursor_cap;
    uint32_t dumps_open;
    struct kv_leases leases;
    struct kv_watch_index watch;
};

/* A write in progress (one main revision). */
struct kv__wtx
{
    int64_t rev;  /* s->rev + 1 */
    uint32_t sub; /* next sub revision */
};

/* Newest version of key visible at rev (NULL: none, or a tombstone when
 * live_only). */
const struct kv_rec *kv__visible(const struct kv_rec *head, int64_t rev);
/* Deletes one key in wtx (head is its live newest record). */
int kv__delete_key(struct kv_store *s, struct kv__wtx *w, struct kv_rec **slot);
int kv__check_index(struct kv_store *s, uint64_t index);
/* Appends one record to a pointer array (range rows, prev_kvs). */
int kv__rows_push(const struct kv_rec ***rows, size_t *n, size_t *cap,
                  const struct kv_rec *r);

#endif /* MOOR_KV_INT_H */
