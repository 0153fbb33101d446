/*
 * cmd_kv.c: get, put, del, txn and compaction.
 */
#include <stdlib.h>

#include "cli_int.h"

const struct mc_flag mc_txn_flags[] = {
    {"interactive", 'i', MC_FLAG_BOOL,
     offsetof(struct mc_txn_opts, interactive),
     "Input transaction in interactive mode"},
};
const size_t mc_txn_flags_len = MOOR_ARRAY_LEN(mc_txn_flags);

const struct mc_flag mc_compact_flags[] = {
    {"physical", 0, MC_FLAG_BOOL, offsetof(struct mc_compact_opts, physical),
     "'true' to wait for compaction to physically remove all old revisions"},
};
const size_t mc_compact_flags_len = MOOR_ARRAY_LEN(mc_compact_flags);

#define PATH_KV "/etcdserverpb.KV/"

int mc_cmd_get(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_get_opts *o = opts;
    struct mc_arena a;
    char e[MOOR_ERRMSG_SIZE];
    Etcdserverpb__RangeRequest *req;
    Etcdserverpb__RangeResponse *resp = NULL;
    struct moor_buf out;
    mc_arena_init(&a);
    moor_buf_init(&out);
    int code;
    if (o->print_value_only && c->pr.fmt != MC_FMT_SIMPLE) {
        code = mc_fail(c, MC_EXIT_USAGE,
                       "print-value-only is only for `--write-out=simple`");
        goto out;
    }
    if (o->count_only && c->pr.fmt != MC_FMT_FIELDS) {
        code = mc_fail(c, MC_EXIT_USAGE,
                       "--count-only is only for `--write-out=fields`");
        goto out;
    }
    int rv = mc_build_get(&a, args, n, o, &req, e);
    if (rv != MOOR_OK) {
        code = mc_fail(c, rv == MOOR_EINVAL ? MC_EXIT_USAGE : MC_EXIT_ERROR,
                       "%s", rv == MOOR_EINVAL ? e : moor_strerror(rv));
        goto out;
    }
    code = mc_call(c, PATH_KV "Range", req,
                   &etcdserverpb__range_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        struct mc_print p = c->pr;
        p.value_only = o->print_value_only;
        code = mc_emit(c, mc_print_get(&out, &p, resp), &out);
    }
out:
    mc_pb_free(resp);
    moor_buf_close(&out);
    mc_arena_close(&a);
    return code;
}

/* Reads all of in, at most MC_STDIN_MAX bytes. */
static int read_all(FILE *in, struct moor_buf *b)
{
    char tmp[65536];
    for (;;) {
        size_t n = fread(tmp, 1, sizeof(tmp), in);
        if (n == 0) {
            return ferror(in) ? MOOR_EIO : MOOR_OK;
        }
        if (b->len + n > MC_STDIN_MAX) {
            return MOOR_ETOOBIG;
        }
        int rv = moor_buf_append(b, tmp, n);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
}

int mc_cmd_put(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_put_opts *o = opts;
    struct mc_arena a;
    char e[MOOR_ERRMSG_SIZE];
    Etcdserverpb__PutRequest *req;
    Etcdserverpb__PutResponse *resp = NULL;
    struct moor_buf out, val;
    mc_arena_init(&a);
    moor_buf_init(&out);
    moor_buf_init(&val);
    struct moor_slice vs;
    const struct moor_slice *value = NULL;
    int code;
    if (n == 1 && !o->ignore_value) {
        /* etcdctl's argOrStdin: the value is the whole of stdin. */
        int rv = read_all(c->in, &val);
        if (rv == MOOR_ETOOBIG) {
            code = mc_fail(c, MC_EXIT_USAGE, "value on stdin is over %u bytes",
                           MC_STDIN_MAX);
            goto out;
        }
        if (rv != MOOR_OK || val.len == 0) {
            code = mc_fail(c, MC_EXIT_USAGE,
                           "put command needs 1 argument and input from "
                           "stdin or 2 arguments");
            goto out;
        }
        vs = moor_slice_make(val.ptr, val.len);
        value = &vs;
    }
    int rv = mc_build_put(&a, args, n, o, value, &req, e);
    if (rv != MOOR_OK) {
        code = mc_fail(c, rv == MOOR_EINVAL ? MC_EXIT_USAGE : MC_EXIT_ERROR,
                       "%s", rv == MOOR_EINVAL ? e : moor_strerror(rv));
        goto out;
    }
    code = mc_call(c, PATH_KV "Put", req,
                   &etcdserverpb__put_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        code = mc_emit(c, mc_print_put(&out, &c->pr, resp), &out);
    }
out:
    mc_pb_free(resp);
    moor_buf_close(&out);
    moor_buf_close(&val);
    mc_arena_close(&a);
    return code;
}

int mc_cmd_del(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_del_opts *o = opts;
    struct mc_arena a;
    char e[MOOR_ERRMSG_SIZE];
    Etcdserverpb__DeleteRangeRequest *req;
    Etcdserverpb__DeleteRangeResponse *resp = NULL;
    struct moor_buf out;
    mc_arena_init(&a);
    moor_buf_init(&out);
    int code;
    int rv = mc_build_del(&a, args, n, o, &req, e);
    if (rv != MOOR_OK) {
        code = mc_fail(c, rv == MOOR_EINVAL ? MC_EXIT_USAGE : MC_EXIT_ERROR,
                       "%s", rv == MOOR_EINVAL ? e : moor_strerror(rv));
        goto out;
    }
    code = mc_call(c, PATH_KV "DeleteRange", req,
                   &etcdserverpb__delete_range_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        code = mc_emit(c, mc_print_del(&out, &c->pr, resp), &out);
    }
out:
    mc_pb_free(resp);
    moor_buf_close(&out);
    mc_arena_close(&a);
    return code;
}

/* Lines of a FILE, for mc_txn_read. */
static int file_line(void *arg, struct moor_buf *line)
{
    FILE *in = arg;
    int ch;
    bool any = false;
    while ((ch = fgetc(in)) != EOF) {
        any = true;
        if (ch == '\n') {
            return MOOR_OK;
        }
        if (line->len >= MC_LINE_MAX) {
            return MOOR_ETOOBIG;
        }
        int rv = moor_buf_putc(line, (uint8_t)ch);
        if (rv != MOOR_OK) {
            return rv;
        }
    }
    /* Go's ReadString('\n') returns the partial line with io.EOF, which
     * etcdctl treats as the error: the same here. */
    (void)any;
    return MOOR_ENOENT;
}

int mc_cmd_txn(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_txn_opts *o = opts;
    struct mc_arena a;
    char e[MOOR_ERRMSG_SIZE];
    Etcdserverpb__TxnRequest req;
    Etcdserverpb__TxnResponse *resp = NULL;
    struct moor_buf out;
    (void)args;
    if (n != 0) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "txn command does not accept argument");
    }
    mc_arena_init(&a);
    moor_buf_init(&out);
    int code;
    int rv = mc_txn_read(&a, file_line, c->in, o->interactive ? c->out : NULL,
                         &req, e);
    if (rv != MOOR_OK) {
        code = mc_fail(c, rv == MOOR_EINVAL ? MC_EXIT_USAGE : MC_EXIT_ERROR,
                       "%s", rv == MOOR_EINVAL ? e : moor_strerror(rv));
        goto out;
    }
    code = mc_call(c, PATH_KV "Txn", &req,
                   &etcdserverpb__txn_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        code = mc_emit(c, mc_print_txn(&out, &c->pr, resp), &out);
    }
out:
    mc_pb_free(resp);
    moor_buf_close(&out);
    mc_arena_close(&a);
    return code;
}

int mc_cmd_compaction(struct mc_ctx *c, void *opts, char **args, size_t n)
{
    const struct mc_compact_opts *o = opts;
    if (n != 1) {
        return mc_fail(c, MC_EXIT_USAGE, "compaction command needs 1 argument");
    }
    char *end;
    long long rev = strtoll(args[0], &end, 10);
    if (*args[0] == 0 || *end != 0) {
        return mc_fail(c, MC_EXIT_USAGE,
                       "strconv.ParseInt: parsing \"%s\": invalid syntax",
                       args[0]);
    }
    Etcdserverpb__CompactionRequest req =
        ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    Etcdserverpb__CompactionResponse *resp = NULL;
    req.revision = rev;
    req.physical = o->physical;
    int code = mc_call(c, PATH_KV "Compact", &req,
                       &etcdserverpb__compaction_response__descriptor, &resp);
    if (code == MC_EXIT_OK) {
        struct moor_buf out;
        moor_buf_init(&out);
        code = mc_emit(c, mc_print_compaction(&out, &c->pr, rev, resp), &out);
        moor_buf_close(&out);
    }
    mc_pb_free(resp);
    return code;
}
