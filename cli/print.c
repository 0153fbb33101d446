/*
 * print.c: etcdctl 3.4's output formats: the shared pieces (writer, JSON,
 * simple and fields helpers, tables). The responses are printed in
 * print_kv.c, print_lease.c and print_cluster.c.
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

#include "print_int.h"

__attribute__((format(printf, 2, 3))) void mc__wf(struct mc__w *w,
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

void mc__wb(struct mc__w *w, const void *p, size_t n)
{
    if (w->rv == MOOR_OK) {
        w->rv = moor_buf_append(w->b, p, n);
    }
}

void mc__ws(struct mc__w *w, const char *s)
{
    mc__wb(w, s, strlen(s));
}

void mc__wquote(struct mc__w *w, const void *p, size_t n)
{
    if (w->rv == MOOR_OK) {
        w->rv = mc_goquote_append(w->b, p, n);
    }
}

void mc__wjstr(struct mc__w *w, const char *s)
{
    if (w->rv == MOOR_OK) {
        w->rv = mc_json_string_append(w->b, s, s != NULL ? strlen(s) : 0);
    }
}

void mc__wb64(struct mc__w *w, ProtobufCBinaryData d)
{
    mc__wb(w, "\"", 1);
    if (w->rv == MOOR_OK) {
        w->rv = mc_base64_append(w->b, d.data, d.len);
    }
    mc__wb(w, "\"", 1);
}

/* Go's %016x of an int64 (a negative value keeps its sign). */
void mc__wlease(struct mc__w *w, int64_t id)
{
    if (id < 0) {
        mc__wf(w, "-%015llx", (unsigned long long)(-(id + 1)) + 1);
    } else {
        mc__wf(w, "%016llx", (unsigned long long)id);
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

int mc__pack_raw(struct moor_buf *out, const ProtobufCMessage *m)
{
    return moor_pb_pack(m, out);
}

/* ------------------------------------------------------------------------
 * JSON pieces
 * ---------------------------------------------------------------------- */
void mc__jkey(struct mc__w *w, bool *first, const char *key)
{
    if (!*first) {
        mc__ws(w, ",");
    }
    *first = false;
    if (key != NULL) {
        mc__wf(w, "\"%s\":", key);
    }
}

void mc__ju64(struct mc__w *w, bool *first, const char *key, uint64_t v,
              bool omitempty)
{
    if (v == 0 && omitempty) {
        return;
    }
    mc__jkey(w, first, key);
    mc__wf(w, "%llu", (unsigned long long)v);
}

void mc__ji64(struct mc__w *w, bool *first, const char *key, int64_t v,
              bool omitempty)
{
    if (v == 0 && omitempty) {
        return;
    }
    mc__jkey(w, first, key);
    mc__wf(w, "%lld", (long long)v);
}

void mc__jbool(struct mc__w *w, bool *first, const char *key, bool v,
               bool omitempty)
{
    if (!v && omitempty) {
        return;
    }
    mc__jkey(w, first, key);
    mc__ws(w, v ? "true" : "false");
}

static void jbytes(struct mc__w *w, bool *first, const char *key,
                   ProtobufCBinaryData d)
{
    if (d.len == 0) {
        return;
    }
    mc__jkey(w, first, key);
    mc__wb64(w, d);
}

/* The four header fields into an open object (omitempty each). */
void mc__j_header_fields(struct mc__w *w, bool *first,
                         const Etcdserverpb__ResponseHeader *h)
{
    if (h == NULL) {
        return;
    }
    mc__ju64(w, first, "cluster_id", h->cluster_id, true);
    mc__ju64(w, first, "member_id", h->member_id, true);
    mc__ji64(w, first, "revision", h->revision, true);
    mc__ju64(w, first, "raft_term", h->raft_term, true);
}

void mc__j_header(struct mc__w *w, bool *first, const char *key,
                  const Etcdserverpb__ResponseHeader *h)
{
    if (h == NULL) {
        return;
    }
    mc__jkey(w, first, key);
    bool f = true;
    mc__ws(w, "{");
    mc__j_header_fields(w, &f, h);
    mc__ws(w, "}");
}

void mc__j_kv(struct mc__w *w, const Mvccpb__KeyValue *kv)
{
    bool f = true;
    mc__ws(w, "{");
    jbytes(w, &f, "key", kv->key);
    mc__ji64(w, &f, "create_revision", kv->create_revision, true);
    mc__ji64(w, &f, "mod_revision", kv->mod_revision, true);
    mc__ji64(w, &f, "version", kv->version, true);
    jbytes(w, &f, "value", kv->value);
    mc__ji64(w, &f, "lease", kv->lease, true);
    mc__ws(w, "}");
}

void mc__j_kvs(struct mc__w *w, bool *first, const char *key,
               Mvccpb__KeyValue *const *kvs, size_t n)
{
    if (n == 0) {
        return;
    }
    mc__jkey(w, first, key);
    mc__ws(w, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            mc__ws(w, ",");
        }
        mc__j_kv(w, kvs[i]);
    }
    mc__ws(w, "]");
}

/* ------------------------------------------------------------------------
 * simple and fields pieces
 * ---------------------------------------------------------------------- */

/* printKV: the key (unless value_only) and the value, one line each; as
 * \xNN escapes with --hex. */
void mc__s_kv(struct mc__w *w, const struct mc_print *p,
              const Mvccpb__KeyValue *kv)
{
    const ProtobufCBinaryData *parts[2] = {&kv->key, &kv->value};
    for (size_t i = p->value_only ? 1 : 0; i < 2; i++) {
        if (p->hex) {
            for (size_t k = 0; k < parts[i]->len; k++) {
                mc__wf(w, "\\x%02x", parts[i]->data[k]);
            }
        } else {
            mc__wb(w, parts[i]->data, parts[i]->len);
        }
        mc__ws(w, "\n");
    }
}

void mc__f_hdr(struct mc__w *w, const Etcdserverpb__ResponseHeader *h)
{
    static const Etcdserverpb__ResponseHeader zero =
        ETCDSERVERPB__RESPONSE_HEADER__INIT;
    if (h == NULL) {
        h = &zero;
    }
    mc__wf(w, "\"ClusterID\" : %llu\n", (unsigned long long)h->cluster_id);
    mc__wf(w, "\"MemberID\" : %llu\n", (unsigned long long)h->member_id);
    mc__wf(w, "\"Revision\" : %lld\n", (long long)h->revision);
    mc__wf(w, "\"RaftTerm\" : %llu\n", (unsigned long long)h->raft_term);
}

void mc__f_kv(struct mc__w *w, const char *pfx, const Mvccpb__KeyValue *kv)
{
    mc__wf(w, "\"%sKey\" : ", pfx);
    mc__wquote(w, kv->key.data, kv->key.len);
    mc__wf(w, "\n\"%sCreateRevision\" : %lld\n", pfx,
           (long long)kv->create_revision);
    mc__wf(w, "\"%sModRevision\" : %lld\n", pfx, (long long)kv->mod_revision);
    mc__wf(w, "\"%sVersion\" : %lld\n", pfx, (long long)kv->version);
    mc__wf(w, "\"%sValue\" : ", pfx);
    mc__wquote(w, kv->value.data, kv->value.len);
    mc__wf(w, "\n\"%sLease\" : %lld\n", pfx, (long long)kv->lease);
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

static void pad(struct mc__w *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mc__ws(w, " ");
    }
}

int mc_table(struct moor_buf *out, const char *const *hdr, size_t cols,
             const char *const *cells, size_t rows)
{
    struct mc__w w = {out, MOOR_OK};
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
    struct mc__w lw = {&line, MOOR_OK};
    mc__ws(&lw, "+");
    for (size_t c = 0; c < cols; c++) {
        for (size_t i = 0; i < width[c] + 2; i++) {
            mc__ws(&lw, "-");
        }
        mc__ws(&lw, "+");
    }
    mc__ws(&lw, "\n");
    if (lw.rv != MOOR_OK) {
        moor_buf_close(&line);
        return lw.rv;
    }
    mc__wb(&w, line.ptr, line.len);
    mc__ws(&w, "|");
    for (size_t c = 0; c < cols; c++) {
        size_t gap = width[c] - text_width(hdr[c]);
        pad(&w, 1 + gap / 2);
        for (const char *h = hdr[c]; *h != 0; h++) {
            char u = *h >= 'a' && *h <= 'z' ? (char)(*h - 32) : *h;
            u = u == '_' ? ' ' : u;
            mc__wb(&w, &u, 1);
        }
        pad(&w, gap - gap / 2 + 1);
        mc__ws(&w, "|");
    }
    mc__ws(&w, "\n");
    mc__wb(&w, line.ptr, line.len);
    for (size_t r = 0; r < rows; r++) {
        mc__ws(&w, "|");
        for (size_t c = 0; c < cols; c++) {
            const char *cell = cells[r * cols + c];
            pad(&w, 1 + width[c] - text_width(cell));
            mc__ws(&w, cell);
            mc__ws(&w, " |");
        }
        mc__ws(&w, "\n");
    }
    mc__wb(&w, line.ptr, line.len);
    moor_buf_close(&line);
    return w.rv;
}

__attribute__((format(printf, 2, 3))) void mc__cell(struct mc__rows *t,
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
int mc__rows_emit(struct moor_buf *out, struct mc__rows *t, bool table,
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
        struct mc__w w = {out, MOOR_OK};
        for (size_t i = 0; i < t->n; i++) {
            mc__ws(&w, cells[i]);
            mc__ws(&w, (i + 1) % cols == 0 ? "\n" : ", ");
        }
        rv = w.rv;
    }
    moor_free(cells);
    return rv;
}
