/*
 * print.c: etcdctl 3.4's output formats, response by response.
 *
 * simple   etcdctl's printer_simple.go: "OK", key/value lines, one line
 *          per row of the table commands joined with ", ".
 * json     Go's encoding/json of the structs etcdctl prints: the gogo
 *          protobuf structs use the proto field names with omitempty
 *          (zero values left out), int64/uint64 as numbers, bytes as
 *          base64; clientv3's wrapper structs (lease responses, watch
 *          responses, endpoint lists) keep their Go names and no omitempty.
 * fields   printer_fields.go: "Name" : value lines, strings as Go %q.
 * table    tablewriter, only for the member and endpoint commands.
 * protobuf the response message's own bytes.
 *
 * Every function appends to a moor_buf through a small writer whose error
 * is sticky (the first ENOMEM wins and is returned at the end).
 */
#include <stdarg.h>
#include <stdio.h>

#include "cli_int.h"

struct w
{
    struct moor_buf *b;
    int rv;
};

__attribute__((format(printf, 2, 3))) static void wf(struct w *w,
                                                     const char *fmt, ...)
{
    if (w->rv != MOOR_OK) {
        return;
    }
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        w->rv = MOOR_EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        w->rv = moor_buf_append(w->b, small, (size_t)n);
        return;
    }
    w->rv = moor_buf_reserve(w->b, (size_t)n + 1);
    if (w->rv == MOOR_OK) {
        va_start(ap, fmt);
        vsnprintf((char *)w->b->ptr + w->b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        w->b->len += (size_t)n;
    }
}

static void wb(struct w *w, const void *p, size_t n)
{
    if (w->rv == MOOR_OK) {
        w->rv = moor_buf_append(w->b, p, n);
    }
}

static void ws(struct w *w, const char *s)
{
    wb(w, s, strlen(s));
}

static void wquote(struct w *w, const void *p, size_t n)
{
    if (w->rv == MOOR_OK) {
        w->rv = mc_goquote_append(w->b, p, n);
    }
}

static void wjstr(struct w *w, const char *s)
{
    if (w->rv == MOOR_OK) {
        w->rv = mc_json_string_append(w->b, s, s != NULL ? strlen(s) : 0);
    }
}

static void wb64(struct w *w, ProtobufCBinaryData d)
{
    wb(w, "\"", 1);
    if (w->rv == MOOR_OK) {
        w->rv = mc_base64_append(w->b, d.data, d.len);
    }
    wb(w, "\"", 1);
}

/* Go's %016x of an int64 (a negative value keeps its sign). */
static void wlease(struct w *w, int64_t id)
{
    if (id < 0) {
        wf(w, "-%015llx", (unsigned long long)(-(id + 1)) + 1);
    } else {
        wf(w, "%016llx", (unsigned long long)id);
    }
}

const char *mc_print_unsupported_text(enum mc_format fmt)
{
    if (fmt == MC_FMT_TABLE) {
        return "table not supported as output format";
    }
    if (fmt == MC_FMT_FIELDS) {
        return "fields not supported as output format";
    }
    return "only support simple or json as output format";
}

static int pack_raw(struct moor_buf *out, const ProtobufCMessage *m)
{
    return moor_pb_pack(m, out);
}

/* ------------------------------------------------------------------------
 * JSON pieces
 * ---------------------------------------------------------------------- */
static void jkey(struct w *w, bool *first, const char *key)
{
    if (!*first) {
        ws(w, ",");
    }
    *first = false;
    if (key != NULL) {
        wf(w, "\"%s\":", key);
    }
}

static void ju64(struct w *w, bool *first, const char *key, uint64_t v,
                 bool omitempty)
{
    if (v == 0 && omitempty) {
        return;
    }
    jkey(w, first, key);
    wf(w, "%llu", (unsigned long long)v);
}

static void ji64(struct w *w, bool *first, const char *key, int64_t v,
                 bool omitempty)
{
    if (v == 0 && omitempty) {
        return;
    }
    jkey(w, first, key);
    wf(w, "%lld", (long long)v);
}

static void jbool(struct w *w, bool *first, const char *key, bool v,
                  bool omitempty)
{
    if (!v && omitempty) {
        return;
    }
    jkey(w, first, key);
    ws(w, v ? "true" : "false");
}

static void jbytes(struct w *w, bool *first, const char *key,
                   ProtobufCBinaryData d)
{
    if (d.len == 0) {
        return;
    }
    jkey(w, first, key);
    wb64(w, d);
}

/* The four header fields into an open object (omitempty each). */
static void j_header_fields(struct w *w, bool *first,
                            const Etcdserverpb__ResponseHeader *h)
{
    if (h == NULL) {
        return;
    }
    ju64(w, first, "cluster_id", h->cluster_id, true);
    ju64(w, first, "member_id", h->member_id, true);
    ji64(w, first, "revision", h->revision, true);
    ju64(w, first, "raft_term", h->raft_term, true);
}

static void j_header(struct w *w, bool *first, const char *key,
                     const Etcdserverpb__ResponseHeader *h)
{
    if (h == NULL) {
        return;
    }
    jkey(w, first, key);
    bool f = true;
    ws(w, "{");
    j_header_fields(w, &f, h);
    ws(w, "}");
}

static void j_kv(struct w *w, const Mvccpb__KeyValue *kv)
{
    bool f = true;
    ws(w, "{");
    jbytes(w, &f, "key", kv->key);
    ji64(w, &f, "create_revision", kv->create_revision, true);
    ji64(w, &f, "mod_revision", kv->mod_revision, true);
    ji64(w, &f, "version", kv->version, true);
    jbytes(w, &f, "value", kv->value);
    ji64(w, &f, "lease", kv->lease, true);
    ws(w, "}");
}

static void j_kvs(struct w *w, bool *first, const char *key,
                  Mvccpb__KeyValue *const *kvs, size_t n)
{
    if (n == 0) {
        return;
    }
    jkey(w, first, key);
    ws(w, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            ws(w, ",");
        }
        j_kv(w, kvs[i]);
    }
    ws(w, "]");
}

static void j_range(struct w *w, const Etcdserverpb__RangeResponse *r)
{
    bool f = true;
    ws(w, "{");
    j_header(w, &f, "header", r->header);
    j_kvs(w, &f, "kvs", r->kvs, r->n_kvs);
    jbool(w, &f, "more", r->more, true);
    ji64(w, &f, "count", r->count, true);
    ws(w, "}");
}

static void j_put(struct w *w, const Etcdserverpb__PutResponse *r)
{
    bool f = true;
    ws(w, "{");
    j_header(w, &f, "header", r->header);
    if (r->prev_kv != NULL) {
        jkey(w, &f, "prev_kv");
        j_kv(w, r->prev_kv);
    }
    ws(w, "}");
}

static void j_del(struct w *w, const Etcdserverpb__DeleteRangeResponse *r)
{
    bool f = true;
    ws(w, "{");
    j_header(w, &f, "header", r->header);
    ji64(w, &f, "deleted", r->deleted, true);
    j_kvs(w, &f, "prev_kvs", r->prev_kvs, r->n_prev_kvs);
    ws(w, "}");
}

static void j_txn(struct w *w, const Etcdserverpb__TxnResponse *r)
{
    bool f = true;
    ws(w, "{");
    j_header(w, &f, "header", r->header);
    jbool(w, &f, "succeeded", r->succeeded, true);
    if (r->n_responses > 0) {
        jkey(w, &f, "responses");
        ws(w, "[");
        for (size_t i = 0; i < r->n_responses; i++) {
            const Etcdserverpb__ResponseOp *op = r->responses[i];
            ws(w, i > 0 ? ",{" : "{");
            /* A Go oneof is an interface field named after the oneof, and
             * its wrapper struct has no json tag: Go names on both. */
            switch (op->response_case) {
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
                ws(w, "\"Response\":{\"ResponseRange\":");
                j_range(w, op->response_range);
                ws(w, "}");
                break;
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
                ws(w, "\"Response\":{\"ResponsePut\":");
                j_put(w, op->response_put);
                ws(w, "}");
                break;
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
                ws(w, "\"Response\":{\"ResponseDeleteRange\":");
                j_del(w, op->response_delete_range);
                ws(w, "}");
                break;
            case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN:
                ws(w, "\"Response\":{\"ResponseTxn\":");
                j_txn(w, op->response_txn);
                ws(w, "}");
                break;
            default:
                break;
            }
            ws(w, "}");
        }
        ws(w, "]");
    }
    ws(w, "}");
}

/* ------------------------------------------------------------------------
 * simple and fields pieces
 * ---------------------------------------------------------------------- */

/* printKV: the key (unless value_only) and the value, one line each; as
 * \xNN escapes with --hex. */
static void s_kv(struct w *w, const struct mc_print *p,
                 const Mvccpb__KeyValue *kv)
{
    const ProtobufCBinaryData *parts[2] = {&kv->key, &kv->value};
    for (size_t i = p->value_only ? 1 : 0; i < 2; i++) {
        if (p->hex) {
            for (size_t k = 0; k < parts[i]->len; k++) {
                wf(w, "\\x%02x", parts[i]->data[k]);
            }
        } else {
            wb(w, parts[i]->data, parts[i]->len);
        }
        ws(w, "\n");
    }
}

static void f_hdr(struct w *w, const Etcdserverpb__ResponseHeader *h)
{
    static const Etcdserverpb__ResponseHeader zero =
        ETCDSERVERPB__RESPONSE_HEADER__INIT;
    if (h == NULL) {
        h = &zero;
    }
    wf(w, "\"ClusterID\" : %llu\n", (unsigned long long)h->cluster_id);
    wf(w, "\"MemberID\" : %llu\n", (unsigned long long)h->member_id);
    wf(w, "\"Revision\" : %lld\n", (long long)h->revision);
    wf(w, "\"RaftTerm\" : %llu\n", (unsigned long long)h->raft_term);
}

static void f_kv(struct w *w, const char *pfx, const Mvccpb__KeyValue *kv)
{
    wf(w, "\"%sKey\" : ", pfx);
    wquote(w, kv->key.data, kv->key.len);
    wf(w, "\n\"%sCreateRevision\" : %lld\n", pfx,
       (long long)kv->create_revision);
    wf(w, "\"%sModRevision\" : %lld\n", pfx, (long long)kv->mod_revision);
    wf(w, "\"%sVersion\" : %lld\n", pfx, (long long)kv->version);
    wf(w, "\"%sValue\" : ", pfx);
    wquote(w, kv->value.data, kv->value.len);
    wf(w, "\n\"%sLease\" : %lld\n", pfx, (long long)kv->lease);
}

static void f_get(struct w *w, const Etcdserverpb__RangeResponse *r)
{
    f_hdr(w, r->header);
    for (size_t i = 0; i < r->n_kvs; i++) {
        f_kv(w, "", r->kvs[i]);
    }
    wf(w, "\"More\" : %s\n", r->more ? "true" : "false");
    wf(w, "\"Count\" : %lld\n", (long long)r->count);
}

static void f_put(struct w *w, const Etcdserverpb__PutResponse *r)
{
    f_hdr(w, r->header);
    if (r->prev_kv != NULL) {
        f_kv(w, "Prev", r->prev_kv);
    }
}

static void f_del(struct w *w, const Etcdserverpb__DeleteRangeResponse *r)
{
    f_hdr(w, r->header);
    wf(w, "\"Deleted\" : %lld\n", (long long)r->deleted);
    for (size_t i = 0; i < r->n_prev_kvs; i++) {
        f_kv(w, "Prev", r->prev_kvs[i]);
    }
}

static void s_get(struct w *w, const struct mc_print *p,
                  const Etcdserverpb__RangeResponse *r)
{
    for (size_t i = 0; i < r->n_kvs; i++) {
        s_kv(w, p, r->kvs[i]);
    }
}

static void s_put(struct w *w, const struct mc_print *p,
                  const Etcdserverpb__PutResponse *r)
{
    ws(w, "OK\n");
    if (r->prev_kv != NULL) {
        s_kv(w, p, r->prev_kv);
    }
}

static void s_del(struct w *w, const struct mc_print *p,
                  const Etcdserverpb__DeleteRangeResponse *r)
{
    wf(w, "%lld\n", (long long)r->deleted);
    for (size_t i = 0; i < r->n_prev_kvs; i++) {
        s_kv(w, p, r->prev_kvs[i]);
    }
}

/* ------------------------------------------------------------------------
 * KV responses
 * ---------------------------------------------------------------------- */
#define UNSUPPORTED_UNLESS(cond) \
    do {                         \
        if (!(cond)) {           \
            return MOOR_EINVAL;  \
        }                        \
    } while (0)

int mc_print_get(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__RangeResponse *r)
{
    struct w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        s_get(&w, p, r);
        break;
    case MC_FMT_JSON:
        j_range(&w, r);
        ws(&w, "\n");
        break;
    case MC_FMT_FIELDS:
        f_get(&w, r);
        break;
    case MC_FMT_PROTOBUF:
        return pack_raw(out, &r->base);
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_put(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__PutResponse *r)
{
    struct w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        s_put(&w, p, r);
        break;
    case MC_FMT_JSON:
        j_put(&w, r);
        ws(&w, "\n");
        break;
    case MC_FMT_FIELDS:
        f_put(&w, r);
        break;
    case MC_FMT_PROTOBUF:
        return pack_raw(out, &r->base);
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_del(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__DeleteRangeResponse *r)
{
    struct w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        s_del(&w, p, r);
        break;
    case MC_FMT_JSON:
        j_del(&w, r);
        ws(&w, "\n");
        break;
    case MC_FMT_FIELDS:
        f_del(&w, r);
        break;
    case MC_FMT_PROTOBUF:
        return pack_raw(out, &r->base);
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

static void s_txn(struct w *w, const struct mc_print *p,
                  const Etcdserverpb__TxnResponse *r)
{
    ws(w, r->succeeded ? "SUCCESS\n" : "FAILURE\n");
    for (size_t i = 0; i < r->n_responses; i++) {
        const Etcdserverpb__ResponseOp *op = r->responses[i];
        ws(w, "\n");
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
            ws(w, "unexpected response\n");
            break;
        }
    }
}

static void f_txn(struct w *w, const Etcdserverpb__TxnResponse *r)
{
    f_hdr(w, r->header);
    wf(w, "\"Succeeded\" : %s\n", r->succeeded ? "true" : "false");
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
            ws(w, "\"Unknown\" : \"\"\n");
            break;
        }
    }
}

int mc_print_txn(struct moor_buf *out, const struct mc_print *p,
                 const Etcdserverpb__TxnResponse *r)
{
    struct w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        s_txn(&w, p, r);
        break;
    case MC_FMT_JSON:
        j_txn(&w, r);
        ws(&w, "\n");
        break;
    case MC_FMT_FIELDS:
        f_txn(&w, r);
        break;
    case MC_FMT_PROTOBUF:
        return pack_raw(out, &r->base);
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
    struct w w = {out, MOOR_OK};
    static const Mvccpb__KeyValue empty_kv = MVCCPB__KEY_VALUE__INIT;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        for (size_t i = 0; i < r->n_events; i++) {
            const Mvccpb__Event *e = r->events[i];
            wf(&w, "%s\n", event_type_name(e->type));
            if (e->prev_kv != NULL) {
                s_kv(&w, p, e->prev_kv);
            }
            s_kv(&w, p, e->kv != NULL ? e->kv : &empty_kv);
        }
        break;
    case MC_FMT_JSON: {
        /* clientv3.WatchResponse: Go field names, no omitempty. */
        bool f = true;
        ws(&w, "{\"Header\":{");
        j_header_fields(&w, &f, r->header);
        ws(&w, "},\"Events\":");
        if (r->n_events == 0) {
            ws(&w, "null");
        } else {
            ws(&w, "[");
            for (size_t i = 0; i < r->n_events; i++) {
                const Mvccpb__Event *e = r->events[i];
                bool ef = true;
                ws(&w, i > 0 ? ",{" : "{");
                ji64(&w, &ef, "type", e->type, true);
                if (e->kv != NULL) {
                    jkey(&w, &ef, "kv");
                    j_kv(&w, e->kv);
                }
                if (e->prev_kv != NULL) {
                    jkey(&w, &ef, "prev_kv");
                    j_kv(&w, e->prev_kv);
                }
                ws(&w, "}");
            }
            ws(&w, "]");
        }
        wf(&w, ",\"CompactRevision\":%lld,\"Canceled\":%s,\"Created\":%s}\n",
           (long long)r->compact_revision, r->canceled ? "true" : "false",
           r->created ? "true" : "false");
        break;
    }
    case MC_FMT_FIELDS:
        f_hdr(&w, r->header);
        for (size_t i = 0; i < r->n_events; i++) {
            const Mvccpb__Event *e = r->events[i];
            wf(&w, "\"Type\" : %s\n", event_type_name(e->type));
            if (e->prev_kv != NULL) {
                f_kv(&w, "Prev", e->prev_kv);
            }
            f_kv(&w, "", e->kv != NULL ? e->kv : &empty_kv);
        }
        break;
    case MC_FMT_PROTOBUF:
        for (size_t i = 0; i < r->n_events && w.rv == MOOR_OK; i++) {
            w.rv = pack_raw(out, &r->events[i]->base);
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

/* ------------------------------------------------------------------------
 * Leases
 * ---------------------------------------------------------------------- */
int mc_print_lease_grant(struct moor_buf *out, const struct mc_print *p,
                         const Etcdserverpb__LeaseGrantResponse *r)
{
    struct w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        ws(&w, "lease ");
        wlease(&w, r->id);
        wf(&w, " granted with TTL(%llds)\n", (long long)r->ttl);
        break;
    case MC_FMT_JSON:
        ws(&w, "{");
        j_header_fields(&w, &f, r->header);
        ji64(&w, &f, "ID", r->id, false);
        ji64(&w, &f, "TTL", r->ttl, false);
        jkey(&w, &f, "Error");
        wjstr(&w, r->error);
        ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        f_hdr(&w, r->header);
        wf(&w, "\"ID\" : %lld\n\"TTL\" : %lld\n", (long long)r->id,
           (long long)r->ttl);
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_lease_revoke(struct moor_buf *out, const struct mc_print *p,
                          int64_t id,
                          const Etcdserverpb__LeaseRevokeResponse *r)
{
    struct w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        ws(&w, "lease ");
        wlease(&w, id);
        ws(&w, " revoked\n");
        break;
    case MC_FMT_JSON:
        ws(&w, "{");
        j_header(&w, &f, "header", r->header);
        ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        f_hdr(&w, r->header);
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_lease_ttl(struct moor_buf *out, const struct mc_print *p,
                       bool keys,
                       const Etcdserverpb__LeaseTimeToLiveResponse *r)
{
    struct w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        ws(&w, "lease ");
        wlease(&w, r->id);
        if (r->grantedttl == 0 && r->ttl == -1) {
            ws(&w, " already expired\n");
            break;
        }
        wf(&w, " granted with TTL(%llds), remaining(%llds)",
           (long long)r->grantedttl, (long long)r->ttl);
        if (keys) {
            ws(&w, ", attached keys([");
            for (size_t i = 0; i < r->n_keys; i++) {
                if (i > 0) {
                    ws(&w, " ");
                }
                wb(&w, r->keys[i].data, r->keys[i].len);
            }
            ws(&w, "])");
        }
        ws(&w, "\n");
        break;
    case MC_FMT_JSON:
        ws(&w, "{");
        j_header_fields(&w, &f, r->header);
        ji64(&w, &f, "id", r->id, false);
        ji64(&w, &f, "ttl", r->ttl, false);
        ji64(&w, &f, "granted-ttl", r->grantedttl, false);
        jkey(&w, &f, "keys");
        if (r->n_keys == 0) {
            ws(&w, "null");
        } else {
            ws(&w, "[");
            for (size_t i = 0; i < r->n_keys; i++) {
                if (i > 0) {
                    ws(&w, ",");
                }
                wb64(&w, r->keys[i]);
            }
            ws(&w, "]");
        }
        ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        f_hdr(&w, r->header);
        wf(&w, "\"ID\" : %lld\n\"TTL\" : %lld\n\"GrantedTTL\" : %lld\n",
           (long long)r->id, (long long)r->ttl, (long long)r->grantedttl);
        for (size_t i = 0; i < r->n_keys; i++) {
            ws(&w, "\"Key\" : ");
            wquote(&w, r->keys[i].data, r->keys[i].len);
            ws(&w, "\n");
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_lease_list(struct moor_buf *out, const struct mc_print *p,
                        const Etcdserverpb__LeaseLeasesResponse *r)
{
    struct w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        wf(&w, "found %zu leases\n", r->n_leases);
        for (size_t i = 0; i < r->n_leases; i++) {
            wlease(&w, r->leases[i]->id);
            ws(&w, "\n");
        }
        break;
    case MC_FMT_JSON:
        ws(&w, "{");
        j_header_fields(&w, &f, r->header);
        jkey(&w, &f, "leases");
        ws(&w, "[");
        for (size_t i = 0; i < r->n_leases; i++) {
            wf(&w, "%s{\"id\":%lld}", i > 0 ? "," : "",
               (long long)r->leases[i]->id);
        }
        ws(&w, "]}\n");
        break;
    case MC_FMT_FIELDS:
        f_hdr(&w, r->header);
        for (size_t i = 0; i < r->n_leases; i++) {
            wf(&w, "\"ID\" : %lld\n", (long long)r->leases[i]->id);
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_keepalive(struct moor_buf *out, const struct mc_print *p,
                       const Etcdserverpb__LeaseKeepAliveResponse *r)
{
    struct w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        ws(&w, "lease ");
        wlease(&w, r->id);
        wf(&w, " keepalived with TTL(%lld)\n", (long long)r->ttl);
        break;
    case MC_FMT_JSON:
        ws(&w, "{");
        j_header_fields(&w, &f, r->header);
        ji64(&w, &f, "ID", r->id, false);
        ji64(&w, &f, "TTL", r->ttl, false);
        ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        f_hdr(&w, r->header);
        wf(&w, "\"ID\" : %lld\n\"TTL\" : %lld\n", (long long)r->id,
           (long long)r->ttl);
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

/* ------------------------------------------------------------------------
 * Tables
 * ---------------------------------------------------------------------- */

/* Display width of a UTF-8 string: its runes (continuation bytes do not
 * count). */
static size_t text_width(const char *s)
{
    size_t n = 0;
    for (; *s != 0; s++) {
        n += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return n;
}

static void pad(struct w *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ws(w, " ");
    }
}

int mc_table(struct moor_buf *out, const char *const *hdr, size_t cols,
             const char *const *cells, size_t rows)
{
    struct w w = {out, MOOR_OK};
    size_t width[16];
    if (cols > MOOR_ARRAY_LEN(width)) {
        return MOOR_EINVAL;
    }
    for (size_t c = 0; c < cols; c++) {
        width[c] = text_width(hdr[c]);
        for (size_t r = 0; r < rows; r++) {
            size_t n = text_width(cells[r * cols + c]);
            width[c] = n > width[c] ? n : width[c];
        }
    }
    struct moor_buf line;
    moor_buf_init(&line);
    struct w lw = {&line, MOOR_OK};
    ws(&lw, "+");
    for (size_t c = 0; c < cols; c++) {
        for (size_t i = 0; i < width[c] + 2; i++) {
            ws(&lw, "-");
        }
        ws(&lw, "+");
    }
    ws(&lw, "\n");
    if (lw.rv != MOOR_OK) {
        moor_buf_close(&line);
        return lw.rv;
    }
    wb(&w, line.ptr, line.len);
    ws(&w, "|");
    for (size_t c = 0; c < cols; c++) {
        size_t gap = width[c] - text_width(hdr[c]);
        pad(&w, 1 + gap / 2);
        for (const char *h = hdr[c]; *h != 0; h++) {
            char u = *h >= 'a' && *h <= 'z' ? (char)(*h - 32) : *h;
            u = u == '_' ? ' ' : u;
            wb(&w, &u, 1);
        }
        pad(&w, gap - gap / 2 + 1);
        ws(&w, "|");
    }
    ws(&w, "\n");
    wb(&w, line.ptr, line.len);
    for (size_t r = 0; r < rows; r++) {
        ws(&w, "|");
        for (size_t c = 0; c < cols; c++) {
            const char *cell = cells[r * cols + c];
            pad(&w, 1 + width[c] - text_width(cell));
            ws(&w, cell);
            ws(&w, " |");
        }
        ws(&w, "\n");
    }
    wb(&w, line.ptr, line.len);
    moor_buf_close(&line);
    return w.rv;
}

/* Rows as strings in one arena-like buffer: each cell a NUL-terminated
 * string; offsets kept, pointers made once the buffer stopped growing. */
struct rows
{
    struct moor_buf text;
    size_t off[16 * 64];
    size_t n;
    int rv;
};

__attribute__((format(printf, 2, 3))) static void cell(struct rows *t,
                                                       const char *fmt, ...)
{
    if (t->rv != MOOR_OK) {
        return;
    }
    if (t->n == MOOR_ARRAY_LEN(t->off)) {
        t->rv = MOOR_ETOOBIG;
        return;
    }
    t->off[t->n++] = t->text.len;
    va_list ap;
    va_start(ap, fmt);
    char tmp[1024];
    int len = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (len < 0) {
        t->rv = MOOR_EINVAL;
        return;
    }
    t->rv = moor_buf_append(
        &t->text, tmp,
        (size_t)len < sizeof(tmp) ? (size_t)len + 1 : sizeof(tmp));
    if (t->rv == MOOR_OK && (size_t)len >= sizeof(tmp)) {
        t->text.ptr[t->text.len - 1] = 0;
    }
}

/* Emits the rows: table, or each row joined with ", " (simple). */
static int rows_emit(struct moor_buf *out, struct rows *t, bool table,
                     const char *const *hdr, size_t cols)
{
    if (t->rv != MOOR_OK) {
        return t->rv;
    }
    const char **cells = moor_malloc((t->n + 1) * sizeof(*cells));
    if (cells == NULL) {
        return MOOR_ENOMEM;
    }
    for (size_t i = 0; i < t->n; i++) {
        cells[i] = (const char *)t->text.ptr + t->off[i];
    }
    int rv = MOOR_OK;
    if (table) {
        rv = mc_table(out, hdr, cols, cells, t->n / cols);
    } else {
        struct w w = {out, MOOR_OK};
        for (size_t i = 0; i < t->n; i++) {
            ws(&w, cells[i]);
            ws(&w, (i + 1) % cols == 0 ? "\n" : ", ");
        }
        rv = w.rv;
    }
    moor_free(cells);
    return rv;
}

/* ------------------------------------------------------------------------
 * Cluster and maintenance
 * ---------------------------------------------------------------------- */
static void join(struct w *w, char *const *s, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            ws(w, sep);
        }
        ws(w, s[i]);
    }
}

static void j_strs(struct w *w, bool *first, const char *key, char *const *s,
                   size_t n)
{
    if (n == 0) {
        return;
    }
    jkey(w, first, key);
    ws(w, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            ws(w, ",");
        }
        wjstr(w, s[i]);
    }
    ws(w, "]");
}

static void j_member(struct w *w, const Etcdserverpb__Member *m)
{
    bool mf = true;
    ws(w, "{");
    ju64(w, &mf, "ID", m->id, true);
    if (m->name != NULL && m->name[0] != 0) {
        jkey(w, &mf, "name");
        wjstr(w, m->name);
    }
    j_strs(w, &mf, "peerURLs", m->peerurls, m->n_peerurls);
    j_strs(w, &mf, "clientURLs", m->clienturls, m->n_clienturls);
    jbool(w, &mf, "isLearner", m->islearner, true);
    ws(w, "}");
}

static void f_member(struct w *w, const Etcdserverpb__Member *m)
{
    wf(w, "\"ID\" : %llu\n\"Name\" : ", (unsigned long long)m->id);
    wquote(w, m->name, strlen(m->name));
    ws(w, "\n");
    for (size_t k = 0; k < m->n_peerurls; k++) {
        ws(w, "\"PeerURL\" : ");
        wquote(w, m->peerurls[k], strlen(m->peerurls[k]));
        ws(w, "\n");
    }
    for (size_t k = 0; k < m->n_clienturls; k++) {
        ws(w, "\"ClientURL\" : ");
        wquote(w, m->clienturls[k], strlen(m->clienturls[k]));
        ws(w, "\n");
    }
    wf(w, "\"IsLearner\" : %s\n\n", m->islearner ? "true" : "false");
}

int mc_print_member_list(struct moor_buf *out, const struct mc_print *p,
                         const Etcdserverpb__MemberListResponse *r)
{
    static const char *const hdr[] = {
        "ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"};
    struct w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
    case MC_FMT_TABLE: {
        struct rows *t = moor_calloc(1, sizeof(*t));
        if (t == NULL) {
            return MOOR_ENOMEM;
        }
        moor_buf_init(&t->text);
        struct moor_buf tmp;
        moor_buf_init(&tmp);
        for (size_t i = 0; i < r->n_members && t->rv == MOOR_OK; i++) {
            const Etcdserverpb__Member *m = r->members[i];
            struct w tw = {&tmp, MOOR_OK};
            cell(t, "%llx", (unsigned long long)m->id);
            cell(t, "%s", m->name[0] == 0 ? "unstarted" : "started");
            cell(t, "%s", m->name);
            moor_buf_reset(&tmp);
            join(&tw, m->peerurls, m->n_peerurls, ",");
            cell(t, "%.*s", (int)tmp.len, (const char *)tmp.ptr);
            moor_buf_reset(&tmp);
            join(&tw, m->clienturls, m->n_clienturls, ",");
            cell(t, "%.*s", (int)tmp.len, (const char *)tmp.ptr);
            cell(t, "%s", m->islearner ? "true" : "false");
            if (tw.rv != MOOR_OK) {
                t->rv = tw.rv;
            }
        }
        int rv = rows_emit(out, t, p->fmt == MC_FMT_TABLE, hdr, 6);
        moor_buf_close(&tmp);
        moor_buf_close(&t->text);
        moor_free(t);
        return rv;
    }
    case MC_FMT_JSON:
        ws(&w, "{");
        j_header(&w, &f, "header", r->header);
        if (r->n_members > 0) {
            jkey(&w, &f, "members");
            ws(&w, "[");
            for (size_t i = 0; i < r->n_members; i++) {
                if (i > 0) {
                    ws(&w, ",");
                }
                j_member(&w, r->members[i]);
            }
            ws(&w, "]");
        }
        ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        f_hdr(&w, r->header);
        for (size_t i = 0; i < r->n_members; i++) {
            f_member(&w, r->members[i]);
        }
        break;
    case MC_FMT_PROTOBUF:
        return pack_raw(out, &r->base);
    }
    return w.rv;
}

static const char *alarm_name(Etcdserverpb__AlarmType t)
{
    switch (t) {
    case ETCDSERVERPB__ALARM_TYPE__NOSPACE:
        return "NOSPACE";
    case ETCDSERVERPB__ALARM_TYPE__CORRUPT:
        return "CORRUPT";
    default:
        return "NONE";
    }
}

int mc_print_alarm(struct moor_buf *out, const struct mc_print *p,
                   const Etcdserverpb__AlarmResponse *r)
{
    struct w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        /* Go's %+v of the message: protobuf's compact text form. */
        for (size_t i = 0; i < r->n_alarms; i++) {
            const Etcdserverpb__AlarmMember *a = r->alarms[i];
            if (a->memberid != 0) {
                wf(&w, "memberID:%llu ", (unsigned long long)a->memberid);
            }
            if (a->alarm != ETCDSERVERPB__ALARM_TYPE__NONE) {
                wf(&w, "alarm:%s ", alarm_name(a->alarm));
            }
            ws(&w, "\n");
        }
        break;
    case MC_FMT_JSON:
        ws(&w, "{");
        j_header(&w, &f, "header", r->header);
        if (r->n_alarms > 0) {
            jkey(&w, &f, "alarms");
            ws(&w, "[");
            for (size_t i = 0; i < r->n_alarms; i++) {
                bool af = true;
                ws(&w, i > 0 ? ",{" : "{");
                ju64(&w, &af, "memberID", r->alarms[i]->memberid, true);
                ji64(&w, &af, "alarm", r->alarms[i]->alarm, true);
                ws(&w, "}");
            }
            ws(&w, "]");
        }
        ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        f_hdr(&w, r->header);
        for (size_t i = 0; i < r->n_alarms; i++) {
            wf(&w, "\"MemberID\" : %llu\n\"AlarmType\" : %s\n\n",
               (unsigned long long)r->alarms[i]->memberid,
               alarm_name(r->alarms[i]->alarm));
        }
        break;
    case MC_FMT_PROTOBUF:
        return pack_raw(out, &r->base);
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_ep_health(struct moor_buf *out, struct moor_buf *err,
                       const struct mc_print *p, const struct mc_ep_health *h,
                       size_t n)
{
    static const char *const hdr[] = {"ENDPOINT", "HEALTH", "TOOK", "ERROR"};
    struct w w = {out, MOOR_OK};
    struct w we = {err, MOOR_OK};
    struct moor_buf took;
    moor_buf_init(&took);
    int rv = MOOR_OK;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        for (size_t i = 0; i < n; i++) {
            /* etcdctl 3.4 prints both kinds of line on stderr. */
            if (h[i].error == NULL) {
                moor_buf_reset(&took);
                rv = mc_duration_format(&took, h[i].took_ns);
                wf(&we,
                   "%s is healthy: successfully committed proposal: took = "
                   "%.*s\n",
                   h[i].ep, (int)took.len, (const char *)took.ptr);
            } else {
                wf(&we, "%s is unhealthy: failed to commit proposal: %s\n",
                   h[i].ep, h[i].error);
            }
        }
        break;
    case MC_FMT_JSON:
        ws(&w, "[");
        for (size_t i = 0; i < n; i++) {
            moor_buf_reset(&took);
            rv = mc_duration_format(&took, h[i].took_ns);
            ws(&w, i > 0 ? ",{\"endpoint\":" : "{\"endpoint\":");
            wjstr(&w, h[i].ep);
            wf(&w, ",\"health\":%s,\"took\":\"%.*s\"",
               h[i].health ? "true" : "false", (int)took.len,
               (const char *)took.ptr);
            if (h[i].error != NULL) {
                ws(&w, ",\"error\":");
                wjstr(&w, h[i].error);
            }
            ws(&w, "}");
        }
        ws(&w, "]\n");
        break;
    case MC_FMT_FIELDS:
        for (size_t i = 0; i < n; i++) {
            moor_buf_reset(&took);
            rv = mc_duration_format(&took, h[i].took_ns);
            ws(&w, "\"Endpoint\" : ");
            wquote(&w, h[i].ep, strlen(h[i].ep));
            wf(&w, "\n\"Health\" : %s\n\"Took\" : %.*s\n\"Error\" : %s\n\n",
               h[i].health ? "true" : "false", (int)took.len,
               (const char *)took.ptr, h[i].error != NULL ? h[i].error : "");
        }
        break;
    case MC_FMT_TABLE: {
        struct rows *t = moor_calloc(1, sizeof(*t));
        if (t == NULL) {
            rv = MOOR_ENOMEM;
            break;
        }
        moor_buf_init(&t->text);
        for (size_t i = 0; i < n; i++) {
            moor_buf_reset(&took);
            rv = mc_duration_format(&took, h[i].took_ns);
            cell(t, "%s", h[i].ep);
            cell(t, "%s", h[i].health ? "true" : "false");
            cell(t, "%.*s", (int)took.len, (const char *)took.ptr);
            cell(t, "%s", h[i].error != NULL ? h[i].error : "");
        }
        if (rv == MOOR_OK) {
            rv = rows_emit(out, t, true, hdr, 4);
        }
        moor_buf_close(&t->text);
        moor_free(t);
        break;
    }
    default:
        rv = MOOR_EINVAL;
    }
    moor_buf_close(&took);
    if (rv != MOOR_OK) {
        return rv;
    }
    return w.rv != MOOR_OK ? w.rv : we.rv;
}

static void j_status(struct w *w, const Etcdserverpb__StatusResponse *s)
{
    bool f = true;
    ws(w, "{");
    j_header(w, &f, "header", s->header);
    if (s->version != NULL && s->version[0] != 0) {
        jkey(w, &f, "version");
        wjstr(w, s->version);
    }
    ji64(w, &f, "dbSize", s->dbsize, true);
    ju64(w, &f, "leader", s->leader, true);
    ju64(w, &f, "raftIndex", s->raftindex, true);
    ju64(w, &f, "raftTerm", s->raftterm, true);
    ju64(w, &f, "raftAppliedIndex", s->raftappliedindex, true);
    j_strs(w, &f, "errors", s->errors, s->n_errors);
    ji64(w, &f, "dbSizeInUse", s->dbsizeinuse, true);
    jbool(w, &f, "isLearner", s->islearner, true);
    ws(w, "}");
}

int mc_print_ep_status(struct moor_buf *out, const struct mc_print *p,
                       const struct mc_ep_status *s, size_t n)
{
    static const char *const hdr[] = {
        "ENDPOINT",           "ID",         "VERSION",   "DB SIZE",
        "IS LEADER",          "IS LEARNER", "RAFT TERM", "RAFT INDEX",
        "RAFT APPLIED INDEX", "ERRORS"};
    struct w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
    case MC_FMT_TABLE: {
        struct rows *t = moor_calloc(1, sizeof(*t));
        if (t == NULL) {
            return MOOR_ENOMEM;
        }
        moor_buf_init(&t->text);
        struct moor_buf tmp;
        moor_buf_init(&tmp);
        for (size_t i = 0; i < n; i++) {
            const Etcdserverpb__StatusResponse *r = s[i].resp;
            uint64_t id = r->header != NULL ? r->header->member_id : 0;
            struct w tw = {&tmp, MOOR_OK};
            cell(t, "%s", s[i].ep);
            cell(t, "%llx", (unsigned long long)id);
            cell(t, "%s", r->version != NULL ? r->version : "");
            moor_buf_reset(&tmp);
            tw.rv = mc_humanize_bytes(&tmp, (uint64_t)r->dbsize);
            cell(t, "%.*s", (int)tmp.len, (const char *)tmp.ptr);
            cell(t, "%s", r->leader == id ? "true" : "false");
            cell(t, "%s", r->islearner ? "true" : "false");
            cell(t, "%llu", (unsigned long long)r->raftterm);
            cell(t, "%llu", (unsigned long long)r->raftindex);
            cell(t, "%llu", (unsigned long long)r->raftappliedindex);
            moor_buf_reset(&tmp);
            join(&tw, r->errors, r->n_errors, ", ");
            cell(t, "%.*s", (int)tmp.len, (const char *)tmp.ptr);
            if (tw.rv != MOOR_OK) {
                t->rv = tw.rv;
            }
        }
        int rv = rows_emit(out, t, p->fmt == MC_FMT_TABLE, hdr, 10);
        moor_buf_close(&tmp);
        moor_buf_close(&t->text);
        moor_free(t);
        return rv;
    }
    case MC_FMT_JSON:
        ws(&w, "[");
        for (size_t i = 0; i < n; i++) {
            ws(&w, i > 0 ? ",{\"Endpoint\":" : "{\"Endpoint\":");
            wjstr(&w, s[i].ep);
            ws(&w, ",\"Status\":");
            j_status(&w, s[i].resp);
            ws(&w, "}");
        }
        ws(&w, "]\n");
        break;
    case MC_FMT_FIELDS:
        for (size_t i = 0; i < n; i++) {
            const Etcdserverpb__StatusResponse *r = s[i].resp;
            f_hdr(&w, r->header);
            ws(&w, "\"Version\" : ");
            wquote(&w, r->version, r->version != NULL ? strlen(r->version) : 0);
            wf(&w,
               "\n\"DBSize\" : %lld\n\"Leader\" : %llu\n\"IsLearner\" : %s\n"
               "\"RaftIndex\" : %llu\n\"RaftTerm\" : %llu\n"
               "\"RaftAppliedIndex\" : %llu\n\"Errors\" : [",
               (long long)r->dbsize, (unsigned long long)r->leader,
               r->islearner ? "true" : "false",
               (unsigned long long)r->raftindex,
               (unsigned long long)r->raftterm,
               (unsigned long long)r->raftappliedindex);
            join(&w, r->errors, r->n_errors, " ");
            ws(&w, "]\n\"Endpoint\" : ");
            wquote(&w, s[i].ep, strlen(s[i].ep));
            ws(&w, "\n\n");
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_ep_hashkv(struct moor_buf *out, const struct mc_print *p,
                       const struct mc_ep_hashkv *s, size_t n)
{
    static const char *const hdr[] = {"ENDPOINT", "HASH"};
    struct w w = {out, MOOR_OK};
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
    case MC_FMT_TABLE: {
        struct rows *t = moor_calloc(1, sizeof(*t));
        if (t == NULL) {
            return MOOR_ENOMEM;
        }
        moor_buf_init(&t->text);
        for (size_t i = 0; i < n; i++) {
            cell(t, "%s", s[i].ep);
            cell(t, "%u", (unsigned)s[i].resp->hash);
        }
        int rv = rows_emit(out, t, p->fmt == MC_FMT_TABLE, hdr, 2);
        moor_buf_close(&t->text);
        moor_free(t);
        return rv;
    }
    case MC_FMT_JSON:
        ws(&w, "[");
        for (size_t i = 0; i < n; i++) {
            const Etcdserverpb__HashKVResponse *r = s[i].resp;
            bool f = true;
            ws(&w, i > 0 ? ",{\"Endpoint\":" : "{\"Endpoint\":");
            wjstr(&w, s[i].ep);
            ws(&w, ",\"HashKV\":{");
            j_header(&w, &f, "header", r->header);
            ju64(&w, &f, "hash", r->hash, true);
            ji64(&w, &f, "compact_revision", r->compact_revision, true);
            ws(&w, "}}");
        }
        ws(&w, "]\n");
        break;
    case MC_FMT_FIELDS:
        for (size_t i = 0; i < n; i++) {
            f_hdr(&w, s[i].resp->header);
            ws(&w, "\"Endpoint\" : ");
            wquote(&w, s[i].ep, strlen(s[i].ep));
            wf(&w, "\n\"Hash\" : %u\n\n", (unsigned)s[i].resp->hash);
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_member_change(struct moor_buf *out, const struct mc_print *p,
                           const char *simple_line,
                           const Etcdserverpb__ResponseHeader *h,
                           const Etcdserverpb__Member *member,
                           Etcdserverpb__Member *const *members, size_t n)
{
    struct w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        ws(&w, simple_line);
        break;
    case MC_FMT_JSON:
        ws(&w, "{");
        j_header(&w, &f, "header", h);
        if (member != NULL) {
            jkey(&w, &f, "member");
            j_member(&w, member);
        }
        if (n > 0) {
            jkey(&w, &f, "members");
            ws(&w, "[");
            for (size_t i = 0; i < n; i++) {
                if (i > 0) {
                    ws(&w, ",");
                }
                j_member(&w, members[i]);
            }
            ws(&w, "]");
        }
        ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        f_hdr(&w, h);
        if (member != NULL) {
            f_member(&w, member);
        }
        for (size_t i = 0; i < n; i++) {
            f_member(&w, members[i]);
        }
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}

int mc_print_header_only(struct moor_buf *out, const struct mc_print *p,
                         const char *simple_line,
                         const Etcdserverpb__ResponseHeader *h)
{
    struct w w = {out, MOOR_OK};
    bool f = true;
    switch (p->fmt) {
    case MC_FMT_SIMPLE:
        ws(&w, simple_line);
        break;
    case MC_FMT_JSON:
        ws(&w, "{");
        j_header(&w, &f, "header", h);
        ws(&w, "}\n");
        break;
    case MC_FMT_FIELDS:
        f_hdr(&w, h);
        break;
    default:
        return MOOR_EINVAL;
    }
    return w.rv;
}
