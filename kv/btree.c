/*
 * btree.c: the ordered key index, a B+tree of record pointers with live
 * counts per subtree.
 *
 * Leaves hold up to KV_LEAF_CAP pointers (one cache-friendly array; a key is
 * compared by following its pointer to the record that holds it inline) and
 * are linked both ways for scans in either direction. Inner nodes hold
 * copied separators and, for each child, the number of live keys below it:
 * the live count of any [a, b) is rank(b) - rank(a), O(log n), which is how
 * count_only beats etcd's full scan. An inner node also keeps its
 * separators' common prefix and an 8-byte order-preserving prefix of each
 * (struct kv_inner), so a search rarely dereferences a separator.
 *
 * Insertion splits full nodes on the way down (so a failed allocation
 * leaves a valid tree without the key); a full leaf first tries to pass
 * entries to a sibling with room, which keeps leaves fuller (fewer bytes
 * per key, fewer leaves per scan) after random inserts. When keys arrive in
 * ascending order (a load, a sequential benchmark) the rightmost node splits so
 * the left part stays full: ascending inserts pack leaves to ~100%. Removal
 * merges a node that fell under a quarter full into a sibling when both fit in
 * one node.
 */
#include "kv_int.h"

#define KV_PATH_MAX 64
#define LEAF_MIN (KV_LEAF_CAP / 4)
#define INNER_MIN (KV_INNER_CAP / 4)
/* Entries worth passing to a sibling instead of splitting: sharing only a
 * few would make the next insert into the same leaf share again. */
#define LEAF_SHARE_MIN (KV_LEAF_CAP / 8)

static struct moor_slice sep_slice(const struct kv_sep *s)
{
    return moor_slice_make(s->key, s->len);
}

static struct kv_sep *sep_new(struct moor_slice key)
{
    struct kv_sep *s = moor_malloc(sizeof(*s) + key.len);
    if (s == NULL) {
        return NULL;
    }
    s->len = (uint32_t)key.len;
    if (key.len > 0) {
        memcpy(s->key, key.ptr, key.len);
    }
    return s;
}

static struct kv_leaf *leaf_new(void)
{
    struct kv_leaf *l = moor_malloc(sizeof(*l));
    if (l != NULL) {
        l->n = 0;
        l->live = 0;
        l->prev = NULL;
        l->next = NULL;
        l->cp_len = 0;
    }
    return l;
}

static struct kv_inner *inner_new(void)
{
    struct kv_inner *in = moor_malloc(sizeof(*in));
    if (in != NULL) {
        memset(in, 0, sizeof(*in));
    }
    return in;
}

int kv__tree_init(struct kv_tree *t)
{
    t->root = leaf_new();
    if (t->root == NULL) {
        return MOOR_ENOMEM;
    }
    t->height = 0;
    t->n_keys = 0;
    t->n_live = 0;
    return MOOR_OK;
}

static void free_node(void *node, uint32_t level)
{
    if (level == 0) {
        moor_free(node);
        return;
    }
    struct kv_inner *in = node;
    for (uint32_t i = 0; i < in->n; i++) {
        free_node(in->child[i], level - 1);
        if (i > 0) {
            moor_free(in->sep[i]);
        }
    }
    moor_free(in);
}

void kv__tree_close(struct kv_tree *t)
{
    if (t->root != NULL) {
        free_node(t->root, t->height);
        t->root = NULL;
    }
}

/* The 8 bytes of p[0..len) from `from` on, big-endian, zero-padded: two
 * such values that differ order as the byte strings do. */
static uint64_t prefix8(const uint8_t *p, size_t len, size_t from)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        v = v << 8 | (from + i < len ? p[from + i] : 0u);
    }
    return v;
}

/* The 4 bytes of p[0..len) from `from` on, as prefix8. */
static uint32_t prefix4(const uint8_t *p, size_t len, size_t from)
{
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        v = v << 8 | (from + i < len ? p[from + i] : 0u);
    }
    return v;
}

/* Recomputes l's inline common prefix (that of its first and last keys,
 * which for sorted keys is every key's) and per-key prefixes. */
static void leaf_refresh(struct kv_leaf *l)
{
    uint32_t cp = 0;
    if (l->n > 0) {
        struct moor_slice a = kv__rec_key(l->rec[0]);
        struct moor_slice b = kv__rec_key(l->rec[l->n - 1]);
        size_t max = MOOR_MIN(MOOR_MIN(a.len, b.len), (size_t)KV_LEAF_CP_MAX);
        while (cp < max && a.ptr[cp] == b.ptr[cp]) {
            cp++;
        }
        if (cp > 0) {
            memcpy(l->cp, a.ptr, cp);
        }
    }
    l->cp_len = cp;
    for (uint32_t i = 0; i < l->n; i++) {
        struct moor_slice k = kv__rec_key(l->rec[i]);
        l->pfx[i] = prefix4(k.ptr, k.len, cp);
    }
}

/* Recomputes in's inline common prefix and per-separator prefixes. */
static void inner_refresh(struct kv_inner *in)
{
    uint32_t cp = 0;
    if (in->n > 1) {
        const struct kv_sep *first = in->sep[1];
        cp = MOOR_MIN(first->len, (uint32_t)KV_INNER_CP_MAX);
        for (uint32_t i = 2; i < in->n && cp > 0; i++) {
            const struct kv_sep *x = in->sep[i];
            uint32_t j = 0;
            while (j < cp && j < x->len && x->key[j] == first->key[j]) {
                j++;
            }
            cp = j;
        }
        if (cp > 0) {
            memcpy(in->cp, first->key, cp);
        }
    }
    in->cp_len = cp;
    for (uint32_t i = 1; i < in->n; i++) {
        in->pfx[i] = prefix8(in->sep[i]->key, in->sep[i]->len, cp);
    }
}

/* Index of the child of in whose span holds key. */
static uint32_t inner_child(const struct kv_inner *in, struct moor_slice key)
{
    if (in->n <= 1) {
        return 0;
    }
    /* Every separator starts with cp: a key that does not sorts before or
     * after all of them. */
    size_t m = MOOR_MIN(key.len, (size_t)in->cp_len);
    int c = m > 0 ? memcmp(key.ptr, in->cp, m) : 0;
    if (c < 0 || (c == 0 && key.len < in->cp_len)) {
        return 0;
    }
    if (c > 0) {
        return in->n - 1;
    }
    uint64_t kp = prefix8(key.ptr, key.len, in->cp_len);
    uint32_t lo = 1;
    uint32_t hi = in->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        bool le = in->pfx[mid] != kp
                      ? in->pfx[mid] < kp
                      : moor_slice_cmp(sep_slice(in->sep[mid]), key) <= 0;
        if (le) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo - 1;
}

/* First index in l whose key is >= key. */
static uint32_t leaf_lower(const struct kv_leaf *l, struct moor_slice key)
{
    /* Every key starts with cp: a key that does not sorts before or after
     * all of them. */
    size_t m = MOOR_MIN(key.len, (size_t)l->cp_len);
    int c = m > 0 ? memcmp(key.ptr, l->cp, m) : 0;
    if (c < 0 || (c == 0 && key.len < l->cp_len)) {
        return 0;
    }
    if (c > 0) {
        return l->n;
    }
    uint32_t kp = prefix4(key.ptr, key.len, l->cp_len);
    uint32_t lo = 0;
    uint32_t hi = l->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        bool less = l->pfx[mid] != kp
                        ? l->pfx[mid] < kp
                        : moor_slice_cmp(kv__rec_key(l->rec[mid]), key) < 0;
        if (less) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static struct kv_leaf *descend(const struct kv_tree *t, struct moor_slice key)
{
    void *node = t->root;
    for (uint32_t level = t->height; level > 0; level--) {
        struct kv_inner *in = node;
        node = in->child[inner_child(in, key)];
    }
    return node;
}

void kv__tree_seek(const struct kv_tree *t, struct moor_slice key,
                   struct kv_pos *pos)
{
    struct kv_leaf *l = descend(t, key);
    uint32_t i = leaf_lower(l, key);
    if (i >= l->n && l->next != NULL) {
        l = l->next;
        i = 0;
    }
    pos->leaf = l;
    pos->i = i;
}

void kv__tree_seek_before(const struct kv_tree *t, struct moor_slice key,
                          bool to_end, struct kv_pos *pos)
{
    if (to_end) {
        void *node = t->root;
        for (uint32_t level = t->height; level > 0; level--) {
            struct kv_inner *in = node;
            node = in->child[in->n - 1];
        }
        struct kv_leaf *l = node;
        pos->leaf = l->n > 0 ? l : NULL;
        pos->i = l->n > 0 ? l->n - 1 : 0;
        return;
    }
    struct kv_leaf *l = descend(t, key);
    uint32_t i = leaf_lower(l, key);
    pos->leaf = l;
    pos->i = i;
    kv__pos_prev(pos);
}

void kv__pos_next(struct kv_pos *p)
{
    if (p->leaf == NULL) {
        return;
    }
    p->i++;
    if (p->i >= p->leaf->n && p->leaf->next != NULL) {
        p->leaf = p->leaf->next;
        p->i = 0;
    }
}

void kv__pos_prev(struct kv_pos *p)
{
    if (p->leaf == NULL) {
        return;
    }
    if (p->i > 0) {
        p->i--;
        return;
    }
    p->leaf = p->leaf->prev;
    p->i = p->leaf != NULL ? p->leaf->n - 1 : 0;
}

struct kv_rec **kv__tree_find(const struct kv_tree *t, struct moor_slice key)
{
    struct kv_leaf *l = descend(t, key);
    uint32_t i = leaf_lower(l, key);
    if (i < l->n && moor_slice_eq(kv__rec_key(l->rec[i]), key)) {
        return &l->rec[i];
    }
    return NULL;
}

static uint64_t node_live(void *node, uint32_t level)
{
    if (level == 0) {
        return ((struct kv_leaf *)node)->live;
    }
    struct kv_inner *in = node;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < in->n; i++) {
        sum += in->live[i];
    }
    return sum;
}

static bool node_full(void *node, uint32_t level)
{
    if (level == 0) {
        return ((struct kv_leaf *)node)->n == KV_LEAF_CAP;
    }
    return ((struct kv_inner *)node)->n == KV_INNER_CAP;
}

/* Makes room in parent (not full) at ci + 1 for a right part. */
static void inner_insert_at(struct kv_inner *p, uint32_t at, struct kv_sep *sep,
                            void *child, uint64_t live)
{
    uint32_t move = p->n - at;
    memmove(&p->sep[at + 1], &p->sep[at], move * sizeof(p->sep[0]));
    memmove(&p->child[at + 1], &p->child[at], move * sizeof(p->child[0]));
    memmove(&p->live[at + 1], &p->live[at], move * sizeof(p->live[0]));
    p->sep[at] = sep;
    p->child[at] = child;
    p->live[at] = live;
    p->n++;
    inner_refresh(p);
}

/* Splits the full child ci of p (p not full). `append`: the key being
 * inserted goes past the child's last key on the tree's right edge, so the
 * left part keeps all but one entry. */
static int split_child(struct kv_inner *p, uint32_t ci, uint32_t level,
                       bool append)
{
    void *c = p->child[ci];
    if (level == 0) {
        struct kv_leaf *l = c;
        uint32_t m = append ? KV_LEAF_CAP - 1 : KV_LEAF_CAP / 2;
        struct kv_leaf *r = leaf_new();
        if (r == NULL) {
            return MOOR_ENOMEM;
        }
        struct kv_sep *sep = sep_new(kv__rec_key(l->rec[m]));
        if (sep == NULL) {
            moor_free(r);
            return MOOR_ENOMEM;
        }
        r->n = l->n - m;
        memcpy(r->rec, &l->rec[m], r->n * sizeof(r->rec[0]));
        l->n = m;
        leaf_refresh(l);
        leaf_refresh(r);
        for (uint32_t i = 0; i < r->n; i++) {
            r->live += kv__rec_live(r->rec[i]) ? 1u : 0u;
        }
        l->live -= r->live;
        r->next = l->next;
        r->prev = l;
        if (l->next != NULL) {
            l->next->prev = r;
        }
        l->next = r;
        p->live[ci] -= r->live;
        inner_insert_at(p, ci + 1, sep, r, r->live);
        return MOOR_OK;
    }
    struct kv_inner *l = c;
    uint32_t m = append ? KV_INNER_CAP - 1 : KV_INNER_CAP / 2;
    struct kv_inner *r = inner_new();
    if (r == NULL) {
        return MOOR_ENOMEM;
    }
    struct kv_sep *up = l->sep[m];
    r->n = l->n - m;
    memcpy(r->child, &l->child[m], r->n * sizeof(r->child[0]));
    memcpy(r->live, &l->live[m], r->n * sizeof(r->live[0]));
    memcpy(&r->sep[1], &l->sep[m + 1], (r->n - 1) * sizeof(r->sep[0]));
    r->sep[0] = NULL;
    l->n = m;
    inner_refresh(l);
    inner_refresh(r);
    uint64_t rl = node_live(r, level);
    p->live[ci] -= rl;
    inner_insert_at(p, ci + 1, up, r, rl);
    return MOOR_OK;
}

static uint32_t leaf_live_of(struct kv_rec *const *recs, uint32_t n)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < n; i++) {
        live += kv__rec_live(recs[i]) ? 1u : 0u;
    }
    return live;
}

/* Makes room in the full leaf child ci of p by moving entries into a
 * sibling with room (right first, then left) instead of splitting: leaves
 * stay fuller after random inserts. Returns false (nothing changed) when
 * no sibling has room or the new separator cannot be allocated. */
static bool leaf_share(struct kv_inner *p, uint32_t ci)
{
    struct kv_leaf *c = p->child[ci];
    if (ci + 1 < p->n) {
        struct kv_leaf *r = p->child[ci + 1];
        uint32_t k = (KV_LEAF_CAP - r->n) / 2;
        if (k >= LEAF_SHARE_MIN) {
            struct kv_sep *sep = sep_new(kv__rec_key(c->rec[c->n - k]));
            if (sep == NULL) {
                return false;
            }
            memmove(&r->rec[k], r->rec, r->n * sizeof(r->rec[0]));
            memcpy(r->rec, &c->rec[c->n - k], k * sizeof(r->rec[0]));
            uint32_t moved = leaf_live_of(r->rec, k);
            r->n += k;
            c->n -= k;
            leaf_refresh(r);
            leaf_refresh(c);
            r->live += moved;
            c->live -= moved;
            p->live[ci] -= moved;
            p->live[ci + 1] += moved;
            moor_free(p->sep[ci + 1]);
            p->sep[ci + 1] = sep;
            inner_refresh(p);
            return true;
        }
    }
    if (ci > 0) {
        struct kv_leaf *l = p->child[ci - 1];
        uint32_t k = (KV_LEAF_CAP - l->n) / 2;
        if (k >= LEAF_SHARE_MIN) {
            struct kv_sep *sep = sep_new(kv__rec_key(c->rec[k]));
            if (sep == NULL) {
                return false;
            }
            memcpy(&l->rec[l->n], c->rec, k * sizeof(l->rec[0]));
            memmove(c->rec, &c->rec[k], (c->n - k) * sizeof(c->rec[0]));
            uint32_t moved = leaf_live_of(&l->rec[l->n], k);
            l->n += k;
            c->n -= k;
            leaf_refresh(l);
            leaf_refresh(c);
            l->live += moved;
            c->live -= moved;
            p->live[ci] -= moved;
            p->live[ci - 1] += moved;
            moor_free(p->sep[ci]);
            p->sep[ci] = sep;
            inner_refresh(p);
            return true;
        }
    }
    return false;
}

int kv__tree_insert(struct kv_tree *t, struct kv_rec *rec)
{
    struct moor_slice key = kv__rec_key(rec);
    uint64_t live = kv__rec_live(rec) ? 1 : 0;
    if (node_full(t->root, t->height)) {
        struct kv_inner *root = inner_new();
        if (root == NULL) {
            return MOOR_ENOMEM;
        }
        root->n = 1;
        root->child[0] = t->root;
        root->live[0] = t->n_live;
        /* Appending past the last key: keep the old root full. */
        bool append = false;
        if (t->height == 0) {
            struct kv_leaf *l = t->root;
            append = moor_slice_cmp(key, kv__rec_key(l->rec[l->n - 1])) > 0;
        } else {
            struct kv_inner *in = t->root;
            append = inner_child(in, key) == in->n - 1;
        }
        int rv = split_child(root, 0, t->height, append);
        if (rv != MOOR_OK) {
            moor_free(root);
            return rv;
        }
        t->root = root;
        t->height++;
    }
    /* Descend, splitting full children first; remember the path so live
     * counts change only once the insert has succeeded. */
    struct kv_inner *path[KV_PATH_MAX];
    uint32_t idx[KV_PATH_MAX];
    uint32_t depth = 0;
    void *node = t->root;
    bool right_edge = true;
    for (uint32_t level = t->height; level > 0; level--) {
        struct kv_inner *in = node;
        uint32_t ci = inner_child(in, key);
        if (node_full(in->child[ci], level - 1)) {
            bool append = false;
            if (right_edge && ci == in->n - 1) {
                if (level == 1) {
                    struct kv_leaf *l = in->child[ci];
                    append =
                        moor_slice_cmp(key, kv__rec_key(l->rec[l->n - 1])) > 0;
                } else {
                    struct kv_inner *c = in->child[ci];
                    append = inner_child(c, key) == c->n - 1;
                }
            }
            if (append || level > 1 || !leaf_share(in, ci)) {
                int rv = split_child(in, ci, level - 1, append);
                if (rv != MOOR_OK) {
                    return rv;
                }
            }
            ci = inner_child(in, key);
        }
        right_edge = right_edge && ci == in->n - 1;
        MOOR_ASSERT(depth < KV_PATH_MAX);
        path[depth] = in;
        idx[depth] = ci;
        depth++;
        node = in->child[ci];
    }
    struct kv_leaf *l = node;
    uint32_t i = leaf_lower(l, key);
    MOOR_ASSERT(i >= l->n || !moor_slice_eq(kv__rec_key(l->rec[i]), key));
    memmove(&l->rec[i + 1], &l->rec[i], (l->n - i) * sizeof(l->rec[0]));
    memmove(&l->pfx[i + 1], &l->pfx[i], (l->n - i) * sizeof(l->pfx[0]));
    l->rec[i] = rec;
    l->n++;
    if (key.len >= l->cp_len &&
        (l->cp_len == 0 || memcmp(key.ptr, l->cp, l->cp_len) == 0)) {
        l->pfx[i] = prefix4(key.ptr, key.len, l->cp_len);
    } else {
        leaf_refresh(l); /* the key does not share the leaf's prefix */
    }
    l->live += (uint32_t)live;
    for (uint32_t d = 0; d < depth; d++) {
        path[d]->live[idx[d]] += live;
    }
    t->n_keys++;
    t->n_live += live;
    return MOOR_OK;
}

void kv__tree_adjust_live(struct kv_tree *t, struct moor_slice key, int delta)
{
    void *node = t->root;
    for (uint32_t level = t->height; level > 0; level--) {
        struct kv_inner *in = node;
        uint32_t ci = inner_child(in, key);
        in->live[ci] = (uint64_t)((int64_t)in->live[ci] + delta);
        node = in->child[ci];
    }
    struct kv_leaf *l = node;
    l->live = (uint32_t)((int64_t)l->live + delta);
    t->n_live = (uint64_t)((int64_t)t->n_live + delta);
}

uint64_t kv__tree_rank(const struct kv_tree *t, struct moor_slice key)
{
    uint64_t rank = 0;
    void *node = t->root;
    for (uint32_t level = t->height; level > 0; level--) {
        struct kv_inner *in = node;
        uint32_t ci = inner_child(in, key);
        for (uint32_t j = 0; j < ci; j++) {
            rank += in->live[j];
        }
        node = in->child[ci];
    }
    struct kv_leaf *l = node;
    uint32_t i = leaf_lower(l, key);
    for (uint32_t j = 0; j < i; j++) {
        rank += kv__rec_live(l->rec[j]) ? 1 : 0;
    }
    return rank;
}

/* Merges child ri into child ri - 1 of p (they fit in one node). */
static void merge_children(struct kv_inner *p, uint32_t ri, uint32_t level)
{
    void *lc = p->child[ri - 1];
    void *rc = p->child[ri];
    if (level == 0) {
        struct kv_leaf *l = lc;
        struct kv_leaf *r = rc;
        memcpy(&l->rec[l->n], r->rec, r->n * sizeof(r->rec[0]));
        l->n += r->n;
        l->live += r->live;
        leaf_refresh(l);
        l->next = r->next;
        if (r->next != NULL) {
            r->next->prev = l;
        }
        moor_free(r);
        moor_free(p->sep[ri]);
    } else {
        struct kv_inner *l = lc;
        struct kv_inner *r = rc;
        l->sep[l->n] = p->sep[ri]; /* the parent's separator comes down */
        for (uint32_t j = 0; j < r->n; j++) {
            if (j > 0) {
                l->sep[l->n + j] = r->sep[j];
            }
            l->child[l->n + j] = r->child[j];
            l->live[l->n + j] = r->live[j];
        }
        l->n += r->n;
        moor_free(r);
        inner_refresh(l);
    }
    p->live[ri - 1] += p->live[ri];
    uint32_t move = p->n - ri - 1;
    memmove(&p->sep[ri], &p->sep[ri + 1], move * sizeof(p->sep[0]));
    memmove(&p->child[ri], &p->child[ri + 1], move * sizeof(p->child[0]));
    memmove(&p->live[ri], &p->live[ri + 1], move * sizeof(p->live[0]));
    p->n--;
    inner_refresh(p);
}

static uint32_t node_n(void *node, uint32_t level)
{
    return level == 0 ? ((struct kv_leaf *)node)->n
                      : ((struct kv_inner *)node)->n;
}

void kv__tree_remove(struct kv_tree *t, struct moor_slice key)
{
    struct kv_inner *path[KV_PATH_MAX];
    uint32_t idx[KV_PATH_MAX];
    uint32_t depth = 0;
    void *node = t->root;
    for (uint32_t level = t->height; level > 0; level--) {
        struct kv_inner *in = node;
        uint32_t ci = inner_child(in, key);
        MOOR_ASSERT(depth < KV_PATH_MAX);
        path[depth] = in;
        idx[depth] = ci;
        depth++;
        node = in->child[ci];
    }
    struct kv_leaf *l = node;
    uint32_t i = leaf_lower(l, key);
    MOOR_ASSERT(i < l->n && moor_slice_eq(kv__rec_key(l->rec[i]), key));
    MOOR_ASSERT(!kv__rec_live(l->rec[i]));
    memmove(&l->rec[i], &l->rec[i + 1], (l->n - i - 1) * sizeof(l->rec[0]));
    memmove(&l->pfx[i], &l->pfx[i + 1], (l->n - i - 1) * sizeof(l->pfx[0]));
    l->n--;
    t->n_keys--;
    /* Walk up merging underfull nodes into a sibling when both fit. */
    for (uint32_t level = 0; depth > 0; level++) {
        depth--;
        struct kv_inner *p = path[depth];
        uint32_t ci = idx[depth];
        uint32_t n = node_n(p->child[ci], level);
        uint32_t min = level == 0 ? LEAF_MIN : INNER_MIN;
        uint32_t cap = level == 0 ? KV_LEAF_CAP : KV_INNER_CAP;
        if (n >= min) {
            break;
        }
        if (ci > 0 && node_n(p->child[ci - 1], level) + n <= cap) {
            merge_children(p, ci, level);
        } else if (ci + 1 < p->n &&
                   node_n(p->child[ci + 1], level) + n <= cap) {
            merge_children(p, ci + 1, level);
        } else {
            break;
        }
    }
    while (t->height > 0 && ((struct kv_inner *)t->root)->n == 1) {
        struct kv_inner *root = t->root;
        t->root = root->child[0];
        t->height--;
        moor_free(root);
    }
}

/* ---------------------------------------------------------------------- */

static bool check_node(void *node, uint32_t level, const struct kv_sep *lo,
                       const struct kv_sep *hi, bool is_root, uint64_t *live,
                       uint64_t *keys, struct kv_leaf **prev_leaf)
{
    if (level == 0) {
        struct kv_leaf *l = node;
        if (!is_root && l->n == 0) {
            return false;
        }
        if (l->prev != *prev_leaf) {
            return false;
        }
        if (*prev_leaf != NULL && (*prev_leaf)->next != l) {
            return false;
        }
        *prev_leaf = l;
        uint32_t lv = 0;
        for (uint32_t i = 0; i < l->n; i++) {
            struct moor_slice k = kv__rec_key(l->rec[i]);
            if (i > 0 && moor_slice_cmp(kv__rec_key(l->rec[i - 1]), k) >= 0) {
                return false;
            }
            if (lo != NULL && moor_slice_cmp(k, sep_slice(lo)) < 0) {
                return false;
            }
            if (hi != NULL && moor_slice_cmp(k, sep_slice(hi)) >= 0) {
                return false;
            }
            if (k.len < l->cp_len ||
                (l->cp_len > 0 && memcmp(k.ptr, l->cp, l->cp_len) != 0) ||
                l->pfx[i] != prefix4(k.ptr, k.len, l->cp_len)) {
                return false;
            }
            lv += kv__rec_live(l->rec[i]) ? 1u : 0u;
        }
        if (lv != l->live) {
            return false;
        }
        *live = lv;
        *keys += l->n;
        return true;
    }
    struct kv_inner *in = node;
    if (in->n == 0 || (is_root && in->n < 2)) {
        return false;
    }
    for (uint32_t i = 1; i < in->n; i++) {
        const struct kv_sep *x = in->sep[i];
        if (x->len < in->cp_len ||
            (in->cp_len > 0 && memcmp(x->key, in->cp, in->cp_len) != 0) ||
            in->pfx[i] != prefix8(x->key, x->len, in->cp_len)) {
            return false;
        }
    }
    uint64_t sum = 0;
    for (uint32_t i = 0; i < in->n; i++) {
        const struct kv_sep *clo = i == 0 ? lo : in->sep[i];
        const struct kv_sep *chi = i + 1 < in->n ? in->sep[i + 1] : hi;
        uint64_t cl = 0;
        if (!check_node(in->child[i], level - 1, clo, chi, false, &cl, keys,
                        prev_leaf)) {
            return false;
        }
        if (cl != in->live[i]) {
            return false;
        }
        sum += cl;
    }
    *live = sum;
    return true;
}

bool kv__tree_check(const struct kv_tree *t)
{
    uint64_t live = 0;
    uint64_t keys = 0;
    struct kv_leaf *prev = NULL;
    if (!check_node(t->root, t->height, NULL, NULL, true, &live, &keys,
                    &prev)) {
        return false;
    }
    return prev != NULL && prev->next == NULL && live == t->n_live &&
           keys == t->n_keys;
}
