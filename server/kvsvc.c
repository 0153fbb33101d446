/*
 * kvsvc.c: etcd's KV service (Range, Put, DeleteRange, Txn, Compact) on
 * top of the node: request validation, translation between etcd's
 * protobuf messages and kv/'s C structs, proposal, and the answers.
 *
 * Writes are proposed as a moorpb.InternalRequest {id, request} and
 * answered when the entry is applied (srv_kv_apply). Linearizable reads
 * (Range, and a Txn without writes) wait for a read index; serializable
 * Ranges are served at once from the local store.
 *
 * Response rows are encoded straight from the store's records: the
 * KeyValue messages point into kv/'s memory (valid until the next
 * compaction step, which cannot run while we encode), so the only copy of
 * a value is the one into the response bytes.
 */
#include <stdlib.h>

#include "server_int.h"

/* ------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------- */
static struct moor_slice pb_slice(ProtobufCBinaryData b)
{
    return moor_slice_make(b.data, b.len);
}

static ProtobufCBinaryData pb_bytes(struct moor_slice s)
{
    ProtobufCBinaryData b;
    b.len = s.len;
    b.data = (uint8_t *)(uintptr_t)s.ptr; /* encoded only, never written */
    return b;
}

/* Room for a usual request decoded on the stack (moor_pb_scratch): a Put
 * of a short key and a value of a few hundred bytes fits, anything bigger
 * spills to the heap. */
#define SCRATCH_BYTES 2048u

/* srv_decode into s: the same bound and the same answers on failure, but
 * the message lives in s's memory. Free it with s->alloc. */
static ProtobufCMessage *decode_scratch(struct srv_node *n,
                                        struct rpc_call *call,
                                        const ProtobufCMessageDescriptor *desc,
                                        struct moor_slice msg,
                                        struct moor_pb_scratch *s)
{
    ProtobufCMessage *m = NULL;
    int rv = moor_pb_unpack_with(
        desc, &s->alloc, msg.ptr, msg.len,
        (size_t)n->cfg->max_request_bytes + 512u * 1024u, &m);
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv == MOOR_ETOOBIG ? MOOR_ETOOBIG : MOOR_EPROTO);
        return NULL;
    }
    return m;
}

/* srv_reply for the usual small answer: packed on the stack instead of a
 * heap buffer (rpc_call_send copies it anyway). */
static void reply_small(struct rpc_call *call, const ProtobufCMessage *msg)
{
    uint8_t buf[256];
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > sizeof(buf)) {
        srv_reply(call, msg);
        return;
    }
    protobuf_c_message_pack(msg, buf);
    int rv = rpc_call_send(call, moor_slice_make(buf, len));
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
        return;
    }
    rpc_call_finish(call, RPC_OK, NULL);
}

/* Allocations made while translating one request or response, freed
 * together. */
struct arena
{
    void **ptrs;
    size_t n, cap;
    bool failed;
};

static void *arena_alloc(struct arena *a, size_t size)
{
    if (a->failed) {
        return NULL;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        void **p = moor_realloc(a->ptrs, cap * sizeof(*p));
        if (p == NULL) {
            a->failed = true;
            return NULL;
        }
        a->ptrs = p;
        a->cap = cap;
    }
    void *p = moor_calloc(1, size == 0 ? 1 : size);
    if (p == NULL) {
        a->failed = true;
        return NULL;
    }
    a->ptrs[a->n++] = p;
    return p;
}

static void arena_free(struct arena *a)
{
    for (size_t i = 0; i < a->n; i++) {
        moor_free(a->ptrs[i]);
    }
    moor_free(a->ptrs);
    memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------------------------
 * Requests: protobuf -> kv
 * ---------------------------------------------------------------------- */
static void range_from_pb(const Etcdserverpb__RangeRequest *in,
                          struct kv_range_req *out)
{
    memset(out, 0, sizeof(*out));
    out->key = pb_slice(in->key);
    out->range_end = pb_slice(in->range_end);
    out->limit = in->limit;
    out->revision = in->revision;
    out->sort_order = (enum kv_sort_order)in->sort_order;
    out->sort_target = (enum kv_sort_target)in->sort_target;
    out->keys_only = in->keys_only;
    out->count_only = in->count_only;
    out->min_mod_revision = in->min_mod_revision;
    out->max_mod_revision = in->max_mod_revision;
    out->min_create_revision = in->min_create_revision;
    out->max_create_revision = in->max_create_revision;
}

static void put_from_pb(const Etcdserverpb__PutRequest *in,
                        struct kv_put_req *out)
{
    memset(out, 0, sizeof(*out));
    out->key = pb_slice(in->key);
    out->value = pb_slice(in->value);
    out->lease = in->lease;
    out->prev_kv = in->prev_kv;
    out->ignore_value = in->ignore_value;
    out->ignore_lease = in->ignore_lease;
}

static void delete_from_pb(const Etcdserverpb__DeleteRangeRequest *in,
                           struct kv_delete_req *out)
{
    memset(out, 0, sizeof(*out));
    out->key = pb_slice(in->key);
    out->range_end = pb_slice(in->range_end);
    out->prev_kv = in->prev_kv;
}

/* The number a compare checks: the union member matching its target (a
 * missing or mismatched member reads as zero, as Go's oneof getters do). */
static int64_t compare_number(const Etcdserverpb__Compare *c)
{
    switch (c->target) {
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
        return c->target_union_case ==
                       ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION
                   ? c->version
                   : 0;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
        return c->target_union_case ==
                       ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION
                   ? c->create_revision
                   : 0;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
        return c->target_union_case ==
                       ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION
                   ? c->mod_revision
                   : 0;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
        return c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE
                   ? c->lease
                   : 0;
    default:
        return 0;
    }
}

static int txn_from_pb(const Etcdserverpb__TxnRequest *in,
                       struct kv_txn_req *out, struct arena *a);

static int ops_from_pb(Etcdserverpb__RequestOp *const *in, size_t n,
                       const struct kv_op **out, struct arena *a)
{
    struct kv_op *ops = arena_alloc(a, n * sizeof(*ops));
    if (ops == NULL) {
        return MOOR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const Etcdserverpb__RequestOp *op = in[i];
        switch (op->request_case) {
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
            ops[i].type = KV_OP_RANGE;
            range_from_pb(op->request_range, &ops[i].u.range);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
            ops[i].type = KV_OP_PUT;
            put_from_pb(op->request_put, &ops[i].u.put);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
            ops[i].type = KV_OP_DELETE;
            delete_from_pb(op->request_delete_range, &ops[i].u.del);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN: {
            ops[i].type = KV_OP_TXN;
            int rv = txn_from_pb(op->request_txn, &ops[i].u.txn, a);
            if (rv != MOOR_OK) {
                return rv;
            }
            break;
        }
        default:
            ops[i].type = KV_OP_NONE;
        }
    }
    *out = ops;
    return MOOR_OK;
}

static int txn_from_pb(const Etcdserverpb__TxnRequest *in,
                       struct kv_txn_req *out, struct arena *a)
{
    memset(out, 0, sizeof(*out));
    struct kv_compare *cmps = arena_alloc(a, in->n_compare * sizeof(*cmps));
    if (cmps == NULL) {
        return MOOR_ENOMEM;
    }
    for (size_t i = 0; i < in->n_compare; i++) {
        const Etcdserverpb__Compare *c = in->compare[i];
        cmps[i].result = (enum kv_cmp_result)c->result;
        cmps[i].target = (enum kv_cmp_target)c->target;
        cmps[i].key = pb_slice(c->key);
        cmps[i].range_end = pb_slice(c->range_end);
        cmps[i].number = compare_number(c);
        if (c->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE) {
            cmps[i].value = pb_slice(c->value);
        }
    }
    out->compare = cmps;
    out->n_compare = in->n_compare;
    int rv = ops_from_pb(in->success, in->n_success, &out->success, a);
    if (rv != MOOR_OK) {
        return rv;
    }
    out->n_success = in->n_success;
    rv = ops_from_pb(in->failure, in->n_failure, &out->failure, a);
    out->n_failure = in->n_failure;
    return rv;
}

/* True when no branch of the txn (nested ones included) writes. */
static bool txn_is_read_only(const Etcdserverpb__TxnRequest *t)
{
    for (int branch = 0; branch < 2; branch++) {
        Etcdserverpb__RequestOp **ops = branch ? t->failure : t->success;
        size_t n = branch ? t->n_failure : t->n_success;
        for (size_t i = 0; i < n; i++) {
            switch (ops[i]->request_case) {
            case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
            case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
                return false;
            case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
                if (!txn_is_read_only(ops[i]->request_txn)) {
                    return false;
                }
                break;
            default:
                break;
            }
        }
    }
    return true;
}

/* ------------------------------------------------------------------------
 * Responses: kv -> protobuf
 * ---------------------------------------------------------------------- */
static Mvccpb__KeyValue *kv_to_pb(const struct kv_rec *rec, bool keys_only,
                                  struct arena *a)
{
    Mvccpb__KeyValue *kv = arena_alloc(a, sizeof(*kv));
    if (kv == NULL) {
        return NULL;
    }
    mvccpb__key_value__init(kv);
    struct kv_kv row;
    kv_row_get(rec, &row);
    kv->key = pb_bytes(row.key);
    if (!keys_only) {
        kv->value = pb_bytes(row.value);
    }
    kv->create_revision = row.create_revision;
    kv->mod_revision = row.mod_revision;
    kv->version = row.version;
    kv->lease = row.lease;
    return kv;
}

static Mvccpb__KeyValue **rows_to_pb(const struct kv_rec *const *rows, size_t n,
                                     bool keys_only, struct arena *a)
{
    Mvccpb__KeyValue **out = arena_alloc(a, n * sizeof(*out));
    for (size_t i = 0; out != NULL && i < n; i++) {
        out[i] = kv_to_pb(rows[i], keys_only, a);
    }
    return a->failed ? NULL : out;
}

/* Headers inside a txn's responses carry only the revision, as etcd's. */
static Etcdserverpb__ResponseHeader *inner_header(int64_t rev, struct arena *a)
{
    Etcdserverpb__ResponseHeader *h = arena_alloc(a, sizeof(*h));
    if (h != NULL) {
        etcdserverpb__response_header__init(h);
        h->revision = rev;
    }
    return h;
}

static void range_resp_to_pb(const struct kv_range_resp *r,
                             Etcdserverpb__RangeResponse *out, struct arena *a)
{
    out->kvs = rows_to_pb(r->rows, r->n, r->keys_only, a);
    out->n_kvs = r->n;
    out->more = r->more;
    out->count = r->count;
}

static void delete_resp_to_pb(const struct kv_delete_resp *r,
                              Etcdserverpb__DeleteRangeResponse *out,
                              struct arena *a)
{
    out->deleted = r->deleted;
    out->prev_kvs = rows_to_pb(r->prev_kvs, r->n, false, a);
    out->n_prev_kvs = r->n;
}

static void txn_resp_to_pb(const struct kv_txn_resp *r,
                           Etcdserverpb__TxnResponse *out, struct arena *a)
{
    out->succeeded = r->succeeded;
    out->n_responses = r->n;
    out->responses = arena_alloc(a, r->n * sizeof(*out->responses));
    for (size_t i = 0; out->responses != NULL && i < r->n; i++) {
        const struct kv_op_resp *op = &r->responses[i];
        Etcdserverpb__ResponseOp *ro = arena_alloc(a, sizeof(*ro));
        if (ro == NULL) {
            return;
        }
        etcdserverpb__response_op__init(ro);
        out->responses[i] = ro;
        switch (op->type) {
        case KV_OP_RANGE: {
            Etcdserverpb__RangeResponse *x = arena_alloc(a, sizeof(*x));
            if (x == NULL) {
                return;
            }
            etcdserverpb__range_response__init(x);
            x->header = inner_header(op->u.range.revision, a);
            range_resp_to_pb(&op->u.range, x, a);
            ro->response_case =
                ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
            ro->response_range = x;
            break;
        }
        case KV_OP_PUT: {
            Etcdserverpb__PutResponse *x = arena_alloc(a, sizeof(*x));
            if (x == NULL) {
                return;
            }
            etcdserverpb__put_response__init(x);
            x->header = inner_header(op->u.put.revision, a);
            if (op->u.put.prev_kv != NULL) {
                x->prev_kv = kv_to_pb(op->u.put.prev_kv, false, a);
            }
            ro->response_case =
                ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
            ro->response_put = x;
            break;
        }
        case KV_OP_DELETE: {
            Etcdserverpb__DeleteRangeResponse *x = arena_alloc(a, sizeof(*x));
            if (x == NULL) {
                return;
            }
            etcdserverpb__delete_range_response__init(x);
            x->header = inner_header(op->u.del.revision, a);
            delete_resp_to_pb(&op->u.del, x, a);
            ro->response_case =
                ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
            ro->response_delete_range = x;
            break;
        }
        case KV_OP_TXN: {
            Etcdserverpb__TxnResponse *x = arena_alloc(a, sizeof(*x));
            if (x == NULL) {
                return;
            }
            etcdserverpb__txn_response__init(x);
            x->header = inner_header(op->u.txn->revision, a);
            txn_resp_to_pb(op->u.txn, x, a);
            ro->response_case =
                ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
            ro->response_txn = x;
            break;
        }
        default:
            break;
        }
    }
}

/* ------------------------------------------------------------------------
 * Serving reads
 * ---------------------------------------------------------------------- */
static void serve_range(struct srv_node *n, struct rpc_call *call,
                        const Etcdserverpb__RangeRequest *req)
{
    srv_obs_kv_request(n, MOORPB__INTERNAL_REQUEST__REQUEST_RANGE);
    struct kv_range_req kr;
    range_from_pb(req, &kr);
    struct kv_range_resp r;
    kv_range_resp_init(&r);
    int rv = kv_range(n->kv, &kr, &r);
    if (rv != MOOR_OK) {
        kv_range_resp_close(&r);
        srv_call_fail(call, rv);
        return;
    }
    struct arena a = {0};
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    srv_header_fill(n, &h, r.revision);
    Etcdserverpb__RangeResponse out = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    out.header = &h;
    range_resp_to_pb(&r, &out, &a);
    if (a.failed) {
        srv_call_fail(call, MOOR_ENOMEM);
    } else {
        srv_reply(call, &out.base);
    }
    arena_free(&a);
    kv_range_resp_close(&r);
}

static void serve_txn(struct srv_node *n, struct rpc_call *call, uint64_t index,
                      const Etcdserverpb__TxnRequest *req)
{
    struct arena a = {0};
    struct kv_txn_req kr;
    int rv = txn_from_pb(req, &kr, &a);
    struct kv_txn_resp r;
    kv_txn_resp_init(&r);
    if (rv == MOOR_OK) {
        rv = kv_txn(n->kv, index, &kr, &r);
    }
    srv_apply_check(n, index, rv);
    if (call != NULL) {
        srv_obs_applied(rpc_call_user(call));
    }
    if (call == NULL) {
        kv_txn_resp_close(&r);
        arena_free(&a);
        return; /* applied for the state; nobody waits here */
    }
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
    } else {
        Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
        srv_header_fill(n, &h, r.revision);
        Etcdserverpb__TxnResponse out = ETCDSERVERPB__TXN_RESPONSE__INIT;
        out.header = &h;
        txn_resp_to_pb(&r, &out, &a);
        if (a.failed) {
            srv_call_fail(call, MOOR_ENOMEM);
        } else {
            srv_reply(call, &out.base);
        }
    }
    kv_txn_resp_close(&r);
    arena_free(&a);
}

void srv_kv_serve_read(struct srv_node *n, struct srv_waiter *w)
{
    if (w->kind == SRV_REQ_RANGE) {
        serve_range(n, w->call, (const Etcdserverpb__RangeRequest *)w->req);
    } else {
        serve_txn(n, w->call, 0, (const Etcdserverpb__TxnRequest *)w->req);
    }
}

/* ------------------------------------------------------------------------
 * Applying committed requests
 * ---------------------------------------------------------------------- */

/* The waiter of request id on this member, if it is of kind and its client
 * is still there; NULL otherwise. The waiter is freed by the caller. */
static struct srv_waiter *waiter_take(struct srv_node *n, uint64_t id,
                                      uint8_t kind)
{
    struct srv_waiter *w = srv_waiter_find(n, id);
    if (w != NULL && w->kind != kind) {
        return NULL;
    }
    return w;
}

static void apply_put(struct srv_node *n, uint64_t index,
                      const Moorpb__InternalRequest *ir)
{
    struct kv_put_req kr;
    put_from_pb(ir->put, &kr);
    struct kv_put_resp r = {0};
    int rv = kv_put(n->kv, index, &kr, &r);
    srv_apply_check(n, index, rv);
    struct srv_waiter *w = waiter_take(n, ir->id, SRV_REQ_PUT);
    if (w == NULL) {
        return;
    }
    srv_obs_applied(w);
    if (w->call != NULL) {
        if (rv != MOOR_OK) {
            srv_call_fail(w->call, rv);
        } else {
            struct arena a = {0};
            Etcdserverpb__ResponseHeader h =
                ETCDSERVERPB__RESPONSE_HEADER__INIT;
            srv_header_fill(n, &h, r.revision);
            Etcdserverpb__PutResponse out = ETCDSERVERPB__PUT_RESPONSE__INIT;
            out.header = &h;
            if (r.prev_kv != NULL) {
                out.prev_kv = kv_to_pb(r.prev_kv, false, &a);
            }
            reply_small(w->call, &out.base);
            arena_free(&a);
        }
    }
    srv_waiter_free(n, w);
}

static void apply_delete(struct srv_node *n, uint64_t index,
                         const Moorpb__InternalRequest *ir)
{
    struct kv_delete_req kr;
    delete_from_pb(ir->delete_range, &kr);
    struct kv_delete_resp r;
    kv_delete_resp_init(&r);
    int rv = kv_delete(n->kv, index, &kr, &r);
    srv_apply_check(n, index, rv);
    struct srv_waiter *w = waiter_take(n, ir->id, SRV_REQ_DELETE);
    srv_obs_applied(w);
    if (w != NULL && w->call != NULL) {
        if (rv != MOOR_OK) {
            srv_call_fail(w->call, rv);
        } else {
            struct arena a = {0};
            Etcdserverpb__ResponseHeader h =
                ETCDSERVERPB__RESPONSE_HEADER__INIT;
            srv_header_fill(n, &h, r.revision);
            Etcdserverpb__DeleteRangeResponse out =
                ETCDSERVERPB__DELETE_RANGE_RESPONSE__INIT;
            out.header = &h;
            delete_resp_to_pb(&r, &out, &a);
            srv_reply(w->call, &out.base);
            arena_free(&a);
        }
    }
    if (w != NULL) {
        srv_waiter_free(n, w);
    }
    kv_delete_resp_close(&r);
}

static void apply_compact(struct srv_node *n, uint64_t index,
                          const Moorpb__InternalRequest *ir)
{
    int rv = kv_compact(n->kv, index, ir->compaction->revision);
    srv_apply_check(n, index, rv);
    if (rv == MOOR_OK) {
        MOOR_LOG_INFO("kv", "compaction", "revision=%lld",
                      (long long)ir->compaction->revision);
    }
    struct srv_waiter *w = waiter_take(n, ir->id, SRV_REQ_COMPACT);
    if (w == NULL) {
        return;
    }
    srv_obs_applied(w);
    if (w->call != NULL) {
        if (rv != MOOR_OK) {
            srv_call_fail(w->call, rv);
        } else {
            Etcdserverpb__ResponseHeader h =
                ETCDSERVERPB__RESPONSE_HEADER__INIT;
            srv_header_fill(n, &h, kv_store_revision(n->kv));
            Etcdserverpb__CompactionResponse out =
                ETCDSERVERPB__COMPACTION_RESPONSE__INIT;
            out.header = &h;
            srv_reply(w->call, &out.base);
        }
    }
    srv_waiter_free(n, w);
}

void srv_kv_apply(struct srv_node *n, uint64_t index, struct moor_slice data)
{
    /* Nothing below keeps a pointer into the request past this call. */
    uint8_t mem[SCRATCH_BYTES];
    struct moor_pb_scratch scratch;
    moor_pb_scratch_init(&scratch, mem, sizeof(mem));
    ProtobufCMessage *m = NULL;
    int rv =
        moor_pb_unpack_with(&moorpb__internal_request__descriptor,
                            &scratch.alloc, data.ptr, data.len, data.len, &m);
    if (rv != MOOR_OK) {
        /* Every member sees the same bytes, so every member skips it. */
        MOOR_LOG_ERROR("kv", "undecodable entry skipped", "index=%llu",
                       (unsigned long long)index);
        kv_store_note_applied(n->kv, index);
        return;
    }
    const Moorpb__InternalRequest *ir = (const Moorpb__InternalRequest *)m;
    srv_obs_kv_request(n, (int)ir->request_case);
    switch (ir->request_case) {
    case MOORPB__INTERNAL_REQUEST__REQUEST_PUT:
        apply_put(n, index, ir);
        break;
    case MOORPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE:
        apply_delete(n, index, ir);
        break;
    case MOORPB__INTERNAL_REQUEST__REQUEST_TXN: {
        struct srv_waiter *w = waiter_take(n, ir->id, SRV_REQ_TXN);
        serve_txn(n, w != NULL ? w->call : NULL, index, ir->txn);
        if (w != NULL) {
            srv_waiter_free(n, w);
        }
        break;
    }
    case MOORPB__INTERNAL_REQUEST__REQUEST_COMPACTION:
        apply_compact(n, index, ir);
        break;
    case MOORPB__INTERNAL_REQUEST__REQUEST_ALARM:
        srv_alarm_apply(n, index, ir);
        break;
    default:
        if (!srv_lease_apply(n, index, ir) &&
            !srv_members_apply(n, index, ir)) {
            kv_store_note_applied(n->kv, index);
        }
        break;
    }
    protobuf_c_message_free_unpacked(m, &scratch.alloc);
}

/* ------------------------------------------------------------------------
 * Handlers
 * ---------------------------------------------------------------------- */

static void on_range(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    ProtobufCMessage *m =
        srv_decode(n, call, &etcdserverpb__range_request__descriptor, msg);
    if (m == NULL) {
        return;
    }
    Etcdserverpb__RangeRequest *req = (Etcdserverpb__RangeRequest *)m;
    if (req->key.len == 0) {
        srv_call_fail(call, MOOR_EEMPTYKEY);
    } else if (req->serializable) {
        serve_range(n, call, req);
    } else {
        struct srv_waiter *w = srv_waiter_new(n, SRV_REQ_RANGE, call);
        if (w == NULL) {
            srv_call_fail(call, MOOR_EBUSY);
        } else {
            w->req = m;
            m = NULL;
            int rv = srv_node_read(n, w);
            if (rv != MOOR_OK) {
                srv_call_fail(call, rv);
                srv_waiter_free(n, w);
            }
        }
    }
    if (m != NULL) {
        protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
    }
}

static void on_put(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    uint8_t mem[SCRATCH_BYTES];
    struct moor_pb_scratch scratch;
    moor_pb_scratch_init(&scratch, mem, sizeof(mem));
    ProtobufCMessage *m = decode_scratch(
        n, call, &etcdserverpb__put_request__descriptor, msg, &scratch);
    if (m == NULL) {
        return;
    }
    Etcdserverpb__PutRequest *req = (Etcdserverpb__PutRequest *)m;
    if (req->key.len == 0) {
        srv_call_fail(call, MOOR_EEMPTYKEY);
    } else {
        /* Proposing encodes ir: nothing keeps req after this. */
        Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
        ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_PUT;
        ir.put = req;
        srv_propose_request(n, call, SRV_REQ_PUT, &ir);
    }
    protobuf_c_message_free_unpacked(m, &scratch.alloc);
}

static void on_delete_range(struct rpc_call *call, struct moor_slice msg,
                            void *arg)
{
    struct srv_node *n = arg;
    ProtobufCMessage *m = srv_decode(
        n, call, &etcdserverpb__delete_range_request__descriptor, msg);
    if (m == NULL) {
        return;
    }
    Etcdserverpb__DeleteRangeRequest *req =
        (Etcdserverpb__DeleteRangeRequest *)m;
    if (req->key.len == 0) {
        srv_call_fail(call, MOOR_EEMPTYKEY);
    } else {
        Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
        ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_DELETE_RANGE;
        ir.delete_range = req;
        srv_propose_request(n, call, SRV_REQ_DELETE, &ir);
    }
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
}

/* etcd's checks before a txn is proposed (v3rpc/key.go checkTxnRequest):
 * the op limit per level, no empty op. The rest (duplicate keys, ignore_*
 * misuse) kv checks when it applies. */
static int txn_check(const Etcdserverpb__TxnRequest *t, uint32_t max_ops)
{
    if (t->n_compare > max_ops || t->n_success > max_ops ||
        t->n_failure > max_ops) {
        return MOOR_ETOOMANYOPS;
    }
    for (int branch = 0; branch < 2; branch++) {
        Etcdserverpb__RequestOp **ops = branch ? t->failure : t->success;
        size_t n = branch ? t->n_failure : t->n_success;
        for (size_t i = 0; i < n; i++) {
            const Etcdserverpb__RequestOp *op = ops[i];
            switch (op->request_case) {
            case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
                if (op->request_range->key.len == 0) {
                    return MOOR_EEMPTYKEY;
                }
                break;
            case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
                if (op->request_put->key.len == 0) {
                    return MOOR_EEMPTYKEY;
                }
                break;
            case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
                if (op->request_delete_range->key.len == 0) {
                    return MOOR_EEMPTYKEY;
                }
                break;
            case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN: {
                int rv = txn_check(op->request_txn, max_ops);
                if (rv != MOOR_OK) {
                    return rv;
                }
                break;
            }
            default:
                return MOOR_EKEYNOTFOUND; /* an empty RequestOp */
            }
        }
    }
    return MOOR_OK;
}

static void on_txn(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    ProtobufCMessage *m =
        srv_decode(n, call, &etcdserverpb__txn_request__descriptor, msg);
    if (m == NULL) {
        return;
    }
    Etcdserverpb__TxnRequest *req = (Etcdserverpb__TxnRequest *)m;
    int rv = txn_check(req, n->cfg->max_txn_ops);
    if (rv != MOOR_OK) {
        srv_call_fail(call, rv);
    } else if (txn_is_read_only(req)) {
        /* etcd serves a txn without writes as a linearizable read. */
        struct srv_waiter *w = srv_waiter_new(n, SRV_REQ_TXN_RO, call);
        if (w == NULL) {
            srv_call_fail(call, MOOR_EBUSY);
        } else {
            w->req = m;
            m = NULL;
            rv = srv_node_read(n, w);
            if (rv != MOOR_OK) {
                srv_call_fail(call, rv);
                srv_waiter_free(n, w);
            }
        }
    } else {
        Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
        ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_TXN;
        ir.txn = req;
        srv_propose_request(n, call, SRV_REQ_TXN, &ir);
    }
    if (m != NULL) {
        protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
    }
}

static void on_compact(struct rpc_call *call, struct moor_slice msg, void *arg)
{
    struct srv_node *n = arg;
    ProtobufCMessage *m =
        srv_decode(n, call, &etcdserverpb__compaction_request__descriptor, msg);
    if (m == NULL) {
        return;
    }
    Moorpb__InternalRequest ir = MOORPB__INTERNAL_REQUEST__INIT;
    ir.request_case = MOORPB__INTERNAL_REQUEST__REQUEST_COMPACTION;
    ir.compaction = (Etcdserverpb__CompactionRequest *)m;
    srv_propose_request(n, call, SRV_REQ_COMPACT, &ir);
    protobuf_c_message_free_unpacked(m, &moor_pb_allocator);
}

int srv_kv_register(struct srv_node *n, struct rpc_server *srv)
{
    static const struct srv_method methods[] = {
        {"/etcdserverpb.KV/Range", on_range, NULL},
        {"/etcdserverpb.KV/Put", on_put, NULL},
        {"/etcdserverpb.KV/DeleteRange", on_delete_range, NULL},
        {"/etcdserverpb.KV/Txn", on_txn, NULL},
        {"/etcdserverpb.KV/Compact", on_compact, NULL},
    };
    return srv_register_methods(n, srv, methods, MOOR_ARRAY_LEN(methods));
}
