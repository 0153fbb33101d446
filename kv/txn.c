/*
 * txn.c: Txn with etcd's exact order of checks.
 *
 * 1. Static checks over both branches, recursively (etcd's checkTxnRequest
 *    and checkIntervals): op counts, empty ops and keys, ignore_* misuse,
 *    a key put twice or put and deleted in one path.
 * 2. The path: every compare, nested ones included, is evaluated against
 *    the state before the txn, and the taken path is checked against that
 *    state (range revisions, ignore_* keys, leases).
 * 3. Apply the path under one main revision.
 */
#include "kv_int.h"

int kv__range_at(struct kv_store *s, const struct kv_range_req *q, int64_t cur,
                 struct kv_range_resp *resp);
int kv__put_key(struct kv_store *s, struct kv__wtx *w,
                const struct kv_put_req *q, const struct kv_rec **prev_out);
int kv__delete_range(struct kv_store *s, struct kv__wtx *w,
                     const struct kv_delete_req *q,
                     struct kv_delete_resp *resp);
int kv__check_put(struct kv_store *s, const struct kv_put_req *q);

/* Nesting bound: recursion depth on the C stack. */
#define KV_TXN_DEPTH_MAX 32

/* ---- 1. static checks --------------------------------------------------- */

struct ivl
{
    struct moor_slice key, end; /* end.len 0: the point key */
};

struct ivls
{
    struct ivl *v;
    size_t n, cap;
};

static int ivls_push(struct ivls *a, struct moor_slice key,
                     struct moor_slice end)
{
    if (a->n == a->cap) {
        size_t ncap = a->cap == 0 ? 8 : a->cap * 2;
        struct ivl *p = moor_realloc(a->v, ncap * sizeof(*p));
        if (p == NULL) {
            return MOOR_ENOMEM;
        }
        a->v = p;
        a->cap = ncap;
    }
    a->v[a->n].key = key;
    a->v[a->n].end = end;
    a->n++;
    return MOOR_OK;
}

static bool ivls_has_point(const struct ivls *a, struct moor_slice k)
{
    for (size_t i = 0; i < a->n; i++) {
        if (moor_slice_eq(a->v[i].key, k)) {
            return true;
        }
    }
    return false;
}

static bool ivls_intersects(const struct ivls *dels, struct moor_slice k)
{
    for (size_t i = 0; i < dels->n; i++) {
        const struct ivl *d = &dels->v[i];
        if (d->end.len == 0) {
            if (moor_slice_eq(d->key, k)) {
                return true;
            }
            continue;
        }
        if (moor_slice_cmp(k, d->key) < 0) {
            continue;
        }
        if ((d->end.len == 1 && d->end.ptr[0] == 0) ||
            moor_slice_cmp(k, d->end) < 0) {
            return true;
        }
    }
    return false;
}

/* etcd's checkIntervals: puts and dels collect what ops (and nested txns)
 * write. */
static int check_intervals(const struct kv_op *ops, size_t n, struct ivls *puts,
                           struct ivls *dels)
{
    int rv = MOOR_OK;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type == KV_OP_DELETE) {
            rv = ivls_push(dels, ops[i].u.del.key, ops[i].u.del.range_end);
            if (rv != MOOR_OK) {
                return rv;
            }
        }
    }
    for (size_t i = 0; i < n && rv == MOOR_OK; i++) {
        if (ops[i].type != KV_OP_TXN) {
            continue;
        }
        const struct kv_txn_req *t = &ops[i].u.txn;
        struct ivls pt = {0}, dt = {0}, pe = {0}, de = {0};
        rv = check_intervals(t->success, t->n_success, &pt, &dt);
        if (rv == MOOR_OK) {
            rv = check_intervals(t->failure, t->n_failure, &pe, &de);
        }
        for (size_t j = 0; j < pt.n && rv == MOOR_OK; j++) {
            if (ivls_has_point(puts, pt.v[j].key) ||
                ivls_intersects(dels, pt.v[j].key)) {
                rv = MOOR_EDUPKEY;
            } else {
                rv = ivls_push(puts, pt.v[j].key, pt.v[j].end);
            }
        }
        for (size_t j = 0; j < pe.n && rv == MOOR_OK; j++) {
            /* A key in both branches is fine: only one of them runs. */
            if ((ivls_has_point(puts, pe.v[j].key) &&
                 !ivls_has_point(&pt, pe.v[j].key)) ||
                ivls_intersects(dels, pe.v[j].key)) {
                rv = MOOR_EDUPKEY;
            } else {
                rv = ivls_push(puts, pe.v[j].key, pe.v[j].end);
            }
        }
        for (size_t j = 0; j < dt.n && rv == MOOR_OK; j++) {
            rv = ivls_push(dels, dt.v[j].key, dt.v[j].end);
        }
        for (size_t j = 0; j < de.n && rv == MOOR_OK; j++) {
            rv = ivls_push(dels, de.v[j].key, de.v[j].end);
        }
        moor_free(pt.v);
        moor_free(dt.v);
        moor_free(pe.v);
        moor_free(de.v);
    }
    for (size_t i = 0; i < n && rv == MOOR_OK; i++) {
        if (ops[i].type != KV_OP_PUT) {
            continue;
        }
        struct moor_slice k = ops[i].u.put.key;
        if (ivls_has_point(puts, k) || ivls_intersects(dels, k)) {
            return MOOR_EDUPKEY;
        }
        rv = ivls_push(puts, k, moor_slice_make(NULL, 0));
    }
    return rv;
}

static int check_ops(const struct kv_op *ops, size_t n, size_t max,
                     unsigned depth);

/* etcd's checkTxnRequest: the largest of the three lists must fit in max,
 * and a nested txn gets what its parent left (max - the parent's largest
 * list). */
static int check_txn(const struct kv_txn_req *t, size_t max, unsigned depth)
{
    if (depth > KV_TXN_DEPTH_MAX) {
        return MOOR_EINVAL;
    }
    size_t opc = MOOR_MAX(t->n_compare, MOOR_MAX(t->n_success, t->n_failure));
    if (opc > max) {
        return MOOR_ETOOMANYOPS;
    }
    for (size_t i = 0; i < t->n_compare; i++) {
        if (t->compare[i].key.len == 0) {
            return MOOR_EEMPTYKEY;
        }
        if ((unsigned)t->compare[i].result > KV_CMP_NOT_EQUAL ||
            (unsigned)t->compare[i].target > KV_CMP_LEASE) {
            return MOOR_EINVAL;
        }
    }
    int rv = check_ops(t->success, t->n_success, max - opc, depth);
    if (rv == MOOR_OK) {
        rv = check_ops(t->failure, t->n_failure, max - opc, depth);
    }
    return rv;
}

static int check_ops(const struct kv_op *ops, size_t n, size_t max,
                     unsigned depth)
{
    for (size_t i = 0; i < n; i++) {
        const struct kv_op *op = &ops[i];
        int rv = MOOR_OK;
        switch (op->type) {
        case KV_OP_NONE:
            return MOOR_EKEYNOTFOUND;
        case KV_OP_RANGE:
            if (op->u.range.key.len == 0) {
                return MOOR_EEMPTYKEY;
            }
            if ((unsigned)op->u.range.sort_order > KV_SORT_DESCEND ||
                (unsigned)op->u.range.sort_target > KV_SORT_VALUE) {
                return MOOR_EINVAL;
            }
            break;
        case KV_OP_PUT:
            if (op->u.put.key.len == 0) {
                return MOOR_EEMPTYKEY;
            }
            if (op->u.put.ignore_value && op->u.put.value.len != 0) {
                return MOOR_EVALUEPROVIDED;
            }
            if (op->u.put.ignore_lease && op->u.put.lease != 0) {
                return MOOR_ELEASEPROVIDED;
            }
            break;
        case KV_OP_DELETE:
            if (op->u.del.key.len == 0) {
                return MOOR_EEMPTYKEY;
            }
            break;
        case KV_OP_TXN:
            rv = check_txn(&op->u.txn, max, depth + 1);
            break;
        default:
            return MOOR_EKEYNOTFOUND;
        }
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return MOOR_OK;
}

/* ---- 2. the path ------------------------------------------------------- */

static bool compare_one(const struct kv_compare *c, const struct kv_rec *r)
{
    int res = 0;
    switch (c->target) {
    case KV_CMP_VERSION:
        res = r != NULL ? (r->version > c->number) - (r->version < c->number)
                        : (0 > c->number) - (0 < c->number);
        break;
    case KV_CMP_CREATE:
        res = r != NULL ? (r->create > c->number) - (r->create < c->number)
                        : (0 > c->number) - (0 < c->number);
        break;
    case KV_CMP_MOD:
        res = r != NULL ? (r->mod > c->number) - (r->mod < c->number)
                        : (0 > c->number) - (0 < c->number);
        break;
    case KV_CMP_LEASE:
        res = r != NULL ? (r->lease > c->number) - (r->lease < c->number)
                        : (0 > c->number) - (0 < c->number);
        break;
    case KV_CMP_VALUE:
        res = moor_slice_cmp(kv__rec_value(r), c->value);
        break;
    }
    switch (c->result) {
    case KV_CMP_EQUAL:
        return res == 0;
    case KV_CMP_GREATER:
        return res > 0;
    case KV_CMP_LESS:
        return res < 0;
    case KV_CMP_NOT_EQUAL:
        return res != 0;
    }
    return false;
}

static bool compare_holds(struct kv_store *s, const struct kv_compare *c)
{
    struct moor_slice end = c->range_end;
    if (end.len == 0) {
        struct kv_rec **slot = kv__tree_find(&s->tree, c->key);
        const struct kv_rec *r =
            slot != NULL ? kv__visible(*slot, s->rev) : NULL;
        if (r == NULL && c->target == KV_CMP_VALUE) {
            return false;
        }
        return compare_one(c, r);
    }
    bool to_inf = end.len == 1 && end.ptr[0] == 0;
    bool any = false;
    struct kv_pos pos;
    kv__tree_seek(&s->tree, c->key, &pos);
    const struct kv_rec *head;
    while ((head = kv__pos_rec(&pos)) != NULL) {
        if (!to_inf && moor_slice_cmp(kv__rec_key(head), end) >= 0) {
            break;
        }
        kv__pos_next(&pos);
        if (!kv__rec_live(head)) {
            continue;
        }
        any = true;
        if (!compare_one(c, head)) {
            return false;
        }
    }
    if (!any) {
        return c->target != KV_CMP_VALUE && compare_one(c, NULL);
    }
    return true;
}

/* Appends the branch taken by t and its nested txns (preorder) to path and
 * checks the taken ops against the state before the txn. */
static int eval_path(struct kv_store *s, const struct kv_txn_req *t,
                     struct moor_buf *path, bool *writes)
{
    bool ok = true;
    for (size_t i = 0; i < t->n_compare && ok; i++) {
        ok = compare_holds(s, &t->compare[i]);
    }
    int rv = moor_buf_putc(path, ok ? 1 : 0);
    if (rv != MOOR_OK) {
        return rv;
    }
    const struct kv_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++) {
        const struct kv_op *op = &ops[i];
        switch (op->type) {
        case KV_OP_RANGE:
            if (op->u.range.revision > s->rev) {
                return MOOR_EFUTUREREV;
            }
            if (op->u.range.revision > 0 &&
                op->u.range.revision < s->compact_rev) {
                return MOOR_ECOMPACTED;
            }
            break;
        case KV_OP_PUT:
            *writes = true;
            rv = kv__check_put(s, &op->u.put);
            break;
        case KV_OP_DELETE:
            *writes = true;
            break;
        case KV_OP_TXN:
            rv = eval_path(s, &op->u.txn, path, writes);
            break;
        default:
            break;
        }
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return MOOR_OK;
}

/* ---- 3. apply ---------------------------------------------------------- */

void kv_txn_resp_init(struct kv_txn_resp *r)
{
    memset(r, 0, sizeof(*r));
}

void kv_txn_resp_close(struct kv_txn_resp *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct kv_op_resp *o = &r->responses[i];
        switch (o->type) {
        case KV_OP_RANGE:
            kv_range_resp_close(&o->u.range);
            break;
        case KV_OP_DELETE:
            kv_delete_resp_close(&o->u.del);
            break;
        case KV_OP_TXN:
            if (o->u.txn != NULL) {
                kv_txn_resp_close(o->u.txn);
                moor_free(o->u.txn);
            }
            break;
        default:
            break;
        }
    }
    moor_free(r->responses);
    memset(r, 0, sizeof(*r));
}

static int64_t read_rev(const struct kv_store *s, const struct kv__wtx *w)
{
    return w->sub > 0 ? w->rev : s->rev;
}

static int apply_path(struct kv_store *s, struct kv__wtx *w,
                      const struct kv_txn_req *t, const struct moor_buf *path,
                      size_t *pi, struct kv_txn_resp *resp)
{
    MOOR_ASSERT(*pi < path->len);
    resp->succeeded = path->ptr[(*pi)++] != 0;
    const struct kv_op *ops = resp->succeeded ? t->success : t->failure;
    size_t n = resp->succeeded ? t->n_success : t->n_failure;
    if (n == 0) {
        return MOOR_OK;
    }
    resp->responses = moor_calloc(n, sizeof(resp->responses[0]));
    if (resp->responses == NULL) {
        return MOOR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct kv_op *op = &ops[i];
        struct kv_op_resp *o = &resp->responses[i];
        o->type = op->type;
        resp->n = i + 1;
        int rv = MOOR_OK;
        const struct kv_rec *prev = NULL;
        switch (op->type) {
        case KV_OP_RANGE:
            rv = kv__range_at(s, &op->u.range, read_rev(s, w), &o->u.range);
            break;
        case KV_OP_PUT:
            rv = kv__put_key(s, w, &op->u.put, &prev);
            o->u.put.revision = w->rev;
            o->u.put.prev_kv = op->u.put.prev_kv ? prev : NULL;
            break;
        case KV_OP_DELETE:
            rv = kv__delete_range(s, w, &op->u.del, &o->u.del);
            o->u.del.revision = read_rev(s, w);
            break;
        case KV_OP_TXN:
            o->u.txn = moor_calloc(1, sizeof(*o->u.txn));
            if (o->u.txn == NULL) {
                return MOOR_ENOMEM;
            }
            rv = apply_path(s, w, &op->u.txn, path, pi, o->u.txn);
            o->u.txn->revision = read_rev(s, w);
            break;
        default:
            MOOR_ASSERT(false);
        }
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    return MOOR_OK;
}

int kv_txn(struct kv_store *s, uint64_t index, const struct kv_txn_req *req,
           struct kv_txn_resp *resp)
{
    kv_txn_resp_close(resp);
    resp->revision = s->rev;
    int rv;
    if (index != 0) {
        rv = kv__check_index(s, index);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    rv = check_txn(req, s->opt.max_txn_ops, 0);
    if (rv != MOOR_OK) {
        return rv;
    }
    struct ivls puts = {0}, dels = {0};
    rv = check_intervals(req->success, req->n_success, &puts, &dels);
    moor_free(puts.v);
    moor_free(dels.v);
    if (rv != MOOR_OK) {
        return rv;
    }
    memset(&puts, 0, sizeof(puts));
    memset(&dels, 0, sizeof(dels));
    rv = check_intervals(req->failure, req->n_failure, &puts, &dels);
    moor_free(puts.v);
    moor_free(dels.v);
    if (rv != MOOR_OK) {
        return rv;
    }
    struct moor_buf path;
    moor_buf_init(&path);
    bool writes = false;
    rv = eval_path(s, req, &path, &writes);
    if (rv == MOOR_OK && writes && index == 0) {
        rv = MOOR_EINVAL;
    }
    if (rv != MOOR_OK) {
        moor_buf_close(&path);
        return rv;
    }
    struct kv__wtx w = {s->rev + 1, 0};
    size_t pi = 0;
    rv = apply_path(s, &w, req, &path, &pi, resp);
    moor_buf_close(&path);
    if (w.sub > 0) {
        s->rev = w.rev;
    }
    resp->revision = s->rev;
    return rv;
}
