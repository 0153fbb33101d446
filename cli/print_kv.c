/*
 * print_kv.c: get, put, del, txn, watch and compaction responses.
 * The formats and the shared writer: print.c, print_int.h.
 */
#include <stdio.h>

#include "print_int.h"

static void j_range(struct mc__w *w, const Etcdserverpb__RangeResponse *r)
{
    bool f = true;
    mc__ws(w, "{");
    mc__j_header(w, &f, "header", r->header);
    mc__j_kvs(w, &f, "kvs", r->kvs, r->n_kvs);
    mc__jbool(w, &f, "more", r->more, true);
    mc__ji64(w, &f, "count", r->count, true);
    mc__ws(w, "}");
}

static void j_put(struct mc__w *w, const Etcdserverpb__PutResponse *r)
{
    bool f = true;
    mc__ws(w, "{");
    mc__j_header(w, &f, "header", r->header);
    if (r->prev_kv != NULL) {
        mc__jkey(w, &f, "prev_kv");
        mc__j_kv(w, r->prev_kv);
    }
    mc__ws(w, "}");
}

static void j_del(struct mc__w *w, const Etcdserverpb__DeleteRangeResponse *r)
{
    bool f = true;
    mc__ws(w, "{");
    mc__j_header(w, &f, "header", r->header);
    mc__ji64(w, &f, "deleted", r->deleted, true);
    mc__j_kvs(w, &f, "prev_kvs", r->prev_kvs, r->n_prev_kvs);
    mc__ws(w, "}");
}

static void j_txn(struct mc__w *w, const Etcdserverpb__TxnResponse *r)
{
    bool f = true;
    mc__ws(w, "{");
    mc__j_header(w, &f, "header", r->header);
    mc__jbool(w, &f, "succeeded", r->succeeded, true);
    if (r->n_responses > 0) {
        mc__jkey(w, &f, "responses");
        mc__ws(w, "[");
        for (size_t i = 0; i < r->n_responses; i++) {
            const Etcdserverpb__ResponseOp *op = r->responses[i];
            mc__ws(w, i > 0 ? ",{" : "{");
            /* A Go oneof is an interface field named after the oneof, and
             * its wrapper struct has no json tag: Go names on both. */
            switch (op->response_case) {
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
                mc__ws(w, "\"Response\":{\"ResponseRange\":");
                j_range(w, op->response_range);
                mc__ws(w, "}");
                break;
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
                mc__ws(w, "\"Response\":{\"ResponsePut\":");
                j_put(w, op->response_put);
                mc__ws(w, "}");
                break;
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
                mc__ws(w, "\"Response\":{\"ResponseDeleteRange\":");
                j_del(w, op->response_delete_range);
                mc__ws(w, "}");
                break;
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN:
                mc__ws(w, "\"Response\":{\"ResponseTxn\":");
                j_txn(w, op->response_txn);
                mc__ws(w, "}");
                break;
            default:
                break;
            }
            mc__ws(w, "}");
        }
        mc__ws(w, "]");
    }
    mc__ws(w, "}");
}

static void f_get(struct mc__w *w, const Etcdserverpb__RangeResponse *r)
{
    mc__f_hdr(w, r->header);
    for (size_t i = 0; i < r->n_kvs; i++) {
        mc__f_kv(w, "", r->kvs[i]);
    }
    mc__wf(w, "\"More\" : %s\n", r->more ? "true" : "false");
    mc__wf(w, "\"Count\" : %lld\n", (long long)r->count);
}

static void f_put(struct mc__w *w, const Etcdserverpb__PutResponse *r)
{
    mc__f_hdr(w, r->header);
    if (r->prev_kv != NULL) {
        mc__f_kv(w, "Prev", r->prev_kv);
    }
}

static void f_del(struct mc__w *w, const Etcdserverpb__DeleteRangeResponse *r)
{
    mc__f_hdr(w, r->header);
    mc__wf(w, "\"Deleted\" : %lld\n", (long long)r->deleted);
    for (size_t i = 0; i < r->n_prev_kvs; i++) {
        mc__f_kv(w, "Prev", r->prev_kvs[i]);
    }
}

static void s_get(struct mc__w *w, const struct mc_print *p,
                  const Etcdserverpb__RangeResponse *r)
{
    for (size_t i = 0; i < r->n_kvs; i++) {
        mc__s_kv(w, p, r->kvs[i]);
    }
}

static void s_put(struct mc__w *w, const struct mc_print *p,
                  const Etcdserverpb__PutResponse *r)
{
    mc__ws(w, "OK\n");
    if (r->prev_kv != NULL) {
        mc__s_kv(w, p, r->prev_kv);
    }
}

static void s_del(struct mc__w *w, const struct mc_print *p,
                  const Etcdserverpb__DeleteRangeResponse *r)
{
    mc__wf(w, "%lld\n", (long long)r->deleted);
    for (size_t i = 0; i < r->n_prev_kvs; i++) {
        mc__s_kv(w, p, r->prev_kvs[i]);
    }
}

/* ------------------------------------------------------------------------
 * KV responses
 * ---------------------------------------------------------------------- */

int mc_print_get(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__RangeResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        s_get(&w, p, r);
        break;
    case MC_FMT_JSON:
        j_range(&w, r);
        mc__ws(&w, "\n");
        break;
    case MC_FMT_FIELDS:
        f_get(&w, r);
        break;
    case MC_FMT_PROTOBUF:
        return mc__pack_raw(out, &r->base);
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_put(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__PutResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        s_put(&w, p, r);
        break;
    case MC_FMT_JSON:
        j_put(&w, r);
        mc__ws(&w, "\n");
        break;
    case MC_FMT_FIELDS:
        f_put(&w, r);
        break;
    case MC_FMT_PROTOBUF:
        return mc__pack_raw(out, &r->base);
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_del(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__DeleteRangeResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        s_del(&w, p, r);
        break;
    case MC_FMT_JSON:
        j_del(&w, r);
        mc__ws(&w, "\n");
        break;
    case MC_FMT_FIELDS:
        f_del(&w, r);
        break;
    case MC_FMT_PROTOBUF:
        return mc__pack_raw(out, &r->base);
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

static void s_txn(struct mc__w *w, const struct mc_print *p,
                  const Etcdserverpb__TxnResponse *r)
{
    mc__ws(w, r->succeeded ? "SUCCESS\n" : "FAILURE\n");
    for (size_t i = 0; i < r->n_responses; i++) {
        const Etcdserverpb__ResponseOp *op = r->responses[i];
        mc__ws(w, "\n");
        switch (op->response_case) {
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
            s_get(w, p, op->response_range);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
            s_put(w, p, op->response_put);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
            s_del(w, p, op->response_delete_range);
            break;
        default:
            mc__ws(w, "unexpected response\n");
            break;
        }
    }
}

static void f_txn(struct mc__w *w, const Etcdserverpb__TxnResponse *r)
{
    mc__f_hdr(w, r->header);
    mc__wf(w, "\"Succeeded\" : %s\n", r->succeeded ? "true" : "false");
    for (size_t i = 0; i < r->n_responses; i++) {
        const Etcdserverpb__ResponseOp *op = r->responses[i];
        switch (op->response_case) {
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
            f_get(w, op->response_range);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
            f_put(w, op->response_put);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
            f_del(w, op->response_delete_range);
            break;
        default:
            mc__ws(w, "\"Unknown\" : \"\"\n");
            break;
        }
    }
}

int mc_print_txn(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__TxnResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        s_txn(&w, p, r);
        break;
    case MC_FMT_JSON:
        j_txn(&w, r);
        mc__ws(&w, "\n");
        break;
    case MC_FMT_FIELDS:
        f_txn(&w, r);
        break;
    case MC_FMT_PROTOBUF:
        return mc__pack_raw(out, &r->base);
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

static const char *event_type_name(Mvccpb__Event__EventType t)
{
    return t == MVCCPB__EVENT__EVENT_TYPE__DELETE ? "DELETE" : "PUT";
}

int mc_print_watch(struct moor_buf *out, const struct mc_print *p,
                   const Etcdserverpb__WatchResponse *r)
{
    struct mc__w w = {out, MOOR_OK};
    static const Mvccpb__KeyValue empty_kv = MVCCPB__KEY_VALUE__INIT;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        for (size_t i = 0; i < r->n_events; i++) {
            const Mvccpb__Event *e = r->events[i];
            mc__wf(&w, "%s\n", event_type_name(e->type));
            if (e->prev_kv != NULL) {
                mc__s_kv(&w, p, e->prev_kv);
            }
            mc__s_kv(&w, p, e->kv != NULL ? e->kv : &empty_kv);
        }
        break;
    case MC_FMT_JSON: {
        /* clientv3.WatchResponse: Go field names, no omitempty. */
        bool f = true;
        mc__ws(&w, "{\"Header\":{");
        mc__j_header_fields(&w, &f, r->header);
        mc__ws(&w, "},\"Events\":");
        if (r->n_events == 0) {
            mc__ws(&w, "null");
        } else {
            mc__ws(&w, "[");
            for (size_t i = 0; i < r->n_events; i++) {
                const Mvccpb__Event *e = r->events[i];
                bool ef = true;
                mc__ws(&w, i > 0 ? ",{" : "{");
                mc__ji64(&w, &ef, "type", e->type, true);
                if (e->kv != NULL) {
                    mc__jkey(&w, &ef, "kv");
                    mc__j_kv(&w, e->kv);
                }
                if (e->prev_kv != NULL) {
                    mc__jkey(&w, &ef, "prev_kv");
                    mc__j_kv(&w, e->prev_kv);
                }
                mc__ws(&w, "}");
            }
            mc__ws(&w, "]");
        }
        mc__wf(&w,
               ",\"CompactRevision\":%lld,\"Canceled\":%s,\"Created\":%s}\n",
               (long long)r->compact_revision, r->canceled ? "true" : "false",
               r->created ? "true" : "false");
        break;
    }
    case MC_FMT_FIELDS:
        mc__f_hdr(&w, r->header);
        for (size_t i = 0; i < r->n_events; i++) {
            const Mvccpb__Event *e = r->events[i];
            mc__wf(&w, "\"Type\" : %s\n", event_type_name(e->type));
            if (e->prev_kv != NULL) {
                mc__f_kv(&w, "Prev", e->prev_kv);
            }
            mc__f_kv(&w, "", e->kv != NULL ? e->kv : &empty_kv);
        }
        break;
    case MC_FMT_PROTOBUF:
        for (size_t i = 0; i < r->n_events && w.rv == MOOR_OK; i++) {
            w.rv = mc__pack_raw(out, &r->events[i]->base);
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_compaction(struct moor_buf *out, const struct mc_print *p,
                        int64_t rev, const Etcdserverpb__CompactionResponse *r)
{
    /* etcdctl prints this line whatever the format. */
    (void)p;
    (void)r;
    return moor_buf_printf(out, "compacted revision %lld\n", (long long)rev);
}
