/*
 * cli/print_int.h: what the printer files share (print.c: the writer, the
 * JSON, simple and fields pieces common to several responses, tables;
 * print_kv.c, print_lease.c, print_cluster.c: the responses).
 *
 * Every printer appends to a moor_buf through a small writer whose error
 * is sticky (the first ENOMEM wins and is returned at the end).
 */
#ifndef MOOR_CLI_PRINT_INT_H
#define MOOR_CLI_PRINT_INT_H

#include "cli_int.h"

/* A printer answers MOOR_EINVAL for a format its response does not have. */
#define UNSUPPORTED_UNLESS(cond) \
    do {                         \
        if (!(cond)) {           \
            return MOOR_EINVAL;  \
        }                        \
    } while (0)

/* The writer: every mc__w* call appends to b unless rv already failed. */
struct mc__w
{
    struct moor_buf *b;
    int rv;
};

/* Rows as strings in one arena-like buffer: each cell a NUL-terminated
 * string; offsets kept, pointers made once the buffer stopped growing. */
struct mc__rows
{
    struct moor_buf text;
    size_t off[16 * 64];
    size_t n;
    int rv;
};

/* printf, bytes, a C string, Go %q, a JSON string, base64, a lease id as
 * etcdctl prints it (hex). */
__attribute__((format(printf, 2, 3))) void mc__wf(struct mc__w *w,
                                                  const char *fmt, ...);
void mc__wb(struct mc__w *w, const void *p, size_t n);
void mc__ws(struct mc__w *w, const char *s);
void mc__wquote(struct mc__w *w, const void *p, size_t n);
void mc__wjstr(struct mc__w *w, const char *s);
void mc__wb64(struct mc__w *w, ProtobufCBinaryData d);
void mc__wlease(struct mc__w *w, int64_t id);
/* -w protobuf: the message's own bytes. */
int mc__pack_raw(struct moor_buf *out, const ProtobufCMessage *m);
/* JSON: a key (with the comma before it unless *first), numbers and bools
 * (omitempty leaves zero out), the ResponseHeader, KeyValues. */
void mc__jkey(struct mc__w *w, bool *first, const char *key);
void mc__ju64(struct mc__w *w, bool *first, const char *key, uint64_t v,
              bool omitempty);
void mc__ji64(struct mc__w *w, bool *first, const char *key, int64_t v,
              bool omitempty);
void mc__jbool(struct mc__w *w, bool *first, const char *key, bool v,
               bool omitempty);
void mc__j_header_fields(struct mc__w *w, bool *first,
                         const Etcdserverpb__ResponseHeader *h);
void mc__j_header(struct mc__w *w, bool *first, const char *key,
                  const Etcdserverpb__ResponseHeader *h);
void mc__j_kv(struct mc__w *w, const Mvccpb__KeyValue *kv);
void mc__j_kvs(struct mc__w *w, bool *first, const char *key,
               Mvccpb__KeyValue *const *kvs, size_t n);
/* simple: a KeyValue's lines; fields: the header's and a KeyValue's. */
void mc__s_kv(struct mc__w *w, const struct mc_print *p,
              const Mvccpb__KeyValue *kv);
void mc__f_hdr(struct mc__w *w, const Etcdserverpb__ResponseHeader *h);
void mc__f_kv(struct mc__w *w, const char *pfx, const Mvccpb__KeyValue *kv);
/* Adds one cell to t (MOOR_ETOOBIG past 1,024); rows_emit prints them as a
 * table or as simple lines joined with ", ". */
__attribute__((format(printf, 2, 3))) void mc__cell(struct mc__rows *t,
                                                    const char *fmt, ...);
int mc__rows_emit(struct moor_buf *out, struct mc__rows *t, bool table,
                  const char *const *hdr, size_t cols);

#endif /* MOOR_CLI_PRINT_INT_H */
